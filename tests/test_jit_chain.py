"""The chain stage with its kernels gives the numpy code's results, bit for bit.

``Chain.process`` runs the same trades twice, with the kernels (``mgenv._jit.ENABLED``: trade
screening and payload packing, the PBFT round, the node view) and with the numpy code, over
many periods, protocols, signatures, adversary hooks and odd inputs; every verdict, figure,
block and node head must be equal. The ledger's faster hashing is checked against the
Merkle root as first written.
"""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable

import numpy as np
import pytest

from mgenv import _jit
from mgenv.chain import Chain, ChainParams, ConsensusResult
from mgenv.chain.ledger import HEADER_STRUCT
from tests.test_jit_pbft import numpy_path, same_array

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")


# ------------------------------------------------------------------ the whole chain stage


def chain_pair(**fields: object) -> tuple[Chain, Chain]:
    params = ChainParams(**fields)  # type: ignore[arg-type]

    def make() -> Chain:
        net, adv = np.random.default_rng(7).spawn(2)
        return Chain(params, 10, net, adv, key_seed=99, period_h=0.25)

    return make(), make()


def same_result(a: ConsensusResult, b: ConsensusResult) -> None:
    same_array(a.committed, b.committed)
    same_array(a.reason, b.reason)
    # The glue both paths share: a trade commits iff its reason is 0, and only in a block.
    same_array(a.committed, a.reason == 0)
    assert a.block is not None or not a.committed.any()
    for x, y in zip(a[2:5], b[2:5], strict=True):
        assert type(x) is type(y) and x == y
    assert a.block == b.block
    assert a.extra == b.extra and list(a.extra) == list(b.extra)
    assert all(type(v) is float for v in a.extra.values())


def trades(rng: np.random.Generator, t: int) -> tuple[np.ndarray, ...]:
    n_tx = int(rng.choice([0, 1, 2, 5, 9]))
    seller = rng.integers(0, 5, n_tx)
    buyer = rng.integers(5, 10, n_tx)
    q = rng.uniform(0.1, 30.0, n_tx)
    p = rng.uniform(0.3, 1.2, n_tx)
    if t % 7 == 3 and n_tx:  # invalid trades: zero, negative, nan kWh; a self-trade
        q[0] = rng.choice([0.0, -1.0, math.nan, math.inf])
        buyer[-1] = seller[-1]
    return seller, buyer, q, p


def flip_hook(period: int, payloads: list[bytes], ss: list[bytes], bs: list[bytes]) -> None:
    if payloads and period % 3 == 0:
        ss[0] = bytes(len(ss[0]))  # a forged seller signature
    if len(payloads) > 1 and period % 4 == 1:
        payloads[1] = payloads[1][:-1] + bytes([payloads[1][-1] ^ 1])  # altered in flight


HOOKS: dict[str, Callable[..., None] | None] = {"none": None, "flip": flip_hook}


@pytest.mark.parametrize("hook", list(HOOKS))
@pytest.mark.parametrize(
    "fields",
    [
        {"protocol": "pbft", "message_loss": 0.05, "availability": 0.98},
        {"protocol": "pbft", "message_loss": 0.3, "availability": 0.7, "withhold_share": 0.2},
        {"protocol": "pbft", "n_nodes": 10, "availability": 0.8, "mean_outage_periods": 4.0},
        {"protocol": "pbft", "message_loss": 1.0},
        {"protocol": "pbft", "signatures": "ed25519", "message_loss": 0.1},
        {"protocol": "pbft", "ledger_window": 2, "availability": 0.6, "message_loss": 0.2},
        {"protocol": "ideal"},
        {"protocol": "ideal", "signatures": "ed25519"},
    ],
)
def test_chain_stage_matches_numpy(fields: dict[str, object], hook: str) -> None:
    fast, slow = chain_pair(**fields)
    fast.tamper_hook = slow.tamper_hook = HOOKS[hook]
    rng = np.random.default_rng(3)
    periods = 25 if fields.get("signatures") == "ed25519" else 60
    for t in range(periods):
        inputs = trades(rng, t)
        a = fast.process(t, *inputs)
        with numpy_path():
            b = slow.process(t, *inputs)
        same_result(a, b)
        assert fast.node_heads() == slow.node_heads()
        assert fast.ledger.head_hash == slow.ledger.head_hash
        assert fast.nodes.link_failures == slow.nodes.link_failures
        assert fast.next_serial == slow.next_serial
    fast.ledger.verify()
    fast.sync_nodes()
    with numpy_path():
        slow.sync_nodes()
    assert fast.node_heads() == slow.node_heads()


