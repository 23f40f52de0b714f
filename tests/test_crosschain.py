"""Cross-chain consensus (seed 000, section 3.2): VNS verification, thresholds, deadline.

Participants 0-7 on two chains (p % 2): sellers 0-3, buyers 6-7 as in ``crosschain_aggregators``.

    trade   seller -> buyer   chains   kind
    0       0 -> 6            0 -> 0   within chain 0
    1       1 -> 7            1 -> 1   within chain 1
    2       2 -> 7            0 -> 1   cross-chain
    3       3 -> 6            1 -> 0   cross-chain
"""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest

import mgenv
from mgenv.chain import REJECT_REASONS, Chain, ChainParams
from mgenv.chain.crosschain import CrossChainProtocol

SELLERS, BUYERS = np.array([0, 1, 2, 3]), np.array([6, 7, 7, 6])
QTY, PRICE = np.array([10.0, 20.0, 30.0, 40.0]), np.full(4, 0.6)
CROSS = np.array([False, False, True, True])
OK, VNS_REJECTED, DEADLINE = (
    REJECT_REASONS.index(r) for r in ("committed", "vns_rejected", "deadline_missed")
)


def make(seed: int = 0, **kw: object) -> Chain:
    params = ChainParams(**{"protocol": "crosschain", "n_nodes": 8, **kw})
    net, adv = np.random.default_rng(seed).spawn(2)
    return Chain(params, 8, net, adv, key_seed=seed + 7)


def proto(chain: Chain) -> CrossChainProtocol:
    p = chain.protocol
    assert isinstance(p, CrossChainProtocol)
    return p


def test_params_validation_names_fields() -> None:
    with pytest.raises(ValueError, match=r"ChainParams.vns_threshold=5 is outside \[1, 4\]"):
        ChainParams(protocol="crosschain", n_nodes=8, vns_threshold=5)
    with pytest.raises(
        ValueError,
        match=r"ChainParams.n_nodes=6 is outside \[8, 256\] for "
        r"protocol 'crosschain'",
    ):
        ChainParams(protocol="crosschain", n_nodes=6)
    with pytest.raises(ValueError, match=r"ChainParams.honest_share=0.5 is outside \[0.75, 1\]"):
        ChainParams(honest_share=0.5)
    with pytest.raises(ValueError, match=r"ChainParams.deploy_ms=3000.0 is outside \[0, 2000\]"):
        ChainParams(deploy_ms=3000.0)
    with pytest.raises(ValueError, match=r"ChainParams.vns_malicious_share=-0.1 is outside"):
        ChainParams(vns_malicious_share=-0.1)
    with pytest.raises(ValueError, match=r"ChainParams.n_chains=0 is outside \[1, 64\]"):
        ChainParams(n_chains=0)


def test_honest_reliable_network_commits_everything() -> None:
    chain = make()
    res = chain.process(0, SELLERS, BUYERS, QTY, PRICE)
    assert res.committed.all() and (res.reason == OK).all()
    assert res.block is not None and res.block.n_tx == 4
    assert 0.0 < res.latency_ms < chain.params.deadline_ms + chain.params.deploy_ms
    assert res.extra["cross_tx"] == 2 and res.extra["cross_failed"] == 0
    chain.ledger.verify()


def test_vns_below_threshold_rejects_and_cross_needs_both_chains() -> None:
    chain = make()
    p = proto(chain)
    p.malicious[p.vns[1, :2]] = True  # chain 1's VNS: 2 honest < threshold 3
    res = chain.process(0, SELLERS, BUYERS, QTY, PRICE)
    # chain 0 alone verifies trade 0; every trade touching chain 1 is rejected
    assert res.committed.tolist() == [True, False, False, False]
    assert res.reason.tolist() == [OK, VNS_REJECTED, VNS_REJECTED, VNS_REJECTED]
    assert res.extra["cross_failed"] == 2


def test_one_malicious_member_is_tolerated_at_threshold_three() -> None:
    chain = make()
    p = proto(chain)
    p.malicious[p.vns[:, 0]] = True  # one per VNS: 3 honest, and rule (11) still holds
    res = chain.process(0, SELLERS, BUYERS, QTY, PRICE)
    assert res.committed.all()
    # ... but not with a threshold of 4
    strict = make(vns_threshold=4)
    q = proto(strict)
    q.malicious[q.vns[:, 0]] = True
    assert not strict.process(0, SELLERS, BUYERS, QTY, PRICE).committed.any()


