"""Batched chain (``mgenv.batched.chain``) against B single chains: bit-identical per copy.

Each copy b of a :class:`BatchedChain` is compared with a single :class:`mgenv.chain.Chain`
built from deep copies of the same generators and fed the same live trades, period by period
over several episodes (with resets): verdicts, reasons, latency, online share, view changes,
every ``extra`` figure, the serial counter, the ledger height, each node's height and fork
flag, and the generators' states at the end of each episode.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mgenv
from mgenv import _jit
from mgenv.batched.chain import (
    BatchedChain,
    BatchedConsensus,
    _Groups,
    _Round,
    _SBETBlock,
    kth_smallest,
)
from mgenv.batched.streams import episode_streams
from mgenv.chain import REJECT_REASONS, Chain, ChainParams, ConsensusResult, Ledger
from mgenv.chain.nodeview import NodeHeads, NodeRound

P = 8  # participants: sellers 0-3 (microgrids), buyers 0-7
DEFAULT = mgenv.scenarios.get("default")


@pytest.fixture(params=[True, False], ids=["kernels", "numpy"])
def jit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both paths of the batched chain (and of the single chains it is compared with): the
    compiled one (SBET's kernels, mgenv/batched/chain_kernels.py) and the numpy one."""
    enabled = bool(request.param) and _jit.ENABLED
    monkeypatch.setattr(_jit, "ENABLED", enabled)
    return enabled


