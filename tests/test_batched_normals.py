"""numpy's standard normals from seed words in a kernel (mgenv.batched.normals): same bits."""

from __future__ import annotations

import numpy as np
import pytest

import mgenv
from mgenv.batched import normals
from mgenv.batched.physics import draw_profiles_batch, draw_profiles_seeded
from mgenv.batched.streams import EpisodeBatch
from mgenv.streams import seed_stream

pytestmark = pytest.mark.skipif(not normals.AVAILABLE, reason="needs numba and its tables")

_Z_R = 3.6541528853610087963519472518  # the ziggurat's base layer edge (numpy's r)


def _words(seqs: list[np.random.SeedSequence]) -> np.ndarray:
    return np.array([s.generate_state(4, np.uint64) for s in seqs])


def test_profile_draws_equal_numpy_generators() -> None:
    """64 pairs of streams: the raw uniform and both blocks of normals, bit for bit."""
    rng = np.random.default_rng(1)
    nb, w, ln = 64, 317, 150
    seqs = [np.random.SeedSequence(int(s)) for s in rng.integers(0, 2**63, 2 * nb)]
    raw, zw, zl = np.empty(nb, np.uint64), np.empty((nb, w)), np.empty((nb, ln))
    normals.profile_draws(_words(seqs[:nb]), _words(seqs[nb:]), raw, zw, zl)
    for b in range(nb):
        weather = np.random.Generator(np.random.PCG64(seqs[b]))
        assert int(weather.bit_generator.random_raw()) == int(raw[b])
        np.testing.assert_array_equal(zw[b], weather.standard_normal(w))
        load = np.random.Generator(np.random.PCG64(seqs[nb + b]))
        np.testing.assert_array_equal(zl[b], load.standard_normal(ln))


def test_rare_branches_of_the_ziggurat() -> None:
    """A million draws: the wedges (exp) and the tail beyond r (log1p) are taken, same bits."""
    seq = np.random.SeedSequence(12345)
    big, raw, none = np.empty((1, 1_000_000)), np.empty(1, np.uint64), np.empty((1, 0))
    normals.profile_draws(_words([seq]), _words([seq]), raw, big, none)
    want = np.random.Generator(np.random.PCG64(seq))
    want.bit_generator.random_raw()
    z = want.standard_normal(1_000_000)
    assert (np.abs(z) > _Z_R).sum() > 100  # the tail branch ran
    np.testing.assert_array_equal(big[0], z)


def test_seeded_profiles_equal_the_generators_profiles() -> None:
    """The batched reset's profiles from seed words equal those from the built generators."""
    cfg = mgenv.make_config("default", n_microgrids=5, n_users=3)
    batch = EpisodeBatch([seed_stream(s) for s in range(6)])
    seeded = draw_profiles_seeded(cfg, batch.words("weather"), batch.words("load"))
    built = draw_profiles_batch(cfg, batch.streams("weather"), batch.streams("load"))
    for name, a, b in zip(seeded._fields, seeded, built, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
