"""numpy's PCG64 uniforms computed inside kernels, any position of a stream in O(1).

The batched chain draws one ``rng.random(D)`` per period and copy from the network stream
(:mod:`mgenv.chain.network`), but a block reads only ~110 of SBET's D = 392 uniforms (4
nodes). With a PCG64 stream, uniform ``o`` of a period is a closed-form function of the
stream's state at the start of the period, so the kernels compute just the ones they read
(:func:`uniform`), and the numpy generator is moved past the period's draws by
``PCG64.advance``: its state ends as if it had drawn them.

numpy's PCG64 (``numpy/random/src/pcg64``): a 128-bit LCG ``s <- s M + inc``, each draw steps
it and outputs ``xsl_rr(s) = rotr64(hi(s) ^ lo(s), hi(s) >> 58)``; ``Generator.random`` is
``(out >> 11) * 2**-53``. After d steps the state is ``s M^d + inc G_d`` (mod 2**128) with
``G_d = 1 + M + ... + M^(d-1)``: :func:`jump_table` holds ``(M^d, G_d)`` for d up to a size.
The 128-bit products are LLVM ``i128`` arithmetic (an intrinsic: numba has no 128-bit
integers); everything is integer arithmetic except the final exact scaling, so the doubles
are numpy's bit for bit (tests/test_batched_pcg64.py).

The single env's fused step draws a period's uniforms in order instead, on the generator's
own state (:func:`live_words`, :func:`fill_live`): the same doubles, the generator stepped.

Arrays of states and table entries are uint64 quadruples ``(s_hi, s_lo, inc_hi, inc_lo)``
and ``(a_hi, a_lo, g_hi, g_lo)``. Without numba the two primitives are Python integer
arithmetic (the same numbers; only the tests call them then).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv._jit import inlined, kernel

#: numpy's PCG64 multiplier (PCG_DEFAULT_MULTIPLIER_128).
MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341
_MASK64 = (1 << 64) - 1
_MOD = 1 << 128

U64 = NDArray[np.uint64]
#: A state and its increment, ``(s_hi, s_lo, inc_hi, inc_lo)`` (uint64 each).
State = tuple[np.uint64, np.uint64, np.uint64, np.uint64]


def _jump_py(*words: int) -> tuple[int, int]:
    """:func:`_jump` in Python integers: ``(s, inc, a, g)`` as hi/lo pairs in, ``(hi, lo)``."""
    s, inc, a, g = (int(words[k]) << 64 | int(words[k + 1]) for k in range(0, 8, 2))
    state = (s * a + inc * g) % _MOD
    return state >> 64, state & _MASK64


def _seed_py(*words: int) -> tuple[int, int, int, int]:
    """:func:`_seed` in Python integers."""
    initstate = int(words[0]) << 64 | int(words[1])
    inc = ((int(words[2]) << 64 | int(words[3])) << 1 | 1) % _MOD
    state = ((inc + initstate) * MULTIPLIER + inc) % _MOD
    return state >> 64, state & _MASK64, inc >> 64, inc & _MASK64


def _draw_py(*words: int) -> float:
    """:func:`_draw` in Python integers: the double numpy's ``random()`` makes of the state."""
    hi, lo = _jump_py(*words)
    rot = hi >> 58
    x = hi ^ lo
    out = ((x >> rot) | (x << (64 - rot))) & _MASK64
    return (out >> 11) * 2.0**-53


