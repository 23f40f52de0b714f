"""Seed 000's bidding market and the iterative Nash bidding baseline (eqs. 4-9, Figs. 5, 7, 8)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import baselines
import mgenv
from baselines.nash_bidding import (
    NashBidding,
    game_from_info,
    solve_nash_bidding,
    traditional_quotes,
    unilateral_gains,
)
from mgenv.market.batch_clearing import clear_uniform_price_batch
from mgenv.market.bidding import (
    BiddingGame,
    aggregator_utility,
    clear_period,
    competitive_price,
    feasible,
    share_lattice,
    strategy_set,
)
from mgenv.market.clearing import clear_uniform_price
from mgenv.market.orders import to_price, to_unit
from train.reproduce.crosschain import DEMANDS_KW, scenario_game, solve_both

Q = (130.0, 258.0, 114.0, 148.0)


@pytest.fixture(scope="module")
def paper() -> dict[float, dict]:
    """Improved and traditional results of the scenario at 220, 550 and 1000 kW."""
    return {d: (scenario_game(d), solve_both(scenario_game(d))) for d in DEMANDS_KW}


# ------------------------------------------------------------------ clearing


def test_batch_clearing_matches_scalar_clearing_row_by_row() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        k, n, m = 6, int(rng.integers(1, 10)), int(rng.integers(1, 4))
        price = np.round(rng.uniform(0.4, 0.8, (k, n)), 1)  # coarse: many ties
        kwh = rng.uniform(0, 20, (k, n)) * (rng.random((k, n)) > 0.2)
        limit, bid = np.round(rng.uniform(0.4, 0.9, m), 1), rng.uniform(0, 50, m)
        b = clear_uniform_price_batch(price, kwh, limit, bid)
        for r in range(k):
            c = clear_uniform_price(price[r], kwh[r], limit, bid)
            assert b.cleared[r] == c.cleared
            assert b.price[r] == pytest.approx(c.price)
            assert b.quantity_kwh[r] == pytest.approx(c.quantity_kwh, abs=1e-9)
            np.testing.assert_allclose(b.awarded_kwh[r], c.awarded_kwh, atol=1e-9)


def test_clear_period_corrects_price_into_interval_and_leaves_rest_to_grid() -> None:
    prices = np.array([[0.30, 0.35], [0.90, 0.95]])
    shares = np.array([[0.5, 0.5], [1.0, 0.0]])
    vol = np.array([100.0, 50.0])
    low = clear_period(prices, shares, vol, 80.0, (0.45, 0.75))
    assert (low.raw_price, low.price) == (0.35, 0.45)  # below the minimum: corrected up
    np.testing.assert_allclose(low.sold_kwh, [80.0, 0.0])
    high = clear_period(prices, shares, vol, 130.0, (0.45, 0.75))
    assert (high.raw_price, high.price) == (0.90, 0.75)  # above the maximum: corrected down
    np.testing.assert_allclose(high.sold_kwh, [100.0, 30.0])
    short = clear_period(prices, shares, vol, 200.0, (0.45, 0.75), demand_limit=0.5)
    assert short.grid_kwh == pytest.approx(100.0) and short.sold_kwh[1] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"demand_kwh": -1.0}, r"demand_kwh=-1.0 is outside"),
        ({"demand_kwh": math.nan}, r"demand_kwh=nan is outside"),
        ({"shares": np.array([[0.5, 0.4]])}, r"shares of microgrid 0 sum to 0.9, not 1"),
        ({"price_interval": (0.7, 0.5)}, r"price_interval=\(0.7, 0.5\) is reversed"),
        ({"prices": np.array([[0.5, math.inf]])}, r"prices of microgrid 0 .*non-finite"),
        ({"volume_kwh": np.array([-3.0])}, r"volume_kwh of microgrid 0 has a negative"),
    ],
)
def test_clear_period_bad_input(kwargs: dict, pattern: str) -> None:
    args = {
        "prices": np.array([[0.5, 0.6]]),
        "shares": np.array([[0.5, 0.5]]),
        "volume_kwh": np.array([10.0]),
        "demand_kwh": 5.0,
        "price_interval": (0.4, 0.8),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        clear_period(**args)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"capacity_kwh": (130.0, -1.0)}, r"BiddingGame.capacity_kwh\[1\]=-1.0 is outside"),
        ({"cost_a": (0.001, math.nan)}, r"BiddingGame.cost_a\[1\]=nan is outside"),
        ({"cost_b": (0.4, -0.2)}, r"BiddingGame.cost_b\[1\]=-0.2 is outside"),
        ({"cost_b": (0.4,)}, r"BiddingGame.cost_b has 1 values; capacity_kwh has 2"),
        ({"demand_kwh": -5.0}, r"BiddingGame.demand_kwh=-5.0 is outside \[0, 1e\+09\]"),
        ({"demand_kwh": math.inf}, r"BiddingGame.demand_kwh=inf is outside"),
        (
            {"price_interval": (0.75, 0.45)},
            r"BiddingGame.price_interval=\(0.75, 0.45\) is reversed",
        ),
        ({"quote_bounds": (0.6, 0.6)}, r"BiddingGame.quote_bounds=\(0.6, 0.6\) is reversed"),
        ({"grid_price": 0.7}, r"BiddingGame.grid_price=0.7 is outside \(0.75, 100\]"),
        ({"delta": 1.3}, r"BiddingGame.delta=1.3 is outside \[0.85, 1.2\]"),
        ({"price_step": 1e-6}, r"strategy set has .* strategies"),
    ],
)
def test_bidding_game_bad_input_names_the_field(kwargs: dict, pattern: str) -> None:
    args = {
        "capacity_kwh": (130.0, 258.0),
        "cost_a": (0.001, 0.0004),
        "cost_b": (0.4, 0.22),
        "demand_kwh": 300.0,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        BiddingGame(**args)


# ------------------------------------------------------------------ strategy sets (eq. 6)


def test_share_lattice_is_the_simplex_grid() -> None:
    for s, r in ((1, 4), (2, 3), (3, 4), (4, 2)):
        lat = share_lattice(s, r)
        assert lat.shape == (math.comb(r + s - 1, s - 1), s)
        np.testing.assert_allclose(lat.sum(axis=1), 1.0)
        assert (lat >= 0).all() and len({tuple(x) for x in lat}) == lat.shape[0]
        np.testing.assert_allclose(lat * r, np.round(lat * r))


def test_strategy_set_against_a_scalar_enumeration_of_eq6() -> None:
    game = BiddingGame(
        Q,
        (0.0012, 0.0004, 0.0011, 0.0002),
        (0.42, 0.22, 0.44, 0.45),
        550.0,
        quote_bounds=(0.40, 0.75),
        price_interval=(0.40, 0.75),
        price_step=0.01,
    )
    sset = strategy_set(game)
    rho = 0.62
    ok = feasible(sset, rho)
    lo, hi = game.quote_bounds
    for i in range(4):
        du = game.cost_a[i] * Q[i]  # C_MC - C_AC at full output
        floor = 1.05 * (game.cost_b[i] + game.cost_a[i] * Q[i])
        admissible = []
        for k in range(1, sset.shares.shape[0]):
            x = sset.shares[k]
            m = sset.prices[i, k, 1]  # the medium segment
            b = [m + du, m, m - du]
            if any(x[s] > 0 and not lo - 1e-12 <= b[s] <= hi + 1e-12 for s in range(3)):
                continue
            avg = sum(b[s] * x[s] for s in range(3) if x[s] > 0)
            assert abs(x.sum() - 1.0) < 1e-12
            if avg >= floor - 1e-12:
                admissible.append((k, avg))
        cheapest = min(a for _, a in admissible)
        expect = {k for k, a in admissible if a <= max(rho, cheapest) + 1e-12} | {0}
        assert set(np.flatnonzero(ok[i]).tolist()) == expect


def test_competitive_price_closed_form() -> None:
    a, b = (0.001, 0.002, 0.0005), (0.40, 0.30, 0.45)
    game = BiddingGame(
        (500.0, 500.0, 500.0),
        a,
        b,
        300.0,
        quote_bounds=(0.1, 0.9),
        price_interval=(0.1, 0.9),
        grid_price=1.0,
    )
    # all units interior: sum_i (rho - b_i) / (2 a_i) = D
    inv = sum(1 / (2 * ai) for ai in a)
    rho = (300.0 + sum(bi / (2 * ai) for ai, bi in zip(a, b, strict=True))) / inv
    assert competitive_price(game) == pytest.approx(rho, abs=1e-9)
    assert competitive_price(BiddingGame((10.0,), (0.0,), (0.5,), 20.0)) == 0.75  # scarcity


def test_aggregator_utility_eq4() -> None:
    assert aggregator_utility(1.1, 0.6, 100.0, 50.0, 0.8) == pytest.approx(0.1 * (60 + 40))
    assert aggregator_utility(0.9, 0.6, 100.0, 0.0, 0.8) < 0  # a discount is a cost


# ------------------------------------------------------------------ the equilibrium


def _scalar_income(game: BiddingGame, prices: np.ndarray, shares: np.ndarray, i: int) -> float:
    """Reference: one scalar clearing, microgrid i's profit at the corrected price."""
    q = np.asarray(game.capacity_kwh)
    c = clear_uniform_price(
        prices.ravel(),
        (shares * q[:, None]).ravel(),
        np.array([np.inf]),
        np.array([game.demand_kwh]),
    )
    lo, hi = game.price_interval
    rho = min(max(c.price, lo), hi) if c.cleared else 0.0
    sold = c.awarded_kwh.reshape(prices.shape)[i].sum()
    return rho * sold - (game.cost_a[i] * sold**2 + game.cost_b[i] * sold)


