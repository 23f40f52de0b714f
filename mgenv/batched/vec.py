"""Stable-Baselines3 vector view of the batched core: every copy x learning microgrid a slot.

Same slot layout and episode semantics as :class:`mgenv.wrappers.sb3_vec.MarketVecEnv` over
single envs: slot ``c * n_mg + j`` is ``mg_j`` of copy ``c``; ``seed(s)`` gives copy ``c``
the seed ``s + c`` at the next ``reset()`` and auto-resets draw each copy's next seed from a
generator seeded with it, so a :class:`BatchedVecEnv` and a ``MarketVecEnv`` of the same
scenario and seed produce the same observations and rewards (tests/test_batched_env.py).
At the horizon every slot is done with ``TimeLimit.truncated`` and ``terminal_observation``
(SB3 bootstraps from it) and the copies auto-reset. Infos are empty dicts on other steps:
building a dict of figures for each of B x n_mg slots every step would cost more than the
step itself (use :class:`~mgenv.batched.core.BatchedCore` or the single env for figures).

>>> from mgenv.batched import BatchedVecEnv
>>> venv = BatchedVecEnv("default", n_copies=2)
>>> _ = venv.seed(0)
>>> obs = venv.reset()
>>> obs.shape
(8, 16)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import base_vec_env as sb3

from mgenv.batched.core import BatchedCore
from mgenv.batched.sharded import ShardedCore
from mgenv.config import EnvConfig
from mgenv.env import MarketEnv

_SEED_HIGH = 2**31 - 1  # as MarketVecEnv


class BatchedVecEnv(sb3.VecEnv):
    """SB3 ``VecEnv`` over a :class:`BatchedCore` of ``n_copies`` copies.

    Args:
        scenario: Scenario name or an :class:`~mgenv.config.EnvConfig`.
        n_copies: Number of copies B (slots: B x n_microgrids).
        processes: 1 (default): one :class:`BatchedCore` in this process; more: the copies
            split over that many processes (:class:`~mgenv.batched.sharded.ShardedCore`,
            the same numbers; :meth:`close` stops the workers).
        **overrides: Flat config overrides, as ``mgenv.parallel_env``.
    """

    def __init__(
        self,
        scenario: str | EnvConfig = "default",
        n_copies: int = 8,
        processes: int = 1,
        **overrides: Any,
    ) -> None:
        from mgenv import make_config  # the package imports this module lazily

        cfg = scenario if isinstance(scenario, EnvConfig) else make_config(scenario, **overrides)
        if isinstance(scenario, EnvConfig) and overrides:
            raise ValueError("pass overrides with a scenario name, not with an EnvConfig")
        self.core: BatchedCore | ShardedCore
        if processes == 1:
            self.core = BatchedCore(cfg, n_copies)
        else:
            self.core = ShardedCore(cfg, n_copies, processes)
        probe = MarketEnv(cfg)  # the single env's spaces, so that the two views agree
        agent = "mg_0"
        obs_space, act_space = probe.observation_space(agent), probe.action_space(agent)
        self.n_copies, self.k = n_copies, cfg.n_microgrids
        super().__init__(n_copies * self.k, obs_space, act_space)
        self.metadata = {**probe.metadata, **self.metadata}
        self._reseed: list[np.random.Generator | None] = [None] * n_copies
        self._copy_seeds: list[int | None] = [None] * n_copies
        self._actions = np.zeros((self.num_envs, *(act_space.shape or ())), dtype=np.float32)
        self._obs_shape = (self.num_envs, *(obs_space.shape or ()))

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Give copy ``c`` the seed ``seed + c`` at the next ``reset()``; return slot seeds."""
        if seed is None:
            seed = int(np.random.default_rng().integers(_SEED_HIGH))
        self._copy_seeds = [seed + c for c in range(self.n_copies)]
        return [self._copy_seeds[s // self.k] for s in range(self.num_envs)]

    def _seed_list(self, explicit: Sequence[int | None]) -> list[int | None]:
        """Each copy's reset seed, as ``MarketVecEnv`` derives it (explicit, or drawn)."""
        out: list[int | None] = []
        for c, seed in enumerate(explicit):
            if seed is not None:
                self._reseed[c] = np.random.default_rng(seed)
            elif (rng := self._reseed[c]) is not None:
                seed = int(rng.integers(_SEED_HIGH))
            out.append(seed)
        return out

    def reset(self) -> sb3.VecEnvObs:
        """Reset every copy (with the seeds set since the last reset)."""
        obs = self.core.reset(self._seed_list(self._copy_seeds))
        self._copy_seeds = [None] * self.n_copies
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return obs.reshape(self._obs_shape)

    def step_async(self, actions: np.ndarray) -> None:
        """Store the slot actions ``(num_envs, *action_shape)``."""
        self._actions[...] = np.reshape(actions, self._actions.shape)

    def step_wait(self) -> sb3.VecEnvStepReturn:
        """Step every copy; at the horizon, report the terminal observations and auto-reset."""
        core = self.core
        out = core.step(self._actions.reshape(self.n_copies, self.k, -1))
        rews = out.reward.reshape(self.num_envs).astype(np.float32)
        obs = out.obs.reshape(self._obs_shape)
        if not out.truncated:
            return obs, rews, np.zeros(self.num_envs, dtype=bool), [{} for _ in obs]
        infos: list[dict[str, Any]] = [
            {"TimeLimit.truncated": True, "terminal_observation": o} for o in obs
        ]
        new = core.reset(self._seed_list([None] * self.n_copies)).reshape(self._obs_shape)
        return new, rews, np.ones(self.num_envs, dtype=bool), infos

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if isinstance(self.core, ShardedCore):
            self.core.close()

    def get_attr(self, attr_name: str, indices: sb3.VecEnvIndices = None) -> list[Any]:
        """``attr_name`` of the batched core, once per slot (``render_mode``: None)."""
        value = None if attr_name == "render_mode" else getattr(self.core, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: sb3.VecEnvIndices = None) -> None:
        """Attributes of the copies cannot be set one by one (they share one core)."""
        raise AttributeError(f"BatchedVecEnv cannot set {attr_name!r} per slot")

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: sb3.VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of the batched core once; return its result for every slot."""
        result = getattr(self.core, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: sb3.VecEnvIndices = None
    ) -> list[bool]:
        """No copy is a gymnasium wrapper."""
        return [False for _ in self._get_indices(indices)]
