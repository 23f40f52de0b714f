"""Seed 001's three-tier market (eqs. 17-20, 29-37) as a :class:`~mgenv.market.mechanism.Mechanism`.

Microgrids sell their scattered electricity to aggregators; aggregators sell electricity to
microgrids in deficit and to large users; large users only buy. Every microgrid and every
buyer deals with one aggregator, its *home*: seller ``mg_i`` with ``agg_(i % n_agg)``, buyer
``b`` with ``MarketInputs.buyer_agg[b]`` (the core's convention). Aggregators buy only what
they resell in the period (their storage cost is a constant term the paper leaves out of the
game, eq. 34), so every trade is one flow seller -> aggregator -> buyer, unless the
aggregators keep batteries (below).

Aggregator storage (eqs. 19, 34; ``MarketParams.agg_battery_*``, off with zero capacity).
What the paper says: an aggregator "collects and stores the scattered electricity from
microgrids" (section 5), its cost is its purchases plus ``C_battery Q_battery`` (eq. 19),
a constant term left out of the game's strategy space (eq. 34); it prints no storage data,
no charging rule and no day-end condition for it. For the microgrids' batteries it states the
operating rule (section 3.1.1: "considering peak-load shifting, the batteries store
electricity during the valley hours and sell electricity during the peak hours") and
``E(0) = E(24)`` (eq. 5).

What is implemented (:func:`battery_moves`, per aggregator ``j``, vectorised): the battery is
one more participant of its own aggregator's market, trading under the global index
``n_mg + j``, and it takes only the *residual* of that market, so it never crowds out the
microgrids' scattered electricity (the paper's "timely consumption") nor a buyer:

* it buys (charges) the accepted supply its buyers do not take, ``max(S_j - D_j, 0)``, when
  ``p_J->M <= agg_charge_below`` (it stores scattered electricity), paying ``p_J->M``;
* it sells (discharges) into the accepted demand its microgrids cannot serve, ``max(D_j -
  S_j, 0)``, when ``p_J->Y >= agg_discharge_above``, receiving ``p_J->Y`` (``p_J->M`` as the
  seller plus the aggregator's margin), never in a valley period;
* in a valley period (``grid_buy <= agg_grid_charge_below``; 0, the default, turns it off) it
  restores its start content ``E0 = agg_soc_init * capacity`` from the grid at the grid's
  price, as far as its power allows (the grid is the market's fallback supplier; with the
  default tariff it is below every admissible market price, so the market cannot supply it);
* with grid charging on, its sales stop at ``max(agg_soc_min * capacity, E0 - eta_c P dt)``,
  the content one valley period restores: a day whose last period is a valley hour (23:00
  with the default tariff) ends at ``E0`` exactly, eq. 5's ``E(0) = E(24)``;
* at the end of its day (every 24 h after reset: with ``start_hour = 0`` the calendar day of
  the CCHE physics) any content off ``E0`` is a residue charged at ``agg_residue_price`` per
  kWh (like the microgrids' ``residue_price``); the content is not reset.

Each side's moves are within the power ``agg_battery_kw dt`` and the content bounds
``[agg_soc_min, agg_soc_max] * capacity``; charge and discharge are mutually exclusive. A
residual move is never rationed (it fits ``min(S_j, D_j)`` exactly), so the market quantity of
the aggregator is ``min(S_j, D_j)`` plus the battery's move. The move is made as cleared
whatever commits on the chain (a failed purchase is bought from the grid, a failed sale fed
in, by the settlement's fallback). The core books the whole charge ``charge_kwh`` (market
plus grid) as the aggregator's deficit position, so what the market does not deliver is a
grid import paid at the grid price (``Settlement.grid_import``, ``grid_cash``). ``cost`` in
:class:`~mgenv.market.mechanism.StorageMoves` is eq. 19's ``C_battery Q_battery``
(``agg_battery_cost`` times all energy bought into the battery) plus the residue charge, both
paid outside the market.

Why this reading: with seed 001's calibration (``ccche_thermal_game``) the market clears only
at the peak hours, so a battery that trades only inside its market has no cheap period to
charge in and cannot end the day where it began (measured in the scenario's docstring). The
valley charge from the grid is the paper's own battery rule (store in the valley, release at
the peak) applied to the aggregator; restoring only up to ``E0`` (never buying ahead) keeps
the battery idle when nothing trades, so the aggregator's no-trade profit is unchanged.

Natural gas (eq. 18's ``C^G_{M-J} V_M``, ``MarketParams.tier_gas``): see :func:`gas_bills`;
the core charges the microgrids for the gas their turbines burnt after the physics.

Reading of the prices. The aggregator's strategy (eq. 31) is a pair of prices: ``price_mg``,
what it offers the microgrids for their electricity (the paper's ``p_J->M``, which at 11:00
"should not surpass" the microgrids' 0.98 and must not be "too low" or the trade fails, i.e.
an offer *to* the sellers), and ``price_buyer``, its selling price ``p_J->Y``, also charged to
microgrids in deficit (section 6: "the microgrids purchase electricity at the expected
selling price"). The microgrid's strategy (eq. 29) is its selling price ``p_M->J``, the lowest
offer it accepts (``ask``); the large user's (eq. 30) is its purchase price ``p_Y->J``, the
highest price it accepts (``bid``). A contract of eq. 37 ``C = [S_k | S_h | Q | [t, t+dt] |
p]`` forms when both sides accept: seller ``i`` sells iff ``price_mg >= ask_i``, buyer ``b``
buys iff ``price_buyer <= limit_b``; the contract prices are the aggregator's offers. (The
paper prints ``p_M->J = 0.98`` above ``p_J->M = 0.94`` and ``p_Y->J = 0.95`` below ``p_J->Y =
1.00`` for trades that happen: as acceptance limits they contradict each other, so they are
read as opening positions and the aggregator's offers as the agreed prices.)

Quantities: aggregator ``j`` trades ``Q_j = min(S_j, D_j)``, the accepted supply and demand of
its customers, each side rationed pro rata; the flows are split into bilateral trades by the
north-west corner rule within each aggregator (:func:`match_grouped`). In the :class:`Trades`
the price is ``price_mg`` and the service coefficient ``delta = price_buyer / price_mg``, so
settlement pays the seller ``p_J->M q``, charges the buyer ``p_J->Y q`` and leaves the
aggregator the difference, unchanged (seed 000 eq. 4's bookkeeping).

Action layouts (entries in [-1, 1], mapped affinely onto the role's price interval;
fractions onto [0, 1]):

=====  =====================================================================================
mg     ``ask`` (tier_mg_interval), ``sell_frac`` (share of the offerable energy offered),
       ``buy_frac`` (share of a deficit bought in the market), ``buy_limit``
       (tier_mg_interval: highest aggregator price accepted for it)
agg    ``price_mg``, ``price_buyer`` ([price_floor, price_cap])
user   ``bid`` (tier_user_interval), ``buy_frac``
=====  =====================================================================================
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from mgenv.config import MarketParams
from mgenv.market.mechanism import MarketInputs, MarketOutcome, StorageMoves
from mgenv.market.settlement import Trades

ACTION_NAMES: dict[str, list[str]] = {
    "mg": ["ask", "sell_frac", "buy_frac", "buy_limit"],
    "agg": ["price_mg", "price_buyer"],
    "user": ["bid", "buy_frac"],
}


def intervals(m: MarketParams) -> dict[str, tuple[float, float]]:
    """Price strategy interval of each role, yuan/kWh (seed 001: 0.5-1.05 / 0.5-1.1 / 0.5-1.05)."""
    return {
        "mg": (float(m.tier_mg_interval[0]), float(m.tier_mg_interval[1])),
        "agg": (float(m.price_floor), float(m.price_cap)),
        "user": (float(m.tier_user_interval[0]), float(m.tier_user_interval[1])),
    }


def unit(a: np.ndarray) -> np.ndarray:
    """Map [-1, 1] to [0, 1] (after clipping)."""
    return np.asarray((np.minimum(np.maximum(a, -1.0), 1.0) + 1.0) * 0.5)


def to_action(value: np.ndarray | float, lo: float, hi: float) -> np.ndarray:
    """Inverse of the action map ``lo + unit(a) (hi - lo)``; outside values saturate."""
    x = 2.0 * (np.asarray(value, dtype=np.float64) - lo) / (hi - lo) - 1.0
    return np.asarray(np.minimum(np.maximum(x, -1.0), 1.0))


def match_grouped(
    s_group: np.ndarray,
    s_kwh: np.ndarray,
    b_group: np.ndarray,
    b_kwh: np.ndarray,
    totals: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilateral trades within each group (aggregator) by the north-west corner rule.

    Group ``g`` occupies ``[offset_g, offset_g + totals_g]`` on one line for its sellers and
    for its buyers, each laid end to end in proportion to their volumes (the last one ending
    exactly at the group's end, so no piece straddles two groups); every piece between
    consecutive breakpoints is one trade. At most ``n_s + n_b - 1`` trades.

    Args:
        s_group: Group of each seller, int, ``(n_s,)``.
        s_kwh: Volume of each seller, kWh, summing to ``totals`` per group.
        b_group: Group of each buyer, int, ``(n_b,)``.
        b_kwh: Volume of each buyer, kWh, summing to ``totals`` per group.
        totals: Volume of each group, kWh, ``(n_groups,)``.

    Returns:
        ``(seller, buyer, kwh)``: indices into the seller and buyer arrays and volumes.
    """
    offset = np.cumsum(totals) - totals
    ends = []
    for group, kwh in ((s_group, s_kwh), (b_group, b_kwh)):
        order = np.argsort(group, kind="stable")
        g, q = group[order], kwh[order]
        run = np.cumsum(q)
        first = np.searchsorted(g, g, side="left")
        within = run - (run[first] - q[first])  # cumulative volume inside the group
        gsum = np.bincount(g, weights=q, minlength=totals.size)[g]
        last = np.append(g[1:] != g[:-1], True)
        frac = np.where(last, 1.0, np.divide(within, gsum, out=np.ones_like(q), where=gsum > 0))
        ends.append((order, offset[g] + totals[g] * frac))
    (s_order, s_end), (b_order, b_end) = ends
    total = float(totals.sum())
    if total <= 0.0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    points = np.unique(np.concatenate(([0.0], s_end, b_end)))
    kwh = np.diff(points)
    keep = kwh > 1e-12 * total
    mids = points[:-1][keep] + 0.5 * kwh[keep]
    si = np.minimum(np.searchsorted(s_end, mids, side="right"), s_end.size - 1)
    bi = np.minimum(np.searchsorted(b_end, mids, side="right"), b_end.size - 1)
    return s_order[si], b_order[bi], kwh[keep]