def _intrinsics() -> tuple[Any, Any, Any]:
    """The three primitives as LLVM intrinsics (i128 arithmetic), for kernels."""
    from llvmlite import ir  # type: ignore[import-untyped]
    from numba import types
    from numba.core.extending import intrinsic

    def _wide(builder: Any, hi: Any, lo: Any) -> Any:
        """Two i64 (high, low) as one i128."""
        i128 = ir.IntType(128)
        high = builder.shl(builder.zext(hi, i128), ir.Constant(i128, 64))
        return builder.or_(high, builder.zext(lo, i128))

    def _jumped(builder: Any, args: Sequence[Any]) -> Any:
        """``s a + inc g`` mod 2**128 from the i64 arguments (s, inc, a, g as hi/lo pairs)."""
        s, inc = _wide(builder, args[0], args[1]), _wide(builder, args[2], args[3])
        a, g = _wide(builder, args[4], args[5]), _wide(builder, args[6], args[7])
        return builder.add(builder.mul(s, a), builder.mul(inc, g))

    _ARGS = (types.uint64,) * 8

    def _output(builder: Any, state: Any) -> Any:
        """``Generator.random()``'s double from a stepped state (i128): xsl_rr, then scaled."""
        i64, i128 = ir.IntType(64), ir.IntType(128)
        hi = builder.trunc(builder.lshr(state, ir.Constant(i128, 64)), i64)
        xored = builder.xor(hi, builder.trunc(state, i64))
        rot = builder.lshr(hi, ir.Constant(i64, 58))  # state >> 122
        back = builder.and_(builder.sub(ir.Constant(i64, 64), rot), ir.Constant(i64, 63))
        out = builder.or_(builder.lshr(xored, rot), builder.shl(xored, back))  # rotr64
        mantissa = builder.uitofp(builder.lshr(out, ir.Constant(i64, 11)), ir.DoubleType())
        return builder.fmul(mantissa, ir.Constant(ir.DoubleType(), 2.0**-53))

    @intrinsic
    def _jump(
        typingctx: Any,
        s_hi: Any,
        s_lo: Any,
        i_hi: Any,
        i_lo: Any,
        a_hi: Any,
        a_lo: Any,
        g_hi: Any,
        g_lo: Any,
    ) -> Any:
        """The state d steps on, ``(hi, lo)``, from a state and ``(a, g) = (M^d, G_d)``.

        The arguments: ``(s_hi, s_lo, inc_hi, inc_lo, a_hi, a_lo, g_hi, g_lo)``.
        """
        if (s_hi, s_lo, i_hi, i_lo, a_hi, a_lo, g_hi, g_lo) != _ARGS:
            return None
        sig = types.UniTuple(types.uint64, 2)(*_ARGS)  # type: ignore[no-untyped-call]

        def codegen(context: Any, builder: Any, signature: Any, llargs: Any) -> Any:
            i64, i128 = ir.IntType(64), ir.IntType(128)
            state = _jumped(builder, llargs)
            hi = builder.trunc(builder.lshr(state, ir.Constant(i128, 64)), i64)
            return context.make_tuple(
                builder, signature.return_type, (hi, builder.trunc(state, i64))
            )

        return sig, codegen

    @intrinsic
    def _draw(
        typingctx: Any,
        s_hi: Any,
        s_lo: Any,
        i_hi: Any,
        i_lo: Any,
        a_hi: Any,
        a_lo: Any,
        g_hi: Any,
        g_lo: Any,
    ) -> Any:
        """``Generator.random()``'s double after d steps (arguments as :func:`_jump`'s)."""
        if (s_hi, s_lo, i_hi, i_lo, a_hi, a_lo, g_hi, g_lo) != _ARGS:
            return None
        sig = types.float64(*_ARGS)

        def codegen(context: Any, builder: Any, signature: Any, llargs: Any) -> Any:
            return _output(builder, _jumped(builder, llargs))

        return sig, codegen

    @intrinsic
    def _seed(typingctx: Any, w0: Any, w1: Any, w2: Any, w3: Any) -> Any:
        """The state of numpy's ``pcg64_set_seed`` from a seed sequence's four words.

        ``initstate = (w0, w1)``, ``inc = (w2, w3) << 1 | 1``; the state is stepped, has
        initstate added and is stepped again: ``(inc + initstate) M + inc``. Returns
        ``(s_hi, s_lo, inc_hi, inc_lo)``.
        """
        if (w0, w1, w2, w3) != _ARGS[:4]:
            return None
        sig = types.UniTuple(types.uint64, 4)(*_ARGS[:4])  # type: ignore[no-untyped-call]

        def codegen(context: Any, builder: Any, signature: Any, llargs: Any) -> Any:
            i64, i128 = ir.IntType(64), ir.IntType(128)
            initstate = _wide(builder, llargs[0], llargs[1])
            seq = _wide(builder, llargs[2], llargs[3])
            inc = builder.or_(builder.shl(seq, ir.Constant(i128, 1)), ir.Constant(i128, 1))
            mult = ir.Constant(i128, MULTIPLIER)
            state = builder.add(builder.mul(builder.add(inc, initstate), mult), inc)
            words = [
                builder.trunc(builder.lshr(x, ir.Constant(i128, shift)), i64)
                for x in (state, inc)
                for shift in (64, 0)
            ]
            return context.make_tuple(builder, signature.return_type, words)

        return sig, codegen

    return _jump, _draw, _seed


# numba's intrinsics, or the Python arithmetic without numba (MGENV_JIT=0 or not installed)
_jump: Any
_draw: Any
_seed: Any
_jump, _draw, _seed = _intrinsics() if _jit.AVAILABLE else (_jump_py, _draw_py, _seed_py)


# M (the multiplier) and G_1 = 1 as uint64 halves: one step is a jump by d = 1
_M_HI, _M_LO = np.uint64(MULTIPLIER >> 64), np.uint64(MULTIPLIER & _MASK64)
_ZERO, _ONE = np.uint64(0), np.uint64(1)


