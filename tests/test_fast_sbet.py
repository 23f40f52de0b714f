"""The chain's SBET fast path (:mod:`mgenv.chain.fast_sbet`) gives the general code's results.

Two chains with the same seeds get the same trades period after period; one runs the fast
path (one kernel per period), the other is forced onto the general code (its compiled
stages, or numpy). Every verdict, figure, block, ledger byte, node head, link failure, random
stream and serial must be equal, over empty periods, periods without a valid trade, adversaries,
ledger window wrap-around and periods where the fast path declines (a tamper hook, the kernels
switched off) and the general code runs on the fast chain's state.
"""

from __future__ import annotations

import copy
import math
import pickle
import struct

import numpy as np
import pytest

from mgenv import _jit
from mgenv.chain import Chain, ChainParams
from mgenv.chain.fast_sbet import FastSBET
from tests.test_jit_chain import flip_hook, same_result
from tests.test_jit_pbft import numpy_path

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")

N_PARTICIPANTS = 10


def make(fast: bool, **fields: object) -> Chain:
    params = ChainParams(protocol="sbet", **fields)  # type: ignore[arg-type]
    net, adv = np.random.default_rng(11).spawn(2)
    chain = Chain(params, N_PARTICIPANTS, net, adv, key_seed=5, period_h=0.25)
    if not fast:
        chain._fast = None
    return chain


