"""The CCHE physics model in the env (seed 001): what must hold every period and every day."""

from __future__ import annotations

import re

import numpy as np
import pytest

import baselines
import mgenv
from mgenv.physics.ccche import FEATURES, cool_shape, heat_shape
from mgenv.physics.model import Forecast
from tests.conftest import rollout
from tests.test_invariants import check_period

SEASONS = ("winter", "summer")
TOL = 1e-9


def _storage_rows(env, r):
    """Battery, heat tank and ice content shares after the period, (3, n)."""
    e = r.physics.extra
    return np.stack((r.physics.soc_after, e["heat_tank_soc"], e["ice_soc"]))


def check_carriers(env, r):
    """Heat and cold balance, eq. 7, operating modes, content bounds (one period)."""
    e, m = r.physics.extra, env.core.physics
    heat_in = e["heat_recovered"] + e["heat_boiler"] + e["heat_tank_discharge"] + e["heat_unmet"]
    heat_out = e["heat_load"] + e["heat_tank_charge"] + e["heat_vented"]
    np.testing.assert_allclose(heat_in, heat_out, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        e["cool_chiller"] + e["cool_ice"] + e["cool_unmet"], e["cool_load"], rtol=1e-9, atol=1e-9
    )
    for key, arr in e.items():
        if isinstance(arr, np.ndarray) and arr.dtype.kind == "f":
            assert np.all(arr >= -TOL), key
    assert np.all(e["cool_chiller"] + e["ice_making"] <= m.chiller_max + TOL)  # eq. 7
    assert np.all(e["elec_boiler"] <= m.boiler_max + TOL)
    t = r.period
    if not m.peak[t]:
        assert np.all(e["cool_ice"] <= TOL)  # the ice tank releases only in peak hours
    if not m.valley[t]:  # ice is made only in valley hours (bar top-ups against self-loss)
        top_up = (1.0 - m.keep[2]) * m.soc_hi[2] * m.cap[2] / m.eta_c[2]
        assert np.all(e["ice_making"] <= top_up + TOL)
    shares = _storage_rows(env, r)
    assert np.all(shares >= m.soc_lo - TOL) and np.all(shares <= m.soc_hi + TOL)


@pytest.mark.parametrize("season", SEASONS)
@pytest.mark.parametrize("dispatch", ["rule", "agent"])
def test_every_carrier_balances_and_storages_stay_in_bounds(season, dispatch):
    env = mgenv.parallel_env("ccche_thermal_game", season=season, dispatch=dispatch)
    for seed in (0, 1):
        rollout(env, seed)  # random actions: with "agent", random set-points
        for r in env.history:
            # electric balance (boilers, chillers in charge), money, and the aggregators'
            # batteries (on in the scenario): charge from market + grid, content in bounds
            assert r.agg_storage is not None
            check_period(env, r)
            check_carriers(env, r)


@pytest.mark.parametrize("season", SEASONS)
@pytest.mark.parametrize("dispatch", ["rule", "agent"])
def test_end_of_day_contents_return_to_their_start(season, dispatch):
    env = mgenv.parallel_env(
        "ccche_thermal_game", season=season, dispatch=dispatch, horizon=48, battery_max_active=10
    )
    m = env.core.physics
    for seed in (0, 3):
        rollout(env, seed)
        ends = [r for r in env.history if r.physics.extra["day_end"]]
        assert [r.period for r in ends] == [23, 47]
        for r in ends:
            np.testing.assert_allclose(_storage_rows(env, r) * m.cap, m.target, atol=1e-6)
            assert np.all(r.physics.extra["residue_kwh"] <= 1e-6)
            b = r.agg_storage  # the aggregators' batteries too
            np.testing.assert_allclose(b.level_after, _agg_start(env), atol=1e-6)
            assert np.all(b.residue_kwh <= 1e-6)


def _agg_start(env):
    """Aggregators' batteries' start contents E0, kWh, (n_agg,)."""
    m, na = env.config.market, env.config.n_aggregators
    tile = np.arange(na)
    kwh = np.asarray(m.agg_battery_kwh)[tile % len(m.agg_battery_kwh)]
    return kwh * np.asarray(m.agg_soc_init)[tile % len(m.agg_soc_init)]


def env_price(env, r):
    """Grid purchase price of period ``r``, yuan/kWh."""
    return float(env.config.grid.buy_by_hour[int(r.hour) % 24])


def _play(season, policy, seed):
    env = mgenv.parallel_env(
        "ccche_thermal_game", season=season, protocol="ideal", learning_roles=("mg", "agg", "user")
    )
    rollout(env, seed, baselines.make(policy))
    return env


