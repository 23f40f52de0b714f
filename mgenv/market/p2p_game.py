"""Seed 002 (Zhao et al. 2019): the pricing game inside one PV microgrid (eqs. 3-15).

Roles (eqs. 5-7). User ``i`` has PV output ``e_DG,i`` and load ``e_L,i`` (kWh per period); its
net output is ``e_NOP,i = e_DG,i - e_L,i``. The text calls ``e_NOP >= 0`` a *buyer*, but
Table 10 (users 1-2 with large positive net output are the sellers) and eqs. 9-10 say the
opposite; we follow the table: ``e_NOP > 0`` sells, ``e_NOP < 0`` buys, ``e_NOP = 0`` sits out.

Sellers (eq. 9). ``u_i = lambda_i ln(1 + e_L,i) + p (e_DG,i - e_L,i)``; the best response is
``e_L,i* = lambda_i / p - 1`` clipped to ``E_i = [0, e_DG,i]`` (a seller consumes at most its own
generation, so it stays a seller; the paper leaves ``E_i`` unspecified). Supply is
``s_i(p) = e_DG,i - e_L,i*(p)``, non-decreasing in ``p``.

Lambda (not given by the paper). Calibration: a seller's printed load is its optimum at a
reference price ``p_ref = p_s + lambda_ref (p_b - p_s)``, so ``lambda_i = p_ref (1 + e_L,i)``.
The default ``lambda_ref = 0`` (``p_ref = p_s``) says: without the market, a seller's marginal
kWh is worth the feed-in price, and the printed load is what it then consumes. Above ``p_s``
sellers consume less, as Table 12's adjusted loads mostly do.

Buyers (eq. 10). ``C_j = q_j p + (d_j - q_j) p_b`` with ``d_j = e_L,j - e_DG,j``. Purchases are
pro rata (eq. 13): ``q_j = Q d_j / D`` with ``D = sum d_j`` and ``Q = min(S(p), D)`` the traded
volume. Eq. 12 prints ``p_s`` as the price of the part bought from the grid; a buyer pays the
grid ``p_b`` for it (eq. 10 and the compensation chaincode say so), so we read eq. 12 as
``C_T = p Q + p_b (D - Q)``: with ``p_s`` the buyers would buy the grid's energy for less than
the microgrid's, contradicting eq. 8.

Supply covers demand (``S0 >= D`` with ``S0 = sum of the sellers' published e_NOP``): the price
is the compromise ``p_a = (p_s + p_b) / 2``; buyers are fully served and the surplus goes to the
grid at ``p_s`` (section 3.2.2, last paragraph).

Supply falls short. Two formulations of how the price is set:

* ``"literal"`` (eqs. 14-15 as printed): the buyers' side picks ``p`` to minimise ``C_T``
  given the sellers' responses, i.e. maximises ``G_b(p) = (p_b - p) Q(p)``. When supply barely
  responds to the price (the case data), ``G_b`` decreases in ``p`` and the price falls to the
  floor ``p_s``, which eq. 8 excludes; Table 12 (0.780-0.836, rising with demand) cannot come
  out of it.
* ``"bargaining"`` (default): a generalised Nash bargaining between the buyer group and the seller
  group over the utilities of eqs. 9-10, relative to trading with the grid alone:
  ``max w_b ln G_b(p) + w_s ln G_s(p)`` with ``G_s(p) = sum_i u_i(p) - sum_i u_i(p_s)`` (sellers'
  eq. 9 utility at their best response, the excess over demand sold at ``p_s``, minus what they
  get by selling to the grid) and bargaining powers ``w_s = D / (D + S0)``, ``w_b = S0 / (D + S0)``:
  the scarce side holds more power. Why this one: both gains vanish at the ends of eq. 8's
  interval, so the price is strictly inside ``(p_s, p_b)``; the sellers' power and so the price
  rise with the shortfall; at balance (``S0 = D``) the powers are equal and, with inelastic
  supply, the solution is exactly the paper's compromise price ``p_a``, so the price is
  continuous where the paper switches rule.

Per price ``p`` every quantity is a closed form in three per-piece aggregates of the sellers'
clipped responses (:class:`SellerCurves`): between consecutive breakpoints ``lambda / (1 + e_DG)``
and ``lambda`` of the sellers, ``S(p) = A - Lambda / p`` and ``sum_i u_i(p) = K + A p -
Lambda ln p``. The solvers (:mod:`baselines.stackelberg`) search these pieces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv.market.p2p_curves import (
    Array,
    SellerCurves,
    allocate,
    best_response,
    calibrate_lambda,
)

FORMULATIONS: Final[tuple[str, ...]] = ("bargaining", "literal")
__all__ = [
    "FORMULATIONS",
    "Array",
    "Objective",
    "Outcome",
    "P2PPeriod",
    "SellerCurves",
    "allocate",
    "best_response",
    "calibrate_lambda",
    "outcome",
    "period_objective",
]


def _vector(name: str, values: object) -> Array:
    """A read-only float64 copy of a 1-D array of finite, non-negative kWh values."""
    arr = np.array(values, dtype=np.float64, ndmin=1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0.0))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{name}[{k}]={float(arr[k])!r} (user {k + 1}) is outside [0, inf)")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True)
class P2PPeriod:
    """One trading period of the microgrid: the data of eqs. 3-8 and the lambda calibration.

    Attributes:
        pv_kwh: PV output ``e_DG`` per user, kWh, shape ``(n,)``.
        load_kwh: Printed (forecast) load ``e_L`` per user, kWh, shape ``(n,)``.
        p_s: Feed-in price ("surplus power to the grid"), yuan/kWh.
        p_b: Grid price, yuan/kWh; must exceed ``p_s`` (eq. 8).
        lambda_ref: Where the reference price of the lambda calibration lies in ``[p_s, p_b]``,
            as a share in [0, 1] (0: ``p_ref = p_s``).
    """

    pv_kwh: Array
    load_kwh: Array
    p_s: float
    p_b: float
    lambda_ref: float = 0.0

    def __post_init__(self) -> None:
        pv, load = _vector("pv_kwh", self.pv_kwh), _vector("load_kwh", self.load_kwh)
        if pv.shape != load.shape:
            raise ValueError(f"pv_kwh has shape {pv.shape} but load_kwh has {load.shape}")
        for name in ("p_s", "p_b"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and 0.0 <= v <= 100.0):
                raise ValueError(f"{name}={v!r} is outside [0, 100] yuan/kWh")
        if self.p_s >= self.p_b:
            raise ValueError(f"p_s={self.p_s!r} must be below p_b={self.p_b!r} (eq. 8)")
        if not (math.isfinite(self.lambda_ref) and 0.0 <= self.lambda_ref <= 1.0):
            raise ValueError(f"lambda_ref={self.lambda_ref!r} is outside [0, 1]")
        object.__setattr__(self, "pv_kwh", pv)
        object.__setattr__(self, "load_kwh", load)

    @property
    def net_kwh(self) -> Array:
        """Net output ``e_NOP = e_DG - e_L`` (eq. 5), kWh, shape ``(n,)``."""
        return self.pv_kwh - self.load_kwh

    @property
    def sellers(self) -> NDArray[np.bool_]:
        """Users with positive net output (Table 10), shape ``(n,)``."""
        return self.net_kwh > 0.0

    @property
    def buyers(self) -> NDArray[np.bool_]:
        """Users with negative net output, shape ``(n,)``."""
        return self.net_kwh < 0.0

    @property
    def supply0(self) -> float:
        """Published supply ``S0``: the sellers' net output at their printed loads, kWh."""
        return float(np.maximum(self.net_kwh, 0.0).sum())

    @property
    def demand(self) -> float:
        """Buyers' demand ``D = sum d_j`` (Table 11), kWh."""
        return float(np.maximum(-self.net_kwh, 0.0).sum())

    @property
    def p_ref(self) -> float:
        """Reference price of the lambda calibration, yuan/kWh."""
        return self.p_s + self.lambda_ref * (self.p_b - self.p_s)

    @property
    def lam(self) -> Array:
        """Calibrated ``lambda_i = p_ref (1 + e_L,i)`` of every user, yuan, shape ``(n,)``."""
        return calibrate_lambda(self.load_kwh, self.p_ref)

    @property
    def compromise_price(self) -> float:
        """``p_a = (p_s + p_b) / 2``, yuan/kWh."""
        return 0.5 * (self.p_s + self.p_b)

    @property
    def shortage(self) -> bool:
        """Whether published supply falls short of demand (``e_net < 0``, eq. 7)."""
        return self.supply0 < self.demand

    def bargaining_powers(self) -> tuple[float, float]:
        """``(w_b, w_s) = (S0, D) / (S0 + D)``; ``(0.5, 0.5)`` if both are 0."""
        total = self.supply0 + self.demand
        return (0.5, 0.5) if total <= 0.0 else (self.supply0 / total, self.demand / total)


