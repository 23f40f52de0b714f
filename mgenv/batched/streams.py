"""Every copy's random streams for one reset, with numpy's seeding arithmetic batched over copies.

A single :class:`~mgenv.env.MarketEnv` builds an episode's streams with
``default_rng(episode_seed).spawn(6)``: each child is a
``Generator(PCG64(SeedSequence(episode_seed, spawn_key=(i,))))``. Most of the ~10 us each
child costs is numpy's per-object seeding overhead (``SeedSequence`` mixes its entropy in a
Cython loop under an ``np.errstate`` context, then ``PCG64`` asks it for seed words), paid once
per copy, stream and episode. (:mod:`mgenv.streams` does the same for one env in compiled
code.) Here the arithmetic of ``SeedSequence`` (``mix_entropy`` and
``generate_state`` in numpy's ``random/bit_generator.pyx``) runs as uint32 array operations
over all copies at once, and each stream's ``PCG64`` is built by numpy itself from the
precomputed seed words, handed over by a :class:`PresetSeedSequence`. The generators are
therefore numpy's own, in the same state, with the same future draws, and their seed
sequences spawn the same children as the single env's (the batched chain spawns a child of
each network stream, see :func:`mgenv.chain.network.child_stream`).

The same holds for the per-copy seed streams of ``reset(seed)``: gymnasium's
``seeding.np_random(seed)`` is ``Generator(PCG64(SeedSequence(seed)))``
(:func:`seed_streams`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from gymnasium.utils import seeding
from numpy.typing import NDArray

from mgenv.streams import POOL_SIZE, PresetSeedSequence, generator, int_words

U32 = NDArray[np.uint32]
U64 = NDArray[np.uint64]

_MASK32 = 0xFFFFFFFF
# numpy/random/bit_generator.pyx: hash and mix constants of SeedSequence.
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = np.uint32(0xCA01F9DD), np.uint32(0x4973F715)
_XSHIFT = np.uint32(16)

#: Spawn keys of the streams built here, in ``MarketEnv.reset``'s ``root.spawn(6)`` order
#: (weather, load, network, adversary, keys, policy) without the key stream (4), which the
#: batched chain does not use (it derives no keys).
STREAM_KEYS = (0, 1, 2, 3, 5)
_NETWORK = STREAM_KEYS.index(2)


def _powers(init: int, mult: int, n: int) -> list[int]:
    """``[init, init * mult, init * mult**2, ...]`` modulo 2**32 (n values)."""
    out = [init]
    for _ in range(n - 1):
        out.append(out[-1] * mult & _MASK32)
    return out


# mix_entropy's hash constant: the k-th hashmix call XORs with _HASH_A[k] and multiplies by
# _HASH_A[k + 1]. The pool takes 4 calls, the all-pairs mixing 12, each extra word 4.
_HASH_A = np.array(_powers(_INIT_A, _MULT_A, 64), dtype=np.uint32)
# generate_state's: output word i XORs with _HASH_B[i] and multiplies by _HASH_B[i + 1].
_HASH_B = np.array(_powers(_INIT_B, _MULT_B, 65), dtype=np.uint32)


def _hashmix(value: U32, k: int, n: int = 1) -> U32:
    """SeedSequence's ``hashmix`` as its hash calls k, ..., k + n - 1 (over value's last axis)."""
    v: U32 = (value ^ _HASH_A[k : k + n]) * _HASH_A[k + 1 : k + n + 1]
    return v ^ (v >> _XSHIFT)


def _mix(x: U32, y: U32) -> U32:
    """SeedSequence's ``mix`` of two uint32 arrays (wrapping arithmetic, as the C code)."""
    r: U32 = _MIX_MULT_L * x - _MIX_MULT_R * y
    return r ^ (r >> _XSHIFT)


