"""Seed 001's three-tier market (mgenv.market.three_tier): acceptance, quantities, contracts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import parallel_api_test

import mgenv
from mgenv.config import MarketParams
from mgenv.market.mechanism import MarketInputs, make_mechanism
from mgenv.market.settlement import Positions, settle
from mgenv.market.three_tier import match_grouped, to_action
from tests.conftest import rollout

M = MarketParams(mechanism="three_tier", price_floor=0.5, price_cap=1.1)


def _inputs(offerable, deficit, user_need):
    nm, nu, na = len(offerable), len(user_need), 2
    return MarketInputs(
        np.array(offerable, float),
        np.array(deficit, float),
        np.array(user_need, float),
        1.10,
        0.35,
        np.arange(nm + nu) % na,
        np.concatenate((np.arange(nm), nm + na + np.arange(nu))),
        nm,
        na,
    )


def _act(values, intervals):
    """Prices (or fractions with interval (0, 1)) to actions in [-1, 1]."""
    return np.array(
        [[float(to_action(v, *iv)) for v, iv in zip(row, intervals, strict=True)] for row in values]
    )


MG, AGG, USER, FRAC = (0.5, 1.05), (0.5, 1.1), (0.5, 1.05), (0.0, 1.0)


def test_hand_built_period():
    # participant  role  home agg  offerable  deficit  ask / limit   sells or buys
    # mg_0         sell  agg_0     100        0        ask 0.86      100 * 60/100 = 60
    # mg_1         sell  agg_1      50        0        ask 0.99      refused (0.95 < 0.99)
    # mg_2         buy   agg_0       0       20        limit 1.05    20
    # mg_3         buy   agg_1       0       30        limit 1.05    0 (agg_1 has no supply)
    # user_0       buy   agg_0               40        bid 1.00      40 (1.00 <= 1.00)
    # user_1       buy   agg_1               70        bid 0.90      refused (1.02 > 0.90)
    # agg_0: price_mg 0.95, price_buyer 1.00; agg_1: 0.95, 1.02
    mech = make_mechanism(M)
    inp = _inputs([100, 50, 0, 0], [0, 0, 20, 30], [40, 70])
    acts = {
        "mg": _act(
            [[0.86, 1, 0, 1.05], [0.99, 1, 0, 1.05], [0.5, 0, 1, 1.05], [0.5, 0, 1, 1.05]],
            (MG, FRAC, FRAC, MG),
        ),
        "agg": _act([[0.95, 1.00], [0.95, 1.02]], (AGG, AGG)),
        "user": _act([[1.00, 1], [0.90, 1]], (USER, FRAC)),
    }
    out = mech.clear(acts, inp)
    t = out.trades
    assert out.cleared and out.price == pytest.approx(0.95)
    assert t.kwh.sum() == pytest.approx(60.0)
    assert set(t.seller.tolist()) == {0} and set(t.agg.tolist()) == {4}
    bought = np.bincount(t.buyer, weights=t.kwh, minlength=8)
    assert bought[2] == pytest.approx(20.0) and bought[6] == pytest.approx(40.0)
    np.testing.assert_allclose(t.price * t.delta, 1.00)  # buyers pay p_J->Y
    # settlement: the seller gets p_J->M q, the aggregator keeps the difference
    n = 8
    pos = Positions(
        np.r_[100, 50, 0, 0, 0, 0, 0, 0.0], np.r_[0, 0, 20, 30, 0, 0, 40, 70.0], np.zeros(n)
    )
    s = settle(t, np.ones(t.kwh.size, bool), pos, 1.10, 0.35)
    assert s.revenue[0] == pytest.approx(0.95 * 60 + 0.35 * 40)  # the rest is fed in
    assert s.cash[4] == pytest.approx(0.05 * 60)
    assert s.cost[6] == pytest.approx(1.00 * 40)


def test_actions_outside_the_box_are_clipped():
    mech = make_mechanism(M)
    inp = _inputs([100, 0], [0, 10], [50])
    big = {"mg": np.full((2, 4), 7.0), "agg": np.full((2, 2), -9.0), "user": np.full((1, 2), 3.0)}
    out = mech.clear(big, inp)  # asks at 1.05 > the aggregators' 0.5: nothing sold
    assert not out.cleared and out.trades.kwh.size == 0


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.floats(0, 50)), min_size=1, max_size=8),
    st.lists(st.tuples(st.integers(0, 2), st.floats(0, 50)), min_size=1, max_size=8),
)
def test_match_grouped_conserves_volumes_within_groups(sellers, buyers):
    sg, sk = (np.array(x) for x in zip(*sellers, strict=True))
    bg, bk = (np.array(x) for x in zip(*buyers, strict=True))
    sk, bk = sk.astype(float), bk.astype(float)
    s_tot = np.bincount(sg, weights=sk, minlength=3)
    d_tot = np.bincount(bg, weights=bk, minlength=3)
    q = np.minimum(s_tot, d_tot)
    sold = sk * np.divide(q, s_tot, out=np.zeros(3), where=s_tot > 0)[sg]
    bought = bk * np.divide(q, d_tot, out=np.zeros(3), where=d_tot > 0)[bg]
    si, bi, kwh = match_grouped(sg, sold, bg, bought, q)
    assert np.all(sg[si] == bg[bi])  # no trade crosses aggregators
    assert np.all(kwh > 0) and kwh.size <= len(sellers) + len(buyers) - 1
    tol = 1e-9 * max(1.0, float(q.sum()))
    np.testing.assert_allclose(np.bincount(si, weights=kwh, minlength=sg.size), sold, atol=tol)
    np.testing.assert_allclose(np.bincount(bi, weights=kwh, minlength=bg.size), bought, atol=tol)


def test_trades_stay_with_their_aggregator_in_the_env():
    env = mgenv.parallel_env("ccche_thermal_game", learning_roles=("mg", "agg", "user"))
    rollout(env, 4)
    na, nm = env.config.n_aggregators, env.config.n_microgrids
    traded = 0.0
    for r in env.history:
        t = r.trades
        assert np.all(t.agg - nm == t.seller % na)
        buyer_b = np.where(t.buyer < nm, t.buyer, t.buyer - na)
        assert np.all(t.agg - nm == buyer_b % na)
        traded += float(t.kwh.sum())
    assert traded > 0.0


@pytest.mark.parametrize("roles", [("agg",), ("user",), ("agg", "user")])
def test_aggregators_and_users_can_learn(roles):
    env = mgenv.parallel_env("ccche_thermal_game", learning_roles=roles)
    assert env.action_names(env.possible_agents[0]) in (
        ["price_mg", "price_buyer"],
        ["bid", "buy_frac"],
    )
    parallel_api_test(env, num_cycles=5)


def test_aggregator_prices_are_the_contract_prices():
    env = mgenv.parallel_env("ccche_thermal_game", learning_roles=("agg",), protocol="ideal")
    env.reset(seed=0)
    prices = {
        a: np.array([float(to_action(0.93, *AGG)), float(to_action(1.03, *AGG))], np.float32)
        for a in env.agents
    }
    for _ in range(12):  # to 12:00, a peak period with trade
        env.step(prices)
    r = env.history[-1]
    assert r.trades.kwh.sum() > 0
    np.testing.assert_allclose(r.trades.price, 0.93, atol=1e-6)
    np.testing.assert_allclose(r.trades.price * r.trades.delta, 1.03, atol=1e-6)
