"""Trained Stable-Baselines3 models as policies with the baselines' contract.

``load_policy(path)(observations, env) -> actions`` acts deterministically for the agents in
``observations``, which must all have the role the model was trained on, after checking that
the env's observation layout is the one the model was trained on.

Loading unpickles files (``model.zip``, ``vecnormalize.pkl``): load trusted runs only.
"""

from __future__ import annotations

import pickle
import re
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from agents.run_config import ALGOS, CONFIG_FILE, RunConfig

__all__ = ["LearnedPolicy", "PerAgentPolicy", "load_policy", "resolve_model_path"]

MODEL_FILE = "model.zip"
VECNORM_FILE = "vecnormalize.pkl"
_CHECKPOINT = re.compile(r"^(?P<prefix>.*)_(?P<steps>\d+)_steps\.zip$")


def resolve_model_path(path: str | Path) -> tuple[Path, Path]:
    """Return ``(model_file, config_file)`` for a run directory, model or checkpoint path.

    ``config.json`` is looked up beside the model, then up to two levels up (checkpoints
    live in ``run_dir/checkpoints/``; one model per agent in ``run_dir/<agent>/`` and
    ``run_dir/<agent>/checkpoints/``).

    Raises:
        FileNotFoundError: If the model or its config.json does not exist.
    """
    model = Path(path)
    if model.is_dir():
        model = model / MODEL_FILE
    if not model.is_file():
        raise FileNotFoundError(f"no trained model at {model}")
    for folder in (model.parent, model.parent.parent, model.parent.parent.parent):
        if (folder / CONFIG_FILE).is_file():
            return model, folder / CONFIG_FILE
    raise FileNotFoundError(f"no {CONFIG_FILE} beside {model} or in its parent folders")


def _vecnormalize_path(model: Path) -> Path:
    """Return where the VecNormalize statistics for ``model`` are saved."""
    match = _CHECKPOINT.match(model.name)
    if match:
        return model.with_name(f"{match['prefix']}_vecnormalize_{match['steps']}_steps.pkl")
    return model.with_name(VECNORM_FILE)


class LearnedPolicy:
    """A trained SB3 model acting for the agents of one role.

    Args:
        model: The loaded SB3 algorithm (``PPO``, ``A2C`` or ``SAC``).
        config: The run config saved with it.
        obs_normalizer: Loaded ``VecNormalize`` (``training=False``) or None.
        path: Where the model was loaded from (for messages).
    """

    def __init__(self, model: Any, config: RunConfig, obs_normalizer: Any, path: Path) -> None:
        self.model = model
        self.config = config
        self.obs_normalizer = obs_normalizer
        self.path = path
        self.role = config.role
        self._checked: weakref.WeakSet[Any] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"LearnedPolicy({self.config.algo}, role={self.role!r}, path='{self.path}')"

    def check_env(self, env: Any, agents: list[str]) -> None:
        """Check the agents' role and the env's observation layout against the run config.

        Raises:
            ValueError: On an agent of another role or a different observation or action
                layout; the message names both layouts.
        """
        for agent in agents:
            if env.role_of(agent) != self.role:
                raise ValueError(
                    f"{self} plays role {self.role!r} but was asked to act for {agent!r} "
                    f"(role {env.role_of(agent)!r})"
                )
        if env in self._checked:
            return
        self._check_layout("observation", env.observation_names(agents[0]), env)
        action_names = getattr(env, "action_names", None)
        if action_names is not None and self.config.action_names:
            self._check_layout("action", action_names(agents[0]), env)
        try:
            self._checked.add(env)
        except TypeError:  # env without weak references: check again next call
            pass

    def _check_layout(self, kind: str, names: list[str], env: Any) -> None:
        """Raise ValueError naming both layouts if ``names`` differ from the trained ones."""
        have = list(names)
        want = list(getattr(self.config, f"{kind}_names"))
        if have != want:
            scenario = getattr(getattr(env, "config", None), "scenario", "?")
            raise ValueError(
                f"{kind} layout mismatch for {self.path}: the model was trained on "
                f"scenario {self.config.scenario!r} with {len(want)} {kind} features {want}, "
                f"but the env (scenario {scenario!r}) has {len(have)} {kind} features {have}"
            )

    def __call__(self, observations: dict[str, np.ndarray], env: Any) -> dict[str, np.ndarray]:
        """Return deterministic actions in [-1, 1] for every agent in ``observations``."""
        agents = list(observations)
        if not agents:
            return {}
        self.check_env(env, agents)
        batch = np.stack([observations[a] for a in agents]).astype(np.float32)
        if self.obs_normalizer is not None:
            batch = self.obs_normalizer.normalize_obs(batch)
        actions, _ = self.model.predict(batch, deterministic=True)
        actions = np.asarray(actions, dtype=np.float32)
        return {a: actions[i] for i, a in enumerate(agents)}


