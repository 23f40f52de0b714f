"""Battery, gas turbine and the rule-based energy management, vectorised over microgrids.

All functions are pure: they take arrays of shape ``(n_microgrids,)`` and return new arrays.
Energies are kWh per period, powers kW, state of charge (SOC) a fraction of capacity.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class FleetArrays(NamedTuple):
    """Per-microgrid unit parameters as arrays of shape ``(n_microgrids,)``."""

    gen_kw: np.ndarray
    gen_cost_a: np.ndarray  # yuan/kWh^2
    gen_cost_b: np.ndarray  # yuan/kWh
    battery_kwh: np.ndarray
    battery_kw: np.ndarray
    eta_charge: np.ndarray
    eta_discharge: np.ndarray
    soc_min: np.ndarray
    soc_max: np.ndarray
    soc_init: np.ndarray


class Dispatch(NamedTuple):
    """The rule-based dispatch of one period, kWh, each of shape ``(n_microgrids,)``."""

    charge: np.ndarray  # energy drawn from the bus into the battery
    discharge: np.ndarray  # energy delivered by the battery to the bus
    self_gen: np.ndarray  # gas turbine output that covers the microgrid's own deficit
    surplus: np.ndarray  # renewable surplus the microgrid can offer (marginal cost 0)
    gen_headroom: np.ndarray  # gas turbine energy it can still offer
    deficit: np.ndarray  # energy it must buy (market or grid)


def dispatch_of_rows(rows: np.ndarray) -> Dispatch:
    """The :class:`Dispatch` of ``plan_into``'s rows ``(6, n)``: its fields are row views."""
    # tuple.__new__ builds the NamedTuple as its constructor does, for less; indexing the
    # rows avoids iterating the matrix (its end is a formatted IndexError)
    return tuple.__new__(Dispatch, (rows[0], rows[1], rows[2], rows[3], rows[4], rows[5]))


