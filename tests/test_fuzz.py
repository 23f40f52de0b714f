"""Invariants under fuzzing (hypothesis): scenarios x overrides x actions, and extreme inputs.

Every period: electric balance per microgrid and user, money conserved, SOCs in bounds,
prices in their interval, observations finite and inside their spaces, rewards finite, no
transaction committed twice (serials unique across the ledger).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import mgenv
from tests.test_invariants import check_period

OVERRIDES = st.fixed_dictionaries(
    {},
    optional={
        "n_microgrids": st.integers(1, 9),
        "n_aggregators": st.integers(1, 3),
        "n_users": st.integers(0, 3),
        "horizon": st.integers(1, 30),
        "start_hour": st.integers(0, 23),
        "protocol": st.sampled_from(["ideal", "pbft", "sbet", "spft", "pos"]),
        "message_loss": st.floats(0.0, 1.0),
        "availability": st.floats(0.0, 1.0),
        "withhold_share": st.floats(0.0, 1.0),
        "malicious_share": st.floats(0.0, 0.6),
        "missing_share": st.floats(0.0, 0.6),
        "forecast_error": st.floats(0.0, 0.5),
        "n_segments": st.integers(1, 5),
        "battery_kwh": st.tuples(st.floats(0.0, 500.0)),
        "gen_cost_a": st.tuples(st.floats(0.0, 0.01)),
    },
)


def _run_checked(env, seed, actions_rng):
    obs, _ = env.reset(seed=seed)
    serials: set[int] = set()
    while env.agents:
        acts = {
            a: actions_rng.uniform(-1.5, 1.5, env.action_space(a).shape).astype(np.float32)
            for a in env.agents
        }
        obs, rewards, *_ = env.step(acts)
        r = env.history[-1]
        check_period(env, r)
        for a, o in obs.items():
            assert np.all(np.isfinite(o)) and env.observation_space(a).contains(o), a
        assert all(np.isfinite(v) for v in rewards.values())
        if r.chain.block is not None:
            new = r.chain.block.transactions()["serial"].tolist()
            assert not serials.intersection(new)  # never committed twice
            serials.update(new)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=st.sampled_from(mgenv.scenarios.names()),
    overrides=OVERRIDES,
    seed=st.integers(0, 2**16),
)
def test_invariants_hold_under_fuzzing(scenario, overrides, seed):
    try:
        cfg = mgenv.make_config(scenario, **overrides)
    except ValueError:
        cfg = None
    assume(cfg is not None)  # invalid combinations are rejected up front: that is the contract
    _run_checked(mgenv.MarketEnv(cfg), seed, np.random.default_rng(seed))


@pytest.mark.parametrize(
    "overrides",
    [
        {"load_kw": (0.0,), "user_load_kw": (0.0,)},  # zero demand
        {"pv_kw": (0.0,), "wind_kw": (0.0,)},  # zero renewables
        {"protocol": "pbft", "availability": 0.0},  # every node offline
        {"protocol": "pbft", "withhold_share": 1.0},  # every node withholds
        {"protocol": "sbet", "malicious_share": 1.0},  # every node malicious
        {"n_microgrids": 1},  # a single microgrid
        {"n_microgrids": 64, "n_users": 8},  # a large market
    ],
)
def test_extreme_inputs_run_and_report(overrides):
    env = mgenv.parallel_env("default", **overrides)
    _run_checked(env, 0, np.random.default_rng(0))
    kpis = env.episode_kpis()
    assert all(np.isfinite(v) for v in kpis.values())
    if overrides.get("availability") == 0.0 or overrides.get("withhold_share") == 1.0:
        assert kpis["commit_share"] == 0.0
        last = env.history[-1]
        if last.trades.kwh.size:
            assert not last.committed.any()
            infos = env.core.agent_infos(["mg_0"], last)["mg_0"]
            assert sum(infos["rejected"].values()) == last.trades.kwh.size
    if overrides.get("malicious_share") == 1.0:  # the env says so rather than settling silently
        for r in env.history:
            assert env.core.agent_infos(["mg_0"], r)["mg_0"]["chain_safety_violation"] == 1.0