@inlined
def next64(state: U64) -> np.uint64:
    """The stream's next raw 64-bit output (``PCG64.random_raw()``); ``state`` steps on.

    ``state`` is a quadruple ``(s_hi, s_lo, inc_hi, inc_lo)``, updated in place; the output
    is numpy's ``xsl_rr``: ``rotr64(hi ^ lo, hi >> 58)`` of the stepped state.
    """
    hi, lo = _jump(state[0], state[1], state[2], state[3], _M_HI, _M_LO, _ZERO, _ONE)
    state[0], state[1] = hi, lo
    x = hi ^ lo
    rot = hi >> np.uint64(58)
    out: np.uint64 = (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))
    return out


@inlined
def fill_live(words: U64, out: NDArray[np.float64]) -> None:
    """``Generator.random(out=out)`` on a PCG64 stream whose state ``words`` is stepped on.

    ``words`` is numpy's ``pcg64_random_t`` as :func:`live_words` views it in the bit
    generator's own memory: the state and the increment as little-endian 128-bit integers,
    ``(s_lo, s_hi, inc_lo, inc_hi)``; written back, so the generator ends as if numpy had
    drawn ``out.size`` doubles (``random`` does not use the buffered 32-bit half).
    """
    s_hi, s_lo, i_hi, i_lo = words[1], words[0], words[3], words[2]
    for k in range(out.size):
        s_hi, s_lo = _jump(s_hi, s_lo, i_hi, i_lo, _M_HI, _M_LO, _ZERO, _ONE)
        x = s_hi ^ s_lo
        rot = s_hi >> np.uint64(58)
        raw = (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))
        out[k] = float(raw >> np.uint64(11)) * 2.0**-53
    words[0], words[1] = s_lo, s_hi


@kernel
def fill_live_kernel(words: U64, out: NDArray[np.float64]) -> None:
    """:func:`fill_live` as a cached kernel of its own, for Python callers.

    ``live_words``' check and ``FastSBET.process``: the inlined helper called from Python
    would be compiled in every process (~0.1 s), not loaded from the cache.
    """
    fill_live(words, out)


@kernel
def fill_live_negated(
    words: U64, out: NDArray[np.float64], at: int, neg: NDArray[np.float64]
) -> None:
    """:func:`fill_live`, then ``neg[k] = -out[at + k]`` for every ``k < neg.size``.

    For a caller that then takes numpy's ``np.log1p(neg, out=neg)`` of a part of the draw
    (``FastSBET.draw`` where numpy's log1p differs from the kernels'): one call instead of
    ``Generator.random`` and ``np.negative``, the same numbers (negation is exact).
    """
    fill_live(words, out)
    for k in range(neg.size):
        neg[k] = -out[at + k]


def live_words(bits: np.random.BitGenerator) -> U64 | None:
    """A uint64 (4,) view of ``bits``' state in the bit generator's own memory, or None.

    Kernels that draw with :func:`fill_live` on it advance the generator itself. None
    without the kernels, for another bit generator than PCG64, or if numpy's layout is not
    the one this reads (checked once per process on a throwaway generator: the view against
    its ``state``, then draws and end state against numpy's own). The view does not keep
    ``bits`` alive: the caller keeps ``bits``. Kernels step it without the bit generator's
    lock: for a stream only its owner draws from (the env's are its own).
    """
    if not (_jit.ENABLED and type(bits) is np.random.PCG64 and _layout_ok()):
        return None
    return _view(bits)  # None too if its pointers are not where they were in the check


# PyCapsule_GetPointer with its own prototype (ctypes.pythonapi's is shared with others)
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi)
)
_WORDS = ctypes.c_uint64 * 4


def _view(bits: np.random.BitGenerator) -> U64 | None:
    """The four words of numpy's ``pcg64_random_t`` (numpy/random/src/pcg64), viewed.

    ``bits.capsule`` holds a ``bitgen_t`` whose first field points to a ``pcg64_state``,
    whose first field points to them. (``bits.ctypes`` gives the same address, but building
    that interface costs several times more, once per generator.) numpy's PCG64 keeps all
    three inside the Python object itself: each pointer is checked to lie there before it
    is read, so another layout gives None, never a read elsewhere.
    """
    low = id(bits)
    high = low + type(bits).__basicsize__

    def inside(address: int | None, size: int) -> bool:
        return address is not None and low <= address and address + size <= high

    bitgen = _capsule_pointer(bits.capsule, b"BitGenerator")
    if not inside(bitgen, 8):
        return None
    state = ctypes.c_void_p.from_address(bitgen).value
    if not inside(state, 8):
        return None
    pcg = ctypes.c_void_p.from_address(cast(int, state)).value
    if not inside(pcg, 32):
        return None
    words: U64 = np.frombuffer(memoryview(_WORDS.from_address(cast(int, pcg))), np.uint64)
    return words


