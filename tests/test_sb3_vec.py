"""MarketVecEnv against a tiny toy ParallelEnv (2 agents, fixed horizon 5)."""

from __future__ import annotations

import functools
from contextlib import closing
from typing import Any, ClassVar

import numpy as np
import pytest
from gymnasium.spaces import Box
from pettingzoo.utils.env import ParallelEnv

from mgenv.wrappers.sb3_vec import MarketVecEnv, SubprocMarketVecEnv

HORIZON = 5


class ToyMarket(ParallelEnv):
    """Two bidders guess a random target; observation = (t / horizon, target, agent index).

    Slot layout for 3 copies (slot = copy * 2 + agent):

        slot | copy | agent
        -----+------+------
          0  |  0   | mg_0
          1  |  0   | mg_1
          2  |  1   | mg_0
          ...
    """

    metadata: ClassVar[dict[str, Any]] = {"name": "toy_market_v0", "render_modes": ["ansi"]}

    def __init__(
        self,
        horizon: int = HORIZON,
        terminate_at: int | None = None,
        odd_space: bool = False,
        render_mode: str | None = None,
    ) -> None:
        self.possible_agents = ["mg_0", "mg_1"]
        self.agents: list[str] = []
        self.horizon, self.terminate_at, self.render_mode = horizon, terminate_at, render_mode
        self._obs_spaces = {a: Box(-10.0, 10.0, (3,), np.float32) for a in self.possible_agents}
        if odd_space:
            self._obs_spaces["mg_1"] = Box(-10.0, 10.0, (4,), np.float32)
        self.rng: np.random.Generator | None = None
        self.last_seed: int | None = None
        self.n_resets = 0
        self.t = 0
        self.target = np.zeros(2)

    def observation_space(self, agent: str) -> Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> Box:
        return Box(-1.0, 1.0, (2,), np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            a: np.array([self.t / self.horizon, self.target[i], i], dtype=np.float32)
            for i, a in enumerate(self.possible_agents)
        }

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if seed is not None or self.rng is None:
            self.rng = np.random.default_rng(seed)
        self.last_seed, self.n_resets = seed, self.n_resets + 1
        self.agents, self.t = list(self.possible_agents), 0
        self.target = self.rng.uniform(-1.0, 1.0, size=2)
        return self._obs(), {a: {"seed": seed} for a in self.agents}

    def step(self, actions: dict[str, np.ndarray]) -> Any:
        assert self.rng is not None
        rewards = {
            a: -float((actions[a][0] - self.target[i]) ** 2) for i, a in enumerate(self.agents)
        }
        self.t += 1
        self.target = self.rng.uniform(-1.0, 1.0, size=2)
        term = self.terminate_at is not None and self.t >= self.terminate_at
        trunc = self.t >= self.horizon and not term
        infos = {a: {"profit": rewards[a], "clearing_price": 0.5} for a in self.agents}
        terms = {a: term for a in self.agents}
        truncs = {a: trunc for a in self.agents}
        obs = self._obs()
        if term or trunc:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def episode_kpis(self) -> dict[str, float]:
        return {"t": float(self.t)}

    def render(self) -> str:
        return f"t={self.t}"


def toy_fns(n: int, **kw: Any) -> list[Any]:
    return [functools.partial(ToyMarket, **kw) for _ in range(n)]


def rollout(venv: MarketVecEnv, seed: int, n_steps: int) -> list[np.ndarray]:
    rng = np.random.default_rng(123)
    venv.seed(seed)
    out = [venv.reset()]
    for _ in range(n_steps):
        actions = rng.uniform(-1, 1, size=(venv.num_envs, 2)).astype(np.float32)
        obs, rews, dones, infos = venv.step(actions)
        out += [obs, rews, dones]
        out += [i["terminal_observation"] for i in infos if "terminal_observation" in i]
    return out


def test_slot_layout_and_spaces() -> None:
    with closing(MarketVecEnv(toy_fns(3))) as venv:
        assert venv.num_envs == 6 and venv.agents == ["mg_0", "mg_1"]
        assert venv.observation_space == Box(-10.0, 10.0, (3,), np.float32)
        venv.seed(10)
        obs = venv.reset()
        assert obs.shape == (6, 3) and obs.dtype == np.float32
        for c in range(3):
            ref, _ = ToyMarket().reset(seed=10 + c)
            for j, agent in enumerate(venv.agents):
                np.testing.assert_array_equal(obs[2 * c + j], ref[agent])
        assert venv.get_attr("last_seed") == [10, 10, 11, 11, 12, 12]


