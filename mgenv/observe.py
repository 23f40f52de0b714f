"""Observation features per role: names, bounds and the vectorised builders.

Every feature has a name (``env.observation_names(agent)``) and finite bounds. Energies are
divided by the participant's own scale (the sum of its rated powers times the period length)
so that they are O(1) across scenarios; prices are in yuan/kWh. Values are clipped to the
bounds, which only bites on extreme inputs (e.g. a realised load far above its peak).

The builders take per-member inputs of any shape ``M``: ``(n,)`` for one market, ``(B, n)``
for the batched core's B copies (:mod:`mgenv.batched.observe`), whose :class:`Common` then
holds ``(B, 1)`` columns for the per-copy features. They return float32 ``(*M, F)``.
:func:`mg_obs_kernel` is :func:`mg_obs` for one market as one compiled call (:mod:`mgenv._jit`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv._jit import inlined, kernel

# (name, low, high) per role. Order = observation vector order.
FEATURES: dict[str, list[tuple[str, float, float]]] = {
    "mg": [
        ("hour_sin", -1.0, 1.0),
        ("hour_cos", -1.0, 1.0),
        ("pv_forecast", 0.0, 10.0),
        ("wind_forecast", 0.0, 10.0),
        ("load_forecast", 0.0, 10.0),
        ("surplus", 0.0, 10.0),
        ("gen_headroom", 0.0, 10.0),
        ("deficit", 0.0, 10.0),
        ("soc", 0.0, 1.0),
        ("gen_marginal_cost_max", 0.0, 100.0),
        ("grid_buy_price", 0.0, 100.0),
        ("feed_in_price", 0.0, 100.0),
        ("last_clearing_price", 0.0, 100.0),
        ("last_sold_share", 0.0, 1.0),
        ("commit_ratio", 0.0, 1.0),
        ("online_share", 0.0, 1.0),
    ],
    "agg": [
        ("hour_sin", -1.0, 1.0),
        ("hour_cos", -1.0, 1.0),
        ("customer_demand", 0.0, 10.0),
        ("market_supply", 0.0, 10.0),
        ("grid_buy_price", 0.0, 100.0),
        ("feed_in_price", 0.0, 100.0),
        ("last_clearing_price", 0.0, 100.0),
        ("last_served_share", 0.0, 1.0),
        ("last_delta", 0.0, 10.0),
        ("commit_ratio", 0.0, 1.0),
        ("online_share", 0.0, 1.0),
    ],
    "user": [
        ("hour_sin", -1.0, 1.0),
        ("hour_cos", -1.0, 1.0),
        ("load_forecast", 0.0, 10.0),
        ("grid_buy_price", 0.0, 100.0),
        ("feed_in_price", 0.0, 100.0),
        ("last_clearing_price", 0.0, 100.0),
        ("last_served_share", 0.0, 1.0),
        ("commit_ratio", 0.0, 1.0),
        ("online_share", 0.0, 1.0),
    ],
}


def names(role: str) -> list[str]:
    """Feature names of ``role`` in vector order."""
    return [f[0] for f in FEATURES[role]]


def bounds(role: str) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` float32 arrays of the features of ``role`` (fresh copies)."""
    low, high = BOUNDS[role]
    return low.copy(), high.copy()


BOUNDS = {
    role: (
        np.array([f[1] for f in spec], dtype=np.float32),
        np.array([f[2] for f in spec], dtype=np.float32),
    )
    for role, spec in FEATURES.items()
}


class Common(NamedTuple):
    """Features shared by every role in a period.

    ``last_price`` and ``online_share`` are floats for one market, ``(B, 1)`` arrays for B
    copies (one value per copy, broadcast over its members).
    """

    hour: float  # hour of day at the period's middle, h
    grid_buy: float  # yuan/kWh
    feed_in: float  # yuan/kWh
    last_price: float | NDArray[np.float64]  # yuan/kWh
    online_share: float | NDArray[np.float64]


