"""Kernels vs numpy for settlement, bookkeeping, electric physics and reset, interleaved.

``python benchmarks/bench_settle.py [--scenario default] [--protocol pbft] [--steps 1500]
[--rounds 6]``

One process runs the same recorded actions alternately with ``mgenv._jit.ENABLED`` false
(the numpy code) and true (the kernels), ``rounds`` times each, so that both see the same
machine load. Per step it reports the core's stage clocks for ``physics`` (the plan) and
``settlement`` (settle, realise, profit, bookkeeping), and wrapper clocks for
``agent_infos`` and ``reset`` (profiles and state, amortised over the episode), plus the
whole step. Figures are the minimum and the median over rounds of each round's time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import mgenv
from mgenv import _jit
from mgenv.core import MarketCore

PARTS = ("physics", "settlement", "agent_infos", "reset", "step")


def _timed(clock: dict[str, float], key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        clock[key] += time.perf_counter() - t0
        return out

    return wrapper


def main() -> None:
    """Print a table of µs per step, numpy vs kernels."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--protocol", default="pbft")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    clock = dict.fromkeys(PARTS, 0.0)
    for name in ("agent_infos", "reset"):
        setattr(MarketCore, name, _timed(clock, name, getattr(MarketCore, name)))
    env = mgenv.parallel_env(args.scenario, protocol=args.protocol)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    actions = [
        {a: rng.uniform(-1, 1, env.action_space(a).shape).astype(np.float32) for a in env.agents}
        for _ in range(64)
    ]

    def run(steps: int) -> None:
        env.reset(seed=0)
        episode = 0
        for k in range(steps):
            if not env.agents:
                episode += 1
                env.reset(seed=episode)
            env.step(actions[k % len(actions)])

    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for enabled in (False, True):  # warm-up: compile or load the kernels
        _jit.ENABLED = enabled
        run(300)
    for _ in range(args.rounds):
        for enabled in (False, True):
            _jit.ENABLED = enabled
            stage = env.core.stage_time
            for k in stage:
                stage[k] = 0.0
            for k in clock:
                clock[k] = 0.0
            t0 = time.perf_counter()
            run(args.steps)
            clock["step"] = time.perf_counter() - t0
            clock["physics"], clock["settlement"] = stage["physics"], stage["settlement"]
            results[enabled].append({k: v / args.steps * 1e6 for k, v in clock.items()})
    print(
        f"{args.scenario} / {args.protocol}: µs per step, min / median of {args.rounds} "
        f"interleaved rounds of {args.steps} steps"
    )
    print("| part | numpy | kernels |")
    print("|---|---|---|")
    for part in PARTS:
        cells = []
        for enabled in (False, True):
            vals = [r[part] for r in results[enabled]]
            cells.append(f"{min(vals):.1f} / {statistics.median(vals):.1f}")
        print(f"| {part} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
