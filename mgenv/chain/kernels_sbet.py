"""Compiled kernels of an SBET block (seed 003, Alg. 1): one call decides a period.

:func:`sbet_period` does what ``SBETProtocol.decide_transactions`` does after the random
draws: the data plane's admission, the block of :func:`mgenv.chain.sbet.run_block`
(:func:`block`, steps 1-8 of :mod:`mgenv.chain.sbet`, from the step kernels of
:mod:`mgenv.chain.kernels_sbet_steps`) and the verdicts; bit-identical to the numpy code (see
:mod:`mgenv._jit`). The random draws and the logarithms stay in numpy
(``SBETProtocol._decide_compiled``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mgenv._jit import inlined, kernel
from mgenv.chain import kernels_dataplane as kd
from mgenv.chain.dataplane import MISSING
from mgenv.chain.kernels_sbet_steps import (
    Work,
    candidate_votes,
    coordinator,
    elect,
    integrity_ms,
    pick_creator,
    recover,
    serial_lists,
    vote,
    work,
)
from mgenv.chain.packed import (
    ABLE,
    BLOCK_SIZE,
    JITTER,
    LOSS,
    MALICIOUS,
    N_MISSING,
    QUORUM,
    T_MAX,
    VOTERS,
    WAIT,
)
from mgenv.chain.sbet_steps import ANNOUNCE, COMPLETE, N_PHASES
from mgenv.chain.types import COMMITTED, NO_QUORUM, PRIMARY_OFFLINE, TAMPERED
from mgenv.chain.types import MISSING as NOT_IN_BLOCK


@inlined
def choose_creator(
    period: int,
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    online: NDArray[np.bool_],
    storage: NDArray[np.float64],
    pkey: NDArray[np.float64],
    nodes: NDArray[np.bool_],
    q: int,
    t_max: float,
    w: Work,
) -> tuple[int, int, int, float]:
    """Steps 1-3 of ``sbet.run_block``: the coordinator, the election and the creator.

    Args:
        period: Market period (the coordinator's rotation).
        link: Shape (P, n, n), bool: delivered and both ends online; the ELECT, YES and
            ANNOUNCE phases are read.
        delay: Shape (P, n, n), ms; only the ELECT row and YES column of the coordinator
            are read (and only where the link is up).
        online: Shape (n,), bool.
        storage: Shape (n,), s_i of eq. (7).
        pkey: See :func:`~mgenv.chain.kernels_sbet_steps.elect`.
        nodes: ``PackedPlane.nodes``.
        q: The quorum.
        t_max: The timer (ms).
        w: Scratch.

    Returns:
        ``(coordinator e_p (-1: no node online), creator e_c (-1: none acceptable), view
        changes (skipped coordinators and candidates), the election's closing time ms)``;
        the last two are 0 without a coordinator.
    """
    n = online.size
    p, skips = coordinator(online, period)
    if p < 0:
        return -1, -1, 0, 0.0
    n_yes, election = elect(link, delay, p, nodes[ABLE], storage, pkey, q, t_max, w)
    announced = w.announced
    n_bad = 0  # malicious voters online: with q of them an altered block passes
    for i in range(n):
        announced[i] = link[ANNOUNCE, p, i] or i == p
        if nodes[MALICIOUS, i] and online[i] and nodes[VOTERS, i]:
            n_bad += 1
    c, passed = pick_creator(w.order, n_yes, announced, nodes[MALICIOUS], n_bad >= q)
    return p, c, skips + passed, election


@inlined
def finish_block(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    p: int,
    c: int,
    copies: NDArray[np.int8],
    nodes: NDArray[np.bool_],
    geo: NDArray[np.float64],
    fc: NDArray[np.float64],
    q: int,
    w: Work,
) -> tuple[bool, float, float, float, int]:
    """Steps 4-8 of ``sbet.run_block`` once the creator e_c is chosen: lists to verdicts.

    Args:
        link: Shape (P, n, n), bool: delivered and both ends online.
        delay: Shape (P, n, n), ms; read only where the link is up (the ANNOUNCE row of
            e_p; the LISTS, INTEGRITY and COMMIT columns and the COMPLETE and BLOCK rows of
            e_c; HASH; REQUEST rows and REPLY columns of the nodes that request a copy).
        p: The coordinator e_p.
        c: The creator e_c (>= 0).
        copies: Shape (B, n) int8 after the broadcast (not modified).
        nodes: ``PackedPlane.nodes``.
        geo: ``PackedPlane.geo``.
        fc: ``PackedPlane.fc``.
        q: The quorum.
        w: Scratch; ``w.status[:B]`` receives each transaction's reason code and
            ``w.holders`` the nodes holding the block, when it is set.

    Returns:
        ``(whether holders is set, lists ms, exchange ms, voting ms, recovered copies)``.
    """
    t_max = fc[T_MAX]
    n_tx, n = copies.shape
    announced, got, ready, need = w.announced, w.got, w.ready, w.need
    for i in range(n):
        announced[i] = link[ANNOUNCE, p, i] or i == p
    lists = serial_lists(link, delay, p, c, announced, copies, q, t_max, w)
    complete = w.complete[:n_tx]
    n_need = 0
    for i in range(n):
        got[i] = link[COMPLETE, c, i] or i == c
    for b in range(n_tx):
        for i in range(n):
            need[b, i] = copies[b, i] == MISSING and got[i] and complete[b]
            n_need += need[b, i]
    recovered = 0
    held = copies
    if n_need:
        recovered = recover(link, delay, copies, need[:n_tx], nodes, geo[WAIT], fc, q, w)
        held = w.exchanged[:n_tx]
    else:
        for i in range(n):
            ready[i] = 0.0
    exchange = integrity_ms(link, delay, c, got, ready, q, t_max, w)
    n_block = candidate_votes(link, nodes, c, held, complete, w)
    voting = vote(link, delay, c, w.yes[:n_tx], n_block, fc, q, w)
    in_block, commits, yes, status, holders = w.in_block, w.commits, w.yes, w.status, w.holders
    altered = nodes[MALICIOUS, c]
    any_verified = False
    for i in range(n):
        holders[i] = True
    for b in range(n_tx):
        if not in_block[b]:
            status[b] = NOT_IN_BLOCK
        elif commits[b] < q:
            status[b] = NO_QUORUM
        else:
            status[b] = TAMPERED if altered else COMMITTED
            any_verified = True
            for i in range(n):  # holders: "Yes" on every verified transaction, and e_c
                holders[i] &= yes[b, i]
    holders[c] = True
    return any_verified, lists, exchange, voting, recovered


@inlined
def run_block(
    period: int,
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    origin: NDArray[np.int64],
    cut: NDArray[np.bool_],
    online: NDArray[np.bool_],
    storage: NDArray[np.float64],
    pkey: NDArray[np.float64],
    geo: NDArray[np.float64],
    nodes: NDArray[np.bool_],
    fc: NDArray[np.float64],
    q: int,
    w: Work,
) -> tuple[bool, float, int, int, int, int]:
    """:func:`block` in ``w``: ``w.status[:B]`` and ``w.holders`` receive its arrays.

    Returns:
        ``(whether holders is set, latency ms, view changes, creator (-1: none), recovered
        copies, missing copies)``.
    """
    t_max = fc[T_MAX]
    n_tx = origin.size
    status = w.status
    copies = w.copies[:n_tx]
    data_ms = kd.broadcast_into(
        link, delay, origin, cut, nodes, geo, fc, w.per_origin, w.in_time, copies
    )
    missing = kd.count_missing(copies, online)
    p, c, changes, election = choose_creator(
        period, link, delay, online, storage, pkey, nodes, q, t_max, w
    )
    if p < 0:
        for b in range(n_tx):
            status[b] = PRIMARY_OFFLINE
        return False, data_ms, 0, -1, 0, missing
    elapsed = data_ms + changes * t_max + election
    if c < 0:
        for b in range(n_tx):
            status[b] = PRIMARY_OFFLINE
        return False, elapsed, changes, -1, 0, missing
    any_verified, lists, exchange, voting, recovered = finish_block(
        link, delay, p, c, copies, nodes, geo, fc, q, w
    )
    latency = elapsed + lists + exchange + voting  # run_block's sum, left to right
    return any_verified, latency, changes, c, recovered, missing


@kernel
def block(
    period: int,
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    origin: NDArray[np.int64],
    cut: NDArray[np.bool_],
    online: NDArray[np.bool_],
    storage: NDArray[np.float64],
    pkey: NDArray[np.float64],
    geo: NDArray[np.float64],
    nodes: NDArray[np.bool_],
    fc: NDArray[np.float64],
    q: int,
    holders: NDArray[np.bool_],
) -> tuple[NDArray[np.int8], bool, float, int, int, int, int]:
    """``sbet.run_block``: one SBET block (steps 1-8 of :mod:`mgenv.chain.sbet`).

    The broadcast, then :func:`choose_creator` (steps 1-3) and :func:`finish_block` (steps
    4-8); the batched chain calls the two parts separately (its jitters between them).

    Args:
        period: Market period (the coordinator's rotation).
        link: Shape (P, n, n), bool: delivered and both ends online.
        delay: Shape (P, n, n), ms.
        origin: Shape (B,), origin node of each admitted transaction.
        cut: Shape (B, n), bool interruptions, or (0, n) for none.
        online: Shape (n,), bool.
        storage: Shape (n,), s_i of eq. (7).
        pkey: See :func:`~mgenv.chain.kernels_sbet_steps.elect`.
        geo: ``PackedPlane.geo``.
        nodes: ``PackedPlane.nodes``.
        fc: ``PackedPlane.fc``.
        q: The quorum.
        holders: Shape (n,), bool: receives the nodes holding the block, when it is set.

    Returns:
        ``(reason (B,), whether holders is set (None in numpy otherwise), latency ms, view
        changes, creator (-1: none), recovered copies, missing copies)``.
    """
    n = online.size
    w = work(n, origin.size)
    has_holders, latency, changes, creator, recovered, missing = run_block(
        period, link, delay, origin, cut, online, storage, pkey, geo, nodes, fc, q, w
    )
    for i in range(n):
        holders[i] = w.holders[i]
    return w.status[: origin.size], has_holders, latency, changes, creator, recovered, missing


@kernel
def sbet_period(
    period: int,
    u: NDArray[np.float64],
    lj: NDArray[np.float64],
    online: NDArray[np.bool_],
    valid: NDArray[np.bool_],
    sellers: NDArray[np.int64],
    keys: NDArray[np.float64],
    pkey: NDArray[np.float64],
    storage: NDArray[np.float64],
    geo: NDArray[np.float64],
    nodes: NDArray[np.bool_],
    fc: NDArray[np.float64],
    ic: NDArray[np.int64],
    committed: NDArray[np.bool_],
    reason: NDArray[np.int8],
    holders: NDArray[np.bool_],
) -> tuple[bool, float, int, int, float, int, int, int, int, int]:
    """``SBETProtocol.decide_transactions`` after its random draws: admission, block, verdicts.

    The output arrays come from the caller (a returned array costs more than an argument).

    Args:
        period: Market period.
        u: Shape (D,), the period's network draw (layout of :mod:`mgenv.chain.network`).
        lj: Shape (P n^2,), ``np.log1p(-jitter uniforms)``.
        online: Shape (n,), bool: ``NetworkModel.next_online`` of the draw's first n.
        valid: Shape (T,), bool: passed the signature and validity checks; some are.
        sellers: Shape (T,): seller of each transaction.
        keys: Shape (B, n), the interruption uniforms, or (0, n) when none are drawn.
        pkey: See :func:`~mgenv.chain.kernels_sbet_steps.elect`.
        storage: Shape (n,), s_i of eq. (7).
        geo: ``PackedPlane.geo``.
        nodes: ``PackedPlane.nodes``.
        fc: ``PackedPlane.fc``.
        ic: ``PackedPlane.ic``.
        committed: Shape (T,), bool, False: receives the committed transactions.
        reason: Shape (T,), int8, zeros: receives the reason codes.
        holders: Shape (n,), bool: receives the nodes holding the block, if set.

    Returns:
        ``(whether holders is set, latency ms, view changes, creator (-1: none), share of
        nodes online, committed, valid, recovered copies, missing copies, tampered)``.
    """
    n = online.size
    rows, origin, n_valid = kd.admit(valid, sellers, n, ic[BLOCK_SIZE], reason)
    link = kd.links(u, online, fc[LOSS], N_PHASES)
    delay = kd.delays(lj, geo, fc[JITTER], N_PHASES)
    cut = np.zeros((0, n), np.bool_)
    if keys.shape[0] > 0:
        cut = kd.interruptions(keys, origin, ic[N_MISSING])
    w = work(n, origin.size)
    has_holders, latency, changes, creator, recovered, missing = run_block(
        period, link, delay, origin, cut, online, storage, pkey, geo, nodes, fc, ic[QUORUM], w
    )
    if has_holders:
        for i in range(n):
            holders[i] = w.holders[i]
    n_ok, n_tampered = kd.verdicts(rows, w.status[: origin.size], committed, reason)
    n_online = 0
    for i in range(n):
        n_online += online[i]
    share = n_online / n  # as numpy's float(count) / n
    return (
        has_holders, latency, changes, creator, share, n_ok, n_valid, recovered, missing,
        n_tampered,
    )  # fmt: skip