def _new(role: str, shape: tuple[int, ...], c: Common) -> np.ndarray:
    """A float64 feature-major buffer ``(n_features, *shape)`` with the time and share rows set.

    Features are filled as rows (contiguous writes, no per-column float32 casts) and turned
    into the float32 ``(*shape, n_features)`` array once by :func:`_finish`: the same values as
    writing every column into a float32 array, with a fraction of the numpy calls.
    """
    rows = np.empty((len(FEATURES[role]), *shape))
    angle = 2.0 * np.pi * c.hour / 24.0
    rows[0] = np.sin(angle)
    rows[1] = np.cos(angle)
    rows[-1] = c.online_share
    return rows


# Bounds tiled to a whole (B, n, F) block per (role, B, n): numpy's clip against a (F,)
# vector broadcast over (B, n) is several times slower than against a full array.
_TILED: dict[tuple[str, tuple[int, ...]], tuple[np.ndarray, np.ndarray]] = {}


def _finish(rows: np.ndarray, role: str) -> np.ndarray:
    """Fresh float32 observations ``(*shape, n_features)`` from the buffer, clipped to bounds."""
    low, high = BOUNDS[role]
    if rows.ndim == 2:  # one market: (F, n) -> (n, F)
        out = rows.T.astype(np.float32, order="C")
    else:  # copies: (F, B, n) -> (B, n, F)
        out = rows.transpose(*range(1, rows.ndim), 0).astype(np.float32, order="C")
        tiled = _TILED.get((role, out.shape))
        if tiled is None:
            if len(_TILED) >= 64:  # bounded whatever the callers' batch sizes
                _TILED.clear()
            tiled = _TILED[role, out.shape] = (
                np.broadcast_to(low, out.shape).copy(),
                np.broadcast_to(high, out.shape).copy(),
            )
        low, high = tiled
    np.maximum(out, low, out=out)
    return np.minimum(out, high, out=out)


def _prices(rows: np.ndarray, first: int, c: Common) -> None:
    """Write the grid, feed-in and last clearing prices into rows ``first..first + 2``."""
    rows[first] = c.grid_buy
    rows[first + 1] = c.feed_in
    rows[first + 2] = c.last_price


def mg_obs(
    c: Common,
    scale: np.ndarray,
    forecasts: tuple[np.ndarray, np.ndarray, np.ndarray],
    plan: tuple[np.ndarray, np.ndarray, np.ndarray],
    soc: np.ndarray,
    mc_max: np.ndarray,
    sold_share: np.ndarray,
    commit: np.ndarray,
) -> np.ndarray:
    """Microgrid observations, float32 of shape ``(*M, 16)`` (``M``: see the module docstring).

    Args:
        c: Shared features.
        scale: Energy scale per microgrid, kWh, shape ``(n,)``.
        forecasts: PV, wind and load forecasts, kWh, each ``M``.
        plan: Surplus, generator headroom and deficit of the dispatch, kWh, each ``M``.
        soc: State of charge, ``M``.
        mc_max: Marginal generation cost at full output, yuan/kWh, ``(n,)``.
        sold_share: Last period's sold energy over offered energy, ``M``.
        commit: Recent commit ratio, ``M``.
    """
    rows = _new("mg", soc.shape, c)
    np.divide(np.array((*forecasts, *plan)), scale, out=rows[2:8])
    rows[8] = soc
    rows[9] = mc_max
    _prices(rows, 10, c)
    rows[13] = sold_share
    rows[14] = commit
    return _finish(rows, "mg")


def agg_obs(
    c: Common,
    demand: np.ndarray,
    supply: float | NDArray[np.float64],
    served_share: np.ndarray,
    delta: np.ndarray,
    commit: np.ndarray,
) -> np.ndarray:
    """Aggregator observations, ``(*M, 11)``; energies relative to the system scale.

    ``supply`` is the market's (one float, or ``(B, 1)`` for B copies); the others are ``M``.
    """
    rows = _new("agg", demand.shape, c)
    rows[2] = demand
    rows[3] = supply
    _prices(rows, 4, c)
    rows[7] = served_share
    rows[8] = delta
    rows[9] = commit
    return _finish(rows, "agg")


