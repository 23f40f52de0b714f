"""SBET (and its benchmarks) inside the env: verdicts, infos, observations, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import mgenv
from mgenv.chain import REJECT_REASONS
from tests.conftest import rollout

CHAIN_KEYS = {
    "chain_safety_violation",
    "chain_committed_share",
    "chain_query_accuracy",
    "chain_recovered",
    "chain_missing_copies",
    "chain_tampered",
    "chain_creator",
}


def test_default_and_sbet_cooperative_run_on_sbet() -> None:
    assert mgenv.parallel_env().config.chain.protocol == "sbet"
    env = mgenv.parallel_env("sbet_cooperative")
    chain = env.config.chain
    assert (chain.protocol, chain.n_nodes, chain.block_size, chain.ddos_nodes) == ("sbet", 5, 25, 1)
    assert chain.gamma == pytest.approx(2 / 3)


@pytest.mark.parametrize("protocol", ["sbet", "spft", "pos"])
def test_infos_carry_the_protocol_figures(protocol: str) -> None:
    env = mgenv.parallel_env("sbet_cooperative", protocol=protocol)
    records = rollout(env, seed=3)
    traded = 0
    for obs, _, _, _, infos in records:
        info = infos[env.possible_agents[0]]
        assert CHAIN_KEYS <= info.keys()
        assert set(info["rejected"]) <= set(REJECT_REASONS) - {"committed"}
        assert 0.0 <= info["chain_query_accuracy"] <= 1.0
        assert info["chain_safety_violation"] == 0.0
        names = env.observation_names(env.possible_agents[0])
        online = obs[env.possible_agents[0]][names.index("online_share")]
        assert online == pytest.approx(info["online_share"])
        if info["latency_ms"] > 0:
            traded += 1
            assert info["latency_ms"] >= env.config.chain.t_max_ms
    assert traded > 0


def test_malicious_beyond_a_third_is_flagged_in_every_agents_infos() -> None:
    env = mgenv.parallel_env("sbet_cooperative", malicious_share=0.4)  # 2 of 5 nodes
    records = rollout(env, seed=1)
    for _, _, _, _, infos in records:
        assert all(i["chain_safety_violation"] == 1.0 for i in infos.values())
    assert env.episode_kpis()["commit_share"] < 0.5
    env = mgenv.parallel_env(
        "sbet_cooperative", malicious_share=0.2, ddos_nodes=0, message_loss=0.0
    )
    records = rollout(env, seed=1)
    assert all(i["chain_safety_violation"] == 0.0 for r in records for i in r[4].values())
    assert env.episode_kpis()["commit_share"] == 1.0


def test_commit_ratio_observation_follows_the_chain() -> None:
    """All transactions lost (every message lost): the observed commit ratio decays."""
    env = mgenv.parallel_env("sbet_cooperative", message_loss=1.0)
    records = rollout(env, seed=2)
    agent = env.possible_agents[0]
    idx = env.observation_names(agent).index("commit_ratio")
    assert records[-1][0][agent][idx] < 0.5
    assert env.episode_kpis()["commit_share"] == 0.0


def test_same_seed_same_episode_different_seeds_differ() -> None:
    def latencies(seed: int) -> list[float]:
        env = mgenv.parallel_env(
            "default", message_loss=0.1, availability=0.9, mean_outage_periods=3.0
        )
        return [r[4][env.possible_agents[0]]["latency_ms"] for r in rollout(env, seed)]

    a, b, c = latencies(7), latencies(7), latencies(8)
    assert a == b and a != c
    assert np.mean(a) > 0
