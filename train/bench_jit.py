"""What the compiled kernels cost before the first step: compilation, then loading the cache.

Each measurement runs in a fresh Python process on a copy of the ``mgenv`` package in a
temporary directory, so that numba's on-disk cache (kept next to the source) starts empty:

1. **cold**: import, build the env, reset, one step of each scenario's own protocol and of
   PBFT, compiling every kernel they use (a user's very first run);
2. **warm**: the same in a second process, loading the kernels from the cache (every later
   run, until mgenv's files change);
3. **numpy**: the same with ``MGENV_JIT=0`` (no kernels).

Usage::

    mgenv bench jit
    mgenv bench jit --scenarios default
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mgenv

_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import mgenv
t1 = time.perf_counter()
for scenario in sys.argv[1].split(","):
    for protocol in ("own", "pbft"):
        env = mgenv.parallel_env(scenario, **({} if protocol == "own" else {"protocol": protocol}))
        env.reset(seed=0)
        env.step({a: env.action_space(a).sample() for a in env.agents})
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_steps_s": t2 - t1, "mgenv": mgenv.__file__}))
"""


def _run(package_parent: Path, scenarios: str, jit: bool) -> dict[str, float]:
    """Time the script in a fresh process that imports mgenv from ``package_parent``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(package_parent), str(Path(mgenv.__file__).parents[1]), env.get("PYTHONPATH", "")]
    )
    env["MGENV_JIT"] = "1" if jit else "0"
    out = subprocess.run(  # in the copy's directory: `-c` puts the working directory first
        [sys.executable, "-c", _SCRIPT, scenarios],
        env=env,
        cwd=package_parent,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    if not str(result.pop("mgenv")).startswith(str(package_parent)):
        raise RuntimeError("the timed process did not import the copy of mgenv")
    return result


def main(argv: list[str] | None = None) -> None:
    """Print cold (compiling), warm (cached) and numpy-only start-up times."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="all", help="comma-separated scenario names or 'all'")
    args = ap.parse_args(argv)
    names = mgenv.scenarios.names() if args.scenarios == "all" else args.scenarios.split(",")
    scenarios = ",".join(names)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(mgenv.__file__).parent
        shutil.copytree(src, Path(tmp) / "mgenv", ignore=shutil.ignore_patterns("__pycache__"))
        rows = [
            ("cold (compiles every kernel)", _run(Path(tmp), scenarios, jit=True)),
            ("warm (kernels from the cache)", _run(Path(tmp), scenarios, jit=True)),
            ("numpy only (MGENV_JIT=0)", _run(Path(tmp), scenarios, jit=False)),
        ]
    print(f"scenarios: {scenarios}; each with its own protocol and PBFT: build, reset, one step")
    print("| run | import mgenv, s | first steps, s |")
    print("|---|---|---|")
    for label, r in rows:
        print(f"| {label} | {r['import_s']:.2f} | {r['first_steps_s']:.2f} |")


if __name__ == "__main__":
    main()