def streams(seed: int, n: int) -> tuple[list[np.random.Generator], list[np.random.Generator]]:
    """Network and adversary generators of n copies, spawned as the env spawns them."""
    pairs = [root.spawn(2) for root in np.random.default_rng(seed).spawn(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def random_period(
    rng: np.random.Generator, n_copies: int, width: int, mask: str = "prefix"
) -> tuple[np.ndarray, ...]:
    """(seller, buyer, kwh, price, live) of shape (B, T): 0..T trades per copy, some invalid.

    Invalid trades: kwh <= 0, nan or inf, price inf or nan, seller == buyer. Padding holds
    garbage (out-of-range indices, nan) that must not matter.
    """
    seller = rng.integers(0, 4, (n_copies, width))
    buyer = rng.integers(0, P, (n_copies, width))
    kwh = rng.uniform(0.1, 30.0, (n_copies, width))
    price = rng.uniform(0.3, 1.2, (n_copies, width))
    u = rng.random((n_copies, width))
    kwh[u < 0.03] = -1.0
    kwh[(u >= 0.03) & (u < 0.04)] = 0.0
    kwh[(u >= 0.04) & (u < 0.05)] = np.nan
    kwh[(u >= 0.05) & (u < 0.055)] = np.inf
    price[(u >= 0.055) & (u < 0.06)] = np.inf
    price[(u >= 0.06) & (u < 0.065)] = np.nan
    if mask == "prefix":  # the contract's layout: live trades first
        live = np.arange(width) < rng.integers(0, width + 1, n_copies)[:, None]
    else:
        live = rng.random((n_copies, width)) < rng.random((n_copies, 1))
    seller = np.where(live, seller, -7)
    buyer = np.where(live, buyer, 1000)
    kwh = np.where(live, kwh, np.nan)
    return seller, buyer, kwh, price, live


def assert_copy_matches(
    res: BatchedConsensus, b: int, live: np.ndarray, one: ConsensusResult
) -> None:
    """Copy b of a batched result equals a single chain's result on its live trades."""
    np.testing.assert_array_equal(res.committed[b, live], one.committed)
    np.testing.assert_array_equal(res.reason[b, live], one.reason)
    assert res.reason.dtype == one.reason.dtype == np.int8
    assert not res.committed[b, ~live].any()
    assert not res.reason[b, ~live].any()
    assert res.latency_ms[b] == one.latency_ms
    assert res.online_share[b] == one.online_share
    assert res.view_changes[b] == one.view_changes
    assert set(res.extra) == set(one.extra)
    for key, value in one.extra.items():
        assert res.extra[key].dtype == np.float64
        assert res.extra[key][b] == value, key


def assert_same_states(
    batched: list[np.random.Generator], single: list[np.random.Generator]
) -> None:
    for a, b in zip(batched, single, strict=True):
        state_a, state_b = a.bit_generator.state, b.bit_generator.state
        assert state_a.keys() == state_b.keys()
        for key, value in state_a.items():  # MT19937's state holds an array
            if isinstance(value, dict):
                assert value.keys() == state_b[key].keys()
                for k, v in value.items():
                    np.testing.assert_array_equal(v, state_b[key][k])
            else:
                assert value == state_b[key], key
        # SBET spawns a child stream from the network generator: the spawn counters too
        spawned_a = getattr(a.bit_generator.seed_seq, "n_children_spawned", None)
        spawned_b = getattr(b.bit_generator.seed_seq, "n_children_spawned", None)
        assert spawned_a == spawned_b is not None


def compare(
    params: ChainParams,
    n_copies: int,
    *,
    seed: int = 0,
    horizon: int = 12,
    episodes: int = 2,
    width: int = 9,
    mask: str = "prefix",
    periods: int | None = None,
    n_participants: int = P,
    generators: tuple[list[np.random.Generator], list[np.random.Generator]] | None = None,
) -> list[BatchedConsensus]:
    """Run both sides for ``episodes`` episodes of ``periods`` (default: horizon) periods.

    ``generators``: the copies' network and adversary streams (default: ``streams``).
    """
    nets, advs = generators or streams(seed, n_copies)
    single_nets, single_advs = copy.deepcopy(nets), copy.deepcopy(advs)
    chain = BatchedChain(params, n_participants, n_copies, horizon=horizon)
    rng = np.random.default_rng(seed + 1)
    results = []
    for episode in range(episodes):
        chain.reset(nets, advs)
        singles = [
            Chain(params, n_participants, single_nets[b], single_advs[b], key_seed=episode)
            for b in range(n_copies)
        ]
        assert_same_states(nets + advs, single_nets + single_advs)
        for t in range(periods or horizon):
            seller, buyer, kwh, price, live = random_period(rng, n_copies, width, mask)
            res = chain.process(t, seller, buyer, kwh, price, live)
            results.append(res)
            for b, one in enumerate(singles):
                m = live[b]
                out = one.process(t, seller[b, m], buyer[b, m], kwh[b, m], price[b, m])
                assert_copy_matches(res, b, m, out)
            np.testing.assert_array_equal(chain.next_serial, [s.next_serial for s in singles])
            np.testing.assert_array_equal(
                chain.ledger_height, [s.ledger.next_height for s in singles]
            )
            np.testing.assert_array_equal(chain.node_height, [s.nodes.height for s in singles])
            np.testing.assert_array_equal(chain.node_forked, [s.nodes.forked for s in singles])
            if (t + 1) % horizon == 0:
                assert_same_states(nets + advs, single_nets + single_advs)
    return results


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize("n_copies", [1, 3, 16, 64, 256])
def test_default_scenario_matches_single_chains(n_copies: int, jit: bool) -> None:
    cfg = DEFAULT
    assert cfg.chain.protocol == "sbet"
    compare(
        cfg.chain,
        n_copies,
        seed=n_copies,
        horizon=cfg.horizon,
        n_participants=cfg.n_participants,
    )


@pytest.mark.parametrize("protocol", ["ideal", "pbft", "sbet"])
@pytest.mark.parametrize("n_copies", [1, 3, 16, 64])
def test_protocols_match_single_chains(protocol: str, n_copies: int, jit: bool) -> None:
    params = dataclasses.replace(DEFAULT.chain, protocol=protocol)
    compare(params, n_copies, seed=10 + n_copies, horizon=8, episodes=3)


VARIATIONS = [
    {"protocol": "pbft", "message_loss": 0.0},
    {"protocol": "pbft", "message_loss": 1.0},
    {"protocol": "pbft", "message_loss": 0.3, "availability": 0.5},
    {"protocol": "pbft", "n_nodes": 7, "message_loss": 0.1, "availability": 0.9},
    {"protocol": "pbft", "n_nodes": 16, "message_loss": 0.05, "availability": 0.9},
    {"protocol": "pbft", "withhold_share": 0.25, "message_loss": 0.05},
    {"protocol": "pbft", "ddos_nodes": 1, "message_loss": 0.05},
    {"protocol": "pbft", "ddos_nodes": 2, "ddos_mode": "slow", "n_nodes": 7},
    {"protocol": "pbft", "ddos_nodes": 3, "n_nodes": 16, "message_loss": 0.05},
    {"protocol": "pbft", "availability": 0.6, "mean_outage_periods": 3.0},
    {"protocol": "pbft", "availability": 0.0},
    {"protocol": "sbet", "message_loss": 0.0},
    {"protocol": "sbet", "message_loss": 0.3},
    {"protocol": "sbet", "message_loss": 1.0},
    {"protocol": "sbet", "message_loss": 1.0, "n_nodes": 16, "malicious_share": 0.2},
    {"protocol": "sbet", "availability": 0.5, "message_loss": 0.05},
    {"protocol": "sbet", "availability": 0.6, "message_loss": 0.05},
    {"protocol": "sbet", "n_nodes": 3, "message_loss": 0.2},
    {"protocol": "sbet", "n_nodes": 7, "message_loss": 0.1, "availability": 0.9},
    {"protocol": "sbet", "n_nodes": 16, "message_loss": 0.05, "availability": 0.9},
    {"protocol": "sbet", "malicious_share": 0.25, "availability": 0.6, "message_loss": 0.05},
    {"protocol": "sbet", "malicious_share": 0.3, "n_nodes": 10, "gamma": 0.51},
    {"protocol": "sbet", "malicious_share": 0.3, "n_nodes": 10, "gamma": 0.51, "availability": 0.5},
    {"protocol": "sbet", "malicious_share": 0.75, "message_loss": 0.05},
    {"protocol": "sbet", "malicious_share": 0.75, "n_nodes": 7, "message_loss": 0.1},
    {"protocol": "sbet", "withhold_share": 0.25, "message_loss": 0.05},
    {"protocol": "sbet", "ddos_nodes": 1, "message_loss": 0.05},
    {"protocol": "sbet", "ddos_nodes": 2, "ddos_mode": "slow", "n_nodes": 7},
    {"protocol": "sbet", "ddos_nodes": 5, "ddos_mode": "slow", "n_nodes": 16},
    {"protocol": "sbet", "availability": 0.7, "mean_outage_periods": 4.0},
    {"protocol": "sbet", "missing_share": 0.3, "n_nodes": 7, "message_loss": 0.05},
    {"protocol": "sbet", "missing_share": 0.5, "malicious_share": 0.3, "n_nodes": 10},
    {"protocol": "sbet", "creator_election": "proportional", "availability": 0.9},
    {"protocol": "sbet", "block_size": 3, "message_loss": 0.05},
    {"protocol": "sbet", "gamma": 0.9, "n_nodes": 7, "message_loss": 0.1},
    {"protocol": "sbet", "t_max_ms": 30.0, "message_loss": 0.05},
    {"protocol": "sbet", "bandwidth_kbps": 5.0, "message_loss": 0.05},
    {"protocol": "sbet", "area_km": 0.0, "message_loss": 0.05},
    {"protocol": "sbet", "availability": 0.0},
]


@pytest.mark.parametrize("fields", VARIATIONS, ids=lambda f: "-".join(f"{v}" for v in f.values()))
def test_parameter_variations_match_single_chains(fields: dict[str, Any], jit: bool) -> None:
    compare(ChainParams(**fields), 8, seed=len(str(fields)), width=11)


@pytest.mark.parametrize("protocol", ["ideal", "pbft", "sbet"])
def test_arbitrary_live_masks_and_no_trades(protocol: str, jit: bool) -> None:
    params = ChainParams(protocol=protocol, message_loss=0.1, availability=0.9)
    compare(params, 6, mask="random", horizon=6)
    compare(params, 4, width=0, horizon=5)
    if protocol == "sbet":  # interruptions drawn per transaction: none when there is no slot
        compare(dataclasses.replace(params, missing_share=0.3), 4, width=0, horizon=5)
    compare(
        dataclasses.replace(params, missing_share=0.3) if protocol == "sbet" else params,
        4,
        mask="random",
        horizon=6,
    )


@pytest.mark.parametrize("missing_share", [0.0, 0.3])
def test_other_bit_generators_match_single_chains(missing_share: float, jit: bool) -> None:
    """Streams that are not seeded PCG64s (SBET's child stream is then built the single
    chain's way), mixed with ones that are, in one batch."""
    kinds = [
        lambda s: np.random.Generator(np.random.PCG64DXSM(s)),
        lambda s: np.random.Generator(np.random.MT19937(s)),
        lambda s: np.random.default_rng(s),
    ]
    nets = [kinds[b % 3](100 + b) for b in range(6)]
    advs = [kinds[(b + 1) % 3](200 + b) for b in range(6)]
    params = ChainParams(protocol="sbet", message_loss=0.1, missing_share=missing_share)
    results = compare(params, 6, horizon=4, episodes=2, generators=(nets, advs))
    assert any(r.committed.any() for r in results)


@pytest.mark.parametrize("missing_share", [0.0, 0.3])
def test_episode_streams_match_single_chains(missing_share: float, jit: bool) -> None:
    """The core's streams (preset seed sequences: SBET spawns its child from precomputed
    seed words without Generator.spawn) against the single chain on the same streams."""
    streams = episode_streams([np.random.default_rng(300 + b) for b in range(5)])
    nets, advs = [s.network for s in streams], [s.adversary for s in streams]
    params = ChainParams(protocol="sbet", message_loss=0.1, missing_share=missing_share)
    results = compare(params, 5, horizon=4, episodes=2, generators=(nets, advs))
    assert any(r.committed.any() for r in results)


@pytest.mark.parametrize(
    ("fields", "needs_adversary"),
    [
        ({"protocol": "ideal", "withhold_share": 0.25}, False),
        ({"protocol": "pbft"}, False),
        ({"protocol": "pbft", "withhold_share": 0.25}, True),
        ({"protocol": "sbet", "message_loss": 0.1, "missing_share": 0.25}, False),
        ({"protocol": "sbet", "withhold_share": 0.25}, True),
        ({"protocol": "sbet", "malicious_share": 0.25}, True),
    ],
)
def test_streams_not_needed_may_be_left_out(
    fields: dict[str, Any], needs_adversary: bool, jit: bool
) -> None:
    """Without withholding and malicious nodes the adversary streams decide nothing: reset
    without them gives the same results (ideal needs no stream at all); where they decide
    something, leaving them out raises."""
    params = dataclasses.replace(DEFAULT.chain, **fields)
    nb, horizon = 6, 5
    full = BatchedChain(params, P, nb, horizon=horizon)
    part = BatchedChain(params, P, nb, horizon=horizon)
    assert part.needs_adversary_streams == needs_adversary
    assert part.needs_network_streams == (params.protocol != "ideal")
    nets, advs = streams(7, nb)
    nets_part = copy.deepcopy(nets)
    if needs_adversary:
        with pytest.raises(ValueError, match="adversary generators"):
            part.reset(nets_part, None)
        return
    rng = np.random.default_rng(8)
    for _ in range(2):
        full.reset(nets, advs)
        part.reset(nets_part if part.needs_network_streams else None, None)
        for t in range(horizon):
            period = random_period(rng, nb, 9)
            a, b = full.process(t, *period), part.process(t, *period)
            for x, y in zip(a[:5], b[:5], strict=True):
                np.testing.assert_array_equal(x, y)
            assert a.extra.keys() == b.extra.keys()
            for key, value in a.extra.items():
                np.testing.assert_array_equal(value, b.extra[key])
    if part.needs_network_streams:
        assert_same_states(nets, nets_part)
    else:
        with pytest.raises(ValueError, match="network generators"):
            part.reset(nets_part[:2], None)


def test_more_periods_than_horizon(jit: bool) -> None:
    """Outputs match whatever the number of calls; states match at multiples of horizon."""
    params = ChainParams(protocol="sbet", message_loss=0.1, missing_share=0.25)
    compare(params, 5, horizon=5, periods=12, episodes=1)


@pytest.mark.parametrize("protocol", ["pbft", "sbet"])
def test_largest_network_counts_every_node(protocol: str, jit: bool) -> None:
    """256 nodes (MAX_NODES): counts of all nodes exceed a byte (they must not wrap)."""
    results = compare(ChainParams(protocol=protocol, n_nodes=256), 2, horizon=2, episodes=1)
    assert any(r.committed.any() for r in results)


def test_runs_exercise_every_outcome(jit: bool) -> None:
    """The configurations above reach every verdict and figure the comparison checks."""
    runs: list[tuple[dict[str, Any], int]] = [
        ({"protocol": "sbet", "message_loss": 0.05, "availability": 0.6}, 1),
        ({"protocol": "sbet", "malicious_share": 0.75, "message_loss": 0.05}, 1),
        ({"protocol": "sbet", "block_size": 3, "missing_share": 0.3, "n_nodes": 7}, 1),
        ({"protocol": "pbft", "availability": 0.6, "mean_outage_periods": 3.0}, 1),
    ]
    reasons: set[str] = set()
    figures: dict[str, float] = {}
    for fields, episodes in runs:
        for res in compare(ChainParams(**fields), 16, episodes=episodes, horizon=24):
            reasons |= {REJECT_REASONS[k] for k in np.unique(res.reason[~res.committed])}
            for key, value in res.extra.items():
                figures[key] = max(figures.get(key, 0.0), float(value.max()))
            reasons |= {"committed"} if res.committed.any() else set()
    assert reasons >= {
        "committed",
        "no_quorum",
        "primary_offline",
        "invalid_trade",
        "missing",
        "tampered",
        "block_full",
    }
    for key in ("recovered", "missing_copies", "tampered", "lagging_nodes", "forked_nodes"):
        assert figures[key] > 0, key


@pytest.mark.parametrize("malicious_share", [0.4, 0.0])
def test_node_view_from_heights_matches_node_heads(malicious_share: float) -> None:
    """The hash-free node view equals ``NodeHeads`` (hashes, ledger) on random rounds.

    Rounds as the protocols report them: a committed block held by some nodes, or an altered
    block held by malicious nodes only (then nothing is appended), or no block; random online
    nodes. Rare cases (no honest server, a malicious one at the head) come up often here.
    Without malicious nodes the chain takes its fork-free shortcut.
    """
    rng = np.random.default_rng(5)
    n, nb = 5, 64
    chain = BatchedChain(ChainParams(protocol="sbet", n_nodes=n), P, nb, horizon=4)
    chain.reset(*streams(0, nb))
    malicious = rng.random((n, nb)) < malicious_share
    chain._malicious, chain._honest = malicious, ~malicious
    chain._any_malicious = bool(malicious.any())
    singles = [NodeHeads(malicious[:, b]) for b in range(nb)]
    ledgers = [Ledger(3) for _ in range(nb)]  # a short window: old heights are unknown
    for period in range(60):
        online = rng.random((n, nb)) < 0.6
        kind = rng.integers(0, 3, nb)  # 0: no block, 1: committed, 2: altered
        holders = (rng.random((n, nb)) < 0.5) & (kind > 0)
        holders &= np.where(kind == 2, malicious, True)
        altered, block = (kind == 2) & holders.any(axis=0), kind == 1
        figures = chain._update_nodes(online, holders, altered, block)
        for b, (heads, ledger) in enumerate(zip(singles, ledgers, strict=True)):
            appended = ledger.append(period, [], 0) if block[b] else None
            held = holders[:, b] if altered[b] or block[b] else None
            one = heads.update(period, ledger, appended, NodeRound(online[:, b], held, altered[b]))
            for key, value in one.items():
                assert figures[key][b] == value, key
            np.testing.assert_array_equal(chain._height[:, b], heads.height)
            np.testing.assert_array_equal(chain._forked[:, b], heads.forked)
            assert heads.link_failures == 0  # the premise of the hash-free view


@pytest.mark.parametrize("m", range(1, 18))
def test_kth_smallest_equals_a_sort(m: int) -> None:
    """Selection networks (short axes), min/max and the sort give a stable sort's k-th value.

    Inputs with many ties and infinities; k out of range gives inf; every axis.
    """
    rng = np.random.default_rng(m)
    for axis in (0, 1, 2):
        shape = [3, 5, 7]
        shape[axis] = m
        values = rng.integers(0, 4, shape).astype(np.float64) * 1.5
        values[values == 4.5] = np.inf
        before = values.copy()
        for k in range(m + 2):
            got = kth_smallest(values, k, axis)
            if 1 <= k <= m:
                want = np.moveaxis(np.sort(values, axis=axis, kind="stable"), axis, 0)[k - 1]
            else:
                want = np.full(np.delete(shape, axis), np.inf)
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(values, before)  # the input is not sorted in place


@pytest.mark.parametrize(("n", "malicious_share"), [(4, 0.0), (7, 0.0), (7, 0.3)])
def test_creator_without_sorting_equals_the_sorted_candidates(
    n: int, malicious_share: float
) -> None:
    """Steps 2-3's creator, found flag and skips by argmax equal the stable argsort's.

    Keys with many ties (equal response times, equal storage) and random candidates,
    announcements and online nodes; where no candidate fits only the skips are compared.
    """
    nb = 64
    params = ChainParams(protocol="sbet", n_nodes=n, malicious_share=malicious_share)
    chain = BatchedChain(params, P, nb, horizon=4)
    chain.reset(*streams(0, nb))
    chain._draws.next(4)
    chain._storage = np.ones((n, nb))
    net = _Round(chain)
    per_origin = np.ones((n, nb), dtype=np.int64)
    groups = _Groups(per_origin > 0, per_origin, None, None)
    block = _SBETBlock(chain, net, 0, per_origin, groups, np.ones(nb, dtype=bool))
    rng = np.random.default_rng(n)
    outcomes = set()
    for _ in range(20):
        rt = rng.integers(1, 4, (n, nb)).astype(np.float64)
        yes = rng.random((n, nb)) < rng.uniform(0.1, 0.6)
        announced = rng.random((n, nb)) < rng.uniform(0.1, 0.7)
        creator, found, skips = block._creator(rt, yes, announced)
        creator_s, found_s, skips_s = block._creator_by_sort(rt * chain._storage, yes, announced)
        np.testing.assert_array_equal(found, found_s)
        np.testing.assert_array_equal(skips, skips_s)
        np.testing.assert_array_equal(creator[found], creator_s[found])
        outcomes |= set(found.tolist()) | {"skipped" for s in skips[found] if s > 0}
    assert outcomes == {True, False, "skipped"}


@pytest.mark.parametrize("n", range(3, 10))  # SBET takes 3 nodes or more
def test_coordinator_look_up_equals_the_ring_argmax(n: int) -> None:
    """Step 1 by look-up (up to 8 nodes) gives the ring's argmax: e_p, no e_p and skips.

    Every online pattern (one per copy) and every first node of the ring; beyond 8 nodes
    there is no table and both ways are the argmax.
    """
    nb = 2**n if n <= 8 else 64
    chain = BatchedChain(ChainParams(protocol="sbet", n_nodes=n), P, nb, horizon=4)
    assert (chain._step1 is not None) == (n <= 8)
    chain.reset(*streams(0, nb))
    chain._draws.next(4)
    net = _Round(chain)
    if n <= 8:  # copy b: the nodes i with bit i of b set are online
        net.online = (np.arange(nb) >> np.arange(n)[:, None] & 1).astype(bool)
    else:
        net.online = np.random.default_rng(n).random((n, nb)) < 0.3
    per_origin = np.ones((n, nb), dtype=np.int64)
    groups = _Groups(per_origin > 0, per_origin, None, None)
    step1 = chain._step1
    for period in range(n):
        block = _SBETBlock(chain, net, period, per_origin, groups, np.ones(nb, dtype=bool))
        chain._step1 = step1
        got = block._coordinator()
        chain._step1 = None
        want = block._coordinator()
        chain._step1 = step1
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------------ API
def test_state_does_not_grow_with_steps(jit: bool) -> None:
    chain = BatchedChain(DEFAULT.chain, P, 4, horizon=24)
    chain.reset(*streams(0, 4))
    rng = np.random.default_rng(0)

    def state_bytes() -> int:
        return sum(v.nbytes for v in vars(chain).values() if isinstance(v, np.ndarray))

    sizes = []
    for t in range(200):
        chain.process(t, *random_period(rng, 4, 9))
        if t in (10, 199):
            sizes.append(state_bytes())
    assert sizes[0] == sizes[1]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("protocol", "spft"),
        ("protocol", "pos"),
        ("protocol", "crosschain"),
        ("signatures", "ed25519"),
        ("auth_identity", "ed25519"),
    ],
)
def test_rejects_unsupported_parameters(field: str, value: Any) -> None:
    params = ChainParams(**{field: value, "n_nodes": 8})
    with pytest.raises(ValueError, match=rf"ChainParams\.{field}="):
        BatchedChain(params, P, 2, horizon=24)


