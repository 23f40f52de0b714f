"""Compiled kernels of SPFT (PBFT over SBET's data plane, :mod:`mgenv.chain.spft`).

:func:`spft_period` does what ``SPFTProtocol.decide_transactions`` does after its random
draws: the data plane's admission and broadcast, the PBFT round of ``SPFTProtocol.run_block``
and the verdicts. The PBFT steps mirror :func:`mgenv.chain.pbft.select_primary`,
:func:`~mgenv.chain.pbft.count_votes` and :func:`~mgenv.chain.pbft.quorum_latency_ms` (their
numpy code is the reference), bit-identical (see :mod:`mgenv._jit`). Phases: 0 the data
broadcast, then 1 pre-prepare, 2 prepare, 3 commit; f = (n - 1) // 3.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mgenv._jit import kernel
from mgenv.chain import kernels_dataplane as kd
from mgenv.chain.dataplane import MISSING
from mgenv.chain.packed import (
    BLOCK_SIZE,
    HEADER,
    JITTER,
    LOSS,
    MALICIOUS,
    N_MISSING,
    RECORD,
    VOTERS,
)
from mgenv.chain.types import COMMITTED, NO_QUORUM, PRIMARY_OFFLINE, TAMPERED
from mgenv.chain.types import MISSING as NOT_IN_BLOCK

N_PHASES = 4  # spft.N_PHASES (not imported: spft imports this module)
_INF = np.inf


@kernel
def select_primary(eligible: NDArray[np.bool_], view: int, quorum: int) -> tuple[int, int]:
    """``pbft.select_primary``: the leader from ``view % n`` on and the view changes.

    -1 if the view's primary is not eligible and fewer than ``quorum`` nodes are.
    """
    n = eligible.size
    primary = view % n
    if eligible[primary]:
        return primary, 0
    count = 0
    for i in range(n):
        count += eligible[i]
    if count < quorum:
        return -1, 0
    for skipped in range(1, n):
        if eligible[(primary + skipped) % n]:
            return (primary + skipped) % n, skipped
    return (primary + 1) % n, 1  # numpy's argmax of no True: the first in the order


@kernel
def count_votes(
    dl: NDArray[np.bool_],
    online: NDArray[np.bool_],
    primary: int,
    voters: NDArray[np.bool_],
    f: int,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    """``pbft.count_votes`` on phases 1-3 of ``dl`` (delivered, receiver online only).

    Args:
        dl: Shape (4, n, n), bool: the draw's ``delivered``.
        online: Shape (n,), bool.
        primary: The (online) primary.
        voters: Shape (n,), bool: nodes that vote.
        f: Tolerated faulty nodes; thresholds are 2f votes from other nodes.

    Returns:
        ``(has_pre_prepare, prepare_senders, prepared, committed)``, each (n,) bool; commit
        senders are the prepared voters.
    """
    n = online.size
    has_pp = np.empty(n, np.bool_)
    senders = np.empty(n, np.bool_)
    for i in range(n):
        has_pp[i] = (dl[1, primary, i] and online[i]) or i == primary
        senders[i] = has_pp[i] and voters[i]
    prepared = np.empty(n, np.bool_)
    for i in range(n):
        votes = 0
        for j in range(n):
            if senders[j] and dl[2, j, i] and online[i]:
                votes += 1
        prepared[i] = votes >= 2 * f and has_pp[i]
    committed = np.empty(n, np.bool_)
    for i in range(n):
        votes = 0
        for j in range(n):
            if prepared[j] and voters[j] and dl[3, j, i] and online[i]:
                votes += 1
        committed[i] = votes >= 2 * f and prepared[i] and voters[i]
    return has_pp, senders, prepared, committed


@kernel
def phase_ms(
    dl: NDArray[np.bool_],
    online: NDArray[np.bool_],
    delay: NDArray[np.float64],
    size_ms: float,
    primary: int,
    senders: NDArray[np.bool_],
    done: NDArray[np.bool_],
    phase: int,
    f: int,
) -> float:
    """One term of ``pbft.quorum_latency_ms``: when the (2f + 1)-th node completes a phase.

    Phase 1 (pre-prepare, sent by the primary, with the block's transmission time
    ``size_ms``) completes at a node on its first arrival, 2 and 3 on the 2f-th; a node
    that does not complete the phase (``done`` False) never does.
    """
    n = online.size
    kth = 1 if phase == 1 else 2 * f
    if kth < 1:
        kth = n  # numpy's index -1: the last
    arrival = np.empty(n)
    completion = np.empty(n)
    for i in range(n):
        for j in range(n):
            if not (senders[j] and dl[phase, j, i] and online[i]):
                arrival[j] = _INF
            elif phase == 1:  # numpy adds the block's transmission to the phase's delays
                arrival[j] = delay[phase, j, i] + size_ms
            else:
                arrival[j] = delay[phase, j, i]
        at = 0.0 if phase == 1 and i == primary else kd.kth_smallest(arrival, kth)
        completion[i] = at if done[i] else _INF
    return kd.kth_smallest(completion, 2 * f + 1)


@kernel
def spft_period(
    view: int,
    u: NDArray[np.float64],
    lj: NDArray[np.float64],
    online: NDArray[np.bool_],
    valid: NDArray[np.bool_],
    sellers: NDArray[np.int64],
    keys: NDArray[np.float64],
    geo: NDArray[np.float64],
    nodes: NDArray[np.bool_],
    fc: NDArray[np.float64],
    ic: NDArray[np.int64],
    timeout_ms: float,
    committed: NDArray[np.bool_],
    reason: NDArray[np.int8],
    holders: NDArray[np.bool_],
    phases: NDArray[np.float64],
) -> tuple[bool, bool, float, int, int, float, int, int, int, int]:
    """``SPFTProtocol.decide_transactions`` after its random draws (one period).

    Args:
        view: The current PBFT view (the primary is ``view % n``).
        u: Shape (D,), the period's network draw (layout of :mod:`mgenv.chain.network`).
        lj: Shape (P n^2,), ``np.log1p(-jitter uniforms)``.
        online: Shape (n,), bool: ``NetworkModel.next_online`` of the draw's first n.
        valid: Shape (T,), bool: passed the signature and validity checks; some are.
        sellers: Shape (T,): seller of each transaction.
        keys: Shape (B, n), the interruption uniforms, or (0, n) when none are drawn.
        geo: ``PackedPlane.geo``.
        nodes: ``PackedPlane.nodes``.
        fc: ``PackedPlane.fc``.
        ic: ``PackedPlane.ic``.
        timeout_ms: Time lost per view change, and by a round that fails (ms).
        committed: Shape (T,), bool, False: receives the committed transactions.
        reason: Shape (T,), int8, zeros: receives the reason codes.
        holders: Shape (n,), bool: receives the nodes that committed locally, if set.
        phases: Shape (3,): receives the three phase times of a committed round (ms).

    Returns:
        ``(whether holders is set, whether the round committed (the latency is then
        latency + sum(phases), summed by Python as numpy's path does), latency ms, view
        changes, primary (-1: none), share of nodes online, committed, valid, missing
        copies, tampered)``.
    """
    n = online.size
    f = (n - 1) // 3
    rows, origin, n_valid = kd.admit(valid, sellers, n, ic[BLOCK_SIZE], reason)
    dl = kd.delivered(u, n, fc[LOSS], N_PHASES)
    link = kd.links(u, online, fc[LOSS], N_PHASES)  # phase 0: the broadcast's links
    delay = kd.delays(lj, geo, fc[JITTER], N_PHASES)
    cut = np.zeros((0, n), np.bool_)
    if keys.shape[0] > 0:
        cut = kd.interruptions(keys, origin, ic[N_MISSING])
    copies, data_ms = kd.broadcast(link, delay, origin, cut, nodes, geo, fc)
    missing = kd.count_missing(copies, online)
    n_tx = origin.size
    status = np.empty(n_tx, np.int8)
    n_bad = 0  # malicious voters online: with 2f + 1 of them the altered block passes
    for i in range(n):
        if nodes[MALICIOUS, i] and online[i] and nodes[VOTERS, i]:
            n_bad += 1
    eligible = np.empty(n, np.bool_)
    for i in range(n):
        eligible[i] = online[i] and (not nodes[MALICIOUS, i] or n_bad >= 2 * f + 1)
    primary, changes = select_primary(eligible, view, 2 * f + 1)
    has_holders = False
    round_committed = False
    latency = data_ms + timeout_ms
    if primary >= 0:
        altered = nodes[MALICIOUS, primary]
        n_block = 0
        for b in range(n_tx):
            status[b] = NOT_IN_BLOCK
            if copies[b, primary] != MISSING:
                status[b] = NO_QUORUM
                n_block += 1
        voters = np.empty(n, np.bool_)
        for i in range(n):
            voters[i] = nodes[VOTERS, i] and (nodes[MALICIOUS, i] == altered)
        has_pp, senders, prepared, local = count_votes(dl, online, primary, voters, f)
        n_local = 0
        for i in range(n):
            n_local += local[i]
        waited = data_ms + changes * timeout_ms
        latency = waited + timeout_ms
        if n_local >= 2 * f + 1:
            round_committed = True
            latency = waited
            size_ms = fc[HEADER] + fc[RECORD] * n_block
            onehot = np.zeros(n, np.bool_)
            onehot[primary] = True
            commit_senders = prepared & voters
            phases[0] = phase_ms(dl, online, delay, size_ms, primary, onehot, has_pp, 1, f)
            phases[1] = phase_ms(dl, online, delay, size_ms, primary, senders, prepared, 2, f)
            phases[2] = phase_ms(dl, online, delay, size_ms, primary, commit_senders, local, 3, f)
            for b in range(n_tx):
                if status[b] == NO_QUORUM:
                    status[b] = TAMPERED if altered else COMMITTED
            if n_block > 0:  # the nodes that committed locally hold the block
                has_holders = True
                holders[:] = local
    else:
        status[:] = PRIMARY_OFFLINE
    n_ok, n_tampered = kd.verdicts(rows, status, committed, reason)
    n_online = 0
    for i in range(n):
        n_online += online[i]
    share = n_online / n  # as numpy's float(count) / n
    return (
        has_holders, round_committed, latency, changes, primary, share, n_ok, n_valid, missing,
        n_tampered,
    )  # fmt: skip
