"""Gymnasium: one bidder as a plain ``gymnasium.Env``, checked and vectorised.

``mgenv/SingleBidder-v0`` is registered when ``mgenv`` is imported: one participant (here
``mg_0``) acts, every other participant is played by a baseline (``others``). It passes
Gymnasium's env checker (finite observation bounds, seeding, spaces) and, when
Stable-Baselines3 is installed, SB3's; ``gymnasium.make_vec`` runs copies of it::

    python examples/gymnasium_single_bidder.py --num-envs 4 --seed 0

Any single-agent library (SB3, CleanRL, ...) can train on it as on any Gymnasium env.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import gymnasium
import numpy as np
from gymnasium.utils.env_checker import check_env

import mgenv  # noqa: F401  (registers mgenv/SingleBidder-v0)

ENV_ID = "mgenv/SingleBidder-v0"


def check(agent: str = "mg_0", others: str = "truthful") -> None:
    """Run Gymnasium's env checker (and SB3's, if installed) on the single-bidder env."""
    env = gymnasium.make(ENV_ID, scenario="default", agent=agent, others=others)
    check_env(env.unwrapped, skip_render_check=True)
    try:
        from stable_baselines3.common.env_checker import check_env as sb3_check_env
    except ImportError:
        return
    sb3_check_env(env.unwrapped, warn=True)


def run_vector(num_envs: int = 4, seed: int = 0, agent: str = "mg_0") -> np.ndarray:
    """Play one day in ``num_envs`` copies with seeded random bids; return each copy's return.

    Returns:
        Profit of ``agent`` over the episode per copy, yuan, shape ``(num_envs,)``.
    """
    envs = gymnasium.make_vec(
        ENV_ID, num_envs=num_envs, vectorization_mode="sync", agent=agent, others="truthful"
    )
    try:
        envs.action_space.seed(seed)
        envs.reset(seed=seed)  # copy i gets seed + i
        returns = np.zeros(num_envs)
        done = np.zeros(num_envs, dtype=bool)
        while not done.all():
            _, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
            returns += np.where(done, 0.0, rewards)  # copies auto-reset after their end
            done |= terminated | truncated
        return returns
    finally:
        envs.close()


def main(argv: Sequence[str] | None = None) -> np.ndarray:
    """Check the env, then run the vector env; print and return the returns per copy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agent", default="mg_0")
    args = parser.parse_args(argv)
    check(args.agent)
    returns = run_vector(args.num_envs, args.seed, args.agent)
    print(f"{args.agent} profit per copy over one day (yuan): {np.round(returns, 1).tolist()}")
    return returns


if __name__ == "__main__":
    main()
