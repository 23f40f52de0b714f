"""Uniform-price clearing and bilateral matching against hand-built fixtures and a scalar
reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgenv.market.clearing import clear_uniform_price, match_bilateral


def reference_clear(offer_price, offer_kwh, bid_limit, bid_kwh):
    """Slow scalar uniform-price clearing: walk the merit order one price level at a time."""
    levels = sorted(set(offer_price.tolist()))
    accepted_total, price = 0.0, None
    awarded = [0.0] * len(offer_price)
    for p in levels:
        demand = sum(q for lim, q in zip(bid_limit, bid_kwh, strict=True) if lim >= p)
        room = demand - accepted_total
        if room <= 0:
            break
        idx = [i for i, x in enumerate(offer_price) if x == p]
        vol = sum(offer_kwh[i] for i in idx)
        take = min(vol, room)
        if take <= 1e-12 * max(sum(bid_kwh), 1.0):  # rounding slivers do not set the price
            continue
        for i in idx:
            awarded[i] = offer_kwh[i] * take / vol
        accepted_total += take
        price = p
    served = [0.0] * len(bid_limit)
    if price is not None:
        eligible = [i for i, lim in enumerate(bid_limit) if lim >= price]
        d = sum(bid_kwh[i] for i in eligible)
        for i in eligible:
            served[i] = bid_kwh[i] * accepted_total / d
    return price, accepted_total, awarded, served


def test_merit_order_fixture():
    # offer | price | kWh        bid | limit | kWh
    #   0   | 0.50  | 10          0  | 1.00  | 15
    #   1   | 0.60  | 10
    #   2   | 0.70  | 10     -> price 0.60 (last accepted), offer 1 gets 5 kWh
    c = clear_uniform_price(
        np.array([0.5, 0.6, 0.7]), np.array([10.0, 10.0, 10.0]), np.array([1.0]), np.array([15.0])
    )
    assert c.cleared and c.price == pytest.approx(0.6)
    np.testing.assert_allclose(c.awarded_kwh, [10.0, 5.0, 0.0])
    np.testing.assert_allclose(c.served_kwh, [15.0])


def test_ties_share_pro_rata():
    # two offers at 0.6 (10 and 30 kWh) share the 20 kWh left after the 0.5 offer: 5 and 15
    c = clear_uniform_price(
        np.array([0.6, 0.5, 0.6]), np.array([10.0, 10.0, 30.0]), np.array([0.9]), np.array([30.0])
    )
    assert c.price == pytest.approx(0.6)
    np.testing.assert_allclose(c.awarded_kwh, [5.0, 10.0, 15.0])


def test_bid_limit_below_offers_means_no_trade():
    c = clear_uniform_price(np.array([0.7]), np.array([10.0]), np.array([0.6]), np.array([5.0]))
    assert not c.cleared and c.quantity_kwh == 0.0
    assert c.awarded_kwh.tolist() == [0.0] and c.served_kwh.tolist() == [0.0]


def test_demand_with_low_limit_is_not_served():
    # bid 1 (limit 0.55) drops out once the price reaches 0.6; bid 0 takes 10 + 10 kWh
    c = clear_uniform_price(
        np.array([0.5, 0.6]), np.array([10.0, 20.0]), np.array([0.9, 0.55]), np.array([20.0, 20.0])
    )
    assert c.price == pytest.approx(0.6)
    np.testing.assert_allclose(c.served_kwh, [20.0, 0.0])
    np.testing.assert_allclose(c.awarded_kwh, [10.0, 10.0])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.4, 0.5, 0.6, 0.7, 0.8]), st.integers(0, 5000).map(lambda x: x / 100)
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(
        st.tuples(
            st.sampled_from([0.45, 0.6, 0.75, 0.9]), st.integers(0, 8000).map(lambda x: x / 100)
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_matches_scalar_reference(offers, bids):
    op, oq = (np.array(x, dtype=float) for x in zip(*offers, strict=True))
    bl, bq = (np.array(x, dtype=float) for x in zip(*bids, strict=True))
    c = clear_uniform_price(op, oq, bl, bq)
    price, total, awarded, served = reference_clear(op, oq, bl, bq)
    assert c.cleared == (price is not None)
    if price is not None:
        assert c.price == pytest.approx(price)
    np.testing.assert_allclose(c.quantity_kwh, total, atol=1e-9)
    np.testing.assert_allclose(c.awarded_kwh, awarded, atol=1e-9)
    np.testing.assert_allclose(c.served_kwh, served, atol=1e-9)
    # invariants: nobody gets more than asked; supply = demand served
    assert np.all(c.awarded_kwh <= oq + 1e-9) and np.all(c.served_kwh <= bq + 1e-9)
    np.testing.assert_allclose(c.awarded_kwh.sum(), c.served_kwh.sum(), atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=6),
    st.lists(st.floats(0.01, 1, allow_nan=False), min_size=1, max_size=6),
)
def test_bilateral_matching_conserves_volumes(sellers, weights):
    s = np.array(sellers)
    w = np.array(weights)
    b = s.sum() * w / w.sum()
    si, bi, kwh = match_bilateral(s, b)
    assert len(si) <= len(s) + len(b) - 1
    assert np.all(kwh > 0)
    np.testing.assert_allclose(np.bincount(si, kwh, minlength=s.size), s, atol=1e-9)
    np.testing.assert_allclose(np.bincount(bi, kwh, minlength=b.size), b, atol=1e-9)


def test_matching_skips_zero_volume_parties():
    si, bi, kwh = match_bilateral(np.array([0.0, 5.0, 0.0]), np.array([2.0, 0.0, 3.0]))
    assert si.tolist() == [1, 1] and bi.tolist() == [0, 2]
    np.testing.assert_allclose(kwh, [2.0, 3.0])
