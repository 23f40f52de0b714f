"""The vectorised PBFT round against a slow scalar reference fed the same network draws.

The reference re-implements the model of ``mgenv/chain/pbft.py`` (leader selection, vote
counting, phase-synchronous latency) with explicit Python loops over nodes and messages.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from mgenv.chain import REJECT_REASONS, Chain, ChainParams
from mgenv.chain.network import RoundDraw
from mgenv.chain.pbft import PBFTProtocol

COMMITTED = REJECT_REASONS.index("committed")
NO_QUORUM = REJECT_REASONS.index("no_quorum")
PRIMARY_OFFLINE = REJECT_REASONS.index("primary_offline")


def reference_round(
    draw: RoundDraw,
    view: int,
    voters: list[bool],
    positions: list[tuple[float, float]],
    params: ChainParams,
) -> tuple[bool, int, float, int, int]:
    """Return (committed, reason, latency_ms, view_changes, new_view), scalar loops only."""
    n = params.n_nodes
    f = (n - 1) // 3
    online = [bool(x) for x in draw.online]
    timeout = params.view_change_timeout_ms

    primary, changes = view % n, 0
    if not online[primary]:
        if sum(online) < 2 * f + 1:
            return False, PRIMARY_OFFLINE, timeout, 0, view
        for k in range(1, n):
            if online[(primary + k) % n]:
                primary, changes = (primary + k) % n, k
                break
    view += changes

    def link(phase: int, j: int, i: int) -> bool:
        return j != i and online[j] and online[i] and bool(draw.delivered[phase, j, i])

    has_pp = [i == primary or link(0, primary, i) for i in range(n)]
    prep_send = [has_pp[j] and voters[j] for j in range(n)]
    prepared = []
    for i in range(n):
        votes = 0
        for j in range(n):
            if prep_send[j] and link(1, j, i):
                votes += 1
        prepared.append(has_pp[i] and votes >= 2 * f)
    commit_send = [prepared[j] and voters[j] for j in range(n)]
    local = []
    for i in range(n):
        votes = 0
        for j in range(n):
            if commit_send[j] and link(2, j, i):
                votes += 1
        local.append(commit_send[i] and votes >= 2 * f)
    if sum(local) < 2 * f + 1:
        return False, NO_QUORUM, changes * timeout + timeout, changes, view

    def delay(phase: int, j: int, i: int) -> float:
        (xj, yj), (xi, yi) = positions[j], positions[i]
        km = math.hypot(xj - xi, yj - yi)
        jitter = -params.jitter_ms * math.log1p(-float(draw.jitter_u[phase, j, i]))
        return params.base_delay_ms + params.delay_per_km_ms * km + jitter

    completions: list[list[float]] = [[], [], []]
    for i in range(n):
        pp = 0.0 if i == primary else delay(0, primary, i)
        completions[0].append(pp if has_pp[i] else math.inf)
        for phase, senders, done in ((1, prep_send, prepared), (2, commit_send, local)):
            arrivals = sorted(
                delay(phase, j, i) for j in range(n) if senders[j] and link(phase, j, i)
            )
            completions[phase].append(arrivals[2 * f - 1] if done[i] else math.inf)
    latency = changes * timeout + sum(sorted(c)[2 * f] for c in completions)
    return True, COMMITTED, latency, changes, view


@pytest.mark.parametrize(
    ("n_nodes", "loss", "availability", "withhold"),
    [(4, 0.1, 1.0, 0.0), (4, 0.1, 0.9, 0.0), (7, 0.1, 0.9, 0.15), (10, 0.2, 0.85, 0.1)],
)
def test_chain_matches_scalar_reference(
    n_nodes: int, loss: float, availability: float, withhold: float
) -> None:
    """200 seeded periods through Chain.process; the reference sees the same draws."""
    params = ChainParams(
        protocol="pbft",
        n_nodes=n_nodes,
        message_loss=loss,
        availability=availability,
        withhold_share=withhold,
    )
    net, adv = np.random.default_rng(42).spawn(2)
    chain = Chain(params, 8, net, adv, key_seed=1)
    shadow = copy.deepcopy(net)  # the chain's network stream, from here on
    proto = chain.protocol
    assert isinstance(proto, PBFTProtocol)
    voters = [bool(v) for v in proto.voters]
    positions = [(float(x), float(y)) for x, y in proto.network.positions_km]
    trades = np.random.default_rng(0)
    view, committed = 0, []
    for t in range(200):
        draw = proto.network.draw_round(shadow)
        ok, reason, latency, changes, view = reference_round(draw, view, voters, positions, params)
        seller, buyer = trades.integers(0, 4, 5), trades.integers(4, 8, 5)
        res = chain.process(t, seller, buyer, trades.uniform(1, 9, 5), np.full(5, 0.5))
        assert res.committed.tolist() == [ok] * 5, t
        assert res.reason.tolist() == [reason] * 5, t
        assert res.view_changes == changes, t
        assert res.latency_ms == pytest.approx(latency, rel=1e-12), t
        assert res.online_share == pytest.approx(sum(draw.online) / n_nodes)
        assert proto.view == view
        committed.append(ok)
    share = np.mean(committed)
    assert 0.0 < share < 1.0, share
    chain.ledger.verify()


def test_reference_agrees_on_handmade_draws() -> None:
    """Fixture (n=4, f=1, primary 0, no withholding), 1 = delivered, rows sender -> receiver:

    phase 0 (pre-prepare)   phase 1 (prepare)   phase 2 (commit)
       0 1 2 3                 0 1 2 3             0 1 2 3
    0  . 1 1 0              0  . 1 1 1          0  . 1 1 1
    1  . . . .              1  1 . 1 0          1  1 . 1 1
    2  . . . .              2  1 1 . 1          2  1 1 . 1
    3  . . . .              3  1 1 1 .          3  1 1 1 .

    Node 3 misses the pre-prepare, so it sends no prepare and is not prepared (the lost
    prepare 1 -> 3 does not matter); nodes 0, 1, 2 each receive 2 prepares, from the other two,
    so they are prepared and commit with 2 commits from the others each: 3 = 2f + 1 local
    commits, the block commits.
    """
    pp = [[0, 1, 1, 0], [0] * 4, [0] * 4, [0] * 4]
    prep = [[0, 1, 1, 1], [1, 0, 1, 0], [1, 1, 0, 1], [1, 1, 1, 0]]
    com = [[0, 1, 1, 1], [1, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0]]
    delivered = np.array([pp, prep, com], dtype=bool)
    u = np.random.default_rng(3).random((3, 4, 4))
    params = ChainParams(protocol="pbft")
    proto = PBFTProtocol(params, *np.random.default_rng(0).spawn(2))
    positions = [(float(x), float(y)) for x, y in proto.network.positions_km]
    draw = RoundDraw(np.ones(4, bool), delivered, u)
    out = proto.run_round(draw, True)
    ref = reference_round(draw, 0, [True] * 4, positions, params)
    assert out.committed and ref[0]
    assert out.latency_ms == pytest.approx(ref[2], rel=1e-12)
    # drop one more commit to node 2 (from node 1): node 2 has 1 < 2f commits -> 2 local: fail
    delivered[2, 1, 2] = False
    out = proto.run_round(RoundDraw(np.ones(4, bool), delivered, u), True)
    ref = reference_round(
        RoundDraw(np.ones(4, bool), delivered, u), 0, [True] * 4, positions, params
    )
    assert not out.committed and not ref[0] and out.reason == ref[1] == NO_QUORUM
