"""The batched core's compiled paths against its numpy code, exactly.

The batched chain's SBET kernels and the settlement kernel are also compared with single envs
and chains on whole episodes (tests/test_batched_chain.py and tests/test_batched_env.py run
both paths); here: the settlement and bookkeeping kernel against the numpy functions on
random inputs with edge cases, the kernels' node view against ``NodeHeads``, and the two
chain paths mixed within an episode.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import mgenv
from mgenv import _jit
from mgenv.batched import observe as bobs
from mgenv.batched.chain import BatchedChain
from mgenv.batched.chain_kernels import update_view
from mgenv.batched.core import BatchedCore
from mgenv.batched.physics import BatchedElectric
from mgenv.batched.settlement import settle_batch, settle_copies
from mgenv.batched.streams import EpisodeBatch
from mgenv.chain import Chain, ChainParams, Ledger
from mgenv.chain.nodeview import NodeHeads, NodeRound
from mgenv.chain.packed import MALICIOUS
from mgenv.core import COMMIT_EMA, MarketCore
from mgenv.market.settle_kernels import SETTLE_ROWS
from mgenv.physics.model import Forecast
from tests.test_batched_chain import assert_copy_matches, random_period, streams
from tests.test_batched_market import batched, config, make_case
from tests.test_batched_physics import random_state

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")


def book_numpy(
    cfg: Any, st: Any, deficit: np.ndarray, offered: np.ndarray, commit: np.ndarray
) -> SimpleNamespace:
    """``BatchedCore._book`` (numpy) on a stand-in core: the shares and the commit EMA."""
    nb = deficit.shape[0]
    single = SimpleNamespace(buyer_global=buyer_global(cfg))
    core = SimpleNamespace(cfg=cfg, single=single, n_copies=nb, commit=commit.copy())
    core.last_price = np.zeros(nb)
    BatchedCore._book(core, np.zeros(nb), np.zeros(nb, bool), offered, st, deficit)  # type: ignore[arg-type]
    return core


def buyer_global(cfg: Any) -> np.ndarray:
    nm, na, nu = cfg.n_microgrids, cfg.n_aggregators, cfg.n_users
    return np.concatenate((np.arange(nm), nm + na + np.arange(nu)))


@pytest.mark.parametrize("name", ["default", "large", "no_users", "one_offer"])
@pytest.mark.parametrize("b", [1, 16, 256])
@pytest.mark.parametrize("kind", ["mixed", "ties", "no_supply", "no_demand", "extreme"])
def test_settle_copies_equals_numpy(name: str, b: int, kind: str) -> None:
    """One kernel call against ``settle_batch`` and ``_book``: every row, bit for bit.

    Copies with all, none or some trades committed; zero surpluses, needs and offers; no
    trades at all (no supply or no demand); errors of both signs.
    """
    cfg = config(name)
    nm, p = cfg.n_microgrids, cfg.n_participants
    for seed in range(2):
        c = make_case(cfg, b, kind, seed + 7 * b)
        market = batched(cfg, c)
        tr = market.trades
        rng = np.random.default_rng(seed)
        u = rng.random(tr.live.shape)
        mode = rng.integers(0, 3, (b, 1))
        committed = np.where(mode == 0, True, np.where(mode == 1, False, u < 0.6)) & tr.live
        mg_surplus = np.where(rng.random((b, nm)) < 0.3, 0.0, rng.uniform(0, 40, (b, nm)))
        mg_deficit = np.where(rng.random((b, nm)) < 0.3, 0.0, rng.uniform(0, 30, (b, nm)))
        # need: the users' columns (the core's _need[:, t]: zero for microgrids, aggregators)
        need = np.zeros((b, 3, p))[:, 1]  # a strided view, as the core passes it
        need[:, nm + cfg.n_aggregators :] = rng.uniform(0, 30, (b, cfg.n_users))
        error = rng.normal(0.0, 3.0, (b, p)) * (rng.random((b, p)) < 0.8)
        commit = rng.uniform(0.0, 1.0, (b, p))
        grid_buy, feed_in = c.grid_buy, 0.3
        surplus_p = np.zeros((b, p))
        surplus_p[:, :nm] = mg_surplus
        deficit_p = need.copy()
        deficit_p[:, :nm] = mg_deficit
        st = settle_batch(tr, committed, surplus_p, deficit_p, error, grid_buy, feed_in)
        want = book_numpy(cfg, st, deficit_p, market.offered, commit)
        rows = np.empty((b, 11, p))
        sold_share = np.full((b, nm), np.nan)
        served_share = np.full((b, len(buyer_global(cfg))), np.nan)
        got_commit = commit.copy()
        settle_copies(
            (tr.seller, tr.buyer, tr.agg),
            (tr.kwh, tr.price, tr.delta),
            tr.live,
            committed,
            (mg_surplus, mg_deficit, need, error),
            (grid_buy, feed_in),
            market.offered,
            buyer_global(cfg),
            COMMIT_EMA,
            rows,
            (sold_share, served_share, got_commit),
        )
        for r, field in enumerate(SETTLE_ROWS):
            np.testing.assert_array_equal(rows[:, r], getattr(st, field), err_msg=field)
        np.testing.assert_array_equal(rows[:, 9, 0], st.grid_cash)
        n_live = tr.live.sum(axis=1)
        share = np.divide(committed.sum(axis=1), n_live, out=np.ones(b), where=n_live > 0)
        np.testing.assert_array_equal(rows[:, 10, 0], share)
        np.testing.assert_array_equal(sold_share, want.sold_share)
        np.testing.assert_array_equal(served_share, want.served_share)
        np.testing.assert_array_equal(got_commit, want.commit)
        assert (n_live == 0).any() or kind not in ("no_supply", "no_demand")


@pytest.mark.parametrize("malicious_share", [0.4, 0.0])
def test_update_view_equals_node_heads(malicious_share: float) -> None:
    """The kernels' node view (one copy at a time) equals ``NodeHeads`` on random rounds.

    As tests/test_batched_chain.py's check of the numpy node view: committed blocks held by
    some nodes, altered ones held by malicious nodes only, no block; random online nodes.
    """
    rng = np.random.default_rng(6)
    n, nb = 5, 64
    malicious = rng.random((n, nb)) < malicious_share
    top = np.zeros(nb, dtype=np.int64)
    height = np.zeros((n, nb), dtype=np.int64)
    forked = np.zeros((n, nb), dtype=bool)
    singles = [NodeHeads(malicious[:, b]) for b in range(nb)]
    ledgers = [Ledger(3) for _ in range(nb)]
    for period in range(60):
        online = rng.random((n, nb)) < 0.6
        kind = rng.integers(0, 3, nb)  # 0: no block, 1: committed, 2: altered
        holders = (rng.random((n, nb)) < 0.5) & (kind > 0)
        holders &= np.where(kind == 2, malicious, True)
        for b, (heads, ledger) in enumerate(zip(singles, ledgers, strict=True)):
            altered, block = bool(kind[b] == 2 and holders[:, b].any()), bool(kind[b] == 1)
            some = altered or block
            nodes = np.zeros((nb, 3, n), dtype=bool)
            nodes[:, MALICIOUS] = malicious.T
            figures = update_view(
                b,
                np.ascontiguousarray(online.T),
                nodes,
                np.ascontiguousarray(holders[:, b]) if some else np.ones(n, dtype=bool),
                some,
                altered,
                block,
                top,
                height,
                forked,
            )
            appended = ledger.append(period, [], 0) if block else None
            held = holders[:, b] if some else None
            one = heads.update(period, ledger, appended, NodeRound(online[:, b], held, altered))
            keys = ("honest_heads_agree", "lagging_nodes", "forked_nodes")
            assert figures == tuple(one[k] for k in keys)
            assert top[b] == ledger.next_height
            np.testing.assert_array_equal(height[:, b], heads.height)
            np.testing.assert_array_equal(forked[:, b], heads.forked)


@pytest.mark.parametrize(
    "fields",
    [
        {"protocol": "sbet", "message_loss": 0.1, "availability": 0.7, "mean_outage_periods": 3.0},
        {"protocol": "sbet", "malicious_share": 0.3, "n_nodes": 10, "missing_share": 0.3},
    ],
)
def test_paths_mix_within_an_episode(
    fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_jit.ENABLED`` is read at every call: switching paths period by period changes
    nothing (the online chain, node view and streams carry over between them)."""
    params = ChainParams(**fields)
    nb, horizon = 6, 8
    nets, advs = streams(3, nb)
    single_nets, single_advs = copy.deepcopy(nets), copy.deepcopy(advs)
    chain = BatchedChain(params, 8, nb, horizon=horizon)
    rng = np.random.default_rng(4)
    flips = np.random.default_rng(5)
    for episode in range(2):
        chain.reset(nets, advs)
        singles = [
            Chain(params, 8, single_nets[b], single_advs[b], key_seed=episode) for b in range(nb)
        ]
        for t in range(horizon):
            seller, buyer, kwh, price, live = random_period(rng, nb, 9)
            monkeypatch.setattr(_jit, "ENABLED", bool(flips.random() < 0.5))
            res = chain.process(t, seller, buyer, kwh, price, live)
            monkeypatch.setattr(_jit, "ENABLED", True)
            for b, one in enumerate(singles):
                m = live[b]
                out = one.process(t, seller[b, m], buyer[b, m], kwh[b, m], price[b, m])
                assert_copy_matches(res, b, m, out)
            np.testing.assert_array_equal(chain.node_height, [s.nodes.height for s in singles])
    for a, b in zip(nets, single_nets, strict=True):
        assert a.bit_generator.state == b.bit_generator.state


