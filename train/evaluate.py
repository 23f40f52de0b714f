"""Evaluate policy sets over seeded episodes and report mean and 95% CI per metric.

``evaluate({"ppo": "runs/x/model.zip", "truthful": "truthful"}, seeds=range(10))`` plays, for
each policy, one episode per seed in which the policy acts for the env's learning agents (the
other roles are played by the scenario's baseline inside the env). Per episode it records the
env's ``episode_kpis()`` (profit per role, welfare, commit share, ...) and
``profit_learners`` (summed reward of the agents the policy played, yuan), the buyers' saving
against grid-only and the sellers' benefit against feed-in (yuan and %, defined in
:mod:`train.episode_metrics`), and writes:

    {out_dir}/results.md          mean ± 95% CI half-width per metric and policy; plot list
    {out_dir}/results.csv         policy, metric, n, mean, ci95_low, ci95_high
    {out_dir}/episodes.csv        one row per (policy, seed)
    {out_dir}/results.png         profit per role with CI bars; clearing price per period
    {out_dir}/soc.png             battery state of charge per period (mean over microgrids)
    {out_dir}/commit_share.png    committed share of the traded energy per period
    {out_dir}/learning_curves.png TensorBoard scalars of the trained models' runs (only when
                                  a trained model with logs is among the policies)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from train import report
from train.episode_metrics import MARKET_METRICS, Tariff, market_metrics, period_series
from train.learning_curves import Curve, curves_for_policies, plot_curves

__all__ = [
    "EpisodeTrace",
    "EvalResults",
    "evaluate",
    "parse_policies",
    "parse_seeds",
    "play_episode",
    "resolve_policy",
    "run_episode",
]

Policy = Callable[[dict[str, np.ndarray], Any], dict[str, np.ndarray]]
LEADING_METRICS = (
    "profit_learners",
    "profit_mg",
    "profit_agg",
    "profit_user",
    "welfare",
    *MARKET_METRICS,
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
        files: Written tables and the main plot by kind ("md", "csv", "episodes", "png");
            empty without out_dir.
        series: ``{"soc" | "commit_share": {policy: array (n_seeds, horizon)}}`` per-period
            battery state of charge (mean over microgrids) and committed share (NaN: no trade).
        curves: ``{policy: {tag: (steps, values)}}`` learning curves of the trained models.
        plots: The further plots written by kind ("soc", "commit_share" and, with learning
            curves, "learning_curves"); empty without out_dir.
    """

    episodes: list[dict[str, Any]]
    summary: dict[str, dict[str, report.Stat]]
    prices: dict[str, np.ndarray]
    markdown: str
    files: dict[str, Path]
    series: dict[str, dict[str, np.ndarray]]
    curves: dict[str, dict[str, Curve]]
    plots: dict[str, Path]


class EpisodeTrace(NamedTuple):
    """One played episode: its metrics and per-period series (shape ``(horizon,)``)."""

    metrics: dict[str, float]
    prices: np.ndarray  # clearing price, yuan/kWh (NaN: nothing cleared)
    soc: np.ndarray  # battery SOC at the end of the period, mean over microgrids
    commit_share: np.ndarray  # committed share of the period's traded energy (NaN: no trade)


def _is_model_path(spec: str) -> bool:
    return spec.endswith(".zip") or "/" in spec or Path(spec).is_dir()


class MixedPolicy:
    """Different policies for different learning agents, e.g. learned against Nash bidding.

    Spec: parts joined by ``+``, each ``SPEC@AGENT/AGENT...`` (those agents) or ``SPEC`` (every
    other agent), e.g. ``runs/x/model.zip@mg_0/mg_1+nash_bidding``.
    """

    def __init__(self, spec: str) -> None:
        self.parts: list[tuple[Policy, set[str] | None]] = []
        for part in spec.split("+"):
            inner, _, agents = part.partition("@")
            chosen = set(agents.split("/")) if agents else None
            self.parts.append((resolve_policy(inner), chosen))
        if sum(chosen is None for _, chosen in self.parts) > 1:
            raise ValueError(f"mixed policy {spec!r}: at most one part without @agents")

    def __call__(self, observations: dict[str, Any], env: Any) -> dict[str, Any]:
        """Ask each part for the agents it plays; the part without @agents plays the rest."""
        named = set().union(*(c for _, c in self.parts if c is not None))
        out: dict[str, Any] = {}
        for policy, chosen in self.parts:
            mine = {
                a: o
                for a, o in observations.items()
                if (a in chosen if chosen is not None else a not in named)
            }
            if mine:
                out.update(policy(mine, env))
        return out


def resolve_policy(spec: str | Policy) -> Policy:
    """Return a policy for a baseline name, a model path (run dir or .zip) or a policy.

    ``"a@mg_0+b"`` mixes policies per agent (see :class:`MixedPolicy`).

    Raises:
        ValueError: For a name that is neither a baseline nor a path (lists the baselines).
        FileNotFoundError: For a model path that does not exist.
    """
    if not isinstance(spec, str):
        return spec
    if "+" in spec or "@" in spec:
        return MixedPolicy(spec)
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


