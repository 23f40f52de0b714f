"""Settlement and bookkeeping kernels against the numpy code they replace.

Each test runs the numpy path (``mgenv._jit.ENABLED`` false) and the kernel path on the same
random inputs, many seeds, with the edge cases of each stage (no trades, none / all
committed, negative margins, zero offers and needs, rejected trades, NaN and signed zeros
where numpy's semantics are subtle), and asserts every output equal: same dtype, same bits
(tests/jit_compare.py). The physics and profile kernels: tests/test_jit_physics.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import mgenv
from mgenv import _jit, _ufuncs
from mgenv.core import MarketCore
from mgenv.market import settle_kernels, settlement
from mgenv.market.settlement import Positions, Settlement, Trades
from tests.jit_compare import SPECIAL, both, same, special_mix

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- ufuncs
@pytest.mark.parametrize("fn", ["maximum", "minimum"])
def test_scalar_ufuncs_are_numpys(fn: str) -> None:
    ours, ref = getattr(_ufuncs, fn), getattr(np, fn)
    for a in SPECIAL:
        for b in SPECIAL:
            expected = ref(np.array([a]), np.array([b]))[0]
            same(ours(a, b), float(expected), f"{fn}({a}, {b})")
            # an array against a scalar, as the numpy code calls them
            same(ours(a, b), float(ref(np.full(9, a), b)[3]), f"{fn}({a}, {b}) broadcast")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf on purpose
def test_divide_where_is_numpys() -> None:
    for a in SPECIAL:
        for b in SPECIAL:
            for default in (0.0, 1.0):
                use = b > 0
                expected = np.divide(
                    np.array([a]), np.array([b]), out=np.full(1, default), where=np.array([use])
                )[0]
                same(_ufuncs.divide_where(a, b, default, use), float(expected), f"{a}/{b}")


# ----------------------------------------------------------------------------- settle
def random_period(
    rng: np.random.Generator, n: int, count: int, committed: str = "random"
) -> tuple[Trades, np.ndarray, Positions, float, float]:
    """Random trades and positions of one market of ``n`` participants.

    Values mix zeros, negative errors, delta below and above 1 (negative and positive
    margins) and magnitudes over several decades, so that any change of order shows.
    """
    scale = 10.0 ** rng.uniform(-3, 3, count)
    kwh = rng.uniform(0, 1, count) * scale
    kwh[rng.random(count) < 0.1] = 0.0
    trades = Trades(
        seller=rng.integers(0, n, count),
        buyer=rng.integers(0, n, count),
        agg=rng.integers(0, n, count),
        kwh=kwh,
        price=rng.uniform(0.1, 1.5, count),
        delta=rng.uniform(0.5, 1.5, count),
    )
    mask = {
        "random": rng.random(count) < 0.6,
        "none": np.zeros(count, bool),
        "all": np.ones(count, bool),
    }[committed]

    def per_participant() -> np.ndarray:
        a = rng.uniform(0, 1, n) * 10.0 ** rng.uniform(-3, 3, n)
        a[rng.random(n) < 0.3] = 0.0
        return a

    error = rng.normal(0, 1, n) * 10.0 ** rng.uniform(-3, 2, n)
    error[rng.random(n) < 0.2] = 0.0
    pos = Positions(per_participant(), per_participant(), error)
    return trades, mask, pos, float(rng.uniform(0.3, 1.5)), float(rng.uniform(0.0, 0.5))


@pytest.mark.parametrize("committed", ["random", "none", "all"])
def test_settle_kernel_matches_numpy(monkeypatch: pytest.MonkeyPatch, committed: str) -> None:
    rng = np.random.default_rng(1)
    for case in range(400):
        n = int(rng.integers(1, 13))
        count = int(rng.integers(0, 3 * n + 1)) if case % 7 else 0  # every 7th: no trade
        args = random_period(rng, n, count, committed)
        fast, slow = both(monkeypatch, settlement.settle, *args)
        assert isinstance(fast, Settlement)
        same(fast, slow, f"case {case}")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf on purpose
def test_settle_kernel_special_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """NaN, inf and signed zeros in every input flow through as in numpy."""
    rng = np.random.default_rng(2)
    special = np.array(SPECIAL)
    for case in range(300):
        n, count = int(rng.integers(1, 9)), int(rng.integers(0, 12))
        trades, mask, pos, grid_buy, feed_in = random_period(rng, n, count)
        trades = Trades(
            *trades[:3],
            *(np.where(rng.random(count) < 0.3, rng.choice(special, count), a) for a in trades[3:]),
        )
        pos = Positions(*(np.where(rng.random(n) < 0.3, rng.choice(special, n), a) for a in pos))
        fast, slow = both(monkeypatch, settlement.settle, trades, mask, pos, grid_buy, feed_in)
        same(fast, slow, f"case {case}")


def test_settle_kernel_rejects_bad_index() -> None:
    trades, mask, pos, grid_buy, feed_in = random_period(np.random.default_rng(3), 4, 3)
    bad = trades._replace(buyer=np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="index"):
        settlement.settle(bad, mask, pos, grid_buy, feed_in)


@pytest.mark.parametrize("n", [*range(0, 40), 64, 127, 128, 129, 130, 257, 1000, 1031, 5000])
def test_add_reduce_is_numpys(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(10):
        # Magnitudes over 10 decades: any change of summation order shows in the last bits.
        a = rng.standard_normal(n + 3) * 10.0 ** rng.uniform(-5, 5, n + 3)
        same(_ufuncs.add_reduce(a, 2, 2 + n), float(np.add.reduce(a[2 : 2 + n])), f"n={n}")
    same(_ufuncs.add_reduce(np.full(n, -0.0), 0, n), float(np.add.reduce(np.full(n, -0.0))))


# ----------------------------------------------------------------------------- bookkeeping
BOOK_STATE = ("last_price", "sold_share", "served_share", "commit", "online_share", "kpi_latency")


def book_run(core: MarketCore, periods: list[tuple[Any, ...]]) -> list[Any]:
    """``core._book`` over a sequence of periods; the state it leaves after each."""
    out: list[Any] = []
    for trades, st, price, offered, profit, pos, res in periods:
        core._book(trades, res, st, price, offered, profit, pos)
        out.append([getattr(core, k) for k in BOOK_STATE])
        out.append([core._ratio[1], dict(core.kpi)])
    return out


@pytest.mark.parametrize("scenario", ["default", "consortium_p2p", "sbet_cooperative"])
def test_book_kernel_matches_numpy(monkeypatch: pytest.MonkeyPatch, scenario: str) -> None:
    env = mgenv.parallel_env(scenario)
    env.reset(seed=0)
    core = env.core
    n, nm = core.cfg.n_participants, core.cfg.n_microgrids
    rng = np.random.default_rng(6)
    for case in range(60):
        periods = []
        for k in range(5):
            count = 0 if (case + k) % 4 == 0 else int(rng.integers(1, 2 * n))
            committed = ("random", "none", "all")[k % 3]
            trades, mask, pos, grid_buy, feed_in = random_period(rng, n, count, committed)
            st = settlement.settle(trades, mask, pos, grid_buy, feed_in)
            offered = np.where(rng.random(nm) < 0.3, 0.0, rng.uniform(0, 50, nm))
            offered[rng.random(nm) < 0.1] = np.nan
            profit = rng.normal(0, 10, n)
            res = SimpleNamespace(online_share=rng.random(), latency_ms=rng.uniform(0, 900))
            price = None if k == 2 else float(rng.uniform(0.2, 1.2))
            periods.append((trades, st, price, offered, profit, pos, res))
        fast, slow = both(monkeypatch, book_run, core, periods)
        same(fast, slow, f"case {case}")


def test_positions_kernel_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    env = mgenv.parallel_env("consortium_p2p")  # load shifts: both branches of _positions
    env.reset(seed=0)
    core = env.core
    n, nm = core.cfg.n_participants, core.cfg.n_microgrids
    rng = np.random.default_rng(8)
    for case in range(200):
        core.t = int(rng.integers(0, core.cfg.horizon))
        core.dispatch = core.dispatch._replace(deficit=special_mix(rng, nm))
        core._need[core.t] = special_mix(rng, n)
        shift = None if case % 2 else rng.normal(0, 5, nm)
        fast, slow = both(monkeypatch, core._positions, special_mix(rng, nm), shift)
        same(fast, slow, f"case {case}")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf on purpose
def test_profit_kernel_is_the_numpy_expression() -> None:
    rng = np.random.default_rng(9)
    for case in range(300):
        n = int(rng.integers(1, 13))
        nm = int(rng.integers(0, n + 1))
        cash, fuel, penalty = special_mix(rng, n), special_mix(rng, nm), special_mix(rng, nm)
        if case % 3 == 0:
            penalty = np.zeros(nm)
        expected = cash.copy()  # MarketCore._settle's numpy code
        expected[:nm] -= fuel + penalty
        got = np.empty(n)
        settle_kernels.profit_into(cash, fuel, penalty, got)
        same(got, expected, f"case {case}")


def test_kpi_sums_are_numpys() -> None:
    rng = np.random.default_rng(10)
    for case in range(300):
        n = int(rng.integers(1, 40))
        nm, na = int(rng.integers(0, n + 1)), int(rng.integers(0, 3))
        profit, sold, ok, export = (
            rng.normal(0, 1, n) * 10.0 ** rng.uniform(-6, 6, n) for _ in range(4)
        )
        expected = (
            profit[:nm].sum(),
            profit[nm : nm + na].sum(),
            profit[nm + na :].sum(),
            profit.sum(),
            sold.sum(),
            ok.sum(),
            export.sum(),
        )
        got = settle_kernels.kpi_sums(profit, sold, ok, export, nm, na)
        same(list(got), [float(x) for x in expected], f"case {case}")


# ----------------------------------------------------------------------------- episodes
CORE_STATE = (
    "last_price",
    "sold_share",
    "served_share",
    "commit",
    "online_share",
    "kpi",
    "kpi_latency",
    "_need",
    "_error",
    "grid_buy",
    "feed_in",
)


def episode_run(scenario: str, overrides: dict[str, Any], seed: int) -> list[Any]:
    """Two episodes: every period's full result, infos and the core's state after it."""
    env = mgenv.parallel_env(scenario, **overrides)
    rng = np.random.default_rng(seed)
    out: list[Any] = []
    for episode in range(2):
        obs, _ = env.reset(seed=seed + episode)
        core = env.core
        out.append([obs, core.profiles, core.dispatch, core.physics.soc])
        while env.agents:
            acts = {
                a: rng.uniform(-1.2, 1.2, env.action_space(a).shape).astype(np.float32)
                for a in env.agents
            }
            step = env.step(acts)
            r = env.history[-1]
            # every field but the chain's block (an object with its own tests)
            fields = [v for k, v in r._asdict().items() if k != "chain"]
            chain = (r.chain.committed, r.chain.reason, r.chain.latency_ms, r.chain.extra)
            state = [getattr(core, k) for k in CORE_STATE]
            out.append([step, fields, chain, state, core.physics.soc, core.kpis()])
        out.append(env.episode_kpis())
    return out


@pytest.mark.parametrize(
    ("scenario", "overrides"),
    [
        ("default", {}),
        ("default", {"dispatch": "agent"}),
        ("default", {"message_loss": 0.4, "availability": 0.7}),  # many trades fail
        ("default", {"n_users": 0, "protocol": "pbft"}),
        ("ccche_thermal_game", {}),
        ("ccche_thermal_game", {"dispatch": "agent"}),
        ("consortium_p2p", {}),
        ("crosschain_aggregators", {}),
        ("sbet_cooperative", {}),
    ],
)
def test_episodes_match_numpy(
    monkeypatch: pytest.MonkeyPatch, scenario: str, overrides: dict[str, Any]
) -> None:
    fast, slow = both(monkeypatch, episode_run, scenario, overrides, 3)
    same(fast, slow)


@pytest.mark.parametrize(
    "overrides", [{}, {"message_loss": 0.4, "availability": 0.7}, {"protocol": "ideal"}]
)
def test_fused_settlement_equals_the_five_kernels(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any]
) -> None:
    """``default``'s settlement in one kernel call (``mgenv.period_kernel``) against the
    general path's five calls, both compiled: whole episodes, every field, the same bits."""
    assert MarketCore(mgenv.make_config("default")).__dict__["_fusable"]
    assert not MarketCore(mgenv.make_config("consortium_p2p")).__dict__["_fusable"]
    fused = episode_run("default", overrides, 5)

    def unfused(self: MarketCore, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._fusable = False
        self.fuse = False  # the whole period in one call (mgenv.fused) contains the settlement

    original_init = MarketCore.__init__
    monkeypatch.setattr(MarketCore, "__init__", unfused)
    same(fused, episode_run("default", overrides, 5))


# ----------------------------------------------------------------------------- cache
CACHED_CALL = """
import numpy as np
from mgenv.market.settle_kernels import kpi_sums, settle_into
a = np.arange(300.0)
e = np.zeros(0, np.int64)
f = np.zeros(0)
out = np.empty((9, 300))
settle_into(e, e, e, f, f, f, np.zeros(0, bool), a, a, a, 1.0, 0.5, out)
print(kpi_sums(a, a, a, a, 4, 2)[3] == np.add.reduce(a))
"""


def test_kernels_load_from_numba_cache(tmp_path: Any) -> None:
    """Kernels that call other kernels still run when loaded from numba's cache.

    numba cannot link a cached *recursive* function into another cached kernel: the first
    process (which compiles) works, every later one (which loads) crashes. Two processes
    with a fresh cache directory: the second loads what the first compiled.
    """
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": ROOT}
    for run in ("compiles", "loads"):
        done = subprocess.run(
            [sys.executable, "-c", CACHED_CALL],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{run}: {done.stderr[-2000:]}"
        assert done.stdout.strip() == "True", run


def test_kernels_refuse_mismatched_lengths() -> None:
    """numba does not bound-check: lengths numpy would refuse raise instead of corrupting."""
    trades, mask, pos, grid_buy, feed_in = random_period(np.random.default_rng(11), 4, 3)
    with pytest.raises(ValueError, match="lengths"):
        settlement.settle(trades, mask[:2], pos, grid_buy, feed_in)
    with pytest.raises(ValueError, match="lengths"):
        settlement.settle(trades._replace(price=trades.price[:2]), mask, pos, grid_buy, feed_in)
    with pytest.raises(ValueError, match="length"):
        settlement.settle(trades, mask, pos._replace(error=pos.error[:3]), grid_buy, feed_in)


def test_settle_kernel_takes_mixed_index_dtypes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Index arrays of other integer dtypes compile and agree."""
    rng = np.random.default_rng(13)
    trades, mask, pos, grid_buy, feed_in = random_period(rng, 6, 9)
    trades = trades._replace(buyer=trades.buyer.astype(np.int32), agg=trades.agg.astype(np.intp))
    fast, slow = both(monkeypatch, settlement.settle, trades, mask, pos, grid_buy, feed_in)
    same(fast, slow)
