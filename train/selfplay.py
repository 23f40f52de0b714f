"""Opponents inside the learning role: fixed baselines or frozen snapshots of learned policies.

The market env exposes every agent of its learning role; :class:`RoleOpponentsEnv` narrows
that to some ``learners`` (e.g. ``mg_0``) and plays the role's other agents (``mg_1..3``)
with an opponent policy that can be swapped during training (``set_opponent``):

* a baseline (``baselines.make(name)``), or
* a :class:`Snapshot`: a frozen copy of a learned SB3 policy with the observation
  normalisation it was trained with, acting deterministically. :class:`SelfPlayCallback`
  refreshes the snapshot every ``snapshot_freq`` agent steps, so ``mg_0`` trains against
  earlier versions of itself playing ``mg_1..3``.

The other roles stay with the env's ``opponent_policy`` baseline. Everything here is
deterministic given the training seed, so self-play runs are reproducible.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pettingzoo.utils.env import ParallelEnv
from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["AgentDispatch", "RoleOpponentsEnv", "SelfPlayCallback", "Snapshot"]

Obs = dict[str, np.ndarray]


class RoleOpponentsEnv(ParallelEnv[str, np.ndarray, np.ndarray]):
    """A ``ParallelEnv`` whose agents are ``learners``; the role's other agents are played.

    Args:
        env: The market env (``mgenv.parallel_env`` with one learning role).
        learners: The agents exposed to the learner, a subset of ``env.possible_agents``.
        opponent: Policy (``policy(observations, env) -> actions``) for the other agents of
            ``env.possible_agents``; None until :meth:`set_opponent` is called.

    Raises:
        ValueError: For learners that are not agents of ``env`` (lists the valid ones).
    """

    def __init__(self, env: Any, learners: Sequence[str], opponent: Any = None) -> None:
        possible = list(env.possible_agents)
        unknown = [a for a in learners if a not in possible]
        if unknown or not learners or len(set(learners)) != len(learners):
            raise ValueError(
                f"learners {list(learners)}: unknown {unknown} or repeated or empty; "
                f"valid: agents of the learning role {possible}"
            )
        self.env = env
        self.possible_agents = [a for a in possible if a in learners]
        self.played = [a for a in possible if a not in learners]
        self.agents: list[str] = []
        self.opponent = opponent
        self.metadata = env.metadata
        self.render_mode = getattr(env, "render_mode", None)
        self._obs: Obs = {}

    def set_opponent(self, opponent: Any) -> None:
        """Replace the policy that plays the non-learning agents of the role."""
        self.opponent = opponent

    def observation_space(self, agent: str) -> Any:
        """Observation space of ``agent`` (the market env's)."""
        return self.env.observation_space(agent)

    def action_space(self, agent: str) -> Any:
        """Action space of ``agent`` (the market env's)."""
        return self.env.action_space(agent)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, dict[str, Any]]]:
        """Reset the market; return the learners' observations and infos."""
        self._obs, infos = self.env.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        return self._mine(self._obs), self._mine(infos)

    def step(self, actions: dict[str, np.ndarray]) -> tuple[Any, ...]:
        """One market period: ``actions`` for the learners, the opponent for the others."""
        joint = dict(actions)
        if self.played:
            if self.opponent is None:
                raise RuntimeError(
                    f"no opponent for {self.played}: call set_opponent(policy) before step()"
                )
            joint.update(self.opponent({a: self._obs[a] for a in self.played}, self.env))
        self._obs, *rest = self.env.step(joint)
        if not self.env.agents:
            self.agents = []
        return (self._mine(self._obs), *(self._mine(d) for d in rest))

    def _mine(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {a: values[a] for a in self.possible_agents if a in values}

    def episode_kpis(self) -> dict[str, float]:
        """The market env's episode KPIs."""
        kpis: dict[str, float] = self.env.episode_kpis()
        return kpis

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set here: observation_names, role_of, config, ...
        if name.startswith("_") or name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def state(self) -> np.ndarray:
        """The market env's global state."""
        return np.asarray(self.env.state())

    def render(self) -> Any:
        """Render the market env."""
        return self.env.render()

    def close(self) -> None:
        """Close the market env."""
        self.env.close()


def _frozen_copy(policy: Any) -> Any:
    """A CPU copy of an SB3 policy in eval mode (without touching torch's random state)."""
    import torch

    with torch.random.fork_rng(devices=[]):  # building the copy draws initial weights
        clone = policy.__class__(**policy._get_constructor_parameters())
    clone.load_state_dict(policy.state_dict())
    clone.set_training_mode(False)
    return clone.to("cpu")


class Snapshot:
    """A frozen copy of a learned SB3 policy, acting deterministically for any agents.

    Args:
        policy: The SB3 policy module (copied; later training does not change it).
        obs_rms: Running observation statistics of ``VecNormalize`` (copied) or None.
        clip_obs: ``VecNormalize.clip_obs``.
        epsilon: ``VecNormalize.epsilon``.
        label: Name for messages (e.g. ``"mg_0@12000"``).
    """

    def __init__(
        self,
        policy: Any,
        obs_rms: Any = None,
        clip_obs: float = 10.0,
        epsilon: float = 1e-8,
        label: str = "snapshot",
    ) -> None:
        self.policy = _frozen_copy(policy)
        self.obs_rms = copy.deepcopy(obs_rms)
        self.clip_obs, self.epsilon, self.label = clip_obs, epsilon, label

    @classmethod
    def of(cls, model: Any, label: str = "snapshot") -> Snapshot:
        """Snapshot ``model``'s current policy and observation normalisation."""
        vecnorm = model.get_vec_normalize_env()
        if vecnorm is None or not vecnorm.norm_obs:
            return cls(model.policy, label=label)
        return cls(model.policy, vecnorm.obs_rms, vecnorm.clip_obs, vecnorm.epsilon, label)

    def __repr__(self) -> str:
        return f"Snapshot({self.label})"

    def __call__(self, observations: Obs, env: Any) -> Obs:
        """Deterministic actions for every agent in ``observations``."""
        agents = list(observations)
        if not agents:
            return {}
        batch = np.stack([observations[a] for a in agents]).astype(np.float32)
        if self.obs_rms is not None:
            scaled = (batch - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + self.epsilon)
            batch = np.clip(scaled, -self.clip_obs, self.clip_obs).astype(np.float32)
        actions, _ = self.policy.predict(batch, deterministic=True)
        actions = np.asarray(actions, dtype=np.float32)
        return {a: actions[i] for i, a in enumerate(agents)}


class AgentDispatch:
    """A policy that asks ``by_agent[a]`` for agent ``a`` and ``default`` for the rest.

    Args:
        by_agent: Policy per agent name (e.g. each learner's latest snapshot).
        default: Policy for agents not in ``by_agent`` (e.g. a baseline); None: such agents
            raise ``ValueError``.
    """

    def __init__(self, by_agent: Mapping[str, Any], default: Any = None) -> None:
        self.by_agent, self.default = dict(by_agent), default

    def __repr__(self) -> str:
        return f"AgentDispatch({self.by_agent}, default={self.default})"

    def __call__(self, observations: Obs, env: Any) -> Obs:
        """Group the agents by policy, call each policy once, merge the actions."""
        groups: dict[int, tuple[Any, list[str]]] = {}
        for agent in observations:
            policy = self.by_agent.get(agent, self.default)
            if policy is None:
                raise ValueError(
                    f"no policy for {agent!r}; policies exist for {list(self.by_agent)}"
                )
            groups.setdefault(id(policy), (policy, []))[1].append(agent)
        actions: Obs = {}
        for policy, agents in groups.values():
            actions.update(policy({a: observations[a] for a in agents}, env))
        return actions


class SelfPlayCallback(BaseCallback):
    """Play the role's non-learning agents with snapshots of the model being trained.

    At the start of training, and then at the first rollout start after every
    ``snapshot_freq`` agent steps, the current policy is frozen into a :class:`Snapshot` and
    sent to every env copy (``set_opponent``), optionally combined with fixed policies for
    some agents (``AgentDispatch``).

    Args:
        snapshot_freq: Agent steps (SB3 timesteps, summed over slots) between refreshes.
        label: Prefix of the snapshots' labels.
        fixed: Policies for agents that are not played by the snapshot (default: none).
    """

    def __init__(
        self, snapshot_freq: int, label: str = "selfplay", fixed: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.snapshot_freq = snapshot_freq
        self.label = label
        self.fixed = dict(fixed or {})
        self.last_refresh = -1
        self.refreshes = 0

    def _refresh(self) -> None:
        snap = Snapshot.of(self.model, f"{self.label}@{self.num_timesteps}")
        opponent = AgentDispatch(self.fixed, snap) if self.fixed else snap
        self.training_env.env_method("set_opponent", opponent)
        self.last_refresh = self.num_timesteps
        self.refreshes += 1
        self.logger.record("selfplay/refreshes", self.refreshes)

    def _on_training_start(self) -> None:
        self._refresh()

    def _on_rollout_start(self) -> None:
        if self.num_timesteps - self.last_refresh >= self.snapshot_freq:
            self._refresh()

    def _on_step(self) -> bool:
        return True
