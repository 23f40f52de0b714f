"""SBET periods of the batched chain as compiled loops over copies (the single chain's kernels).

Copy b runs, on its own draws, what the single chain's compiled path runs
(:func:`mgenv.chain.kernels_sbet.sbet_period`): the data plane's admission and broadcast,
:func:`~mgenv.chain.kernels_sbet.choose_creator` (steps 1-3) and
:func:`~mgenv.chain.kernels_sbet.finish_block` (steps 4-8), then the verdicts; and the node
view of the batched chain (``BatchedChain._update_nodes``). Bit-identical per copy: the same
kernels on the same numbers.

Why three kernels per period: every delay needs numpy's ``log1p`` of a jitter uniform (a
transcendental function stays in numpy, :mod:`mgenv._jit`), and ``log1p`` is the costliest
operation of a period (~5-20 ns each; a period draws P n^2 = 192 jitters for 4 nodes, of
which a block reads ~50). So each kernel lists the jitter uniforms the next step reads,
negated, in a flat buffer (``neg``, with each one's flat index into (P, n, n) and into
(n, n) in ``pos``, and each copy's run from ``start[b]`` to ``start[b + 1]``); numpy takes
``log1p`` of the buffer in place; the next kernel turns them into delays
(``kernels_dataplane.delays``' expression). Links are computed the same way, where a step
reads them, into each copy's ``links`` (B, P, n, n). The steps read a delay only where its
link is up, and links only in the rows and columns their docstrings name
(:mod:`mgenv.chain.kernels_sbet_steps`), so only those are computed:

1. :func:`sbet_open`: the online nodes, the admission, the coordinator e_p; the links of
   the broadcast (DATA), the election (ELECT row and YES column of e_p) and e_p's ANNOUNCE
   row; lists the jitters of the first two.
2. :func:`sbet_elect`: the broadcast and steps 1-3 (the creator e_c); the links of steps
   4-8 (e_c's LISTS, INTEGRITY and COMMIT columns and COMPLETE and BLOCK rows; HASH; the
   REQUEST rows and REPLY columns of the nodes that may ask for a copy) and lists their
   jitters and e_p's ANNOUNCE row's.
3. :func:`sbet_close`: steps 4-8, the verdicts, the figures and the node view.

Every step runs in one :class:`~mgenv.chain.kernels_sbet_steps.Work` per kernel call, reused
by every copy (nothing is allocated per copy). Layouts: per-copy inputs come copies first
((B, ...), row b is copy b); the batched chain's node state (online chain, heights, fork
flags) is (n, B), as its numpy code keeps it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from mgenv._jit import borrowing, inlined, kernel
from mgenv.batched import pcg64
from mgenv.chain import kernels_dataplane as kd
from mgenv.chain.dataplane import MISSING
from mgenv.chain.kernels_sbet import choose_creator, finish_block
from mgenv.chain.kernels_sbet_steps import coordinator, work
from mgenv.chain.packed import (
    BASE,
    BLOCK_SIZE,
    JITTER,
    LOSS,
    MALICIOUS,
    N_MISSING,
    QUORUM,
    SLOW,
    T_MAX,
)
from mgenv.chain.sbet_steps import (
    ANNOUNCE,
    BLOCK,
    COMMIT,
    COMPLETE,
    DATA,
    ELECT,
    HASH,
    INTEGRITY,
    LISTS,
    N_PHASES,
    REPLY,
    REQUEST,
    YES,
)
from mgenv.chain.types import PRIMARY_OFFLINE

# Rows of the per-copy integer state ``counts`` (int64, (N_COUNTS, B)) the kernels hand on.
N_ADM, N_VALID, COORD, CREATOR, CHANGES, N_MISSING_COPIES = range(6)
N_COUNTS: Final = 6
# Rows of ``figures`` (float64, (N_FIGURES, B)): the extra figures of ``Chain.process``.
FIGURES: Final = (
    "safety_violation",
    "committed_share",
    "query_accuracy",
    "recovered",
    "missing_copies",
    "tampered",
    "creator",
    "honest_heads_agree",
    "lagging_nodes",
    "forked_nodes",
)
N_FIGURES: Final = len(FIGURES)


#: A period's network draws: ``(draws (B, K, D), k, start, by_offset, by_period)``. Either
#: the draws of period k are ``draws[:, k]`` (``by_offset`` empty), or they are computed
#: from each copy's PCG64 state at the start of the block ``start`` (B, 4) uint64, with
#: :func:`mgenv.batched.pcg64.jump_table`'s tables by offset (D + 1) and by period (K + 1).
Source = tuple[NDArray[np.float64], int, NDArray[np.uint64], NDArray[np.uint64], NDArray[np.uint64]]
# The helpers below take the source's arrays one by one: unpacking a tuple of arrays at
# every uniform would take and release a reference to each of them every time.


@inlined
def _period(
    pcg_start: NDArray[np.uint64], by_period: NDArray[np.uint64], period_k: int, b: int
) -> pcg64.State:
    """Copy b's PCG64 state and increment at the start of period ``period_k`` (or zeros)."""
    if by_period.shape[0] == 0:
        zero = np.uint64(0)
        return zero, zero, zero, zero
    hi, lo = pcg64.jump(pcg_start[b], by_period, period_k)
    return hi, lo, pcg_start[b, 2], pcg_start[b, 3]