@functools.cache
def _layout_ok() -> bool:
    """Whether :func:`_view` and :func:`fill_live` give numpy's draws and states here.

    Called with the kernels on (:func:`live_words` checks).
    """
    probe, twin = np.random.PCG64(20261206), np.random.PCG64(20261206)
    st = probe.state["state"]
    words = _view(probe)
    s, inc = st["state"], st["inc"]
    if words is None or tuple(int(w) for w in words) != (
        s & _MASK64,
        s >> 64,
        inc & _MASK64,
        inc >> 64,
    ):
        return False
    mine = np.empty(7)
    fill_live_kernel(words, mine)
    theirs = np.random.Generator(twin).random(7)
    return bool((mine == theirs).all()) and probe.state == twin.state


@inlined
def jump(state: U64, table: U64, d: int) -> tuple[np.uint64, np.uint64]:
    """``(hi, lo)`` of the state ``d`` steps after ``state`` (a quadruple with its inc)."""
    hi, lo = _jump(
        state[0], state[1], state[2], state[3], table[d, 0], table[d, 1], table[d, 2], table[d, 3]
    )
    return hi, lo


@inlined
def uniform(state: State, table: U64, offset: int) -> float:
    """The uniform ``rng.random()`` draws at ``offset`` (0-based) after ``state``.

    ``state`` is ``(s_hi, s_lo, inc_hi, inc_lo)``; ``table`` is :func:`jump_table`'s.
    """
    s_hi, s_lo, i_hi, i_lo = state
    d = offset + 1
    return float(_draw(s_hi, s_lo, i_hi, i_lo, table[d, 0], table[d, 1], table[d, 2], table[d, 3]))


@kernel
def seeded(words: U64, out: U64) -> None:
    """The states ``PCG64(seed_seq)`` starts from, given each seed sequence's words.

    Args:
        words: Shape (B, 4) uint64: ``seed_seq.generate_state(4, np.uint64)``.
        out: Shape (B, 4) uint64: receives the states and increments.
    """
    for b in range(words.shape[0]):
        out[b, 0], out[b, 1], out[b, 2], out[b, 3] = _seed(
            words[b, 0], words[b, 1], words[b, 2], words[b, 3]
        )


@kernel
def draws_into(state: U64, table: U64, out: NDArray[np.float64]) -> None:
    """Each stream's next ``m`` doubles, ``rng.random(m)``: ``out`` (B, m) from ``state``.

    ``table`` (:func:`jump_table`) has at least m + 1 entries; ``state`` is not advanced.
    """
    for b in range(state.shape[0]):
        at = (state[b, 0], state[b, 1], state[b, 2], state[b, 3])
        for o in range(out.shape[1]):
            out[b, o] = uniform(at, table, o)


@kernel
def advance_into(state: U64, table: U64, d: int) -> None:
    """Every state ``d`` entries of ``table`` on (``PCG64.advance``), in place."""
    for b in range(state.shape[0]):
        state[b, 0], state[b, 1] = jump(state[b], table, d)


def jump_table(size: int, step: int = 1) -> U64:
    """``(M^d, G_d)`` as uint64 quadruples for d = 0, step, ..., size * step; (size + 1, 4)."""
    out = np.empty((size + 1, 4), dtype=np.uint64)
    m_step, g_step = pow(MULTIPLIER, step, _MOD), 0
    power = 1
    for _ in range(step):  # G_step = 1 + M + ... + M^(step - 1)
        g_step = (g_step + power) % _MOD
        power = power * MULTIPLIER % _MOD
    a, g = 1, 0
    for d in range(size + 1):
        out[d] = (a >> 64, a & _MASK64, g >> 64, g & _MASK64)
        a, g = a * m_step % _MOD, (g * m_step + g_step) % _MOD  # (M^s)^(d+1), G_(d+1)s
    return out


def states(rngs: Sequence[np.random.Generator]) -> U64 | None:
    """Each generator's PCG64 state and increment, (B, 4) uint64.

    None unless all are PCG64s with no buffered 32-bit half (``Generator.random`` would not
    use it, but ``advance`` would drop it).
    """
    out = np.empty((len(rngs), 4), dtype=np.uint64)
    for b, rng in enumerate(rngs):
        bits = rng.bit_generator
        if type(bits) is not np.random.PCG64:
            return None
        st = bits.state
        if st["has_uint32"]:
            return None
        s, inc = st["state"]["state"], st["state"]["inc"]
        out[b] = (s >> 64, s & _MASK64, inc >> 64, inc & _MASK64)
    return out