def test_forged_partial_signatures_make_honest_members_reject() -> None:
    # sigma = 1: rule (11) wants n/2 passes; 3 key-corrupting members among 4 receivers of an
    # intra-chain trade leave each honest receiver 1 pass < 2
    chain = make(vns_threshold=1, honest_share=1.0)
    p = proto(chain)
    p.malicious[p.vns[0, 1:]] = True
    member = p.vns[0][None]
    ok = p.signature_checks(np.array([0]), member, np.array([4]), [b"x" * 40])
    assert ok.tolist() == [[False, True, True, True]]  # only the malicious accept
    assert not chain.process(0, SELLERS[:1], BUYERS[:1], QTY[:1], PRICE[:1]).committed.any()
    p.malicious[:] = False
    assert p.signature_checks(np.array([0]), member, np.array([4]), [b"x" * 40]).all()


def test_offline_network_rejects_and_tight_deadline_misses() -> None:
    res = make(availability=0.0).process(0, SELLERS, BUYERS, QTY, PRICE)
    assert (res.reason == VNS_REJECTED).all() and res.online_share == 0.0
    late = make(deadline_ms=30.0, deploy_ms=20.0).process(0, SELLERS, BUYERS, QTY, PRICE)
    assert (late.reason == DEADLINE).all() and late.latency_ms == 30.0
    # cross-chain trades need an extra phase: with a deadline between the two, only they miss
    chain = make(
        jitter_ms=0.0, base_delay_ms=5.0, delay_per_km_ms=0.0, deadline_ms=40.0, deploy_ms=20.0
    )
    res = chain.process(0, SELLERS, BUYERS, QTY, PRICE)  # intra 10 ms, cross 10+5+10 ms
    assert res.committed.tolist() == (~CROSS).tolist()
    assert (res.reason[CROSS] == DEADLINE).all()


def _verdict_scalar(
    p: CrossChainProtocol,
    verified: np.ndarray,
    arrival: np.ndarray,
    hops: np.ndarray,
    cross: np.ndarray,
    valid: np.ndarray,
) -> list[tuple]:
    """Reference for eqs. 15-16 and condition (1), one transaction at a time."""
    k, tk, prm = p.p.vns_size, p.p.vns_threshold, p.p
    out = []
    for t in range(cross.size):
        vx = sorted(arrival[t, j] for j in range(k) if verified[t, j])
        vy = sorted(arrival[t, k + j] for j in range(k) if verified[t, k + j])
        ok = len(vx) >= tk and (not cross[t] or len(vy) >= tk)
        total = len(vx) + (len(vy) if cross[t] else 0)
        ok = ok and total >= tk * (2 if cross[t] else 1)
        if not valid[t]:
            out.append((False, OK, prm.deadline_ms))
            continue
        if not ok:
            out.append((False, VNS_REJECTED, prm.deadline_ms))
            continue
        when = vx[tk - 1] + ((vy[tk - 1] + hops[t, 0]) if cross[t] else 0.0)
        if when > prm.deadline_ms - prm.deploy_ms:
            out.append((False, DEADLINE, prm.deadline_ms))
            continue
        after = prm.deploy_ms + ((hops[t, 1] + hops[t, 2]) if cross[t] else 0.0)
        out.append((True, OK, when + after))
    return out


def test_verdict_matches_scalar_reference() -> None:
    p = proto(make(deadline_ms=60.0, deploy_ms=10.0))
    rng = np.random.default_rng(0)
    t, k = 300, p.p.vns_size
    verified = rng.random((t, 2 * k)) < 0.8
    arrival = np.where(verified, rng.uniform(5, 40, (t, 2 * k)), np.inf)
    hops = rng.uniform(2, 10, (t, 3))
    cross, valid = rng.random(t) < 0.5, rng.random(t) < 0.9
    verified[~cross, k:] = False
    arrival[~cross, k:] = np.inf
    committed, reason, latency = p._verdict(verified, arrival, hops, cross, valid)
    ref = _verdict_scalar(p, verified, arrival, hops, cross, valid)
    assert committed.tolist() == [r[0] for r in ref]
    assert reason.tolist() == [r[1] for r in ref]
    np.testing.assert_allclose(latency, [r[2] for r in ref])
    assert len(set(reason.tolist())) == 3  # all three outcomes exercised


def test_credibility_replaces_malicious_members_with_reserves() -> None:
    chain = make(n_nodes=12, vns_malicious_share=0.5, message_loss=0.0)
    p = proto(chain)
    assert np.count_nonzero(p.malicious[p.vns]) == 4  # 2 of 4 in each initial VNS
    first = chain.process(0, SELLERS, BUYERS, QTY, PRICE)
    assert not first.committed.any() and first.extra["vns_malicious"] == 4
    for t in range(1, 8):
        last = chain.process(t, SELLERS, BUYERS, QTY, PRICE)
    assert last.committed.all() and last.extra["vns_malicious"] == 0
    # without reserves the malicious members stay, and so do the failures
    stuck = make(vns_malicious_share=0.5)
    for t in range(8):
        res = stuck.process(t, SELLERS, BUYERS, QTY, PRICE)
    assert not res.committed.any() and res.extra["vns_malicious"] == 4


