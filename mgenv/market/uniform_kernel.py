"""Seed 000's uniform-price market as one compiled kernel (see :mod:`mgenv._jit`).

:func:`clear_uniform` does what :meth:`mgenv.market.uniform.UniformPrice.clear` does with
numpy, in one call: decode the actions into offers and bids
(:func:`mgenv.market.orders.decode_orders`), clear them at one price
(:func:`mgenv.market.clearing.clear_uniform_price`) and split the cleared volumes into
bilateral trades (:func:`mgenv.market.clearing.match_bilateral`). Each helper evaluates the
numpy code's expressions in the same order, so the results are bit-identical:

* ``np.minimum`` / ``np.maximum`` are :func:`_min` / :func:`_max` (NaN propagates, the first
  argument wins a tie);
* prefix sums (``np.add.accumulate``) are sequential from the first value;
* ``np.add.reduce`` of a microgrid's segments is :func:`mgenv._jit.sum_like_numpy`;
* the demand at each offer price is the prefix sum over the bids in bid order of
  ``where(price <= limit, bid, 0.0)``, as the numpy code computes it;
* sorts are stable (merge sort) where the numpy code's are.
"""

from __future__ import annotations

import numpy as np

from mgenv._jit import kernel, sum_like_numpy


@kernel
def _min(a: float, b: float) -> float:
    """``np.minimum`` of two floats: NaN propagates; on a tie the first wins."""
    return a if (a <= b or a != a) else b


@kernel
def _max(a: float, b: float) -> float:
    """``np.maximum`` of two floats: NaN propagates; on a tie the first wins."""
    return a if (a >= b or a != a) else b


@kernel
def _unit(a: float) -> float:
    """:func:`mgenv.market.orders.to_unit`: [-1, 1] to [0, 1] after clipping."""
    return (_min(_max(a, -1.0), 1.0) + 1.0) * 0.5