def test_rejects_a_ledger_file(tmp_path: Path) -> None:
    params = ChainParams(ledger_path=str(tmp_path / "ledger.sqlite"))
    with pytest.raises(ValueError, match=r"ChainParams\.ledger_path="):
        BatchedChain(params, P, 2, horizon=24)


def test_rejects_bad_calls() -> None:
    params = ChainParams(protocol="sbet")
    bad_args: list[dict[str, Any]] = [{"n_copies": 0}, {"horizon": 0}, {"period_h": 0.0}]
    for kwargs in bad_args:
        with pytest.raises(ValueError):
            BatchedChain(params, P, **{"n_copies": 2, "horizon": 4, **kwargs})
    chain = BatchedChain(params, P, 2, horizon=4)
    period = random_period(np.random.default_rng(0), 2, 5)
    with pytest.raises(ValueError, match="before reset"):
        chain.process(0, *period)
    with pytest.raises(ValueError, match="generators"):
        chain.reset(*streams(0, 3))
    chain.reset(*streams(0, 2))
    seller, buyer, kwh, price, live = period
    live = np.ones_like(live)
    with pytest.raises(ValueError, match="must be"):
        chain.process(0, seller[:1], buyer, kwh, price, live)
    with pytest.raises(ValueError, match="integer"):
        chain.process(0, seller.astype(float), buyer, kwh, price, live)
    with pytest.raises(ValueError, match="participant index 9"):
        chain.process(0, np.full_like(seller, 9), buyer, kwh, price, live)
    with pytest.raises(ValueError, match="participant index -1"):
        chain.process(0, seller, np.full_like(buyer, -1), kwh, price, live)
