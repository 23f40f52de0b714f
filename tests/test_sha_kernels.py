"""SHA-256, HMAC, Merkle and block kernels (mgenv.chain.kernels_sha) equal hashlib's, byte for byte.

Every expected value is computed here by hashlib / hmac or by the chain's own hashlib code
(``ledger.merkle_root``, ``ledger.make_block``, ``ModelledSigner.sign_pairs``). Without numba
(``MGENV_JIT=0``) the kernels are plain Python and the same tests run on them (slowly), except
the one that calls the cores from a user kernel.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import struct

import numpy as np
import pytest

from mgenv import _jit
from mgenv.chain import kernels_sha as ks
from mgenv.chain.ledger import HEADER_STRUCT, make_block, merkle_root
from mgenv.chain.transactions import PAYLOAD_SIZE, ModelledSigner

LENGTHS = (0, 1, 3, 31, 32, 40, 55, 56, 57, 63, 64, 65, 100, 104, 119, 120, 127, 128, 129, 1000)


def as_array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).copy()


def sha(msg: np.ndarray | bytes) -> bytes:
    out = np.zeros(32, dtype=np.uint8)
    ks.sha256_into(msg, out)
    return out.tobytes()


# ------------------------------------------------------------------ SHA-256


@pytest.mark.parametrize("n", LENGTHS)
def test_sha256_lengths(n: int) -> None:
    data = bytes((7 * i + 3) & 0xFF for i in range(n))
    assert sha(as_array(data)) == hashlib.sha256(data).digest()


def test_sha256_random_messages() -> None:
    rng = np.random.default_rng(20240611)
    for _ in range(40):
        data = rng.bytes(int(rng.integers(0, 300)))
        assert sha(as_array(data)) == hashlib.sha256(data).digest(), len(data)


def test_sha256_bytes_strided_and_high_bytes() -> None:
    """bytes objects, non-contiguous views, and all-0xFF bytes (sign extension would show)."""
    for n in (0, 55, 64, 200):
        data = b"\xff" * n
        assert sha(data) == hashlib.sha256(data).digest()
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, 300, dtype=np.uint8)
    view = base[::3]
    assert not view.flags.c_contiguous
    assert sha(view) == hashlib.sha256(view.tobytes()).digest()


def test_sha256_into_does_not_modify_message() -> None:
    msg = np.arange(130, dtype=np.uint8)
    before = msg.copy()
    sha(msg)
    np.testing.assert_array_equal(msg, before)


def test_sha256_compress_against_hashlib() -> None:
    """Two compressions (a 64-byte block, then its padding block) give SHA-256 of 64 bytes."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        block = rng.integers(0, 256, 64, dtype=np.uint8)
        pad = np.zeros(64, dtype=np.uint8)
        pad[0] = 0x80
        pad[56:] = np.frombuffer((512).to_bytes(8, "big"), dtype=np.uint8)
        state = ks.H0.copy()
        w = np.empty(64, dtype=np.uint32)
        ks.sha256_compress(state, block, w)
        ks.sha256_compress(state, pad, w)
        assert state.dtype == np.uint32
        assert state.astype(">u4").tobytes() == hashlib.sha256(block.tobytes()).digest()


# ------------------------------------------------------------------ HMAC


@pytest.mark.parametrize("key_len", [0, 1, 32, 63, 64, 65, 100])
def test_hmac_keys_and_lengths(key_len: int) -> None:
    rng = np.random.default_rng(key_len)
    key = rng.bytes(key_len)
    inner, outer = ks.hmac_pads(key)
    assert inner.shape == (8,) and outer.shape == (8,) and inner.dtype == np.uint32
    for n in (0, 1, 32, 40, 55, 56, 63, 64, 65, 119, 120, 128, 1000):
        data = rng.bytes(n)
        out = np.zeros(32, dtype=np.uint8)
        ks.hmac_into(inner, outer, as_array(data), out)
        assert out.tobytes() == hmac.digest(key, data, "sha256"), (key_len, n)


def test_hmac_pad_table_rows() -> None:
    keys = [bytes([i]) * 32 for i in range(5)] + [b"", b"k" * 100]
    inner, outer = ks.hmac_pad_table(keys)
    assert inner.shape == (7, 8) and outer.shape == (7, 8)
    assert inner.dtype == np.uint32 and outer.dtype == np.uint32
    for p, key in enumerate(keys):
        i, o = ks.hmac_pads(key)
        np.testing.assert_array_equal(inner[p], i)
        np.testing.assert_array_equal(outer[p], o)
        out = np.zeros(32, dtype=np.uint8)
        ks.hmac_into(inner[p], outer[p], as_array(b"payload"), out)
        assert out.tobytes() == hmac.digest(key, b"payload", "sha256")


