"""Seed 000's aggregator-led bidding market: costs, the eq. 6 strategy sets, one-period clearing.

Hu, Xia, Zhang (2022), section 4.1. Microgrids sell to the aggregators, which buy the market
demand from them and the rest from the big grid, and resell at a service coefficient
``delta`` (eq. 4). Each microgrid offers ``n`` price/quantity segments (the paper: n = 3,
high/medium/low) that clear in one uniform-price call auction in merit order.

Generation cost (the paper gives none). Microgrid ``i`` producing ``q`` kWh in a period pays
``C_i(q) = a_i q^2 + b_i q`` yuan: the convex quadratic of economic-dispatch textbooks and the
cost model of the env's gas turbines (:func:`mgenv.physics.units.generation_cost`), so the
standalone game and the env price energy alike. Marginal cost ``b + 2 a q``, average cost
``b + a q``.

Strategy set of microgrid ``i`` (eq. 6, with the case study's spread of section 5.1). A
strategy is a medium price ``m`` on a grid of step ``price_step`` and a share vector ``x`` on
the simplex lattice of resolution ``share_resolution``; segment ``s`` is priced
``m + du_i d_s`` with directions ``d = linspace(+1, -1, n)`` (high, medium, low) and spread
``du_i = C_MC - C_AC = a_i Q_i`` (section 5.1: marginal minus mean cost at the maximum
output ``Q_i``) and carries ``x_s Q_i`` kWh. A strategy is admissible when

* constraint 3: ``sum_s x_s = 1``; constraint 6: ``0 <= x_s Q_i <= Q_i`` (by construction);
* every segment that carries energy is priced within ``quote_bounds`` (constraint 1: below
  the grid's price; the env's ``[price_floor, price_cap]``);
* constraint 4: ``cost_margin * C_i(Q_i) / Q_i <= sum_s b_s x_s <= rho^(k-1)``.

Reading of constraint 4: the text calls ``C_i(q_i)`` a marginal cost but the formula divides
it by ``q_i``; we follow the formula (a floor on the *average* price at 5% above the average
cost at the bidding volume ``Q_i``), because a floor on the average offered price only makes
sense against an average cost. If the floor exceeds ``rho^(k-1)`` the set would be empty;
the upper bound is then relaxed to the cheapest admissible average price (a microgrid may
always offer at its floor). Every set also holds the *withhold* strategy (index 0: offer
nothing), so that participation is voluntary (constraint 6 allows ``q = 0``).

The clearing price is corrected into ``price_interval`` (section 4.1: "if the calculated
clearing price is below the preset minimum, the clearing price will be corrected into the
preset minimum; otherwise ... into the preset maximum"), and the corrected price is paid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import NamedTuple

import numpy as np

from mgenv.market.clearing import clear_uniform_price
from mgenv.validation import check_all_range, check_int, check_range

MAX_STRATEGIES = 20_000  # per microgrid; a best response clears this many books at once


def _check_interval(field: str, pair: tuple[float, float]) -> None:
    if len(pair) != 2:
        raise ValueError(f"BiddingGame.{field}={pair!r} must be a pair (low, high)")
    check_all_range("BiddingGame", field, pair, 0.0, 100.0)
    if not pair[0] < pair[1]:
        raise ValueError(
            f"BiddingGame.{field}={pair!r} is reversed or empty; give (low, high) with low < high"
        )


@dataclass(frozen=True, slots=True)
class BiddingGame:
    """One period of seed 000's bidding game (section 4.1), validated.

    Attributes:
        capacity_kwh: Bidding volume ``Q_i`` of each microgrid this period, kWh.
        cost_a: Quadratic cost coefficient ``a_i``, yuan/kWh^2.
        cost_b: Linear cost coefficient ``b_i``, yuan/kWh.
        demand_kwh: Market demand the aggregators buy this period, kWh.
        quote_bounds: Lowest and highest admissible segment price, yuan/kWh.
        price_interval: Preset clearing-price interval ``[rho_min, rho_max]``, yuan/kWh.
        n_segments: Segments per offer (paper: 3, high/medium/low).
        price_step: Step of the medium-price grid, yuan/kWh.
        share_resolution: Shares are multiples of ``1 / share_resolution``.
        cost_margin: Factor on the average cost in constraint 4 (paper: 1.05).
        grid_price: The big grid's selling price ``P_PG(sell)``, yuan/kWh (constraint 1:
            above ``quote_bounds``).
        delta: Aggregators' service coefficient (constraint 2: in [0.85, 1.2]).
        n_aggregators: Aggregators sharing the demand equally (paper: AG1, AG2).
    """

    capacity_kwh: tuple[float, ...]
    cost_a: tuple[float, ...]
    cost_b: tuple[float, ...]
    demand_kwh: float
    quote_bounds: tuple[float, float] = (0.45, 0.75)
    price_interval: tuple[float, float] = (0.45, 0.75)
    n_segments: int = 3
    price_step: float = 0.005
    share_resolution: int = 4
    cost_margin: float = 1.05
    grid_price: float = 0.80
    delta: float = 1.05
    n_aggregators: int = 2

    def __post_init__(self) -> None:
        n = len(self.capacity_kwh)
        for name in ("capacity_kwh", "cost_a", "cost_b"):
            values = getattr(self, name)
            check_all_range("BiddingGame", name, values, 0.0, 1e9)
            if len(values) != n:
                raise ValueError(
                    f"BiddingGame.{name} has {len(values)} values; capacity_kwh has {n}"
                )
        check_range("BiddingGame", "demand_kwh", self.demand_kwh, 0.0, 1e9)
        _check_interval("quote_bounds", self.quote_bounds)
        _check_interval("price_interval", self.price_interval)
        check_int("BiddingGame", "n_segments", self.n_segments, 1, 10)
        check_range("BiddingGame", "price_step", self.price_step, 0.0, 10.0, low_open=True)
        check_int("BiddingGame", "share_resolution", self.share_resolution, 1, 100)
        check_range("BiddingGame", "cost_margin", self.cost_margin, 1.0, 10.0)
        check_range(
            "BiddingGame", "grid_price", self.grid_price, self.quote_bounds[1], 100.0, low_open=True
        )
        check_range("BiddingGame", "delta", self.delta, 0.85, 1.2)
        check_int("BiddingGame", "n_aggregators", self.n_aggregators, 1, 256)
        size = len(self.medium_prices) * math.comb(
            self.share_resolution + self.n_segments - 1, self.n_segments - 1
        )
        if size > MAX_STRATEGIES:
            raise ValueError(
                f"BiddingGame strategy set has {size} strategies (> {MAX_STRATEGIES}); "
                "raise price_step or lower share_resolution"
            )

    @property
    def n_mg(self) -> int:
        """Number of microgrids."""
        return len(self.capacity_kwh)

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Q, a, b)`` as float64 arrays of shape ``(n_mg,)``."""
        return (
            np.asarray(self.capacity_kwh, dtype=np.float64),
            np.asarray(self.cost_a, dtype=np.float64),
            np.asarray(self.cost_b, dtype=np.float64),
        )

    @property
    def spread(self) -> np.ndarray:
        """Segment spread ``du_i = C_MC - C_AC = a_i Q_i`` (section 5.1), yuan/kWh, ``(n_mg,)``."""
        q, a, _ = self.arrays
        return np.asarray(a * q)

    @property
    def floor_price(self) -> np.ndarray:
        """Constraint 4's lower bound ``cost_margin * C_i(Q_i) / Q_i``, yuan/kWh, ``(n_mg,)``."""
        q, a, b = self.arrays
        return np.asarray(self.cost_margin * (b + a * q))

    @property
    def medium_prices(self) -> np.ndarray:
        """The medium-price grid, yuan/kWh: ``quote_bounds`` in steps of ``price_step``."""
        lo, hi = self.quote_bounds
        count = math.floor((hi - lo) / self.price_step + 1e-9) + 1
        return np.round(lo + self.price_step * np.arange(count), 10)


