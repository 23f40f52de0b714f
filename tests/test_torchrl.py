"""TorchRL's PettingZooWrapper over the market env, agents grouped by role."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torchrl", reason="needs the torchrl extra: pip install -e '.[torchrl]'")

import torch
from torchrl.envs.utils import check_env_specs

import mgenv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from torchrl_market import make_env, role_groups, role_policy

pytestmark = pytest.mark.filterwarnings("ignore:PettingZoo in TorchRL is tested")


@pytest.mark.parametrize("scenario", mgenv.scenarios.names())
def test_check_env_specs(scenario: str) -> None:
    env = make_env(scenario, seed=0)
    check_env_specs(env, seed=0)
    market = mgenv.parallel_env(scenario, learning_roles=tuple(env.group_map))
    assert env.group_map == role_groups(market)
    for group, agents in env.group_map.items():
        obs_dim = market.observation_space(agents[0]).shape[0]
        assert env.observation_spec[group, "observation"].shape == (len(agents), obs_dim)
        assert env.full_action_spec[group, "action"].shape[0] == len(agents)
    assert env.observation_spec["state"].shape == market.state_space.shape


def test_groups_are_the_roles() -> None:
    env = make_env("default")
    assert env.group_map == {
        "mg": ["mg_0", "mg_1", "mg_2", "mg_3"],
        "agg": ["agg_0", "agg_1"],
        "user": ["user_0", "user_1"],
    }


def test_rollout_replays_exactly_in_the_market_env() -> None:
    """A seeded TorchRL rollout is the market env's episode with the same actions."""
    env = make_env("default")
    with torch.no_grad():
        rollout = env.rollout(
            100, policy=role_policy(env, seed=1), auto_reset=False, tensordict=env.reset(seed=7)
        )
    assert rollout.batch_size == (24,) and bool(rollout["next", "truncated"][-1])
    market = mgenv.parallel_env("default", learning_roles=("mg", "agg", "user"))
    obs, _ = market.reset(seed=7)
    for t in range(24):
        actions = {}
        for group, agents in env.group_map.items():
            for i, agent in enumerate(agents):
                np.testing.assert_allclose(rollout[group, "observation"][t, i].numpy(), obs[agent])
                actions[agent] = rollout[group, "action"][t, i].numpy()
        obs, rewards, *_ = market.step(actions)
        for group, agents in env.group_map.items():
            got = rollout["next", group, "reward"][t, :, 0].numpy()
            np.testing.assert_allclose(got, [rewards[a] for a in agents], rtol=1e-6)


def test_seeds_reproduce_and_differ() -> None:
    def first_rewards(seed: int) -> torch.Tensor:
        env = make_env("default")
        with torch.no_grad():
            td = env.rollout(
                3, policy=role_policy(env, 0), auto_reset=False, tensordict=env.reset(seed=seed)
            )
        return td["next", "mg", "reward"]

    assert torch.equal(first_rewards(3), first_rewards(3))
    assert not torch.equal(first_rewards(3), first_rewards(4))
