"""Seed 000's threshold signature (section 4.2: test (10), rule (11)) and VNS rules (eqs. 12-16).

Nothing here is quantum. The paper distributes the keys by quantum key distribution (QKD) and
calls the scheme a "quantum threshold signature"; this module is a classical simulation: the
QKD network is modelled as a secure classical channel (a key sent to a receiver simply
arrives, unseen by anyone else), and the keyed hash functions ``f_ij`` are HMAC-SHA-256
(RFC 2104, stdlib ``hmac``) under 32-byte keys ``r_ij`` - real cryptography, as a deployment
without QKD would use it. Keys come from seeded numpy Generators, so runs are reproducible.

Scheme ``Q = {P, M, Sigma, Sign, Ver}`` with signer ``P0`` and receivers ``P1..Pn``:

* Distribution phase. The signer draws ``n x n`` random strings ``r_ij`` and sends row ``i``
  (``r_i1..r_in``) to receiver ``P_i``; ``P_i`` forwards ``r_ij`` to ``P_j``. Receiver ``P_i``
  thus holds column ``i`` (``r_1i..r_ni``: ``r_ii`` from the signer, the rest forwarded).
* Signature phase. ``Sign(m) = (f_11(m), ..., f_nn(m))``: an ``(n, n)`` matrix of 32-byte tags.
* Verification (test (10)): ``P_i`` sets ``T_ji = 1`` iff ``t_ji = f_ji(m)`` under the key
  ``r_ji`` it holds, and accepts (rule (11)) iff ``sum_j T_ji >= (1/2 + 2 (1 - sigma)) n``,
  ``sigma`` being the assumed honest proportion (the paper: ``sigma > 3/4``; "34" in the
  extracted text).

Adversaries. A dishonest receiver ``P_j`` can forward wrong keys ``r_ji``, so that an honest
``P_i`` fails ``T_ji`` even on an honest signature; with ``d`` such receivers an honest
signature still passes ``n - d`` tests. Rule (11) therefore accepts every honest signature at
every honest receiver (transferability) iff ``n - d >= (1/2 + 2(1 - sigma)) n``: under the
rule's own assumption ``d <= (1 - sigma) n`` that holds for ``sigma >= 5/6``, not for all
``sigma > 3/4`` as the paper suggests (``tests/test_threshold.py`` shows both). A forger
without keys must guess 256-bit tags; a coalition of ``d`` dishonest receivers knows the keys
``r_ji`` of its own rows and so controls at most ``d < (1/2 + 2(1 - sigma)) n`` tests of an
honest receiver (unforgeability). The signer knows every key, so it could sign for some
receivers only; the VNS vote (eq. 15) and the ledger record settle such a split, as the paper's
transferability argument does ("uploaded to the quantum blockchain and broadcast").
Undeniability, as the paper states it, is the binding of a signature to its serial number:
:class:`SerialRegistry` rejects a second message under a serial already accepted, and an
accepted signature can only come from the signer, so :func:`dispute` refutes a denial.

VNS rules: ``V_k`` of size ``n_k`` accepts a cross-chain request when ``n_k >= t'_k >= t_k``
(eq. 15: ``t'_k`` members verified it); the cross-chain consensus needs this for every VNS
``d`` involved and ``sum_d t'_d >= t`` (eq. 16, read with the actual counts ``t'_d``: with the
minimum ``t_d`` the sum condition would be a property of the parameters, not of the request).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from _hashlib import HASH

TAG_BYTES = 32  # SHA-256 output, and the key length lh
_BATCH = 8192  # signatures compared per chunk in verify_batch (memory: B n^2 32 bytes)


def rule11_threshold(n: int, sigma: float) -> float:
    """Tests a receiver needs to pass, rule (11): ``(1/2 + 2 (1 - sigma)) n``."""
    if not 0.75 <= sigma <= 1.0:
        raise ValueError(f"sigma={sigma!r} is outside [0.75, 1] (rule (11) needs sigma >= 3/4)")
    return (0.5 + 2.0 * (1.0 - sigma)) * n


def tags(keys: list[bytes], message: bytes) -> NDArray[np.uint8]:
    """HMAC-SHA-256 of ``message`` under each key, shape ``(len(keys), 32)`` uint8."""
    out = b"".join([hmac.digest(k, message, "sha256") for k in keys])
    return np.frombuffer(out, dtype=np.uint8).reshape(len(keys), TAG_BYTES)


def hmac_pads(keys: list[bytes]) -> list[tuple[HASH, HASH]]:
    """SHA-256 states after absorbing ``key XOR ipad`` and ``key XOR opad`` (RFC 2104).

    Precomputing them makes each HMAC two state copies and two short updates (about 3x
    faster than ``hmac.digest``); :func:`padded_tags` gives the same tags.
    """
    blocks = [k.ljust(64, b"\0") for k in keys]
    return [
        (hashlib.sha256(b.translate(_IPAD)), hashlib.sha256(b.translate(_OPAD))) for b in blocks
    ]


def padded_tags(pads: list[tuple[HASH, HASH]], messages: list[bytes]) -> NDArray[np.uint8]:
    """HMAC-SHA-256 of ``messages[e]`` under the key of ``pads[e]``, ``(E, 32)`` uint8."""
    out = bytearray()
    for (inner, outer), m in zip(pads, messages, strict=True):  # one HMAC each: hashlib
        h = inner.copy()
        h.update(m)
        o = outer.copy()
        o.update(h.digest())
        out += o.digest()
    return np.frombuffer(out, dtype=np.uint8).reshape(len(pads), TAG_BYTES)


_IPAD = bytes(x ^ 0x36 for x in range(256))  # translation tables: byte -> byte ^ pad
_OPAD = bytes(x ^ 0x5C for x in range(256))


class KeyDistribution(NamedTuple):
    """Outcome of the distribution phase for ``n`` receivers.

    Attributes:
        keys: The signer's strings ``r_ij``, shape ``(n, n, 32)`` uint8.
        held: ``held[j, i]``: the key ``r_ji`` as receiver ``P_i`` holds it (from ``P_j``;
            the diagonal straight from the signer), shape ``(n, n, 32)`` uint8.
        corrupted: ``held != keys`` per entry, shape ``(n, n)`` bool.
    """

    keys: NDArray[np.uint8]
    held: NDArray[np.uint8]
    corrupted: NDArray[np.bool_]


def distribute(
    key_rng: np.random.Generator,
    n: int,
    dishonest: NDArray[np.bool_] | None = None,
    adversary_rng: np.random.Generator | None = None,
) -> KeyDistribution:
    """Draw the keys ``r_ij`` and hand them out (distribution phase, steps 1-3).

    Args:
        key_rng: The signer's stream (one ``(n, n, 32)`` draw).
        n: Number of receivers.
        dishonest: Shape ``(n,)`` bool: receivers that forward garbage instead of ``r_ji``.
        adversary_rng: Stream for the garbage (required if anyone is dishonest).

    Returns:
        The :class:`KeyDistribution`.
    """
    keys = key_rng.integers(0, 256, size=(n, n, TAG_BYTES), dtype=np.uint8)
    held = keys.copy()
    bad = np.zeros((n, n), dtype=bool)
    if dishonest is not None and dishonest.any():
        if adversary_rng is None:
            raise ValueError("dishonest receivers need an adversary_rng for their garbage keys")
        bad = dishonest[:, None] & ~np.eye(n, dtype=bool)  # forwarded by j, not the diagonal
        held[bad] = adversary_rng.integers(0, 256, size=(int(bad.sum()), TAG_BYTES), dtype=np.uint8)
    return KeyDistribution(keys, held, bad)


def key_list(keys: NDArray[np.uint8]) -> list[bytes]:
    """The ``(n, n, 32)`` key array as ``n^2`` bytes objects in row-major order."""
    flat = np.ascontiguousarray(keys).reshape(-1, TAG_BYTES).tobytes()
    return [flat[k : k + TAG_BYTES] for k in range(0, len(flat), TAG_BYTES)]


def sign(keys: NDArray[np.uint8], message: bytes) -> NDArray[np.uint8]:
    """Signature phase: ``(f_11(m), ..., f_nn(m))`` as shape ``(n, n, 32)`` uint8."""
    n = keys.shape[0]
    return tags(key_list(keys), message).reshape(n, n, TAG_BYTES)


def expected_tags(
    dist: KeyDistribution, message: bytes, signer_tags: NDArray[np.uint8] | None = None
) -> NDArray[np.uint8]:
    """Tags ``f_ji(m)`` every receiver computes with the keys it holds, ``(n, n, 32)``.

    Args:
        dist: The key distribution.
        message: The message.
        signer_tags: ``sign(dist.keys, message)`` if already computed: the HMAC is
            deterministic, so entries whose held key is the signer's key equal the signer's
            tags and only the corrupted entries are recomputed.
    """
    if signer_tags is None:
        return sign(dist.held, message)
    out = signer_tags.copy()
    bad = np.flatnonzero(dist.corrupted.ravel())
    if bad.size:
        flat = out.reshape(-1, TAG_BYTES)
        flat[bad] = tags(key_list(dist.held.reshape(-1, TAG_BYTES)[bad]), message)
    return out


def tag_tests(expected: NDArray[np.uint8], signature: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Test (10) for every receiver: ``T[..., j, i] = (t_ji == f_ji(m))``.

    Args:
        expected: ``f_ji(m)`` as the receivers compute it, ``(n, n, 32)``.
        signature: One or a batch of signatures, ``(..., n, n, 32)``.

    Returns:
        Shape ``(..., n, n)`` bool, indexed ``[..., j, i]``.
    """
    e = np.ascontiguousarray(expected).view(np.uint64)  # (n, n, 4): compare 8 bytes at once
    s = np.ascontiguousarray(signature).view(np.uint64)
    return np.asarray((s == e).all(axis=-1))