def play_episode(env: Any, policy: Policy, seed: int) -> EpisodeTrace:
    """Play one seeded episode; return its metrics and per-period series.

    The metrics are ``profit_learners``, the env's ``episode_kpis()`` and
    :data:`~train.episode_metrics.MARKET_METRICS` (from ``env.history`` and the tariffs read
    with ``env.public_info()`` before each step).
    """
    observations, _ = env.reset(seed=seed)
    learners_profit = 0.0
    prices: list[float] = []
    tariffs: list[Tariff] = []
    while env.agents:
        public = env.public_info()
        tariffs.append(Tariff(float(public.grid_buy), float(public.feed_in)))
        actions = policy(observations, env)
        observations, rewards, _, _, infos = env.step(actions)
        learners_profit += float(sum(rewards.values()))
        first: dict[str, Any] = next(iter(infos.values()), {})
        cleared = first.get("cleared", True)
        prices.append(float(first.get("clearing_price", np.nan)) if cleared else np.nan)
    metrics = {"profit_learners": learners_profit}
    metrics.update({k: float(v) for k, v in env.episode_kpis().items()})
    metrics.update(market_metrics(env.history, tariffs))
    series = period_series(env.history)
    return EpisodeTrace(
        metrics, np.asarray(prices, dtype=float), series["soc"], series["commit_share"]
    )


def run_episode(env: Any, policy: Policy, seed: int) -> tuple[dict[str, float], np.ndarray]:
    """Play one seeded episode; return its metrics and clearing price per period (yuan/kWh)."""
    trace = play_episode(env, policy, seed)
    return trace.metrics, trace.prices


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


def _play_policy(
    scenario: str, env_overrides: Mapping[str, Any], policy: Policy, seeds: list[int]
) -> list[EpisodeTrace]:
    """Play ``policy`` for one episode per seed in a fresh env."""
    import mgenv

    env = mgenv.parallel_env(scenario, **env_overrides)
    try:
        return [play_episode(env, policy, seed) for seed in seeds]
    finally:
        env.close()


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
        out_dir: Folder for the tables and plots (module docstring); None: write nothing.
        show_table: Print the markdown table.

    Returns:
        The episodes, their summary, per-period series, learning curves of the trained
        models, the markdown table and the written files.
    """
    seeds = [int(s) for s in seeds]
    resolved = {label: resolve_policy(spec) for label, spec in policies.items()}
    env_overrides = _env_overrides(resolved, overrides or {})
    episodes: list[dict[str, Any]] = []
    series: dict[str, dict[str, np.ndarray]] = {"prices": {}, "soc": {}, "commit_share": {}}
    for label, policy in resolved.items():
        traces = _play_policy(scenario, env_overrides, policy, seeds)
        rows = zip(seeds, traces, strict=True)
        episodes += [{"policy": label, "seed": s, **t.metrics} for s, t in rows]
        for kind, per_policy in series.items():
            per_policy[label] = np.stack([getattr(t, kind) for t in traces])
    prices = series.pop("prices")
    curves = curves_for_policies(policies)
    metrics_order = _metric_order(episodes)
    summary = report.summarize(episodes, metrics_order)
    markdown = report.to_markdown(summary, metrics_order)
    results = EvalResults(episodes, summary, prices, markdown, {}, series, curves, {})
    if out_dir:
        _write(Path(out_dir), results, scenario, _has_models(policies))
    if show_table:
        print(markdown)
    return results


def _has_models(policies: Mapping[str, Policy | str]) -> bool:
    return any(isinstance(spec, str) and _is_model_path(spec) for spec in policies.values())


PLOT_NOTES = {
    "png": "profit per role (95% CI) and mean clearing price per period",
    "soc": "battery state of charge per period, mean over microgrids and episodes",
    "commit_share": "committed share of the traded energy per period (mean over episodes)",
    "learning_curves": "learning curves from the trained models' TensorBoard logs",
}


def _plots_section(plots: Mapping[str, Path], has_models: bool) -> str:
    """Markdown list of the plots, with a note when no learning curves were drawn."""
    lines = ["", "## Plots", ""]
    lines += [f"- `{plots[k].name}`: {note}" for k, note in PLOT_NOTES.items() if k in plots]
    if "learning_curves" not in plots:
        why = "no TensorBoard logs found" if has_models else "no trained model evaluated"
        lines.append(f"- learning curves: skipped ({why})")
    return "\n".join(lines) + "\n"


def _write(out: Path, results: EvalResults, scenario: str, has_models: bool) -> None:
    """Write the tables and the plots into ``out``; record them in ``results.files/plots``."""
    out.mkdir(parents=True, exist_ok=True)
    n = len({row["seed"] for row in results.episodes})
    title = f"scenario {scenario}, {n} seeds"
    series, plots = results.series, results.plots
    results.files.update(
        csv=report.write_csv(results.summary, out / "results.csv"),
        episodes=report.write_episodes_csv(results.episodes, out / "episodes.csv"),
        png=report.plot(results.summary, results.prices, out / "results.png", title=title),
    )
    plots["soc"] = report.plot_period_series(
        series["soc"], out / "soc.png", "state of charge", f"Battery SOC ({title})"
    )
    plots["commit_share"] = report.plot_period_series(
        series["commit_share"],
        out / "commit_share.png",
        "committed share of traded energy",
        f"Committed share per period ({title})",
    )
    if results.curves:
        plots["learning_curves"] = plot_curves(results.curves, out / "learning_curves.png", title)
    text = f"# Evaluation on scenario `{scenario}`\n\n{results.markdown}"
    listed = {"png": results.files["png"], **plots}
    (out / "results.md").write_text(text + _plots_section(listed, has_models))
    results.files["md"] = out / "results.md"
