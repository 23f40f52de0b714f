"""Batched opponents: the reference baselines' actions for B copies, ``(B, n_role, A)``.

Bit-identical per copy to ``baselines.reference``'s ``act_role(role, rows, obs, env)`` with
``rows`` every member of the role (as the env calls it) in the uniform-price market: the same
elementwise formulas on the batched :class:`BatchedPublicInfo`. Supported: ``truthful`` (the
default opponent), ``fixed_quotes`` and ``grid_only``; none of them reads observations.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mgenv.config import EnvConfig, MarketParams
from mgenv.core import MarketCore, fleet_arrays
from mgenv.market.mechanism import make_mechanism
from mgenv.market.orders import from_delta, from_price, from_unit
from mgenv.physics.units import FleetArrays

SUPPORTED = ("fixed_quotes", "grid_only", "truthful")


class BatchedPublicInfo(NamedTuple):
    """:class:`mgenv.core.PublicInfo` for B copies in lockstep."""

    market: MarketParams
    grid_buy: float  # this period, yuan/kWh (same for every copy)
    feed_in: float  # yuan/kWh (same for every copy)
    last_price: np.ndarray  # (B,) yuan/kWh
    surplus: np.ndarray  # (B, n_mg) kWh
    gen_headroom: np.ndarray  # (B, n_mg) kWh
    deficit: np.ndarray  # (B, n_mg) kWh
    user_need: np.ndarray  # (B, n_user) kWh
    load_forecast: np.ndarray  # (B, n_mg) kWh
    fleet: FleetArrays  # (n_mg,) each, shared by the copies
    buyer_agg: np.ndarray  # (n_mg + n_user,) aggregator (0-based among aggregators)


class BatchedOpponent:
    """Base: fixed action rows per role, a per-period buyer tail; subclasses fill the rest.

    Attributes:
        name: The baseline's name.
        observes: False: these baselines act on public information only.
    """

    name = "batched_opponent"
    observes = False

    def __init__(self, cfg: EnvConfig) -> None:
        self.cfg = cfg
        self.market = cfg.market
        mech = make_mechanism(cfg.market)
        self.dims = {r: len(mech.action_names(r)) for r in ("mg", "agg", "user")}
        self.sizes = {"mg": cfg.n_microgrids, "agg": cfg.n_aggregators, "user": cfg.n_users}

    def act_role(self, role: str, public: BatchedPublicInfo) -> np.ndarray:
        """Actions of every member of ``role`` in every copy, float64 ``(B, n_role, A)``.

        Args:
            role: ``"mg"``, ``"agg"`` or ``"user"``.
            public: This period's public information.
        """
        raise NotImplementedError

    def _copies(self, public: BatchedPublicInfo) -> int:
        return int(public.last_price.shape[0])

    def _fresh(self, role: str, row: np.ndarray, public: BatchedPublicInfo) -> np.ndarray:
        """A new ``(B, n_role, A)`` array with every agent's actions equal to ``row`` (A,)."""
        out = np.empty((self._copies(public), self.sizes[role], self.dims[role]))
        out[...] = row
        return out

    def _buyer_row(self, public: BatchedPublicInfo) -> np.ndarray:
        """``[buy_frac, buy_limit]`` = all of the need, up to the grid price (reference)."""
        return np.array([from_unit(1.0), from_price(public.grid_buy, self.market)])


