"""The batched physics' kernels: the single env's physics and profile kernels copy by copy.

:func:`profiles_copies` and :func:`wind_copies` run :func:`mgenv.physics.kernels.profiles_into`
and :func:`~mgenv.physics.kernels.wind_speeds_into` on each copy's draws;
:func:`plan_copies` and :func:`realise_copies` run the per-microgrid cores of
:func:`~mgenv.physics.kernels.plan_into` and :func:`~mgenv.physics.kernels.realise_into`
(:func:`~mgenv.physics.kernels.plan_unit`, :func:`~mgenv.physics.kernels.realise_unit`) on
each copy's state. Bit-identical per copy (the same kernels on the same numbers);
:mod:`mgenv.batched.physics` calls them with :data:`mgenv._jit.ENABLED` and keeps its numpy
code otherwise.
"""

from __future__ import annotations

import numpy as np

from mgenv import _jit
from mgenv.physics.kernels import plan_unit, profiles_into, realise_unit, wind_speeds_into


@_jit.kernel
def wind_copies(
    zw: np.ndarray, scale: float, sigma: float, mean_ms: float, phi: float, out: np.ndarray
) -> None:
    """Every copy's wind speeds (m/s, ``out`` (B, H, n)) from its weather normals.

    ``profiles._wind_speeds``'s draws, ``normal(0, scale, h)`` and ``normal(0, sigma)``, are
    ``0.0 + scale * z``; then :func:`mgenv.physics.kernels.wind_speeds_into`.
    """
    h, n = out.shape[1], out.shape[2]
    shocks = np.empty(h)
    local = np.empty((h, n))
    first = n + h + 1  # cloud (n), shocks (h), level (1), then the gusts
    for b in range(zw.shape[0]):
        for t in range(h):
            shocks[t] = 0.0 + scale * zw[b, n + t]
            for j in range(n):
                local[t, j] = zw[b, first + t * n + j]
        level = mean_ms + (0.0 + sigma * zw[b, n + h])
        wind_speeds_into(shocks, level, local, mean_ms, phi, out[b])


@_jit.kernel
def profiles_copies(
    normals: tuple[np.ndarray, np.ndarray],
    cloud: np.ndarray,
    wind: tuple[np.ndarray, np.ndarray],
    bases: tuple[np.ndarray, ...],
    data: tuple[np.ndarray, np.ndarray],
    params: tuple[float, float, float],
    wind_curve: tuple[float, float, float, float],
    out: np.ndarray,
    out_user: np.ndarray,
) -> None:
    """Every copy's profiles: :func:`mgenv.physics.kernels.profiles_into` on its draws.

    Args:
        normals: ``(zw (B, W), zl (B, L))``: the weather and load normals, in
            ``draw_profiles``' order of draws.
        cloud: Shape (B,): the regional cloudiness draws.
        wind: ``(speed, speed**3)``, (B, H, n) each (m/s, m³/s³; the cube by numpy).
        bases: :class:`~mgenv.physics.profiles.ProfileBases`.
        data: Tabulated PV and load, kWh, (H, n) or (0, 0).
        params: ``(dt_h, load_noise, forecast_error)``.
        wind_curve: As ``profiles_into``'s.
        out: Shape (B, 6, H, n): receives PV, wind, load forecasts, then realisations, kWh.
        out_user: Shape (B, 2, H, n_user): the users' forecast and realisation, kWh.
    """
    zw, zl = normals
    speed, cube = wind
    pv_shape, load_shape, user_shape, pv_kw, wind_kw, load_kw, user_kw = bases
    h, n, nu = out.shape[2], out.shape[3], out_user.shape[3]
    cloud_z, level_z, user_z = np.empty(n), np.empty(n), np.empty(nu)
    noise = (np.empty((h, n)), np.empty((h, n)), np.empty((h, n)), np.empty((h, nu)))
    at_pv, at_load = n + h + 1 + h * n, n + nu  # where the error normals start
    for b in range(zw.shape[0]):
        for j in range(n):
            cloud_z[j] = zw[b, j]
            level_z[j] = zl[b, j]
        for k in range(nu):
            user_z[k] = zl[b, n + k]
        for t in range(h):
            for j in range(n):
                noise[0][t, j] = zw[b, at_pv + t * n + j]
                noise[1][t, j] = zw[b, at_pv + h * n + t * n + j]
                noise[2][t, j] = zl[b, at_load + t * n + j]
            for k in range(nu):
                noise[3][t, k] = zl[b, at_load + h * n + t * nu + k]
        profiles_into(
            cloud[b], cloud_z, pv_shape, pv_kw, speed[b], cube[b], wind_kw, level_z,
            load_shape, load_kw, user_z, user_shape, user_kw, data[0], data[1], noise, params,
            wind_curve, out[b], out_user[b],
        )  # fmt: skip


@_jit.kernel
def plan_copies(
    forecasts: tuple[np.ndarray, np.ndarray, np.ndarray],
    soc: np.ndarray,
    consts: tuple[np.ndarray, np.ndarray, np.ndarray],
    fleet: np.ndarray,
    out: np.ndarray,
) -> None:
    """Every copy's rule-based dispatch: :func:`~mgenv.physics.kernels.plan_unit` per unit.

    Args:
        forecasts: PV, wind and load forecasts, kWh, (B, n) each.
        soc: State of charge, (B, n).
        consts: ``(economic output, gen_kw * dt_h, battery_kw * dt_h)``, kWh, (n,) each.
        fleet: ``ElectricModel._plan_fleet``, (5, n).
        out: Shape (6, B, n): receives the :class:`~mgenv.physics.units.Dispatch` fields.
    """
    pv, wind, load = forecasts
    econ, gen_cap, power = consts
    for b in range(soc.shape[0]):
        for i in range(soc.shape[1]):
            net = pv[b, i] + wind[b, i] - load[b, i]
            unit = plan_unit(net, soc[b, i], econ[i], gen_cap[i], power[i], fleet, i, 0.0, False)
            for k in range(6):
                out[k, b, i] = unit[k]


@_jit.kernel
def realise_copies(
    planned: tuple[np.ndarray, np.ndarray, np.ndarray],
    sold: np.ndarray,
    surplus: np.ndarray,
    soc: np.ndarray,
    fleet: np.ndarray,
    out: np.ndarray,
) -> None:
    """Every copy's realised period: :func:`~mgenv.physics.kernels.realise_unit` per unit.

    Args:
        planned: ``(self_gen, charge, discharge)`` of the dispatch, kWh, (B, n) each.
        sold: Energy each microgrid sold, kWh, (B, n).
        surplus: Its renewable surplus, kWh, (B, n).
        soc: State of charge before the period, (B, n).
        fleet: ``ElectricModel._realise_fleet``, (5, n).
        out: Shape (4, B, n): receives turbine output, fuel cost, penalty, SOC after.
    """
    self_gen, charge, discharge = planned
    for b in range(soc.shape[0]):
        for i in range(soc.shape[1]):
            unit = realise_unit(
                self_gen[b, i], charge[b, i], discharge[b, i], sold[b, i], surplus[b, i],
                soc[b, i], fleet, i,
            )  # fmt: skip
            for k in range(4):
                out[k, b, i] = unit[k]
