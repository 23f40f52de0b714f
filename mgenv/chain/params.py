"""Validated parameters of the chain stage."""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from typing import Final

SIGNATURE_KINDS: Final[tuple[str, ...]] = ("modelled", "ed25519")
MAX_NODES: Final = 256  # a consortium chain; a PBFT round draws 6 n^2 uniforms
MAX_LEDGER_WINDOW: Final = 10_000_000


def _as_int(name: str, value: object, lo: int, hi: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"ChainParams.{name}={value!r} is not an integer in [{lo}, {hi}]{why}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"ChainParams.{name}={value!r} is outside [{lo}, {hi}]{why}")
    return int(value)


def _as_float(name: str, value: object, lo: float, hi: float) -> float:
    allowed = f"[{lo:g}, {hi:g}{')' if math.isinf(hi) else ']'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"ChainParams.{name}={value!r} is not a real number in {allowed}")
    x = float(value)
    if not (math.isfinite(x) and lo <= x <= hi):
        raise ValueError(f"ChainParams.{name}={value!r} is outside {allowed}")
    return x


def _as_path(name: str, value: object) -> str:
    """A file path whose folder exists, or "" (no file)."""
    path = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if path is None:
        raise ValueError(f"ChainParams.{name}={value!r} is not a path")
    if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"ChainParams.{name}={value!r}: its folder does not exist")
    return str(path)


def _as_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"ChainParams.{name}={value!r} is not one of {valid}")
    return value


@dataclass(frozen=True, slots=True)
class ChainParams:
    """Parameters of the chain stage: consensus protocol, network model, adversary, ledger.

    Every field is validated on construction; an invalid value raises ``ValueError`` naming
    the field, the value and the allowed range. Ints and floats are normalised to Python
    ``int`` and ``float``.

    Attributes:
        protocol: Consensus protocol, a key of ``mgenv.chain.protocols.PROTOCOLS``
            (``"ideal"``: every validly signed trade commits at zero latency; ``"pbft"``).
        n_nodes: Number of validator nodes (separate from the market participants), from the
            protocol's minimum (4 for PBFT, so that f = (n - 1) // 3 >= 1) to 256.
        message_loss: Probability that any single consensus message is lost, in [0, 1].
        availability: Probability that a node is online in a period, in [0, 1].
        withhold_share: Share of nodes that never send prepare/commit votes, in [0, 1];
            the number of such nodes is ``round(withhold_share * n_nodes)`` (half up).
        signatures: ``"modelled"`` (HMAC-SHA-256, a cheap stand-in for a public-key
            signature) or ``"ed25519"`` (real Ed25519 from ``cryptography``).
        area_km: Side of the square in which nodes are placed (km).
        base_delay_ms: Fixed part of the one-way message delay (ms).
        delay_per_km_ms: Distance part of the one-way message delay (ms per km).
        jitter_ms: Mean of the exponential jitter added to each message's delay (ms).
        view_change_timeout_ms: Time lost per view change, and by a round that fails (ms).
        ledger_window: Number of most recent blocks the in-memory ledger keeps.
        ledger_path: SQLite file that also receives every committed block (WAL, one SQL
            transaction per block; :mod:`mgenv.chain.store`); empty: in memory only.
    """

    protocol: str = "ideal"
    n_nodes: int = 4
    message_loss: float = 0.0
    availability: float = 1.0
    withhold_share: float = 0.0
    signatures: str = "modelled"
    area_km: float = 10.0
    base_delay_ms: float = 5.0
    delay_per_km_ms: float = 0.5
    jitter_ms: float = 2.0
    view_change_timeout_ms: float = 200.0
    ledger_window: int = 256
    ledger_path: str = ""

    def __post_init__(self) -> None:
        # Imported here: the protocol modules import this one.
        from mgenv.chain.protocols import PROTOCOLS

        protocol = _as_choice("protocol", self.protocol, tuple(PROTOCOLS))
        min_nodes = PROTOCOLS[protocol].min_nodes
        why = f" for protocol {protocol!r}"
        inf = math.inf
        values: dict[str, object] = {
            "protocol": protocol,
            "n_nodes": _as_int("n_nodes", self.n_nodes, min_nodes, MAX_NODES, why),
            "message_loss": _as_float("message_loss", self.message_loss, 0.0, 1.0),
            "availability": _as_float("availability", self.availability, 0.0, 1.0),
            "withhold_share": _as_float("withhold_share", self.withhold_share, 0.0, 1.0),
            "signatures": _as_choice("signatures", self.signatures, SIGNATURE_KINDS),
            "area_km": _as_float("area_km", self.area_km, 0.0, inf),
            "base_delay_ms": _as_float("base_delay_ms", self.base_delay_ms, 0.0, inf),
            "delay_per_km_ms": _as_float("delay_per_km_ms", self.delay_per_km_ms, 0.0, inf),
            "jitter_ms": _as_float("jitter_ms", self.jitter_ms, 0.0, inf),
            "view_change_timeout_ms": _as_float(
                "view_change_timeout_ms", self.view_change_timeout_ms, 0.0, inf
            ),
            "ledger_window": _as_int("ledger_window", self.ledger_window, 1, MAX_LEDGER_WINDOW),
            "ledger_path": _as_path("ledger_path", self.ledger_path),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def max_faulty(self) -> int:
        """Number of Byzantine nodes f tolerated by a BFT quorum: (n_nodes - 1) // 3."""
        return (self.n_nodes - 1) // 3

    @property
    def n_withholding(self) -> int:
        """Number of nodes that withhold their votes: withhold_share * n_nodes, half up."""
        return math.floor(self.withhold_share * self.n_nodes + 0.5)
