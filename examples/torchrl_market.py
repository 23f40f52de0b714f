"""TorchRL: the market as a ``PettingZooWrapper`` with one agent group per role.

Every role learns here (``learning_roles=("mg", "agg", "user")``), and agents are grouped
by role (``group_map``), so each group's tensors are stacked (``td["mg", "observation"]`` has
shape ``(4, obs_dim)`` on ``default``) and one network per role, shared by its agents, acts
for the whole group::

    python examples/torchrl_market.py --scenario default --seed 0

This checks the specs (``check_env_specs``) and plays one seeded episode with an untrained
role-shared MLP policy per group; a TorchRL MAPPO/IPPO loop (e.g. TorchRL's multi-agent
PPO tutorial) plugs in the same way.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch
from tensordict.nn import TensorDictModule, TensorDictSequential
from torchrl.envs import PettingZooWrapper
from torchrl.envs.utils import check_env_specs
from torchrl.modules import MultiAgentMLP

import mgenv

ALL_ROLES = ("mg", "agg", "user")


def role_groups(env: Any) -> dict[str, list[str]]:
    """``{role: [agents of that role]}`` for the env's agents, in the env's order."""
    groups: dict[str, list[str]] = {}
    for agent in env.possible_agents:
        groups.setdefault(env.role_of(agent), []).append(agent)
    return groups


def make_env(scenario: str = "default", seed: int = 0, **overrides: Any) -> PettingZooWrapper:
    """The scenario's ParallelEnv with every role learning, grouped by role for TorchRL."""
    roles = ALL_ROLES if mgenv.make_config(scenario).n_users else ALL_ROLES[:2]
    market = mgenv.parallel_env(scenario, **{"learning_roles": roles, **overrides})
    # return_state: the global state (every participant's observation) for central critics
    return PettingZooWrapper(market, group_map=role_groups(market), seed=seed, return_state=True)


def role_policy(env: PettingZooWrapper, seed: int = 0) -> TensorDictSequential:
    """One MLP per group, shared by its agents (``share_params``); actions in [-1, 1]."""
    torch.manual_seed(seed)
    modules = []
    for group, agents in env.group_map.items():
        obs_dim = env.observation_spec[group, "observation"].shape[-1]
        act_dim = env.full_action_spec[group, "action"].shape[-1]
        net = MultiAgentMLP(
            obs_dim, act_dim, len(agents), centralized=False, share_params=True, num_cells=[32, 32]
        )
        modules.append(
            TensorDictModule(
                torch.nn.Sequential(net, torch.nn.Tanh()),
                in_keys=[(group, "observation")],
                out_keys=[(group, "action")],
            )
        )
    return TensorDictSequential(*modules)


def main(argv: Sequence[str] | None = None) -> Any:
    """Check the specs and roll out one episode; print and return the rollout tensordict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    env = make_env(args.scenario, args.seed)
    check_env_specs(env, seed=args.seed)
    horizon = mgenv.make_config(args.scenario).horizon
    with torch.no_grad():
        rollout = env.rollout(horizon + 1, policy=role_policy(env, args.seed))
    for group, agents in env.group_map.items():
        reward = rollout["next", group, "reward"].sum(dim=0).squeeze(-1)
        print(f"{group}: {agents} episode profit (yuan) {[round(float(r), 1) for r in reward]}")
    env.close()
    return rollout


if __name__ == "__main__":
    main()
