"""Seed 000's uniform-price market as one compiled kernel (see :mod:`mgenv._jit`).

:func:`clear_uniform` does what :meth:`mgenv.market.uniform.UniformPrice.clear` does with
numpy, in one call: decode the actions into offers and bids
(:func:`mgenv.market.orders.decode_orders`), clear them at one price
(:func:`mgenv.market.clearing.clear_uniform_price`) and split the cleared volumes into
bilateral trades (:func:`mgenv.market.clearing.match_bilateral`). Each helper evaluates the
numpy code's expressions in the same order, so the results are bit-identical:

* ``np.minimum`` / ``np.maximum`` are :mod:`mgenv._ufuncs`' (NaN propagates, a tie gives
  the second operand);
* prefix sums (``np.add.accumulate``) are sequential from the first value;
* ``np.add.reduce`` of a microgrid's segments is :func:`mgenv._ufuncs.add_reduce`;
* the demand at each offer price is the prefix sum over the bids in bid order of
  ``where(price <= limit, bid, 0.0)``, as the numpy code computes it;
* sorts are stable where the numpy code's are.

Every intermediate lives in a :class:`Work` of preallocated arrays, so that the batched
core's loop over copies (:func:`clear_uniform_copies`) allocates nothing per copy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mgenv._jit import borrowing, inlined, kernel
from mgenv._ufuncs import add_reduce, add_reduce_all, argsort_stable, maximum, minimum


@kernel
def _unit(a: float) -> float:
    """:func:`mgenv.market.orders.to_unit`: [-1, 1] to [0, 1] after clipping."""
    return (minimum(maximum(a, -1.0), 1.0) + 1.0) * 0.5


class Work(NamedTuple):
    """Scratch arrays of one market's clearing (``n_off = n_mg * S`` offers, ``nb`` bids)."""

    offer_price: np.ndarray  # (n_off,) yuan/kWh, microgrid-major
    offer_kwh: np.ndarray  # (n_off,) kWh
    bid_limit: np.ndarray  # (nb,) yuan/kWh
    bid_kwh: np.ndarray  # (nb,) kWh
    delta: np.ndarray  # (n_agg,) service coefficients
    agg_limit: np.ndarray  # (n_agg,) yuan/kWh
    weights: np.ndarray  # (S,) one microgrid's share weights
    order: np.ndarray  # (n_off,) int64 merit order
    price: np.ndarray  # (n_off,) sorted offer prices
    kwh: np.ndarray  # (n_off,) offer volumes in merit order
    cum: np.ndarray  # (n_off + 1,) exclusive prefix sums of kwh
    left: np.ndarray  # (n_off,) int64 first offer of each one's price group
    right: np.ndarray  # (n_off,) int64 one past the last offer of its group
    demand: np.ndarray  # (n_off,) bid volume at each offer's price, kWh
    cheaper: np.ndarray  # (n_off,) volume of cheaper groups, kWh
    group: np.ndarray  # (n_off,) volume of the offer's group, kWh
    accepted: np.ndarray  # (n_off,) accepted volume of the offer's group, kWh
    awarded: np.ndarray  # (n_off,) kWh per offer, input order
    served: np.ndarray  # (nb,) kWh per bid
    sold: np.ndarray  # (n_mg,) kWh per microgrid
    cs: np.ndarray  # (n_mg,) sellers' cumulative kWh
    cb: np.ndarray  # (nb,) buyers' cumulative kWh
    points: np.ndarray  # (1 + n_mg + nb,) breakpoints of the matching
    pieces: np.ndarray  # (n_mg + nb,) kWh of each trade
    seller: np.ndarray  # (n_mg + nb,) int64 seller of each trade
    buyer: np.ndarray  # (n_mg + nb,) int64 buyer (0-based among buyers) of each trade
    sort_tmp: np.ndarray  # (1 + n_off + n_mg + nb,) int64 scratch of the sorts
    point_order: np.ndarray  # (1 + n_mg + nb,) int64 order of the breakpoints


@kernel
def work_sizes(nm: int, na: int, nb: int, s: int) -> tuple[int, int]:
    """Sizes of :func:`work_in`'s float64 and int64 buffers, exactly what a :class:`Work` needs.

    For ``nm`` microgrids, ``na`` aggregators, ``nb`` buyers and ``s`` segments.
    """
    n_off, nt = nm * s, nm + nb
    return 10 * n_off + 4 * nb + 2 * na + s + 2 * nm + 2 * nt + 2, 4 * n_off + 4 * nt + 2


