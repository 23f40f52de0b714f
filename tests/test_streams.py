"""mgenv.streams: the env's streams seeded by compiled code equal numpy's and gymnasium's."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from gymnasium.utils import seeding

import mgenv
from mgenv import _jit, streams

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")

SEEDS = [0, 1, 7, 2**31 - 1, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**64, 2**127 + 3, 2**130 + 9]
KEYS = [(), (0,), (5,), (2, 0), (3, 1, 4), (2**32 + 1,), (2**70, 2)]


def same(a: np.random.Generator, b: np.random.Generator) -> bool:
    return bool(a.bit_generator.state == b.bit_generator.state)


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_words_are_numpys(seed: int) -> None:
    got = streams.seed_words(seed, KEYS)
    for key, row in zip(KEYS, got, strict=True):
        want = np.random.SeedSequence(seed, spawn_key=key).generate_state(4, np.uint64)
        np.testing.assert_array_equal(row, want, err_msg=f"{seed} {key}")


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_stream_is_gymnasiums(seed: int) -> None:
    assert same(streams.seed_stream(seed), seeding.np_random(seed)[0])


def test_seed_stream_leaves_other_seeds_to_gymnasium() -> None:
    assert isinstance(streams.seed_stream(None), np.random.Generator)
    with pytest.raises(Exception, match="greater or equal to zero"):
        streams.seed_stream(-1)


@pytest.mark.parametrize("grandchildren", [(), (0, 0, 1), (2, 0, 0, 0, 0, 3)])
def test_spawn_is_default_rng_spawn(grandchildren: tuple[int, ...]) -> None:
    for seed in SEEDS[:8]:
        got = streams.spawn(seed, 6, grandchildren)
        want = np.random.default_rng(seed).spawn(6)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert same(g, w)
            # their children, precomputed or not, and the ones after
            for gc, wc in zip(g.spawn(4), w.spawn(4), strict=True):
                assert same(gc, wc), (seed, i)
            assert g.bit_generator.seed_seq.n_children_spawned == 4
            assert g.random() == w.random()


def test_env_streams_survive_copy_and_pickle() -> None:
    env = mgenv.parallel_env("default")
    env.reset(seed=5)
    for clone in (copy.deepcopy(env), pickle.loads(pickle.dumps(env))):
        assert same(clone._seed_rng, env._seed_rng)
        assert same(clone.policy_rng, env.policy_rng)
        # the next episode's streams come from the copied seed stream
        a, b = copy.deepcopy(env), clone
        a.reset()
        b.reset()
        assert same(a.policy_rng, b.policy_rng)


def test_env_reset_streams_equal_numpys(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = mgenv.parallel_env("default")
    fast.reset(seed=3)
    monkeypatch.setattr(_jit, "ENABLED", False)
    slow = mgenv.parallel_env("default")
    slow.reset(seed=3)
    assert same(fast._seed_rng, slow._seed_rng) and same(fast.policy_rng, slow.policy_rng)
    for _ in range(3):  # later episodes draw their seeds from the seed stream
        monkeypatch.setattr(_jit, "ENABLED", True)
        fast.reset()
        monkeypatch.setattr(_jit, "ENABLED", False)
        slow.reset()
        assert same(fast.policy_rng, slow.policy_rng)


@pytest.mark.parametrize("seed", SEEDS)
def test_draw_seed_is_integers(seed: int) -> None:
    a, b = seeding.np_random(seed)[0], seeding.np_random(seed)[0]
    for _ in range(200):
        assert streams.draw_seed(a) == int(b.integers(2**63))
        assert same(a, b)


def _numpy_episode(episode_seed: int) -> list[np.random.Generator]:
    return np.random.default_rng(episode_seed).spawn(6)


@pytest.mark.parametrize("seed", [s for s in SEEDS if s < 2**128])
def test_episode_from_a_seed_is_seed_stream_draw_and_spawn(seed: int) -> None:
    ep = streams.episode(seed, from_seed=True)
    gym = seeding.np_random(seed)[0]
    episode_seed = int(gym.integers(2**63))
    assert ep.seed == episode_seed
    want = _numpy_episode(episode_seed)
    for got, w in zip(ep.streams, want[: streams.KEYS], strict=True):
        assert same(got, w)
    assert ep.key_seed == int(want[streams.KEYS].integers(2**63))
    assert same(streams.generator(ep.policy), want[streams.POLICY])
    assert ep.seed_stream is not None
    after = streams.stream_after_draw(ep.seed_stream)
    assert same(after, gym)
    assert after.integers(2**63) == gym.integers(2**63)  # and it goes on alike
    # the network stream's first child was precomputed: the same as numpy's
    assert same(ep.streams[streams.NETWORK].spawn(1)[0], want[streams.NETWORK].spawn(1)[0])


@pytest.mark.parametrize("episode_seed", [0, 1, 2**32 - 1, 2**32, 2**63 - 1, 2**64 + 5, 2**100])
def test_episode_from_an_episode_seed_is_spawn(episode_seed: int) -> None:
    ep = streams.episode(episode_seed)
    want = _numpy_episode(episode_seed)
    assert ep.seed == episode_seed and ep.seed_stream is None
    for got, w in zip(ep.streams, want[: streams.KEYS], strict=True):
        assert same(got, w)
    assert ep.key_seed == int(want[streams.KEYS].integers(2**63))
    assert same(streams.generator(ep.policy), want[streams.POLICY])


def test_episode_without_kernels_is_numpys(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = streams.episode(11)
    monkeypatch.setattr(_jit, "ENABLED", False)
    assert not streams.compiled_seed(11)
    plain = streams.episode(11)
    assert plain.seed == compiled.seed and plain.key_seed == compiled.key_seed
    for a, b in zip(plain.streams, compiled.streams, strict=True):
        assert same(a, b)
    assert isinstance(plain.policy, np.random.Generator)
    assert same(plain.policy, streams.generator(compiled.policy))
    with pytest.raises(ValueError, match="from_seed"):
        streams.episode(11, from_seed=True)


def test_compiled_seed_range() -> None:
    assert streams.compiled_seed(0) and streams.compiled_seed(2**128 - 1)
    for seed in (None, -1, 2**128, True, 3.0, np.int64(3)):
        assert not streams.compiled_seed(seed)


def test_env_builds_its_policy_and_seed_streams_on_first_use() -> None:
    env = mgenv.parallel_env("default")
    with pytest.raises(AttributeError, match="reset"):
        _ = env.policy_rng
    env.reset(seed=4)
    # kept as seed sequences until asked for (pickled so too), then the same generators
    assert isinstance(env._policy_rng, streams.PresetSeedSequence)
    assert isinstance(env._seed_stream, streams.PresetSeedSequence)
    clone = pickle.loads(pickle.dumps(env))
    twin = mgenv.parallel_env("default")
    twin.reset(seed=4)
    first = env.policy_rng
    assert env.policy_rng is first  # built once per episode
    assert same(first, twin.policy_rng) and same(clone.policy_rng, first)
    gym = seeding.np_random(4)[0]
    gym.integers(2**63)
    assert same(env._seed_rng, gym)
    for e in (env, clone, twin):  # a seedless reset draws from the seed stream
        e.reset()
    assert same(env.policy_rng, clone.policy_rng) and same(env.policy_rng, twin.policy_rng)
