"""Batched stream seeding against numpy's and gymnasium's own: same generators, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import error as gym_error
from gymnasium.utils import seeding

import mgenv
from mgenv.batched import BatchedCore
from mgenv.batched.streams import (
    STREAM_KEYS,
    EpisodeBatch,
    EpisodeStreams,
    entropy_words,
    episode_seed,
    episode_streams,
    generate_words,
    pcg64_words,
    seed_pools,
    seed_streams,
)
from mgenv.chain.network import child_stream
from mgenv.streams import PresetSeedSequence, int_words

EDGE_SEEDS = [0, 1, 2, 2**31 - 2, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1]


def _seeds(n: int, rng: np.random.Generator) -> list[int]:
    """Edge seeds first, then random ones of every magnitude below 2**63."""
    bits = rng.integers(1, 64, n)
    rand = [int(rng.integers(0, 2 ** int(b) - 1, endpoint=True)) for b in bits]
    return (EDGE_SEEDS + rand)[:n]


def _draws(gen: np.random.Generator) -> list[np.ndarray]:
    """A mix of draws touching every path a stream is used with (doubles, normals, ints)."""
    return [
        gen.random(5),
        gen.standard_normal(3),
        gen.integers(0, 1000, 4),
        gen.uniform(-1.0, 2.0, 3),
        np.array([gen.integers(2**63)]),
        gen.integers(0, 7, 3, dtype=np.int32),  # 32-bit path: leaves a buffered half
        gen.random(2),
    ]


def _assert_same(gen: np.random.Generator, ref: np.random.Generator) -> None:
    """Same state now, same draws after, same state after (both generators are advanced)."""
    assert gen.bit_generator.state == ref.bit_generator.state
    for a, b in zip(_draws(gen), _draws(ref), strict=True):
        assert a.dtype == b.dtype
        assert np.array_equal(a, b)
    assert gen.bit_generator.state == ref.bit_generator.state


def _reference_streams(seed_rng: np.random.Generator) -> EpisodeStreams:
    """MarketEnv.reset's derivation, literally (mgenv/env.py)."""
    root = np.random.default_rng(int(seed_rng.integers(2**63)))
    kids = root.spawn(6)
    return EpisodeStreams(*(kids[k] for k in STREAM_KEYS))


# ---------------------------------------------------------------- SeedSequence arithmetic
def test_int_words_equal_numpy() -> None:
    from numpy.random.bit_generator import _coerce_to_uint32_array  # type: ignore[attr-defined]

    rng = np.random.default_rng(0)
    values = [
        0,
        1,
        2**32 - 1,
        2**32,
        2**64,
        2**200 + 3,
        *(int(v) for v in rng.integers(0, 2**62, 20)),
    ]
    for v in values:
        assert int_words(v) == _coerce_to_uint32_array(v).tolist()
    with pytest.raises(ValueError, match="non-negative"):
        int_words(-1)


