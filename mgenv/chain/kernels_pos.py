"""Compiled kernel of PoS (a stake lottery over SBET's data plane, :mod:`mgenv.chain.pos`).

:func:`pos_period` does what ``PoSProtocol.decide_transactions`` does after its random draws
and its kernel hashes: the data plane's admission and broadcast, the forger and block of
``PoSProtocol.run_block`` and the verdicts, bit-identical to the numpy code (see
:mod:`mgenv._jit`). The hashes (SHAKE-256, SHA-256) and the logarithms stay in Python and
numpy (``PoSProtocol._decide_compiled``). Phases: 0 the data broadcast, 1 the block.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mgenv._jit import kernel
from mgenv.chain import kernels_dataplane as kd
from mgenv.chain.dataplane import MISSING
from mgenv.chain.packed import BLOCK_SIZE, HEADER, JITTER, LOSS, MALICIOUS, N_MISSING, RECORD, T_MAX
from mgenv.chain.types import COMMITTED, PRIMARY_OFFLINE, TAMPERED
from mgenv.chain.types import MISSING as NOT_IN_BLOCK

N_PHASES = 2  # pos.N_PHASES (not imported: pos imports this module)
_BLOCK = 1
_INF = np.inf


@kernel
def forge(
    eligible: NDArray[np.bool_],
    kernel_u: NDArray[np.float64],
    log_u: NDArray[np.float64],
    log_miss: NDArray[np.float64],
) -> tuple[int, float]:
    """The forger (step 2 of :mod:`mgenv.chain.pos`) and its first hitting slot.

    ``slot = floor(log(u) / log1p(-s))``, 0 where s >= 1 (exactly where ``log1p(-s)`` is
    -inf); the forger is ``np.argmin(np.where(eligible, slot + u, inf))``: the first minimum
    (the first NaN, if any).

    Args:
        eligible: Shape (n,), bool: online, and honest unless the malicious hold the bound.
        kernel_u: Shape (n,), the kernel uniforms u_i.
        log_u: Shape (n,), ``np.log(kernel_u)`` (numpy's).
        log_miss: Shape (n,), ``np.log1p(-hit_p)`` (numpy's).
    """
    n = kernel_u.size
    slot = np.empty(n)
    key = np.empty(n)
    for i in range(n):
        slot[i] = 0.0 if log_miss[i] == -_INF else np.floor(log_u[i] / log_miss[i])
        key[i] = slot[i] + kernel_u[i] if eligible[i] else _INF
    forger = 0
    for i in range(1, n):
        if key[forger] != key[forger]:
            break
        if key[i] < key[forger] or key[i] != key[i]:
            forger = i
    return forger, slot[forger]


@kernel
def pos_period(
    u: NDArray[np.float64],
    lj: NDArray[np.float64],
    online: NDArray[np.bool_],
    valid: NDArray[np.bool_],
    sellers: NDArray[np.int64],
    keys: NDArray[np.float64],
    kernel_u: NDArray[np.float64],
    log_u: NDArray[np.float64],
    log_miss: NDArray[np.float64],
    per_block: NDArray[np.float64],
    geo: NDArray[np.float64],
    nodes: NDArray[np.bool_],
    fc: NDArray[np.float64],
    ic: NDArray[np.int64],
    any_stake: bool,
    committed: NDArray[np.bool_],
    reason: NDArray[np.int8],
    holders: NDArray[np.bool_],
    chosen: NDArray[np.bool_],
) -> tuple[bool, float, int, float, int, int, int, int]:
    """``PoSProtocol.decide_transactions`` after its draws and kernel hashes (one period).

    Args:
        u: Shape (D,), the period's network draw (layout of :mod:`mgenv.chain.network`).
        lj: Shape (P n^2,), ``np.log1p(-jitter uniforms)``.
        online: Shape (n,), bool: ``NetworkModel.next_online`` of the draw's first n.
        valid: Shape (T,), bool: passed the signature and validity checks; some are.
        sellers: Shape (T,): seller of each transaction.
        keys: Shape (B, n), the interruption uniforms, or (0, n) when none are drawn.
        kernel_u: Shape (n,), the kernel uniforms u_i (``PoSProtocol.kernels``).
        log_u: Shape (n,), ``np.log(kernel_u)``.
        log_miss: Shape (n,), ``np.log1p(-hit_p)``.
        per_block: Shape (n + 1,): the expected wait for one further block (ms) by the
            number of eligible forgers (``t_max / -expm1(sum of log1p(-s_i))``, numpy's).
        geo: ``PackedPlane.geo``.
        nodes: ``PackedPlane.nodes``.
        fc: ``PackedPlane.fc`` followed by the confirmations (``fc[5]``).
        ic: ``PackedPlane.ic``.
        any_stake: The malicious nodes hold the bound (they are eligible forgers too).
        committed: Shape (T,), bool, False: receives the committed transactions.
        reason: Shape (T,), int8, zeros: receives the reason codes.
        holders: Shape (n,), bool: receives the nodes holding the block, if set.
        chosen: Shape (T,), bool, False: receives the admitted transactions whose status is
            not "missing" (they enter the beacon).

    Returns:
        ``(whether holders is set, latency ms, forger (-1: none), share of nodes online,
        committed, valid, missing copies, tampered)``.
    """
    n = online.size
    t_max = fc[T_MAX]
    rows, origin, n_valid = kd.admit(valid, sellers, n, ic[BLOCK_SIZE], reason)
    link = kd.links(u, online, fc[LOSS], N_PHASES)
    delay = kd.delays(lj, geo, fc[JITTER], N_PHASES)
    cut = np.zeros((0, n), np.bool_)
    if keys.shape[0] > 0:
        cut = kd.interruptions(keys, origin, ic[N_MISSING])
    copies, data_ms = kd.broadcast(link, delay, origin, cut, nodes, geo, fc)
    missing = kd.count_missing(copies, online)
    n_tx = origin.size
    status = np.empty(n_tx, np.int8)
    eligible = np.empty(n, np.bool_)
    n_eligible = 0
    for i in range(n):
        eligible[i] = online[i] and (not nodes[MALICIOUS, i] or any_stake)
        if eligible[i]:
            n_eligible += 1
    has_holders = False
    if n_eligible == 0:
        status[:] = PRIMARY_OFFLINE
        forger = -1
        latency = data_ms + t_max
    else:
        forger, slot = forge(eligible, kernel_u, log_u, log_miss)
        altered = nodes[MALICIOUS, forger]
        n_block = 0
        for b in range(n_tx):
            status[b] = NOT_IN_BLOCK
            if copies[b, forger] != MISSING:
                status[b] = TAMPERED if altered else COMMITTED
                n_block += 1
        size_ms = fc[HEADER] + fc[RECORD] * n_block
        arrival = np.empty(n)
        for i in range(n):
            arrival[i] = delay[_BLOCK, forger, i] + size_ms if link[_BLOCK, forger, i] else _INF
        arrival[forger] = 0.0
        if n_block > 0:  # the forger and the nodes its block reached hold it; an altered
            has_holders = True  # one only the colluders take
            for i in range(n):
                holders[i] = link[_BLOCK, forger, i] and (nodes[MALICIOUS, i] or not altered)
            holders[forger] = True
        spread = kd.close_ms(arrival, n // 2 + 1, t_max)
        latency = data_ms + (slot + 1.0) * t_max + spread + fc[5] * per_block[n_eligible]
    n_ok, n_tampered = kd.verdicts(rows, status, committed, reason)
    for b in range(n_tx):
        chosen[rows[b]] = status[b] != NOT_IN_BLOCK
    n_online = 0
    for i in range(n):
        n_online += online[i]
    share = n_online / n  # as numpy's float(count) / n
    return has_holders, latency, forger, share, n_ok, n_valid, missing, n_tampered
