"""Batched uniform-price clearing: many offer books against one demand, in one numpy pass.

:func:`clear_uniform_price_batch` applies the rule of
:func:`mgenv.market.clearing.clear_uniform_price` to ``K`` offer books at once (rows of the
input matrices), so that a bidder's best response (seed 000 eq. 8) evaluates every strategy of
its discrete set in one call instead of ``K`` calls. Tests compare it row by row with the
scalar function.

>>> import numpy as np
>>> b = clear_uniform_price_batch(
...     np.array([[0.5, 0.6, 0.7], [0.7, 0.6, 0.5]]), np.full((2, 3), 10.0),
...     bid_limit=np.array([1.0]), bid_kwh=np.array([15.0]))
>>> b.price.tolist(), b.awarded_kwh.tolist()
([0.6, 0.6], [[10.0, 5.0, 0.0], [0.0, 5.0, 10.0]])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class BatchClearing(NamedTuple):
    """Result of clearing ``K`` offer books.

    Attributes:
        price: Unified clearing price of each book, yuan/kWh, shape ``(K,)`` (0 when nothing
            cleared).
        quantity_kwh: Energy traded in each book, kWh, shape ``(K,)``.
        awarded_kwh: Energy awarded to each offer, kWh, shape ``(K, n_offers)``.
        cleared: Whether any energy was traded, shape ``(K,)`` bool.
    """

    price: np.ndarray
    quantity_kwh: np.ndarray
    awarded_kwh: np.ndarray
    cleared: np.ndarray


def _group_bounds(p_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last column of each entry's equal-price group, each ``(K, n)`` int."""
    k, n = p_sorted.shape
    idx = np.broadcast_to(np.arange(n), (k, n))
    new = np.ones((k, n), dtype=bool)
    new[:, 1:] = p_sorted[:, 1:] > p_sorted[:, :-1]
    start = np.maximum.accumulate(np.where(new, idx, 0), axis=1)
    last = np.ones((k, n), dtype=bool)
    last[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(last, idx, n - 1)[:, ::-1], axis=1)[:, ::-1]
    return start, end


def clear_uniform_price_batch(
    offer_price: np.ndarray,
    offer_kwh: np.ndarray,
    bid_limit: np.ndarray,
    bid_kwh: np.ndarray,
) -> BatchClearing:
    """Clear each row of an offer book against the same bids (vectorised over rows).

    Same rule as :func:`~mgenv.market.clearing.clear_uniform_price`: offers are accepted in
    merit order; an equal-price group gets ``clip(D(p) - C, 0, G)`` (``D(p)``: bid volume with
    limit ``>= p``; ``C``: volume of cheaper offers; ``G``: the group's volume) shared pro rata
    within the group; a group acceptance below ``1e-12`` of the total bid volume counts as
    zero; the clearing price is the price of the dearest accepted group.

    Args:
        offer_price: Offer prices, yuan/kWh, shape ``(K, n_offers)``.
        offer_kwh: Offer volumes, kWh, non-negative, shape ``(K, n_offers)``.
        bid_limit: Highest price of each bid, yuan/kWh, shape ``(n_bids,)``.
        bid_kwh: Bid volumes, kWh, non-negative, shape ``(n_bids,)``.

    Returns:
        The :class:`BatchClearing`.
    """
    k, n = offer_price.shape
    if n == 0 or bid_limit.shape[0] == 0:
        zeros = np.zeros(k)
        return BatchClearing(zeros, zeros.copy(), np.zeros((k, n)), np.zeros(k, dtype=bool))
    order = np.argsort(offer_price, axis=1, kind="stable")
    p = np.take_along_axis(offer_price, order, axis=1)
    v = np.take_along_axis(offer_kwh, order, axis=1)
    start, end = _group_bounds(p)
    cum = np.cumsum(v, axis=1)
    excl = cum - v
    cheaper = np.take_along_axis(excl, start, axis=1)
    g_vol = np.take_along_axis(cum, end, axis=1) - cheaper
    lim_order = np.argsort(bid_limit, kind="stable")
    vol_below = np.concatenate(([0.0], np.cumsum(bid_kwh[lim_order])))
    total_bid = float(vol_below[-1])
    demand_at = total_bid - vol_below[np.searchsorted(bid_limit[lim_order], p)]
    g_acc = np.clip(demand_at - cheaper, 0.0, np.maximum(g_vol, 0.0))
    g_acc[g_acc <= 1e-12 * max(total_bid, 1.0)] = 0.0
    accepted = g_acc > 0
    cleared = accepted.any(axis=1)
    price = np.where(cleared, np.where(accepted, p, -np.inf).max(axis=1), 0.0)
    share = np.divide(g_acc, g_vol, out=np.zeros_like(g_acc), where=g_vol > 0)
    awarded = np.empty((k, n))
    np.put_along_axis(awarded, order, v * share, axis=1)
    # Each group's acceptance counted once: at its first column.
    first = start == np.arange(n)
    quantity = np.where(first, g_acc, 0.0).sum(axis=1)
    return BatchClearing(price, quantity, awarded, cleared)