def battery_limits(soc: np.ndarray, f: FleetArrays, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Largest charge and discharge energies this period at the bus, kWh.

    Seed 001 eqs. 3-6: power within ``battery_kw``, SOC within ``[soc_min, soc_max]`` of
    capacity, charging efficiency applied on the way in, discharging on the way out.

    Returns:
        ``(max_charge, max_discharge)``, each of shape ``(n,)``, non-negative.
    """
    return _limits(soc, f, f.battery_kw * dt_h)


def _limits(
    soc: np.ndarray, f: FleetArrays, power_kwh: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`battery_limits` with the per-period power limit ``battery_kw * dt_h`` given."""
    max_charge = np.minimum(
        power_kwh, np.maximum(f.soc_max - soc, 0.0) * f.battery_kwh / f.eta_charge
    )
    max_dis = np.minimum(
        power_kwh, np.maximum(soc - f.soc_min, 0.0) * f.battery_kwh * f.eta_discharge
    )
    return max_charge, max_dis


def step_battery(
    soc: np.ndarray, charge: np.ndarray, discharge: np.ndarray, f: FleetArrays
) -> np.ndarray:
    """Next state of charge after charging/discharging the given bus energies (kWh).

    ``soc' = soc + (eta_c * charge - discharge / eta_d) / capacity``; microgrids without a
    battery (capacity 0) keep their SOC.
    """
    cap = np.where(f.battery_kwh > 0, f.battery_kwh, 1.0)
    delta = (f.eta_charge * charge - discharge / f.eta_discharge) / cap
    return np.where(f.battery_kwh > 0, soc + delta, soc)


def generation_cost(gen_kwh: np.ndarray, f: FleetArrays) -> np.ndarray:
    """Gas turbine fuel cost ``a q^2 + b q`` in yuan for output ``q`` kWh (convex)."""
    return np.asarray(f.gen_cost_a * gen_kwh**2 + f.gen_cost_b * gen_kwh)


def marginal_cost(gen_kwh: np.ndarray, f: FleetArrays) -> np.ndarray:
    """Marginal generation cost ``b + 2 a q`` at output ``q`` kWh, yuan/kWh."""
    return np.asarray(f.gen_cost_b + 2.0 * f.gen_cost_a * gen_kwh)


def economic_output(price: float, cap_kwh: np.ndarray, f: FleetArrays) -> np.ndarray:
    """Output at which marginal cost reaches ``price``, within ``[0, cap_kwh]``, kWh.

    With a linear cost (``a = 0``) the unit runs at full output when ``b < price``, else not.
    """
    linear = np.where(f.gen_cost_b < price, cap_kwh, 0.0)
    q = np.divide(price - f.gen_cost_b, 2.0 * f.gen_cost_a, out=linear, where=f.gen_cost_a > 0)
    return np.asarray(np.minimum(np.maximum(q, 0.0), cap_kwh))


def rule_dispatch(
    renewables: np.ndarray,
    load: np.ndarray,
    soc: np.ndarray,
    grid_price: float,
    f: FleetArrays,
    dt_h: float,
    battery_setpoint: np.ndarray | None = None,
) -> Dispatch:
    """Self-consumption energy management on the period's forecast.

    Rules, in order: the battery absorbs a renewable surplus and covers a deficit within its
    limits; a remaining deficit is covered by the microgrid's own gas turbine as far as its
    marginal cost stays below the grid price; what is left is bought. A microgrid with a
    deficit left is a buyer for the period and offers nothing (its turbine's next kWh would
    cost more than the grid's); otherwise it offers its surplus (marginal cost 0) and the rest
    of its gas turbine capacity (seed 000's bidding volume).

    Args:
        renewables: PV + wind forecast, kWh, shape ``(n,)``.
        load: Electric load forecast, kWh, shape ``(n,)``.
        soc: State of charge, shape ``(n,)``.
        grid_price: Grid purchase price this period, yuan/kWh.
        f: Unit parameters.
        dt_h: Period length, h.
        battery_setpoint: Optional agent set-point per microgrid in [-1, 1]: ``s > 0`` charges
            ``s`` times the largest feasible charge (from surplus or, beyond it, bought),
            ``s < 0`` discharges ``-s`` times the largest feasible discharge. Projected onto
            the feasible set by construction (never rejected). None: the rule above.

    Returns:
        The :class:`Dispatch`; every field non-negative.
    """
    gen_cap = f.gen_kw * dt_h
    econ = economic_output(grid_price, gen_cap, f)
    return dispatch_plan(
        renewables - load, soc, econ, gen_cap, f.battery_kw * dt_h, f, battery_setpoint
    )


def dispatch_plan(
    net: np.ndarray,
    soc: np.ndarray,
    econ_kwh: np.ndarray,
    gen_cap_kwh: np.ndarray,
    power_kwh: np.ndarray,
    f: FleetArrays,
    battery_setpoint: np.ndarray | None = None,
) -> Dispatch:
    """:func:`rule_dispatch` from its per-fleet and per-price parts, computed by the caller.

    A physics model computes the generator capacity and battery power per period once and
    the economic output once per grid price, instead of every period (same values).

    Args:
        net: Renewables minus load forecast, kWh, ``(n,)``.
        soc: State of charge, ``(n,)``.
        econ_kwh: :func:`economic_output` at the period's grid price, kWh, ``(n,)``.
        gen_cap_kwh: ``gen_kw * dt_h``, kWh, ``(n,)``.
        power_kwh: ``battery_kw * dt_h``, kWh, ``(n,)``.
        f: Unit parameters.
        battery_setpoint: As in :func:`rule_dispatch`.
    """
    max_charge, max_dis = _limits(soc, f, power_kwh)
    if battery_setpoint is None:
        charge = np.minimum(np.maximum(net, 0.0), max_charge)
        discharge = np.minimum(np.maximum(-net, 0.0), max_dis)
    else:
        s = np.minimum(np.maximum(battery_setpoint, -1.0), 1.0)
        charge = np.maximum(s, 0.0) * max_charge
        discharge = np.maximum(-s, 0.0) * max_dis
    after = net - charge + discharge
    deficit0 = np.maximum(-after, 0.0)
    self_gen = np.minimum(deficit0, econ_kwh)
    deficit = deficit0 - self_gen
    return Dispatch(
        charge=charge,
        discharge=discharge,
        self_gen=self_gen,
        surplus=np.maximum(after, 0.0),
        gen_headroom=np.where(deficit > 0, 0.0, gen_cap_kwh - self_gen),
        deficit=deficit,
    )
