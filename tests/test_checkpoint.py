"""Checkpoints and determinism: deepcopy / pickle mid-episode continue identically; the same
seed gives the same episode in another process; different seeds differ."""

from __future__ import annotations

import copy
import hashlib
import pickle
import subprocess
import sys

import numpy as np
import pytest

import mgenv


def _actions(env, n, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {
            a: rng.uniform(-1, 1, env.action_space(a).shape).astype(np.float32)
            for a in env.possible_agents
        }
        for _ in range(n)
    ]


def _finish(env, actions):
    out = []
    for act in actions:
        obs, rewards, *_ = env.step(act)
        out.append((obs, rewards, env.core.chain.ledger.head_hash))
    return out


@pytest.mark.parametrize("scenario", mgenv.scenarios.names())
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copy_mid_episode_continues_identically(scenario, how):
    env = mgenv.parallel_env(scenario)
    env.reset(seed=11)
    acts = _actions(env, env.config.horizon)
    half = env.config.horizon // 2
    _finish(env, acts[:half])
    twin = copy.deepcopy(env) if how == "deepcopy" else pickle.loads(pickle.dumps(env))
    a, b = _finish(env, acts[half:]), _finish(twin, acts[half:])
    for (o1, r1, h1), (o2, r2, h2) in zip(a, b, strict=True):
        assert r1 == r2 and h1 == h2
        for k in o1:
            np.testing.assert_array_equal(o1[k], o2[k])


def _digest(seed: int) -> str:
    env = mgenv.parallel_env("default")
    env.reset(seed=seed)
    h = hashlib.sha256()
    for act in _actions(env, env.config.horizon):
        obs, rewards, *_ = env.step(act)
        for a in sorted(obs):
            h.update(obs[a].tobytes())
            h.update(np.float64(rewards[a]).tobytes())
    h.update(env.core.chain.ledger.head_hash)
    return h.hexdigest()


def test_same_seed_same_episode_across_processes_and_seeds_differ():
    code = "from tests.test_checkpoint import _digest; print(_digest(5))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    ).stdout.strip()
    assert other == _digest(5)
    assert _digest(6) != _digest(5)
