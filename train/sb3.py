"""Train one role's bidders with Stable-Baselines3 (parameter sharing over the role's agents).

``train(TrainConfig(...)) -> run_dir`` builds ``n_envs`` copies of the scenario's env, exposes
every (copy, agent of the role) pair as one SB3 slot (``mgenv.wrappers.sb3_vec``), trains, and
writes ``runs/{scenario}__{algo}__{seed}__{YYYYmmdd-HHMMSS}/`` (layout: ``agents.run_config``).
Agents of the other roles are played inside the env by the scenario's baseline policy.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agents.run_config import ALGOS, RunConfig, package_versions
from agents.sb3_policy import MODEL_FILE, VECNORM_FILE

__all__ = ["ROLES", "TrainConfig", "default_hyperparams", "make_env", "train"]

ROLES = ("mg", "agg", "user")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Arguments of one training run.

    Attributes:
        scenario: Scenario name (``mgenv.scenarios.names()``).
        algo: SB3 algorithm: "ppo", "a2c" or "sac".
        total_timesteps: Budget in agent steps, summed over all slots (copies x agents).
        seed: Seeds torch, numpy and copy ``c`` of the env (``seed + c``).
        n_envs: Env copies; each contributes one slot per agent of the role.
        n_procs: Worker processes for the env copies (1: step them in this process).
        role: The learning role ("mg", "agg" or "user"); the env is built with
            ``learning_roles=(role,)``.
        overrides: Env config overrides for ``mgenv.parallel_env``.
        hyperparams: Keyword arguments for the algorithm, over ``default_hyperparams``.
        vec_normalize: Normalise observations with running statistics (saved with the model).
        out_dir: Parent folder of the run directory.
        run_name: Run directory name; default ``{scenario}__{algo}__{seed}__{time}``.
        progress_bar: Show SB3's progress bar (tqdm + rich).
        tensorboard: Write TensorBoard logs to ``run_dir/tb``.
        checkpoint_freq: Save a checkpoint every this many agent steps (0: never).
        torch_threads: Torch intra-op threads (small MLPs run fastest on one).
        verbose: SB3 verbosity (0: silent, 1: training tables).
    """

    scenario: str = "default"
    algo: str = "ppo"
    total_timesteps: int = 100_000
    seed: int = 0
    n_envs: int = 4
    n_procs: int = 1
    role: str = "mg"
    overrides: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    vec_normalize: bool = True
    out_dir: Path = Path("runs")
    run_name: str | None = None
    progress_bar: bool = False
    tensorboard: bool = True
    checkpoint_freq: int = 0
    torch_threads: int = 1
    verbose: int = 0

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"TrainConfig.algo={self.algo!r} is unknown; valid: {list(ALGOS)}")
        if self.role not in ROLES:
            raise ValueError(f"TrainConfig.role={self.role!r} is unknown; valid: {list(ROLES)}")
        if not isinstance(self.scenario, str) or not self.scenario:
            raise ValueError(f"TrainConfig.scenario={self.scenario!r} must be a scenario name")
        for name, low in (
            ("total_timesteps", 1),
            ("seed", 0),
            ("n_envs", 1),
            ("n_procs", 1),
            ("checkpoint_freq", 0),
            ("torch_threads", 1),
            ("verbose", 0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"TrainConfig.{name}={value!r} must be an integer >= {low}")
        for name in ("overrides", "hyperparams"):
            value = getattr(self, name)
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise ValueError(f"TrainConfig.{name}={value!r} must map names to values")
            object.__setattr__(self, name, dict(value))
        object.__setattr__(self, "out_dir", Path(self.out_dir))

    @property
    def env_overrides(self) -> dict[str, Any]:
        """Overrides as passed to the env: the user's plus ``learning_roles=(role,)``."""
        roles = tuple(self.overrides.get("learning_roles", (self.role,)))
        if roles != (self.role,):
            raise ValueError(
                f"overrides learning_roles={roles} conflicts with role={self.role!r}; "
                "training shares one policy over the agents of one role"
            )
        return {**self.overrides, "learning_roles": (self.role,)}


def default_hyperparams(algo: str, n_slots: int) -> dict[str, Any]:
    """Return the default algorithm arguments for ``n_slots`` parallel slots.

    The defaults collect whole 24-period days per slot and split a PPO rollout into four
    minibatches, so the buffer size is always a multiple of the batch size. PPO starts from an
    action standard deviation of exp(-1) = 0.37 (actions live in [-1, 1]) and a learning rate
    of 1e-3: on ``default`` this learned faster than SB3's defaults (std 1, 3e-4) in short runs.
    """
    if algo == "ppo":
        return {
            "n_steps": 96,
            "batch_size": 24 * n_slots,
            "n_epochs": 5,
            "gamma": 0.99,
            "learning_rate": 1e-3,
            "ent_coef": 0.0,
            "policy_kwargs": {"log_std_init": -1.0},
        }
    if algo == "a2c":
        return {"n_steps": 24, "gamma": 0.99, "learning_rate": 7e-4}
    return {"learning_starts": 240, "batch_size": 128, "gamma": 0.99, "learning_rate": 3e-4}


def make_env(scenario: str, overrides: Mapping[str, Any]) -> Any:
    """Build one ``mgenv.parallel_env`` (module-level so worker processes can unpickle it)."""
    import mgenv

    return mgenv.parallel_env(scenario, **dict(overrides))


def _run_dir(config: TrainConfig) -> Path:
    """Create and return a fresh run directory."""
    name = config.run_name or (
        f"{config.scenario}__{config.algo}__{config.seed}__"
        f"{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    )
    config.out_dir.mkdir(parents=True, exist_ok=True)
    for suffix in range(1000):
        path = config.out_dir / (f"{name}-{suffix}" if suffix else name)
        try:
            path.mkdir()
        except FileExistsError:  # another run started in the same second
            continue
        return path
    raise FileExistsError(f"{config.out_dir / name} and 999 numbered variants exist")


def _run_config(config: TrainConfig, hyperparams: dict[str, Any]) -> RunConfig:
    """Probe one env and describe the run (the layout the model will be trained on)."""
    env = make_env(config.scenario, config.env_overrides)
    try:
        agents = tuple(env.possible_agents)
        action_names = getattr(env, "action_names", None)
        return RunConfig(
            algo=config.algo,
            scenario=config.scenario,
            role=config.role,
            agents=agents,
            overrides={k: v for k, v in config.env_overrides.items()},
            observation_names=tuple(env.observation_names(agents[0])),
            action_names=tuple(action_names(agents[0])) if action_names else (),
            seed=config.seed,
            total_timesteps=config.total_timesteps,
            n_envs=config.n_envs,
            vec_normalize=config.vec_normalize,
            hyperparams=hyperparams,
            versions=package_versions(),
            created=datetime.now().isoformat(timespec="seconds"),
        )
    finally:
        env.close()


def _build_vec_env(config: TrainConfig) -> Any:
    """Return the (monitored, optionally normalised) SB3 vector env."""
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from mgenv.wrappers.sb3_vec import MarketVecEnv

    fn = functools.partial(make_env, config.scenario, config.env_overrides)
    venv: Any = VecMonitor(MarketVecEnv([fn] * config.n_envs, n_procs=config.n_procs))
    if config.vec_normalize:
        venv = VecNormalize(venv, norm_obs=True, norm_reward=True, gamma=0.99)
    return venv


def _callbacks(config: TrainConfig, run_dir: Path, n_slots: int, n_agents: int) -> list[Any]:
    """Return the KPI logger and, if asked for, the checkpoint callback."""
    from stable_baselines3.common.callbacks import CheckpointCallback

    from train.callbacks import EpisodeKpiCallback

    callbacks: list[Any] = [EpisodeKpiCallback(n_agents)]
    if config.checkpoint_freq:
        callbacks.append(
            CheckpointCallback(
                save_freq=max(config.checkpoint_freq // n_slots, 1),
                save_path=str(run_dir / "checkpoints"),
                name_prefix="model",
                save_vecnormalize=config.vec_normalize,
            )
        )
    return callbacks


def train(config: TrainConfig) -> Path:
    """Train a model as configured; return the run directory.

    The run directory gets ``config.json`` before training starts (so checkpoints of an
    interrupted run can be loaded) and ``model.zip`` (+ ``vecnormalize.pkl``) at the end.

    Raises:
        ValueError: For an unknown scenario or an invalid override (from the env).
    """
    import torch
    from stable_baselines3 import A2C, PPO, SAC
    from stable_baselines3.common.utils import set_random_seed

    set_random_seed(config.seed)  # the one seeding point: python, numpy, torch
    torch.set_num_threads(config.torch_threads)
    venv = _build_vec_env(config)
    try:
        n_agents = venv.num_envs // config.n_envs
        hyperparams = {**default_hyperparams(config.algo, venv.num_envs), **config.hyperparams}
        run_config = _run_config(config, hyperparams)
        run_dir = _run_dir(config)
        run_config.save(run_dir)
        algo_cls = {"ppo": PPO, "a2c": A2C, "sac": SAC}[config.algo]
        model = algo_cls(
            "MlpPolicy",
            venv,
            seed=config.seed,
            device="cpu",
            verbose=config.verbose,
            tensorboard_log=str(run_dir / "tb") if config.tensorboard else None,
            **hyperparams,
        )
        started = time.perf_counter()
        model.learn(
            config.total_timesteps,
            progress_bar=config.progress_bar,
            callback=_callbacks(config, run_dir, venv.num_envs, n_agents),
        )
        model.save(run_dir / MODEL_FILE)
        if config.vec_normalize:
            venv.save(str(run_dir / VECNORM_FILE))
        (run_dir / "train_seconds.txt").write_text(f"{time.perf_counter() - started:.1f}\n")
    finally:
        venv.close()
    return run_dir


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """Build a ``TrainConfig`` from a mapping, naming unknown keys and listing valid ones."""
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown TrainConfig fields {unknown}; valid: {names}")
    return TrainConfig(**dict(values))
