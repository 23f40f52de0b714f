"""The chain load test: batching, the simulated clock, the report (small and fast)."""

from __future__ import annotations

import numpy as np
import pytest

from mgenv.chain import Chain, ChainParams
from train import bench_chain
from train.bench_chain import _blocks, ed25519_bound, run, run_round


def scalar_blocks(arrival, max_tx, batch_s):
    out, block = [], []
    for k, t in enumerate(arrival):
        if block and (len(block) == max_tx or t > arrival[block[0]] + batch_s):
            full = len(block) == max_tx
            out.append((block[0], k, arrival[block[-1]] if full else arrival[block[0]] + batch_s))
            block = []
        block.append(k)
    full = len(block) == max_tx
    out.append(
        (block[0], len(arrival), arrival[block[-1]] if full else arrival[block[0]] + batch_s)
    )
    return out


@pytest.mark.parametrize(
    ("rate", "max_tx", "batch_s"), [(50, 10, 2.0), (3, 10, 2.0), (1000, 7, 0.001), (0.3, 4, 2.0)]
)
def test_batching_matches_a_scalar_reference(rate, max_tx, batch_s):
    arrival = np.arange(40) / rate
    got, ref = _blocks(arrival, max_tx, batch_s), scalar_blocks(arrival, max_tx, batch_s)
    assert [b[:2] for b in got] == [b[:2] for b in ref]
    np.testing.assert_allclose([b[2] for b in got], [b[2] for b in ref], rtol=1e-12)


def make_chain(**kw):
    rng = np.random.default_rng(0)
    a, b, c = rng.spawn(3)
    return Chain(ChainParams(**kw), bench_chain.N_PARTICIPANTS, a, b, key_seed=0), c


def test_round_latency_and_throughput_on_the_simulated_clock():
    chain, rng = make_chain(protocol="ideal", signatures="modelled")
    r = run_round(chain, 50.0, 1.0, rng, max_block_tx=10, batch_ms=2000.0)
    assert (r.success, r.fail, r.n_tx) == (50, 0, 50)
    # ideal consensus: a transaction waits for its block to fill (9..0 arrivals of 20 ms)
    assert 0.0 <= r.lat_min_ms < 5.0 and 180.0 < r.lat_max_ms < 200.0
    assert r.lat_min_ms <= r.lat_avg_ms <= r.lat_max_ms
    assert r.throughput == pytest.approx(50 / (0.98 + r.lat_min_ms / 1000), rel=0.05)
    assert chain.ledger.next_height == 5


def test_lost_messages_fail_every_transaction():
    chain, rng = make_chain(protocol="pbft", message_loss=1.0, signatures="modelled")
    r = run_round(chain, 100.0, 0.2, rng)
    assert (r.success, r.fail, r.throughput) == (0, 20, 0.0)


def test_report_says_what_is_simulated_and_what_is_measured():
    text = run((100.0, 400.0), 0.1, signatures="ed25519")
    assert "SIMULATED" in text and "MEASURED" in text and "Ed25519 alone" in text
    rows = [ln.split() for ln in text.splitlines() if ln.strip().split(" ")[0] in ("100", "400")]
    assert [(int(r[1]), int(r[2])) for r in rows] == [(10, 0), (40, 0)]
    sign_us, verify_us, bound = ed25519_bound(200)
    assert (
        sign_us > 0
        and verify_us > 0
        and bound == pytest.approx(1e6 / (2 * sign_us + 2 * verify_us))
    )


def test_bad_rates_raise():
    with pytest.raises(ValueError, match="must be positive"):
        run((0.0,), 1.0)


def test_main_prints(capsys):
    bench_chain.main(["--rates", "200", "--duration", "0.1", "--signatures", "modelled"])
    out = capsys.readouterr().out
    assert "modelled signatures" in out and "chain stage" in out