def test_copies_and_pickles_keep_running_the_same() -> None:
    """A deep copy, then a pickled copy, made mid-run continue on the kernels exactly like the
    numpy original."""
    fast, slow = chain_pair(protocol="pbft", message_loss=0.1, availability=0.9)
    rng = np.random.default_rng(0)
    for t in range(30):
        if t == 10:
            fast = copy.deepcopy(fast)
        if t == 20:
            fast = pickle.loads(pickle.dumps(fast))
        inputs = trades(rng, t)
        a = fast.process(t, *inputs)
        with numpy_path():
            b = slow.process(t, *inputs)
        same_result(a, b)
        assert fast.node_heads() == slow.node_heads()


@pytest.mark.parametrize(
    "fields",
    [
        {"protocol": "pbft", "auth_identity": "ed25519", "auth_revoked": (2,)},
        {"protocol": "pbft", "auth_identity": "ed25519", "auth_impostors": (6,)},
    ],
)
def test_chain_stage_with_node_authentication_matches_numpy(fields: dict[str, object]) -> None:
    fast, slow = chain_pair(**fields)
    rng = np.random.default_rng(8)
    for t in range(20):
        inputs = trades(rng, t)
        broker = rng.integers(0, 10, inputs[0].size)
        a = fast.process(t, *inputs, intermediary=broker)
        with numpy_path():
            b = slow.process(t, *inputs, intermediary=broker)
        same_result(a, b)
    assert fast.node_heads() == slow.node_heads()


# ------------------------------------------------------------------ trade screening


def process_both(chain_fields: dict[str, object], period: int, *inputs: object) -> None:
    """One period through both paths: the same result, or the same exception."""
    fast, slow = chain_pair(**chain_fields)
    try:
        a = fast.process(period, *inputs)  # type: ignore[arg-type]
    except Exception as e:  # compared with the numpy path's below
        with numpy_path(), pytest.raises(type(e)) as info:
            slow.process(period, *inputs)  # type: ignore[arg-type]
        assert str(info.value) == str(e), repr(e)
        assert fast.next_serial == slow.next_serial, repr(e)
        return
    with numpy_path():
        b = slow.process(period, *inputs)  # type: ignore[arg-type]
    same_result(a, b)
    assert fast.next_serial == slow.next_serial


SPECIAL = [0.0, -0.0, 1e-300, -1.0, 5.0, 1e308, math.inf, -math.inf, math.nan]


def test_screening_matches_numpy_on_random_and_special_trades() -> None:
    rng = np.random.default_rng(11)
    fields = {"protocol": "ideal"}
    for trial in range(300):
        n_tx = int(rng.integers(0, 12))
        seller = rng.integers(0, 10, n_tx)
        buyer = rng.integers(0, 10, n_tx)  # self-trades happen
        q = rng.choice(SPECIAL, n_tx) if trial % 2 else rng.uniform(-1.0, 40.0, n_tx)
        p = rng.choice(SPECIAL, n_tx) if trial % 3 == 0 else rng.uniform(0.2, 1.5, n_tx)
        period = int(rng.choice([0, 7, -3, 2**62, -(2**63), 2**63 - 1]))
        process_both(fields, period, seller, buyer, q, p)


