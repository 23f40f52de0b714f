"""CPU time per env step of two commits, measured in turns: paired differences.

``python benchmarks/cpu_pair.py REV_A REV_B [--pairs 40] [--steps 2400] [--scenario default]
[--protocol own]``

Each commit is checked out in a temporary worktree and runs in its own process, which builds
the env once (its kernels compile on first use) and then waits; the two processes take turns
at ``steps`` steps each (random actions drawn beforehand, resets included, as
``benchmarks/cpu_steps.py``), never both at once, A first in even pairs and B first in odd
ones. Each turn is timed with ``time.process_time`` in its process. The machine's slow
stretches last longer than a turn (~0.3 s), so both sides of a pair see the same machine:
the median of the paired differences B - A is readable where separate runs
(``cpu_ab.sh``) drift by more than the change. Prints each side's median µs per step and
the paired differences' quartiles.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# The child: sets up as cpu_steps.py does (this checkout's copy, the tree's package), then
# answers each line on stdin with its µs per step over one turn.
CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from cpu_steps import run, setup

env, actions = setup(sys.argv[2], sys.argv[3])
steps = int(sys.argv[4])
print("ready", flush=True)
for line in sys.stdin:
    print(f"{run(env, actions, steps) / steps * 1e6:.3f}", flush=True)
"""


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """The 25th, 50th and 75th percentiles (nearest rank)."""
    v = sorted(values)
    return v[len(v) // 4], v[len(v) // 2], v[(3 * len(v)) // 4]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rev_a")
    ap.add_argument("rev_b")
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--protocol", default="own", help="'own': the scenario's chain")
    args = ap.parse_args()
    repo = Path(
        subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    here, steps = str(Path(__file__).resolve().parent), str(args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        trees = [Path(tmp) / side for side in ("a", "b")]
        procs = []
        try:
            for tree, rev in zip(trees, (args.rev_a, args.rev_b), strict=True):
                subprocess.run(
                    ["git", "-C", str(repo), "worktree", "add", "-q", "--detach", str(tree), rev],
                    check=True,
                )
            for tree in trees:  # one at a time: each compiles its kernels in its warm-up
                env = dict(os.environ, PYTHONPATH=str(tree))
                proc = subprocess.Popen(
                    [sys.executable, "-c", CHILD, here, args.scenario, args.protocol, steps],
                    cwd=tree,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
                procs.append(proc)
            times: list[list[float]] = [[], []]
            for k in range(args.pairs):
                for side in (0, 1) if k % 2 == 0 else (1, 0):
                    proc = procs[side]
                    assert proc.stdin is not None and proc.stdout is not None
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
                    times[side].append(float(proc.stdout.readline()))
        finally:
            for proc in procs:
                proc.kill()
            for tree in trees:
                subprocess.run(
                    ["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
                    check=False,
                )
    diffs = [b - a for a, b in zip(times[0], times[1], strict=True)]
    for name, rev, t in zip("AB", (args.rev_a, args.rev_b), times, strict=True):
        print(f"{name} {rev}: median {quartiles(t)[1]:.1f} µs per step (CPU, {len(t)} turns)")
    lo, mid, hi = quartiles(diffs)
    share = 100 * mid / quartiles(times[0])[1]
    print(
        f"B - A, paired: median {mid:+.1f} µs per step ({share:+.1f}%),"
        f" quartiles {lo:+.1f} .. {hi:+.1f}"
    )


if __name__ == "__main__":
    main()