def user_obs(
    c: Common, load: np.ndarray, served_share: np.ndarray, commit: np.ndarray
) -> np.ndarray:
    """Large-user observations, ``(*M, 9)``; load relative to the user's peak."""
    rows = _new("user", load.shape, c)
    rows[2] = load
    _prices(rows, 3, c)
    rows[6] = served_share
    rows[7] = commit
    return _finish(rows, "user")


@kernel
def mg_obs_kernel(
    hour_sin: float,
    hour_cos: float,
    grid_buy: float,
    feed_in: float,
    last_price: float,
    online_share: float,
    scale: np.ndarray,
    pv: np.ndarray,
    wind: np.ndarray,
    load: np.ndarray,
    surplus: np.ndarray,
    headroom: np.ndarray,
    deficit: np.ndarray,
    soc: np.ndarray,
    mc_max: np.ndarray,
    sold_share: np.ndarray,
    commit: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """:func:`mg_obs` of one market, ``(n, 16)`` float32, bit-identical.

    Flat arguments, no tuples: numba types every argument of every call, and a tuple of
    arrays costs about twice as much as the same arrays passed one by one.

    Args:
        hour_sin: ``np.sin`` of ``2 pi hour / 24``, as :func:`_new` computes it.
        hour_cos: Its cosine.
        grid_buy: Grid buy price, yuan/kWh.
        feed_in: Feed-in price, yuan/kWh.
        last_price: Last clearing price, yuan/kWh.
        online_share: Share of validators online.
        scale: Energy scale per microgrid, kWh, ``(n,)``.
        pv: PV forecast, kWh, ``(n,)``.
        wind: Wind forecast, kWh, ``(n,)``.
        load: Load forecast, kWh, ``(n,)``.
        surplus: The dispatch's surplus, kWh, ``(n,)``.
        headroom: Its generator headroom, kWh, ``(n,)``.
        deficit: Its deficit, kWh, ``(n,)``.
        soc: State of charge, ``(n,)``.
        mc_max: Marginal generation cost at full output, yuan/kWh, ``(n,)``.
        sold_share: Last period's sold over offered energy, ``(n,)``.
        commit: Recent commit ratio, ``(>= n,)``: the first ``n`` (every participant's
            array can be passed: the microgrids come first).
        low: ``BOUNDS["mg"][0]``, float32 ``(16,)``.
        high: ``BOUNDS["mg"][1]``, float32 ``(16,)``.
    """
    out = np.empty((scale.shape[0], 16), np.float32)
    mg_obs_into(
        (hour_sin, hour_cos, grid_buy, feed_in, last_price, online_share),
        scale,
        (pv, wind, load),
        (surplus, headroom, deficit),
        (soc, mc_max, sold_share, commit),
        (low, high),
        np.empty(16),
        out,
    )
    return out


@inlined
def mg_obs_into(
    shared: tuple[float, float, float, float, float, float],
    scale: np.ndarray,
    forecasts: tuple[np.ndarray, np.ndarray, np.ndarray],
    plan: tuple[np.ndarray, np.ndarray, np.ndarray],
    members: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    bounds: tuple[np.ndarray, np.ndarray],
    row: np.ndarray,
    out: np.ndarray,
) -> None:
    """:func:`mg_obs_kernel` into ``out`` (``(n, 16)`` float32; ``row``: float64 scratch (16,))."""
    sin, cos, grid_buy, feed_in, last_price, online_share = shared
    soc, mc_max, sold_share, commit = members
    low, high = bounds
    n = scale.shape[0]
    for i in range(n):
        row[0], row[1] = sin, cos
        for k in range(3):
            row[2 + k] = forecasts[k][i] / scale[i]
            row[5 + k] = plan[k][i] / scale[i]
        row[8], row[9] = soc[i], mc_max[i]
        row[10], row[11], row[12] = grid_buy, feed_in, last_price
        row[13], row[14], row[15] = sold_share[i], commit[i], online_share
        for f in range(16):  # float32 first, then clipped in float32, as _finish does
            x = np.float32(row[f])
            # np.maximum then np.minimum: NaN propagates, a tie gives the bound (equal value)
            x = x if (x != x or x > low[f]) else low[f]
            out[i, f] = x if (x != x or x < high[f]) else high[f]