@pytest.mark.parametrize("season", SEASONS)
def test_aggregator_batteries_cycle_within_bounds_and_end_the_day_at_their_start(season):
    for seed in range(3):
        env = _play(season, "noncooperative", seed)
        start = _agg_start(env)
        assert np.all(start > 0)  # on in the scenario
        sold = 0.0
        for r in env.history:
            b = r.agg_storage
            lo, hi = b.soc_min * b.capacity_kwh, b.soc_max * b.capacity_kwh
            assert np.all(b.level_after >= lo - 1e-9) and np.all(b.level_after <= hi + 1e-9)
            sold += float(b.discharge_kwh.sum())
            check_period(env, r)
        last = env.history[-1].agg_storage
        np.testing.assert_allclose(last.level_after, start, atol=1e-9)  # E(24) = E(0)
        assert np.all(last.residue_kwh <= 1e-9)
        assert sold > 50.0  # the batteries do serve the peaks


@pytest.mark.parametrize("season", SEASONS)
def test_every_party_gains_at_least_its_no_trade_profit_with_batteries(season):
    """Microgrids and users every period; aggregators over the day (their batteries buy
    in the valley what they sell at the peaks), net of the grid purchases and wear."""
    nm, na = 4, 2
    agg = slice(nm, nm + na)
    for seed in (0, 1):
        runs = {p: _play(season, p, seed) for p in ("noncooperative", "grid_only")}
        profit = {p: np.stack([r.profit for r in e.history]) for p, e in runs.items()}
        gain = profit["noncooperative"] - profit["grid_only"]  # (T, P) yuan
        assert np.all(np.delete(gain, np.r_[agg], axis=1) >= -1e-9), gain.min()
        assert np.all(gain[:, agg].sum(axis=0) > 0.0)  # the day's gain of each aggregator
        for t, r in enumerate(runs["noncooperative"].history):
            b = r.agg_storage
            if b.grid_kwh.sum() > 0:  # no market then: the gain is the valley charge's cost
                assert not r.cleared
                grid_price = env_price(runs["noncooperative"], r)
                np.testing.assert_allclose(gain[t, agg], -(grid_price + 0.02) * b.grid_kwh)
        idle = runs["grid_only"].history
        assert all(r.agg_storage.charge_kwh.sum() == 0 for r in idle)


@pytest.mark.parametrize("season", SEASONS)
def test_prices_at_11_with_the_batteries_on(season):
    """Section 6: 0.93-0.98 (to microgrids) and 0.98-1.03 (to large users) yuan/kWh."""
    for seed in range(3):
        env = _play(season, "noncooperative", seed)
        r = env.history[11]
        assert int(r.hour) == 11 and r.agg_storage is not None
        t = r.trades
        assert t.kwh.sum() > 0
        assert np.all((t.price >= 0.93) & (t.price <= 0.98))
        assert np.all((t.price * t.delta >= 0.98) & (t.price * t.delta <= 1.03 + 1e-12))
        # the batteries' own sales (seller index 4, 5), at any peak, are at their
        # aggregator's prices, as every trade of the period
        sold = 0.0
        for r in env.history:
            mine = (r.trades.seller >= 4) & (r.trades.seller < 6)
            sold += float(r.trades.kwh[mine].sum())
            assert np.all(r.trades.price[mine] * r.trades.delta[mine] >= 0.98)
        assert sold > 0.0


@pytest.mark.parametrize("dispatch", ["rule", "agent"])
def test_ramp_limits_and_daily_count_hold(dispatch):
    env = mgenv.parallel_env(
        "ccche_thermal_game",
        dispatch=dispatch,
        horizon=48,
        battery_max_active=6,
        battery_ramp=0.5,
        tst_ramp=0.5,
    )
    m = env.core.physics
    for seed in (0, 1):
        rollout(env, seed)
        e = [r.physics.extra for r in env.history]
        for a, b, ramp in (
            ("battery_charge", "battery_discharge", m.ramp[0]),
            ("heat_tank_charge", "heat_tank_discharge", m.ramp[1]),
        ):
            for key in (a, b):  # eq. 6 / 12: each of charge and discharge ramps by <= ramp
                steps = np.diff(np.stack([x[key] for x in e]), axis=0)
                assert np.all(np.abs(steps) <= ramp + 1e-9), key
            both = np.stack([x[a] * x[b] for x in e])
            assert np.all(both == 0.0)  # mutually exclusive (eqs. 5 and 11)
        active = np.stack([x["battery_active"] for x in e]).reshape(2, 24, -1).sum(axis=1)
        assert np.all(active <= 6)  # eq. 5's frequency limit, per day


