"""Actions in [-1, 1] to offers and bids, and back (the one place that defines the mapping).

Layouts (``S`` = ``MarketParams.n_segments``):

=======  ======  ============================================================================
role     dim     entries
=======  ======  ============================================================================
mg       2S + 3  ``price_1..S`` (offer prices), ``share_1..S`` (split of the offer volume),
                 ``offer_frac`` (share of the offerable energy put on the market),
                 ``buy_frac`` (share of a deficit bid into the market, the rest bought from
                 the grid), ``buy_limit`` (highest price paid for it)
agg      2       ``limit`` (highest price paid for its customers' demand), ``delta`` (service
                 coefficient charged to its customers, seed 000 eq. 4)
user     2       ``buy_frac``, ``buy_limit``
=======  ======  ============================================================================

Prices map affinely from [-1, 1] to ``[price_floor, price_cap]``, fractions to [0, 1], the
service coefficient to ``[delta_min, delta_max]``. Shares are ``(w + 1) / 2`` normalised to
sum to 1 (equal shares when all are zero). Finite actions outside [-1, 1] are clipped.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mgenv.config import MarketParams

ACTION_NAMES = {
    "agg": ["limit", "delta"],
    "user": ["buy_frac", "buy_limit"],
}


def mg_action_names(n_segments: int) -> list[str]:
    """Names of the microgrid action entries for ``n_segments`` offer segments."""
    prices = [f"price_{s}" for s in range(n_segments)]
    shares = [f"share_{s}" for s in range(n_segments)]
    return [*prices, *shares, "offer_frac", "buy_frac", "buy_limit"]


def action_names(role: str, m: MarketParams) -> list[str]:
    """Names of the action entries of ``role``."""
    return mg_action_names(m.n_segments) if role == "mg" else list(ACTION_NAMES[role])


def to_unit(a: np.ndarray) -> np.ndarray:
    """Map [-1, 1] to [0, 1] (after clipping)."""
    # np.minimum/np.maximum: np.clip's wrapper costs twice as much on these tiny arrays.
    return np.asarray((np.minimum(np.maximum(a, -1.0), 1.0) + 1.0) * 0.5)


def to_price(a: np.ndarray, m: MarketParams) -> np.ndarray:
    """Map [-1, 1] to ``[price_floor, price_cap]`` yuan/kWh."""
    return m.price_floor + to_unit(a) * (m.price_cap - m.price_floor)


def from_price(price: np.ndarray | float, m: MarketParams) -> np.ndarray:
    """Inverse of :func:`to_price`; prices outside the bounds saturate at -1 / 1."""
    x = 2.0 * (np.asarray(price, dtype=np.float64) - m.price_floor) / (m.price_cap - m.price_floor)
    return np.minimum(np.maximum(x - 1.0, -1.0), 1.0)


def from_unit(frac: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`to_unit`."""
    return np.minimum(np.maximum(2.0 * np.asarray(frac, dtype=np.float64) - 1.0, -1.0), 1.0)


def from_delta(delta: np.ndarray | float, m: MarketParams) -> np.ndarray:
    """Inverse of the service-coefficient map."""
    span = m.delta_max - m.delta_min
    x = 2.0 * (np.asarray(delta, dtype=np.float64) - m.delta_min) / span - 1.0 if span else 0.0
    return np.minimum(np.maximum(x, -1.0), 1.0)


class Orders(NamedTuple):
    """All offers and bids of one period.

    Offers are flattened microgrid-major: offer ``i * S + s`` is segment ``s`` of ``mg_i``.
    Bids are the microgrids' deficits (``n_mg``) followed by the users' loads (``n_user``).
    """

    offer_price: np.ndarray  # (n_mg * S,) yuan/kWh
    offer_kwh: np.ndarray  # (n_mg * S,) kWh
    bid_limit: np.ndarray  # (n_mg + n_user,) yuan/kWh, after aggregator limits
    bid_kwh: np.ndarray  # (n_mg + n_user,) kWh
    delta: np.ndarray  # (n_agg,) service coefficients


def decode_orders(
    mg_act: np.ndarray,
    agg_act: np.ndarray,
    user_act: np.ndarray,
    offerable_kwh: np.ndarray,
    mg_deficit_kwh: np.ndarray,
    user_need_kwh: np.ndarray,
    buyer_agg: np.ndarray,
    grid_price: float,
    m: MarketParams,
) -> Orders:
    """Turn the period's actions into offers and bids.

    A bid's effective limit is the least of the buyer's own limit, its aggregator's limit and
    ``grid_price / delta`` (so that no customer pays its aggregator more than the grid).

    Args:
        mg_act: Microgrid actions, shape ``(n_mg, 2S + 3)``.
        agg_act: Aggregator actions, shape ``(n_agg, 2)``.
        user_act: User actions, shape ``(n_user, 2)``.
        offerable_kwh: Energy each microgrid can offer, kWh, shape ``(n_mg,)``.
        mg_deficit_kwh: Energy each microgrid must buy, kWh, shape ``(n_mg,)``.
        user_need_kwh: Energy each user must buy, kWh, shape ``(n_user,)``.
        buyer_agg: Aggregator of each buyer, shape ``(n_mg + n_user,)``.
        grid_price: Grid purchase price, yuan/kWh.
        m: Market parameters.

    Returns:
        The :class:`Orders`.
    """
    s, nb = m.n_segments, buyer_agg.shape[0]
    span = m.price_cap - m.price_floor
    # Per-call numpy overhead dominates on these tiny arrays, so the three roles' two-column
    # tails are mapped together: buyers (microgrid tail, users) as [frac, limit] and the
    # aggregators reversed to [delta, limit], so that column 1 is a price for every row.
    offers = to_unit(mg_act[:, : 2 * s + 1])  # (n_mg, 2S + 1): prices, shares, offer_frac
    tails = to_unit(np.concatenate((mg_act[:, 2 * s + 1 :], user_act, agg_act[:, ::-1])))
    w = offers[:, s : 2 * s]
    wsum = np.add.reduce(w, axis=1, keepdims=True)  # >= 0: all-zero weights mean equal shares
    if np.count_nonzero(wsum) == wsum.shape[0]:
        shares = w / wsum
    else:
        shares = np.where(wsum > 0, w / np.where(wsum > 0, wsum, 1.0), 1.0 / s)
    volume = offers[:, 2 * s] * offerable_kwh
    delta = m.delta_min + tails[nb:, 0] * (m.delta_max - m.delta_min)
    limits = m.price_floor + tails[:, 1] * span  # (n_buyers + n_agg,) yuan/kWh
    limit = np.minimum(limits[:nb], limits[nb:][buyer_agg])
    limit = np.minimum(limit, grid_price / delta[buyer_agg])
    return Orders(
        offer_price=(m.price_floor + offers[:, :s] * span).ravel(),
        offer_kwh=(shares * volume[:, None]).ravel(),
        bid_limit=limit,
        bid_kwh=tails[:nb, 0] * np.concatenate((mg_deficit_kwh, user_need_kwh)),
        delta=delta,
    )