def test_no_profitable_unilateral_deviation_brute_force(paper: dict) -> None:
    for d, (game, results) in paper.items():
        sset = strategy_set(game)
        for name, r in results.items():
            assert r.converged, (d, name)
            assert r.price_trace[-1] == pytest.approx(r.bound_price)  # consistent fixed point
            ok = feasible(sset, r.bound_price)
            for i in np.flatnonzero(r.strategy >= 0).tolist():
                here = _scalar_income(game, r.prices, r.shares, i)
                assert here == pytest.approx(r.income[i], abs=1e-9)
                best = -np.inf
                for k in np.flatnonzero(ok[i]).tolist():
                    p, x = r.prices.copy(), r.shares.copy()
                    p[i], x[i] = sset.prices[i, k], sset.shares[k]
                    best = max(best, _scalar_income(game, p, x, i))
                assert best <= here + 1e-7, (d, name, i, best - here)
            assert (unilateral_gains(game, r, sset) <= 1e-7).all()
    # the check is discriminating: microgrid 2 withholding is no equilibrium
    game, results = paper[550.0]
    r = results["improved"]
    shares = r.shares.copy()
    shares[1] = 0.0
    strategy = r.strategy.copy()
    strategy[1] = 0
    off = r._replace(shares=shares, strategy=strategy, income=r.income.copy())
    off.income[1] = 0.0
    assert unilateral_gains(game, off)[1] > 1.0


