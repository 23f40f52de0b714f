"""The chain stage for B copies at once: ``ideal``, ``pbft`` and ``sbet``.

:class:`BatchedChain` is B independent :class:`mgenv.chain.Chain` instances stepped in lockstep
(all in the same period, same :class:`~mgenv.chain.ChainParams`): for every copy b,
``process`` gives bit for bit the verdicts and figures that ``Chain.process`` gives on that
copy's live trades, and its random generators end each episode in the same state.

Scope: protocols ``ideal``, ``pbft`` and ``sbet`` with ``signatures="modelled"``,
``auth_identity="none"`` and no ``ledger_path``; anything else raises ``ValueError`` naming
the field. There is no tamper hook. Every other parameter of these protocols is supported
(message loss, availability with Markov outages, withholding and malicious nodes, missing
transactions, both DDoS modes, both SBET creator elections, ``block_size``).

**Lazy hashing** (a design decision). The batched chain does not pack, sign, hash or store
transactions and builds no ledger. With modelled signatures and no tamper hook every signature
verifies by construction (see ``Chain.process``), and no verdict depends on the bytes: SBET
tracks copies by identity (true, altered, missing) and the node view's hash comparisons only
compare a node's head with the committed chain's hash at its height. The state per copy is
bounded (it does not grow with steps): the serial counter (``next_serial``), the number of
committed blocks (``ledger_height``, = ``Chain.ledger.next_height``), and each validator's
height and fork flag (``node_height``, ``node_forked``, = ``Chain.nodes.height``, ``.forked``).
Blocks, block and head hashes are not available. The node-view figures are nevertheless exact
from heights alone: a node that is not forked always holds the committed chain's hash at its
height (it only takes committed blocks, by delivery or catch-up), and only malicious nodes
fork, so the catch-up's hash-link check never fails; ``honest_heads_agree``,
``lagging_nodes`` and ``forked_nodes`` follow from (height, forked) and are in ``extra``.

**Random streams.** ``reset`` makes, per copy, the draws ``Chain.__init__`` makes (positions;
SBET: the child stream and its storage spaces; the withholding then, SBET only, the malicious
permutation). The per-period network draws (one ``rng.random(D)`` per period,
:mod:`mgenv.chain.network`) are made ahead, one ``rng.random`` call per copy for K periods
(it gives the numbers of K calls of ``random(D)``); blocks end at multiples of ``horizon``,
so after each episode of ``horizon`` calls of ``process`` every generator is in the single
chain's state. SBET's interruption draws (``missing_share > 0``) come from the private child
stream the same way, ahead, into a per-copy buffer (the child is not visible outside).

**Layout and cost.** ``process`` has no Python loop over copies, nodes or trades (only the
per-copy generator calls when a block of draws runs out). Internally the copy axis is *last*
(node arrays are (n, B), link matrices (n, n, B), [sender, receiver, copy]): with B in the
inner loop, numpy's broadcasting and reductions over the short node axes are several times
faster than with B first. Each period's draws are copied out of the block (contiguous, so
that the gathers hit the cache) and messages gathered from them by flat index (PBFT, which
uses all of them, transposes them instead: every message is a slice); exponential jitters
(``log1p``) are computed only for the messages a step needs. SBET rows are origin nodes
rather than transactions when there are no interruptions (all transactions of one origin
reach the same nodes), with counts as weights; step 5 works on the compact list of requests.
Most of the cost is numpy's per-call overhead, so the code keeps calls few: counts of
booleans are integer ``np.einsum`` contractions (exact in any order), k-th smallest values
along a short node axis come from pruned sorting networks of ``np.minimum`` /
``np.maximum`` (the same values as a sort), SBET's creator is an argmax rather than a sort
and its coordinator (step 1) a table look-up on the online nodes' bit pattern (up to 8
nodes), a message's loss and jitter uniforms come in one gather, and without malicious nodes
the node view skips the fork bookkeeping.

**Modules.** This one is the facade: :class:`BatchedChain` (sizes, episode state, the node
view, one call per period to the protocol) and :func:`check_supported`.
:mod:`~mgenv.batched.chain_types` holds the array aliases, :class:`BatchedConsensus` and the
check of the trade arrays; :mod:`~mgenv.batched.chain_draws` the per-episode draws, the
per-period draw buffers and the gathers of a period's links and delays (``_Round``);
:mod:`~mgenv.batched.chain_select` the k-th smallest selection networks and the counting
helpers; :mod:`~mgenv.batched.chain_pbft` a PBFT round; :mod:`~mgenv.batched.chain_sbet` an
SBET period (admission, rows, figures) and :mod:`~mgenv.batched.chain_sbet_block` its block,
steps 1-8 as named steps.

API::

    chain = BatchedChain(params, n_participants=8, n_copies=256, period_h=1.0, horizon=24)
    chain.reset(network_rngs, adversary_rngs)                 # B generators each
    res = chain.process(t, seller, buyer, kwh, price, live)   # (B, T) arrays
    res.committed, res.reason            # (B, T) bool, int8 (False / 0 on padding)
    res.latency_ms, res.online_share, res.view_changes        # (B,)
    res.extra["query_accuracy"]          # (B,) float64, the single chain's extra keys
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv.batched import pcg64
from mgenv.batched.chain_draws import (
    _adversary_draws,
    _ChildBuffer,
    _Draws,
    _episode_draws,
    _geometry,
    _lines,
)
from mgenv.batched.chain_draws import _Round as _Round
from mgenv.batched.chain_pbft import _pbft
from mgenv.batched.chain_sbet import _Groups as _Groups
from mgenv.batched.chain_sbet import _sbet
from mgenv.batched.chain_sbet_block import _SBETBlock as _SBETBlock
from mgenv.batched.chain_sbet_jit import CompiledSBET, sbet_compiled, seeded_draws
from mgenv.batched.chain_select import _any, _count, _u8
from mgenv.batched.chain_select import kth_smallest as kth_smallest
from mgenv.batched.chain_types import F64, I64, Bool, _validity
from mgenv.batched.chain_types import BatchedConsensus as BatchedConsensus
from mgenv.batched.pcg64 import U64
from mgenv.chain.adversary import n_malicious
from mgenv.chain.dataplane import HEADER_BYTES, quorum, record_bytes
from mgenv.chain.network import online_transition
from mgenv.chain.params import ChainParams
from mgenv.chain.sbet_steps import (
    ANNOUNCE,
    BLOCK,
    COMMIT,
    COMPLETE,
    ELECT,
    INTEGRITY,
    LISTS,
    REPLY,
    REQUEST,
    YES,
)
from mgenv.chain.types import INVALID_TRADE

# The ``X as X`` imports are re-exports: BatchedConsensus, and the helpers the tests import
# from here (kth_smallest, _Groups, _Round, _SBETBlock).
PROTOCOLS: Final = ("ideal", "pbft", "sbet")
_INF = math.inf
_BLOCK_BYTES = 64 * 2**20  # at most this much of network uniforms drawn ahead at a time
_N_PHASES = {"ideal": 0, "pbft": 3, "sbet": 12}  # message phases drawn per period


def check_supported(params: ChainParams) -> None:
    """Raise ``ValueError`` naming the first field the batched chain does not support."""
    checks = (
        ("protocol", params.protocol in PROTOCOLS, ", ".join(map(repr, PROTOCOLS))),
        ("signatures", params.signatures == "modelled", "'modelled'"),
        ("auth_identity", params.auth_identity == "none", "'none'"),
        ("ledger_path", not params.ledger_path, "'' (no ledger file)"),
    )
    for name, ok, supported in checks:
        if not ok:
            raise ValueError(
                f"ChainParams.{name}={getattr(params, name)!r} is not supported by the batched "
                f"chain; supported: {supported}"
            )


class BatchedChain:
    """B copies of :class:`mgenv.chain.Chain` (see the module docstring).

    Args:
        params: Chain parameters (protocol ideal, pbft or sbet; modelled signatures; no node
            authentication; no ledger file).
        n_participants: Number of market participants (indices 0..n_participants - 1).
        n_copies: Number of copies B, >= 1.
        period_h: Length of a market period (h); the single chain uses it only for block
            timestamps, which the batched one does not build (validated, kept).
        horizon: Periods per episode (the env's horizon): network draws are made in blocks
            ending at multiples of it, so the generators match the single chains' at the end
            of every episode; outputs match whatever the number of calls.

    Raises:
        ValueError: Unsupported parameters (naming the field) or invalid sizes.
    """

    def __init__(
        self,
        params: ChainParams,
        n_participants: int,
        n_copies: int,
        period_h: float = 1.0,
        *,
        horizon: int,
    ) -> None:
        check_supported(params)
        for name, value in (("n_participants", n_participants), ("n_copies", n_copies)):
            if isinstance(value, bool) or operator.index(value) < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
        if isinstance(horizon, bool) or operator.index(horizon) < 1:
            raise ValueError(f"horizon={horizon!r} must be an integer >= 1")
        if not 0.0 < period_h < _INF:
            raise ValueError(f"period_h={period_h!r} is outside (0, inf)")
        self.params = params
        self.n_participants = operator.index(n_participants)
        self.n_copies = nb = operator.index(n_copies)
        self.horizon = operator.index(horizon)
        self.period_h = float(period_h)
        self._n = n = params.n_nodes
        self._rows = np.arange(nb)
        self._nodes = np.arange(n)
        self._col = self._nodes[:, None]  # (n, 1): node index against (n, B) arrays
        self._eye = np.eye(n, dtype=bool)[:, :, None]  # (n, n, 1)
        self._off_diagonal = ~self._eye
        phases = self._n_phases = _N_PHASES[params.protocol]
        self._draw_size = d = n + 2 * phases * n * n + (n if params.protocol == "sbet" else 0)
        cap = max(1, _BLOCK_BYTES // (8 * d * nb))
        # PBFT uses every uniform of a period: all its messages as slices of (D, B)
        self._draws = _Draws(nb, d, min(cap, self.horizon), params.protocol == "pbft")
        self._row_start = self._rows * d  # (B,) copy b's row in a period's flat draws
        self._p_on = online_transition(params.availability, params.mean_outage_periods)
        self._q = quorum(params.gamma, n)
        self._f = params.max_faulty
        ms_per_byte = 8.0 / params.bandwidth_kbps
        self._header_ms = ms_per_byte * HEADER_BYTES
        self._ms_per_record = ms_per_byte * record_bytes(params)
        self._n_mal = n_malicious(params.malicious_share, n)
        self._n_missing = min(n - 1, math.floor(params.missing_share * n + 1e-9))
        self._node_of = np.arange(self.n_participants) % n  # a trade's origin node: seller % n
        self._index_tables(phases)
        self._tally_dtype = None if n < 256 else np.int64  # counts of up to 255 in bytes
        # PBFT's scratch: phases' senders, completion flags and times
        self._pbft_senders = np.empty((2, n, 1, nb), dtype=bool)
        self._pbft_done = np.empty((3, n, nb), dtype=bool)
        self._pbft_times = np.empty((3, n, nb))
        self._proportional = params.creator_election == "proportional"
        self._compiled: CompiledSBET | None = None
        self._tables: tuple[U64, U64] | None = None
        self._ready = False

    def _index_tables(self, phases: int) -> None:
        """Flat offsets into a period's draws and into (n, B), (n, n, B) arrays, built once.

        The gathers of ``_Round`` and of the protocols' steps add them to per-period indices.
        """
        n, nb = self._n, self.n_copies
        # (P, n, n, 1): offset of each message's loss uniform in a period's draw
        self._full_u = n + np.arange(phases * n * n).reshape(phases, n, n, 1)
        self._online_u = self._col + self._row_start  # (n, B)
        self._extra_u = n + 2 * phases * n * n + self._online_u
        self._jitter_at = phases * n * n  # from a message's loss uniform to its jitter
        self._full_index: dict[tuple[int, ...], I64] = {}  # full()'s gathers, built once
        jitter, start = self._jitter_at, self._row_start
        self._at_p = _lines(n, ((ELECT, True), (ANNOUNCE, True), (YES, False)), start, jitter)
        self._at_c = _lines(
            n,
            ((COMPLETE, True), (BLOCK, True), (LISTS, False), (INTEGRITY, False), (COMMIT, False)),
            start,
            jitter,
        )
        # step 5's requests i -> j (+ i n) and answers j -> i (+ i), loss then jitter
        # uniforms in a draw
        ask = n + np.concatenate((REQUEST * n * n + self._col, REPLY * n * n + self._col * n))
        self._ask_u = np.stack((ask, ask + jitter))  # (2, 2n, 1)
        self._ask_step = np.repeat([[n], [1]], n, axis=0)  # (2n, 1)
        self._col_nb = self._col * nb  # (n, 1)
        self._line_step = n * nb  # from row i to row i + 1 of an (n, n, B) array, flat
        self._line_at = self._col * nb + self._rows  # (n, B): [0, j, b], flat
        # [j, first]: row of node (first + j) % n in an (n, B) array, flat
        self._ring_at = (self._col + self._nodes) % n * nb
        self._ring = (self._col + self._nodes) % n  # [first]: the nodes from ``first`` on
        # SBET's step 1 by look-up for up to 8 nodes (None beyond): the bit weights 2^i,
        # and by [first, code] for the online nodes' bit pattern (code: sum of 2^i over the
        # online nodes i, < 256) the first online node from ``first`` on and the nodes
        # skipped, as the ring's argmax gives them (``first`` and 0 if none is online)
        self._step1: tuple[NDArray[np.uint8], I64, I64] | None = None
        if n <= 8:
            on = (np.arange(2**n)[:, None] >> self._nodes & 1).astype(bool)  # [code, node]
            skips = np.argmax(on[:, self._ring], axis=2).T  # (n, 2^n)
            self._step1 = ((1 << self._nodes).astype(np.uint8), (skips + self._col) % n, skips)

    # ------------------------------------------------------------------ episode
    @property
    def needs_network_streams(self) -> bool:
        """Whether ``reset`` draws from the network streams (every protocol but ideal)."""
        return self.params.protocol != "ideal"

    @property
    def needs_adversary_streams(self) -> bool:
        """Whether the adversary streams' draws decide anything (withholding or malicious nodes).

        ``Chain.__init__`` always draws the withholding permutation (and SBET the malicious
        one), but with no withholding or malicious nodes the permutations select nobody: the
        draws only advance the adversary stream, which the chain does not draw from again.
        """
        p = self.params
        if p.protocol == "ideal":
            return False
        return p.n_withholding > 0 or (p.protocol == "sbet" and self._n_mal > 0)

    @property
    def takes_seeds(self) -> bool:
        """Whether :meth:`reset` can take the network streams as seed words (``network_seeds``).

        With the compiled SBET path over PCG64 draws computed in its kernels (argmax
        election, no interruptions), the network streams need not be built at all.
        """
        p = self.params
        return (
            _jit.ENABLED
            and p.protocol == "sbet"
            and not self._proportional
            and not self._n_missing
            and self._pcg_tables() is not None
        )

    def reset(
        self,
        network_rngs: Sequence[np.random.Generator] | None,
        adversary_rngs: Sequence[np.random.Generator] | None,
        network_seeds: tuple[U64, U64] | None = None,
    ) -> None:
        """Start a new episode in every copy (the draws of ``Chain.__init__``, per copy).

        Copy b gets what ``Chain(params, ..., network_rngs[b], adversary_rngs[b], ...)``
        draws at construction; its network generator is then drawn from every period.

        Args:
            network_rngs: B network streams; None if not :attr:`needs_network_streams`.
            adversary_rngs: B adversary streams, or None if not
                :attr:`needs_adversary_streams`: the verdicts are then the same, but the
                adversary streams (not given) are not advanced as ``Chain.__init__`` would
                (for a caller whose adversary streams serve this episode's chain only, as
                :class:`~mgenv.batched.core.BatchedCore`'s; it skips two permutations and
                a generator per copy).

            network_seeds: Instead of ``network_rngs`` (None), if :attr:`takes_seeds`: the
                network streams' PCG64 seed words and their first spawned children's,
                ``seed_seq.generate_state(4, np.uint64)``, (B, 4) uint64 each (as
                :meth:`mgenv.batched.streams.EpisodeBatch.network_seeds`): the draws are
                the streams' (the streams are not built, so they are not advanced).

        Raises:
            ValueError: Not B generators, or None where the streams are needed.
        """
        nb, p, n = self.n_copies, self.params, self._n
        if network_seeds is not None:
            if network_rngs is not None or not self.takes_seeds:
                raise ValueError("network_seeds needs takes_seeds and no network_rngs")
            network_rngs = []  # checked below as given
        for what, rngs, needed in (
            ("network", network_rngs, self.needs_network_streams),
            ("adversary", adversary_rngs, self.needs_adversary_streams),
        ):
            if rngs is None and needed:
                raise ValueError(f"reset needs the {what} generators with these parameters")
            if rngs is not None and len(rngs) != nb and not (rngs == [] and network_seeds):
                raise ValueError(f"reset needs {nb} {what} generators, got {len(rngs)}")
        self._t = 0
        self._next_serial = np.zeros(nb, dtype=np.int64)
        self._top = np.zeros(nb, dtype=np.int64)  # committed blocks (ledger height)
        self._height = np.zeros((n, nb), dtype=np.int64)
        self._forked = np.zeros((n, nb), dtype=bool)
        self._online_state: Bool | None = None
        self._view = np.zeros(nb, dtype=np.int64)
        self._ready = True
        self._compiled = None  # built by the first compiled period of the episode
        if network_rngs is None or p.protocol == "ideal":  # no node model, nothing drawn
            return
        start = None
        if network_seeds is not None:
            positions, storage, start = seeded_draws(p, network_seeds, self._pcg_tables())
            withhold, malicious = _adversary_draws(p, adversary_rngs, self._n_mal, nb)
            children: list[np.random.Generator] = []
        else:
            positions, storage, withhold, malicious, children = _episode_draws(
                p, network_rngs, adversary_rngs, self._n_mal, bool(self._n_missing)
            )
        self._geo = _geometry(p, positions)
        self._base_flat = self._geo.base_ms.reshape(-1)
        self._slow_flat = None if self._geo.slow is None else self._geo.slow.reshape(-1)
        self._voters = np.ascontiguousarray(~withhold.T)  # (n, B)
        self._storage = np.ascontiguousarray(storage.T)
        self._malicious = np.ascontiguousarray(malicious.T)
        self._honest = ~self._malicious
        self._any_malicious = bool(self._malicious.any())
        self._able = self._malicious | ~self._geo.busy
        tables = self._tables
        self._draws.restart(network_rngs, start, None if tables is None else tables[1])
        chunk = 4 * self.horizon * n
        self._children = _ChildBuffer(children, chunk) if self._n_missing else None

    @property
    def next_serial(self) -> I64:
        """Shape (B,): serial the next transaction gets (as ``Chain.next_serial``)."""
        return self._next_serial.copy()

    @property
    def ledger_height(self) -> I64:
        """Shape (B,): committed blocks so far (as ``Chain.ledger.next_height``)."""
        return self._top.copy()

    @property
    def node_height(self) -> I64:
        """Shape (B, n): blocks each validator holds (as ``Chain.nodes.height``)."""
        return self._height.T.copy()

    @property
    def node_forked(self) -> Bool:
        """Shape (B, n), bool: validator's head is off the chain (as ``Chain.nodes.forked``)."""
        return self._forked.T.copy()

    # ------------------------------------------------------------------ period
    def process(
        self,
        period: int,
        seller: NDArray[np.integer],
        buyer: NDArray[np.integer],
        kwh: NDArray[np.floating],
        price: NDArray[np.floating],
        live: Bool,
    ) -> BatchedConsensus:
        """Decide one period's trades in every copy (call once per period, in order).

        Args:
            period: Market period index (the same in every copy).
            seller: Shape (B, T), integer: seller's participant index.
            buyer: Shape (B, T), integer: buyer's participant index.
            kwh: Shape (B, T), float: traded energy (kWh).
            price: Shape (B, T), float: price (yuan/kWh).
            live: Shape (B, T), bool: slot holds a trade (padding False); copy b's trades are
                its live slots in column order.

        Returns:
            For each copy, what ``Chain.process`` returns on its live trades.

        Raises:
            ValueError: Before ``reset``, on shapes or dtypes that do not fit, or if a live
                trade names a participant outside [0, n_participants).
        """
        if not self._ready:
            raise ValueError("BatchedChain.process called before reset")
        period = operator.index(period)
        valid, live = _validity(self.n_copies, self.n_participants, seller, buyer, kwh, price, live)
        n_live = _count(live)
        self._next_serial += n_live
        reason = (live ^ valid).view(np.int8) * np.int8(INVALID_TRADE)  # valid implies live
        if self.params.protocol == "ideal":  # no node model: every node holds every block
            nb = self.n_copies
            self._top += _any(valid)
            self._height[:] = self._top
            return BatchedConsensus(
                valid, reason, np.zeros(nb), np.ones(nb), np.zeros(nb, dtype=np.int64), {}
            )
        periods_left = self.horizon - self._t % self.horizon
        self._t += 1
        if self.params.protocol == "sbet" and _jit.ENABLED and not self._proportional:
            tables = self._pcg_tables()
            k = self._draws.advance(periods_left, virtual=tables is not None)
            return sbet_compiled(self, period, k, tables, seller, valid, n_live, reason)
        self._draws.next(periods_left)
        if self.params.protocol == "pbft":
            return _pbft(self, valid, reason)
        net = _Round(self)
        return _sbet(self, period, net, np.asarray(seller), valid, n_live, reason)

    def _pcg_tables(self) -> tuple[U64, U64] | None:
        """PCG64 jump tables for the kernels' own draws (:mod:`mgenv.batched.pcg64`).

        By offset (D + 1 entries) and by period (K + 1), built on first use; None if D >
        2**16 (the tables would be large: the draws are then made in blocks).
        """
        if self._tables is None and self._draw_size <= 2**16:
            d, k = self._draw_size, self._draws.block.shape[1]
            self._tables = (pcg64.jump_table(d), pcg64.jump_table(k, step=d))
        return self._tables

    def _online(self, u: F64) -> Bool:
        """Advance every copy's online chain (``NetworkModel.next_online``), shape (n, B)."""
        down_p, up_p = self._p_on
        state = self._online_state
        if state is None:
            online = u < self.params.availability
        elif down_p == up_p:
            online = u < up_p
        else:
            online = u < np.where(state, up_p, down_p)
        self._online_state = online
        if self._geo.down is not None:
            online = online & ~self._geo.down
        return online

    def _update_nodes(
        self, online: Bool, holders: Bool, altered: Bool, block: Bool
    ) -> dict[str, F64]:
        """The node view's delivery, catch-up and figures (``NodeHeads.update``).

        Args:
            online: Shape (n, B), bool.
            holders: Shape (n, B), bool: nodes holding the period's decided block (all False
                if none was decided).
            altered: Shape (B,), bool: the decided block is the colluders' altered one.
            block: Shape (B,), bool: a block was appended this period.
        """
        self._top += block
        top = self._top
        if not self._any_malicious:
            return self._update_heights(online, holders & block)
        honest = self._honest
        take = holders & (block & ~altered)
        fork = holders & (altered & ~block)
        height = np.where(take, top, np.where(fork, top + 1, self._height))
        forked = (self._forked & ~take) | fork
        behind = online & ~forked & (height < top)
        servers = online & honest & ~forked & (height == top)
        height = np.where(behind & servers.any(axis=0), top, height)
        self._height, self._forked = height, forked
        return {
            "honest_heads_agree": (~(honest & forked).any(axis=0)).astype(np.float64),
            "lagging_nodes": (honest & (height < top)).sum(axis=0).astype(float),
            "forked_nodes": forked.sum(axis=0).astype(np.float64),
        }

    def _tally(self, spec: str, *operands: Bool) -> NDArray[np.integer]:
        """Counts: ``np.einsum`` of booleans as 0/1 bytes, contracting node axes only.

        Exact in any summation order (integers); the cheapest reduction over the short node
        axes. Contracting bytes keeps bytes (counts up to 255; int64 for 256 nodes).
        """
        out: NDArray[np.integer] = np.einsum(
            spec, *[_u8(x) for x in operands], dtype=self._tally_dtype
        )
        return out

    def _update_heights(self, online: Bool, take: Bool) -> dict[str, F64]:
        """``_update_nodes`` without malicious nodes: nobody forks, every height <= top.

        A node is then at the top iff it takes the block or was there already, and the
        catch-up brings every online node to the top if an online node is there.
        """
        top = self._top
        at_top = take | (self._height == top)
        at_top |= online & (online & at_top).any(axis=0)
        self._height = np.where(at_top, top, self._height)
        nb = top.size
        return {
            "honest_heads_agree": np.ones(nb),
            "lagging_nodes": np.subtract(self._n, self._tally("ib->b", at_top), dtype=np.float64),
            "forked_nodes": np.zeros(nb),
        }
