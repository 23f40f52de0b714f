"""The kernels' PCG64 uniforms (mgenv/batched/pcg64.py) against numpy's generators, exactly."""

from __future__ import annotations

import copy

import numba
import numpy as np
import pytest

from mgenv import _jit
from mgenv.batched import pcg64
from mgenv.batched.chain_draws import _Draws

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")


@numba.njit
def _uniforms(state: np.ndarray, table: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    for b in range(state.shape[0]):
        at = (state[b, 0], state[b, 1], state[b, 2], state[b, 3])
        for k in range(offsets.shape[0]):
            out[b, k] = pcg64.uniform(at, table, offsets[k])


@numba.njit
def _jumps(state: np.ndarray, table: np.ndarray, d: int, out: np.ndarray) -> None:
    for b in range(state.shape[0]):
        out[b, 0], out[b, 1] = pcg64.jump(state[b], table, d)


def generators(n: int, seed: int) -> list[np.random.Generator]:
    """PCG64 generators in varied states: seeded, spawned, advanced, some draws made."""
    out = []
    for b, child in enumerate(np.random.default_rng(seed).spawn(n)):
        child.random(b % 7)
        child.bit_generator.advance(b * 1_000_003)
        out.append(child)
    out.append(np.random.Generator(np.random.PCG64(2**128 - 1)))  # extreme seed words
    return out


def test_uniforms_are_numpys() -> None:
    """Every uniform of the next 2000 draws, at random offsets and at all of them."""
    rngs = generators(40, 1)
    state = pcg64.states(rngs)
    assert state is not None
    table = pcg64.jump_table(2000)
    offsets = np.concatenate((np.arange(2000), np.random.default_rng(0).integers(0, 2000, 500)))
    got = np.empty((len(rngs), offsets.size))
    _uniforms(state, table, offsets, got)
    for b, rng in enumerate(rngs):
        want = copy.deepcopy(rng).random(2000)
        np.testing.assert_array_equal(got[b], want[offsets])


@pytest.mark.parametrize("step", [1, 7, 392, 6176])
def test_jumps_are_advance(step: int) -> None:
    """``jump`` by d table steps is ``PCG64.advance(d * step)``."""
    rngs = generators(12, step)
    state = pcg64.states(rngs)
    assert state is not None
    table = pcg64.jump_table(30, step)
    out = np.empty((len(rngs), 2), dtype=np.uint64)
    for d in (0, 1, 2, 17, 30):
        _jumps(state, table, d, out)
        for b, rng in enumerate(rngs):
            moved = copy.deepcopy(rng)
            moved.bit_generator.advance(d * step)
            s = moved.bit_generator.state["state"]
            assert (int(out[b, 0]) << 64) | int(out[b, 1]) == s["state"]
            assert (int(state[b, 2]) << 64) | int(state[b, 3]) == s["inc"]


def test_states_refuse_other_generators() -> None:
    """Only PCG64s without a buffered 32-bit half (``advance`` would drop it)."""
    assert pcg64.states(generators(3, 0)) is not None
    assert pcg64.states([np.random.Generator(np.random.MT19937(0))]) is None
    assert pcg64.states([np.random.Generator(np.random.PCG64DXSM(0))]) is None
    half = np.random.default_rng(0)
    half.integers(0, 2**32, dtype=np.uint32)  # leaves the other half buffered
    assert half.bit_generator.state["has_uint32"]
    assert pcg64.states([np.random.default_rng(1), half]) is None


@pytest.mark.parametrize("switch_at", [0, 1, 3])
def test_virtual_blocks_draw_what_numpy_draws(switch_at: int) -> None:
    """A virtual block's generators end where drawn blocks leave them, and drawing it
    (the numpy path asking for a period) gives the same numbers."""
    nb, size, periods, horizon = 5, 23, 4, 10
    virtual, drawn = _Draws(nb, size, periods, False), _Draws(nb, size, periods, False)
    rngs = generators(nb - 1, 9)  # and one with extreme seed words
    twins = copy.deepcopy(rngs)
    virtual.restart(rngs)
    drawn.restart(twins)
    table = pcg64.jump_table(size)
    by_period = pcg64.jump_table(periods, size)
    for t in range(horizon):
        left = horizon - t
        drawn.next(left)
        if t < switch_at or (t // periods) % 2:  # the kernel path: computed uniforms
            k = virtual.advance(left, virtual=True)
            if virtual.start.shape[0]:
                got = np.empty((nb, size))
                here = np.empty((nb, 4), dtype=np.uint64)
                jumped = np.empty((nb, 2), dtype=np.uint64)
                _jumps(virtual.start, by_period, k, jumped)
                here[:, :2], here[:, 2:] = jumped, virtual.start[:, 2:]
                _uniforms(here, table, np.arange(size), got)
            else:
                got = virtual.block[:, k]
        else:  # the numpy path
            virtual.next(left)
            got = virtual.period
        np.testing.assert_array_equal(got, drawn.period)
        if (t + 1) % periods == 0 or t + 1 == horizon:
            for a, b in zip(rngs, twins, strict=True):
                assert a.bit_generator.state == b.bit_generator.state


def test_python_primitives_are_numpys() -> None:
    """The Python arithmetic used without numba gives the same doubles and states."""
    rngs = generators(4, 3)
    state = pcg64.states(rngs)
    assert state is not None
    table = pcg64.jump_table(50)
    for b, rng in enumerate(rngs):
        want = copy.deepcopy(rng).random(50)
        words = [int(x) for x in state[b]]
        for d in range(1, 51):
            entry = [int(x) for x in table[d]]
            assert pcg64._draw_py(*words, *entry) == want[d - 1]
        moved = copy.deepcopy(rng)
        moved.bit_generator.advance(50)
        hi, lo = pcg64._jump_py(*words, *[int(x) for x in table[50]])
        assert (hi << 64) | lo == moved.bit_generator.state["state"]["state"]


def test_seeded_states_and_draws_are_numpys() -> None:
    """``seeded`` gives the state ``PCG64(seed_seq)`` starts from, ``draws_into`` its draws,
    ``advance_into`` its state after ``advance`` (seed words of numpy's seed sequences)."""
    seqs = [np.random.SeedSequence(s, spawn_key=(2,)) for s in (0, 1, 2**63 - 1, 12345)]
    seqs += [np.random.SeedSequence(2**127 + 5).spawn(1)[0]]
    words = np.stack([q.generate_state(4, np.uint64) for q in seqs])
    state = np.empty((len(seqs), 4), dtype=np.uint64)
    pcg64.seeded(words, state)
    table = pcg64.jump_table(64)
    out = np.empty((len(seqs), 37))
    pcg64.draws_into(state, table, out)
    for b, q in enumerate(seqs):
        bits = np.random.PCG64(q)
        st = bits.state["state"]
        assert (int(state[b, 0]) << 64 | int(state[b, 1])) == st["state"]
        assert (int(state[b, 2]) << 64 | int(state[b, 3])) == st["inc"]
        assert tuple(pcg64._seed_py(*(int(w) for w in words[b]))) == tuple(int(x) for x in state[b])
        np.testing.assert_array_equal(out[b], np.random.Generator(bits).random(37))
    pcg64.advance_into(state, table, 50)
    for b, q in enumerate(seqs):
        bits = np.random.PCG64(q)
        bits.advance(50)
        assert (int(state[b, 0]) << 64 | int(state[b, 1])) == bits.state["state"]["state"]


@pytest.mark.parametrize("seed", [0, 3])
def test_draws_on_a_live_view_step_the_generator_itself(seed: int) -> None:
    """``fill_live`` on ``live_words``' view: numpy's doubles, and the generator (not a copy)
    ends where numpy's own draws leave it, its buffered half-word untouched."""
    for rng in generators(5, seed):
        rng.bit_generator.random_raw()
        rng.integers(0, 2**32, dtype=np.uint32)  # a buffered 32-bit half
        twin = copy.deepcopy(rng)
        words = pcg64.live_words(rng.bit_generator)
        assert words is not None
        for size in (0, 1, 392, 5):
            mine = np.empty(size)
            pcg64.fill_live_kernel(words, mine)
            np.testing.assert_array_equal(mine, twin.random(size))
            assert rng.bit_generator.state == twin.bit_generator.state
        assert rng.random() == twin.random()  # the generator goes on from there


def test_no_live_view_without_pcg64_or_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pcg64.live_words(np.random.Philox(1)) is None
    assert pcg64.live_words(np.random.SFC64(1)) is None
    monkeypatch.setattr(_jit, "ENABLED", False)
    assert pcg64.live_words(np.random.PCG64(1)) is None


def test_the_view_reads_only_inside_the_generator_object() -> None:
    """Pointers that do not lie inside the object (another layout) give no view."""

    class Elsewhere:  # a PCG64's capsule on an object whose memory does not hold its state
        def __init__(self, bits: np.random.PCG64) -> None:
            self.bits = bits
            self.capsule = bits.capsule

    bits = np.random.PCG64(4)
    assert pcg64._view(bits) is not None
    assert pcg64._view(Elsewhere(bits)) is None  # type: ignore[arg-type]
