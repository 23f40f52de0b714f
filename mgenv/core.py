"""The market core: episode state as arrays and the five stages of a step, wired in order.

:class:`MarketCore` knows nothing of PettingZoo: it takes one action array per participant
and returns a :class:`PeriodResult` (or, for the env shell, which sets
:attr:`MarketCore.defer_results`, a :class:`DeferredResult` that builds it when read). The env
shell (:mod:`mgenv.env`) converts dicts and spaces. The stages are the pure functions of
``mgenv.physics``, ``mgenv.market`` and the ``mgenv.chain`` facade; this module only calls
them in order and keeps the state. Where :mod:`mgenv.fused` covers the configuration, a step
calls the stages' kernels in sequence inside one compiled call instead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import numpy as np

from mgenv import _jit, observe
from mgenv.chain import REJECT_REASONS, Chain, ConsensusResult
from mgenv.config import EnvConfig, MarketParams, tile
from mgenv.fused import FusedPeriod, fusable
from mgenv.market.mechanism import MarketInputs, StorageMoves, make_mechanism
from mgenv.market.settle_kernels import (
    book_into,
    episode_rows_into,
    info_rows_into,
    kpi_sums,
    positions_into,
    profit_into,
)
from mgenv.market.settlement import Positions, Settlement, Trades, settle, settlement_of
from mgenv.market.uniform import trades_of
from mgenv.period_kernel import BOOK, N_ROWS, PROFIT, REALISED, SETTLEMENT, settle_period_into
from mgenv.physics.model import (
    MODELS,
    ElectricModel,
    Forecast,
    PhysicsModel,
    Realised,
    realised_of,
)
from mgenv.physics.profiles import (
    DayProfiles,
    draw_profiles,
    period_hours,
    profile_bases,
    profiles_from_draws,
)
from mgenv.physics.units import Dispatch, FleetArrays, dispatch_of_rows, marginal_cost

STAGES = ("physics", "market", "chain", "settlement", "observation")
COMMIT_EMA = 0.3  # weight of the latest period in the observed commit ratio
# The keys of the step's info dicts, in order: each agent's own figures, then the shared
# ones (after the authentication figures, if any; the chain's own figures last).
_AGENT_KEYS = ("profit", "revenue", "cost", "traded_kwh", "grid_kwh", "commit_ratio")
_SHARED_KEYS = ("clearing_price", "cleared", "latency_ms", "online_share", "rejected")
KPI_KEYS = ("profit", "sold", "sold_ok", "export_surplus")  # MarketCore.kpi's accumulators
_new = tuple.__new__  # builds a NamedTuple as its constructor does, for less


class PeriodResult(NamedTuple):
    """What happened in one period (arrays use the global participant index, shape (P,))."""

    period: int
    hour: float
    price: float  # clearing price, yuan/kWh (0 if nothing cleared)
    cleared: bool
    trades: Trades
    committed: np.ndarray  # (T,) bool
    chain: ConsensusResult
    settlement: Settlement
    dispatch: Dispatch
    physics: Realised  # generators, fuel, penalties, storages (n_mg,)
    profit: np.ndarray  # (P,) yuan
    realised: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # pv, wind, load, user load
    # Aggregators' batteries (seed 001 eq. 19), None without; their cost is external money.
    agg_storage: StorageMoves | None = None
    # Gas sold by the aggregators (seed 001 eq. 18, MarketParams.tier_gas): what each
    # microgrid paid its aggregator, yuan (n_mg,); None when the microgrids buy gas directly.
    # ``physics.fuel_cost`` is then the gas company's (external) bill for the same gas.
    gas_paid: np.ndarray | None = None


class DeferredResult:
    """A fused period's :class:`PeriodResult`, built from its arrays when first asked for.

    :class:`~mgenv.env.MarketEnv` sets :attr:`MarketCore.defer_results`: its step reads only
    the price, the clearing flag and the chain's result (the info table is the kernel's),
    so the trades, settlement and physics views are made when the history is read. The
    arrays are the period's own (fresh every period, or for the settlement rows the
    period's slice of the episode's block; never written afterwards), so the result is the
    one the step would have built.
    """

    __slots__ = ("_built", "_raw", "chain", "cleared", "hour", "period", "price")

    def __init__(
        self,
        period: int,
        hour: float,
        price: float,
        cleared: bool,
        chain: ConsensusResult,
        raw: tuple[Any, ...],
    ) -> None:
        self.period, self.hour, self.price, self.cleared = period, hour, price, cleared
        self.chain = chain
        self._raw = raw  # (ints, floats, T, settlement rows, grid_cash, dispatch, soc, profiles)
        self._built: PeriodResult | None = None

    def result(self) -> PeriodResult:
        """The :class:`PeriodResult` (built once)."""
        if self._built is None:
            ints, floats, n, out, grid_cash, dispatch, soc_before, p = self._raw
            if isinstance(dispatch, np.ndarray):  # the plan's rows (6, n_mg)
                dispatch = dispatch_of_rows(dispatch)
            phys = realised_of(out[REALISED : REALISED + 4, : soc_before.shape[0]], soc_before)
            self._built = period_of_rows(
                (self.period, self.hour, self.price, self.cleared),
                trades_of(ints, floats, n),
                self.chain,
                (out, grid_cash),
                dispatch,
                phys,
                p,
            )
        return self._built


def period_of_rows(
    when: tuple[int, float, float, bool],
    trades: Trades,
    res: ConsensusResult,
    settled: tuple[np.ndarray, float],
    dispatch: Dispatch,
    phys: Realised,
    profiles: DayProfiles,
) -> PeriodResult:
    """The :class:`PeriodResult` of a period settled by ``settle_period_into``.

    ``when``: ``(period, hour, price, cleared)``; ``settled``: its rows ``(N_ROWS, P)`` and
    ``grid_cash``; the default family's (no aggregator storage, no gas sales).
    """
    t, hour, price, cleared = when
    rows, grid_cash = settled
    st = settlement_of(rows[SETTLEMENT : SETTLEMENT + 9], grid_cash)
    p = profiles
    real = (p.pv_real[t], p.wind_real[t], p.load_real[t], p.user_load_real[t])
    return _new(
        PeriodResult,
        (
            t, hour, price, cleared, trades, res.committed, res, st, dispatch, phys,
            rows[PROFIT], real, None, None,
        ),
    )  # fmt: skip


def built(result: PeriodResult | DeferredResult) -> PeriodResult:
    """``result`` as a :class:`PeriodResult`."""
    return result.result() if type(result) is DeferredResult else cast(PeriodResult, result)


class PublicInfo(NamedTuple):
    """Public market information a baseline may read (DESIGN.md: no random streams)."""

    market: MarketParams
    grid_buy: float  # this period, yuan/kWh
    feed_in: float  # yuan/kWh
    last_price: float  # yuan/kWh
    surplus: np.ndarray  # (n_mg,) kWh
    gen_headroom: np.ndarray  # (n_mg,) kWh
    deficit: np.ndarray  # (n_mg,) kWh
    user_need: np.ndarray  # (n_user,) kWh
    load_forecast: np.ndarray  # (n_mg,) kWh
    fleet: FleetArrays
    buyer_agg: np.ndarray  # (n_mg + n_user,) aggregator (0-based among aggregators)


def fleet_arrays(cfg: EnvConfig) -> FleetArrays:
    """Tile the fleet templates to ``n_microgrids`` arrays."""
    f, n = cfg.fleet, cfg.n_microgrids
    return FleetArrays(*(tile(getattr(f, name), n) for name in FleetArrays._fields))


class MarketCore:
    """Episode state (arrays over participants) and the step pipeline."""

    def __init__(self, cfg: EnvConfig) -> None:
        self.cfg = cfg
        nm, na, nu = cfg.n_microgrids, cfg.n_aggregators, cfg.n_users
        self.names = (
            [f"mg_{i}" for i in range(nm)]
            + [f"agg_{j}" for j in range(na)]
            + [f"user_{k}" for k in range(nu)]
        )
        self.index = {a: i for i, a in enumerate(self.names)}
        self.role_rows = {a: (a.rsplit("_", 1)[0], int(a.rsplit("_", 1)[1])) for a in self.names}
        self.non_learning = [
            a for a in self.names if self.role_rows[a][0] not in cfg.learning_roles
        ]
        sizes = {"mg": nm, "agg": na, "user": nu}
        self.role_index = {r: np.arange(k) for r, k in sizes.items()}
        self.opponent_roles = [r for r, k in sizes.items() if k and r not in cfg.learning_roles]
        self.fleet = fleet_arrays(cfg)
        f, dt = self.fleet, cfg.dt_h
        self.mg_scale = (
            tile(cfg.fleet.pv_kw, nm)
            + tile(cfg.fleet.wind_kw, nm)
            + tile(cfg.fleet.load_kw, nm)
            + f.gen_kw
            + 1e-9
        ) * dt
        self.user_scale = tile(cfg.users.user_load_kw, nu) * dt + 1e-9
        self.system_scale = float(self.mg_scale.sum() + self.user_scale.sum())
        self.mc_max = marginal_cost(f.gen_kw * dt, f)
        self.buyer_agg = np.arange(nm + nu) % na  # buyer b is served by aggregator b % n_agg
        self.buyer_global = np.concatenate((np.arange(nm), nm + na + np.arange(nu)))
        self.hours = period_hours(cfg)
        # Each period's hour of day as observed: (sin, cos), computed as observe._new does.
        self._hour_angles = [
            (float(np.sin(a)), float(np.cos(a)))
            for a in (2.0 * np.pi * h / 24.0 for h in self.hours.tolist())
        ]
        self._bases = profile_bases(cfg)  # the profiles' per-config factors, kept
        self.tou = cfg.grid.buy_by_hour
        self.feed = cfg.grid.feed_in_by_hour
        # Per period, as Python floats: the hour (``float(hours[t])``) and the grid's buy and
        # feed-in prices (:meth:`_plan`'s lookup by hour of day); the config is frozen, so
        # they are looked up once here rather than with numpy scalars every period.
        self._hour_list: list[float] = self.hours.tolist()
        self._prices = [
            (float(self.tou[int(h) % 24]), float(self.feed[int(h) % 24])) for h in self._hour_list
        ]
        # Seconds per stage; "fused": the periods run by one kernel call (mgenv.fused),
        # whose stages have no clocks of their own (``fuse = False`` times them one by one).
        self.stage_time = dict.fromkeys((*STAGES, "fused"), 0.0)
        self.mechanism = make_mechanism(cfg.market)
        self.physics: PhysicsModel = MODELS[cfg.physics](cfg, self.fleet)
        # The settlement stage in one kernel call (mgenv.period_kernel) serves the electric
        # model with a mechanism that has neither settlement hooks nor fuel bills.
        self._electric = self.physics if isinstance(self.physics, ElectricModel) else None
        self._fusable = self._electric is not None and not any(
            hasattr(self.mechanism, hook) for hook in ("after_settlement", "fuel_bills")
        )
        spec = self.physics.feature_spec
        self._extra_bounds = (np.array([f[1] for f in spec]), np.array([f[2] for f in spec]))
        self.n_market_mg = len(self.mechanism.action_names("mg"))
        self.setpoints = self.physics.setpoint_names if cfg.dispatch == "agent" else []
        if cfg.dispatch == "agent" and not self.setpoints:
            raise ValueError(
                f"EnvConfig.dispatch='agent' needs a physics model with set-points; "
                f"physics={cfg.physics!r} has none"
            )
        self.action_shapes = {r: (k, len(self.action_names(r))) for r, k in sizes.items()}
        self.profiles: DayProfiles
        self.chain: Chain
        self._obs: dict[str, np.ndarray] = {}
        self._public: PublicInfo | None = None  # this period's, built on first use
        self._ratio_of: tuple[Settlement | None, np.ndarray] | None = None
        # _take_book's rows, the offset of its four and the settlement: the views of
        # sold_share, served_share and _ratio are made from them when first read
        self._book_rows: tuple[np.ndarray, int, Settlement | None] = (np.zeros((4, 0)), 0, None)
        self._sold_share: np.ndarray | None = None
        self._served_share: np.ndarray | None = None
        self._builders = {"mg": self._mg_obs, "agg": self._agg_obs, "user": self._user_obs}
        # agent_infos's scratch (its values are copied out by tolist() every period) and its
        # dict template: every key in order, for the chain figures named in _info_keys.
        self._info_table = np.empty((cfg.n_participants, 6))
        self._reject_counts = np.empty(len(REJECT_REASONS), np.int64)
        self._info_keys: tuple[str, ...] | None = None
        self._info_names: tuple[str, ...] = ()
        self._info_proto: dict[str, Any] = {}
        # The result whose info table the fused step wrote, and its rejected count.
        self._info_done: tuple[PeriodResult | DeferredResult | None, int] = (None, 0)
        #: Whether a step may run as one kernel call where it applies (:mod:`mgenv.fused`).
        self.fuse = True
        #: Whether :meth:`step` may return a :class:`DeferredResult` (set by the env shell).
        self.defer_results = False
        self._fused = FusedPeriod(self, COMMIT_EMA) if fusable(self) else None
        # This period's plan (the dispatch property); None after a fused step until asked for.
        self._dispatch: Dispatch | None = None

    @property
    def dispatch(self) -> Dispatch:
        """This period's dispatch plan (after a fused step, made from its rows when first read)."""
        d = self._dispatch
        if d is None:
            electric = self._electric
            d = electric.current_plan() if electric is not None else None
            if d is None:
                raise AttributeError("no dispatch before reset()")
            self._dispatch = d
        return d

    @dispatch.setter
    def dispatch(self, d: Dispatch) -> None:
        self._dispatch = d

    # ------------------------------------------------------------------ episode state
    def reset(
        self,
        weather: np.random.Generator | None,
        load: np.random.Generator | None,
        chain: Chain,
        draws: tuple[float, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Draw the episode's profiles and initialise every state array.

        ``draws``: the profiles' draws already made (kernels on), ``(cloud, weather
        normals, load normals)`` as :func:`~mgenv.physics.profiles.profiles_from_draws`
        takes them (:mod:`mgenv.episode_draws`); the streams are then not used (None).
        """
        cfg = self.cfg
        nm, na, nu, n = cfg.n_microgrids, cfg.n_aggregators, cfg.n_users, cfg.n_participants
        if draws is not None:
            self.profiles = p = profiles_from_draws(cfg, *draws, self._bases)
        elif weather is None or load is None:
            raise ValueError("reset() needs the weather and load streams or their draws")
        else:
            self.profiles = p = draw_profiles(cfg, weather, load, self._bases)
        # Per period and participant (H, P), for settlement: users' energy to buy, and the
        # realised minus forecast net production (renewables - load) of microgrids and users.
        if _jit.ENABLED:  # one kernel call (the same numbers)
            self._need, self._error = np.empty((cfg.horizon, n)), np.empty((cfg.horizon, n))
            episode_rows_into(
                (p.pv_forecast, p.wind_forecast, p.load_forecast, p.user_load_forecast),
                (p.pv_real, p.wind_real, p.load_real, p.user_load_real),
                nm,
                na,
                self._need,
                self._error,
            )
        else:
            users = slice(nm + na, None)
            self._need = np.zeros((cfg.horizon, n))
            self._need[:, users] = p.user_load_forecast
            self._error = np.zeros((cfg.horizon, n))
            self._error[:, :nm] = (p.pv_real + p.wind_real - p.load_real) - (
                p.pv_forecast + p.wind_forecast - p.load_forecast
            )
            self._error[:, users] = p.user_load_forecast - p.user_load_real
        self.chain = chain
        self.t = 0
        self.physics.reset()
        mech_reset = getattr(self.mechanism, "reset", None)
        if mech_reset is not None:  # e.g. seed 001's aggregator batteries
            mech_reset()
        self.last_price = 0.5 * (cfg.market.price_floor + cfg.market.price_cap)
        self.sold_share = np.zeros(nm)  # (n_mg,)
        self.served_share = np.zeros(nm + nu)  # (n_mg + n_user,) per buyer
        self.delta = np.ones(na)  # (n_agg,)
        self.commit = np.ones(n)  # (P,) EMA of the commit ratio of each participant's trades
        self.online_share = 1.0
        self._kpi_rows = np.zeros((len(KPI_KEYS), n))  # (4, P), one array for the kernels
        # The fused step's outputs, one slice per period of the episode: a period's result
        # keeps its own (never written again), without fresh arrays every step (the
        # settlement rows, over 1 KiB, made glibc merge its fast bins at each step).
        if self._fused is not None:
            self._fused.episode(chain.params.n_nodes)
        self.kpi = {k: self._kpi_rows[i] for i, k in enumerate(KPI_KEYS)}  # row views
        self.kpi_latency = 0.0
        self._plan()

    def _plan(self) -> None:
        """Physics before the market: this period's forecast and rule-based dispatch."""
        t0 = time.perf_counter()
        self._obs = {}
        self._public = None
        p, t = self.profiles, self.t
        self.grid_buy, self.feed_in = self._prices[t]
        forecast = Forecast(p.pv_forecast[t], p.wind_forecast[t], p.load_forecast[t])
        self.dispatch = self.physics.plan(t, forecast, self.grid_buy, None)
        self.stage_time["physics"] += time.perf_counter() - t0

    # ------------------------------------------------------------------ spaces
    def feature_spec(self, role: str) -> list[tuple[str, float, float]]:
        """``(name, low, high)`` of each observation feature of ``role``.

        The role's own features (:mod:`mgenv.observe`) and, for microgrids, the physics
        model's extra features.
        """
        extra = self.physics.feature_spec if role == "mg" else []
        return [*observe.FEATURES[role], *extra]

    def obs_bounds(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` float32 bounds of ``role``'s observation vector."""
        spec = self.feature_spec(role)
        low = np.array([f[1] for f in spec], dtype=np.float32)
        return low, np.array([f[2] for f in spec], dtype=np.float32)

    # ------------------------------------------------------------------ step
    def action_names(self, role: str) -> list[str]:
        """Action entries of ``role``: the mechanism's, then the physics set-points (mg)."""
        names = self.mechanism.action_names(role)
        return [*names, *self.setpoints] if role == "mg" else names

    def empty_actions(self, roles: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Fresh action matrices per role, e.g. ``{"mg": (n_mg, 2S + 3), ...}``, zeros.

        Every role's, or those of ``roles`` only.
        """
        shapes = self.action_shapes
        return {r: np.zeros(shapes[r]) for r in (shapes if roles is None else roles)}

    def step(self, actions: dict[str, np.ndarray]) -> PeriodResult | DeferredResult:
        """Run market, chain, settlement and physics-after for the current period.

        Returns a :class:`PeriodResult`, or with :attr:`defer_results` set, possibly a
        :class:`DeferredResult` (``built(result)`` gives the former).

        Args:
            actions: One action matrix per role, in [-1, 1] (clipped), shapes as
                :meth:`empty_actions`; only read (the env may hand over read-only ones).
        """
        if self._fused is not None and self.fuse and _jit.ENABLED:
            fused = self._fused.step(actions)
            if fused is not None:
                return fused
        cfg, p, t = self.cfg, self.profiles, self.t
        t0 = time.perf_counter()
        if self.setpoints:  # agent dispatch: re-plan the period with the set-points
            mg = actions["mg"]
            forecast = Forecast(p.pv_forecast[t], p.wind_forecast[t], p.load_forecast[t])
            self.dispatch = self.physics.plan(t, forecast, self.grid_buy, mg[:, self.n_market_mg :])
            self._public = None
            actions = {**actions, "mg": mg[:, : self.n_market_mg]}
        d = self.dispatch
        inputs = MarketInputs(  # positional: a NamedTuple's keyword call costs twice as much
            d.surplus + d.gen_headroom,
            d.deficit,
            p.user_load_forecast[t],
            self.grid_buy,
            self.feed_in,
            self.buyer_agg,
            self.buyer_global,
            cfg.n_microgrids,
            cfg.n_aggregators,
            p.load_forecast[t],  # load_kwh
            t,  # period
            cfg.dt_h,
        )
        out = self.mechanism.clear(actions, inputs)
        trades = out.trades
        t1 = time.perf_counter()
        # period, seller, buyer, quantity_kwh, price, intermediary
        res = self.chain.process(
            t, trades.seller, trades.buyer, trades.kwh, trades.price, trades.agg
        )
        t2 = time.perf_counter()
        result = self._settle(
            trades, res, out.price, out.cleared, out.offered_kwh, out.load_shift_kwh, out.storage
        )
        self.delta = out.delta
        t3 = time.perf_counter()
        st = self.stage_time
        st["market"] += t1 - t0
        st["chain"] += t2 - t1
        st["settlement"] += t3 - t2
        self.t += 1
        self._obs = {}
        self._public = None
        if self.t < cfg.horizon:
            self._plan()
        return result

    def _positions(
        self, surplus: np.ndarray, shift: np.ndarray | None
    ) -> tuple[Positions, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        p, t, nm = self.profiles, self.t, self.cfg.n_microgrids
        if _jit.ENABLED:  # both arrays in one kernel call (the same numbers)
            rows = np.empty((2, self.cfg.n_participants))
            positions_into(surplus, self.dispatch.deficit, self._need[t], rows)
            surplus_p, deficit_p = rows[0], rows[1]
        else:
            surplus_p = np.zeros(self.cfg.n_participants)
            surplus_p[:nm] = surplus
            deficit_p = self._need[t].copy()
            deficit_p[:nm] = self.dispatch.deficit
        if shift is None:
            real = (p.pv_real[t], p.wind_real[t], p.load_real[t], p.user_load_real[t])
            return Positions(surplus_p, deficit_p, self._error[t]), real
        # The market moved the planned load to load_f + shift (seed 002 eq. 9); the realised
        # load scales with it (never negative), and the forecast error is measured against
        # the new plan, so the planned shift itself is not compensated as an error.
        planned = p.load_forecast[t] + shift
        scale = np.divide(
            planned, p.load_forecast[t], out=np.ones(nm), where=p.load_forecast[t] > 0
        )
        load = np.where(p.load_forecast[t] > 0, p.load_real[t] * scale, planned)
        error = self._error[t].copy()
        error[:nm] = (p.pv_real[t] + p.wind_real[t] - load) - (
            p.pv_forecast[t] + p.wind_forecast[t] - planned
        )
        real = (p.pv_real[t], p.wind_real[t], load, p.user_load_real[t])
        return Positions(surplus_p, deficit_p, error), real

    def _settle(
        self,
        trades: Trades,
        res: ConsensusResult,
        price: float,
        cleared: bool,
        offered: np.ndarray,
        shift: np.ndarray | None,
        storage: StorageMoves | None = None,
    ) -> PeriodResult:
        """Settlement, fuel, storage and the bookkeeping the observations need.

        Money outside the participants: the grid (``Settlement.grid_cash``), the fuel
        supplier (``Realised.fuel_cost``), penalties and the aggregators' storage cost. When the
        mechanism has ``fuel_bills`` (``MarketParams.tier_gas`` in the three-tier market), the
        microgrids pay their aggregators for gas and ``fuel_cost`` becomes the gas
        company's wholesale bill, paid by the aggregators.
        """
        if self._fusable and shift is None and storage is None and _jit.ENABLED:
            return self._settle_fused(trades, res, price, cleared, offered)
        cfg, d = self.cfg, self.dispatch
        nm = cfg.n_microgrids
        surplus = d.surplus if shift is None else d.surplus - shift
        pos, real = self._positions(surplus, shift)
        if storage is not None:  # aggregators' batteries (seed 001): what their market did not
            # deliver of their charge (a valley charge, failed purchases) comes from the grid
            pos.deficit[nm : nm + cfg.n_aggregators] = storage.charge_kwh
        st = settle(trades, res.committed, pos, self.grid_buy, self.feed_in)
        after = getattr(self.mechanism, "after_settlement", None)
        if after is not None:  # e.g. seed 002's forecast-error compensation records
            after(res.committed, pos.error, res.block)
        phys = self.physics.realise(st.sold[:nm], surplus)
        gas_paid = None
        # A mechanism in which the aggregators sell the fuel (seed 001's three-tier market)
        # says what each party pays; otherwise microgrids buy fuel from outside.
        bills = getattr(self.mechanism, "fuel_bills", None)
        gas = bills(phys.extra, cfg.n_aggregators) if bills is not None else None
        if gas is not None:
            gas_paid, margin, external = gas
            phys = phys._replace(fuel_cost=external)
        mg_cost = phys.fuel_cost if gas_paid is None else gas_paid
        if _jit.ENABLED:
            profit = np.empty(st.cash.shape[0])
            profit_into(st.cash, mg_cost, phys.penalty, profit)
        else:
            profit = st.cash.copy()
            profit[:nm] -= mg_cost + phys.penalty
        if gas is not None:
            profit[nm : nm + cfg.n_aggregators] += margin
        if storage is not None:
            profit[nm : nm + cfg.n_aggregators] -= storage.cost
        self._book(trades, res, st, price if cleared else None, offered, profit, pos)
        # positional: a NamedTuple's keyword call costs twice as much
        return PeriodResult(
            self.t,  # period
            self._hour_list[self.t],  # hour
            price,
            cleared,
            trades,
            res.committed,
            res,  # chain
            st,  # settlement
            d,  # dispatch
            phys,  # physics
            profit,
            real,  # realised
            storage,  # agg_storage
            gas_paid,
        )

    def _settle_fused(
        self,
        trades: Trades,
        res: ConsensusResult,
        price: float,
        cleared: bool,
        offered: np.ndarray,
    ) -> PeriodResult:
        """:meth:`_settle` and :meth:`_book` of the ``default`` family in one kernel call.

        The same five kernels as the general path (``mgenv.period_kernel``), so the same
        numbers; used with the electric model, no load shift, no aggregator storage and a
        mechanism without settlement hooks or fuel bills.
        """
        cfg, d, t = self.cfg, self.dispatch, self.t
        nm = cfg.n_microgrids
        physics = self._electric
        assert physics is not None  # _fusable says so
        plan, soc, fleet = physics.kernel_inputs()
        rows = np.empty((N_ROWS, cfg.n_participants))
        k = self.kpi
        grid_cash = settle_period_into(
            (trades.seller, trades.buyer, trades.agg, trades.kwh, trades.price, trades.delta),
            res.committed,
            (d.surplus, d.deficit, plan.self_gen, plan.charge, plan.discharge),
            (self._need[t], self._error[t]),
            (self.grid_buy, self.feed_in),
            (soc, fleet),
            (offered, self.buyer_global, self.commit),
            (k["profit"], k["sold"], k["sold_ok"], k["export_surplus"]),
            COMMIT_EMA,
            rows,
        )
        phys = physics.adopt(rows[REALISED : REALISED + 4, :nm])
        result = period_of_rows(
            (t, self._hour_list[t], price, cleared),
            trades,
            res,
            (rows, grid_cash),
            d,
            phys,
            self.profiles,
        )
        if cleared:
            self.last_price = price
        self._take_book(rows, BOOK, result.settlement, res, trades.kwh.shape[0] > 0)
        return result

    def _after_fused(
        self,
        market: tuple[np.ndarray, np.ndarray, int, float, bool],
        res: ConsensusResult,
        out: np.ndarray,
        grid_cash: float,
        plan_next: np.ndarray,
        obs: np.ndarray,
        rejected: int,
    ) -> PeriodResult | DeferredResult:
        """The state and result :meth:`step` leaves, from :func:`mgenv.fused.fused_period`'s.

        ``market``: the clearing's ``(ints, floats, T, price, cleared)``; ``out`` the
        settlement's rows, ``plan_next`` the next dispatch's, ``obs`` the microgrids' next
        observations, ``rejected`` the info table's count.
        """
        ints, floats, n, price, cleared = market
        cfg, t = self.cfg, self.t
        nm = cfg.n_microgrids
        physics = self._electric
        assert physics is not None  # fusable() says so
        self.delta = floats[3, nm : nm + cfg.n_aggregators]
        soc_before = physics.soc
        physics.adopt_soc(out[REALISED + 3, :nm])
        if cleared:
            self.last_price = price
        self._take_book(out, BOOK, None, res, n > 0)
        # the period's plan: its Dispatch if made, else its rows (the result makes it)
        plan: Dispatch | np.ndarray | None = self._dispatch
        if plan is None:
            plan = physics.plan_rows(None)
        raw = (ints, floats, n, out, grid_cash, plan, soc_before, self.profiles)
        deferred = DeferredResult(t, self._hour_list[t], price, cleared, res, raw)
        result: PeriodResult | DeferredResult = deferred
        if not self.defer_results:
            result = deferred.result()
        self._info_done = (result, rejected)
        self.t = t = t + 1
        self._public = None
        if t < cfg.horizon:  # _plan's state, from the kernel's dispatch
            self.grid_buy, self.feed_in = self._prices[t]
            physics.adopt_plan(plan_next)
            self._dispatch = None  # its Dispatch made on first use (the dispatch property)
        self._obs = {"mg": obs}
        return result

    @property
    def sold_share(self) -> np.ndarray:
        """Last period's sold over offered energy of each microgrid, ``(n_mg,)``."""
        share = self._sold_share
        if share is None:  # _take_book's row
            rows, at, _ = self._book_rows
            share = self._sold_share = rows[at, : self.cfg.n_microgrids]
        return share

    @sold_share.setter
    def sold_share(self, share: np.ndarray) -> None:
        self._sold_share = share

    @property
    def served_share(self) -> np.ndarray:
        """Last period's served share of each buyer's need, ``(n_mg + n_user,)``."""
        share = self._served_share
        if share is None:  # _take_book's row
            rows, at, _ = self._book_rows
            share = self._served_share = rows[at + 1, : self.buyer_global.shape[0]]
        return share

    @served_share.setter
    def served_share(self, share: np.ndarray) -> None:
        self._served_share = share

    @property
    def _ratio(self) -> tuple[Settlement | None, np.ndarray]:
        """The last booked period's settlement and committed over traded energy, ``(P,)``.

        Of the period :meth:`_book` or :meth:`_take_book` booked last: the infos'
        ``commit_ratio``.
        """
        ratio = self._ratio_of
        if ratio is None:  # _take_book's row
            rows, at, st = self._book_rows
            ratio = self._ratio_of = (st, rows[at + 2])
        return ratio

    @_ratio.setter
    def _ratio(self, ratio: tuple[Settlement | None, np.ndarray]) -> None:
        self._ratio_of = ratio

    def _take_book(
        self, rows: np.ndarray, at: int, st: Settlement | None, res: ConsensusResult, traded: bool
    ) -> None:
        """The state :meth:`_book` leaves, from ``book_into``'s rows (4, P), ``rows[at:at + 4]``.

        (The offset rather than a slice: one view fewer per step.)
        """
        # the views of sold_share, served_share and _ratio made when read (a step of the
        # default family reads none of them; each view costs ~0.2 us)
        self._book_rows = (rows, at, st)
        self._sold_share = self._served_share = self._ratio_of = None
        if traded:
            self.commit = rows[at + 3]
        self.online_share = float(res.online_share)
        self.kpi_latency += res.latency_ms

    def _book(
        self,
        trades: Trades,
        res: ConsensusResult,
        st: Settlement,
        price: float | None,
        offered: np.ndarray,
        profit: np.ndarray,
        pos: Positions,
    ) -> None:
        nm, n = self.cfg.n_microgrids, self.cfg.n_participants
        if price is not None:
            self.last_price = price
        if _jit.ENABLED:  # one kernel call for the rest (the same numbers)
            traded = trades.kwh.shape[0] > 0
            k = self.kpi
            out = np.empty((4, n))
            book_into(
                st.sold,
                st.bought,
                st.sold_committed,
                st.bought_committed,
                pos.surplus,
                pos.deficit,
                offered,
                self.buyer_global,
                profit,
                self.commit,
                k["profit"],
                k["sold"],
                k["sold_ok"],
                k["export_surplus"],
                traded,
                COMMIT_EMA,
                out,
            )
            self._take_book(out, 0, st, res, traded)
            return
        if trades.kwh.shape[0] == 0:  # nothing traded: the shares are 0, the EMA unchanged
            self.sold_share = np.zeros(nm)
            self.served_share = np.zeros(self.buyer_global.shape[0])
            self._ratio = (st, np.ones(n))
        else:
            self.sold_share = np.divide(st.sold[:nm], offered, out=np.zeros(nm), where=offered > 0)
            need = pos.deficit[self.buyer_global]
            self.served_share = np.divide(
                st.bought[self.buyer_global], need, out=np.zeros(need.shape), where=need > 0
            )
            mine = st.sold + st.bought
            mine_ok = st.sold_committed + st.bought_committed
            ratio = np.divide(mine_ok, mine, out=np.ones(n), where=mine > 0)
            self.commit = np.where(
                mine > 0, (1 - COMMIT_EMA) * self.commit + COMMIT_EMA * ratio, self.commit
            )
            self._ratio = (st, ratio)  # the infos' commit_ratio: computed once per period
        self.online_share = float(res.online_share)
        k = self.kpi
        k["profit"] += profit
        k["sold"] += st.sold
        k["sold_ok"] += st.sold_committed
        k["export_surplus"] += np.maximum(pos.surplus - st.sold, 0.0)
        self.kpi_latency += res.latency_ms

    # ------------------------------------------------------------------ views
    def observations(self, roles: Sequence[str] = ("mg", "agg", "user")) -> dict[str, np.ndarray]:
        """Observation matrix per role (float32), e.g. ``{"mg": (n_mg, 16), ...}``.

        Only the requested roles are built; each is built once per period and cached (fresh
        arrays every period: callers may keep them, but must not modify them in place).
        """
        obs = self._obs
        for r in roles:  # a loop: a comprehension's frame costs more than the usual answer
            if r not in obs:
                break
        else:
            return obs
        missing = [r for r in roles if r not in obs]
        t0 = time.perf_counter()
        t = min(self.t, self.cfg.horizon - 1)
        if _jit.ENABLED and missing == ["mg"]:  # the learners' usual request: no Common
            self._obs["mg"] = self._mg_obs(None, t)
        else:
            c = observe.Common(
                self._hour_list[t], self.grid_buy, self.feed_in, self.last_price, self.online_share
            )
            for role in missing:
                self._obs[role] = self._builders[role](c, t)
        self.stage_time["observation"] += time.perf_counter() - t0
        return self._obs

    def _mg_obs(self, c: observe.Common | None, t: int) -> np.ndarray:
        """The microgrids' observations; ``c`` may be None on the compiled path."""
        p, d = self.profiles, self.dispatch
        if _jit.ENABLED:  # the same values in one compiled call (c's prices are the core's)
            sin, cos = self._hour_angles[t]
            low, high = observe.BOUNDS["mg"]
            base = observe.mg_obs_kernel(
                sin, cos, self.grid_buy, self.feed_in, self.last_price, self.online_share,
                self.mg_scale,
                p.pv_forecast[t], p.wind_forecast[t], p.load_forecast[t],
                d.surplus, d.gen_headroom, d.deficit,
                self.physics.soc, self.mc_max, self.sold_share, self.commit,
                low, high,
            )  # fmt: skip
        else:
            assert c is not None  # observations() builds it for this path
            base = observe.mg_obs(
                c,
                self.mg_scale,
                (p.pv_forecast[t], p.wind_forecast[t], p.load_forecast[t]),
                (d.surplus, d.gen_headroom, d.deficit),
                self.physics.soc,
                self.mc_max,
                self.sold_share,
                self.commit[: self.cfg.n_microgrids],
            )
        if not self.physics.feature_spec:
            return base
        low, high = self._extra_bounds
        extra = np.minimum(np.maximum(self.physics.features(), low), high).astype(np.float32)
        return np.concatenate((base, extra), axis=1)

    def _agg_obs(self, c: observe.Common, t: int) -> np.ndarray:
        cfg, d = self.cfg, self.dispatch
        nm, na = cfg.n_microgrids, cfg.n_aggregators
        need = np.concatenate((d.deficit, self.profiles.user_load_forecast[t]))
        demand = np.bincount(self.buyer_agg, weights=need, minlength=na)
        supply = float((d.surplus + d.gen_headroom).sum())
        served = np.bincount(self.buyer_agg, weights=self.served_share * need, minlength=na)
        served = np.divide(served, demand, out=np.zeros_like(served), where=demand > 0)
        return observe.agg_obs(
            c,
            demand / self.system_scale,
            supply / self.system_scale,
            served,
            self.delta,
            self.commit[nm : nm + na],
        )

    def _user_obs(self, c: observe.Common, t: int) -> np.ndarray:
        nm, na = self.cfg.n_microgrids, self.cfg.n_aggregators
        return observe.user_obs(
            c,
            self.profiles.user_load_forecast[t] / self.user_scale,
            self.served_share[nm:],
            self.commit[nm + na :],
        )

    def observations_flat(self) -> np.ndarray:
        """Every participant's observation concatenated in global order (``state()``)."""
        obs = self.observations()
        return np.concatenate([obs[r].ravel() for r in ("mg", "agg", "user")])

    def agent_infos(
        self,
        agents: list[str],
        result: PeriodResult | DeferredResult,
        rewards: dict[str, float] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """The per-step info dicts of ``agents`` (see the env card for the keys).

        ``rewards``, if given, receives each agent's ``profit`` too (the env's rewards,
        without a second pass over the dicts).
        """
        rows: Sequence[Sequence[float]] | None = None
        r: Any = result  # a DeferredResult has the price, cleared and chain fields read here
        if _jit.ENABLED:  # every column in one kernel call, as one row per participant
            table, counts = self._info_table, self._reject_counts
            done, n_rejected = self._info_done
            if done is not result:  # the table holds _info_done's result's rows
                n_rejected = self._info_rows(built(result))
                self._info_done = (result, n_rejected)
            rows = table.tolist()
            rejected = {}
            if n_rejected:
                rejected = {REJECT_REASONS[k]: c for k, c in enumerate(counts.tolist()) if c}
        else:
            r = built(result)
            st = r.settlement
            traded = st.sold + st.bought
            if self._ratio[0] is st:  # this period's, computed by _book
                ratio = self._ratio[1].tolist()
            else:
                ok = st.sold_committed + st.bought_committed
                ratio = np.divide(ok, traded, out=np.ones_like(ok), where=traded > 0).tolist()
            cols = (
                r.profit.tolist(),
                st.revenue.tolist(),
                st.cost.tolist(),
                traded.tolist(),
                (st.grid_import + st.grid_export).tolist(),
            )
            rejected = {}
            if not r.committed.all():
                counts = np.bincount(r.chain.reason[~r.committed], minlength=len(REJECT_REASONS))
                rejected = {REJECT_REASONS[k]: int(c) for k, c in enumerate(counts.tolist()) if c}
        # Every agent's dict is a copy of one template with its own six values set: the
        # template holds the keys in the documented order (the agent's figures first, then
        # the shared ones), and a dict copy is cheaper than building each dict key by key.
        chain, auth = r.chain, getattr(self.chain, "auth", None)  # auth: seed 001's, if on
        extra = chain.extra
        keys = tuple(extra)
        if keys != self._info_keys or auth:  # a protocol reports the same figures each period
            self._info_keys = None if auth else keys  # auth's figures: rebuilt every time
            self._info_names = tuple(f"chain_{k}" for k in keys)
            self._info_proto = dict.fromkeys(_AGENT_KEYS, 0.0)
            if auth:
                self._info_proto.update({f"auth_{k}": v for k, v in auth.stats.items()})
            self._info_proto.update(dict.fromkeys(_SHARED_KEYS))
            self._info_proto.update(dict.fromkeys(self._info_names))
        template = self._info_proto.copy()
        template["clearing_price"] = r.price
        template["cleared"] = r.cleared
        template["latency_ms"] = float(chain.latency_ms)
        template["online_share"] = float(chain.online_share)
        template["rejected"] = rejected
        for name, value in zip(self._info_names, extra.values(), strict=True):  # extra's order
            template[name] = value  # (a loop: cheaper than update() from the zip)
        out = {}
        index = self.index
        if rows is None:  # the numpy path's columns, as rows
            rows = list(zip(*cols, ratio, strict=True))
        for a in agents:
            d = out[a] = template.copy()
            (
                d["profit"],
                d["revenue"],
                d["cost"],
                d["traded_kwh"],
                d["grid_kwh"],
                d["commit_ratio"],
            ) = rows[index[a]]
        if rewards is not None:
            for a in agents:
                rewards[a] = out[a]["profit"]
        return out

    def _info_rows(self, r: PeriodResult) -> int:
        """``info_rows_into`` of ``r`` into the info table and counts; the rejected count."""
        st = r.settlement
        n_rejected: int = info_rows_into(
            r.profit, st.revenue, st.cost, st.sold, st.bought, st.sold_committed,
            st.bought_committed, st.grid_import, st.grid_export, r.committed, r.chain.reason,
            self._info_table, self._reject_counts,
        )  # fmt: skip
        return n_rejected

    def public_info(self) -> PublicInfo:
        """Public information of the current period (see :class:`PublicInfo`).

        Built once per period (every baseline role asks for it) and dropped when the period
        changes (:meth:`_plan`) or ends (:meth:`step`).
        """
        if self._public is not None:
            return self._public
        d, t = self.dispatch, min(self.t, self.cfg.horizon - 1)
        self._public = PublicInfo(
            self.cfg.market,
            self.grid_buy,
            self.feed_in,
            self.last_price,
            d.surplus,
            d.gen_headroom,
            d.deficit,
            self.profiles.user_load_forecast[t],
            self.profiles.load_forecast[t],
            self.fleet,
            self.buyer_agg,
        )
        return self._public

    def kpis(self) -> dict[str, float]:
        """Episode KPIs accumulated so far."""
        cfg, k = self.cfg, self.kpi
        nm, na = cfg.n_microgrids, cfg.n_aggregators
        if _jit.ENABLED:  # the seven sums in one kernel call (np.add.reduce's order)
            mg, agg, user, welfare, sold, local, export = kpi_sums(
                k["profit"], k["sold"], k["sold_ok"], k["export_surplus"], nm, na
            )
            return {
                "profit_mg": mg,
                "profit_agg": agg,
                "profit_user": user,
                "welfare": welfare,
                "commit_share": local / sold if sold > 0 else 1.0,
                "local_consumption_rate": local / (sold + export + 1e-12),
                "mean_latency_ms": self.kpi_latency / max(self.t, 1),
            }
        sold = float(k["sold"].sum())
        local = float(k["sold_ok"].sum())
        return {
            "profit_mg": float(k["profit"][:nm].sum()),
            "profit_agg": float(k["profit"][nm : nm + na].sum()),
            "profit_user": float(k["profit"][nm + na :].sum()),
            "welfare": float(k["profit"].sum()),
            "commit_share": local / sold if sold > 0 else 1.0,
            "local_consumption_rate": local / (sold + float(k["export_surplus"].sum()) + 1e-12),
            "mean_latency_ms": self.kpi_latency / max(self.t, 1),
        }

    def profile_info(self) -> dict[str, Any]:
        """Accumulated seconds per stage (for benchmarks)."""
        return dict(self.stage_time)
