"""Seed 001's combined cooling, heating and electricity (CCHE) microgrids as a physics model.

:class:`CCHEModel` implements :class:`~mgenv.physics.model.PhysicsModel` (``physics="ccche"``)
with the units of :mod:`mgenv.physics.thermal`, vectorised over microgrids. Its storages,
battery (eqs. 3-6), heat storage tank (eqs. 9-12) and ice tank (eqs. 7-8), are the rows of
``(3, n_microgrids)`` arrays, so every window is computed once for all of them.

Per period, before the market (:meth:`CCHEModel.plan`):

1. thermal loads (below); the season selects the carrier (winter: heat, summer: cold);
2. each storage's window of feasible moves, narrowed in order of precedence: power and
   content bounds (including room to ramp down to a stop inside them); ramp limits; operating
   modes (ice made only in valley hours, released only in peak hours, no release beyond the
   load unless the ramp forces it, the excess heat then vented); the battery's daily count
   limit (its last allowed move small enough to stop after it); and the reachability of the
   day's start content at the day's end (eq. 5's ``E(0) = E(24)``, applied to every storage
   so that a day cannot end on drained tanks);
3. the moves: the rule (valley: charge; peak: release for the own loads; otherwise the
   battery absorbs a renewable surplus and the tanks idle), or with ``dispatch="agent"`` the
   set-points ``battery``, ``heat_tank``, ``ice`` in [-1, 1] projected onto the windows
   (:func:`~mgenv.physics.thermal.setpoint_move`);
4. cooling (refrigerator, ice), then the electric-led turbine and the electric boiler
   (:func:`~mgenv.physics.thermal.turbine_and_boiler`); surplus recovered heat goes into the
   heat tank as far as its window allows, the rest is vented; a heat shortfall first reduces
   the tank's charge, then is unmet and charged at ``voll_heat``.

The dispatch handed to the market counts the boilers', refrigerators' and ice makers'
electricity in ``Dispatch.charge`` (energy drawn from the bus by the storages and the thermal
converters), so the electric balance of ``tests/test_invariants.py`` holds unchanged;
``Realised.extra`` breaks it down and carries the heat and cold balances.

Thermal loads (a documented choice; the model is built without a random stream): the
heat (winter) or cooling (summer) load of microgrid ``i`` in period ``t`` is
``peak_i * shape(hour_t) * level_i`` where ``shape`` is the season's parametric daily shape
(:func:`~mgenv.physics.ccche_schedule.heat_shape`, ``cool_shape``; max 1) and ``level_i`` the
day's level factor of the microgrid's electric load forecast (its seeded noise, read back as
``forecast / (peak kW * dt * residential shape)``), so thermal loads vary with the seed
exactly as electric loads do.
The realised thermal load equals its forecast (no thermal forecast error is modelled).
After the market (:meth:`CCHEModel.realise`) the storages move as planned; turbine energy
sold beyond the surplus is generated then and its recovered heat vented; at the last period
of each day any storage content missing from its start is charged at ``residue_price``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mgenv.physics import thermal as th
from mgenv.physics.ccche_schedule import DaySchedule, cool_shape, heat_shape
from mgenv.physics.model import Forecast, Realised
from mgenv.physics.units import Dispatch, FleetArrays, economic_output, generation_cost

if TYPE_CHECKING:
    from mgenv.config import EnvConfig

SETPOINTS = ["battery", "heat_tank", "ice"]
FEATURES: list[tuple[str, float, float]] = [
    ("heat_load", 0.0, 10.0),
    ("cool_load", 0.0, 10.0),
    ("heat_tank_soc", 0.0, 1.0),
    ("ice_soc", 0.0, 1.0),
    ("tou_valley", 0.0, 1.0),
    ("tou_peak", 0.0, 1.0),
    ("day_left", 0.0, 1.0),
]
_TOL = 1e-9
__all__ = ["FEATURES", "SETPOINTS", "CCHEModel", "cool_shape", "heat_shape"]


def _rows(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Stack three ``(n,)`` rows into a ``(3, n)`` float64 array (faster than ``np.stack``)."""
    out = np.empty((3, *np.shape(a)))
    out[0], out[1], out[2] = a, b, c
    return out