def cost(q_kwh: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Generation cost ``a q^2 + b q``, yuan, elementwise (``q`` in kWh)."""
    return np.asarray(a * q_kwh**2 + b * q_kwh)


def competitive_price(game: BiddingGame) -> float:
    """Price at which the microgrids' marginal-cost supply meets the demand, yuan/kWh.

    The economic dispatch ``min sum_i C_i(q_i)`` s.t. ``sum_i q_i = D``, ``0 <= q_i <= Q_i``
    (Fig. 5's initial "simplex method" step; solved here through its dual): each microgrid
    supplies ``clip((rho - b_i) / (2 a_i), 0, Q_i)`` (all of ``Q_i`` when ``a_i = 0`` and
    ``b_i < rho``), and ``rho`` is found by bisection, then corrected into the price interval.
    A demand at or above the total capacity gives the top of the interval.
    """
    q, a, b = game.arrays
    lo, hi = game.price_interval
    if game.demand_kwh >= q.sum():
        return hi
    low, high = 0.0, float(np.max(b + 2.0 * a * q)) + 1.0
    for _ in range(100):  # bisection iterations (a solver loop)
        mid = 0.5 * (low + high)
        step = np.where(b < mid, q, 0.0)
        supply = np.divide(mid - b, 2.0 * a, out=step, where=a > 0)
        if np.clip(supply, 0.0, q).sum() < game.demand_kwh:
            low = mid
        else:
            high = mid
    return float(min(max(high, lo), hi))


def share_lattice(n_segments: int, resolution: int) -> np.ndarray:
    """Every share vector with entries in multiples of ``1/resolution`` summing to 1.

    Returns:
        Shape ``(C(resolution + n - 1, n - 1), n)``, rows in lexicographic order.
    """
    rows = []
    for bars in combinations(range(resolution + n_segments - 1), n_segments - 1):
        edges = (-1, *bars, resolution + n_segments - 1)
        rows.append([edges[s + 1] - edges[s] - 1 for s in range(n_segments)])
    return np.asarray(rows, dtype=np.float64) / resolution


class StrategySet(NamedTuple):
    """The discrete strategies of every microgrid (index 0: withhold).

    Attributes:
        shares: Share vector of each strategy, shape ``(K, S)`` (row 0 all zeros).
        prices: Segment prices, yuan/kWh, shape ``(n_mg, K, S)`` (within ``quote_bounds``).
        average: Offered average price ``sum_s b_s x_s``, yuan/kWh, ``(n_mg, K)``.
        admissible: Strategies meeting every constraint but the ``rho^(k-1)`` bound,
            ``(n_mg, K)`` bool.
        cheapest: Lowest admissible average price of each microgrid (inf if none), ``(n_mg,)``.
    """

    shares: np.ndarray
    prices: np.ndarray
    average: np.ndarray
    admissible: np.ndarray
    cheapest: np.ndarray


def strategy_set(game: BiddingGame) -> StrategySet:
    """Enumerate the strategy sets of eq. 6 (see the module docstring).

    Returns:
        The :class:`StrategySet`; ``K = 1 + len(medium_prices) * len(share_lattice)``.
    """
    s = game.n_segments
    lattice = share_lattice(s, game.share_resolution)
    medium = game.medium_prices
    shares = np.concatenate((np.zeros((1, s)), np.tile(lattice, (medium.size, 1))))
    mid = np.concatenate(([game.quote_bounds[0]], np.repeat(medium, lattice.shape[0])))
    direction = np.linspace(1.0, -1.0, s) if s > 1 else np.zeros(1)
    raw = mid[None, :, None] + game.spread[:, None, None] * direction  # (n_mg, K, S)
    lo, hi = game.quote_bounds
    eps = 1e-12
    in_bounds = ((raw >= lo - eps) & (raw <= hi + eps)) | (shares[None] == 0)
    prices = np.clip(raw, lo, hi)
    average = (prices * shares[None]).sum(axis=2)
    admissible = in_bounds.all(axis=2) & (average >= game.floor_price[:, None] - eps)
    admissible[:, 0] = False
    cheapest = np.where(admissible, average, np.inf).min(axis=1)
    admissible[:, 0] = True
    return StrategySet(shares, prices, average, admissible, cheapest)


def feasible(sset: StrategySet, rho_prev: float) -> np.ndarray:
    """Strategies admissible in a round whose previous clearing price was ``rho_prev``.

    Constraint 4's upper bound ``average <= rho^(k-1)``, relaxed to a microgrid's cheapest
    admissible average when that exceeds ``rho^(k-1)``; withholding is always feasible.

    Returns:
        Shape ``(n_mg, K)`` bool.
    """
    upper = np.maximum(rho_prev, sset.cheapest)[:, None] + 1e-12
    ok = sset.admissible & (sset.average <= upper)
    ok[:, 0] = True
    return np.asarray(ok)


def check_offers(prices: np.ndarray, shares: np.ndarray, volume_kwh: np.ndarray) -> None:
    """Validate a segment book: finite prices, non-negative shares summing to 1, volumes.

    Args:
        prices: Segment prices, yuan/kWh, shape ``(n_mg, S)``.
        shares: Segment shares, shape ``(n_mg, S)``; each row sums to 1 (or is all 0).
        volume_kwh: Bidding volume per microgrid, kWh, shape ``(n_mg,)``.

    Raises:
        ValueError: Naming the offending argument and row.
    """
    if prices.shape != shares.shape or prices.shape[:1] != volume_kwh.shape:
        raise ValueError(
            f"prices {prices.shape}, shares {shares.shape} and volume_kwh "
            f"{volume_kwh.shape} do not match (n_mg, S), (n_mg, S), (n_mg,)"
        )
    for name, arr in (("prices", prices), ("shares", shares), ("volume_kwh", volume_kwh)):
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(
                f"{name} of microgrid {row} has a negative or non-finite value: {arr[row].tolist()}"
            )
    sums = shares.sum(axis=1)
    off = ~(np.isclose(sums, 1.0, atol=1e-9) | (sums == 0))
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ValueError(f"shares of microgrid {row} sum to {sums[row]:.6g}, not 1")


class PeriodClearing(NamedTuple):
    """One period's clearing (see :func:`clear_period`).

    Attributes:
        price: Clearing price corrected into the preset interval, yuan/kWh (0 if nothing
            cleared).
        raw_price: Merit-order price of the last accepted offer before correction.
        awarded_kwh: Energy awarded to every segment, kWh, shape ``(n_mg, S)``.
        sold_kwh: Energy sold by each microgrid, kWh, shape ``(n_mg,)``.
        grid_kwh: Demand left to the big grid, kWh.
    """

    price: float
    raw_price: float
    awarded_kwh: np.ndarray
    sold_kwh: np.ndarray
    grid_kwh: float


def clear_period(
    prices: np.ndarray,
    shares: np.ndarray,
    volume_kwh: np.ndarray,
    demand_kwh: float,
    price_interval: tuple[float, float],
    demand_limit: float = math.inf,
) -> PeriodClearing:
    """Clear one period of the aggregator market from segment offers and demand.

    Usable without the env. Offers ``prices[i, s]`` for ``shares[i, s] * volume_kwh[i]`` kWh
    clear in merit order (:func:`~mgenv.market.clearing.clear_uniform_price`) against the
    demand at limit ``demand_limit`` (default: any price; the aggregators buy every
    admissible offer up to the demand); the price is then corrected into
    ``price_interval``; what the microgrids do not supply comes from the grid.

    Args:
        prices: Segment prices, yuan/kWh, shape ``(n_mg, S)``.
        shares: Segment shares (rows sum to 1, or 0 for a microgrid that withholds).
        volume_kwh: Bidding volume of each microgrid, kWh, shape ``(n_mg,)``.
        demand_kwh: Market demand, kWh (finite, >= 0).
        price_interval: ``(rho_min, rho_max)``, yuan/kWh, low < high.
        demand_limit: Highest offer price the aggregators accept, yuan/kWh.

    Returns:
        The :class:`PeriodClearing`.

    Raises:
        ValueError: For bad offers (see :func:`check_offers`), a negative or non-finite
            demand, or a reversed interval.
    """
    prices, shares = np.asarray(prices, np.float64), np.asarray(shares, np.float64)
    volume = np.asarray(volume_kwh, np.float64)
    check_offers(prices, shares, volume)
    check_range("clear_period", "demand_kwh", demand_kwh, 0.0, 1e9)
    lo, hi = price_interval
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"price_interval={price_interval!r} is reversed or not finite")
    c = clear_uniform_price(
        prices.ravel(),
        (shares * volume[:, None]).ravel(),
        np.array([demand_limit]),
        np.array([float(demand_kwh)]),
    )
    awarded = c.awarded_kwh.reshape(prices.shape)
    price = min(max(c.price, lo), hi) if c.cleared else 0.0
    return PeriodClearing(
        price, c.price, awarded, awarded.sum(axis=1), float(demand_kwh) - c.quantity_kwh
    )


def aggregator_utility(
    delta: float, price: float, market_kwh: float, grid_kwh: float, grid_price: float
) -> float:
    """An aggregator's utility ``E_A`` (eq. 4), yuan.

    Reading of the garbled eq. 4: the aggregator buys ``market_kwh`` from microgrids at the
    clearing price and ``grid_kwh`` from the big grid at ``grid_price`` (``E_A-M + E_A-P``)
    and resells both to its customers at ``delta`` times the purchase price
    (``E_M-A + E_P-A``), so ``E_A = (delta - 1)(price * market_kwh + grid_price * grid_kwh)``.
    """
    return (delta - 1.0) * (price * market_kwh + grid_price * grid_kwh)
