"""SB3 callbacks for mgenv training runs."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["BaselineEvalCallback", "EpisodeKpiCallback", "ModelPolicy"]

EVAL_COLUMNS = ("timesteps", "policy", "profit_learners", "welfare", "commit_share")


class EpisodeKpiCallback(BaseCallback):
    """Log the env's episode KPIs (``infos[i]["episode_kpis"]``) as ``kpi/<name>`` means.

    ``MarketVecEnv`` puts the KPIs of an ended episode into the info of every slot of that
    copy; only the first slot of each copy is read, so each episode counts once.

    Args:
        n_agents: Slots per env copy.
    """

    def __init__(self, n_agents: int) -> None:
        super().__init__()
        self.n_agents = n_agents

    def _on_step(self) -> bool:
        infos = self.locals.get("infos", ())
        for info in infos[:: self.n_agents]:
            for name, value in info.get("episode_kpis", {}).items():
                self.logger.record_mean(f"kpi/{name}", float(value))
        return True


class ModelPolicy:
    """The model being trained as a policy (deterministic, with its current normalisation).

    Args:
        model: An SB3 algorithm; its ``VecNormalize`` (if any) scales the observations
            without updating its statistics.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, observations: dict[str, np.ndarray], env: Any) -> dict[str, np.ndarray]:
        """Return deterministic actions for every agent in ``observations``."""
        agents = list(observations)
        batch = np.stack([observations[a] for a in agents]).astype(np.float32)
        vecnorm = self.model.get_vec_normalize_env()
        if vecnorm is not None:
            batch = vecnorm.normalize_obs(batch)
        actions, _ = self.model.predict(batch, deterministic=True)
        return {a: np.asarray(actions[i], dtype=np.float32) for i, a in enumerate(agents)}


class BaselineEvalCallback(BaseCallback):
    """Evaluate the model against the baselines on held-out seeds during training.

    Every ``eval_freq`` agent steps (and at the end of training) the current model plays the
    learners of an evaluation env (the training market with baseline opponents) for one
    episode per seed; each baseline in ``baselines`` plays the same agents on the same seeds
    once, at the start. Evaluations happen at the first rollout start after ``eval_freq``
    agent steps (so the model has been updated with all steps so far). Logged:
    ``eval/profit_learners`` (summed reward of the learners per episode, yuan, mean over
    seeds), ``eval/welfare``, ``eval/<baseline>/profit_learners`` and
    ``eval/gain_vs_<baseline>`` (model minus baseline, yuan); rows go to ``csv_path``.

    Args:
        make_env: Builds the evaluation env (a ``ParallelEnv`` whose agents are the learners).
        baselines: Baseline names (``baselines.names()``).
        seeds: Episode seeds, one episode each.
        eval_freq: Agent steps between evaluations.
        csv_path: CSV file for the results (columns ``EVAL_COLUMNS``); None: no file.
    """

    def __init__(
        self,
        make_env: Callable[[], Any],
        baselines: Sequence[str],
        seeds: Sequence[int],
        eval_freq: int,
        csv_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.make_env, self.baseline_names = make_env, tuple(baselines)
        self.seeds, self.eval_freq, self.csv_path = tuple(seeds), eval_freq, csv_path
        self.env: Any = None
        self.reference: dict[str, dict[str, float]] = {}
        self.history: list[dict[str, Any]] = []
        self.last_eval = 0

    def _play(self, policy: Any) -> dict[str, float]:
        """Mean metrics of ``policy`` over the seeds."""
        from train.evaluate import run_episode

        rows = [run_episode(self.env, policy, seed)[0] for seed in self.seeds]
        return {k: float(np.mean([r.get(k, np.nan) for r in rows])) for k in EVAL_COLUMNS[2:]}

    def _write(self, policy: str, metrics: dict[str, float]) -> None:
        row = {"timesteps": self.num_timesteps, "policy": policy, **metrics}
        self.history.append(row)
        if self.csv_path is None:
            return
        new = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=EVAL_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _on_training_start(self) -> None:
        import baselines

        if self.env is None:
            self.env = self.make_env()
        for name in self.baseline_names:
            if name not in self.reference:
                self.reference[name] = self._play(baselines.make(name))
                self._write(name, self.reference[name])
        self.last_eval = self.num_timesteps

    def evaluate_now(self) -> dict[str, float]:
        """Evaluate the current model, log and record it; return its mean metrics."""
        metrics = self._play(ModelPolicy(self.model))
        self._write("model", metrics)
        self.logger.record("eval/profit_learners", metrics["profit_learners"])
        self.logger.record("eval/welfare", metrics["welfare"])
        for name, ref in self.reference.items():
            self.logger.record(f"eval/{name}/profit_learners", ref["profit_learners"])
            gain = metrics["profit_learners"] - ref["profit_learners"]
            self.logger.record(f"eval/gain_vs_{name}", gain)
        self.last_eval = self.num_timesteps
        return metrics

    def _on_rollout_start(self) -> None:
        # Here, not in _on_step: the model has just been updated with the last rollout, so
        # the row at N steps is the model trained on N steps.
        if self.num_timesteps - self.last_eval >= self.eval_freq:
            self.evaluate_now()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1]["timesteps"] != self.num_timesteps:
            self.evaluate_now()
            self.logger.dump(self.num_timesteps)
