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
        assert same(clone._seed_generator(), env._seed_generator())
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
    assert same(fast.policy_rng, slow.policy_rng)
    for _ in range(3):  # later episodes draw their seeds from the seed stream
        monkeypatch.setattr(_jit, "ENABLED", True)
        fast.reset()
        monkeypatch.setattr(_jit, "ENABLED", False)
        slow.reset()
        assert same(fast.policy_rng, slow.policy_rng)
    assert same(fast._seed_generator(), slow._seed_generator())


@pytest.mark.parametrize("seed", SEEDS)
def test_draw_seed_is_integers(seed: int) -> None:
    a, b = seeding.np_random(seed)[0], seeding.np_random(seed)[0]
    for _ in range(200):
        assert streams.draw_seed(a) == int(b.integers(2**63))
        assert same(a, b)
