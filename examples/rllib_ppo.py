r"""RLlib (new API stack): PPO with one policy shared by all agents of each learning role.

The env is ``ParallelPettingZooEnv(mgenv.parallel_env(...))``; agents map to a policy named
after their role (``mg_0..3 -> "mg"``), so on ``default`` (microgrids learn) one policy is
shared by the four microgrids. Needs the ``rllib`` extra in its own venv (ray 2.60 pins
gymnasium 1.2.2): ``make venv-rllib``. On this machine::

    .venv-rllib/bin/python examples/rllib_ppo.py --iterations 1

Past one machine, start a Ray cluster (``examples/ray_cluster.yaml``, ``ray up``) and run the
same script on it with more env runners, which Ray places on the cluster's nodes::

    ray submit examples/ray_cluster.yaml examples/rllib_ppo.py --address auto \
        --num-env-runners 16 --iterations 200 --checkpoint-dir ~/runs/rllib_default
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import mgenv

ENV_NAME = "mgenv_market"


def env_creator(env_config: Mapping[str, Any]) -> Any:
    """RLlib env factory: ``{"scenario": name, **overrides}`` -> ``ParallelPettingZooEnv``."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    config = dict(env_config)
    return ParallelPettingZooEnv(mgenv.parallel_env(config.pop("scenario", "default"), **config))


def policy_of(agent_id: str, *args: Any, **kwargs: Any) -> str:
    """Policy (RLModule) id of an agent: its role (``"mg_3" -> "mg"``)."""
    return agent_id.rsplit("_", 1)[0]


def build_config(
    scenario: str = "default",
    overrides: Mapping[str, Any] | None = None,
    num_env_runners: int = 0,
    train_batch_size: int = 96,
    minibatch_size: int = 48,
    num_epochs: int = 1,
    seed: int = 0,
) -> Any:
    """Return the ``PPOConfig`` for ``scenario``.

    Args:
        scenario: mgenv scenario name.
        overrides: Env config overrides (e.g. ``{"message_loss": 0.1}``).
        num_env_runners: Ray actors that collect samples (0: sample in this process).
        train_batch_size: Env steps per training iteration (per learner).
        minibatch_size: SGD minibatch size.
        num_epochs: SGD passes over each batch.
        seed: Seed of RLlib and of the env copies.
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

    register_env(ENV_NAME, env_creator)
    env_config = {"scenario": scenario, **dict(overrides or {})}
    probe = mgenv.parallel_env(scenario, **dict(overrides or {}))
    roles = sorted({policy_of(a) for a in probe.possible_agents})
    return (
        PPOConfig()
        .environment(ENV_NAME, env_config=env_config)
        .env_runners(num_env_runners=num_env_runners, rollout_fragment_length="auto")
        .multi_agent(policies=set(roles), policy_mapping_fn=policy_of)
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(rl_module_specs={r: RLModuleSpec() for r in roles})
        )
        .training(
            train_batch_size_per_learner=train_batch_size,
            minibatch_size=minibatch_size,
            num_epochs=num_epochs,
        )
        .debugging(seed=seed)
    )


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Train for ``--iterations``; print a line per iteration and return the results."""
    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--num-env-runners", type=int, default=0)
    parser.add_argument("--train-batch-size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--address", default=None, help="Ray cluster address, e.g. auto")
    parser.add_argument("--checkpoint-dir", default=None)
    args = parser.parse_args(argv)
    started = not ray.is_initialized()  # else: the caller's Ray session (tests)
    if started and args.address:
        ray.init(address=args.address)
    elif started:  # a small local Ray instance: this process plus the env runners
        ray.init(num_cpus=max(1, args.num_env_runners), include_dashboard=False)
    try:
        config = build_config(
            args.scenario,
            num_env_runners=args.num_env_runners,
            train_batch_size=args.train_batch_size,
            minibatch_size=min(48, args.train_batch_size),
            seed=args.seed,
        )
        algo = config.build_algo()
        results = []
        for i in range(args.iterations):
            result = algo.train()
            results.append(result)
            returns = result["env_runners"].get("module_episode_returns_mean", {})
            print(f"iteration {i + 1}: mean episode profit per policy (yuan) {returns}")
        if args.checkpoint_dir:
            print(f"checkpoint: {algo.save(args.checkpoint_dir)}")
        algo.stop()
        return results
    finally:
        if started:
            ray.shutdown()


if __name__ == "__main__":
    main()
