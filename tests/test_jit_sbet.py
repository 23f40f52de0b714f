"""SBET's compiled path (mgenv/chain/kernels_*.py) against its numpy code, exactly.

Three levels: whole periods (``SBETProtocol.decide_transactions`` with ``_jit.ENABLED`` on and
off, from the same seeds: verdicts, figures, latencies, the nodes' round and the random
streams afterwards), whole blocks (``run_block`` against the kernel ``block`` on the same
draw), and single steps (each step kernel against its numpy function on random inputs,
including inputs the protocol rarely produces). Every comparison is exact (values, dtypes,
Python types).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mgenv import _jit
from mgenv.chain import ChainParams, packed
from mgenv.chain import kernels_dataplane as kd
from mgenv.chain import kernels_sbet as ks
from mgenv.chain import kernels_sbet_steps as kss
from mgenv.chain import sbet_steps as steps
from mgenv.chain.dataplane import close_ms, kth_smallest
from mgenv.chain.network import NetworkModel
from mgenv.chain.protocols import PROTOCOLS
from mgenv.chain.sbet import N_PHASES, SBETProtocol, run_block

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Exact equality, recursively: same types, dtypes, shapes, values (nan equal to nan)."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b)), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def random_params(rng: np.random.Generator, protocol: str = "sbet") -> ChainParams:
    """A random configuration: sizes, losses, outages, adversaries, DDoS, election.

    Each knob is at a benign value half of the time, so that every step (recovery and
    verified blocks included) is reached as well as the failures.
    """

    def pick(benign: object, *others: object) -> Any:
        return benign if rng.random() < 0.5 else others[int(rng.integers(len(others)))]

    sizes = {"sbet": [3, 4, 5, 6, 7, 9], "spft": [4, 5, 6, 7, 9], "pos": [1, 2, 3, 4, 7]}
    n = int(rng.choice([*sizes[protocol], 12, 16, 23, 32, 64]))
    return ChainParams(
        protocol=protocol,
        n_nodes=n,
        message_loss=pick(0.02, 0.0, 1.0, float(rng.uniform(0.0, 0.5))),
        availability=pick(1.0, 0.0, float(rng.uniform(0.3, 1.0))),
        mean_outage_periods=pick(0.0, 4.0),
        withhold_share=pick(0.0, float(rng.uniform(0.0, 0.5))),
        malicious_share=pick(0.0, 0.2, 0.34, 0.5, 0.7, 0.8, 1.0),
        missing_share=pick(0.2, 0.0, float(rng.uniform(0.0, 0.6))),
        ddos_nodes=pick(0, min(n, int(rng.integers(1, n // 2 + 2)))),
        ddos_mode=pick("offline", "slow"),
        ddos_slowdown=float(rng.uniform(1.0, 200.0)),
        creator_election=str(rng.choice(["argmax", "proportional"])),
        gamma=pick(2.0 / 3.0, 0.51, 0.9, 1.0),
        t_max_ms=pick(500.0, 50.0, 5.0),
        block_size=pick(1000, 1, 3),
        bandwidth_kbps=pick(1000.0, 16.0),
        jitter_ms=pick(2.0, 0.0, 50.0),
        base_delay_ms=pick(5.0, 0.0),
        pos_slots_per_block=pick(16.0, 1.0, 3.0),
        pos_confirmations=pick(6, 0),
    )


def run_periods(
    params: ChainParams, seed: int, n_periods: int, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> list[object]:
    """Periods of random trades through one protocol; outcomes, rounds and final state.

    The final state: the random streams, the online chain, and SPFT's view and PoS's beacon.
    """
    monkeypatch.setattr(_jit, "ENABLED", compiled)
    net, adv = np.random.default_rng(seed).spawn(2)
    proto: Any = PROTOCOLS[params.protocol](params, net, adv)
    trades = np.random.default_rng(seed + 1)
    out: list[object] = []
    for period in range(n_periods):
        n_tx = int(trades.choice([0, 1, 2, 5, 12, 40]))
        sellers = trades.integers(0, 3 * params.n_nodes, n_tx).tolist()
        valid = trades.random(n_tx) < float(trades.choice([1.0, 0.7, 0.0]))
        payloads = [trades.bytes(40) for _ in range(n_tx)]
        outcome = proto.decide_transactions(period, sellers, [0] * n_tx, valid, payloads)
        out.append((tuple(outcome), tuple(proto.last_round or ())))
    out.append(
        (
            net.bit_generator.state,
            proto.plane._rng.bit_generator.state,
            proto.network.online_state,
            getattr(proto, "view", None),
            getattr(proto, "beacon", None),
        )
    )
    return out


@pytest.mark.parametrize("seed", range(60))
def test_periods_match_numpy(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    params = random_params(np.random.default_rng(seed))
    fast = run_periods(params, seed, 30, True, monkeypatch)
    slow = run_periods(params, seed, 30, False, monkeypatch)
    assert_same(fast, slow)


@pytest.mark.parametrize(
    "case",
    [
        {"n_nodes": 4, "message_loss": 0.05, "availability": 0.98},  # the default scenario
        {"n_nodes": 5, "ddos_nodes": 1, "ddos_mode": "slow"},  # sbet_cooperative
        {"n_nodes": 6, "availability": 0.0},  # every node offline
        {"n_nodes": 6, "message_loss": 1.0},  # every message lost
        {"n_nodes": 64, "malicious_share": 0.3, "missing_share": 0.3},
        {"n_nodes": 7, "malicious_share": 0.72, "missing_share": 0.3},  # tampered blocks
        {"n_nodes": 9, "creator_election": "proportional", "malicious_share": 0.34},
        {  # withholding creators (the proportional draw elects them too)
            "n_nodes": 12,
            "withhold_share": 0.25,
            "message_loss": 0.0,
            "creator_election": "proportional",
        },
        # every delay 4 ms and sizes in binary fractions of a ms (1024 kbit/s): arrivals tie
        # and meet the timer t_max exactly (a data message of 4 records: 4 + 0.75 + 4 * 0.8125)
        {
            "n_nodes": 6,
            "area_km": 0.0,
            "jitter_ms": 0.0,
            "base_delay_ms": 4.0,
            "bandwidth_kbps": 1024.0,
            "t_max_ms": 8.0,
            "missing_share": 0.2,
            "message_loss": 0.1,
        },
    ],
)
def test_named_cases_match_numpy(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    params = ChainParams(protocol="sbet", **case)
    fast = run_periods(params, 3, 60, True, monkeypatch)
    slow = run_periods(params, 3, 60, False, monkeypatch)
    assert_same(fast, slow)


def test_cases_reach_every_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    """The random configurations exercise every verdict, recovery and view changes."""
    reasons: set[int] = set()
    recovered = changes = 0
    for seed in range(60):
        params = random_params(np.random.default_rng(seed))
        for period in run_periods(params, seed, 30, True, monkeypatch)[:-1]:
            _, reason, _, _, view_changes, extra = period[0]  # type: ignore[index]
            reasons.update(reason.tolist())
            recovered += int(extra["recovered"])
            changes += view_changes
    assert {0, 1, 3, 5, 6, 7} <= reasons, reasons  # committed ... tampered, block_full
    assert recovered > 0 and changes > 0


def test_draw_layout_is_draw_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled path splits the network draw as ``NetworkModel.draw_round`` does."""
    for n, phases, n_extra in [(3, 12, 3), (4, 12, 4), (7, 4, 0), (5, 2, 0)]:
        params = ChainParams(protocol="sbet", n_nodes=n, message_loss=0.3, availability=0.6)
        a, b = np.random.default_rng(n).spawn(1)[0], np.random.default_rng(n).spawn(1)[0]
        net_a = NetworkModel(params, a, phases, n_extra)
        net_b = NetworkModel(params, b, phases, n_extra)
        layout = packed.draw_layout(n, phases, n_extra)
        for _ in range(5):
            draw = net_a.draw_round(a)
            u = b.random(layout.size)
            online = net_b.next_online(u[layout.online])
            assert_same(online, draw.online)
            expected = draw.delivered & (draw.online[:, None] & draw.online)
            assert_same(kd.links(u, online, params.message_loss, phases), expected)
            assert_same(u[layout.jitter].reshape(phases, n, n), draw.jitter_u)
            assert_same(u[layout.extra], draw.extra_u if n_extra else u[:0])
        assert a.bit_generator.state == b.bit_generator.state


