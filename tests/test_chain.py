"""Chain facade: signatures, verdicts, PBFT behaviour, determinism, copy and pickle."""

from __future__ import annotations

import copy
import hashlib
import hmac
import pickle

import numpy as np
import pytest

from mgenv.chain import REJECT_REASONS, Chain, ChainParams, ConsensusResult
from mgenv.chain.network import RoundDraw
from mgenv.chain.pbft import PBFTProtocol
from mgenv.chain.transactions import (
    ModelledSigner,
    derive_key,
    derive_keys,
    pack_tx,
    unpack_tx,
)

N_PARTICIPANTS = 8
COMMITTED = REJECT_REASONS.index("committed")
NO_QUORUM = REJECT_REASONS.index("no_quorum")
BAD_SIGNATURE = REJECT_REASONS.index("bad_signature")
PRIMARY_OFFLINE = REJECT_REASONS.index("primary_offline")
INVALID_TRADE = REJECT_REASONS.index("invalid_trade")


def make_chain(seed: int = 0, n_participants: int = N_PARTICIPANTS, **params: object) -> Chain:
    net, adv = np.random.default_rng(seed).spawn(2)
    return Chain(ChainParams(**params), n_participants, net, adv, key_seed=seed + 100)


def random_trades(rng: np.random.Generator, n_tx: int = 6):
    """(seller, buyer, quantity_kwh, price) of n_tx valid trades: sellers 0-3, buyers 4-7."""
    return (
        rng.integers(0, 4, n_tx),
        rng.integers(4, 8, n_tx),
        rng.uniform(0.1, 50.0, n_tx),
        rng.uniform(0.3, 1.2, n_tx),
    )


def run(chain: Chain, periods: range, seed: int = 1, n_tx: int = 6) -> list[ConsensusResult]:
    rng = np.random.default_rng(seed)
    return [chain.process(t, *random_trades(rng, n_tx)) for t in periods]


def assert_same_results(a: list[ConsensusResult], b: list[ConsensusResult]) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ra.committed, rb.committed)
        np.testing.assert_array_equal(ra.reason, rb.reason)
        assert ra.latency_ms == rb.latency_ms
        assert ra.online_share == rb.online_share
        assert ra.view_changes == rb.view_changes
        assert (ra.block is None) == (rb.block is None)
        if ra.block is not None and rb.block is not None:
            assert ra.block == rb.block


# ---------------------------------------------------------------- ideal protocol, signatures


def test_ideal_commits_every_valid_trade() -> None:
    chain = make_chain(protocol="ideal")
    seller, buyer, q, p = random_trades(np.random.default_rng(3), 7)
    res = chain.process(0, seller, buyer, q, p)
    assert res.committed.dtype == np.bool_ and res.committed.shape == (7,)
    assert res.reason.dtype == np.int8 and res.reason.shape == (7,)
    assert res.committed.all() and (res.reason == COMMITTED).all()
    assert res.latency_ms == 0.0 and res.online_share == 1.0 and res.view_changes == 0
    assert res.block is not None and res.block.n_tx == 7 and res.block.period == 0
    tx = res.block.transactions()
    np.testing.assert_array_equal(tx["serial"], np.arange(7))
    np.testing.assert_array_equal(tx["seller"], seller)
    np.testing.assert_array_equal(tx["buyer"], buyer)
    np.testing.assert_array_equal(tx["quantity_kwh"], q)
    np.testing.assert_array_equal(tx["price"], p)
    assert chain.ledger.head_hash == res.block.hash


def test_tampered_quantity_is_rejected_as_bad_signature() -> None:
    chain = make_chain(protocol="ideal")

    def double_quantity(period, payloads, seller_sigs, buyer_sigs) -> None:
        serial, per, q, p, s, b = unpack_tx(payloads[1])
        payloads[1] = pack_tx(serial, per, 2.0 * q, p, s, b)

    chain.tamper_hook = double_quantity
    res = chain.process(0, *random_trades(np.random.default_rng(4), 5))
    assert res.reason.tolist() == [COMMITTED, BAD_SIGNATURE, COMMITTED, COMMITTED, COMMITTED]
    assert res.committed.tolist() == [True, False, True, True, True]
    assert res.block is not None
    assert res.block.transactions()["serial"].tolist() == [0, 2, 3, 4]
    chain.ledger.verify()


