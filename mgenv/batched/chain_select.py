"""k-th smallest values along short node axes, and counts of booleans, for the batched chain.

Most of the batched chain's cost is numpy's per-call overhead, so these keep calls few: the
k-th smallest along a short axis comes from a pruned sorting network of ``np.minimum`` /
``np.maximum`` (the same values as a sort), and counts of booleans are integer contractions
(``np.einsum``, ``np.matmul``), exact in any summation order.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray

from mgenv.batched.chain_types import F64, I64, Bool

_INF = math.inf
_NETWORK_MAX = 8  # k-th smallest by a selection network up to this many values, else np.sort


def _merge_sort_network(m: int) -> list[tuple[int, int]]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort of m values, in order.

    Built for the next power of two and cut to pairs inside m (the padding would be +inf,
    which these comparators never move).
    """
    size = 1 << max(0, m - 1).bit_length()
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < m:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@functools.cache
def _selection_network(m: int, k: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """The merge-sort network's comparators that the k-th smallest (1-based) of m depends on.

    Each is (i, j, lo, hi): write min to slot i if ``lo``, max to slot j if ``hi``.
    """
    needed = {k - 1}
    kept = []
    for i, j in reversed(_merge_sort_network(m)):
        lo, hi = i in needed, j in needed
        if lo or hi:
            kept.append((i, j, lo, hi))
            needed |= {i, j}
    return tuple(reversed(kept))


def kth_smallest(values: F64, k: int, axis: int = 0) -> F64:
    """The k-th smallest (1-based) along ``axis``; inf where k is out of range.

    The value is what a sort would put at k - 1 (no NaN comes in: times are finite or inf):
    the minimum or maximum for k = 1 or m, a pruned sorting network of np.minimum and
    np.maximum for short axes (a few calls on whole rows beat a sort along a non-last axis;
    for 4 values, as with 4 validators, a shorter formula), np.sort beyond.
    """
    m = values.shape[axis]
    if not 1 <= k <= m:
        return np.full(values.shape[:axis] + values.shape[axis + 1 :], _INF)
    if k == 1:
        low: F64 = values.min(axis=axis)
        return low
    if k == m:
        high: F64 = values.max(axis=axis)
        return high
    if m > _NETWORK_MAX:
        out: F64 = np.moveaxis(np.sort(values, axis=axis, kind="stable"), axis, 0)[k - 1]
        return out
    order = (axis, *range(axis), *range(axis + 1, values.ndim))  # np.moveaxis, cheaper
    if m == 4:  # 4 validators (the default): 5 calls instead of the network's 7
        return _second_of_four(values.transpose(order), k == 2)
    rows: list[F64] = list(values.transpose(order))  # views
    for i, j, lo, hi in _selection_network(m, k):
        a, b = rows[i], rows[j]
        if lo:
            rows[i] = np.minimum(a, b)
        if hi:
            rows[j] = np.maximum(a, b)
    return rows[k - 1]


def _second_of_four(v: F64, smallest: bool) -> F64:
    """The 2nd smallest (``smallest``) or 2nd largest of the 4 rows of ``v`` (axis 0).

    Pairs (v0, v2), (v1, v3) give lo = their minima, hi = their maxima; the smallest value
    is min(lo), and the 2nd smallest is the least of the other three values, which is
    min(max(lo), min(hi)) (the pair holding the smallest contributes its other value, hi;
    the other pair both, its lower being its lo). Mirrored for the 2nd largest. Only min and
    max: the very values a sort puts there.
    """
    lo = np.minimum(v[:2], v[2:])
    hi = np.maximum(v[:2], v[2:])
    if smallest:
        out: F64 = np.minimum(np.maximum(lo[0], lo[1]), np.minimum(hi[0], hi[1]))
    else:
        out = np.maximum(np.minimum(hi[0], hi[1]), np.maximum(lo[0], lo[1]))
    return out


def close_ms(arrival: F64, k: int, t_max: float) -> F64:
    """A collector's closing time (``mgenv.chain.dataplane.close_ms``) along axis 0."""
    if k <= 0:
        return np.zeros(arrival.shape[1:])
    out: F64 = np.minimum(kth_smallest(arrival, k), t_max)  # no NaN: the same as where(<=)
    return out


def _weigh(spec: str, weight: NDArray[np.integer], x: Bool) -> NDArray[np.integer]:
    """Weighted counts: ``np.einsum`` of integer weights and booleans, in the weights' type.

    Exact (integers) while the counts fit the type (see ``_Groups.weight``).
    """
    out: NDArray[np.integer] = np.einsum(
        spec, *[weight, _u8(x)], dtype=np.int16 if weight.dtype == np.int16 else np.int64
    )
    return out


def _u8(x: Bool) -> NDArray[np.uint8]:
    """A boolean array as 0/1 bytes (a view), for integer contractions."""
    out: NDArray[np.uint8] = x.view(np.uint8)
    return out


def _count(x: Bool) -> I64:
    """Number of True along the last axis (a matmul: cheaper than a reduction on short rows)."""
    out: I64 = np.matmul(x, np.ones(x.shape[-1], dtype=np.int64))
    return out


def _any(x: Bool) -> Bool:
    """Any True along the last axis (a boolean matmul)."""
    out: Bool = np.matmul(x, np.ones(x.shape[-1], dtype=bool))
    return out