class Objective:
    """The price setter's objective for one period of one seller type profile.

    ``formulation="literal"``: ``J = G_b = (p_b - p) Q(p)`` (minimising eq. 12's ``C_T``);
    ``"bargaining"``: ``J = w_b ln G_b + w_s ln G_s`` (``-inf`` where a gain is not positive).
    See the module docstring.

    Args:
        curves: The sellers' response curves (their lambda may be a type draw).
        demand_kwh: Buyers' demand ``D``, kWh.
        p_s: Feed-in price, yuan/kWh.
        p_b: Grid price, yuan/kWh.
        formulation: One of :data:`FORMULATIONS`.
        powers: ``(w_b, w_s)`` bargaining powers.
    """

    def __init__(
        self,
        curves: SellerCurves,
        demand_kwh: float,
        p_s: float,
        p_b: float,
        formulation: str,
        powers: tuple[float, float] = (0.5, 0.5),
    ) -> None:
        if formulation not in FORMULATIONS:
            raise ValueError(f"formulation={formulation!r} is not one of {list(FORMULATIONS)}")
        self.curves, self.demand = curves, float(demand_kwh)
        self.p_s, self.p_b, self.formulation = float(p_s), float(p_b), formulation
        self.w_b, self.w_s = powers
        self.u0 = float(curves.utility(np.array(self.p_s)))
        self.p_demand = curves.price_for_supply(self.demand, self.p_s, self.p_b)

    @property
    def breakpoints(self) -> Array:
        """Prices where the objective's formula changes, inside ``(p_s, p_b)``, sorted."""
        pts = np.append(self.curves.breakpoints, self.p_demand)
        return np.unique(pts[(pts > self.p_s) & (pts < self.p_b)])

    def gains(self, p: Array) -> tuple[Array, Array, Array, Array]:
        """Buyers' and sellers' gains over the grid alone and their slopes, exact per piece.

        Returns:
            ``(G_b, G_s, dG_b/dp, dG_s/dp)`` in yuan and yuan per yuan/kWh, shape of ``p``.
        """
        p = np.asarray(p, dtype=np.float64)
        a, lam, k = self.curves.aggregates(p)
        s = np.maximum(a - lam / p, 0.0)
        ds = np.where(s > 0.0, lam / p**2, 0.0)
        short = s < self.demand
        q = np.where(short, s, self.demand)
        g_b = (self.p_b - p) * q
        g_s = k + a * p - lam * np.log(p) - self.u0 - (p - self.p_s) * (s - q)
        dg_b = -q + (self.p_b - p) * np.where(short, ds, 0.0)
        dg_s = q - (p - self.p_s) * np.where(short, 0.0, ds)
        return g_b, g_s, dg_b, dg_s

    def combine(self, g_b: Array, g_s: Array, dg_b: Array, dg_s: Array) -> tuple[Array, Array]:
        """The formulation's ``(J, dJ/dp)`` from the gains and their slopes."""
        if self.formulation == "literal":
            return g_b, dg_b
        ok = (g_b > 0.0) & (g_s > 0.0)
        gb, gs = np.where(ok, g_b, 1.0), np.where(ok, g_s, 1.0)
        value = np.where(ok, self.w_b * np.log(gb) + self.w_s * np.log(gs), -np.inf)
        slope = np.where(ok, self.w_b * dg_b / gb + self.w_s * dg_s / gs, np.nan)
        return value, slope

    def value_and_slope(self, p: Array) -> tuple[Array, Array]:
        """``(J(p), dJ/dp)``, each of the shape of ``p``; exact per piece."""
        return self.combine(*self.gains(p))