def test_agent_subset_order_and_errors() -> None:
    with pytest.raises(ValueError, match=r"'mg_0'.*'mg_1'.*agents=\[\.\.\.\]"):
        MarketVecEnv(toy_fns(1, odd_space=True))
    with pytest.raises(ValueError, match=r"unknown \['agg_0'\].*valid: \['mg_0', 'mg_1'\]"):
        MarketVecEnv(toy_fns(1), agents=["agg_0"])
    with closing(MarketVecEnv(toy_fns(1), agents=["mg_1", "mg_0"])) as venv:
        assert venv.reset()[:, 2].tolist() == [1.0, 0.0]
    same = ToyMarket()
    with pytest.raises(ValueError, match="one env instance twice"):
        MarketVecEnv([lambda: same, lambda: same])


def test_seed_reproducible_and_distinct() -> None:
    def run(seed: int) -> list[np.ndarray]:
        with closing(MarketVecEnv(toy_fns(2))) as venv:
            return rollout(venv, seed, 3 * HORIZON)

    first, again, other = run(7), run(7), run(8)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_auto_reset_after_horizon_is_a_time_limit() -> None:
    with closing(MarketVecEnv(toy_fns(2))) as venv:
        venv.seed(0)
        venv.reset()
        actions = np.zeros((4, 2), dtype=np.float32)
        for _ in range(HORIZON - 1):
            _, _, dones, infos = venv.step(actions)
            assert not dones.any() and not any(i["TimeLimit.truncated"] for i in infos)
        obs, rews, dones, infos = venv.step(actions)
        assert dones.all() and rews.dtype == np.float32
        for slot, info in enumerate(infos):
            assert info["TimeLimit.truncated"] is True
            assert info["terminal_observation"][0] == pytest.approx(1.0)
            assert info["terminal_observation"][2] == slot % 2
            assert info["episode_kpis"] == {"t": float(HORIZON)}
            assert info["profit"] == pytest.approx(rews[slot])
        assert (obs[:, 0] == 0.0).all()  # already the first observation of the next episode
        assert venv.get_attr("n_resets") == [2, 2, 2, 2]


def test_termination_is_not_a_time_limit() -> None:
    with closing(MarketVecEnv(toy_fns(1, terminate_at=3))) as venv:
        venv.reset()
        for _ in range(3):
            _, _, dones, infos = venv.step(np.zeros((2, 2), dtype=np.float32))
        assert dones.all()
        assert all(i["TimeLimit.truncated"] is False and "terminal_observation" in i for i in infos)


def test_attr_methods_per_copy() -> None:
    with closing(MarketVecEnv(toy_fns(2, render_mode="ansi"))) as venv:
        assert venv.render_mode == "ansi"
        venv.reset()
        venv.set_attr("horizon", 9, indices=[2, 3])
        assert venv.get_attr("horizon") == [HORIZON, HORIZON, 9, 9]
        assert venv.env_method("render", indices=[0, 1, 2]) == ["t=0"] * 3
        assert venv.env_is_wrapped(ToyMarket) == [True] * 4
        assert venv.env_is_wrapped(SubprocMarketVecEnv) == [False] * 4  # type: ignore[arg-type]
        assert venv.has_attr("episode_kpis") and not venv.has_attr("nope")


def test_ppo_learns_with_seed() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    with closing(MarketVecEnv(toy_fns(2))) as venv:
        model = PPO(
            "MlpPolicy",
            VecMonitor(venv),
            n_steps=32,
            batch_size=64,
            n_epochs=1,
            seed=0,
            device="cpu",
        )
        model.learn(256)
        assert model.num_timesteps >= 256
        assert len(model.ep_info_buffer) > 0


@pytest.mark.parametrize(
    "start_method", ["forkserver", pytest.param("spawn", marks=pytest.mark.slow)]
)
def test_subprocess_equals_in_process(start_method: str) -> None:
    with closing(MarketVecEnv(toy_fns(3))) as local:
        expected = rollout(local, 5, 2 * HORIZON + 1)
        expected_attr = local.get_attr("n_resets")
    with closing(SubprocMarketVecEnv(toy_fns(3), n_procs=2, start_method=start_method)) as procs:
        assert procs.num_envs == 6
        got = rollout(procs, 5, 2 * HORIZON + 1)
        assert procs.get_attr("n_resets") == expected_attr
        assert procs.get_attr("last_seed", indices=[4]) == local_seed_after(5, 2)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)


def local_seed_after(seed: int, copy: int) -> list[int]:
    """Seed the third copy drew for its third episode (two auto-resets after reset)."""
    rng = np.random.default_rng(seed + copy)
    rng.integers(2**31 - 1)
    return [int(rng.integers(2**31 - 1))]


def test_subprocess_errors_propagate() -> None:
    with pytest.raises(ValueError, match="identical spaces"):
        SubprocMarketVecEnv(toy_fns(1, odd_space=True), n_procs=1)
