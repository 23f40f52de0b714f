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

from mgenv._jit import kernel
from mgenv.chain import kernels_dataplane as kd
from mgenv.chain.dataplane import MISSING
from mgenv.chain.kernels_sbet_steps import (
    candidate_votes,
    coordinator,
    elect,
    integrity_ms,
    pick_creator,
    recover,
    serial_lists,
    vote,
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
    t_max = fc[T_MAX]
    n_tx = origin.size
    n = online.size
    reason = np.empty(n_tx, np.int8)
    copies, data_ms = kd.broadcast(link, delay, origin, cut, nodes, geo, fc)
    missing = kd.count_missing(copies, online)
    p, skips = coordinator(online, period)
    if p < 0:
        reason[:] = PRIMARY_OFFLINE
        return reason, False, data_ms, 0, -1, 0, missing
    order, n_yes, election = elect(link, delay, p, nodes[ABLE], storage, pkey, q, t_max)
    announced = link[ANNOUNCE, p].copy()
    announced[p] = True
    n_bad = 0  # malicious voters online: with q of them an altered block passes
    for i in range(n):
        if nodes[MALICIOUS, i] and online[i] and nodes[VOTERS, i]:
            n_bad += 1
    c, passed = pick_creator(order, n_yes, announced, nodes[MALICIOUS], n_bad >= q)
    elapsed = data_ms + (skips + passed) * t_max + election
    if c < 0:
        reason[:] = PRIMARY_OFFLINE
        return reason, False, elapsed, skips + passed, -1, 0, missing
    complete, lists = serial_lists(link, delay, p, c, announced, copies, q, t_max)
    got = link[COMPLETE, c].copy()
    got[c] = True
    need = np.zeros((n_tx, n), np.bool_)
    n_need = 0
    for b in range(n_tx):
        for i in range(n):
            if copies[b, i] == MISSING and got[i] and complete[b]:
                need[b, i] = True
                n_need += 1
    recovered = 0
    ready = np.zeros(n)
    if n_need:
        copies, recovered, ready = recover(link, delay, copies, need, nodes, geo[WAIT], fc, q)
    exchange = integrity_ms(link, delay, c, got, ready, q, t_max)
    in_block, yes, n_block = candidate_votes(link, nodes, c, copies, complete)
    commits, voting = vote(link, delay, c, yes, n_block, fc, q)
    altered = nodes[MALICIOUS, c]
    any_verified = False
    holders[:] = True
    for b in range(n_tx):
        if not in_block[b]:
            reason[b] = NOT_IN_BLOCK
        elif commits[b] < q:
            reason[b] = NO_QUORUM
        else:
            reason[b] = TAMPERED if altered else COMMITTED
            any_verified = True
            for i in range(n):  # holders: "Yes" on every verified transaction, and e_c
                holders[i] &= yes[b, i]
    holders[c] = True
    latency = elapsed + lists + exchange + voting  # run_block's sum, left to right
    return reason, any_verified, latency, skips + passed, c, recovered, missing


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
    status, has_holders, latency, changes, creator, recovered, missing = block(
        period, link, delay, origin, cut, online, storage, pkey, geo, nodes, fc, ic[QUORUM],
        holders,
    )  # fmt: skip
    n_ok, n_tampered = kd.verdicts(rows, status, committed, reason)
    n_online = 0
    for i in range(n):
        n_online += online[i]
    share = n_online / n  # as numpy's float(count) / n
    return (
        has_holders, latency, changes, creator, share, n_ok, n_valid, recovered, missing,
        n_tampered,
    )  # fmt: skip
