"""How cost grows: env cost per step and per participant (or node) as the market grows.

Three sweeps of the ``default`` scenario's ParallelEnv (random actions drawn before the timed
loop, resets included, the median of ``repeats`` runs with the min-max spread beside it):

* **microgrids**: ``n_microgrids`` in 4, 16, 64, 256. With ``mix="proportional"`` (the
  default) aggregators and large users scale with it, ``n_microgrids // 2`` each (at least
  one aggregator), keeping ``default``'s 4 : 2 : 2 mix, so the number of trades grows with
  the market; ``mix="fixed"`` keeps ``default``'s 2 aggregators and 2 users. The cost is
  divided by the participants (microgrids + aggregators + users).
* **nodes**: ``n_nodes`` in 4, 8, 16, 32, 64 validators for SBET (``default``'s chain) and
  PBFT, at ``default``'s 4 microgrids; the cost is divided by the nodes.
* **signatures**: ``default`` with modelled (HMAC) and real Ed25519 signatures, at the
  smallest and largest node count. Each transaction's two signatures are verified once per
  period by the simulated network as a whole (:meth:`mgenv.chain.Chain.process` calls
  ``Signer.verify_pairs`` once per period; it checks every signature once), not once per
  node: the Ed25519 extra cost per transaction is compared with ``2 sign + 2 verify`` timed
  alone, and it does not grow with the nodes.

Every row also gives the marginal cost of one more participant (or node) over the smallest
size, and the time per stage (``MarketCore.stage_time``; ``shell`` is the rest of the step:
the env shell's dicts, action checks, the opponents' baseline policy and infos). The stages
run one by one (``core.fuse = False``), each on its clock: the ``default`` family's usual
period in one kernel call (:mod:`mgenv.fused`) has no clock per stage; ``mgenv bench``
times that path.

Usage::

    mgenv bench scale                              # full sweeps, docs/scaling.png
    mgenv bench scale --sizes 4,64 --nodes 4,16 --steps 500 --repeats 3 --plot none
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import mgenv
from mgenv.core import STAGES
from train.bench import timed_steps

SIZES = (4, 16, 64, 256)
NODES = (4, 8, 16, 32, 64)
NODE_PROTOCOLS = ("sbet", "pbft")
MIXES = ("proportional", "fixed")
SIGNATURES = ("modelled", "ed25519")
COLUMNS = (*STAGES, "shell")
DEFAULT_PLOT = Path("docs/scaling.png")


class ScaleRow(NamedTuple):
    """One measured configuration of ``default`` (times in microseconds per env step)."""

    sweep: str  # "microgrids", "nodes" or "signatures"
    protocol: str
    signatures: str
    n_microgrids: int
    n_aggregators: int
    n_users: int
    n_nodes: int
    agents: int  # learning agents (PettingZoo agents)
    tx_per_step: float  # mean transactions submitted to the chain per step
    us_per_step: float  # median over repeats
    us_min: float
    us_max: float
    stages_us: dict[str, float]  # median per stage of COLUMNS

    @property
    def participants(self) -> int:
        """Market participants: microgrids, aggregators and users."""
        return self.n_microgrids + self.n_aggregators + self.n_users

    @property
    def size(self) -> int:
        """The swept size: microgrids for the microgrid sweep, else validator nodes."""
        return self.n_microgrids if self.sweep == "microgrids" else self.n_nodes

    @property
    def units(self) -> int:
        """What the cost is divided by: participants (microgrid sweep) or nodes."""
        return self.participants if self.sweep == "microgrids" else self.n_nodes

    @property
    def us_per_unit(self) -> float:
        """Microseconds per step per participant (microgrid sweep) or per node."""
        return self.us_per_step / self.units


def scale_overrides(n_microgrids: int, mix: str = "proportional") -> dict[str, int]:
    """Config overrides for ``n_microgrids`` microgrids (see the module docstring for ``mix``).

    Raises:
        ValueError: For an unknown ``mix``.
    """
    if mix == "fixed":
        return {"n_microgrids": n_microgrids}
    if mix == "proportional":
        half = n_microgrids // 2
        return {"n_microgrids": n_microgrids, "n_aggregators": max(1, half), "n_users": half}
    raise ValueError(f"mix={mix!r} is not one of {list(MIXES)}")


def _random_actions(env: Any, n: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """``n`` random joint actions in [-1, 1], drawn before any timing."""
    shapes = {a: env.action_space(a).shape for a in env.possible_agents}
    return [
        {a: rng.uniform(-1.0, 1.0, s).astype(np.float32) for a, s in shapes.items()}
        for _ in range(n)
    ]


def _run(
    env: Any, actions: list[dict[str, np.ndarray]], steps: int
) -> tuple[float, dict[str, float]]:
    """Seconds for ``steps`` steps (resets included) and the stage split of the same run."""
    stage_time = env.core.stage_time
    for k in stage_time:  # (the untimed reset at the start adds one period's plan: noise)
        stage_time[k] = 0.0
    seconds = timed_steps(env, actions, steps)
    return seconds, dict(stage_time)


def _tx_per_step(env: Any, actions: list[dict[str, np.ndarray]], steps: int) -> float:
    """Mean transactions per step over ``steps`` untimed steps (also the warm-up)."""
    env.reset(seed=0)
    n_tx = 0
    for k in range(steps):
        if not env.agents:
            env.reset(seed=k)
        env.step(actions[k % len(actions)])
        n_tx += len(env.history[-1].trades.seller)
    return n_tx / steps


def measure(
    sweep: str, overrides: dict[str, Any], steps: int, repeats: int, seed: int = 0
) -> ScaleRow:
    """Time ``default`` with ``overrides``: median and spread of µs per step, stage split.

    Args:
        sweep: Label stored in the row (``"microgrids"``, ``"nodes"``, ``"signatures"``).
        overrides: Config overrides (``mgenv.parallel_env("default", **overrides)``).
        steps: Timed env steps per repeat (resets every ``horizon`` steps included).
        repeats: Timed runs; the row holds their median and min-max.
        seed: Seed of the random actions.

    Raises:
        ValueError: For ``steps`` or ``repeats`` below 1 or an invalid override.
    """
    if steps < 1 or repeats < 1:
        raise ValueError(f"steps={steps!r} and repeats={repeats!r} must be at least 1")
    env = mgenv.parallel_env("default", **overrides)
    env.core.fuse = False  # the stages one by one, each on its clock (mgenv.fused has none)
    env.reset(seed=0)
    actions = _random_actions(env, 64, np.random.default_rng(seed))
    tx = _tx_per_step(env, actions, min(steps, 200))
    runs = [_run(env, actions, steps) for _ in range(repeats)]
    totals = [1e6 * total / steps for total, _ in runs]
    per_stage = [
        {
            **{k: 1e6 * st[k] / steps for k in STAGES},
            "shell": 1e6 * (total - sum(st.values())) / steps,
        }
        for total, st in runs
    ]
    cfg = env.config
    return ScaleRow(
        sweep,
        cfg.chain.protocol,
        cfg.chain.signatures,
        cfg.n_microgrids,
        cfg.n_aggregators,
        cfg.n_users,
        cfg.chain.n_nodes,
        len(env.possible_agents),
        tx,
        statistics.median(totals),
        min(totals),
        max(totals),
        {c: statistics.median(s[c] for s in per_stage) for c in COLUMNS},
    )


def sweep(
    sizes: Sequence[int] = SIZES,
    nodes: Sequence[int] = NODES,
    *,
    protocols: Sequence[str] = NODE_PROTOCOLS,
    mix: str = "proportional",
    signatures: str = "modelled",
    steps: int = 2000,
    repeats: int = 5,
    compare_signatures: bool = True,
) -> list[ScaleRow]:
    """Measure the three sweeps (module docstring); rows in the order they are printed.

    ``signatures`` is the kind used by the microgrid and node sweeps; with
    ``compare_signatures`` both kinds are also measured on ``default`` at the smallest and
    largest of ``nodes``.
    """
    rows = [
        measure("microgrids", {**scale_overrides(n, mix), "signatures": signatures}, steps, repeats)
        for n in sorted(sizes)
    ]
    rows += [
        measure("nodes", {"protocol": p, "n_nodes": n, "signatures": signatures}, steps, repeats)
        for p in protocols
        for n in sorted(nodes)
    ]
    if compare_signatures:
        rows += [
            measure("signatures", {"n_nodes": n, "signatures": kind}, steps, repeats)
            for n in sorted({min(nodes), max(nodes)})
            for kind in SIGNATURES
        ]
    return rows


def _stage_cells(r: ScaleRow) -> str:
    return " | ".join(f"{r.stages_us[c]:,.1f}" for c in COLUMNS)


def _growth_cells(r: ScaleRow, base: ScaleRow) -> str:
    """µs/step, spread, x smallest, µs/unit, x smallest, marginal µs per added unit."""
    extra = r.units - base.units
    marginal = f"{(r.us_per_step - base.us_per_step) / extra:,.2f}" if extra else "-"
    return (
        f"{1e6 / r.us_per_step:,.0f} | {r.us_per_step:,.1f} | {r.us_min:,.1f}-{r.us_max:,.1f} | "
        f"{r.us_per_step / base.us_per_step:.2f} | {r.us_per_unit:,.2f} | "
        f"{r.us_per_unit / base.us_per_unit:.2f} | {marginal}"
    )


_GROWTH_HEAD = (
    "steps/s | µs/step (median) | spread | x smallest | µs/{unit} | x smallest | marginal µs/{unit}"
)


# (column title, ScaleRow field) that identify a row, per sweep
_KEYS = {
    "microgrids": (
        ("microgrids", "n_microgrids"),
        ("aggregators", "n_aggregators"),
        ("users", "n_users"),
        ("agents", "agents"),
    ),
    "nodes": (("protocol", "protocol"), ("nodes", "n_nodes")),
}


def _growth_table(rows: list[ScaleRow], sweep: str) -> list[str]:
    """Rows of one sweep; each protocol's first (smallest) row is its ratios' reference."""
    unit = "participant" if sweep == "microgrids" else "node"
    titles = [t for t, _ in _KEYS[sweep]]
    head = "| " + " | ".join([*titles, "tx/step", _GROWTH_HEAD.format(unit=unit), *COLUMNS]) + " |"
    lines = [head, "|" + "---|" * (head.count(" | ") + 1)]
    first: dict[str, ScaleRow] = {}
    for r in rows:
        base = first.setdefault(r.protocol, r)
        keys = [str(getattr(r, f)) for _, f in _KEYS[sweep]]
        cells = [*keys, f"{r.tx_per_step:.1f}", _growth_cells(r, base), _stage_cells(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _signature_table(rows: list[ScaleRow], sign_verify_us: tuple[float, float] | None) -> list[str]:
    lines = [
        "| signatures | nodes | tx/step | steps/s | µs/step (median) | spread | chain µs | "
        "extra µs/step over modelled | extra µs per transaction |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    modelled = {r.n_nodes: r for r in rows if r.signatures == "modelled"}
    for r in rows:
        base = modelled.get(r.n_nodes)
        extra = r.us_per_step - base.us_per_step if base and r is not base else None
        cells = (
            "- | -" if extra is None else f"{extra:,.1f} | {extra / max(r.tx_per_step, 1e-9):,.1f}"
        )
        lines.append(
            f"| {r.signatures} | {r.n_nodes} | {r.tx_per_step:.1f} | {1e6 / r.us_per_step:,.0f} | "
            f"{r.us_per_step:,.1f} | {r.us_min:,.1f}-{r.us_max:,.1f} | "
            f"{r.stages_us['chain']:,.1f} | {cells} |"
        )
    if sign_verify_us is not None:
        sign, verify = sign_verify_us
        lines.append(
            f"\nEd25519 alone, timed in the same run: sign {sign:.1f} µs, verify {verify:.1f} µs; "
            f"a transaction's 2 signatures and 2 verifications cost {2 * sign + 2 * verify:.1f} "
            "µs. Verified once per transaction, the extra cost per transaction stays near that "
            f"at any node count; verified once per node it would grow by {2 * verify:.1f} µs "
            "per node."
        )
    return lines


def markdown(rows: Sequence[ScaleRow], sign_verify_us: tuple[float, float] | None = None) -> str:
    """The printed report: one markdown table per sweep present in ``rows``.

    Args:
        rows: Measured rows (:func:`sweep`).
        sign_verify_us: Ed25519 ``(sign_us, verify_us)`` timed alone, for the signature note.
    """
    out: list[str] = []
    for sweep in ("microgrids", "nodes", "signatures"):
        group = [r for r in rows if r.sweep == sweep]
        if not group:
            continue
        r = group[0]
        title = {
            "microgrids": f"Cost per step as microgrids grow (default scenario, {r.protocol}, "
            f"{r.n_nodes} nodes, {r.signatures} signatures):",
            "nodes": "Cost per step as validator nodes grow (default scenario, "
            f"{r.n_microgrids} microgrids, {r.signatures} signatures):",
            "signatures": "Modelled (HMAC) vs real Ed25519 signatures (default scenario, "
            f"{r.protocol}):",
        }[sweep]
        table = (
            _signature_table(group, sign_verify_us)
            if sweep == "signatures"
            else _growth_table(group, sweep)
        )
        out += [title, "", *table, ""]
    return "\n".join(out).rstrip() + "\n"


def plot(rows: Sequence[ScaleRow], path: Path) -> Path:
    """Two panels, log-log: µs per step (min-max bars) and µs per participant or node vs size.

    Args:
        rows: Measured rows; the microgrid sweep is plotted against microgrids, each node
            sweep against validator nodes.
        path: PNG file to write (its folder is created).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    series: dict[str, list[ScaleRow]] = {}
    for r in rows:
        if r.sweep == "microgrids":
            label = f"microgrids ({r.protocol}, {r.n_nodes} nodes; per mg + agg + user)"
            series.setdefault(label, []).append(r)
        elif r.sweep == "nodes":
            series.setdefault(f"{r.protocol} nodes ({r.n_microgrids} microgrids)", []).append(r)
    fig, (ax_step, ax_unit) = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, group in series.items():
        x = [r.size for r in group]
        y = np.array([r.us_per_step for r in group])
        lo, hi = np.array([r.us_min for r in group]), np.array([r.us_max for r in group])
        ax_step.errorbar(x, y, yerr=[y - lo, hi - y], marker="o", capsize=3, label=label)
        ax_unit.plot(x, [r.us_per_unit for r in group], marker="o", label=label)
    ax_step.set_ylabel("µs per env step (median, min-max)")
    ax_unit.set_ylabel("µs per step per participant (microgrids) or per node")
    ticks = sorted({r.size for group in series.values() for r in group})
    for ax in (ax_step, ax_unit):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("size: microgrids, or validator nodes")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("mgenv default scenario: how cost grows")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_csv(rows: Sequence[ScaleRow], path: Path) -> Path:
    """Every row as CSV: the config, µs per step (median, min, max), per unit, per stage."""
    fields = [f for f in ScaleRow._fields if f != "stages_us"]
    with Path(path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*fields, "participants", "us_per_unit", *(f"{c}_us" for c in COLUMNS)])
        for r in rows:
            w.writerow(
                [
                    *(getattr(r, f) for f in fields),
                    r.participants,
                    r.us_per_unit,
                    *(r.stages_us[c] for c in COLUMNS),
                ]
            )
    return Path(path)


