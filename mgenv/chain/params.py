"""Validated parameters of the chain stage."""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from typing import Final

SIGNATURE_KINDS: Final[tuple[str, ...]] = ("modelled", "ed25519")
ELECTION_KINDS: Final[tuple[str, ...]] = ("argmax", "proportional")  # SBET creator, eq. (7)
DDOS_MODES: Final[tuple[str, ...]] = ("offline", "slow")
MAX_BLOCK_SIZE: Final = 1_000_000
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


def _as_open_float(name: str, value: object, lo: float, hi: float) -> float:
    """A real number in (lo, hi] (hi = inf: (lo, inf))."""
    x = _as_float(name, value, lo, hi)
    if x <= lo:
        allowed = f"({lo:g}, {hi:g}{')' if math.isinf(hi) else ']'}"
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


def _check_combinations(p: ChainParams, data_plane: bool) -> None:
    """Cross-field rules: DDoS within the nodes, outages possible, adversaries modelled."""
    if p.ddos_nodes > p.n_nodes:
        raise ValueError(f"ChainParams.ddos_nodes={p.ddos_nodes!r} is outside [0, {p.n_nodes}]")
    a, outage = p.availability, p.mean_outage_periods
    lo = max(1.0, (1.0 - a) / a) if 0.0 < a < 1.0 else 1.0
    if outage != 0.0 and outage < lo:
        raise ValueError(
            f"ChainParams.mean_outage_periods={outage!r} is outside {{0}} U [{lo:g}, inf) "
            f"for availability={a!r}"
        )
    for name, share in (("malicious_share", p.malicious_share), ("missing_share", p.missing_share)):
        if share and not data_plane:
            raise ValueError(
                f"ChainParams.{name}={share!r} is not modelled by protocol {p.protocol!r}; "
                "it must be 0 (use 'sbet', 'spft' or 'pos')"
            )


def _check_crosschain(p: ChainParams) -> None:
    """Cross-chain (seed 000): every chain's VNS must fit among the validator nodes."""
    need = p.n_chains * p.vns_size
    if p.protocol == "crosschain" and p.n_nodes < need:
        raise ValueError(
            f"ChainParams.n_nodes={p.n_nodes!r} is outside [{need}, {MAX_NODES}] for protocol "
            f"'crosschain' (n_chains * vns_size = {p.n_chains} * {p.vns_size})"
        )