@pytest.mark.parametrize("t", [0, 1, 2, 4, 8, 13])
def test_sign_pairs_into_equals_modelled_signer(t: int) -> None:
    rng = np.random.default_rng(100 + t)
    n_participants = 9
    signer = ModelledSigner(int(rng.integers(0, 2**62)), n_participants)
    sellers = rng.integers(0, n_participants, t).tolist()
    buyers = rng.integers(0, n_participants, t).tolist()
    payloads = [rng.bytes(PAYLOAD_SIZE) for _ in range(t)]
    ref_sellers, ref_buyers = signer.sign_pairs(sellers, buyers, payloads)
    inner, outer = ks.hmac_pad_table(signer.keys)
    seller_sigs = np.zeros((t, 32), dtype=np.uint8)
    buyer_sigs = np.zeros((t, 32), dtype=np.uint8)
    payload_arr = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(t, PAYLOAD_SIZE)
    ks.sign_pairs_into(
        inner,
        outer,
        np.array(sellers, dtype=np.int64),
        np.array(buyers, dtype=np.int64),
        payload_arr,
        seller_sigs,
        buyer_sigs,
    )
    assert [bytes(row) for row in seller_sigs] == ref_sellers
    assert [bytes(row) for row in buyer_sigs] == ref_buyers


# ------------------------------------------------------------------ Merkle roots and blocks


@pytest.mark.parametrize("n", range(18))
def test_merkle_root_into(n: int) -> None:
    rng = np.random.default_rng(1000 + n)
    leaves = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    before = leaves.copy()
    out = np.zeros(32, dtype=np.uint8)
    ks.merkle_root_into(leaves, out)
    assert out.tobytes() == merkle_root([bytes(row) for row in leaves])
    np.testing.assert_array_equal(leaves, before)  # not modified


def test_merkle_root_by_hand() -> None:
    """Three leaves, built with hashlib from the definition (the odd level duplicates)."""
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    h = hashlib.sha256
    expected = h(h(leaves[0] + leaves[1]).digest() + h(leaves[2] + leaves[2]).digest()).digest()
    out = np.zeros(32, dtype=np.uint8)
    ks.merkle_root_into(np.frombuffer(b"".join(leaves), dtype=np.uint8).reshape(3, 32), out)
    assert out.tobytes() == expected
    empty = np.zeros((0, 32), dtype=np.uint8)
    ks.merkle_root_into(empty, out)
    assert out.tobytes() == hashlib.sha256(b"").digest()


def block_case(
    rng: np.random.Generator, n: int, height: int, period: int, stamp: int, size: int = 104
) -> None:
    records = [rng.bytes(size) for _ in range(n)]
    prev = rng.bytes(32)
    ref = make_block(height, period, prev, records, stamp)
    rec_arr = np.frombuffer(b"".join(records), dtype=np.uint8).reshape(n, size)
    header = np.zeros(HEADER_STRUCT.size, dtype=np.uint8)
    block_hash = np.zeros(32, dtype=np.uint8)
    ks.block_into(height, period, as_array(prev), rec_arr, stamp, header, block_hash)
    assert header.tobytes() == ref.header, (n, height, period, stamp)
    assert block_hash.tobytes() == ref.hash == hashlib.sha256(ref.header).digest()
    assert struct.unpack("<Qq32s32sIq", header.tobytes()) == (
        height,
        period,
        prev,
        merkle_root([hashlib.sha256(r).digest() for r in records]),
        n,
        stamp,
    )


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17])
def test_block_into_sizes(n: int) -> None:
    rng = np.random.default_rng(2000 + n)
    block_case(rng, n, n, 40 + n, 10_000 * n + 7)


@pytest.mark.parametrize(
    ("height", "period", "stamp"),
    [
        (0, 0, 0),
        (1, -1, -1),
        (255, -96, -123_456_789),
        (2**32 + 5, 2**40 + 3, 2**50 + 11),
        (2**63 - 1, -(2**63), 2**63 - 1),
    ],
)
def test_block_into_fields(height: int, period: int, stamp: int) -> None:
    rng = np.random.default_rng(abs(period) % 1000)
    for n in (0, 1, 4):
        block_case(rng, n, height, period, stamp)


