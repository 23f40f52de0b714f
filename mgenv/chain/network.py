"""Network model of the validator nodes: positions, delays, who is online, which messages arrive.

A model, not a measurement. Nodes sit at points drawn uniformly in a square of side
``area_km``; the one-way delay of a message from node j to node i is

    delay_ms[j, i] = slow[j, i] * (base_delay_ms + delay_per_km_ms * distance_km[j, i] + jitter),
    jitter ~ Exponential(mean = jitter_ms), independent per message,

plus, where a protocol models message sizes, ``bytes * 8 / bandwidth_kbps`` of transmission
(:meth:`NetworkModel.transmission_ms`). ``slow`` is 1 except on the links of
nodes under a slowing DDoS (below).

**Online state S(t)** (seed 003, eq. 2) follows a two-state Markov chain per node with
stationary availability a = ``availability`` and mean outage length L = ``mean_outage_periods``
periods: P(online | online before) = 1 - (1 - a) / (a L), P(online | offline before) = 1 / L.
``mean_outage_periods = 0`` (the default) is the memoryless special case: every period each
node is online with probability a whatever it was before (mean outage 1 / a periods). In both
cases a node is online in period t iff ``u_t < p_on[state_{t-1}]`` with one uniform ``u_t`` per
node (the first period uses a), so the memoryless case reproduces the former Bernoulli draw
bit for bit.

**Message loss**: every message of every phase is lost independently with ``message_loss``.

**DDoS** (seed 003, section IV-A: "launched to some critical MGs"): the ``ddos_nodes`` most
central nodes (smallest summed distance to the others, ties by index; they are the ones whose
outage hurts the most links) are attacked in every period. ``ddos_mode="offline"`` takes them
offline; ``"slow"`` multiplies the delays of every message they send or receive by
``ddos_slowdown`` (a flooded link) and keeps them busy (SBET: they answer "No" to the creator
election).

**Waiting time of eq. (6)**: ``wait_ms[i, u] = (1 - d(e_u, e_i) / d_max) * t_max`` with d_max
the diagonal of the square (the largest possible distance, so every pair is in range). It is
the contention timer of distance-based broadcast: the farther a node, the sooner its data
leave (:mod:`mgenv.chain.dataplane` uses it for the data messages).

Random streams (``network_rng`` only):
    * at construction: ``rng.uniform(0, area_km, (n, 2))``, the node positions (km);
    * per period, in :meth:`NetworkModel.draw_round`: a single ``rng.random(n + 2 P n^2 + E)``
      (P phases, E extra uniforms; PBFT: P = 3, E = 0), split into ``online`` (first n), the
      loss uniforms of the P phases (next P n^2), the jitter uniforms (next P n^2) and the
      extra uniforms (last E). The draw has the same size every period, whether or not there
      are trades, so the network's realisation in period t does not depend on the market.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit

if TYPE_CHECKING:
    from mgenv.chain.params import ChainParams

N_PHASES = 3  # PBFT: pre-prepare (or proposal), prepare, commit
_NO_EXTRA: NDArray[np.float64] = np.zeros(0)


class RoundDraw(NamedTuple):
    """One period's random network realisation.

    Attributes:
        online: Shape (n,), bool: node is online this period.
        delivered: Shape (P, n, n), bool, indexed [phase, sender, receiver]: the message would
            arrive if both ends are online (loss only; the diagonal is False: a node does not
            message itself).
        jitter_u: Shape (P, n, n), float64 uniforms in [0, 1), turned into exponential jitter
            by :meth:`NetworkModel.delays_ms` (only when a latency is needed).
        extra_u: Shape (E,), float64 uniforms in [0, 1) for the protocol's own per-period
            choices (e.g. SBET's proportional creator election); empty by default.
    """

    online: NDArray[np.bool_]
    delivered: NDArray[np.bool_]
    jitter_u: NDArray[np.float64]
    extra_u: NDArray[np.float64] = _NO_EXTRA


def critical_nodes(distance_km: NDArray[np.float64], k: int) -> NDArray[np.bool_]:
    """The ``k`` most central nodes: smallest summed distance to the others, ties by index.

    Args:
        distance_km: Shape (n, n), symmetric distances (km).
        k: Number of nodes to mark, in [0, n].

    Returns:
        Shape (n,), bool.
    """
    mask = np.zeros(distance_km.shape[0], dtype=bool)
    mask[np.argsort(distance_km.sum(axis=1), kind="stable")[:k]] = True
    return mask


@functools.lru_cache(maxsize=16)
def _off_diagonal(n: int) -> NDArray[np.bool_]:
    """``~np.eye(n, dtype=bool)``, shape (n, n), read-only (one per size, shared by episodes)."""
    mask = ~identity(n)
    mask.flags.writeable = False
    return mask


@functools.lru_cache(maxsize=64)
def constant(n: int, value: bool | float, dtype: type = bool) -> NDArray[Any]:
    """A read-only (n,) array of ``value``, one per size, value and dtype, shared by chains.

    For the rows that are the same in every episode without adversaries or DDoS (nobody
    attacked, every node honest and voting): no fresh array at every reset.
    """
    row: NDArray[Any] = np.full(n, value, dtype=dtype)
    row.flags.writeable = False
    return row


@functools.lru_cache(maxsize=16)
def identity(n: int) -> NDArray[np.bool_]:
    """``np.eye(n, dtype=bool)``, read-only: one per size, shared by every chain built."""
    eye = np.eye(n, dtype=bool)
    eye.flags.writeable = False
    return eye


@_jit.kernel
def _geometry_into(
    positions_km: NDArray[np.float64],
    base_ms: float,
    per_km_ms: float,
    distance_km: NDArray[np.float64],
    base_delay_ms: NDArray[np.float64],
) -> None:
    """Distances and base delays of every node pair, as :class:`NetworkModel`'s numpy code.

    ``sqrt(dx**2 + dy**2)`` (numpy squares, then sums the two terms) and
    ``base_ms + per_km_ms * distance``: the same operations in the same order, so the same
    numbers; one call instead of six numpy ones at every reset.

    Args:
        positions_km: Shape (n, 2), node positions (km).
        base_ms: Base one-way delay (ms).
        per_km_ms: Delay per km (ms/km).
        distance_km: Output, shape (n, n) (km).
        base_delay_ms: Output, shape (n, n) (ms).
    """
    n = positions_km.shape[0]
    for i in range(n):
        for j in range(n):
            dx = positions_km[i, 0] - positions_km[j, 0]
            dy = positions_km[i, 1] - positions_km[j, 1]
            d = np.sqrt(dx * dx + dy * dy)
            distance_km[i, j] = d
            base_delay_ms[i, j] = base_ms + per_km_ms * d


@_jit.kernel
def _wait_into(
    distance_km: NDArray[np.float64], d_max_km: float, t_max_ms: float, out: NDArray[np.float64]
) -> None:
    """:meth:`NetworkModel.wait_ms`' ``(1 - distance / d_max) * t_max`` into ``out``, (n, n).

    numpy's three element-wise operations in the same order, so the same numbers.
    """
    n = distance_km.shape[0]
    for i in range(n):
        for j in range(n):
            out[i, j] = (1.0 - distance_km[i, j] / d_max_km) * t_max_ms


def online_transition(availability: float, mean_outage_periods: float) -> tuple[float, float]:
    """P(online | offline before) and P(online | online before) of the two-state chain.

    Args:
        availability: Stationary probability a of being online, in [0, 1].
        mean_outage_periods: Mean outage length L (periods), 0 for memoryless periods.

    Returns:
        ``(p_up_from_down, p_up_from_up)``; both equal a when L = 0 or a is 0 or 1.
    """
    a, mean_out = availability, mean_outage_periods
    if mean_out == 0.0 or a in (0.0, 1.0):
        return a, a
    q_on = 1.0 / mean_out
    q_off = q_on * (1.0 - a) / a  # stationary a = q_on / (q_on + q_off)
    return q_on, 1.0 - q_off


class NetworkModel:
    """Fixed geometry of the validator network plus the per-period random draws.

    Args:
        params: Chain parameters (n_nodes, area_km, delays, availability, outages, DDoS,
            message_loss, bandwidth).
        rng: The network stream; positions are drawn from it here.
        n_phases: Number of message phases P drawn per period (3 for PBFT).
        n_extra: Number of extra per-period uniforms E (0 for PBFT).
        positions_km: The positions ``rng.uniform(0, area_km, (n, 2))`` gives, drawn
            elsewhere from ``rng``'s stream (:mod:`mgenv.episode_draws`), ``rng`` already
            past them; None: drawn here.

    Attributes:
        online_state: Shape (n,), bool: who was online last period (None before the first).
        attacked: Shape (n,), bool: nodes under DDoS.
        down: Shape (n,), bool: nodes taken offline by the DDoS.
        busy: Shape (n,), bool: nodes kept busy (and slowed) by the DDoS.
        node_slow: Shape (n,): delay multiplier of each node's links (1 if not slowed).
    """

    def __init__(
        self,
        params: ChainParams,
        rng: np.random.Generator,
        n_phases: int = N_PHASES,
        n_extra: int = 0,
        positions_km: NDArray[np.float64] | None = None,
    ) -> None:
        n = params.n_nodes
        self.n_nodes = n
        self.n_phases = n_phases
        self.availability = params.availability
        self.message_loss = params.message_loss
        self.jitter_ms = params.jitter_ms
        self.ms_per_byte = 8.0 / params.bandwidth_kbps  # kbit/s = bit/ms
        self.positions_km: NDArray[np.float64] = (
            rng.uniform(0.0, params.area_km, (n, 2)) if positions_km is None else positions_km
        )
        self.distance_km: NDArray[np.float64]  # (n, n)
        self.base_delay_ms: NDArray[np.float64]  # (n, n)
        if _jit.ENABLED:  # built at every reset: one kernel call, the same numbers
            self.distance_km, self.base_delay_ms = np.empty((n, n)), np.empty((n, n))
            _geometry_into(
                self.positions_km,
                params.base_delay_ms,
                params.delay_per_km_ms,
                self.distance_km,
                self.base_delay_ms,
            )
        else:
            diff = self.positions_km[:, None, :] - self.positions_km[None, :, :]
            self.distance_km = np.sqrt((diff**2).sum(axis=-1))
            self.base_delay_ms = params.base_delay_ms + params.delay_per_km_ms * self.distance_km
        self.d_max_km = math.sqrt(2.0) * params.area_km  # eq. (6)'s maximum range
        self.area_km = params.area_km
        self.base_ms = params.base_delay_ms
        self.per_km_ms = params.delay_per_km_ms
        attack = params.ddos_nodes > 0
        # Without a DDoS nobody is attacked: the ranking by centrality is skipped.
        nobody = constant(n, False)  # read-only, shared
        self.attacked = critical_nodes(self.distance_km, params.ddos_nodes) if attack else nobody
        slowing = params.ddos_mode == "slow" and attack
        offline = params.ddos_mode == "offline" and attack
        self.down = self.attacked if offline else nobody
        self._down = self.down if offline else None
        self.busy = self.attacked if slowing else nobody
        # (n,); np.where's values, which are all 1.0 when nobody is slowed
        self.node_slow = (
            np.where(self.busy, params.ddos_slowdown, 1.0) if slowing else constant(n, 1.0, float)
        )
        self.slow: NDArray[np.float64] | None = None  # (n, n) delay multiplier, None if all 1
        if slowing:
            hit = self.attacked[:, None] | self.attacked[None, :]
            self.slow = np.where(hit, params.ddos_slowdown, 1.0)
            self.base_delay_ms = self.base_delay_ms * self.slow
        self._p_on = online_transition(params.availability, params.mean_outage_periods)
        self.online_state: NDArray[np.bool_] | None = None
        self._off_diagonal = _off_diagonal(n)  # (n, n), read-only
        self._loss_end = n + n_phases * n * n  # draw layout: online | loss | jitter | extra
        self._jitter_end = n + 2 * n_phases * n * n
        self._draw_size = self._jitter_end + n_extra

    def wait_ms(self, t_max_ms: float) -> NDArray[np.float64]:
        """Waiting time of eq. (6) before node i sends its data to node u, shape (n, n) (ms).

        Args:
            t_max_ms: The maximum waiting timer t_max (ms).

        Returns:
            ``[1 - d(e_u, e_i) / d_max] * t_max``, indexed [sender i, receiver u]; d_max is the
            diagonal of the square (t_max everywhere if the square has no extent).
        """
        d_max = self.d_max_km
        if d_max == 0.0:
            return np.full((self.n_nodes, self.n_nodes), t_max_ms)
        if _jit.ENABLED:  # one kernel call at every reset, the same numbers
            out = np.empty((self.n_nodes, self.n_nodes))
            _wait_into(self.distance_km, d_max, t_max_ms, out)
            return out
        return (1.0 - self.distance_km / d_max) * t_max_ms

    def next_online(self, u: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Advance the online chain one period with one uniform per node (the DDoS applied).

        Args:
            u: Shape (n,), uniforms in [0, 1).

        Returns:
            Shape (n,), bool: online this period.
        """
        down_p, up_p = self._p_on
        if self.online_state is None or down_p == up_p:
            online = u < up_p if self.online_state is not None else u < self.availability
        else:
            online = u < np.where(self.online_state, up_p, down_p)
        self.online_state = online
        if self._down is not None:
            online = online & ~self._down
        return online

    @property
    def transition(self) -> tuple[float, float]:
        """``(p_up_from_down, p_up_from_up)`` of the online chain (:func:`online_transition`)."""
        return self._p_on

    def draw_uniforms(self, rng: np.random.Generator) -> NDArray[np.float64]:
        """The period's uniforms, exactly the ``rng.random`` call of :meth:`draw_round`.

        For compiled protocols that read the layout (online | loss | jitter | extra) themselves;
        the caller then advances :attr:`online_state` as :meth:`next_online` would.

        Args:
            rng: The network stream.

        Returns:
            Shape (n + 2 P n^2 + E,), float64 in [0, 1).
        """
        return rng.random(self._draw_size)

    def draw_round(self, rng: np.random.Generator) -> RoundDraw:
        """Draw who is online and which messages arrive this period (one ``rng.random`` call).

        Advances the online Markov chain (:attr:`online_state`).

        Args:
            rng: The network stream.

        Returns:
            The period's draw.
        """
        n, phases = self.n_nodes, self.n_phases
        u = rng.random(self._draw_size)
        online = self.next_online(u[:n])
        delivered = u[n : self._loss_end].reshape(phases, n, n) >= self.message_loss
        delivered &= self._off_diagonal
        jitter_u = u[self._loss_end : self._jitter_end].reshape(phases, n, n)
        if self._draw_size == self._jitter_end:
            return RoundDraw(online, delivered, jitter_u)
        return RoundDraw(online, delivered, jitter_u, u[self._jitter_end :])

    def delays_ms(self, jitter_u: NDArray[np.float64]) -> NDArray[np.float64]:
        """One-way delays of every message of every phase (ms), shape (P, n, n).

        Args:
            jitter_u: Shape (P, n, n), uniforms in [0, 1) from :meth:`draw_round`.

        Returns:
            ``slow * (base_delay_ms + Exponential(jitter_ms))`` by inverse transform.
        """
        jitter = -self.jitter_ms * np.log1p(-jitter_u)
        if self.slow is not None:
            jitter *= self.slow
        return self.base_delay_ms + jitter

    def transmission_ms(self, n_bytes: float | NDArray[np.float64]) -> NDArray[np.float64]:
        """Time to put ``n_bytes`` on an unslowed link (ms): ``bytes * 8 / bandwidth_kbps``.

        Args:
            n_bytes: Message size(s) in bytes.

        Returns:
            Transmission time(s), ms, same shape as ``n_bytes``.
        """
        return np.asarray(n_bytes, dtype=np.float64) * self.ms_per_byte


def child_stream(rng: np.random.Generator) -> np.random.Generator:
    """A child generator of ``rng`` that does not advance it (``rng.spawn``).

    Falls back to seeding from one draw of ``rng`` if it has no seed sequence.
    """
    try:
        return rng.spawn(1)[0]
    except TypeError:  # a generator built without a SeedSequence
        return np.random.default_rng(int(rng.integers(2**63)))
