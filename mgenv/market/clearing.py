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
    # Array methods and ufunc methods (argsort, searchsorted, add.accumulate) instead of the
    # np.* wrappers: on these tiny arrays the wrappers' dispatch costs more than the work.
    order = offer_price.argsort(kind="stable")
    p = offer_price[order]  # (n_off,) ascending
    kwh = offer_kwh[order]
    cum = np.empty(n_off + 1)  # exclusive prefix sums
    cum[0] = 0.0
    np.add.accumulate(kwh, out=cum[1:])
    # Every offer carries its price group's figures: volume of cheaper groups, group volume.
    cheaper = cum[p.searchsorted(p, "left")]
    g_vol = cum[p.searchsorted(p, "right")] - cheaper
    # Demand willing to pay at least each offer's price: the volumes of the bids whose limit
    # is at least the price, summed in bid order (a prefix sum along each row of the (n_off,
    # n_bid) mask; linear in offers x bids, cheaper than sorting at these market sizes). Not a
    # matrix product: BLAS adds in an order of its own that depends on the CPU's kernel.
    qualifying = np.where(np.less_equal.outer(p, bid_limit), bid_kwh, 0.0)  # (n_off, n_bid)
    demand = np.add.accumulate(qualifying, axis=1)[:, -1]
    acc = np.minimum(np.maximum(demand - cheaper, 0.0), g_vol)  # accepted volume of the group
    # Rounding in the prefix sums must not let a sliver of a dearer group set the price.
    acc[acc <= 1e-12 * max(float(np.add.reduce(bid_kwh)), 1.0)] = 0.0
    accepted = acc.nonzero()[0]
    if accepted.size == 0:
        return Clearing(0.0, 0.0, np.zeros(n_off), np.zeros(n_bid), False)
    last = int(accepted[-1])
    price = float(p[last])
    awarded = np.empty(n_off)
    # acc > 0 implies g_vol >= acc > 0; an empty group (g_vol = 0) has acc = 0 and divides by
    # 1 instead (g_vol + True), which gives the same zeros as a masked divide, cheaper.
    awarded[order] = kwh * (acc / (g_vol + (g_vol == 0.0)))
    total = float(cheaper[last]) + float(acc[last])
    served = (bid_limit >= price) * (bid_kwh * (total / float(demand[last])))
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
    cs, cb = np.add.accumulate(seller_kwh), np.add.accumulate(buyer_kwh)
    ns, nb = cs.shape[0], cb.shape[0]
    total = min(float(cs[-1]), float(cb[-1])) if ns and nb else 0.0
    if total <= 0.0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    points = np.empty(1 + ns + nb)  # filled in place: no list-to-array concatenation
    points[0] = 0.0
    np.minimum(cs, total, out=points[1 : 1 + ns])
    np.minimum(cb, total, out=points[1 + ns :])
    points.sort()
    kwh = points[1:] - points[:-1]
    keep = kwh > 1e-12 * total  # drops the zero-length pieces of shared breakpoints
    kwh = kwh[keep]
    mids = points[:-1][keep] + 0.5 * kwh  # every mid lies below total <= cs[-1], cb[-1]
    return cs.searchsorted(mids, "right"), cb.searchsorted(mids, "right"), kwh
