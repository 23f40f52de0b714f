"""mgenv.episode_draws: a reset's draws from seed words equal the generators' own calls."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest

import mgenv
from mgenv import episode_draws as ed
from mgenv import streams
from mgenv.chain.network import child_stream

pytestmark = pytest.mark.skipif(not ed.AVAILABLE, reason="needs numba")

SEEDS = [0, 1, 7, 12345, 2**32, 2**63 - 1, 2**64 + 5, 2**127 + 3]


def state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [1, 2, 4, 7, 16, 40])
def test_draws_are_the_generators(seed: int, n: int) -> None:
    got = ed.episode_draws(seed, 0, n, 10.0, 0.8, 57, 31)
    seed_rng = streams.seed_stream(seed)
    episode_seed = streams.draw_seed(seed_rng)
    assert got.episode_seed == episode_seed
    weather, load, network, adversary, keys, _ = np.random.default_rng(episode_seed).spawn(6)
    keys_words = streams.seed_words(episode_seed, [(i,) for i in range(6)] + [(2, 0)])
    np.testing.assert_array_equal(got.words, keys_words)
    assert got.key_seed == int(keys.integers(2**63))
    np.testing.assert_array_equal(got.positions, network.uniform(0.0, 10.0, (n, 2)))
    np.testing.assert_array_equal(got.storage, child_stream(network).uniform(0.5, 1.5, n))
    np.testing.assert_array_equal(got.perms[0], adversary.permutation(n))
    np.testing.assert_array_equal(got.perms[1], adversary.permutation(n))
    assert got.cloud == weather.uniform(0.0, 0.8)
    np.testing.assert_array_equal(got.weather_z, weather.standard_normal(57))
    np.testing.assert_array_equal(got.load_z, load.standard_normal(31))
    # from the episode seed directly (reset() without a seed): the same draws
    again = ed.episode_draws(None, episode_seed, n, 10.0, 0.8, 57, 31)
    for a, b in zip(got, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_permutations_follow_numpys_buffered_halves() -> None:
    # an odd number of 32-bit halves leaves one buffered: the second permutation starts
    # from it, as numpy's does (n = 2 uses one half per permutation)
    for seed in range(200):
        adversary = np.random.default_rng(seed).spawn(6)[3]
        got = ed.episode_draws(None, seed, 2, 1.0, 1.0, 0, 0)
        assert got.perms.tolist() == [adversary.permutation(2).tolist() for _ in range(2)]


def run_episodes(fast: bool, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> list[Any]:
    """A few episodes' observations, rewards, infos and end states, seeds mixed."""
    monkeypatch.setattr(ed, "AVAILABLE", fast)
    env = mgenv.parallel_env("default", horizon=6, **overrides)
    rng = np.random.default_rng(0)
    out: list[Any] = []
    for seed in (3, None, 2**70, None, None):
        obs, _ = env.reset(seed=seed)
        out.append(sorted((a, o.tolist()) for a, o in obs.items()))
        out.append(state(env.policy_rng))
        while env.agents:
            acts = {
                a: rng.uniform(-1, 1, env.action_space(a).shape).astype(np.float32)
                for a in env.agents
            }
            obs, rewards, _, _, infos = env.step(acts)
            out.append((sorted((a, o.tolist()) for a, o in obs.items()), rewards, repr(infos)))
        chain = env.core.chain
        out.append(state(chain.protocol._rng) if hasattr(chain.protocol, "_rng") else None)
        out.append(chain.node_heads())
    return out


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"protocol": "pbft"},
        {"protocol": "ideal"},
        {"missing_share": 0.5},
        {"malicious_share": 0.3, "withhold_share": 0.3},
    ],
)
def test_env_reset_from_words_equals_generators(
    overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = run_episodes(True, monkeypatch, **overrides)
    slow = run_episodes(False, monkeypatch, **overrides)
    assert fast == slow


def test_seed_stream_built_when_needed() -> None:
    env = mgenv.parallel_env("default", horizon=2)
    assert not hasattr(env, "policy_rng")  # no stream before the first reset
    env.reset(seed=11)
    assert env._seed_rng is None and env._seed_of == 11  # not built by an int seed
    assert not isinstance(env._policy, np.random.Generator)  # built on first use
    clones = (copy.deepcopy(env), pickle.loads(pickle.dumps(env)))
    want = streams.seed_stream(11)
    streams.draw_seed(want)  # the first episode's seed
    for _ in range(3):
        env.reset()
        for clone in clones:
            clone.reset()
            assert state(clone.policy_rng) == state(env.policy_rng)
        ep = streams.draw_seed(want)
        assert state(env.policy_rng) == state(np.random.default_rng(ep).spawn(6)[5])
    assert state(env._seed_generator()) == state(want)
    with pytest.raises(RuntimeError, match="first reset"):
        mgenv.parallel_env("default")._seed_generator()
