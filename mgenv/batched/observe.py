"""Batched observations: every copy's observation matrices as float32 ``(B, n_role, F)``.

Bit-identical per copy to :class:`mgenv.core.MarketCore`'s observations (``_mg_obs``,
``_agg_obs``, ``_user_obs`` and :mod:`mgenv.observe`'s builders): the features are computed
in float64 with the same elementwise operations and sums in the same order, then cast to
float32 once and clipped to the bounds in float32, as the single builders do.

Inputs are the batched core's state: per-copy arrays with a leading axis B; the scales
(:class:`ObsScales`) are per config and shared by every copy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mgenv.config import EnvConfig
from mgenv.core import MarketCore
from mgenv.observe import BOUNDS, FEATURES
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


class BatchedCommon(NamedTuple):
    """:class:`mgenv.observe.Common` for B copies in lockstep."""

    hour: float  # hour of day at the period's middle, h (same for every copy)
    grid_buy: float  # yuan/kWh (same for every copy)
    feed_in: float  # yuan/kWh (same for every copy)
    last_price: np.ndarray  # (B,) yuan/kWh
    online_share: np.ndarray  # (B,)


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
) -> BatchedCommon:
    """The shared features of period ``t`` for every copy (last price and online share (B,))."""
    return BatchedCommon(*period_prices(s, t), last_price, online_share)


def _new(role: str, shape: tuple[int, int], c: BatchedCommon) -> np.ndarray:
    """A float64 buffer ``(B, n, F)`` with the time and share features set.

    Features are written as columns (``rows[..., k]``) and the buffer is cast to float32 once
    by :func:`_finish`, without the transpose of the single builders' feature-major buffer.
    """
    rows = np.empty((*shape, len(FEATURES[role])))
    angle = 2.0 * np.pi * c.hour / 24.0
    # Scalar sin/cos as observe._new computes them (a SIMD array loop may round differently).
    rows[..., 0] = np.sin(angle)
    rows[..., 1] = np.cos(angle)
    rows[..., -1] = c.online_share[:, None]
    return rows


def _prices(rows: np.ndarray, first: int, c: BatchedCommon) -> None:
    """Write the grid, feed-in and last clearing prices into rows ``first..first + 2``."""
    rows[..., first] = c.grid_buy
    rows[..., first + 1] = c.feed_in
    rows[..., first + 2] = c.last_price[:, None]


# Bounds tiled to a whole (B, n, F) block per (role, B, n): numpy's clip against a (F,)
# vector broadcast over (B, n) is several times slower than against a full array.
_TILED: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _finish(rows: np.ndarray, role: str) -> np.ndarray:
    """Float32 ``(B, n, F)`` from the float64 buffer, clipped to the bounds in float32."""
    out = rows.astype(np.float32)
    key = (role, out.shape[0], out.shape[1])
    tiled = _TILED.get(key)
    if tiled is None:
        if len(_TILED) >= 64:  # bounded whatever the callers' batch sizes
            _TILED.clear()
        low, high = BOUNDS[role]
        tiled = _TILED[key] = (
            np.broadcast_to(low, out.shape).copy(),
            np.broadcast_to(high, out.shape).copy(),
        )
    np.maximum(out, tiled[0], out=out)
    return np.minimum(out, tiled[1], out=out)


def mg_obs(
    c: BatchedCommon,
    scale: np.ndarray,
    forecasts: tuple[np.ndarray, np.ndarray, np.ndarray],
    plan: tuple[np.ndarray, np.ndarray, np.ndarray],
    soc: np.ndarray,
    mc_max: np.ndarray,
    sold_share: np.ndarray,
    commit: np.ndarray,
) -> np.ndarray:
    """:func:`mgenv.observe.mg_obs` for B copies: float32 ``(B, n_mg, 16)``.

    Args:
        c: Shared features.
        scale: Energy scale per microgrid, kWh, ``(n_mg,)``.
        forecasts: PV, wind and load forecasts, kWh, each ``(B, n_mg)``.
        plan: Surplus, generator headroom and deficit of the dispatch, kWh, each ``(B, n_mg)``.
        soc: State of charge, ``(B, n_mg)``.
        mc_max: Marginal generation cost at full output, yuan/kWh, ``(n_mg,)``.
        sold_share: Last period's sold over offered energy, ``(B, n_mg)``.
        commit: Recent commit ratio of the microgrids, ``(B, n_mg)``.
    """
    rows = _new("mg", soc.shape, c)
    for k, x in enumerate((*forecasts, *plan)):
        np.divide(x, scale, out=rows[..., 2 + k])
    rows[..., 8] = soc
    rows[..., 9] = mc_max
    _prices(rows, 10, c)
    rows[..., 13] = sold_share
    rows[..., 14] = commit
    return _finish(rows, "mg")


def agg_obs(
    c: BatchedCommon,
    demand: np.ndarray,
    supply: np.ndarray,
    served_share: np.ndarray,
    delta: np.ndarray,
    commit: np.ndarray,
) -> np.ndarray:
    """:func:`mgenv.observe.agg_obs` for B copies: float32 ``(B, n_agg, 11)``.

    Args:
        c: Shared features.
        demand: Customers' demand over the system scale, ``(B, n_agg)``.
        supply: Market supply over the system scale, ``(B,)``.
        served_share: Share of the customers' demand served last period, ``(B, n_agg)``.
        delta: Last service coefficients, ``(B, n_agg)``.
        commit: Recent commit ratio of the aggregators, ``(B, n_agg)``.
    """
    rows = _new("agg", demand.shape, c)
    rows[..., 2] = demand
    rows[..., 3] = supply[:, None]
    _prices(rows, 4, c)
    rows[..., 7] = served_share
    rows[..., 8] = delta
    rows[..., 9] = commit
    return _finish(rows, "agg")


def user_obs(
    c: BatchedCommon, load: np.ndarray, served_share: np.ndarray, commit: np.ndarray
) -> np.ndarray:
    """:func:`mgenv.observe.user_obs` for B copies: float32 ``(B, n_user, 9)``.

    Args:
        c: Shared features.
        load: Load forecast over the user's scale, ``(B, n_user)``.
        served_share: Share of the need served last period, ``(B, n_user)``.
        commit: Recent commit ratio of the users, ``(B, n_user)``.
    """
    rows = _new("user", load.shape, c)
    rows[..., 2] = load
    _prices(rows, 3, c)
    rows[..., 6] = served_share
    rows[..., 7] = commit
    return _finish(rows, "user")


# ---------------------------------------------------------------------- the core's views
def mg_observations(
    c: BatchedCommon,
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
    return mg_obs(c, s.mg_scale, forecasts, plan, soc, s.mc_max, sold_share, commit[:, : s.n_mg])


def agg_observations(
    c: BatchedCommon,
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
    return agg_obs(c, demand, supply, served, delta, commit[:, nm : nm + na])


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
    c: BatchedCommon,
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
