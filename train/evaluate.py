"""Evaluate policy sets over seeded episodes and report mean and 95% CI per metric.

``evaluate({"ppo": "runs/x/model.zip", "truthful": "truthful"}, seeds=range(10))`` plays, for
each policy, one episode per seed in which the policy acts for the env's learning agents (the
other roles are played by the scenario's baseline inside the env). Per episode it records the
env's ``episode_kpis()`` (profit per role, welfare, commit share, ...) and
``profit_learners`` (summed reward of the agents the policy played, yuan), and writes:

    {out_dir}/results.md        mean ± 95% CI half-width per metric and policy
    {out_dir}/results.csv       policy, metric, n, mean, ci95_low, ci95_high
    {out_dir}/episodes.csv      one row per (policy, seed)
    {out_dir}/results.png       profit per role with CI bars; clearing price per period
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from train import report

__all__ = ["EvalResults", "evaluate", "parse_policies", "parse_seeds", "resolve_policy"]

Policy = Callable[[dict[str, np.ndarray], Any], dict[str, np.ndarray]]
LEADING_METRICS = (
    "profit_learners",
    "profit_mg",
    "profit_agg",
    "profit_user",
    "welfare",
    "commit_share",
    "local_consumption_rate",
)


class EvalResults(NamedTuple):
    """What ``evaluate`` measured and wrote.

    Attributes:
        episodes: One row per (policy, seed): ``policy``, ``seed`` and every metric.
        summary: ``{policy: {metric: Stat}}`` (mean and 95% CI over seeds).
        prices: ``{policy: array (n_seeds, horizon)}`` clearing price per period, yuan/kWh.
        markdown: The markdown table.
        files: Written files by kind ("md", "csv", "episodes", "png"); empty without out_dir.
    """

    episodes: list[dict[str, Any]]
    summary: dict[str, dict[str, report.Stat]]
    prices: dict[str, np.ndarray]
    markdown: str
    files: dict[str, Path]


def _is_model_path(spec: str) -> bool:
    return spec.endswith(".zip") or "/" in spec or Path(spec).is_dir()


def resolve_policy(spec: str | Policy) -> Policy:
    """Return a policy for a baseline name, a model path (run dir or .zip) or a policy.

    Raises:
        ValueError: For a name that is neither a baseline nor a path (lists the baselines).
        FileNotFoundError: For a model path that does not exist.
    """
    if not isinstance(spec, str):
        return spec
    import baselines

    if spec in baselines.names():
        return baselines.make(spec)
    if _is_model_path(spec):
        from agents import load_policy

        return load_policy(spec)
    raise ValueError(
        f"unknown policy {spec!r}; valid: a baseline {baselines.names()} or the "
        "path of a trained model (run directory or .zip)"
    )


def _label(spec: str) -> str:
    """Short table label for a policy spec: baseline name or the run directory's name."""
    if not _is_model_path(spec):
        return spec
    path = Path(spec)
    if path.is_dir() or path.name == "model.zip":
        return (path if path.is_dir() else path.parent).name
    return path.stem


