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

``reset`` takes all of it from one compiled call (:func:`episode`): the seed stream's words
and first draw, the children's words and the keys stream's first draw; it builds only the
four generators the episode starts with, and the policy and seed streams when first asked for.

Without numba (``MGENV_JIT=0``) the streams come from numpy's ``SeedSequence`` itself. The
batched core computes the same words for many copies at once with numpy
(:mod:`mgenv.batched.streams`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from gymnasium.utils import seeding
from numpy.random.bit_generator import ISpawnableSeedSequence
from numpy.typing import DTypeLike, NDArray

from mgenv import _jit
from mgenv._jit import inlined, kernel
from mgenv.batched.pcg64 import _seed, next64

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


@inlined
def _seed_words_into(
    entropy: np.ndarray, keys: np.ndarray, key_len: np.ndarray, out: np.ndarray
) -> None:
    """PCG64's seed words of ``SeedSequence(entropy, spawn_key=key)`` for every key, into out.

    ``SeedSequence.mix_entropy`` then ``generate_state(4, np.uint64)``, in 32-bit wrapping
    arithmetic (done in 64 bits and masked: numba widens integer products).

    Args:
        entropy: The run entropy as uint32 words, lowest first, zero-padded to at least
            :data:`POOL_SIZE` (numpy pads with zeros when a spawn key follows, and hashes
            zeros for missing words without one: the same pool).
        keys: ``(S, K)`` uint32: each spawn key's words (its ints' 32-bit words, in order).
        key_len: ``(S,)``: how many words of each row are the key's.
        out: ``(S, 4)`` uint64: receives the words.
    """
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


@kernel
def _seed_words(entropy: np.ndarray, keys: np.ndarray, key_len: np.ndarray) -> np.ndarray:
    """:func:`_seed_words_into` into a fresh ``(S, 4)`` uint64 array."""
    out = np.empty((keys.shape[0], 4), np.uint64)
    _seed_words_into(entropy, keys, key_len, out)
    return out


@inlined
def _first_raw(words: np.ndarray) -> np.uint64:
    """The first ``random_raw()`` of ``PCG64`` seeded with these four words."""
    state = np.empty(4, np.uint64)
    state[0], state[1], state[2], state[3] = _seed(words[0], words[1], words[2], words[3])
    return next64(state)


@kernel
def _episode_words(
    run: np.ndarray,
    from_seed: bool,
    keys: np.ndarray,
    key_len: np.ndarray,
    key_child: int,
    out: np.ndarray,
) -> tuple[np.int64, np.int64]:
    """An episode's seed, its children's seed words and the key seed, in one call.

    Args:
        run: uint32 (4,): the entropy words (zero-padded) of ``reset``'s seed if
            ``from_seed``, else of the episode seed itself.
        from_seed: Whether the episode seed is first drawn from ``run``'s seed stream.
        keys: ``(S, K)`` spawn keys of the episode seed's children, as :func:`_seed_words`.
        key_len: ``(S,)``: their lengths.
        key_child: The row of ``keys`` whose stream's first draw is the key seed.
        out: ``(S + 1, 4)`` uint64: receives each child's seed words, then (last row) the
            seed stream's (when ``from_seed``).

    Returns:
        ``(episode seed, key seed)``: each :func:`draw_seed` of its stream's first output.
    """
    n_keys = keys.shape[0]
    entropy = run
    if from_seed:  # seed_stream(seed) and its first draw_seed
        no_key = np.zeros((1, 0), np.uint32)
        _seed_words_into(run, no_key, np.zeros(1, np.int64), out[n_keys:])
        episode = _first_raw(out[n_keys]) >> np.uint64(1)
        entropy = np.zeros(POOL_SIZE, np.uint32)
        entropy[0] = np.uint32(episode & _M32)
        entropy[1] = np.uint32(episode >> _HALF)
    else:  # (the caller keeps its own int: only the low 64 bits are read here)
        episode = np.uint64(run[0]) | (np.uint64(run[1]) << _HALF)
    _seed_words_into(entropy, keys, key_len, out[:n_keys])
    key_seed = _first_raw(out[key_child]) >> np.uint64(1)
    return np.int64(episode), np.int64(key_seed)


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
    keys, lengths = _key_words(tuple(spawn_keys))
    out: U64 = _seed_words(_run_words(entropy), keys, lengths)
    return out


def _run_words(entropy: int) -> U32:
    """A non-negative int as uint32 words, lowest first, zero-padded to :data:`POOL_SIZE`."""
    if 0 <= entropy < 2**64:  # the common case: two words, no Python loop
        return np.array((entropy & _MASK32, entropy >> 32, 0, 0), np.uint32)
    words = int_words(entropy)
    return np.array(words + [0] * (POOL_SIZE - len(words)), np.uint32)


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
    return [generator(s) for s in _children(entropy, counts, list(seed_words(entropy, keys)))]


def _children(entropy: int, counts: list[int], words: list[U64]) -> list[PresetSeedSequence]:
    """The seed sequences of ``entropy``'s first ``len(counts)`` children.

    ``words``: the children's seed words, then their own children's (``counts[i]`` of child
    i, child by child), as :func:`_spawn_keys` orders the keys.
    """
    n = len(counts)
    rest = words[n:]
    out = []
    for i in range(n):
        preset, rest = rest[: counts[i]], rest[counts[i] :]
        out.append(PresetSeedSequence(entropy, (i,), words[i], preset))
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


#: The env's episode streams: ``spawn(episode_seed, 6, (0, 0, 1))``'s children, in order.
WEATHER, LOAD, NETWORK, ADVERSARY, KEYS, POLICY = range(6)
N_STREAMS = 6
_GRANDCHILDREN = (0, 0, 1)  # the network stream's first child (SBET's) precomputed


class Episode(NamedTuple):
    """An episode's random streams as ``MarketEnv.reset`` makes them (:func:`episode`).

    Attributes:
        seed: The episode seed, ``draw_seed(seed stream)``.
        streams: The weather, load, network and adversary generators (children 0-3 of
            ``default_rng(seed).spawn(6)``).
        key_seed: ``draw_seed`` of child 4 (the keys stream, drawn from once, never kept).
        policy: Child 5, a generator or (compiled path) its seed sequence, which
            :func:`generator` makes into the same generator when it is first used.
        seed_stream: ``seed_stream(seed)`` after its first draw, as a seed sequence whose
            generator :func:`stream_after_draw` makes (compiled path, from a seed); else None.
    """

    seed: int
    streams: list[np.random.Generator]
    key_seed: int
    policy: np.random.Generator | PresetSeedSequence
    seed_stream: PresetSeedSequence | None = None


def compiled_seed(seed: object) -> bool:
    """Whether :func:`episode` takes ``seed`` itself (:func:`seed_stream`'s compiled case)."""
    return _jit.ENABLED and type(seed) is int and 0 <= seed < 2**128


def episode(entropy: int, from_seed: bool = False) -> Episode:
    """An episode's streams from its seed, or from ``reset``'s seed (``from_seed``).

    ``from_seed``: ``entropy`` is ``reset``'s seed (:func:`compiled_seed` must hold) and the
    episode seed is ``draw_seed(seed_stream(entropy))``; else ``entropy`` is the episode seed
    (a non-negative int). Compiled, one kernel call gives every seed word and both seeds; the
    generators nobody may use (the keys stream, drawn from once; the seed stream and the
    policy stream until they are asked for) are not built. Exactly numpy's streams either way.
    """
    if not _jit.ENABLED:
        if from_seed:
            raise ValueError("from_seed needs the compiled streams (see compiled_seed)")
        gens = np.random.default_rng(entropy).spawn(N_STREAMS)
        return Episode(entropy, gens[:KEYS], draw_seed(gens[KEYS]), gens[POLICY])
    counts, keys = _spawn_keys(N_STREAMS, _GRANDCHILDREN)
    key_words, lengths = _key_words(keys)
    words = np.empty((len(keys) + 1, 4), np.uint64)
    got = _episode_words(_run_words(entropy), from_seed, key_words, lengths, KEYS, words)
    # the kernel's episode seed is the drawn one (< 2**63) when from_seed, else entropy's
    seed, key_seed = int(got[0]) if from_seed else entropy, int(got[1])
    kids = _children(seed, counts, list(words[:-1]))
    seq = PresetSeedSequence(entropy, (), words[-1]) if from_seed else None
    return Episode(seed, [generator(k) for k in kids[:KEYS]], key_seed, kids[POLICY], seq)


def stream_after_draw(seq: PresetSeedSequence) -> np.random.Generator:
    """The generator of ``seq`` after one :func:`draw_seed` (``Episode.seed_stream``'s)."""
    # numpy's stub omits it, but BitGenerator takes any ISeedSequence as seed (documented).
    bits = np.random.PCG64(seq)  # type: ignore[arg-type]
    bits.advance(1)  # one 64-bit step, as random_raw's (no buffered half-word)
    return np.random.Generator(bits)