@inlined
def work_in(fbuf: np.ndarray, ibuf: np.ndarray, nm: int, na: int, nb: int, s: int) -> Work:
    """A :class:`Work` of consecutive views of ``fbuf`` (float64) and ``ibuf`` (int64).

    The buffers must be at least :func:`work_sizes` long (checked: kernels have no bounds
    checks, so a short buffer would otherwise give short views and stray writes).

    One buffer of each type instead of 28 arrays: each allocation inside a kernel costs
    ~0.1 µs, and the single env passes the same two buffers every period.
    """
    n_off, nt = nm * s, nm + nb
    o = 0  # running offset into fbuf, then ibuf
    offer_price = fbuf[o : o + n_off]
    o += n_off
    offer_kwh = fbuf[o : o + n_off]
    o += n_off
    bid_limit = fbuf[o : o + nb]
    o += nb
    bid_kwh = fbuf[o : o + nb]
    o += nb
    delta = fbuf[o : o + na]
    o += na
    agg_limit = fbuf[o : o + na]
    o += na
    weights = fbuf[o : o + s]
    o += s
    price = fbuf[o : o + n_off]
    o += n_off
    kwh = fbuf[o : o + n_off]
    o += n_off
    cum = fbuf[o : o + n_off + 1]
    o += n_off + 1
    demand = fbuf[o : o + n_off]
    o += n_off
    cheaper = fbuf[o : o + n_off]
    o += n_off
    group = fbuf[o : o + n_off]
    o += n_off
    accepted = fbuf[o : o + n_off]
    o += n_off
    awarded = fbuf[o : o + n_off]
    o += n_off
    served = fbuf[o : o + nb]
    o += nb
    sold = fbuf[o : o + nm]
    o += nm
    cs = fbuf[o : o + nm]
    o += nm
    cb = fbuf[o : o + nb]
    o += nb
    points = fbuf[o : o + 1 + nt]
    o += 1 + nt
    pieces = fbuf[o : o + nt]
    o += nt
    if o > fbuf.shape[0]:  # the views would be cut short (no bounds checks in kernels)
        raise ValueError("work_in: float buffer too small")
    o = 0
    order = ibuf[o : o + n_off]
    o += n_off
    left = ibuf[o : o + n_off]
    o += n_off
    right = ibuf[o : o + n_off]
    o += n_off
    seller = ibuf[o : o + nt]
    o += nt
    buyer = ibuf[o : o + nt]
    o += nt
    sort_tmp = ibuf[o : o + 1 + n_off + nt]
    o += 1 + n_off + nt
    point_order = ibuf[o : o + 1 + nt]
    o += 1 + nt
    if o > ibuf.shape[0]:
        raise ValueError("work_in: int buffer too small")
    return Work(
        offer_price, offer_kwh, bid_limit, bid_kwh, delta, agg_limit, weights, order, price,
        kwh, cum, left, right, demand, cheaper, group, accepted, awarded, served, sold, cs, cb,
        points, pieces, seller, buyer, sort_tmp, point_order,
    )  # fmt: skip


@kernel
def work(nm: int, na: int, nb: int, s: int) -> Work:
    """Fresh :class:`Work` for ``nm`` microgrids, ``na`` aggregators, ``nb`` buyers, ``s``."""
    n_f, n_i = work_sizes(nm, na, nb, s)
    return work_in(np.empty(n_f), np.empty(n_i, np.int64), nm, na, nb, s)


@inlined
def _zero(a: np.ndarray) -> None:
    """Set every entry to 0.0 (a loop: numba's slice assignment compiles slowly)."""
    for i in range(a.shape[0]):
        a[i] = 0.0