def _ints(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 1:
        raise ValueError(f"{option} {text!r} needs positive integers, e.g. 4,16,64")
    return values


def main(argv: list[str] | None = None) -> None:
    """Command line of ``mgenv bench scale`` (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="mgenv bench scale", description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="timed steps per repeat")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs (median, min-max)")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="microgrid counts")
    ap.add_argument("--nodes", default=",".join(map(str, NODES)), help="validator node counts")
    ap.add_argument("--protocols", default=",".join(NODE_PROTOCOLS), help="for the node sweep")
    ap.add_argument(
        "--mix",
        default="proportional",
        choices=MIXES,
        help="aggregators and users: n_microgrids // 2 each, or default's 2 and 2",
    )
    ap.add_argument(
        "--signatures",
        default="modelled",
        choices=SIGNATURES,
        help="signatures of the microgrid and node sweeps",
    )
    ap.add_argument(
        "--no-signature-table", action="store_true", help="skip the modelled vs Ed25519 comparison"
    )
    ap.add_argument("--out", type=Path, default=None, help="also write every row to this CSV")
    ap.add_argument("--plot", default=str(DEFAULT_PLOT), help="PNG path, or 'none'")
    a = ap.parse_args(argv)
    rows = sweep(
        _ints(a.sizes, "--sizes"),
        _ints(a.nodes, "--nodes"),
        protocols=tuple(p for p in a.protocols.split(",") if p),
        mix=a.mix,
        signatures=a.signatures,
        steps=a.steps,
        repeats=a.repeats,
        compare_signatures=not a.no_signature_table,
    )
    sign_verify = None
    if not a.no_signature_table:
        from train.bench_chain import ed25519_bound

        sign_verify = ed25519_bound()[:2]
    print(markdown(rows, sign_verify), end="")
    if a.out is not None:
        print(f"rows: {write_csv(rows, a.out)}")
    if a.plot.lower() != "none":
        print(f"plot: {plot(rows, Path(a.plot))}")


if __name__ == "__main__":
    main()
