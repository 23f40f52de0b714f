"""The batched market and settlement equal the single mechanism copy by copy, bit for bit."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest

import mgenv
from mgenv import _jit
from mgenv.batched.market import (
    BatchedMarket,
    clear_uniform_batch,
    clear_uniform_price_batch,
    match_bilateral_batch,
    max_trades,
)
from mgenv.batched.settlement import BatchedTrades, settle_batch
from mgenv.config import EnvConfig
from mgenv.market.clearing import clear_uniform_price, match_bilateral
from mgenv.market.mechanism import MarketInputs, MarketOutcome
from mgenv.market.settlement import Positions, Trades, settle
from mgenv.market.uniform import UniformPrice

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "large": {"n_microgrids": 16, "n_users": 5, "n_aggregators": 3},
    # n_segments >= 8 and 21 bids: numpy's pairwise sums kick in for the row reductions.
    "wide": {"n_microgrids": 11, "n_users": 10, "n_aggregators": 4, "n_segments": 10},
    "no_users": {"n_microgrids": 3, "n_users": 0, "n_aggregators": 1, "n_segments": 1},
    # one offer (numpy's matmul takes its dot path) and one bid (its non-BLAS path)
    "one_offer": {"n_microgrids": 1, "n_users": 2, "n_aggregators": 2, "n_segments": 1},
    "one_bid": {"n_microgrids": 1, "n_users": 0, "n_aggregators": 1, "n_segments": 2},
}
SIZES = (1, 2, 7, 64)
KINDS = ("mixed", "ties", "no_supply", "no_demand", "extreme")


def config(name: str) -> EnvConfig:
    cfg: EnvConfig = mgenv.parallel_env("default", **CONFIGS[name]).config
    return cfg


class Case(NamedTuple):
    mg: np.ndarray
    agg: np.ndarray
    user: np.ndarray
    offerable: np.ndarray
    deficit: np.ndarray
    need: np.ndarray
    buyer_agg: np.ndarray
    buyer_global: np.ndarray
    grid_buy: float


def make_case(cfg: EnvConfig, b: int, kind: str, seed: int) -> Case:
    """Random actions and positions of ``b`` copies; ``kind`` picks the edge cases."""
    rng = np.random.default_rng(seed)
    nm, na, nu = cfg.n_microgrids, cfg.n_aggregators, cfg.n_users
    dim = 2 * cfg.market.n_segments + 3

    def acts(n: int, d: int) -> np.ndarray:
        a = rng.uniform(-1.0, 1.0, (b, n, d))
        if kind == "ties":  # a coarse grid: equal prices, equal shares, all-zero weights
            a = rng.choice(np.array([-1.0, -0.5, 0.0, 0.5, 1.0]), (b, n, d))
        elif kind == "extreme":  # exact bounds and zeros, some beyond [-1, 1] (clipped)
            pick = rng.integers(0, 5, (b, n, d))
            a = np.choose(pick, [a, np.full_like(a, -1.0), np.ones_like(a), 0.0 * a, 3.0 * a])
        else:  # as the env passes them: float32 actions cast to float64
            a = a.astype(np.float32).astype(np.float64)
        return a

    def kwh(n: int, scale: float) -> np.ndarray:
        v = rng.uniform(0.0, scale, (b, n))
        return np.where(rng.random((b, n)) < 0.3, 0.0, v)  # zeros: no offer / no need

    offerable, deficit, need = kwh(nm, 50.0), kwh(nm, 30.0), kwh(nu, 40.0)
    if kind == "no_supply":
        offerable[: b // 2 + 1] = 0.0
    if kind == "no_demand":
        deficit[: b // 2 + 1] = 0.0
        need[: b // 2 + 1] = 0.0
    return Case(
        acts(nm, dim),
        acts(na, 2),
        acts(nu, 2),
        offerable,
        deficit,
        need,
        np.arange(nm + nu) % na,  # as MarketCore builds them
        np.concatenate((np.arange(nm), nm + na + np.arange(nu))),
        float(rng.choice(np.array([0.35, 0.68, 1.05]))),
    )


def single(cfg: EnvConfig, c: Case, b: int) -> MarketOutcome:
    """Copy ``b`` through the single mechanism, as MarketCore.step calls it."""
    inputs = MarketInputs(
        c.offerable[b],
        c.deficit[b],
        c.need[b],
        c.grid_buy,
        0.3,
        c.buyer_agg,
        c.buyer_global,
        cfg.n_microgrids,
        cfg.n_aggregators,
    )
    return UniformPrice(cfg.market).clear(
        {"mg": c.mg[b], "agg": c.agg[b], "user": c.user[b]}, inputs
    )


def batched(cfg: EnvConfig, c: Case) -> BatchedMarket:
    return clear_uniform_batch(
        cfg.market,
        c.mg,
        c.agg,
        c.user,
        c.offerable,
        c.deficit,
        c.need,
        c.buyer_agg,
        c.buyer_global,
        c.grid_buy,
    )


def exact(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))


def assert_market_equal(cfg: EnvConfig, c: Case, out: BatchedMarket) -> None:
    n = c.mg.shape[0]
    width = max_trades(cfg.n_microgrids, cfg.n_users)
    tr = out.trades
    for f in BatchedTrades._fields:
        assert getattr(tr, f).shape == (n, width), f
    assert tr.live.dtype == np.bool_
    for b in range(n):
        ref = single(cfg, c, b)
        live = tr.live[b]
        assert live[: live.sum()].all(), "live trades come first"
        for f in Trades._fields:
            got, want = getattr(tr, f)[b], getattr(ref.trades, f)
            assert exact(got[live], want), (b, f, got[live], want)
            assert not got[~live].any(), (b, f, "padding is zero")
        assert out.price[b] == ref.price and isinstance(ref.price, float)
        assert out.cleared[b] == ref.cleared
        assert exact(out.offered[b], ref.offered_kwh), b
        assert exact(out.delta[b], ref.delta), b
    assert out.price.dtype == np.float64 and out.cleared.dtype == np.bool_


@pytest.mark.parametrize("jit", [True, False], ids=["kernels", "numpy"])
@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("b", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_clearing_equals_single(
    name: str, b: int, kind: str, jit: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both paths: the kernels copy by copy and the numpy code (mgenv/_jit.py)."""
    monkeypatch.setattr(_jit, "ENABLED", jit and _jit.ENABLED)
    cfg = config(name)
    for seed in range(3):
        c = make_case(cfg, b, kind, seed + 100 * b)
        assert_market_equal(cfg, c, batched(cfg, c))