@inlined
def _decode(
    acts: tuple[np.ndarray, np.ndarray, np.ndarray],
    offerable_kwh: np.ndarray,
    mg_deficit_kwh: np.ndarray,
    user_need_kwh: np.ndarray,
    buyer_agg: np.ndarray,
    grid_price: float,
    bounds: tuple[float, float, float, float],
    w: Work,
) -> None:
    """:func:`mgenv.market.orders.decode_orders` into ``w`` (offers, bids, delta).

    ``acts`` are the ``(mg, agg, user)`` action matrices; ``bounds`` is ``(price_floor,
    price_cap, delta_min, delta_max)``.
    """
    mg_act, agg_act, user_act = acts
    floor, cap, delta_min, delta_max = bounds
    # The Work's arrays as locals: numba would otherwise take a reference to the array at
    # every access inside the loops.
    weights, offer_price, offer_kwh = w.weights, w.offer_price, w.offer_kwh
    delta, agg_limit, bid_limit, bid_kwh = w.delta, w.agg_limit, w.bid_limit, w.bid_kwh
    nm, na = mg_act.shape[0], agg_act.shape[0]
    s = weights.shape[0]
    span = cap - floor
    for i in range(nm):
        for k in range(s):
            weights[k] = _unit(mg_act[i, s + k])
        wsum = add_reduce_all(weights)
        volume = _unit(mg_act[i, 2 * s]) * offerable_kwh[i]
        for k in range(s):
            offer_price[i * s + k] = floor + _unit(mg_act[i, k]) * span
            share = weights[k] / wsum if wsum > 0 else 1.0 / s
            offer_kwh[i * s + k] = share * volume
    for j in range(na):
        delta[j] = delta_min + _unit(agg_act[j, 1]) * (delta_max - delta_min)
        agg_limit[j] = floor + _unit(agg_act[j, 0]) * span
    for b in range(bid_limit.shape[0]):
        if b < nm:
            frac, own, need = mg_act[b, 2 * s + 1], mg_act[b, 2 * s + 2], mg_deficit_kwh[b]
        else:
            frac, own, need = user_act[b - nm, 0], user_act[b - nm, 1], user_need_kwh[b - nm]
        a = buyer_agg[b]
        limit = minimum(floor + _unit(own) * span, agg_limit[a])
        bid_limit[b] = minimum(limit, grid_price / delta[a])
        bid_kwh[b] = _unit(frac) * need


@inlined
def _clear(w: Work) -> tuple[float, bool]:
    """:func:`mgenv.market.clearing.clear_uniform_price` of ``w``'s offers and bids.

    At least one offer and one bid. Writes ``w.awarded`` and ``w.served``; returns
    ``(price, cleared)``.
    """
    argsort_stable(w.offer_price, w.order, w.sort_tmp)  # the merit order
    order, offer_price, offer_kwh = w.order, w.offer_price, w.offer_kwh
    bid_limit, bid_kwh, awarded, served = w.bid_limit, w.bid_kwh, w.awarded, w.served
    p, kwh, cum, left, right = w.price, w.kwh, w.cum, w.left, w.right
    demand, cheaper, group, accepted = w.demand, w.cheaper, w.group, w.accepted
    n_off, n_bid = offer_price.shape[0], bid_limit.shape[0]
    for i in range(n_off):
        p[i] = offer_price[order[i]]
        kwh[i] = offer_kwh[order[i]]
    cum[0] = 0.0  # exclusive prefix sums, sequential
    for i in range(n_off):
        cum[i + 1] = kwh[i] if i == 0 else cum[i] + kwh[i]
    # searchsorted(p, p, "left") and "right": each equal-price run's first index and the
    # index after its last.
    for i in range(n_off):
        left[i] = i if i == 0 or p[i - 1] < p[i] else left[i - 1]
    for i in range(n_off - 1, -1, -1):
        right[i] = i + 1 if i == n_off - 1 or p[i] < p[i + 1] else right[i + 1]
    total_bid = add_reduce_all(bid_kwh)
    noise = 1e-12 * (1.0 if 1.0 > total_bid else total_bid)  # Python's max(total_bid, 1.0)
    last = -1
    for i in range(n_off):
        d = bid_kwh[0] if p[i] <= bid_limit[0] else 0.0
        for b in range(1, n_bid):
            d += bid_kwh[b] if p[i] <= bid_limit[b] else 0.0
        demand[i] = d
        cheaper[i] = cum[left[i]]
        group[i] = cum[right[i]] - cheaper[i]
        x = minimum(maximum(d - cheaper[i], 0.0), group[i])
        if x <= noise:
            x = 0.0
        else:  # accepted (a NaN counts, as numpy's nonzero() counts it)
            last = i
        accepted[i] = x
    if last < 0:
        _zero(awarded)
        _zero(served)
        return 0.0, False
    price = p[last]
    for i in range(n_off):
        g = group[i]
        awarded[order[i]] = kwh[i] * (accepted[i] / (g + (1.0 if g == 0.0 else 0.0)))
    ratio = (cheaper[last] + accepted[last]) / demand[last]
    for b in range(n_bid):
        served[b] = (1.0 if bid_limit[b] >= price else 0.0) * (bid_kwh[b] * ratio)
    return price, True