@borrowing
def _u(
    draws: NDArray[np.float64],
    by_offset: NDArray[np.uint64],
    period_k: int,
    b: int,
    at: pcg64.State,
    offset: int,
) -> float:
    """Uniform ``offset`` of copy b's period draw (``at``: :func:`_period`'s state)."""
    if by_offset.shape[0] == 0:
        return float(draws[b, period_k, offset])
    return pcg64.uniform(at, by_offset, offset)


@borrowing
def _link(
    draws: NDArray[np.float64],
    by_offset: NDArray[np.uint64],
    period_k: int,
    b: int,
    at: pcg64.State,
    on: NDArray[np.bool_],
    loss: float,
    link: NDArray[np.bool_],
    k: int,
    j: int,
    i: int,
) -> bool:
    """Message (k, j -> i)'s link into ``link``: ``kernels_dataplane.links``' value.

    Its loss uniform is read only if both ends are online and j != i (else the link is
    down whatever the uniform).
    """
    n = on.size
    if j == i or not (on[j] and on[i]):
        link[k, j, i] = False
        return False
    up: bool = _u(draws, by_offset, period_k, b, at, n + (k * n + j) * n + i) >= loss
    link[k, j, i] = up
    return up


@borrowing
def _emit(
    draws: NDArray[np.float64],
    by_offset: NDArray[np.uint64],
    period_k: int,
    b: int,
    at: pcg64.State,
    k: int,
    j: int,
    i: int,
    n: int,
    neg: NDArray[np.float64],
    pos: NDArray[np.int64],
    m: int,
) -> int:
    """List message (k, j -> i)'s negated jitter uniform at ``m``; returns ``m + 1``."""
    flat = (k * n + j) * n + i
    neg[m] = -_u(
        draws, by_offset, period_k, b, at, n + N_PHASES * n * n + flat
    )  # online | loss | jitter | extra
    pos[0, m] = flat
    pos[1, m] = j * n + i
    return m + 1


@inlined
def _fill_delays(
    lj: NDArray[np.float64],
    pos: NDArray[np.int64],
    lo: int,
    hi: int,
    geo: NDArray[np.float64],
    jitter_ms: float,
    delay: NDArray[np.float64],
) -> None:
    """The listed delays (ms), ``kernels_dataplane.delays``' expression, into ``delay``."""
    flat = delay.reshape(-1)
    base = geo[BASE].reshape(-1)
    slow = geo[SLOW].reshape(-1)
    for m in range(lo, hi):
        ji = pos[1, m]
        flat[pos[0, m]] = base[ji] + (-jitter_ms * lj[m]) * slow[ji]


