"""Environment speed: env steps/s and agent-steps/s with random actions, against MPE.

Random actions are sampled before the timed loop (one per period and agent, reused across
episodes), so only ``reset`` and ``step`` are timed. Each figure is the median of ``repeats``
runs, with the spread (min-max) beside it. PettingZoo MPE ``simple_spread_v3`` (3 agents,
from the ``mpe2`` package) is measured in the same run for a ratio.

Usage::

    mgenv bench                                    # default scenario, pbft and ideal
    mgenv bench --scenarios all --steps 5000 --repeats 5
    mgenv bench --paths kernels,numpy              # with and without the compiled kernels
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import mgenv
from mgenv import _jit
from mgenv.core import STAGES


def timed_steps(env: Any, actions: list[dict[str, np.ndarray]], steps: int) -> float:
    """Seconds for ``steps`` env steps (resets included) with the precomputed actions."""
    env.reset(seed=0)
    k, episode = 0, 0
    t0 = time.perf_counter()
    for _ in range(steps):
        if not env.agents:
            episode += 1
            env.reset(seed=episode)
            k = 0
        env.step(actions[k % len(actions)])
        k += 1
    return time.perf_counter() - t0


def measure(make: Callable[[], Any], steps: int, repeats: int) -> dict[str, float]:
    """Median and spread of env steps/s for the env built by ``make``."""
    env = make()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = [
        {
            a: env.action_space(a).sample()
            if not hasattr(env.action_space(a), "low")
            else rng.uniform(env.action_space(a).low, env.action_space(a).high).astype(np.float32)
            for a in env.possible_agents
        }
        for _ in range(64)
    ]
    timed_steps(env, actions, min(steps, 500))  # warm-up
    rates = [steps / timed_steps(env, actions, steps) for _ in range(repeats)]
    n_agents = len(env.possible_agents)
    med = statistics.median(rates)
    return {
        "steps_per_s": med,
        "min": min(rates),
        "max": max(rates),
        "agents": n_agents,
        "agent_steps_per_s": med * n_agents,
    }


def stage_profile(scenario: str, steps: int, **overrides: Any) -> dict[str, float]:
    """Microseconds per step spent in each stage (physics, market, chain, ...).

    The stages run one by one (``core.fuse = False``): a period in one kernel call
    (:mod:`mgenv.fused`, the ``default`` family's usual path) has no clock per stage.
    """
    env = mgenv.parallel_env(scenario, **overrides)
    env.core.fuse = False
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    actions = [
        {
            a: rng.uniform(-1, 1, env.action_space(a).shape).astype(np.float32)
            for a in env.possible_agents
        }
        for _ in range(64)
    ]
    # warm-up: the kernels only this path calls are compiled or loaded from the cache here,
    # not inside the timed steps (a load of ~0.1 s would add ~40 us per step over 4,000)
    timed_steps(env, actions, min(steps, 200))
    for k in env.core.stage_time:
        env.core.stage_time[k] = 0.0
    total = timed_steps(env, actions, steps)
    out = {k: env.core.stage_time[k] / steps * 1e6 for k in STAGES}
    out["total"] = total / steps * 1e6
    return out


def mpe_factory() -> Callable[[], Any] | None:
    """``simple_spread_v3`` (continuous actions off, as its default) if ``mpe2`` is installed."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        from mpe2 import simple_spread_v3
    except ImportError:
        return None
    return lambda: simple_spread_v3.parallel_env()


def _env_factory(scenario: str, protocol: str) -> Callable[[], Any]:
    """``protocol="own"``: the scenario's configured chain; otherwise that protocol."""
    overrides = {} if protocol == "own" else {"protocol": protocol}
    return lambda: mgenv.parallel_env(scenario, **overrides)


def _print_row(
    scen: str,
    proto: str,
    label: str,
    path: str,
    args: argparse.Namespace,
    mpe_rate: dict[str, float] | None,
) -> None:
    """Measure one scenario, protocol and path (kernels or numpy) and print its row."""
    enabled = _jit.ENABLED
    _jit.ENABLED = path == "kernels"
    try:
        r = measure(_env_factory(scen, proto), args.steps, args.repeats)
    except ValueError as exc:  # e.g. a protocol that needs more nodes
        print(f"| {scen} | {label} | {path} | - | not valid: {str(exc).splitlines()[0][:60]} |")
        return
    finally:
        _jit.ENABLED = enabled
    ratio = f" {r['steps_per_s'] / mpe_rate['steps_per_s']:.2f} |" if mpe_rate else ""
    print(
        f"| {scen} | {label} | {path} | {r['agents']} | {r['steps_per_s']:,.0f} | "
        f"{r['min']:,.0f}-{r['max']:,.0f} | {r['agent_steps_per_s']:,.0f} |{ratio}"
    )


def main(argv: list[str] | None = None) -> None:
    """Print the table of env steps/s per scenario and protocol, and the stage profile."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--scenarios", default="default", help="comma-separated scenario names or 'all'"
    )
    ap.add_argument(
        "--protocols",
        default="own,pbft,ideal",
        help="comma-separated; 'own' is the scenario's configured chain",
    )
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--paths",
        default="kernels",
        help="comma-separated: 'kernels' (the compiled kernels, mgenv._jit) and/or 'numpy' "
        "(the numpy code only, as with MGENV_JIT=0), measured in the same run",
    )
    args = ap.parse_args(argv)
    names = mgenv.scenarios.names() if args.scenarios == "all" else args.scenarios.split(",")
    protocols = args.protocols.split(",")
    paths = args.paths.split(",")
    if not set(paths) <= {"kernels", "numpy"}:
        ap.error(f"--paths takes 'kernels' and/or 'numpy', got {args.paths!r}")
    if "kernels" in paths and not _jit.ENABLED:
        ap.error("--paths kernels: numba is not importable or MGENV_JIT=0")
    mpe = mpe_factory()
    mpe_rate = measure(mpe, args.steps, args.repeats) if mpe else None
    print(
        "| env | protocol | path | agents | env steps/s (median) | spread | agent-steps/s |"
        + (" x MPE |" if mpe_rate else "")
    )
    print("|---|---|---|---|---|---|---|" + ("---|" if mpe_rate else ""))
    for scen in names:
        for proto in protocols:
            label = mgenv.make_config(scen).chain.protocol if proto == "own" else proto
            if proto == "own" and label in protocols:
                continue  # measured below under its own name
            for path in paths:
                _print_row(scen, proto, label, path, args, mpe_rate)
    if mpe_rate:
        print(
            f"| MPE simple_spread_v3 | - | - | {mpe_rate['agents']} | "
            f"{mpe_rate['steps_per_s']:,.0f} | {mpe_rate['min']:,.0f}-{mpe_rate['max']:,.0f}"
            f" | {mpe_rate['agent_steps_per_s']:,.0f} | 1.00 |"
        )
    profiled = "default" if "default" in names else names[0]
    for proto in protocols:
        overrides = {} if proto == "own" else {"protocol": proto}
        label = mgenv.make_config(profiled).chain.protocol if proto == "own" else proto
        try:
            prof = stage_profile(profiled, args.steps, **overrides)
        except ValueError:
            continue
        print(
            f"\nmicroseconds per step, {profiled} / {label}, stages run one by one: "
            + ", ".join(f"{k} {v:.1f}" for k, v in prof.items())
        )


if __name__ == "__main__":
    main()
