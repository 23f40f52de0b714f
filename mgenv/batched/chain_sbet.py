"""SBET for B copies of the batched chain (``SBETProtocol.decide_transactions``).

One period: the data plane's admission (the first ``block_size`` valid transactions), the
rows of the copy arrays (:class:`_Groups`: origin nodes when there are no interruptions,
since all transactions of one origin reach the same nodes, with counts as weights; else one
row per transaction, with its interruptions drawn from the copy's child stream), one block
per copy (:class:`~mgenv.batched.chain_sbet_block._SBETBlock`, steps 1-8), and the verdicts
and figures of ``Chain.process``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv.batched.chain_draws import _ChildBuffer, _Round
from mgenv.batched.chain_sbet_block import _SBETBlock
from mgenv.batched.chain_select import _count
from mgenv.batched.chain_types import I64, BatchedConsensus, Bool
from mgenv.chain.types import BLOCK_FULL

if TYPE_CHECKING:
    from mgenv.batched.chain import BatchedChain


class _Groups(NamedTuple):
    """Rows of the SBET copy arrays: transactions that hold the same copies, with counts.

    Without interruptions every transaction of one origin node reaches the same nodes, so a
    row stands for an origin (G = n); with them, for a transaction (G = T).

    Attributes:
        present: Shape (G, B), bool: the row stands for at least one admitted transaction.
        weight: Shape (G, B), integer: admitted transactions the row stands for; int16 if
            n T fits (weighted counts over rows and nodes are at most that), else int64.
        origin: Shape (G, B), origin node of each row (None: row g is origin g).
        interrupted: Shape (G, n, B), bool, or None.
    """

    present: Bool
    weight: NDArray[np.integer]
    origin: NDArray[np.integer] | None
    interrupted: Bool | None


def _sbet(
    c: BatchedChain,
    period: int,
    net: _Round,
    seller: NDArray[np.integer],
    valid: Bool,
    n_live: I64,
    reason: NDArray[np.int8],
) -> BatchedConsensus:
    """One SBET block per copy (``SBETProtocol.decide_transactions``)."""
    n, rows = c._n, c._rows
    adm = valid
    if c.params.block_size < valid.shape[1]:  # DataPlane.admit: the first block_size
        adm = valid & (np.cumsum(valid, axis=1) <= c.params.block_size)
        reason = np.where(valid & ~adm, np.int8(BLOCK_FULL), reason)
    origin = c._node_of.take(seller, mode="clip")  # (B, T): the recording node
    slot = origin * rows.size + rows[:, None]  # (B, T) into (n, B)
    per_origin = np.bincount(slot[adm], minlength=n * rows.size).reshape(n, -1)
    n_adm = per_origin.sum(axis=0)
    # weighted counts are at most n T: int16 is exact and cheaper to contract if it fits
    weight_type = np.int16 if n * adm.shape[1] < 2**15 else np.int64
    children = c._children
    if children is not None and adm.shape[1] > 0:
        # each transaction has its own interruptions: a row per transaction (with no trade
        # slot at all nothing is drawn, and the per-origin rows below are the same block)
        width = adm.shape[1]
        groups = _Groups(
            np.ascontiguousarray(adm.T),
            adm.T.astype(weight_type),
            np.ascontiguousarray(origin.T),
            _interrupted(c, children, adm, origin),
        )
        slot = np.arange(width) * rows.size + rows[:, None]
    else:  # the transactions of one origin hold the same copies: a row per origin node
        groups = _Groups(per_origin > 0, per_origin.astype(weight_type), None, None)
    blk = _SBETBlock(c, net, period, per_origin, groups, n_adm > 0).run()
    tx_reason = blk.reason.reshape(-1).take(slot)  # (B, T)
    ok = tx_reason == 0
    ok &= adm
    reason = np.where(adm, tx_reason, reason)  # admitted ones had no reason yet
    n_valid = n_adm if adm is valid else _count(valid)
    n_ok = blk.committed
    extra = {
        "safety_violation": np.full(rows.size, float(3 * c._n_mal >= n)),
        "committed_share": np.where(n_live > 0, n_ok / np.maximum(n_live, 1), 1.0),
        "query_accuracy": np.where(n_valid > 0, n_ok / np.maximum(n_valid, 1), 1.0),
        "recovered": blk.recovered.astype(np.float64),
        "missing_copies": blk.missing.astype(np.float64),
        "tampered": blk.tampered.astype(np.float64),
        "creator": blk.creator.astype(np.float64),
    }
    extra |= c._update_nodes(net.online, blk.holders, blk.altered, n_ok > 0)
    share = c._tally("ib->b", net.online) / n
    return BatchedConsensus(ok, reason, blk.latency_ms, share, blk.view_changes, extra)


def _interrupted(
    c: BatchedChain, children: _ChildBuffer, adm: Bool, origin: NDArray[np.integer]
) -> Bool:
    """``DataPlane.interrupted`` per copy, shape (T, n, B) (rows of admitted trades)."""
    n, rows = c._n, c._rows
    buf, start = children.take(_count(adm) * n)
    rank = np.maximum(np.cumsum(adm, axis=1) - 1, 0).T  # (T, B): the k-th admitted: row k
    index = start + rank[:, None, :] * n + c._col  # (T, n, B)
    index = np.minimum(index, buf.shape[1] - 1) + (rows * buf.shape[1])
    keys = buf.reshape(-1).take(index)
    keys[origin.T[:, None, :] == c._col] = 2.0  # the origin always keeps its own
    order = keys.argsort(axis=1).argsort(axis=1)
    out: Bool = (order < c._n_missing) & adm.T[:, None, :]
    return out