@inlined
def update_view(
    b: int,
    online: NDArray[np.bool_],
    nodes: NDArray[np.bool_],
    holders: NDArray[np.bool_],
    some: bool,
    altered: bool,
    block: bool,
    top: NDArray[np.int64],
    height: NDArray[np.int64],
    forked: NDArray[np.bool_],
) -> tuple[float, int, int]:
    """Copy b's node view after a period: ``BatchedChain._update_nodes`` for one copy.

    Delivery (the holders of a committed block take it; of an altered one, fork), then the
    catch-up (online nodes behind the top, not forked, take it if an online honest node
    that is not forked holds it), then the figures. Arrays are indexed by copy here
    (not sliced per copy: a slice costs more than this step).

    Args:
        b: The copy.
        online: Shape (B, n), bool: the online nodes.
        nodes: Shape (B, 3, n), bool: ``PackedPlane.nodes`` of every copy.
        holders: Shape (n,), bool: nodes holding the period's decided block (read only if
            ``some``).
        some: A block was decided (a transaction verified).
        altered: The decided block is the colluders' altered one.
        block: A block was appended (a transaction committed).
        top: Shape (B,): committed blocks, updated in place.
        height: Shape (n, B): blocks each node holds, updated in place.
        forked: Shape (n, B), bool: the node's head is off the chain, updated in place.

    Returns:
        ``(honest_heads_agree, lagging_nodes, forked_nodes)``.
    """
    n = online.shape[1]
    top[b] += block
    head = top[b]
    serving = False
    for i in range(n):
        held = some and holders[i]
        take = held and block and not altered
        fork = held and altered and not block
        if take:
            height[i, b] = head
        elif fork:
            height[i, b] = head + 1
        forked[i, b] = (forked[i, b] and not take) or fork
        honest = not nodes[b, MALICIOUS, i]
        serving |= online[b, i] and honest and not forked[i, b] and height[i, b] == head
    agree, lagging, n_forked = 1.0, 0, 0
    for i in range(n):
        if serving and online[b, i] and not forked[i, b] and height[i, b] < head:
            height[i, b] = head
        honest = not nodes[b, MALICIOUS, i]
        if honest and forked[i, b]:
            agree = 0.0
        lagging += honest and height[i, b] < head
        n_forked += forked[i, b]
    return agree, lagging, n_forked


@kernel
def sbet_open(
    period: int,
    src: Source,
    p_on: NDArray[np.float64],
    first: bool,
    state: NDArray[np.bool_],
    down: NDArray[np.bool_],
    valid: NDArray[np.bool_],
    sellers: NDArray[np.int64],
    fc: NDArray[np.float64],
    ic: NDArray[np.int64],
    reason: NDArray[np.int8],
    online: NDArray[np.bool_],
    admitted: NDArray[np.int64],
    counts: NDArray[np.int64],
    links: NDArray[np.bool_],
    neg: NDArray[np.float64],
    pos: NDArray[np.int64],
    start: NDArray[np.int64],
) -> int:
    """Step 1 of a period: online nodes, admission, coordinator; the first links and jitters.

    Args:
        period: Market period.
        src: The period's network draws (:data:`Source`).
        p_on: ``(availability, P(up | down before), P(up | up before))``.
        first: The episode's first period (the chain starts from the availability).
        state: Shape (n, B), bool: the online chain, advanced in place
            (``NetworkModel.next_online``: before the DDoS).
        down: Shape (n, B), bool: nodes a DDoS takes offline.
        valid: Shape (B, T), bool: passed the validity checks.
        sellers: Shape (B, T): seller of each trade.
        fc: ``PackedPlane.fc``.
        ic: ``PackedPlane.ic``.
        reason: Shape (B, T), int8: receives ``BLOCK_FULL`` beyond the block.
        online: Shape (B, n), bool: receives the online nodes (the DDoS applied).
        admitted: Shape (2, B, T): receives the admitted trades' columns and their origin
            nodes (the first ``counts[N_ADM, b]`` of row b).
        counts: Shape (N_COUNTS, B): receives ``N_ADM``, ``N_VALID``, ``COORD`` (-1 if
            nothing is admitted or no node is online), ``CREATOR`` -1 and zeros.
        links: Shape (B, P, n, n), bool: receives the links step 2 reads.
        neg: Receives the listed jitter uniforms, negated (at most B (n^2 + 2 n)).
        pos: Shape (2, at least as long as ``neg``): receives their flat indices into
            (P, n, n) and into (n, n).
        start: Shape (B + 1,): receives each copy's run in ``neg``.

    Returns:
        The number of listed uniforms.
    """
    draws, period_k, pcg_start, by_offset, by_period = src
    nb = valid.shape[0]
    n = state.shape[0]
    loss, block_size = fc[LOSS], ic[BLOCK_SIZE]
    m = 0
    for b in range(nb):
        start[b] = m
        at, on, lk = _period(pcg_start, by_period, period_k, b), online[b], links[b]
        for i in range(n):  # NetworkModel.next_online
            if first:
                up = _u(draws, by_offset, period_k, b, at, i) < p_on[0]
            else:
                up = _u(draws, by_offset, period_k, b, at, i) < (
                    p_on[2] if state[i, b] else p_on[1]
                )
            state[i, b] = up
            on[i] = up and not down[i, b]
        n_adm, n_valid = kd.admit_into(
            valid[b], sellers[b], n, block_size, reason[b], admitted[0, b], admitted[1, b]
        )
        for r in range(N_COUNTS):
            counts[r, b] = 0
        counts[N_ADM, b] = n_adm
        counts[N_VALID, b] = n_valid
        counts[COORD, b] = -1
        counts[CREATOR, b] = -1
        if n_adm == 0:
            continue
        for j in range(n):
            for i in range(n):
                if _link(draws, by_offset, period_k, b, at, on, loss, lk, DATA, j, i):
                    m = _emit(draws, by_offset, period_k, b, at, DATA, j, i, n, neg, pos, m)
        p, _ = coordinator(on, period)
        counts[COORD, b] = p
        if p < 0:
            continue
        for i in range(n):
            if _link(draws, by_offset, period_k, b, at, on, loss, lk, ELECT, p, i):
                m = _emit(draws, by_offset, period_k, b, at, ELECT, p, i, n, neg, pos, m)
            if _link(draws, by_offset, period_k, b, at, on, loss, lk, YES, i, p):
                m = _emit(draws, by_offset, period_k, b, at, YES, i, p, n, neg, pos, m)
            _link(
                draws, by_offset, period_k, b, at, on, loss, lk, ANNOUNCE, p, i
            )  # its jitter only if a creator is found
    start[nb] = m
    return m


