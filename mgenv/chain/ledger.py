"""Blocks, Merkle roots and the bounded, hash-linked in-memory ledger.

A block header is ``HEADER_STRUCT.pack(height, period, prev_hash, merkle_root, n_tx,
timestamp_ms)`` (little-endian, 92 bytes):

====== ======= ====== ==========================================================
offset  format  bytes  field
====== ======= ====== ==========================================================
0       ``Q``   8      height (uint64; 0 for the first block of a chain)
8       ``q``   8      period (int64, market period the block settles)
16      ``32s`` 32     prev_hash (hash of the previous block; 32 zero bytes at 0)
48      ``32s`` 32     merkle_root (over the transaction hashes)
80      ``I``   4      n_tx (uint32, number of transactions)
84      ``q``   8      timestamp_ms (int64, simulated time the block committed, ms)
====== ======= ====== ==========================================================

The block hash is SHA-256(header). The Merkle root is built as in Bitcoin (but with a single
SHA-256): leaves are the SHA-256 of each transaction record (payload and both signatures),
an odd level duplicates its last node, a parent is SHA-256(left || right); the root of no
transactions is SHA-256(b"").
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from mgenv.chain.transactions import PAYLOAD_SIZE

if TYPE_CHECKING:
    from _hashlib import HASH

HEADER_STRUCT: Final = struct.Struct("<Qq32s32sIq")
GENESIS_PREV_HASH: Final = bytes(32)
EMPTY_MERKLE_ROOT: Final = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256
_SHA256_FRESH = hashlib.sha256()  # never updated: copied for each hash


def merkle_root(leaves: list[bytes], _sha256: Callable[[bytes], HASH] = hashlib.sha256) -> bytes:
    """Bitcoin-style Merkle root (single SHA-256) of 32-byte leaf hashes.

    Args:
        leaves: Transaction hashes, in block order (not modified).
        _sha256: The hash constructor, bound as a default argument for speed.

    Returns:
        The 32-byte root; SHA-256(b"") for no leaves, the leaf itself for one leaf.
    """
    if len(leaves) <= 1:
        return leaves[0] if leaves else EMPTY_MERKLE_ROOT
    return _tree_root(list(leaves))  # a copy: the caller's list stays as it was


def _tree_root(level: list[bytes]) -> bytes:
    """:func:`merkle_root` of at least one leaf; ``level`` is consumed (appended to)."""
    fresh = _SHA256_FRESH.copy  # copying a started state is cheaper than sha256(data)
    n = len(level)
    while n > 1:
        if n & 1:  # an odd level duplicates its last node
            level.append(level[-1])
            n += 1
        parents = []
        for i in range(0, n, 2):
            h = fresh()
            h.update(level[i] + level[i + 1])
            parents.append(h.digest())
        level = parents
        n >>= 1
    return level[0]


def transaction_dtype(record_size: int) -> np.dtype[np.void]:
    """Structured dtype that views stored records (payload then signatures) as fields."""
    return np.dtype(
        {
            "names": ["serial", "period", "quantity_kwh", "price", "seller", "buyer"],
            "formats": ["<u8", "<i8", "<f8", "<f8", "<u4", "<u4"],
            "offsets": [0, 8, 16, 24, 32, 36],
            "itemsize": record_size,
        }
    )


@dataclass(frozen=True, slots=True)
class Block:
    """One committed block.

    Attributes:
        header: Canonical header bytes (layout in the module docstring), 92 bytes.
        txs: The transaction records concatenated, ``n_tx`` records of equal size
            (40-byte payload + seller signature + buyer signature).
        hash: SHA-256(header), recorded when the block was made; ``Ledger.verify`` recomputes
            it, so a changed header is caught at its own height.
    """

    header: bytes
    txs: bytes
    hash: bytes

    @property
    def height(self) -> int:
        """Position in the chain (0 for the first block)."""
        return int(HEADER_STRUCT.unpack(self.header)[0])

    @property
    def period(self) -> int:
        """Market period the block settles."""
        return int(HEADER_STRUCT.unpack(self.header)[1])

    @property
    def prev_hash(self) -> bytes:
        """Hash of the previous block (32 zero bytes for height 0)."""
        return bytes(HEADER_STRUCT.unpack(self.header)[2])

    @property
    def merkle_root(self) -> bytes:
        """Merkle root of the transaction hashes, as written in the header."""
        return bytes(HEADER_STRUCT.unpack(self.header)[3])

    @property
    def n_tx(self) -> int:
        """Number of transactions, as written in the header."""
        return int(HEADER_STRUCT.unpack(self.header)[4])

    @property
    def timestamp_ms(self) -> int:
        """Simulated commit time (ms since period 0 began)."""
        return int(HEADER_STRUCT.unpack(self.header)[5])

    def records(self) -> list[bytes]:
        """The stored transaction records, each payload || seller sig || buyer sig."""
        n_tx = self.n_tx
        if n_tx == 0:
            return []
        size = len(self.txs) // n_tx
        return [self.txs[i : i + size] for i in range(0, size * n_tx, size)]

    def transactions(self) -> NDArray[np.void]:
        """Decoded transactions as a read-only structured view of ``txs``, shape (n_tx,).

        Fields: serial, period, quantity_kwh (kWh), price (yuan/kWh), seller, buyer.
        """
        n_tx = self.n_tx
        size = len(self.txs) // n_tx if n_tx else PAYLOAD_SIZE
        return np.frombuffer(self.txs, dtype=transaction_dtype(size), count=n_tx)


def make_block(
    height: int, period: int, prev_hash: bytes, records: list[bytes], timestamp_ms: int
) -> Block:
    """Assemble a block: Merkle root over the records' hashes, header, block hash.

    Args:
        height: Block height.
        period: Market period.
        prev_hash: Hash of the previous block (32 bytes).
        records: Transaction records (payload || seller sig || buyer sig), all the same size.
        timestamp_ms: Simulated commit time (ms).

    Returns:
        The block.
    """
    fresh = _SHA256_FRESH.copy  # copying a started state is cheaper than sha256(data)
    leaves = []
    for record in records:
        h = fresh()
        h.update(record)
        leaves.append(h.digest())
    root = _tree_root(leaves) if leaves else EMPTY_MERKLE_ROOT
    header = HEADER_STRUCT.pack(height, period, prev_hash, root, len(records), timestamp_ms)
    h = fresh()
    h.update(header)
    return Block(header, b"".join(records), h.digest())


class LedgerError(Exception):
    """The ledger's hash chain is broken; ``height`` names the first bad block."""

    def __init__(self, height: int, problem: str) -> None:
        super().__init__(f"block at height {height}: {problem}")
        self.height = height
        self.problem = problem


