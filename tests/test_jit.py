"""Compiled kernels (mgenv/_jit.py) give bit-identical results to the numpy code.

The kernels are numba functions; these tests run each scenario and protocol twice, once with
the kernels and once with the numpy code (``mgenv._jit.ENABLED`` flipped), and compare every
observation, reward, info, verdict and ledger head exactly. Unit-level comparisons of each
kernel on random inputs live beside the stage's own tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import mgenv
from mgenv import _jit

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")

PROTOCOLS = ("own", "pbft", "ideal", "sbet", "spft", "pos")


def _record(scenario: str, protocol: str, seed: int, episodes: int = 2) -> list[object]:
    overrides = {} if protocol == "own" else {"protocol": protocol}
    try:
        env = mgenv.parallel_env(scenario, **overrides)
    except ValueError:  # a protocol the scenario's market does not support
        pytest.skip(f"{scenario} does not run {protocol}")
    rng = np.random.default_rng(seed)
    out: list[object] = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        out.append(obs)
        while env.agents:
            # Some actions at and beyond the bounds, so that clipping is exercised too.
            acts = {
                a: rng.uniform(-1.2, 1.2, env.action_space(a).shape).astype(np.float32)
                for a in env.agents
            }
            step = env.step(acts)
            r = env.history[-1]
            out.append((step, r.committed, r.chain.reason, r.chain.latency_ms, r.price))
        chain = env.core.chain
        out.append((env.episode_kpis(), chain.node_heads(), chain.ledger.head_hash))
    return out


def _assert_same(a: object, b: object, where: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float):
        assert isinstance(b, float), where
        assert a == b or (math.isnan(a) and math.isnan(b)), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("scenario", mgenv.scenarios.names())
def test_kernels_match_numpy_over_episodes(
    scenario: str, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _record(scenario, protocol, seed=11)
    monkeypatch.setattr(_jit, "ENABLED", False)
    slow = _record(scenario, protocol, seed=11)
    _assert_same(fast, slow)


@pytest.mark.parametrize("n", [*range(0, 40), 63, 64, 65, 127, 500, 1031])
def test_argsort_stable_is_numpys(n: int) -> None:
    from mgenv._ufuncs import argsort_stable

    rng = np.random.default_rng(n)
    for _ in range(10):
        keys = rng.integers(0, 6, n).astype(np.float64)  # many ties
        keys[rng.random(n) < 0.1] = np.nan
        keys[rng.random(n) < 0.1] = -0.0
        order, tmp = np.empty(n, np.int64), np.empty(n, np.int64)
        argsort_stable(keys, order, tmp)
        np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))


def test_borrowing_helpers_take_no_references_and_cannot_allocate() -> None:
    """``_jit.borrowing`` compiles without reference counts: a helper reading a kernel's
    arrays gives the same answer, and one that would allocate an array is refused when
    compiled (it could not free it)."""
    import numba

    @_jit.borrowing
    def weighted(a: np.ndarray, w: np.ndarray, i: int) -> float:
        return float(a[i] * w[i])

    @_jit.kernel
    def total(a: np.ndarray, w: np.ndarray) -> float:
        s = 0.0
        for i in range(a.shape[0]):
            s += weighted(a, w, i)
        return s

    a, w = np.arange(5.0), np.linspace(0.0, 1.0, 5)
    assert total(a, w) == sum(float(x * y) for x, y in zip(a, w, strict=True))
    assert weighted.targetoptions["_nrt"] is False

    @_jit.borrowing
    def allocates(n: int) -> float:
        return float(np.zeros(n).sum())

    with pytest.raises(numba.core.errors.TypingError):
        allocates(3)
