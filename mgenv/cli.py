"""The ``mgenv`` command line: ``mgenv train | evaluate | demo``.

Examples::

    mgenv train --scenario default --algo ppo --timesteps 200000 --seed 0
    mgenv evaluate --policies truthful,fixed_quotes,runs/x/model.zip --seeds 0-9 --out runs/eval
    mgenv demo

Subcommands live in ``SUBCOMMANDS`` (name -> ``Subcommand(help, add_arguments, run)``); add one
with ``register("bench", "help", add_arguments, run)``. ``run(args) -> exit code`` imports the
heavy modules (torch, Stable-Baselines3) itself so that ``--help`` stays fast. User errors
(``ValueError``, missing files) exit with code 2 and a one-line message; set ``MGENV_DEBUG=1``
for the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["SUBCOMMANDS", "Subcommand", "main", "register"]

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)


class Subcommand(NamedTuple):
    """One ``mgenv`` subcommand."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def register(
    name: str,
    help: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
) -> None:
    """Add (or replace) the subcommand ``name``."""
    SUBCOMMANDS[name] = Subcommand(help, add_arguments, run)


def parse_assignments(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` items; values are JSON if they parse as JSON, else strings.

    Raises:
        ValueError: For an item without ``=``.
    """
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"bad {what} {item!r}; use KEY=VALUE, e.g. horizon=12")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _add_env_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", default="default", help="scenario name")
    parser.add_argument(
        "--override",
        "-o",
        action="append",
        metavar="KEY=VALUE",
        help="env config override (repeatable; VALUE parsed as JSON)",
    )


# ---------------------------------------------------------------------------- train
def _train_arguments(parser: argparse.ArgumentParser) -> None:
    # Defaults are None so that options given on the command line can replace a --config
    # file's values; TrainConfig holds the real defaults.
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="run config: a TOML file (train/configs/*.toml, or just its name, e.g. "
        "default) or a run's config.json; options below replace its values",
    )
    parser.add_argument("--scenario", default=None, help="scenario name (default: default)")
    parser.add_argument(
        "--override",
        "-o",
        action="append",
        metavar="KEY=VALUE",
        help="env config override (repeatable; VALUE parsed as JSON)",
    )
    parser.add_argument("--algo", default=None, help="ppo (default), a2c or sac")
    parser.add_argument("--timesteps", type=int, default=None, help="budget in agent steps")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--n-envs", type=int, default=None, help="env copies (default 4)")
    parser.add_argument("--n-procs", type=int, default=None, help="worker processes for copies")
    parser.add_argument(
        "--batched",
        action="store_true",
        default=None,
        help="step the copies in one batched core (mgenv.batched; microgrids vs a baseline)",
    )
    parser.add_argument("--role", default=None, help="learning role: mg (default), agg or user")
    parser.add_argument(
        "--sharing", default=None, help="role: one policy per role (default); agent: one each"
    )
    parser.add_argument(
        "--learners", default=None, help="comma-separated learning agents, e.g. mg_0,mg_1"
    )
    parser.add_argument(
        "--opponents",
        default=None,
        help="the role's other agents: baseline (default) or selfplay (snapshots)",
    )
    parser.add_argument("--snapshot-freq", type=int, default=None, help="self-play refresh")
    parser.add_argument("--rounds", type=int, default=None, help="turns per agent (agent)")
    _train_run_arguments(parser)


def _train_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Algorithm, evaluation and output options of ``mgenv train``."""
    parser.add_argument(
        "--hyperparam",
        action="append",
        metavar="KEY=VALUE",
        help="algorithm argument (repeatable), e.g. learning_rate=1e-4",
    )
    parser.add_argument("--eval-freq", type=int, default=None, help="agent steps; 0: off")
    parser.add_argument("--eval-baselines", default=None, help="e.g. truthful,fixed_quotes")
    parser.add_argument("--eval-seeds", default=None, help="e.g. 1000-1004")
    parser.add_argument("--out", type=Path, default=None, help="parent of run dirs (runs)")
    parser.add_argument("--name", default=None, help="run directory name")
    parser.add_argument("--checkpoint-freq", type=int, default=None, help="agent steps; 0: off")
    parser.add_argument("--progress-bar", action="store_true", default=None)
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", default=None)
    parser.add_argument(
        "--no-vec-normalize", dest="vec_normalize", action="store_false", default=None
    )
    parser.add_argument("--verbose", type=int, default=None)


# TrainConfig field <- argparse destination, for the options that map one to one
_TRAIN_FIELDS = {
    "scenario": "scenario",
    "algo": "algo",
    "total_timesteps": "timesteps",
    "seed": "seed",
    "n_envs": "n_envs",
    "n_procs": "n_procs",
    "batched": "batched",
    "role": "role",
    "sharing": "sharing",
    "opponents": "opponents",
    "snapshot_freq": "snapshot_freq",
    "rounds": "rounds",
    "eval_freq": "eval_freq",
    "out_dir": "out",
    "run_name": "name",
    "checkpoint_freq": "checkpoint_freq",
    "progress_bar": "progress_bar",
    "tensorboard": "tensorboard",
    "vec_normalize": "vec_normalize",
    "verbose": "verbose",
}


def _train_values(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig values given on the command line (options left out are absent)."""
    values = {f: getattr(args, d) for f, d in _TRAIN_FIELDS.items() if getattr(args, d) is not None}
    if args.learners is not None:
        values["learners"] = tuple(filter(None, (a.strip() for a in args.learners.split(","))))
    if args.eval_baselines is not None:
        values["eval_baselines"] = tuple(b.strip() for b in args.eval_baselines.split(","))
    if args.eval_seeds is not None:
        from train.evaluate import parse_seeds

        values["eval_seeds"] = tuple(parse_seeds(args.eval_seeds))
    for field, option, what in (
        ("overrides", args.override, "override"),
        ("hyperparams", args.hyperparam, "hyperparam"),
    ):
        if option:
            values[field] = parse_assignments(option, what)
    return values


def _train_run(args: argparse.Namespace) -> int:
    from train.config_file import load_train_config
    from train.train_config import config_from_dict

    values = _train_values(args)
    config = load_train_config(args.config, **values) if args.config else config_from_dict(values)
    _check_scenario(config.scenario)
    from train.sb3 import train

    print(train(config))
    return 0


def _check_scenario(name: str) -> None:
    """Fail fast (before importing torch) on an unknown scenario name."""
    from mgenv import scenarios

    valid = list(scenarios.names())
    if name not in valid:
        raise ValueError(f"unknown scenario {name!r}; valid: {valid}")


# ------------------------------------------------------------------------- evaluate
def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_env_arguments(parser)
    parser.add_argument(
        "--policies",
        required=True,
        help="comma-separated baseline names and model paths "
        "(label=spec to rename), e.g. truthful,runs/x/model.zip",
    )
    parser.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,3,5")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"), help="output folder")


def _evaluate_run(args: argparse.Namespace) -> int:
    from train.evaluate import evaluate, parse_policies, parse_seeds

    policies, seeds = parse_policies(args.policies), parse_seeds(args.seeds)
    _check_scenario(args.scenario)
    results = evaluate(
        policies,
        scenario=args.scenario,
        seeds=seeds,
        overrides=parse_assignments(args.override, "override"),
        out_dir=args.out,
    )
    print(results.markdown)
    for kind, path in results.files.items():
        print(f"{kind:>9}: {path}")
    return 0


# ----------------------------------------------------------------------------- demo
def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    from train.demo import DEMO_N_ENVS, DEMO_TIMESTEPS

    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--timesteps", type=int, default=DEMO_TIMESTEPS)
    parser.add_argument("--seeds", default="100-104", help="evaluation seeds")
    parser.add_argument("--n-envs", type=int, default=DEMO_N_ENVS)
    parser.add_argument("--n-procs", type=int, default=1)
    parser.add_argument("--no-progress-bar", action="store_true")


def _demo_run(args: argparse.Namespace) -> int:
    from train.demo import run_demo
    from train.evaluate import parse_seeds

    run_demo(
        out_dir=args.out,
        total_timesteps=args.timesteps,
        seeds=parse_seeds(args.seeds),
        n_envs=args.n_envs,
        n_procs=args.n_procs,
        progress_bar=not args.no_progress_bar,
    )
    return 0


register("train", "train bidders of one role with Stable-Baselines3", _train_arguments, _train_run)
register(
    "evaluate",
    "compare policies over seeded episodes (tables + plot)",
    _evaluate_arguments,
    _evaluate_run,
)
register(
    "demo",
    "train PPO briefly and compare it with the baselines (~3 min)",
    _demo_arguments,
    _demo_run,
)


# ---------------------------------------------------------------------------- bench
BENCH_TARGETS = {
    "env": "train.bench:main",
    "chain": "train.bench_chain:main",
    "soak": "train.soak:main",
    "scale": "train.bench_scale:main",
    "batched": "train.bench_batched:main",
    "jit": "train.bench_jit:main",
}


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        metavar="[TARGET] ...",
        help=f"TARGET is one of {sorted(BENCH_TARGETS)} (default env: steps/s per scenario and "
        "protocol; chain: load test; soak: a long run's memory; scale: cost as the market and "
        "the chain grow; batched: B copies in one batched core, SB3 PPO vs CartPole), then "
        "its options "
        "(mgenv bench TARGET --help)",
    )


def _bench_run(args: argparse.Namespace) -> int:
    import importlib

    rest = list(args.args)
    target = rest.pop(0) if rest and rest[0] in BENCH_TARGETS else "env"
    module, _, func = BENCH_TARGETS[target].partition(":")
    getattr(importlib.import_module(module), func)(rest)
    return 0


# ------------------------------------------------------------------------ reproduce
def _reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="scenario whose paper experiments to reproduce")
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default runs/reproduce/NAME)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer seeds and points")


def _reproduce_run(args: argparse.Namespace) -> int:
    from train import reproduce

    run = reproduce.get(args.name)
    out = args.out or Path("runs/reproduce") / args.name
    out.mkdir(parents=True, exist_ok=True)
    print(run(out, args.quick))
    return 0


register(
    "bench", "print speed benchmarks (env steps/s, chain load test)", _bench_arguments, _bench_run
)
register(
    "reproduce",
    "reproduce a paper's experiments (CSV, plots, printed tables)",
    _reproduce_arguments,
    _reproduce_run,
)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with one subparser per registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="mgenv", description="mgenv: train, evaluate, demo, bench, reproduce"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in SUBCOMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (2 for user errors)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"] and argv[1:2] not in (["-h"], ["--help"]):
        # everything after "bench" belongs to the target's own parser (its options may
        # come first: `mgenv bench --steps 100` benchmarks the env)
        args = argparse.Namespace(command="bench", args=argv[1:])
    else:
        args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return SUBCOMMANDS[args.command].run(args)
    except USER_ERRORS as exc:
        if os.environ.get("MGENV_DEBUG"):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"mgenv {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
