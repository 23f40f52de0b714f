"""Ideal consensus: every validly signed, valid trade commits, at zero latency.

The reference against which the faulty protocols are compared. It draws nothing from either
random stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np

from mgenv.chain.types import COMMITTED, RoundOutcome

if TYPE_CHECKING:
    from mgenv.chain.params import ChainParams

_COMMIT: Final = RoundOutcome(True, COMMITTED, 0.0, 1.0, 0)
_NO_BLOCK: Final = RoundOutcome(False, COMMITTED, 0.0, 1.0, 0)


class IdealProtocol:
    """A perfect, always-online network with honest nodes.

    Args:
        params: Chain parameters (only the protocol name matters).
        network_rng: Unused.
        adversary_rng: Unused.
    """

    min_nodes = 1

    def __init__(
        self,
        params: ChainParams,
        network_rng: np.random.Generator,
        adversary_rng: np.random.Generator,
    ) -> None:
        del params, network_rng, adversary_rng

    def decide(self, has_block: bool) -> RoundOutcome:
        """Commit the block if there is one; latency 0 ms, all nodes online, no view change."""
        return _COMMIT if has_block else _NO_BLOCK