class Outcome(NamedTuple):
    """A period's trading at a given price (the columns of Tables 12-13 and Figs. 4-5).

    Arrays have shape ``(n,)`` over all users; energies kWh, money yuan.
    """

    price: float  # yuan/kWh
    load_kwh: Array  # sellers' adjusted loads (eq. 9), others' printed loads
    supply_kwh: Array  # sellers' net output after adjusting (0 for buyers)
    sold_kwh: Array  # sold inside the microgrid
    bought_kwh: Array  # bought inside the microgrid (eq. 13)
    buyer_cost: Array  # eq. 10: q p + (d - q) p_b
    buyer_grid_cost: Array  # d p_b: buying everything from the grid
    seller_revenue: Array  # p sold + p_s (supply - sold)
    seller_grid_revenue: Array  # p_s e_NOP at the printed load: surplus to the grid
    seller_utility_gain: Array  # eq. 9 utility minus its value with the grid only


def outcome(period: P2PPeriod, price: float, lam: Array | None = None) -> Outcome:
    """Trade a period at ``price``: sellers respond by eq. 9, buyers buy pro rata (eq. 13).

    Args:
        period: The period's data.
        price: The internal price (ignored if supply covers demand: ``p_a`` applies).
        lam: Sellers' true lambda (default: the calibration), shape ``(n,)``.

    Returns:
        The :class:`Outcome`.
    """
    lam = period.lam if lam is None else np.asarray(lam, dtype=np.float64)
    p = price if period.shortage else period.compromise_price
    sellers = period.sellers
    gen, load = period.pv_kwh, period.load_kwh
    new_load = np.where(sellers, best_response(lam, gen, p), load)
    supply = np.where(sellers, gen - new_load, 0.0)
    demand = np.maximum(-period.net_kwh, 0.0)
    sold, bought = allocate(supply, demand)
    base_load = np.where(sellers, best_response(lam, gen, period.p_s), load)
    u = lam * np.log1p(new_load) + p * sold + period.p_s * (supply - sold)
    u0 = lam * np.log1p(base_load) + period.p_s * (gen - base_load)
    return Outcome(
        price=float(p),
        load_kwh=new_load,
        supply_kwh=supply,
        sold_kwh=sold,
        bought_kwh=bought,
        buyer_cost=bought * p + (demand - bought) * period.p_b,
        buyer_grid_cost=demand * period.p_b,
        seller_revenue=np.where(sellers, p * sold + period.p_s * (supply - sold), 0.0),
        seller_grid_revenue=np.maximum(period.net_kwh, 0.0) * period.p_s,
        seller_utility_gain=np.where(sellers, u - u0, 0.0),
    )


