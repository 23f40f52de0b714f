"""numpy's standard normals from PCG64 seed words, inside a kernel (no Generator objects).

A batched reset draws, per copy, one uniform and a block of standard normals from its
weather stream and a block from its load stream (:func:`mgenv.batched.physics.draw_profiles_batch`),
then never uses those streams again. Building the two numpy ``Generator`` objects costs more
than the draws (~7 µs each per copy and episode), so :func:`profile_draws` computes the same
numbers from the streams' seed words: numpy's ``pcg64_set_seed`` and ``xsl_rr`` output
(:mod:`mgenv.batched.pcg64`) and numpy's ziggurat ``random_standard_normal``
(``numpy/random/src/distributions/distributions.c``), with numpy's tables as numba ships
them. Integer arithmetic and exact conversions, except in the ziggurat's rare branches
(about 1% of draws), which compare against libm's ``exp`` and ``log1p``: numpy's C code
calls the same scalar functions. tests/test_batched_normals.py compares millions of draws.

:data:`AVAILABLE` is False without numba or without the tables (a private numba module);
the batched reset then builds the generators as before.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv._jit import inlined, kernel
from mgenv.batched.pcg64 import _seed, next64

U64 = NDArray[np.uint64]

_KI: NDArray[np.uint64]
_WI: NDArray[np.float64]
_FI: NDArray[np.float64]
_NOR_R: float
_NOR_INV_R: float
try:  # numpy's ziggurat tables, as numba's port of numpy's distributions holds them
    from numba.np.random import _constants as _zig

    _KI, _WI, _FI = _zig.ki_double, _zig.wi_double, _zig.fi_double
    _NOR_R, _NOR_INV_R = float(_zig.ziggurat_nor_r), float(_zig.ziggurat_nor_inv_r)
    AVAILABLE = _jit.AVAILABLE and _KI.shape == (256,) and _KI.dtype == np.uint64
except (ImportError, AttributeError):  # pragma: no cover - numba missing or reorganised
    AVAILABLE = False
    _KI, _WI, _FI = np.zeros(256, np.uint64), np.zeros(256), np.zeros(256)
    _NOR_R = _NOR_INV_R = 0.0

_BYTE, _SIGN, _MANTISSA = np.uint64(0xFF), np.uint64(1), np.uint64(0x000FFFFFFFFFFFFF)
_EIGHT, _ELEVEN = np.uint64(8), np.uint64(11)


@inlined
def _next_double(state: U64) -> float:
    """``Generator.random()``: ``(next64 >> 11) * 2**-53``."""
    return float(next64(state) >> _ELEVEN) * (1.0 / 9007199254740992.0)


@inlined
def standard_normal(state: U64) -> float:
    """The ziggurat of numpy's ``random_standard_normal`` (256 layers) on stream ``state``."""
    while True:
        r = next64(state)
        idx = int(r & _BYTE)
        r = r >> _EIGHT
        rabs = (r >> _SIGN) & _MANTISSA
        x: float = float(rabs) * _WI[idx]
        if r & _SIGN:
            x = -x
        if rabs < _KI[idx]:
            return x  # 99.3% of the draws
        if idx == 0:  # the tail beyond r, drawn as 1 - U to avoid log(0)
            while True:
                xx: float = -_NOR_INV_R * np.log1p(-_next_double(state))
                yy: float = -np.log1p(-_next_double(state))
                if yy + yy > xx * xx:
                    if (rabs >> _EIGHT) & _SIGN:
                        return -(_NOR_R + xx)
                    return _NOR_R + xx
        elif (_FI[idx - 1] - _FI[idx]) * _next_double(state) + _FI[idx] < np.exp(-0.5 * x * x):
            return x


@kernel
def profile_draws(
    weather_words: U64,
    load_words: U64,
    cloud_raw: U64,
    zw: NDArray[np.float64],
    zl: NDArray[np.float64],
) -> None:
    """Each copy's weather uniform (raw) and normals and its load normals, as numpy's.

    What ``Generator(PCG64(seq))`` gives for each stream's seed sequence: the weather
    stream's first raw output (``cloud_raw[b]``, see ``physics._cloudiness``) then
    ``standard_normal(out=zw[b])``; the load stream's ``standard_normal(out=zl[b])``.

    Args:
        weather_words: Shape (B, 4) uint64: the weather streams' ``generate_state(4, uint64)``.
        load_words: Shape (B, 4) uint64: the load streams'.
        cloud_raw: Shape (B,) uint64, output.
        zw: Shape (B, W), output.
        zl: Shape (B, L), output.
    """
    state = np.empty(4, np.uint64)
    for b in range(zw.shape[0]):
        w = weather_words[b]
        state[0], state[1], state[2], state[3] = _seed(w[0], w[1], w[2], w[3])
        cloud_raw[b] = next64(state)
        for k in range(zw.shape[1]):
            zw[b, k] = standard_normal(state)
        w = load_words[b]
        state[0], state[1], state[2], state[3] = _seed(w[0], w[1], w[2], w[3])
        for k in range(zl.shape[1]):
            zl[b, k] = standard_normal(state)