@kernel
def sbet_elect(
    period: int,
    src: Source,
    online: NDArray[np.bool_],
    admitted: NDArray[np.int64],
    keys: NDArray[np.float64],
    key_start: NDArray[np.int64],
    constants: tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]],
    fc: NDArray[np.float64],
    ic: NDArray[np.int64],
    listed: tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]],
    counts: NDArray[np.int64],
    links: NDArray[np.bool_],
    copies: NDArray[np.int8],
    elapsed: NDArray[np.float64],
    neg: NDArray[np.float64],
    pos: NDArray[np.int64],
    start: NDArray[np.int64],
) -> int:
    """Step 2 of a period: the broadcast and steps 1-3 (the creator); the rest's links, jitters.

    Args:
        period: Market period.
        src: As :func:`sbet_open`.
        online: Shape (B, n), bool, from :func:`sbet_open`.
        admitted: Shape (2, B, T), from :func:`sbet_open`.
        keys: Shape (B, W): the interruption uniforms (``DataPlane.interruption_uniforms``)
            of copy b from ``key_start[b]`` on, n per admitted trade; W = 0 without
            interruptions.
        key_start: Shape (B,).
        constants: Every copy's ``(geo (B, 3, n, n), nodes (B, 3, n), storage (B, n))``, as
            ``PackedPlane.geo``, ``PackedPlane.nodes`` and ``SBETFixed.storage``.
        fc: ``PackedPlane.fc``.
        ic: ``PackedPlane.ic``.
        listed: ``(lj, pos, start)`` of :func:`sbet_open`'s list: ``lj`` its ``np.log1p``.
        counts: Shape (N_COUNTS, B): receives ``CREATOR`` (-1: none), ``CHANGES`` and
            ``N_MISSING_COPIES``.
        links: Shape (B, P, n, n), bool: receives the links step 3 reads.
        copies: Shape (B, T, n), int8: receives the copies after the broadcast.
        elapsed: Shape (B,): receives the time to the creator (ms; without a coordinator,
            the broadcast's duration).
        neg: Receives the listed jitter uniforms of steps 4-8, negated (at most B P n^2).
        pos: Receives their flat indices, as :func:`sbet_open`'s.
        start: Shape (B + 1,): receives each copy's run.

    Returns:
        The number of listed uniforms.
    """
    geo, nodes, storage = constants
    lj, pos_in, start_in = listed
    draws, period_k, pcg_start, by_offset, by_period = src
    nb, n = online.shape
    w = work(n, copies.shape[1])
    delay = np.empty((N_PHASES, n, n))
    cut_keys = np.empty((copies.shape[1], n))
    pkey = np.empty((0, 0))  # the argmax election
    q, t_max, loss, n_missing = ic[QUORUM], fc[T_MAX], fc[LOSS], ic[N_MISSING]
    m = 0
    for b in range(nb):
        start[b] = m
        n_adm = counts[N_ADM, b]
        if n_adm == 0:
            continue
        at, on, lk = _period(pcg_start, by_period, period_k, b), online[b], links[b]
        _fill_delays(lj, pos_in, start_in[b], start_in[b + 1], geo[b], fc[JITTER], delay)
        org = admitted[1, b][:n_adm]
        cut = w.cut[:0]
        if n_missing > 0:
            cut = w.cut[:n_adm]
            key = key_start[b]
            for t in range(n_adm):  # n uniforms per admitted trade, in order
                for i in range(n):
                    cut_keys[t, i] = keys[b, key]
                    key += 1
            kd.interruptions_into(cut_keys[:n_adm], org, n_missing, cut)
        held = copies[b][:n_adm]
        data_ms = kd.broadcast_into(
            lk, delay, org, cut, nodes[b], geo[b], fc, w.per_origin, w.in_time, held
        )
        counts[N_MISSING_COPIES, b] = kd.count_missing(held, on)
        p, c, changes, election = choose_creator(
            period, lk, delay, on, storage[b], pkey, nodes[b], q, t_max, w
        )
        counts[CREATOR, b] = c
        counts[CHANGES, b] = changes
        if p < 0:
            elapsed[b] = data_ms
            continue
        elapsed[b] = data_ms + changes * t_max + election  # as kernels_sbet.run_block
        if c < 0:
            continue
        for i in range(n):
            if lk[ANNOUNCE, p, i]:
                m = _emit(draws, by_offset, period_k, b, at, ANNOUNCE, p, i, n, neg, pos, m)
            if _link(draws, by_offset, period_k, b, at, on, loss, lk, LISTS, i, c):
                m = _emit(draws, by_offset, period_k, b, at, LISTS, i, c, n, neg, pos, m)
            if _link(draws, by_offset, period_k, b, at, on, loss, lk, COMPLETE, c, i):
                m = _emit(draws, by_offset, period_k, b, at, COMPLETE, c, i, n, neg, pos, m)
            if _link(draws, by_offset, period_k, b, at, on, loss, lk, INTEGRITY, i, c):
                m = _emit(draws, by_offset, period_k, b, at, INTEGRITY, i, c, n, neg, pos, m)
            if _link(draws, by_offset, period_k, b, at, on, loss, lk, BLOCK, c, i):
                m = _emit(draws, by_offset, period_k, b, at, BLOCK, c, i, n, neg, pos, m)
            if _link(draws, by_offset, period_k, b, at, on, loss, lk, COMMIT, i, c):
                m = _emit(draws, by_offset, period_k, b, at, COMMIT, i, c, n, neg, pos, m)
            for j in range(n):
                if _link(draws, by_offset, period_k, b, at, on, loss, lk, HASH, j, i):
                    m = _emit(draws, by_offset, period_k, b, at, HASH, j, i, n, neg, pos, m)
        for i in range(n):  # nodes that got the complete list and miss a copy may ask
            asks = False
            if lk[COMPLETE, c, i] or i == c:
                for t in range(n_adm):
                    asks |= held[t, i] == MISSING
            if not asks:
                continue
            for j in range(n):  # recover reads these for the asking nodes only
                ask = _link(draws, by_offset, period_k, b, at, on, loss, lk, REQUEST, i, j)
                if _link(draws, by_offset, period_k, b, at, on, loss, lk, REPLY, j, i) and ask:
                    m = _emit(draws, by_offset, period_k, b, at, REQUEST, i, j, n, neg, pos, m)
                    m = _emit(draws, by_offset, period_k, b, at, REPLY, j, i, n, neg, pos, m)
    start[nb] = m
    return m


