"""Batched observations: every copy's observation matrices as float32 ``(B, n_role, F)``.

Bit-identical per copy to :class:`mgenv.core.MarketCore`'s observations (``_mg_obs``,
``_agg_obs``, ``_user_obs``): the features go through :mod:`mgenv.observe`'s own builders,
which take ``(B, n)`` inputs as well as ``(n,)``; the sums behind the aggregators' features
(:func:`agg_features`) are taken in the single code's order.

Inputs are the batched core's state: per-copy arrays with a leading axis B; the scales
(:class:`ObsScales`) are per config and shared by every copy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mgenv import _jit
from mgenv.config import EnvConfig
from mgenv.core import MarketCore
from mgenv.observe import BOUNDS, Common, agg_obs, mg_obs, mg_obs_into, user_obs
from mgenv.physics.units import Dispatch


class ObsScales(NamedTuple):
    """Per-config constants of the observations (``MarketCore.__init__``'s values)."""

    mg_scale: np.ndarray  # (n_mg,) kWh
    user_scale: np.ndarray  # (n_user,) kWh
    system_scale: float  # kWh
    mc_max: np.ndarray  # (n_mg,) yuan/kWh, marginal cost at full output
    buyer_agg: np.ndarray  # (n_mg + n_user,) aggregator of each buyer (0-based)
    hours: np.ndarray  # (H,) hour of day at each period's middle, h
    tou: np.ndarray  # (24,) grid purchase price by hour of day, yuan/kWh
    feed: np.ndarray  # (24,) feed-in price by hour of day, yuan/kWh
    n_mg: int
    n_agg: int


def obs_scales(cfg: EnvConfig, core: MarketCore | None = None) -> ObsScales:
    """The observation constants of ``cfg``, read from a single core (one source of truth).

    Args:
        cfg: The config.
        core: A :class:`~mgenv.core.MarketCore` of ``cfg`` if the caller has one; else one is
            built (once per config, never per step).
    """
    c = MarketCore(cfg) if core is None else core
    return ObsScales(
        c.mg_scale,
        c.user_scale,
        c.system_scale,
        c.mc_max,
        c.buyer_agg,
        c.hours,
        c.tou,
        c.feed,
        cfg.n_microgrids,
        cfg.n_aggregators,
    )


def period_prices(s: ObsScales, t: int) -> tuple[float, float, float]:
    """``(hour, grid_buy, feed_in)`` of period ``t`` (clamped to the last period), as the core.

    ``MarketCore._plan`` sets the prices from ``hours[t]``; ``observations`` reads the hour
    of ``min(t, H - 1)``, so at the episode's end both are the last period's.
    """
    t = min(t, s.hours.shape[0] - 1)
    h = int(s.hours[t]) % 24
    return float(s.hours[t]), float(s.tou[h]), float(s.feed[h])


def batched_common(
    s: ObsScales, t: int, last_price: np.ndarray, online_share: np.ndarray
) -> Common:
    """The shared features of period ``t`` for every copy.

    ``last_price`` and ``online_share`` are (B,); the result holds them as (B, 1) columns,
    which :mod:`mgenv.observe`'s builders broadcast over each copy's members.
    """
    return Common(*period_prices(s, t), last_price[:, None], online_share[:, None])


# ---------------------------------------------------------------------- the core's views
def mg_observations(
    c: Common,
    s: ObsScales,
    forecasts: tuple[np.ndarray, np.ndarray, np.ndarray],
    dispatch: Dispatch,
    soc: np.ndarray,
    sold_share: np.ndarray,
    commit: np.ndarray,
) -> np.ndarray:
    """``MarketCore._mg_obs`` for B copies (electric physics: no extra features).

    Args:
        c: Shared features.
        s: The config's scales.
        forecasts: This period's PV, wind and load forecasts, kWh, each ``(B, n_mg)``.
        dispatch: This period's dispatch, fields ``(B, n_mg)``.
        soc: State of charge, ``(B, n_mg)``.
        sold_share: ``(B, n_mg)``.
        commit: Commit-ratio EMA of every participant, ``(B, P)``.

    Returns:
        float32 ``(B, n_mg, 16)``.
    """
    plan = (dispatch.surplus, dispatch.gen_headroom, dispatch.deficit)
    if _jit.ENABLED:  # copy by copy, the single env's kernel
        sin, cos = _hour_angles(float(c.hour))
        out = np.empty((soc.shape[0], s.n_mg, 16), np.float32)
        last_price, online = np.asarray(c.last_price), np.asarray(c.online_share)
        mg_obs_copies(
            (sin, cos, c.grid_buy, c.feed_in),
            (last_price.reshape(-1), online.reshape(-1)),
            s.mg_scale,
            forecasts,
            plan,
            (soc, s.mc_max, sold_share, commit),
            BOUNDS["mg"],
            out,
        )
        return out
    return mg_obs(c, s.mg_scale, forecasts, plan, soc, s.mc_max, sold_share, commit[:, : s.n_mg])


_ANGLES: dict[float, tuple[float, float]] = {}


def _hour_angles(hour: float) -> tuple[float, float]:
    """The hour's sine and cosine as :func:`mgenv.observe._new` computes them (cached)."""
    out = _ANGLES.get(hour)
    if out is None:
        if len(_ANGLES) >= 256:  # bounded whatever the hours
            _ANGLES.clear()
        angle = 2.0 * np.pi * hour / 24.0
        out = _ANGLES[hour] = (float(np.sin(angle)), float(np.cos(angle)))
    return out


@_jit.kernel
def mg_obs_copies(
    shared: tuple[float, float, float, float],
    per_copy: tuple[np.ndarray, np.ndarray],
    scale: np.ndarray,
    forecasts: tuple[np.ndarray, np.ndarray, np.ndarray],
    plan: tuple[np.ndarray, np.ndarray, np.ndarray],
    members: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    bounds: tuple[np.ndarray, np.ndarray],
    out: np.ndarray,
) -> None:
    """Every copy's microgrid observations: :func:`mgenv.observe.mg_obs_into` per copy.

    Args:
        shared: ``(sin, cos, grid_buy, feed_in)`` of the period's hour (numpy's sine and
            cosine, as the single core computes them) and prices, yuan/kWh.
        per_copy: ``(last_price, online_share)``, (B,) each.
        scale: Energy scale per microgrid, kWh, (n_mg,).
        forecasts: PV, wind and load forecasts, kWh, (B, n_mg) each.
        plan: Surplus, generator headroom and deficit, kWh, (B, n_mg) each.
        members: ``(soc (B, n_mg), mc_max (n_mg,), sold_share (B, n_mg), commit (B, P))``.
        bounds: ``observe.BOUNDS["mg"]``.
        out: Shape (B, n_mg, 16), float32: receives the observations.
    """
    sin, cos, grid_buy, feed_in = shared
    last_price, online = per_copy
    soc, mc_max, sold_share, commit = members
    nm = scale.shape[0]
    row = np.empty(16)
    for b in range(out.shape[0]):
        mg_obs_into(
            (sin, cos, grid_buy, feed_in, last_price[b], online[b]),
            scale,
            (forecasts[0][b], forecasts[1][b], forecasts[2][b]),
            (plan[0][b], plan[1][b], plan[2][b]),
            (soc[b], mc_max, sold_share[b], commit[b][:nm]),
            bounds,
            row,
            out[b],
        )


def agg_observations(
    c: Common,
    s: ObsScales,
    dispatch: Dispatch,
    user_need: np.ndarray,
    served_share: np.ndarray,
    delta: np.ndarray,
    commit: np.ndarray,
) -> np.ndarray:
    """``MarketCore._agg_obs`` for B copies.

    Args:
        c: Shared features.
        s: The config's scales.
        dispatch: This period's dispatch, fields ``(B, n_mg)``.
        user_need: This period's user load forecast, kWh, ``(B, n_user)``.
        served_share: Share of each buyer's need served last period, ``(B, n_mg + n_user)``.
        delta: Last service coefficients, ``(B, n_agg)``.
        commit: Commit-ratio EMA of every participant, ``(B, P)``.

    Returns:
        float32 ``(B, n_agg, 11)``.
    """
    nm, na = s.n_mg, s.n_agg
    offerable = dispatch.surplus + dispatch.gen_headroom
    demand, supply, served = agg_features(
        s.buyer_agg, na, s.system_scale, dispatch.deficit, user_need, offerable, served_share
    )
    return agg_obs(c, demand, supply[:, None], served, delta, commit[:, nm : nm + na])


def agg_features(
    buyer_agg: np.ndarray,
    n_agg: int,
    system_scale: float,
    deficit: np.ndarray,
    user_need: np.ndarray,
    offerable: np.ndarray,
    served_share: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The aggregators' demand, supply and served share, as ``MarketCore._agg_obs``.

    Each aggregator's demand and served energy are its buyers' sums in buyer order (one
    ``bincount`` over copy-offset bins: the same sequential sums as the single code's); the
    supply is a sum over the microgrid axis of a C-contiguous array (numpy's pairwise sum
    per row, as the single code's 1-D sum).

    Args:
        buyer_agg: Aggregator of each buyer, ``(n_mg + n_user,)``.
        n_agg: Number of aggregators.
        system_scale: The system's energy scale, kWh.
        deficit: The microgrids' deficits, kWh, ``(B, n_mg)``.
        user_need: The users' load forecasts, kWh, ``(B, n_user)``.
        offerable: Surplus plus generator headroom, kWh, ``(B, n_mg)``.
        served_share: Share of each buyer's need served last period, ``(B, n_mg + n_user)``.

    Returns:
        ``(demand / system_scale (B, n_agg), supply / system_scale (B,), served (B, n_agg))``.
    """
    copies = deficit.shape[0]
    need = np.concatenate((deficit, user_need), axis=1)  # (B, n_buyers)
    bins = (np.arange(copies)[:, None] * n_agg + buyer_agg).ravel()
    demand = np.bincount(bins, weights=need.ravel(), minlength=copies * n_agg)
    demand = demand.reshape(copies, n_agg)
    supply = np.ascontiguousarray(offerable).sum(axis=1)
    served = np.bincount(bins, weights=(served_share * need).ravel(), minlength=copies * n_agg)
    served = served.reshape(copies, n_agg)
    served = np.divide(served, demand, out=np.zeros_like(served), where=demand > 0)
    return demand / system_scale, supply / system_scale, served


def user_observations(
    c: Common,
    s: ObsScales,
    user_need: np.ndarray,
    served_share: np.ndarray,
    commit: np.ndarray,
) -> np.ndarray:
    """``MarketCore._user_obs`` for B copies.

    Args:
        c: Shared features.
        s: The config's scales.
        user_need: This period's user load forecast, kWh, ``(B, n_user)``.
        served_share: Share of each buyer's need served last period, ``(B, n_mg + n_user)``.
        commit: Commit-ratio EMA of every participant, ``(B, P)``.

    Returns:
        float32 ``(B, n_user, 9)``.
    """
    nm, na = s.n_mg, s.n_agg
    return user_obs(c, user_need / s.user_scale, served_share[:, nm:], commit[:, nm + na :])
