"""Batched uniform-price market: :class:`mgenv.market.uniform.UniformPrice` for ``B`` copies.

Every copy has its own offers *and* bids (unlike :mod:`mgenv.market.batch_clearing`, which
clears many offer books against one set of bids). The three steps of the single mechanism run
on ``(B, ...)`` arrays:

1. :func:`decode_orders_batch`: actions to offers and bids
   (:func:`mgenv.market.orders.decode_orders`, elementwise).
2. :func:`clear_uniform_price_batch`: merit-order clearing at one price per copy
   (:func:`mgenv.market.clearing.clear_uniform_price`).
3. :func:`match_bilateral_batch`: north-west corner matching per copy
   (:func:`mgenv.market.clearing.match_bilateral`), padded to ``max_trades`` columns.

Bit-identity with the single code (``np.array_equal``, tested on random books): elementwise
operations are the same expressions; prefix sums (``np.add.accumulate``) are sequential in
both; sorts are stable as the single code's; the demand curve is the single code's prefix
sum of the qualifying bids in bid order; sums over a microgrid's ``S`` segments
follow ``np.add.reduce``'s order (sequential below 8 values, pairwise from 8). Actions and
volumes are float64, as :class:`mgenv.core.MarketCore` passes them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mgenv import _jit
from mgenv.batched.settlement import BatchedTrades
from mgenv.config import MarketParams
from mgenv.market.uniform_kernel import clear_uniform_copies

__all__ = [
    "BatchedClearing",
    "BatchedMarket",
    "BatchedOrders",
    "BatchedTrades",
    "clear_uniform_batch",
    "clear_uniform_price_batch",
    "decode_orders_batch",
    "match_bilateral_batch",
    "max_trades",
]


def max_trades(n_mg: int, n_user: int) -> int:
    """Width ``T`` of the padded trades: at most ``n_sellers + n_buyers - 1`` trades."""
    return n_mg + (n_mg + n_user) - 1


class BatchedOrders(NamedTuple):
    """:class:`mgenv.market.orders.Orders` of ``B`` copies (offers microgrid-major)."""

    offer_price: np.ndarray  # (B, n_mg * S) yuan/kWh
    offer_kwh: np.ndarray  # (B, n_mg * S) kWh
    bid_limit: np.ndarray  # (B, n_mg + n_user) yuan/kWh, after aggregator limits
    bid_kwh: np.ndarray  # (B, n_mg + n_user) kWh
    delta: np.ndarray  # (B, n_agg) service coefficients


class BatchedClearing(NamedTuple):
    """:class:`mgenv.market.clearing.Clearing` of ``B`` copies (``quantity_kwh`` omitted)."""

    price: np.ndarray  # (B,) yuan/kWh, 0.0 where nothing cleared
    awarded_kwh: np.ndarray  # (B, n_offers) kWh
    served_kwh: np.ndarray  # (B, n_bids) kWh
    cleared: np.ndarray  # (B,) bool


class BatchedMarket(NamedTuple):
    """:class:`mgenv.market.mechanism.MarketOutcome` of ``B`` copies (uniform price)."""

    trades: BatchedTrades  # (B, T) padded
    price: np.ndarray  # (B,) clearing price, yuan/kWh; 0.0 where nothing cleared
    cleared: np.ndarray  # (B,) bool
    offered: np.ndarray  # (B, n_mg) energy each microgrid offered, kWh
    delta: np.ndarray  # (B, n_agg) aggregators' service coefficients


def _to_unit(a: np.ndarray) -> np.ndarray:
    """:func:`mgenv.market.orders.to_unit`: [-1, 1] to [0, 1] after clipping (new array)."""
    u: np.ndarray = np.maximum(a, -1.0)
    np.minimum(u, 1.0, out=u)
    u += 1.0
    u *= 0.5
    return u


def _segment_sums(x: np.ndarray) -> np.ndarray:
    """Row sums of ``x`` (R, S) in numpy's order for a row of ``S`` contiguous values.

    ``np.add.reduce`` adds fewer than 8 values one by one, left to right, and 8 or more
    pairwise; the single code reduces ``(n_mg, S)`` views with contiguous rows. For ``S < 8``
    the columns are added in a loop over segments (long, fast loops over ``R``); from 8 on
    the rows are reduced as the single code does.
    """
    s = x.shape[1]
    if s >= 8:
        total: np.ndarray = np.add.reduce(np.ascontiguousarray(x), axis=1)
        return total
    out: np.ndarray = x[:, 0].copy()
    for j in range(1, s):
        out += x[:, j]
    return out


def decode_orders_batch(
    mg_act: np.ndarray,
    agg_act: np.ndarray,
    user_act: np.ndarray,
    offerable_kwh: np.ndarray,
    mg_deficit_kwh: np.ndarray,
    user_need_kwh: np.ndarray,
    buyer_agg: np.ndarray,
    grid_price: float,
    m: MarketParams,
) -> BatchedOrders:
    """:func:`mgenv.market.orders.decode_orders` for ``B`` copies (same expressions).

    Args:
        mg_act: Microgrid actions, ``(B, n_mg, 2S + 3)``.
        agg_act: Aggregator actions, ``(B, n_agg, 2)``.
        user_act: User actions, ``(B, n_user, 2)``.
        offerable_kwh: Energy each microgrid can offer, kWh, ``(B, n_mg)``.
        mg_deficit_kwh: Energy each microgrid must buy, kWh, ``(B, n_mg)``.
        user_need_kwh: Energy each user must buy, kWh, ``(B, n_user)``.
        buyer_agg: Aggregator of each buyer (0-based), ``(n_mg + n_user,)`` int.
        grid_price: Grid purchase price, yuan/kWh.
        m: Market parameters.

    Returns:
        The :class:`BatchedOrders`.
    """
    s, nb = m.n_segments, buyer_agg.shape[0]
    b, nm, dim = mg_act.shape
    span = m.price_cap - m.price_floor
    # Elementwise maps on whole contiguous arrays, then column views: the same values as the
    # single code's maps of its slices, with long inner loops.
    mg = _to_unit(mg_act).reshape(b * nm, dim)  # prices, shares, offer_frac, buy_frac, limit
    user = _to_unit(user_act)  # (B, n_user, 2): buy_frac, buy_limit
    agg = _to_unit(agg_act)  # (B, n_agg, 2): limit, delta
    frac = np.empty((b, nb))  # buyers' bid shares: microgrids, then users
    frac[:, :nm] = mg[:, 2 * s + 1].reshape(b, nm)
    frac[:, nm:] = user[:, :, 0]
    own = np.empty((b, nb))  # buyers' own limits, in [0, 1]
    own[:, :nm] = mg[:, 2 * s + 2].reshape(b, nm)
    own[:, nm:] = user[:, :, 1]
    delta = m.delta_min + agg[:, :, 1] * (m.delta_max - m.delta_min)  # (B, n_agg)
    agg_limit = m.price_floor + agg[:, :, 0] * span
    limit = np.minimum(m.price_floor + own * span, agg_limit[:, buyer_agg])
    limit = np.minimum(limit, grid_price / delta[:, buyer_agg])
    w = mg[:, s : 2 * s]  # (B * n_mg, S) share weights
    wsum = _segment_sums(w)[:, None]  # >= 0: all-zero weights mean equal shares
    if np.count_nonzero(wsum) == wsum.shape[0]:  # the common case, as in the single code
        shares = w / wsum
    else:  # all-zero weights (w = 0 there): equal shares, 1 / S as the single code's
        shares = w / np.where(wsum > 0, wsum, 1.0)
        shares[wsum[:, 0] == 0.0] = 1.0 / s
    volume = mg[:, 2 * s] * offerable_kwh.reshape(b * nm)
    return BatchedOrders(
        offer_price=(m.price_floor + mg[:, :s] * span).reshape(b, nm * s),
        offer_kwh=(shares * volume[:, None]).reshape(b, nm * s),
        bid_limit=limit,
        bid_kwh=frac * np.concatenate((mg_deficit_kwh, user_need_kwh), 1),
        delta=delta,
    )


def _demand(p: np.ndarray, bid_limit: np.ndarray, bid_kwh: np.ndarray) -> np.ndarray:
    """Bid volume willing to pay each offer's price, kWh, ``(B, n_off)``.

    The single code's sum of the qualifying bids' volumes in bid order (a prefix sum over the
    bids, sequential), for every copy and offer at once.
    """
    # Bids outermost, so that the prefix sum runs over whole (B, n_off) planes.
    qualifies = np.less_equal(p[None, :, :], bid_limit.T[:, :, None])  # (n_bids, B, n_off)
    vol = np.where(qualifies, bid_kwh.T[:, :, None], 0.0)
    out: np.ndarray = np.add.accumulate(vol, axis=0)[-1]
    return out


def clear_uniform_price_batch(
    offer_price: np.ndarray,
    offer_kwh: np.ndarray,
    bid_limit: np.ndarray,
    bid_kwh: np.ndarray,
) -> BatchedClearing:
    """:func:`mgenv.market.clearing.clear_uniform_price` for ``B`` books, each with its bids.

    Args:
        offer_price: Offer prices, yuan/kWh, ``(B, n_offers)``, ``n_offers >= 1``.
        offer_kwh: Offer volumes, kWh, non-negative, ``(B, n_offers)``.
        bid_limit: Highest price each bid accepts, yuan/kWh, ``(B, n_bids)``, ``n_bids >= 1``.
        bid_kwh: Bid volumes, kWh, non-negative, ``(B, n_bids)``.

    Returns:
        The :class:`BatchedClearing` (zeros and ``cleared = False`` where nothing cleared).
    """
    b, n = offer_price.shape
    size = b * n
    # Sorted books, flattened row after row: flat index r * n + i is the i-th cheapest offer
    # of copy r.
    fo = (offer_price.argsort(axis=1, kind="stable") + (np.arange(b) * n)[:, None]).ravel()
    p = offer_price.ravel().take(fo)
    kwh = offer_kwh.ravel().take(fo)
    incl = np.add.accumulate(kwh.reshape(b, n), axis=1).ravel()  # sequential, as the single
    excl = np.empty(size)  # the single code's cum[:-1]: exclusive prefix sums
    excl[1:] = incl[:-1]
    excl[::n] = 0.0
    # Equal-price groups are runs in the flat array; a row's first offer opens one.
    opens = np.empty(size, dtype=bool)
    np.greater(p[1:], p[:-1], out=opens[1:])
    opens[::n] = True
    starts = np.flatnonzero(opens)
    group = np.cumsum(opens) - 1
    ends = np.empty_like(starts)  # each group's last offer
    ends[:-1] = starts[1:] - 1
    ends[-1] = size - 1
    cheaper = excl.take(starts).take(group)  # the single code's cum[searchsorted left]
    g_vol = incl.take(ends).take(group) - cheaper  # cum[searchsorted right] - cheaper
    demand = _demand(p.reshape(b, n), bid_limit, bid_kwh).ravel()
    acc = np.minimum(np.maximum(demand - cheaper, 0.0), g_vol).reshape(b, n)
    noise = 1e-12 * np.maximum(np.add.reduce(bid_kwh, axis=1), 1.0)
    acc[acc <= noise[:, None]] = 0.0
    acc = acc.ravel()
    # Last accepted column of each row: the first positive one from the right.
    backwards = acc.reshape(b, n)[:, ::-1] > 0.0
    back = backwards.argmax(axis=1)
    cleared = backwards[np.arange(b), back]
    at = np.arange(b) * n + (n - 1 - back)  # flat index of the last accepted offer
    price = np.where(cleared, p.take(at), 0.0)
    awarded = np.empty(size)
    awarded[fo] = kwh * (acc / (g_vol + (g_vol == 0.0)))
    total = cheaper.take(at) + acc.take(at)
    # Uncleared rows: ratio 0 serves nothing (their price is 0, every limit passes).
    ratio = np.where(cleared, total / np.where(cleared, demand.take(at), 1.0), 0.0)
    served = (bid_limit >= price[:, None]) * (bid_kwh * ratio[:, None])
    return BatchedClearing(price, awarded.reshape(b, n), served, cleared)


class _Matched(NamedTuple):
    """Live trades of :func:`_match`, flat in row-major order of the padded ``(B, T)``."""

    dst: np.ndarray  # (L,) flat index into (B, T) of each live trade
    row: np.ndarray  # (L,) its copy
    seller: np.ndarray  # (L,) seller index (0-based among sellers)
    buyer: np.ndarray  # (L,) buyer index (0-based among buyers)
    kwh: np.ndarray  # (L,) kWh
    live: np.ndarray  # (B, T) bool


def _match(seller_kwh: np.ndarray, buyer_kwh: np.ndarray) -> _Matched:
    """North-west corner matching of every row; see :func:`match_bilateral_batch`."""
    b, ns = seller_kwh.shape
    k = ns + buyer_kwh.shape[1]  # pieces per row (the last is always empty)
    cs = np.add.accumulate(seller_kwh, axis=1)
    cb = np.add.accumulate(buyer_kwh, axis=1)
    total = np.minimum(cs[:, -1], cb[:, -1])
    points = np.empty((b, 1 + k))
    points[:, 0] = 0.0
    np.minimum(cs, total[:, None], out=points[:, 1 : 1 + ns])
    np.minimum(cb, total[:, None], out=points[:, 1 + ns :])
    # Any sort gives the same sorted values and counts below (ties are never split by a
    # kept piece); numpy's stable sort is the fastest on these short rows.
    order = points.argsort(axis=1, kind="stable")
    flat = (order + (np.arange(b) * (1 + k))[:, None]).ravel()
    ps = points.ravel().take(flat).reshape(b, 1 + k)  # sorted breakpoints
    kwh = (ps[:, 1:] - ps[:, :-1]).ravel()  # (B * k,) pieces
    # Zero-length pieces of shared breakpoints drop out; so does a row with total <= 0.
    floor = np.where(total > 0.0, 1e-12 * total, np.inf)
    keep = kwh.reshape(b, k) > floor[:, None]
    # A kept piece j lies strictly between sorted breakpoints j and j + 1 (it is longer than
    # 1e-12 * total, so its midpoint rounds inside), so the single code's
    # searchsorted(cs, mid, "right") is the number of seller breakpoints among sorted
    # positions 0..j, and the buyers' count is the rest but the leading zero: j - sellers.
    is_seller = np.zeros(1 + k, dtype=np.int64)
    is_seller[1 : 1 + ns] = 1
    running = np.cumsum(is_seller.take(order))  # flat over all rows (int: exact)
    before = np.zeros(b, dtype=np.int64)  # seller breakpoints in the rows above
    before[1:] = running[k :: 1 + k][:-1]
    src = np.flatnonzero(keep)  # kept pieces, row after row, in order
    row = src // k
    seller = running.take(src + row) - before.take(row)  # src + row: position j of (B, 1 + k)
    # The kept pieces of a row go to its first columns, in order: at most k - 1 of them (the
    # two largest breakpoints both equal total, so the last piece is always empty).
    live = np.arange(k - 1) < np.add.reduce(keep, axis=1)[:, None]
    dst = np.flatnonzero(live)
    return _Matched(dst, row, seller, src - row * k - seller, kwh.take(src), live)


def match_bilateral_batch(
    seller_kwh: np.ndarray, buyer_kwh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`mgenv.market.clearing.match_bilateral` per row, padded to ``n_s + n_b - 1``.

    Args:
        seller_kwh: Energy each seller sold, kWh, ``(B, n_s)``, ``n_s >= 1``.
        buyer_kwh: Energy each buyer bought, kWh, ``(B, n_b)``, ``n_b >= 1``.

    Returns:
        ``(seller_index, buyer_index, kwh, live)``, each ``(B, n_s + n_b - 1)``: the live
        trades first in each row, in the single code's order; padding is ``0``.
    """
    mt = _match(seller_kwh, buyer_kwh)
    return (
        _pad(mt, mt.seller, np.int64),
        _pad(mt, mt.buyer, np.int64),
        _pad(mt, mt.kwh, np.float64),
        mt.live,
    )


