"""Compiled kernels of the data plane (:mod:`mgenv.chain.dataplane`), shared by SBET, SPFT, PoS.

Each kernel mirrors one numpy function of the data plane or of the network model, loop by
loop, and gives bit-identical results (see :mod:`mgenv._jit`): the same elementwise
expressions in the same order, and maxima and k-th smallest values (which do not depend on the
order of evaluation). They work on one period of n nodes and B admitted transactions and are
called from the protocols' whole-period kernels (:mod:`mgenv.chain.kernels_sbet`), never from
Python one by one.

Inputs the kernels share:

* ``u``: shape (D,), the period's single network draw ``rng.random(D)``, in the layout of
  :mod:`mgenv.chain.network` (``online`` n | loss P n^2 | jitter P n^2 | extra E);
* ``lj``: shape (P n^2,), ``np.log1p(-jitter uniforms)``, computed by numpy: a compiled log1p
  need not round as numpy's (which may use SIMD code), so every transcendental function stays
  in numpy;
* the plane's constants packed once per protocol (:class:`mgenv.chain.packed.PackedPlane`).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from mgenv._jit import inlined, kernel
from mgenv._ufuncs import sorts_before
from mgenv.chain.dataplane import ALTERED, MISSING, TRUE
from mgenv.chain.packed import BASE, HEADER, MALICIOUS, RECORD, SLOW, T_MAX, WAIT
from mgenv.chain.types import BLOCK_FULL, COMMITTED, TAMPERED

_INF: Final = np.inf


@kernel
def kth_smallest(values: NDArray[np.float64], k: int) -> float:
    """``dataplane.kth_smallest``: the k-th smallest (1-based), inf if out of range; in place.

    Insertion sort: the arrays hold one value per node (n <= 256) and are mostly short.
    """
    m = values.size
    if k < 1 or k > m:
        return _INF
    for i in range(1, m):
        v = values[i]
        j = i - 1
        while j >= 0 and sorts_before(v, values[j]):
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v
    return float(values[k - 1])


@kernel
def close_ms(arrival: NDArray[np.float64], k: int, t_max: float) -> float:
    """``dataplane.close_ms``: the k-th arrival if within t_max, else t_max; 0 if k <= 0."""
    if k <= 0:
        return 0.0
    kth = kth_smallest(arrival, k)
    return kth if kth <= t_max else t_max


@kernel
def maximum(a: float, b: float) -> float:
    """One step of a ``.max()`` reduction: NaN propagates (unlike Python's ``max``).

    A tie keeps the first value, as numpy's reduction does (``np.maximum`` of two arrays
    gives the second, :func:`mgenv._ufuncs.maximum`); they differ only for 0.0 and -0.0,
    which the data plane's times never are.
    """
    if a != a:
        return a
    return a if a >= b else b


@inlined
def admit_into(
    valid: NDArray[np.bool_],
    sellers: NDArray[np.int64],
    n: int,
    block_size: int,
    reason: NDArray[np.int8],
    rows: NDArray[np.int64],
    origin: NDArray[np.int64],
) -> tuple[int, int]:
    """:func:`admit` into ``rows`` and ``origin`` (at least ``min(T, block_size)`` long).

    Returns:
        ``(number admitted, number of valid transactions)``.
    """
    n_adm = 0
    n_valid = 0
    for t in range(valid.size):
        if valid[t]:
            n_valid += 1
            if n_adm < block_size:
                rows[n_adm] = t
                origin[n_adm] = sellers[t] % n  # Python's modulo, as numpy's on intp
                n_adm += 1
            else:
                reason[t] = BLOCK_FULL
    return n_adm, n_valid


@kernel
def admit(
    valid: NDArray[np.bool_],
    sellers: NDArray[np.int64],
    n: int,
    block_size: int,
    reason: NDArray[np.int8],
) -> tuple[NDArray[np.int64], NDArray[np.int64], int]:
    """``DataPlane.admit``: the first ``block_size`` valid transactions and their origins.

    Args:
        valid: Shape (T,), bool: passed the signature and validity checks.
        sellers: Shape (T,): seller's participant index.
        n: Number of nodes.
        block_size: Maximum transactions in a block.
        reason: Shape (T,), int8, zeros: receives BLOCK_FULL for the valid transactions
            beyond the block.

    Returns:
        ``(rows (B,), origin (B,) = seller % n, number of valid transactions)``.
    """
    size = min(valid.size, block_size)
    rows = np.empty(size, np.int64)
    origin = np.empty(size, np.int64)
    n_adm, n_valid = admit_into(valid, sellers, n, block_size, reason, rows, origin)
    return rows[:n_adm], origin[:n_adm], n_valid


@kernel
def delivered(u: NDArray[np.float64], n: int, loss: float, n_phases: int) -> NDArray[np.bool_]:
    """``RoundDraw.delivered``, shape (P, n, n) [phase, sender, receiver] (before online).

    ``NetworkModel.draw_round``: a message is delivered iff its loss uniform is >= the loss
    probability and it is not to the sender itself.
    """
    out = np.empty((n_phases, n, n), np.bool_)
    at = n
    for k in range(n_phases):
        for j in range(n):
            for i in range(n):
                out[k, j, i] = (u[at + i] >= loss) & (j != i)
            at += n
    return out


@inlined
def fill_links(
    u: NDArray[np.float64], online: NDArray[np.bool_], loss: float, link: NDArray[np.bool_]
) -> None:
    """:func:`links` into ``link`` (shape (P, n, n), bool), for callers that reuse one array."""
    n = online.size
    at = n
    for k in range(link.shape[0]):
        for j in range(n):
            for i in range(n):
                link[k, j, i] = (u[at + i] >= loss) & (j != i) & online[j] & online[i]
            at += n


@kernel
def links(
    u: NDArray[np.float64], online: NDArray[np.bool_], loss: float, n_phases: int
) -> NDArray[np.bool_]:
    """``draw.delivered & (online[:, None] & online)``, shape (P, n, n) [phase, sender, receiver].

    ``NetworkModel.draw_round``: a message is delivered iff its loss uniform is >= the loss
    probability and it is not to the sender itself. (Bitwise ``&`` without branches.)
    """
    n = online.size
    link = np.empty((n_phases, n, n), np.bool_)
    fill_links(u, online, loss, link)
    return link


@kernel
def delays(
    lj: NDArray[np.float64], geo: NDArray[np.float64], jitter_ms: float, n_phases: int
) -> NDArray[np.float64]:
    """``NetworkModel.delays_ms``: ``base + (-jitter_ms * log1p(-u)) * slow``, (P, n, n), ms.

    Multiplying by a slow factor of 1.0 is exact, so links that are not slowed need no branch.
    """
    n = geo.shape[1]
    out = np.empty((n_phases, n, n))
    at = 0
    for k in range(n_phases):
        for j in range(n):
            for i in range(n):
                out[k, j, i] = geo[BASE, j, i] + (-jitter_ms * lj[at]) * geo[SLOW, j, i]
                at += 1
    return out


@inlined
def interruptions_into(
    keys: NDArray[np.float64],
    origin: NDArray[np.int64],
    n_missing: int,
    cut: NDArray[np.bool_],
) -> None:
    """:func:`interruptions` into ``cut`` (shape (B, n), bool, every entry written)."""
    n_tx, n = keys.shape
    for t in range(n_tx):
        for i in range(n):
            if i == origin[t]:
                cut[t, i] = False  # key 2.0: ranked last, never cut (n_missing <= n - 1)
                continue
            v = keys[t, i]
            rank = 0
            for j in range(n):
                if j != origin[t]:
                    w = keys[t, j]
                    if w < v or (w == v and j < i):
                        rank += 1
            cut[t, i] = rank < n_missing


@kernel
def interruptions(
    keys: NDArray[np.float64], origin: NDArray[np.int64], n_missing: int
) -> NDArray[np.bool_]:
    """``DataPlane.interrupted`` from its uniforms: the ``n_missing`` smallest non-origin keys.

    numpy ranks by ``keys.argsort(axis=1).argsort(axis=1)`` with the origin's key set to 2.0;
    here the rank is the count of smaller keys plus the equal ones before (ties between two
    uniforms, probability ~n^2 / 2^53 a row, would be ordered by index).

    Args:
        keys: Shape (B, n), the uniforms ``rng.random((B, n))`` (not modified).
        origin: Shape (B,), origin node of each transaction.
        n_missing: Nodes each transaction misses.
    """
    cut = np.empty(keys.shape, np.bool_)
    interruptions_into(keys, origin, n_missing, cut)
    return cut


@inlined
def broadcast_into(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    origin: NDArray[np.int64],
    cut: NDArray[np.bool_],
    nodes: NDArray[np.bool_],
    geo: NDArray[np.float64],
    fc: NDArray[np.float64],
    count: NDArray[np.int64],
    in_time: NDArray[np.bool_],
    copies: NDArray[np.int8],
) -> float:
    """:func:`broadcast` with its scratch given: ``count`` (n,), ``in_time`` (n, n), bool.

    ``copies`` (shape (B, n), int8) receives the copies; returns the round's duration (ms).
    Reads ``delay[0]`` only where ``link[0]`` is up.
    """
    t_max, header_ms, ms_per_record = fc[T_MAX], fc[HEADER], fc[RECORD]
    n = nodes.shape[1]
    n_tx = origin.size
    for i in range(n):
        count[i] = 0
    for b in range(n_tx):
        count[origin[b]] += 1
    last = 0.0
    for j in range(n):
        head = header_ms + ms_per_record * count[j]
        for i in range(n):
            transit = delay[0, j, i] + head
            in_time[j, i] = link[0, j, i] and transit <= t_max
            if in_time[j, i]:
                last = maximum(last, geo[WAIT, j, i] + transit)
    for b in range(n_tx):
        o = origin[b]
        for i in range(n):
            copies[b, i] = MISSING
            if (in_time[o, i] or i == o) and not (cut.shape[0] > 0 and cut[b, i]):
                copies[b, i] = ALTERED if nodes[MALICIOUS, i] else TRUE
    return last if last > t_max else t_max


@kernel
def broadcast(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    origin: NDArray[np.int64],
    cut: NDArray[np.bool_],
    nodes: NDArray[np.bool_],
    geo: NDArray[np.float64],
    fc: NDArray[np.float64],
) -> tuple[NDArray[np.int8], float]:
    """``DataPlane.broadcast`` on phase 0 of ``link`` and ``delay`` (Alg. 1, lines 1-2; eq. 6).

    Args:
        link: Shape (P, n, n), bool; phase 0 is the data broadcast.
        delay: Shape (P, n, n), ms.
        origin: Shape (B,), origin node of each transaction.
        cut: Shape (B, n), bool interruptions, or shape (0, n) for none.
        nodes: ``PackedPlane.nodes`` (malicious nodes store the altered copy).
        geo: ``PackedPlane.geo`` (its waiting times).
        fc: ``PackedPlane.fc``.

    Returns:
        ``(copies (B, n) int8, round duration ms)``.
    """
    n = nodes.shape[1]
    copies = np.empty((origin.size, n), np.int8)
    count = np.empty(n, np.int64)
    in_time = np.empty((n, n), np.bool_)
    data_ms = broadcast_into(link, delay, origin, cut, nodes, geo, fc, count, in_time, copies)
    return copies, data_ms


@kernel
def count_missing(copies: NDArray[np.int8], online: NDArray[np.bool_]) -> int:
    """``np.count_nonzero((copies == MISSING) & online)``: copies missing at online nodes."""
    total = 0
    for b in range(copies.shape[0]):
        for i in range(copies.shape[1]):
            if copies[b, i] == MISSING and online[i]:
                total += 1
    return total


@kernel
def verdicts(
    rows: NDArray[np.int64],
    status: NDArray[np.int8],
    committed: NDArray[np.bool_],
    reason: NDArray[np.int8],
) -> tuple[int, int]:
    """``DataPlane.verdicts``' arrays, in place: ``reason[rows] = status``, committed ones.

    Args:
        rows: Shape (B,), the admitted transactions' positions.
        status: Shape (B,), int8: each admitted transaction's reason code from the block.
        committed: Shape (T,), bool, False: set where the status is COMMITTED.
        reason: Shape (T,), int8: from :func:`admit`.

    Returns:
        ``(committed count, count of status TAMPERED)``.
    """
    n_ok = 0
    n_tampered = 0
    for b in range(rows.size):
        reason[rows[b]] = status[b]
        if status[b] == COMMITTED:
            committed[rows[b]] = True
            n_ok += 1
        elif status[b] == TAMPERED:
            n_tampered += 1
    return n_ok, n_tampered