@pytest.mark.parametrize("which", ["seller", "buyer"])
def test_signature_by_the_wrong_key_is_rejected(which: str) -> None:
    chain = make_chain(protocol="ideal")
    signer = chain.signer
    assert isinstance(signer, ModelledSigner)

    def forge(period, payloads, seller_sigs, buyer_sigs) -> None:
        # An outsider (participant 7 is a buyer, never the seller of trade 0) signs trade 0.
        sigs = seller_sigs if which == "seller" else buyer_sigs
        sigs[0] = signer.tag(3 if which == "buyer" else 7, payloads[0])

    chain.tamper_hook = forge
    seller = np.array([0, 1], np.int64)
    buyer = np.array([5, 6], np.int64)
    res = chain.process(0, seller, buyer, np.array([1.0, 2.0]), np.array([0.5, 0.5]))
    assert res.reason.tolist() == [BAD_SIGNATURE, COMMITTED]


def test_malformed_or_replayed_payload_is_invalid_even_if_validly_signed() -> None:
    chain = make_chain(protocol="ideal")
    first = chain.process(0, *random_trades(np.random.default_rng(6), 2))
    assert first.block is not None
    old_payload = first.block.records()[0][:40]  # serial 0, period 0
    signer = chain.signer
    assert isinstance(signer, ModelledSigner)

    def attack(period, payloads, seller_sigs, buyer_sigs) -> None:
        payloads[0] += b"\x00"  # one byte longer, re-signed by both parties' keys
        payloads[1] = old_payload  # replay of last period's transaction
        for k in (0, 1):
            _, _, _, _, s, b = unpack_tx(payloads[k][:40])
            seller_sigs[k] = signer.tag(s, payloads[k])
            buyer_sigs[k] = signer.tag(b, payloads[k])

    chain.tamper_hook = attack
    res = chain.process(1, *random_trades(np.random.default_rng(7), 3))
    assert res.reason.tolist() == [INVALID_TRADE, INVALID_TRADE, COMMITTED]
    chain.ledger.verify()


def test_all_rejected_gives_no_block() -> None:
    chain = make_chain(protocol="ideal")
    chain.tamper_hook = lambda t, pay, ss, sb: ss.__setitem__(slice(None), [b"x" * 32] * len(ss))
    res = chain.process(0, *random_trades(np.random.default_rng(5), 3))
    assert res.block is None and not res.committed.any()
    assert (res.reason == BAD_SIGNATURE).all()
    assert len(chain.ledger) == 0


def test_modelled_tag_is_stdlib_hmac_sha256() -> None:
    signer = ModelledSigner(key_seed=12345, n_participants=3)
    payload = pack_tx(9, 2, 1.5, 0.7, 0, 2)
    for i in range(3):
        assert signer.tag(i, payload) == hmac.digest(signer.keys[i], payload, "sha256")
    ss, sb = signer.sign_pairs([0, 1], [2, 0], [payload, payload])
    assert ss == [signer.tag(0, payload), signer.tag(1, payload)]
    assert sb == [signer.tag(2, payload), signer.tag(0, payload)]


def test_empty_trade_list() -> None:
    for protocol in ("ideal", "pbft"):
        chain = make_chain(protocol=protocol)
        e = np.zeros(0, np.int64)
        res = chain.process(0, e, e, np.zeros(0), np.zeros(0))
        assert res.committed.shape == (0,) and res.committed.dtype == np.bool_
        assert res.reason.shape == (0,) and res.reason.dtype == np.int8
        assert res.block is None and res.latency_ms == 0.0 and res.view_changes == 0
        assert 0.0 <= res.online_share <= 1.0
        assert chain.next_serial == 0


