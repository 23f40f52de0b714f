"""Soak benchmark: a long run of ``default`` with random actions; memory must stay flat.

``mgenv bench soak --steps 1000000`` prints the resident memory (RSS, from
``/proc/self/status``) at the start, every tenth of the run and at the end, the number of
non-finite observations or rewards seen (must be 0) and the steps per second. Random actions
are drawn once (a pool of 1,024 per agent) outside the timed loop.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

import mgenv


def rss_mib() -> float:
    """Resident set size of this process, MiB (Linux ``/proc/self/status``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def soak(steps: int, scenario: str = "default", seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """Run ``steps`` env steps; return memory samples, non-finite count and speed."""
    env = mgenv.parallel_env(scenario, **overrides)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    pool = [
        {
            a: rng.uniform(-1, 1, env.action_space(a).shape).astype(np.float32)
            for a in env.possible_agents
        }
        for _ in range(1024)
    ]
    samples = [(0, rss_mib())]
    bad, episode = 0, 0
    t0 = time.perf_counter()
    for k in range(steps):
        if not env.agents:
            episode += 1
            env.reset(seed=seed + episode)
        obs, rewards, *_ = env.step(pool[k % len(pool)])
        if not (
            all(np.isfinite(r) for r in rewards.values())
            and all(np.isfinite(o).all() for o in obs.values())
        ):
            bad += 1
        if (k + 1) % max(steps // 10, 1) == 0:
            samples.append((k + 1, rss_mib()))
    elapsed = time.perf_counter() - t0
    return {
        "steps": steps,
        "episodes": episode + 1,
        "rss_mib": samples,
        "non_finite": bad,
        "steps_per_s": steps / elapsed,
        "ledger_blocks_in_memory": len(env.core.chain.ledger),
    }


def main(argv: list[str] | None = None) -> None:
    """Print the soak figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--scenario", default="default")
    args = ap.parse_args(argv)
    r = soak(args.steps, args.scenario)
    print(
        f"{r['steps']:,} steps ({r['episodes']:,} episodes) of {args.scenario} in "
        f"{r['steps'] / r['steps_per_s']:.0f} s ({r['steps_per_s']:,.0f} steps/s); "
        f"non-finite observations or rewards: {r['non_finite']}; "
        f"in-memory ledger: {r['ledger_blocks_in_memory']} blocks"
    )
    print("RSS (MiB) by step: " + ", ".join(f"{k:,}: {m:.1f}" for k, m in r["rss_mib"]))


if __name__ == "__main__":
    main()