class Ledger:
    """Bounded window of the most recent blocks, hash-linked.

    Blocks live in a ``collections.deque(maxlen=window)``, so memory stays bounded; older
    blocks are dropped. ``verify`` checks the kept blocks, trusting the first kept block's
    ``prev_hash`` as the anchor.

    Args:
        window: Maximum number of blocks kept (>= 1).
        sink: Optional callable that receives every appended block (e.g.
            :meth:`mgenv.chain.store.LedgerStore.append`).
    """

    def __init__(self, window: int, sink: Callable[[Block], None] | None = None) -> None:
        if window < 1:
            raise ValueError(f"Ledger window={window} is outside [1, inf)")
        self._blocks: deque[Block] = deque(maxlen=window)
        self._next_height = 0
        self.sink = sink  # receives every appended block (the persistent store)

    @property
    def window(self) -> int:
        """Maximum number of blocks kept."""
        return self._blocks.maxlen or 0

    @property
    def next_height(self) -> int:
        """Height the next appended block gets (= number of blocks ever appended)."""
        return self._next_height

    @property
    def head_hash(self) -> bytes:
        """Hash of the newest block, or 32 zero bytes if no block was ever appended."""
        return self._blocks[-1].hash if self._blocks else GENESIS_PREV_HASH

    def __len__(self) -> int:
        return len(self._blocks)

    def __iter__(self) -> Iterator[Block]:
        return iter(self._blocks)

    def __getitem__(self, index: int) -> Block:
        """Block at ``index`` within the kept window (0 = oldest kept, -1 = newest)."""
        return self._blocks[index]

    def append(self, period: int, records: list[bytes], timestamp_ms: int) -> Block:
        """Make the next block from transaction records, link it to the head, keep it.

        Args:
            period: Market period.
            records: Transaction records (payload || seller sig || buyer sig).
            timestamp_ms: Simulated commit time (ms).

        Returns:
            The appended block.
        """
        block = make_block(self._next_height, period, self.head_hash, records, timestamp_ms)
        if self.sink is not None:  # persisted first: a failed write leaves the ledger as it was
            self.sink(block)
        self._blocks.append(block)
        self._next_height += 1
        return block

    def adopt(self, block: Block) -> None:
        """Keep a block made elsewhere as the next one, as :meth:`append` keeps its own.

        For the chain's compiled path (:mod:`mgenv.chain.fast_sbet`), whose kernel makes the
        block at height :attr:`next_height` on :attr:`head_hash` (``make_block``'s bytes).

        Args:
            block: The block.
        """
        if self.sink is not None:  # persisted first: a failed write leaves the ledger as it was
            self.sink(block)
        self._blocks.append(block)
        self._next_height += 1

    def verify(self) -> None:
        """Check every kept block's header hash, height, link and Merkle root.

        Raises:
            LedgerError: Naming the height of the first block found broken.
        """
        if not self._blocks:
            return
        height = self._next_height - len(self._blocks)
        prev_hash = self._blocks[0].prev_hash
        for block in self._blocks:
            check_block(block, height, prev_hash)
            prev_hash = block.hash
            height += 1


def check_block(block: Block, height: int, prev_hash: bytes) -> None:
    """Raise LedgerError(height, ...) if ``block`` is not the valid block at ``height``."""
    if len(block.header) != HEADER_STRUCT.size:
        raise LedgerError(height, f"header has {len(block.header)} bytes, not 92")
    if _sha256(block.header).digest() != block.hash:
        raise LedgerError(height, "header does not hash to the recorded block hash")
    stored_height, _, stored_prev, root, n_tx, _ = HEADER_STRUCT.unpack(block.header)
    if stored_height != height:
        raise LedgerError(height, f"header says height {stored_height}")
    if stored_prev != prev_hash:
        raise LedgerError(height, "prev_hash does not match the previous block's hash")
    if n_tx == 0 or len(block.txs) % n_tx or len(block.txs) // n_tx < PAYLOAD_SIZE:
        raise LedgerError(height, f"{len(block.txs)} bytes of transactions for n_tx={n_tx}")
    if merkle_root([_sha256(r).digest() for r in block.records()]) != root:
        raise LedgerError(height, "transactions do not match the header's merkle root")
