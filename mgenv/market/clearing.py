"""Uniform-price call auction (seed 000's aggregator market) and bilateral matching.

Usable without the env::

    >>> import numpy as np
    >>> from mgenv.market.clearing import clear_uniform_price
    >>> c = clear_uniform_price(
    ...     offer_price=np.array([0.5, 0.6, 0.7]), offer_kwh=np.array([10.0, 10.0, 10.0]),
    ...     bid_limit=np.array([1.0]), bid_kwh=np.array([15.0]))
    >>> float(c.price), c.awarded_kwh.tolist(), c.served_kwh.tolist()
    (0.6, [10.0, 5.0, 0.0], [15.0])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Clearing(NamedTuple):
    """Result of one clearing.

    Attributes:
        price: Unified clearing price, yuan/kWh: the price of the last accepted offer
            (0.0 when nothing cleared; see ``cleared``).
        quantity_kwh: Total energy traded, kWh.
        awarded_kwh: Energy awarded to each offer, kWh, shape ``(n_offers,)``.
        served_kwh: Energy served to each bid, kWh, shape ``(n_bids,)``.
        cleared: Whether any energy was traded.
    """

    price: float
    quantity_kwh: float
    awarded_kwh: np.ndarray
    served_kwh: np.ndarray
    cleared: bool


def clear_uniform_price(
    offer_price: np.ndarray,
    offer_kwh: np.ndarray,
    bid_limit: np.ndarray,
    bid_kwh: np.ndarray,
) -> Clearing:
    """Clear supply offers against demand bids at one uniform price (vectorised).

    Offers are accepted in merit order (ascending price) while the demand willing to pay at
    least that price exceeds what is already accepted: offer group ``g`` (all offers at one
    price ``p_g``) gets ``clip(D(p_g) - C_{g-1}, 0, G_g)``, where ``D(p)`` is the bid volume
    with limit ``>= p``, ``C_{g-1}`` the volume of cheaper groups and ``G_g`` the group's
    volume. The clearing price is the price of the last accepted offer (seed 000: "unified
    clearing price"); offers at that price share the rest pro rata. Bids whose limit is at
    least the clearing price are served pro rata to their volume (``D(price)`` is never less
    than the traded volume, so no bid gets more than it asked). Price bounds are enforced on
    the inputs (the env maps actions into ``[price_floor, price_cap]``). A group acceptance
    below ``1e-12`` of the total bid volume is rounding noise and counts as zero, so that a
    sliver left by floating-point sums never sets the price.

    Args:
        offer_price: Offer prices, yuan/kWh, shape ``(n_offers,)``.
        offer_kwh: Offer volumes, kWh, non-negative, shape ``(n_offers,)``.
        bid_limit: Highest price each bid accepts, yuan/kWh, shape ``(n_bids,)``.
        bid_kwh: Bid volumes, kWh, non-negative, shape ``(n_bids,)``.

    Returns:
        The :class:`Clearing`.
    """
    n_off, n_bid = offer_price.shape[0], bid_limit.shape[0]
    empty = Clearing(0.0, 0.0, np.zeros(n_off), np.zeros(n_bid), False)
    if n_off == 0 or n_bid == 0:
        return empty
    order = np.argsort(offer_price, kind="stable")
    p_sorted = offer_price[order]
    # Group equal prices: group index increases at every strict price rise.
    group = np.concatenate(([0], np.cumsum(p_sorted[1:] > p_sorted[:-1])))
    g_price = p_sorted[np.concatenate(([True], p_sorted[1:] > p_sorted[:-1]))]
    g_vol = np.bincount(group, weights=offer_kwh[order])
    cheaper = np.concatenate(([0.0], np.cumsum(g_vol)[:-1]))  # exclusive prefix sum, exact
    lim_order = np.argsort(bid_limit, kind="stable")
    lim_sorted = bid_limit[lim_order]
    vol_at_or_below = np.concatenate(([0.0], np.cumsum(bid_kwh[lim_order])))
    demand_at = vol_at_or_below[-1] - vol_at_or_below[np.searchsorted(lim_sorted, g_price)]
    g_acc = np.clip(demand_at - cheaper, 0.0, g_vol)
    # Rounding in the prefix sums must not let a sliver of a dearer group set the price.
    g_acc[g_acc <= 1e-12 * max(float(vol_at_or_below[-1]), 1.0)] = 0.0
    accepted = np.flatnonzero(g_acc > 0)
    if accepted.size == 0:
        return empty
    last = accepted[-1]
    price = float(g_price[last])
    share = np.divide(g_acc, g_vol, out=np.zeros_like(g_acc), where=g_vol > 0)
    awarded = np.empty(n_off)
    awarded[order] = offer_kwh[order] * share[group]
    total = float(g_acc.sum())
    eligible = bid_limit >= price
    d_price = float(bid_kwh[eligible].sum())
    served = np.where(eligible, bid_kwh * (total / d_price), 0.0)
    return Clearing(price, total, awarded, served, True)


def match_bilateral(
    seller_kwh: np.ndarray, buyer_kwh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split cleared volumes into bilateral trades (north-west corner rule, vectorised).

    Sellers and buyers are laid end to end on ``[0, total]``; every interval between two
    consecutive cumulative breakpoints is one trade between the seller and the buyer that
    cover it. This gives at most ``n_sellers + n_buyers - 1`` trades, each of which becomes
    one signed transaction on the chain.

    Args:
        seller_kwh: Energy each seller sold, kWh, shape ``(n_s,)``.
        buyer_kwh: Energy each buyer bought, kWh, shape ``(n_b,)``; same total.

    Returns:
        ``(seller_index, buyer_index, kwh)`` arrays of equal length (positive volumes).
    """
    cs, cb = np.cumsum(seller_kwh), np.cumsum(buyer_kwh)
    total = min(cs[-1], cb[-1]) if cs.size and cb.size else 0.0
    if total <= 0.0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    points = np.unique(np.concatenate(([0.0], np.minimum(cs, total), np.minimum(cb, total))))
    mids = 0.5 * (points[:-1] + points[1:])
    kwh = np.diff(points)
    keep = kwh > 1e-12 * total
    s = np.minimum(np.searchsorted(cs, mids[keep], side="right"), cs.size - 1)
    b = np.minimum(np.searchsorted(cb, mids[keep], side="right"), cb.size - 1)
    return s.astype(np.int64), b.astype(np.int64), kwh[keep]
