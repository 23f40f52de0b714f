"""Node registration and authentication before trading (seed 001, section 4).

Every participant registers an identity key with the platform (the smart contract) and, at
the start of the episode, authenticates and agrees a session key; only authenticated
participants trade: :meth:`NodeAuthenticator.screen` marks every transaction with an
unauthenticated, revoked or impersonated party ``"unauthenticated"``, so it does not settle
(its energy falls back to the grid) and the env's ``infos["rejected"]`` counts it per period;
:attr:`NodeAuthenticator.stats` counts the attempts of the episode.

What is real and what is simulated:

* **Real cryptography** (``cryptography``): identity keys are Ed25519 or ML-DSA-65 (FIPS 204,
  post-quantum), derived deterministically from the chain's ``key_seed``; the session key is
  agreed with ML-KEM-768 (FIPS 203, post-quantum): the node sends a fresh encapsulation key
  signed with its identity key over the platform's challenge, the platform verifies the
  signature against the registered key, encapsulates a secret, and both derive the session
  key ``SHA-256(secret || transcript)``; the node proves it with an HMAC-SHA-256 key
  confirmation. This signed-KEM exchange stands in for the paper's lattice-based two-round
  PAKE (eqs. 21-28, MP-SPHF and Reg-SPHF), which no maintained library implements and whose
  formulas the extracted text garbles; it gives the same guarantee the paper wants from it
  (a post-quantum authenticated session key). Session keys are established and checked, but
  the simulated network does not encrypt messages with them.
* **Classical simulation of the quantum signature** (section 4.3): the Bell-state signature
  with two-particle entangled states is *not* computed; it is modelled by its verification
  statistics. An honest signer, who shares the key ``K_A`` distributed by quantum key
  allocation, passes all ``n`` checked positions; a forger passes each position with
  probability 1/4 (one of the four Bell states ``|phi+>, |phi->, |psi+>, |psi->`` guessed at
  random), so ``4^-n`` overall (as seed 000 eq. 19 states). The draws come from a generator
  seeded from ``key_seed`` (no other stream shifts).

Threat model of the configured attackers (``ChainParams.auth_*``, global participant indices):
``auth_unregistered`` never registered (refused); ``auth_revoked`` registered but revoked
before trading (refused; :meth:`NodeAuthenticator.revoke` revokes during the episode);
``auth_impostors``: the seat is taken by an impostor who stole the participant's *classical*
identity key (so the real signature verifies) but cannot copy the quantum key, so only the
simulated Bell-state check can stop it: it passes with probability ``4^-n`` and then trades
undetected as that participant; otherwise the seat is locked out for the episode. An impostor
without the identity key fails the real signature check (tests show it).
"""

from __future__ import annotations

import hashlib
import hmac
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem

from mgenv.chain.types import REJECT_REASONS

if TYPE_CHECKING:
    from mgenv.chain.params import ChainParams

IDENTITY_KINDS: Final[tuple[str, ...]] = ("ed25519", "ml-dsa-65")
AUTH_MODES: Final[tuple[str, ...]] = ("none", *IDENTITY_KINDS)
FORGER_PASS: Final = 0.25  # chance that a forger guesses one checked Bell state
UNAUTHENTICATED: Final = REJECT_REASONS.index("unauthenticated")
MAX_POSITIONS: Final = 4096

IdentityKey = ed25519.Ed25519PrivateKey | mldsa.MLDSA65PrivateKey


def _secret(label: bytes, key_seed: int, index: int, size: int = 32) -> bytes:
    """Deterministic secret bytes: SHA-256 chain over (label, seed, index)."""
    base = b"mgenv/auth/" + label + key_seed.to_bytes(16, "little") + index.to_bytes(8, "little")
    out = b""
    while len(out) < size:
        out += hashlib.sha256(base + len(out).to_bytes(4, "little")).digest()
    return out[:size]


