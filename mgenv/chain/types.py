"""Result types and rejection reasons shared by the chain stage.

``ConsensusResult`` is what :meth:`mgenv.chain.Chain.process` returns for one market period;
``RoundOutcome`` is what a consensus protocol returns for one block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from mgenv.chain.ledger import Block

#: Why a trade did or did not settle; ``ConsensusResult.reason`` indexes this tuple.
#: ``"committed"`` (0): the trade is in this period's block.
#: ``"no_quorum"`` (1): the period's block did not gather a commit quorum (lost messages,
#: offline or withholding nodes).
#: ``"bad_signature"`` (2): the seller's or the buyer's signature does not verify.
#: ``"primary_offline"`` (3): no leader could be established for the period (the primary was
#: offline and too few nodes were online to complete a view change).
#: ``"invalid_trade"`` (4): the trade fails the validity predicate (quantity not a positive
#: finite number, price not finite, or seller == buyer).
#: ``"missing"``: the transaction never reached the block creator, leader or forger (lost in
#: the network) and was not recovered, so it is not in the block (SBET, SPFT, PoS).
#: ``"tampered"``: the nodes agreed on an altered copy (malicious nodes beyond the protocol's
#: bound); the true trade does not settle (SBET, SPFT, PoS).
#: ``"block_full"``: the period had more valid transactions than ``ChainParams.block_size``.
#: ``"vns_rejected"``: a verification node subset did not reach its threshold t_k (cross-chain,
#: seed 000 eqs. 15-16: offline, malicious or unreached VNS members).
#: ``"deadline_missed"``: the VNS verifications ended too late for the contract deadline
#: minus its deployment time (cross-chain, seed 000 condition (1)).
#: ``"unauthenticated"``: the seller or the buyer has no authenticated session (unregistered,
#: revoked or an impostor caught by the check; seed 001, :mod:`mgenv.chain.auth`).
REJECT_REASONS: Final[tuple[str, ...]] = (
    "committed",
    "no_quorum",
    "bad_signature",
    "primary_offline",
    "invalid_trade",
    "missing",
    "tampered",
    "block_full",
    "vns_rejected",
    "deadline_missed",
    "unauthenticated",
)
COMMITTED: Final = 0
NO_QUORUM: Final = 1
BAD_SIGNATURE: Final = 2
PRIMARY_OFFLINE: Final = 3
INVALID_TRADE: Final = 4
MISSING: Final = REJECT_REASONS.index("missing")
TAMPERED: Final = REJECT_REASONS.index("tampered")
BLOCK_FULL: Final = REJECT_REASONS.index("block_full")
VNS_REJECTED: Final = REJECT_REASONS.index("vns_rejected")
DEADLINE_MISSED: Final = REJECT_REASONS.index("deadline_missed")


class RoundOutcome(NamedTuple):
    """What a consensus protocol decided about one period's block.

    Attributes:
        committed: Whether the block reached a commit quorum.
        reason: Index into ``REJECT_REASONS``: 0 if committed, else why not.
        latency_ms: Simulated consensus latency of the block (ms); a model, see the protocol.
        online_share: Share of validator nodes online this period, in [0, 1].
        view_changes: Number of view changes (leader replacements) this period.
    """

    committed: bool
    reason: int
    latency_ms: float
    online_share: float
    view_changes: int


class TxOutcome(NamedTuple):
    """What a per-transaction protocol decided about one period's transactions.

    Protocols whose verdict differs between transactions (cross-chain VNS verification, SBET's
    verification ratio r(T)) implement ``decide_transactions`` and return this instead of a
    :class:`RoundOutcome`.

    Attributes:
        committed: Shape (T,), bool: transaction t commits (only valid ones are asked about).
        reason: Shape (T,), int8: index into ``REJECT_REASONS`` for the ones that do not.
        latency_ms: Simulated latency of the period's block (ms).
        online_share: Share of validator nodes online this period.
        view_changes: Leader replacements this period.
        extra: Protocol-specific figures of the period (e.g. ``"safety_violation"``).
    """

    committed: NDArray[np.bool_]
    reason: NDArray[np.int8]
    latency_ms: float
    online_share: float
    view_changes: int
    extra: dict[str, float]


class PerTransactionProtocol:
    """Base of protocols that decide each transaction (``decide_transactions``).

    The chain never calls ``decide`` for them; it exists only to satisfy the protocol
    interface of :mod:`mgenv.chain.protocols`.
    """

    def decide(self, has_block: bool) -> RoundOutcome:
        """Not used: the chain calls ``decide_transactions`` for this protocol."""
        raise NotImplementedError(f"{type(self).__name__} decides per transaction")


class ConsensusResult(NamedTuple):
    """What the chain decided about one market period's trades.

    Attributes:
        committed: Shape (T,), bool: trade t settles (it is in this period's block).
        reason: Shape (T,), int8: index into ``REJECT_REASONS``; 0 = committed.
        latency_ms: Simulated consensus latency of this period's block (ms); 0.0 when no
            block was proposed. A model: see the protocol's module docstring.
        online_share: Share of validator nodes online this period, in [0, 1].
        view_changes: Number of view changes this period.
        block: The block appended to the ledger this period, or None if nothing committed.
        extra: Protocol-specific figures of the period, plus the nodes' view
            (``honest_heads_agree``, ``lagging_nodes``, ``forked_nodes``) for protocols with a
            node model (:mod:`mgenv.chain.nodeview`); empty for ideal.
    """

    committed: NDArray[np.bool_]
    reason: NDArray[np.int8]
    latency_ms: float
    online_share: float
    view_changes: int
    block: Block | None
    extra: dict[str, float] = {}  # noqa: RUF012 (NamedTuple default, never mutated)