def test_cases_exercise_the_edges() -> None:
    """The random cases do reach ties, pro-rata groups, uncleared and many-trade copies."""
    cfg = config("default")
    seen = {"uncleared": 0, "cleared": 0, "tied_last": 0, "full": 0}
    width = max_trades(cfg.n_microgrids, cfg.n_users)
    for kind in KINDS:
        c = make_case(cfg, 64, kind, 7)
        out = batched(cfg, c)
        seen["uncleared"] += int((~out.cleared).sum())
        seen["cleared"] += int(out.cleared.sum())
        seen["full"] += int((out.trades.live.sum(1) >= width - 2).sum())
        prices = 0.3 + (np.minimum(np.maximum(c.mg[:, :, :3], -1), 1) + 1) * 0.5 * 0.8
        ties = (np.isclose(prices, out.price[:, None, None]).sum((1, 2)) > 1) & out.cleared
        seen["tied_last"] += int(ties.sum())
    assert all(v > 0 for v in seen.values()), seen


def test_nothing_cleared_gives_no_trades() -> None:
    cfg = config("default")
    c = make_case(cfg, 7, "mixed", 3)._replace(offerable=np.zeros((7, cfg.n_microgrids)))
    out = batched(cfg, c)
    assert not out.cleared.any() and not out.trades.live.any()
    assert (out.price == 0.0).all() and not out.trades.kwh.any()
    assert_market_equal(cfg, c, out)