@pytest.mark.parametrize("flip", [False, True], ids=["kernels", "mixed"])
@pytest.mark.parametrize(
    "fields",
    [
        {"protocol": "sbet", "message_loss": 0.1, "availability": 0.8},
        {"protocol": "sbet", "malicious_share": 0.3, "withhold_share": 0.2, "n_nodes": 7},
    ],
)
def test_network_seeds_match_single_chains(
    fields: dict[str, Any], flip: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``reset(network_seeds=...)`` (no network generator built) equals single chains on the
    streams those seed words make; also with the numpy path taking some periods."""
    params = ChainParams(**fields)
    nb, horizon = 5, 6
    chain = BatchedChain(params, 8, nb, horizon=horizon)
    assert chain.takes_seeds
    rng, flips = np.random.default_rng(6), np.random.default_rng(7)
    seed_rngs = [np.random.default_rng(40 + b) for b in range(nb)]
    for episode in range(2):
        batch = EpisodeBatch(seed_rngs)
        advs = batch.streams("adversary")
        single_advs = copy.deepcopy(advs)
        chain.reset(None, advs if chain.needs_adversary_streams else None, batch.network_seeds())
        nets = batch.streams("network")  # the streams the seeds stand for, for the singles
        singles = [Chain(params, 8, nets[b], single_advs[b], key_seed=episode) for b in range(nb)]
        for t in range(horizon):
            seller, buyer, kwh, price, live = random_period(rng, nb, 9)
            monkeypatch.setattr(_jit, "ENABLED", not (flip and flips.random() < 0.5))
            res = chain.process(t, seller, buyer, kwh, price, live)
            monkeypatch.setattr(_jit, "ENABLED", True)
            for b, one in enumerate(singles):
                m = live[b]
                out = one.process(t, seller[b, m], buyer[b, m], kwh[b, m], price[b, m])
                assert_copy_matches(res, b, m, out)
            np.testing.assert_array_equal(chain.node_height, [s.nodes.height for s in singles])


def test_network_seeds_only_where_they_serve() -> None:
    """Seeds need the compiled SBET path with computed draws, and no generators with them."""
    nb = 2
    seeds = EpisodeBatch([np.random.default_rng(b) for b in range(nb)]).network_seeds()
    for fields in (
        {"protocol": "pbft"},
        {"protocol": "sbet", "creator_election": "proportional"},
        {"protocol": "sbet", "missing_share": 0.3},
        {"protocol": "sbet", "n_nodes": 64},  # D > 2**16: drawn in blocks
    ):
        chain = BatchedChain(ChainParams(**fields), 8, nb, horizon=4)
        assert not chain.takes_seeds
        with pytest.raises(ValueError, match="network_seeds"):
            chain.reset(None, None, seeds)
    chain = BatchedChain(ChainParams(protocol="sbet"), 8, nb, horizon=4)
    with pytest.raises(ValueError, match="network_seeds"):
        chain.reset(streams(0, nb)[0], None, seeds)


@pytest.mark.parametrize("b", [1, 16, 256])
@pytest.mark.parametrize(
    "overrides",
    [{}, {"n_microgrids": 16}, {"battery_kwh": (100.0, 0.0, 80.0)}],  # a microgrid without battery
)
def test_physics_kernels_equal_numpy(
    b: int, overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``BatchedElectric.plan`` and ``realise``: the kernels against the numpy code, on
    random states with SOCs at their bounds, zero forecasts and sales beyond the surplus."""
    cfg = mgenv.make_config("default", **overrides)
    fleet = MarketCore(cfg).fleet
    n = cfg.n_microgrids
    rng = np.random.default_rng(b)
    for _ in range(4):
        soc = rng.uniform(0.0, 1.0, (b, n))
        soc = np.where(rng.random((b, n)) < 0.2, fleet.soc_min, soc)
        soc = np.where(rng.random((b, n)) < 0.2, fleet.soc_max, soc)
        forecast = Forecast(
            *(rng.exponential(30.0, (b, n)) * (rng.random((b, n)) < 0.8) for _ in range(3))
        )
        grid_buy = float(rng.choice([0.35, 0.68, 1.05]))
        share, unsold = rng.uniform(0.0, 1.0, (b, n)), rng.random((b, n)) < 0.3
        results = []
        for jit in (True, False):
            monkeypatch.setattr(_jit, "ENABLED", jit)
            model = BatchedElectric(cfg, fleet, b)
            model._soc = soc.copy()
            d = model.plan(0, forecast, grid_buy, None)
            sold = np.where(unsold, 0.0, d.surplus + d.gen_headroom * share)
            r = model.realise(sold, d.surplus)
            results.append((d, r, model.soc))
        (d1, r1, s1), (d2, r2, s2) = results
        for field in d1._fields:
            np.testing.assert_array_equal(getattr(d1, field), getattr(d2, field), err_msg=field)
        for k in range(5):
            np.testing.assert_array_equal(r1[k], r2[k], err_msg=r1._fields[k])
        np.testing.assert_array_equal(s1, s2)


@pytest.mark.parametrize("b", [1, 16, 256])
@pytest.mark.parametrize("overrides", [{}, {"n_microgrids": 16, "n_users": 3, "n_aggregators": 3}])
def test_mg_observation_kernel_equals_numpy(
    b: int, overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The microgrids' batched observations: the kernel against the numpy builders, on
    random states with zeros, tiny and huge values, SOCs and prices beyond the bounds (the
    clipping), at several hours."""
    cfg = mgenv.make_config("default", **overrides)
    s = bobs.obs_scales(cfg)
    rng = np.random.default_rng(b)
    for t in (0, 5, 13, cfg.horizon):
        state = random_state(rng, b, cfg)
        state["sold_share"][rng.random(state["sold_share"].shape) < 0.1] = np.nan
        c = bobs.batched_common(s, t, state["last_price"], state["online_share"])
        args = (c, s, state["forecasts"][:3], state["dispatch"], state["soc"])
        got = []
        for jit in (True, False):
            monkeypatch.setattr(_jit, "ENABLED", jit)
            got.append(bobs.mg_observations(*args, state["sold_share"], state["commit"]))
        assert got[0].dtype == got[1].dtype == np.float32
        np.testing.assert_array_equal(got[0], got[1])