def identity_key(kind: str, key_seed: int, participant: int) -> IdentityKey:
    """A participant's identity key (Ed25519 or ML-DSA-65), derived from ``key_seed``."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(
            _secret(b"ed25519", key_seed, participant)
        )
    if kind == "ml-dsa-65":
        return mldsa.MLDSA65PrivateKey.from_seed_bytes(_secret(b"ml-dsa", key_seed, participant))
    raise ValueError(f"identity kind {kind!r} is not one of {list(IDENTITY_KINDS)}")


def verify(public: bytes, kind: str, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` on ``message`` verifies under the raw public key ``public``."""
    try:
        if kind == "ed25519":
            ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
        else:
            mldsa.MLDSA65PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def bell_check(rng: np.random.Generator, positions: int, honest: bool) -> bool:
    """Classical simulation of the Bell-state signature check (section 4.3).

    An honest signer passes; a forger passes each of ``positions`` checks with probability 1/4.
    """
    if honest:
        return True
    return bool(np.all(rng.random(positions) < FORGER_PASS))


@dataclass(frozen=True, slots=True)
class Session:
    """An authenticated session of one participant."""

    participant: int
    key: bytes  # 32-byte session key (both sides hold it)


def handshake(
    participant: int,
    signing_key: IdentityKey,
    registered_public: bytes,
    kind: str,
    challenge: bytes,
    kem_seed: bytes,
) -> tuple[Session | None, str]:
    """One authenticated ML-KEM-768 key agreement between a node and the platform.

    Args:
        participant: Who claims to authenticate.
        signing_key: The key the claimant signs with (an impostor's may differ).
        registered_public: The identity key the platform registered for ``participant``.
        kind: ``"ed25519"`` or ``"ml-dsa-65"``.
        challenge: The platform's fresh challenge.
        kem_seed: 64 bytes for the claimant's ephemeral ML-KEM-768 key.

    Returns:
        ``(session, "")`` on success, else ``(None, reason)``.
    """
    kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(kem_seed)
    ek = kem.public_key().public_bytes_raw()
    transcript = challenge + participant.to_bytes(8, "little") + ek
    signature = signing_key.sign(transcript)
    if not verify(registered_public, kind, signature, transcript):  # platform side
        return None, "bad_identity_signature"
    secret_p, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(ek).encapsulate()
    secret_n = kem.decapsulate(ciphertext)  # node side
    key_n = hashlib.sha256(secret_n + transcript + ciphertext).digest()
    key_p = hashlib.sha256(secret_p + transcript + ciphertext).digest()
    tag = hmac.new(key_n, b"confirm" + transcript, "sha256").digest()
    if not hmac.compare_digest(tag, hmac.new(key_p, b"confirm" + transcript, "sha256").digest()):
        return None, "key_confirmation"
    return Session(participant, key_p), ""


def as_participants(name: str, value: object) -> tuple[int, ...]:
    """Validate a tuple of participant indices (``ChainParams.auth_*``)."""
    items = value if isinstance(value, tuple | list) else (value,)
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= int(v) < 2**32:
            raise ValueError(
                f"ChainParams.{name}={value!r}: {v!r} is not a participant index in [0, 2**32 - 1]"
            )
        out.append(int(v))
    return tuple(sorted(set(out)))


