"""Compiled node view update (numba, :mod:`mgenv._jit`) for :meth:`NodeHeads.update`.

The numpy update costs 5-10 numpy calls per period when every node holds the block and
~50 when some node must catch up (two hash-table lookups, masks, comparisons). Here it takes
one kernel call, or two when some node is not at the committed head: :func:`deliver` applies
step 1 of :mod:`mgenv.chain.nodeview` and says whether everyone is at the head; if not, the
caller looks the committed chain's hashes up in the ledger for the few distinct heights the
nodes are at (Python, the ledger's blocks are Python objects), and :func:`catch_up_figures`
applies step 2 and returns step 3's figures. Every state change and figure equals the numpy
code's: the operations are assignments, exact comparisons and integer counts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit


@_jit.kernel
def _same_hash(head: NDArray[np.uint8], i: int, digest: NDArray[np.uint8] | bytes) -> bool:
    """``(head[i] == digest).all()`` for a 32-byte digest."""
    for b in range(32):
        if head[i, b] != digest[b]:
            return False
    return True


@_jit.kernel
def _same_row(head: NDArray[np.uint8], i: int, table: bytes, k: int) -> bool:
    """``(head[i] == table[32 k : 32 k + 32]).all()``: node i's head is row k of the table."""
    for b in range(32):
        if head[i, b] != table[32 * k + b]:
            return False
    return True


@_jit.kernel
def _level_of(height: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each node's index among the sorted distinct heights (``np.unique``'s inverse).

    Written out (a sort and a scan of n values) because np.unique takes seconds to compile.
    """
    n = height.size
    levels = height.copy()
    for a in range(1, n):  # insertion sort: n is small and this runs only when nodes lag
        x = levels[a]
        b = a - 1
        while b >= 0 and levels[b] > x:
            levels[b + 1] = levels[b]
            b -= 1
        levels[b + 1] = x
    level = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = 0  # distinct heights below height[i]
        for a in range(n):
            if levels[a] >= height[i]:
                break
            if a == 0 or levels[a] != levels[a - 1]:
                k += 1
        level[i] = k
    return level


@_jit.kernel
def deliver_all(
    height: NDArray[np.int64],
    head: NDArray[np.uint8],
    forked: NDArray[np.bool_],
    top: int,
    block_hash: bytes,
) -> None:
    """Every node takes the block (``NodeHeads.update`` without a round): in place.

    Mirrors ``height[:] = top; head[:] = block_hash; forked[:] = False``.
    """
    for i in range(height.size):
        height[i] = top
        forked[i] = False
        for b in range(32):
            head[i, b] = block_hash[b]


@_jit.kernel
def deliver(
    height: NDArray[np.int64],
    head: NDArray[np.uint8],
    forked: NDArray[np.bool_],
    holders: NDArray[np.bool_],
    give: bool,
    top: int,
    block_hash: NDArray[np.uint8] | bytes,
    head_hash: NDArray[np.uint8] | bytes,
) -> bool:
    """Step 1 (delivery of a committed block), then whether every node is at the head.

    Mirrors ``NodeHeads.update`` up to its first ``_at_head`` check: with ``give``, the
    holders take the block (height ``top``, head ``block_hash``, not forked); if every node
    holds it, or every node's head is ``head_hash`` at height ``top``, nothing more is needed.

    Args:
        height: Shape (n,), int64, updated in place.
        head: Shape (n, 32), uint8, updated in place.
        forked: Shape (n,), bool, updated in place.
        holders: Shape (n,), bool: nodes that hold the period's block.
        give: Whether the holders take the block (a block committed and was not altered).
        top: The ledger's next height.
        block_hash: The block's 32-byte hash (ignored without ``give``).
        head_hash: The ledger's head hash (32 bytes).

    Returns:
        Whether the nodes are synced (the figures are then the synced ones); if not, the
        caller looks the committed chain's hashes up for :func:`catch_up_figures`.
    """
    n = height.size
    if give:
        n_holders = 0
        for i in range(n):
            if holders[i]:
                n_holders += 1
                height[i] = top
                forked[i] = False
                for b in range(32):
                    head[i, b] = block_hash[b]
        if n_holders == n:
            return True
    return _at_head(height, head, top, head_hash)


@_jit.kernel
def _at_head(
    height: NDArray[np.int64],
    head: NDArray[np.uint8],
    top: int,
    head_hash: NDArray[np.uint8] | bytes,
) -> bool:
    """``NodeHeads._at_head``: every node's head is ``head_hash`` at height ``top``."""
    for i in range(height.size):
        if height[i] != top or not _same_hash(head, i, head_hash):
            return False
    return True


@_jit.kernel
def catch_up_figures(
    height: NDArray[np.int64],
    head: NDArray[np.uint8],
    forked: NDArray[np.bool_],
    honest: NDArray[np.bool_],
    online: NDArray[np.bool_],
    top: int,
    head_hash: bytes,
    prev_hash: bytes,
    prev_known: bytes,
    chain_hash: bytes,
    chain_known: bytes,
) -> tuple[bool, int, int, int]:
    """Steps 2 and 3 (``NodeHeads.catch_up`` then ``NodeHeads.figures``) for nodes not synced.

    The tables are indexed by level, the k-th of the nodes' sorted distinct heights (as this
    function finds them, before any node catches up).

    Args:
        height: Shape (n,), int64, updated in place.
        head: Shape (n, 32), uint8, updated in place.
        forked: Shape (n,), bool.
        honest: Shape (n,), bool.
        online: Shape (n,), bool: nodes that try to catch up (and may serve).
        top: The ledger's next height.
        head_hash: The ledger's head hash (32 bytes).
        prev_hash: 32 bytes per level: ``prev_hash`` of the block at that height (what a
            node there checks its head against when it fetches), where ``prev_known``.
        prev_known: One byte per level, nonzero if that block is in the ledger's window.
        chain_hash: 32 bytes per level: the committed chain's head hash at that height
            (block height - 1's hash; zeros at 0), where ``chain_known``.
        chain_known: One byte per level, nonzero if that hash is known (height 0 or the
            block in the window).

    Returns:
        ``(honest_heads_agree, lagging_nodes, forked_nodes, link_failures)``, the last to be
        added to ``NodeHeads.link_failures``.
    """
    n = height.size
    level = _level_of(height)  # each node's index into the tables
    top_level = -1  # the level of height top, if a node is there
    for i in range(n):
        if height[i] == top:
            top_level = level[i]
    # catch_up: behind = online & ~forked & height < top; servers at the head, honest
    any_behind = False
    any_server = False
    for i in range(n):
        if online[i] and not forked[i]:
            any_behind |= height[i] < top
            any_server |= honest[i] and height[i] == top
    failures = 0
    if any_behind and any_server:
        for i in range(n):
            if not (online[i] and not forked[i] and height[i] < top):
                continue
            k = level[i]
            if prev_known[k] and not _same_row(head, i, prev_hash, k):
                failures += 1  # the first fetched block does not link to its head
                continue
            height[i] = top
            level[i] = top_level  # a server is at top, so top is a level
            for b in range(32):
                head[i, b] = head_hash[b]
    # figures: the synced ones if every node is at the head, else by height
    if _at_head(height, head, top, head_hash):
        return True, 0, 0, failures
    agree = True
    lagging = 0
    off_chain = 0
    for i in range(n):
        k = level[i]
        on_chain = not forked[i] and (not chain_known[k] or _same_row(head, i, chain_hash, k))
        off_chain += not on_chain
        if honest[i]:
            agree &= on_chain
            lagging += height[i] < top
    return agree, lagging, off_chain, failures
