"""Bad input is rejected with messages that name the culprit; nothing half-updates."""

from __future__ import annotations

import numpy as np
import pytest

import baselines
import mgenv
from mgenv import _jit


def test_unknown_scenario_lists_scenarios():
    with pytest.raises(ValueError, match="consortium_p2p"):
        mgenv.parallel_env("nope")


@pytest.mark.parametrize(
    ("key", "value", "pattern"),
    [
        ("horizon", 0, r"EnvConfig.horizon=0 is outside \[1, 100000\]"),
        ("message_loss", 1.5, r"message_loss"),
        ("price_cap", 0.1, r"MarketParams.price_cap=0.1 is outside"),
        ("soc_min", (0.9,), r"soc_min.*soc_max"),
        ("eta_charge", (1.2,), r"FleetParams.eta_charge\[0\]=1.2 is outside \(0, 1\]"),
        ("pv_kw", (-1.0,), r"FleetParams.pv_kw\[0\]=-1.0 is outside"),
        ("feed_in_price", (2.0,), r"feed_in_price must be below buy_price"),
        ("learning_roles", ("boss",), r"learning_roles='boss' is not one of"),
        ("n_segments", 0, r"MarketParams.n_segments=0 is outside \[1, 10\]"),
        ("dt_h", float("nan"), r"EnvConfig.dt_h=nan is outside"),
        # a capacity among the subnormal floats made the state of charge round past its bounds
        ("battery_kwh", (5e-324,), r"FleetParams.battery_kwh\[0\]=5e-324 kWh is below 1e-06"),
        ("battery_kwh", (10.0, 1e-7), r"battery_kwh\[1\]=1e-07 kWh is below.*0 for no storage"),
        ("agg_battery_kwh", (1e-300,), r"MarketParams.agg_battery_kwh\[0\]=1e-300 kWh"),
    ],
)
def test_bad_override_names_field_value_and_range(key, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        mgenv.parallel_env("default", **{key: value})


def test_unknown_override_lists_valid_keys():
    with pytest.raises(ValueError, match=r"unknown override 'nonsense'.*message_loss"):
        mgenv.parallel_env("default", nonsense=1)


def test_section_prefixed_override():
    env = mgenv.parallel_env("default", **{"chain.message_loss": 0.2})
    assert env.config.chain.message_loss == 0.2


def _state(env):
    return (env.core.t, env.core.physics.soc.copy(), len(env.history), env.core.last_price)


@pytest.mark.parametrize("jit", [True, False], ids=["kernels", "numpy"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_raises_naming_agent_and_changes_nothing(bad, jit, monkeypatch):
    monkeypatch.setattr(_jit, "ENABLED", jit and _jit.ENABLED)
    env = mgenv.parallel_env("default")
    env.reset(seed=0)
    acts = {a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents}
    before = _state(env)
    acts["mg_2"][1] = bad
    acts["mg_3"][0] = bad  # the first bad agent is named
    with pytest.raises(ValueError, match="mg_2"):
        env.step(acts)
    acts["mg_3"][0] = 0.0
    after = _state(env)
    assert before[0] == after[0] and before[2] == after[2]
    np.testing.assert_array_equal(before[1], after[1])
    # the same env then continues exactly like a fresh one
    acts["mg_2"][1] = 0.0
    fresh = mgenv.parallel_env("default")
    fresh.reset(seed=0)
    _o1, r1, *_ = env.step(acts)
    _o2, r2, *_ = fresh.step(acts)
    assert r1 == r2


def test_wrong_shape_and_missing_agent():
    env = mgenv.parallel_env("default")
    env.reset(seed=0)
    acts = {a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents}
    acts["mg_1"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"mg_1 has shape \(3,\); expected \(9,\)"):
        env.step(acts)
    acts.pop("mg_1")
    with pytest.raises(ValueError, match=r"missing for agents \['mg_1'\]"):
        env.step(acts)


def test_out_of_range_actions_are_clipped():
    env1, env2 = mgenv.parallel_env("default"), mgenv.parallel_env("default")
    env1.reset(seed=0)
    env2.reset(seed=0)
    big = {a: np.full(env1.action_space(a).shape, 5.0, np.float32) for a in env1.agents}
    one = {a: np.ones(env1.action_space(a).shape, np.float32) for a in env1.agents}
    _, r1, *_ = env1.step(big)
    _, r2, *_ = env2.step(one)
    assert r1 == r2


def test_unknown_baseline_and_render_mode():
    with pytest.raises(ValueError, match="truthful"):
        baselines.make("oracle")
    with pytest.raises(ValueError, match="render_mode"):
        mgenv.parallel_env("default", render_mode="human")
    with pytest.raises(ValueError, match="agents are"):
        mgenv.single_agent_env("default", agent="mg_9")
