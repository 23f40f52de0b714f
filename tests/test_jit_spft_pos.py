"""SPFT's and PoS's compiled paths (kernels_spft.py, kernels_pos.py) against their numpy code.

Whole periods (``decide_transactions`` with ``_jit.ENABLED`` on and off, from the same seeds:
verdicts, figures, latencies, the nodes' round, the random streams, SPFT's view, PoS's
beacon), and the PBFT steps against :mod:`mgenv.chain.pbft` on random inputs. Exact
comparisons (see ``tests/test_jit_sbet.py``, whose helpers these tests share).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mgenv import _jit
from mgenv.chain import ChainParams, pbft
from mgenv.chain import kernels_pos as kp
from mgenv.chain import kernels_spft as ksp
from tests.test_jit_sbet import assert_same, random_params, run_periods

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")


@pytest.mark.parametrize("protocol", ["spft", "pos"])
@pytest.mark.parametrize("seed", range(40))
def test_periods_match_numpy(protocol: str, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    params = random_params(np.random.default_rng(seed), protocol)
    fast = run_periods(params, seed, 30, True, monkeypatch)
    slow = run_periods(params, seed, 30, False, monkeypatch)
    assert_same(fast, slow)


CASES: list[dict[str, Any]] = [
    {"n_nodes": 4, "message_loss": 0.05, "availability": 0.98},  # the default scenario's
    {"n_nodes": 5, "ddos_nodes": 1, "ddos_mode": "slow"},  # sbet_cooperative's
    {"n_nodes": 6, "availability": 0.0},  # every node offline
    {"n_nodes": 6, "message_loss": 1.0},  # every message lost
    {"n_nodes": 64, "malicious_share": 0.3, "missing_share": 0.3},
    {"n_nodes": 7, "malicious_share": 0.72, "missing_share": 0.3},  # tampered blocks
    {"n_nodes": 9, "withhold_share": 0.2, "availability": 0.8, "mean_outage_periods": 3.0},
    # every delay 4 ms, sizes in binary fractions of a ms: ties, arrivals exactly at t_max
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
]


@pytest.mark.parametrize("protocol", ["spft", "pos"])
@pytest.mark.parametrize("case", CASES)
def test_named_cases_match_numpy(
    protocol: str, case: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    params = ChainParams(protocol=protocol, **case)
    fast = run_periods(params, 3, 60, True, monkeypatch)
    slow = run_periods(params, 3, 60, False, monkeypatch)
    assert_same(fast, slow)


@pytest.mark.parametrize("protocol", ["spft", "pos"])
def test_cases_reach_every_outcome(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The random configurations exercise every verdict (and SPFT's view changes)."""
    reasons: set[int] = set()
    changes = 0
    for seed in range(40):
        params = random_params(np.random.default_rng(seed), protocol)
        for period in run_periods(params, seed, 30, True, monkeypatch)[:-1]:
            _, reason, _, _, view_changes, _ = period[0]  # type: ignore[index]
            reasons.update(reason.tolist())
            changes += view_changes
    assert {0, 3, 5, 6, 7} <= reasons, reasons  # committed ... tampered, block_full
    if protocol == "spft":
        assert 1 in reasons and changes > 0


@pytest.mark.parametrize("seed", range(300))
def test_pbft_steps_match_numpy(seed: int) -> None:
    """select_primary, count_votes and the phase times against mgenv.chain.pbft."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 14))  # (n = 1: numpy's select_primary fails on an empty order)
    f = (n - 1) // 3
    online = rng.random(n) < rng.uniform(0.3, 1.0)
    view, quorum = int(rng.integers(0, 50)), int(rng.integers(0, n + 2))
    assert_same(ksp.select_primary(online, view, quorum), pbft.select_primary(online, view, quorum))
    dl = rng.random((4, n, n)) < rng.uniform(0.5, 1.0)
    dl &= ~np.eye(n, dtype=bool)
    primary = int(rng.integers(0, n))
    online[primary] = True
    voters = rng.random(n) < 0.8
    votes = pbft.count_votes(online, dl[1:], primary, voters, f)
    has_pp, senders, prepared, committed = ksp.count_votes(dl, online, primary, voters, f)
    assert_same(
        (has_pp, senders, prepared, committed),
        (votes.has_pre_prepare, votes.prepare_senders, votes.prepared, votes.committed),
    )
    assert_same(votes.commit_senders, prepared & voters)
    quantized = rng.random() < 0.5  # ties between arrivals
    delay = rng.integers(0, 6, (4, n, n)) * 0.5 if quantized else rng.uniform(0, 50, (4, n, n))
    size_ms = float(rng.choice([0.0, 1.25, 7.3]))
    phase = delay[1:].copy()
    phase[0] += size_ms
    onehot = np.arange(n) == primary
    got = [
        ksp.phase_ms(dl, online, delay, size_ms, primary, onehot, has_pp, 1, f),
        ksp.phase_ms(dl, online, delay, size_ms, primary, senders, prepared, 2, f),
        ksp.phase_ms(dl, online, delay, size_ms, primary, votes.commit_senders, committed, 3, f),
    ]
    assert_same(sum(got), pbft.quorum_latency_ms(votes, phase, primary, f))


@pytest.mark.parametrize("seed", range(100))
def test_forger_matches_numpy(seed: int) -> None:
    """The forger and its slot against ``PoSProtocol.run_block``'s numpy expressions."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 20))
    u = (rng.integers(0, 2**64, n, dtype=np.uint64).astype(np.float64) + 0.5) / 2.0**64
    hit_p = np.full(n, float(rng.choice([1.0, 0.3, 1e-3])))
    hit_p[rng.random(n) < 0.2] = 1.0
    if rng.random() < 0.3:  # equal keys: the first eligible minimum wins
        u[:] = u[0]
    eligible = rng.random(n) < 0.7
    eligible[int(rng.integers(0, n))] = True
    with np.errstate(divide="ignore"):
        slot = np.floor(np.log(u) / np.log1p(-hit_p))
    slot[hit_p >= 1.0] = 0.0
    forger = int(np.argmin(np.where(eligible, slot + u, np.inf)))
    with np.errstate(divide="ignore"):
        got = kp.forge(eligible, u, np.log(u), np.log1p(-hit_p))
    assert_same(got, (forger, float(slot[forger])))
