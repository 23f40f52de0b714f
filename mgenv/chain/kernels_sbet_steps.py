"""Compiled kernels of SBET's steps (seed 003, Alg. 1), one per step function.

Each kernel mirrors one function of :mod:`mgenv.chain.sbet_steps` (its numpy code is the
reference) with loops over nodes (n) and transactions (B), bit-identical (see
:mod:`mgenv._jit`); :mod:`mgenv.chain.kernels_sbet` calls them in order. ``link`` is
(P, n, n) bool [phase, sender, receiver], "delivered and both ends online"; ``delay``
(P, n, n) ms; ``copies`` (B, n) int8 (``MISSING``, ``TRUE``, ``ALTERED``); ``nodes`` and
``fc`` are :class:`mgenv.chain.kernels_dataplane.PackedPlane`'s.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mgenv._jit import kernel
from mgenv._ufuncs import sorts_before
from mgenv.chain import kernels_dataplane as kd
from mgenv.chain.dataplane import ALTERED, MISSING, TRUE
from mgenv.chain.packed import HEADER, MALICIOUS, RECORD, T_MAX, VOTERS
from mgenv.chain.sbet_steps import (
    ANNOUNCE,
    BLOCK,
    COMMIT,
    COMPLETE,
    ELECT,
    HASH,
    INTEGRITY,
    LISTS,
    REPLY,
    REQUEST,
    YES,
)

_INF = np.inf


@kernel
def coordinator(online: NDArray[np.bool_], period: int) -> tuple[int, int]:
    """``sbet_steps.coordinator`` (step 1): e_p from ``period % n`` on, and the skips."""
    n = online.size
    first = period % n
    for skipped in range(n):
        if online[(first + skipped) % n]:
            return (first + skipped) % n, skipped
    return -1, 0


@kernel
def stable_order(key: NDArray[np.float64]) -> NDArray[np.int64]:
    """``np.argsort(key, kind="stable")`` (NaN last): insertion sort of the indices."""
    m = key.size
    order = np.arange(m)
    for a in range(1, m):
        idx = order[a]
        v = key[idx]
        b = a - 1
        while b >= 0 and sorts_before(v, key[order[b]]):
            order[b + 1] = order[b]
            b -= 1
        order[b + 1] = idx
    return order


@kernel
def elect(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    p: int,
    able: NDArray[np.bool_],
    storage: NDArray[np.float64],
    pkey: NDArray[np.float64],
    q: int,
    t_max: float,
) -> tuple[NDArray[np.int64], int, float]:
    """``sbet_steps.elect`` (step 2, eq. 7): candidates best first, their count, election ms.

    Args:
        link: Shape (P, n, n), bool.
        delay: Shape (P, n, n), ms.
        p: The coordinator.
        able: Shape (n,), bool: would answer "Yes".
        storage: Shape (n,), s_i.
        pkey: Shape (n, n): ``log(t_i s_i + 1e-300) + gumbel_i`` for coordinator row p
            (proportional election, computed by numpy), or shape (0, 0) for the argmax.
        q: The quorum.
        t_max: The timer (ms).

    Returns:
        ``(order (n,), candidates = order[:count], closing time ms)``.
    """
    n = able.size
    rt = np.empty(n)
    arrival = np.empty(n)
    for i in range(n):
        rt[i] = delay[ELECT, p, i] + delay[YES, i, p]
        arrival[i] = rt[i] if link[ELECT, p, i] and link[YES, i, p] else _INF
    # e_p closes at the (q - 1)-th answer (q counting itself); the sort is on a copy
    closed = kd.close_ms(arrival.copy(), q - 1, t_max)
    sort_key = np.empty(n)  # eq. (7)'s key, negated: the stable ascending sort puts the best first
    n_yes = 0
    for i in range(n):
        if arrival[i] <= closed and able[i]:
            n_yes += 1
            sort_key[i] = -pkey[p, i] if pkey.shape[0] > 0 else -(rt[i] * storage[i])
        else:
            sort_key[i] = _INF
    return stable_order(sort_key), n_yes, closed


@kernel
def pick_creator(
    order: NDArray[np.int64],
    n_candidates: int,
    announced: NDArray[np.bool_],
    malicious: NDArray[np.bool_],
    strong: bool,
) -> tuple[int, int]:
    """``sbet_steps.pick_creator`` (step 3): the first acceptable candidate and the skips."""
    for k in range(n_candidates):
        c = order[k]
        if announced[c] and (not malicious[c] or strong):
            return c, k
    return -1, n_candidates


@kernel
def serial_lists(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    p: int,
    c: int,
    announced: NDArray[np.bool_],
    copies: NDArray[np.int8],
    q: int,
    t_max: float,
) -> tuple[NDArray[np.bool_], float]:
    """``sbet_steps.serial_lists`` (step 4): the complete list (B,) and its closing time (ms)."""
    n = announced.size
    arrival = np.empty(n)
    for i in range(n):
        announce = 0.0 if i == p else delay[ANNOUNCE, p, i]
        ok = announced[i] and link[LISTS, i, c] and i != c
        arrival[i] = announce + delay[LISTS, i, c] if ok else _INF
    closed = kd.close_ms(arrival.copy(), q - 1, t_max)
    complete = np.zeros(copies.shape[0], np.bool_)
    for i in range(n):
        if arrival[i] <= closed or i == c:
            for b in range(copies.shape[0]):
                if copies[b, i] != MISSING:
                    complete[b] = True
    return complete, closed


@kernel
def recover(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    copies: NDArray[np.int8],
    need: NDArray[np.bool_],
    nodes: NDArray[np.bool_],
    wait: NDArray[np.float64],
    fc: NDArray[np.float64],
    q: int,
) -> tuple[NDArray[np.int8], int, NDArray[np.float64]]:
    """``sbet_steps.recover`` (step 5, Alg. 1 lines 19-25): the redundant exchange.

    Args:
        link: Shape (P, n, n), bool.
        delay: Shape (P, n, n), ms.
        copies: Shape (B, n), after the broadcast.
        need: Shape (B, n), bool: node i requests transaction t.
        nodes: ``PackedPlane.nodes``.
        wait: Shape (n, n), eq. (6)'s waiting time [sender, receiver] (ms).
        fc: ``PackedPlane.fc``.
        q: The quorum.

    Returns:
        ``(copies after the exchange, copies honest nodes recovered, (n,) end of each node's
        exchange in ms after its request, 0 if it requested nothing)``.
    """
    t_max, header_ms, ms_per_record = fc[T_MAX], fc[HEADER], fc[RECORD]
    n_tx, n = copies.shape
    any_malicious = False
    for i in range(n):
        any_malicious |= nodes[MALICIOUS, i]
    # [holder j, requester i]: request i -> j, answer j -> i after eq. (6)'s wait
    answered = np.zeros((n, n), np.bool_)
    arrival = np.full((n, n), _INF)
    give_up = np.empty(n)
    for i in range(n):
        n_need = 0
        for b in range(n_tx):
            if need[b, i]:
                n_need += 1
        size_ms = header_ms + ms_per_record * n_need
        last = 0.0
        for j in range(n):
            transit = delay[REQUEST, i, j] + delay[REPLY, j, i] + size_ms
            if link[REQUEST, i, j] and link[REPLY, j, i] and transit <= t_max:
                answered[j, i] = True
                arrival[j, i] = transit + wait[j, i]
                last = kd.maximum(last, arrival[j, i])
        give_up[i] = kd.maximum(last, t_max)  # at its timer, or at the last answer if later
    out = copies.copy()
    end = np.zeros(n)
    times = np.empty(n)
    recovered = 0
    for b in range(n_tx):
        for i in range(n):
            if not need[b, i]:
                continue
            n_true = 0
            n_alt = 0
            for j in range(n):
                if answered[j, i] and copies[b, j] == TRUE:
                    n_true += 1
                elif answered[j, i] and copies[b, j] == ALTERED:
                    n_alt += 1
            honest = not nodes[MALICIOUS, i]
            got_true = honest and n_true >= q
            if got_true:
                out[b, i] = TRUE
                recovered += 1
            if any_malicious and ((honest and n_alt >= q) or (not honest and n_true + n_alt > 0)):
                out[b, i] = ALTERED
            if honest:  # the asking nodes' exchange ends (np.where(ask, done, 0.0).max)
                done = give_up[i]
                if got_true:
                    for j in range(n):
                        times[j] = arrival[j, i] if copies[b, j] == TRUE else _INF
                    done = kd.kth_smallest(times, q)
                end[i] = kd.maximum(end[i], done)
    return out, recovered, end


@kernel
def integrity_ms(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    c: int,
    got: NDArray[np.bool_],
    ready: NDArray[np.float64],
    q: int,
    t_max: float,
) -> float:
    """``sbet_steps.integrity_ms`` (step 6): from the complete list to e_c's q-th message."""
    n = got.size
    arrival = np.empty(n)
    for i in range(n):
        if i == c:
            arrival[i] = ready[i]
        elif got[i] and link[INTEGRITY, i, c]:
            arrival[i] = delay[COMPLETE, c, i] + ready[i] + delay[INTEGRITY, i, c]
        else:
            arrival[i] = _INF
    return kd.close_ms(arrival, q, t_max)


