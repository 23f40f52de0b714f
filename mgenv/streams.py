"""An episode's random streams, with numpy's seeding arithmetic compiled (:mod:`mgenv._jit`).

``MarketEnv.reset(seed)`` builds gymnasium's seed stream ``Generator(PCG64(SeedSequence(
seed)))``, draws an episode seed from it and spawns six streams from
``default_rng(episode_seed)``: child ``i`` is ``Generator(PCG64(SeedSequence(episode_seed,
spawn_key=(i,))))``. Most of the ~10-30 µs each generator costs is ``SeedSequence``'s
Python-level mixing (under an ``np.errstate`` context) before ``PCG64`` asks it for four
64-bit seed words. Here :func:`seed_words` computes those words in one compiled call, and
each generator is numpy's own ``PCG64`` built from them through a
:class:`PresetSeedSequence`: the same state, the same future draws, and seed sequences that
spawn the same children (``spawn``, ``entropy``, ``spawn_key`` as numpy's).

Without numba (``MGENV_JIT=0``) the streams come from numpy's ``SeedSequence`` itself. The
batched core computes the same words for many copies at once with numpy
(:mod:`mgenv.batched.streams`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from numpy.random.bit_generator import ISpawnableSeedSequence
from numpy.typing import DTypeLike, NDArray

from mgenv import _jit
from mgenv._jit import kernel

U32 = NDArray[np.uint32]
U64 = NDArray[np.uint64]

#: SeedSequence's default pool size, in 32-bit words.
POOL_SIZE = 4
_MASK32 = 0xFFFFFFFF
# numpy/random/bit_generator.pyx: hash and mix constants of SeedSequence, as uint64 so that
# the kernel's integer arithmetic stays unsigned (numba makes int64 op uint64 a float).
_U = np.uint64
_INIT_A, _MULT_A = _U(0x43B0D7E5), _U(0x931E8875)
_INIT_B, _MULT_B = _U(0x8B51F9DD), _U(0x58F38DED)
_MIX_MULT_L, _MIX_MULT_R = _U(0xCA01F9DD), _U(0x4973F715)
_M32, _SHIFT, _HALF = _U(_MASK32), _U(16), _U(32)


@kernel
def _seed_words(entropy: np.ndarray, keys: np.ndarray, key_len: np.ndarray) -> np.ndarray:
    """PCG64's seed words of ``SeedSequence(entropy, spawn_key=key)`` for every key.

    ``SeedSequence.mix_entropy`` then ``generate_state(4, np.uint64)``, in 32-bit wrapping
    arithmetic (done in 64 bits and masked: numba widens integer products).

    Args:
        entropy: The run entropy as uint32 words, lowest first, zero-padded to at least
            :data:`POOL_SIZE` (numpy pads with zeros when a spawn key follows, and hashes
            zeros for missing words without one: the same pool).
        keys: ``(S, K)`` uint32: each spawn key's words (its ints' 32-bit words, in order).
        key_len: ``(S,)``: how many words of each row are the key's.

    Returns:
        ``(S, 4)`` uint64.
    """
    out = np.empty((keys.shape[0], 4), np.uint64)
    words = np.empty(entropy.shape[0] + keys.shape[1], np.uint64)
    pool = np.empty(POOL_SIZE, np.uint64)
    for s in range(keys.shape[0]):
        n = entropy.shape[0]
        for i in range(n):
            words[i] = entropy[i]
        for i in range(key_len[s]):
            words[n + i] = keys[s, i]
        n += key_len[s]
        h = _INIT_A
        for i in range(POOL_SIZE):  # hashmix of each word into the pool
            v = (words[i] ^ h) & _M32
            h = (h * _MULT_A) & _M32
            v = (v * h) & _M32
            pool[i] = v ^ (v >> _SHIFT)
        for i_src in range(n):  # mix every word into every other pool word
            for i_dst in range(POOL_SIZE):
                if i_src < POOL_SIZE and i_src == i_dst:
                    continue
                v = ((pool[i_src] if i_src < POOL_SIZE else words[i_src]) ^ h) & _M32
                h = (h * _MULT_A) & _M32
                v = (v * h) & _M32
                v ^= v >> _SHIFT
                r = (_MIX_MULT_L * pool[i_dst] - _MIX_MULT_R * v) & _M32
                pool[i_dst] = r ^ (r >> _SHIFT)
        h = _INIT_B
        for j in range(4):  # generate_state: 8 uint32 words, paired little-endian
            v = (pool[(2 * j) % POOL_SIZE] ^ h) & _M32
            h = (h * _MULT_B) & _M32
            v = (v * h) & _M32
            low = v ^ (v >> _SHIFT)
            v = (pool[(2 * j + 1) % POOL_SIZE] ^ h) & _M32
            h = (h * _MULT_B) & _M32
            v = (v * h) & _M32
            out[s, j] = low | ((v ^ (v >> _SHIFT)) << _HALF)
    return out


def int_words(value: int) -> list[int]:
    """A non-negative int as 32-bit words, lowest first (numpy's ``_int_to_uint32_array``)."""
    if value < 0:
        raise ValueError(f"expected a non-negative integer, got {value}")
    words = []
    while True:
        words.append(value & _MASK32)
        value >>= 32
        if not value:
            return words


def seed_words(entropy: int, spawn_keys: Sequence[tuple[int, ...]]) -> U64:
    """``SeedSequence(entropy, spawn_key=k).generate_state(4, np.uint64)`` for every key.

    Args:
        entropy: A non-negative int (more than 128 bits are mixed in as numpy does).
        spawn_keys: S spawn keys of non-negative ints (``()``: no spawn key).

    Returns:
        ``(S, 4)`` uint64.
    """
    if 0 <= entropy < 2**64:  # the common case: two words, no Python loop
        run = np.array((entropy & _MASK32, entropy >> 32, 0, 0), np.uint32)
    else:
        words = int_words(entropy)
        run = np.array(words + [0] * (POOL_SIZE - len(words)), np.uint32)
    keys, lengths = _key_words(tuple(spawn_keys))
    out: U64 = _seed_words(run, keys, lengths)
    return out


@functools.lru_cache(maxsize=64)
def _key_words(spawn_keys: tuple[tuple[int, ...], ...]) -> tuple[U32, NDArray[np.int64]]:
    """Spawn keys as a zero-padded ``(S, K)`` uint32 word array and each row's length.

    Cached: an env spawns the same keys every episode (the arrays are only read).
    """
    rows = [[w for part in key for w in int_words(part)] for key in spawn_keys]
    keys = np.zeros((len(rows), max(map(len, rows), default=0)), np.uint32)
    for s, row in enumerate(rows):
        keys[s, : len(row)] = row
    return keys, np.array([len(r) for r in rows], np.int64)


class PresetSeedSequence(ISpawnableSeedSequence):
    """``SeedSequence(entropy, spawn_key=spawn_key)`` whose PCG64 seed words are precomputed.

    A seed sequence as numpy's (same ``entropy``, ``spawn_key``, ``pool_size``,
    ``n_children_spawned``, ``state``, ``spawn``), for ``PCG64(seed=...)``: the words PCG64
    asks for are returned as given; anything else (``pool``, other word counts) comes from a
    numpy ``SeedSequence`` built on first use. Children are preset sequences too, with
    precomputed words for the first ``len(children)`` of them.

    Args:
        entropy: The run entropy (an int, as numpy's ``entropy``).
        spawn_key: The spawn key.
        words: Shape (4,) uint64: ``SeedSequence(...).generate_state(4, np.uint64)``, or None.
        children: Seed words of the first children ``spawn`` will return, in order.
    """

    __slots__ = ("_children", "_numpy", "_words", "entropy", "n_children_spawned", "spawn_key")
    pool_size = POOL_SIZE

    def __init__(
        self,
        entropy: int,
        spawn_key: tuple[int, ...] = (),
        words: U64 | None = None,
        children: Sequence[U64] = (),
    ) -> None:
        self.entropy = entropy
        self.spawn_key = spawn_key
        self.n_children_spawned = 0
        self._words = words
        self._children = children
        self._numpy: np.random.SeedSequence | None = None

    def _sequence(self) -> np.random.SeedSequence:
        if self._numpy is None:
            self._numpy = np.random.SeedSequence(self.entropy, spawn_key=self.spawn_key)
        return self._numpy

    def generate_state(self, n_words: int, dtype: DTypeLike = np.uint32) -> NDArray[Any]:
        """``SeedSequence.generate_state``: (n_words,) of dtype uint32 or uint64."""
        if self._words is not None and n_words == 4 and np.dtype(dtype) == np.uint64:
            return self._words.copy()
        return self._sequence().generate_state(n_words, dtype)  # type: ignore[arg-type]

    def spawn(self, n_children: int) -> list[PresetSeedSequence]:
        """``SeedSequence.spawn``: children with spawn keys ``spawn_key + (i,)``."""
        if n_children < 0:
            raise ValueError("n_children must be non-negative")
        start, preset = self.n_children_spawned, self._children
        kids = [
            PresetSeedSequence(
                self.entropy, (*self.spawn_key, i), preset[i] if i < len(preset) else None
            )
            for i in range(start, start + n_children)
        ]
        self.n_children_spawned += n_children
        return kids

    @property
    def pool(self) -> U32:
        """The mixed entropy pool, shape (4,) uint32."""
        pool: U32 = self._sequence().pool
        return pool

    @property
    def state(self) -> dict[str, object]:
        """As ``SeedSequence.state``."""
        return {
            "entropy": self.entropy,
            "spawn_key": self.spawn_key,
            "pool_size": self.pool_size,
            "n_children_spawned": self.n_children_spawned,
        }

    def __repr__(self) -> str:
        return f"PresetSeedSequence(entropy={self.entropy!r}, spawn_key={self.spawn_key!r})"


def generator(seq: PresetSeedSequence) -> np.random.Generator:
    """``Generator(PCG64(seq))`` from a preset seed sequence (numpy's own objects)."""
    # numpy's stub omits it, but BitGenerator takes any ISeedSequence as seed (documented).
    return np.random.Generator(np.random.PCG64(seq))  # type: ignore[arg-type]


def seed_stream(seed: int | None) -> np.random.Generator:
    """``seeding.np_random(seed)[0]``: gymnasium's ``reset(seed)`` stream.

    Compiled for int seeds in [0, 2**128); anything else (None: fresh entropy; a bad seed:
    gymnasium's error) goes through gymnasium itself.
    """
    if not _jit.ENABLED or type(seed) is not int or not 0 <= seed < 2**128:
        return seeding.np_random(seed)[0]
    return generator(PresetSeedSequence(seed, (), seed_words(seed, [()])[0]))


def spawn(entropy: int, n: int, grandchildren: Sequence[int] = ()) -> list[np.random.Generator]:
    """``np.random.default_rng(entropy).spawn(n)``: the same generators, seeded faster.

    Args:
        entropy: The parent's seed, a non-negative int.
        n: Number of children.
        grandchildren: For child ``i``, how many of its own children to precompute the seed
            words of (``grandchildren[i]``, 0 where the sequence is shorter). Exact either
            way; a precomputed child is faster to spawn (e.g. the SBET chain spawns one child
            of its network stream).
    """
    if not _jit.ENABLED:
        return np.random.default_rng(entropy).spawn(n)
    counts, keys = _spawn_keys(n, tuple(grandchildren))
    words = list(seed_words(entropy, keys))
    kids, rest = words[:n], words[n:]
    out = []
    for i in range(n):
        preset, rest = rest[: counts[i]], rest[counts[i] :]
        out.append(generator(PresetSeedSequence(entropy, (i,), kids[i], preset)))
    return out


@functools.lru_cache(maxsize=64)
def _spawn_keys(
    n: int, grandchildren: tuple[int, ...]
) -> tuple[list[int], tuple[tuple[int, ...], ...]]:
    """Each child's count of precomputed children, and every spawn key :func:`spawn` needs."""
    counts = [grandchildren[i] if i < len(grandchildren) else 0 for i in range(n)]
    keys = [(i,) for i in range(n)] + [(i, j) for i in range(n) for j in range(counts[i])]
    return counts, tuple(keys)


def draw_seed(rng: np.random.Generator) -> int:
    """``int(rng.integers(2**63))``: how the env draws episode and key seeds.

    numpy draws ``integers(2**63)`` by Lemire's method with range 2**63: one 64-bit output
    x, result ``(x * 2**63) >> 64 = x >> 1``, and the rejection threshold
    ``2**63 % 2**63 = 0`` never rejects. So it is the next raw output shifted by one (the
    generator advanced alike), several times cheaper; numpy's own call without numba.
    """
    if not _jit.ENABLED:
        return int(rng.integers(2**63))
    return int(rng.bit_generator.random_raw()) >> 1
