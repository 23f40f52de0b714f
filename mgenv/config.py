"""Validated, frozen parameter dataclasses for every stage, and override handling.

A scenario (``mgenv.scenarios``) builds one :class:`EnvConfig`; ``parallel_env(scenario,
**overrides)`` applies flat keyword overrides with :func:`apply_overrides`. A key is looked up
among :class:`EnvConfig`'s own fields first, then among the fields of its sections (``grid``,
``market``, ``fleet``, ``users``, ``profiles``, ``chain``); ``"chain.message_loss"`` names a
section explicitly. Every field is validated in ``__post_init__`` with a ``ValueError`` that
names the field, the value and the allowed range.

Per-microgrid parameters are *templates*: tuples of length ``k`` that are tiled to
``n_microgrids`` (microgrid ``i`` uses template ``i % k``), so ``n_microgrids=64`` works on any
scenario without writing 64 values.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mgenv.chain import ChainParams
from mgenv.chain.params import SIGNATURE_KINDS
from mgenv.market.mechanism import MECHANISMS
from mgenv.market.p2p_game import FORMULATIONS as P2P_FORMULATIONS
from mgenv.physics.ccche_params import ThermalParams
from mgenv.validation import (
    check_all_range,
    check_capacities,
    check_choice,
    check_int,
    check_range,
)

ROLES = ("mg", "agg", "user")
DISPATCH_MODES = ("rule", "agent")
# Names of the microgrid physics models (mgenv.physics.model.MODELS); kept here as strings so
# that this module does not import the models (they import it for type hints only).
PHYSICS_MODELS = ("electric", "ccche")

# Time-of-use tariff of the distribution grid, yuan/kWh by hour of day 0..23: valley 0-7,
# peak 10-15 and 18-21, flat otherwise. Levels follow seed 001's valley/peak split and keep the
# papers' price strategy intervals (0.5-1.1 yuan/kWh) inside [feed-in, grid price].
DEFAULT_TOU = (
    (0.45,) * 7 + (0.85,) * 3 + (1.10,) * 5 + (0.85,) * 3 + (1.10,) * 3 + (0.85,) * 2 + (0.45,)
)


def tile(values: tuple[float, ...], n: int) -> np.ndarray:
    """Tile a template tuple to ``n`` entries: entry ``i`` is ``values[i % len(values)]``.

    Returns:
        float64 array of shape ``(n,)``.
    """
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.arange(n) % arr.size]


@dataclass(frozen=True, slots=True)
class GridParams:
    """The distribution grid: the buyer and seller of last resort.

    Attributes:
        buy_price: Price at which participants buy from the grid, yuan/kWh, by hour of day
            (24 values) or one flat value.
        feed_in_price: Price the grid pays for energy fed in, yuan/kWh (24 values or one).
    """

    buy_price: tuple[float, ...] = DEFAULT_TOU
    feed_in_price: tuple[float, ...] = (0.35,)

    def __post_init__(self) -> None:
        for name in ("buy_price", "feed_in_price"):
            values = getattr(self, name)
            if len(values) not in (1, 24):
                raise ValueError(f"GridParams.{name} has {len(values)} values; give 1 or 24")
            check_all_range("GridParams", name, values, 0.0, 100.0)
        if np.any(self.feed_in_by_hour >= self.buy_by_hour):
            raise ValueError(
                "GridParams.feed_in_price must be below buy_price at every hour "
                f"(feed_in={self.feed_in_price}, buy={self.buy_price})"
            )

    @property
    def buy_by_hour(self) -> np.ndarray:
        """Grid purchase price per hour of day, yuan/kWh, shape ``(24,)``."""
        return tile(self.buy_price, 24)

    @property
    def feed_in_by_hour(self) -> np.ndarray:
        """Feed-in price per hour of day, yuan/kWh, shape ``(24,)``."""
        return tile(self.feed_in_price, 24)


@dataclass(frozen=True, slots=True)
class MarketParams:
    """The market stage.

    Attributes:
        mechanism: Clearing mechanism; ``"uniform_price"`` is seed 000's aggregator auction.
        n_segments: Price/quantity segments per microgrid offer (seed 000 uses 3).
        price_floor: Lowest admissible offer/bid price, yuan/kWh.
        price_cap: Highest admissible offer/bid price, yuan/kWh.
        delta_min: Lowest aggregator service coefficient (seed 000 eq. 6: 0.85).
        delta_max: Highest aggregator service coefficient (seed 000 eq. 6: 1.2).
        p2p_formulation: Seed 002's pricing when supply falls short (``"bargaining"``, the
            default, or ``"literal"``; see :mod:`mgenv.market.p2p_game`); read by its baselines.
        p2p_lambda_ref: Seed 002's lambda calibration: the reference price at which a seller's
            forecast load is its eq. 9 optimum, as a share of ``[feed-in, grid price]``.
        p2p_unqualified: Participants (``"mg_1"``, ``"user_0"``) whose credit record fails seed
            002's authentication chaincode: they cannot trade in the ``"p2p"`` market.
        p2p_installed_kw: Installed capacity each microgrid registers with the authentication
            chaincode (Table 2), kW, template tiled to ``n_microgrids``; empty: not checked.
        p2p_signatures: Signatures of seed 002's chaincode records (``"modelled"`` HMAC or
            ``"ed25519"``).
        tier_mg_interval: Seed 001's price strategy interval of the microgrids ``(low,
            high)``, yuan/kWh, in the ``"three_tier"`` market (the aggregators' interval is
            ``[price_floor, price_cap]``).
        tier_user_interval: Seed 001's price strategy interval of the large users, yuan/kWh.
        tier_gas: Seed 001's aggregators sell natural gas to their microgrids (eq. 18's
            ``C^G_{M-J} V_M``; needs ``mechanism="three_tier"`` and ``physics="ccche"``): the
            gas each microgrid's turbine burns (``V_MT`` of eq. 2, m^3) is bought from its
            home aggregator at ``tier_gas_price``, which buys it from the gas company at
            ``tier_gas_wholesale``. Off: the microgrids pay the fleet's fuel cost
            (``FleetParams.gen_cost_*``) to the gas company directly.
        tier_gas_price: Aggregators' gas selling price ``C^G_{M-J}``, yuan/m^3, in [0, 100].
            Keep ``FleetParams.gen_cost_b = tier_gas_price / (eta_MT L_MT)`` and
            ``gen_cost_a = 0`` so that the dispatch's cost curve is the gas bill.
        tier_gas_wholesale: Gas company's price to the aggregators, yuan/m^3, in [0, 100].
        agg_battery_kwh: Capacity of each aggregator's battery (eq. 19's storage), kWh,
            template tiled to ``n_aggregators`` (aggregator ``j`` uses entry ``j % k``); 0: none,
            else at least 1e-6.
        agg_battery_kw: Its charge/discharge power limit, kW (template), >= 0.
        agg_eta_charge: Share of the energy bought that is stored, in (0, 1] (template).
        agg_eta_discharge: Share of the energy released that is delivered, in (0, 1].
        agg_soc_min: Lowest content, share of capacity, in [0, 1] (template).
        agg_soc_max: Highest content, share of capacity, >= ``agg_soc_min`` (template).
        agg_soc_init: Content at reset, share of capacity, inside the bounds (template).
        agg_battery_cost: ``C_battery`` of eqs. 19 and 34, yuan per kWh put into storage
            (``Q_battery``: the energy an aggregator's battery buys in the period), >= 0.
        agg_charge_below: The battery buys (charges) when its aggregator's purchase price
            ``p_J->M`` is at most this, yuan/kWh ("cheap").
        agg_discharge_above: It sells (discharges) when its aggregator's selling price
            ``p_J->Y`` is at least this, yuan/kWh ("dear"); must exceed ``agg_charge_below``.
        agg_grid_charge_below: Valley rule: when the grid's price is at most this, yuan/kWh, in
            [0, 100], the battery restores its start content from the grid and does not sell;
            its sales then stop where one such period restores it. 0: no grid charging (the
            grid's price is always positive). See :mod:`mgenv.market.three_tier`.
        agg_residue_price: Price of any battery content off its start at the end of its day
            (24 h after reset, eq. 5's ``E(0) = E(24)``), yuan/kWh, in [0, 100].
    """

    mechanism: str = "uniform_price"
    n_segments: int = 3
    price_floor: float = 0.30
    price_cap: float = 1.10
    delta_min: float = 0.85
    delta_max: float = 1.20
    p2p_formulation: str = "bargaining"
    p2p_lambda_ref: float = 0.0
    p2p_unqualified: tuple[str, ...] = ()
    p2p_installed_kw: tuple[float, ...] = ()
    p2p_signatures: str = "modelled"
    tier_mg_interval: tuple[float, ...] = (0.5, 1.05)
    tier_user_interval: tuple[float, ...] = (0.5, 1.05)
    tier_gas: bool = False
    tier_gas_price: float = 2.78
    tier_gas_wholesale: float = 2.5
    agg_battery_kwh: tuple[float, ...] = (0.0,)
    agg_battery_kw: tuple[float, ...] = (0.0,)
    agg_eta_charge: tuple[float, ...] = (0.95,)
    agg_eta_discharge: tuple[float, ...] = (0.95,)
    agg_soc_min: tuple[float, ...] = (0.2,)
    agg_soc_max: tuple[float, ...] = (0.8,)
    agg_soc_init: tuple[float, ...] = (0.5,)
    agg_battery_cost: float = 0.02
    agg_charge_below: float = 0.7
    agg_discharge_above: float = 0.95
    agg_grid_charge_below: float = 0.0
    agg_residue_price: float = 1.1

    def __post_init__(self) -> None:
        check_choice("MarketParams", "mechanism", self.mechanism, MECHANISMS)
        check_int("MarketParams", "n_segments", self.n_segments, 1, 10)
        check_range("MarketParams", "price_floor", self.price_floor, 0.0, 100.0)
        check_range(
            "MarketParams", "price_cap", self.price_cap, self.price_floor, 100.0, low_open=True
        )
        check_range("MarketParams", "delta_min", self.delta_min, 0.0, 10.0, low_open=True)
        check_range("MarketParams", "delta_max", self.delta_max, self.delta_min, 10.0)
        check_choice("MarketParams", "p2p_formulation", self.p2p_formulation, P2P_FORMULATIONS)
        check_range("MarketParams", "p2p_lambda_ref", self.p2p_lambda_ref, 0.0, 1.0)
        for name in self.p2p_unqualified:
            if not re.fullmatch(r"(mg|user)_\d+", str(name)):
                raise ValueError(
                    f"MarketParams.p2p_unqualified has {name!r}; give names like 'mg_1' or 'user_0'"
                )
        if self.p2p_installed_kw:
            check_all_range("MarketParams", "p2p_installed_kw", self.p2p_installed_kw, 0.0, 1e7)
        check_choice("MarketParams", "p2p_signatures", self.p2p_signatures, SIGNATURE_KINDS)
        for name in ("tier_mg_interval", "tier_user_interval"):
            check_all_range("MarketParams", name, getattr(self, name), 0.0, 100.0)
            low_high = getattr(self, name)
            if len(low_high) != 2 or low_high[0] >= low_high[1]:
                raise ValueError(f"MarketParams.{name}={low_high}: give (low, high), low < high")
        self._check_tier_extras()

    def _check_tier_extras(self) -> None:
        """Seed 001's gas sales and aggregator batteries (see the attributes)."""
        own = "MarketParams"
        if not isinstance(self.tier_gas, bool | np.bool_):
            raise ValueError(f"{own}.tier_gas={self.tier_gas!r} is not a bool")
        for name in ("tier_gas_price", "tier_gas_wholesale"):
            check_range(own, name, getattr(self, name), 0.0, 100.0)
        check_range(own, "agg_battery_cost", self.agg_battery_cost, 0.0, 100.0)
        for name in ("agg_battery_kwh", "agg_battery_kw"):
            check_all_range(own, name, getattr(self, name), 0.0, 1e7)
        check_capacities(own, "agg_battery_kwh", self.agg_battery_kwh)
        for name in ("agg_eta_charge", "agg_eta_discharge"):
            check_all_range(own, name, getattr(self, name), 0.0, 1.0, low_open=True)
        names = ("agg_soc_min", "agg_soc_max", "agg_soc_init")
        for name in names:
            check_all_range(own, name, getattr(self, name), 0.0, 1.0)
        n = max(len(getattr(self, name)) for name in names)
        lo, hi, init = (np.asarray(getattr(self, k), dtype=np.float64) for k in names)
        lo, hi, init = (a[np.arange(n * 64) % a.size] for a in (lo, hi, init))
        if np.any(lo > hi):
            raise ValueError(
                f"{own}.agg_soc_min={self.agg_soc_min} exceeds agg_soc_max={self.agg_soc_max}: "
                "reversed bounds"
            )
        if np.any((init < lo) | (init > hi)):
            raise ValueError(
                f"{own}.agg_soc_init={self.agg_soc_init} is outside [agg_soc_min, agg_soc_max]"
            )
        check_range(own, "agg_charge_below", self.agg_charge_below, 0.0, 100.0)
        check_range(
            own,
            "agg_discharge_above",
            self.agg_discharge_above,
            self.agg_charge_below,
            100.0,
            low_open=True,
        )
        check_range(own, "agg_grid_charge_below", self.agg_grid_charge_below, 0.0, 100.0)
        check_range(own, "agg_residue_price", self.agg_residue_price, 0.0, 100.0)
        storage = any(v > 0 for v in self.agg_battery_kwh)
        if (self.tier_gas or storage) and self.mechanism != "three_tier":
            what = "tier_gas" if self.tier_gas else "agg_battery_kwh"
            raise ValueError(
                f"{own}.{what} needs mechanism='three_tier'; got mechanism={self.mechanism!r}"
            )


@dataclass(frozen=True, slots=True)
class FleetParams:
    """Microgrid units, as templates tiled to ``n_microgrids`` (see module docstring).

    Attributes:
        pv_kw: PV peak power, kW.
        wind_kw: Wind rated power, kW.
        load_kw: Peak electric load, kW.
        gen_kw: Gas turbine (dispatchable generator) capacity, kW.
        gen_cost_a: Quadratic generation cost coefficient, yuan/kWh^2 (cost a q^2 + b q).
        gen_cost_b: Linear generation cost coefficient, yuan/kWh.
        battery_kwh: Battery energy capacity, kWh: 0 (no battery) or at least 1e-6.
        battery_kw: Battery charge/discharge power limit, kW.
        eta_charge: Charging efficiency in (0, 1].
        eta_discharge: Discharging efficiency in (0, 1].
        soc_min: Lowest state of charge, fraction of capacity (seed 001: 0.2).
        soc_max: Highest state of charge, fraction of capacity (seed 001: 0.8).
        soc_init: State of charge at reset, fraction of capacity.
    """

    pv_kw: tuple[float, ...] = (120.0, 40.0, 60.0, 80.0)
    wind_kw: tuple[float, ...] = (0.0, 90.0, 20.0, 40.0)
    load_kw: tuple[float, ...] = (70.0, 80.0, 90.0, 60.0)
    gen_kw: tuple[float, ...] = (60.0, 120.0, 50.0, 80.0)
    gen_cost_a: tuple[float, ...] = (0.0030, 0.0008, 0.0020, 0.0012)
    gen_cost_b: tuple[float, ...] = (0.55, 0.40, 0.50, 0.45)
    battery_kwh: tuple[float, ...] = (100.0, 150.0, 80.0, 120.0)
    battery_kw: tuple[float, ...] = (30.0, 40.0, 25.0, 35.0)
    eta_charge: tuple[float, ...] = (0.95,)
    eta_discharge: tuple[float, ...] = (0.95,)
    soc_min: tuple[float, ...] = (0.2,)
    soc_max: tuple[float, ...] = (0.8,)
    soc_init: tuple[float, ...] = (0.5,)

    def __post_init__(self) -> None:
        for name in (
            "pv_kw",
            "wind_kw",
            "load_kw",
            "gen_kw",
            "gen_cost_a",
            "gen_cost_b",
            "battery_kwh",
            "battery_kw",
        ):
            check_all_range("FleetParams", name, getattr(self, name), 0.0, 1e7)
        check_capacities("FleetParams", "battery_kwh", self.battery_kwh)
        for name in ("eta_charge", "eta_discharge"):
            check_all_range("FleetParams", name, getattr(self, name), 0.0, 1.0, low_open=True)
        for name in ("soc_min", "soc_max", "soc_init"):
            check_all_range("FleetParams", name, getattr(self, name), 0.0, 1.0)
        n = 64 * max(len(getattr(self, f.name)) for f in dataclasses.fields(self))
        lo, hi, init = (tile(self.soc_min, n), tile(self.soc_max, n), tile(self.soc_init, n))
        if np.any(lo > hi):
            raise ValueError(
                f"FleetParams.soc_min={self.soc_min} exceeds soc_max={self.soc_max}: "
                "reversed bounds"
            )
        if np.any((init < lo) | (init > hi)):
            raise ValueError(
                f"FleetParams.soc_init={self.soc_init} is outside [soc_min, soc_max]="
                f"[{self.soc_min}, {self.soc_max}]"
            )


@dataclass(frozen=True, slots=True)
class UserParams:
    """Large users (buyers only), as templates tiled to ``n_users``.

    Attributes:
        user_load_kw: Peak electric load per user, kW.
    """

    user_load_kw: tuple[float, ...] = (150.0, 100.0)

    def __post_init__(self) -> None:
        check_all_range("UserParams", "user_load_kw", self.user_load_kw, 0.0, 1e7)


@dataclass(frozen=True, slots=True)
class ProfileParams:
    """Parametric daily profiles and their seeded noise (see :mod:`mgenv.physics.profiles`).

    Attributes:
        sunrise_h: Hour of sunrise (PV starts), h.
        sunset_h: Hour of sunset (PV ends), h.
        cloudiness_max: Largest daily cloud attenuation of PV, fraction in [0, 1).
        wind_mean_ms: Mean hub-height wind speed, m/s.
        forecast_error: Relative std of the realised value around the forecast, all of PV,
            wind and load (seed 002's forecast-error compensation settles the difference).
        load_noise: Relative std of the day-to-day load level.
        pv_data_kwh: Optional PV per period and participant, kWh, shape (horizon, n); replaces
            the parametric PV (used by ``consortium_p2p`` with seed 002's Table 9).
        load_data_kwh: Optional electric load per period and participant, kWh (Table 8).
        user_load_shape: Daily shape of the large users' load: ``"commercial"`` (a daytime
            plateau) or ``"flat"`` (constant at ``user_load_kw``: seed 000's market demand).
    """

    sunrise_h: float = 6.0
    sunset_h: float = 18.0
    cloudiness_max: float = 0.6
    wind_mean_ms: float = 6.5
    forecast_error: float = 0.05
    load_noise: float = 0.08
    pv_data_kwh: tuple[tuple[float, ...], ...] = ()
    load_data_kwh: tuple[tuple[float, ...], ...] = ()
    user_load_shape: str = "commercial"

    def __post_init__(self) -> None:
        check_range("ProfileParams", "sunrise_h", self.sunrise_h, 0.0, 24.0)
        check_range("ProfileParams", "sunset_h", self.sunset_h, self.sunrise_h, 24.0, low_open=True)
        check_range(
            "ProfileParams", "cloudiness_max", self.cloudiness_max, 0.0, 1.0, high_open=True
        )
        check_range("ProfileParams", "wind_mean_ms", self.wind_mean_ms, 0.0, 40.0)
        check_range("ProfileParams", "forecast_error", self.forecast_error, 0.0, 1.0)
        check_range("ProfileParams", "load_noise", self.load_noise, 0.0, 1.0)
        check_choice(
            "ProfileParams", "user_load_shape", self.user_load_shape, ("commercial", "flat")
        )
        for name in ("pv_data_kwh", "load_data_kwh"):
            rows = getattr(self, name)
            if rows and len({len(r) for r in rows}) != 1:
                raise ValueError(f"ProfileParams.{name} rows have different lengths")
            for t, row in enumerate(rows):
                check_all_range("ProfileParams", f"{name}[{t}]", row, 0.0, 1e7)


@dataclass(frozen=True, slots=True)
class EnvConfig:
    """Everything that defines an episode; built by a scenario, changed by overrides.

    Attributes:
        scenario: Name of the scenario this config came from.
        horizon: Market periods per episode (the episode is truncated after it).
        start_hour: Hour of day of the first period, h.
        dt_h: Length of one market period, h.
        n_microgrids: Number of microgrids ``mg_i``.
        n_aggregators: Number of aggregators ``agg_j`` (at least one: buyers bid through them).
        n_users: Number of large users ``user_k``.
        learning_roles: Roles whose agents are exposed to the learner; the others are played
            inside the env by ``opponent_policy``.
        opponent_policy: Name of the baseline (``baselines.names()``) that plays the roles
            that do not learn.
        physics: Microgrid physics model (``mgenv.physics.model.MODELS``): ``"electric"``
            or ``"ccche"`` (seed 001's cooling, heating and electricity microgrids).
        dispatch: Microgrid energy management: ``"rule"`` (the rule-based default) or
            ``"agent"`` (the microgrids' actions end with the physics model's set-points).
        grid: Grid tariff.
        market: Market mechanism and price bounds.
        fleet: Microgrid units.
        users: Large users.
        profiles: Weather and load profiles.
        chain: Blockchain consensus and network.
        thermal: CCHE units and season (read by ``physics="ccche"``).
    """

    scenario: str = "custom"
    horizon: int = 24
    start_hour: int = 0
    dt_h: float = 1.0
    n_microgrids: int = 4
    n_aggregators: int = 2
    n_users: int = 2
    learning_roles: tuple[str, ...] = ("mg",)
    opponent_policy: str = "truthful"
    physics: str = "electric"
    dispatch: str = "rule"
    grid: GridParams = field(default_factory=GridParams)
    market: MarketParams = field(default_factory=MarketParams)
    fleet: FleetParams = field(default_factory=FleetParams)
    users: UserParams = field(default_factory=UserParams)
    profiles: ProfileParams = field(default_factory=ProfileParams)
    chain: ChainParams = field(default_factory=ChainParams)
    thermal: ThermalParams = field(default_factory=ThermalParams)

    def __post_init__(self) -> None:
        check_int("EnvConfig", "horizon", self.horizon, 1, 100_000)
        check_int("EnvConfig", "start_hour", self.start_hour, 0, 23)
        check_range("EnvConfig", "dt_h", self.dt_h, 0.0, 24.0, low_open=True)
        check_int("EnvConfig", "n_microgrids", self.n_microgrids, 1, 4096)
        check_int("EnvConfig", "n_aggregators", self.n_aggregators, 1, 256)
        check_int("EnvConfig", "n_users", self.n_users, 0, 4096)
        check_choice("EnvConfig", "physics", self.physics, PHYSICS_MODELS)
        check_choice("EnvConfig", "dispatch", self.dispatch, DISPATCH_MODES)
        if not self.learning_roles:
            raise ValueError(
                f"EnvConfig.learning_roles is empty; give at least one of {list(ROLES)}"
            )
        for role in self.learning_roles:
            check_choice("EnvConfig", "learning_roles", role, ROLES)
        if "user" in self.learning_roles and self.n_users == 0:
            raise ValueError("EnvConfig.learning_roles has 'user' but n_users=0")
        for name in ("pv_data_kwh", "load_data_kwh"):
            rows = getattr(self.profiles, name)
            if rows and (len(rows) < self.horizon or len(rows[0]) != self.n_microgrids):
                raise ValueError(
                    f"ProfileParams.{name} has shape ({len(rows)}, {len(rows[0])}); needs at "
                    f"least (horizon={self.horizon}, n_microgrids={self.n_microgrids})"
                )
        if self.market.tier_gas and self.physics != "ccche":
            raise ValueError(
                "MarketParams.tier_gas needs physics='ccche' (the turbines' gas volume); "
                f"got physics={self.physics!r}"
            )
        for name in self.market.p2p_unqualified:
            role, _, idx = name.partition("_")
            count = self.n_microgrids if role == "mg" else self.n_users
            if int(idx) >= count:
                raise ValueError(
                    f"MarketParams.p2p_unqualified names {name!r}, but there are "
                    f"{count} {role} participants"
                )

    @property
    def n_participants(self) -> int:
        """Microgrids, aggregators and users: the size of the global participant index."""
        return self.n_microgrids + self.n_aggregators + self.n_users


SECTIONS = ("grid", "market", "fleet", "users", "profiles", "chain", "thermal")


def override_keys(cfg: EnvConfig) -> list[str]:
    """All keys accepted by :func:`apply_overrides`, sorted."""
    keys = [f.name for f in dataclasses.fields(cfg) if f.name not in SECTIONS]
    for sec in SECTIONS:
        keys += [f.name for f in dataclasses.fields(getattr(cfg, sec))]
    return sorted(keys)


def _coerce(current: Any, value: Any) -> Any:
    """Convert a user value to the type of the field it replaces (lists to tuples...)."""
    if isinstance(current, tuple):
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            return (value,)
        return tuple(tuple(v) if isinstance(v, list | tuple) else v for v in value)
    return value


def _locate(cfg: EnvConfig, key: str) -> tuple[str | None, str]:
    """Return ``(section or None, field)`` for an override key, or raise listing the keys."""
    if "." in key or "__" in key:
        sec, _, name = key.replace("__", ".").partition(".")
        if sec in SECTIONS and name in {f.name for f in dataclasses.fields(getattr(cfg, sec))}:
            return sec, name
    elif key in {f.name for f in dataclasses.fields(cfg)} and key not in SECTIONS:
        return None, key
    else:
        for sec in SECTIONS:
            if key in {f.name for f in dataclasses.fields(getattr(cfg, sec))}:
                return sec, key
    raise ValueError(f"unknown override {key!r}; valid keys are {override_keys(cfg)}")


def apply_overrides(cfg: EnvConfig, overrides: Mapping[str, Any]) -> EnvConfig:
    """Return a new config with flat ``overrides`` applied and validated.

    Nothing is mutated: on error the caller's config is unchanged.

    Raises:
        ValueError: For an unknown key (listing the valid ones) or an invalid value (naming
            the field, the value and the allowed range).
    """
    top: dict[str, Any] = {}
    per_section: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        sec, name = _locate(cfg, key)
        if sec is None:
            top[name] = _coerce(getattr(cfg, name), value)
        else:
            current = getattr(getattr(cfg, sec), name)
            per_section.setdefault(sec, {})[name] = _coerce(current, value)
    for sec, changes in per_section.items():
        top[sec] = dataclasses.replace(getattr(cfg, sec), **changes)
    return dataclasses.replace(cfg, **top)