@kernel
def _decode(
    mg_act: np.ndarray,
    agg_act: np.ndarray,
    user_act: np.ndarray,
    offerable_kwh: np.ndarray,
    mg_deficit_kwh: np.ndarray,
    user_need_kwh: np.ndarray,
    buyer_agg: np.ndarray,
    grid_price: float,
    bounds: tuple[float, float, float, float],
    s: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`mgenv.market.orders.decode_orders`, as a tuple of its fields.

    ``bounds`` is ``(price_floor, price_cap, delta_min, delta_max)``.
    """
    floor, cap, delta_min, delta_max = bounds
    nm, na, nu = mg_act.shape[0], agg_act.shape[0], user_act.shape[0]
    nb = nm + nu
    span = cap - floor
    offer_price = np.empty(nm * s)
    offer_kwh = np.empty(nm * s)
    weights = np.empty(s)
    for i in range(nm):
        for k in range(s):
            weights[k] = _unit(mg_act[i, s + k])
        wsum = sum_like_numpy(weights, 0, s)
        volume = _unit(mg_act[i, 2 * s]) * offerable_kwh[i]
        for k in range(s):
            offer_price[i * s + k] = floor + _unit(mg_act[i, k]) * span
            share = weights[k] / wsum if wsum > 0 else 1.0 / s
            offer_kwh[i * s + k] = share * volume
    delta = np.empty(na)
    agg_limit = np.empty(na)
    for j in range(na):
        delta[j] = delta_min + _unit(agg_act[j, 1]) * (delta_max - delta_min)
        agg_limit[j] = floor + _unit(agg_act[j, 0]) * span
    bid_limit = np.empty(nb)
    bid_kwh = np.empty(nb)
    for b in range(nb):
        if b < nm:
            frac, own, need = mg_act[b, 2 * s + 1], mg_act[b, 2 * s + 2], mg_deficit_kwh[b]
        else:
            frac, own, need = user_act[b - nm, 0], user_act[b - nm, 1], user_need_kwh[b - nm]
        a = buyer_agg[b]
        limit = _min(floor + _unit(own) * span, agg_limit[a])
        bid_limit[b] = _min(limit, grid_price / delta[a])
        bid_kwh[b] = _unit(frac) * need
    return offer_price, offer_kwh, bid_limit, bid_kwh, delta


@kernel
def _clear(
    offer_price: np.ndarray, offer_kwh: np.ndarray, bid_limit: np.ndarray, bid_kwh: np.ndarray
) -> tuple[float, bool, np.ndarray, np.ndarray]:
    """:func:`mgenv.market.clearing.clear_uniform_price` of at least one offer and one bid.

    Returns ``(price, cleared, awarded_kwh, served_kwh)``.
    """
    n_off, n_bid = offer_price.shape[0], bid_limit.shape[0]
    order = np.argsort(offer_price, kind="mergesort")  # stable, as the numpy code's
    p = offer_price[order]
    kwh = offer_kwh[order]
    cum = np.empty(n_off + 1)  # exclusive prefix sums
    cum[0] = 0.0
    run = 0.0
    for i in range(n_off):
        run = kwh[i] if i == 0 else run + kwh[i]
        cum[i + 1] = run
    left = np.searchsorted(p, p, side="left")
    right = np.searchsorted(p, p, side="right")
    total_bid = sum_like_numpy(bid_kwh, 0, n_bid)
    noise = 1e-12 * (1.0 if 1.0 > total_bid else total_bid)  # Python's max(total_bid, 1.0)
    cheaper = np.empty(n_off)
    g_vol = np.empty(n_off)
    acc = np.empty(n_off)
    demand = np.empty(n_off)
    last = -1
    for i in range(n_off):
        d = bid_kwh[0] if p[i] <= bid_limit[0] else 0.0
        for b in range(1, n_bid):
            d += bid_kwh[b] if p[i] <= bid_limit[b] else 0.0
        demand[i] = d
        cheaper[i] = cum[left[i]]
        g_vol[i] = cum[right[i]] - cheaper[i]
        x = _min(_max(d - cheaper[i], 0.0), g_vol[i])
        if x <= noise:
            x = 0.0
        else:  # accepted (a NaN counts, as numpy's nonzero() counts it)
            last = i
        acc[i] = x
    if last < 0:
        return 0.0, False, np.zeros(n_off), np.zeros(n_bid)
    price = p[last]
    awarded = np.empty(n_off)
    for i in range(n_off):
        awarded[order[i]] = kwh[i] * (acc[i] / (g_vol[i] + (1.0 if g_vol[i] == 0.0 else 0.0)))
    ratio = (cheaper[last] + acc[last]) / demand[last]
    served = np.empty(n_bid)
    for b in range(n_bid):
        served[b] = (1.0 if bid_limit[b] >= price else 0.0) * (bid_kwh[b] * ratio)
    return price, True, awarded, served


@kernel
def _match(seller_kwh: np.ndarray, buyer_kwh: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`mgenv.market.clearing.match_bilateral`: ``(seller, buyer, kwh)``."""
    ns, nb = seller_kwh.shape[0], buyer_kwh.shape[0]
    cs = np.empty(ns)
    cb = np.empty(nb)
    for i in range(ns):
        cs[i] = seller_kwh[i] if i == 0 else cs[i - 1] + seller_kwh[i]
    for i in range(nb):
        cb[i] = buyer_kwh[i] if i == 0 else cb[i - 1] + buyer_kwh[i]
    total = 0.0
    if ns and nb:
        total = cb[nb - 1] if cb[nb - 1] < cs[ns - 1] else cs[ns - 1]  # Python's min()
    if total <= 0.0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    points = np.empty(1 + ns + nb)
    points[0] = 0.0
    for i in range(ns):
        points[1 + i] = _min(cs[i], total)
    for i in range(nb):
        points[1 + ns + i] = _min(cb[i], total)
    points.sort()
    kwh = np.empty(ns + nb)
    mids = np.empty(ns + nb)
    k = 0
    for i in range(ns + nb):
        q = points[i + 1] - points[i]
        if q > 1e-12 * total:  # drops the zero-length pieces of shared breakpoints
            kwh[k] = q
            mids[k] = points[i] + 0.5 * q
            k += 1
    mids = mids[:k]
    return np.searchsorted(cs, mids, side="right"), np.searchsorted(cb, mids, side="right"), kwh[:k]


@kernel
def clear_uniform(
    mg_act: np.ndarray,
    agg_act: np.ndarray,
    user_act: np.ndarray,
    offerable_kwh: np.ndarray,
    mg_deficit_kwh: np.ndarray,
    user_need_kwh: np.ndarray,
    buyer_agg: np.ndarray,
    buyer_global: np.ndarray,
    grid_price: float,
    bounds: tuple[float, float, float, float],
    s: int,
) -> tuple[float, bool, np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """One period of :class:`mgenv.market.uniform.UniformPrice` in one call.

    Args:
        mg_act: Microgrid actions, ``(n_mg, 2S + 3)`` float64.
        agg_act: Aggregator actions, ``(n_agg, 2)`` float64.
        user_act: User actions, ``(n_user, 2)`` float64.
        offerable_kwh: Energy each microgrid can offer, kWh, ``(n_mg,)``.
        mg_deficit_kwh: Energy each microgrid must buy, kWh, ``(n_mg,)``.
        user_need_kwh: Energy each user must buy, kWh, ``(n_user,)``.
        buyer_agg: Aggregator of each buyer (0-based), ``(n_mg + n_user,)`` int64.
        buyer_global: Global index of each buyer, ``(n_mg + n_user,)`` int64.
        grid_price: Grid purchase price, yuan/kWh.
        bounds: ``(price_floor, price_cap, delta_min, delta_max)`` of the market parameters.
        s: Offer segments per microgrid.

    Returns:
        ``(price, cleared, offered_kwh (n_mg,), delta (n_agg,), trades)``, with ``trades`` the
        :class:`~mgenv.market.settlement.Trades` fields ``(seller, buyer, agg, kwh, price,
        delta)``, each ``(T,)``.
    """
    nm = mg_act.shape[0]
    offer_price, offer_kwh, bid_limit, bid_kwh, delta = _decode(
        mg_act, agg_act, user_act, offerable_kwh, mg_deficit_kwh, user_need_kwh, buyer_agg,
        grid_price, bounds, s,
    )  # fmt: skip
    offered = np.empty(nm)
    for i in range(nm):
        offered[i] = sum_like_numpy(offer_kwh, i * s, (i + 1) * s)
    price, cleared = 0.0, False
    sold = np.zeros(nm)
    served = np.zeros(bid_limit.shape[0])
    if offer_price.shape[0] and bid_limit.shape[0]:
        price, cleared, awarded, served = _clear(offer_price, offer_kwh, bid_limit, bid_kwh)
        for i in range(nm):
            sold[i] = sum_like_numpy(awarded, i * s, (i + 1) * s)
    seller, bi, kwh = _match(sold, served)
    n = kwh.shape[0]
    buyer = np.empty(n, np.int64)
    agg = np.empty(n, np.int64)
    trade_delta = np.empty(n)
    for t in range(n):
        a = buyer_agg[bi[t]]
        buyer[t] = buyer_global[bi[t]]
        agg[t] = nm + a
        trade_delta[t] = delta[a]
    trade_price = np.full(n, price)
    return price, cleared, offered, delta, (seller, buyer, agg, kwh, trade_price, trade_delta)
