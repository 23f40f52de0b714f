"""Parametric daily profiles of PV, wind and electric load, with seeded forecast noise.

One episode's profiles are drawn at ``reset`` for every period at once, as arrays of shape
``(horizon, n)``; a step only indexes them. Two random streams are used, so that changing
one subsystem never shifts the other: ``weather`` draws cloudiness, wind speeds and the
renewables' forecast errors; ``load`` draws load levels and load forecast errors.

The shapes are the usual textbook ones (the papers print only plots of them):

* PV: a half-sine between sunrise and sunset, attenuated by a daily cloudiness drawn
  uniformly in ``[0, cloudiness_max]`` (shared by the region) plus a small local term.
* Wind: hub-height speed as an AR(1) process around ``wind_mean_ms`` (shared by the region,
  with local gusts), through a cubic power curve (cut-in 3, rated 12, cut-out 25 m/s).
* Load: a residential double peak (08:00 and 19:00) for microgrids and a commercial daytime
  plateau for large users, each scaled to its peak kW with a daily level factor.

The realised value is ``forecast * (1 + forecast_error * N(0, 1))`` clipped at 0: agents see
the forecast; settlement compensates the difference (seed 002's forecast-error compensation).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mgenv import _jit
from mgenv.config import EnvConfig, tile
from mgenv.physics.kernels import profiles_into, wind_speeds_into

CUT_IN_MS, RATED_MS, CUT_OUT_MS = 3.0, 12.0, 25.0
#: The regional wind speed's AR(1) coefficient and its std as a share of the mean speed.
WIND_PHI, WIND_SIGMA_SHARE = 0.85, 0.25
#: ``(0, 0)``: "no tabulated data" for :func:`~mgenv.physics.kernels.profiles_into`.
_NO_DATA = np.zeros((0, 0))


class DayProfiles(NamedTuple):
    """Forecast and realised energy per period, kWh; arrays of shape ``(horizon, n)``."""

    pv_forecast: np.ndarray  # (H, n_mg)
    wind_forecast: np.ndarray  # (H, n_mg)
    load_forecast: np.ndarray  # (H, n_mg)
    user_load_forecast: np.ndarray  # (H, n_user)
    pv_real: np.ndarray  # (H, n_mg)
    wind_real: np.ndarray  # (H, n_mg)
    load_real: np.ndarray  # (H, n_mg)
    user_load_real: np.ndarray  # (H, n_user)


def period_hours(cfg: EnvConfig) -> np.ndarray:
    """Hour of day at the middle of each period, h, shape ``(horizon,)``."""
    return (cfg.start_hour + (np.arange(cfg.horizon) + 0.5) * cfg.dt_h) % 24.0


def pv_shape(hours: np.ndarray, sunrise_h: float, sunset_h: float) -> np.ndarray:
    """Clear-sky PV output per kW peak, in [0, 1], shape of ``hours``."""
    x = (hours - sunrise_h) / (sunset_h - sunrise_h)
    return np.where((x > 0) & (x < 1), np.sin(np.pi * np.clip(x, 0.0, 1.0)), 0.0)


def wind_power_curve(speed_ms: np.ndarray) -> np.ndarray:
    """Wind turbine output per kW rated, in [0, 1]: cubic between cut-in and rated speed."""
    ramp = (speed_ms**3 - CUT_IN_MS**3) / (RATED_MS**3 - CUT_IN_MS**3)
    out = np.clip(ramp, 0.0, 1.0)
    return np.where((speed_ms < CUT_IN_MS) | (speed_ms >= CUT_OUT_MS), 0.0, out)


def residential_load_shape(hours: np.ndarray) -> np.ndarray:
    """Residential electric load per kW peak: base plus morning and evening peaks, max 1."""
    raw = (
        0.45
        + 0.30 * np.exp(-0.5 * ((hours - 8.0) / 1.5) ** 2)
        + 0.55 * np.exp(-0.5 * ((hours - 19.0) / 2.0) ** 2)
    )
    return np.asarray(raw, dtype=np.float64).clip(0.0, 1.0)


def commercial_load_shape(hours: np.ndarray) -> np.ndarray:
    """Commercial load per kW peak: night base 0.35, a daytime plateau 09:00-18:00, max 1."""
    day = 1.0 / (1.0 + np.exp(-(hours - 8.5) * 2.0)) / (1.0 + np.exp((hours - 18.5) * 2.0))
    return np.asarray(0.35 + 0.65 * day, dtype=np.float64)


def _wind_speeds(h: int, n: int, mean_ms: float, rng: np.random.Generator) -> np.ndarray:
    """Regional AR(1) wind speed (m/s) with local gusts, shape ``(h, n)``."""
    phi, sigma = WIND_PHI, WIND_SIGMA_SHARE * mean_ms
    shocks = rng.normal(0.0, sigma * np.sqrt(1.0 - phi**2), size=h)
    regional = np.empty(h)
    level = mean_ms + rng.normal(0.0, sigma)
    for t in range(h):  # a loop over periods at reset, not over participants in a step
        level = mean_ms + phi * (level - mean_ms) + shocks[t]
        regional[t] = level
    local = 1.0 + 0.1 * rng.standard_normal((h, n))
    # np.maximum is what np.clip(x, 0.0, None) calls, without the wrapper's cost.
    return np.maximum(regional[:, None] * local, 0.0)


def _realise(forecast: np.ndarray, rel_std: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(forecast.shape)
    return np.maximum(forecast * (1.0 + rel_std * noise), 0.0)


class ProfileBases(NamedTuple):
    """The deterministic factors of :func:`draw_profiles` (per config, not per episode)."""

    pv_shape: np.ndarray  # (H, 1) clear-sky PV per kW peak
    load_shape: np.ndarray  # (H, 1) residential load per kW peak
    user_shape: np.ndarray  # (H, 1) large users' load per kW peak
    pv_kw: np.ndarray  # (n_mg,)
    wind_kw: np.ndarray  # (n_mg,)
    load_kw: np.ndarray  # (n_mg,)
    user_kw: np.ndarray  # (n_user,)


def profile_bases(cfg: EnvConfig) -> ProfileBases:
    """The factors of :func:`draw_profiles` that do not depend on the random streams."""
    p, n, nu = cfg.profiles, cfg.n_microgrids, cfg.n_users
    hours = period_hours(cfg)
    flat = p.user_load_shape == "flat"
    user_shape = np.ones_like(hours) if flat else commercial_load_shape(hours)
    return ProfileBases(
        pv_shape=pv_shape(hours, p.sunrise_h, p.sunset_h)[:, None],
        load_shape=residential_load_shape(hours)[:, None],
        user_shape=user_shape[:, None],
        pv_kw=tile(cfg.fleet.pv_kw, n),
        wind_kw=tile(cfg.fleet.wind_kw, n),
        load_kw=tile(cfg.fleet.load_kw, n),
        user_kw=tile(cfg.users.user_load_kw, nu),
    )


def draw_profiles(
    cfg: EnvConfig,
    weather: np.random.Generator,
    load: np.random.Generator,
    bases: ProfileBases | None = None,
) -> DayProfiles:
    """Draw one episode's forecasts and realisations for every microgrid and user.

    Args:
        cfg: The environment config (horizon, start hour, units, profile parameters).
        weather: Stream for cloudiness, wind and renewable forecast errors.
        load: Stream for load levels and load forecast errors.
        bases: ``profile_bases(cfg)``, if the caller keeps it across episodes (same result).

    Returns:
        The episode's :class:`DayProfiles` in kWh per period.
    """
    p, dt = cfg.profiles, cfg.dt_h
    h, n, nu = cfg.horizon, cfg.n_microgrids, cfg.n_users
    b = profile_bases(cfg) if bases is None else bases
    if _jit.ENABLED:  # the same draws, then two kernel calls for the arithmetic
        return _draw_profiles_kernel(cfg, weather, load, b)
    cloud = weather.uniform(0.0, p.cloudiness_max) + 0.05 * weather.standard_normal(n)
    clear = 1.0 - np.clip(cloud, 0.0, 0.95)
    pv_f = b.pv_shape * clear * b.pv_kw * dt
    speeds = _wind_speeds(h, n, p.wind_mean_ms, weather)
    wind_f = wind_power_curve(speeds) * b.wind_kw * dt
    level = 1.0 + p.load_noise * load.standard_normal(n)
    load_f = b.load_shape * level * b.load_kw * dt
    ulevel = 1.0 + p.load_noise * load.standard_normal(nu)
    user_f = b.user_shape * ulevel * b.user_kw * dt
    # Tabulated data are energies per period as printed (seed 002 Tables 8-9), not kW.
    if p.pv_data_kwh:
        pv_f = np.asarray(p.pv_data_kwh, dtype=np.float64)[:h]
    if p.load_data_kwh:
        load_f = np.asarray(p.load_data_kwh, dtype=np.float64)[:h]
    pv_f, wind_f, load_f, user_f = (np.maximum(a, 0.0) for a in (pv_f, wind_f, load_f, user_f))
    err = p.forecast_error
    return DayProfiles(
        pv_forecast=pv_f,
        wind_forecast=wind_f,
        load_forecast=load_f,
        user_load_forecast=user_f,
        pv_real=_realise(pv_f, err, weather),
        wind_real=_realise(wind_f, err, weather),
        load_real=_realise(load_f, err, load),
        user_load_real=_realise(user_f, err, load),
    )


def _draw_profiles_kernel(
    cfg: EnvConfig, weather: np.random.Generator, load: np.random.Generator, b: ProfileBases
) -> DayProfiles:
    """:func:`draw_profiles` with its arithmetic in kernels (the same numbers).

    Every draw is the numpy code's call, with the same arguments and, per stream, in the same
    order (so the streams end in the same state); the kernels only consume the drawn arrays.
    The fields are views of two arrays, ``(6, h, n)`` and ``(2, h, n_user)``.
    """
    cloud_u = weather.uniform(0.0, cfg.profiles.cloudiness_max)
    # Every later draw of each stream is a standard normal, drawn one value after the other
    # whatever the call sizes (and ``normal(0, s)`` is ``0 + s * z`` of the next one), so one
    # call per stream gives the numpy code's values in its order, for three calls instead of
    # ten. Weather: cloud_z (n), _wind_speeds's shocks (h), level (1) and local_z (h, n),
    # then _realise's PV and wind noise (h, n each); load: level_z (n), user_level_z
    # (n_user), then _realise's load (h, n) and users' (h, n_user) noise.
    n_weather, n_load = normals_per_episode(cfg)
    wz = weather.standard_normal(n_weather)
    lz = load.standard_normal(n_load)
    return profiles_from_draws(cfg, cloud_u, wz, lz, b)


def normals_per_episode(cfg: EnvConfig) -> tuple[int, int]:
    """The standard normals an episode's profiles draw from the weather and load streams."""
    h, n, nu = cfg.horizon, cfg.n_microgrids, cfg.n_users
    return n + h + 1 + 3 * h * n, n + nu + h * n + h * nu