def parse_policies(text: str) -> dict[str, str]:
    """Parse ``"truthful,fixed_quotes,runs/x/model.zip"`` (``label=spec`` also allowed)."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        label, sep, spec = item.partition("=")
        label, spec = (label, spec) if sep else (_label(item), item)
        if label in out:
            raise ValueError(f"policy label {label!r} given twice; use label=spec to rename")
        out[label] = spec
    if not out:
        raise ValueError("no policies given; e.g. --policies truthful,runs/x/model.zip")
    return out


def parse_seeds(text: str) -> list[int]:
    """Parse ``"0-9"``, ``"0,3,5"`` or ``"0-4,10"`` into a list of seeds."""
    seeds: list[int] = []
    try:
        for part in filter(None, (s.strip() for s in text.split(","))):
            lo, sep, hi = part.partition("-")
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise ValueError(f"bad seeds {text!r}; use e.g. 0-9 or 0,3,5") from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"bad seeds {text!r}; give non-negative seeds, e.g. 0-9")
    return seeds


def run_episode(env: Any, policy: Policy, seed: int) -> tuple[dict[str, float], np.ndarray]:
    """Play one seeded episode; return its metrics and clearing price per period (yuan/kWh)."""
    observations, _ = env.reset(seed=seed)
    learners_profit = 0.0
    prices: list[float] = []
    while env.agents:
        actions = policy(observations, env)
        observations, rewards, _, _, infos = env.step(actions)
        learners_profit += float(sum(rewards.values()))
        first: dict[str, Any] = next(iter(infos.values()), {})
        cleared = first.get("cleared", True)
        prices.append(float(first.get("clearing_price", np.nan)) if cleared else np.nan)
    metrics = {"profit_learners": learners_profit}
    metrics.update({k: float(v) for k, v in env.episode_kpis().items()})
    return metrics, np.asarray(prices, dtype=float)


def _env_overrides(policies: Mapping[str, Policy], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Use the learned policies' role as the env's learning role unless overrides set one."""
    roles = {str(p.role) for p in policies.values() if hasattr(p, "role")}
    if len(roles) > 1:
        raise ValueError(
            f"the learned policies play different roles {sorted(roles)}; evaluate them separately"
        )
    if roles and "learning_roles" not in overrides:
        return {**overrides, "learning_roles": (roles.pop(),)}
    return dict(overrides)


def _metric_order(episodes: Iterable[Mapping[str, Any]]) -> list[str]:
    keys = dict.fromkeys(k for row in episodes for k in row if k not in ("policy", "seed"))
    return [m for m in LEADING_METRICS if m in keys] + sorted(set(keys) - set(LEADING_METRICS))


def evaluate(
    policies: Mapping[str, Policy | str],
    scenario: str = "default",
    seeds: Iterable[int] = range(5),
    overrides: Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
    show_table: bool = False,
) -> EvalResults:
    """Run every policy for one episode per seed; summarise and (optionally) write reports.

    Args:
        policies: ``{label: policy, baseline name or model path}``.
        scenario: Scenario name for ``mgenv.parallel_env``.
        seeds: Episode seeds (the same for every policy).
        overrides: Env config overrides.
        out_dir: Folder for results.md/.csv, episodes.csv and results.png; None: write nothing.
        show_table: Print the markdown table.

    Returns:
        The episodes, their summary, clearing prices, markdown table and written files.
    """
    import mgenv

    seeds = [int(s) for s in seeds]
    resolved = {label: resolve_policy(spec) for label, spec in policies.items()}
    env_overrides = _env_overrides(resolved, overrides or {})
    episodes: list[dict[str, Any]] = []
    prices: dict[str, np.ndarray] = {}
    for label, policy in resolved.items():
        env = mgenv.parallel_env(scenario, **env_overrides)
        try:
            rows = []
            for seed in seeds:
                metrics, price = run_episode(env, policy, seed)
                episodes.append({"policy": label, "seed": seed, **metrics})
                rows.append(price)
            prices[label] = np.stack(rows)
        finally:
            env.close()
    metrics_order = _metric_order(episodes)
    summary = report.summarize(episodes, metrics_order)
    markdown = report.to_markdown(summary, metrics_order)
    files = _write(out_dir, episodes, summary, prices, markdown, scenario) if out_dir else {}
    if show_table:
        print(markdown)
    return EvalResults(episodes, summary, prices, markdown, files)


def _write(
    out_dir: str | Path,
    episodes: list[dict[str, Any]],
    summary: dict[str, dict[str, report.Stat]],
    prices: dict[str, np.ndarray],
    markdown: str,
    scenario: str,
) -> dict[str, Path]:
    """Write the tables and the plot into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(f"# Evaluation on scenario `{scenario}`\n\n{markdown}")
    n = len({row["seed"] for row in episodes})
    return {
        "md": out / "results.md",
        "csv": report.write_csv(summary, out / "results.csv"),
        "episodes": report.write_episodes_csv(episodes, out / "episodes.csv"),
        "png": report.plot(
            summary, prices, out / "results.png", title=f"scenario {scenario}, {n} seeds"
        ),
    }
