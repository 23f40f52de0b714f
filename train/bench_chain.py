"""Chain load test: a rising send rate of signed transactions, as seed 002's Table 14.

The paper drove its Fabric 1.1 network with Hyperledger Caliper (1,000 transactions per round
at 50-460 tx/s) and saw throughput saturate near 275 tx/s. Here each round sends
``rate x duration_s`` random trades through the real chain stage (:class:`mgenv.chain.Chain`):
both parties sign each transaction (Ed25519 by default), the nodes verify both signatures,
the consensus protocol decides the block, its Merkle root is computed and it is appended to
the hash-linked ledger.

What is **measured** on this machine (wall clock): the seconds :meth:`Chain.process` takes per
block, hence the stage's real transactions per second (signing x2, verification x2, Merkle
root, block append, and the protocol's bookkeeping), and, in the same run, the Ed25519 bound:
``1 / (2 t_sign + 2 t_verify)`` from timing the library's sign and verify alone.

What is **simulated** (a discrete-event clock, not wall time): transactions arrive evenly at
the send rate; the orderer cuts a block at ``max_block_tx`` transactions or ``batch_ms``
after the block's first one (Fabric's MaxMessageCount 10 and BatchTimeout 2 s by default);
one committer processes blocks in order, each taking its *measured* processing time; a block
commits after that plus the protocol's simulated consensus latency (network model). A
transaction's latency is commit time minus send time; throughput is successes over the time
from the first send to the last commit (Caliper's definitions). Failures are transactions
whose block the protocol rejected (no quorum, e.g. with ``message_loss``).

Usage::

    mgenv bench chain                                   # default rates, 1 s each, PBFT
    mgenv bench chain --rates 100,1000,3000 --duration 2 --message-loss 0.05
"""

from __future__ import annotations

import argparse
import time
from typing import NamedTuple

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mgenv.chain import Chain, ChainParams

DEFAULT_RATES = (50, 100, 200, 400, 800, 1600, 3200, 4800, 6400)
N_PARTICIPANTS = 16


class RoundResult(NamedTuple):
    """One send rate's figures (latencies in ms of simulated time)."""

    rate: float  # tx/s sent
    success: int
    fail: int
    lat_min_ms: float
    lat_avg_ms: float
    lat_max_ms: float
    throughput: float  # tx/s, simulated clock
    wall_s: float  # measured seconds in Chain.process
    n_tx: int


def ed25519_bound(n: int = 500, n_keys: int = N_PARTICIPANTS) -> tuple[float, float, float]:
    """Measured ``(sign_us, verify_us, bound_tx_per_s)`` for 40-byte messages.

    Keys cycle over ``n_keys`` participants as in the chain stage. The bound is the rate at
    which one core signs twice and verifies twice per transaction.
    """
    keys = [Ed25519PrivateKey.from_private_bytes(bytes([k]) * 32) for k in range(n_keys)]
    pubs = [k.public_key() for k in keys]
    msgs = [i.to_bytes(40, "little") for i in range(n)]
    who = [i % n_keys for i in range(n)]
    t0 = time.perf_counter()
    sigs = [keys[k].sign(m) for k, m in zip(who, msgs, strict=True)]
    t1 = time.perf_counter()
    for k, s, m in zip(who, sigs, msgs, strict=True):
        pubs[k].verify(s, m)
    t2 = time.perf_counter()
    sign_s, verify_s = (t1 - t0) / n, (t2 - t1) / n
    return 1e6 * sign_s, 1e6 * verify_s, 1.0 / (2 * sign_s + 2 * verify_s)


def _blocks(arrival_s: np.ndarray, max_tx: int, batch_s: float) -> list[tuple[int, int, float]]:
    """Orderer batching: ``(first, end, cut_time_s)`` per block."""
    out, i, n = [], 0, arrival_s.size
    while i < n:
        by_timeout = int(np.searchsorted(arrival_s, arrival_s[i] + batch_s, side="right"))
        j = min(i + max_tx, by_timeout, n)
        cut = arrival_s[j - 1] if j - i == max_tx else arrival_s[i] + batch_s
        out.append((i, j, float(cut)))
        i = j
    return out


def run_round(
    chain: Chain,
    rate: float,
    duration_s: float,
    rng: np.random.Generator,
    max_block_tx: int = 10,
    batch_ms: float = 2000.0,
) -> RoundResult:
    """Send ``rate x duration_s`` transactions through ``chain`` (module docstring)."""
    n = max(1, round(rate * duration_s))
    arrival = np.arange(n) / rate
    seller = rng.integers(0, N_PARTICIPANTS, n)
    buyer = (seller + rng.integers(1, N_PARTICIPANTS, n)) % N_PARTICIPANTS
    kwh, price = rng.uniform(0.1, 20.0, n), rng.uniform(0.77, 0.85, n)
    lat = np.full(n, np.nan)
    free, wall, last = 0.0, 0.0, 0.0
    for first, end, cut in _blocks(arrival, max_block_tx, batch_ms / 1000.0):
        sl = slice(first, end)
        t0 = time.perf_counter()
        res = chain.process(chain.ledger.next_height, seller[sl], buyer[sl], kwh[sl], price[sl])
        w = time.perf_counter() - t0
        wall += w
        free = max(cut, free) + w
        commit = free + res.latency_ms / 1000.0
        lat[sl] = np.where(res.committed, commit - arrival[sl], np.nan)
        if res.committed.any():
            last = max(last, commit)
    ok = np.isfinite(lat)
    k = int(ok.sum())
    ms = 1000.0 * lat[ok] if k else np.zeros(1)
    return RoundResult(
        rate,
        k,
        n - k,
        float(ms.min()),
        float(ms.mean()),
        float(ms.max()),
        k / last if last > 0 else 0.0,
        wall,
        n,
    )


