"""Physics: the vectorised units against slow scalar references; profile properties."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mgenv
from mgenv.core import fleet_arrays
from mgenv.physics.profiles import draw_profiles, pv_shape, wind_power_curve
from mgenv.physics.units import FleetArrays, rule_dispatch, step_battery


def scalar_dispatch(renew, load, soc, grid_price, f, i, dt):
    """Slow per-microgrid reference of the rule-based dispatch (one microgrid ``i``)."""
    net = renew - load
    max_ch = min(
        f.battery_kw[i] * dt, max(f.soc_max[i] - soc, 0.0) * f.battery_kwh[i] / f.eta_charge[i]
    )
    max_dis = min(
        f.battery_kw[i] * dt, max(soc - f.soc_min[i], 0.0) * f.battery_kwh[i] * f.eta_discharge[i]
    )
    charge = min(max(net, 0.0), max_ch)
    dis = min(max(-net, 0.0), max_dis)
    after = net - charge + dis
    deficit0 = max(-after, 0.0)
    cap = f.gen_kw[i] * dt
    a, b = f.gen_cost_a[i], f.gen_cost_b[i]
    if a > 0:
        q = (grid_price - b) / (2 * a)
    else:
        q = cap if b < grid_price else 0.0
    econ = min(max(q, 0.0), cap)
    self_gen = min(deficit0, econ)
    deficit = deficit0 - self_gen
    head = 0.0 if deficit > 0 else cap - self_gen
    soc_next = soc
    if f.battery_kwh[i] > 0:
        soc_next = soc + (f.eta_charge[i] * charge - dis / f.eta_discharge[i]) / f.battery_kwh[i]
    return charge, dis, self_gen, max(after, 0.0), head, deficit, soc_next


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 300), st.floats(0, 300), st.floats(0.2, 0.8)), min_size=1, max_size=6
    ),
    st.floats(0.3, 1.5),
)
def test_dispatch_matches_scalar_reference(rows, price):
    cfg = mgenv.make_config("default", n_microgrids=len(rows))
    f = fleet_arrays(cfg)
    renew, load, soc = (np.array(c) for c in zip(*rows, strict=True))
    d = rule_dispatch(renew, load, soc, price, f, 1.0)
    soc_next = step_battery(soc, d.charge, d.discharge, f)
    for i in range(len(rows)):
        ref = scalar_dispatch(renew[i], load[i], soc[i], price, f, i, 1.0)
        got = (
            d.charge[i],
            d.discharge[i],
            d.self_gen[i],
            d.surplus[i],
            d.gen_headroom[i],
            d.deficit[i],
            soc_next[i],
        )
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-9)
        assert f.soc_min[i] - 1e-12 <= soc_next[i] <= f.soc_max[i] + 1e-12
        assert not (d.charge[i] > 0 and d.discharge[i] > 0)  # mutually exclusive


def test_battery_without_capacity_keeps_soc():
    f = fleet_arrays(mgenv.make_config("default", n_microgrids=2, battery_kwh=(0.0,)))
    soc = np.array([0.5, 0.5])
    d = rule_dispatch(np.array([100.0, 0.0]), np.array([0.0, 100.0]), soc, 1.0, f, 1.0)
    assert np.all(d.charge == 0) and np.all(d.discharge == 0)
    np.testing.assert_array_equal(step_battery(soc, d.charge, d.discharge, f), soc)


def test_linear_cost_generator_runs_full_or_not():
    f = fleet_arrays(
        mgenv.make_config(
            "default", n_microgrids=2, gen_cost_a=(0.0,), gen_cost_b=(0.5, 2.0), battery_kwh=(0.0,)
        )
    )
    d = rule_dispatch(np.zeros(2), np.array([500.0, 500.0]), np.full(2, 0.5), 1.0, f, 1.0)
    np.testing.assert_allclose(d.self_gen, [f.gen_kw[0], 0.0])


def test_pv_and_wind_shapes():
    hours = np.arange(24) + 0.5
    pv = pv_shape(hours, 6.0, 18.0)
    assert np.all(pv[:6] == 0) and np.all(pv[18:] == 0) and pv.max() <= 1.0 and pv[12] > 0.9
    assert np.all(wind_power_curve(np.array([0.0, 2.9, 25.0, 30.0])) == 0)
    assert wind_power_curve(np.array([12.0]))[0] == 1.0


def test_profiles_streams_are_independent():
    cfg = mgenv.make_config("default")
    a = draw_profiles(cfg, np.random.default_rng(1), np.random.default_rng(2))
    b = draw_profiles(cfg, np.random.default_rng(1), np.random.default_rng(3))
    np.testing.assert_array_equal(a.pv_forecast, b.pv_forecast)  # weather unaffected by load
    np.testing.assert_array_equal(a.wind_real, b.wind_real)
    assert not np.array_equal(a.load_forecast, b.load_forecast)
    for x in a:
        assert x.shape[0] == cfg.horizon and np.all(x >= 0) and np.all(np.isfinite(x))


def test_tabulated_data_replace_parametric_profiles():
    cfg = mgenv.make_config("consortium_p2p")
    p = draw_profiles(cfg, np.random.default_rng(0), np.random.default_rng(0))
    assert p.pv_forecast[0].tolist() == [9.88, 4.54, 1.97, 2.91, 7.41]  # Table 9, period 7
    assert p.load_forecast[0].tolist() == [0.21, 0.56, 4.97, 9.99, 10.99]  # Table 8
    np.testing.assert_array_equal(p.pv_real, p.pv_forecast)  # no forecast error in the case


def test_fleet_templates_tile():
    cfg = mgenv.make_config("default", n_microgrids=6)
    f = fleet_arrays(cfg)
    assert isinstance(f, FleetArrays) and f.gen_kw.shape == (6,)
    assert f.gen_kw[4] == f.gen_kw[0] and f.gen_kw[5] == f.gen_kw[1]
    assert dataclasses.is_dataclass(cfg.fleet)


def test_rule_setpoints_reproduce_the_rule_dispatch():
    import baselines
    from tests.conftest import rollout

    env_rule = mgenv.parallel_env("default", protocol="ideal")
    env_agent = mgenv.parallel_env("default", protocol="ideal", dispatch="agent")
    assert env_agent.action_names("mg_0")[-1] == "battery"
    assert env_agent.action_space("mg_0").shape[0] == env_rule.action_space("mg_0").shape[0] + 1
    pol = baselines.make("truthful")
    expected = rollout(env_rule, 3, pol)
    obs, _ = env_agent.reset(seed=3)
    for record in expected:
        acts = pol(obs, env_agent)
        setpoints = env_agent.core.physics.rule_setpoints()
        full = {a: np.concatenate((x, setpoints[int(a.split("_")[1])])) for a, x in acts.items()}
        obs, rewards, *_ = env_agent.step(full)
        assert rewards == pytest.approx(record[1], rel=1e-9, abs=1e-9)


def test_agent_battery_setpoint_is_projected_onto_limits():
    env = mgenv.parallel_env("default", protocol="ideal", dispatch="agent")
    env.reset(seed=0)
    f = env.core.fleet
    while env.agents:
        env.step({a: np.r_[np.zeros(9), 1.0].astype(np.float32) for a in env.agents})
        r = env.history[-1]
        assert np.all(r.physics.soc_after <= f.soc_max + 1e-12)
        assert np.all(r.dispatch.discharge == 0)
    np.testing.assert_allclose(env.core.physics.soc, f.soc_max)  # full after a day of charging


def test_agent_dispatch_baseline_opponents_and_bad_mode():
    env = mgenv.parallel_env("default", dispatch="agent", learning_roles=("agg",))
    from tests.conftest import rollout

    assert len(rollout(env, 0)) == 24  # microgrids played by truthful, set-points filled in
    with pytest.raises(ValueError, match=r"EnvConfig\.dispatch='fancy' is not one of"):
        mgenv.parallel_env("default", dispatch="fancy")


def test_single_agent_view_with_agent_dispatch_fills_baselines_setpoints():
    env = mgenv.single_agent_env("default", agent="mg_0", dispatch="agent", protocol="ideal")
    env.reset(seed=0)
    for _ in range(3):
        env.step(env.action_space.sample())
    assert env.action_space.shape[0] == 10
