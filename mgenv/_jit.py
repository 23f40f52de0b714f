"""Compiled kernels for the single environment's hot path (numba), with the numpy code kept.

Why: a market period works on arrays of 4-12 participants, where every numpy call costs
~0.5-1.5 µs whatever its size, so a step of a few hundred small calls is set by call overhead,
not arithmetic. A kernel is a numba function with explicit loops that does a whole stage
(or a large part of one) in one call.

How the two paths relate:

* Every stage keeps its numpy implementation. It is the readable reference, the fallback when
  numba is missing or disabled, and what the batched core (:mod:`mgenv.batched`) runs.
* Where a stage also has a kernel, it calls the kernel when :data:`ENABLED` is true. A kernel
  gives **bit-identical** results: it evaluates the same expressions in the same order
  (elementwise operations, sequential prefix sums, reductions in ``np.add.reduce``'s order;
  see :func:`sum_like_numpy`), and tests compare both paths on random inputs and on whole
  episodes of every scenario.
* Random draws never move into kernels: the numpy generators draw exactly as before and the
  kernels consume their output, so the streams are untouched.

Kernels compile on first use (a few seconds in all) and are cached on disk by numba
(``cache=True``: next to the source, or in numba's user cache directory when that is not
writable). Set the environment variable ``MGENV_JIT=0`` before importing mgenv to run the
numpy code only; tests flip :data:`ENABLED` to compare the paths.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, cast

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def _load_numba() -> ModuleType | None:
    if os.environ.get("MGENV_JIT", "1").strip() == "0":
        return None
    try:
        import numba
    except ImportError:  # the numpy path still works; only slower
        return None
    return numba


def _drop_stale_caches(root: Path) -> None:
    """Delete numba's cached kernels under ``root`` when any module there has changed.

    numba keys a cached kernel by its own file only: a kernel that calls one defined in
    another file would keep running the callee's old code after the callee's file changes.
    So any change of a module of the package (size or modification time) drops every cached
    kernel; they recompile on first use. A pip install rewrites every file, so this matters
    while developing.
    """
    files = sorted(root.rglob("*.py"))
    stamp = "\n".join(
        f"{f.relative_to(root)} {f.stat().st_mtime_ns} {f.stat().st_size}" for f in files
    )
    mark = root / "__pycache__" / "jit-sources.txt"
    try:
        if mark.exists() and mark.read_text() == stamp:
            return
        for cached in (*root.rglob("__pycache__/*.nbi"), *root.rglob("__pycache__/*.nbc")):
            cached.unlink(missing_ok=True)
        mark.parent.mkdir(exist_ok=True)
        mark.write_text(stamp)
    except OSError:  # a read-only install: numba then caches in its user directory
        pass


_NUMBA = _load_numba()
if _NUMBA is not None:
    _drop_stale_caches(Path(__file__).parent)

#: Whether stages call their compiled kernels (numba importable and ``MGENV_JIT`` not "0").
ENABLED: bool = _NUMBA is not None


def kernel(fn: F) -> F:
    """Compile ``fn`` with numba (``cache=True``) if numba is available, else return it as is.

    ``error_model="numpy"``: a division by zero gives inf or nan as in numpy instead of
    raising, and no fast-math flag is set, so every operation rounds as numpy's does.
    Without numba the function stays plain Python (correct, slow): callers check
    :data:`ENABLED` and run the numpy code instead.
    """
    if _NUMBA is None:
        return fn
    return cast(F, _NUMBA.njit(cache=True, nogil=True, error_model="numpy")(fn))


def inlined(fn: F) -> F:
    """A kernel's helper, inlined into each kernel that calls it (numba ``inline="always"``).

    For helpers that take tuples of arrays: a call through a function boundary takes and
    releases a reference to every array of the tuple (atomic counts, ~0.4 µs for two dozen
    arrays), which inlining removes.
    """
    if _NUMBA is None:
        return fn
    return cast(F, _NUMBA.njit(inline="always", nogil=True, error_model="numpy")(fn))


@kernel
def add_reduce(a: np.ndarray) -> float:
    """``np.add.reduce(a)`` of a 1-D float64 array: :func:`sum_like_numpy` of all of it."""
    # np.int64(0), not 0: a literal argument would compile a second copy of the sum.
    return sum_like_numpy(a, int(np.int64(0)), a.shape[0])


@kernel
def sum_like_numpy(a: np.ndarray, start: int, stop: int) -> float:
    """``np.add.reduce(a[start:stop])`` of a 1-D float64 array, in numpy's order.

    numpy reduces a contiguous run by pairwise summation: below 8 values a plain loop; up to
    128 values eight interleaved partial sums combined as ``((r0 + r1) + (r2 + r3)) + ((r4 +
    r5) + (r6 + r7))`` plus the tail; above that the run is split in two halves (the first a
    multiple of 8 long) summed the same way. The reduce adds that to its identity, 0.0 (so a
    sum of -0.0 values is 0.0, as numpy's).

    The halving is a recursion in numpy; here it is a loop over an explicit stack, because
    numba's on-disk cache cannot link a recursive function into kernels of other modules.
    """
    n = stop - start
    if n <= 128:
        return 0.0 + _block(a, start, n)
    # Frames of the recursion: a run (first, size), its split and the left half's sum.
    first = np.empty(64, np.int64)
    size = np.empty(64, np.int64)
    half = np.empty(64, np.int64)
    left = np.empty(64)
    waiting = np.zeros(64, np.bool_)  # the frame's left half is summed, its right one runs
    top = 0
    first[0], size[0], waiting[0] = start, n, False
    value = 0.0
    returned = False
    while True:
        if returned:  # hand the finished run's sum to the frame that split it
            if top < 0:
                return 0.0 + value
            if waiting[top]:
                value = left[top] + value
                top -= 1
                continue
            left[top] = value
            waiting[top] = True
            top += 1
            first[top] = first[top - 1] + half[top - 1]
            size[top] = size[top - 1] - half[top - 1]
            waiting[top] = False
            returned = False
            continue
        m = size[top]
        if m <= 128:
            value = _block(a, first[top], m)
            top -= 1
            returned = True
            continue
        h = m // 2
        half[top] = h - h % 8
        top += 1
        first[top], size[top], waiting[top] = first[top - 1], half[top - 1], False


@kernel
def _block(a: np.ndarray, start: int, n: int) -> float:
    """Pairwise sum of a run of at most 128 values, as numpy's ``pairwise_sum``."""
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


@kernel
def _before(a: float, b: float) -> bool:
    """Whether ``a`` sorts strictly before ``b`` in numpy's order (NaN last)."""
    return a < b or (b != b and a == a)


@kernel
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
            while j > 0 and _before(keys[k], keys[order[j - 1]]):
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
                if j < hi and (i >= mid or _before(keys[src[j]], keys[src[i]])):
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