def test_tiny_game_against_brute_force_equilibria() -> None:
    # 2 microgrids, 1 segment: strategies = a price per microgrid; enumerate every profile
    game = BiddingGame(
        (60.0, 60.0),
        (0.001, 0.002),
        (0.40, 0.42),
        80.0,
        n_segments=1,
        quote_bounds=(0.40, 0.70),
        price_interval=(0.40, 0.70),
        price_step=0.05,
        share_resolution=1,
    )
    r = solve_nash_bidding(game)
    sset = strategy_set(game)
    ok = feasible(sset, r.bound_price)
    sets = [np.flatnonzero(ok[i]).tolist() for i in range(2)]

    def income(k0: int, k1: int, i: int) -> float:
        p = np.stack((sset.prices[0, k0], sset.prices[1, k1]))
        x = np.stack((sset.shares[k0], sset.shares[k1]))
        return _scalar_income(game, p, x, i)

    equilibria = {
        (k0, k1)
        for k0 in sets[0]
        for k1 in sets[1]
        if income(k0, k1, 0) >= max(income(j, k1, 0) for j in sets[0]) - 1e-9
        and income(k0, k1, 1) >= max(income(k0, j, 1) for j in sets[1]) - 1e-9
    }
    assert r.converged and tuple(r.strategy.tolist()) in equilibria


def test_paper_claims_on_the_scenario(paper: dict) -> None:
    imp = {d: res["improved"] for d, (_, res) in paper.items()}
    trad = {d: res["traditional"] for d, (_, res) in paper.items()}
    for d in DEMANDS_KW:
        # microgrid 2 (index 1) wins the largest volume and income
        assert np.argmax(imp[d].sold_kwh) == 1 and np.argmax(imp[d].income) == 1
        # the improved strategy wins at least the traditional volume of microgrid 1 ...
        assert imp[d].sold_kwh[0] >= trad[d].sold_kwh[0] - 1e-9
        # ... and converges in no more iterations
        assert imp[d].iterations <= trad[d].iterations
    inc = np.array([imp[d].income for d in DEMANDS_KW])
    assert (np.diff(inc, axis=0) >= -1e-9).all() and (np.diff(inc.sum(axis=1)) > 0).all()
    np.testing.assert_allclose(imp[1000.0].sold_kwh, Q)  # every microgrid sells its capacity
    assert imp[550.0].price < trad[550.0].price  # Fig. 8: the improved price is lower


