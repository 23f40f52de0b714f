"""Transactions: canonical bytes, hashes, and the participants' signatures.

A transaction is T = {serial, period, Q, p, seller, buyer} (DESIGN.md). Its canonical bytes
(the *payload*, the message both parties sign) are ``TX_STRUCT.pack(serial, period,
quantity_kwh, price, seller, buyer)``: little-endian, fixed 40-byte layout

====== ======= ====== =========================================
offset  format  bytes  field
====== ======= ====== =========================================
0       ``Q``   8      serial (uint64, unique over a chain's life)
8       ``q``   8      period (int64, market period index)
16      ``d``   8      quantity_kwh (float64, kWh)
24      ``d``   8      price (float64, yuan/kWh)
32      ``I``   4      seller (uint32, participant index)
36      ``I``   4      buyer (uint32, participant index)
====== ======= ====== =========================================

A stored *record* is ``payload || seller_signature || buyer_signature``; its SHA-256 is the
transaction hash that enters the block's Merkle tree, so the signatures are committed too.

Keys are derived deterministically from an integer ``key_seed`` by SHA-256 with a domain
label (no random stream is used), one key per participant.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import TYPE_CHECKING, Any, Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

if TYPE_CHECKING:
    from _hashlib import HASH

TX_STRUCT: Final = struct.Struct("<QqddII")
PAYLOAD_SIZE: Final = TX_STRUCT.size  # 40 bytes
MAX_KEY_SEED: Final = 2**128


def pack_tx(
    serial: int, period: int, quantity_kwh: float, price: float, seller: int, buyer: int
) -> bytes:
    """Canonical 40-byte payload of one transaction (see the module docstring for the layout).

    Args:
        serial: Serial number (unique, increasing over the chain's life).
        period: Market period index.
        quantity_kwh: Traded energy (kWh).
        price: Price (yuan/kWh).
        seller: Seller's participant index.
        buyer: Buyer's participant index.

    Returns:
        The payload bytes, the message both parties sign.
    """
    return TX_STRUCT.pack(serial, period, quantity_kwh, price, seller, buyer)


def unpack_tx(payload: bytes) -> tuple[int, int, float, float, int, int]:
    """Inverse of :func:`pack_tx`: (serial, period, quantity_kwh, price, seller, buyer)."""
    serial, period, quantity_kwh, price, seller, buyer = TX_STRUCT.unpack(payload)
    return serial, period, quantity_kwh, price, seller, buyer


def derive_key(label: bytes, key_seed: int, participant: int) -> bytes:
    """32-byte secret of one participant: SHA-256(b"mgenv/chain/" label seed participant).

    Args:
        label: Domain label (b"hmac" or b"ed25519"), so the two kinds never share a secret.
        key_seed: Integer in [0, 2**128).
        participant: Participant index.

    Returns:
        The 32-byte secret.
    """
    return hashlib.sha256(key_prefix(label, key_seed) + participant.to_bytes(4, "little")).digest()


def key_prefix(label: bytes, key_seed: int) -> bytes:
    """What :func:`derive_key` hashes before the participant's index."""
    return b"mgenv/chain/" + label + b"/" + key_seed.to_bytes(16, "little")


def derive_keys(label: bytes, key_seed: int, n_participants: int) -> list[bytes]:
    """``[derive_key(label, key_seed, i) for i in range(n_participants)]``, hashed faster.

    The material shared by every participant (label and seed) is absorbed once and the
    hash state copied per participant: the same SHA-256 inputs, so the same keys, for less
    work at every reset (a chain derives its keys when it is built).
    """
    shared = hashlib.sha256(key_prefix(label, key_seed))
    keys = []
    for i in range(n_participants):
        h = shared.copy()
        h.update(i.to_bytes(4, "little"))
        keys.append(h.digest())
    return keys


def check_key_seed(key_seed: object) -> int:
    """Return ``key_seed`` as an int, or raise ValueError if it is not an int in [0, 2**128)."""
    if isinstance(key_seed, bool) or not hasattr(key_seed, "__index__"):
        raise ValueError(f"key_seed={key_seed!r} is not an integer in [0, 2**128)")
    seed = int(key_seed.__index__())
    if not 0 <= seed < MAX_KEY_SEED:
        raise ValueError(f"key_seed={key_seed!r} is outside [0, 2**128)")
    return seed


class Signer(Protocol):
    """Signs and verifies transaction payloads on behalf of the participants."""

    kind: str
    sig_size: int

    def sign_pairs(
        self, sellers: list[int], buyers: list[int], payloads: list[bytes]
    ) -> tuple[list[bytes], list[bytes]]:
        """Seller's and buyer's signatures over each payload, each a list of length T."""
        ...

    def verify_pairs(
        self,
        sellers: list[int],
        buyers: list[int],
        payloads: list[bytes],
        seller_sigs: list[bytes],
        buyer_sigs: list[bytes],
    ) -> list[bool]:
        """Per transaction: both signatures verify. Each signature is checked once."""
        ...


class ModelledSigner:
    """HMAC-SHA-256 per participant: a *modelled* public-key signature.

    Each participant has a secret key derived from ``key_seed``; its "signature" over a payload
    is HMAC-SHA-256(key, payload) (RFC 2104). A real system would use public-key signatures so
    that validators need no secret; here the validators are simulated by the same process and
    hold the keys, which keeps signing and verifying cheap (about 0.5 us each) while any change
    to a signed payload, or a signature made with another participant's key, still fails to
    verify. The HMAC is computed from precomputed inner/outer pad states (the stdlib ``hmac``
    recomputes them per call, ~2.5x slower); tests check it equals ``hmac.digest``.
    """

    kind: str = "modelled"
    sig_size: int = 32

    def __init__(self, key_seed: int, n_participants: int) -> None:
        self._seed, self._n = key_seed, n_participants
        self._keys: list[bytes] | None = None  # derived on first use (keys)
        self._pads: list[tuple[HASH, HASH]] | None = None

    @property
    def keys(self) -> list[bytes]:
        """Raw 32-byte HMAC keys, one per participant."""
        if self._keys is None:
            self._keys = derive_keys(b"hmac", self._seed, self._n)
        return self._keys

    @property
    def key_material(self) -> tuple[bytes, int]:
        """``(prefix, P)``: participant i's key is ``SHA-256(prefix || i as 4 bytes LE)``.

        :func:`key_prefix` (``b"mgenv/chain/hmac/"`` and the seed as 16 bytes LE), for
        callers that derive the keys themselves (the SBET fast path's pads,
        :func:`mgenv.chain.kernels_sbet_chain.seeded_pads_into`).
        """
        return key_prefix(b"hmac", self._seed), self._n

    def _pad_states(self) -> list[tuple[HASH, HASH]]:
        if self._pads is None:
            self._pads = [_hmac_pads(key) for key in self.keys]
        return self._pads

    def tag(self, participant: int, message: bytes) -> bytes:
        """HMAC-SHA-256 of ``message`` under ``participant``'s key (32 bytes)."""
        return _hmac_tag(*self._pad_states()[participant], message)

    def sign_pairs(
        self, sellers: list[int], buyers: list[int], payloads: list[bytes]
    ) -> tuple[list[bytes], list[bytes]]:
        """HMAC tags of the seller and of the buyer over each payload (32 bytes each)."""
        pads = self._pads or self._pad_states()
        seller_sigs: list[bytes] = []
        buyer_sigs: list[bytes] = []
        # _hmac_tag inlined: this loop is the chain's hot spot (~0.5 us per tag).
        for s, b, m in zip(sellers, buyers, payloads, strict=True):
            inner, outer = pads[s]
            inner = inner.copy()
            inner.update(m)
            outer = outer.copy()
            outer.update(inner.digest())
            seller_sigs.append(outer.digest())
            inner, outer = pads[b]
            inner = inner.copy()
            inner.update(m)
            outer = outer.copy()
            outer.update(inner.digest())
            buyer_sigs.append(outer.digest())
        return seller_sigs, buyer_sigs

    def verify_pairs(
        self,
        sellers: list[int],
        buyers: list[int],
        payloads: list[bytes],
        seller_sigs: list[bytes],
        buyer_sigs: list[bytes],
    ) -> list[bool]:
        """Per transaction: both tags equal the recomputed HMACs (constant-time compare)."""
        pads = self._pads or self._pad_states()
        same = hmac.compare_digest
        ok: list[bool] = []
        for s, b, m, seller_sig, buyer_sig in zip(
            sellers, buyers, payloads, seller_sigs, buyer_sigs, strict=True
        ):
            inner, outer = pads[s]
            inner = inner.copy()
            inner.update(m)
            outer = outer.copy()
            outer.update(inner.digest())
            if not same(outer.digest(), seller_sig):
                ok.append(False)
                continue
            inner, outer = pads[b]
            inner = inner.copy()
            inner.update(m)
            outer = outer.copy()
            outer.update(inner.digest())
            ok.append(same(outer.digest(), buyer_sig))
        return ok

    def __getstate__(self) -> dict[str, Any]:
        return {"_keys": self.keys, "_seed": self._seed, "_n": self._n}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._keys, self._seed, self._n = state["_keys"], state["_seed"], state["_n"]
        self._pads = None


_IPAD: Final = bytes(x ^ 0x36 for x in range(256))  # translation tables: byte -> byte ^ pad
_OPAD: Final = bytes(x ^ 0x5C for x in range(256))


def _hmac_pads(key: bytes) -> tuple[HASH, HASH]:
    """SHA-256 states after absorbing key XOR ipad and key XOR opad (RFC 2104, 64-byte block)."""
    block = key.ljust(64, b"\0")
    return hashlib.sha256(block.translate(_IPAD)), hashlib.sha256(block.translate(_OPAD))


def _hmac_tag(inner_pad: HASH, outer_pad: HASH, message: bytes) -> bytes:
    """HMAC-SHA-256 of ``message`` from the precomputed pad states (32 bytes)."""
    inner = inner_pad.copy()
    inner.update(message)
    outer = outer_pad.copy()
    outer.update(inner.digest())
    return outer.digest()


class Ed25519Signer:
    """Real Ed25519 signatures (``cryptography``), one key pair per participant.

    Private keys are ``Ed25519PrivateKey.from_private_bytes(derive_key(b"ed25519", ...))``.
    Only raw key bytes are part of the state, so the signer deep-copies and pickles; the key
    objects are rebuilt lazily after unpickling. Signing costs about 22 us and verifying about
    77 us per signature, so this mode is for fidelity, not for training speed.
    """

    kind: str = "ed25519"
    sig_size: int = 64

    def __init__(self, key_seed: int, n_participants: int) -> None:
        self._secrets = derive_keys(b"ed25519", key_seed, n_participants)
        self._objects: tuple[list[Ed25519PrivateKey], list[Ed25519PublicKey]] | None = None
        self._public = [pub.public_bytes_raw() for pub in self._key_objects()[1]]

    @property
    def public_keys(self) -> list[bytes]:
        """Raw 32-byte Ed25519 public keys, one per participant."""
        return self._public

    def _key_objects(self) -> tuple[list[Ed25519PrivateKey], list[Ed25519PublicKey]]:
        if self._objects is None:
            private = [Ed25519PrivateKey.from_private_bytes(s) for s in self._secrets]
            public = [key.public_key() for key in private]
            self._objects = (private, public)
        return self._objects

    def sign_pairs(
        self, sellers: list[int], buyers: list[int], payloads: list[bytes]
    ) -> tuple[list[bytes], list[bytes]]:
        """Ed25519 signatures of the seller and of the buyer over each payload (64 bytes)."""
        private = self._key_objects()[0]
        seller_sigs = [private[s].sign(m) for s, m in zip(sellers, payloads, strict=True)]
        buyer_sigs = [private[b].sign(m) for b, m in zip(buyers, payloads, strict=True)]
        return seller_sigs, buyer_sigs

    def verify_pairs(
        self,
        sellers: list[int],
        buyers: list[int],
        payloads: list[bytes],
        seller_sigs: list[bytes],
        buyer_sigs: list[bytes],
    ) -> list[bool]:
        """Per transaction: both signatures verify under the signers' public keys.

        Each signature is verified once per period (by the simulated network as a whole, not
        once per validator node: the verdict is deterministic, so every honest node agrees).
        """
        public = self._key_objects()[1]
        return [
            _ed25519_ok(public[s], ss, m) and _ed25519_ok(public[b], sb, m)
            for s, b, m, ss, sb in zip(
                sellers, buyers, payloads, seller_sigs, buyer_sigs, strict=True
            )
        ]

    def __getstate__(self) -> dict[str, Any]:
        return {"_secrets": self._secrets, "_public": self._public}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._secrets = state["_secrets"]
        self._public = state["_public"]
        self._objects = None


def _ed25519_ok(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def make_signer(kind: str, key_seed: int, n_participants: int) -> Signer:
    """Signer of the given kind (``"modelled"`` or ``"ed25519"``) for ``n_participants``."""
    if kind == "modelled":
        return ModelledSigner(key_seed, n_participants)
    if kind == "ed25519":
        return Ed25519Signer(key_seed, n_participants)
    raise ValueError(f"signatures={kind!r} is not one of 'modelled', 'ed25519'")
