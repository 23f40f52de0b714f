"""Environment speed: env steps/s and agent-steps/s with random actions, against MPE.

Random actions are sampled before the timed loop (one per period and agent, reused across
episodes), so only ``reset`` and ``step`` are timed. Each figure is the median of ``repeats``
runs, with the spread (min-max) beside it. PettingZoo MPE ``simple_spread_v3`` (3 agents,
from the ``mpe2`` package) is measured in the same run for a ratio.

Usage::

    mgenv bench                                    # default scenario, pbft and ideal
    mgenv bench --scenarios all --steps 5000 --repeats 5
    mgenv bench --paths kernels,numpy              # with and without the compiled kernels
    mgenv bench --protocols own --pairs 20         # default's SBET and MPE in turns: a paired ratio
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


def _ready(make: Callable[[], Any], steps: int) -> tuple[Any, list[dict[str, np.ndarray]]]:
    """The env built by ``make``, warmed up, and 64 periods of random actions for it."""
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
    return env, actions


def measure(make: Callable[[], Any], steps: int, repeats: int) -> dict[str, float]:
    """Median and spread of env steps/s for the env built by ``make``."""
    env, actions = _ready(make, steps)
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


def paired_ratio(
    make_a: Callable[[], Any], make_b: Callable[[], Any], steps: int, pairs: int
) -> dict[str, float]:
    """Env steps/s of A over B's, from runs of ``steps`` steps taken in turns.

    The machine's speed drifts over seconds to minutes (it is shared), so a ratio of two
    medians measured one after the other moves with it; here each pair runs A then B (B
    then A in odd pairs) back to back and gives one ratio, and the median of the ``pairs``
    ratios is returned with its quartiles (``q1``, ``q3``) and each side's median steps/s
    (``a``, ``b``).
    """
    if pairs < 1:
        raise ValueError(f"pairs={pairs!r}: at least one pair")
    env_a, acts_a = _ready(make_a, steps)
    env_b, acts_b = _ready(make_b, steps)
    rates_a, rates_b = [], []
    for k in range(pairs):
        first_a = k % 2 == 0
        if first_a:
            rates_a.append(steps / timed_steps(env_a, acts_a, steps))
        rates_b.append(steps / timed_steps(env_b, acts_b, steps))
        if not first_a:
            rates_a.append(steps / timed_steps(env_a, acts_a, steps))
    ratios = [a / b for a, b in zip(rates_a, rates_b, strict=True)]
    q1, med, q3 = np.percentile(ratios, [25, 50, 75]).tolist()
    return {
        "median": med,
        "q1": q1,
        "q3": q3,
        "a": statistics.median(rates_a),
        "b": statistics.median(rates_b),
        "pairs": pairs,
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
        "--pairs",
        type=int,
        default=0,
        help="also measure the first scenario's first protocol (compiled kernels) and MPE "
        "in turns, this many pairs of --steps steps each, and print the median of the "
        "pairs' ratios (steadier than the table's ratio of medians on a drifting machine)",
    )
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
    if args.pairs > 0 and mpe is not None and "kernels" in paths:
        scen, proto = names[0], protocols[0]
        label = mgenv.make_config(scen).chain.protocol if proto == "own" else proto
        r = paired_ratio(_env_factory(scen, proto), mpe, args.steps, args.pairs)
        print(
            f"\npaired with MPE ({r['pairs']:.0f} pairs of {args.steps} steps, taken in turns): "
            f"{scen} / {label} / kernels at {r['median']:.2f}x MPE (median of the pairs' "
            f"ratios, quartiles {r['q1']:.2f}-{r['q3']:.2f}); steps/s {r['a']:,.0f} against "
            f"{r['b']:,.0f}"
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
