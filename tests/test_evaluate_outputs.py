"""Outputs of ``mgenv evaluate``: market metrics, tables, plots and learning curves."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import baselines
from mgenv.market.settlement import Positions, Trades, settle
from train.episode_metrics import MARKET_METRICS, Tariff, market_metrics, period_series
from train.evaluate import EvalResults, evaluate
from train.learning_curves import curves_for_policies, read_curves, run_dir_of
from train.sb3 import TrainConfig, train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GRID_BUY, FEED_IN = 0.8, 0.3  # yuan/kWh


def _period(committed: bool) -> SimpleNamespace:
    """One settled period: mg 0 sells 10 kWh at 0.5 yuan/kWh to mg 1 through aggregator 2.

    The seller offered 14 kWh (4 kWh fed in), the buyer needed 12 kWh (2 kWh imported).
    """
    trades = Trades(
        *(np.array([v]) for v in (0, 1, 2)), np.array([10.0]), np.array([0.5]), np.ones(1)
    )
    pos = Positions(np.array([14.0, 0, 0]), np.array([0, 12.0, 0]), np.zeros(3))
    st = settle(trades, np.array([committed]), pos, GRID_BUY, FEED_IN)
    physics = SimpleNamespace(soc_after=np.array([0.2, 0.6]))
    return SimpleNamespace(settlement=st, physics=physics)


def test_market_metrics_by_hand() -> None:
    history = [_period(committed=True), _period(committed=False)]
    m = market_metrics(history, [Tariff(GRID_BUY, FEED_IN)] * 2)
    # committed: the buyer pays 10 * 0.5 + 2 * 0.8 = 6.6 instead of 12 * 0.8 = 9.6 (saves 3.0);
    # the seller gets 10 * 0.5 + 4 * 0.3 = 6.2 instead of 14 * 0.3 = 4.2 (gains 2.0).
    # Not committed: both fall back to the grid, which neither saves nor gains anything.
    assert m["buyers_saving_vs_grid"] == pytest.approx(3.0)
    assert m["buyers_saving_vs_grid_pct"] == pytest.approx(100 * 3.0 / 19.2)
    assert m["sellers_benefit_vs_feed_in"] == pytest.approx(2.0)
    assert m["sellers_benefit_vs_feed_in_pct"] == pytest.approx(100 * 2.0 / 8.4)
    series = period_series(history)
    np.testing.assert_allclose(series["soc"], [0.4, 0.4])
    np.testing.assert_allclose(series["commit_share"], [1.0, 0.0])
    assert market_metrics([], []) == dict.fromkeys(MARKET_METRICS, 0.0)
    with pytest.raises(ValueError, match="tariffs"):
        market_metrics(history, [])


@pytest.fixture(scope="module")
def ideal_eval(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvalResults, Path]:
    """grid_only and truthful microgrids on the ideal chain, two seeds, files written."""
    out = tmp_path_factory.mktemp("eval")
    policies = {"grid_only": "grid_only", "truthful": "truthful"}
    results = evaluate(policies, seeds=[0, 1], overrides={"protocol": "ideal"}, out_dir=out)
    return results, out


def test_grid_only_saves_nothing_truthful_saves(ideal_eval: tuple[EvalResults, Path]) -> None:
    results, _ = ideal_eval
    for row in results.episodes:
        if row["policy"] == "grid_only":
            assert all(row[m] == 0.0 for m in MARKET_METRICS)
        else:
            assert row["buyers_saving_vs_grid"] > 0 and row["buyers_saving_vs_grid_pct"] > 0
            assert row["sellers_benefit_vs_feed_in"] >= 0
    stat = results.summary["truthful"]["buyers_saving_vs_grid"]
    assert stat.n == 2 and stat.low <= stat.mean <= stat.high


def test_series_shapes_and_ranges(ideal_eval: tuple[EvalResults, Path]) -> None:
    results, _ = ideal_eval
    assert set(results.series) == {"soc", "commit_share"}
    soc, commit = results.series["soc"]["truthful"], results.series["commit_share"]["truthful"]
    assert soc.shape == commit.shape == results.prices["truthful"].shape == (2, 24)
    assert np.isfinite(soc).all() and ((soc >= 0) & (soc <= 1)).all()
    assert np.isfinite(commit).any()
    np.testing.assert_allclose(commit[np.isfinite(commit)], 1.0)  # the ideal chain commits all
    assert np.isnan(results.series["commit_share"]["grid_only"]).all()  # nothing traded
    assert results.curves == {}


def test_files_tables_and_plots_written(ideal_eval: tuple[EvalResults, Path]) -> None:
    results, out = ideal_eval
    assert set(results.files) == {"md", "csv", "episodes", "png"}
    assert set(results.plots) == {"soc", "commit_share"}
    for path in [*results.files.values(), *results.plots.values()]:
        assert path.parent == out and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC
    with results.files["csv"].open() as fh:
        rows = {(r["policy"], r["metric"]): r for r in csv.DictReader(fh)}
    for metric in MARKET_METRICS:
        assert float(rows[("grid_only", metric)]["mean"]) == 0.0
        assert rows[("truthful", metric)]["n"] == "2"
    with results.files["episodes"].open() as fh:
        assert set(MARKET_METRICS) <= set(csv.DictReader(fh).fieldnames or [])
    md = results.files["md"].read_text()
    assert "buyers_saving_vs_grid_pct" in md and "sellers_benefit_vs_feed_in" in md
    assert "`soc.png`" in md and "`commit_share.png`" in md
    assert "learning curves: skipped (no trained model evaluated)" in md


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 256-step PPO run with TensorBoard logs and one evaluation against the baselines."""
    return train(
        TrainConfig(
            total_timesteps=256,
            n_envs=1,
            seed=2,
            out_dir=tmp_path_factory.mktemp("runs"),
            progress_bar=False,
            eval_freq=128,
            eval_seeds=(1000,),
            hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 1},
        )
    )


