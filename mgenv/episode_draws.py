"""An episode's reset draws from the streams' seed words, in one kernel call.

``MarketEnv.reset`` spawns six streams (:mod:`mgenv.streams`); four of them are read only
during the reset and never kept: weather and load (the day's profiles), adversary (SBET's
withholding and malicious nodes) and keys (one seed), and so is the network stream's
child (SBET's storage spaces). A numpy ``Generator`` costs several µs to build and each of
its calls several more (~5-15 µs each in a training loop, where the reset's code runs
cold), so :func:`episode_draws` computes what those streams would give from their PCG64
seed words instead, with the episode seed itself and the node positions (the first draw of
the network stream, which the chain keeps), in one kernel call:

* seed words: numpy's ``SeedSequence`` mixing (:func:`mgenv.streams._seed_words`);
* raw outputs and doubles: numpy's ``pcg64_set_seed`` and ``xsl_rr``
  (:mod:`mgenv.batched.pcg64`), ``Generator.uniform(low, high)`` as
  ``low + (high - low) * ((raw >> 11) * 2**-53)`` (``random_uniform``);
* normals: numpy's ziggurat (:func:`mgenv.batched.normals.profile_draws`, the batched
  reset's weather and load draws);
* ``Generator.permutation(n)``: numpy's ``shuffle`` of ``arange(n)``, for i from n - 1
  down to 1 swapping i with ``random_interval(i)``: the smallest all-ones mask >= i, then
  ``next_uint32() & mask`` until <= i, ``next_uint32`` the low then the high half of one
  64-bit output (numpy's buffered ``pcg64_next32``).

Same numbers as the generators' own calls, bit for bit (tests/test_episode_draws.py compares
them for many seeds and sizes). Needs the kernels and :data:`mgenv.batched.normals.AVAILABLE`
(:data:`AVAILABLE`); otherwise the env builds every generator as before.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv._jit import inlined, kernel
from mgenv.batched import normals
from mgenv.batched.normals import _next_double, profile_draws
from mgenv.batched.pcg64 import _seed, next64
from mgenv.streams import POOL_SIZE, _key_words, _seed_words

AVAILABLE = _jit.AVAILABLE and normals.AVAILABLE

U64 = NDArray[np.uint64]

#: The env's streams, in spawn order (``streams.spawn(episode_seed, 6, (0, 0, 1))``).
WEATHER, LOAD, NETWORK, ADVERSARY, KEYS, POLICY = range(6)
#: Row of the network stream's first child in :attr:`EpisodeDraws.words`.
CHILD = 6
_SPAWN_KEYS: tuple[tuple[int, ...], ...] = (*((i,) for i in range(6)), (NETWORK, 0))
_M32 = np.uint64(0xFFFFFFFF)
_ELEVEN, _HALF = np.uint64(11), np.uint64(32)


class EpisodeDraws(NamedTuple):
    """What an episode's reset draws, from :func:`episode_draws`.

    Attributes:
        episode_seed: The episode's seed (``streams.draw_seed`` of the seed stream).
        key_seed: The chain's key seed (``streams.draw_seed`` of the keys stream).
        words: Shape (7, 4) uint64: the seed words of the six streams in spawn order, then
            of the network stream's first child.
        positions: Shape (n, 2): ``network.uniform(0, area_km, (n, 2))``, km.
        storage: Shape (n,): ``child.uniform(0.5, 1.5, n)``.
        perms: Shape (2, n) int64: the adversary's first two ``permutation(n)``.
        cloud: ``weather.uniform(0.0, cloudiness_max)``.
        weather_z: The weather stream's next standard normals after it, (W,).
        load_z: The load stream's first standard normals, (L,).
    """

    episode_seed: int
    key_seed: int
    words: U64
    positions: NDArray[np.float64]
    storage: NDArray[np.float64]
    perms: NDArray[np.int64]
    cloud: float
    weather_z: NDArray[np.float64]
    load_z: NDArray[np.float64]


@inlined
def _next32(state: U64, buf: NDArray[np.uint64]) -> np.uint64:
    """The ``pcg64_next32`` of numpy: the buffered high half, else a new output's low half.

    ``buf`` is ``(has_uint32, uinteger)``.
    """
    if buf[0]:
        buf[0] = 0
        half: np.uint64 = buf[1]
        return half
    raw = next64(state)
    buf[0], buf[1] = 1, raw >> _HALF
    return raw & _M32


@inlined
def _permutation(state: U64, buf: NDArray[np.uint64], out: NDArray[np.int64]) -> None:
    """``Generator.permutation(out.size)`` into ``out`` (numpy's ``_shuffle_int``)."""
    n = out.size
    for i in range(n):
        out[i] = i
    for i in range(n - 1, 0, -1):
        top = np.uint64(i)
        mask = top
        for shift in (1, 2, 4, 8, 16, 32):  # random_interval: the smallest mask >= i
            mask |= mask >> np.uint64(shift)
        value = _next32(state, buf) & mask
        while value > top:
            value = _next32(state, buf) & mask
        j = np.int64(value)
        out[i], out[j] = out[j], out[i]


@inlined
def _start(w: U64, state: U64) -> None:
    """``state`` <- the PCG64 state seeded from the seed words ``w`` (4,)."""
    state[0], state[1], state[2], state[3] = _seed(w[0], w[1], w[2], w[3])


@kernel
def _episode_kernel(
    seed_run: NDArray[np.uint32],
    episode_seed: int,
    keys: NDArray[np.uint32],
    key_len: NDArray[np.int64],
    uniforms: NDArray[np.float64],
    words: U64,
    positions: NDArray[np.float64],
    storage: NDArray[np.float64],
    perms: NDArray[np.int64],
    weather_z: NDArray[np.float64],
    load_z: NDArray[np.float64],
) -> tuple[int, int, float]:
    """The draws of :class:`EpisodeDraws` (see the module docstring).

    Args:
        seed_run: The reset seed's entropy words (``streams.seed_words``' run), or empty:
            ``episode_seed`` is given.
        episode_seed: The episode seed if ``seed_run`` is empty.
        keys: ``streams._key_words`` of the spawn keys (six streams, the network's child).
        key_len: Their lengths.
        uniforms: ``(area_km, cloudiness_max)``: the ranges of the two uniforms drawn.
        words: Output (7, 4).
        positions: Output (n, 2).
        storage: Output (n,).
        perms: Output (2, n).
        weather_z: Output (W,).
        load_z: Output (L,).

    Returns:
        ``(episode_seed, key_seed, cloud)``.
    """
    state = np.empty(4, np.uint64)
    buf = np.zeros(2, np.uint64)
    if seed_run.size:  # streams.seed_stream(seed), then streams.draw_seed of it
        _start(_seed_words(seed_run, keys[:1, :0], key_len[:1] * 0)[0], state)
        episode_seed = int(np.int64(next64(state) >> np.uint64(1)))
    run = np.zeros(POOL_SIZE, np.uint32)  # the episode seed's words (it is below 2**63)
    run[0] = np.uint32(episode_seed & 0xFFFFFFFF)
    run[1] = np.uint32(episode_seed >> 32)
    words[:] = _seed_words(run, keys, key_len)

    _start(words[KEYS], state)
    key_seed = int(np.int64(next64(state) >> np.uint64(1)))
    _start(words[NETWORK], state)
    for i in range(positions.shape[0]):
        for k in range(2):
            positions[i, k] = 0.0 + uniforms[0] * _next_double(state)
    _start(words[CHILD], state)
    for i in range(storage.size):
        storage[i] = 0.5 + 1.0 * _next_double(state)
    _start(words[ADVERSARY], state)
    for k in range(perms.shape[0]):
        _permutation(state, buf, perms[k])
    # the weather stream's uniform (its raw output) and normals, the load stream's normals
    raw = np.empty(1, np.uint64)
    profile_draws(
        words[WEATHER : WEATHER + 1], words[LOAD : LOAD + 1], raw,
        weather_z.reshape((1, weather_z.size)), load_z.reshape((1, load_z.size)),
    )  # fmt: skip
    cloud = 0.0 + uniforms[1] * (float(raw[0] >> _ELEVEN) * 2.0**-53)
    return episode_seed, key_seed, cloud


@functools.cache
def _spawn_key_words() -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
    return _key_words(_SPAWN_KEYS)


def seed_run(seed: int) -> NDArray[np.uint32]:
    """The entropy words ``streams.seed_words`` mixes for an int seed in [0, 2**128)."""
    words = [(seed >> (32 * k)) & 0xFFFFFFFF for k in range(4)]
    return np.array(words, np.uint32)


_NO_RUN = np.zeros(0, np.uint32)


def episode_draws(
    seed: int | None,
    episode_seed: int,
    n_nodes: int,
    area_km: float,
    cloudiness_max: float,
    n_weather: int,
    n_load: int,
) -> EpisodeDraws:
    """The reset's draws (:class:`EpisodeDraws`) from an int seed or an episode seed.

    Args:
        seed: ``reset(seed)``'s seed, an int in [0, 2**128): the episode seed is drawn from
            gymnasium's stream of it; or None: ``episode_seed`` is used.
        episode_seed: The episode seed when ``seed`` is None (in [0, 2**63)).
        n_nodes: Validator nodes n (positions, storage spaces, permutations).
        area_km: Side of the nodes' square (km).
        cloudiness_max: The weather's cloudiness bound.
        n_weather: Standard normals of the weather stream after its uniform.
        n_load: Standard normals of the load stream.
    """
    keys, key_len = _spawn_key_words()
    words = np.empty((len(_SPAWN_KEYS), 4), np.uint64)
    positions, storage = np.empty((n_nodes, 2)), np.empty(n_nodes)
    perms = np.empty((2, n_nodes), np.int64)
    zw, zl = np.empty(n_weather), np.empty(n_load)
    uniforms = np.array((area_km, cloudiness_max))
    run = _NO_RUN if seed is None else seed_run(seed)
    ep, key_seed, cloud = _episode_kernel(
        run, episode_seed, keys, key_len, uniforms, words, positions, storage, perms, zw, zl
    )
    return EpisodeDraws(int(ep), int(key_seed), words, positions, storage, perms, cloud, zw, zl)
