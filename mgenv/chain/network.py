"""Network model of the validator nodes: positions, delays, who is online, which messages arrive.

A model, not a measurement: nodes sit at points drawn uniformly in a square of side
``area_km``; the one-way delay of a message from node j to node i is

    delay_ms[j, i] = base_delay_ms + delay_per_km_ms * distance_km[j, i] + jitter,
    jitter ~ Exponential(mean = jitter_ms), independent per message.

Each period every node is online independently with probability ``availability``, and every
message of every consensus phase is lost independently with probability ``message_loss``.

Random streams (``network_rng`` only):
    * at construction: ``rng.uniform(0, area_km, (n, 2))``, the node positions (km);
    * per period, in :meth:`NetworkModel.draw_round`: a single ``rng.random(n + 6 n^2)``,
      split into ``online`` (first n), the loss uniforms of the 3 phases (next 3 n^2) and the
      jitter uniforms of the 3 phases (last 3 n^2). The draw has the same size every period,
      whether or not there are trades, so the network's realisation in period t does not
      depend on the market.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from mgenv.chain.params import ChainParams

N_PHASES = 3  # pre-prepare (or proposal), prepare, commit


class RoundDraw(NamedTuple):
    """One period's random network realisation.

    Attributes:
        online: Shape (n,), bool: node is online this period.
        delivered: Shape (3, n, n), bool, indexed [phase, sender, receiver]: the message would
            arrive if both ends are online (loss only; the diagonal is False: a node does not
            message itself).
        jitter_u: Shape (3, n, n), float64 uniforms in [0, 1), turned into exponential jitter
            by :meth:`NetworkModel.delays_ms` (only when a latency is needed).
    """

    online: NDArray[np.bool_]
    delivered: NDArray[np.bool_]
    jitter_u: NDArray[np.float64]


class NetworkModel:
    """Fixed geometry of the validator network plus the per-period random draws.

    Args:
        params: Chain parameters (n_nodes, area_km, delays, availability, message_loss).
        rng: The network stream; positions are drawn from it here.
    """

    def __init__(self, params: ChainParams, rng: np.random.Generator) -> None:
        n = params.n_nodes
        self.n_nodes = n
        self.availability = params.availability
        self.message_loss = params.message_loss
        self.jitter_ms = params.jitter_ms
        self.positions_km: NDArray[np.float64] = rng.uniform(0.0, params.area_km, (n, 2))
        diff = self.positions_km[:, None, :] - self.positions_km[None, :, :]
        distance_km = np.sqrt((diff**2).sum(axis=-1))  # (n, n)
        self.base_delay_ms: NDArray[np.float64] = (
            params.base_delay_ms + params.delay_per_km_ms * distance_km
        )
        self._off_diagonal = ~np.eye(n, dtype=bool)  # (n, n)
        self._loss_end = n + N_PHASES * n * n  # draw layout: online | loss | jitter
        self._draw_size = n + 2 * N_PHASES * n * n

    def draw_round(self, rng: np.random.Generator) -> RoundDraw:
        """Draw who is online and which messages arrive this period (one ``rng.random`` call).

        Args:
            rng: The network stream.

        Returns:
            The period's draw.
        """
        n = self.n_nodes
        u = rng.random(self._draw_size)
        online = u[:n] < self.availability
        delivered = u[n : self._loss_end].reshape(N_PHASES, n, n) >= self.message_loss
        delivered &= self._off_diagonal
        return RoundDraw(online, delivered, u[self._loss_end :].reshape(N_PHASES, n, n))

    def delays_ms(self, jitter_u: NDArray[np.float64]) -> NDArray[np.float64]:
        """One-way delays of every message of every phase (ms), shape (3, n, n).

        Args:
            jitter_u: Shape (3, n, n), uniforms in [0, 1) from :meth:`draw_round`.

        Returns:
            ``base_delay_ms + Exponential(jitter_ms)`` by inverse transform.
        """
        return self.base_delay_ms - self.jitter_ms * np.log1p(-jitter_u)