def _pad(mt: _Matched, values: np.ndarray, dtype: type) -> np.ndarray:
    """Live values into a zero-padded ``(B, T)`` array."""
    out: np.ndarray = np.zeros(mt.live.shape, dtype=dtype)
    out.ravel()[mt.dst] = values  # out is new and contiguous: ravel() is a view
    return out


def clear_uniform_batch(
    params: MarketParams,
    mg: np.ndarray,
    agg: np.ndarray,
    user: np.ndarray,
    offerable_kwh: np.ndarray,
    deficit_kwh: np.ndarray,
    user_need_kwh: np.ndarray,
    buyer_agg: np.ndarray,
    buyer_global: np.ndarray,
    grid_buy: float,
) -> BatchedMarket:
    """Clear the uniform-price market of ``B`` copies (:meth:`UniformPrice.clear`).

    Row ``b`` equals ``UniformPrice(params).clear({"mg": mg[b], "agg": agg[b], "user":
    user[b]}, MarketInputs(offerable_kwh[b], deficit_kwh[b], user_need_kwh[b], grid_buy, ...,
    buyer_agg, buyer_global, n_mg, n_agg))`` bit for bit, with the trades padded to
    :func:`max_trades` columns.

    Args:
        params: Market parameters (``mechanism="uniform_price"``).
        mg: Microgrid actions in [-1, 1] (clipped), ``(B, n_mg, 2S + 3)``.
        agg: Aggregator actions, ``(B, n_agg, 2)``.
        user: User actions, ``(B, n_user, 2)``.
        offerable_kwh: Surplus + generator headroom of each microgrid, kWh, ``(B, n_mg)``.
        deficit_kwh: Microgrids' energy to buy, kWh, ``(B, n_mg)``.
        user_need_kwh: Users' energy to buy, kWh, ``(B, n_user)``.
        buyer_agg: Aggregator of each buyer (0-based), ``(n_mg + n_user,)`` int.
        buyer_global: Global index of each buyer, ``(n_mg + n_user,)`` int.
        grid_buy: Grid purchase price, yuan/kWh.

    Returns:
        The :class:`BatchedMarket`.
    """
    b, nm, _ = mg.shape
    s = params.n_segments
    if mg.shape[2] != 2 * s + 3 or agg.shape[2] != 2 or user.shape[2] != 2:
        raise ValueError(
            f"action shapes mg {mg.shape}, agg {agg.shape}, user {user.shape}: expected "
            f"(B, n_mg, {2 * s + 3}), (B, n_agg, 2), (B, n_user, 2)"
        )
    if _jit.ENABLED:  # copy by copy, the single market's kernel (mgenv.market.uniform_kernel)
        bounds = (params.price_floor, params.price_cap, params.delta_min, params.delta_max)
        price, cleared, offered, delta, *fields = clear_uniform_copies(
            (mg, agg, user),
            (offerable_kwh, deficit_kwh, user_need_kwh),
            (buyer_agg, buyer_global),
            grid_buy,
            bounds,
            s,
        )
        return BatchedMarket(BatchedTrades(*fields), price, cleared, offered, delta)
    o = decode_orders_batch(
        mg, agg, user, offerable_kwh, deficit_kwh, user_need_kwh, buyer_agg, grid_buy, params
    )
    c = clear_uniform_price_batch(o.offer_price, o.offer_kwh, o.bid_limit, o.bid_kwh)
    sold = _segment_sums(c.awarded_kwh.reshape(b * nm, s)).reshape(b, nm)
    mt = _match(sold, c.served_kwh)
    agg_local = buyer_agg.take(mt.buyer)
    trades = BatchedTrades(
        seller=_pad(mt, mt.seller, np.int64),
        buyer=_pad(mt, buyer_global.take(mt.buyer), np.int64),
        agg=_pad(mt, nm + agg_local, np.int64),
        kwh=_pad(mt, mt.kwh, np.float64),
        price=_pad(mt, c.price.take(mt.row), np.float64),
        delta=_pad(mt, o.delta.ravel().take(mt.row * o.delta.shape[1] + agg_local), np.float64),
        live=mt.live,
    )
    offered = _segment_sums(o.offer_kwh.reshape(b * nm, s)).reshape(b, nm)
    return BatchedMarket(trades, c.price, c.cleared, offered, o.delta)
