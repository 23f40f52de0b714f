"""The batched core and its SB3 view against B separate single envs: identical, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import mgenv
from mgenv import _jit
from mgenv.batched import BatchedCore, BatchedVecEnv
from mgenv.wrappers.sb3_vec import MarketVecEnv

CASES: list[tuple[str, dict[str, Any]]] = [
    ("sbet-default", {}),
    ("pbft", {"protocol": "pbft", "n_nodes": 4}),
    ("ideal", {"protocol": "ideal"}),
    ("sbet-lossy", {"message_loss": 0.3, "availability": 0.7}),
    ("pbft-7-lossy", {"protocol": "pbft", "n_nodes": 7, "message_loss": 0.2}),
    ("16-mg", {"n_microgrids": 16, "n_users": 3, "n_aggregators": 3}),
    (
        "sbet-adversaries",
        {"n_nodes": 8, "malicious_share": 0.25, "withhold_share": 0.25, "missing_share": 0.25},
    ),
    ("sbet-all-lost", {"message_loss": 1.0}),
    ("sbet-outages", {"availability": 0.4, "mean_outage_periods": 3.0}),
    ("fixed-quotes-opponents", {"opponent_policy": "fixed_quotes"}),
    ("grid-only-opponents", {"opponent_policy": "grid_only", "protocol": "pbft"}),
]


def _actions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random actions, with some exactly at and beyond the bounds (clipping)."""
    a = rng.uniform(-1.2, 1.2, shape).astype(np.float32)
    a[rng.random(shape) < 0.05] = 1.0
    a[rng.random(shape) < 0.05] = -1.0
    return a