@dataclass
class NodeAuthenticator:
    """Registry, revocation list and the episode's sessions (module docstring).

    Build it with :func:`make_auth`; it registers and authenticates every participant.
    """

    n_participants: int
    kind: str
    positions: int
    key_seed: int
    stats: dict[str, int] = field(default_factory=dict)
    registry: dict[int, bytes] = field(default_factory=dict)  # participant -> identity key
    revoked: set[int] = field(default_factory=set)
    sessions: dict[int, Session] = field(default_factory=dict)
    ok: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (P,) may trade

    def register(self, participant: int) -> None:
        """Store the participant's public identity key (registration, section 5.2 (b))."""
        key = identity_key(self.kind, self.key_seed, participant)
        self.registry[participant] = key.public_key().public_bytes_raw()
        self._count("registered")

    def authenticate(
        self,
        participant: int,
        rng: np.random.Generator,
        impostor: bool = False,
        signing_key: IdentityKey | None = None,
    ) -> bool:
        """One authentication attempt for ``participant``'s seat; True if a session results.

        ``impostor``: the claimant lacks the quantum key (fails the simulated Bell check but
        with probability ``4^-positions``); ``signing_key``: the key it signs with (default:
        the participant's true identity key, i.e. stolen if ``impostor``).
        """
        self._count("attempts")
        reason = ""
        if participant not in self.registry:
            reason = "unregistered"
        elif participant in self.revoked:
            reason = "revoked"
        else:
            key = signing_key or identity_key(self.kind, self.key_seed, participant)
            challenge = _secret(b"challenge", self.key_seed, participant)
            session, reason = handshake(
                participant,
                key,
                self.registry[participant],
                self.kind,
                challenge,
                _secret(b"kem", self.key_seed, participant, 64),
            )
            if session is not None and not bell_check(rng, self.positions, not impostor):
                session, reason = None, "bell_check"
            if session is not None:
                self.sessions[participant] = session
                self._count("impostors_passed" if impostor else "authenticated")
        if reason:
            self._count(f"failed_{reason}")
        self.ok[participant] = participant in self.sessions and participant not in self.revoked
        return reason == ""

    def revoke(self, participant: int) -> None:
        """Revoke a participant's identity: its later transactions are refused."""
        self.revoked.add(participant)
        self.sessions.pop(participant, None)
        self.ok[participant] = False
        self._count("revocations")

    def screen(
        self,
        sellers: Sequence[int],
        buyers: Sequence[int],
        reason: np.ndarray,
        brokers: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Mark the valid transactions (``reason == 0``) with an unauthenticated party.

        Args:
            sellers: Seller of each transaction, length T.
            buyers: Buyer of each transaction, length T.
            reason: Reject reason codes so far, (T,) int8 (not modified).
            brokers: Optional intermediary of each transaction (an aggregator), length T;
                it must be authenticated too.

        Returns:
            The new reason codes, (T,) int8.
        """
        if not len(sellers):
            return reason
        allowed = self.ok[np.asarray(sellers)] & self.ok[np.asarray(buyers)]
        if brokers is not None:
            allowed &= self.ok[np.asarray(brokers)]
        denied = ~allowed & (reason == 0)
        if not denied.any():
            return reason
        self._count("denied_transactions", int(denied.sum()))
        return np.where(denied, np.int8(UNAUTHENTICATED), reason).astype(np.int8)

    def _count(self, key: str, k: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + k


def make_auth(params: ChainParams, n_participants: int, key_seed: int) -> NodeAuthenticator | None:
    """Register and authenticate every participant as ``params.auth_*`` say.

    Returns None if ``params.auth_identity == "none"`` (no checks).

    Raises:
        ValueError: If a configured participant index is outside ``[0, n_participants)``.
    """
    if params.auth_identity == "none":
        return None
    listed = (*params.auth_unregistered, *params.auth_revoked, *params.auth_impostors)
    bad = [p for p in listed if p >= n_participants]
    if bad:
        raise ValueError(
            f"ChainParams.auth_* name participant {bad[0]}; the market has "
            f"participants 0..{n_participants - 1}"
        )
    auth = NodeAuthenticator(
        n_participants,
        params.auth_identity,
        params.auth_positions,
        key_seed,
        ok=np.zeros(n_participants, bool),
    )
    seed = int.from_bytes(_secret(b"bell", key_seed, 0, 16), "little")
    rng = np.random.default_rng(seed)
    unregistered, impostors = set(params.auth_unregistered), set(params.auth_impostors)
    for p in range(n_participants):  # once per episode, at the chain's construction
        if p not in unregistered:
            auth.register(p)
    for p in params.auth_revoked:
        auth.revoke(p)
    for p in range(n_participants):
        auth.authenticate(p, rng, impostor=p in impostors)
    return auth