def profiles_from_draws(
    cfg: EnvConfig, cloud_u: float, wz: np.ndarray, lz: np.ndarray, b: ProfileBases
) -> DayProfiles:
    """:func:`draw_profiles`' profiles (kernels on) from its draws.

    Args:
        cfg: The environment config.
        cloud_u: The weather stream's ``uniform(0.0, cloudiness_max)``.
        wz: Its standard normals after it, ``normals_per_episode(cfg)[0]`` of them.
        lz: The load stream's, ``normals_per_episode(cfg)[1]``.
        b: ``profile_bases(cfg)``.
    """
    p, dt = cfg.profiles, cfg.dt_h
    h, n, nu = cfg.horizon, cfg.n_microgrids, cfg.n_users
    hn = h * n
    cloud_z = wz[:n]
    phi, sigma = WIND_PHI, WIND_SIGMA_SHARE * p.wind_mean_ms
    shocks = 0.0 + sigma * np.sqrt(1.0 - phi**2) * wz[n : n + h]  # normal(0.0, scale, size=h)
    level = p.wind_mean_ms + (0.0 + sigma * float(wz[n + h]))
    at = n + h + 1
    local_z = wz[at : at + hn].reshape(h, n)
    level_z, user_level_z = lz[:n], lz[n : n + nu]
    at_l = n + nu
    noise = (  # _realise's draws (every forecast has shape (h, n), the users' (h, n_user))
        wz[at + hn : at + 2 * hn].reshape(h, n),
        wz[at + 2 * hn :].reshape(h, n),
        lz[at_l : at_l + hn].reshape(h, n),
        lz[at_l + hn :].reshape(h, nu),
    )
    speed = np.empty((h, n))
    wind_speeds_into(shocks, level, local_z, p.wind_mean_ms, phi, speed)
    pv_data = np.asarray(p.pv_data_kwh, dtype=np.float64)[:h] if p.pv_data_kwh else _NO_DATA
    load_data = np.asarray(p.load_data_kwh, dtype=np.float64)[:h] if p.load_data_kwh else _NO_DATA
    out, out_user = np.empty((6, h, n)), np.empty((2, h, nu))
    profiles_into(
        cloud_u,
        cloud_z,
        b.pv_shape,
        b.pv_kw,
        speed,
        speed**3,  # numpy's pow, as wind_power_curve's
        b.wind_kw,
        level_z,
        b.load_shape,
        b.load_kw,
        user_level_z,
        b.user_shape,
        b.user_kw,
        np.ascontiguousarray(pv_data),
        np.ascontiguousarray(load_data),
        noise,
        (dt, p.load_noise, p.forecast_error),
        (CUT_IN_MS, CUT_OUT_MS, CUT_IN_MS**3, RATED_MS**3 - CUT_IN_MS**3),
        out,
        out_user,
    )
    return DayProfiles(out[0], out[1], out[2], out_user[0], out[3], out[4], out[5], out_user[1])
