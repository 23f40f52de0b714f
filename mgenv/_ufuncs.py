"""numpy's elementwise float64 semantics for scalars inside kernels (:mod:`mgenv._jit`).

Python's ``max``/``min`` and a plain ``a if a > b else b`` differ from ``np.maximum`` and
``np.minimum`` on NaN and on signed zeros, and a kernel must round and propagate exactly as
the numpy code it replaces. Measured on numpy 2.x (every array size, contiguous or not):

* a NaN operand gives NaN (the first operand's when both are NaN);
* otherwise the larger (smaller) value, and **the second operand** when they compare equal,
  so ``np.maximum(-0.0, 0.0)`` is ``0.0`` and ``np.maximum(0.0, -0.0)`` is ``-0.0``.

It also has :func:`add_reduce`, ``np.add.reduce`` of a 1-D float64 run in numpy's pairwise
order, written without recursion: numba (0.68, issues #6061/#9129) cannot link a cached
recursive function into another cached kernel (a kernel that calls one works in the process
that compiles it and crashes, LLVM "Symbol not found" or a segfault, in every later process
that loads it from the cache); and :func:`argsort_stable`, numpy's stable argsort, written
out because numba's own sorts take seconds to compile.

tests/test_jit_settle.py checks these against numpy on a grid of special values.
"""

from __future__ import annotations

import numpy as np

from mgenv import _jit

#: numpy's pairwise-summation block (``PW_BLOCKSIZE``): runs up to this long sum in one pass.
_BLOCK = 128


@_jit.kernel
def maximum(a: float, b: float) -> float:
    """``np.maximum(a, b)`` for two float64 scalars (NaN wins; ties give ``b``)."""
    if a != a:  # NaN: numpy propagates it (a comparison alone would drop it)
        return a
    if b != b:
        return b
    return a if a > b else b


@_jit.kernel
def minimum(a: float, b: float) -> float:
    """``np.minimum(a, b)`` for two float64 scalars (NaN wins; ties give ``b``)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a < b else b


@_jit.kernel
def divide_where(num: float, den: float, default: float, use: bool) -> float:
    """One entry of ``np.divide(num, den, out=default_array, where=use)``.

    Entries where ``use`` is false keep the ``out`` array's value (``default``) untouched;
    the others are the IEEE quotient (inf or NaN on a zero or NaN denominator, as numpy).
    """
    return num / den if use else default


@_jit.typed_borrowing("float64(float64[::1], int64, int64)")
def _block_sum(a: np.ndarray, start: int, n: int) -> float:
    """The pairwise sum numpy makes of a run of at most 128 values (its recursion's leaf)."""
    if n < 8:
        res = -0.0  # numpy starts from -0.0 so that a sum of -0.0 values stays -0.0
        for i in range(start, start + n):
            res += a[i]
        return float(res)
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    while i < n - (n % 8):
        j = start + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[start + i]
        i += 1
    return float(res)


@_jit.typed_kernel("float64(float64[::1], int64, int64)")
def add_reduce(a: np.ndarray, start: int, stop: int) -> float:
    """``np.add.reduce(a[start:stop])`` of a 1-D float64 array, in numpy's order.

    numpy reduces a contiguous run by pairwise summation: below 8 values a plain loop from
    -0.0; up to 128 values eight interleaved partial sums combined as ``((r0 + r1) + (r2 +
    r3)) + ((r4 + r5) + (r6 + r7))`` plus the tail; above that the run is split in two halves
    (the first a multiple of 8 long) summed the same way, and the reduce adds the result to
    its identity 0.0. Here the recursion over halves runs on an explicit stack, so that
    cached kernels can call it. Compiled for C-contiguous arrays only (one signature, so
    that literal arguments do not compile more copies).
    """
    n = stop - start
    if n <= _BLOCK:
        return 0.0 + _block_sum(a, start, n)
    # Frames of the recursion pw(s, m) = pw(s, h) + pw(s + h, m - h), h = m // 2 - (m // 2) % 8:
    # stage 0 descends left, 1 keeps the left sum and descends right, 2 adds and returns.
    depth = 64  # a run halves per level: 64 levels cover any array
    f_start = np.empty(depth, np.int64)
    f_len = np.empty(depth, np.int64)
    f_stage = np.zeros(depth, np.int64)
    f_left = np.empty(depth)
    top, ret = 0, 0.0
    f_start[0], f_len[0] = start, n
    while top >= 0:
        s, m = f_start[top], f_len[top]
        if m <= _BLOCK:
            ret = _block_sum(a, s, m)
            top -= 1
            continue
        h = m // 2
        h -= h % 8
        if f_stage[top] == 0:
            f_stage[top] = 1
            top += 1
            f_start[top], f_len[top], f_stage[top] = s, h, 0
        elif f_stage[top] == 1:
            f_left[top] = ret
            f_stage[top] = 2
            top += 1
            f_start[top], f_len[top], f_stage[top] = s + h, m - h, 0
        else:
            ret = f_left[top] + ret
            top -= 1
    return 0.0 + ret


@_jit.kernel
def clip(a: float, low: float, high: float) -> float:
    """``np.clip(a, low, high)`` for float64 scalars: ``minimum(maximum(a, low), high)``."""
    return minimum(maximum(a, low), high)


@_jit.kernel
def add_reduce_all(a: np.ndarray) -> float:
    """``np.add.reduce(a)`` of a whole 1-D float64 array (:func:`add_reduce` of all of it)."""
    return add_reduce(a, 0, a.shape[0])


@_jit.kernel
def sorts_before(a: float, b: float) -> bool:
    """Whether ``a`` sorts strictly before ``b`` in numpy's order (NaN last)."""
    return a < b or (b != b and a == a)


@_jit.borrowing
def argsort_stable(keys: np.ndarray, order: np.ndarray, tmp: np.ndarray) -> None:
    """``np.argsort(keys, kind="stable")`` into ``order`` (int64, as long as ``keys``).

    Insertion sort up to 32 values, a bottom-up merge sort above (``tmp``: int64 scratch as
    long as ``keys``); NaN sorts last, ties keep their order, as numpy's. Written out rather
    than numba's ``np.argsort``, whose implementation takes seconds to compile.
    """
    n = keys.shape[0]
    for i in range(n):
        order[i] = i
    if n <= 32:
        for i in range(1, n):
            k, j = order[i], i
            while j > 0 and sorts_before(keys[k], keys[order[j - 1]]):
                order[j] = order[j - 1]
                j -= 1
            order[j] = k
        return
    src, dst = order, tmp
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid, hi = min(lo + width, n), min(lo + 2 * width, n)
            i, j = lo, mid
            for k in range(lo, hi):  # take from the right run only if strictly before
                if j < hi and (i >= mid or sorts_before(keys[src[j]], keys[src[i]])):
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
        src, dst = dst, src
        width *= 2
    if src is not order:
        for i in range(n):
            order[i] = src[i]


@_jit.kernel
def stack_rows(rows: tuple[np.ndarray, ...], out: np.ndarray) -> int:
    """``out[:] = np.array(rows, dtype=np.float64)``, stopping at the first non-finite value.

    Args:
        rows: k 1-D float arrays as long as ``out``'s rows.
        out: ``(k, d)`` float64, written row by row (each value converted exactly).

    Returns:
        The index of the first row with a NaN or infinite value (``out`` then partly
        written), or -1.
    """
    for i in range(len(rows)):
        row = rows[i]
        for j in range(row.shape[0]):
            x = row[j]
            if not np.isfinite(x):
                return i
            out[i, j] = x
    return -1
