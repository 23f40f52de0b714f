"""PettingZoo API conformance, seeding and determinism for every scenario."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

import mgenv
from tests.conftest import rollout


def test_parallel_api(scenario):
    parallel_api_test(mgenv.parallel_env(scenario), num_cycles=60)


def test_aec_api(scenario):
    api_test(mgenv.env(scenario), num_cycles=30)


def test_seed_tests(scenario):
    parallel_seed_test(lambda: mgenv.parallel_env(scenario))
    seed_test(lambda: mgenv.env(scenario))


def _flatten(records):
    out = []
    for obs, rewards, terms, truncs, infos in records:
        for a in sorted(rewards):
            out.append(np.concatenate([obs[a], [rewards[a], terms[a], truncs[a]]]))
            scalars = [v for _, v in sorted(infos[a].items()) if not isinstance(v, dict)]
            out.append(np.array(scalars, dtype=float))
            out.append(np.array(sorted(infos[a]["rejected"].items()), dtype=object))
    return out


def test_full_episode_determinism_and_seeds_differ(scenario):
    env1, env2 = mgenv.parallel_env(scenario), mgenv.parallel_env(scenario)
    a, b = _flatten(rollout(env1, 7)), _flatten(rollout(env2, 7))
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    c = _flatten(rollout(env1, 8))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_reset_without_seed_continues_the_seeded_sequence():
    env1, env2 = mgenv.parallel_env(), mgenv.parallel_env()
    env1.reset(seed=3)
    env2.reset(seed=3)
    o1, _ = env1.reset()
    o2, _ = env2.reset()
    for a in o1:
        np.testing.assert_array_equal(o1[a], o2[a])


def test_truncation_at_horizon_and_no_termination():
    env = mgenv.parallel_env("default", horizon=5)
    records = rollout(env, 0)
    assert len(records) == 5
    for _, _, terms, truncs, _ in records[:-1]:
        assert not any(terms.values()) and not any(truncs.values())
    assert all(records[-1][3].values()) and not any(records[-1][2].values())
    assert env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_spaces_names_and_state():
    env = mgenv.parallel_env("default", learning_roles=("mg", "agg", "user"))
    env.reset(seed=0)
    assert env.possible_agents == [
        "mg_0",
        "mg_1",
        "mg_2",
        "mg_3",
        "agg_0",
        "agg_1",
        "user_0",
        "user_1",
    ]
    for a in env.possible_agents:
        ob, ac = env.observation_space(a), env.action_space(a)
        assert isinstance(ob, gymnasium.spaces.Box) and ob.dtype == np.float32
        assert np.all(np.isfinite(ob.low)) and np.all(np.isfinite(ob.high))
        assert ac.dtype == np.float32 and np.all(ac.low == -1) and np.all(ac.high == 1)
        assert len(env.observation_names(a)) == ob.shape[0]
        assert len(env.action_names(a)) == ac.shape[0]
    s = env.state()
    assert env.state_space.contains(s)


def test_render_modes():
    env = mgenv.parallel_env("default", render_mode="ansi", horizon=3)
    rollout(env, 0)
    text = env.render()
    assert "price" in text and len(text.splitlines()) == 2 + 3
    env = mgenv.parallel_env("default", render_mode="rgb_array", horizon=3)
    rollout(env, 0)
    img = env.render()
    assert img.dtype == np.uint8 and img.shape == (200, 400, 3) and (img != 255).any()