def gas_bills(
    gas_m3: np.ndarray, n_agg: int, price: float, wholesale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Natural gas sold by the aggregators to their microgrids (seed 001 eq. 18).

    Microgrid ``i`` buys the gas its turbine burnt from its home aggregator ``i % n_agg`` at
    ``price``; the aggregator buys it from the gas company at ``wholesale``. The first payment
    is a transfer inside the market; the second leaves it (the gas company is an outside party
    like the grid), so it is the period's external fuel cost.

    Args:
        gas_m3: Gas burnt per microgrid, m^3, ``(n_mg,)`` (``V_MT`` of eq. 2).
        n_agg: Number of aggregators.
        price: Aggregators' selling price ``C^G_{M-J}``, yuan/m^3.
        wholesale: Gas company's price, yuan/m^3.

    Returns:
        ``(mg_pays, agg_margin, external)``: yuan, ``(n_mg,)``, ``(n_agg,)``, ``(n_mg,)``;
        ``mg_pays.sum() == agg_margin.sum() + external.sum()`` (up to rounding).
    """
    gas = np.asarray(gas_m3, dtype=np.float64)
    home = np.arange(gas.shape[0]) % n_agg
    mg_pays = price * gas
    external = wholesale * gas
    agg_margin = np.bincount(home, weights=mg_pays - external, minlength=n_agg)
    return mg_pays, agg_margin, external


class BatteryMoves(NamedTuple):
    """What each aggregator's battery does in one period, kWh, each ``(n_agg,)``."""

    buy: np.ndarray  # bought in its aggregator's market (the residual supply)
    sell: np.ndarray  # sold there (into the residual demand), delivered energy
    grid: np.ndarray  # bought from the grid in a valley period (restoring E0)


def battery_moves(
    level: np.ndarray,
    bat: dict[str, np.ndarray],
    excess: np.ndarray,
    shortfall: np.ndarray,
    cheap: np.ndarray,
    dear: np.ndarray,
    valley: bool,
    grid_on: bool,
    dt_h: float,
) -> BatteryMoves:
    """The aggregators' batteries' rule for one period (module docstring), vectorised.

    Args:
        level: Content at the start of the period, kWh, ``(n_agg,)``.
        bat: Tiled parameters (``ThreeTier._battery``): ``kwh``, ``kw``, ``eta_c``, ``eta_d``,
            ``lo``, ``hi`` (shares of capacity), ``init`` (share: ``E0 = init kwh``).
        excess: Accepted supply its buyers do not take, ``max(S_j - D_j, 0)``, kWh.
        shortfall: Accepted demand its sellers cannot serve, ``max(D_j - S_j, 0)``, kWh.
        cheap: ``p_J->M <= agg_charge_below``, bool ``(n_agg,)``.
        dear: ``p_J->Y >= agg_discharge_above``, bool ``(n_agg,)``.
        valley: ``grid_buy <= agg_grid_charge_below`` (and grid charging on).
        grid_on: Grid charging is on (``agg_grid_charge_below > 0``): sales stop where one
            valley period restores ``E0``.
        dt_h: Period length, h.

    Returns:
        The :class:`BatteryMoves`; content after the period ``level + eta_c (buy + grid) -
        sell / eta_d``, within ``[lo, hi] kwh``; ``buy + grid`` and ``sell`` never both > 0.
    """
    power = bat["kw"] * dt_h
    eta_c, eta_d = bat["eta_c"], bat["eta_d"]
    start = bat["init"] * bat["kwh"]
    room_in = np.maximum(bat["hi"] * bat["kwh"] - level, 0.0) / eta_c
    buy = np.where(cheap, np.minimum(np.minimum(power, room_in), excess), 0.0)
    floor = bat["lo"] * bat["kwh"]
    if grid_on:  # what one valley period can restore: a day ending in the valley ends at E0
        floor = np.maximum(floor, start - eta_c * power)
    room_out = np.maximum(level - floor, 0.0) * eta_d
    sell = np.where(dear & (buy <= 0.0), np.minimum(np.minimum(power, room_out), shortfall), 0.0)
    grid = np.zeros_like(level)
    if valley:  # section 3.1.1: store in the valley, release at the peak
        sell = np.zeros_like(level)
        missing = np.maximum(start - (level + eta_c * buy), 0.0) / eta_c
        grid = np.minimum(np.maximum(power - buy, 0.0), missing)
    return BatteryMoves(buy, sell, grid)


def day_end(period: int | None, dt_h: float) -> bool:
    """Whether ``period`` is the last of a battery's day: 24 h, 48 h, ... after reset."""
    if period is None:
        return False
    hours = (period + 1) * dt_h
    return bool(abs(hours / 24.0 - round(hours / 24.0)) < 1e-9)


class ThreeTier:
    """The three-tier market of seed 001 (module docstring)."""

    def __init__(self, params: MarketParams) -> None:
        self.params = params
        self.bounds = intervals(params)
        self.storage_on = any(v > 0 for v in params.agg_battery_kwh)
        self._level: np.ndarray | None = None  # (n_agg,) aggregators' battery content, kWh

    def reset(self) -> None:
        """Aggregators' batteries back to ``agg_soc_init`` (at the next clearing)."""
        self._level = None

    def _battery(self, n_agg: int) -> dict[str, np.ndarray]:
        """The battery templates tiled to ``n_agg`` aggregators, float64 ``(n_agg,)`` each."""
        m, idx = self.params, np.arange(n_agg)
        names = ("kwh", "kw", "eta_c", "eta_d", "lo", "hi", "init")
        fields = (
            m.agg_battery_kwh,
            m.agg_battery_kw,
            m.agg_eta_charge,
            m.agg_eta_discharge,
            m.agg_soc_min,
            m.agg_soc_max,
            m.agg_soc_init,
        )
        out = {}
        for name, values in zip(names, fields, strict=True):
            arr = np.asarray(values, dtype=np.float64)
            out[name] = arr[idx % arr.size]
        return out

    def action_names(self, role: str) -> list[str]:
        """See the module docstring for the layouts."""
        return list(ACTION_NAMES[role])

    def fuel_bills(
        self, physics_extra: dict[str, Any], n_agg: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """With ``tier_gas``, the aggregators' gas sales (:func:`gas_bills`); else None.

        The gas is what the physics burnt (``physics_extra["gas_m3"]``, CCHE physics).
        """
        m = self.params
        if not m.tier_gas:
            return None
        return gas_bills(physics_extra["gas_m3"], n_agg, m.tier_gas_price, m.tier_gas_wholesale)

    def clear(self, actions: dict[str, np.ndarray], inputs: MarketInputs) -> MarketOutcome:
        """Acceptance, quantities per aggregator, bilateral trades (module docstring)."""
        nm, na = inputs.n_mg, inputs.n_agg
        (mlo, mhi), (alo, ahi), (ulo, uhi) = (self.bounds[r] for r in ("mg", "agg", "user"))
        mg, agg, user = (unit(actions[r]) for r in ("mg", "agg", "user"))
        ask = mlo + mg[:, 0] * (mhi - mlo)
        offered = mg[:, 1] * inputs.offerable_kwh
        beta = alo + agg[:, 0] * (ahi - alo)  # p_J->M, (n_agg,)
        alpha = alo + agg[:, 1] * (ahi - alo)  # p_J->Y, (n_agg,)
        home = np.arange(nm) % na
        supply = np.where(beta[home] >= ask, offered, 0.0)
        limit = np.concatenate((mlo + mg[:, 3] * (mhi - mlo), ulo + user[:, 0] * (uhi - ulo)))
        need = np.concatenate((mg[:, 2] * inputs.deficit_kwh, user[:, 1] * inputs.user_need_kwh))
        bagg = inputs.buyer_agg
        demand = np.where(alpha[bagg] <= limit, need, 0.0)
        seller_global = np.arange(nm)
        buyer_global = inputs.buyer_global
        s_tot = np.bincount(home, weights=supply, minlength=na)
        d_tot = np.bincount(bagg, weights=demand, minlength=na)
        moves = None
        if self.storage_on:  # each aggregator's battery: one more seller and buyer in its group
            moves = self._moves(beta, alpha, s_tot, d_tot, inputs)
            own = np.arange(na)
            home = np.concatenate((home, own))
            supply = np.concatenate((supply, moves.sell))
            bagg = np.concatenate((bagg, own))
            demand = np.concatenate((demand, moves.buy))
            seller_global = np.concatenate((seller_global, nm + own))
            buyer_global = np.concatenate((buyer_global, nm + own))
            s_tot, d_tot = s_tot + moves.sell, d_tot + moves.buy
        q = np.minimum(s_tot, d_tot)  # (n_agg,) kWh through each aggregator
        sold = supply * np.divide(q, s_tot, out=np.zeros(na), where=s_tot > 0)[home]
        bought = demand * np.divide(q, d_tot, out=np.zeros(na), where=d_tot > 0)[bagg]
        si, bi, kwh = match_grouped(home, sold, bagg, bought, q)
        storage = None
        if moves is not None:  # the residual moves fit exactly: rationing changes them by ulps
            storage = self._record(bought[-na:], sold[-na:], moves.grid, inputs)
        a = home[si]
        safe_beta = np.where(beta > 0, beta, 1.0)
        delta = np.where(beta > 0, alpha / safe_beta, 1.0)
        trades = Trades(
            seller=seller_global[si].astype(np.int64),
            buyer=buyer_global[bi],
            agg=nm + a,
            kwh=kwh,
            price=beta[a],
            delta=delta[a],
        )
        volume = float(q.sum())
        price = float((beta * q).sum() / volume) if volume > 0 else 0.0
        return MarketOutcome(trades, price, volume > 0, offered, delta, storage=storage)

    def _moves(
        self,
        beta: np.ndarray,
        alpha: np.ndarray,
        s_tot: np.ndarray,
        d_tot: np.ndarray,
        inputs: MarketInputs,
    ) -> BatteryMoves:
        """The batteries' moves of the period (:func:`battery_moves`).

        Args:
            beta: Aggregators' purchase prices ``p_J->M``, yuan/kWh, ``(n_agg,)``.
            alpha: Their selling prices ``p_J->Y``, yuan/kWh, ``(n_agg,)``.
            s_tot: Accepted supply of each aggregator's microgrids, kWh, ``(n_agg,)``.
            d_tot: Accepted demand of its buyers, kWh, ``(n_agg,)``.
            inputs: The period's inputs (grid price, period length).
        """
        m, na = self.params, beta.shape[0]
        bat = self._battery(na)
        if self._level is None or self._level.shape[0] != na:
            self._level = bat["init"] * bat["kwh"]
        grid_on = m.agg_grid_charge_below > 0.0
        return battery_moves(
            self._level,
            bat,
            np.maximum(s_tot - d_tot, 0.0),
            np.maximum(d_tot - s_tot, 0.0),
            beta <= m.agg_charge_below,
            alpha >= m.agg_discharge_above,
            grid_on and inputs.grid_buy <= m.agg_grid_charge_below,
            grid_on,
            inputs.dt_h,
        )

    def _record(
        self, bought: np.ndarray, sold: np.ndarray, grid: np.ndarray, inputs: MarketInputs
    ) -> StorageMoves:
        """Move the batteries by what they traded and bought from the grid; their record.

        Args:
            bought: Energy each battery bought in its market, kWh, ``(n_agg,)``.
            sold: Energy it sold there, kWh, ``(n_agg,)``.
            grid: Energy it bought from the grid (valley), kWh, ``(n_agg,)``.
            inputs: The period's inputs (period index and length: the battery's day end).
        """
        m, level = self.params, self._level
        if level is None:
            raise RuntimeError("_record() before _moves()")
        bat = self._battery(level.shape[0])
        charge = bought + grid
        after = level + bat["eta_c"] * charge - sold / bat["eta_d"]
        residue = np.zeros_like(level)
        if day_end(inputs.period, inputs.dt_h):  # eq. 5's E(0) = E(24), applied to it
            residue = np.abs(after - bat["init"] * bat["kwh"])
        self._level = after
        return StorageMoves(
            level_before=level,
            level_after=after,
            charge_kwh=charge,
            discharge_kwh=sold,
            capacity_kwh=bat["kwh"],
            soc_min=bat["lo"],
            soc_max=bat["hi"],
            eta_charge=bat["eta_c"],
            eta_discharge=bat["eta_d"],
            cost=m.agg_battery_cost * charge + m.agg_residue_price * residue,
            grid_kwh=grid,
            residue_kwh=residue,
        )
