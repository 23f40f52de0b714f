"""Stable-Baselines3 vector view of a PettingZoo ``ParallelEnv`` with parameter sharing.

Slot ``c * n_agents + j`` is agent ``agents[j]`` of env copy ``c``; all slots share one space.
Episode ends follow SB3: ``dones[i]``, ``infos[i]["TimeLimit.truncated"]`` when ended by
truncation only (SB3 bootstraps from ``infos[i]["terminal_observation"]``), auto-reset, plus
``infos[i]["episode_kpis"]``. ``seed(s)`` gives copy ``c`` the seed ``s + c`` at the next
``reset()``; auto-resets draw seeds from a generator seeded with it (reproducible whatever the
env does with ``reset(seed=None)``). With ``n_procs > 1`` blocks of copies run in worker
processes (``forkserver``/``spawn``, one ``Pipe`` each) with the same code: same results.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo.utils.env import ParallelEnv
from stable_baselines3.common.vec_env import base_vec_env as sb3

__all__ = ["MarketVecEnv", "SubprocMarketVecEnv"]

EnvFn = Callable[[], ParallelEnv]
Agents = Sequence[str] | None  # slot agents; None: the env's possible_agents
_SEED_HIGH = 2**31 - 1


def _check_agents(
    env: ParallelEnv, agents: Agents
) -> tuple[list[str], gym.Space[Any], gym.Space[Any]]:
    """Return the slot agents of ``env`` and the spaces they all share, or raise ValueError."""
    possible = list(env.possible_agents)
    slots = possible if agents is None else list(agents)
    unknown = [a for a in slots if a not in possible]
    if unknown or not slots or len(set(slots)) != len(slots):
        raise ValueError(f"agents={slots}: unknown {unknown} or repeated; valid: {possible}")
    obs_space, act_space = env.observation_space(slots[0]), env.action_space(slots[0])
    for agent in slots[1:]:
        other_obs, other_act = env.observation_space(agent), env.action_space(agent)
        if other_obs != obs_space or other_act != act_space:
            raise ValueError(
                f"parameter sharing needs identical spaces for all slot agents, "
                f"but {slots[0]!r} has observation {obs_space} / action {act_space}"
                f" and {agent!r} has observation {other_obs} / action {other_act};"
                " pass agents=[...] with the agents of one role"
            )
    return slots, obs_space, act_space


class _CopyGroup:
    """A block of env copies (built by ``env_fns``) stepped in sequence; a worker owns one."""

    def __init__(self, env_fns: Sequence[EnvFn], agents: Agents) -> None:
        self.envs = [fn() for fn in env_fns]
        if len({id(env) for env in self.envs}) != len(self.envs):
            raise ValueError("env_fns returned one env instance twice; each must build a new env")
        checks = [_check_agents(env, agents) for env in self.envs]
        if any(check != checks[0] for check in checks):
            raise ValueError(f"env copies differ in agents or spaces: {checks}")
        self.agents, self.obs_space, self.act_space = checks[0]
        env = self.envs[0]
        self.meta = (*checks[0], getattr(env, "render_mode", None), dict(env.metadata))
        n_slots = len(self.envs) * len(self.agents)
        self.obs = np.zeros((n_slots, *(self.obs_space.shape or ())), dtype=self.obs_space.dtype)
        self.rews = np.zeros((n_slots,), dtype=np.float32)
        self.dones = np.zeros((n_slots,), dtype=bool)
        self._reseed: list[np.random.Generator | None] = [None] * len(self.envs)

    def reset(
        self, seeds: Sequence[int | None], options: Sequence[dict[str, Any]]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Reset every copy; return slot observations ``(n_slots, *obs)`` and reset infos."""
        infos = [self._reset_copy(c, seeds[c], options[c]) for c in range(len(self.envs))]
        return self.obs, [dict(copy_infos.get(a, {})) for copy_infos in infos for a in self.agents]

    def _reset_copy(
        self, c: int, seed: int | None, options: dict[str, Any] | None
    ) -> dict[str, Any]:
        if seed is not None:
            self._reseed[c] = np.random.default_rng(seed)
        elif (rng := self._reseed[c]) is not None:
            seed = int(rng.integers(_SEED_HIGH))
        obs, infos = self.envs[c].reset(seed=seed, options=options or None)
        k = len(self.agents)
        self.obs[c * k : (c + 1) * k] = [obs[a] for a in self.agents]
        return dict(infos)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every copy with slot actions ``(n_slots, *act)``; reset the ended ones."""
        k = len(self.agents)
        infos: list[dict[str, Any]] = []
        for c, env in enumerate(self.envs):
            base = c * k
            block = np.array(actions[base : base + k])  # the env may keep its action arrays
            acts = {a: block[j] for j, a in enumerate(self.agents)}
            obs, rews, terms, truncs, env_infos = env.step(acts)
            ended = [bool(terms[a] or truncs[a]) for a in self.agents]
            if any(ended) != all(ended):
                raise RuntimeError(f"agents {self.agents} must end together, got {ended}")
            done = ended[0]
            kpis = env.episode_kpis() if done and hasattr(env, "episode_kpis") else None
            for agent in self.agents:
                info = dict(env_infos.get(agent, {}))
                info["TimeLimit.truncated"] = bool(truncs[agent] and not terms[agent])
                if done:
                    info["terminal_observation"] = np.array(obs[agent], dtype=self.obs.dtype)
                    if kpis is not None:
                        info["episode_kpis"] = kpis
                infos.append(info)
            self.rews[base : base + k] = [rews[a] for a in self.agents]
            self.dones[base : base + k] = done
            if done:
                self._reset_copy(c, None, None)
            else:
                self.obs[base : base + k] = [obs[a] for a in self.agents]
        return self.obs, self.rews, self.dones, infos

    def call(self, cmd: str, data: Any) -> Any:
        """Run one command (the protocol shared by the in-process and worker backends)."""
        if cmd == "step":
            return self.step(data)
        if cmd == "reset":
            return self.reset(*data)
        if cmd == "close":
            return [env.close() for env in self.envs]
        if cmd == "meta":
            return self.meta
        name, envs = data[0], [self.envs[c] for c in data[-1]]
        ops: dict[str, Callable[[Any], Any]] = {
            "get_attr": lambda env: getattr(env, name),
            "set_attr": lambda env: setattr(env, name, data[1]),
            "env_method": lambda env: getattr(env, name)(*data[1], **data[2]),
            "is_wrapped": lambda env: (
                isinstance(getattr(env, "unwrapped", env), name) or isinstance(env, name)
            ),
            "render": lambda env: env.render(),
        }
        if cmd in ops:
            return [ops[cmd](env) for env in envs]
        raise ValueError(f"unknown command {cmd!r}")


class _Server:
    """Answers commands on a ``_CopyGroup``; in workers, and as the in-process "pipe"."""

    def __init__(self, env_fns: Sequence[EnvFn], agents: Agents) -> None:
        self.env_fns, self.agents = env_fns, agents
        self.group: _CopyGroup | None = None
        self.answer: tuple[str, Any] = ("ok", None)

    def send(self, message: tuple[str, Any]) -> None:
        try:
            if self.group is None and message[0] != "close":
                self.group = _CopyGroup(self.env_fns, self.agents)
            self.answer = ("ok", self.group.call(*message) if self.group else None)
        except Exception as exc:  # answered to the parent, which re-raises it
            self.answer = ("error", exc)

    def recv(self) -> tuple[str, Any]:
        return self.answer

    def close(self) -> None:
        self.group = None


def _worker(remote: Connection, parent: Connection, env_fns: Any, agents: Agents) -> None:
    """Serve ``_CopyGroup`` commands over a pipe until told to close."""
    parent.close()
    server = _Server(env_fns.var, agents)
    while True:
        try:
            message = remote.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            break
        server.send(message)
        status, value = server.recv()
        if status == "error":  # re-raised by the parent: keep the worker's traceback
            value.add_note("in worker process:\n" + "".join(traceback.format_exception(value)))
        try:
            remote.send((status, value))
        except Exception:  # pickling failed (before anything was written): send the text
            remote.send(("error", RuntimeError("".join(traceback.format_exception(value)))))
        if message[0] == "close":
            break
    remote.close()


def _start_workers(
    blocks: list[list[EnvFn]], agents: Agents, start_method: str | None
) -> tuple[list[Any], list[Any]]:
    """Start one worker process per block of copies; return their pipes and processes."""
    if start_method is None:
        start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx: Any = mp.get_context(start_method)
    remotes: list[Any] = []
    procs: list[Any] = []
    for block in blocks:
        remote, work_remote = ctx.Pipe()
        wrapped = sb3.CloudpickleWrapper(block)
        proc = ctx.Process(target=_worker, args=(work_remote, remote, wrapped, agents), daemon=True)
        proc.start()
        work_remote.close()
        remotes.append(remote)
        procs.append(proc)
    return remotes, procs


class MarketVecEnv(sb3.VecEnv):
    """SB3 ``VecEnv`` over copies of a ``ParallelEnv``, one slot per (copy, learning agent).

    Args:
        env_fns: One constructor per env copy; each call must build a new env.
        agents: Slot agents in slot order, all with identical spaces (default: the env's
            ``possible_agents``); a ``ValueError`` names the agents whose spaces differ.
        n_procs: 1 steps every copy in this process; ``n > 1`` runs ``min(n, len(env_fns))``
            worker processes, each with a contiguous block of copies.
        start_method: Start method for workers (default ``forkserver``, else ``spawn``).
    """

    _always_subprocess = False

    def __init__(
        self,
        env_fns: list[EnvFn],
        agents: Agents = None,
        n_procs: int = 1,
        start_method: str | None = None,
    ) -> None:
        if not env_fns or n_procs < 1:
            raise ValueError(f"need env_fns and n_procs >= 1, got {len(env_fns)}, {n_procs}")
        self.n_copies, self.closed = len(env_fns), False
        bounds = np.linspace(0, self.n_copies, min(n_procs, self.n_copies) + 1).round()
        self._copy_ranges = [range(int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds)]
        blocks = [[env_fns[c] for c in r] for r in self._copy_ranges]
        self._remotes: list[Any] = [_Server(blocks[0], agents)]
        self._procs: list[Any] = []
        try:
            if n_procs > 1 or self._always_subprocess:
                self._remotes, self._procs = _start_workers(blocks, agents, start_method)
            metas = self._broadcast("meta")
            if any(meta[:3] != metas[0][:3] for meta in metas):
                raise ValueError(f"env copies differ in agents or spaces: {metas}")
        except BaseException:
            self.close()
            raise
        self.agents, obs_space, act_space, _, metadata = metas[0]
        super().__init__(self.n_copies * len(self.agents), obs_space, act_space)
        self.metadata = {**metadata, **self.metadata}
        self._obs = np.zeros((self.num_envs, *(obs_space.shape or ())), dtype=obs_space.dtype)
        self._rews = np.zeros((self.num_envs,), dtype=np.float32)
        self._dones = np.zeros((self.num_envs,), dtype=bool)
        self._infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        self._actions = np.zeros((self.num_envs, *(act_space.shape or ())), dtype=act_space.dtype)
        self._copy_seeds: list[int | None] = [None] * self.n_copies

    def _gather(self) -> list[Any]:
        """Wait for every worker's answer; re-raise the first worker exception."""
        try:
            answers = [remote.recv() for remote in self._remotes]
        except (EOFError, ConnectionError) as exc:
            raise RuntimeError(
                "an env worker died; with forkserver/spawn the main script must "
                "guard its code with `if __name__ == '__main__':`"
            ) from exc
        for status, value in answers:
            if status == "error":
                raise value
        return [value for _, value in answers]

    def _broadcast(self, cmd: str, per_worker: Sequence[Any] | None = None) -> list[Any]:
        """Run ``cmd`` on every worker (data ``per_worker[w]``); return the answers."""
        for w, remote in enumerate(self._remotes):
            remote.send((cmd, per_worker[w] if per_worker is not None else None))
        return self._gather()

    def _slots(self, w: int) -> slice:
        """Slots of worker ``w``'s copies."""
        r, k = self._copy_ranges[w], len(self.agents)
        return slice(r.start * k, r.stop * k)

    def _per_copy(
        self, cmd: str, name: Any, extra: tuple[Any, ...], indices: sb3.VecEnvIndices
    ) -> list[Any]:
        """Run an attribute command once per copy behind ``indices``; return one value per slot."""
        k = len(self.agents)
        slots = list(self._get_indices(indices))
        copies = sorted({s // k for s in slots})
        per_worker = [
            (name, *extra, [c - r.start for c in copies if c in r]) for r in self._copy_ranges
        ]
        by_copy: dict[int, Any] = {}
        for r, data, values in zip(
            self._copy_ranges, per_worker, self._broadcast(cmd, per_worker), strict=True
        ):
            by_copy.update({r.start + c: v for c, v in zip(data[-1], values, strict=True)})
        return [by_copy[s // k] for s in slots]

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Give copy ``c`` the seed ``seed + c`` at the next ``reset()``; return slot seeds."""
        if seed is None:
            seed = int(np.random.default_rng().integers(_SEED_HIGH))
        self._copy_seeds = [seed + c for c in range(self.n_copies)]
        k = len(self.agents)
        return [self._copy_seeds[s // k] for s in range(self.num_envs)]

    def reset(self) -> sb3.VecEnvObs:
        """Reset every copy (with the seeds and options set since the last reset)."""
        k = len(self.agents)
        per_worker = [
            ([self._copy_seeds[c] for c in r], [self._options[c * k] for c in r])
            for r in self._copy_ranges
        ]
        for w, (obs, infos) in enumerate(self._broadcast("reset", per_worker)):
            self._obs[self._slots(w)] = obs
            self.reset_infos[self._slots(w)] = infos
        self._copy_seeds = [None] * self.n_copies
        self._reset_seeds()
        self._reset_options()
        return self._obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        """Send the slot actions ``(num_envs, *action_shape)`` to the copies."""
        self._actions[...] = np.reshape(actions, self._actions.shape)
        for w in range(len(self._copy_ranges)):
            self._remotes[w].send(("step", self._actions[self._slots(w)]))

    def step_wait(self) -> sb3.VecEnvStepReturn:
        """Wait for the step; return copies of observations, rewards, dones and the infos."""
        for w, (obs, rews, dones, infos) in enumerate(self._gather()):
            sl = self._slots(w)
            self._obs[sl], self._rews[sl], self._dones[sl] = obs, rews, dones
            self._infos[sl] = infos
        return self._obs.copy(), self._rews.copy(), self._dones.copy(), list(self._infos)

    def close(self) -> None:
        """Close every copy and stop the workers."""
        if self.closed:
            return
        for remote in self._remotes:
            with contextlib.suppress(OSError, EOFError):  # a worker that already died
                remote.send(("close", None))
                remote.recv()
            remote.close()
        for proc in self._procs:
            proc.join(timeout=10)
        self.closed = True

    def get_attr(self, attr_name: str, indices: sb3.VecEnvIndices = None) -> list[Any]:
        """Return ``attr_name`` of the env copy behind each slot (one value per slot)."""
        return self._per_copy("get_attr", attr_name, (), indices)

    def set_attr(self, attr_name: str, value: Any, indices: sb3.VecEnvIndices = None) -> None:
        """Set ``attr_name`` once on each env copy behind ``indices``."""
        self._per_copy("set_attr", attr_name, (value,), indices)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: sb3.VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method once per env copy behind ``indices``; return one result per slot."""
        return self._per_copy("env_method", method_name, (method_args, method_kwargs), indices)

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: sb3.VecEnvIndices = None
    ) -> list[bool]:
        """Return whether the env copy behind each slot is (or wraps) a ``wrapper_class``."""
        return self._per_copy("is_wrapped", wrapper_class, (), indices)

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Return one rendered image per slot (the copy's image, rendered once per copy)."""
        return self._per_copy("render", None, (), None)


class SubprocMarketVecEnv(MarketVecEnv):
    """``MarketVecEnv`` with copies in (cloudpickled) workers; ``n_procs``: CPU count."""

    _always_subprocess = True

    def __init__(
        self,
        env_fns: list[EnvFn],
        agents: Agents = None,
        n_procs: int | None = None,
        start_method: str | None = None,
    ) -> None:
        n = n_procs if n_procs is not None else (os.cpu_count() or 1)
        super().__init__(env_fns, agents, n_procs=n, start_method=start_method)