@pytest.mark.parametrize("seed", range(12))
def test_block_matches_run_block(seed: int) -> None:
    """The kernel ``block`` against ``run_block`` on the same draws, interruptions included."""
    rng = np.random.default_rng(seed + 100)
    params = random_params(rng)
    net, adv = rng.spawn(2)
    proto = SBETProtocol(params, net, adv)
    geo, nodes, fc, ic = proto._compiled.plane
    n = params.n_nodes
    for period in range(25):
        draw = proto.network.draw_round(net)
        origin = rng.integers(0, n, int(rng.integers(1, 15)))
        keys = rng.random((origin.size, n))
        cut = kd.interruptions(keys, origin, int(rng.integers(0, n)))
        expected = run_block(draw, period, proto.plane, origin, cut, proto.fixed)
        link = draw.delivered & (draw.online[:, None] & draw.online)
        delay = proto.network.delays_ms(draw.jitter_u)
        lj = np.log1p(-draw.jitter_u.ravel())
        assert_same(kd.delays(lj, geo, float(fc[packed.JITTER]), N_PHASES), delay)
        pkey = np.empty((0, 0))
        if params.creator_election == "proportional":
            pkey = proto._proportional_keys(draw.extra_u, lj)
        holders = np.empty(n, dtype=bool)
        reason, has, latency, changes, creator, recovered, missing = ks.block(
            period, link, delay, origin, cut, draw.online, proto.fixed.storage, pkey, geo,
            nodes, fc, int(ic[packed.QUORUM]), holders,
        )  # fmt: skip
        got = (reason, holders if has else None, latency, changes, creator, recovered, missing)
        want = (
            expected.reason,
            expected.holders,
            expected.latency_ms,
            expected.view_changes,
            expected.creator,
            expected.recovered,
            expected.missing_copies,
        )
        assert_same(got, want, f"period {period}")


