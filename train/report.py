"""Summaries of evaluation episodes: mean and 95% CI tables (markdown, CSV) and a plot."""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "Stat",
    "mean_ci",
    "plot",
    "plot_period_series",
    "summarize",
    "to_markdown",
    "write_csv",
    "write_episodes_csv",
]

ROLE_PROFITS = (
    ("profit_mg", "microgrids"),
    ("profit_agg", "aggregators"),
    ("profit_user", "large users"),
)


class Stat(NamedTuple):
    """Mean of one metric over episodes with its 95% confidence interval."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        """Half the width of the confidence interval (NaN for a single episode)."""
        return (self.high - self.low) / 2.0


def _critical_value(n: int, level: float) -> float:
    """Two-sided critical value: Student t with n-1 dof (scipy), else the normal one."""
    try:
        from scipy import stats

        return float(stats.t.ppf(0.5 + level / 2.0, n - 1))
    except ImportError:
        from statistics import NormalDist

        return NormalDist().inv_cdf(0.5 + level / 2.0)


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> Stat:
    """Return the mean and the ``level`` confidence interval of the finite ``values``."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return Stat(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if x.size == 1:
        return Stat(mean, math.nan, math.nan, 1)
    half = _critical_value(x.size, level) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Stat(mean, mean - half, mean + half, int(x.size))


def summarize(
    episodes: Sequence[Mapping[str, Any]], metrics: Sequence[str]
) -> dict[str, dict[str, Stat]]:
    """Return ``{policy: {metric: Stat}}`` over episode rows with a ``"policy"`` key."""
    policies = list(dict.fromkeys(row["policy"] for row in episodes))
    return {
        p: {
            m: mean_ci([float(row.get(m, math.nan)) for row in episodes if row["policy"] == p])
            for m in metrics
        }
        for p in policies
    }


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.2f}" if abs(x) >= 1 else f"{x:.3f}"


def to_markdown(summary: Mapping[str, Mapping[str, Stat]], metrics: Sequence[str]) -> str:
    """Return a markdown table: one row per policy, ``mean ± CI half-width`` per metric."""
    lines = ["| policy | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for policy, stats in summary.items():
        cells = [f"{_fmt(s.mean)} ± {_fmt(s.half_width)}" for s in (stats[m] for m in metrics)]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    n = max((s.n for stats in summary.values() for s in stats.values()), default=0)
    lines.append("")
    lines.append(
        f"Mean ± half-width of the 95% confidence interval over {n} episodes "
        "(Student t); profits, welfare, savings and benefits in yuan per episode, "
        "`_pct` in percent, shares and rates as fractions."
    )
    return "\n".join(lines) + "\n"


def write_csv(summary: Mapping[str, Mapping[str, Stat]], path: Path) -> Path:
    """Write ``policy, metric, n, mean, ci95_low, ci95_high`` rows to ``path``."""
    with Path(path).open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["policy", "metric", "n", "mean", "ci95_low", "ci95_high"])
        for policy, stats in summary.items():
            for metric, s in stats.items():
                writer.writerow([policy, metric, s.n, repr(s.mean), repr(s.low), repr(s.high)])
    return Path(path)


def write_episodes_csv(episodes: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Write one row per episode (policy, seed and every metric) to ``path``."""
    fields = list(dict.fromkeys(k for row in episodes for k in row))
    with Path(path).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(episodes)
    return Path(path)


def _plot_profits(ax: Any, summary: Mapping[str, Mapping[str, Stat]]) -> None:
    """Grouped bars: mean profit per role and policy, with 95% CI error bars."""
    roles = [
        (m, label) for m, label in ROLE_PROFITS if any(m in stats for stats in summary.values())
    ]
    width = 0.8 / max(len(summary), 1)
    x = np.arange(len(roles))
    for i, (policy, stats) in enumerate(summary.items()):
        means = np.array([stats[m].mean for m, _ in roles])
        errs = np.nan_to_num(np.array([stats[m].half_width for m, _ in roles]))
        offset = (i - (len(summary) - 1) / 2) * width
        ax.bar(x + offset, means, width, label=policy, yerr=errs, capsize=3)
    ax.set_xticks(x, [label for _, label in roles])
    ax.set_ylabel("profit per episode (yuan)")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_title("Mean profit per role (95% CI)")
    ax.legend(fontsize="small")


def _plot_per_period(ax: Any, series: Mapping[str, np.ndarray]) -> None:
    """Lines: mean over episodes (ignoring NaN) of a per-period series, one per policy."""
    for policy, values in series.items():
        values = np.asarray(values, dtype=float)
        if values.size == 0 or not np.isfinite(values).any():
            continue
        with warnings.catch_warnings():  # periods with no value in any episode: NaN, no warning
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(values, axis=0)
        ax.plot(np.arange(1, values.shape[1] + 1), mean, marker=".", label=policy)
    ax.set_xlabel("market period")
    if ax.get_lines():
        ax.legend(fontsize="small")


def _plot_prices(ax: Any, prices: Mapping[str, np.ndarray]) -> None:
    """Lines: mean clearing price per market period and policy."""
    _plot_per_period(ax, prices)
    ax.set_ylabel("clearing price (yuan/kWh)")
    ax.set_title("Mean clearing price over the day")


def plot_period_series(
    series: Mapping[str, np.ndarray], path: Path, ylabel: str, title: str
) -> Path:
    """Plot one per-period series (mean over episodes) per policy into its own PNG.

    Args:
        series: ``{policy: array (n_episodes, horizon)}``; NaN where a period has no value
            (e.g. no trade for the committed share).
        path: PNG file to write.
        ylabel: Y-axis label with the unit.
        title: Axes title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    _plot_per_period(ax, series)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if not ax.get_lines():
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot(
    summary: Mapping[str, Mapping[str, Stat]],
    prices: Mapping[str, np.ndarray],
    path: Path,
    title: str = "",
) -> Path:
    """Plot mean profit per role with CI error bars and the mean clearing price per period.

    Args:
        summary: ``{policy: {metric: Stat}}`` with ``profit_mg`` / ``profit_agg`` /
            ``profit_user`` metrics where available.
        prices: ``{policy: array (n_episodes, horizon)}`` clearing prices, yuan/kWh (NaN
            where the market did not clear).
        path: PNG file to write.
        title: Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_profit, ax_price) = plt.subplots(1, 2, figsize=(12, 4.5))
    _plot_profits(ax_profit, summary)
    _plot_prices(ax_price, prices)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
