"""SHA-256, HMAC-SHA-256, Merkle roots and block headers inside numba kernels.

The chain hashes with :mod:`hashlib` (:mod:`mgenv.chain.transactions`,
:mod:`mgenv.chain.ledger`); a kernel cannot call hashlib, so this module writes the same
functions out for kernels that do a whole period of the chain in one call. Every digest equals
hashlib's byte for byte (tests/test_sha_kernels.py compares them).

Primitives (FIPS 180-4):

* :func:`sha256_compress`: the compression function (section 6.2.2) of one 64-byte block.
  Every kernel compresses through ``_compress_words``: the SHA extensions of x86 CPUs
  (SHA-NI: ``sha256rnds2``, ``sha256msg1``, ``sha256msg2``, emitted as LLVM intrinsics by a
  numba ``@intrinsic``; ~60 ns per block) when numba's target CPU has them
  (:data:`HAVE_SHA_NI`), else portable integer code (~240 ns per block). The two are
  bit-identical (tests/test_sha_ni.py); ``MGENV_SHA_NI=0`` forces the portable code.
* :func:`sha256_into`: SHA-256 of a byte array (padding, section 5.1.1).
* :func:`hmac_pads` / :func:`hmac_pad_table`: the HMAC inner and outer *midstates*, the states
  after compressing ``key ^ ipad`` and ``key ^ opad`` (RFC 2104, section 2), computed once.
* :func:`hmac_into`: HMAC-SHA-256 of a message from the midstates (two compressions for a
  message of up to 55 bytes, e.g. a 40-byte payload).
* :func:`sign_pairs_into`: the seller's and the buyer's tags of T payloads
  (``ModelledSigner.sign_pairs``).
* :func:`merkle_root_into`: Bitcoin-style Merkle root (``ledger.merkle_root``).
* :func:`block_into`: a block's header and hash from its records (``ledger.make_block``).

For a fused kernel: :func:`sha256_compress`, :func:`sha256_into`, :func:`hmac_into`,
:func:`_hmac_core`, :func:`_sign_pairs_core`, :func:`_merkle_core` and :func:`_block_core` are
inlined into their callers (:func:`mgenv._jit.inlined`); they are thin, and the heavy parts
(:func:`_compress_words`, :func:`_absorb`, :func:`_sha256_core`, a Merkle level, the leaves,
the header fields) are cached kernels they call once per block or message. (Inlining the 64
rounds into each caller made numba compile for minutes; a call costs a few ns against
~250 ns per compression.) The ``@kernel`` functions without a leading underscore are the entry
points from Python. Without numba (``MGENV_JIT=0``) every function is plain Python on numpy
scalars: correct and slow (about a millisecond per block); the chain keeps hashing with
hashlib, and only the tests call these.

Arithmetic: 32-bit words are held in int64 values in [0, 2**32) and masked with
``& 0xFFFFFFFF`` after each addition and rotation (numba widens uint32 arithmetic to 64 bits
and would mix signed and unsigned types; int64 keeps every expression exact and the same in
numba and in Python). Scratch arrays (``w``: uint32 (64,), the message schedule; ``state``:
uint32 (8,)) are passed in by the cores so that they allocate nothing; the ``@kernel`` entry
points allocate them once per call.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any, Final, cast

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv._jit import inlined, kernel

U8 = NDArray[np.uint8]
U32 = NDArray[np.uint32]

_M: Final = 0xFFFFFFFF
_I64 = np.int64

#: Round constants K_0..K_63 (FIPS 180-4, section 4.2.2).
_K: Final = np.array(
    [
        0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
        0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
        0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
        0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
        0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
        0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
        0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
        0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
        0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
        0xC67178F2,
    ],
    dtype=np.int64,
)  # fmt: skip

#: Initial hash value H(0) (FIPS 180-4, section 5.3.3).
H0: Final = np.array(
    [
        0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
        0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
    ],
    dtype=np.uint32,
)  # fmt: skip


# ------------------------------------------------------------------ the compression function


@kernel
def _compress_words_portable(state: U32, w: U32, expand: bool) -> None:
    """The compression function on a message schedule (FIPS 180-4, section 6.2.2), portable.

    Args:
        state: Shape (8,), uint32: H(i-1), replaced by H(i) in place.
        w: Shape (64,), uint32: W_0..W_15 of the block (big-endian words); with ``expand``
            W_16..W_63 are computed into it (step 1), else they must be there already.
            (The SHA-NI version computes them in registers and leaves ``w[16:]`` alone: no
            caller reads them back.)
        expand: Whether to compute the schedule.

    One compiled function (not inlined: numba's inlining of the 64 rounds into each caller
    took minutes to compile), called once per block. The rounds are written out eight per
    iteration with the working variables' roles rotated instead of moved, about twice as
    fast as one round per iteration; every sum is masked to 32 bits, every rotation
    ``ROTR^n(x) = (x >> n) | (x << (32 - n))`` (section 3.2) is masked once per sigma.
    """
    if expand:
        for t in range(16, 64):
            x = _I64(w[t - 15])
            y = _I64(w[t - 2])
            s0 = ((x >> 7 | x << 25) & _M) ^ ((x >> 18 | x << 14) & _M) ^ x >> 3
            s1 = ((y >> 17 | y << 15) & _M) ^ ((y >> 19 | y << 13) & _M) ^ y >> 10
            w[t] = (s1 + _I64(w[t - 7]) + s0 + _I64(w[t - 16])) & _M
    a = _I64(state[0])
    b = _I64(state[1])
    c = _I64(state[2])
    d = _I64(state[3])
    e = _I64(state[4])
    f = _I64(state[5])
    g = _I64(state[6])
    h = _I64(state[7])
    for t in range(0, 64, 8):
        # round t + 0: (a, ..., h) are (a, b, c, d, e, f, g, h)
        s1 = ((e >> 6 | e << 26) & _M) ^ ((e >> 11 | e << 21) & _M) ^ ((e >> 25 | e << 7) & _M)
        t1 = (h + s1 + (g ^ (e & (f ^ g))) + _K[t] + _I64(w[t])) & _M
        s0 = ((a >> 2 | a << 30) & _M) ^ ((a >> 13 | a << 19) & _M) ^ ((a >> 22 | a << 10) & _M)
        d = (d + t1) & _M
        h = (t1 + s0 + ((a & b) | (c & (a | b)))) & _M
        # round t + 1: (a, ..., h) are (h, a, b, c, d, e, f, g)
        s1 = ((d >> 6 | d << 26) & _M) ^ ((d >> 11 | d << 21) & _M) ^ ((d >> 25 | d << 7) & _M)
        t1 = (g + s1 + (f ^ (d & (e ^ f))) + _K[t + 1] + _I64(w[t + 1])) & _M
        s0 = ((h >> 2 | h << 30) & _M) ^ ((h >> 13 | h << 19) & _M) ^ ((h >> 22 | h << 10) & _M)
        c = (c + t1) & _M
        g = (t1 + s0 + ((h & a) | (b & (h | a)))) & _M
        # round t + 2: (a, ..., h) are (g, h, a, b, c, d, e, f)
        s1 = ((c >> 6 | c << 26) & _M) ^ ((c >> 11 | c << 21) & _M) ^ ((c >> 25 | c << 7) & _M)
        t1 = (f + s1 + (e ^ (c & (d ^ e))) + _K[t + 2] + _I64(w[t + 2])) & _M
        s0 = ((g >> 2 | g << 30) & _M) ^ ((g >> 13 | g << 19) & _M) ^ ((g >> 22 | g << 10) & _M)
        b = (b + t1) & _M
        f = (t1 + s0 + ((g & h) | (a & (g | h)))) & _M
        # round t + 3: (a, ..., h) are (f, g, h, a, b, c, d, e)
        s1 = ((b >> 6 | b << 26) & _M) ^ ((b >> 11 | b << 21) & _M) ^ ((b >> 25 | b << 7) & _M)
        t1 = (e + s1 + (d ^ (b & (c ^ d))) + _K[t + 3] + _I64(w[t + 3])) & _M
        s0 = ((f >> 2 | f << 30) & _M) ^ ((f >> 13 | f << 19) & _M) ^ ((f >> 22 | f << 10) & _M)
        a = (a + t1) & _M
        e = (t1 + s0 + ((f & g) | (h & (f | g)))) & _M
        # round t + 4: (a, ..., h) are (e, f, g, h, a, b, c, d)
        s1 = ((a >> 6 | a << 26) & _M) ^ ((a >> 11 | a << 21) & _M) ^ ((a >> 25 | a << 7) & _M)
        t1 = (d + s1 + (c ^ (a & (b ^ c))) + _K[t + 4] + _I64(w[t + 4])) & _M
        s0 = ((e >> 2 | e << 30) & _M) ^ ((e >> 13 | e << 19) & _M) ^ ((e >> 22 | e << 10) & _M)
        h = (h + t1) & _M
        d = (t1 + s0 + ((e & f) | (g & (e | f)))) & _M
        # round t + 5: (a, ..., h) are (d, e, f, g, h, a, b, c)
        s1 = ((h >> 6 | h << 26) & _M) ^ ((h >> 11 | h << 21) & _M) ^ ((h >> 25 | h << 7) & _M)
        t1 = (c + s1 + (b ^ (h & (a ^ b))) + _K[t + 5] + _I64(w[t + 5])) & _M
        s0 = ((d >> 2 | d << 30) & _M) ^ ((d >> 13 | d << 19) & _M) ^ ((d >> 22 | d << 10) & _M)
        g = (g + t1) & _M
        c = (t1 + s0 + ((d & e) | (f & (d | e)))) & _M
        # round t + 6: (a, ..., h) are (c, d, e, f, g, h, a, b)
        s1 = ((g >> 6 | g << 26) & _M) ^ ((g >> 11 | g << 21) & _M) ^ ((g >> 25 | g << 7) & _M)
        t1 = (b + s1 + (a ^ (g & (h ^ a))) + _K[t + 6] + _I64(w[t + 6])) & _M
        s0 = ((c >> 2 | c << 30) & _M) ^ ((c >> 13 | c << 19) & _M) ^ ((c >> 22 | c << 10) & _M)
        f = (f + t1) & _M
        b = (t1 + s0 + ((c & d) | (e & (c | d)))) & _M
        # round t + 7: (a, ..., h) are (b, c, d, e, f, g, h, a)
        s1 = ((f >> 6 | f << 26) & _M) ^ ((f >> 11 | f << 21) & _M) ^ ((f >> 25 | f << 7) & _M)
        t1 = (a + s1 + (h ^ (f & (g ^ h))) + _K[t + 7] + _I64(w[t + 7])) & _M
        s0 = ((b >> 2 | b << 30) & _M) ^ ((b >> 13 | b << 19) & _M) ^ ((b >> 22 | b << 10) & _M)
        e = (e + t1) & _M
        a = (t1 + s0 + ((b & c) | (d & (b | c)))) & _M
    state[0] = (_I64(state[0]) + a) & _M
    state[1] = (_I64(state[1]) + b) & _M
    state[2] = (_I64(state[2]) + c) & _M
    state[3] = (_I64(state[3]) + d) & _M
    state[4] = (_I64(state[4]) + e) & _M
    state[5] = (_I64(state[5]) + f) & _M
    state[6] = (_I64(state[6]) + g) & _M
    state[7] = (_I64(state[7]) + h) & _M


# ------------------------------------------------------------------ SHA-NI (x86 SHA extensions)


def _sha_ni_setting() -> bool:
    """Whether the user allows SHA-NI: the environment variable ``MGENV_SHA_NI`` is not "0"."""
    return os.environ.get("MGENV_SHA_NI", "1").strip() != "0"


@functools.cache  # read at import twice (HAVE_SHA_NI, the intrinsic's vzeroupper)
def _numba_target_features() -> frozenset[str]:
    """The x86 features numba's JIT target has, e.g. ``{"sha", "avx", "sse2"}`` (empty elsewhere).

    The features numba compiles for are ``NUMBA_CPU_FEATURES`` when set (e.g. for caches
    shared between machines), else the host's as LLVM reports them
    (``numba.core.codegen.get_host_cpu_features``: ``llvmlite.binding.get_host_cpu_features``
    flattened to ``"+sse2,+sha,-avx512f,..."``; the ``+`` ones are returned). On other
    architectures (whose feature names differ, e.g. AArch64's ``sha2``) the ``llvm.x86.*``
    intrinsics do not exist: empty, as without numba.
    """
    try:  # modules as Any: numba's own annotations are partial, llvmlite has none
        codegen: Any = importlib.import_module("numba.core.codegen")
        config: Any = importlib.import_module("numba.core.config")
        llvm: Any = importlib.import_module("llvmlite.binding")
    except ImportError:
        return frozenset()
    arch = str(llvm.get_process_triple()).split("-")[0]
    if arch not in ("x86_64", "i386", "i486", "i586", "i686"):  # llvm.x86.* only exist there
        return frozenset()
    features = config.CPU_FEATURES
    if features is None:
        features = codegen.get_host_cpu_features()
    return frozenset(f[1:] for f in str(features).split(",") if f.startswith("+"))


def _numba_target_has_sha() -> bool:
    """Whether numba's JIT target would let LLVM emit the SHA extensions (feature ``+sha``).

    With the feature off, LLVM cannot select the ``llvm.x86.sha256*`` intrinsics, so they must
    not be emitted at all.
    """
    return "sha" in _numba_target_features()


def _make_sha_ni_compress() -> Callable[[U32, U32], None]:
    """Build the numba intrinsic ``compress(state, w)``: one block's 64 rounds with SHA-NI.

    Only called when numba is present and its target has ``+sha``. The intrinsic emits LLVM IR
    on ``<4 x i32>`` vectors, following the structure of Intel's "Intel SHA Extensions" white
    paper (2013) and the public-domain ``sha256_process_x86`` (J. Walton, after S. Gulley):

    * the state (A..H in ``state[0..7]``) is held as two vectors ``ABEF`` = (F, E, B, A) and
      ``CDGH`` = (H, G, D, C) in lanes 0..3, the operand order of ``sha256rnds2`` (the C code
      builds them with ``_mm_shuffle_epi32``, ``_mm_alignr_epi8`` and ``_mm_blend_epi16``;
      here one ``shufflevector`` each);
    * the schedule is 16 vectors M_j = (W_4j, .., W_4j+3). M_0..M_3 are ``w[0..15]`` (the
      message words as values, so no byte swap: the callers assemble big-endian words);
      for j >= 4, ``M_j = sha256msg2(sha256msg1(M_j-4, M_j-3) + alignr(M_j-1, M_j-2, 4),
      M_j-1)`` (``sha256msg1`` adds sigma0 of W_t-15, the ``_mm_alignr_epi8(.., 4)`` supplies
      W_t-7, ``sha256msg2`` adds sigma1 of W_t-2; FIPS 180-4, 6.2.2 step 1);
    * each group of four rounds: ``X = M_j + K_4j..4j+3``; ``CDGH = sha256rnds2(CDGH, ABEF,
      X)`` (rounds 4j, 4j+1: the instruction uses the low two lanes of its implicit xmm0
      operand, LLVM's third argument); ``X = shuffle(X, 0x0E)`` (lanes 2, 3 moved down, i.e.
      ``_mm_shuffle_epi32(X, 0x0E)``); ``ABEF = sha256rnds2(ABEF, CDGH, X)`` (rounds 4j+2,
      4j+3);
    * the saved input state is added (``_mm_add_epi32``) and the vectors are permuted back to
      A..H.

    * before all of it, where the target has AVX, ``vzeroupper``
      (``llvm.x86.avx.vzeroupper``): the SHA instructions exist only in the legacy SSE
      encoding, and legacy SSE code that runs while the upper halves of the vector
      registers are dirty (LLVM merges stores into 256-bit ``ymm`` ones, the state's 8
      words among them) pays a transition penalty per instruction on Intel CPUs. Measured
      on an AVX-512 Xeon (numba 0.68): a compression in a loop took 8,400 ns without it,
      50 ns with it; the SBET chain kernel 77 us a period instead of ~11. The machine used
      before showed no such slowdown (the same kernel ran at ~12 us there). Without AVX
      there is nothing to clear, and no ``vzeroupper`` to emit (Intel's Atoms have SHA
      without AVX).

    ``state`` and ``w`` are 1-d uint32 arrays of any layout (elements addressed through the
    array's data pointer and strides, ``numba.core.cgutils.get_item_pointer``; for the
    contiguous scratch arrays LLVM merges them into vector loads and stores). ``state`` must
    have 8 elements and ``w`` at least 16 (not checked, as in the portable code).
    """
    # modules as Any: llvmlite has no type information, numba's is partial
    ir: Any = importlib.import_module("llvmlite.ir")
    cgutils: Any = importlib.import_module("numba.core.cgutils")
    types: Any = importlib.import_module("numba.core.types")
    intrinsic: Any = importlib.import_module("numba.core.extending").intrinsic

    i32 = ir.IntType(32)
    v4 = ir.VectorType(i32, 4)
    clear_upper = "avx" in _numba_target_features()

    def const4(values: Sequence[int]) -> Any:
        """A ``<4 x i32>`` constant (values in [0, 2**32) written as signed i32)."""
        return ir.Constant(
            v4, [ir.Constant(i32, v - (1 << 32) if v >= 1 << 31 else v) for v in values]
        )

    def mask(lanes: Sequence[int]) -> Any:
        """A ``shufflevector`` mask: lanes 0-3 of the first operand, 4-7 of the second."""
        return ir.Constant(ir.VectorType(i32, len(lanes)), [ir.Constant(i32, x) for x in lanes])

    def u32_array(ty: Any) -> bool:
        """Whether the numba type ``ty`` is a 1-d uint32 array (any layout)."""
        return isinstance(ty, types.Array) and ty.ndim == 1 and ty.dtype == types.uint32

    def sha_ni_compress(typingctx: Any, state: Any, w: Any) -> Any:
        """Typing: ``void(state, w)`` for 1-d uint32 arrays, else no match (None)."""
        if not (u32_array(state) and u32_array(w)):
            return None
        sig = types.void(state, w)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            st_ty, w_ty = signature.args
            st = context.make_array(st_ty)(context, builder, args[0])
            wa = context.make_array(w_ty)(context, builder, args[1])
            module = builder.module
            rnds2 = cgutils.get_or_insert_function(
                module, ir.FunctionType(v4, [v4, v4, v4]), "llvm.x86.sha256rnds2"
            )
            msg1 = cgutils.get_or_insert_function(
                module, ir.FunctionType(v4, [v4, v4]), "llvm.x86.sha256msg1"
            )
            msg2 = cgutils.get_or_insert_function(
                module, ir.FunctionType(v4, [v4, v4]), "llvm.x86.sha256msg2"
            )

            def ptr(aty: Any, ary: Any, i: int) -> Any:
                index = context.get_constant(types.intp, i)
                return cgutils.get_item_pointer(context, builder, aty, ary, [index])

            def load4(aty: Any, ary: Any, start: int) -> Any:
                vec = ir.Constant(v4, ir.Undefined)
                for lane in range(4):
                    x = builder.load(ptr(aty, ary, start + lane))
                    vec = builder.insert_element(vec, x, ir.Constant(i32, lane))
                return vec

            def store4(aty: Any, ary: Any, start: int, vec: Any) -> None:
                for lane in range(4):
                    x = builder.extract_element(vec, ir.Constant(i32, lane))
                    builder.store(x, ptr(aty, ary, start + lane))

            if clear_upper:  # legacy SSE after dirty ymm/zmm uppers: see the docstring
                vzeroupper = cgutils.get_or_insert_function(
                    module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.avx.vzeroupper"
                )
                builder.call(vzeroupper, [])
            abcd = load4(st_ty, st, 0)
            efgh = load4(st_ty, st, 4)
            abef = builder.shuffle_vector(abcd, efgh, mask([5, 4, 1, 0]))  # (F, E, B, A)
            cdgh = builder.shuffle_vector(abcd, efgh, mask([7, 6, 3, 2]))  # (H, G, D, C)
            abef_in, cdgh_in = abef, cdgh
            m = [load4(w_ty, wa, 4 * j) for j in range(4)]
            for j in range(4, 16):
                # alignr(M_j-1, M_j-2, 4) = (W_4j-7, .., W_4j-4)
                mid = builder.shuffle_vector(m[j - 2], m[j - 1], mask([1, 2, 3, 4]))
                x = builder.add(builder.call(msg1, [m[j - 4], m[j - 3]]), mid)
                m.append(builder.call(msg2, [x, m[j - 1]]))
            undef = ir.Constant(v4, ir.Undefined)
            for j in range(16):
                x = builder.add(m[j], const4([int(k) for k in _K[4 * j : 4 * j + 4]]))
                cdgh = builder.call(rnds2, [cdgh, abef, x])
                x = builder.shuffle_vector(x, undef, mask([2, 3, 0, 0]))
                abef = builder.call(rnds2, [abef, cdgh, x])
            abef = builder.add(abef, abef_in)
            cdgh = builder.add(cdgh, cdgh_in)
            store4(st_ty, st, 0, builder.shuffle_vector(abef, cdgh, mask([3, 2, 7, 6])))
            store4(st_ty, st, 4, builder.shuffle_vector(abef, cdgh, mask([1, 0, 5, 4])))
            return context.get_dummy_value()

        return sig, codegen

    return cast(Callable[[U32, U32], None], intrinsic(sha_ni_compress))


#: Whether :func:`_compress_words` runs the SHA-NI intrinsic: numba is enabled
#: (``MGENV_JIT`` not "0"), numba's target CPU has the SHA extensions (``+sha``), and
#: ``MGENV_SHA_NI`` is not "0". Fixed at import; ``False`` means the intrinsic is never built.
HAVE_SHA_NI: Final[bool] = _jit.AVAILABLE and _sha_ni_setting() and _numba_target_has_sha()

_sha_ni_compress: Callable[[U32, U32], None] | None = (
    _make_sha_ni_compress() if HAVE_SHA_NI else None
)


@inlined
def _compress_words_sha_ni(state: U32, w: U32, expand: bool) -> None:
    """:func:`_compress_words_portable` with the SHA extensions (the intrinsic above).

    Same arguments and result, except that the schedule is computed in registers from
    ``w[0..15]`` whatever ``expand`` says, and ``w[16..63]`` are neither read nor written
    (with ``expand`` false they must hold the schedule of ``w[0..15]``, as every caller's
    do, so the result is the same). About 4x faster than the portable code; inlined, as the
    intrinsic is ~150 LLVM instructions that compile quickly. Only compiled when
    :data:`HAVE_SHA_NI` (else ``_sha_ni_compress`` is None and calling this fails).
    """
    _sha_ni_compress(state, w)  # type: ignore[misc]


#: The compression function the kernels call: ``_compress_words(state, w, expand)`` (see
#: :func:`_compress_words_portable` for the arguments). Chosen at import by
#: :data:`HAVE_SHA_NI`; numba resolves this global when it compiles a caller, so a process
#: without the SHA extensions never lowers the intrinsic. A caller's cached machine code
#: contains the chosen function: numba's cache index includes the CPU's features, and
#: :func:`mgenv._jit._drop_stale_caches` includes ``MGENV_SHA_NI`` in its stamp.
_compress_words = _compress_words_sha_ni if HAVE_SHA_NI else _compress_words_portable


@inlined
def _word(buf: U8, i: int) -> np.int64:
    """The big-endian 32-bit word at bytes ``buf[i:i + 4]``."""
    return (
        (_I64(buf[i]) << 24) | (_I64(buf[i + 1]) << 16) | (_I64(buf[i + 2]) << 8) | _I64(buf[i + 3])
    )


@inlined
def sha256_compress(state: U32, block: U8, w: U32) -> None:
    """Compress one 64-byte block into ``state`` (FIPS 180-4, section 6.2.2).

    Args:
        state: Shape (8,), uint32: the hash value H(i-1), replaced by H(i) in place.
        block: The 64-byte message block M(i): a uint8 array (or bytes) of at least 64 bytes,
            of which the first 64 are read.
        w: Shape (64,), uint32 scratch (the message schedule), overwritten.
    """
    for t in range(16):
        w[t] = _word(block, 4 * t)
    _compress_words(state, w, True)


def _py_schedule(words: list[int]) -> list[int]:
    """W_0..W_63 from the 16 words of a block, in Python ints (FIPS 180-4, 6.2.2 step 1)."""
    w = list(words)
    for t in range(16, 64):
        x, y = w[t - 15], w[t - 2]
        s0 = ((x >> 7 | x << 25) & _M) ^ ((x >> 18 | x << 14) & _M) ^ (x >> 3)
        s1 = ((y >> 17 | y << 15) & _M) ^ ((y >> 19 | y << 13) & _M) ^ (y >> 10)
        w.append((s1 + w[t - 7] + s0 + w[t - 16]) & _M)
    return w


#: The expanded schedule of the last block of a 64-byte message, which is only padding:
#: ``0x80``, 55 zero bytes, the length 512 bits as a big-endian u64 (FIPS 180-4, 5.1.1).
#: Every Merkle parent hashes 64 bytes, so this schedule is computed once.
_PAD64_W: Final = np.array(_py_schedule([0x80000000] + [0] * 14 + [512]), dtype=np.uint32)


# ------------------------------------------------------------------ whole messages


@inlined
def _tail_byte(msg: U8, n: int, q: int) -> np.int64:
    """Byte ``q`` (>= the last full block) of the padded message ``msg`` of ``n`` bytes.

    The message bytes, then 0x80, then zeros; the length words are written separately.
    """
    if q < n:
        return _I64(msg[q])
    if q == n:
        return _I64(0x80)
    return _I64(0)


@kernel
def _absorb(state: U32, msg: U8, prefix: int, w: U32) -> None:
    """Compress ``msg`` and its padding into ``state`` (FIPS 180-4, 5.1.1 and 6.2.2).

    ``state`` already holds the hash of ``prefix`` bytes (a multiple of 64: 0 for a plain
    SHA-256, 64 after an HMAC pad block), so the length in the padding is ``prefix +
    msg.size`` bytes. Full 64-byte blocks are read straight from ``msg``; the one or two last
    blocks are assembled word by word in ``w``.

    Args:
        state: Shape (8,), uint32, updated in place.
        msg: Shape (n,), uint8 (or bytes).
        prefix: Bytes already compressed into ``state``.
        w: Shape (64,), uint32 scratch.
    """
    n = len(msg)
    full = n // 64
    for k in range(full):
        base = 64 * k
        for t in range(16):
            w[t] = _word(msg, base + 4 * t)
        _compress_words(state, w, True)
    bits = 8 * (prefix + n)
    n_tail = 1 if n - 64 * full <= 55 else 2  # room for 0x80 and the 8-byte length
    for k in range(full, full + n_tail):
        base = 64 * k
        for t in range(16):
            q = base + 4 * t
            if q + 4 <= n:
                w[t] = _word(msg, q)
            else:
                w[t] = (
                    (_tail_byte(msg, n, q) << 24)
                    | (_tail_byte(msg, n, q + 1) << 16)
                    | (_tail_byte(msg, n, q + 2) << 8)
                    | _tail_byte(msg, n, q + 3)
                )
        if k == full + n_tail - 1:
            w[14] = (bits >> 32) & _M
            w[15] = bits & _M
        _compress_words(state, w, True)


@inlined
def _digest_out(state: U32, out: U8) -> None:
    """The 32-byte digest: ``state`` as big-endian words (FIPS 180-4, 6.2.2 end)."""
    for i in range(8):
        x = _I64(state[i])
        out[4 * i] = (x >> 24) & 0xFF
        out[4 * i + 1] = (x >> 16) & 0xFF
        out[4 * i + 2] = (x >> 8) & 0xFF
        out[4 * i + 3] = x & 0xFF


@kernel
def _sha256_core(msg: U8, out: U8, state: U32, w: U32) -> None:
    """:func:`sha256_into` with caller-provided scratch (``state`` (8,), ``w`` (64,))."""
    for i in range(8):
        state[i] = H0[i]
    _absorb(state, msg, 0, w)
    _digest_out(state, out)


@inlined
def sha256_into(msg: U8, out: U8) -> None:
    """SHA-256 of ``msg`` into ``out`` (FIPS 180-4, 6.2).

    Args:
        msg: Shape (n,), uint8 (or bytes), any length including 0.
        out: Shape (32,), uint8: receives the digest.

    Allocates its 8- and 64-word scratch (two small arrays); kernels that hash many messages
    call :func:`_sha256_core` with their own.
    """
    state = np.empty(8, dtype=np.uint32)
    w = np.empty(64, dtype=np.uint32)
    _sha256_core(msg, out, state, w)


# ------------------------------------------------------------------ HMAC-SHA-256


def _py_compress(state: list[int], block: bytes) -> list[int]:
    """The compression function in Python ints (for the pads: no compilation, once per key)."""
    w = _py_schedule([int.from_bytes(block[4 * t : 4 * t + 4], "big") for t in range(16)])
    a, b, c, d, e, f, g, h = state
    for t in range(64):
        s1 = (
            ((e >> 6 | e << 26) & _M) ^ ((e >> 11 | e << 21) & _M) ^ ((e >> 25 | e << 7) & _M)
        ) & _M
        t1 = (h + s1 + (g ^ (e & (f ^ g))) + int(_K[t]) + w[t]) & _M
        s0 = (
            ((a >> 2 | a << 30) & _M) ^ ((a >> 13 | a << 19) & _M) ^ ((a >> 22 | a << 10) & _M)
        ) & _M
        t2 = (s0 + ((a & b) | (c & (a | b)))) & _M
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M, c, b, a, (t1 + t2) & _M
    return [(x + y) & _M for x, y in zip(state, (a, b, c, d, e, f, g, h), strict=True)]


def hmac_pads(key: bytes) -> tuple[U32, U32]:
    """HMAC-SHA-256's inner and outer midstates for ``key`` (RFC 2104, section 2).

    A key longer than the 64-byte block is first replaced by its SHA-256; the key is padded
    with zeros to 64 bytes, and the midstates are the SHA-256 states after compressing
    ``key ^ 0x36...`` (inner) and ``key ^ 0x5c...`` (outer). Plain Python (runs once per
    key): ``hmac_into(inner, outer, msg, out)`` then gives ``hmac.digest(key, msg, "sha256")``.

    Args:
        key: The secret, any length.

    Returns:
        ``(inner, outer)``, each shape (8,), uint32.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    h0 = [int(x) for x in H0]
    inner = _py_compress(h0, bytes(x ^ 0x36 for x in block))
    outer = _py_compress(h0, bytes(x ^ 0x5C for x in block))
    return np.array(inner, dtype=np.uint32), np.array(outer, dtype=np.uint32)


def hmac_pad_table(keys: list[bytes]) -> tuple[U32, U32]:
    """:func:`hmac_pads` of P keys as two tables: inner and outer, each shape (P, 8), uint32."""
    inner = np.empty((len(keys), 8), dtype=np.uint32)
    outer = np.empty((len(keys), 8), dtype=np.uint32)
    for p, key in enumerate(keys):
        inner[p], outer[p] = hmac_pads(key)
    return inner, outer


@inlined
def _hmac_core(inner: U32, outer: U32, msg: U8, out: U8, state: U32, w: U32) -> None:
    """:func:`hmac_into` with caller-provided scratch (``state`` (8,), ``w`` (64,) uint32).

    The outer hash's message is the inner digest (32 bytes after the 64-byte pad block), so
    its single block is built from the inner state's words directly.
    """
    for i in range(8):
        state[i] = inner[i]
    _absorb(state, msg, 64, w)
    for i in range(8):
        w[i] = state[i]
        state[i] = outer[i]
    w[8] = 0x80000000
    for i in range(9, 15):
        w[i] = 0
    w[15] = 8 * (64 + 32)
    _compress_words(state, w, True)
    _digest_out(state, out)


@inlined
def hmac_into(inner: U32, outer: U32, msg: U8, out: U8) -> None:
    """HMAC-SHA-256 of ``msg`` from a key's midstates (RFC 2104; see :func:`hmac_pads`).

    Args:
        inner: Shape (8,), uint32: the inner midstate (``key ^ ipad`` compressed).
        outer: Shape (8,), uint32: the outer midstate (``key ^ opad`` compressed).
        msg: Shape (n,), uint8 (or bytes), any length.
        out: Shape (32,), uint8: receives the tag.

    Allocates its 8- and 64-word scratch; kernels call :func:`_hmac_core` with their own.
    """
    state = np.empty(8, dtype=np.uint32)
    w = np.empty(64, dtype=np.uint32)
    _hmac_core(inner, outer, msg, out, state, w)


@inlined
def _sign_pairs_core(
    inner_tab: U32,
    outer_tab: U32,
    sellers: NDArray[np.int64],
    buyers: NDArray[np.int64],
    payloads: U8,
    seller_sigs: U8,
    buyer_sigs: U8,
) -> None:
    """:func:`sign_pairs_into` for inlining into a larger kernel (allocates 72 words)."""
    state = np.empty(8, dtype=np.uint32)
    w = np.empty(64, dtype=np.uint32)
    for t in range(sellers.shape[0]):
        s = sellers[t]
        b = buyers[t]
        _hmac_core(inner_tab[s], outer_tab[s], payloads[t], seller_sigs[t], state, w)
        _hmac_core(inner_tab[b], outer_tab[b], payloads[t], buyer_sigs[t], state, w)


@kernel
def sign_pairs_into(
    inner_tab: U32,
    outer_tab: U32,
    sellers: NDArray[np.int64],
    buyers: NDArray[np.int64],
    payloads: U8,
    seller_sigs: U8,
    buyer_sigs: U8,
) -> None:
    """The seller's and the buyer's HMAC-SHA-256 tags over T payloads (``sign_pairs``).

    Args:
        inner_tab: Shape (P, 8), uint32: inner midstates (:func:`hmac_pad_table`).
        outer_tab: Shape (P, 8), uint32: outer midstates.
        sellers: Shape (T,), int64: sellers' participant indices in [0, P).
        buyers: Shape (T,), int64: buyers' participant indices in [0, P).
        payloads: Shape (T, L), uint8: the signed messages (L = 40 for transactions).
        seller_sigs: Shape (T, 32), uint8: receives HMAC(key[sellers[t]], payloads[t]).
        buyer_sigs: Shape (T, 32), uint8: receives HMAC(key[buyers[t]], payloads[t]).
    """
    _sign_pairs_core(inner_tab, outer_tab, sellers, buyers, payloads, seller_sigs, buyer_sigs)


# ------------------------------------------------------------------ Merkle roots and blocks


@inlined
def _parent(left: U8, right: U8, dest: U8, state: U32, w: U32) -> None:
    """``dest = SHA-256(left || right)`` for 32-byte rows (a 64-byte message: two blocks).

    Reads both rows before writing ``dest``, which may be one of them.
    """
    for t in range(8):
        w[t] = _word(left, 4 * t)
        w[t + 8] = _word(right, 4 * t)
    for i in range(8):
        state[i] = H0[i]
    _compress_words(state, w, True)
    for t in range(64):  # the second block is only padding: its schedule is precomputed
        w[t] = _PAD64_W[t]
    _compress_words(state, w, False)
    _digest_out(state, dest)


@kernel
def _pair_level(src: U8, n: int, dest: U8, state: U32, w: U32) -> int:
    """One level of a Merkle tree: ``dest[i] = SHA-256(src[2i] || src[2i + 1])``.

    ``src`` has ``n`` >= 2 rows of 32 bytes; an odd level pairs its last row with itself.
    Writes ``(n + 1) // 2`` rows of ``dest`` and returns that number. ``dest`` may be
    ``src``: parent i is written after rows 2i and 2i + 1 are read, and no later parent reads
    a row below 2i + 2.
    """
    half = (n + 1) // 2
    for i in range(half):
        right = 2 * i + 1 if 2 * i + 1 < n else 2 * i
        _parent(src[2 * i], src[right], dest[i], state, w)
    return half


@kernel
def _merkle_inplace(level: U8, n: int, out: U8, state: U32, w: U32) -> None:
    """Merkle root of the first ``n`` >= 1 rows of ``level`` (n, 32), overwriting them."""
    while n > 1:
        n = _pair_level(level, n, level, state, w)
    for b in range(32):
        out[b] = level[0, b]


@inlined
def _merkle_core(leaves: U8, out: U8, scratch: U8, state: U32, w: U32) -> None:
    """:func:`merkle_root_into` with caller-provided scratch.

    ``scratch``: at least ``(n + 1) // 2`` rows of 32 bytes (uint8), overwritten; ``state``
    (8,) and ``w`` (64,) uint32. ``leaves`` is not modified.
    """
    n = leaves.shape[0]
    if n == 0:
        _sha256_core(leaves.ravel(), out, state, w)  # SHA-256(b""): no bytes
    elif n == 1:
        for b in range(32):
            out[b] = leaves[0, b]
    else:
        half = _pair_level(leaves, n, scratch, state, w)
        _merkle_inplace(scratch, half, out, state, w)


@kernel
def merkle_root_into(leaves: U8, out: U8) -> None:
    """Bitcoin-style Merkle root (single SHA-256) of 32-byte leaves: ``ledger.merkle_root``.

    No leaves: SHA-256(b""); one leaf: the leaf itself; else each level pairs its nodes
    (an odd level duplicates its last node) and a parent is SHA-256(left || right).

    Args:
        leaves: Shape (n, 32), uint8, not modified.
        out: Shape (32,), uint8: receives the root.

    Allocates a ``((n + 1) // 2, 32)`` scratch and 72 words; :func:`_merkle_core` takes them.
    """
    scratch = np.empty(((leaves.shape[0] + 1) // 2, 32), dtype=np.uint8)
    state = np.empty(8, dtype=np.uint32)
    w = np.empty(64, dtype=np.uint32)
    _merkle_core(leaves, out, scratch, state, w)


@kernel
def _leaf_hashes(records: U8, leaves: U8, state: U32, w: U32) -> None:
    """``leaves[i] = SHA-256(records[i])`` for each of the n records (the Merkle leaves)."""
    for i in range(records.shape[0]):
        for j in range(8):
            state[j] = H0[j]
        _absorb(state, records[i], 0, w)
        _digest_out(state, leaves[i])


@kernel
def _pack_header(
    height: int, period: int, prev_hash: U8, n_tx: int, timestamp_ms: int, header: U8
) -> None:
    """The header's fields but the Merkle root (bytes 48-80), as ``HEADER_STRUCT.pack``.

    ``<Qq32s32sIq``: height u64 at 0, period i64 at 8, prev_hash at 16, root at 48, n_tx
    u32 at 80, timestamp_ms i64 at 84; integers little-endian, two's complement.
    """
    for k in range(8):
        header[k] = (height >> (8 * k)) & 0xFF
        header[8 + k] = (period >> (8 * k)) & 0xFF
        header[84 + k] = (timestamp_ms >> (8 * k)) & 0xFF
    for k in range(4):
        header[80 + k] = (n_tx >> (8 * k)) & 0xFF
    for b in range(32):
        header[16 + b] = prev_hash[b]


@inlined
def _block_core(
    height: int,
    period: int,
    prev_hash: U8,
    records: U8,
    timestamp_ms: int,
    header: U8,
    block_hash: U8,
    leaves: U8,
    state: U32,
    w: U32,
) -> None:
    """:func:`block_into` with caller-provided scratch.

    ``leaves``: at least ``max(n, 1)`` rows of 32 bytes (uint8), overwritten with the
    transaction hashes and then the tree's levels; ``state`` (8,) and ``w`` (64,) uint32.
    """
    n = records.shape[0]
    root = header[48:80]
    if n == 0:
        _sha256_core(records.ravel(), root, state, w)  # SHA-256(b"")
    else:
        _leaf_hashes(records, leaves, state, w)
        _merkle_inplace(leaves, n, root, state, w)
    _pack_header(height, period, prev_hash, n, timestamp_ms, header)
    _sha256_core(header, block_hash, state, w)


@kernel
def block_into(
    height: int,
    period: int,
    prev_hash: U8,
    records: U8,
    timestamp_ms: int,
    header: U8,
    block_hash: U8,
) -> None:
    """A block's header and hash from its records: ``ledger.make_block``'s, byte for byte.

    Leaf i is SHA-256(records[i]); the root is :func:`merkle_root_into`'s of the leaves; the
    header is ``HEADER_STRUCT.pack(height, period, prev_hash, root, n, timestamp_ms)``
    (``<Qq32s32sIq``: u64, i64, 32 bytes, 32 bytes, u32, i64, little-endian, 92 bytes); the
    block hash is SHA-256(header).

    Args:
        height: Block height, in [0, 2**63).
        period: Market period (int64, may be negative).
        prev_hash: Shape (32,), uint8 (or bytes): the previous block's hash.
        records: Shape (n, R), uint8: the records (payload || seller sig || buyer sig).
        timestamp_ms: Commit time (ms, int64).
        header: Shape (92,), uint8: receives the header.
        block_hash: Shape (32,), uint8: receives SHA-256(header).

    Allocates an ``(max(n, 1), 32)`` scratch and 72 words; :func:`_block_core` takes them.
    """
    leaves = np.empty((max(records.shape[0], 1), 32), dtype=np.uint8)
    state = np.empty(8, dtype=np.uint32)
    w = np.empty(64, dtype=np.uint32)
    _block_core(
        height, period, prev_hash, records, timestamp_ms, header, block_hash, leaves, state, w
    )
