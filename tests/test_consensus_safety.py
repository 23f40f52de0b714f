"""Issue #9's consensus safety, over many seeds (the nodes' view: :mod:`mgenv.chain.nodeview`).

* Byzantine (malicious) nodes below the protocol's bound (PBFT, SPFT, SBET: 1/3; PoS: half of
  the stake), with adversaries also altering payloads and signatures in flight: no tampered,
  forged or replayed transaction commits, and every honest node ends with the same head hash
  (the ledger's) after catch-up;
* at or beyond the bound the env reports ``chain_safety_violation`` in every agent's infos,
  and the colluders that agree on an altered block hold a divergent head;
* replays (a reused serial or signature) are rejected by every protocol.

PBFT models vote withholding only (no altering nodes), so it has no ``safety_violation``;
cross-chain decides per VNS threshold and keeps no per-node view (every node follows the
ledger), so neither is in the "beyond the bound" tests.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import mgenv
from mgenv.chain import REJECT_REASONS, Chain, ChainParams
from mgenv.chain.ledger import Ledger
from mgenv.chain.nodeview import NodeHeads, NodeRound
from mgenv.chain.transactions import ModelledSigner, unpack_tx
from tests.conftest import rollout

N_PARTICIPANTS = 12
COMMITTED = REJECT_REASONS.index("committed")
BAD_SIGNATURE = REJECT_REASONS.index("bad_signature")
INVALID_TRADE = REJECT_REASONS.index("invalid_trade")
TAMPERED = REJECT_REASONS.index("tampered")
BOUND = {"pbft": 1 / 3, "spft": 1 / 3, "sbet": 1 / 3, "pos": 1 / 2}
FIGURES = ("honest_heads_agree", "lagging_nodes", "forked_nodes")


class Adversary:
    """A tamper hook that attacks random slots each period and remembers what it did.

    Attacks: double the quantity (payload altered, signatures kept), replace a signature by
    random bytes, sign with another participant's key (forgery), replay a committed record
    of an earlier period (payload and its valid signatures), copy another slot's payload and
    signatures (a reused serial). ``attacked[period]`` lists the slots it touched;
    ``honest[period]`` the untouched original records.
    """

    def __init__(self, signer: ModelledSigner, seed: int) -> None:
        self.signer = signer
        self.rng = np.random.default_rng(seed)
        self.attacked: dict[int, set[int]] = {}
        self.originals: dict[int, list[bytes]] = {}
        self.old: list[bytes] = []  # committed records to replay

    def __call__(self, period: int, pay: list[bytes], ss: list[bytes], sb: list[bytes]) -> None:
        self.originals[period] = [p + s + b for p, s, b in zip(pay, ss, sb, strict=True)]
        hit: set[int] = set()
        for k in range(len(pay)):
            kind = int(self.rng.integers(0, 8))  # 5..7: leave the slot alone
            if kind == 0:
                q = 2 * np.frombuffer(pay[k][16:24], "<f8")
                pay[k] = pay[k][:16] + q.tobytes() + pay[k][24:]
            elif kind == 1:
                ss[k] = self.rng.bytes(len(ss[k]))
            elif kind == 2:
                buyer = unpack_tx(pay[k])[5]
                sb[k] = self.signer.tag((buyer + 1) % N_PARTICIPANTS, pay[k])
            elif kind == 3 and self.old:
                rec = self.old[int(self.rng.integers(0, len(self.old)))]
                pay[k], ss[k], sb[k] = rec[:40], rec[40:72], rec[72:104]
            elif kind == 4 and len(pay) > 1:
                rec = self.originals[period][(k + 1) % len(pay)]
                pay[k], ss[k], sb[k] = rec[:40], rec[40:72], rec[72:104]
            else:
                continue
            hit.add(k)
        self.attacked[period] = hit


def random_params(protocol: str, rng: np.random.Generator, share: float) -> ChainParams:
    """A random faulty network (loss, outages, DDoS, missing data, withholding)."""
    kw: dict[str, object] = {
        "protocol": protocol,
        "n_nodes": int(rng.integers(4, 13)),
        "message_loss": float(rng.uniform(0, 0.15)),
        "availability": float(rng.uniform(0.7, 1)),
        "withhold_share": float(rng.uniform(0, 0.1)),
    }
    if protocol != "pbft":
        kw |= {
            "malicious_share": share,
            "missing_share": float(rng.uniform(0, 0.5)),
            "ddos_nodes": int(rng.integers(0, 2)),
        }
    return ChainParams(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", sorted(BOUND))
def test_below_the_bound_nothing_forged_commits_and_honest_heads_agree(protocol: str) -> None:
    """40 random configurations x 12 periods, adversaries in flight and among the nodes."""
    rng = np.random.default_rng(9)
    blocks = 0
    for seed in range(40):
        params = random_params(protocol, rng, float(rng.uniform(0, BOUND[protocol] - 1e-6)))
        chain = Chain(params, N_PARTICIPANTS, *np.random.default_rng(seed).spawn(2), key_seed=seed)
        assert isinstance(chain.signer, ModelledSigner)
        adversary = Adversary(chain.signer, seed)
        chain.tamper_hook = adversary
        trades = np.random.default_rng(seed + 500)
        serials: set[int] = set()
        for t in range(12):
            n_tx = int(trades.integers(1, 7))
            r = chain.process(
                t,
                trades.integers(0, 6, n_tx),
                trades.integers(6, N_PARTICIPANTS, n_tx),
                trades.uniform(1, 50, n_tx),
                np.full(n_tx, 0.6),
            )
            for k in adversary.attacked[t]:
                assert not r.committed[k]
                assert r.reason[k] in (BAD_SIGNATURE, INVALID_TRADE), (k, r.reason)
            assert not (r.reason == TAMPERED).any() and r.extra.get("tampered", 0.0) == 0.0
            assert r.extra["honest_heads_agree"] == 1.0 and r.extra["forked_nodes"] == 0.0
            if r.block is not None:
                blocks += 1
                originals = set(adversary.originals[t])
                for rec in r.block.records():  # exactly what the parties signed
                    assert rec in originals
                    serial = unpack_tx(rec[:40])[0]
                    assert serial not in serials  # never commits twice
                    serials.add(serial)
                adversary.old.extend(r.block.records())
        chain.ledger.verify()
        chain.sync_nodes()
        heads = chain.node_heads()
        honest = chain.nodes.honest
        assert honest.sum() > 2 * len(heads) / 3 or protocol == "pos"
        assert {h for h, ok in zip(heads, honest.tolist(), strict=True) if ok} == {
            chain.ledger.head_hash
        }, (seed, params)
        assert chain.nodes.link_failures == 0
    assert blocks >= 30, blocks  # the check is not vacuous (SBET commits least here)


@pytest.mark.parametrize("protocol", ["spft", "sbet", "pos"])
def test_beyond_the_bound_altered_blocks_fork_the_colluders_only(protocol: str) -> None:
    """Reliable network, 70% malicious: altered blocks are agreed by the colluders, who then
    hold a divergent head; honest nodes never take one (they check the parties' signatures)."""
    forks = 0
    for seed in range(10):
        params = ChainParams(protocol=protocol, n_nodes=10, malicious_share=0.7)
        chain = Chain(params, N_PARTICIPANTS, *np.random.default_rng(seed).spawn(2), key_seed=seed)
        rng = np.random.default_rng(seed)
        for t in range(6):
            r = chain.process(
                t, rng.integers(0, 6, 4), rng.integers(6, 12, 4), rng.uniform(1, 9, 4), np.ones(4)
            )
            assert r.extra["safety_violation"] == 1.0
            assert r.extra["honest_heads_agree"] == 1.0
            if r.extra["tampered"] > 0:
                assert r.extra["forked_nodes"] > 0
                forked = chain.nodes.forked
                assert forked.any() and not (forked & chain.nodes.honest).any()
                forks += 1
    assert forks > 0


@pytest.mark.parametrize(("protocol", "share"), [("sbet", 0.4), ("spft", 0.4), ("pos", 0.6)])
def test_beyond_the_bound_the_env_reports_the_violation(protocol: str, share: float) -> None:
    env = mgenv.parallel_env("sbet_cooperative", protocol=protocol, malicious_share=share)
    for _, _, _, _, infos in rollout(env, seed=2, steps=12):
        for info in infos.values():
            assert info["chain_safety_violation"] == 1.0
            assert info["chain_honest_heads_agree"] == 1.0


@pytest.mark.parametrize("protocol", sorted(BOUND))
def test_env_infos_carry_the_nodes_view(protocol: str) -> None:
    env = mgenv.parallel_env("sbet_cooperative", protocol=protocol)
    for _, _, _, _, infos in rollout(env, seed=4, steps=12):
        for info in infos.values():
            assert {f"chain_{k}" for k in FIGURES} <= info.keys()
            assert info["chain_honest_heads_agree"] == 1.0
            if protocol != "pbft":
                assert info["chain_safety_violation"] == 0.0


@pytest.mark.parametrize("protocol", ["ideal", "pbft", "spft", "sbet", "pos", "crosschain"])
def test_replays_are_rejected(protocol: str) -> None:
    """A committed record replayed later (reused serial and signatures), a serial reused within
    a period, and a signature moved to another transaction: none commits; the originals do."""
    params = ChainParams(protocol=protocol, n_nodes=12 if protocol == "crosschain" else 6)
    chain = Chain(params, 8, *np.random.default_rng(5).spawn(2), key_seed=5)
    committed: list[bytes] = []
    for t in range(30):
        if committed and t % 3 == 0:

            def replay(period, pay, ss, sb, old=committed[-1]):  # type: ignore[no-untyped-def]
                pay[0], ss[0], sb[0] = old[:40], old[40:72], old[72:104]
                pay[1], ss[1], sb[1] = pay[2], ss[2], sb[2]  # slot 2's serial, twice
                ss[3], sb[3] = ss[4], sb[4]  # slot 4's signatures on slot 3's payload

            chain.tamper_hook = replay
        else:
            chain.tamper_hook = None
        rng = np.random.default_rng(t)
        r = chain.process(
            t, np.arange(5) % 4, 4 + np.arange(5) % 4, rng.uniform(1, 9, 5), np.full(5, 0.6)
        )
        if chain.tamper_hook is not None:
            assert r.reason[:2].tolist() == [INVALID_TRADE, INVALID_TRADE]
            assert r.reason[3] == BAD_SIGNATURE and not r.committed[:2].any()
            assert not r.committed[3]
        if r.block is not None:
            serials = [unpack_tx(rec[:40])[0] for rec in r.block.records()]
            assert len(set(serials)) == len(serials)
            committed.extend(r.block.records())
    all_serials = [unpack_tx(rec[:40])[0] for rec in committed]
    assert len(set(all_serials)) == len(all_serials) > 0
    chain.ledger.verify()


def test_catch_up_links_by_hash_and_a_broken_link_is_reported() -> None:
    ledger = Ledger(8)
    heads = NodeHeads(np.array([False, False, False, False, True]))
    rec = bytes(104)
    everyone = np.ones(5, dtype=bool)
    b0 = ledger.append(0, [rec], 0)
    f = heads.update(0, ledger, b0, NodeRound(everyone, np.array([1, 1, 1, 0, 1], bool), False))
    assert f == {"honest_heads_agree": 1.0, "lagging_nodes": 0.0, "forked_nodes": 0.0}
    assert heads.heads()[3] == b0.hash  # node 3 was online: it fetched block 0 at once
    away = np.array([1, 1, 1, 0, 1], bool)  # node 3 offline for two blocks
    for t in (1, 2):
        block = ledger.append(t, [rec], t)
        f = heads.update(t, ledger, block, NodeRound(away, away, False))
    assert f["lagging_nodes"] == 1.0 and f["honest_heads_agree"] == 1.0
    assert heads.height.tolist() == [3, 3, 3, 1, 3]
    heads.update(3, ledger, None, NodeRound(everyone, None, False))
    assert heads.heads() == [ledger.head_hash] * 5
    # an altered block agreed by the colluder: it forks, the honest nodes do not
    f = heads.update(4, ledger, None, NodeRound(everyone, np.array([0, 0, 0, 0, 1], bool), True))
    assert f["forked_nodes"] == 1.0 and f["honest_heads_agree"] == 1.0
    # an honest node whose stored head is corrupted neither catches up nor counts as agreeing
    heads.head[2, 0] ^= 1
    block = ledger.append(5, [rec], 5)
    f = heads.update(5, ledger, block, NodeRound(everyone, np.array([1, 1, 0, 0, 0], bool), False))
    assert f["honest_heads_agree"] == 0.0 and heads.link_failures == 1
    assert heads.height.tolist()[:4] == [4, 4, 3, 4]


def test_the_view_is_deterministic_and_survives_copies() -> None:
    params = ChainParams(protocol="sbet", n_nodes=7, message_loss=0.2, availability=0.8)

    def step(chain: Chain, t: int) -> dict[str, float]:
        rng = np.random.default_rng(t)
        trades = (rng.integers(0, 6, 4), rng.integers(6, 12, 4), rng.uniform(1, 9, 4))
        return chain.process(t, *trades, np.ones(4)).extra

    a = Chain(params, N_PARTICIPANTS, *np.random.default_rng(3).spawn(2), key_seed=3)
    for t in range(5):
        step(a, t)
    b = copy.deepcopy(a)
    for t in range(5, 15):
        assert step(a, t) == step(b, t)
    assert a.node_heads() == b.node_heads()
    assert (a.nodes.height == b.nodes.height).all()


@pytest.mark.parametrize("protocol", sorted(BOUND))
def test_the_figures_shortcut_matches_the_lookup_by_height(protocol: str) -> None:
    """``figures``' common-case shortcut gives what the per-height lookup gives, every period."""
    rng = np.random.default_rng(11)
    shortcuts = 0
    for share in (0.0, BOUND[protocol] + 0.1):
        params = random_params(protocol, rng, share)
        chain = Chain(params, N_PARTICIPANTS, *rng.spawn(2), key_seed=5)
        for t in range(40):
            trades = (rng.integers(0, 6, 3), rng.integers(6, 12, 3), rng.uniform(1, 9, 3))
            extra = chain.process(t, *trades, np.ones(3)).extra
            if not extra:
                continue
            slow = chain.nodes.figures_by_height(chain.ledger)
            assert {k: extra[k] for k in FIGURES} == slow
            shortcuts += slow == dict(zip(FIGURES, (1.0, 0.0, 0.0), strict=True))
    assert shortcuts > 0  # the common case occurred


@pytest.mark.parametrize("spread", [0, 1, 3, 4, 11])
def test_hashes_at_looks_up_each_height(spread: int) -> None:
    """The committed hash at each node's height, per node, whether heights are close or not."""
    ledger = Ledger(8)
    for t in range(12):
        ledger.append(t, [bytes([t]) * 104], t)
    kept = {ledger.next_height - len(ledger) + k: b for k, b in enumerate(ledger)}
    rng = np.random.default_rng(spread)
    heights = 12 - rng.integers(0, spread + 1, 9)
    heights[0] = 12 - spread  # the spread is reached
    for prev in (False, True):
        table, known = NodeHeads._hashes_at(heights, ledger, prev)
        for h, row, k in zip(heights.tolist(), table, known.tolist(), strict=True):
            block = kept.get(h if prev else h - 1)
            expected = None if block is None else (block.prev_hash if prev else block.hash)
            assert k == (expected is not None)
            assert row.tobytes() == (expected if expected is not None else bytes(32))