@pytest.mark.parametrize("size", [40, 55, 56, 64, 168])
def test_block_into_record_sizes(size: int) -> None:
    """Other record sizes (168 = payload and two Ed25519 signatures) take other tail paths."""
    rng = np.random.default_rng(size)
    for n in (1, 3, 6):
        block_case(rng, n, 3, 2, 1, size)


def test_block_into_prev_hash_as_bytes() -> None:
    rng = np.random.default_rng(9)
    records = [rng.bytes(104) for _ in range(3)]
    prev = rng.bytes(32)
    ref = make_block(4, 5, prev, records, 6)
    header = np.zeros(92, dtype=np.uint8)
    block_hash = np.zeros(32, dtype=np.uint8)
    rec_arr = np.frombuffer(b"".join(records), dtype=np.uint8).reshape(3, 104)
    ks.block_into(4, 5, prev, rec_arr, 6, header, block_hash)
    assert header.tobytes() == ref.header and block_hash.tobytes() == ref.hash


@pytest.mark.skipif(not _jit.AVAILABLE, reason="numba is not installed or MGENV_JIT=0")
def test_cores_inline_into_a_user_kernel() -> None:
    """The inlined cores, called from another kernel as the fused chain kernel will."""
    import numba

    @numba.njit
    def fused(
        inner: np.ndarray,
        outer: np.ndarray,
        sellers: np.ndarray,
        buyers: np.ndarray,
        payloads: np.ndarray,
        prev: np.ndarray,
        header: np.ndarray,
        block_hash: np.ndarray,
    ) -> np.ndarray:
        t = sellers.shape[0]
        records = np.zeros((t, 104), dtype=np.uint8)
        ks._sign_pairs_core(
            inner, outer, sellers, buyers, payloads, records[:, 40:72], records[:, 72:104]
        )
        records[:, :40] = payloads
        leaves = np.empty((max(t, 1), 32), dtype=np.uint8)
        state = np.empty(8, dtype=np.uint32)
        w = np.empty(64, dtype=np.uint32)
        ks._block_core(3, -2, prev, records, 99, header, block_hash, leaves, state, w)
        digest = np.empty(32, dtype=np.uint8)
        ks.sha256_into(header, digest)
        tag = np.empty(32, dtype=np.uint8)
        ks.hmac_into(inner[0], outer[0], payloads[0], tag)
        return np.concatenate((digest, tag))

    rng = np.random.default_rng(77)
    signer = ModelledSigner(5, 6)
    sellers = [0, 2, 5]
    buyers = [1, 3, 4]
    payloads = [rng.bytes(PAYLOAD_SIZE) for _ in sellers]
    prev = rng.bytes(32)
    s_sigs, b_sigs = signer.sign_pairs(sellers, buyers, payloads)
    records = [p + s + b for p, s, b in zip(payloads, s_sigs, b_sigs, strict=True)]
    ref = make_block(3, -2, prev, records, 99)
    inner, outer = ks.hmac_pad_table(signer.keys)
    header = np.zeros(92, dtype=np.uint8)
    block_hash = np.zeros(32, dtype=np.uint8)
    extra = fused(
        inner,
        outer,
        np.array(sellers, dtype=np.int64),
        np.array(buyers, dtype=np.int64),
        np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(3, PAYLOAD_SIZE),
        as_array(prev),
        header,
        block_hash,
    )
    assert header.tobytes() == ref.header and block_hash.tobytes() == ref.hash
    assert extra[:32].tobytes() == ref.hash
    assert extra[32:].tobytes() == hmac.digest(signer.keys[0], payloads[0], "sha256")


@pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")
@pytest.mark.parametrize(("key_seed", "n"), [(0, 1), (5, 4), (2**64 + 3, 9), (2**128 - 1, 300)])
def test_seeded_pads_are_the_signers(key_seed: int, n: int) -> None:
    from mgenv.chain.kernels_sbet_chain import hmac_pads_into, seeded_pads_into
    from mgenv.chain.transactions import derive_key

    signer = ModelledSigner(key_seed=key_seed, n_participants=n)
    prefix, count = signer.key_material
    assert count == n and signer._keys is None  # derived on first use only
    got = np.empty((2, n, 8), np.uint32)
    seeded_pads_into(np.frombuffer(prefix, dtype=np.uint8), got)
    want = np.empty((2, n, 8), np.uint32)
    keys = signer.keys
    assert keys == [derive_key(b"hmac", key_seed, i) for i in range(n)]
    hmac_pads_into(np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(n, 32), want)
    np.testing.assert_array_equal(got, want)
    clone = pickle.loads(pickle.dumps(signer))
    assert clone.keys == keys and clone.key_material == signer.key_material