def test_rule_setpoints_reproduce_the_rule_plan():
    env = mgenv.parallel_env("ccche_thermal_game", dispatch="agent", season="summer")
    env.reset(seed=5)
    core, m = env.core, env.core.physics
    p = core.profiles
    for t in range(24):
        f = Forecast(p.pv_forecast[t], p.wind_forecast[t], p.load_forecast[t])
        rule = m.plan(t, f, float(core.tou[int(core.hours[t]) % 24]), None)
        sp = m.rule_setpoints()
        assert sp.shape == (4, 3) and np.all(np.abs(sp) <= 1.0)
        again = m.plan(t, f, float(core.tou[int(core.hours[t]) % 24]), sp)
        for x, y in zip(rule, again, strict=True):
            np.testing.assert_allclose(x, y, atol=1e-9)
        m.realise(np.zeros(4), rule.surplus)


def test_setpoints_are_projected_not_rejected():
    env = mgenv.parallel_env("ccche_thermal_game", dispatch="agent")
    env.reset(seed=0)
    names = env.action_names("mg_0")
    assert names[-3:] == ["battery", "heat_tank", "ice"]
    for value in (5.0, -5.0):
        acts = {a: np.full(env.action_space(a).shape, value, np.float32) for a in env.agents}
        env.step(acts)  # clipped to +-1, then projected onto the windows
    for r in env.history:
        check_carriers(env, r)


def test_thermal_loads_scale_with_the_electric_load_level():
    env = mgenv.parallel_env("ccche_thermal_game")
    env.reset(seed=2)
    m, p = env.core.physics, env.core.profiles
    t = 8
    heat, cool = m.thermal_loads(t, p.load_forecast[t])
    level = p.load_forecast[t] / (m.load_peak * m.res_sh[t])
    np.testing.assert_allclose(heat, m.heat_peak * heat_shape(np.array(8.5)) * level)
    assert np.all(cool == 0.0)  # winter: no cooling load
    hours = np.linspace(0, 24, 97)
    assert heat_shape(hours).max() <= 1.0 and cool_shape(hours).max() <= 1.0


def test_unmet_heat_is_penalised_not_dropped():
    env = mgenv.parallel_env(
        "ccche_thermal_game", boiler_kw=(5.0,), voll_heat=3.0, protocol="ideal"
    )
    rollout(env, 0)
    unmet = sum(r.physics.extra["heat_unmet"].sum() for r in env.history)
    assert unmet > 100.0
    for r in env.history:
        check_carriers(env, r)
        e = r.physics.extra
        expected = 3.0 * e["heat_unmet"] + 1.1 * e["residue_kwh"]
        np.testing.assert_allclose(r.physics.penalty, expected, atol=1e-9)


def test_extra_observation_features():
    env = mgenv.parallel_env("ccche_thermal_game", season="summer")
    obs, _ = env.reset(seed=0)
    names = env.observation_names("mg_0")
    assert names[-len(FEATURES) :] == [f[0] for f in FEATURES]
    for _ in range(12):
        obs, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})
    x = obs["mg_0"][-len(FEATURES) :]
    assert x[1] > 0.0 and x[0] == 0.0  # summer: cooling load, no heat load
    assert env.observation_space("mg_0").contains(obs["mg_0"])


def test_reproduction_prints_prices_and_plots(tmp_path):
    from train.reproduce import get

    text = get("ccche_thermal_game")(tmp_path, True)
    assert text.count("(paper 0.93-0.98: inside)") == 2
    assert text.count("(paper 0.98-1.03: inside)") == 2
    ends = [line for line in text.splitlines() if line.startswith("end of day, SOC: ")]
    assert len(ends) == 2 and all("aggregators' batteries" in line for line in ends)
    for line in ends:  # every storage ends its day at its start SOC
        pairs = re.findall(r"([\d./]+) \(start ([\d./]+)\)", line)
        assert len(pairs) == 4  # aggregators' and microgrids' batteries, heat and ice tanks
        for end, start in pairs:
            np.testing.assert_allclose(
                [float(x) for x in end.split("/")], [float(x) for x in start.split("/")]
            )
    for name in (
        "prices.png",
        "agg_batteries.png",
        "dispatch_winter.png",
        "dispatch_summer.png",
        "prices_winter.csv",
        "prices_summer.csv",
    ):
        assert (tmp_path / name).stat().st_size > 0