class TruthfulBatch(BatchedOpponent):
    """``baselines.reference.Truthful``: marginal-cost offers, grid-price bids, fee 1.05."""

    name = "truthful"

    def __init__(self, cfg: EnvConfig, truthful_delta: float) -> None:
        super().__init__(cfg)
        m = self.market
        self._agg_row = np.array([from_price(m.price_cap, m), from_delta(truthful_delta, m)])
        self._steps = np.arange(1, m.n_segments)  # (S - 1,)

    def act_role(self, role: str, public: BatchedPublicInfo) -> np.ndarray:
        """See :meth:`BatchedOpponent.act_role`."""
        if role == "mg":
            return self._mg(public)
        if role == "agg":
            return self._fresh(role, self._agg_row, public)
        return self._fresh(role, self._buyer_row(public), public)

    def _offers(self, public: BatchedPublicInfo) -> tuple[np.ndarray, np.ndarray]:
        """``truthful_mg_offers``: prices and shares, ``(B, n_mg, S)`` each."""
        s, f, m = self.market.n_segments, public.fleet, self.market
        sur, head = public.surplus, public.gen_headroom
        if s == 1:
            price = f.gen_cost_b + 2.0 * f.gen_cost_a * head  # marginal_cost(head)
            return price[:, :, None], np.ones((*head.shape, 1))
        total = sur + head
        ends = head[:, :, None] * self._steps / (s - 1)  # (B, n, S-1) cumulative output, kWh
        mc = f.gen_cost_b[:, None] + 2.0 * f.gen_cost_a[:, None] * ends
        prices = np.empty((*head.shape, s))
        prices[:, :, 0] = m.price_floor
        prices[:, :, 1:] = mc
        safe = np.where(total > 0, total, 1.0)
        shares = np.empty_like(prices)
        shares[:, :, 0] = sur / safe
        shares[:, :, 1:] = (head / safe / (s - 1))[:, :, None]
        shares = np.where(total[:, :, None] > 0, shares, 1.0 / s)
        return prices, shares

    def _mg(self, public: BatchedPublicInfo) -> np.ndarray:
        prices, shares = self._offers(public)
        return self._assemble(prices, shares, public)

    def _assemble(
        self, prices: np.ndarray, shares: np.ndarray, public: BatchedPublicInfo
    ) -> np.ndarray:
        """``reference._assemble`` with offer_frac 1 and the buyer tail, ``(B, n_mg, 2S + 3)``."""
        s = self.market.n_segments
        out = np.empty((self._copies(public), self.sizes["mg"], self.dims["mg"]))
        out[:, :, :s] = from_price(prices, self.market)
        out[:, :, s : 2 * s] = from_unit(shares)
        out[:, :, 2 * s] = float(from_unit(1.0))
        out[:, :, 2 * s + 1 :] = self._buyer_row(public)
        return out


class FixedQuotesBatch(TruthfulBatch):
    """``baselines.reference.FixedQuotes``: quotes 1.2 / 1.0 / 0.8 x C_MC; others truthful."""

    name = "fixed_quotes"

    def __init__(self, cfg: EnvConfig, truthful_delta: float, fleet: FleetArrays) -> None:
        super().__init__(cfg, truthful_delta)
        f = fleet
        s = self.market.n_segments
        mc_max = f.gen_cost_b + 2.0 * f.gen_cost_a * f.gen_kw * cfg.dt_h
        factors = np.linspace(1.2, 0.8, s) if s > 1 else np.ones(1)
        self._prices = mc_max[:, None] * factors[None, :]  # (n_mg, S)
        self._shares = np.full((cfg.n_microgrids, s), 1.0 / s)

    def _offers(self, public: BatchedPublicInfo) -> tuple[np.ndarray, np.ndarray]:
        return self._prices, self._shares


class GridOnlyBatch(BatchedOpponent):
    """``baselines.reference.GridOnly``: offer nothing, bid nothing."""

    name = "grid_only"

    def __init__(self, cfg: EnvConfig) -> None:
        super().__init__(cfg)
        s = self.market.n_segments
        self._rows = {r: np.zeros(d) for r, d in self.dims.items()}
        self._rows["mg"][2 * s] = -1.0  # offer_frac = 0
        self._rows["mg"][2 * s + 1] = -1.0  # buy_frac = 0
        self._rows["user"][0] = -1.0

    def act_role(self, role: str, public: BatchedPublicInfo) -> np.ndarray:
        """See :meth:`BatchedOpponent.act_role`."""
        return self._fresh(role, self._rows[role], public)


def batched_opponent(
    name: str, cfg: EnvConfig, single: MarketCore | None = None
) -> BatchedOpponent:
    """The batched version of baseline ``name`` for ``cfg`` (uniform-price market only).

    Args:
        name: A baseline name (``SUPPORTED``).
        cfg: The config.
        single: A single core of ``cfg`` to read the fleet from; None: tiled from ``cfg``.

    Raises:
        ValueError: For a baseline without a batched version (listing the supported ones)
            or a market mechanism other than ``"uniform_price"``.
    """
    if name not in SUPPORTED:
        raise ValueError(f"no batched opponent {name!r}; supported are {list(SUPPORTED)}")
    if cfg.market.mechanism != "uniform_price":
        raise ValueError(
            f"batched opponents support MarketParams.mechanism='uniform_price'; "
            f"got {cfg.market.mechanism!r}"
        )
    if name == "grid_only":
        return GridOnlyBatch(cfg)
    # baselines depend on mgenv: import at first use (as mgenv.env does).
    from baselines.reference import TRUTHFUL_DELTA

    if name == "fixed_quotes":
        fleet = fleet_arrays(cfg) if single is None else single.fleet
        return FixedQuotesBatch(cfg, TRUTHFUL_DELTA, fleet)
    return TruthfulBatch(cfg, TRUTHFUL_DELTA)
