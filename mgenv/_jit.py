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
  (elementwise operations, sequential prefix sums, reductions in ``np.add.reduce``'s order,
  ``np.maximum``'s NaN and tie rules: :mod:`mgenv._ufuncs`), and tests compare both paths on
  random inputs and on whole episodes of every scenario.
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
    while developing. The stamp also holds ``MGENV_SHA_NI`` (whether
    :mod:`mgenv.chain.kernels_sha` may use the SHA extensions), which changes the code
    compiled for the same sources: switching it drops the caches too.
    """
    files = sorted(root.rglob("*.py"))
    stamp = "\n".join(
        f"{f.relative_to(root)} {f.stat().st_mtime_ns} {f.stat().st_size}" for f in files
    )
    # Settings that select different code for the same source: a kernel cached with one
    # must not run with the other (numba's index keys the CPU's features, not these).
    sha_ni = os.environ.get("MGENV_SHA_NI", "1").strip() != "0"
    stamp += f"\nMGENV_SHA_NI={int(sha_ni)}"
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

#: Whether numba is importable and not switched off (``MGENV_JIT`` not "0"); fixed at import.
AVAILABLE: bool = _NUMBA is not None

#: Whether stages call their compiled kernels (numba importable and ``MGENV_JIT`` not "0").
ENABLED: bool = AVAILABLE


#: numba's options for every cached kernel (see :func:`kernel`).
_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


def kernel(fn: F) -> F:
    """Compile ``fn`` with numba (``cache=True``) if numba is available, else return it as is.

    ``error_model="numpy"``: a division by zero gives inf or nan as in numpy instead of
    raising, and no fast-math flag is set, so every operation rounds as numpy's does.
    Without numba the function stays plain Python (correct, slow): callers check
    :data:`ENABLED` and run the numpy code instead.
    """
    if _NUMBA is None:
        return fn
    return cast(F, _NUMBA.njit(**_OPTIONS)(fn))


def typed_kernel(signature: str) -> Callable[[F], F]:
    """:func:`kernel` compiled for one signature only, e.g. ``"float64(float64[::1], int64)"``.

    For small helpers that kernels call with constant arguments: numba would otherwise
    compile another copy for each literal value (``add_reduce(a, 0, n)``), seconds each.
    The signature is compiled (or loaded from the cache) at import.
    """

    def wrap(fn: F) -> F:
        if _NUMBA is None:
            return fn
        jit = _NUMBA.njit(signature, **_OPTIONS)
        return cast(F, jit(fn))

    return wrap


def borrowing(fn: F) -> F:
    """:func:`kernel` compiled without numba's reference counts (``_nrt=False``).

    For small helpers that take arrays, allocate nothing and return no array, called inside
    a kernel's loops. A call of an inlined helper (or of a kernel) takes and releases a
    reference to each of its array arguments, two atomic operations per array per call,
    which numba's pruning of reference counts does not remove where the caller branches:
    in the batched chain's loops over copies and messages they took about two thirds of the
    samples of a batched step (``perf``: ``NRT_incref``/``NRT_decref``) on a Sapphire
    Rapids Xeon. A helper compiled without them reads the caller's arrays as borrowed
    references (the caller keeps them alive for the call).
    """
    if _NUMBA is None:
        return fn
    return cast(F, _NUMBA.njit(**_OPTIONS, _nrt=False)(fn))


def typed_borrowing(signature: str) -> Callable[[F], F]:
    """:func:`typed_kernel` compiled without numba's reference counts (see :func:`borrowing`)."""

    def wrap(fn: F) -> F:
        if _NUMBA is None:
            return fn
        jit = _NUMBA.njit(signature, **_OPTIONS, _nrt=False)
        return cast(F, jit(fn))

    return wrap


def inlined(fn: F) -> F:
    """A kernel's helper, inlined into each kernel that calls it (numba ``inline="always"``).

    For helpers that take tuples of arrays: a call through a function boundary takes and
    releases a reference to every array of the tuple (atomic counts, ~0.4 µs for two dozen
    arrays), which inlining removes.
    """
    if _NUMBA is None:
        return fn
    return cast(F, _NUMBA.njit(inline="always", nogil=True, error_model="numpy")(fn))
