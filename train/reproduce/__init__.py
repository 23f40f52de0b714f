"""Paper reproductions: ``mgenv reproduce NAME`` (or ``python -m train.reproduce NAME``).

Each reproduction is a module with ``run(out_dir: pathlib.Path, quick: bool) -> str`` that
writes its CSV files and plots into ``out_dir`` and returns the text it prints (tables of the
paper's figures as measured here). Register it in :data:`REPRODUCERS` as
``"scenario_name": "module:function"``; the import is lazy so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

REPRODUCERS: dict[str, str] = {
    "consortium_p2p": "train.reproduce.p2p:run",
    "crosschain_aggregators": "train.reproduce.crosschain:run",
    "ccche_thermal_game": "train.reproduce.ccche:run",
    "sbet_cooperative": "train.reproduce.sbet:run",
}


def names() -> list[str]:
    """Reproducible scenarios, sorted."""
    return sorted(REPRODUCERS)


def get(name: str) -> Callable[[Path, bool], str]:
    """The ``run`` function of reproduction ``name``; unknown names list the valid ones."""
    if name not in REPRODUCERS:
        raise ValueError(f"no reproduction {name!r}; available: {names()}")
    module, _, func = REPRODUCERS[name].partition(":")
    run: Callable[[Path, bool], str] = getattr(importlib.import_module(module), func)
    return run


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m train.reproduce NAME [--out DIR] [--quick]``."""
    ap = argparse.ArgumentParser(description="Reproduce a paper's experiments.")
    ap.add_argument("name", help=f"one of {names()}")
    ap.add_argument("--out", default=None, help="output folder (default runs/reproduce/NAME)")
    ap.add_argument("--quick", action="store_true", help="fewer seeds/points (for tests)")
    args = ap.parse_args(argv)
    out = Path(args.out or f"runs/reproduce/{args.name}")
    out.mkdir(parents=True, exist_ok=True)
    print(get(args.name)(out, args.quick))
    return 0
