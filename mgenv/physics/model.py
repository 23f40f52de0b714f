"""The physics model interface and the electric-only microgrid model.

The core calls a physics model twice per period (DESIGN.md stages 1 and 5):

* :meth:`PhysicsModel.plan` before the market: from the period's forecasts, the model's own
  state (storages) and, with ``dispatch="agent"``, the microgrids' set-points, the dispatch of
  the period, summarised for the market as a :class:`~mgenv.physics.units.Dispatch`
  (renewable surplus, generator headroom, deficit, all kWh).
* :meth:`PhysicsModel.realise` after settlement: given what each microgrid sold, its
  generators' output and fuel cost, penalties (e.g. unmet thermal demand at a value of lost
  load), and the storages' next state.

A model owns its state arrays (shape ``(n_microgrids,)``) and is deep-copyable. To add one
(the CCHE model of seed 001), write a class with this interface and add it to
:data:`MODELS`; ``EnvConfig.physics`` then selects it. Extra observation features and action
set-points of the microgrids are declared by the model (``feature_spec``, ``setpoint_names``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from mgenv import _jit
from mgenv.physics.kernels import plan_into, realise_into
from mgenv.physics.units import (
    Dispatch,
    FleetArrays,
    battery_limits,
    dispatch_of_rows,
    dispatch_plan,
    economic_output,
    generation_cost,
    step_battery,
)

if TYPE_CHECKING:
    from mgenv.config import EnvConfig


class Forecast(NamedTuple):
    """One period's forecasts for the microgrids, kWh, each ``(n_mg,)``."""

    pv: np.ndarray
    wind: np.ndarray
    load: np.ndarray


class Realised(NamedTuple):
    """What the physics did in one period, per microgrid, shape ``(n_mg,)``."""

    gen_kwh: np.ndarray  # electricity from the gas turbine, kWh
    fuel_cost: np.ndarray  # fuel bought for it (and any boilers), yuan
    penalty: np.ndarray  # penalties charged to the microgrid (e.g. lost load), yuan
    soc_before: np.ndarray  # battery SOC at the start of the period
    soc_after: np.ndarray  # battery SOC at the end of the period
    extra: dict[str, Any]  # model-specific arrays (thermal balances, tank states, ...)


_new = tuple.__new__  # builds a NamedTuple as its constructor does, for less


def realised_of(rows: np.ndarray, soc_before: np.ndarray) -> Realised:
    """The electric model's :class:`Realised` from ``realise_into``'s rows ``(4, n_mg)``.

    Rows ``gen_kwh, fuel_cost, penalty, soc_after`` (``physics.kernels.REALISE_ROWS``);
    no penalties or extras beyond them.
    """
    return _new(Realised, (rows[0], rows[1], rows[2], soc_before, rows[3], {}))


class PhysicsModel(Protocol):
    """Microgrid physics; see the module docstring."""

    setpoint_names: list[str]  # extra microgrid action entries (empty with rule dispatch)
    feature_spec: list[tuple[str, float, float]]  # extra microgrid observation features

    def reset(self) -> None:
        """Put every storage in its initial state."""
        ...

    def plan(
        self, t: int, forecast: Forecast, grid_buy: float, setpoints: np.ndarray | None
    ) -> Dispatch:
        """Dispatch of period ``t``; ``setpoints`` (n_mg, len(setpoint_names)) or None."""
        ...

    def realise(self, sold_kwh: np.ndarray, surplus_kwh: np.ndarray) -> Realised:
        """Outcome of the planned period given the energy sold and the surplus available."""
        ...

    @property
    def soc(self) -> np.ndarray:
        """Battery state of charge, fraction of capacity, ``(n_mg,)``."""
        ...

    def features(self) -> np.ndarray:
        """Values of ``feature_spec`` for the current period, ``(n_mg, len(feature_spec))``."""
        ...

    def rule_setpoints(self) -> np.ndarray:
        """Set-points that reproduce the rule-based plan of the current period.

        Shape ``(n_mg, len(setpoint_names))``, in [-1, 1]; used for policies that give none.
        """
        ...


#: Placeholder set-points of :func:`plan_into` under rule dispatch (never read).
_NO_SETPOINTS = np.zeros(0)


