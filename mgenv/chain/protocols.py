"""Registry of consensus protocols.

A protocol is a class constructed as ``Protocol(params, network_rng, adversary_rng)`` with a
class attribute ``min_nodes`` and a method ``decide(has_block) -> RoundOutcome`` called once
per period. A protocol whose verdict differs per transaction implements instead
``decide_transactions(period, sellers, buyers, valid, payloads) -> TxOutcome`` (``valid``: the
(T,) bool mask of transactions that passed signature and validity checks; ``payloads``: their
40-byte records as received); the chain then uses it and never calls ``decide``.
To add one (SBET, PoS, cross-chain), write a module with such a class and add it to
``PROTOCOLS``; ``ChainParams.protocol`` then accepts its name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

import numpy as np

from mgenv.chain.crosschain import CrossChainProtocol
from mgenv.chain.ideal import IdealProtocol
from mgenv.chain.pbft import PBFTProtocol
from mgenv.chain.pos import PoSProtocol
from mgenv.chain.sbet import SBETProtocol
from mgenv.chain.spft import SPFTProtocol
from mgenv.chain.types import RoundOutcome

if TYPE_CHECKING:
    from mgenv.chain.params import ChainParams


class ConsensusProtocol(Protocol):
    """What the chain needs from a consensus protocol instance."""

    def decide(self, has_block: bool) -> RoundOutcome:
        """Decide this period's block; called exactly once per period, in order.

        Args:
            has_block: Whether any valid transaction was submitted this period.

        Returns:
            The outcome (ignored except for ``online_share`` when ``has_block`` is False).
        """
        ...


class ProtocolFactory(Protocol):
    """A protocol class: its constructor signature and its minimum number of nodes."""

    min_nodes: int

    def __call__(
        self,
        params: ChainParams,
        network_rng: np.random.Generator,
        adversary_rng: np.random.Generator,
    ) -> ConsensusProtocol:
        """Build the protocol; draws its fixed randomness (positions, adversaries) here."""
        ...


PROTOCOLS: Final[dict[str, ProtocolFactory]] = {
    "ideal": IdealProtocol,
    "pbft": PBFTProtocol,
    "sbet": SBETProtocol,
    "crosschain": CrossChainProtocol,
    "spft": SPFTProtocol,
    "pos": PoSProtocol,
}