@pytest.mark.parametrize("jit", [True, False], ids=["kernels", "numpy"])
@pytest.mark.parametrize(("label", "overrides"), CASES, ids=[c[0] for c in CASES])
def test_batched_core_equals_single_envs(
    label: str, overrides: dict[str, Any], jit: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two episodes of B copies: observations, rewards, prices equal B ParallelEnvs exactly.

    Both paths (``_jit.ENABLED`` on and off, for the batched core and the single envs).
    """
    del label
    monkeypatch.setattr(_jit, "ENABLED", jit and _jit.ENABLED)
    n_copies, seeds = 5, [11, 12, 13, 14, 15]
    envs = [mgenv.parallel_env("default", **overrides) for _ in range(n_copies)]
    core = BatchedCore(envs[0].config, n_copies)
    rng = np.random.default_rng(0)
    nm = envs[0].config.n_microgrids
    for episode in range(2):
        ep_seeds: list[int | None] = seeds if episode == 0 else [None] * n_copies
        obs = core.reset(ep_seeds)
        singles = [env.reset(seed=s)[0] for env, s in zip(envs, ep_seeds, strict=True)]
        for b in range(n_copies):
            expected = np.stack([singles[b][f"mg_{i}"] for i in range(nm)])
            np.testing.assert_array_equal(obs[b], expected)
        for _ in range(envs[0].config.horizon):
            acts = _actions(rng, (n_copies, nm, core.action_dim))
            out = core.step(acts)
            for b, env in enumerate(envs):
                o, r, _, trunc, infos = env.step({f"mg_{i}": acts[b, i] for i in range(nm)})
                assert out.obs[b].dtype == np.float32
                np.testing.assert_array_equal(
                    out.obs[b], np.stack([o[f"mg_{i}"] for i in range(nm)])
                )
                np.testing.assert_array_equal(out.reward[b], [r[f"mg_{i}"] for i in range(nm)])
                assert out.price[b] == infos["mg_0"]["clearing_price"]
                assert out.truncated == trunc["mg_0"]
        assert out.truncated


def test_batched_vec_env_equals_market_vec_env() -> None:
    """The SB3 views agree over auto-resets: obs, rewards, dones, terminal observations."""
    n_copies = 3
    single = MarketVecEnv([lambda: mgenv.parallel_env("default") for _ in range(n_copies)])
    batched = BatchedVecEnv("default", n_copies=n_copies)
    assert batched.num_envs == single.num_envs
    assert batched.observation_space == single.observation_space
    assert batched.action_space == single.action_space
    single.seed(7)
    batched.seed(7)
    np.testing.assert_array_equal(batched.reset(), single.reset())
    rng = np.random.default_rng(1)
    for _ in range(2 * 24 + 3):
        acts = _actions(rng, (single.num_envs, *single.action_space.shape))
        o1, r1, d1, i1 = single.step(acts)
        o2, r2, d2, i2 = batched.step(acts)
        np.testing.assert_array_equal(o2, o1)
        np.testing.assert_array_equal(r2, r1)
        np.testing.assert_array_equal(d2, d1)
        for a, b in zip(i1, i2, strict=True):
            assert b.get("TimeLimit.truncated", False) == a.get("TimeLimit.truncated", False)
            if "terminal_observation" in a:
                np.testing.assert_array_equal(b["terminal_observation"], a["terminal_observation"])
    single.close()


def test_batched_vec_env_passes_sb3_ppo() -> None:
    """SB3 PPO trains a few steps on the batched view."""
    from stable_baselines3 import PPO

    venv = BatchedVecEnv("default", n_copies=2)
    model = PPO("MlpPolicy", venv, n_steps=24, batch_size=48, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=2 * 4 * 24)
    action, _ = model.predict(venv.reset(), deterministic=True)
    assert action.shape == (8, *venv.action_space.shape)


def test_unsupported_config_is_named() -> None:
    """A configuration the batched core cannot run names the field and what is supported."""
    with pytest.raises(ValueError, match=r"chain\.protocol"):
        BatchedCore(mgenv.make_config("default", protocol="spft"), 2)
    with pytest.raises(ValueError, match=r"market\.mechanism"):
        BatchedCore(mgenv.make_config("consortium_p2p"), 2)
    with pytest.raises(ValueError, match="n_copies"):
        BatchedCore(mgenv.make_config("default"), 0)


def test_bad_actions_change_nothing() -> None:
    """A NaN action names copy and agent; a wrong shape is refused; the state is unchanged."""
    core = BatchedCore(mgenv.make_config("default"), 2)
    obs = core.reset([1, 2])
    acts = np.zeros((2, 4, core.action_dim))
    acts[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="copy 1: action of mg_2"):
        core.step(acts)
    with pytest.raises(ValueError, match="expected"):
        core.step(np.zeros((2, 3, core.action_dim)))
    assert core.t == 0
    np.testing.assert_array_equal(core.mg_observations(), obs)


def test_bench_batched_prints_table(capsys: pytest.CaptureFixture[str]) -> None:
    """``mgenv bench batched`` prints a row per B and process count, and the single env.

    (Speed is not asserted.) One process only where B = 1: a shard needs a copy.
    """
    from mgenv.cli import main as cli

    argv = ["bench", "batched", "--copies", "1,3", "--steps", "30", "--repeats", "1"]
    assert cli([*argv, "--processes", "1,2", "--single-steps", "30"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| own")]
    cells = [[c.strip() for c in r.split("|")[2:4]] for r in rows]
    assert cells == [["1", "1"], ["3", "1"], ["3", "2"], ["single env", "1"]]
    assert all(r.count("|") == rows[0].count("|") for r in rows)


def test_other_roles_observations_equal_single_envs() -> None:
    """The aggregators' and users' observations (what baselines may read) match too."""
    envs = [mgenv.parallel_env("default") for _ in range(3)]
    core = BatchedCore(envs[0].config, 3)
    core.reset([5, 6, 7])
    for env, s in zip(envs, [5, 6, 7], strict=True):
        env.reset(seed=s)
    rng = np.random.default_rng(2)
    for _ in range(5):
        acts = _actions(rng, (3, 4, core.action_dim))
        core.step(acts)
        for b, env in enumerate(envs):
            env.step({f"mg_{i}": acts[b, i] for i in range(4)})
    for role in ("mg", "agg", "user"):
        batched = core.role_observations(role)
        for b, env in enumerate(envs):
            np.testing.assert_array_equal(batched[b], env.core.observations((role,))[role])
    with pytest.raises(ValueError, match="role"):
        core.role_observations("grid")