def _algo_class(name: str) -> Any:
    """Return the SB3 class for an algorithm name."""
    from stable_baselines3 import A2C, PPO, SAC

    classes = {"ppo": PPO, "a2c": A2C, "sac": SAC}
    if name not in classes:
        raise ValueError(f"unknown algorithm {name!r}; valid: {list(ALGOS)}")
    return classes[name]


def load_policy(path: str | Path, device: str = "cpu") -> LearnedPolicy | PerAgentPolicy:
    """Load a trained model as a policy (same contract as ``baselines.make``).

    Args:
        path: A run directory, its ``model.zip`` or a checkpoint ``model_{n}_steps.zip``.
            A run directory trained with one model per agent gives a ``PerAgentPolicy``;
            one of its ``<agent>/model.zip`` files alone plays every agent of the role.
        device: Torch device for inference.

    Returns:
        The policy; it checks the env's observation layout at its first call with that env.

    Raises:
        FileNotFoundError: If the model, its config.json or its VecNormalize file is missing.
        ValueError: If the run config is unreadable or names an unknown algorithm.
    """
    folder = Path(path)
    if folder.is_dir() and not (folder / MODEL_FILE).is_file():
        config_file = folder / CONFIG_FILE
        if config_file.is_file() and RunConfig.load(config_file).sharing == "agent":
            return _load_per_agent(folder, RunConfig.load(config_file), device)
    model_file, config_file = resolve_model_path(path)
    return _load_one(model_file, RunConfig.load(config_file), device)


def _load_one(model_file: Path, config: RunConfig, device: str) -> LearnedPolicy:
    """Load one SB3 model file (and its VecNormalize statistics) as a policy."""
    model = _algo_class(config.algo).load(model_file, device=device)
    normalizer = None
    if config.vec_normalize:
        stats = _vecnormalize_path(model_file)
        if not stats.is_file():
            raise FileNotFoundError(f"the run config says vec_normalize but {stats} is missing")
        with stats.open("rb") as fh:
            normalizer = pickle.load(fh)
        normalizer.training = False
    return LearnedPolicy(model, config, normalizer, model_file)


class PerAgentPolicy:
    """One learned model per agent (a run trained with ``sharing="agent"``).

    Agents without a model (the role's agents that did not learn) are played, as in
    training, by the env's ``opponent_policy`` baseline.

    Args:
        policies: ``{agent: LearnedPolicy}``; each acts for its own agent only.
        path: The run directory (for messages).
    """

    def __init__(self, policies: dict[str, LearnedPolicy], path: Path) -> None:
        self.policies = policies
        self.path = path
        self.role = next(iter(policies.values())).role
        self.config = next(iter(policies.values())).config

    def __repr__(self) -> str:
        return f"PerAgentPolicy({list(self.policies)}, path='{self.path}')"

    def __call__(self, observations: dict[str, np.ndarray], env: Any) -> dict[str, np.ndarray]:
        """Ask each agent's own model for its action, the env's baseline for the others."""
        actions: dict[str, np.ndarray] = {}
        rest = {a: obs for a, obs in observations.items() if a not in self.policies}
        for agent, obs in observations.items():
            if agent in self.policies:
                actions.update(self.policies[agent]({agent: obs}, env))
        if rest:
            import baselines

            actions.update(baselines.make(env.config.opponent_policy)(rest, env))
        return actions


def _load_per_agent(run_dir: Path, config: RunConfig, device: str) -> PerAgentPolicy:
    """Load ``run_dir/<agent>/model.zip`` for every agent of the run."""
    policies = {}
    for agent in config.agents:
        model_file = run_dir / agent / MODEL_FILE
        if not model_file.is_file():
            raise FileNotFoundError(f"no trained model for {agent} at {model_file}")
        policies[agent] = _load_one(model_file, config, device)
    return PerAgentPolicy(policies, run_dir)