@inlined
def _match(w: Work) -> int:
    """:func:`mgenv.market.clearing.match_bilateral` of ``w.sold`` against ``w.served``.

    Writes the trades into ``w.seller``, ``w.buyer`` (0-based among buyers) and ``w.pieces``
    (kWh) and returns how many there are.
    """
    sold, served, cs, cb, points = w.sold, w.served, w.cs, w.cb, w.points
    pieces, seller, buyer = w.pieces, w.seller, w.buyer
    ns, nb = sold.shape[0], served.shape[0]
    for i in range(ns):
        cs[i] = sold[i] if i == 0 else cs[i - 1] + sold[i]
    for i in range(nb):
        cb[i] = served[i] if i == 0 else cb[i - 1] + served[i]
    total = 0.0
    if ns and nb:
        total = cb[nb - 1] if cb[nb - 1] < cs[ns - 1] else cs[ns - 1]  # Python's min()
    if total <= 0.0:
        return 0
    points[0] = 0.0
    for i in range(ns):
        points[1 + i] = minimum(cs[i], total)
    for i in range(nb):
        points[1 + ns + i] = minimum(cb[i], total)
    at = w.point_order
    argsort_stable(points, at, w.sort_tmp)  # any sort gives the same sorted values
    k, js, jb = 0, 0, 0
    for i in range(ns + nb):
        q = points[at[i + 1]] - points[at[i]]
        if q > 1e-12 * total:  # drops the zero-length pieces of shared breakpoints
            mid = points[at[i]] + 0.5 * q
            # searchsorted(cs, mid, "right") and (cb, ...): the mids ascend, so do the counts
            while js < ns and cs[js] <= mid:
                js += 1
            while jb < nb and cb[jb] <= mid:
                jb += 1
            pieces[k], seller[k], buyer[k] = q, js, jb
            k += 1
    return k


@borrowing  # called per copy: no reference taken to each of the Work's arrays
def _run(
    acts: tuple[np.ndarray, np.ndarray, np.ndarray],
    positions: tuple[np.ndarray, np.ndarray, np.ndarray],
    buyer_agg: np.ndarray,
    grid_price: float,
    bounds: tuple[float, float, float, float],
    w: Work,
    offered: np.ndarray,
) -> tuple[float, bool, int]:
    """Decode, clear and match one market in ``w``; ``offered`` gets each microgrid's offer.

    Returns ``(price, cleared, number of trades)``.
    """
    offerable_kwh, mg_deficit_kwh, user_need_kwh = positions
    _decode(acts, offerable_kwh, mg_deficit_kwh, user_need_kwh, buyer_agg, grid_price, bounds, w)
    nm, s = w.sold.shape[0], w.weights.shape[0]
    for i in range(nm):
        offered[i] = add_reduce(w.offer_kwh, i * s, (i + 1) * s)
    price, cleared = 0.0, False
    if w.offer_price.shape[0] and w.bid_limit.shape[0]:
        price, cleared = _clear(w)
    else:
        _zero(w.awarded)
        _zero(w.served)
    for i in range(nm):
        w.sold[i] = add_reduce(w.awarded, i * s, (i + 1) * s)
    return price, cleared, _match(w)


@kernel
def clear_uniform(
    acts: tuple[np.ndarray, np.ndarray, np.ndarray],
    positions: tuple[np.ndarray, np.ndarray, np.ndarray],
    buyers: tuple[np.ndarray, np.ndarray],
    grid_price: float,
    bounds: tuple[float, float, float, float],
    s: int,
    scratch: tuple[np.ndarray, np.ndarray],
    floats: np.ndarray,
    ints: np.ndarray,
) -> tuple[float, bool, int]:
    """One period of :class:`mgenv.market.uniform.UniformPrice` in one call.

    Args:
        acts: ``(mg, agg, user)`` action matrices, ``(n_mg, 2S + 3)``, ``(n_agg, 2)``,
            ``(n_user, 2)``, float64 in [-1, 1] (clipped).
        positions: ``(offerable, mg_deficit, user_need)``, kWh: energy each microgrid can
            offer and must buy ``(n_mg,)``, energy each user must buy ``(n_user,)``.
        buyers: ``(buyer_agg, buyer_global)``: each buyer's aggregator (0-based) and global
            index, ``(n_mg + n_user,)`` int64.
        grid_price: Grid purchase price, yuan/kWh.
        bounds: ``(price_floor, price_cap, delta_min, delta_max)`` of the market parameters.
        s: Offer segments per microgrid.
        scratch: float64 and int64 buffers of at least :func:`work_sizes` entries (reused
            across calls: their contents on entry do not matter).
        floats: Output, ``(4, W)`` float64 with ``W >= max(n_mg + n_buyers, n_mg + n_agg)``:
            the trades' kWh, price and service coefficient in rows 0-2 (first T columns),
            each microgrid's offered kWh then each aggregator's coefficient in row 3.
        ints: Output, ``(3, W')`` int64 with ``W' >= n_mg + n_buyers``: the trades' seller,
            buyer and aggregator (global indices) in the first T columns.

    Returns:
        ``(price, cleared, T)``. The outputs are the caller's: a kernel that returns arrays
        it allocated costs ~1-2 µs per array to hand them over.
    """
    buyer_agg, buyer_global = buyers
    nm, na, nb = acts[0].shape[0], acts[1].shape[0], buyer_agg.shape[0]
    if floats.shape[1] < nm + max(nb, na) or ints.shape[1] < nm + nb:
        raise ValueError("clear_uniform: output arrays too narrow")
    w = work_in(scratch[0], scratch[1], nm, na, nb, s)
    offered = floats[3, :nm]
    price, cleared, n = _run(acts, positions, buyer_agg, grid_price, bounds, w, offered)
    for t in range(n):
        a = buyer_agg[w.buyer[t]]
        ints[0, t], ints[1, t], ints[2, t] = w.seller[t], buyer_global[w.buyer[t]], nm + a
        floats[0, t], floats[1, t], floats[2, t] = w.pieces[t], price, w.delta[a]
    for j in range(na):
        floats[3, nm + j] = w.delta[j]
    return price, cleared, n


