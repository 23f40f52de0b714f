"""Train one role's bidders with Stable-Baselines3.

``train(TrainConfig(...)) -> run_dir`` builds ``n_envs`` copies of the scenario's env, exposes
every (copy, learner) pair as one SB3 slot (``mgenv.wrappers.sb3_vec``), trains, and writes
``runs/{scenario}__{algo}__{seed}__{YYYYmmdd-HHMMSS}/`` (layout: ``agents.run_config``).

* ``sharing="role"``: one model shared by all learners of the role (``model.zip``).
* ``sharing="agent"``: one model per learner (``<agent>/model.zip``), trained in turn for
  ``rounds`` rounds, each turn with the other agents fixed.

The role's agents that are not learners are played by the env's baseline
(``opponents="baseline"``) or by frozen snapshots of the learned policies
(``opponents="selfplay"``, :mod:`train.selfplay`); the other roles are always played by the
env's ``opponent_policy`` baseline. ``eval_freq`` adds an evaluation against the baselines
during training (:class:`train.callbacks.BaselineEvalCallback`, ``eval.csv``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from agents.run_config import RunConfig, package_versions
from agents.sb3_policy import MODEL_FILE, VECNORM_FILE
from train.train_config import ROLES, TrainConfig, config_from_dict, config_to_dict

__all__ = [
    "ROLES",
    "TrainConfig",
    "config_from_dict",
    "default_hyperparams",
    "make_env",
    "train",
]


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


def make_env(
    scenario: str,
    overrides: Mapping[str, Any],
    learners: Sequence[str] | None = None,
    opponent: Any = None,
) -> Any:
    """Build one env (module-level so worker processes can unpickle it).

    Args:
        scenario: Scenario name.
        overrides: Env config overrides (with ``learning_roles``).
        learners: Agents exposed to the learner; None or all of the role: the plain env.
        opponent: For the role's other agents: a baseline name, a policy, or None (set
            later with ``set_opponent``, as self-play does).
    """
    import mgenv

    env = mgenv.parallel_env(scenario, **dict(overrides))
    if learners is None or list(learners) == list(env.possible_agents):
        return env
    from train.selfplay import RoleOpponentsEnv

    if isinstance(opponent, str):
        import baselines

        opponent = baselines.make(opponent)
    return RoleOpponentsEnv(env, learners, opponent)


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


class _Layout(NamedTuple):
    """What one probe env tells about the run."""

    role_agents: list[str]
    learners: tuple[str, ...]
    baseline: str  # the env's opponent_policy
    observation_names: tuple[str, ...]
    action_names: tuple[str, ...]


def _probe(config: TrainConfig) -> _Layout:
    """Build one env and read the role's agents, the learners and the layouts."""
    env = make_env(config.scenario, config.env_overrides)
    try:
        agents = list(env.possible_agents)
        action_names = getattr(env, "action_names", None)
        return _Layout(
            agents,
            config.resolve_learners(agents),
            env.config.opponent_policy,
            tuple(env.observation_names(agents[0])),
            tuple(action_names(agents[0])) if action_names else (),
        )
    finally:
        env.close()


def _run_config(config: TrainConfig, layout: _Layout, hyperparams: dict[str, Any]) -> RunConfig:
    """Describe the run (the layout the model is trained on and how to train it again)."""
    return RunConfig(
        algo=config.algo,
        scenario=config.scenario,
        role=config.role,
        agents=layout.learners,
        overrides=dict(config.env_overrides),
        observation_names=layout.observation_names,
        action_names=layout.action_names,
        seed=config.seed,
        total_timesteps=config.total_timesteps,
        n_envs=config.n_envs,
        vec_normalize=config.vec_normalize,
        hyperparams=hyperparams,
        sharing=config.sharing,
        opponents=config.opponents,
        train_config=config_to_dict(config),
        versions=package_versions(),
        created=datetime.now().isoformat(timespec="seconds"),
    )


class _Learner(NamedTuple):
    """One SB3 model, its vector env and where its files go."""

    name: str  # "model" (shared) or the agent's name
    agents: tuple[str, ...]
    model: Any
    venv: Any
    out: Path


def _make_learner(
    config: TrainConfig,
    learners: tuple[str, ...],
    opponent: Any,
    hyperparams: dict[str, Any],
    run_dir: Path,
    seed: int,
) -> _Learner:
    """Build the (monitored, optionally normalised) vector env and the model over it.

    Files go to ``run_dir`` (shared model) or ``run_dir/<agent>`` (one model per agent);
    TensorBoard logs to ``run_dir/tb``.
    """
    from stable_baselines3 import A2C, PPO, SAC
    from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

    from mgenv.wrappers.sb3_vec import MarketVecEnv

    copies: VecEnv
    if config.batched:
        from mgenv.batched import BatchedVecEnv

        copies = BatchedVecEnv(config.scenario, n_copies=config.n_envs, **config.env_overrides)
    else:
        fn = functools.partial(make_env, config.scenario, config.env_overrides, learners, opponent)
        copies = MarketVecEnv([fn] * config.n_envs, n_procs=config.n_procs)
    venv: Any = VecMonitor(copies)
    if config.vec_normalize:
        venv = VecNormalize(venv, norm_obs=True, norm_reward=True, gamma=0.99)
    algo_cls = {"ppo": PPO, "a2c": A2C, "sac": SAC}[config.algo]
    try:
        model = algo_cls(
            "MlpPolicy",
            venv,
            seed=seed,
            device="cpu",
            verbose=config.verbose,
            tensorboard_log=str(run_dir / "tb") if config.tensorboard else None,
            **hyperparams,
        )
    except BaseException:
        venv.close()
        raise
    if config.sharing == "agent":
        return _Learner(learners[0], learners, model, venv, run_dir / learners[0])
    return _Learner("model", learners, model, venv, run_dir)


