"""Each kernel of a ``default`` period timed alone, on the arguments a real period gave it.

``python benchmarks/bench_kernels.py [--periods 10] [--calls 20000]``

Runs ``default`` with the stages one by one (``core.fuse = False``) for ``periods`` periods,
keeping a copy of the arguments of the last call of each kernel the fused period
(:mod:`mgenv.fused`) chains, then calls each kernel ``calls`` times on copies of those
arguments and prints the fastest of five rounds (``bench_sha.per_call_us``) in µs per
call: the kernel's entry, the unboxing of its arguments and its work, with warm caches
(inside a step each costs more).
The chain's kernel also runs with the period's trades removed, which leaves its fixed part.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from bench_sha import per_call_us  # benchmarks/ is the script's directory

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


def main() -> None:
    """Print µs per call of each kernel of a ``default`` period."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--periods", type=int, default=10, help="periods run before capturing")
    ap.add_argument("--calls", type=int, default=20000, help="calls per timed run")
    args = ap.parse_args()
    seen = capture(args.periods)
    fns: dict[str, Callable[[], object]] = {}
    for name, (kernel, kernel_args) in seen.items():
        fns[name] = functools.partial(kernel, *copy.deepcopy(kernel_args))
    kernel, chain_args = seen["sbet_chain_period"]
    no_trades = list(copy.deepcopy(chain_args))
    for k in (5, 6, 7, 8):  # seller, buyer, kWh, price: no trades
        no_trades[k] = no_trades[k][:0]
    fns["sbet_chain_period, no trades"] = functools.partial(kernel, *no_trades)
    us = per_call_us(fns, args.calls, 5)
    print(f"(the period had {chain_args[5].size} trades)")
    for name, value in us.items():
        print(f"{name:30s} {value:7.2f} µs per call")


if __name__ == "__main__":
    main()
