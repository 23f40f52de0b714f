"""Reproduce seed 000 (Hu, Xia, Zhang 2022): Table 1, Figs. 7-8, and the cross-chain consensus.

``mgenv reproduce crosschain_aggregators`` (or ``python -m train.reproduce
crosschain_aggregators``) writes into the output folder:

* ``bidding.csv``: per demand (220, 550, 1000 kW), strategy (``improved``: every microgrid
  plays the Nash search; ``traditional``: microgrid 1 bids the fixed high/medium/low quotes and
  the others search against it) and microgrid: bid-winning volume, income, clearing price,
  rounds, convergence (Table 1, Fig. 7);
* ``price_trace.csv`` and ``fig8_clearing_price.png``: clearing price per iteration (Fig. 8);
* ``fig7_income_volume.png``: microgrid 1's income and volume, improved vs traditional;
* ``crosschain.csv`` and ``crosschain_failures.png``: the env at 550 kW on the cross-chain
  protocol (mean of the seeds): share of traded energy that committed, cross-chain failure
  rate and latency, by malicious VNS share and node availability, with and without reserve
  validators.

The games are read off the env (``crosschain_aggregators`` with ``user_load_kw = demand / 2``)
through :func:`baselines.nash_bidding.game_from_info`, so the standalone solver and the env
policy solve the same game.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

import mgenv
from baselines.nash_bidding import (
    NashResult,
    game_from_info,
    solve_nash_bidding,
    traditional_quotes,
)
from mgenv.market.bidding import BiddingGame, aggregator_utility

DEMANDS_KW = (220.0, 550.0, 1000.0)
STRATEGIES = ("improved", "traditional")
MALICIOUS = (0.0, 0.25, 0.5)
AVAILABILITY = (1.0, 0.95, 0.9)


def scenario_game(demand_kw: float, **overrides: Any) -> BiddingGame:
    """The first period's bidding game of ``crosschain_aggregators`` at ``demand_kw``."""
    env = mgenv.parallel_env("crosschain_aggregators", user_load_kw=(demand_kw / 2.0,), **overrides)
    env.reset(seed=0)
    game = game_from_info(env.public_info())
    if game is None:
        raise ValueError("the scenario's price interval is empty")
    return game


def solve_both(game: BiddingGame) -> dict[str, NashResult]:
    """The improved equilibrium and the traditional one (microgrid 1 on fixed quotes)."""
    prices, shares = traditional_quotes(game)
    return {
        "improved": solve_nash_bidding(game),
        "traditional": solve_nash_bidding(game, fixed={0: (prices[0], shares[0])}),
    }


def chain_run(demand_kw: float, seed: int, **chain: Any) -> tuple[float, float, float]:
    """One episode with Nash-bidding microgrids on the cross-chain protocol.

    Returns:
        ``(commit_share, cross_failure_rate, mean_latency_ms)``.
    """
    env = mgenv.parallel_env(
        "crosschain_aggregators", user_load_kw=(demand_kw / 2.0,), learning_roles=("agg",), **chain
    )
    env.reset(seed=seed)
    agg = np.array([1.0, -1.0 + 2.0 * (1.05 - 0.85) / 0.35], dtype=np.float32)  # cap, 1.05
    while env.agents:
        env.step({a: agg for a in env.agents})
    cross = sum(r.chain.extra.get("cross_tx", 0.0) for r in env.history)
    failed = sum(r.chain.extra.get("cross_failed", 0.0) for r in env.history)
    kpi = env.episode_kpis()
    return kpi["commit_share"], failed / cross if cross else 0.0, kpi["mean_latency_ms"]


def _bidding_tables(
    results: dict[float, dict[str, NashResult]],
) -> tuple[list[list[Any]], list[list[Any]]]:
    rows, trace = [], []
    for d, by in results.items():
        for name, r in by.items():
            for i in range(r.sold_kwh.size):
                rows.append(
                    [
                        d,
                        name,
                        i + 1,
                        round(float(r.sold_kwh[i]), 4),
                        round(float(r.income[i]), 4),
                        round(r.price, 4),
                        r.iterations,
                        r.converged,
                    ]
                )
            trace += [[d, name, k, round(float(p), 4)] for k, p in enumerate(r.price_trace)]
    return rows, trace


def aggregator_utilities(game: BiddingGame, r: NashResult) -> float:
    """Each aggregator's utility ``E_A`` (eq. 4), yuan/h: they split market and grid equally."""
    market = float(r.sold_kwh.sum())
    grid = game.demand_kwh - market
    share = 1.0 / game.n_aggregators
    return aggregator_utility(game.delta, r.price, market * share, grid * share, game.grid_price)