@dataclass(frozen=True, slots=True)
class ChainParams:
    """Parameters of the chain stage: consensus protocol, network model, adversary, ledger.

    Every field is validated on construction; an invalid value raises ``ValueError`` naming
    the field, the value and the allowed range. Ints and floats are normalised to Python
    ``int`` and ``float``.

    Attributes:
        protocol: Consensus protocol, a key of ``mgenv.chain.protocols.PROTOCOLS``
            (``"ideal"``: every validly signed trade commits at zero latency; ``"pbft"``;
            seed 003: ``"sbet"``, ``"spft"`` (PBFT on SBET's data plane), ``"pos"``).
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
        gamma: Verification threshold of SBET (seed 003, eqs. 3-4): a transaction is verified
            when at least gamma of all nodes confirm it, in (1/2, 1].
        t_max_ms: Maximum waiting timer t_max of eq. (6) (ms), > 0: a data message counts
            if its transit is within it; data rounds last it (:mod:`mgenv.chain.dataplane`).
        malicious_share: Share of nodes that alter the transactions they relay or store and
            vote falsely, in [0, 1]; ``floor(share * n_nodes)`` nodes. Only protocols with a
            data plane (``sbet``, ``spft``, ``pos``) model them.
        missing_share: Share of nodes each transaction fails to reach in the broadcast
            (communication interruption, on top of losses), in [0, 1];
            ``floor(share * n_nodes)`` nodes per transaction. Data-plane protocols only.
        mean_outage_periods: Mean length of a node's outage (periods) in the two-state Markov
            online process; 0 = memoryless periods (each online with ``availability``), else
            at least max(1, (1 - availability) / availability).
        ddos_nodes: Number of the most central nodes under DDoS, in [0, n_nodes].
        ddos_mode: ``"offline"`` (attacked nodes are offline) or ``"slow"`` (their messages
            are ``ddos_slowdown`` times slower and they are busy).
        ddos_slowdown: Delay multiplier on the links of slowed nodes, >= 1.
        creator_election: SBET's block creator among the nodes answering "Yes":
            ``"argmax"`` of eq. (7)'s p_i (Algorithm 1, line 12; default) or
            ``"proportional"`` (drawn with probability p_i).
        block_size: Maximum number of transactions in a block, >= 1 (data-plane protocols:
            the period's valid transactions beyond it are rejected as ``"block_full"``).
        bandwidth_kbps: Link bandwidth for the transmission time of messages (kbit/s), > 0.
        pos_slots_per_block: PoS: mean number of staking slots (of t_max each) until some
            node's kernel hits the target with every node online, >= 1.
        pos_confirmations: PoS: blocks on top of a block before it counts as final, >= 0.
        n_chains: Cross-chain (seed 000): number of chains; participant p and validator node v
            live on chain ``p % n_chains`` and ``v % n_chains``, in [1, 64].
        vns_size: Cross-chain: members of each chain's verification node subset (VNS), chosen
            by credibility; ``n_chains * vns_size <= n_nodes``.
        vns_threshold: Cross-chain: t_k of eq. (15), VNS members whose verification a
            transaction needs, in [1, vns_size].
        honest_share: Cross-chain: sigma of rule (11), the assumed honest proportion of the
            threshold signature's receivers, in [0.75, 1].
        deadline_ms: Cross-chain: contract deadline after the request (ms), > 0.
        deploy_ms: Cross-chain: Delta t of condition (1), the upper limit for deploying or
            executing the contract (ms), in [0, deadline_ms).
        vns_malicious_share: Cross-chain: share of each chain's initial VNS that is malicious
            (false verification, corrupted key forwarding), in [0, 1]; ``round(share *
            vns_size)`` members per chain.
        auth_identity: Seed 001's node authentication before trading (:mod:`mgenv.chain.
            auth`): ``"none"`` (no checks), or the identity keys, ``"ed25519"`` or
            ``"ml-dsa-65"`` (sessions always by ML-KEM-768).
        auth_positions: Checked positions of the simulated Bell-state signature; a forger
            passes with ``4^-auth_positions``, in [1, 4096].
        auth_unregistered: Participants (global indices) that never registered.
        auth_revoked: Participants whose identity is revoked before trading.
        auth_impostors: Participants whose seat an impostor with their stolen classical key
            takes (stopped by the Bell-state check except with ``4^-auth_positions``).
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
    gamma: float = 2.0 / 3.0
    t_max_ms: float = 500.0
    malicious_share: float = 0.0
    missing_share: float = 0.0
    mean_outage_periods: float = 0.0
    ddos_nodes: int = 0
    ddos_mode: str = "offline"
    ddos_slowdown: float = 100.0
    creator_election: str = "argmax"
    block_size: int = 1000
    bandwidth_kbps: float = 1000.0
    pos_slots_per_block: float = 16.0
    pos_confirmations: int = 6
    n_chains: int = 2
    vns_size: int = 4
    vns_threshold: int = 3
    honest_share: float = 0.9
    deadline_ms: float = 2000.0
    deploy_ms: float = 300.0
    vns_malicious_share: float = 0.0
    auth_identity: str = "none"
    auth_positions: int = 16
    auth_unregistered: tuple[int, ...] = ()
    auth_revoked: tuple[int, ...] = ()
    auth_impostors: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # Imported here: the protocol modules import this one.
        from mgenv.chain.auth import AUTH_MODES, MAX_POSITIONS, as_participants
        from mgenv.chain.protocols import PROTOCOLS

        protocol = _as_choice("protocol", self.protocol, tuple(PROTOCOLS))
        min_nodes = PROTOCOLS[protocol].min_nodes
        why = f" for protocol {protocol!r}"
        inf = math.inf
        vns_size = _as_int("vns_size", self.vns_size, 1, MAX_NODES)
        deadline_ms = _as_open_float("deadline_ms", self.deadline_ms, 0.0, inf)
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
            "gamma": _as_open_float("gamma", self.gamma, 0.5, 1.0),
            "t_max_ms": _as_open_float("t_max_ms", self.t_max_ms, 0.0, inf),
            "malicious_share": _as_float("malicious_share", self.malicious_share, 0.0, 1.0),
            "missing_share": _as_float("missing_share", self.missing_share, 0.0, 1.0),
            "mean_outage_periods": _as_float(
                "mean_outage_periods", self.mean_outage_periods, 0.0, inf
            ),
            "ddos_nodes": _as_int("ddos_nodes", self.ddos_nodes, 0, MAX_NODES),
            "ddos_mode": _as_choice("ddos_mode", self.ddos_mode, DDOS_MODES),
            "ddos_slowdown": _as_float("ddos_slowdown", self.ddos_slowdown, 1.0, inf),
            "creator_election": _as_choice(
                "creator_election", self.creator_election, ELECTION_KINDS
            ),
            "block_size": _as_int("block_size", self.block_size, 1, MAX_BLOCK_SIZE),
            "bandwidth_kbps": _as_open_float("bandwidth_kbps", self.bandwidth_kbps, 0.0, inf),
            "pos_slots_per_block": _as_float(
                "pos_slots_per_block", self.pos_slots_per_block, 1.0, inf
            ),
            "pos_confirmations": _as_int("pos_confirmations", self.pos_confirmations, 0, 1000),
            "n_chains": _as_int("n_chains", self.n_chains, 1, 64),
            "vns_size": vns_size,
            "vns_threshold": _as_int(
                "vns_threshold", self.vns_threshold, 1, vns_size, f" (vns_size={vns_size})"
            ),
            "honest_share": _as_float("honest_share", self.honest_share, 0.75, 1.0),
            "deadline_ms": deadline_ms,
            "deploy_ms": _as_float("deploy_ms", self.deploy_ms, 0.0, deadline_ms),
            "vns_malicious_share": _as_float(
                "vns_malicious_share", self.vns_malicious_share, 0.0, 1.0
            ),
            "auth_identity": _as_choice("auth_identity", self.auth_identity, AUTH_MODES),
            "auth_positions": _as_int("auth_positions", self.auth_positions, 1, MAX_POSITIONS),
            **{
                name: as_participants(name, getattr(self, name))
                for name in ("auth_unregistered", "auth_revoked", "auth_impostors")
            },
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)
        _check_combinations(self, getattr(PROTOCOLS[protocol], "data_plane", False))
        _check_crosschain(self)

    @property
    def max_faulty(self) -> int:
        """Number of Byzantine nodes f tolerated by a BFT quorum: (n_nodes - 1) // 3."""
        return (self.n_nodes - 1) // 3

    @property
    def n_withholding(self) -> int:
        """Number of nodes that withhold their votes: withhold_share * n_nodes, half up."""
        return math.floor(self.withhold_share * self.n_nodes + 0.5)
