"""The uniform-price market's kernel (mgenv/market/uniform_kernel.py) equals the numpy code.

Random books of many sizes, with ties (actions beyond the bounds clip to the same price),
empty offers, zero deficits, all-zero share weights and more than 8 segments (numpy's
pairwise summation), compared field by field with ``np.array_equal`` and dtypes.
"""

from __future__ import annotations

import numpy as np
import pytest

from mgenv import _jit
from mgenv.config import MarketParams
from mgenv.market.mechanism import MarketInputs, MarketOutcome
from mgenv.market.uniform import UniformPrice

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")


def _case(
    rng: np.random.Generator, nm: int, na: int, nu: int, s: int
) -> tuple[dict[str, np.ndarray], MarketInputs]:
    def acts(n: int, k: int) -> np.ndarray:
        a = rng.uniform(-1.5, 1.5, (n, k))
        a[rng.random((n, k)) < 0.15] = -1.0  # ties at the floor, zero weights
        a[rng.random((n, k)) < 0.1] = 1.0
        return a

    actions = {"mg": acts(nm, 2 * s + 3), "agg": acts(na, 2), "user": acts(nu, 2)}
    if rng.random() < 0.2:  # every share weight zero: equal shares
        actions["mg"][:, s : 2 * s] = -1.0

    def kwh(n: int) -> np.ndarray:
        return rng.uniform(0, 80, n) * (rng.random(n) < 0.7)

    buyer_agg = np.arange(nm + nu) % na
    buyer_global = np.concatenate((np.arange(nm), nm + na + np.arange(nu)))
    inputs = MarketInputs(
        kwh(nm), kwh(nm), kwh(nu), float(rng.uniform(0.4, 1.2)), 0.3, buyer_agg, buyer_global,
        nm, na,
    )  # fmt: skip
    return actions, inputs


def _fields(out: MarketOutcome) -> list[object]:
    return [out.price, out.cleared, out.offered_kwh, out.delta, *out.trades]


@pytest.mark.parametrize(
    ("nm", "na", "nu", "s"),
    [(4, 2, 2, 3), (1, 1, 0, 1), (3, 1, 1, 2), (16, 8, 8, 3), (64, 32, 32, 2), (5, 2, 3, 8),
     (4, 2, 2, 9), (2, 1, 1, 10), (8, 3, 0, 4)],
)  # fmt: skip
def test_kernel_equals_numpy_market(
    nm: int, na: int, nu: int, s: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    mech = UniformPrice(MarketParams(n_segments=s))
    rng = np.random.default_rng(nm * 1000 + s)
    cleared = 0
    for k in range(300):
        actions, inputs = _case(rng, nm, na, nu, s)
        if k % 10 == 0:  # nothing to buy: nothing clears
            inputs = inputs._replace(deficit_kwh=0.0 * inputs.deficit_kwh)
            inputs = inputs._replace(user_need_kwh=0.0 * inputs.user_need_kwh)
        monkeypatch.setattr(_jit, "ENABLED", True)
        fast = _fields(mech.clear(actions, inputs))
        monkeypatch.setattr(_jit, "ENABLED", False)
        slow = _fields(mech.clear(actions, inputs))
        cleared += bool(slow[1])
        for a, b in zip(fast, slow, strict=True):
            if isinstance(b, np.ndarray):
                assert isinstance(a, np.ndarray) and a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)
            else:
                assert type(a) is type(b) and a == b
    assert 0 < cleared < 300  # both outcomes were exercised


def test_work_buffers_fit_exactly() -> None:
    """work_sizes is the exact need of work_in: one entry less in either buffer raises."""
    from mgenv.market.uniform_kernel import clear_uniform, work_sizes

    rng = np.random.default_rng(7)
    actions, inputs = _case(rng, 4, 2, 2, 3)
    acts = (actions["mg"], actions["agg"], actions["user"])
    pos = (inputs.offerable_kwh, inputs.deficit_kwh, inputs.user_need_kwh)
    buyers = (inputs.buyer_agg, inputs.buyer_global)
    n_f, n_i = work_sizes(4, 2, inputs.buyer_agg.shape[0], 3)
    bounds = (0.2, 1.5, 0.85, 1.2)

    def run(nf: int, ni: int) -> tuple[float, bool, int]:
        floats, ints = np.empty((4, 10)), np.empty((3, 10), np.int64)
        scratch = (np.empty(nf), np.empty(ni, np.int64))
        return clear_uniform(acts, pos, buyers, 1.0, bounds, 3, scratch, floats, ints)

    run(n_f, n_i)
    for nf, ni in ((n_f - 1, n_i), (n_f, n_i - 1)):
        with pytest.raises(ValueError, match="buffer too small"):
            run(nf, ni)
    with pytest.raises(ValueError, match="too narrow"):
        clear_uniform(
            acts, pos, buyers, 1.0, bounds, 3, (np.empty(n_f), np.empty(n_i, np.int64)),
            np.empty((4, 9)), np.empty((3, 10), np.int64),
        )  # fmt: skip
