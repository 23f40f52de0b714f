"""Seed 001's aggregators selling natural gas (eq. 18) and keeping batteries (eqs. 19, 34)."""

from __future__ import annotations

import numpy as np
import pytest

import mgenv
from mgenv.config import MarketParams
from mgenv.market.mechanism import MarketInputs
from mgenv.market.three_tier import ThreeTier, gas_bills, to_action
from tests.conftest import rollout
from tests.test_invariants import check_period

ALL = ("mg", "agg", "user")
# A battery that trades only in its market (no valley charge from the grid), from half full.
STORAGE = {
    "agg_battery_kwh": (200.0, 150.0),
    "agg_battery_kw": (50.0, 40.0),
    "agg_soc_init": (0.5,),
    "agg_charge_below": 0.7,
    "agg_discharge_above": 0.95,
    "agg_grid_charge_below": 0.0,
}


def _env(**kw):
    return mgenv.parallel_env("ccche_thermal_game", learning_roles=ALL, protocol="ideal", **kw)


def test_gas_bills_conserve_money_and_give_the_margin_to_the_home_aggregator():
    gas = np.array([10.0, 20.0, 0.0, 5.0, 1.0])
    pays, margin, external = gas_bills(gas, 2, 3.0, 2.5)
    np.testing.assert_allclose(pays, 3.0 * gas)
    np.testing.assert_allclose(external, 2.5 * gas)
    np.testing.assert_allclose(margin, [0.5 * (10 + 0 + 1), 0.5 * (20 + 5)])
    assert pays.sum() == pytest.approx(margin.sum() + external.sum(), rel=1e-15)


@pytest.mark.parametrize("season", ["winter", "summer"])
def test_money_and_energy_balance_with_gas_and_storage(season):
    env = _env(season=season, tier_gas=True, **STORAGE)
    for seed in (0, 1):
        rollout(env, seed)
        for r in env.history:
            check_period(env, r)
            assert r.gas_paid is not None and r.agg_storage is not None


def test_failed_trades_of_the_batteries_fall_back_to_the_grid():
    env = mgenv.parallel_env(
        "ccche_thermal_game",
        learning_roles=ALL,
        protocol="pbft",
        message_loss=0.5,
        tier_gas=True,
        **STORAGE,
    )
    rollout(env, 3)
    for r in env.history:
        check_period(env, r)
    assert any(not r.committed.all() for r in env.history)


def test_aggregator_batteries_charge_cheap_discharge_dear_within_bounds():
    env = _env(**STORAGE)
    charged = discharged = 0.0
    for seed in (0, 1, 2):
        rollout(env, seed)
        b0 = env.history[0].agg_storage
        assert b0 is not None
        np.testing.assert_allclose(b0.level_before, 0.5 * np.array([200.0, 150.0]))  # reset
        level = b0.level_before
        for r in env.history:
            b = r.agg_storage
            np.testing.assert_array_equal(b.level_before, level)  # carried over
            level = b.level_after
            lo, hi = b.soc_min * b.capacity_kwh, b.soc_max * b.capacity_kwh
            assert np.all(level >= lo - 1e-9) and np.all(level <= hi + 1e-9)
            assert np.all(b.charge_kwh <= np.array([50.0, 40.0]) + 1e-9)
            assert np.all(b.discharge_kwh <= np.array([50.0, 40.0]) + 1e-9)
            assert np.all(b.grid_kwh == 0.0)  # no grid charging
            day_end = r.period == 23
            assert np.all(b.residue_kwh >= 0.0) and (day_end or np.all(b.residue_kwh == 0.0))
            if day_end:
                np.testing.assert_allclose(b.residue_kwh, np.abs(level - b0.level_before))
            # eq. 19's C_battery Q_battery, and the day-end residue at agg_residue_price
            np.testing.assert_allclose(b.cost, 0.02 * b.charge_kwh + 1.1 * b.residue_kwh)
            charged += float(b.charge_kwh.sum())
            discharged += float(b.discharge_kwh.sum())
            check_period(env, r)
    assert charged > 0 and discharged > 0