def test_learning_curves_from_tensorboard(tiny_run: Path, tmp_path: Path) -> None:
    curves = read_curves(tiny_run)
    assert "rollout/ep_rew_mean" in curves and "eval/profit_learners" in curves
    assert not any(tag.startswith(("train/", "time/")) for tag in curves)
    steps, values = curves["rollout/ep_rew_mean"]
    assert steps.shape == values.shape and steps.size >= 1 and np.isfinite(values).all()
    assert run_dir_of(tiny_run / "model.zip") == tiny_run
    assert run_dir_of(tiny_run / "checkpoints" / "model_64_steps.zip") == tiny_run
    assert run_dir_of("truthful") is None
    results = evaluate({"ppo": str(tiny_run), "truthful": "truthful"}, seeds=[0], out_dir=tmp_path)
    assert set(results.curves) == {"ppo"}
    png = results.plots["learning_curves"]
    assert png.name == "learning_curves.png" and png.read_bytes()[:8] == PNG_MAGIC
    assert "`learning_curves.png`" in results.files["md"].read_text()


def test_learning_curves_skipped_without_logs(tiny_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("tb")))
    assert read_curves(run) == {}
    assert curves_for_policies({"ppo": str(run), "missing": str(tmp_path / "nope.zip")}) == {}
    results = evaluate({"ppo": str(run)}, seeds=[0], out_dir=tmp_path / "eval")
    assert results.curves == {} and "learning_curves" not in results.plots
    assert not (tmp_path / "eval" / "learning_curves.png").exists()
    md = results.files["md"].read_text()
    assert "learning curves: skipped (no TensorBoard logs found)" in md


def test_mixed_policy_plays_each_agent_with_its_part():
    import mgenv
    from train.evaluate import MixedPolicy, resolve_policy

    env = mgenv.parallel_env("default", protocol="ideal")
    obs, _ = env.reset(seed=0)
    mixed = resolve_policy("grid_only@mg_0/mg_1+truthful")
    assert isinstance(mixed, MixedPolicy)
    acts = mixed(obs, env)
    grid, truth = baselines.make("grid_only")(obs, env), baselines.make("truthful")(obs, env)
    for a in ("mg_0", "mg_1"):
        np.testing.assert_array_equal(acts[a], grid[a])
    for a in ("mg_2", "mg_3"):
        np.testing.assert_array_equal(acts[a], truth[a])
    with pytest.raises(ValueError, match="at most one part"):
        resolve_policy("truthful+grid_only")
