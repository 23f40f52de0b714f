"""ChainParams and Chain constructor validation: each bad value names its field."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest

from mgenv.chain import PROTOCOLS, Chain, ChainParams

BAD_VALUES = [
    ("protocol", "raft"),
    ("protocol", 3),
    ("n_nodes", 0),
    ("n_nodes", 4.0),
    ("n_nodes", True),
    ("n_nodes", 257),
    ("message_loss", 1.5),
    ("message_loss", -0.1),
    ("message_loss", math.nan),
    ("availability", 1.01),
    ("availability", "high"),
    ("withhold_share", -1e-9),
    ("withhold_share", 2.0),
    ("signatures", "rsa"),
    ("area_km", -1.0),
    ("area_km", math.inf),
    ("base_delay_ms", -5.0),
    ("delay_per_km_ms", math.nan),
    ("jitter_ms", -0.5),
    ("view_change_timeout_ms", -1.0),
    ("ledger_window", 0),
    ("ledger_window", 2.5),
    ("ledger_path", 3),
    ("ledger_path", "/no/such/folder/run.sqlite"),
    # seed 003 (SBET, PoS, network): more cases in tests/test_sbet_params.py
    ("gamma", 0.5),
    ("t_max_ms", 0.0),
    ("malicious_share", 1.1),
    ("missing_share", -0.1),
    ("mean_outage_periods", 0.5),
    ("ddos_nodes", 5),
    ("ddos_mode", "flood"),
    ("ddos_slowdown", 0.5),
    ("creator_election", "random"),
    ("block_size", 0),
    ("bandwidth_kbps", 0.0),
    ("pos_slots_per_block", 0.5),
    ("pos_confirmations", -1),
    # seed 000 (cross-chain VNS): more cases in tests/test_crosschain.py
    ("n_chains", 0),
    ("vns_size", 0),
    ("vns_threshold", 5),
    ("honest_share", 0.7),
    ("deadline_ms", 0.0),
    ("deploy_ms", -1.0),
    ("vns_malicious_share", 1.5),
    # seed 001 (node authentication): more cases in tests/test_auth.py
    ("auth_identity", "rsa"),
    ("auth_positions", 0),
    ("auth_unregistered", (1.5,)),
    ("auth_revoked", (-1,)),
    ("auth_impostors", ("mg_1",)),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_bad_field_raises_naming_it(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"ChainParams\.{field}="):
        ChainParams(**{field: value})  # type: ignore[arg-type]


def test_every_field_is_validated() -> None:
    assert {f.name for f in dataclasses.fields(ChainParams)} == {f for f, _ in BAD_VALUES}


def test_message_names_value_and_range() -> None:
    with pytest.raises(ValueError, match=r"^ChainParams\.message_loss=1\.5 is outside \[0, 1\]$"):
        ChainParams(message_loss=1.5)
    with pytest.raises(ValueError, match="'ideal', 'pbft'"):
        ChainParams(protocol="raft")


def test_pbft_needs_four_nodes() -> None:
    with pytest.raises(ValueError, match=r"ChainParams\.n_nodes=3 is outside \[4, .*'pbft'"):
        ChainParams(protocol="pbft", n_nodes=3)
    assert ChainParams(protocol="ideal", n_nodes=1).n_nodes == 1
    assert PROTOCOLS["pbft"].min_nodes == 4


def test_params_normalised_frozen_and_picklable() -> None:
    p = ChainParams(protocol="pbft", n_nodes=np.int64(7), message_loss=np.float32(0.25))
    assert type(p.n_nodes) is int and type(p.message_loss) is float
    assert p.max_faulty == 2
    assert ChainParams(n_nodes=4, withhold_share=0.5).n_withholding == 2
    assert ChainParams(n_nodes=7, withhold_share=0.2).n_withholding == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.n_nodes = 9  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(p)) == p


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_participants": 0}, "n_participants=0"),
        ({"key_seed": -1}, "key_seed=-1"),
        ({"key_seed": 2**128}, "key_seed="),
        ({"key_seed": 1.5}, "key_seed=1.5"),
        ({"period_h": 0.0}, "period_h=0.0"),
    ],
)
def test_chain_constructor_validation(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"n_participants": 4, "key_seed": 1, **kwargs}
    net, adv = np.random.default_rng(0).spawn(2)
    with pytest.raises(ValueError, match=match):
        Chain(ChainParams(), network_rng=net, adversary_rng=adv, **args)  # type: ignore[arg-type]