@pytest.mark.parametrize(
    "inputs",
    [
        ([0, 1], [5, 6], [1.0, 2.0], [0.5, 0.5]),  # lists: int64 and float64 arrays
        (np.array([0, 1], np.int32), np.array([5, 6], np.int32), np.ones(2), np.ones(2)),
        (np.array([0, 1], np.uint64), np.array([5, 6]), np.ones(2), np.ones(2)),
        (np.array([0, 1]), np.array([5, 6]), np.ones(2, np.float32), np.ones(2)),
        (np.array([0, 1]), np.array([5, 6]), np.ones(2), np.ones(2).astype(">f8")),
        (np.arange(6)[::2], np.arange(5, 11)[::2], np.ones(6)[::2], np.ones(3)),  # strided
        (np.array([0, 10]), np.array([5, 6]), np.ones(2), np.ones(2)),  # index too large
        (np.array([-1, 1]), np.array([5, 6]), np.ones(2), np.ones(2)),  # negative index
        (np.array([0, 1]), np.array([5, -6]), np.ones(2), np.ones(2)),
        (np.array([0.0, 1.0]), np.array([5, 6]), np.ones(2), np.ones(2)),  # float indices
        (np.array([[0, 1]]), np.array([[5, 6]]), np.ones((1, 2)), np.ones((1, 2))),  # 2-D
        (np.array([0, 1]), np.array([5, 6, 7]), np.ones(2), np.ones(2)),  # lengths differ
        (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0)),
    ],
)
@pytest.mark.parametrize("period", [3, -5, 2**63, -(2**63) - 1])
def test_screening_matches_numpy_on_odd_inputs(inputs: tuple[object, ...], period: int) -> None:
    process_both({"protocol": "pbft"}, period, *inputs)


def test_compiled_payloads_are_the_struct_packing() -> None:
    from mgenv.chain import screening

    rng = np.random.default_rng(2)
    for n_tx in (0, 1, 5, 70):  # 70: beyond the cached splitters' usual sizes
        s, b = rng.integers(0, 2**32, n_tx), rng.integers(0, 2**32, n_tx)
        q, p = rng.choice(SPECIAL, n_tx), rng.standard_normal(n_tx)
        for serial, period in ((0, 0), (2**62, -(2**63)), (12345, 2**63 - 1)):
            payloads, reason, n_invalid = screening.screen_compiled(
                s, b, q, p, serial, period, 2**32
            )
            lists = screening.trade_lists(s, b, q, p, 2**32)
            assert payloads == screening.pack_payloads(serial, period, *lists)
            signed = [True] * n_tx
            same_array(reason, screening.reject_reasons(signed, *lists))
            assert n_invalid == int(np.count_nonzero(reason))


# ------------------------------------------------------------------ ledger hashing


def reference_merkle_root(leaves: list[bytes]) -> bytes:
    """The Merkle root as first written (a list per level, zip in pairs)."""
    import hashlib

    if not leaves:
        return hashlib.sha256(b"").digest()
    level = leaves
    while len(level) > 1:
        if len(level) & 1:
            level = [*level, level[-1]]
        pairs = iter(level)
        level = [hashlib.sha256(a + b).digest() for a, b in zip(pairs, pairs, strict=True)]
    return level[0]


@pytest.mark.parametrize("n", [*range(0, 20), 31, 32, 33, 100])
def test_block_merkle_root_is_the_reference(n: int) -> None:
    import hashlib

    from mgenv.chain import merkle_root
    from mgenv.chain.ledger import make_block

    rng = np.random.default_rng(n)
    records = [rng.bytes(104) for _ in range(n)]
    leaves = [hashlib.sha256(r).digest() for r in records]
    kept = list(leaves)
    want = reference_merkle_root(leaves)
    assert merkle_root(leaves) == want and leaves == kept  # the input is not modified
    block = make_block(7, 3, bytes(range(32)), records, 99)
    assert block.merkle_root == want
    assert block.hash == hashlib.sha256(block.header).digest()
    header = HEADER_STRUCT.pack(7, 3, bytes(range(32)), want, n, 99)
    assert block.header == header and block.txs == b"".join(records)


def test_combine_verdicts_is_the_numpy_merge() -> None:
    from mgenv.chain.kernels_chain import combine_verdicts

    rng = np.random.default_rng(5)
    for n in range(0, 12):
        for _ in range(50):
            reason = rng.choice(np.array([0, 0, 0, 1, 2], np.int8), n)
            proto_ok = rng.random(n) < 0.6
            proto_reason = rng.integers(0, 6, n).astype(np.int8)
            valid = reason == 0
            want_ok = valid & proto_ok
            want_reason = np.where(valid & ~want_ok, proto_reason, reason).astype(np.int8)
            got_reason, got_ok = reason.copy(), np.empty(n, dtype=bool)
            n_ok = combine_verdicts(got_reason, proto_ok, proto_reason, got_ok)
            np.testing.assert_array_equal(got_ok, want_ok)
            np.testing.assert_array_equal(got_reason, want_reason)
            assert n_ok == int(want_ok.sum())