def test_invalid_trades_are_rejected_individually() -> None:
    chain = make_chain(protocol="ideal")
    seller = np.array([0, 1, 2, 3, 0], np.int64)
    buyer = np.array([4, 1, 5, 6, 7], np.int64)  # trade 1 is a self-trade
    q = np.array([1.0, 1.0, 0.0, np.nan, 2.0])  # trade 2: zero kWh, trade 3: nan
    p = np.array([0.5, 0.5, 0.5, 0.5, np.inf])  # trade 4: infinite price
    res = chain.process(0, seller, buyer, q, p)
    assert res.reason.tolist() == [COMMITTED] + [INVALID_TRADE] * 4
    assert res.block is not None and res.block.n_tx == 1


def test_malformed_input_raises() -> None:
    chain = make_chain(protocol="ideal")
    s, b, q, p = random_trades(np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match="1-D of one length"):
        chain.process(0, s, b[:2], q, p)
    with pytest.raises(ValueError, match="integer arrays"):
        chain.process(0, s.astype(float), b, q, p)
    with pytest.raises(ValueError, match="participant index 8 is outside"):
        chain.process(0, s, np.array([4, 5, 8]), q, p)
    with pytest.raises(ValueError, match="participant index -1 is outside"):
        chain.process(0, np.array([0, -1, 2]), b, q, p)


def test_serials_unique_and_increasing_over_the_chain() -> None:
    chain = make_chain(protocol="pbft", message_loss=0.1, ledger_window=1000)
    results = run(chain, range(100))
    serials = np.concatenate([b.transactions()["serial"] for b in chain.ledger])
    assert np.all(np.diff(serials) > 0)
    assert chain.next_serial == 600
    assert sum(int(r.committed.sum()) for r in results) == serials.size
    heights = [b.height for b in chain.ledger]
    assert heights == list(range(len(heights)))


def test_block_timestamp_is_period_start_plus_latency() -> None:
    net, adv = np.random.default_rng(0).spawn(2)
    chain = Chain(ChainParams(protocol="pbft"), 8, net, adv, key_seed=1, period_h=0.25)
    res = run(chain, range(3, 4))[0]
    assert res.block is not None
    assert res.block.timestamp_ms == round(3 * 900_000 + res.latency_ms)


# ---------------------------------------------------------------- PBFT behaviour


def test_pbft_without_faults_commits_everything() -> None:
    chain = make_chain(protocol="pbft", n_nodes=7)
    results = run(chain, range(50))
    for r in results:
        assert r.committed.all() and r.view_changes == 0 and r.online_share == 1.0
        # three phases, each at least one base delay (5 ms), no timeout
        assert 15.0 <= r.latency_ms < 200.0
    assert len(chain.ledger) == 50
    chain.ledger.verify()


@pytest.mark.parametrize(("n_nodes", "share"), [(4, 0.5), (7, 0.43), (10, 0.4)])
def test_pbft_with_more_than_f_withholding_never_commits(n_nodes: int, share: float) -> None:
    params = ChainParams(protocol="pbft", n_nodes=n_nodes, withhold_share=share)
    assert params.n_withholding > params.max_faulty
    chain = make_chain(protocol="pbft", n_nodes=n_nodes, withhold_share=share)
    for r in run(chain, range(50)):
        assert not r.committed.any() and (r.reason == NO_QUORUM).all() and r.block is None


@pytest.mark.parametrize(("n_nodes", "share"), [(4, 0.25), (7, 0.29)])
def test_pbft_with_f_withholding_still_commits(n_nodes: int, share: float) -> None:
    chain = make_chain(protocol="pbft", n_nodes=n_nodes, withhold_share=share)
    assert chain.params.n_withholding == chain.params.max_faulty
    assert all(r.committed.all() for r in run(chain, range(30)))