def test_interruptions_match_numpy() -> None:
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(3, 40))
        n_missing = int(rng.integers(0, n))
        params = ChainParams(protocol="sbet", n_nodes=n, missing_share=n_missing / n)
        a, b = np.random.default_rng(seed).spawn(2)
        proto = SBETProtocol(params, a, b)
        origin = rng.integers(0, n, int(rng.integers(1, 20)))
        state = proto.plane._rng.bit_generator.state
        expected = proto.plane.interrupted(origin)
        proto.plane._rng.bit_generator.state = state
        keys = proto.plane.interruption_uniforms(origin.size)
        got = kd.interruptions(keys, origin, proto.plane.n_missing)
        if expected is None:  # nothing drawn
            assert got.shape == (0, n) and n_missing == 0
            assert proto.plane._rng.bit_generator.state == state
        else:
            assert_same(got, expected)
            assert not got[np.arange(origin.size), origin].any()


def test_kth_smallest_and_stable_order() -> None:
    rng = np.random.default_rng(0)
    pool = np.array([0.0, -0.0, 1.0, 1.0, 2.5, np.inf, -np.inf, np.nan, 1e-300, 7.0])
    for _ in range(2000):
        m = int(rng.integers(0, 12))
        values = rng.choice(pool, m) if rng.random() < 0.5 else rng.random(m)
        k = int(rng.integers(-1, m + 2))
        assert_same(kd.kth_smallest(values.copy(), k), kth_smallest(values.copy(), k))
        assert_same(kd.close_ms(values.copy(), k, 2.0), close_ms(values.copy(), k, 2.0))
        order = np.empty(m, dtype=np.int64)
        kss.stable_order(values, order)
        assert_same(order, np.argsort(values, kind="stable"))
    for a, b in [(1.0, np.nan), (np.nan, 1.0), (2.0, 1.0), (-np.inf, np.inf), (0.0, -0.0)]:
        assert_same(kd.maximum(a, b), float(np.maximum(a, b)))


def random_round(rng: np.random.Generator, n: int, n_tx: int) -> dict[str, Any]:
    """Random step inputs: links, delays, copies (with altered ones), nodes, constants."""
    link = rng.random((N_PHASES, n, n)) < rng.uniform(0.3, 1.0)
    link &= ~np.eye(n, dtype=bool)
    delay = rng.uniform(0.0, 80.0, (N_PHASES, n, n))
    malicious = rng.random(n) < rng.choice([0.0, 0.3, 0.8])
    copies = rng.choice(np.array([0, 1, 2], np.int8), (n_tx, n), p=[0.4, 0.5, 0.1])
    copies[:, malicious] = np.where(copies[:, malicious] > 0, np.int8(2), np.int8(0))
    nodes = np.stack((malicious, rng.random(n) < 0.8, rng.random(n) < 0.8))
    fc = np.array([rng.choice([30.0, 100.0, 500.0]), 0.768, 1.344, 0.0, 2.0])
    return {"link": link, "delay": delay, "copies": copies, "nodes": nodes, "fc": fc}


