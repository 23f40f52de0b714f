"""Batched physics: B copies' profiles and electric microgrids as arrays ``(B, ...)``.

Bit-identical per copy to :func:`mgenv.physics.profiles.draw_profiles` and
:class:`mgenv.physics.model.ElectricModel` with rule dispatch (the batched core's scope): the
same elementwise operations in the same order, broadcast over a leading copy axis. With
:data:`mgenv._jit.ENABLED` the profiles' arithmetic runs copy by copy in the single env's
kernels instead (:mod:`mgenv.batched.physics_kernels`), on the same draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mgenv import _jit
from mgenv.batched.normals import profile_draws
from mgenv.batched.physics_kernels import plan_copies, profiles_copies, realise_copies, wind_copies
from mgenv.config import EnvConfig, tile
from mgenv.physics.model import ElectricModel, Forecast, Realised
from mgenv.physics.profiles import (
    CUT_IN_MS,
    CUT_OUT_MS,
    RATED_MS,
    DayProfiles,
    commercial_load_shape,
    period_hours,
    profile_bases,
    pv_shape,
    residential_load_shape,
    wind_power_curve,
)
from mgenv.physics.units import Dispatch, FleetArrays

# _wind_speeds's AR(1) coefficient and its speed std as a share of the mean wind speed.
WIND_PHI, WIND_SIGMA_SHARE = 0.85, 0.25


def _weather_normals(h: int, n: int) -> tuple[slice, slice, slice, slice, slice, slice]:
    """Slices of one copy's weather normals, in ``draw_profiles``'s order of draws.

    Cloud (n), wind shocks (h), initial wind level (1), local gusts (h n), PV and wind
    forecast errors (h n each).
    """
    hn = h * n
    edges = np.cumsum([0, n, h, 1, hn, hn, hn]).tolist()
    a, b, c, d, e, f, g = edges
    return slice(a, b), slice(b, c), slice(c, d), slice(d, e), slice(e, f), slice(f, g)


def draw_profiles_batch(
    cfg: EnvConfig,
    weather_rngs: Sequence[np.random.Generator],
    load_rngs: Sequence[np.random.Generator],
) -> DayProfiles:
    """:func:`~mgenv.physics.profiles.draw_profiles` for B copies at once.

    Each copy's generators are called once or twice (a uniform and one block of standard
    normals for the weather, one block for the load) and end in the same state as after the
    single function: ``Generator.normal(0, s)`` is ``0 + s * standard_normal()`` and
    consecutive standard-normal calls concatenate, so one block per stream gives the same
    numbers. All arithmetic is vectorised over copies.

    Args:
        cfg: The environment config.
        weather_rngs: Each copy's weather stream, length B.
        load_rngs: Each copy's load stream, length B.

    Returns:
        :class:`~mgenv.physics.profiles.DayProfiles` whose fields have shape ``(B, H, n)``, kWh.
    """
    if len(weather_rngs) != len(load_rngs):
        raise ValueError(
            f"weather_rngs has {len(weather_rngs)} generators, load_rngs {len(load_rngs)}; "
            "give one of each per copy"
        )
    zw, zl, cloud_raw = _draw_buffers(cfg, len(weather_rngs))
    # The only loop over copies: each copy's own streams, called as draw_profiles calls them.
    for b, (weather, load) in enumerate(zip(weather_rngs, load_rngs, strict=True)):
        cloud_raw[b] = _uniform_raw(weather)
        weather.standard_normal(out=zw[b])
        load.standard_normal(out=zl[b])
    return _from_draws(cfg, zw, zl, cloud_raw)


def draw_profiles_seeded(
    cfg: EnvConfig, weather_words: np.ndarray, load_words: np.ndarray
) -> DayProfiles:
    """:func:`draw_profiles_batch` from the streams' PCG64 seed words, without generators.

    The same draws computed in one kernel call (:func:`mgenv.batched.normals.profile_draws`,
    numpy's numbers bit for bit); the weather and load streams are read only here, so their
    ``Generator`` objects need not exist. Needs :data:`mgenv.batched.normals.AVAILABLE`.

    Args:
        cfg: The environment config.
        weather_words: Shape (B, 4) uint64: each copy's weather stream's seed words.
        load_words: Shape (B, 4) uint64: its load stream's.
    """
    zw, zl, cloud_raw = _draw_buffers(cfg, weather_words.shape[0])
    profile_draws(weather_words, load_words, cloud_raw, zw, zl)
    return _from_draws(cfg, zw, zl, cloud_raw)


def _draw_buffers(cfg: EnvConfig, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty ``(zw (B, W), zl (B, L), cloud_raw (B,) uint64)`` for B copies' draws."""
    h, n, nu = cfg.horizon, cfg.n_microgrids, cfg.n_users
    zw = np.empty((nb, _weather_normals(h, n)[-1].stop))
    zl = np.empty((nb, n + nu + h * n + h * nu))
    return zw, zl, np.empty(nb, dtype=np.uint64)


def _from_draws(
    cfg: EnvConfig, zw: np.ndarray, zl: np.ndarray, cloud_raw: np.ndarray
) -> DayProfiles:
    """The profiles of B copies from their draws (:func:`_draw_buffers`' layout)."""
    p, dt = cfg.profiles, cfg.dt_h
    h, n, nu, nb = cfg.horizon, cfg.n_microgrids, cfg.n_users, zw.shape[0]
    cut = _weather_normals(h, n)
    if _jit.ENABLED:
        return _profiles_compiled(cfg, zw, zl, _cloudiness(cloud_raw, p.cloudiness_max))
    hours = period_hours(cfg)
    fleet = cfg.fleet
    cloud = _cloudiness(cloud_raw, p.cloudiness_max)[:, None] + 0.05 * zw[:, cut[0]]
    clear = 1.0 - np.clip(cloud, 0.0, 0.95)
    shape = pv_shape(hours, p.sunrise_h, p.sunset_h)[None, :, None]
    pv_f = shape * clear[:, None, :] * tile(fleet.pv_kw, n) * dt
    speeds = _wind_speeds(zw[:, cut[1]], zw[:, cut[2]], zw[:, cut[3]], p.wind_mean_ms, n)
    wind_f = wind_power_curve(speeds) * tile(fleet.wind_kw, n) * dt
    level = 1.0 + p.load_noise * zl[:, :n]
    load_f = residential_load_shape(hours)[None, :, None] * level[:, None, :]
    load_f = load_f * tile(fleet.load_kw, n) * dt
    ulevel = 1.0 + p.load_noise * zl[:, n : n + nu]
    flat = p.user_load_shape == "flat"
    user_shape = np.ones_like(hours) if flat else commercial_load_shape(hours)
    user_f = user_shape[None, :, None] * ulevel[:, None, :] * tile(cfg.users.user_load_kw, nu) * dt
    if p.pv_data_kwh:
        pv_f = np.broadcast_to(np.asarray(p.pv_data_kwh, dtype=np.float64)[:h], (nb, h, n))
    if p.load_data_kwh:
        load_f = np.broadcast_to(np.asarray(p.load_data_kwh, dtype=np.float64)[:h], (nb, h, n))
    pv_f, wind_f, load_f, user_f = (np.clip(a, 0.0, None) for a in (pv_f, wind_f, load_f, user_f))
    err, hn = p.forecast_error, h * n
    real = n + nu + hn
    return DayProfiles(
        pv_forecast=pv_f,
        wind_forecast=wind_f,
        load_forecast=load_f,
        user_load_forecast=user_f,
        pv_real=_realise(pv_f, err, zw[:, cut[4]]),
        wind_real=_realise(wind_f, err, zw[:, cut[5]]),
        load_real=_realise(load_f, err, zl[:, n + nu : real]),
        user_load_real=_realise(user_f, err, zl[:, real:]),
    )


def _profiles_compiled(
    cfg: EnvConfig, zw: np.ndarray, zl: np.ndarray, cloud: np.ndarray
) -> DayProfiles:
    """:func:`draw_profiles_batch`'s arithmetic by the single env's kernels, copy by copy.

    Args:
        cfg: The environment config.
        zw: Shape (B, W): each copy's weather normals (:func:`_weather_normals`).
        zl: Shape (B, L): its load normals (levels, users' levels, load and users' errors).
        cloud: Shape (B,): the regional cloudiness draws.

    Returns:
        The profiles, fields (B, H, n) (views of two arrays).
    """
    p, h, n, nu = cfg.profiles, cfg.horizon, cfg.n_microgrids, cfg.n_users
    phi, sigma = WIND_PHI, WIND_SIGMA_SHARE * p.wind_mean_ms
    speed = np.empty((zw.shape[0], h, n))
    # Generator.normal(0, scale) is 0.0 + scale * z: the scales as numpy computes them
    wind_copies(zw, sigma * np.sqrt(1.0 - phi**2), sigma, p.wind_mean_ms, phi, speed)
    bases = profile_bases(cfg)
    data = tuple(
        np.ascontiguousarray(np.asarray(d, dtype=np.float64)[:h]) if d else np.zeros((0, 0))
        for d in (p.pv_data_kwh, p.load_data_kwh)
    )
    out, out_user = np.empty((zw.shape[0], 6, h, n)), np.empty((zw.shape[0], 2, h, nu))
    profiles_copies(
        (zw, zl),
        cloud,
        (speed, speed**3),  # numpy's pow, as wind_power_curve's
        bases,
        (data[0], data[1]),
        (cfg.dt_h, p.load_noise, p.forecast_error),
        (CUT_IN_MS, CUT_OUT_MS, CUT_IN_MS**3, RATED_MS**3 - CUT_IN_MS**3),
        out,
        out_user,
    )
    return DayProfiles(
        out[:, 0], out[:, 1], out[:, 2], out_user[:, 0], out[:, 3], out[:, 4], out[:, 5],
        out_user[:, 1],
    )  # fmt: skip


def _uniform_raw(rng: np.random.Generator) -> int:
    """The raw 64-bit output behind ``rng``'s next uniform double, for :func:`_cloudiness`.

    A scalar ``Generator.uniform`` costs ~2 us of argument handling; the raw draw advances
    the bit generator exactly as the uniform would (one 64-bit output). PCG64 only: other
    bit generators make doubles differently, so they get their uniform's output back as
    the raw value of the same double (see :func:`_cloudiness`).
    """
    bits = rng.bit_generator
    if type(bits) is np.random.PCG64:
        return int(bits.random_raw())
    # (u * 2**53) << 11 is a raw value whose double (raw >> 11) * 2**-53 is u again
    return int(rng.random() * 2.0**53) << 11


def _cloudiness(raw: np.ndarray, cmax: float) -> np.ndarray:
    """``Generator.uniform(0.0, cmax)`` from the raw outputs (B,) uint64, exactly.

    numpy's ``random_uniform`` is ``low + range * next_double`` and PCG64's ``next_double``
    is ``(next64 >> 11) * 2**-53`` (exact in float64: < 2**53 before scaling by a power of
    2); with ``low = 0.0`` a fused multiply-add rounds the same as the product.
    """
    u = np.multiply(raw >> np.uint64(11), 2.0**-53, dtype=np.float64)
    out: np.ndarray = 0.0 + cmax * u
    return out


def _wind_speeds(
    shock_z: np.ndarray, level_z: np.ndarray, local_z: np.ndarray, mean_ms: float, n: int
) -> np.ndarray:
    """The profiles' AR(1) regional wind speed with local gusts, m/s, ``(B, H, n)``.

    Args:
        shock_z: Standard normals of the shocks, ``(B, H)``.
        level_z: Standard normal of the initial level, ``(B, 1)``.
        local_z: Standard normals of the gusts, ``(B, H * n)``.
        mean_ms: Mean wind speed, m/s.
        n: Number of microgrids.
    """
    phi, sigma = WIND_PHI, WIND_SIGMA_SHARE * mean_ms
    # Generator.normal(loc, scale) computes loc + scale * z: the same numbers from the block.
    shocks = 0.0 + sigma * np.sqrt(1.0 - phi**2) * shock_z
    level = mean_ms + (0.0 + sigma * level_z[:, 0])
    nb, h = shock_z.shape
    regional = np.empty((nb, h))
    for t in range(h):  # a loop over periods at reset, as in the single code
        level = mean_ms + phi * (level - mean_ms) + shocks[:, t]
        regional[:, t] = level
    local = 1.0 + 0.1 * local_z.reshape(nb, h, n)
    return np.asarray(np.clip(regional[:, :, None] * local, 0.0, None))


def _realise(forecast: np.ndarray, rel_std: float, z: np.ndarray) -> np.ndarray:
    """Realised values ``forecast * (1 + rel_std * z)`` clipped at 0, ``(B, H, n)``."""
    noise = z.reshape(forecast.shape)
    return np.asarray(np.clip(forecast * (1.0 + rel_std * noise), 0.0, None))


class BatchedElectric(ElectricModel):
    """:class:`~mgenv.physics.model.ElectricModel` (rule dispatch) for B copies.

    The same methods: every one is elementwise over microgrids, so with the state ``soc`` of
    shape ``(B, n_mg)`` (and forecasts ``(B, n_mg)`` in ``plan``) they broadcast the fleet
    arrays ``(n_mg,)`` against the copy axis and give each copy the single model's values.
    """

    def __init__(self, cfg: EnvConfig, fleet: FleetArrays, n_copies: int) -> None:
        if cfg.physics != "electric" or cfg.dispatch != "rule":
            raise ValueError(
                f"BatchedElectric supports physics='electric' with dispatch='rule'; got "
                f"physics={cfg.physics!r}, dispatch={cfg.dispatch!r}"
            )
        if n_copies < 1:
            raise ValueError(f"n_copies={n_copies} must be at least 1")
        super().__init__(cfg, fleet)
        self.n_copies = n_copies
        self.reset()

    def reset(self) -> None:
        """Every copy's batteries back to ``soc_init``: ``soc`` is ``(B, n_mg)``."""
        self._soc = np.repeat(self.fleet.soc_init[None, :], self.n_copies, axis=0)
        self._plan = None

    def plan(
        self, t: int, forecast: Forecast, grid_buy: float, setpoints: np.ndarray | None
    ) -> Dispatch:
        """The rule-based dispatch of every copy (``ElectricModel.plan``), fields (B, n_mg).

        With :data:`mgenv._jit.ENABLED`, one kernel call: the single env's per-microgrid
        dispatch (:func:`~mgenv.physics.kernels.plan_unit`) copy by copy.
        """
        if not _jit.ENABLED or setpoints is not None:
            return super().plan(t, forecast, grid_buy, setpoints)
        out = np.empty((6, *self._soc.shape))
        consts = (self.economic(grid_buy), self._gen_cap, self._power)
        plan_copies(
            (forecast.pv, forecast.wind, forecast.load), self._soc, consts, self._plan_fleet, out
        )
        self._plan = Dispatch(out[0], out[1], out[2], out[3], out[4], out[5])
        return self._plan

    def realise(self, sold_kwh: np.ndarray, surplus_kwh: np.ndarray) -> Realised:
        """``ElectricModel.realise`` of every copy, fields (B, n_mg).

        With :data:`mgenv._jit.ENABLED`, one kernel call: the single env's per-microgrid
        outcome (:func:`~mgenv.physics.kernels.realise_unit`) copy by copy.
        """
        d = self._plan
        if not _jit.ENABLED or d is None:
            return super().realise(sold_kwh, surplus_kwh)
        before = self._soc
        out = np.empty((4, *before.shape))
        planned = (d.self_gen, d.charge, d.discharge)
        realise_copies(planned, sold_kwh, surplus_kwh, before, self._realise_fleet, out)
        self._soc = out[3]
        return Realised(out[0], out[1], out[2], before, self._soc, {})
