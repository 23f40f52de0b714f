"""Compiled electric physics of one market (numba kernels, :mod:`mgenv._jit`).

:func:`plan_into` is :func:`mgenv.physics.units.dispatch_plan` (with the forecast's net
production) and :func:`realise_into` is :meth:`mgenv.physics.model.ElectricModel.realise`,
each in one call and bit for bit: the same expressions per microgrid in the same order, with
``np.maximum``/``np.minimum`` as :mod:`mgenv._ufuncs`. They serve the single env's
``(n_mg,)`` state; the batched core runs their per-microgrid cores (:func:`plan_unit`,
:func:`realise_unit`) copy by copy (:mod:`mgenv.batched.physics`).
"""

from __future__ import annotations

import numpy as np

from mgenv import _jit
from mgenv._ufuncs import clip, maximum, minimum

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
    n = soc.shape[0]
    # numba does not bound-check: lengths numpy would refuse to broadcast must raise
    if pv.shape[0] != n or wind.shape[0] != n or load.shape[0] != n:
        raise ValueError("dispatch inputs of different lengths")
    if econ.shape[0] != n or gen_cap.shape[0] != n or power.shape[0] != n:
        raise ValueError("dispatch inputs of different lengths")
    if (use_setpoint and setpoint.shape[0] != n) or fleet.shape[1] != n or out.shape[1] != n:
        raise ValueError("set-points, fleet or output of a different length")
    for i in range(n):
        s = setpoint[i] if use_setpoint else 0.0
        unit = plan_unit(
            pv[i] + wind[i] - load[i],
            soc[i],
            econ[i],
            gen_cap[i],
            power[i],
            fleet,
            i,
            s,
            use_setpoint,
        )
        for k in range(6):
            out[k, i] = unit[k]


@_jit.inlined
def plan_unit(
    net: float,
    soc: float,
    econ: float,
    gen_cap: float,
    power: float,
    fleet: np.ndarray,
    i: int,
    setpoint: float,
    use_setpoint: bool,
) -> tuple[float, float, float, float, float, float]:
    """:func:`plan_into` of microgrid ``i``: its :data:`PLAN_ROWS` values (kWh).

    ``net`` is ``pv + wind - load``; ``fleet`` as :func:`plan_into`'s (column ``i`` read).
    """
    cap = fleet[2, i]
    max_charge = minimum(power, maximum(fleet[0, i] - soc, 0.0) * cap / fleet[3, i])
    max_dis = minimum(power, maximum(soc - fleet[1, i], 0.0) * cap * fleet[4, i])
    if use_setpoint:
        s = minimum(maximum(setpoint, -1.0), 1.0)
        charge = maximum(s, 0.0) * max_charge
        discharge = maximum(-s, 0.0) * max_dis
    else:
        charge = minimum(maximum(net, 0.0), max_charge)
        discharge = minimum(maximum(-net, 0.0), max_dis)
    after = net - charge + discharge
    deficit0 = maximum(-after, 0.0)
    self_gen = minimum(deficit0, econ)
    deficit = deficit0 - self_gen
    # np.where(deficit > 0, 0.0, gen_cap - self_gen)
    headroom = 0.0 if deficit > 0 else gen_cap - self_gen
    return charge, discharge, self_gen, maximum(after, 0.0), headroom, deficit


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
    n = soc.shape[0]
    # numba does not bound-check: lengths numpy would refuse to broadcast must raise
    if self_gen.shape[0] != n or charge.shape[0] != n or discharge.shape[0] != n:
        raise ValueError("realise inputs of different lengths")
    if sold.shape[0] != n or surplus.shape[0] != n:
        raise ValueError("realise inputs of different lengths")
    if fleet.shape[1] != n or out.shape[1] != n:
        raise ValueError("fleet or output of a different length")
    for i in range(n):
        unit = realise_unit(
            self_gen[i], charge[i], discharge[i], sold[i], surplus[i], soc[i], fleet, i
        )
        for k in range(4):
            out[k, i] = unit[k]


@_jit.inlined
def realise_unit(
    self_gen: float,
    charge: float,
    discharge: float,
    sold: float,
    surplus: float,
    soc: float,
    fleet: np.ndarray,
    i: int,
) -> tuple[float, float, float, float]:
    """:func:`realise_into` of microgrid ``i``: its :data:`REALISE_ROWS` values."""
    gen = self_gen + maximum(sold - surplus, 0.0)
    cost = fleet[3, i] * (gen * gen) + fleet[4, i] * gen  # gen**2 is gen * gen
    cap = fleet[0, i]
    after = soc + (fleet[1, i] * charge - discharge / fleet[2, i]) / cap if cap > 0 else soc
    return gen, cost, 0.0, after


@_jit.kernel
def wind_speeds_into(
    shocks: np.ndarray,
    level: float,
    local_z: np.ndarray,
    mean_ms: float,
    phi: float,
    out: np.ndarray,
) -> None:
    """``profiles._wind_speeds`` after its draws: the regional AR(1) speed with local gusts.

    ``level_t = mean + phi (level_{t-1} - mean) + shock_t``; the speed at microgrid ``j`` is
    ``max(level_t (1 + 0.1 z_tj), 0)``, m/s.

    Args:
        shocks: The AR(1) shocks, m/s, ``(h,)``.
        level: The initial regional level, m/s.
        local_z: Standard normals of the gusts, ``(h, n)``.
        mean_ms: Mean wind speed, m/s.
        phi: AR(1) coefficient.
        out: Output speeds, float64 ``(h, n)`` (overwritten).
    """
    for t in range(out.shape[0]):
        level = mean_ms + phi * (level - mean_ms) + shocks[t]
        for j in range(out.shape[1]):
            out[t, j] = maximum(level * (1.0 + 0.1 * local_z[t, j]), 0.0)