def test_battery_trades_at_the_aggregators_prices():
    m = MarketParams(mechanism="three_tier", price_floor=0.5, price_cap=1.1, **STORAGE)
    tier = ThreeTier(m)
    inputs = MarketInputs(
        offerable_kwh=np.array([100.0, 0.0]),
        deficit_kwh=np.array([0.0, 0.0]),
        user_need_kwh=np.array([0.0]),
        grid_buy=0.45,
        feed_in=0.35,
        buyer_agg=np.array([0, 1, 0]),
        buyer_global=np.array([0, 1, 4]),
        n_mg=2,
        n_agg=2,
    )
    agg = np.stack(
        (to_action(np.array([0.6, 0.6]), 0.5, 1.1), to_action(np.full(2, 0.9), 0.5, 1.1)), 1
    )
    actions = {"mg": np.array([[-1.0, 1.0, 1.0, -1.0]] * 2), "agg": agg, "user": np.ones((1, 2))}
    out = tier.clear(actions, inputs)
    b = out.storage
    assert b is not None
    # agg_0's battery (global index 2) buys its power limit from mg_0 at p_J->M = 0.6
    np.testing.assert_allclose(b.charge_kwh, [50.0, 0.0])
    assert out.trades.buyer.tolist() == [2] and out.trades.seller.tolist() == [0]
    np.testing.assert_allclose(out.trades.price * out.trades.kwh, [0.6 * 50.0])
    np.testing.assert_allclose(b.level_after, [100.0 + 0.95 * 50.0, 75.0])


def test_aggregators_earn_the_gas_margin():
    profits = {}
    for gas in (False, True):
        env = _env(tier_gas=gas, tier_gas_price=3.0, tier_gas_wholesale=2.4)
        rollout(env, 5)
        profits[gas] = env.history
    nm, na = 4, 2
    home = np.arange(nm) % na
    for off, on in zip(profits[False], profits[True], strict=True):
        gas_m3 = on.physics.extra["gas_m3"]
        np.testing.assert_array_equal(gas_m3, off.physics.extra["gas_m3"])  # same dispatch
        margin = np.bincount(home, weights=(3.0 - 2.4) * gas_m3, minlength=na)
        np.testing.assert_allclose(on.profit[nm : nm + na] - off.profit[nm : nm + na], margin)
        np.testing.assert_allclose(on.gas_paid, 3.0 * gas_m3)
        np.testing.assert_allclose(
            on.profit[:nm] - off.profit[:nm], off.physics.fuel_cost - 3.0 * gas_m3, atol=1e-9
        )
        np.testing.assert_allclose(on.physics.fuel_cost, 2.4 * gas_m3)  # external bill
    total = sum(float(r.physics.extra["gas_m3"].sum()) for r in profits[True])
    assert total > 0


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"agg_soc_min": (0.9,), "agg_soc_max": (0.1,), "agg_soc_init": (0.5,)}, "agg_soc"),
        ({"agg_eta_charge": (0.0,)}, "agg_eta_charge"),
        ({"agg_battery_kwh": (-1.0,)}, "agg_battery_kwh"),
        ({"agg_discharge_above": 0.6}, "agg_discharge_above"),
        ({"tier_gas_price": -1.0}, "tier_gas_price"),
        ({"agg_grid_charge_below": -0.1}, r"agg_grid_charge_below=-0.1 is outside \[0, 100\]"),
        ({"agg_grid_charge_below": 101.0}, r"agg_grid_charge_below=101.0 is outside \[0, 100\]"),
        ({"agg_grid_charge_below": float("nan")}, r"agg_grid_charge_below=nan is outside"),
        ({"agg_residue_price": -1.0}, r"agg_residue_price=-1.0 is outside \[0, 100\]"),
        ({"agg_residue_price": float("inf")}, r"agg_residue_price=inf is outside \[0, 100\]"),
    ],
)
def test_bad_parameters_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        MarketParams(mechanism="three_tier", **kw)


def test_gas_and_storage_need_their_market_and_physics():
    with pytest.raises(ValueError, match="three_tier"):
        MarketParams(tier_gas=True)
    with pytest.raises(ValueError, match="three_tier"):
        MarketParams(agg_battery_kwh=(10.0,))
    with pytest.raises(ValueError, match="ccche"):
        mgenv.parallel_env("ccche_thermal_game", physics="electric", tier_gas=True)
