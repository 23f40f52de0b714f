"""CPU time per env step, and where it goes, for one revision of the package.

``python benchmarks/cpu_steps.py [--scenario default] [--protocol own] [--steps 2000]
[--rounds 7] [--horizon H]``

Times ``rounds`` runs of ``steps`` steps (random actions drawn beforehand, resets included)
with ``time.process_time``, which does not count the time other processes hold the CPU, so
figures drift less than wall time while the machine is shared (they still drift with its
caches and clock: compare alternating runs); prints the fastest run's µs per step,
then, over one more run, the core's stage clocks and the CPU time inside the env's methods
(wrapped; each wrapper adds ~0.3 µs). ``benchmarks/cpu_ab.sh`` alternates two commits.
``--horizon`` overrides the episode length (longer episodes: resets weigh less per step).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import mgenv

# (module, class, method): the env's per-step work outside and inside the core
METHODS = (
    ("mgenv.env", "MarketEnv", "reset"),
    ("mgenv.env", "MarketEnv", "_check_actions"),
    ("mgenv.env", "MarketEnv", "_opponent_actions"),
    ("mgenv.env", "MarketEnv", "_split"),
    ("mgenv.core", "MarketCore", "step"),
    ("mgenv.core", "MarketCore", "observations"),
    ("mgenv.core", "MarketCore", "agent_infos"),
)


def run(env: Any, actions: list[dict[str, np.ndarray]], steps: int) -> float:
    """CPU seconds for ``steps`` steps from a fresh episode (resets included).

    ``train.bench.timed_steps``' loop with another clock, written out here because
    ``cpu_ab.sh`` runs this file against older commits' packages.
    """
    env.reset(seed=0)
    k, episode = 0, 0
    t0 = time.process_time()
    for _ in range(steps):
        if not env.agents:
            episode += 1
            env.reset(seed=episode)
            k = 0
        env.step(actions[k % len(actions)])
        k += 1
    return time.process_time() - t0


def setup(
    scenario: str, protocol: str = "own", horizon: int | None = None
) -> tuple[Any, list[dict[str, np.ndarray]]]:
    """The env (warmed up: kernels compiled or loaded) and 64 steps of random actions."""
    overrides: dict[str, Any] = {} if protocol == "own" else {"protocol": protocol}
    if horizon is not None:
        overrides["horizon"] = horizon
    env = mgenv.parallel_env(scenario, **overrides)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = [
        {
            a: rng.uniform(env.action_space(a).low, env.action_space(a).high).astype(np.float32)
            for a in env.possible_agents
        }
        for _ in range(64)
    ]
    run(env, actions, 500)  # warm-up (and compilation on a cold cache)
    return env, actions


def wrap(acc: dict[str, float], cls: type, name: str) -> None:
    """Replace ``cls.name`` by a wrapper adding its CPU time to ``acc["Class.name"]``."""
    label = f"{cls.__name__}.{name}"
    fn: Callable[..., Any] = getattr(cls, name)

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] = acc.get(label, 0.0) + time.process_time() - t0

    setattr(cls, name, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--protocol", default="own", help="'own': the scenario's chain")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--horizon", type=int, default=None, help="the scenario's by default")
    args = ap.parse_args()
    env, actions = setup(args.scenario, args.protocol, args.horizon)
    best = min(run(env, actions, args.steps) for _ in range(args.rounds)) / args.steps
    print(f"{best * 1e6:.1f} µs per step (CPU, fastest of {args.rounds} x {args.steps})")
    # the stage clocks read time.perf_counter: CPU time for this run
    real_clock, time.perf_counter = time.perf_counter, time.process_time
    acc: dict[str, float] = {}
    for module, cls, name in METHODS:
        wrap(acc, getattr(importlib.import_module(module), cls), name)
    for k in env.core.stage_time:
        env.core.stage_time[k] = 0.0
    total = run(env, actions, args.steps)
    time.perf_counter = real_clock
    n = args.steps
    stages = ", ".join(f"{k} {v / n * 1e6:.1f}" for k, v in env.core.stage_time.items())
    print(f"stages (µs per step): {stages}; total {total / n * 1e6:.1f}")
    print("methods (µs per step): " + ", ".join(f"{k} {v / n * 1e6:.1f}" for k, v in acc.items()))


if __name__ == "__main__":
    main()
