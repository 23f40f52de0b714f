"""Energy and money balance every period, bounds on SOC and prices, for every scenario."""

from __future__ import annotations

import numpy as np
import pytest

import baselines
import mgenv
from tests.conftest import rollout


def check_period(env, r):
    if env.config.physics == "ccche":  # heat and cold balance too (seed 001)
        from tests.test_ccche import check_carriers

        check_carriers(env, r)
    cfg = env.config
    nm, na = cfg.n_microgrids, cfg.n_aggregators
    st, d = r.settlement, r.dispatch
    pv, wind, load, user_load = r.realised
    # microgrid electric balance: sources = sinks, kWh
    sources = (
        pv + wind + r.physics.gen_kwh + d.discharge + st.grid_import[:nm] + st.bought_committed[:nm]
    )
    sinks = load + d.charge + st.grid_export[:nm] + st.sold_committed[:nm]
    np.testing.assert_allclose(sources, sinks, rtol=1e-9, atol=1e-9)
    # users: imports + market purchases = load + exports
    u = slice(nm + na, None)
    np.testing.assert_allclose(
        st.grid_import[u] + st.bought_committed[u],
        user_load + st.grid_export[u],
        rtol=1e-9,
        atol=1e-9,
    )
    # aggregators hold no energy, except in their batteries (seed 001): what a battery
    # charged came from the market or (failed trades) the grid, what it discharged went there
    a = slice(nm, nm + na)
    b = r.agg_storage
    if b is None:
        assert np.all(st.grid_import[a] == 0) and np.all(st.grid_export[a] == 0)
        storage_cost = 0.0
    else:
        np.testing.assert_allclose(
            st.grid_import[a] + st.bought_committed[a], b.charge_kwh, rtol=1e-9, atol=1e-9
        )
        np.testing.assert_allclose(
            st.sold_committed[a] + st.grid_export[a], b.discharge_kwh, rtol=1e-9, atol=1e-9
        )
        np.testing.assert_allclose(
            b.level_after,
            b.level_before + b.eta_charge * b.charge_kwh - b.discharge_kwh / b.eta_discharge,
            rtol=1e-12,
            atol=1e-9,
        )
        assert np.all(b.level_after >= b.soc_min * b.capacity_kwh - 1e-9)
        assert np.all(b.level_after <= b.soc_max * b.capacity_kwh + 1e-9)
        assert not np.any((b.charge_kwh > 0) & (b.discharge_kwh > 0))
        storage_cost = float(b.cost.sum())
    # money: participants + grid + fuel supplier (the gas company: with aggregators selling
    # gas, fuel_cost is their wholesale bill) + penalties + battery cost net to zero
    total = (
        r.profit.sum()
        + (r.physics.fuel_cost + r.physics.penalty).sum()
        + st.grid_cash
        + storage_cost
    )
    assert abs(total) <= 1e-9 * max(1.0, float(np.abs(st.revenue).sum()))
    # traded volumes balance between sellers and buyers
    np.testing.assert_allclose(st.sold.sum(), st.bought.sum(), rtol=1e-12, atol=1e-12)
    # SOC stays within bounds
    f = env.core.fleet
    assert np.all(r.physics.soc_after >= f.soc_min - 1e-12) and np.all(
        r.physics.soc_after <= f.soc_max + 1e-12
    )
    # price inside the market's interval when something cleared
    m = cfg.market
    if r.cleared:
        assert m.price_floor - 1e-12 <= r.price <= m.price_cap + 1e-12
    for x in (st.grid_import, st.grid_export, r.physics.gen_kwh, d.charge, d.discharge):
        assert np.all(x >= -1e-12)


@pytest.mark.parametrize("policy", [None, "truthful", "fixed_quotes", "grid_only"])
def test_balances_every_period(scenario, policy):
    env = mgenv.parallel_env(scenario)
    pol = None if policy is None else baselines.make(policy)
    for seed in range(3):
        rollout(env, seed, pol)
        assert len(env.history) == env.config.horizon
        for r in env.history:
            check_period(env, r)


def test_rewards_are_profits_and_infos_consistent():
    env = mgenv.parallel_env("default")
    for _obs, rewards, _t, _tr, infos in rollout(env, 1):
        for a, rew in rewards.items():
            assert np.isfinite(rew)
            assert rew == pytest.approx(infos[a]["profit"])
            assert 0.0 <= infos[a]["commit_ratio"] <= 1.0


def test_grid_only_never_trades():
    env = mgenv.parallel_env("default", opponent_policy="grid_only")
    rollout(env, 0, baselines.make("grid_only"))
    assert all(r.trades.kwh.size == 0 for r in env.history)
    assert env.episode_kpis()["local_consumption_rate"] == 0.0


def test_trading_beats_grid_only_for_the_market_as_a_whole():
    welfare = {}
    for name in ("truthful", "grid_only"):
        env = mgenv.parallel_env("default", protocol="ideal", opponent_policy=name)
        total = 0.0
        for seed in range(3):
            rollout(env, seed, baselines.make(name))
            total += env.episode_kpis()["welfare"]
        welfare[name] = total
    assert welfare["truthful"] > welfare["grid_only"]


def test_failed_trades_fall_back_to_grid():
    env = mgenv.parallel_env("default", protocol="pbft", message_loss=1.0)
    rollout(env, 0, baselines.make("truthful"))
    traded = sum(r.trades.kwh.sum() for r in env.history)
    assert traded > 0
    assert all(not r.committed.any() for r in env.history)
    assert env.episode_kpis()["commit_share"] == 0.0
    for r in env.history:
        check_period(env, r)
