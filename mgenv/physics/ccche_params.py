"""Validated parameters of the CCHE microgrids of seed 001 (the ``thermal`` config section).

Per-microgrid values are templates tiled to ``n_microgrids`` like :class:`~mgenv.config.
FleetParams` (microgrid ``i`` uses entry ``i % k``). The battery's capacity, power, SOC
bounds and efficiencies stay in ``FleetParams`` (one source of truth); this section adds the
battery rules the electric model lacks (ramp limit, daily count limit) and every thermal unit.
Energies per period are ``power * dt_h``; thermal energies are kWh of heat or cold (kWh_th).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

import numpy as np

from mgenv.validation import check_all_range, check_choice, check_range

SEASONS: Final[tuple[str, ...]] = ("winter", "summer")
VALLEY_HOURS: Final[tuple[int, ...]] = (0, 1, 2, 3, 4, 5, 6, 23)  # the default tariff's valley
PEAK_HOURS: Final[tuple[int, ...]] = (10, 11, 12, 13, 14, 18, 19, 20)  # and its peak

_NONNEG = (
    "heat_peak_kw",
    "cool_peak_kw",
    "boiler_kw",
    "tst_kwh",
    "tst_kw",
    "chiller_kw",
    "ice_make_kw",
    "ice_kwh",
    "ice_kw",
)
_EFFICIENCIES = (
    "eta_mt",
    "heat_recovery",
    "eta_boiler",
    "tst_eta_charge",
    "tst_eta_discharge",
    "ice_eta_charge",
    "ice_eta_discharge",
)
_TANKS = ("tst", "ice")


@dataclass(frozen=True, slots=True)
class ThermalParams:
    """CCHE units (seed 001 section 3) and the penalties of the thermal carriers.

    Attributes:
        season: ``"winter"`` (heat load; boilers and heat storage tank run, eqs. 13-14) or
            ``"summer"`` (cooling load; refrigerator and ice storage run, eqs. 15-16).
        heat_peak_kw: Peak heat load per microgrid in winter, kW_th.
        cool_peak_kw: Peak cooling load per microgrid in summer, kW_th.
        eta_mt: Gas turbine electric efficiency eta_MT of eq. 2, in (0, 1]. With
            ``lhv_kwh_m3`` it gives the gas volume ``V_MT = p / (eta_MT L_MT)`` and the waste
            heat; the fuel *cost* stays ``FleetParams.gen_cost_*`` (one source of truth: a
            gas price ``c`` yuan/m^3 means ``gen_cost_b = c / (eta_MT L_MT)``).
        heat_recovery: Share of the turbine's waste heat ``(1 - eta_MT) / eta_MT`` per kWh
            of electricity that is recovered, in (0, 1].
        lhv_kwh_m3: Low calorific value L_MT of the natural gas, kWh/m^3 (eq. 2).
        boiler_kw: Electric boiler input capacity, kW (eqs. 13-14 count P_GB as electricity).
        eta_boiler: Electric boiler efficiency, heat per kWh of electricity, in (0, 1].
        tst_kwh: Heat storage tank capacity, kWh_th (eq. 10's bound; see thermal.py).
        tst_kw: Heat storage tank charge/discharge power limit, kW_th (eq. 9).
        tst_eta_charge: Heat storage efficiency eta_TST,cha, in (0, 1].
        tst_eta_discharge: Heat release efficiency eta_TST,dis, in (0, 1].
        tst_loss: Self-loss mu of eq. 10 per hour, share of the content, in [0, 1).
        tst_soc_min: Lowest tank content, share of capacity (eq. 10: 0.2).
        tst_soc_max: Highest tank content, share of capacity (eq. 10: 0.8).
        tst_soc_init: Content at reset and at the end of every day, share of capacity.
        tst_ramp: Largest change of the tank's charge or discharge power from one period to
            the next (eq. 12), share of ``tst_kw``, in [0.5, 1] (1: never binds; at least half,
            so that a reversal takes at most two periods, which the end-of-day reachability
            of :func:`~mgenv.physics.thermal.reach_moves` relies on).
        chiller_kw: Refrigerator capacity Q_A,max of eq. 7 (cooling plus ice-making), kW_th.
        chiller_cop: Refrigerator coefficient of performance for air cooling, in (0, 10].
        ice_make_kw: Largest ice-making power Q_C,max of eq. 7, kW_th.
        ice_cop: Refrigerator coefficient of performance when making ice, in (0, 10].
        ice_kwh: Ice tank capacity, kWh_th of cold.
        ice_kw: Largest release power of the ice tank Q_D,max of eq. 8, kW_th.
        ice_eta_charge: Share of the ice-making cold that is stored, in (0, 1].
        ice_eta_discharge: Share of the released cold that reaches the load, in (0, 1].
        ice_loss: Self-loss of the ice tank per hour, share of the content, in [0, 1).
        ice_soc_min: Lowest ice content, share of capacity.
        ice_soc_max: Highest ice content, share of capacity.
        ice_soc_init: Ice content at reset and at the end of every day, share of capacity.
        battery_ramp: Largest change of the battery's charge or discharge power from one
            period to the next (eq. 6), share of ``FleetParams.battery_kw``, in [0.5, 1].
        battery_max_active: Most periods per day in which the battery charges or discharges
            (eq. 5's frequency constraint), in [0, 1000].
        voll_heat: Value of lost heat load charged to the microgrid, yuan/kWh_th.
        voll_cool: Value of lost cooling load charged to the microgrid, yuan/kWh_th.
        residue_price: Price of any storage content missing from (or beyond) its start at the
            end of a day (eq. 5's E(0) = E(24)), yuan/kWh.
        valley_hours: Hours of day (0-23) of the tariff's valley: storages charge, ice is made.
        peak_hours: Hours of day of the tariff's peak: storages release (disjoint from valley).
    """

    season: str = "winter"
    heat_peak_kw: tuple[float, ...] = (90.0, 70.0, 110.0, 80.0)
    cool_peak_kw: tuple[float, ...] = (120.0, 90.0, 140.0, 100.0)
    eta_mt: tuple[float, ...] = (0.33,)
    heat_recovery: tuple[float, ...] = (0.75,)
    lhv_kwh_m3: float = 9.78
    boiler_kw: tuple[float, ...] = (80.0, 60.0, 100.0, 70.0)
    eta_boiler: tuple[float, ...] = (0.95,)
    tst_kwh: tuple[float, ...] = (240.0, 180.0, 300.0, 200.0)
    tst_kw: tuple[float, ...] = (50.0, 40.0, 60.0, 45.0)
    tst_eta_charge: tuple[float, ...] = (0.95,)
    tst_eta_discharge: tuple[float, ...] = (0.95,)
    tst_loss: tuple[float, ...] = (0.01,)
    tst_soc_min: tuple[float, ...] = (0.2,)
    tst_soc_max: tuple[float, ...] = (0.8,)
    tst_soc_init: tuple[float, ...] = (0.5,)
    tst_ramp: tuple[float, ...] = (0.6,)
    chiller_kw: tuple[float, ...] = (130.0, 100.0, 150.0, 110.0)
    chiller_cop: tuple[float, ...] = (4.0,)
    ice_make_kw: tuple[float, ...] = (50.0, 40.0, 60.0, 45.0)
    ice_cop: tuple[float, ...] = (3.2,)
    ice_kwh: tuple[float, ...] = (240.0, 180.0, 300.0, 200.0)
    ice_kw: tuple[float, ...] = (50.0, 40.0, 60.0, 45.0)
    ice_eta_charge: tuple[float, ...] = (0.95,)
    ice_eta_discharge: tuple[float, ...] = (0.95,)
    ice_loss: tuple[float, ...] = (0.005,)
    ice_soc_min: tuple[float, ...] = (0.2,)
    ice_soc_max: tuple[float, ...] = (0.8,)
    ice_soc_init: tuple[float, ...] = (0.5,)
    battery_ramp: tuple[float, ...] = (0.6,)
    battery_max_active: int = 18
    voll_heat: float = 2.0
    voll_cool: float = 2.0
    residue_price: float = 1.1
    valley_hours: tuple[int, ...] = VALLEY_HOURS
    peak_hours: tuple[int, ...] = PEAK_HOURS

    def __post_init__(self) -> None:
        own = "ThermalParams"
        check_choice(own, "season", self.season, SEASONS)
        for name in _NONNEG:
            check_all_range(own, name, getattr(self, name), 0.0, 1e7)
        for name in _EFFICIENCIES:
            check_all_range(own, name, getattr(self, name), 0.0, 1.0, low_open=True)
        for name in ("chiller_cop", "ice_cop"):
            check_all_range(own, name, getattr(self, name), 0.0, 10.0, low_open=True)
        for name in ("tst_loss", "ice_loss"):
            check_all_range(own, name, getattr(self, name), 0.0, 1.0, high_open=True)
        for name in ("tst_ramp", "battery_ramp"):
            check_all_range(own, name, getattr(self, name), 0.5, 1.0)
        check_range(own, "lhv_kwh_m3", self.lhv_kwh_m3, 0.0, 100.0, low_open=True)
        if isinstance(self.battery_max_active, bool) or not isinstance(
            self.battery_max_active, int | np.integer
        ):
            raise ValueError(
                f"{own}.battery_max_active={self.battery_max_active!r} is not an integer; "
                "allowed [0, 1000]"
            )
        check_range(own, "battery_max_active", self.battery_max_active, 0, 1000)
        for name in ("voll_heat", "voll_cool", "residue_price"):
            check_range(own, name, getattr(self, name), 0.0, 1e4)
        for tank in _TANKS:
            self._check_soc(tank)
        self._check_hours()

    def _check_soc(self, tank: str) -> None:
        """SOC shares in [0, 1], bounds in order, the start inside them (every template)."""
        own = "ThermalParams"
        names = (f"{tank}_soc_min", f"{tank}_soc_max", f"{tank}_soc_init")
        for name in names:
            check_all_range(own, name, getattr(self, name), 0.0, 1.0)
        n = 64 * max(
            len(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), tuple)
        )
        lo, hi, init = (_tile(getattr(self, name), n) for name in names)
        if np.any(lo > hi):
            raise ValueError(
                f"{own}.{names[0]}={getattr(self, names[0])} exceeds {names[1]}="
                f"{getattr(self, names[1])}: reversed bounds"
            )
        if np.any((init < lo) | (init > hi)):
            raise ValueError(
                f"{own}.{names[2]}={getattr(self, names[2])} is outside [{names[0]}, "
                f"{names[1]}]=[{getattr(self, names[0])}, {getattr(self, names[1])}]"
            )

    def _check_hours(self) -> None:
        own = "ThermalParams"
        for name in ("valley_hours", "peak_hours"):
            for h in getattr(self, name):
                if isinstance(h, bool) or not isinstance(h, int | np.integer) or not 0 <= h <= 23:
                    raise ValueError(f"{own}.{name} has {h!r}; give whole hours of day in [0, 23]")
        both = sorted(set(self.valley_hours) & set(self.peak_hours))
        if both:
            raise ValueError(f"{own}.valley_hours and peak_hours share hours {both}")

    def tiled(self, name: str, n: int) -> np.ndarray:
        """Template ``name`` tiled to ``n`` microgrids, float64 of shape ``(n,)``."""
        return _tile(getattr(self, name), n)


def _tile(values: tuple[float, ...], n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.arange(n) % arr.size]