@_jit.kernel
def _realise_rows(forecast: np.ndarray, rel_std: float, noise: np.ndarray, out: np.ndarray) -> None:
    """``profiles._realise`` after its draw: ``max(forecast (1 + rel_std z), 0)``, in place."""
    for t in range(forecast.shape[0]):
        for j in range(forecast.shape[1]):
            out[t, j] = maximum(forecast[t, j] * (1.0 + rel_std * noise[t, j]), 0.0)


@_jit.kernel
def profiles_into(
    cloud_u: float,
    cloud_z: np.ndarray,
    pv_shape: np.ndarray,
    pv_kw: np.ndarray,
    speed: np.ndarray,
    cube: np.ndarray,
    wind_kw: np.ndarray,
    level_z: np.ndarray,
    load_shape: np.ndarray,
    load_kw: np.ndarray,
    user_level_z: np.ndarray,
    user_shape: np.ndarray,
    user_kw: np.ndarray,
    pv_data: np.ndarray,
    load_data: np.ndarray,
    noise: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    params: tuple[float, float, float],
    wind_curve: tuple[float, float, float, float],
    out: np.ndarray,
    out_user: np.ndarray,
) -> None:
    """``profiles.draw_profiles`` after its draws: every forecast and realisation, kWh.

    The numpy code's expressions, per period ``t`` and microgrid ``j`` (users alike)::

        pv   = max(pv_shape_t * (1 - clip(u + 0.05 z_j, 0, 0.95)) * pv_kw_j * dt, 0)
        wind = max(curve(speed_tj) * wind_kw_j * dt, 0)     (wind_power_curve)
        load = max(load_shape_t * (1 + load_noise z_j) * load_kw_j * dt, 0)
        real = max(forecast * (1 + forecast_error z_tj), 0)  (_realise)

    Tabulated PV or load (seed 002's tables) replace the shapes' forecasts.

    Args:
        cloud_u: The region's cloudiness draw, ``uniform(0, cloudiness_max)``.
        cloud_z: Standard normals of the local cloudiness, ``(n,)``.
        pv_shape: Clear-sky PV per kW peak, ``(h, 1)``.
        pv_kw: PV peak, kW, ``(n,)``.
        speed: Wind speeds, m/s, ``(h, n)``.
        cube: ``speed**3`` computed by numpy (whose ``pow`` may be a SIMD routine that
            differs from the C library's in the last bit), ``(h, n)``.
        wind_kw: Wind rated power, kW, ``(n,)``.
        level_z: Standard normals of the daily load levels, ``(n,)``.
        load_shape: Residential load per kW peak, ``(h, 1)``.
        load_kw: Load peak, kW, ``(n,)``.
        user_level_z: Standard normals of the users' load levels, ``(n_user,)``.
        user_shape: Users' load per kW peak, ``(h, 1)``.
        user_kw: Users' load peak, kW, ``(n_user,)``.
        pv_data: Tabulated PV, kWh, ``(h, n)``; ``(0, 0)`` for none.
        load_data: Tabulated load, kWh, ``(h, n)``; ``(0, 0)`` for none.
        noise: Forecast-error normals of PV, wind, load ``(h, n)`` and users ``(h, n_user)``.
        params: ``(dt_h, load_noise, forecast_error)``.
        wind_curve: ``(cut_in, cut_out, cut_in**3, rated**3 - cut_in**3)``, m/s and m³/s³.
        out: Output, float64 ``(6, h, n)``: PV, wind, load forecasts, then realisations.
        out_user: Output, float64 ``(2, h, n_user)``: users' forecast and realisation.
    """
    dt, load_noise, err = params
    cut_in, cut_out, cut_in3, span3 = wind_curve
    h, n = out.shape[1], out.shape[2]
    for t in range(h):
        for j in range(n):
            if pv_data.shape[0] > 0:
                pv = pv_data[t, j]
            else:
                clear = 1.0 - clip(cloud_u + 0.05 * cloud_z[j], 0.0, 0.95)
                pv = pv_shape[t, 0] * clear * pv_kw[j] * dt
            s = speed[t, j]
            ramp = clip((cube[t, j] - cut_in3) / span3, 0.0, 1.0)
            curve = 0.0 if (s < cut_in) or (s >= cut_out) else ramp
            if load_data.shape[0] > 0:
                load = load_data[t, j]
            else:
                load = load_shape[t, 0] * (1.0 + load_noise * level_z[j]) * load_kw[j] * dt
            out[0, t, j] = maximum(pv, 0.0)
            out[1, t, j] = maximum(curve * wind_kw[j] * dt, 0.0)
            out[2, t, j] = maximum(load, 0.0)
        for k in range(out_user.shape[2]):
            user = user_shape[t, 0] * (1.0 + load_noise * user_level_z[k]) * user_kw[k] * dt
            out_user[0, t, k] = maximum(user, 0.0)
    _realise_rows(out[0], err, noise[0], out[3])
    _realise_rows(out[1], err, noise[1], out[4])
    _realise_rows(out[2], err, noise[2], out[5])
    _realise_rows(out_user[0], err, noise[3], out_user[1])
