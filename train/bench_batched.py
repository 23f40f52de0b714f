"""Batched-core speed: agent-steps/s for B copies, and SB3 PPO on it against PPO on CartPole.

``mgenv bench batched`` steps a :class:`~mgenv.batched.BatchedCore` of B copies with random
actions sampled before the timed loop (resets at the horizon included, as in training) and
prints env-steps/s (copies x steps), agent-steps/s (x learning microgrids), microseconds per
copy-step, the share of each stage, and the same figures for the single env (B separate
steps) measured in the same run. Each figure is the median of ``repeats`` runs with the
spread beside it. ``--processes 1,2`` also runs each B as a
:class:`~mgenv.batched.sharded.ShardedCore` over that many processes.

``--sb3`` adds the issue's bottleneck check: Stable-Baselines3 PPO trained on ``default``
through :class:`~mgenv.batched.BatchedVecEnv` and on Gymnasium's CartPole-v1 (a
``DummyVecEnv`` of as many copies as the batched view has slots), with the same network,
n_envs, n_steps, batch size and epochs; it prints agent-steps/s for both.

Usage::

    mgenv bench batched                              # B = 1, 16, 64, 256 on default
    mgenv bench batched --copies 256 --protocols sbet,pbft,ideal --sb3
    mgenv bench batched --copies 256 --processes 1,2  # one process, then two shards
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

import mgenv
from mgenv.batched import BatchedCore, BatchedVecEnv
from mgenv.batched.sharded import ShardedCore


def _run(
    core: BatchedCore | ShardedCore, actions: list[np.ndarray], steps: int, seed: int
) -> float:
    """Seconds for ``steps`` batched steps (resets at the horizon included)."""
    core.reset(list(range(seed, seed + core.n_copies)))
    t0 = time.perf_counter()
    for k in range(steps):
        if core.step(actions[k % len(actions)]).truncated:
            core.reset([None] * core.n_copies)
    return time.perf_counter() - t0


def measure_batched(
    n_copies: int,
    steps: int,
    repeats: int,
    scenario: str = "default",
    processes: int = 1,
    **overrides: Any,
) -> dict[str, Any]:
    """Median and spread of agent-steps/s for ``n_copies`` copies, and µs per stage.

    With ``processes`` > 1 the copies run as a :class:`~mgenv.batched.sharded.ShardedCore`;
    its stage times are summed over the processes (busy µs per copy-step, not wall time).
    """
    cfg = mgenv.make_config(scenario, **overrides)
    core: BatchedCore | ShardedCore
    core = BatchedCore(cfg, n_copies) if processes == 1 else ShardedCore(cfg, n_copies, processes)
    try:
        rng = np.random.default_rng(0)
        shape = (n_copies, cfg.n_microgrids, core.action_dim)
        actions = [rng.uniform(-1.0, 1.0, shape) for _ in range(8)]
        _run(core, actions, min(steps, 48), 0)  # warm-up
        core.reset_stage_time()
        times = [_run(core, actions, steps, 1000 * (r + 1)) for r in range(repeats)]
        stage_time = core.stage_time
    finally:
        if isinstance(core, ShardedCore):
            core.close()
    per_copy_step = steps * n_copies * repeats
    stages = {k: v / per_copy_step * 1e6 for k, v in stage_time.items()}
    agents = cfg.n_microgrids
    rates = [steps * n_copies * agents / t for t in times]
    return {
        "copies": n_copies,
        "agent_steps_per_s": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "env_steps_per_s": statistics.median(rates) / agents,
        "us_per_copy_step": statistics.median(times) / (steps * n_copies) * 1e6,
        "stages_us": stages,
    }


def measure_single(
    steps: int, repeats: int, scenario: str = "default", **overrides: Any
) -> dict[str, float]:
    """Median steps/s and agent-steps/s of one single env (``ParallelEnv``), random actions."""
    from train.bench import measure

    return measure(lambda: mgenv.parallel_env(scenario, **overrides), steps, repeats)


def sb3_rates(n_copies: int, timesteps: int, seed: int = 0) -> dict[str, float]:
    """Agent-steps/s of SB3 PPO on the batched view and on CartPole with the same settings.

    Same network (SB3's default MlpPolicy, 64 x 64), ``n_envs`` = the batched view's slots,
    ``n_steps = 24`` (one episode of the market per rollout), 4 minibatches, 1 epoch, CPU.
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    out = {}
    market = BatchedVecEnv("default", n_copies=n_copies)
    n_envs = market.num_envs
    cartpole = make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)
    for name, venv in (("default (batched view)", market), ("CartPole-v1", cartpole)):
        kwargs = {"n_steps": 24, "batch_size": n_envs * 24 // 4, "n_epochs": 1}
        model = PPO("MlpPolicy", venv, seed=seed, device="cpu", **kwargs)  # type: ignore[arg-type]
        model.learn(total_timesteps=n_envs * 24)  # warm-up: one rollout and update
        t0 = time.perf_counter()
        model.learn(total_timesteps=timesteps, reset_num_timesteps=False)
        elapsed = time.perf_counter() - t0
        out[name] = (model.num_timesteps - n_envs * 24) / elapsed
        venv.close()
    out["n_envs"] = float(n_envs)
    return out


def main(argv: list[str] | None = None) -> None:
    """Print the batched table (and the SB3 comparison with ``--sb3``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", default="1,16,64,256", help="comma-separated B values")
    ap.add_argument("--protocols", default="own", help="'own' (sbet in default), pbft, ideal")
    ap.add_argument(
        "--processes",
        default="1",
        help="comma-separated process counts: each B also runs as a ShardedCore of that many",
    )
    ap.add_argument("--steps", type=int, default=240, help="batched steps per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--single-steps", type=int, default=2000)
    ap.add_argument("--sb3", action="store_true", help="also compare SB3 PPO with CartPole")
    ap.add_argument("--sb3-copies", type=int, default=64)
    ap.add_argument("--sb3-timesteps", type=int, default=200_000)
    args = ap.parse_args(argv)
    copies = [int(c) for c in args.copies.split(",")]
    processes = [int(p) for p in args.processes.split(",")]
    print(
        "| protocol | B | processes | agent-steps/s (median) | spread | env steps/s "
        "| µs per copy-step | x single env | reset | physics | market | chain | settlement "
        "| observation |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for protocol in args.protocols.split(","):
        overrides = {} if protocol == "own" else {"protocol": protocol}
        one = measure_single(args.single_steps, args.repeats, **overrides)
        single = one["agent_steps_per_s"]
        for b, procs in ((b, p) for b in copies for p in processes if p <= b):
            r = measure_batched(b, args.steps, args.repeats, processes=procs, **overrides)
            st = r["stages_us"]
            print(
                f"| {protocol} | {b} | {procs} | {r['agent_steps_per_s']:,.0f} | "
                f"{r['min']:,.0f}-{r['max']:,.0f} | {r['env_steps_per_s']:,.0f} | "
                f"{r['us_per_copy_step']:.1f} | {r['agent_steps_per_s'] / single:.1f} | "
                + " | ".join(
                    f"{st[k]:.1f}"
                    for k in ("reset", "physics", "market", "chain", "settlement", "observation")
                )
                + " |"
            )
        print(
            f"| {protocol} | single env | 1 | {single:,.0f} | {one['min'] * one['agents']:,.0f}-"
            f"{one['max'] * one['agents']:,.0f} | {one['steps_per_s']:,.0f} | "
            f"{1e6 / one['steps_per_s']:.1f} | 1.0 | | | | | | |"
        )
    if args.sb3:
        rates = sb3_rates(args.sb3_copies, args.sb3_timesteps)
        n_envs = int(rates.pop("n_envs"))
        print(f"\nSB3 PPO, n_envs={n_envs}, same network and settings (agent-steps/s):")
        for name, rate in rates.items():
            print(f"- {name}: {rate:,.0f}")


if __name__ == "__main__":
    main()
