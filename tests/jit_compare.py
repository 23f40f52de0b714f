"""Helpers of the kernel-vs-numpy tests (tests/test_jit_settle.py, tests/test_jit_physics.py)."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from mgenv import _jit

SPECIAL = (0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, 2.5, -2.5, math.inf, -math.inf, math.nan)


def same(a: Any, b: Any, where: str = "") -> None:
    """Equal to the bit (arrays: dtype, shape, values with NaN equal, signs of zeros)."""
    if isinstance(a, tuple | list):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype} {b.dtype}"
        # Byte views: -0.0 differs from 0.0 and any last-bit change shows; NaN equals NaN
        # whatever its sign and payload bits (which operand's NaN propagates is not part of
        # numpy's contract, and differs between its SIMD and scalar loops).
        assert _bits(a) == _bits(b), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, float):
        assert type(b) is type(a), f"{where}: {type(a)} {type(b)}"
        assert _bits(np.array([a])) == _bits(np.array([b])), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _bits(a: np.ndarray) -> bytes:
    a = np.array(a)  # a copy
    if a.dtype.kind == "f":
        a[np.isnan(a)] = np.nan
    return a.tobytes()


def both(monkeypatch: pytest.MonkeyPatch, fn: Any, *args: Any) -> tuple[Any, Any]:
    """``fn(*deep copies of args)`` with the kernels, then with numpy only."""
    fast = fn(*copy.deepcopy(args))
    monkeypatch.setattr(_jit, "ENABLED", False)
    slow = fn(*copy.deepcopy(args))
    monkeypatch.setattr(_jit, "ENABLED", True)
    return fast, slow


def special_mix(rng: np.random.Generator, n: int, scale: float = 100.0) -> np.ndarray:
    """Random values, about a third of them replaced by NaN, infinities and signed zeros."""
    a = rng.normal(0, scale, n)
    return np.where(rng.random(n) < 0.3, rng.choice(np.array(SPECIAL), n), a)