def test_iteration_cap_fails_and_reports_it() -> None:
    game = scenario_game(550.0)
    full = solve_nash_bidding(game)
    assert full.converged and full.iterations >= 2
    capped = solve_nash_bidding(game, max_iter=1)
    assert not capped.converged and capped.iterations == 1
    assert len(capped.price_trace) == 2


def test_traditional_quotes_are_the_fixed_quotes_baseline() -> None:
    game = scenario_game(550.0)
    prices, shares = traditional_quotes(game)
    q, a, b = game.arrays
    mc = b + 2 * a * q
    np.testing.assert_allclose(prices, np.clip(mc[:, None] * [1.2, 1.0, 0.8], 0.40, 0.75))
    np.testing.assert_allclose(shares, 1 / 3)
    env = mgenv.parallel_env("crosschain_aggregators", user_load_kw=(275.0,))
    obs, _ = env.reset(seed=0)
    acts = baselines.make("fixed_quotes")(obs, env)
    for i in range(4):
        np.testing.assert_allclose(
            to_price(acts[f"mg_{i}"][:3], env.config.market), prices[i], atol=1e-6
        )


# ------------------------------------------------------------------ the policy in the env


def _run_env(demand_kw: float) -> mgenv.MarketEnv:
    """Three periods with Nash-bidding microgrids, truthful aggregators, the ideal chain."""
    env = mgenv.parallel_env(
        "crosschain_aggregators",
        user_load_kw=(demand_kw / 2,),
        learning_roles=("agg",),
        protocol="ideal",
    )
    obs, _ = env.reset(seed=3)
    agg = baselines.make("truthful")
    for _ in range(3):
        obs, *_ = env.step(agg(obs, env))
    return env


@pytest.mark.parametrize("demand", DEMANDS_KW)
def test_env_with_nash_policy_reproduces_the_solver(paper: dict, demand: float) -> None:
    env = _run_env(demand)
    r = paper[demand][1]["improved"]
    for res in env.history:
        np.testing.assert_allclose(res.settlement.sold[:4], r.sold_kwh, atol=1e-6)
        assert res.price == pytest.approx(r.price, abs=1e-6)
        np.testing.assert_allclose(res.profit[:4], r.income, atol=1e-6)


def test_policy_actions_layout_and_fallback_to_traditional() -> None:
    env = mgenv.parallel_env(
        "crosschain_aggregators", user_load_kw=(275.0,), learning_roles=("agg",)
    )
    env.reset(seed=0)
    info = env.public_info()
    game = game_from_info(info)
    pol = NashBidding(max_iter=1)  # cannot converge at 550 kW: bids the traditional quotes
    acts = pol.act_role("mg", np.arange(4), np.zeros((4, 16)), env)
    assert acts.shape == (4, 9) and (np.abs(acts) <= 1).all()
    prices, shares = traditional_quotes(game)
    np.testing.assert_allclose(to_price(acts[:, :3], info.market), prices, atol=1e-9)
    np.testing.assert_allclose(to_unit(acts[:, 3:6]), shares)
    good = NashBidding().act_role("mg", np.array([2, 0]), np.zeros((2, 16)), env)
    r = solve_nash_bidding(game)
    offer = to_unit(good[:, 6])
    np.testing.assert_allclose(offer, (r.shares[[2, 0]].sum(axis=1) > 0).astype(float))
    np.testing.assert_allclose(to_unit(good[:, 3:6]), r.shares[[2, 0]])
    assert "nash_bidding" in baselines.names()


def test_a_cycling_search_stops_when_a_profile_repeats() -> None:
    # a period of ccche_thermal_game where best responses cycle (Edgeworth-like)
    game = BiddingGame(
        (96.99, 118.65, 42.67, 80.0),
        (0.003, 0.0008, 0.002, 0.0012),
        (0.55, 0.40, 0.50, 0.45),
        226.09,
        quote_bounds=(0.5, 1.0476),
        price_interval=(0.5, 1.0476),
        grid_price=1.1,
    )
    r = solve_nash_bidding(game, max_iter=500)
    assert not r.converged and r.iterations < 500
    period = [k for k in range(len(r.price_trace) - 1) if r.price_trace[k] == r.price_trace[-1]]
    assert period  # the last clearing price was seen before: the dynamics are periodic
    again = solve_nash_bidding(game, max_iter=r.iterations + 50)
    np.testing.assert_array_equal(again.price_trace, r.price_trace)  # deterministic
