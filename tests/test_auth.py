"""Node registration and authentication (mgenv.chain.auth, seed 001 section 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import baselines
import mgenv
from mgenv.chain import ChainParams
from mgenv.chain.auth import (
    IDENTITY_KINDS,
    NodeAuthenticator,
    bell_check,
    handshake,
    identity_key,
    make_auth,
)
from mgenv.chain.types import REJECT_REASONS
from tests.conftest import rollout


@pytest.mark.parametrize("kind", IDENTITY_KINDS)
def test_handshake_real_keys_and_a_forged_identity(kind):
    key = identity_key(kind, 7, 3)
    public = key.public_key().public_bytes_raw()
    session, reason = handshake(3, key, public, kind, b"challenge", bytes(64))
    assert reason == "" and session is not None and len(session.key) == 32
    # same inputs, fresh KEM encapsulation: a different session key, same outcome
    again, _ = handshake(3, key, public, kind, b"challenge", bytes(64))
    assert again is not None and again.key != session.key
    # an impostor without the identity key signs with its own: the real check fails
    forged, reason = handshake(3, identity_key(kind, 8, 3), public, kind, b"challenge", bytes(64))
    assert forged is None and reason == "bad_identity_signature"


def test_identity_keys_are_deterministic_per_seed_and_participant():
    pub = [
        identity_key("ml-dsa-65", s, p).public_key().public_bytes_raw()
        for s, p in ((1, 0), (1, 0), (1, 1), (2, 0))
    ]
    assert pub[0] == pub[1] and len({pub[0], pub[2], pub[3]}) == 3


@pytest.mark.parametrize("positions", [1, 2])
def test_simulated_bell_check_passes_a_forger_with_4_to_the_minus_n(positions):
    rng = np.random.default_rng(0)
    n = 4000
    passed = sum(bell_check(rng, positions, honest=False) for _ in range(n))
    p = 0.25**positions
    assert abs(passed - n * p) <= 5.0 * math.sqrt(n * p * (1 - p))
    assert all(bell_check(rng, positions, honest=True) for _ in range(100))


def test_authenticator_counts_and_refuses():
    params = ChainParams(
        auth_identity="ed25519",
        auth_positions=64,
        auth_unregistered=(1,),
        auth_revoked=(2,),
        auth_impostors=(3,),
    )
    auth = make_auth(params, 6, key_seed=11)
    assert isinstance(auth, NodeAuthenticator)
    assert auth.ok.tolist() == [True, False, False, False, True, True]
    s = auth.stats
    assert s["registered"] == 5 and s["attempts"] == 6 and s["authenticated"] == 3
    assert s["failed_unregistered"] == 1 and s["failed_revoked"] == 1
    assert s["failed_bell_check"] == 1 and "impostors_passed" not in s
    reason = auth.screen([0, 0, 4], [4, 1, 5], np.zeros(3, np.int8))
    assert [REJECT_REASONS[k] for k in reason] == ["committed", "unauthenticated", "committed"]
    auth.revoke(4)
    reason = auth.screen([0, 0, 4], [4, 1, 5], np.zeros(3, np.int8))
    assert reason.tolist() == [10, 10, 10] and auth.stats["denied_transactions"] == 4
    assert make_auth(ChainParams(), 6, key_seed=11) is None


def test_impostors_with_one_checked_position_pass_a_quarter_of_the_time():
    params = ChainParams(auth_identity="ed25519", auth_positions=1, auth_impostors=tuple(range(40)))
    passed = sum(
        make_auth(params, 40, key_seed=s).stats.get("impostors_passed", 0) for s in range(20)
    )
    n = 800
    assert abs(passed - n / 4) <= 5.0 * math.sqrt(n * 0.25 * 0.75)


def test_unauthenticated_nodes_cannot_trade_in_the_env():
    # global indices: mg_0..3 = 0..3, agg_0..1 = 4..5, user_0..1 = 6..7
    env = mgenv.parallel_env(
        "ccche_thermal_game",
        protocol="ideal",
        auth_unregistered=(0,),
        auth_revoked=(6,),
        auth_impostors=(3,),
        auth_positions=32,
        learning_roles=("mg", "agg", "user"),
    )
    records = rollout(env, 0, baselines.make("noncooperative"))
    auth = env.core.chain.auth
    assert auth.ok.tolist() == [False, True, True, False, True, True, False, True]
    denied = 0
    for r, (_, _, _, _, infos) in zip(env.history, records, strict=True):
        bad = np.isin(r.trades.seller, [0, 3]) | np.isin(r.trades.buyer, [0, 3, 6])
        assert not r.committed[bad].any() and r.committed[~bad].all()
        n_bad = int(bad.sum())
        denied += n_bad
        assert infos["mg_1"]["rejected"].get("unauthenticated", 0) == n_bad
        assert np.all(r.chain.reason[bad] == REJECT_REASONS.index("unauthenticated"))
    assert denied > 0 and auth.stats["denied_transactions"] == denied
    assert sum(r.trades.kwh[r.committed].sum() for r in env.history) > 0  # others trade


def test_revocation_during_the_episode():
    env = mgenv.parallel_env(
        "ccche_thermal_game",
        protocol="ideal",
        auth_identity="ed25519",
        learning_roles=("mg", "agg", "user"),
    )
    pol = baselines.make("noncooperative")
    obs, _ = env.reset(seed=1)
    while env.agents:
        if env.core.t == 12:
            env.core.chain.auth.revoke(0)  # mg_0, a seller
        obs, *_ = env.step(pol(obs, env))
    for r in env.history:
        mine = r.trades.seller == 0
        if r.period >= 12:
            assert not r.committed[mine].any()
        else:
            assert r.committed.all()
    assert any((r.trades.seller == 0).any() for r in env.history[12:])


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"auth_identity": "rsa"}, "auth_identity"),
        ({"auth_positions": 0}, "auth_positions"),
        ({"auth_revoked": (-1,)}, "auth_revoked"),
        ({"auth_impostors": ("mg_1",)}, "auth_impostors"),
    ],
)
def test_bad_auth_params_name_the_field(override, field):
    with pytest.raises(ValueError, match=field):
        mgenv.make_config("ccche_thermal_game", **override)


def test_participant_beyond_the_market_is_refused():
    env = mgenv.parallel_env("ccche_thermal_game", auth_revoked=(8,))
    with pytest.raises(ValueError, match="participant 8"):
        env.reset(seed=0)


def test_unauthenticated_aggregator_cannot_broker_and_counts_reach_infos():
    env = mgenv.parallel_env(
        "ccche_thermal_game",
        protocol="ideal",
        auth_unregistered=(4,),  # agg_0
        learning_roles=("mg", "agg", "user"),
    )
    records = rollout(env, 0, baselines.make("noncooperative"))
    brokered = 0
    for r in env.history:
        via_agg0 = r.trades.agg == 4
        assert not r.committed[via_agg0].any() and r.committed[~via_agg0].all()
        brokered += int(via_agg0.sum())
    assert brokered > 0
    infos = records[-1][4]["mg_0"]
    assert infos["auth_denied_transactions"] == brokered