def entropy_words(values: Sequence[int]) -> U32:
    """Run entropy of N seeds, zero-padded to the pool: shape (N, 4) uint32.

    Zero padding gives the pool numpy mixes for ``SeedSequence(value)`` and for
    ``SeedSequence(value, spawn_key=...)`` alike: with a spawn key numpy pads the entropy with
    zeros explicitly, without one it mixes in ``hashmix(0)`` for missing words, the same thing.

    Args:
        values: N ints, 0 <= value < 2**128.
    """
    if all(0 <= v < 2**64 for v in values):  # the common case, without a Python loop
        v64 = np.array(values, dtype=np.uint64).reshape(-1)
        out = np.zeros((len(v64), POOL_SIZE), dtype=np.uint32)
        out[:, 0] = v64 & np.uint64(_MASK32)
        out[:, 1] = v64 >> np.uint64(32)
        return out
    rows = [int_words(v) for v in values]
    if any(len(r) > POOL_SIZE for r in rows):
        raise ValueError(f"entropy_words needs values < 2**{32 * POOL_SIZE}")
    return np.array([r + [0] * (POOL_SIZE - len(r)) for r in rows], dtype=np.uint32)


def seed_pools(entropy: U32, spawn_keys: Sequence[tuple[int, ...]]) -> U32:
    """``SeedSequence(entropy[n], spawn_key=spawn_keys[s]).pool`` for all n, s: (N, S, 4).

    ``SeedSequence.mix_entropy``: hash the 4 pool words, mix every word into every other,
    then mix each further word (the spawn key's) into all 4. The first two steps depend on the
    entropy only, so they run once per row; a spawn key's words are constants, hashed in
    Python ints.

    Args:
        entropy: Shape (N, 4) uint32, from :func:`entropy_words`.
        spawn_keys: S spawn keys (an empty key: no spawn key).
    """
    pool = _hashmix(entropy, 0, POOL_SIZE)
    k = POOL_SIZE
    for src in range(POOL_SIZE):  # every word into every other, in numpy's order
        dst = [d for d in range(POOL_SIZE) if d != src]
        pool[:, dst] = _mix(pool[:, dst], _hashmix(pool[:, src : src + 1], k, len(dst)))
        k += len(dst)
    out = np.empty((len(entropy), len(spawn_keys), POOL_SIZE), dtype=np.uint32)
    for s, key in enumerate(spawn_keys):
        mixed, j = pool, k
        for word in (w for part in key for w in int_words(part)):
            mixed = _mix(mixed, _hashmix(np.array([word], dtype=np.uint32), j, POOL_SIZE))
            j += POOL_SIZE
        out[:, s] = mixed
    return out


def generate_words(pools: U32, n_words: int) -> U32:
    """``SeedSequence.generate_state(n_words)`` for every pool: (..., 4) -> (..., n_words)."""
    i = np.arange(n_words)
    v: U32 = (pools[..., i % POOL_SIZE] ^ _HASH_B[i]) * _HASH_B[i + 1]
    return v ^ (v >> _XSHIFT)


def pcg64_words(pools: U32) -> U64:
    """The seed words ``PCG64`` takes, ``generate_state(4, np.uint64)``: (..., 4) uint64.

    numpy pairs the 8 uint32 words little-endian (word 2j is the low half of uint64 j).
    """
    w = generate_words(pools, 2 * 4).astype(np.uint64)
    out: U64 = w[..., 0::2] | (w[..., 1::2] << np.uint64(32))
    return out


def seed_streams(seeds: Sequence[int]) -> list[np.random.Generator]:
    """``seeding.np_random(seed)[0]`` for every seed (gymnasium's ``reset(seed)`` stream).

    Seeds that are not ints in [0, 2**128) go through gymnasium itself (which also raises
    its error for invalid ones).
    """
    fast = [i for i, s in enumerate(seeds) if type(s) is int and 0 <= s < 2**128]
    out: list[np.random.Generator | None] = [None] * len(seeds)
    for i, s in enumerate(seeds):
        if type(s) is not int or not 0 <= s < 2**128:
            out[i] = seeding.np_random(s)[0]
    if fast:
        entropy = [seeds[i] for i in fast]
        words = pcg64_words(seed_pools(entropy_words(entropy), [()]))[:, 0]
        for i, seed, w in zip(fast, entropy, words, strict=True):
            out[i] = generator(PresetSeedSequence(seed, (), w))
    return [g for g in out if g is not None]


class EpisodeStreams(NamedTuple):
    """The random streams of one copy's episode, derived exactly as ``MarketEnv.reset``."""

    weather: np.random.Generator
    load: np.random.Generator
    network: np.random.Generator
    adversary: np.random.Generator
    policy: np.random.Generator


