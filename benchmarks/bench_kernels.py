"""Each kernel of a ``default`` period timed alone, on the arguments a real period gave it.

``python benchmarks/bench_kernels.py [--periods 10] [--calls 20000]``

Runs ``default`` with the stages one by one (``core.fuse = False``) for ``periods`` periods,
keeping a copy of the arguments of the last call of each kernel the fused period
(:mod:`mgenv.fused`) chains, then calls each kernel ``calls`` times on copies of those
arguments and prints the fastest of five runs in µs per call (the kernel's entry, the
unboxing of its arguments, and its work, with warm caches: inside a step each costs more).
The chain's kernel also runs with the period's trades removed, which leaves its fixed part.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import mgenv

# (module whose global the stage calls, kernel name)
KERNELS = (
    ("mgenv.market.uniform", "clear_uniform"),
    ("mgenv.chain.fast_sbet", "sbet_chain_period"),
    ("mgenv.core", "settle_period_into"),
    ("mgenv.physics.model", "plan_into"),
    ("mgenv.observe", "mg_obs_kernel"),
    ("mgenv.core", "info_rows_into"),
)


def capture(periods: int) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]:
    """The kernels and deep copies of their arguments in the last of ``periods`` periods."""
    seen: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {}
    originals = []
    for module_name, name in KERNELS:
        module = importlib.import_module(module_name)
        kernel = getattr(module, name)

        def spy(*args: Any, _k: Any = kernel, _n: str = name) -> Any:
            seen[_n] = (_k, copy.deepcopy(args))
            return _k(*args)

        originals.append((module, name, kernel))
        setattr(module, name, spy)
    try:
        env = mgenv.parallel_env("default")
        env.core.fuse = False
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        for _ in range(periods):
            shapes = {a: env.action_space(a).shape for a in env.agents}
            env.step({a: rng.uniform(-1, 1, s).astype(np.float32) for a, s in shapes.items()})
    finally:
        for module, name, kernel in originals:
            setattr(module, name, kernel)
    return seen


def per_call(kernel: Callable[..., Any], args: tuple[Any, ...], calls: int) -> float:
    """Fastest of five runs of ``calls`` calls, µs per call (on a copy of ``args``)."""
    work = copy.deepcopy(args)
    kernel(*work)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            kernel(*work)
        best = min(best, time.perf_counter() - t0)
    return best / calls * 1e6


def main() -> None:
    """Print µs per call of each kernel of a ``default`` period."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--periods", type=int, default=10, help="periods run before capturing")
    ap.add_argument("--calls", type=int, default=20000, help="calls per timed run")
    args = ap.parse_args()
    seen = capture(args.periods)
    for name, (kernel, kernel_args) in seen.items():
        extra = ""
        if name == "sbet_chain_period":
            n_tx = kernel_args[5].size
            empty = list(kernel_args)
            for k in (5, 6, 7, 8):  # seller, buyer, kWh, price: no trades
                empty[k] = empty[k][:0]
            extra = f" ({n_tx} trades; {per_call(kernel, tuple(empty), args.calls):.2f} without)"
        print(f"{name:20s} {per_call(kernel, kernel_args, args.calls):7.2f} µs per call{extra}")


if __name__ == "__main__":
    main()