def period_objective(period: P2PPeriod, formulation: str, lam: Array | None = None) -> Objective:
    """The price setter's objective for ``period`` (sellers' ``lam`` default: calibrated)."""
    lam = period.lam if lam is None else np.asarray(lam, dtype=np.float64)
    s = period.sellers
    curves = SellerCurves(lam[s], period.pv_kwh[s])
    return Objective(
        curves, period.demand, period.p_s, period.p_b, formulation, period.bargaining_powers()
    )


def case_period(period: int, lambda_ref: float = 0.0) -> P2PPeriod:
    """Seed 002's case (Tables 8-9, ``p_s = 0.77``, ``p_b = 0.85``) for hour ``period`` (7-18).

    Raises:
        ValueError: If ``period`` is outside the data's periods.
    """
    from mgenv.scenarios import get  # the scenarios import the config, which imports us

    cfg = get("consortium_p2p")
    first, rows = cfg.start_hour, cfg.profiles.load_data_kwh
    if isinstance(period, bool) or not isinstance(period, int | np.integer):
        raise ValueError(
            f"period={period!r} is not an integer in [{first}, {first + len(rows) - 1}]"
        )
    if not first <= period < first + len(rows):
        raise ValueError(
            f"period={period} is outside the data's periods {first}-{first + len(rows) - 1}"
        )
    k = int(period) - first
    return P2PPeriod(
        np.array(cfg.profiles.pv_data_kwh[k]),
        np.array(rows[k]),
        cfg.grid.feed_in_price[0],
        cfg.grid.buy_price[0],
        lambda_ref,
    )
