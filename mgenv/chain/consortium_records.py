"""Record layouts, keys and the record log of seed 002's consortium-chain chaincodes.

Every chaincode output is a fixed-layout, little-endian byte record whose fields are those of
the paper's Tables 1-7 (plus a serial and the period, so that records are unique). Records
are built in bulk as numpy structured arrays (one column per field, filled vectorised) and
cut into bytes; each record's SHA-256 is its hash, and each is signed: authentication and
publication records by the participant (the paper: "calls the private key of the BU to sign"),
matchmaking and compensation records by the chaincode's own key ("encrypted with its private
key", read as a signature: encrypting with a private key *is* signing).

Field types follow the tables where they agree with themselves; energies are float64 kWh
everywhere (Table 3 prints Int64 and Table 4 Byte for them) so that a record holds exactly
what the market traded. Addresses are the first 20 bytes of SHA-256 of the participant's
verification key (Ethereum-style account addresses); "basic information" is the SHA-256 of
the real-name data, never the data itself.

Signatures: ``"ed25519"`` uses real Ed25519 keys derived exactly as
:class:`mgenv.chain.transactions.Ed25519Signer` derives them, so a participant signs its
publications with the same key that signs its transactions; ``"modelled"`` uses the
HMAC-SHA-256 stand-in of :class:`mgenv.chain.transactions.ModelledSigner`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from mgenv.chain.transactions import ModelledSigner, derive_key

if TYPE_CHECKING:
    from _hashlib import HASH

_ADDR = [("address", "S20"), ("id", "<i8")]

#: Table 1 (BU authentication): customer type, BU ID, basic information, credit record,
#: purpose. Table 2 (SU authentication): generation type, basic information, SU ID, installed
#: capacity, credit record. One layout carries both (``side`` 0 = BU, 1 = SU).
AUTH_DTYPE: Final = np.dtype(
    [
        ("side", "u1"),
        ("customer_type", "u1"),
        ("generation_type", "u1"),
        ("id", "<i8"),
        ("basic_info", "S32"),
        ("credit_record", "u1"),
        ("purpose", "u1"),
        ("installed_w", "<i8"),
    ]
)
#: Tables 3-4 (BU/SU publication): address, ID, energy demand or sale (kWh), delivery time
#: (period), price (yuan/kWh: the buyer's or seller's outside option), plus serial, side and
#: release time (ms; the publication can be withdrawn for a short window after it).
PUBLICATION_DTYPE: Final = np.dtype(
    [
        ("serial", "<u8"),
        ("side", "u1"),
        *_ADDR,
        ("energy_kwh", "<f8"),
        ("delivery_period", "<i8"),
        ("price", "<f8"),
        ("release_ms", "<i8"),
    ]
)
#: Table 5 (matchmaking): SU address and ID, BU address and ID, transaction volume (kWh),
#: transaction price (yuan/kWh), plus serial, period and the hashes of the two publications
#: the path was matched from.
MATCH_DTYPE: Final = np.dtype(
    [
        ("serial", "<u8"),
        ("period", "<i8"),
        ("su_address", "S20"),
        ("su_id", "<i8"),
        ("bu_address", "S20"),
        ("bu_id", "<i8"),
        ("volume_kwh", "<f8"),
        ("price", "<f8"),
        ("su_publication", "S32"),
        ("bu_publication", "S32"),
    ]
)
#: Table 6 (supply-demand compensation): SU and BU (one of them the grid), agreed sales,
#: agreed purchases, difference (kWh), compromise price, grid price, microgrid price.
SUPPLY_DEMAND_DTYPE: Final = np.dtype(
    [
        ("serial", "<u8"),
        ("period", "<i8"),
        ("su_address", "S20"),
        ("su_id", "<i8"),
        ("bu_address", "S20"),
        ("bu_id", "<i8"),
        ("agreed_sales_kwh", "<f8"),
        ("agreed_purchases_kwh", "<f8"),
        ("difference_kwh", "<f8"),
        ("compromise_price", "<f8"),
        ("grid_price", "<f8"),
        ("microgrid_price", "<f8"),
    ]
)
#: Table 7 (error compensation): SU, BU, transaction record (hash of the committed
#: transaction record on the chain), hash (of the matchmaking record: the order information),
#: agreed volume, actual volume, difference (kWh), grid price, microgrid price.
ERROR_DTYPE: Final = np.dtype(
    [
        ("serial", "<u8"),
        ("period", "<i8"),
        ("su_address", "S20"),
        ("su_id", "<i8"),
        ("bu_address", "S20"),
        ("bu_id", "<i8"),
        ("transaction_record", "S32"),
        ("order_hash", "S32"),
        ("agreed_kwh", "<f8"),
        ("actual_kwh", "<f8"),
        ("difference_kwh", "<f8"),
        ("grid_price", "<f8"),
        ("microgrid_price", "<f8"),
    ]
)
KINDS: Final[dict[str, np.dtype[np.void]]] = {
    "authentication": AUTH_DTYPE,
    "publication": PUBLICATION_DTYPE,
    "match": MATCH_DTYPE,
    "supply_demand": SUPPLY_DEMAND_DTYPE,
    "error": ERROR_DTYPE,
}
GRID_ID: Final = -1  # the grid as counterparty in compensation records
GRID_ADDRESS: Final = hashlib.sha256(b"mgenv/consortium/grid").digest()[:20]


def to_bytes(records: np.ndarray) -> list[bytes]:
    """Cut a structured array into one canonical byte string per record."""
    blob, size = records.tobytes(), records.dtype.itemsize
    return [blob[i : i + size] for i in range(0, len(blob), size)]


def hashes(records: list[bytes]) -> list[bytes]:
    """SHA-256 of each record (32 bytes each)."""
    sha = hashlib.sha256
    return [sha(r).digest() for r in records]


class Keyring:
    """Signing keys of ``n`` participants plus the chaincode's own key (index ``n``).

    Only the 32-byte secrets are state, so a keyring deep-copies and pickles (env
    checkpoints); the key objects are rebuilt lazily.

    Args:
        kind: ``"ed25519"`` or ``"modelled"`` (see the module docstring).
        key_seed: Integer in [0, 2**128) the keys are derived from.
        n_participants: Number of participants.
    """

    def __init__(self, kind: str, key_seed: int, n_participants: int) -> None:
        if kind not in ("ed25519", "modelled"):
            raise ValueError(f"kind={kind!r} is not one of 'ed25519', 'modelled'")
        self.kind, self.n = kind, n_participants
        total = n_participants + 1
        if kind == "ed25519":
            self._secrets = [derive_key(b"ed25519", key_seed, i) for i in range(total)]
        else:
            self._secrets = list(ModelledSigner(key_seed, total).keys)
        self._objects: _KeyObjects | None = None
        self.addresses = np.array(
            [
                hashlib.sha256(b"mgenv/consortium/address" + m).digest()[:20]
                for m in self._material()
            ],
            dtype="S20",
        )  # (n + 1,)

    def _material(self) -> list[bytes]:
        """Public verification material: Ed25519 public keys, or the HMAC keys."""
        if self.kind == "ed25519":
            return [k.public_bytes_raw() for k in self._keys().public]
        return self._secrets

    def _keys(self) -> _KeyObjects:
        if self._objects is None:
            if self.kind == "ed25519":
                private = [Ed25519PrivateKey.from_private_bytes(k) for k in self._secrets]
                self._objects = _KeyObjects(private, [k.public_key() for k in private], [])
            else:
                self._objects = _KeyObjects([], [], [_pads(k) for k in self._secrets])
        return self._objects

    def __getstate__(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n": self.n,
            "_secrets": self._secrets,
            "addresses": self.addresses,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._objects = None

    @property
    def operator(self) -> int:
        """Index of the chaincode's own key."""
        return self.n

    def sign(self, signers: list[int], messages: list[bytes]) -> list[bytes]:
        """Signature of ``signers[k]`` over ``messages[k]``, for every ``k``."""
        keys = self._keys()
        if self.kind == "ed25519":
            return [keys.private[i].sign(m) for i, m in zip(signers, messages, strict=True)]
        return [_tag(keys.pads[i], m) for i, m in zip(signers, messages, strict=True)]

    def verify(self, signers: list[int], messages: list[bytes], sigs: list[bytes]) -> list[bool]:
        """Whether each signature verifies under its signer's key."""
        keys = self._keys()
        if self.kind == "modelled":
            same, pads = hmac.compare_digest, keys.pads
            return [
                same(_tag(pads[i], m), sig)
                for i, m, sig in zip(signers, messages, sigs, strict=True)
            ]
        out: list[bool] = []
        for i, m, sig in zip(signers, messages, sigs, strict=True):
            try:
                keys.public[i].verify(sig, m)
                out.append(True)
            except InvalidSignature:
                out.append(False)
        return out


