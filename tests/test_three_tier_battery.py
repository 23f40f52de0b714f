"""Seed 001's aggregator batteries: the valley rule, the residual market moves, the day end.

The vectorised rule (:func:`mgenv.market.three_tier.battery_moves`) against a slow scalar
reference, hand-built periods, money and energy through the settlement, and bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import baselines
import mgenv
from mgenv.config import MarketParams
from mgenv.market.mechanism import MarketInputs
from mgenv.market.three_tier import ThreeTier, battery_moves, day_end, to_action
from tests.conftest import rollout
from tests.test_invariants import check_period

ALL = ("mg", "agg", "user")
AGG = (0.5, 1.1)


def ref_moves(
    level: float,
    kwh: float,
    kw: float,
    eta_c: float,
    eta_d: float,
    lo: float,
    hi: float,
    init: float,
    excess: float,
    shortfall: float,
    cheap: bool,
    dear: bool,
    valley: bool,
    grid_on: bool,
    dt: float,
) -> tuple[float, float, float]:
    """One battery, one period, written out as the module docstring states the rule."""
    power = kw * dt
    start = init * kwh
    buy = 0.0
    if cheap:  # store the supply its buyers do not take, within power and room
        buy = min(power, max(hi * kwh - level, 0.0) / eta_c, excess)
    floor = lo * kwh
    if grid_on:  # sell no deeper than one valley period restores
        floor = max(floor, start - eta_c * power)
    sell = 0.0
    if dear and buy <= 0.0 and not valley:
        sell = min(power, max(level - floor, 0.0) * eta_d, shortfall)
    grid = 0.0
    if valley:  # restore the start content from the grid
        grid = min(max(power - buy, 0.0), max(start - (level + eta_c * buy), 0.0) / eta_c)
    return buy, sell, grid


def _bat(kwh, kw, eta_c, eta_d, lo, hi, init):
    return {
        "kwh": np.array(kwh),
        "kw": np.array(kw),
        "eta_c": np.array(eta_c),
        "eta_d": np.array(eta_d),
        "lo": np.array(lo),
        "hi": np.array(hi),
        "init": np.array(init),
    }


unit_f = st.floats(0.0, 1.0)
battery = st.tuples(
    st.floats(0.0, 500.0),  # kwh
    st.floats(0.0, 200.0),  # kw
    st.floats(0.05, 1.0),  # eta_c
    st.floats(0.05, 1.0),  # eta_d
    unit_f,  # lo
    unit_f,  # hi
    unit_f,  # init (position in [lo, hi])
    unit_f,  # level (position in [lo, hi])
    st.floats(0.0, 300.0),  # excess or shortfall
    st.booleans(),  # the market has excess (else shortfall)
    st.booleans(),  # cheap
    st.booleans(),  # dear
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(battery, min_size=1, max_size=5),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0.25, 1.0, 2.0]),
)
def test_vectorised_rule_matches_the_scalar_reference(rows, valley, grid_on, dt):
    valley = valley and grid_on  # a valley period needs grid charging on
    cols = []
    for kwh, kw, ec, ed, a, b, u, v, resid, has_excess, cheap, dear in rows:
        lo, hi = min(a, b), max(a, b)
        init, share = lo + u * (hi - lo), lo + v * (hi - lo)
        excess, shortfall = (resid, 0.0) if has_excess else (0.0, resid)
        cols.append((share * kwh, kwh, kw, ec, ed, lo, hi, init, excess, shortfall, cheap, dear))
    level, kwh, kw, ec, ed, lo, hi, init, excess, shortfall, cheap, dear = (
        np.array(c) for c in zip(*cols, strict=True)
    )
    bat = _bat(kwh, kw, ec, ed, lo, hi, init)
    got = battery_moves(level, bat, excess, shortfall, cheap, dear, valley, grid_on, dt)
    for j, row in enumerate(cols):
        want = ref_moves(*row[:10], row[10], row[11], valley, grid_on, dt)
        np.testing.assert_allclose(
            [got.buy[j], got.sell[j], got.grid[j]], want, rtol=1e-12, atol=1e-12
        )
        buy, sell, grid = want
        assert not (sell > 0 and buy + grid > 0)  # mutually exclusive
        after = row[0] + row[3] * (buy + grid) - sell / row[4]
        assert row[5] * row[1] - 1e-9 <= after <= row[6] * row[1] + 1e-9  # content bounds
        assert buy + grid <= row[2] * dt + 1e-9 and sell <= row[2] * dt + 1e-9  # power


def test_one_valley_period_restores_what_the_peak_sold():
    # 200 kWh, 100 kW, eta 0.95 both ways, SOC 0.2-0.8 from 0.8: E0 = 160 kWh; the floor is
    # E0 - 0.95 * 100 = 65 kWh, so a sale stops at 65 and one valley hour restores 160.
    bat = _bat([200.0], [100.0], [0.95], [0.95], [0.2], [0.8], [0.8])
    no, yes = np.array([False]), np.array([True])
    peak = battery_moves(
        np.array([160.0]), bat, np.zeros(1), np.array([500.0]), no, yes, False, True, 1.0
    )
    assert peak.sell[0] == pytest.approx((160.0 - 65.0) * 0.95)  # 90.25 kWh delivered
    level = 160.0 - peak.sell[0] / 0.95
    assert level == pytest.approx(65.0)
    val = battery_moves(
        np.array([level]), bat, np.zeros(1), np.array([500.0]), no, yes, True, True, 1.0
    )
    assert val.sell[0] == 0.0  # never sells in the valley
    assert val.grid[0] == pytest.approx(100.0)  # its full power for one hour
    assert level + 0.95 * val.grid[0] == pytest.approx(160.0, abs=1e-9)
    # without grid charging the sale goes down to soc_min: 40 kWh
    off = battery_moves(
        np.array([160.0]), bat, np.zeros(1), np.array([500.0]), no, yes, False, False, 1.0
    )
    assert off.sell[0] == pytest.approx(100.0)  # its power binds before 40 kWh
    assert off.grid[0] == 0.0


def test_day_end_is_every_24_hours_after_reset():
    assert [t for t in range(72) if day_end(t, 1.0)] == [23, 47, 71]
    assert [t for t in range(100) if day_end(t, 0.25)] == [95]
    assert not day_end(None, 1.0) and not day_end(0, 1.0)


def _inputs(grid_buy, period=None):
    # mg_0 (agg_0) and mg_1 (agg_1) may sell; mg_2 (agg_0) and user_0 (agg_1) buy
    return MarketInputs(
        offerable_kwh=np.array([30.0, 100.0, 0.0]),
        deficit_kwh=np.array([0.0, 0.0, 20.0]),
        user_need_kwh=np.array([40.0]),
        grid_buy=grid_buy,
        feed_in=0.35,
        buyer_agg=np.array([0, 1, 0, 1]),
        buyer_global=np.array([0, 1, 2, 5]),
        n_mg=3,
        n_agg=2,
        period=period,
    )


def _actions(price_mg, price_buyer):
    agg = np.stack((to_action(np.array(price_mg), *AGG), to_action(np.array(price_buyer), *AGG)), 1)
    mg = np.array([[-1.0, 1.0, 1.0, 1.0]] * 3)  # ask 0.5, offer all, buy all up to 1.05
    return {"mg": mg, "agg": agg, "user": np.ones((1, 2))}


def _tier(**kw):
    base = {
        "agg_battery_kwh": (200.0,),
        "agg_battery_kw": (100.0,),
        "agg_soc_init": (0.8,),
        "agg_grid_charge_below": 0.5,
    }
    return ThreeTier(
        MarketParams(mechanism="three_tier", price_floor=0.5, price_cap=1.1, **{**base, **kw})
    )


def test_battery_serves_the_shortfall_and_leaves_the_microgrids_their_sales():
    # p_J->M 0.94, p_J->Y 1.02 at both aggregators; batteries at E0 = 160 kWh, floor 65 kWh
    #  aggregator  sellers (accepted)  buyers (accepted)  residual     battery
    #  agg_0       mg_0: 30            mg_2: 120          short 90     sells 90 (room 90.25)
    #  agg_1       mg_1: 100           user_0: 40         excess 60    buys 0 (0.94 > 0.7)
    tier = _tier()
    inp = _inputs(1.10)._replace(deficit_kwh=np.array([0.0, 0.0, 120.0]))
    out = tier.clear(_actions([0.94, 0.94], [1.02, 1.02]), inp)
    b = out.storage
    assert b is not None
    np.testing.assert_allclose(b.discharge_kwh, [90.0, 0.0])
    np.testing.assert_allclose(b.charge_kwh, 0.0)
    sold = np.bincount(out.trades.seller, weights=out.trades.kwh, minlength=5)
    np.testing.assert_allclose(sold[:2], [30.0, 40.0])  # mg_0 all, mg_1 what user_0 takes
    assert sold[3] == pytest.approx(90.0)  # agg_0's battery (global index 3)
    bought = np.bincount(out.trades.buyer, weights=out.trades.kwh, minlength=6)
    assert bought[2] == pytest.approx(120.0) and bought[5] == pytest.approx(40.0)
    # the battery is paid p_J->M as a seller and its aggregator keeps the margin: p_J->Y
    mine = out.trades.seller == 3
    np.testing.assert_allclose(out.trades.price[mine] * out.trades.delta[mine], 1.02)


def test_valley_charge_is_bought_from_the_grid_and_paid_at_its_price():
    env = mgenv.parallel_env("ccche_thermal_game", protocol="ideal", learning_roles=ALL)
    rollout(env, 0, baselines.make("noncooperative"))
    a = slice(4, 6)  # the aggregators
    charged = 0.0
    for r in env.history:
        b, s = r.agg_storage, r.settlement
        valley = env.config.grid.buy_by_hour[int(r.hour)] <= 0.5
        if valley:
            assert np.all(b.discharge_kwh == 0.0)
        else:
            assert np.all(b.grid_kwh == 0.0)
        if b.grid_kwh.sum() > 0:
            charged += float(b.grid_kwh.sum())
            np.testing.assert_allclose(s.grid_import[a], b.grid_kwh)  # nothing else imported
            np.testing.assert_allclose(s.cost[a], 0.45 * b.grid_kwh)  # at the valley price
        check_period(env, r)  # incl. money: the grid's cash receives it
    assert charged > 0.0


def test_battery_stays_idle_when_nothing_trades():
    for season in ("winter", "summer"):
        env = mgenv.parallel_env(
            "ccche_thermal_game", season=season, protocol="ideal", learning_roles=ALL
        )
        rollout(env, 1, baselines.make("grid_only"))
        for r in env.history:
            b = r.agg_storage
            assert np.all(b.charge_kwh == 0.0) and np.all(b.discharge_kwh == 0.0)
            np.testing.assert_allclose(b.level_after, b.level_before)


def test_residue_at_the_day_end_is_charged():
    # a battery that cannot reach its start by the day's end: 48 periods from 12:00, so its
    # days end at 11:00 (a peak); sales after the last valley leave content off E0
    env = mgenv.parallel_env(
        "ccche_thermal_game", protocol="ideal", learning_roles=ALL, start_hour=12, horizon=48
    )
    found = False
    for seed in range(4):
        rollout(env, seed, baselines.make("noncooperative"))
        for r in env.history:
            b = r.agg_storage
            if r.period in (23, 47):
                start = b.capacity_kwh * 0.8
                np.testing.assert_allclose(b.residue_kwh, np.abs(b.level_after - start))
                found |= bool(b.residue_kwh.sum() > 1.0)
            else:
                assert np.all(b.residue_kwh == 0.0)
            np.testing.assert_allclose(b.cost, 0.02 * b.charge_kwh + 1.1 * b.residue_kwh)
            check_period(env, r)
    assert found


@settings(max_examples=25, deadline=None)
@given(
    n_aggregators=st.integers(1, 3),
    start_hour=st.integers(0, 23),
    horizon=st.integers(1, 30),
    message_loss=st.floats(0.0, 1.0),
    kw=st.floats(0.0, 300.0),
    init=st.floats(0.2, 0.8),
    season=st.sampled_from(["winter", "summer"]),
    seed=st.integers(0, 2**16),
)
def test_balances_hold_with_batteries_under_fuzzing(
    n_aggregators, start_hour, horizon, message_loss, kw, init, season, seed
):
    env = mgenv.parallel_env(
        "ccche_thermal_game",
        season=season,
        n_aggregators=n_aggregators,
        start_hour=start_hour,
        horizon=horizon,
        protocol="pbft",
        message_loss=message_loss,
        agg_battery_kw=(kw,),
        agg_soc_init=(init,),
    )
    rollout(env, seed)
    for r in env.history:
        check_period(env, r)