@kernel
def candidate_votes(
    link: NDArray[np.bool_],
    nodes: NDArray[np.bool_],
    c: int,
    copies: NDArray[np.int8],
    complete: NDArray[np.bool_],
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], int]:
    """``sbet_steps.candidate_votes`` (step 7): the candidate (B,), the "Yes" votes (B, n).

    Returns:
        ``(in_block, yes, transactions in the block)``.
    """
    n_tx, n = copies.shape
    altered = nodes[MALICIOUS, c]
    in_block = np.zeros(n_tx, np.bool_)
    yes = np.zeros((n_tx, n), np.bool_)
    n_block = 0
    for b in range(n_tx):
        in_block[b] = complete[b] and (copies[b, c] != MISSING or altered)
        if not in_block[b]:
            continue
        n_block += 1
        for i in range(n):
            got = (link[BLOCK, c, i] or i == c) and nodes[VOTERS, i]
            if altered:  # only the colluders vote for the altered candidate
                yes[b, i] = got and nodes[MALICIOUS, i]
            else:
                yes[b, i] = got and copies[b, i] == TRUE and not nodes[MALICIOUS, i]
    return in_block, yes, n_block


@kernel
def vote(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    c: int,
    yes: NDArray[np.bool_],
    n_block: int,
    fc: NDArray[np.float64],
    q: int,
) -> tuple[NDArray[np.int64], float]:
    """``sbet_steps.vote`` (step 7): commits per transaction reaching e_c and the vote time.

    Returns:
        ``(commits (B,), ms from the block's sending to e_c's q-th commit; t_max if no
        transaction gets q commits)``.
    """
    n_tx, n = yes.shape
    to_c = np.empty(n, np.bool_)
    for i in range(n):
        to_c[i] = link[COMMIT, i, c] or i == c
    commits = np.zeros(n_tx, np.int64)
    ready_any = np.zeros(n, np.bool_)  # node i commits some transaction
    voting = np.zeros(n, np.bool_)  # node j sent a hash list
    n_verified = 0
    for b in range(n_tx):
        for i in range(n):
            if not yes[b, i]:
                continue
            voting[i] = True
            # own hash included: q matching hashes iff q - 1 others reached node i
            hashes = 0
            for j in range(n):
                if yes[b, j] and link[HASH, j, i]:
                    hashes += 1
            if hashes >= q - 1:
                ready_any[i] = True
                if to_c[i]:
                    commits[b] += 1
        if commits[b] >= q:
            n_verified += 1
    if n_verified == 0:
        return commits, fc[T_MAX]
    block_at = np.empty(n)
    size_ms = fc[HEADER] + fc[RECORD] * n_block
    for i in range(n):
        block_at[i] = 0.0 if i == c else delay[BLOCK, c, i] + size_ms
    hash_at = np.empty(n)
    commit_at = np.empty(n)
    kth = q - 1 if q >= 2 else n  # numpy's hash_at[q - 2]: index -1 (the last) if q = 1
    for i in range(n):
        for j in range(n):
            ok = link[HASH, j, i] and voting[j]
            hash_at[j] = block_at[j] + delay[HASH, j, i] if ok else _INF
        hashed = kd.maximum(block_at[i], kd.kth_smallest(hash_at, kth))
        if not (ready_any[i] and to_c[i]):
            commit_at[i] = _INF
        elif i == c:
            commit_at[i] = hashed
        else:
            commit_at[i] = hashed + delay[COMMIT, i, c]
    return commits, kd.kth_smallest(commit_at, q)