def trades(rng: np.random.Generator, t: int) -> tuple[np.ndarray, ...]:
    """T in {0, 1, 3, 6, 12}; some periods with invalid trades, some with no valid one."""
    n_tx = int(rng.choice([0, 1, 3, 6, 12]))
    seller = rng.integers(0, 6, n_tx)
    buyer = rng.integers(4, N_PARTICIPANTS, n_tx)
    q = rng.uniform(0.1, 30.0, n_tx)
    p = rng.uniform(0.3, 1.2, n_tx)
    if t % 5 == 2 and n_tx:  # invalid trades: zero, negative, nan, inf kWh; a self-trade
        q[0] = rng.choice([0.0, -1.0, math.nan, math.inf])
        buyer[-1] = seller[-1]
        p[n_tx // 2] = rng.choice([math.nan, -math.inf, 1.0])
    if t % 11 == 7:  # nothing valid
        buyer = seller.copy()
    return seller, buyer, q, p


def same_state(a: Chain, b: Chain) -> None:
    assert a.node_heads() == b.node_heads()
    np.testing.assert_array_equal(a.nodes.height, b.nodes.height)
    np.testing.assert_array_equal(a.nodes.forked, b.nodes.forked)
    assert a.nodes.link_failures == b.nodes.link_failures
    assert a.ledger.head_hash == b.ledger.head_hash
    assert a.ledger.next_height == b.ledger.next_height
    assert list(a.ledger) == list(b.ledger)
    assert a.next_serial == b.next_serial
    pa, pb = a.protocol, b.protocol
    assert pa._rng.bit_generator.state == pb._rng.bit_generator.state  # type: ignore[attr-defined]
    sa, sb = pa.network.online_state, pb.network.online_state  # type: ignore[attr-defined]
    assert (sa is None) == (sb is None)
    if sa is not None:
        np.testing.assert_array_equal(sa, sb)
    ra, rb = pa.last_round, pb.last_round  # type: ignore[attr-defined]
    assert (ra is None) == (rb is None)
    if ra is not None:
        np.testing.assert_array_equal(ra.online, rb.online)
        assert (ra.holders is None) == (rb.holders is None) and ra.altered == rb.altered
        if ra.holders is not None:
            np.testing.assert_array_equal(ra.holders, rb.holders)


CONFIGS = [
    {"n_nodes": 4, "message_loss": 0.05, "availability": 0.98},  # the default scenario's
    {"n_nodes": 4, "message_loss": 0.2, "availability": 0.6, "ledger_window": 2},
    {"n_nodes": 5, "message_loss": 0.1, "availability": 0.85, "withhold_share": 0.2},
    {"n_nodes": 4, "malicious_share": 0.75, "message_loss": 0.05},  # altered blocks, forks
    {"n_nodes": 7, "malicious_share": 0.3, "availability": 0.9, "ledger_window": 3},
    {"n_nodes": 6, "ddos_nodes": 2, "ddos_mode": "offline", "availability": 0.95},
    {"n_nodes": 6, "ddos_nodes": 1, "ddos_mode": "slow", "message_loss": 0.1},
    # slowed links inside the timer: their jitters' slow factor shows in the latency (at
    # 100x the slowed node's messages are all late, whatever their jitter)
    {"n_nodes": 6, "ddos_nodes": 2, "ddos_mode": "slow", "ddos_slowdown": 1.5, "jitter_ms": 20.0},
    {"n_nodes": 5, "availability": 0.8, "mean_outage_periods": 3.0, "ledger_window": 1},
    {"n_nodes": 10, "message_loss": 0.02, "block_size": 4},  # block_full
    {"n_nodes": 4, "message_loss": 0.3, "availability": 0.7, "jitter_ms": 0.0},
]


def run_both(fields: dict[str, object], seed: int, periods: int) -> tuple[Chain, Chain]:
    """A fast chain and a general one, ``periods`` periods of the same trades, compared."""
    fast, slow = make(True, **fields), make(False, **fields)
    assert isinstance(fast._fast, FastSBET)
    rng = np.random.default_rng(seed)
    for t in range(periods):
        inputs = trades(rng, t)
        same_result(fast.process(t, *inputs), slow.process(t, *inputs))
        same_state(fast, slow)
    return fast, slow


@pytest.mark.parametrize("fields", CONFIGS)
def test_fast_path_matches_general_code(fields: dict[str, object]) -> None:
    fast, slow = run_both(fields, 4, 150)
    assert fast._fast is not None and fast._fast._built
    assert fast.ledger.next_height > 0 or fields.get("malicious_share")
    fast.ledger.verify()
    fast.sync_nodes()
    slow.sync_nodes()
    same_state(fast, slow)


@pytest.mark.parametrize("fields", CONFIGS[:7])
def test_fast_path_with_numpys_log1p_matches_general_code(
    fields: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the kernel can call neither numpy's own log1p loop nor a C library log1p that
    gives numpy's numbers (numpy's AVX-512 loops), FastSBET draws before the kernel and
    writes numpy's logarithms of the jitters: the same results (forced here)."""
    import mgenv.chain.fast_sbet as fast_module
    from mgenv.batched import pcg64

    monkeypatch.setattr(fast_module, "log1p_loop", lambda: None)
    monkeypatch.setattr(fast_module, "log1p_matches_numpy", lambda: False)
    for view in (True, False):  # the draw from the stream's state, or Generator.random
        if not view:
            monkeypatch.setattr(pcg64, "live_words", lambda bits: None)
        fast, _ = run_both(fields, 6, 80)
        assert fast._fast is not None and fast._fast._jitter_is_log
        assert fast._fast._jitter_u.size == fast._fast._lj.size
        assert fast._fast._live is not None and fast._fast._live[1].size == 4 * view


@pytest.mark.parametrize("fields", CONFIGS[:4])
def test_fast_path_matches_numpy(fields: dict[str, object]) -> None:
    fast, slow = make(True, **fields), make(False, **fields)
    rng = np.random.default_rng(9)
    for t in range(60):
        inputs = trades(rng, t)
        a = fast.process(t, *inputs)
        with numpy_path():
            b = slow.process(t, *inputs)
        same_result(a, b)
        same_state(fast, slow)


def test_periods_on_either_path_share_the_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tamper hook or the kernels switched off send a period to the general code on the
    fast chain's state (committed blocks included: the ring is rebuilt from the ledger)."""
    fields = {"n_nodes": 4, "message_loss": 0.1, "availability": 0.8, "ledger_window": 3}
    fast, slow = make(True, **fields), make(False, **fields)
    rng = np.random.default_rng(2)
    switch = np.random.default_rng(3)
    for t in range(160):
        inputs = trades(rng, t)
        way = int(switch.integers(0, 4))
        hook = flip_hook if way == 1 else None
        fast.tamper_hook = slow.tamper_hook = hook
        monkeypatch.setattr(_jit, "ENABLED", way != 2)
        a = fast.process(t, *inputs)
        b = slow.process(t, *inputs)
        monkeypatch.setattr(_jit, "ENABLED", True)
        same_result(a, b)
        same_state(fast, slow)


def test_a_chain_built_on_a_previous_one_reuses_its_buffers() -> None:
    """``Chain(previous=...)`` (the env's resets) takes over the previous fast path's buffers
    when they fit, else makes its own; either way the results are a fresh chain's and the
    previous chain, back on its general code, keeps giving the same results too."""
    rng = np.random.default_rng(6)
    configs = [CONFIGS[0], CONFIGS[4], CONFIGS[4], CONFIGS[1], CONFIGS[3]]  # sizes change
    before: tuple[Chain, FastSBET, Chain, np.ndarray] | None = None  # old chain, its twin
    for k, fields in enumerate(configs):
        params = ChainParams(protocol="sbet", **fields)  # type: ignore[arg-type]
        net, adv = np.random.default_rng(20 + k).spawn(2)
        old = None if before is None else before[0]
        new = Chain(params, N_PARTICIPANTS, net, adv, key_seed=k, period_h=0.25, previous=old)
        fresh = Chain(  # the same streams, keys and parameters, buffers of its own
            params, N_PARTICIPANTS, *np.random.default_rng(20 + k).spawn(2), key_seed=k,
            period_h=0.25,
        )  # fmt: skip
        assert isinstance(new._fast, FastSBET)
        if before is not None:
            old, spare, twin, _ = before
            assert old._fast is None and new._fast is spare  # handed over
            for t in range(100, 110):  # the previous chain on its general code
                inputs = trades(rng, t)
                same_result(old.process(t, *inputs), twin.process(t, *inputs))
                same_state(old, twin)
        for t in range(40):
            inputs = trades(rng, t)
            same_result(new.process(t, *inputs), fresh.process(t, *inputs))
            same_state(new, fresh)
        if before is not None:
            reused = configs[k - 1] == fields  # in this list: the same sizes
            assert (new._fast._fbuf is before[3]) == reused
        before = (new, new._fast, copy.deepcopy(new), new._fast._fbuf)


def test_copies_and_pickles_keep_running_the_same() -> None:
    fields = {"n_nodes": 4, "message_loss": 0.1, "availability": 0.85, "ledger_window": 4}
    fast, slow = make(True, **fields), make(False, **fields)
    rng = np.random.default_rng(0)
    for t in range(60):
        if t == 20:
            fast = copy.deepcopy(fast)
        if t == 40:
            fast = pickle.loads(pickle.dumps(fast))
        inputs = trades(rng, t)
        same_result(fast.process(t, *inputs), slow.process(t, *inputs))
        same_state(fast, slow)


def test_out_of_range_participant_changes_nothing() -> None:
    """The range error comes after the period's draw on the fast path: the draw is undone."""
    fast, slow = make(True), make(False)
    rng = np.random.default_rng(1)
    for t in range(40):
        inputs = trades(rng, t)
        if t % 4 == 1 and inputs[0].size:
            bad = (inputs[0].copy(), *inputs[1:])
            bad[0][-1] = N_PARTICIPANTS if t % 8 == 1 else -1
            for chain in (fast, slow):
                with pytest.raises(ValueError, match="participant index"):
                    chain.process(t, *bad)
            same_state(fast, slow)
        same_result(fast.process(t, *inputs), slow.process(t, *inputs))
        same_state(fast, slow)


def test_timestamp_out_of_int64_fails_as_the_general_code() -> None:
    fast, slow = make(True), make(False)
    s, b = np.array([0, 1]), np.array([5, 6])
    q, p = np.array([1.0, 2.0]), np.array([0.5, 0.6])
    huge = 2**62  # period * 900_000 ms does not fit the header's int64
    for chain in (fast, slow):
        for t in range(3):
            chain.process(t, s, b, q, p)
        with pytest.raises(struct.error):
            for t in range(huge, huge + 10):  # until a block commits
                chain.process(t, s, b, q, p)
    same_state(fast, slow)
    for t in range(3, 10):
        same_result(fast.process(t, s, b, q, p), slow.process(t, s, b, q, p))
        same_state(fast, slow)


@pytest.mark.parametrize(
    "fields",
    [
        {"protocol": "pbft"},
        {"protocol": "sbet", "signatures": "ed25519"},
        {"protocol": "sbet", "creator_election": "proportional"},
        {"protocol": "sbet", "missing_share": 0.3},
        {"protocol": "sbet", "auth_identity": "ed25519"},
    ],
)
def test_fast_path_only_where_it_applies(fields: dict[str, object]) -> None:
    params = ChainParams(**fields)  # type: ignore[arg-type]
    net, adv = np.random.default_rng(0).spawn(2)
    assert Chain(params, 8, net, adv, key_seed=1)._fast is None


@pytest.mark.parametrize("seed", range(6))
def test_node_view_from_the_ring_matches_the_ledger_lookups(seed: int) -> None:
    """``kernels_sbet_chain.node_view`` (hashes from the ring) against ``NodeHeads.update``
    (hashes from the ledger's blocks) on random states: heads on and off the chain, forked
    nodes, nodes older than the window, offline servers (link failures included)."""
    from mgenv.chain.kernels_sbet_chain import HONEST, N_NODE_ROWS, node_view
    from mgenv.chain.ledger import Ledger
    from mgenv.chain.nodeview import NodeHeads, NodeRound

    rng = np.random.default_rng(seed)
    failures = 0
    for _ in range(300):
        n, window = int(rng.integers(3, 9)), int(rng.integers(1, 5))
        ledger = Ledger(window)
        hashes = [bytes(32)]  # the chain's head hash at each height
        for h in range(int(rng.integers(0, 9))):
            record = rng.bytes(104)
            ledger.append(h, [record], h)
            hashes.append(ledger.head_hash)
        give = ledger.next_height > 0 and bool(rng.random() < 0.5)
        top = ledger.next_height
        malicious = rng.random(n) < 0.3
        ref = NodeHeads(malicious)
        ref.height[:] = rng.integers(max(0, top - window - 2), top + 1, n)
        for i, h in enumerate(ref.height.tolist()):
            on_chain = rng.random() < 0.7
            ref.head[i] = np.frombuffer(hashes[h] if on_chain else rng.bytes(32), np.uint8)
        ref.forked[:] = rng.random(n) < 0.15
        online = rng.random(n) < 0.75
        holders = rng.random(n) < 0.6
        ours = copy.deepcopy(ref)
        with_holders = holders if give else None
        block = ledger[-1] if give else None
        figures = ref.update(top, ledger, block, NodeRound(online, with_holders, False))
        nodes = np.zeros((N_NODE_ROWS, n), dtype=bool)
        nodes[HONEST] = ~malicious
        rows = np.stack([online, online, holders])
        ring = np.zeros((window + 1, 32), dtype=np.uint8)
        for h in range(max(0, top - window - 1), top):
            ring[h % (window + 1)] = np.frombuffer(hashes[h + 1], np.uint8)
        agree, lagging, off, fails = node_view(
            ours.height, ours.head, ours.forked, nodes, rows, give, top, len(ledger), ring,
            np.zeros(32, np.uint8),
        )  # fmt: skip
        ours.link_failures += fails
        got = {
            "honest_heads_agree": float(agree),
            "lagging_nodes": float(lagging),
            "forked_nodes": float(off),
        }
        assert got == figures
        np.testing.assert_array_equal(ours.height, ref.height)
        np.testing.assert_array_equal(ours.head, ref.head)
        np.testing.assert_array_equal(ours.forked, ref.forked)
        assert ours.link_failures == ref.link_failures
        failures += ref.link_failures
    assert failures > 0  # the case is exercised