def accepts(tests: NDArray[np.bool_], sigma: float) -> NDArray[np.bool_]:
    """Rule (11) at every receiver: shape ``(..., n)`` bool from tests ``(..., n, n)``."""
    n = tests.shape[-1]
    return np.asarray(tests.sum(axis=-2) >= rule11_threshold(n, sigma) - 1e-9)


def verify_batch(
    expected: NDArray[np.uint8], signatures: NDArray[np.uint8], sigma: float
) -> NDArray[np.bool_]:
    """Rule (11) for a batch of candidate signatures of one message, in chunks.

    Args:
        expected: ``f_ji(m)`` as the receivers compute it, ``(n, n, 32)``.
        signatures: Shape ``(B, n, n, 32)`` uint8.
        sigma: Assumed honest proportion.

    Returns:
        Shape ``(B, n)`` bool: receiver ``i`` accepts signature ``b``.
    """
    out = np.empty((signatures.shape[0], expected.shape[0]), dtype=bool)
    for lo in range(0, signatures.shape[0], _BATCH):  # chunks bound memory, not per message
        out[lo : lo + _BATCH] = accepts(tag_tests(expected, signatures[lo : lo + _BATCH]), sigma)
    return out


class SerialRegistry:
    """Serial numbers already bound to a message (undeniability as the paper states it).

    Honest receivers share it (the accepted certificate is broadcast, phase 6).
    """

    def __init__(self) -> None:
        self._bound: dict[int, bytes] = {}

    def bind(self, serial: int, message: bytes) -> bool:
        """Bind ``serial`` to ``message``; False if it is bound to a different message."""
        digest = hashlib.sha256(message).digest()
        return self._bound.setdefault(serial, digest) == digest

    def __len__(self) -> int:
        return len(self._bound)


