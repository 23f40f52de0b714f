"""Seed 001's noncooperative game (baselines.noncooperative): oracles, equilibrium, 11:00, IR."""

from __future__ import annotations

import numpy as np
import pytest

import baselines
import mgenv
from baselines.noncooperative import solve_tier_game
from baselines.tier_game import (
    TierGame,
    argmax_product,
    game_from_env,
    link_buyer,
    link_mg,
    offer_sets,
)
from tests.conftest import rollout

BOUNDS = {"mg": (0.5, 1.05), "agg": (0.5, 1.1), "user": (0.5, 1.05)}
SEASONS = ("winter", "summer")


def tiny(surplus, headroom, cost_b, need, grid, feed=0.35):
    """One seller, one aggregator, one large user."""
    return TierGame(
        surplus=np.array([surplus]),
        headroom=np.array([headroom]),
        self_gen=np.zeros(1),
        cost_a=np.zeros(1),
        cost_b=np.array([cost_b]),
        need=np.array([0.0, need]),
        buyer_agg=np.zeros(2, dtype=np.int64),
        buyer_top=np.array([1.05, 1.05]),
        n_agg=1,
        grid_buy=grid,
        feed_in=feed,
        bounds=BOUNDS,
    )


@pytest.mark.parametrize(
    ("surplus", "headroom", "b", "grid", "r"),
    [
        (0.0, 100.0, 0.86, 1.10, 0.86),  # turbine energy at the peak
        (0.0, 100.0, 0.70, 1.00, 0.70),
        (60.0, 0.0, 0.90, 0.85, 0.35),  # renewable surplus (reservation: feed-in) at flat
    ],
)
def test_closed_form_of_the_nash_in_nash_prices(surplus, headroom, b, grid, r):
    eq = solve_tier_game(
        tiny(surplus, headroom, b, 80.0, grid), n_a=200, rng=np.random.default_rng(1)
    )
    assert eq.converged and eq.iterations >= 2
    assert eq.price_mg[0] == pytest.approx(r + (grid - r) / 3.0, abs=0.01)
    assert eq.price_buyer[0] == pytest.approx(grid - (grid - r) / 3.0, abs=0.01)
    # equal thirds of the surplus (grid - r) Q per party, up to the candidate grid
    q = eq.quantity[0]
    assert q == pytest.approx(min(surplus + headroom, 80.0))
    thirds = (grid - r) * q / 3.0
    for gain in (eq.gain_mg[0], eq.gain_agg[0], eq.gain_buyer[1]):
        assert gain == pytest.approx(thirds, rel=0.1)


def test_each_link_price_is_its_nash_bargaining_price_given_the_other():
    env = mgenv.parallel_env("ccche_thermal_game")
    env.reset(seed=3)
    for _ in range(11):
        env.step({a: env.action_space(a).sample() for a in env.agents})
    game = game_from_env(env)
    rng = np.random.default_rng([7, 11])
    eq = solve_tier_game(game, 20, rng)
    c1, c2 = offer_sets(game, 20, np.random.default_rng([7, 11]))
    assert eq.converged
    u, v, q, _ = link_mg(game, c1, eq.price_buyer)
    k1, ok1 = argmax_product(u, v, q)
    v2, w, q2 = link_buyer(game, eq.price_mg, c2)
    k2, ok2 = argmax_product(v2, w, q2)
    assert ok1.all() and ok2.all()
    np.testing.assert_array_equal(c1[k1], eq.price_mg)
    np.testing.assert_array_equal(c2[k2], eq.price_buyer)
    assert np.all(eq.gain_mg >= 0) and np.all(eq.gain_agg >= 0) and np.all(eq.gain_buyer >= 0)


def test_no_agreement_when_the_grid_is_cheaper_than_every_admissible_price():
    eq = solve_tier_game(tiny(50.0, 100.0, 0.86, 80.0, grid=0.45))
    assert np.isnan(eq.price_mg[0]) and np.isnan(eq.price_buyer[0])
    assert eq.quantity[0] == 0.0 and eq.sold.sum() == 0.0


@pytest.mark.parametrize("season", SEASONS)
def test_prices_at_11_fall_in_the_papers_ranges(season):
    """Section 6: at 11:00 p_J->M in 0.93-0.98 and p_J->Y in 0.98-1.03 yuan/kWh."""
    env = mgenv.parallel_env(
        "ccche_thermal_game", season=season, protocol="ideal", learning_roles=("mg", "agg", "user")
    )
    pol = baselines.make("noncooperative")
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        while env.core.t < 11:
            obs, *_ = env.step(pol(obs, env))
        assert int(env.core.hours[env.core.t]) == 11
        _, eq = pol.solve(env)
        assert np.all((eq.price_mg >= 0.93) & (eq.price_mg <= 0.98)), eq.price_mg
        assert np.all((eq.price_buyer >= 0.98) & (eq.price_buyer <= 1.03)), eq.price_buyer
        env.step(pol(obs, env))
        t = env.history[-1].trades
        assert t.kwh.sum() > 0
        assert np.all((t.price >= 0.93) & (t.price <= 0.98))
        assert np.all((t.price * t.delta >= 0.98) & (t.price * t.delta <= 1.03 + 1e-12))


@pytest.mark.parametrize("season", SEASONS)
def test_every_party_gains_at_least_its_no_trade_profit(season):
    profits = {}
    for name in ("noncooperative", "grid_only"):
        env = mgenv.parallel_env(
            "ccche_thermal_game",
            season=season,
            protocol="ideal",
            learning_roles=("mg", "agg", "user"),
        )
        runs = []
        for seed in (0, 1):
            rollout(env, seed, baselines.make(name))
            runs.append(np.stack([r.profit for r in env.history]))  # (T, P) yuan
        profits[name] = np.stack(runs)
    gain = profits["noncooperative"] - profits["grid_only"]  # (seeds, T, P)
    aggs = [4, 5]  # 4 microgrids, then the 2 aggregators, then the users
    # Microgrids and users gain every period. The aggregators' batteries pay for their valley
    # charge in periods where nothing trades and earn it back at the peaks: they gain over the
    # day (eq. 19's storage, seed 001), not in every period.
    others = np.delete(gain, aggs, axis=2)
    assert np.all(others >= -1e-9), others.min()
    daily = gain[..., aggs].sum(axis=1)
    assert np.all(daily >= -1e-9), daily.min()
    assert gain.sum() > 0.0  # trading creates value at the peaks


def test_policy_registration_and_mechanism_check():
    assert "noncooperative" in baselines.names()
    env = mgenv.parallel_env("default")
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="three_tier"):
        baselines.make("noncooperative")(obs, env)