def run(
    rates: tuple[float, ...] = DEFAULT_RATES,
    duration_s: float = 1.0,
    *,
    protocol: str = "pbft",
    n_nodes: int = 4,
    message_loss: float = 0.0,
    signatures: str = "ed25519",
    max_block_tx: int = 10,
    batch_ms: float = 2000.0,
    seed: int = 0,
) -> str:
    """Run the load test at each send rate and return the printed report."""
    if not rates or any(r <= 0 for r in rates) or duration_s <= 0:
        raise ValueError(f"rates={rates!r} and duration_s={duration_s!r} must be positive")
    params = ChainParams(
        protocol=protocol,
        n_nodes=n_nodes,
        message_loss=message_loss,
        signatures=signatures,
        ledger_window=64,
    )
    root = np.random.default_rng(seed)
    net, adv, load = root.spawn(3)
    chain = Chain(params, N_PARTICIPANTS, net, adv, key_seed=seed)
    rows, bounds = [], []
    for r in rates:  # the bound is timed between rounds: both see the same machine load
        bounds.append(ed25519_bound())
        rows.append(run_round(chain, r, duration_s, load, max_block_tx, batch_ms))
    chain.ledger.verify()
    head = (
        f"Chain load test: {protocol} ({n_nodes} nodes, message loss {message_loss:g}), "
        f"{signatures} signatures, blocks of <= {max_block_tx} tx or {batch_ms:g} ms, "
        f"{duration_s:g} s per send rate"
    )
    return _report(head, rows, bounds, signatures)


def _report(
    head: str, rows: list[RoundResult], bounds: list[tuple[float, float, float]], signatures: str
) -> str:
    """The printed report: simulated rows, then the measured figures."""
    stage = [r.n_tx / r.wall_s for r in rows]
    real, lo, hi = float(np.median(stage)), min(stage), max(stage)
    sign_us, verify_us, bound = (float(np.median([b[k] for b in bounds])) for k in range(3))
    lines = [
        head,
        "SIMULATED (discrete-event clock; each block's processing time measured): latency, "
        "throughput",
        f"{'send tx/s':>9} {'success':>8} {'fail':>5} {'min ms':>8} {'avg ms':>8} "
        f"{'max ms':>9} {'thr tx/s':>9}",
        *(
            f"{r.rate:9g} {r.success:8d} {r.fail:5d} {r.lat_min_ms:8.1f} {r.lat_avg_ms:8.1f} "
            f"{r.lat_max_ms:9.1f} {r.throughput:9.1f}"
            for r in rows
        ),
        "MEASURED on this machine (wall clock):",
        f"  chain stage: {real:,.0f} tx/s (median over the rounds, {lo:,.0f}-{hi:,.0f}; sign x2, "
        "verify x2, Merkle root, block append)",
    ]
    if signatures == "ed25519":
        lines.append(
            f"  Ed25519 alone (median of {len(bounds)} timings between the rounds): sign "
            f"{sign_us:.1f} us, verify {verify_us:.1f} us -> bound "
            f"{bound:,.0f} tx/s; the stage reaches {100 * real / bound:.0f}% of it "
            f"({real / 275:.1f}x the ~275 tx/s at which the paper's Fabric saturated)"
        )
    else:
        lines.append(
            f"  (Ed25519 bound for reference: {bound:,.0f} tx/s; this run used "
            f"{signatures} signatures)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line of ``mgenv bench chain`` (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="mgenv bench chain", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rates",
        default=",".join(map(str, DEFAULT_RATES)),
        help="comma-separated send rates, tx/s",
    )
    ap.add_argument("--duration", type=float, default=1.0, help="seconds sent per rate")
    ap.add_argument("--protocol", default="pbft")
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--message-loss", type=float, default=0.0)
    ap.add_argument("--signatures", default="ed25519", choices=("ed25519", "modelled"))
    ap.add_argument("--block-tx", type=int, default=10, help="max transactions per block")
    ap.add_argument("--batch-ms", type=float, default=2000.0, help="batch timeout, ms")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    rates = tuple(float(x) for x in a.rates.split(",") if x)
    print(
        run(
            rates,
            a.duration,
            protocol=a.protocol,
            n_nodes=a.nodes,
            message_loss=a.message_loss,
            signatures=a.signatures,
            max_block_tx=a.block_tx,
            batch_ms=a.batch_ms,
            seed=a.seed,
        )
    )


if __name__ == "__main__":
    main()