class _KeyObjects(NamedTuple):
    private: list[Ed25519PrivateKey]
    public: list[Ed25519PublicKey]
    pads: list[tuple[HASH, HASH]]


_IPAD, _OPAD = bytes(x ^ 0x36 for x in range(256)), bytes(x ^ 0x5C for x in range(256))


def _pads(key: bytes) -> tuple[HASH, HASH]:
    """SHA-256 states after the key XOR ipad / opad blocks (RFC 2104), computed once per key."""
    block = key.ljust(64, b"\0")
    return hashlib.sha256(block.translate(_IPAD)), hashlib.sha256(block.translate(_OPAD))


def _tag(pads: tuple[HASH, HASH], message: bytes) -> bytes:
    """HMAC-SHA-256 of ``message`` from precomputed pads (equals ``ModelledSigner.tag``)."""
    inner, outer = pads[0].copy(), pads[1].copy()
    inner.update(message)
    outer.update(inner.digest())
    return outer.digest()


class Signed(NamedTuple):
    """Records of one kind produced by one stage call.

    Attributes:
        records: Structured array of the records, shape ``(k,)``.
        raw: Canonical bytes of each record.
        hashes: SHA-256 of each record.
        signatures: Signature of each record by its signer.
        signers: Key index of each record's signer.
    """

    records: np.ndarray
    raw: list[bytes]
    hashes: list[bytes]
    signatures: list[bytes]
    signers: list[int]