@kernel
def sbet_close(
    online: NDArray[np.bool_],
    admitted: NDArray[np.int64],
    counts: NDArray[np.int64],
    links: NDArray[np.bool_],
    copies: NDArray[np.int8],
    elapsed: NDArray[np.float64],
    constants: tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]],
    fc: NDArray[np.float64],
    ic: NDArray[np.int64],
    listed: tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]],
    n_live: NDArray[np.int64],
    safety: float,
    node_view: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]],
    committed: NDArray[np.bool_],
    reason: NDArray[np.int8],
    latency: NDArray[np.float64],
    figures: NDArray[np.float64],
) -> None:
    """Step 3 of a period: steps 4-8, verdicts, figures and the node view of every copy.

    Args:
        online: Shape (B, n), bool, from :func:`sbet_open`.
        admitted: Shape (2, B, T), from :func:`sbet_open`.
        counts: Shape (N_COUNTS, B), from :func:`sbet_elect`.
        links: Shape (B, P, n, n), from :func:`sbet_open` and :func:`sbet_elect`.
        copies: Shape (B, T, n), from :func:`sbet_elect`.
        elapsed: Shape (B,), from :func:`sbet_elect`.
        constants: As :func:`sbet_elect`.
        fc: ``PackedPlane.fc``.
        ic: ``PackedPlane.ic``.
        listed: ``(lj, pos, start)`` of :func:`sbet_elect`'s list, ``lj`` its ``np.log1p``.
        n_live: Shape (B,): the period's trades.
        safety: The ``safety_violation`` figure (1.0: malicious nodes >= n / 3).
        node_view: The batched chain's node view, updated in place: ``(top (B,) committed
            blocks, height (n, B) blocks each node holds, forked (n, B) bool)``.
        committed: Shape (B, T), bool, False: receives the committed trades.
        reason: Shape (B, T), int8: receives the admitted trades' reasons.
        latency: Shape (B,): receives the latency (ms).
        figures: Shape (N_FIGURES, B): receives :data:`FIGURES`, then the share of nodes
            online (row ``N_FIGURES``).
    """
    geo, nodes, _ = constants
    lj, pos, start = listed
    top, height, forked = node_view
    nb, n = online.shape
    w = work(n, copies.shape[1])
    delay = np.empty((N_PHASES, n, n))
    status, holders = w.status, w.holders
    q = ic[QUORUM]
    for b in range(nb):
        n_adm = counts[N_ADM, b]
        p, c = counts[COORD, b], counts[CREATOR, b]
        n_ok, n_tampered, recovered, creator = 0, 0, 0, -1
        took = 0.0
        some, altered = False, False
        if n_adm > 0:
            took = elapsed[b]
            if p < 0 or c < 0:
                for t in range(n_adm):
                    status[t] = PRIMARY_OFFLINE
            else:
                _fill_delays(lj, pos, start[b], start[b + 1], geo[b], fc[JITTER], delay)
                some, lists, exchange, voting, recovered = finish_block(
                    links[b], delay, p, c, copies[b][:n_adm], nodes[b], geo[b], fc, q, w
                )
                took = took + lists + exchange + voting  # run_block's sum, in order
                creator = c
                altered = some and nodes[b, MALICIOUS, c]
            n_ok, n_tampered = kd.verdicts(
                admitted[0, b][:n_adm], status[:n_adm], committed[b], reason[b]
            )
        latency[b] = took
        n_valid, live = counts[N_VALID, b], n_live[b]
        figures[0, b] = safety
        figures[1, b] = n_ok / live if live > 0 else 1.0
        figures[2, b] = n_ok / n_valid if n_valid > 0 else 1.0
        figures[3, b] = recovered
        figures[4, b] = counts[N_MISSING_COPIES, b]
        figures[5, b] = n_tampered
        figures[6, b] = creator
        agree, lagging, n_forked = update_view(
            b, online, nodes, holders, some, altered, n_ok > 0, top, height, forked
        )
        figures[7, b] = agree
        figures[8, b] = lagging
        figures[9, b] = n_forked
        n_online = 0
        for i in range(n):
            n_online += online[b, i]
        figures[N_FIGURES, b] = n_online / n  # as numpy's count / n