def _callbacks(config: TrainConfig, learner: _Learner, baseline: str) -> list[Any]:
    """KPI logger, and if asked for, checkpoints and the evaluation against the baselines."""
    from stable_baselines3.common.callbacks import CheckpointCallback

    from train.callbacks import BaselineEvalCallback, EpisodeKpiCallback

    learner.out.mkdir(parents=True, exist_ok=True)
    callbacks: list[Any] = [EpisodeKpiCallback(len(learner.agents))]
    if config.checkpoint_freq:
        callbacks.append(
            CheckpointCallback(
                save_freq=max(config.checkpoint_freq // learner.venv.num_envs, 1),
                save_path=str(learner.out / "checkpoints"),
                name_prefix="model",
                save_vecnormalize=config.vec_normalize,
            )
        )
    if config.eval_freq:
        eval_env = functools.partial(
            make_env, config.scenario, config.env_overrides, learner.agents, baseline
        )
        callbacks.append(
            BaselineEvalCallback(
                eval_env,
                config.eval_baselines,
                config.eval_seeds,
                config.eval_freq,
                learner.out / "eval.csv",
            )
        )
    return callbacks


def _save(config: TrainConfig, learner: _Learner) -> None:
    learner.out.mkdir(parents=True, exist_ok=True)
    learner.model.save(learner.out / MODEL_FILE)
    if config.vec_normalize:
        learner.venv.save(str(learner.out / VECNORM_FILE))


def _train_shared(config: TrainConfig, layout: _Layout, run_dir: Path, hp: dict[str, Any]) -> None:
    """One model for all learners; self-play snapshots refreshed every ``snapshot_freq``."""
    from train.selfplay import SelfPlayCallback

    selfplay = config.opponents == "selfplay"
    opponent = None if selfplay else layout.baseline
    learner = _make_learner(config, layout.learners, opponent, hp, run_dir, config.seed)
    try:
        callbacks = _callbacks(config, learner, layout.baseline)
        if selfplay:
            callbacks.append(SelfPlayCallback(config.snapshot_freq, label=layout.learners[0]))
        learner.model.learn(
            config.total_timesteps, progress_bar=config.progress_bar, callback=callbacks
        )
        _save(config, learner)
    finally:
        learner.venv.close()


def _train_per_agent(
    config: TrainConfig, layout: _Layout, run_dir: Path, hp: dict[str, Any]
) -> None:
    """One model per learner, trained in turn; self-play opponents are the others' snapshots."""
    import baselines
    from train.selfplay import AgentDispatch, Snapshot

    n = len(layout.learners)
    steps = config.total_timesteps // (config.rounds * n)
    if steps < 1:
        raise ValueError(
            f"total_timesteps={config.total_timesteps} is less than one step per turn "
            f"(rounds={config.rounds} x {n} learners)"
        )
    selfplay = config.opponents == "selfplay"
    opponent = None if selfplay else layout.baseline
    learners: list[_Learner] = []
    try:
        for k, agent in enumerate(layout.learners):
            seed = config.seed + 1000 * k  # distinct initial weights and env seeds per model
            learners.append(_make_learner(config, (agent,), opponent, hp, run_dir, seed))
        snapshots = {lr.name: Snapshot.of(lr.model, f"{lr.name}@0") for lr in learners}
        fallback = baselines.make(layout.baseline)
        callbacks = {lr.name: _callbacks(config, lr, layout.baseline) for lr in learners}
        for turn in range(config.rounds * n):
            learner = learners[turn % n]
            if selfplay:
                others = {a: s for a, s in snapshots.items() if a != learner.name}
                learner.venv.env_method("set_opponent", AgentDispatch(others, fallback))
            learner.model.learn(
                steps,
                progress_bar=config.progress_bar,
                callback=callbacks[learner.name],
                reset_num_timesteps=turn < n,
                tb_log_name=learner.name,
            )
            snapshots[learner.name] = Snapshot.of(learner.model, f"{learner.name}@{turn}")
        for learner in learners:
            _save(config, learner)
    finally:
        for learner in learners:
            learner.venv.close()


def train(config: TrainConfig) -> Path:
    """Train as configured; return the run directory.

    The run directory gets ``config.json`` before training starts (so checkpoints of an
    interrupted run can be loaded) and the model(s) (+ ``vecnormalize.pkl``) at the end.

    Raises:
        ValueError: For an unknown scenario, an invalid override (from the env) or
            learners that are not agents of the role (lists them).
    """
    import torch
    from stable_baselines3.common.utils import set_random_seed

    set_random_seed(config.seed)  # the one seeding point: python, numpy, torch
    torch.set_num_threads(config.torch_threads)
    layout = _probe(config)
    n_slots = config.n_envs * (len(layout.learners) if config.sharing == "role" else 1)
    hyperparams = {**default_hyperparams(config.algo, n_slots), **config.hyperparams}
    run_dir = _run_dir(config)
    _run_config(config, layout, hyperparams).save(run_dir)
    started = time.perf_counter()
    if config.sharing == "role":
        _train_shared(config, layout, run_dir, hyperparams)
    else:
        _train_per_agent(config, layout, run_dir, hyperparams)
    (run_dir / "train_seconds.txt").write_text(f"{time.perf_counter() - started:.1f}\n")
    return run_dir