def episode_seed(seed_rng: np.random.Generator) -> int:
    """``int(seed_rng.integers(2**63))``, the episode seed ``MarketEnv.reset`` draws.

    numpy draws ``integers(2**63)`` by Lemire's method with range 2**63: one 64-bit draw x,
    result ``(x * 2**63) >> 64 = x >> 1``, and the rejection threshold ``2**63 % 2**63 = 0``
    never rejects. So it is the next raw PCG64 output shifted by one, ~7 times cheaper.
    """
    return int(seed_rng.bit_generator.random_raw()) >> 1


_NAMES = EpisodeStreams._fields  # in STREAM_KEYS order


class EpisodeBatch:
    """Every copy's episode streams by name (:class:`EpisodeStreams` fields), built on demand.

    A stream's B generators are built on the first :meth:`streams` call for its name and
    kept, so a stream nobody asks for (the batched core's ``policy``: none of its opponents
    draws) costs no generators (~2 us each per copy and episode).

    Args:
        seed_rngs: B seed streams; one episode seed is drawn from each at once
            (:func:`episode_seed`).
    """

    def __init__(self, seed_rngs: Sequence[np.random.Generator]) -> None:
        self.seeds = [episode_seed(rng) for rng in seed_rngs]
        keys = [(k,) for k in STREAM_KEYS]
        # (B, S + 1, 4): the streams' PCG64 seed words, then the network stream's first child
        self._words = pcg64_words(seed_pools(entropy_words(self.seeds), [*keys, (2, 0)]))
        self._built: dict[str, list[np.random.Generator]] = {}

    def network_seeds(self) -> tuple[U64, U64]:
        """The network streams' PCG64 seed words and their first children's, (B, 4) uint64.

        ``SeedSequence(seed_b, spawn_key=(2,)).generate_state(4, np.uint64)`` and the same
        of its first child (``BatchedChain.reset``'s ``network_seeds``).
        """
        return self._words[:, _NETWORK], self._words[:, -1]

    def words(self, name: str) -> U64:
        """Each copy's PCG64 seed words of stream ``name``, (B, 4) uint64.

        ``SeedSequence(seed_b, spawn_key=(key,)).generate_state(4, np.uint64)``: what the
        stream's ``PCG64`` is seeded with (for kernels that draw without the generator).
        """
        return np.ascontiguousarray(self._words[:, _NAMES.index(name)])

    def streams(self, name: str) -> list[np.random.Generator]:
        """Copy b's stream ``name`` at [b], as ``default_rng(seed_b).spawn(6)`` gives it."""
        out = self._built.get(name)
        if out is None:
            s = _NAMES.index(name)
            key = (STREAM_KEYS[s],)
            if s == _NETWORK:  # its first child (the batched chain spawns it) preset too
                seqs = [
                    PresetSeedSequence(seed, key, w[s], (w[-1],))
                    for seed, w in zip(self.seeds, self._words, strict=True)
                ]
            else:
                seqs = [
                    PresetSeedSequence(seed, key, w)
                    for seed, w in zip(self.seeds, self._words[:, s], strict=True)
                ]
            out = self._built[name] = [generator(q) for q in seqs]
        return out


def episode_streams(seed_rngs: Sequence[np.random.Generator]) -> list[EpisodeStreams]:
    """Every copy's episode streams, each equal to ``MarketEnv.reset``'s for its seed stream.

    Draws one episode seed from each ``seed_rngs[b]`` (:func:`episode_seed`); copy b's
    stream i is ``Generator(PCG64(SeedSequence(seed_b, spawn_key=(i,))))``
    (``default_rng(seed_b).spawn(6)[i]``) for i in :data:`STREAM_KEYS`. The network stream's
    first child (the batched chain spawns it) is preset too. :class:`EpisodeBatch` gives
    the same streams by name, built only when asked for.

    Args:
        seed_rngs: B seed streams (advanced by one draw each).
    """
    batch = EpisodeBatch(seed_rngs)
    return [EpisodeStreams(*s) for s in zip(*(batch.streams(k) for k in _NAMES), strict=True)]
