"""The ``config.json`` written beside every trained model: all that is needed to reload it.

A run directory (``runs/{scenario}__{algo}__{seed}__{YYYYmmdd-HHMMSS}/``) holds::

    model.zip            the SB3 model (PPO, A2C or SAC); with one model per agent
                         (sharing "agent"): <agent>/model.zip, <agent>/vecnormalize.pkl,
                         <agent>/checkpoints/, <agent>/eval.csv instead
    config.json          this RunConfig
    vecnormalize.pkl     VecNormalize statistics (only if RunConfig.vec_normalize)
    checkpoints/         model_{steps}_steps.zip (+ model_vecnormalize_{steps}_steps.pkl)
    tb/                  TensorBoard logs
    eval.csv             evaluations against the baselines during training (if eval_freq)
"""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["ALGOS", "CONFIG_FILE", "RunConfig", "package_versions"]

CONFIG_FILE = "config.json"
FORMAT_VERSION = 1
ALGOS = ("ppo", "a2c", "sac")
SHARING = ("role", "agent")


def _tuples(value: Any) -> Any:
    """Turn JSON lists back into tuples (env overrides such as ``learning_roles`` want them)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What a trained model was trained on and with.

    Attributes:
        algo: SB3 algorithm name, one of ``ALGOS``.
        scenario: Scenario name passed to ``mgenv.parallel_env``.
        overrides: Env config overrides passed to ``mgenv.parallel_env`` (as used, including
            ``learning_roles`` when training set it).
        role: The role whose agents the model plays ("mg", "agg" or "user").
        agents: The learning agents the model was trained on (parameter sharing).
        observation_names: Observation feature names of the role, in order.
        action_names: Action feature names of the role, in order (empty if unknown).
        seed: Training seed.
        total_timesteps: Training budget in agent steps (SB3 timesteps over all slots).
        n_envs: Env copies used for training.
        vec_normalize: Whether observations were normalised by saved VecNormalize statistics.
        hyperparams: Keyword arguments given to the algorithm's constructor.
        sharing: "role": one model shared by ``agents`` (``model.zip``); "agent": one model
            per agent (``<agent>/model.zip``).
        opponents: Who played the role's other agents in training: "baseline" or
            "selfplay".
        train_config: Every ``train.TrainConfig`` field of the run (train it again with
            ``mgenv train --config config.json``); empty for older runs.
        versions: Package versions (python, numpy, torch, ...) and the git commit.
        created: Creation time, ISO 8601.
        format_version: Version of this file's layout.
    """

    algo: str
    scenario: str
    overrides: dict[str, Any]
    role: str
    agents: tuple[str, ...]
    observation_names: tuple[str, ...]
    action_names: tuple[str, ...] = ()
    seed: int = 0
    total_timesteps: int = 0
    n_envs: int = 1
    vec_normalize: bool = False
    hyperparams: dict[str, Any] = field(default_factory=dict)
    sharing: str = "role"
    opponents: str = "baseline"
    train_config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"RunConfig.algo={self.algo!r} is not one of {list(ALGOS)}")
        if not self.observation_names:
            raise ValueError("RunConfig.observation_names is empty")
        if self.sharing not in SHARING:
            raise ValueError(f"RunConfig.sharing={self.sharing!r} is not one of {list(SHARING)}")

    def env_overrides(self) -> dict[str, Any]:
        """Return the overrides with JSON lists turned back into tuples."""
        return dict(_tuples(self.overrides))

    def save(self, run_dir: Path) -> Path:
        """Write ``config.json`` into ``run_dir``; return its path."""
        path = Path(run_dir) / CONFIG_FILE
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2, default=str) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        """Read a ``config.json`` file.

        Raises:
            FileNotFoundError: If the file does not exist.
            ValueError: If it is not a run config this version can read.
        """
        raw = json.loads(Path(path).read_text())
        if not isinstance(raw, Mapping) or raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path} is not a run config of format {FORMAT_VERSION}")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in raw.items() if k in names}
        for key in ("agents", "observation_names", "action_names"):
            kwargs[key] = tuple(kwargs.get(key, ()))
        return cls(**kwargs)


def package_versions() -> dict[str, str]:
    """Return the versions of python and the packages a trained model depends on."""
    versions = {"python": platform.python_version()}
    for pkg in ("mgenv", "numpy", "torch", "stable_baselines3", "gymnasium", "pettingzoo"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
        commit = done.stdout.strip() if done.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        commit = ""
    versions["git_commit"] = commit or "unknown"
    return versions