@kernel
def clear_uniform_copies(
    acts: tuple[np.ndarray, np.ndarray, np.ndarray],
    positions: tuple[np.ndarray, np.ndarray, np.ndarray],
    buyers: tuple[np.ndarray, np.ndarray],
    grid_price: float,
    bounds: tuple[float, float, float, float],
    s: int,
) -> tuple[np.ndarray, ...]:
    """:func:`clear_uniform` of ``B`` copies, trades padded to ``n_mg + n_buyers - 1`` columns.

    The batched core's market (:func:`mgenv.batched.market.clear_uniform_batch`) as one call:
    copy ``b`` runs the single market's steps on row ``b`` of each input, in one
    :class:`Work` reused by every copy.

    Args:
        acts: ``(mg, agg, user)`` actions, ``(B, n_mg, 2S + 3)``, ``(B, n_agg, 2)``,
            ``(B, n_user, 2)``.
        positions: ``(offerable, mg_deficit, user_need)``, kWh, ``(B, n_mg)``, ``(B, n_mg)``,
            ``(B, n_user)``.
        buyers: As :func:`clear_uniform` (shared by the copies).
        grid_price: Grid purchase price, yuan/kWh (the copies run in lockstep).
        bounds: As :func:`clear_uniform`.
        s: Offer segments per microgrid.

    Returns:
        ``(price (B,), cleared (B,), offered (B, n_mg), delta (B, n_agg), seller, buyer, agg,
        kwh, trade_price, trade_delta, live)``, the last seven ``(B, T)`` with zero padding.
    """
    mg, agg_act, user = acts
    buyer_agg, buyer_global = buyers
    b_n, nm, na, nb = mg.shape[0], mg.shape[1], agg_act.shape[1], buyer_agg.shape[0]
    w = work(nm, na, nb, s)
    t_max = nm + nb - 1
    price = np.zeros(b_n)
    cleared = np.zeros(b_n, np.bool_)
    offered = np.empty((b_n, nm))
    delta = np.empty((b_n, na))
    ints = np.zeros((3, b_n, t_max), np.int64)  # seller, buyer, agg
    floats = np.zeros((3, b_n, t_max))  # kwh, price, delta
    live = np.zeros((b_n, t_max), np.bool_)
    for b in range(b_n):
        row_acts = (mg[b], agg_act[b], user[b])
        row_pos = (positions[0][b], positions[1][b], positions[2][b])
        p, ok, n = _run(row_acts, row_pos, buyer_agg, grid_price, bounds, w, offered[b])
        price[b], cleared[b] = p, ok
        for j in range(na):
            delta[b, j] = w.delta[j]
        for t in range(n):
            a = buyer_agg[w.buyer[t]]
            ints[0, b, t] = w.seller[t]
            ints[1, b, t] = buyer_global[w.buyer[t]]
            ints[2, b, t] = nm + a
            floats[0, b, t] = w.pieces[t]
            floats[1, b, t] = p
            floats[2, b, t] = w.delta[a]
            live[b, t] = True
    return (
        price, cleared, offered, delta, ints[0], ints[1], ints[2], floats[0], floats[1],
        floats[2], live,
    )  # fmt: skip