class CCHEModel:
    """CCHE microgrids (seed 001, section 3); see the module docstring."""

    setpoint_names: list[str] = SETPOINTS
    feature_spec: list[tuple[str, float, float]] = FEATURES

    def __init__(self, cfg: EnvConfig, fleet: FleetArrays) -> None:
        p, n, dt = cfg.thermal, cfg.n_microgrids, cfg.dt_h
        self.fleet, self.dt, self.params = fleet, dt, p
        t = p.tiled
        winter = p.season == "winter"
        self.cap = _rows(fleet.battery_kwh, t("tst_kwh", n), t("ice_kwh", n))  # (3, n) kWh
        self.soc_lo = _rows(fleet.soc_min, t("tst_soc_min", n), t("ice_soc_min", n))
        self.soc_hi = _rows(fleet.soc_max, t("tst_soc_max", n), t("ice_soc_max", n))
        init = _rows(fleet.soc_init, t("tst_soc_init", n), t("ice_soc_init", n))
        self.target = init * self.cap  # (3, n) start content of every day, kWh
        self.eta_c = _rows(fleet.eta_charge, t("tst_eta_charge", n), t("ice_eta_charge", n))
        self.eta_d = _rows(
            fleet.eta_discharge, t("tst_eta_discharge", n), t("ice_eta_discharge", n)
        )
        self.max_in = _rows(fleet.battery_kw, t("tst_kw", n), t("ice_make_kw", n)) * dt
        self.max_out = _rows(fleet.battery_kw, t("tst_kw", n), t("ice_kw", n)) * dt
        self.active = np.array([[1.0], [float(winter)], [float(not winter)]])  # (3, 1)
        self._has = self.cap > 0
        self._cap_safe = np.where(self._has, self.cap, 1.0)
        self._share0 = init  # reported share of a storage of capacity 0
        loss = _rows(np.zeros(n), t("tst_loss", n), t("ice_loss", n))
        self.keep = np.where(self.active > 0, (1.0 - loss) ** dt, 1.0)  # per period
        self.ramp = (
            _rows(
                t("battery_ramp", n) * fleet.battery_kw,
                t("tst_ramp", n) * t("tst_kw", n),
                np.full(n, th.BIG / dt),
            )
            * dt
        )
        self.ratio = th.recovery_ratio(t("eta_mt", n), t("heat_recovery", n))
        self.eta_mt = t("eta_mt", n)
        self.eta_boiler = t("eta_boiler", n)
        self.boiler_max = t("boiler_kw", n) * dt
        self.chiller_max = t("chiller_kw", n) * dt
        self.chiller_cop, self.ice_cop = t("chiller_cop", n), t("ice_cop", n)
        self.heat_peak = t("heat_peak_kw", n) * dt * float(winter)
        self.cool_peak = t("cool_peak_kw", n) * dt * float(not winter)
        self.gen_cap = fleet.gen_kw * dt
        self.thermal_scale = (t("heat_peak_kw", n) + t("cool_peak_kw", n)) * dt + 1e-9
        self.load_peak = (
            np.asarray(cfg.fleet.load_kw, dtype=np.float64)[np.arange(n) % len(cfg.fleet.load_kw)]
            * dt
        )
        sched = DaySchedule(cfg, self.keep, self.ramp, self.max_in, self.max_out)
        self.schedule = sched
        self.valley, self.peak, self.day_end = sched.valley, sched.peak, sched.day_end
        self.n_after, self.day_len = sched.n_after, sched.day_len
        self.heat_sh, self.cool_sh, self.res_sh = sched.heat_sh, sched.cool_sh, sched.res_sh
        self.reset()

    def reset(self) -> None:
        """Storages at their start contents, no previous move, no battery use today."""
        self.level = self.target.copy()  # (3, n) kWh
        self.prev = np.zeros_like(self.level)  # (3, n) last period's moves
        self.count = np.zeros(self.level.shape[1])  # (n,) battery's active periods today
        self._plan: dict[str, Any] | None = None
        self._t = 0

    @property
    def soc(self) -> np.ndarray:
        """Battery state of charge, fraction of capacity, ``(n_mg,)``."""
        return self._share(0)

    def _share(self, row: int, level: np.ndarray | None = None) -> np.ndarray:
        """Content of storage ``row`` as a share of capacity (its start share if none)."""
        now = self.level[row] if level is None else level[row]
        return np.asarray(np.where(self._has[row], now / self._cap_safe[row], self._share0[row]))

    def thermal_loads(self, t: int, load_kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heat and cooling load of period ``t``, kWh_th, each ``(n,)`` (module docstring)."""
        expected = self.load_peak * self.res_sh[t]
        level = np.divide(load_kwh, expected, out=np.ones_like(load_kwh), where=expected > 0)
        level = np.minimum(level, 3.0)
        return self.heat_peak * self.heat_sh[t] * level, self.cool_peak * self.cool_sh[t] * level

    def windows(self, t: int, heat: np.ndarray, cool: np.ndarray) -> tuple[np.ndarray, ...]:
        """Feasible moves of the three storages in period ``t``: ``(lo, hi)``, each (3, n)."""
        decayed = self.keep * self.level
        args = (self.eta_c, self.eta_d)
        lo, hi = th.physical_window(
            decayed, self.cap, self.soc_lo, self.soc_hi, self.max_in, self.max_out, *args
        )
        lo, hi = th.narrow(
            lo,
            hi,
            *th.braking_window(
                decayed, self.keep, self.cap, self.soc_lo, self.soc_hi, self.ramp, *args
            ),
        )
        lo, hi = th.narrow(lo, hi, *th.ramp_window(self.prev, self.ramp))
        ice_lo, ice_hi = th.ice_mode_window(
            bool(self.valley[t]), bool(self.peak[t]), cool, self.chiller_max
        )
        big = np.full_like(heat, th.BIG)
        lo, hi = th.narrow(lo, hi, _rows(-big, -heat, ice_lo), _rows(big, big, ice_hi))
        left = self.params.battery_max_active - self.count  # (n,)
        # last allowed period: a move the ramp lets stop next period; none left: idle
        stop = np.where(left > 1, th.BIG, np.where(left > 0, self.ramp[0], 0.0))
        lo, hi = th.narrow(lo, hi, _rows(-stop, -big, -big), _rows(stop, big, big))
        ramp = self.ramp if self.n_after[t] > 0 else np.full_like(self.ramp, th.BIG)
        r_lo, r_hi = th.reach_moves(
            decayed, self.target, *self.schedule.reach(t, left), ramp, *args
        )
        lo, hi = th.narrow(lo, hi, r_lo, r_hi)
        return lo * self.active, hi * self.active

    def rule_moves(
        self,
        t: int,
        lo: np.ndarray,
        hi: np.ndarray,
        net: np.ndarray,
        heat: np.ndarray,
        cool: np.ndarray,
    ) -> np.ndarray:
        """The operating rules (section 3.1.4) clipped to the windows, (3, n) moves."""
        valley, peak = bool(self.valley[t]), bool(self.peak[t])
        zero = np.zeros_like(net)
        ice = np.clip(th.tou_move(valley, peak, -cool, zero), lo[2], hi[2])
        _, _, e_chill, e_ice = th.cooling_dispatch(
            cool, ice, self.chiller_max, self.chiller_cop, self.ice_cop
        )
        pre = net - e_chill - e_ice
        batt = th.tou_move(valley, peak, -np.maximum(-pre, 0.0), np.maximum(pre, 0.0))
        tank = th.tou_move(valley, peak, -heat, zero)
        return np.asarray(np.clip(_rows(batt, tank, ice), lo, hi))

    def plan(
        self, t: int, forecast: Forecast, grid_buy: float, setpoints: np.ndarray | None
    ) -> Dispatch:
        """Dispatch of period ``t`` (module docstring); ``setpoints`` (n, 3) or None."""
        heat, cool = self.thermal_loads(t, forecast.load)
        lo, hi = self.windows(t, heat, cool)
        net = forecast.pv + forecast.wind - forecast.load
        if setpoints is None:
            moves = self.rule_moves(t, lo, hi, net, heat, cool)
        else:
            moves = th.setpoint_move(np.asarray(setpoints, dtype=np.float64).T, lo, hi)
        chill, cool_unmet, e_chill, e_ice = th.cooling_dispatch(
            cool, moves[2], self.chiller_max, self.chiller_cop, self.ice_cop
        )
        net0 = net - e_chill - e_ice - moves[0]
        econ = economic_output(grid_buy, self.gen_cap, self.fleet)
        gen, boiler = th.turbine_and_boiler(
            net0, heat + moves[1], self.ratio, self.eta_boiler, self.boiler_max, econ
        )
        supply = self.ratio * gen + self.eta_boiler * boiler
        # surplus recovered heat fills the tank, a shortfall cuts its charge (within its window)
        tank = np.minimum(np.maximum(supply - heat, lo[1]), hi[1])
        after = net0 - boiler + gen
        deficit = np.maximum(-after, 0.0)
        final = _rows(moves[0], tank, moves[2])
        self._t = t
        self._plan = {
            "pre": moves,
            "lo": lo,
            "hi": hi,
            "moves": final,
            "heat": heat,
            "cool": cool,
            "supply": supply,
            "chill": chill,
            "cool_unmet": cool_unmet,
            "e_chill": e_chill,
            "e_ice": e_ice,
            "boiler": boiler,
            "gen": gen,
        }
        return Dispatch(
            charge=np.maximum(moves[0], 0.0) + boiler + e_chill + e_ice,
            discharge=np.maximum(-moves[0], 0.0),
            self_gen=gen,
            surplus=np.maximum(after, 0.0),
            gen_headroom=np.where(deficit > 0, 0.0, self.gen_cap - gen),
            deficit=deficit,
        )

    def realise(self, sold_kwh: np.ndarray, surplus_kwh: np.ndarray) -> Realised:
        """Storages move as planned; extra turbine output for sales; penalties (docstring)."""
        p = self._plan
        if p is None:
            raise RuntimeError("realise() before plan()")
        moves, t = p["moves"], self._t
        extra_gen = np.maximum(sold_kwh - surplus_kwh, 0.0)
        gen = p["gen"] + extra_gen
        before = self.level
        level = th.level_after(self.keep * before, moves, self.eta_c, self.eta_d)
        self.level = np.minimum(np.maximum(level, self.soc_lo * self.cap), self.soc_hi * self.cap)
        self.prev = moves
        active = np.abs(moves[0]) > _TOL
        self.count = self.count + active
        residue = np.zeros_like(gen)
        if self.day_end[t]:
            residue = np.abs(self.level - self.target).sum(axis=0)
            self.count = np.zeros_like(self.count)
        heat_in = np.maximum(moves[1], 0.0)
        heat_out = np.maximum(-moves[1], 0.0)
        balance = p["supply"] + heat_out - p["heat"] - heat_in  # >0 vented, <0 unmet
        unmet = np.maximum(-balance, 0.0)
        prm = self.params
        penalty = (
            prm.voll_heat * unmet + prm.voll_cool * p["cool_unmet"] + (prm.residue_price * residue)
        )
        extra = {
            "heat_load": p["heat"],
            "heat_recovered": self.ratio * gen,
            "heat_boiler": self.eta_boiler * p["boiler"],
            "heat_tank_charge": heat_in,
            "heat_tank_discharge": heat_out,
            "heat_vented": np.maximum(balance, 0.0) + self.ratio * extra_gen,
            "heat_unmet": unmet,
            "cool_load": p["cool"],
            "cool_chiller": p["chill"],
            "cool_ice": np.maximum(-moves[2], 0.0),
            "ice_making": np.maximum(moves[2], 0.0),
            "cool_unmet": p["cool_unmet"],
            "elec_boiler": p["boiler"],
            "elec_chiller": p["e_chill"],
            "elec_ice": p["e_ice"],
            "battery_charge": np.maximum(moves[0], 0.0),
            "battery_discharge": np.maximum(-moves[0], 0.0),
            "battery_active": active,
            "gas_m3": th.turbine_gas_m3(gen, self.eta_mt, prm.lhv_kwh_m3),
            "heat_tank_soc": self._share(1),
            "ice_soc": self._share(2),
            "residue_kwh": residue,
            "day_end": bool(self.day_end[t]),
        }
        return Realised(
            gen, generation_cost(gen, self.fleet), penalty, self._share(0, before), self.soc, extra
        )

    def features(self) -> np.ndarray:
        """Values of :data:`FEATURES` for the planned period, ``(n_mg, 7)``."""
        p, t = self._plan, self._t
        if p is None:
            raise RuntimeError("features() before plan()")
        n = self.level.shape[1]
        left = (self.n_after[t] + 1) / self.day_len[t]
        cols = (
            p["heat"] / self.thermal_scale,
            p["cool"] / self.thermal_scale,
            self._share(1),
            self._share(2),
            np.full(n, float(self.valley[t])),
            np.full(n, float(self.peak[t])),
            np.full(n, left),
        )
        return np.stack(cols, axis=1)

    def rule_setpoints(self) -> np.ndarray:
        """Set-points in [-1, 1] that reproduce the rule's moves of the planned period, (n, 3).

        Only meaningful after a rule plan (``plan(..., setpoints=None)``), which the env makes
        for every period; with set-points given, they are returned as projected.
        """
        p = self._plan
        if p is None:
            raise RuntimeError("rule_setpoints() before plan()")
        return th.move_setpoint(p["pre"], p["lo"], p["hi"]).T
