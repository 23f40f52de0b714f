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
    if n_off == 0 or n_bid == 0:
        return Clearing(0.0, 0.0, np.zeros(n_off), np.zeros(n_bid), False)
    order = np.argsort(offer_price, kind="stable")
    p = offer_price[order]  # (n_off,) ascending
    cum = np.concatenate(([0.0], np.cumsum(offer_kwh[order])))  # exclusive prefix sums
    # Every offer carries its price group's figures: volume of cheaper groups, group volume.
    first, end = np.searchsorted(p, p, "left"), np.searchsorted(p, p, "right")
    cheaper = cum[first]
    g_vol = cum[end] - cheaper
    # Demand willing to pay at least each offer's price: an (n_off, n_bid) mask times volumes
    # (cheaper than sorting for the market sizes here; linear in offers x bids).
    demand = (bid_limit[None, :] >= p[:, None]) @ bid_kwh
    acc = np.minimum(np.maximum(demand - cheaper, 0.0), g_vol)  # accepted volume of the group
    # Rounding in the prefix sums must not let a sliver of a dearer group set the price.
    acc[acc <= 1e-12 * max(float(bid_kwh.sum()), 1.0)] = 0.0
    accepted = np.flatnonzero(acc)
    if accepted.size == 0:
        return Clearing(0.0, 0.0, np.zeros(n_off), np.zeros(n_bid), False)
    last = int(accepted[-1])
    price = float(p[last])
    awarded = np.empty(n_off)
    awarded[order] = offer_kwh[order] * np.divide(acc, g_vol, out=np.zeros(n_off), where=acc > 0)
    total = float(cheaper[last] + acc[last])
    served = np.where(bid_limit >= price, bid_kwh * (total / float(demand[last])), 0.0)
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
    points = np.concatenate(([0.0], np.minimum(cs, total), np.minimum(cb, total)))
    points.sort()
    kwh = np.diff(points)
    keep = kwh > 1e-12 * total  # drops the zero-length pieces of shared breakpoints
    mids = points[:-1][keep] + 0.5 * kwh[keep]  # every mid lies below total <= cs[-1], cb[-1]
    s = np.searchsorted(cs, mids, side="right")
    b = np.searchsorted(cb, mids, side="right")
    return s, b, kwh[keep]
