"""Seed 002's pricing game: responses, allocation, gains, bad input, against scalar references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgenv.market.p2p_game import (
    FORMULATIONS,
    P2PPeriod,
    SellerCurves,
    allocate,
    best_response,
    calibrate_lambda,
    case_period,
    outcome,
    period_objective,
)

# Table 11 as printed: total sold, total purchased (kWh) per period 7..18.
TABLE11 = [
    (13.65, 13.66),
    (19.12, 19.6),
    (22.44, 23.77),
    (24.15, 24.79),
    (23.75, 25.66),
    (24.54, 28.5),
    (24.72, 21.69),
    (23.74, 21.44),
    (21.91, 24.34),
    (18.34, 19.39),
    (11.84, 15.42),
    (0.14, 6.12),
]


def scalar_response(lam, g, p, n=200_001):
    """Argmax of eq. 9 over a fine grid of [0, g] (slow reference)."""
    e = np.linspace(0.0, g, n)
    return e[np.argmax(lam * np.log1p(e) + p * (g - e))]


def scalar_supply_utility(lam, gen, p):
    """Sum of supplies and eq. 9 utilities at the best responses, seller by seller."""
    s = u = 0.0
    for li, gi in zip(lam, gen, strict=True):
        e = min(max(li / p - 1.0, 0.0), gi)
        s += gi - e
        u += li * math.log1p(e) + p * (gi - e)
    return s, u


def test_case_data_reproduces_tables_10_and_11():
    for t, (sold, bought) in zip(range(7, 19), TABLE11, strict=True):
        per = case_period(t)
        assert per.sellers.tolist() == [True, True, False, False, False]  # Table 10
        assert per.supply0 == pytest.approx(sold, abs=0.011)
        assert per.demand == pytest.approx(bought, abs=0.011)
        assert per.shortage == (t not in (13, 14))  # section 4.1: periods 13-14 in surplus


@pytest.mark.parametrize(
    "lam,g,p", [(2.0, 5.0, 0.8), (0.5, 3.0, 0.8), (9.0, 2.0, 0.8), (1.6, 1.0, 0.79)]
)
def test_best_response_is_the_eq9_argmax(lam, g, p):
    ref = scalar_response(lam, g, p)
    assert best_response(np.array([lam]), np.array([g]), p)[0] == pytest.approx(ref, abs=1e-4)


def test_calibration_makes_the_printed_load_optimal_at_the_reference_price():
    per = case_period(12, lambda_ref=0.25)
    e = best_response(per.lam, per.pv_kwh, per.p_ref)
    np.testing.assert_allclose(e[per.sellers], per.load_kwh[per.sellers], rtol=1e-12)
    np.testing.assert_allclose(calibrate_lambda(np.array([1.0]), 0.8), [1.6])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.05, 4.0), st.floats(0.01, 20.0)), min_size=1, max_size=6),
    st.lists(st.floats(0.3, 3.0), min_size=1, max_size=8),
)
def test_seller_curves_match_the_scalar_reference(sellers, prices):
    lam, gen = (np.array(x) for x in zip(*sellers, strict=True))
    curves = SellerCurves(lam, gen)
    p = np.array(prices)
    s, u = curves.supply(p), curves.utility(p)
    for k, pk in enumerate(prices):
        rs, ru = scalar_supply_utility(lam, gen, pk)
        assert s[k] == pytest.approx(rs, rel=1e-9, abs=1e-9)
        assert u[k] == pytest.approx(ru, rel=1e-9, abs=1e-9)


def test_price_for_supply_inverts_the_supply_curve():
    curves = SellerCurves(np.array([1.8, 2.5, 0.9]), np.array([4.0, 1.0, 0.5]))
    for target in (0.1, 1.0, 3.0, 5.0):
        p = curves.price_for_supply(target, 0.3, 3.0)
        assert curves.supply(np.array(p)) == pytest.approx(target, abs=1e-9)
        assert curves.supply(np.array(p - 1e-6)) < target
    assert curves.price_for_supply(99.0, 0.3, 3.0) == math.inf


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 10.0), min_size=1, max_size=6),
    st.lists(st.floats(0.0, 10.0), min_size=1, max_size=6),
)
def test_allocation_is_pro_rata_and_balances(supply, demand):
    s, d = np.array(supply), np.array(demand)
    sold, bought = allocate(s, d)
    q = min(s.sum(), d.sum())
    assert sold.sum() == pytest.approx(q, abs=1e-9) and bought.sum() == pytest.approx(q, abs=1e-9)
    assert np.all(sold <= s + 1e-12) and np.all(bought <= d + 1e-12)
    if 0 < q < d.sum():  # eq. 13: q_j = S d_j / D
        np.testing.assert_allclose(bought, s.sum() * d / d.sum(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("formulation", FORMULATIONS)
@pytest.mark.parametrize("t", [7, 12, 17, 18])
def test_gains_and_slopes_match_references(formulation, t):
    per = case_period(t)
    obj = period_objective(per, formulation)
    s = per.sellers
    lam, gen = per.lam[s], per.pv_kwh[s]
    _, u0 = scalar_supply_utility(lam, gen, per.p_s)
    pb = np.linspace(per.p_s + 1e-3, per.p_b - 1e-3, 23)
    g_b, g_s, _, _ = obj.gains(pb)
    for k, p in enumerate(pb):
        supply, u = scalar_supply_utility(lam, gen, p)
        q = min(supply, per.demand)
        assert g_b[k] == pytest.approx((per.p_b - p) * q, rel=1e-10, abs=1e-12)
        # sellers: eq. 9 utility with the excess over demand sold at p_s, minus the grid-only one
        assert g_s[k] == pytest.approx(u - (p - per.p_s) * (supply - q) - u0, abs=1e-10)
    away = pb[np.min(np.abs(pb[:, None] - obj.breakpoints[None, :]), axis=1, initial=1) > 1e-4]
    h = 1e-7
    v, slope = obj.value_and_slope(away)
    vp, _ = obj.value_and_slope(away + h)
    vm, _ = obj.value_and_slope(away - h)
    ok = np.isfinite(v)
    np.testing.assert_allclose(slope[ok], ((vp - vm) / (2 * h))[ok], rtol=1e-5, atol=1e-6)


def test_outcome_balances_and_beats_the_grid():
    for t in range(7, 19):
        per = case_period(t)
        o = outcome(per, 0.8)
        assert o.sold_kwh.sum() == pytest.approx(o.bought_kwh.sum(), abs=1e-12)
        assert np.all(o.buyer_cost <= o.buyer_grid_cost + 1e-12)
        np.testing.assert_array_equal(o.load_kwh[~per.sellers], per.load_kwh[~per.sellers])


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"load_kwh": [1.0, -2.0]}, r"load_kwh\[1\]=-2.0 \(user 2\) is outside \[0, inf\)"),
        ({"pv_kwh": [1.0, float("nan")]}, r"pv_kwh\[1\]=nan \(user 2\)"),
        ({"pv_kwh": [-0.5, 1.0]}, r"pv_kwh\[0\]=-0.5 \(user 1\)"),
        ({"p_s": 0.85}, r"p_s=0.85 must be below p_b=0.85"),
        ({"p_s": 0.9}, r"p_s=0.9 must be below p_b=0.85"),
        ({"p_b": float("inf")}, r"p_b=inf is outside"),
        ({"load_kwh": [1.0, 2.0, 3.0]}, r"shape"),
        ({"lambda_ref": 1.5}, r"lambda_ref=1.5 is outside \[0, 1\]"),
    ],
)
def test_bad_input_names_the_culprit(kwargs, pattern):
    args = {"pv_kwh": [3.0, 1.0], "load_kwh": [1.0, 2.0], "p_s": 0.77, "p_b": 0.85, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        P2PPeriod(**args)


@pytest.mark.parametrize("period", [6, 19, -1])
def test_period_outside_the_data_raises(period):
    with pytest.raises(ValueError, match=rf"period={period} is outside the data's periods 7-18"):
        case_period(period)


def test_unknown_formulation_raises():
    with pytest.raises(ValueError, match="formulation='nash' is not one of"):
        period_objective(case_period(7), "nash")