class ElectricModel:
    """Electric-only microgrids: PV, wind, load, battery and gas turbine (rule-based).

    Dispatch by :func:`~mgenv.physics.units.rule_dispatch` (with ``dispatch="agent"``, one
    set-point per microgrid drives the battery instead); the gas turbine produces what the
    microgrid covers itself plus what it sold beyond its renewable surplus, at the convex cost
    ``a q^2 + b q``; the battery moves as planned.
    """

    setpoint_names: list[str] = ["battery"]  # noqa: RUF012 (read-only declaration)
    feature_spec: list[tuple[str, float, float]] = []  # noqa: RUF012

    def __init__(self, cfg: EnvConfig, fleet: FleetArrays) -> None:
        self.fleet = fleet
        self.dt_h = cfg.dt_h
        self._soc = fleet.soc_init.copy()  # (n_mg,)
        self._plan: Dispatch | None = None
        self._plan_rows: np.ndarray | None = None  # the plan's rows if plan_into made it
        # Constant per fleet, or per grid price (a few values a day): computed once rather
        # than every period, with the same formulas as rule_dispatch / step_battery.
        self._gen_cap = fleet.gen_kw * cfg.dt_h  # (n_mg,) kWh
        self._power = fleet.battery_kw * cfg.dt_h  # (n_mg,) kWh
        self._econ: dict[float, np.ndarray] = {}  # grid price -> economic output, kWh
        self._all_batteries = bool((fleet.battery_kwh > 0).all())
        # The kernels' fleet parameters as one (5, n_mg) array each (fewer arguments).
        f = fleet
        self._plan_fleet = np.stack(
            (f.soc_max, f.soc_min, f.battery_kwh, f.eta_charge, f.eta_discharge)
        ).astype(np.float64)
        self._realise_fleet = np.stack(
            (f.battery_kwh, f.eta_charge, f.eta_discharge, f.gen_cost_a, f.gen_cost_b)
        ).astype(np.float64)

    @property
    def soc(self) -> np.ndarray:
        """Battery state of charge, ``(n_mg,)``."""
        return self._soc

    def reset(self) -> None:
        """Batteries back to ``soc_init``."""
        self._soc = self.fleet.soc_init.copy()
        self._plan = None
        self._plan_rows = None

    def plan(
        self, t: int, forecast: Forecast, grid_buy: float, setpoints: np.ndarray | None
    ) -> Dispatch:
        """Rule-based dispatch on the forecast, or the agents' battery set-points."""
        econ, gen_cap, power, plan_fleet = self.plan_constants(grid_buy)
        if _jit.ENABLED and self._soc.ndim == 1:  # one market: one kernel call, same numbers
            out = np.empty((6, self._soc.shape[0]))
            use = setpoints is not None
            plan_into(
                forecast.pv,
                forecast.wind,
                forecast.load,
                self._soc,
                econ,
                gen_cap,
                power,
                plan_fleet,
                setpoints[:, 0] if setpoints is not None else _NO_SETPOINTS,
                use,
                out,
            )
            self.adopt_plan(out)
            plan = self.current_plan()
            assert plan is not None  # just adopted
            return plan
        self._plan_rows = None
        self._plan = dispatch_plan(
            forecast.pv + forecast.wind - forecast.load,
            self._soc,
            econ,
            self._gen_cap,
            self._power,
            self.fleet,
            None if setpoints is None else setpoints[:, 0],
        )
        return self._plan

    def adopt_plan(self, rows: np.ndarray) -> None:
        """The period's plan is ``plan_into``'s rows ``(6, n)`` (kept).

        Its :class:`Dispatch` (six row views) is made when first asked for
        (:meth:`current_plan`): a fused step hands the rows on to the next one's kernel.
        """
        self._plan_rows = rows
        self._plan = None

    def current_plan(self) -> Dispatch | None:
        """The period's :class:`Dispatch` (None before :meth:`plan`)."""
        plan = self._plan
        if plan is None and self._plan_rows is not None:
            plan = self._plan = dispatch_of_rows(self._plan_rows)
        return plan

    def plan_rows(self, dispatch: Dispatch | None) -> np.ndarray | None:
        """The rows ``(6, n)`` of the current plan if ``plan_into`` made it, else None.

        ``dispatch``: the plan the caller holds, None for "the current one, not built yet"
        (:meth:`adopt_plan`); rows are returned only if it is the current plan. For a caller
        that hands them to a kernel (:mod:`mgenv.fused`).
        """
        if dispatch is None or dispatch is self._plan:
            return self._plan_rows
        return None

    def plan_constants(
        self, grid_buy: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``plan_into``'s ``(econ, gen_cap, power, fleet)`` for a period at ``grid_buy``."""
        return self.economic(grid_buy), self._gen_cap, self._power, self._plan_fleet

    def economic(self, grid_buy: float) -> np.ndarray:
        """The turbines' economic output at the grid price, kWh ``(n,)`` (cached per price)."""
        econ = self._econ.get(grid_buy)
        if econ is None:
            if len(self._econ) >= 256:  # bounded whatever the tariff
                self._econ.clear()
            econ = self._econ[grid_buy] = economic_output(grid_buy, self._gen_cap, self.fleet)
        return econ

    def realise(self, sold_kwh: np.ndarray, surplus_kwh: np.ndarray) -> Realised:
        """Turbine output for own use and sales beyond the surplus; battery as planned."""
        d = self.current_plan()
        if d is None:
            raise RuntimeError("realise() before plan()")
        before = self._soc
        if _jit.ENABLED and before.ndim == 1:  # one market: one kernel call, same numbers
            out = np.empty((4, before.shape[0]))
            realise_into(
                d.self_gen,
                d.charge,
                d.discharge,
                sold_kwh,
                surplus_kwh,
                before,
                self._realise_fleet,
                out,
            )
            return self.adopt(out)
        gen = d.self_gen + np.maximum(sold_kwh - surplus_kwh, 0.0)
        f = self.fleet
        if self._all_batteries:  # step_battery without its masks (every capacity is > 0)
            self._soc = before + (f.eta_charge * d.charge - d.discharge / f.eta_discharge) / (
                f.battery_kwh
            )
        else:
            self._soc = step_battery(before, d.charge, d.discharge, f)
        return Realised(gen, generation_cost(gen, f), np.zeros(gen.shape), before, self._soc, {})

    def kernel_inputs(self) -> tuple[Dispatch, np.ndarray, np.ndarray]:
        """What ``realise_into`` reads: the plan, the SOC before the period, the fleet rows.

        For a caller that runs the kernel itself (``mgenv.period_kernel``), then hands its
        rows to :meth:`adopt`.
        """
        plan = self.current_plan()
        if plan is None:
            raise RuntimeError("realise() before plan()")
        return plan, self._soc, self._realise_fleet

    def fleet_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The fleet's constants the kernels read, made at construction and only read.

        ``(realise_into's fleet rows (5, n), plan_into's (5, n), gen_kw * dt_h,
        battery_kw * dt_h)``, the last two in kWh ``(n,)``; for a caller that packs them
        once (:class:`mgenv.fused.FusedPeriod`).
        """
        return self._realise_fleet, self._plan_fleet, self._gen_cap, self._power

    def adopt_soc(self, soc: np.ndarray) -> None:
        """The SOC after the period, ``realise_into``'s row 3 (its :class:`Realised` unmade)."""
        self._soc = soc

    def adopt(self, rows: np.ndarray) -> Realised:
        """The period's :class:`Realised` from ``realise_into``'s rows (4, n); the SOC moves on."""
        realised = realised_of(rows, self._soc)
        self._soc = realised.soc_after
        return realised

    def features(self) -> np.ndarray:
        """No extra features."""
        return np.zeros((self._soc.shape[0], 0))

    def rule_setpoints(self) -> np.ndarray:
        """The rule's battery move as a set-point: charge over its limit, or minus discharge."""
        d = self.current_plan()
        if d is None:
            raise RuntimeError("rule_setpoints() before plan()")
        max_charge, max_dis = battery_limits(self._soc, self.fleet, self.dt_h)
        up = np.divide(d.charge, max_charge, out=np.zeros_like(d.charge), where=max_charge > 0)
        down = np.divide(d.discharge, max_dis, out=np.zeros_like(d.charge), where=max_dis > 0)
        return np.asarray((up - down)[:, None])


# Imported last: the CCHE model (seed 001) uses this module's Forecast and Realised.
from mgenv.physics.ccche import CCHEModel  # noqa: E402

MODELS: dict[str, type] = {"electric": ElectricModel, "ccche": CCHEModel}
