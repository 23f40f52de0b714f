"""Ledger: Merkle roots, hash links, tamper detection, bounded window."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools

import numpy as np
import pytest

from mgenv.chain import Chain, ChainParams, Ledger, LedgerError, merkle_root
from mgenv.chain.ledger import EMPTY_MERKLE_ROOT, GENESIS_PREV_HASH, HEADER_STRUCT


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def filled_chain(periods: int, window: int = 256) -> Chain:
    net, adv = np.random.default_rng(0).spawn(2)
    chain = Chain(ChainParams(protocol="pbft", ledger_window=window), 6, net, adv, key_seed=9)
    rng = np.random.default_rng(1)
    for t in range(periods):
        n_tx = int(rng.integers(1, 6))
        chain.process(
            t,
            rng.integers(0, 3, n_tx),
            rng.integers(3, 6, n_tx),
            rng.uniform(0.5, 5.0, n_tx),
            rng.uniform(0.3, 1.0, n_tx),
        )
    return chain


def flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def test_merkle_root_bitcoin_style() -> None:
    a, b, c = h(b"a"), h(b"b"), h(b"c")
    assert merkle_root([]) == EMPTY_MERKLE_ROOT == h(b"")
    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == h(a + b)
    assert merkle_root([a, b, c]) == h(h(a + b) + h(c + c))
    leaves = [h(bytes([i])) for i in range(5)]
    l01, l23, l44 = h(leaves[0] + leaves[1]), h(leaves[2] + leaves[3]), h(leaves[4] + leaves[4])
    assert merkle_root(leaves) == h(h(l01 + l23) + h(l44 + l44))
    assert len(leaves) == 5  # input not modified


def test_hash_chain_intact_after_many_blocks() -> None:
    chain = filled_chain(300)
    ledger = chain.ledger
    ledger.verify()
    blocks = list(ledger)
    assert len(blocks) == 256 and ledger.next_height == 300
    assert blocks[0].height == 300 - 256
    for prev, block in itertools.pairwise(blocks):
        assert block.prev_hash == prev.hash == h(prev.header)
        assert block.height == prev.height + 1
        leaves = [h(r) for r in block.records()]
        assert block.merkle_root == merkle_root(leaves)
    assert ledger.head_hash == blocks[-1].hash


def test_first_block_links_to_genesis() -> None:
    ledger = filled_chain(3).ledger
    assert ledger[0].height == 0 and ledger[0].prev_hash == GENESIS_PREV_HASH
    assert Ledger(4).head_hash == GENESIS_PREV_HASH


@pytest.mark.parametrize("index", [0, 5, -1])
@pytest.mark.parametrize("where", ["tx", "header_merkle", "header_timestamp", "header_height"])
def test_flipped_byte_names_the_block_height(index: int, where: str) -> None:
    ledger = filled_chain(10).ledger
    ledger.verify()
    block = ledger[index]
    if where == "tx":
        bad = dataclasses.replace(block, txs=flip(block.txs, len(block.txs) // 2))
    else:
        offset = {"header_merkle": 50, "header_timestamp": 85, "header_height": 0}[where]
        bad = dataclasses.replace(block, header=flip(block.header, offset))
    ledger._blocks[index] = bad  # test hook: tamper with storage
    with pytest.raises(LedgerError, match=f"block at height {block.height}:") as info:
        ledger.verify()
    assert info.value.height == block.height


def test_consistently_rehashed_block_breaks_the_next_link() -> None:
    """Rewriting a block and its recorded hash is caught by the next block's prev_hash."""
    ledger = filled_chain(10).ledger
    block = ledger[4]
    fields = list(HEADER_STRUCT.unpack(block.header))
    fields[5] += 1  # timestamp_ms
    header = HEADER_STRUCT.pack(*fields)
    ledger._blocks[4] = dataclasses.replace(block, header=header, hash=h(header))
    with pytest.raises(LedgerError, match=f"block at height {ledger[5].height}: prev_hash"):
        ledger.verify()


def test_window_is_bounded() -> None:
    chain = filled_chain(1000, window=64)
    assert len(chain.ledger) == 64 == chain.ledger.window
    assert chain.ledger[0].height == chain.ledger.next_height - 64
    chain.ledger.verify()


def test_block_decodes_its_transactions() -> None:
    block = filled_chain(2).ledger[-1]
    tx = block.transactions()
    assert tx.shape == (block.n_tx,)
    assert (tx["period"] == block.period).all()
    assert len(block.records()) == block.n_tx
    assert all(len(r) == 40 + 32 + 32 for r in block.records())
