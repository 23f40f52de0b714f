"""The single-agent Gymnasium view passes Gymnasium's and SB3's env checkers."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mgenv


@pytest.mark.parametrize("agent", ["mg_0", "agg_1", "user_0"])
def test_gymnasium_checker(agent):
    env = mgenv.single_agent_env("default", agent=agent)
    check_env(env, skip_render_check=True)


def test_sb3_checker():
    pytest.importorskip("stable_baselines3")  # absent from the RLlib venv
    from stable_baselines3.common.env_checker import check_env as sb3_check

    sb3_check(mgenv.single_agent_env("default"), warn=True)


def test_gymnasium_make_and_vector():
    env = gymnasium.make(
        "mgenv/SingleBidder-v0", scenario="default", agent="mg_1", message_loss=0.0
    )
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    steps = 0
    done = False
    while not done:
        obs, _r, term, trunc, _info = env.step(env.action_space.sample())
        steps += 1
        done = term or trunc
    assert steps == 24 and trunc and not term
    venv = gymnasium.make_vec("mgenv/SingleBidder-v0", num_envs=2, vectorization_mode="sync")
    o, _ = venv.reset(seed=[0, 1])
    assert o.shape == (2, *env.observation_space.shape)
    venv.close()


def test_others_policy_callable():
    calls = []

    def passive(observations, env):
        calls.append(sorted(observations))
        return {a: -np.ones(env.action_space(a).shape, np.float32) for a in observations}

    env = mgenv.single_agent_env("default", agent="mg_0", others=passive)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert "mg_0" not in calls[0] and "agg_0" in calls[0] and "user_1" in calls[0]