class FakePlane:
    """The ``DataPlane`` attributes the step functions read."""

    def __init__(self, nodes: np.ndarray, fc: np.ndarray, q: int, wait: np.ndarray) -> None:
        self.malicious, self.honest = nodes[0], ~nodes[0]
        self.any_malicious = bool(nodes[0].any())
        self.t_max_ms, self.header_ms, self.ms_per_record = float(fc[0]), fc[1], fc[2]
        self.quorum, self.wait_ms = q, wait


@pytest.mark.parametrize("seed", range(300))
def test_steps_match_numpy(seed: int) -> None:
    """Each step kernel against its numpy function on random inputs (q from 1 to n)."""
    rng = np.random.default_rng(seed)
    n, n_tx = int(rng.integers(3, 12)), int(rng.integers(1, 8))
    r = random_round(rng, n, n_tx)
    link, delay, copies, nodes, fc = r["link"], r["delay"], r["copies"], r["nodes"], r["fc"]
    q, t_max = int(rng.integers(1, n + 1)), float(fc[0])
    wait = rng.uniform(0.0, t_max, (n, n))
    plane = FakePlane(nodes, fc, q, wait)
    online = rng.random(n) < 0.7
    period = int(rng.integers(0, 100))
    assert_same(kss.coordinator(online, period), steps.coordinator(online, period))
    p, c = int(rng.integers(0, n)), int(rng.integers(0, n))
    storage = rng.uniform(0.5, 1.5, n)
    fixed = steps.SBETFixed(storage, nodes[2], False, np.eye(n, dtype=bool))
    cand, election = steps.elect(link, delay, p, nodes[1], fixed, None, q, t_max)
    # the steps write into a Work wider than the block (as the batched chain's), seeded
    # with garbage: every value they return must be one they wrote
    w = kss.work(n, n_tx + int(rng.integers(0, 3)))
    for a in w:
        a[...] = rng.integers(0, 3, a.shape).astype(a.dtype) if a.dtype != float else np.nan
    n_yes, closed = kss.elect(link, delay, p, nodes[1], storage, np.empty((0, 0)), q, t_max, w)
    assert_same((w.order[:n_yes], closed), (cand, election))
    announced = link[steps.ANNOUNCE, p] | fixed.onehot[p]
    strong = bool(rng.random() < 0.5)
    assert_same(
        kss.pick_creator(w.order, n_yes, announced, nodes[0], strong),
        steps.pick_creator(cand, announced, ~nodes[0], strong),
    )
    complete = steps.serial_lists(link, delay, p, c, announced, copies, q, t_max)
    lists = kss.serial_lists(link, delay, p, c, announced, copies, q, t_max, w)
    assert_same((w.complete[:n_tx].copy(), lists), complete)
    got = link[steps.COMPLETE, c] | fixed.onehot[c]
    need = (copies == 0) & got & (rng.random((n_tx, 1)) < 0.8)
    ready = np.zeros(n)
    if need.any():
        expected = steps.recover(link, delay, plane, copies, need)  # type: ignore[arg-type]
        recovered = kss.recover(link, delay, copies, need, nodes, wait, fc, q, w)
        assert_same((w.exchanged[:n_tx].copy(), recovered, w.ready.copy()), expected)
        copies, ready = expected[0], expected[2]
    assert_same(
        kss.integrity_ms(link, delay, c, got, ready, q, t_max, w),
        steps.integrity_ms(link, delay, c, got, ready, q, t_max),
    )
    in_block, yes = steps.candidate_votes(link, plane, c, copies, complete[0], fixed)  # type: ignore[arg-type]
    n_block = int(np.count_nonzero(in_block))
    n_got = kss.candidate_votes(link, nodes, c, copies, complete[0], w)
    assert_same((w.in_block[:n_tx].copy(), w.yes[:n_tx].copy(), n_got), (in_block, yes, n_block))
    if rng.random() < 0.3:  # more votes than the protocol usually gives
        yes = rng.random((n_tx, n)) < 0.9
    commits, voting = steps.vote(link, delay, plane, c, yes, fixed.onehot[c], n_block)  # type: ignore[arg-type]
    got_voting = kss.vote(link, delay, c, yes, n_block, fc, q, w)
    assert_same((w.commits[:n_tx].copy(), got_voting), (commits, voting))