def dispute(
    dist: KeyDistribution,
    message: bytes,
    signature: NDArray[np.uint8],
    sigma: float,
    honest: NDArray[np.bool_],
) -> bool:
    """Whether the honest receivers uphold ``signature`` on ``message`` against a denial.

    The honest receivers re-run test (10) with their keys; a signature that a majority of
    them accept can only come from the signer (no coalition controls enough tests), so the
    signer's denial is refuted.

    Returns:
        True if more than half of the honest receivers accept.
    """
    ok = accepts(tag_tests(expected_tags(dist, message), signature), sigma)
    return bool(np.count_nonzero(ok & honest) * 2 > np.count_nonzero(honest))


def vns_accepts(
    verified: NDArray[np.int_], size: NDArray[np.int_], threshold: NDArray[np.int_]
) -> NDArray[np.bool_]:
    """Eq. (15): ``n_k >= t'_k >= t_k`` elementwise (``verified`` = ``t'_k``)."""
    return np.asarray((verified >= threshold) & (verified <= size))


def crosschain_accepts(
    verified: NDArray[np.int_],
    size: NDArray[np.int_],
    threshold: NDArray[np.int_],
    involved: NDArray[np.bool_],
    total: int | NDArray[np.int_],
) -> NDArray[np.bool_]:
    """Eq. (16) for a batch of requests.

    Args:
        verified: ``t'_d`` per request and VNS, shape ``(T, m)``.
        size: ``n_d``, shape ``(m,)``.
        threshold: ``t_d``, shape ``(m,)``.
        involved: VNS ``d`` takes part in request ``T``, shape ``(T, m)``.
        total: ``t``, the least total count (scalar or per request, ``(T,)``).

    Returns:
        Shape ``(T,)`` bool.
    """
    each = vns_accepts(verified, size, threshold) | ~involved
    return np.asarray(each.all(axis=1) & (np.where(involved, verified, 0).sum(axis=1) >= total))
