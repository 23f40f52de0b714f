"""Compiled electric physics of one market (numba kernels, :mod:`mgenv._jit`).

:func:`plan_into` is :func:`mgenv.physics.units.dispatch_plan` (with the forecast's net
production) and :func:`realise_into` is :meth:`mgenv.physics.model.ElectricModel.realise`,
each in one call and bit for bit: the same expressions per microgrid in the same order, with
``np.maximum``/``np.minimum`` as :mod:`mgenv._ufuncs`. They serve the single env's
``(n_mg,)`` state; the batched core's ``(B, n_mg)`` state keeps the numpy code.
"""

from __future__ import annotations

import numpy as np

from mgenv import _jit
from mgenv._ufuncs import maximum, minimum

#: Rows of the :func:`plan_into` output, in :class:`~mgenv.physics.units.Dispatch` order.
PLAN_ROWS = ("charge", "discharge", "self_gen", "surplus", "gen_headroom", "deficit")
#: Rows of the :func:`realise_into` output.
REALISE_ROWS = ("gen_kwh", "fuel_cost", "penalty", "soc_after")


@_jit.kernel
def plan_into(
    pv: np.ndarray,
    wind: np.ndarray,
    load: np.ndarray,
    soc: np.ndarray,
    econ: np.ndarray,
    gen_cap: np.ndarray,
    power: np.ndarray,
    fleet: np.ndarray,
    setpoint: np.ndarray,
    use_setpoint: bool,
    out: np.ndarray,
) -> None:
    """The rule-based (or set-point) dispatch of one period, as ``dispatch_plan``.

    Per microgrid, with ``net = pv + wind - load``: the battery limits of seed 001 eqs. 3-6
    (``units._limits``), the battery move (the rule: absorb a surplus, cover a deficit; or
    ``s`` in [-1, 1] times the feasible charge / discharge), the turbine's own-use output up
    to its economic output, and what is left to offer or to buy.

    Args:
        pv: PV forecast, kWh, ``(n,)``.
        wind: Wind forecast, kWh, ``(n,)``.
        load: Load forecast, kWh, ``(n,)``.
        soc: Battery state of charge, ``(n,)``.
        econ: Economic turbine output at the grid price, kWh, ``(n,)``.
        gen_cap: ``gen_kw * dt_h``, kWh, ``(n,)``.
        power: ``battery_kw * dt_h``, kWh, ``(n,)``.
        fleet: Rows ``soc_max, soc_min, battery_kwh, eta_charge, eta_discharge``, ``(5, n)``.
        setpoint: Battery set-points, ``(n,)`` (read only if ``use_setpoint``).
        use_setpoint: Whether the agents' set-points drive the battery instead of the rule.
        out: Output, float64 ``(6, n)``; rows as :data:`PLAN_ROWS` (overwritten).
    """
    for i in range(soc.shape[0]):
        net = pv[i] + wind[i] - load[i]
        cap = fleet[2, i]
        max_charge = minimum(power[i], maximum(fleet[0, i] - soc[i], 0.0) * cap / fleet[3, i])
        max_dis = minimum(power[i], maximum(soc[i] - fleet[1, i], 0.0) * cap * fleet[4, i])
        if use_setpoint:
            s = minimum(maximum(setpoint[i], -1.0), 1.0)
            charge = maximum(s, 0.0) * max_charge
            discharge = maximum(-s, 0.0) * max_dis
        else:
            charge = minimum(maximum(net, 0.0), max_charge)
            discharge = minimum(maximum(-net, 0.0), max_dis)
        after = net - charge + discharge
        deficit0 = maximum(-after, 0.0)
        self_gen = minimum(deficit0, econ[i])
        deficit = deficit0 - self_gen
        out[0, i] = charge
        out[1, i] = discharge
        out[2, i] = self_gen
        out[3, i] = maximum(after, 0.0)
        # np.where(deficit > 0, 0.0, gen_cap - self_gen)
        out[4, i] = 0.0 if deficit > 0 else gen_cap[i] - self_gen
        out[5, i] = deficit


@_jit.kernel
def realise_into(
    self_gen: np.ndarray,
    charge: np.ndarray,
    discharge: np.ndarray,
    sold: np.ndarray,
    surplus: np.ndarray,
    soc: np.ndarray,
    fleet: np.ndarray,
    out: np.ndarray,
) -> None:
    """``ElectricModel.realise``: turbine output, its fuel cost and the battery's next SOC.

    Per microgrid: ``gen = self_gen + max(sold - surplus, 0)`` (sales beyond the renewable
    surplus come from the turbine), fuel ``a gen^2 + b gen`` (``units.generation_cost``),
    no penalty, and ``soc' = soc + (eta_c charge - discharge / eta_d) / capacity``
    (``units.step_battery``: a microgrid without battery keeps its SOC).

    Args:
        self_gen: Planned own-use turbine output, kWh, ``(n,)``.
        charge: Planned battery charge, kWh, ``(n,)``.
        discharge: Planned battery discharge, kWh, ``(n,)``.
        sold: Energy each microgrid sold, kWh, ``(n,)``.
        surplus: Renewable surplus it had to sell, kWh, ``(n,)``.
        soc: State of charge before the period, ``(n,)``.
        fleet: Rows ``battery_kwh, eta_charge, eta_discharge, gen_cost_a, gen_cost_b``,
            ``(5, n)``.
        out: Output, float64 ``(4, n)``; rows as :data:`REALISE_ROWS` (overwritten).
    """
    for i in range(soc.shape[0]):
        gen = self_gen[i] + maximum(sold[i] - surplus[i], 0.0)
        out[0, i] = gen
        out[1, i] = fleet[3, i] * (gen * gen) + fleet[4, i] * gen  # gen**2 is gen * gen
        out[2, i] = 0.0
        cap = fleet[0, i]
        if cap > 0:
            out[3, i] = soc[i] + (fleet[1, i] * charge[i] - discharge[i] / fleet[2, i]) / cap
        else:
            out[3, i] = soc[i]
