"""The batched chain's compiled SBET path: constants, buffers and the calls of a period.

With :data:`mgenv._jit.ENABLED`, ``BatchedChain.process`` decides an SBET period by
:func:`sbet_compiled`: the three kernels of :mod:`mgenv.batched.chain_kernels`, which run the
single chain's compiled steps copy by copy, with numpy's ``log1p`` of the jitters they list
between them (see that module). The numpy path (:mod:`mgenv.batched.chain_sbet`) stays the
reference, the fallback without numba, and the path of the proportional creator election
(whose keys need numpy's logarithms of the election's delays within the period).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from mgenv.batched import pcg64
from mgenv.batched.chain_kernels import (
    CHANGES,
    FIGURES,
    N_ADM,
    N_COUNTS,
    N_FIGURES,
    sbet_close,
    sbet_elect,
    sbet_open,
)
from mgenv.batched.chain_types import F64, I64, BatchedConsensus, Bool
from mgenv.batched.pcg64 import U64
from mgenv.chain.packed import ABLE, BASE, MALICIOUS, SLOW, VOTERS, WAIT
from mgenv.chain.params import ChainParams
from mgenv.chain.sbet_steps import N_PHASES

if TYPE_CHECKING:
    from mgenv.batched.chain import BatchedChain

_NO_TABLE = np.empty((0, 4), dtype=np.uint64)


class CompiledSBET:
    """One episode's constants of the compiled path, copies first, and its buffers.

    Built from the chain's episode state (``BatchedChain.reset``'s draws) on the first
    compiled period of an episode.

    Attributes:
        constants: ``(geo (B, 3, n, n), nodes (B, 3, n), storage (B, n))``, as
            :class:`~mgenv.chain.packed.PackedPlane`'s ``geo`` and ``nodes`` and SBET's
            storage spaces, per copy.
        fc: ``PackedPlane.fc``: t_max, header and record times (ms), loss, jitter (ms).
        ic: ``PackedPlane.ic``: quorum, block size, nodes each trade misses.
        p_on: ``(availability, P(up | down before), P(up | up before))``.
        down: Shape (n, B), bool: nodes a DDoS takes offline (all False without one).
        state: Shape (n, B), bool: the online chain, advanced in place.
    """

    def __init__(self, c: BatchedChain) -> None:
        p, n, nb = c.params, c._n, c.n_copies
        geo = np.empty((nb, 3, n, n))
        geo[:, BASE] = c._geo.base_ms.transpose(2, 0, 1)
        geo[:, SLOW] = 1.0 if c._geo.slow is None else c._geo.slow.transpose(2, 0, 1)
        geo[:, WAIT] = c._geo.wait_ms.transpose(2, 0, 1)
        nodes = np.empty((nb, 3, n), dtype=bool)
        nodes[:, MALICIOUS], nodes[:, ABLE], nodes[:, VOTERS] = (
            c._malicious.T,
            c._able.T,
            c._voters.T,
        )
        self.constants = (geo, nodes, np.ascontiguousarray(c._storage.T))
        self.fc = np.array(
            [p.t_max_ms, c._header_ms, c._ms_per_record, p.message_loss, p.jitter_ms]
        )
        self.ic = np.array([c._q, p.block_size, c._n_missing], dtype=np.int64)
        self.p_on = np.array([p.availability, *c._p_on])
        down = c._geo.down
        self.down = np.zeros((n, nb), dtype=bool) if down is None else down
        self.state = np.empty((n, nb), dtype=bool)
        self.online = np.empty((nb, n), dtype=bool)
        self.counts = np.empty((N_COUNTS, nb), dtype=np.int64)
        self.elapsed = np.empty(nb)
        self.starts = np.empty((2, nb + 1), dtype=np.int64)
        cap = nb * N_PHASES * n * n  # at most every jitter of every copy is listed
        self.neg = np.empty((2, cap))
        self.pos = np.empty((2, 2, cap), dtype=np.int64)
        # the links the steps read (the others are never read: zeros, not garbage)
        self.links = np.zeros((nb, N_PHASES, n, n), dtype=bool)
        self.no_keys = np.empty((nb, 0))
        self.no_start = np.zeros(nb, dtype=np.int64)
        self._width = -1

    def buffers(self, width: int) -> tuple[I64, NDArray[np.int8]]:
        """``(admitted (2, B, T), copies (B, T, n))`` for T = ``width`` trade slots."""
        if width != self._width:
            nb, n = self.online.shape
            self._admitted = np.empty((2, nb, width), dtype=np.int64)
            self._copies = np.empty((nb, width, n), dtype=np.int8)
            self._width = width
        return self._admitted, self._copies


def seeded_draws(
    params: ChainParams, seeds: tuple[U64, U64], tables: tuple[U64, U64] | None
) -> tuple[F64, F64, U64]:
    """``Chain.__init__``'s network draws from the streams' seed words (no generator built).

    The positions are the stream's first 2 n uniforms (``uniform(0, area_km, (n, 2))``),
    the storage spaces its first child's first n (``uniform(0.5, 1.5, n)``).

    Args:
        params: Chain parameters (SBET).
        seeds: The network streams' seed words and their first children's, (B, 4) uint64.
        tables: ``BatchedChain._pcg_tables()`` (the offsets' table covers 2 n draws).

    Returns:
        Positions (B, n, 2) km, storage spaces (B, n) and the streams' PCG64 states after
        the positions' draws (B, 4) uint64, where the period draws start.
    """
    if tables is None:
        raise ValueError("seeded_draws needs the PCG64 tables")
    by_offset = tables[0]
    n, nb = params.n_nodes, seeds[0].shape[0]
    state, child = np.empty((nb, 4), dtype=np.uint64), np.empty((nb, 4), dtype=np.uint64)
    pcg64.seeded(np.ascontiguousarray(seeds[0]), state)
    pcg64.seeded(np.ascontiguousarray(seeds[1]), child)
    unit, storage_u = np.empty((nb, n, 2)), np.empty((nb, n))
    pcg64.draws_into(state, by_offset, unit.reshape(nb, 2 * n))
    pcg64.draws_into(child, by_offset, storage_u)
    pcg64.advance_into(state, by_offset, 2 * n)
    # Generator.uniform(low, high) is low + (high - low) u
    return params.area_km * unit, 0.5 + 1.0 * storage_u, state


def sbet_compiled(
    c: BatchedChain,
    period: int,
    k: int,
    tables: tuple[U64, U64] | None,
    seller: NDArray[np.integer],
    valid: Bool,
    n_live: I64,
    reason: NDArray[np.int8],
) -> BatchedConsensus:
    """One SBET period of every copy by the kernels (``SBETProtocol.decide_transactions``).

    Args:
        c: The batched chain (its episode state is updated: online chain, node view).
        period: Market period.
        k: The period's index in the chain's draw block.
        tables: PCG64 jump tables by offset and by period, if the block may be virtual.
        seller: Shape (B, T), integer: seller of each trade.
        valid: Shape (B, T), bool: passed the validity checks.
        n_live: Shape (B,): trades per copy.
        reason: Shape (B, T), int8: ``INVALID_TRADE`` where live but not valid; the
            verdicts are written into it.
    """
    cs = c._compiled
    if cs is None:
        cs = c._compiled = CompiledSBET(c)
    nb, n = cs.online.shape
    admitted, copies = cs.buffers(valid.shape[1])
    before = c._online_state
    if before is not None and before is not cs.state:  # the numpy path ran before
        np.copyto(cs.state, before)
    c._online_state = cs.state
    sellers = np.ascontiguousarray(seller, dtype=np.int64)
    start, start_next = cs.starts
    neg, neg_next = cs.neg
    pos, pos_next = cs.pos
    by_offset, by_period = _NO_TABLE, _NO_TABLE
    if tables is not None and c._draws.start.shape[0]:  # a virtual block
        by_offset, by_period = tables
    draws = (c._draws.block, k, c._draws.start, by_offset, by_period)
    m = sbet_open(
        period, draws, cs.p_on, before is None, cs.state, cs.down, valid, sellers, cs.fc, cs.ic,
        reason, cs.online, admitted, cs.counts, cs.links, neg, pos, start,
    )  # fmt: skip
    lj = np.log1p(neg[:m], out=neg[:m])
    keys, key_start = cs.no_keys, cs.no_start
    if c._children is not None and valid.shape[1] > 0:
        keys, key_start = c._children.take(cs.counts[N_ADM] * n)
    m = sbet_elect(
        period, draws, cs.online, admitted, keys, key_start, cs.constants, cs.fc, cs.ic,
        (lj, pos, start), cs.counts, cs.links, copies, cs.elapsed, neg_next, pos_next,
        start_next,
    )  # fmt: skip
    lj = np.log1p(neg_next[:m], out=neg_next[:m])
    committed = np.zeros(valid.shape, dtype=bool)
    latency = np.empty(nb)
    figures: F64 = np.empty((N_FIGURES + 1, nb))
    sbet_close(
        cs.online, admitted, cs.counts, cs.links, copies, cs.elapsed, cs.constants, cs.fc,
        cs.ic, (lj, pos_next, start_next), n_live, float(3 * c._n_mal >= n),
        (c._top, c._height, c._forked), committed,
        reason, latency, figures,
    )  # fmt: skip
    extra = dict(zip(FIGURES, figures[:N_FIGURES], strict=True))
    changes: I64 = cs.counts[CHANGES].copy()
    return BatchedConsensus(committed, reason, latency, figures[N_FIGURES], changes, extra)