def test_pbft_total_message_loss_never_commits() -> None:
    chain = make_chain(protocol="pbft", message_loss=1.0)
    for r in run(chain, range(30)):
        assert not r.committed.any() and (r.reason == NO_QUORUM).all()
        assert r.latency_ms == chain.params.view_change_timeout_ms


def test_pbft_nobody_online_is_primary_offline() -> None:
    chain = make_chain(protocol="pbft", availability=0.0)
    for r in run(chain, range(10)):
        assert (r.reason == PRIMARY_OFFLINE).all() and r.online_share == 0.0


def all_delivered(n: int, online: list[bool]) -> RoundDraw:
    delivered = np.ones((3, n, n), bool) & ~np.eye(n, dtype=bool)
    return RoundDraw(np.array(online), delivered, np.zeros((3, n, n)))


def test_pbft_offline_primary_causes_view_change_and_commits() -> None:
    proto = PBFTProtocol(ChainParams(protocol="pbft"), *np.random.default_rng(0).spawn(2))
    out = proto.run_round(all_delivered(4, [False, True, True, True]), True)
    assert out.committed and out.view_changes == 1 and proto.view == 1
    assert out.latency_ms > proto.timeout_ms
    # the new primary stays: no view change next period
    out = proto.run_round(all_delivered(4, [True, True, True, True]), True)
    assert out.committed and out.view_changes == 0 and proto.view == 1
    # primary 1 and 2 offline: two view changes to node 3, but only 2 < 2f+1 online
    out = proto.run_round(all_delivered(4, [True, False, False, True]), True)
    assert not out.committed and out.reason == PRIMARY_OFFLINE and proto.view == 1
    # n=7 (f=2): nodes 1, 2 offline, 5 online >= 2f+1: view changes 1 -> 3
    proto7 = PBFTProtocol(
        ChainParams(protocol="pbft", n_nodes=7), *np.random.default_rng(0).spawn(2)
    )
    proto7.view = 1
    out = proto7.run_round(all_delivered(7, [True, False, False, True, True, True, True]), True)
    assert out.committed and out.view_changes == 2 and proto7.view == 3


def test_pbft_view_changes_in_a_seeded_run() -> None:
    chain = make_chain(protocol="pbft", availability=0.8)
    results = run(chain, range(300))
    changed = [r for r in results if r.view_changes > 0]
    assert changed, "no view change in 300 periods at availability 0.8"
    for r in changed:
        assert r.committed.all() == (r.online_share >= 0.75)
        assert r.latency_ms >= r.view_changes * chain.params.view_change_timeout_ms


def test_pbft_loss_commits_some_but_not_all() -> None:
    chain = make_chain(protocol="pbft", message_loss=0.1)
    share = np.mean([r.committed.all() for r in run(chain, range(200))])
    assert 0.0 < share < 1.0


# ---------------------------------------------------------------- determinism, copies


@pytest.mark.parametrize("protocol", ["ideal", "pbft"])
def test_same_seeds_same_results_different_seeds_differ(protocol: str) -> None:
    kw = {"protocol": protocol, "message_loss": 0.1, "availability": 0.9}
    if protocol == "ideal":
        kw = {"protocol": "ideal"}
    a, b, c = make_chain(0, **kw), make_chain(0, **kw), make_chain(1, **kw)
    ra, rb, rc = run(a, range(60)), run(b, range(60)), run(c, range(60))
    assert_same_results(ra, rb)
    assert a.ledger.head_hash == b.ledger.head_hash
    assert a.ledger.head_hash != c.ledger.head_hash  # different keys, so different signatures
    if protocol == "pbft":
        assert [r.latency_ms for r in ra] != [r.latency_ms for r in rc]
        assert [r.committed.all() for r in ra] != [r.committed.all() for r in rc]