def test_seeded_reproducible_and_seed_sensitive() -> None:
    kw = {"n_nodes": 12, "availability": 0.9, "message_loss": 0.1, "vns_malicious_share": 0.25}

    def run(seed: int) -> list:
        chain = make(seed, **kw)
        return [chain.process(t, SELLERS, BUYERS, QTY, PRICE) for t in range(12)]

    a, b, c = run(1), run(1), run(2)
    for ra, rb in zip(a, b, strict=True):
        assert ra.committed.tolist() == rb.committed.tolist() and ra.extra == rb.extra
        assert ra.latency_ms == rb.latency_ms and ra.block == rb.block
    assert [r.committed.tolist() for r in a] != [r.committed.tolist() for r in c]


def test_network_stream_does_not_depend_on_the_number_of_trades() -> None:
    one, four = make(3), make(3)
    one.process(0, SELLERS[:1], BUYERS[:1], QTY[:1], PRICE[:1])
    four.process(0, SELLERS, BUYERS, QTY, PRICE)
    assert proto(one)._rng.bit_generator.state == proto(four)._rng.bit_generator.state


def test_keys_are_order_independent_and_seeded() -> None:
    a, b = proto(make(5)), proto(make(5))
    b.signer_keys(3)
    np.testing.assert_array_equal(a.signer_keys(2)[0], b.signer_keys(2)[0])
    assert not np.array_equal(a.signer_keys(2)[0], proto(make(6)).signer_keys(2)[0])


def test_bad_signature_is_rejected_before_the_protocol() -> None:
    chain = make()

    def tamper(period: int, payloads: list, seller_sigs: list, buyer_sigs: list) -> None:
        seller_sigs[2] = bytes(32)

    chain.tamper_hook = tamper
    res = chain.process(0, SELLERS, BUYERS, QTY, PRICE)
    assert REJECT_REASONS[res.reason[2]] == "bad_signature"
    assert res.committed.tolist() == [True, True, False, True]


def test_scenario_env_runs_copies_and_reports() -> None:
    env = mgenv.parallel_env("crosschain_aggregators", user_load_kw=(275.0,))
    assert env.config.chain.protocol == "crosschain"
    env.reset(seed=0)
    acts = {a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents}
    _, _, _, _, infos = env.step(acts)
    info = infos["mg_0"]
    assert {"chain_cross_tx", "chain_cross_failed", "chain_vns_malicious"} <= set(info)
    clone = copy.deepcopy(env)
    again = pickle.loads(pickle.dumps(env))
    r1 = env.step(acts)[1]
    assert clone.step(acts)[1] == r1 == again.step(acts)[1]


def test_observed_commit_ratio_tracks_the_failures() -> None:
    # no reserves and half of each VNS malicious: every trade fails, the EMA falls
    env = mgenv.parallel_env(
        "crosschain_aggregators", user_load_kw=(275.0,), n_nodes=8, vns_malicious_share=0.5
    )
    obs, _ = env.reset(seed=0)
    col = env.observation_names("mg_0").index("commit_ratio")
    acts = {a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents}
    for _ in range(4):
        obs, _, _, _, infos = env.step(acts)
    sellers = [a for a in env.agents if infos[a]["traded_kwh"] > 0]
    assert sellers and all(infos[a]["commit_ratio"] == 0.0 for a in sellers)
    assert all(obs[a][col] < 0.5 for a in sellers)
    assert infos["mg_0"]["rejected"].get("vns_rejected", 0) > 0
    assert math.isclose(env.episode_kpis()["commit_share"], 0.0)


def test_batched_signature_checks_match_the_scheme_one_request_at_a_time() -> None:
    from mgenv.chain import threshold as ts

    chain = make(n_nodes=12, honest_share=0.8)
    p = proto(chain)
    rng = np.random.default_rng(4)
    for _ in range(5):
        p.malicious[:] = rng.random(12) < 0.3
        v = 6
        signers = rng.integers(0, 8, v)
        widths = rng.choice([4, 8], v)
        receivers = np.stack([rng.permutation(12)[:8] for _ in range(v)])
        payloads = [rng.bytes(40) for _ in range(v)]
        got = p.signature_checks(signers, receivers, widths, payloads)
        for t in range(v):
            rec = receivers[t, : widths[t]]
            r, g = p.signer_keys(int(signers[t]))
            sub = np.ix_(rec, rec)
            bad = p.malicious[rec][:, None] & ~np.eye(rec.size, dtype=bool)
            dist = ts.KeyDistribution(r[sub], np.where(bad[:, :, None], g[sub], r[sub]), bad)
            sig = ts.sign(dist.keys, payloads[t])  # stdlib hmac.digest path
            ref = ts.accepts(ts.tag_tests(ts.expected_tags(dist, payloads[t]), sig), 0.8)
            assert got[t, : widths[t]].tolist() == ref.tolist()
            assert not got[t, widths[t] :].any()
