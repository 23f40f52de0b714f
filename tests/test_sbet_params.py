"""Bad input for the seed 003 parameters: each raises ValueError naming the field."""

from __future__ import annotations

import math

import pytest

import mgenv
from mgenv.chain import ChainParams

BAD = [
    ("gamma", 0.5),  # (1/2, 1]: a half is not a majority
    ("gamma", 0.2),
    ("gamma", 1.01),
    ("gamma", math.nan),
    ("t_max_ms", 0.0),
    ("t_max_ms", -500.0),
    ("t_max_ms", math.inf),
    ("malicious_share", -0.01),
    ("malicious_share", 1.5),
    ("missing_share", 2.0),
    ("missing_share", "most"),
    ("block_size", 0),
    ("block_size", -3),
    ("block_size", 2.5),
    ("bandwidth_kbps", 0.0),
    ("ddos_slowdown", 0.9),
    ("ddos_mode", "flood"),
    ("ddos_nodes", -1),
    ("ddos_nodes", 6),  # more than the 5 nodes
    ("creator_election", "lottery"),
    ("pos_slots_per_block", 0.0),
    ("pos_confirmations", 1.5),
]


@pytest.mark.parametrize(("field", "value"), BAD)
def test_bad_value_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^ChainParams\.{field}="):
        ChainParams(protocol="sbet", n_nodes=5, **{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [("gamma", 0.5), ("t_max_ms", 0), ("malicious_share", 1.2), ("block_size", 0)],
)
def test_bad_override_through_the_env_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"ChainParams\.{field}="):
        mgenv.parallel_env("sbet_cooperative", **{field: value})


def test_messages_give_the_allowed_range() -> None:
    with pytest.raises(ValueError, match=r"gamma=0\.5 is outside \(0\.5, 1\]$"):
        ChainParams(gamma=0.5)
    with pytest.raises(ValueError, match=r"t_max_ms=0 is outside \(0, inf\)$"):
        ChainParams(t_max_ms=0)
    with pytest.raises(ValueError, match=r"block_size=0 is outside \[1, "):
        ChainParams(block_size=0)


def test_good_edges_are_accepted() -> None:
    p = ChainParams(
        protocol="sbet",
        n_nodes=3,
        gamma=1.0,
        t_max_ms=1e-3,
        malicious_share=1.0,
        missing_share=0.0,
        block_size=1,
    )
    assert (p.gamma, p.block_size) == (1.0, 1)


def test_adversary_shares_need_a_data_plane_protocol() -> None:
    for protocol in ("ideal", "pbft"):
        with pytest.raises(ValueError, match=r"ChainParams\.malicious_share=0\.2 is not"):
            ChainParams(protocol=protocol, malicious_share=0.2)
        with pytest.raises(ValueError, match=r"ChainParams\.missing_share=0\.1 is not"):
            ChainParams(protocol=protocol, missing_share=0.1)


def test_minimum_nodes() -> None:
    with pytest.raises(ValueError, match=r"ChainParams\.n_nodes=2 is outside \[3, .*'sbet'"):
        ChainParams(protocol="sbet", n_nodes=2)
    with pytest.raises(ValueError, match=r"ChainParams\.n_nodes=3 is outside \[4, .*'spft'"):
        ChainParams(protocol="spft", n_nodes=3)
    assert ChainParams(protocol="pos", n_nodes=1).n_nodes == 1
