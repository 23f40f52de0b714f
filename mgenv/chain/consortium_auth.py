"""Seed 002's authentication unit chaincode (Tables 1-2): identities, records, the rules.

Every participant submits a buyer (BU) and a seller (SU) identity record signed with its key;
the chaincode verifies the signature and the rules (see :func:`check_authentication`). An
unqualified participant cannot publish in :class:`mgenv.chain.consortium.ConsortiumChannel`,
so it cannot trade.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv.chain.consortium_records import AUTH_DTYPE, Keyring, Signed, sign_records

CUSTOMER_TYPES: Final = ("resident", "commercial", "industrial")
GENERATION_TYPES: Final = ("none", "solar", "wind", "biomass")
PURPOSES: Final = ("own_use", "storage")
CREDIT_DEFAULT, CREDIT_OVERDUE, CREDIT_CRIMINAL = 1, 2, 4  # credit record bit flags
BU, SU = 0, 1
_EMPTY_INFO = bytes(32)


class Identities(NamedTuple):
    """What each participant submits for authentication (Tables 1-2), arrays of shape (n,)."""

    participant: NDArray[np.int64]  # global participant index
    customer_type: NDArray[np.uint8]  # index into CUSTOMER_TYPES
    generation_type: NDArray[np.uint8]  # index into GENERATION_TYPES
    basic_info: NDArray[np.bytes_]  # S32: SHA-256 of the real-name information
    credit_record: NDArray[np.uint8]  # CREDIT_* flags; 0 = clean
    purpose: NDArray[np.uint8]  # index into PURPOSES
    installed_w: NDArray[np.int64]  # installed generation capacity, W (0: not declared)


def make_identities(
    names: Sequence[str],
    participant: Sequence[int] | NDArray[np.int64],
    bad_credit: Sequence[str] = (),
    installed_kw: NDArray[np.float64] | None = None,
) -> Identities:
    """Identities of residential PV prosumers named ``names`` (e.g. ``"mg_0"``).

    Args:
        names: Participant names (their real-name information is hashed).
        participant: Their global indices.
        bad_credit: Names whose credit record shows a default.
        installed_kw: Declared PV capacity, kW, shape (n,); None: not declared.
    """
    n = len(names)
    info = np.array(
        [hashlib.sha256(b"real-name:" + s.encode()).digest() for s in names], dtype="S32"
    )
    credit = np.array([CREDIT_DEFAULT if s in set(bad_credit) else 0 for s in names], np.uint8)
    watts = (
        np.zeros(n, np.int64)
        if installed_kw is None
        else np.round(np.asarray(installed_kw) * 1000.0).astype(np.int64)
    )
    return Identities(
        np.asarray(participant, np.int64),
        np.zeros(n, np.uint8),
        np.full(n, GENERATION_TYPES.index("solar"), np.uint8),
        info,
        credit,
        np.zeros(n, np.uint8),
        watts,
    )


def auth_records(ids: Identities, keys: Keyring) -> Signed:
    """Every participant's BU record then its SU record, signed by the participant: ``2n``."""
    n = ids.participant.size
    rec = np.zeros(2 * n, dtype=AUTH_DTYPE)
    rec["side"] = np.repeat(np.array([BU, SU], np.uint8), n)
    for field in (
        "customer_type",
        "generation_type",
        "basic_info",
        "credit_record",
        "purpose",
        "installed_w",
    ):
        rec[field] = np.tile(getattr(ids, field), 2)
    rec["id"] = np.tile(ids.participant, 2)
    rec["customer_type"][n:] = 0
    rec["purpose"][n:] = 0
    rec["generation_type"][:n] = 0
    rec["installed_w"][:n] = 0
    return sign_records(rec, np.tile(np.arange(n), 2).tolist(), keys)


def check_authentication(
    signed: Signed, keys: Keyring, require_capacity: bool
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """The authentication chaincode: ``(buyer_ok, seller_ok)``, each of shape (n,).

    The records are decoded from their bytes as received, so a record altered after signing
    fails its signature check.
    """
    rec = np.frombuffer(b"".join(signed.raw), dtype=AUTH_DTYPE)
    sig_ok = np.array(keys.verify(signed.signers, signed.raw, signed.signatures), dtype=bool)
    ok = (
        sig_ok
        & (rec["credit_record"] == 0)
        & (rec["basic_info"] != _EMPTY_INFO)
        & (rec["customer_type"] < len(CUSTOMER_TYPES))
        & (rec["purpose"] < len(PURPOSES))
    )
    renewable = (rec["generation_type"] > 0) & (rec["generation_type"] < len(GENERATION_TYPES))
    capacity = rec["installed_w"] > 0 if require_capacity else np.ones(rec.size, bool)
    seller = ok & renewable & capacity
    n = rec.size // 2
    return ok[:n] & (rec["side"][:n] == BU), seller[n:] & (rec["side"][n:] == SU)