def _text(
    results: dict[float, dict[str, NashResult]],
    agg: dict[tuple[float, str], float],
    chain_rows: list[list[Any]],
) -> str:
    lines = [
        "Seed 000, Table 1 / Fig. 7: bid-winning volume (kW) and income (yuan/h); E_A: each "
        "aggregator's utility (eq. 4, yuan/h)",
        f"{'demand':>7} {'strategy':<12} {'price':>6} {'rounds':>6} {'E_A':>6}  "
        + "  ".join(f"MG{i} kW / yuan" for i in range(1, 5)),
    ]
    for d, by in results.items():
        for name, r in by.items():
            cells = "  ".join(
                f"{q:6.1f} / {w:5.2f}" for q, w in zip(r.sold_kwh, r.income, strict=True)
            )
            flag = "" if r.converged else " (no equilibrium)"
            lines.append(
                f"{d:7.0f} {name:<12} {r.price:6.3f} {r.iterations:6d} {agg[d, name]:6.2f}  "
                f"{cells}{flag}"
            )
    lines += ["", "Fig. 8: clearing price per iteration (yuan/kWh)"]
    for d, by in results.items():
        for name, r in by.items():
            lines.append(f"{d:7.0f} {name:<12} " + " ".join(f"{p:.3f}" for p in r.price_trace))
    lines += [
        "",
        "Cross-chain consensus at 550 kW (mean over seeds)",
        f"{'nodes':>5} {'malicious':>9} {'avail':>5} {'committed':>9} {'x-fail':>6} "
        f"{'latency ms':>10}",
    ]
    lines += [
        f"{n:5d} {m:9.2f} {a:5.2f} {c:9.3f} {f:6.3f} {lat:10.1f}"
        for n, m, a, c, f, lat in chain_rows
    ]
    return "\n".join(lines)


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _plots(
    out_dir: Path, results: dict[float, dict[str, NashResult]], chain_rows: list[list[Any]]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(DEMANDS_KW))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    for k, name in enumerate(STRATEGIES):
        ax1.bar(
            x + (k - 0.5) * 0.38, [results[d][name].income[0] for d in DEMANDS_KW], 0.38, label=name
        )
        ax2.bar(
            x + (k - 0.5) * 0.38,
            [results[d][name].sold_kwh[0] for d in DEMANDS_KW],
            0.38,
            label=name,
        )
    for ax, lab in ((ax1, "income of MG1 (yuan/h)"), (ax2, "bid-winning volume of MG1 (kW)")):
        ax.set(
            xticks=x, xticklabels=[f"{d:.0f}" for d in DEMANDS_KW], xlabel="demand (kW)", ylabel=lab
        )
        ax.legend()
    fig.suptitle("Fig. 7: improved vs traditional strategy")
    fig.tight_layout()
    fig.savefig(out_dir / "fig7_income_volume.png", dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, name in zip(axes, STRATEGIES, strict=True):
        for d in DEMANDS_KW:
            ax.plot(results[d][name].price_trace, "o-", label=f"{d:.0f} kW")
        ax.set(title=f"{name}", xlabel="iteration k", ylabel="clearing price (yuan/kWh)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "fig8_clearing_price.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for n in sorted({r[0] for r in chain_rows}):
        for a in AVAILABILITY:
            pts = [r for r in chain_rows if r[0] == n and r[2] == a]
            ax.plot(
                [r[1] for r in pts],
                [r[4] for r in pts],
                "o-",
                label=f"{n} nodes, availability {a:.2f}",
            )
    ax.set(xlabel="malicious share of each initial VNS", ylabel="cross-chain failure rate")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "crosschain_failures.png", dpi=120)
    plt.close(fig)


def run(out_dir: Path, quick: bool) -> str:
    """Run the reproduction, write CSVs and plots into ``out_dir``, return the printed text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    games = {d: scenario_game(d) for d in DEMANDS_KW}
    results = {d: solve_both(games[d]) for d in DEMANDS_KW}
    agg = {
        (d, k): aggregator_utilities(games[d], r) for d in DEMANDS_KW for k, r in results[d].items()
    }
    rows, trace = _bidding_tables(results)
    _write_csv(
        out_dir / "bidding.csv",
        [
            "demand_kw",
            "strategy",
            "microgrid",
            "sold_kw",
            "income_yuan_per_h",
            "clearing_price",
            "rounds",
            "converged",
        ],
        rows,
    )
    _write_csv(
        out_dir / "price_trace.csv", ["demand_kw", "strategy", "iteration", "clearing_price"], trace
    )
    seeds = range(1 if quick else 5)
    chain_rows = []
    for n_nodes in (8, 12):
        for m in MALICIOUS:
            for a in AVAILABILITY:
                runs = np.array(
                    [
                        chain_run(550.0, s, n_nodes=n_nodes, vns_malicious_share=m, availability=a)
                        for s in seeds
                    ]
                )
                chain_rows.append([n_nodes, m, a, *np.round(runs.mean(axis=0), 4).tolist()])
    _write_csv(
        out_dir / "crosschain.csv",
        [
            "n_nodes",
            "vns_malicious_share",
            "availability",
            "commit_share",
            "cross_failure_rate",
            "mean_latency_ms",
        ],
        chain_rows,
    )
    _plots(out_dir, results, chain_rows)
    return _text(results, agg, chain_rows)