def sign_records(records: np.ndarray, signers: list[int], keys: Keyring) -> Signed:
    """Cut, hash and sign a structured array of records."""
    raw = to_bytes(records)
    return Signed(records, raw, hashes(raw), keys.sign(signers, raw), signers)


class LogEntry(NamedTuple):
    """One stage output (a batch of records of one kind) in the channel log."""

    kind: str
    raw: tuple[bytes, ...]  # the records
    signatures: tuple[bytes, ...]
    signers: tuple[int, ...]
    link: bytes  # SHA-256(prev link || kind || SHA-256(record hashes) || SHA-256(signatures))


def _link(prev: bytes, kind: str, record_hashes: list[bytes], sigs: tuple[bytes, ...]) -> bytes:
    sha = hashlib.sha256
    body = sha(b"".join(record_hashes)).digest() + sha(b"".join(sigs)).digest()
    return sha(prev + kind.encode() + body).digest()


class ChannelLog:
    """A bounded, hash-linked log of the chaincodes' records (the channel's ledger).

    One entry per stage output; its ``link`` hashes the previous link, every record's
    SHA-256 and every signature, so changing any kept record breaks its link and every later
    one; :meth:`verify` recomputes them from the oldest kept entry. Entries keep copies of the
    records: changing a stage's live output afterwards does not change the log.

    Args:
        window: Number of most recent entries (stage outputs) kept.
    """

    def __init__(self, window: int = 65_536) -> None:
        if window < 1:
            raise ValueError(f"ChannelLog window={window} is outside [1, inf)")
        self._entries: deque[LogEntry] = deque(maxlen=window)
        self._anchor = bytes(32)  # link before the oldest kept entry
        self.head = bytes(32)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self._entries)

    @property
    def n_records(self) -> int:
        """Number of records in the kept entries."""
        return sum(len(e.raw) for e in self._entries)

    def append(self, kind: str, signed: Signed) -> None:
        """Append ``signed`` (all of one stage call's records) as one entry."""
        if not signed.raw:
            return
        sigs = tuple(signed.signatures)
        self.head = _link(self.head, kind, signed.hashes, sigs)
        if len(self._entries) == self._entries.maxlen:
            self._anchor = self._entries[0].link
        self._entries.append(
            LogEntry(kind, tuple(signed.raw), sigs, tuple(signed.signers), self.head)
        )

    def verify(self) -> int:
        """Recompute the links; return the number of records, or raise naming the bad entry.

        Raises:
            ValueError: If an entry's link does not match its contents.
        """
        head = self._anchor
        for k, e in enumerate(self._entries):
            head = _link(head, e.kind, hashes(list(e.raw)), e.signatures)
            if head != e.link:
                raise ValueError(f"channel log entry {k} ({e.kind}) does not match its link")
        return self.n_records

    def records(self, kind: str) -> np.ndarray:
        """The kept records of ``kind`` decoded as a structured array."""
        raw = b"".join(b"".join(e.raw) for e in self._entries if e.kind == kind)
        return np.frombuffer(raw, dtype=KINDS[kind])