def test_bad_action_shape_raises() -> None:
    cfg = config("default")
    c = make_case(cfg, 2, "mixed", 0)
    with pytest.raises(ValueError, match="action shapes"):
        batched(cfg, c._replace(mg=c.mg[:, :, :-1]))


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("b", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_settlement_equals_single(name: str, b: int, kind: str) -> None:
    cfg = config(name)
    nm, p = cfg.n_microgrids, cfg.n_participants
    for seed in range(3):
        c = make_case(cfg, b, kind, seed + 1000 * b)
        tr = batched(cfg, c).trades
        rng = np.random.default_rng(seed)
        # committed: all, none, or at random (a copy of each in most batches)
        u = rng.random(tr.live.shape)
        mode = rng.integers(0, 3, (b, 1))
        committed = np.where(mode == 0, True, np.where(mode == 1, False, u < 0.6))
        surplus = np.zeros((b, p))
        surplus[:, :nm] = np.where(rng.random((b, nm)) < 0.3, 0.0, rng.uniform(0, 40, (b, nm)))
        deficit = np.where(rng.random((b, p)) < 0.3, 0.0, rng.uniform(0, 30, (b, p)))
        error = rng.normal(0.0, 3.0, (b, p)) * (rng.random((b, p)) < 0.8)
        grid_buy, feed_in = c.grid_buy, 0.3
        st = settle_batch(tr, committed, surplus, deficit, error, grid_buy, feed_in)
        for i in range(b):
            live = tr.live[i]
            trades = Trades(*(getattr(tr, f)[i][live] for f in Trades._fields))
            pos = Positions(surplus[i], deficit[i], error[i])
            ref = settle(trades, committed[i][live], pos, grid_buy, feed_in)
            for f in ref._fields:
                got, want = getattr(st, f)[i], getattr(ref, f)
                if f == "grid_cash":
                    assert got == want, (i, f)
                else:
                    assert exact(got, want), (i, f, got, want)
        assert st.grid_cash.shape == (b,)


def test_settlement_padding_and_rows_do_not_mix() -> None:
    """A copy's settlement does not depend on the other copies or on the padding's flags."""
    cfg = config("large")
    c = make_case(cfg, 7, "mixed", 5)
    tr = batched(cfg, c).trades
    p = cfg.n_participants
    rng = np.random.default_rng(0)
    sur, dfc, err = (rng.uniform(0, 10, (7, p)) for _ in range(3))
    committed = rng.random(tr.live.shape) < 0.5
    a = settle_batch(tr, committed, sur, dfc, err, 0.68, 0.3)
    flipped = np.where(tr.live, committed, ~committed)  # padding flags flipped
    b = settle_batch(tr, flipped, sur, dfc, err, 0.68, 0.3)
    one = BatchedTrades(*(x[3:4] for x in tr))
    c1 = settle_batch(one, committed[3:4], sur[3:4], dfc[3:4], err[3:4], 0.68, 0.3)
    for f in a._fields:
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
        assert np.array_equal(getattr(a, f)[3:4], getattr(c1, f)), f


def volumes(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Volumes with zeros, whole numbers (shared breakpoints), tenths and fractions.

    Tenths make sums that agree in exact arithmetic differ by rounding: the clearing's
    slivers (below 1e-12 of the bid volume) that must not set the price.
    """
    whole = rng.integers(0, 4, shape).astype(np.float64)
    tenths = rng.integers(0, 9, shape) * 0.1
    frac = rng.uniform(0.0, 5.0, shape) * 10.0 ** rng.integers(-3, 3, shape)
    kind = rng.integers(0, 3, shape[0])[:, None]
    return np.choose(kind, [whole, tenths, frac])


@pytest.mark.parametrize("b", SIZES)
@pytest.mark.parametrize(("n_off", "n_bid"), [(1, 1), (1, 4), (3, 1), (12, 6), (48, 21)])
def test_clear_uniform_price_batch_equals_single(b: int, n_off: int, n_bid: int) -> None:
    rng = np.random.default_rng(b * 1000 + n_off * 10 + n_bid)
    for _ in range(5):
        # coarse prices: many equal-price groups and limits equal to offer prices
        price = rng.choice(np.linspace(0.3, 1.1, 5), (b, n_off))
        limit = rng.choice(np.linspace(0.3, 1.1, 9), (b, n_bid))
        limit = np.where(rng.random((b, n_bid)) < 0.5, limit, rng.uniform(0.3, 1.1, (b, n_bid)))
        offer, bid = volumes(rng, (b, n_off)), volumes(rng, (b, n_bid))
        got = clear_uniform_price_batch(price, offer, limit, bid)
        for i in range(b):
            want = clear_uniform_price(price[i], offer[i], limit[i], bid[i])
            assert got.price[i] == want.price and got.cleared[i] == want.cleared, i
            assert exact(got.awarded_kwh[i], want.awarded_kwh), i
            assert exact(got.served_kwh[i], want.served_kwh), i


@pytest.mark.parametrize("b", SIZES)
@pytest.mark.parametrize(("ns", "nb"), [(1, 1), (1, 3), (4, 6), (16, 21)])
def test_match_bilateral_batch_equals_single(b: int, ns: int, nb: int) -> None:
    rng = np.random.default_rng(b * 100 + ns * 7 + nb)
    for _ in range(5):
        sold, bought = volumes(rng, (b, ns)), volumes(rng, (b, nb))
        # equal totals in most rows (as a clearing gives), different in some
        scale = bought.sum(1) / np.where(sold.sum(1) > 0, sold.sum(1), 1.0)
        sold = np.where((rng.random(b) < 0.8)[:, None], sold * scale[:, None], sold)
        # decimal volumes: breakpoints that agree in exact arithmetic differ by rounding
        # slivers (below 1e-12 of the total), which the matching drops
        tenths = rng.integers(1, 9, (b, ns))
        cut = np.sort(rng.integers(0, tenths.sum(1)[:, None] + 1, (b, nb)), axis=1)
        cut[:, -1] = tenths.sum(1)
        decimal = rng.random(b) < 0.5
        sold = np.where(decimal[:, None], tenths * 0.1, sold)
        bought = np.where(decimal[:, None], np.diff(cut, prepend=0, axis=1) * 0.1, bought)
        si, bi, kwh, live = match_bilateral_batch(sold, bought)
        assert si.shape == (b, ns + nb - 1) and live.dtype == np.bool_
        for i in range(b):
            ws, wb, wq = match_bilateral(sold[i], bought[i])
            n = ws.shape[0]
            assert live[i, :n].all() and not live[i, n:].any(), i
            assert exact(si[i, :n], ws) and exact(bi[i, :n], wb) and exact(kwh[i, :n], wq), i
            assert not (si[i, n:].any() or bi[i, n:].any() or kwh[i, n:].any()), i


def test_clearing_slivers_do_not_set_the_price() -> None:
    """Books in tenths: a group acceptance that is rounding noise counts as zero, per copy."""
    rng = np.random.default_rng(11)
    b, n_off, n_bid = 512, 6, 4
    price = rng.choice(np.linspace(0.3, 1.1, 5), (b, n_off))
    limit = rng.choice(np.linspace(0.3, 1.1, 5), (b, n_bid))
    offer = rng.integers(0, 9, (b, n_off)) * 0.1
    bid = rng.integers(0, 9, (b, n_bid)) * 0.1
    got = clear_uniform_price_batch(price, offer, limit, bid)
    slivers = 0
    for i in range(b):
        # the single rule's raw group acceptances, to count the books with a sliver
        p = np.sort(price[i], kind="stable")
        kwh = offer[i][price[i].argsort(kind="stable")]
        cum = np.concatenate(([0.0], np.add.accumulate(kwh)))
        cheaper = cum[p.searchsorted(p, "left")]
        raw = np.minimum(
            np.maximum(np.less_equal.outer(p, limit[i]) @ bid[i] - cheaper, 0.0),
            cum[p.searchsorted(p, "right")] - cheaper,
        )
        slivers += bool(((raw > 0) & (raw <= 1e-12 * max(bid[i].sum(), 1.0))).any())
        want = clear_uniform_price(price[i], offer[i], limit[i], bid[i])
        assert got.price[i] == want.price and got.cleared[i] == want.cleared, i
        assert exact(got.awarded_kwh[i], want.awarded_kwh), i
        assert exact(got.served_kwh[i], want.served_kwh), i
    assert slivers > 0


def record_episode(
    monkeypatch: pytest.MonkeyPatch, seed: int, overrides: dict[str, Any]
) -> tuple[list[Any], list[Any]]:
    """Run one single-env episode with random actions; record every clearing and settlement."""
    import mgenv.core

    env = mgenv.parallel_env("default", **overrides)
    clears: list[Any] = []
    settles: list[Any] = []
    clear = env.core.mechanism.clear

    def recording_clear(actions: dict[str, np.ndarray], inputs: MarketInputs) -> MarketOutcome:
        out = clear(actions, inputs)
        clears.append(({k: v.copy() for k, v in actions.items()}, inputs, out))
        return out

    def recording_settle(*args: Any) -> Any:
        out = settle(*args)
        settles.append((args, out))
        return out

    env.core.mechanism.clear = recording_clear  # type: ignore[method-assign]
    monkeypatch.setattr(mgenv.core, "settle", recording_settle)
    # the general settlement path calls settle(); the fused one (same numbers) does not
    monkeypatch.setattr(env.core, "_fusable", False)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    while env.agents:
        env.step({a: rng.uniform(-1, 1, env.action_space(a).shape) for a in env.agents})
    return clears, settles


@pytest.mark.parametrize(
    "overrides",
    [{}, {"n_microgrids": 16, "n_users": 5, "n_aggregators": 3, "protocol": "pbft"}],
)
def test_episodes_of_the_single_env(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any]
) -> None:
    """The env's own inputs (dispatch, opponents, chain outcomes), three seeds as copies."""
    runs = [record_episode(monkeypatch, seed, overrides) for seed in (0, 1, 2)]
    cfg = mgenv.parallel_env("default", **overrides).config
    width = max_trades(cfg.n_microgrids, cfg.n_users)
    for t in range(len(runs[0][0])):
        calls = [run[0][t] for run in runs]
        inp = [c[1] for c in calls]
        mg, agg, user = (np.stack([c[0][r] for c in calls]) for r in ("mg", "agg", "user"))
        out = clear_uniform_batch(
            cfg.market,
            mg,
            agg,
            user,
            np.stack([i.offerable_kwh for i in inp]),
            np.stack([i.deficit_kwh for i in inp]),
            np.stack([i.user_need_kwh for i in inp]),
            inp[0].buyer_agg,
            inp[0].buyer_global,
            inp[0].grid_buy,
        )
        committed = np.zeros((3, width), dtype=bool)
        for b, run in enumerate(runs):
            want = calls[b][2]
            live = out.trades.live[b]
            for f in Trades._fields:
                assert exact(getattr(out.trades, f)[b][live], getattr(want.trades, f)), (t, b, f)
            assert out.price[b] == want.price and out.cleared[b] == want.cleared
            assert exact(out.offered[b], want.offered_kwh) and exact(out.delta[b], want.delta)
            committed[b, : live.sum()] = run[1][t][0][1]
        args = [run[1][t][0] for run in runs]
        sur, dfc, err = (np.stack([a[2][j] for a in args]) for j in range(3))
        st = settle_batch(out.trades, committed, sur, dfc, err, args[0][3], args[0][4])
        for b, run in enumerate(runs):
            want_st = run[1][t][1]
            for f in want_st._fields:
                assert np.array_equal(getattr(st, f)[b], getattr(want_st, f)), (t, b, f)