@pytest.mark.parametrize("signatures", ["modelled", "ed25519"])
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copy_mid_run_continues_identically(signatures: str, how: str) -> None:
    chain = make_chain(protocol="pbft", signatures=signatures, message_loss=0.1, availability=0.9)
    run(chain, range(10), seed=7, n_tx=3)
    twin = copy.deepcopy(chain) if how == "deepcopy" else pickle.loads(pickle.dumps(chain))
    assert_same_results(run(chain, range(10, 25), 8, 3), run(twin, range(10, 25), 8, 3))
    assert chain.ledger.head_hash == twin.ledger.head_hash
    twin.ledger.verify()


def test_ed25519_commits_like_modelled_and_rejects_tampering() -> None:
    kw = {"protocol": "pbft", "message_loss": 0.1}
    modelled = run(make_chain(3, signatures="modelled", **kw), range(20), n_tx=3)
    chain = make_chain(3, signatures="ed25519", **kw)
    ed = run(chain, range(20), n_tx=3)
    for a, b in zip(modelled, ed, strict=True):
        np.testing.assert_array_equal(a.committed, b.committed)
        np.testing.assert_array_equal(a.reason, b.reason)
        assert a.latency_ms == b.latency_ms
    block = next(r.block for r in ed if r.block is not None)
    assert len(block.txs) == block.n_tx * (40 + 64 + 64)
    chain.ledger.verify()

    ideal = make_chain(3, protocol="ideal", signatures="ed25519")

    def tamper(period, payloads, seller_sigs, buyer_sigs) -> None:
        serial, per, q, p, s, b = unpack_tx(payloads[0])
        payloads[0] = pack_tx(serial, per, q, p + 0.01, s, b)
        buyer_sigs[1] = bytes(64)

    ideal.tamper_hook = tamper
    res = ideal.process(0, *random_trades(np.random.default_rng(0), 3))
    assert res.reason.tolist() == [BAD_SIGNATURE, BAD_SIGNATURE, COMMITTED]


def test_keys_depend_only_on_key_seed() -> None:
    a = ModelledSigner(key_seed=5, n_participants=4)
    assert a.keys == ModelledSigner(key_seed=5, n_participants=6).keys[:4]
    assert len(set(a.keys)) == 4
    assert a.keys != ModelledSigner(key_seed=6, n_participants=4).keys
    assert a.keys[0] != hashlib.sha256(b"").digest()


def test_per_transaction_protocol_hook():
    """A protocol with decide_transactions decides each valid transaction on its own."""
    from mgenv.chain import TxOutcome
    from mgenv.chain.types import NO_QUORUM

    class OddOnly:
        def __init__(self):
            self.seen = None

        def decide_transactions(self, period, sellers, buyers, valid, payloads):
            self.seen = (period, list(sellers), valid.copy(), len(payloads))
            mask = np.arange(len(sellers)) % 2 == 1
            return TxOutcome(
                mask, np.full(len(sellers), NO_QUORUM, np.int8), 12.0, 0.5, 0, {"x": 1.0}
            )

    chain = Chain(
        ChainParams(protocol="ideal"),
        8,
        np.random.default_rng(0),
        np.random.default_rng(1),
        key_seed=3,
    )
    proto = OddOnly()
    chain._protocol = proto
    res = chain.process(
        2,
        np.array([0, 1, 2, 3]),
        np.array([4, 5, 6, 7]),
        np.array([1.0, 2.0, 3.0, 4.0]),
        np.full(4, 0.6),
    )
    assert res.committed.tolist() == [False, True, False, True]
    assert res.reason.tolist() == [NO_QUORUM, 0, NO_QUORUM, 0]
    assert res.latency_ms == 12.0 and res.extra == {"x": 1.0}
    assert res.block is not None and res.block.n_tx == 2
    assert proto.seen[0] == 2 and proto.seen[2].all() and proto.seen[3] == 4
    chain.ledger.verify()


@pytest.mark.parametrize("key_seed", [0, 12345, 2**63 - 1, 2**128 - 1])
def test_derive_keys_is_derive_key_per_participant(key_seed: int) -> None:
    for label in (b"hmac", b"ed25519"):
        want = [derive_key(label, key_seed, i) for i in range(9)]
        assert derive_keys(label, key_seed, 9) == want
