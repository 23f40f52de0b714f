"""Compiled kernels of SBET's steps (seed 003, Alg. 1), one per step function.

Each kernel mirrors one function of :mod:`mgenv.chain.sbet_steps` (its numpy code is the
reference) with loops over nodes (n) and transactions (B), bit-identical (see
:mod:`mgenv._jit`); :mod:`mgenv.chain.kernels_sbet` calls them in order. ``link`` is
(P, n, n) bool [phase, sender, receiver], "delivered and both ends online"; ``delay``
(P, n, n) ms; ``copies`` (B, n) int8 (``MISSING``, ``TRUE``, ``ALTERED``); ``nodes`` and
``fc`` are :class:`mgenv.chain.packed.PackedPlane`'s.

The steps are inlined into their callers (``_jit.inlined``) and keep every intermediate in
a :class:`Work` of preallocated arrays: the batched chain runs a block per copy
(:mod:`mgenv.batched.chain_kernels`), where allocations and call boundaries (a reference
taken and released per array argument) would cost more than the steps' arithmetic. A step
reads ``delay`` (and ``link``, for REQUEST and REPLY) only where its docstring says; the
batched chain fills only those entries.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv._jit import inlined, kernel
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


class Work(NamedTuple):
    """Scratch of one SBET block for n nodes and up to T transactions (reused block to block).

    Per-node arrays have shape (n,), per-transaction ones (T,), the others (T, n) or (n, n).
    """

    rt: NDArray[np.float64]  # election round trips t_i (ms)
    arrival: NDArray[np.float64]  # arrival times of a step's messages (ms)
    scratch: NDArray[np.float64]  # a sorted copy of the arrivals; recover's answer times
    sort_key: NDArray[np.float64]  # eq. (7)'s keys, negated
    order: NDArray[np.int64]  # the candidates, best first
    announced: NDArray[np.bool_]  # got e_p's announcement (e_p included)
    got: NDArray[np.bool_]  # got e_c's complete list (e_c included)
    ready: NDArray[np.float64]  # end of each node's exchange (ms after its request)
    give_up: NDArray[np.float64]  # recover: each requester's timer or last answer (ms)
    per_origin: NDArray[np.int64]  # broadcast: transactions per origin node
    to_c: NDArray[np.bool_]  # vote: the node's commit reaches e_c
    ready_any: NDArray[np.bool_]  # vote: the node commits some transaction
    voting: NDArray[np.bool_]  # vote: the node sent a hash list
    block_at: NDArray[np.float64]  # vote: the candidate's arrival (ms)
    hash_at: NDArray[np.float64]  # vote: hash lists' arrivals at a node (ms)
    holders: NDArray[np.bool_]  # nodes holding the block
    in_time: NDArray[np.bool_]  # (n, n) broadcast: data message in time [sender, receiver]
    answered: NDArray[np.bool_]  # (n, n) recover: [holder, requester]
    answer_at: NDArray[np.float64]  # (n, n) recover: answer arrival [holder, requester] (ms)
    complete: NDArray[np.bool_]  # (T,) on e_c's complete list
    in_block: NDArray[np.bool_]  # (T,) in e_c's candidate
    commits: NDArray[np.int64]  # (T,) commits reaching e_c
    status: NDArray[np.int8]  # (T,) reason codes
    copies: NDArray[np.int8]  # (T, n) after the broadcast
    exchanged: NDArray[np.int8]  # (T, n) after the redundant exchange
    cut: NDArray[np.bool_]  # (T, n) interruptions
    need: NDArray[np.bool_]  # (T, n) the node requests the transaction
    yes: NDArray[np.bool_]  # (T, n) "Yes" votes


@kernel
def work(n: int, n_tx: int) -> Work:
    """A fresh :class:`Work` for n nodes and up to ``n_tx`` transactions.

    Its arrays are disjoint slices of one allocation per dtype (four instead of 28: an
    allocation costs ~25 ns in a kernel, a slice a few).
    """
    nn, tn = n * n, n_tx * n
    f = np.empty(8 * n + nn)
    i = np.empty(2 * n + n_tx, np.int64)
    b = np.empty(6 * n + 2 * nn + 2 * n_tx + 3 * tn, np.bool_)
    i8 = np.empty(n_tx + 2 * tn, np.int8)
    return Work(
        f[:n], f[n : 2 * n], f[2 * n : 3 * n], f[3 * n : 4 * n], i[:n], b[:n], b[n : 2 * n],
        f[4 * n : 5 * n], f[5 * n : 6 * n], i[n : 2 * n], b[2 * n : 3 * n], b[3 * n : 4 * n],
        b[4 * n : 5 * n], f[6 * n : 7 * n], f[7 * n : 8 * n], b[5 * n : 6 * n],
        b[6 * n : 6 * n + nn].reshape((n, n)), b[6 * n + nn : 6 * n + 2 * nn].reshape((n, n)),
        f[8 * n :].reshape((n, n)),
        b[6 * n + 2 * nn : 6 * n + 2 * nn + n_tx],
        b[6 * n + 2 * nn + n_tx : 6 * n + 2 * nn + 2 * n_tx],
        i[2 * n :], i8[:n_tx], i8[n_tx : n_tx + tn].reshape((n_tx, n)),
        i8[n_tx + tn :].reshape((n_tx, n)),
        b[6 * n + 2 * nn + 2 * n_tx : 6 * n + 2 * nn + 2 * n_tx + tn].reshape((n_tx, n)),
        b[6 * n + 2 * nn + 2 * n_tx + tn : 6 * n + 2 * nn + 2 * n_tx + 2 * tn].reshape((n_tx, n)),
        b[6 * n + 2 * nn + 2 * n_tx + 2 * tn :].reshape((n_tx, n)),
    )  # fmt: skip


@kernel
def coordinator(online: NDArray[np.bool_], period: int) -> tuple[int, int]:
    """``sbet_steps.coordinator`` (step 1): e_p from ``period % n`` on, and the skips."""
    n = online.size
    first = period % n
    for skipped in range(n):
        if online[(first + skipped) % n]:
            return (first + skipped) % n, skipped
    return -1, 0


@inlined
def stable_order(key: NDArray[np.float64], order: NDArray[np.int64]) -> None:
    """``np.argsort(key, kind="stable")`` (NaN last) into ``order``: an insertion sort."""
    m = key.size
    for a in range(m):
        order[a] = a
    for a in range(1, m):
        idx = order[a]
        v = key[idx]
        b = a - 1
        while b >= 0 and sorts_before(v, key[order[b]]):
            order[b + 1] = order[b]
            b -= 1
        order[b + 1] = idx


@inlined
def elect(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    p: int,
    able: NDArray[np.bool_],
    storage: NDArray[np.float64],
    pkey: NDArray[np.float64],
    q: int,
    t_max: float,
    w: Work,
) -> tuple[int, float]:
    """``sbet_steps.elect`` (step 2, eq. 7): the candidates (``w.order``), count, election ms.

    Reads the ELECT row and YES column of e_p.

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
        w: Scratch; ``w.order`` receives every node, best candidate first.

    Returns:
        ``(count: the candidates are w.order[:count], closing time ms)``.
    """
    rt, arrival, scratch, sort_key = w.rt, w.arrival, w.scratch, w.sort_key
    n = able.size
    for i in range(n):
        rt[i] = delay[ELECT, p, i] + delay[YES, i, p]
        arrival[i] = rt[i] if link[ELECT, p, i] and link[YES, i, p] else _INF
        scratch[i] = arrival[i]
    # e_p closes at the (q - 1)-th answer (q counting itself); the sort is on a copy
    closed = kd.close_ms(scratch, q - 1, t_max)
    n_yes = 0  # eq. (7)'s key, negated: the stable ascending sort puts the best first
    for i in range(n):
        if arrival[i] <= closed and able[i]:
            n_yes += 1
            sort_key[i] = -pkey[p, i] if pkey.shape[0] > 0 else -(rt[i] * storage[i])
        else:
            sort_key[i] = _INF
    stable_order(sort_key, w.order)
    return n_yes, closed


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


@inlined
def serial_lists(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    p: int,
    c: int,
    announced: NDArray[np.bool_],
    copies: NDArray[np.int8],
    q: int,
    t_max: float,
    w: Work,
) -> float:
    """``sbet_steps.serial_lists`` (step 4): the complete list and its closing time (ms).

    Reads e_p's ANNOUNCE row and e_c's LISTS column; ``w.complete[:B]`` receives the list.
    """
    arrival, scratch, complete = w.arrival, w.scratch, w.complete
    n = announced.size
    for i in range(n):
        announce = 0.0 if i == p else delay[ANNOUNCE, p, i]
        ok = announced[i] and link[LISTS, i, c] and i != c
        arrival[i] = announce + delay[LISTS, i, c] if ok else _INF
        scratch[i] = arrival[i]
    closed = kd.close_ms(scratch, q - 1, t_max)
    for b in range(copies.shape[0]):
        complete[b] = False
    for i in range(n):
        if arrival[i] <= closed or i == c:
            for b in range(copies.shape[0]):
                if copies[b, i] != MISSING:
                    complete[b] = True
    return closed


@inlined
def recover(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    copies: NDArray[np.int8],
    need: NDArray[np.bool_],
    nodes: NDArray[np.bool_],
    wait: NDArray[np.float64],
    fc: NDArray[np.float64],
    q: int,
    w: Work,
) -> int:
    """``sbet_steps.recover`` (step 5, Alg. 1 lines 19-25): the redundant exchange.

    Reads the REQUEST rows and REPLY columns of the requesting nodes (rows of ``need``
    with a True): what it computes for the other nodes is not used.

    Args:
        link: Shape (P, n, n), bool.
        delay: Shape (P, n, n), ms.
        copies: Shape (B, n), after the broadcast.
        need: Shape (B, n), bool: node i requests transaction t.
        nodes: ``PackedPlane.nodes``.
        wait: Shape (n, n), eq. (6)'s waiting time [sender, receiver] (ms).
        fc: ``PackedPlane.fc``.
        q: The quorum.
        w: Scratch; ``w.exchanged[:B]`` receives the copies after the exchange and
            ``w.ready`` each node's end of exchange in ms after its request (0 if it
            requested nothing).

    Returns:
        The copies honest nodes recovered.
    """
    t_max, header_ms, ms_per_record = fc[T_MAX], fc[HEADER], fc[RECORD]
    answered, arrival, give_up = w.answered, w.answer_at, w.give_up
    out, end, times = w.exchanged, w.ready, w.scratch
    n_tx, n = copies.shape
    any_malicious = False
    for i in range(n):
        any_malicious |= nodes[MALICIOUS, i]
    # [holder j, requester i]: request i -> j, answer j -> i after eq. (6)'s wait
    for i in range(n):
        n_need = 0
        for b in range(n_tx):
            if need[b, i]:
                n_need += 1
        size_ms = header_ms + ms_per_record * n_need
        last = 0.0
        for j in range(n):
            transit = delay[REQUEST, i, j] + delay[REPLY, j, i] + size_ms
            answered[j, i] = link[REQUEST, i, j] and link[REPLY, j, i] and transit <= t_max
            arrival[j, i] = transit + wait[j, i] if answered[j, i] else _INF
            if answered[j, i]:
                last = kd.maximum(last, arrival[j, i])
        give_up[i] = kd.maximum(last, t_max)  # at its timer, or at the last answer if later
        end[i] = 0.0
    for b in range(n_tx):
        for i in range(n):
            out[b, i] = copies[b, i]
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
    return recovered


@inlined
def integrity_ms(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    c: int,
    got: NDArray[np.bool_],
    ready: NDArray[np.float64],
    q: int,
    t_max: float,
    w: Work,
) -> float:
    """``sbet_steps.integrity_ms`` (step 6): from the complete list to e_c's q-th message.

    Reads e_c's COMPLETE row and INTEGRITY column.
    """
    arrival = w.arrival
    n = got.size
    for i in range(n):
        if i == c:
            arrival[i] = ready[i]
        elif got[i] and link[INTEGRITY, i, c]:
            arrival[i] = delay[COMPLETE, c, i] + ready[i] + delay[INTEGRITY, i, c]
        else:
            arrival[i] = _INF
    return kd.close_ms(arrival, q, t_max)


@inlined
def candidate_votes(
    link: NDArray[np.bool_],
    nodes: NDArray[np.bool_],
    c: int,
    copies: NDArray[np.int8],
    complete: NDArray[np.bool_],
    w: Work,
) -> int:
    """``sbet_steps.candidate_votes`` (step 7): the candidate and the "Yes" votes.

    ``w.in_block[:B]`` receives the candidate, ``w.yes[:B]`` the votes (B, n).

    Returns:
        The number of transactions in the block.
    """
    in_block, yes = w.in_block, w.yes
    n_tx, n = copies.shape
    altered = nodes[MALICIOUS, c]
    n_block = 0
    for b in range(n_tx):
        in_block[b] = complete[b] and (copies[b, c] != MISSING or altered)
        for i in range(n):
            yes[b, i] = False
        if not in_block[b]:
            continue
        n_block += 1
        for i in range(n):
            got = (link[BLOCK, c, i] or i == c) and nodes[VOTERS, i]
            if altered:  # only the colluders vote for the altered candidate
                yes[b, i] = got and nodes[MALICIOUS, i]
            else:
                yes[b, i] = got and copies[b, i] == TRUE and not nodes[MALICIOUS, i]
    return n_block


@inlined
def vote(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    c: int,
    yes: NDArray[np.bool_],
    n_block: int,
    fc: NDArray[np.float64],
    q: int,
    w: Work,
) -> float:
    """``sbet_steps.vote`` (step 7): commits per transaction reaching e_c and the vote time.

    Reads e_c's BLOCK row and COMMIT column, and HASH. ``w.commits[:B]`` receives the
    commits per transaction.

    Returns:
        ms from the block's sending to e_c's q-th commit; t_max if no transaction gets q
        commits.
    """
    to_c, commits, ready_any, voting = w.to_c, w.commits, w.ready_any, w.voting
    block_at, hash_at, commit_at = w.block_at, w.hash_at, w.arrival
    n_tx, n = yes.shape
    for i in range(n):
        to_c[i] = link[COMMIT, i, c] or i == c
        ready_any[i] = False  # node i commits some transaction
        voting[i] = False  # node j sent a hash list
    n_verified = 0
    for b in range(n_tx):
        commits[b] = 0
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
        return float(fc[T_MAX])
    size_ms = fc[HEADER] + fc[RECORD] * n_block
    for i in range(n):
        block_at[i] = 0.0 if i == c else delay[BLOCK, c, i] + size_ms
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
    done: float = kd.kth_smallest(commit_at, q)
    return done