@pytest.mark.parametrize(
    "key", [(), (0,), (5,), (2, 0), (3, 1, 4), (2**32 + 7,), (2**40, 0, 2**33)], ids=str
)
def test_pools_and_words_equal_seed_sequence(key: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    values = [*_seeds(60, rng), 2**64 - 1, 2**64, 2**100 + 12345, 2**128 - 1]
    pools = seed_pools(entropy_words(values), [key, (1,)])
    assert pools.shape == (len(values), 2, 4) and pools.dtype == np.uint32
    for v, pool in zip(values, pools, strict=True):
        seq = np.random.SeedSequence(v, spawn_key=key)
        assert np.array_equal(pool[0], seq.pool)
        assert np.array_equal(pool[1], np.random.SeedSequence(v, spawn_key=(1,)).pool)
        for n in (1, 4, 7, 8, 13):
            assert np.array_equal(generate_words(pool[0], n), seq.generate_state(n))
        want = seq.generate_state(4, np.uint64)
        assert pcg64_words(pool[0]).dtype == want.dtype
        assert np.array_equal(pcg64_words(pool[0]), want)


def test_entropy_words_limits() -> None:
    with pytest.raises(ValueError, match="2\\*\\*128"):
        entropy_words([1, 2**128])
    assert entropy_words([]).shape == (0, 4)


# ---------------------------------------------------------------- PresetSeedSequence
def test_preset_seed_sequence_behaves_as_numpy() -> None:
    entropy, key = 2**62 + 99, (2,)
    ref = np.random.SeedSequence(entropy, spawn_key=key)
    words = pcg64_words(seed_pools(entropy_words([entropy]), [key, (*key, 0)]))[0]
    seq = PresetSeedSequence(entropy, key, words[0], (words[1],))
    assert seq.state == ref.state
    assert np.array_equal(seq.pool, ref.pool)
    requests: list[tuple[int, Any]] = [
        (4, np.uint64),
        (4, "uint64"),
        (4, np.uint32),
        (3, np.uint64),
        (9, np.uint32),
    ]
    for n, dtype in requests:
        got, want = seq.generate_state(n, dtype), ref.generate_state(n, dtype)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    # The preset words are handed out as copies: mutating one does not change the next.
    seq.generate_state(4, np.uint64)[:] = 0
    assert np.array_equal(seq.generate_state(4, np.uint64), ref.generate_state(4, np.uint64))
    # Spawning: the preset first child, then computed ones; counters as numpy's.
    for n in (1, 0, 2, 1):
        kids, ref_kids = seq.spawn(n), ref.spawn(n)
        assert seq.n_children_spawned == ref.n_children_spawned
        for kid, ref_kid in zip(kids, ref_kids, strict=True):
            assert kid.state == ref_kid.state
            _assert_same(
                np.random.Generator(np.random.PCG64(kid)),  # type: ignore[arg-type]
                np.random.Generator(np.random.PCG64(ref_kid)),
            )
    with pytest.raises(ValueError, match="non-negative"):
        seq.spawn(-1)
    assert "spawn_key=(2,)" in repr(seq)


# ---------------------------------------------------------------- seed streams
def test_seed_streams_equal_gymnasium() -> None:
    rng = np.random.default_rng(2)
    seeds = [*_seeds(80, rng), True, 2**64 - 1, 2**64, 2**127 + 5, 2**128, 2**200 + 1]
    gens = seed_streams(seeds)
    assert len(gens) == len(seeds)
    for seed, gen in zip(seeds, gens, strict=True):
        _assert_same(gen, seeding.np_random(seed)[0])
    assert seed_streams([]) == []


@pytest.mark.parametrize("bad", [-1, 1.5, np.int64(3)], ids=repr)
def test_seed_streams_reject_what_gymnasium_rejects(bad: object) -> None:
    with pytest.raises(gym_error.Error):
        seeding.np_random(bad)  # type: ignore[arg-type]
    with pytest.raises(gym_error.Error):
        seed_streams([3, bad])  # type: ignore[list-item]


def test_episode_seed_equals_integers() -> None:
    """One raw draw >> 1 is integers(2**63), from any state (also with a buffered half)."""
    rng = np.random.default_rng(3)
    for seed in _seeds(200, rng):
        gen, ref = seeding.np_random(seed)[0], seeding.np_random(seed)[0]
        pre = int(rng.integers(0, 4))
        for g in (gen, ref):
            g.integers(0, 10, pre, dtype=np.int32)  # odd counts leave has_uint32 = 1
        for _ in range(3):
            assert episode_seed(gen) == int(ref.integers(2**63))
            assert gen.bit_generator.state == ref.bit_generator.state


# ---------------------------------------------------------------- episode streams
@pytest.mark.parametrize("n_copies", [1, 3, 256])
def test_episode_streams_equal_market_env(n_copies: int) -> None:
    seeds = _seeds(n_copies, np.random.default_rng(n_copies))
    mine = [seeding.np_random(s)[0] for s in seeds]
    refs = [seeding.np_random(s)[0] for s in seeds]
    for episode in range(2):  # the second episode draws its seed from the advanced stream
        got = episode_streams(mine)
        want = [_reference_streams(r) for r in refs]
        assert len(got) == n_copies
        for g_streams, w_streams, g_seed, w_seed in zip(got, want, mine, refs, strict=True):
            assert g_seed.bit_generator.state == w_seed.bit_generator.state
            for g, w in zip(g_streams, w_streams, strict=True):
                g_seq, w_seq = g.bit_generator.seed_seq, w.bit_generator.seed_seq
                assert g_seq.state == w_seq.state  # type: ignore[attr-defined]
                if episode == 0:
                    _assert_same(g, w)
                else:
                    assert g.bit_generator.state == w.bit_generator.state
            # The chain's child of the network stream, before and after draws of the parent.
            for _ in range(2):
                _assert_same(child_stream(g_streams.network), child_stream(w_streams.network))


def test_episode_batch_builds_streams_on_demand() -> None:
    """EpisodeBatch gives episode_streams's generators by name, each built once, when asked."""
    seeds = [seeding.np_random(s)[0] for s in (5, 6, 7)]
    refs = [_reference_streams(seeding.np_random(s)[0]) for s in (5, 6, 7)]
    batch = EpisodeBatch(seeds)
    assert not batch._built
    for name in ("adversary", "network", "policy", "weather", "load"):
        gens = batch.streams(name)
        assert batch.streams(name) is gens
        for g, ref in zip(gens, refs, strict=True):
            _assert_same(g, getattr(ref, name))
    assert set(batch._built) == set(EpisodeStreams._fields)


def test_episode_streams_differ_between_copies_and_streams() -> None:
    streams = episode_streams([seeding.np_random(s)[0] for s in (5, 6)])
    states = {str(g.bit_generator.state) for s in streams for g in s}
    assert len(states) == 2 * len(STREAM_KEYS)


# ---------------------------------------------------------------- BatchedCore.reset
def test_core_reset_streams_follow_seeds() -> None:
    """Int seeds re-seed a copy, None draws on; policy streams as MarketEnv.reset derives them."""
    n_copies = 4
    core = BatchedCore(mgenv.make_config("default"), n_copies)
    refs: list[np.random.Generator | None] = [None] * n_copies
    plans: list[list[int | None]] = [[10, 11, 12, 13], [None, 7, None, None], [None] * 4]
    for seeds in plans:
        core.reset(seeds)
        for b, seed in enumerate(seeds):
            if seed is not None:
                refs[b] = seeding.np_random(seed)[0]
        for b, ref in enumerate(refs):
            assert ref is not None
            want = _reference_streams(ref)
            assert core.policy_rngs[b].bit_generator.state == want.policy.bit_generator.state
    unseeded = BatchedCore(mgenv.make_config("default"), 2)
    unseeded.reset([None, 3])
    first = unseeded.policy_rngs[0].bit_generator.state
    assert unseeded.policy_rngs[1].bit_generator.state == (
        _reference_streams(seeding.np_random(3)[0]).policy.bit_generator.state
    )
    unseeded.reset([None, None])  # the OS-entropy copy keeps its seed stream
    assert unseeded.policy_rngs[0].bit_generator.state != first
