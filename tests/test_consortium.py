"""Seed 002's chaincodes: authentication, publication, matchmaking, ordering, compensation."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pytest

from baselines.stackelberg import solve_exact
from mgenv.chain import Chain, ChainParams
from mgenv.chain.consortium import ConsortiumChannel, make_identities
from mgenv.chain.consortium_auth import CREDIT_CRIMINAL, auth_records, check_authentication
from mgenv.chain.consortium_records import (
    AUTH_DTYPE,
    GRID_ID,
    MATCH_DTYPE,
    ChannelLog,
    Keyring,
    sign_records,
)
from mgenv.chain.transactions import ModelledSigner
from mgenv.market.p2p_game import case_period
from mgenv.market.settlement import Positions, Trades, settle

KINDS = ["modelled", "ed25519"]
NAMES = [f"mg_{i}" for i in range(5)]


def channel(kind="modelled", bad=(), installed=(18.4, 9.2, 3.7, 5.5, 13.8), capacity=True):
    ids = make_identities(NAMES, np.arange(5), bad, np.array(installed))
    return ConsortiumChannel(ids, kind, key_seed=7, require_capacity=capacity)


def run_period(ch, t=12, price=None):
    per = case_period(t)
    eq = solve_exact(per)
    o = eq.outcome
    demand = np.maximum(-per.net_kwh, 0.0)
    ch.publish(t, np.maximum(per.net_kwh, 0.0), demand, per.p_s, per.p_b, t * 3_600_000)
    m = ch.match(t, eq.price if price is None else price, o.sold_kwh, o.bought_kwh)
    return per, eq, demand, m


@pytest.mark.parametrize("kind", KINDS)
def test_authentication_rules(kind):
    ch = channel(kind, bad=("mg_2",), installed=(18.4, 0.0, 3.7, 5.5, 13.8))
    assert ch.buyer_ok.tolist() == [True, True, False, True, True]
    assert ch.seller_ok.tolist() == [True, False, False, True, True]  # mg_1: no capacity
    rec = ch.auth.records
    assert rec.dtype == AUTH_DTYPE and rec.size == 10
    assert rec["installed_w"][5] == 18_400 and rec["generation_type"][5] == 1  # solar SU
    assert rec["id"].tolist() == [0, 1, 2, 3, 4] * 2
    assert channel(kind, capacity=False, installed=(0.0,) * 5).seller_ok.all()  # not checked
    assert not channel(kind, capacity=True, installed=(0.0,) * 5).seller_ok.any()


@pytest.mark.parametrize("kind", KINDS)
def test_an_altered_identity_record_fails_its_signature(kind):
    keys = Keyring(kind, 3, 5)
    ids = make_identities(NAMES, np.arange(5), installed_kw=np.ones(5))
    signed = auth_records(ids, keys)
    raw = bytearray(signed.raw[6])  # SU record of mg_1: clear a criminal flag after signing
    rec = np.frombuffer(bytes(raw), dtype=AUTH_DTYPE).copy()
    assert rec["credit_record"][0] == 0
    rec["credit_record"] = CREDIT_CRIMINAL
    signed.raw[6] = rec.tobytes()
    buyer_ok, seller_ok = check_authentication(signed, keys, True)
    assert buyer_ok.all() and seller_ok.tolist() == [True, False, True, True, True]
    rec["credit_record"] = 0  # back to the signed bytes: verifies again
    signed.raw[6] = rec.tobytes()
    assert check_authentication(signed, keys, True)[1].all()


def test_modelled_signatures_are_hmac_sha256_of_the_derived_keys():
    keys = Keyring("modelled", 9, 3)
    secret = ModelledSigner(9, 4).keys
    msgs = [b"a", b"record" * 20, b""]
    sigs = keys.sign([0, 2, 3], msgs)
    assert sigs == [
        hmac.digest(secret[i], m, "sha256") for i, m in zip((0, 2, 3), msgs, strict=True)
    ]
    assert keys.verify([0, 2, 3], msgs, sigs) == [True] * 3
    assert keys.verify([1, 2, 3], msgs, sigs) == [False, True, True]


def test_publications_are_signed_and_withdrawable_within_the_window():
    ch = channel()
    per = case_period(9)
    pubs = ch.publish(9, np.maximum(per.net_kwh, 0), np.maximum(-per.net_kwh, 0), 0.77, 0.85, 1000)
    rec = pubs.records
    assert rec["side"].tolist() == [1, 1, 0, 0, 0] and np.all(rec["delivery_period"] == 9)
    np.testing.assert_allclose(rec["energy_kwh"][:2], per.net_kwh[:2])
    assert rec["price"].tolist() == [0.77, 0.77, 0.85, 0.85, 0.85]
    assert all(ch.keys.verify(pubs.signers, pubs.raw, pubs.signatures))
    assert rec["address"].tolist() == ch.keys.addresses[[0, 1, 2, 3, 4]].tolist()
    serial = int(rec["serial"][3])  # mg_3's demand
    with pytest.raises(ValueError, match="did not publish"):
        ch.withdraw(9, serial, participant=2, now_ms=1000)
    with pytest.raises(ValueError, match="no publication"):
        ch.withdraw(9, 10**6, participant=3, now_ms=1000)
    assert not ch.withdraw(9, serial, 3, now_ms=1000 + ch.window_ms + 1)  # too late
    assert ch.withdraw(9, serial, 3, now_ms=1000 + ch.window_ms)
    selling, buying = ch.active(9)
    assert selling.tolist() == [True, True, False, False, False]
    assert buying.tolist() == [False, False, True, False, True]
    with pytest.raises(ValueError, match="without a live publication"):
        ch.match(9, 0.8, np.array([1.0, 0, 0, 0, 0]), np.array([0, 0, 0, 1.0, 0]))


def test_a_tampered_publication_is_not_matched():
    ch = channel()
    per = case_period(9)
    pubs = ch.publish(9, np.maximum(per.net_kwh, 0), np.maximum(-per.net_kwh, 0), 0.77, 0.85, 0)
    rec = np.frombuffer(pubs.raw[0], dtype=pubs.records.dtype).copy()
    rec["energy_kwh"] *= 10  # the seller inflates its published sale after signing
    pubs.raw[0] = rec.tobytes()
    assert ch.active(9)[0].tolist() == [False, True, False, False, False]


@pytest.mark.parametrize("kind", KINDS)
def test_matchmaking_paths_balance_and_are_hashed_and_linked(kind):
    ch = channel(kind)
    _, eq, _, m = run_period(ch)
    o = eq.outcome
    np.testing.assert_allclose(np.bincount(m.seller, m.kwh, 5), o.sold_kwh, atol=1e-12)
    np.testing.assert_allclose(np.bincount(m.buyer, m.kwh, 5), o.bought_kwh, atol=1e-12)
    assert m.kwh.size <= 2 + 3 - 1
    rec = m.signed.records
    assert rec.dtype == MATCH_DTYPE and np.all(rec["price"] == eq.price)
    assert m.signed.hashes == [hashlib.sha256(r).digest() for r in m.signed.raw]
    assert all(ch.keys.verify(m.signed.signers, m.signed.raw, m.signed.signatures))
    linked = {hashlib.sha256(r).digest() for e in ch.log if e.kind == "publication" for r in e.raw}
    assert set(rec["su_publication"].tolist()) <= linked
    assert set(rec["bu_publication"].tolist()) <= linked


@pytest.mark.parametrize(
    ("protocol", "loss", "committed"),
    [("ideal", 0.0, True), ("pbft", 0.0, True), ("pbft", 1.0, False)],
)
def test_ordering_is_the_consensus_protocol(protocol, loss, committed):
    ch = channel()
    _, _, _, m = run_period(ch)
    rng = np.random.default_rng(0)
    chain = Chain(ChainParams(protocol=protocol, message_loss=loss), 6, rng, rng, key_seed=1)
    res = ch.order(chain, 12, m)
    assert res.committed.all() == committed and res.committed.any() == committed
    if committed:
        tx = res.block.transactions()
        np.testing.assert_allclose(tx["quantity_kwh"], m.kwh)
        assert tx["seller"].tolist() == m.seller.tolist()


def test_supply_demand_compensation_documents_the_settlement():
    ch = channel()
    per, eq, demand, m = run_period(ch, t=12)
    o = eq.outcome
    sd = ch.compensate_supply_demand(
        12, (eq.price, per.p_s, per.p_b), o.supply_kwh, demand, o.sold_kwh, o.bought_kwh
    )
    rec = sd.records
    buyers = rec["bu_id"] != GRID_ID
    assert np.all(rec["su_id"][buyers] == GRID_ID) and np.all(rec["difference_kwh"][buyers] < 0)
    trades = Trades(m.seller, m.buyer, np.full(m.kwh.size, 5), m.kwh, m.price, np.ones(m.kwh.size))
    pos = Positions(
        surplus=np.append(o.supply_kwh, 0.0), deficit=np.append(demand, 0.0), error=np.zeros(6)
    )
    st = settle(trades, np.ones(m.kwh.size, bool), pos, per.p_b, per.p_s)
    for k in range(5):
        mine = rec["bu_id"] == k
        grid_cost = float((-rec["difference_kwh"][mine] * rec["grid_price"][mine]).sum())
        assert grid_cost == pytest.approx(per.p_b * st.grid_import[k], abs=1e-12)
    assert np.all(rec["compromise_price"] == pytest.approx(0.81))


def test_surplus_compensation_documents_the_feed_in():
    ch = channel()
    per, eq, demand, m = run_period(ch, t=13)
    o = eq.outcome
    sd = ch.compensate_supply_demand(
        13, (eq.price, per.p_s, per.p_b), o.supply_kwh, demand, o.sold_kwh, o.bought_kwh
    )
    rec = sd.records
    assert rec.size == 2 and np.all(rec["bu_id"] == GRID_ID) and np.all(rec["grid_price"] == 0.77)
    trades = Trades(m.seller, m.buyer, np.full(m.kwh.size, 5), m.kwh, m.price, np.ones(m.kwh.size))
    pos = Positions(np.append(o.supply_kwh, 0.0), np.append(demand, 0.0), np.zeros(6))
    st = settle(trades, np.ones(m.kwh.size, bool), pos, per.p_b, per.p_s)
    np.testing.assert_allclose(rec["difference_kwh"], st.grid_export[rec["su_id"]], atol=1e-12)
    assert np.all(st.grid_import < 1e-12)  # path splitting rounds at 1e-15


def test_error_compensation_documents_the_sellers_shortfall():
    ch = channel()
    per, eq, demand, m = run_period(ch, t=10)
    rng = np.random.default_rng(0)
    chain = Chain(ChainParams(protocol="ideal"), 6, rng, rng, key_seed=1)
    res = ch.order(chain, 10, m)
    records = res.block.records()
    short = np.array([0.5, 100.0, 0.0, 0.0, 0.0])  # mg_1 falls short of more than it sold
    er = ch.compensate_errors(10, m, short, records, per.p_b)
    rec = er.records
    sold = np.bincount(m.seller, m.kwh, 5)
    per_seller = -np.bincount(rec["su_id"], rec["difference_kwh"], 5)
    np.testing.assert_allclose(per_seller, np.minimum(short, sold), atol=1e-12)
    assert rec["transaction_record"].tolist() == [
        hashlib.sha256(records[i]).digest() for i in range(len(records)) if m.seller[i] < 2
    ]
    np.testing.assert_allclose(rec["actual_kwh"] - rec["agreed_kwh"], rec["difference_kwh"])
    # the settlement charges the seller p_b for its shortfall; the records document that part
    o = eq.outcome
    trades = Trades(m.seller, m.buyer, np.full(m.kwh.size, 5), m.kwh, m.price, np.ones(m.kwh.size))
    pos = Positions(np.append(o.supply_kwh, 0.0), np.append(demand, 0.0), np.append(-short, 0.0))
    st = settle(trades, res.committed, pos, per.p_b, per.p_s)
    assert st.grid_import[0] == pytest.approx(short[0])
    assert -(rec["difference_kwh"] * rec["grid_price"])[rec["su_id"] == 0].sum() == pytest.approx(
        per.p_b * st.grid_import[0]
    )


def test_channel_log_is_hash_linked_bounded_and_detects_tampering():
    ch = channel()
    for t in (9, 10, 11):
        run_period(ch, t)
    n = ch.log.verify()
    matches = sum(len(e.raw) for e in ch.log if e.kind == "match")
    assert n == ch.log.n_records == 10 + 3 * 5 + matches
    assert len(ch.log) == 1 + 3 + 3  # one entry per stage output
    entries = list(ch.log)
    raw = entries[1].raw
    ch.log._entries[1] = entries[1]._replace(raw=(raw[0][:-1] + b"\x01", *raw[1:]))
    with pytest.raises(ValueError, match=r"entry 1 \(publication\)"):
        ch.log.verify()
    ch.log._entries[1] = entries[1]
    assert ch.log.verify() == n
    small = ChannelLog(window=4)
    keys = Keyring("modelled", 0, 1)
    for k in range(7):
        rec = np.zeros(1, MATCH_DTYPE)
        rec["serial"] = k
        small.append("match", sign_records(rec, [0], keys))
    assert small.verify() == 4 and small.records("match")["serial"].tolist() == [3, 4, 5, 6]


@pytest.mark.parametrize("kind", KINDS)
def test_channel_survives_pickling(kind):
    import pickle

    ch = channel(kind)
    run_period(ch, 9)
    twin = pickle.loads(pickle.dumps(ch))
    assert twin.keys.addresses.tolist() == ch.keys.addresses.tolist()
    assert twin.log.verify() == ch.log.verify()
    m1, m2 = run_period(ch, 10)[3], run_period(twin, 10)[3]
    assert m1.signed.signatures == m2.signed.signatures
