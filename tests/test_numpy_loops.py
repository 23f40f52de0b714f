"""Kernels calling numpy's own float64 loops (:mod:`mgenv._numpy_loops`) get numpy's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from mgenv import _jit, _numpy_loops
from mgenv._numpy_loops import call_unary, log1p_loop, unary_loop

pytestmark = pytest.mark.skipif(not _jit.AVAILABLE, reason="numba is not installed")


@_jit.kernel
def _apply(address: int, data: int, src: np.ndarray, dst: np.ndarray) -> None:
    call_unary(address, data, src, dst, dst.size)


def test_log1p_loop_gives_numpys_numbers() -> None:
    """On fresh uniforms, any length (SIMD body and tail), strided or in place."""
    loop = log1p_loop()
    assert loop is not None  # CPython with numba: the struct is read
    rng = np.random.default_rng(123)
    for size in (0, 1, 7, 8, 9, 48, 1000, 4099):
        x = -rng.random(size)
        want = np.log1p(x)
        got = np.empty(size)
        _apply(*loop, x, got)
        np.testing.assert_array_equal(got, want)
        inplace = x.copy()
        _apply(*loop, inplace, inplace)
        np.testing.assert_array_equal(inplace, want)
    x = -rng.random(3000)
    out = np.full(6000, 7.0)
    _apply(*loop, x[::3], out[::6])  # strides in the loop's steps
    np.testing.assert_array_equal(out[::6], np.log1p(x[::3]))
    assert np.all(out[1::6] == 7.0)  # nothing written between the strided elements


def test_a_loop_with_data_gets_its_data() -> None:
    """``np.degrees``' float64 loop is numpy's generic loop, whose data is the function."""
    loop = unary_loop(np.degrees)
    assert loop is not None and loop[1] != 0
    x = np.random.default_rng(1).normal(size=100)
    got = np.empty(100)
    _apply(*loop, x, got)
    np.testing.assert_array_equal(got, np.degrees(x))


def test_unary_loop_finds_each_ufuncs_own_loop() -> None:
    assert unary_loop(np.log1p) != unary_loop(np.expm1)
    assert unary_loop(np.add) is None  # two inputs
    assert unary_loop(np.log1p, np.int8) is None  # no int8 -> int8 loop
    assert unary_loop(np.vectorize(abs)) is None  # type: ignore[arg-type]


def test_a_loop_with_other_numbers_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """log1p_loop keeps a loop only if it computes np.log1p's numbers (here expm1's)."""
    expm1 = unary_loop(np.expm1)
    monkeypatch.setattr(_numpy_loops, "unary_loop", lambda ufunc: expm1)
    assert log1p_loop.__wrapped__() is None
    monkeypatch.setattr(_numpy_loops, "unary_loop", lambda ufunc: None)
    assert log1p_loop.__wrapped__() is None
