"""Seed 002's solvers: exact vs brute force and closed form, vs the swarm; Bayes; policies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import baselines
import mgenv
from baselines.p2p_pso import pso_maximise, solve_pso
from baselines.stackelberg import (
    ExpectedObjective,
    maximise,
    solve_bayesian,
    solve_exact,
    type_profiles,
)
from mgenv.market.p2p_game import FORMULATIONS, P2PPeriod, case_period, period_objective

SHORT = [t for t in range(7, 19) if t not in (13, 14)]


def brute_force(obj, lo, hi, n=400_001):
    p = np.linspace(lo, hi, n)
    v, _ = obj.value_and_slope(p)
    k = int(np.argmax(v))
    return p[k], v[k]


def make_period(pv, load, lambda_ref):
    n = min(len(pv), len(load))
    return P2PPeriod(np.array(pv[:n]), np.array(load[:n]), 0.77, 0.85, lambda_ref)


instances = st.builds(
    make_period,
    st.lists(st.floats(0.0, 15.0), min_size=2, max_size=6),
    st.lists(st.floats(0.0, 15.0), min_size=2, max_size=6),
    st.floats(0.0, 1.0),
)


@settings(max_examples=40, deadline=None)
@given(instances, st.sampled_from(FORMULATIONS))
def test_exact_solver_is_never_worse_than_brute_force(per, formulation):
    obj = period_objective(per, formulation)
    p, v = maximise(obj, per.p_s, per.p_b)
    _, vb = brute_force(obj, per.p_s, per.p_b)
    assert per.p_s <= p <= per.p_b
    assert v >= vb - 1e-12 * max(1.0, abs(vb))


def test_literal_solution_is_the_closed_form_on_an_interior_piece():
    # sellers interior on all of [p_s, p_b]: S = A - Lambda / p, optimum sqrt(p_b Lambda / A)
    per = P2PPeriod(np.array([0.6, 0.75, 0.0]), np.array([0.5, 0.66, 3.0]), 0.77, 0.85)
    obj = period_objective(per, "literal")
    assert obj.breakpoints.size == 0
    a, lam, _ = obj.curves.aggregates(np.array(0.8))
    closed = math.sqrt(per.p_b * lam / a)
    assert per.p_s < closed < per.p_b
    assert maximise(obj, per.p_s, per.p_b)[0] == pytest.approx(closed, abs=1e-12)


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_exact_never_worse_than_the_swarm(formulation):
    rng = np.random.default_rng(5)
    for t in range(7, 19):
        per = case_period(t)
        ex, ps = solve_exact(per, formulation), solve_pso(per, rng, formulation)
        assert ex.value >= ps.value - 1e-12 * max(1.0, abs(ex.value))
    for _ in range(30):
        n = int(rng.integers(2, 7))
        per = P2PPeriod(rng.uniform(0, 15, n), rng.uniform(0, 15, n), 0.77, 0.85)
        if not per.shortage:
            continue
        obj = period_objective(per, formulation)
        ex = maximise(obj, per.p_s, per.p_b)
        sw = pso_maximise(obj, per.p_s, per.p_b, rng, n_particles=10, iterations=20)
        assert ex[1] >= sw.value - 1e-12 * max(1.0, abs(ex[1]))


def test_default_formulation_prices_are_strictly_inside_and_compromise_in_surplus():
    for t in range(7, 19):
        per = case_period(t)
        eq = solve_exact(per)
        if per.shortage:
            assert per.p_s < eq.price < per.p_b
        else:
            assert eq.price == per.compromise_price == pytest.approx(0.81)


@pytest.mark.parametrize("t", SHORT)
def test_default_price_rises_with_the_shortfall(t):
    per = case_period(t)
    buyers = per.buyers
    prices = []
    for scale in (1.0, 1.2, 1.5, 2.0, 3.0):  # buyers' load up: larger shortfall, same sellers
        load = np.where(buyers, per.load_kwh * scale, per.load_kwh)
        prices.append(solve_exact(P2PPeriod(per.pv_kwh, load, per.p_s, per.p_b)).price)
    assert np.all(np.diff(prices) > 0), prices


def test_price_at_balance_tends_to_the_compromise():
    # supply just below demand with inelastic sellers: bargaining powers 1/2 each
    per = P2PPeriod(np.array([10.0, 0.0]), np.array([0.0, 10.0 + 1e-9]), 0.77, 0.85)
    assert solve_exact(per).price == pytest.approx(per.compromise_price, abs=1e-6)


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_volumes_balance_and_both_sides_gain(formulation):
    for t in range(7, 19):
        per = case_period(t)
        o = solve_exact(per, formulation).outcome
        assert o.sold_kwh.sum() == pytest.approx(o.bought_kwh.sum(), abs=1e-12)
        s, b = per.sellers, per.buyers
        if formulation == "bargaining":
            assert np.all(o.buyer_cost[b] < o.buyer_grid_cost[b])
            assert np.all(o.seller_revenue[s] > o.seller_grid_revenue[s])
            assert np.all(o.seller_utility_gain[s] > 0)
        else:
            assert np.all(o.buyer_cost[b] <= o.buyer_grid_cost[b] + 1e-12)


def test_literal_game_lands_on_the_floor():
    for t in SHORT:
        p = solve_exact(case_period(t), "literal").price
        if t == 18:  # tiny, elastic supply: an interior optimum
            assert 0.77 < p < 0.81
        else:
            assert p == pytest.approx(0.77, abs=1e-12)


def test_bayesian_with_a_point_prior_is_the_exact_solution():
    for t in (7, 12, 18):
        per = case_period(t)
        ex = solve_exact(per)
        by = solve_bayesian(per, prior=((1.0,), (1.0,)))
        assert by.price == pytest.approx(ex.price, abs=1e-12)


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_bayesian_maximises_the_expected_objective(formulation):
    prior = ((0.8, 1.0, 1.25), (0.25, 0.5, 0.25))
    for t in (8, 15, 18):
        per = case_period(t)
        s = per.sellers
        thetas, probs = type_profiles(int(s.sum()), prior)
        assert thetas.shape == (9, 2) and probs.sum() == pytest.approx(1.0)
        objs = []
        for th in thetas:
            lam = per.lam.copy()
            lam[s] *= th
            objs.append(period_objective(per, formulation, lam))
        exp = ExpectedObjective(objs, probs)
        by = solve_bayesian(per, formulation, prior)
        _, vb = brute_force(exp, per.p_s, per.p_b, 100_001)
        assert by.value >= vb - 1e-12 * max(1.0, abs(vb))
        assert per.p_s < by.price < per.p_b or formulation == "literal"


def test_type_profiles_sample_only_with_a_generator_and_validate():
    prior = ((0.8, 1.2), (0.5, 0.5))
    with pytest.raises(ValueError, match="pass rng"):
        type_profiles(12, prior, max_profiles=64)
    th, pr = type_profiles(12, prior, 64, np.random.default_rng(0))
    assert pr.sum() == pytest.approx(1.0)
    assert th.shape == (64, 12) and set(np.unique(th)) <= {0.8, 1.2}
    with pytest.raises(ValueError, match="probabilities"):
        type_profiles(2, ((1.0, 2.0), (0.5, 0.6)))


def run_env(policy, **overrides):
    env = mgenv.parallel_env("consortium_p2p", opponent_policy=policy, **overrides)
    obs, _ = env.reset(seed=0)
    pol = baselines.make("stackelberg")
    while env.agents:
        obs, *_ = env.step(pol(obs, env))
    return env


@pytest.mark.filterwarnings("ignore:p2p")
def test_stackelberg_policy_posts_the_exact_price_in_the_env():
    env = run_env("stackelberg")
    for t, r in zip(range(7, 19), env.history, strict=True):
        assert r.price == pytest.approx(solve_exact(case_period(t)).price, abs=1e-12)
    lit = run_env("stackelberg", p2p_formulation="literal")
    assert lit.history[0].price == pytest.approx(0.77, abs=1e-12)


@pytest.mark.filterwarnings("ignore:p2p")
@pytest.mark.parametrize("policy", ["bayes_nash", "stackelberg_pso"])
def test_other_price_setters_run_in_the_env(policy):
    env = run_env(policy)
    for t, r in zip(range(7, 19), env.history, strict=True):
        per = case_period(t)
        assert per.p_s < r.price < per.p_b
        if not per.shortage:
            assert r.price == pytest.approx(0.81)


def test_policies_refuse_other_mechanisms_and_formulations():
    env = mgenv.parallel_env("default")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="plays the 'p2p' mechanism"):
        baselines.make("stackelberg").act_role("agg", np.array([0]), np.zeros((1, 11)), env)
    with pytest.raises(ValueError, match="formulation='x'"):
        baselines.make("stackelberg", formulation="x")


@pytest.mark.filterwarnings("ignore:p2p")
def test_exact_price_setter_memoises_repeating_periods():
    env = run_env("stackelberg")
    first = [r.price for r in env.history]
    cache = env._opponents._cache
    assert len(cache) == 12
    obs, _ = env.reset(seed=3)
    pol = baselines.make("stackelberg")
    while env.agents:
        obs, *_ = env.step(pol(obs, env))
    assert [r.price for r in env.history] == first and len(cache) == 12
