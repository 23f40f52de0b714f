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
``np.maximum`` (the same values as a sort), SBET's creator is an argmax rather than a sort,
and without malicious nodes the node view skips the fork bookkeeping.

API::

    chain = BatchedChain(params, n_participants=8, n_copies=256, period_h=1.0, horizon=24)
    chain.reset(network_rngs, adversary_rngs)                 # B generators each
    res = chain.process(t, seller, buyer, kwh, price, live)   # (B, T) arrays
    res.committed, res.reason            # (B, T) bool, int8 (False / 0 on padding)
    res.latency_ms, res.online_share, res.view_changes        # (B,)
    res.extra["query_accuracy"]          # (B,) float64, the single chain's extra keys
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv.chain.adversary import n_malicious
from mgenv.chain.dataplane import HEADER_BYTES, quorum, record_bytes
from mgenv.chain.network import child_stream, online_transition
from mgenv.chain.params import ChainParams
from mgenv.chain.sbet_steps import (
    ANNOUNCE,
    BLOCK,
    COMMIT,
    COMPLETE,
    DATA,
    ELECT,
    HASH,
    INTEGRITY,
    LISTS,
    REPLY,
    REQUEST,
    YES,
)
from mgenv.chain.types import (
    BLOCK_FULL,
    INVALID_TRADE,
    MISSING,
    NO_QUORUM,
    PRIMARY_OFFLINE,
    TAMPERED,
)

PROTOCOLS: Final = ("ideal", "pbft", "sbet")
_INF = math.inf
_BLOCK_BYTES = 64 * 2**20  # at most this much of network uniforms drawn ahead at a time
_N_PHASES = {"ideal": 0, "pbft": 3, "sbet": 12}  # message phases drawn per period

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Bool = NDArray[np.bool_]


class BatchedConsensus(NamedTuple):
    """What the chain decided about one period's trades, for every copy.

    Attributes:
        committed: Shape (B, T), bool: trade settles (False on padding).
        reason: Shape (B, T), int8: index into ``REJECT_REASONS`` (0 on padding).
        latency_ms: Shape (B,), simulated consensus latency (ms).
        online_share: Shape (B,), share of validator nodes online.
        view_changes: Shape (B,), int64.
        extra: Shape (B,) float64 arrays under the single ``ConsensusResult.extra`` keys:
            none for ideal; ``honest_heads_agree``, ``lagging_nodes``, ``forked_nodes`` for
            pbft; those and ``safety_violation``, ``committed_share``, ``query_accuracy``,
            ``recovered``, ``missing_copies``, ``tampered``, ``creator`` for sbet.
    """

    committed: Bool
    reason: NDArray[np.int8]
    latency_ms: F64
    online_share: F64
    view_changes: I64
    extra: dict[str, F64]


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


_NETWORK_MAX = 8  # k-th smallest by a selection network up to this many values, else np.sort


def _merge_sort_network(m: int) -> list[tuple[int, int]]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort of m values, in order.

    Built for the next power of two and cut to pairs inside m (the padding would be +inf,
    which these comparators never move).
    """
    size = 1 << max(0, m - 1).bit_length()
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < m:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@functools.cache
def _selection_network(m: int, k: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """The merge-sort network's comparators that the k-th smallest (1-based) of m depends on.

    Each is (i, j, lo, hi): write min to slot i if ``lo``, max to slot j if ``hi``.
    """
    needed = {k - 1}
    kept = []
    for i, j in reversed(_merge_sort_network(m)):
        lo, hi = i in needed, j in needed
        if lo or hi:
            kept.append((i, j, lo, hi))
            needed |= {i, j}
    return tuple(reversed(kept))


def kth_smallest(values: F64, k: int, axis: int = 0) -> F64:
    """The k-th smallest (1-based) along ``axis``; inf where k is out of range.

    The value is what a sort would put at k - 1 (no NaN comes in: times are finite or inf):
    the minimum or maximum for k = 1 or m, a pruned sorting network of np.minimum and
    np.maximum for short axes (a few calls on whole rows beat a sort along a non-last axis),
    np.sort beyond.
    """
    m = values.shape[axis]
    if not 1 <= k <= m:
        return np.full(values.shape[:axis] + values.shape[axis + 1 :], _INF)
    if k == 1:
        low: F64 = values.min(axis=axis)
        return low
    if k == m:
        high: F64 = values.max(axis=axis)
        return high
    if m > _NETWORK_MAX:
        out: F64 = np.moveaxis(np.sort(values, axis=axis, kind="stable"), axis, 0)[k - 1]
        return out
    order = (axis, *range(axis), *range(axis + 1, values.ndim))  # np.moveaxis, cheaper
    rows: list[F64] = list(values.transpose(order))  # views
    for i, j, lo, hi in _selection_network(m, k):
        a, b = rows[i], rows[j]
        if lo:
            rows[i] = np.minimum(a, b)
        if hi:
            rows[j] = np.maximum(a, b)
    return rows[k - 1]


def close_ms(arrival: F64, k: int, t_max: float) -> F64:
    """A collector's closing time (``mgenv.chain.dataplane.close_ms``) along axis 0."""
    if k <= 0:
        return np.zeros(arrival.shape[1:])
    out: F64 = np.minimum(kth_smallest(arrival, k), t_max)  # no NaN: the same as where(<=)
    return out


class _Geometry(NamedTuple):
    """Per-copy constants of the network model, copies last (``NetworkModel``).

    Attributes:
        base_ms: Shape (n, n, B), [sender, receiver]: delay without jitter (ms), DDoS applied.
        slow: Shape (n, n, B) delay multiplier, or None if no link is slowed.
        wait_ms: Shape (n, n, B): eq. (6) waiting time [sender, receiver] (ms).
        down: Shape (n, B), bool: taken offline by a DDoS, or None.
        busy: Shape (n, B), bool: kept busy by a slowing DDoS.
    """

    base_ms: F64
    slow: F64 | None
    wait_ms: F64
    down: Bool | None
    busy: Bool


def _geometry(params: ChainParams, positions_km: F64) -> _Geometry:
    """The network model's constants from the node positions, shape (B, n, 2) (km).

    The arithmetic is ``NetworkModel.__init__``'s, per copy (B first), then copies go last.
    """
    n = params.n_nodes
    diff = positions_km[:, :, None, :] - positions_km[:, None, :, :]
    distance = np.sqrt((diff**2).sum(axis=-1))  # (B, n, n)
    base = params.base_delay_ms + params.delay_per_km_ms * distance
    central = np.argsort(distance.sum(axis=2), axis=1, kind="stable")[:, : params.ddos_nodes]
    attacked = np.zeros((positions_km.shape[0], n), dtype=bool)
    np.put_along_axis(attacked, central, True, axis=1)
    slowing = params.ddos_mode == "slow" and params.ddos_nodes > 0
    slow = None
    if slowing:
        slow = np.where(attacked[:, :, None] | attacked[:, None, :], params.ddos_slowdown, 1.0)
        base = base * slow
    d_max = math.sqrt(2.0) * params.area_km
    if d_max == 0.0:
        wait = np.full(distance.shape, params.t_max_ms)
    else:
        wait = (1.0 - distance / d_max) * params.t_max_ms
    last = (1, 2, 0)
    offline = params.ddos_mode == "offline" and params.ddos_nodes > 0
    return _Geometry(
        np.ascontiguousarray(base.transpose(last)),
        None if slow is None else np.ascontiguousarray(slow.transpose(last)),
        np.ascontiguousarray(wait.transpose(last)),
        np.ascontiguousarray(attacked.T) if offline else None,
        np.ascontiguousarray(attacked.T) if slowing else np.zeros((n, attacked.shape[0]), bool),
    )


class _Draws:
    """Per-copy uniforms drawn ahead in blocks of whole periods (one generator call each).

    The buffers are allocated once, not per block or episode: a fresh large array costs a
    page fault per 4 KiB page on first touch, more than drawing the numbers.

    Attributes:
        block: Shape (B, K, D): K periods' draws of every copy.
        flat: The current period's draws (B, D), flattened.
        by_draw: The current period's draws (D, B), if asked for (``transposed``): every
            message's uniforms of all copies are then a contiguous slice.
    """

    def __init__(self, n_copies: int, size: int, n_periods: int, transposed: bool) -> None:
        self.rngs: list[np.random.Generator] = []
        self.block = np.empty((n_copies, n_periods, size))
        self.period = np.empty((n_copies, size))
        self.flat = self.period.reshape(-1)
        self.by_draw = np.empty((size, n_copies) if transposed else (0, 0))
        self.k = 0
        self.n_block = 0

    def restart(self, rngs: Sequence[np.random.Generator]) -> None:
        """Draw from these generators from now on (a new episode)."""
        self.rngs = list(rngs)
        self.k = self.n_block = 0

    def next(self, periods_left: int) -> None:
        """Copy the next period's draws to ``period`` (drawing a block first if needed).

        Args:
            periods_left: Periods until the end of the episode (a block never crosses it).
        """
        if self.k == self.n_block:
            self.n_block = min(self.block.shape[1], periods_left)
            for rng, out in zip(self.rngs, self.block[:, : self.n_block], strict=True):
                rng.random(out=out)  # = n_block calls of rng.random(size)
            self.k = 0
        np.copyto(self.period, self.block[:, self.k])  # contiguous: the gathers hit the cache
        if self.by_draw.size:
            np.copyto(self.by_draw, self.period.T)  # transposed in the cache: cheaper
        self.k += 1


class _ChildBuffer:
    """SBET's interruption uniforms per copy: the child streams' draws, consumed in order."""

    def __init__(self, rngs: Sequence[np.random.Generator], chunk: int) -> None:
        self.rngs = list(rngs)
        self.chunk = chunk
        self.buf = np.empty((len(self.rngs), 0))
        self.used = np.zeros(len(self.rngs), dtype=np.int64)
        self.drawn = np.zeros(len(self.rngs), dtype=np.int64)

    def take(self, need: I64) -> tuple[F64, I64]:
        """Reserve ``need[b]`` uniforms of copy b; the buffer (B, W) and each copy's start."""
        end = self.used + need
        short = np.flatnonzero(end > self.drawn)
        if short.size:  # now and then: the short copies draw a further chunk each
            keep = int(self.used.min())
            grow = int((end - self.drawn).max()) + self.chunk
            buf = np.empty((self.buf.shape[0], self.buf.shape[1] - keep + grow))
            buf[:, : self.buf.shape[1] - keep] = self.buf[:, keep:]
            self.buf, self.used, self.drawn = buf, self.used - keep, self.drawn - keep
            end = self.used + need
            for b in short.tolist():
                lo, hi = int(self.drawn[b]), int(end[b]) + self.chunk
                self.rngs[b].random(out=self.buf[b, lo:hi])
                self.drawn[b] = hi
        start = self.used
        self.used = end
        return self.buf, start


class _Lines(NamedTuple):
    """Flat indices to gather some phases' rows (sent by node i) or columns (to node i).

    Element [k, j, b] is message (i -> j) of phase k for a row, (j -> i) for a column, in the
    copy's period draw.
    """

    u: I64  # (m, n, B): offset of the loss uniform for i = 0, copy row start included
    u_step: I64  # (m, 1, 1): added per unit of i


def _lines(n: int, spec: Sequence[tuple[int, bool]], row_start: I64) -> _Lines:
    nodes = np.arange(n)
    u = np.array([n + ph * n * n + nodes * (1 if row else n) for ph, row in spec])
    step = np.array([n if row else 1 for _, row in spec])[:, None, None]
    return _Lines(u[:, :, None] + row_start, step)


_REASONS: Final = np.array(  # SBET verdict by code: in block + verified, + 3 if no e_c, + 6 altered
    [MISSING, NO_QUORUM, 0, *[PRIMARY_OFFLINE] * 3, MISSING, NO_QUORUM, TAMPERED]
    + [PRIMARY_OFFLINE] * 3,
    dtype=np.int8,
)


def _weigh(spec: str, weight: NDArray[np.integer], x: Bool) -> NDArray[np.integer]:
    """Weighted counts: ``np.einsum`` of integer weights and booleans, in the weights' type.

    Exact (integers) while the counts fit the type (see ``_Groups.weight``).
    """
    out: NDArray[np.integer] = np.einsum(
        spec, *[weight, _u8(x)], dtype=np.int16 if weight.dtype == np.int16 else np.int64
    )
    return out


def _u8(x: Bool) -> NDArray[np.uint8]:
    """A boolean array as 0/1 bytes (a view), for integer contractions."""
    out: NDArray[np.uint8] = x.view(np.uint8)
    return out


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
        # (P, n, n, 1): offset of each message's loss uniform in a period's draw
        self._full_u = n + np.arange(phases * n * n).reshape(phases, n, n, 1)
        self._online_u = self._col + self._row_start  # (n, B)
        self._extra_u = n + 2 * phases * n * n + self._online_u
        self._jitter_at = phases * n * n  # from a message's loss uniform to its jitter
        self._full_index: dict[tuple[int, ...], I64] = {}  # full()'s gathers, built once
        self._at_p = _lines(n, ((ELECT, True), (ANNOUNCE, True), (YES, False)), self._row_start)
        self._at_c = _lines(
            n,
            ((COMPLETE, True), (BLOCK, True), (LISTS, False), (INTEGRITY, False), (COMMIT, False)),
            self._row_start,
        )
        # step 5's requests i -> j (+ i n) and answers j -> i (+ i), loss uniforms in a draw
        self._ask_u = n + np.concatenate(
            (REQUEST * n * n + self._col, REPLY * n * n + self._col * n)
        )  # (2n, 1)
        self._ask_step = np.repeat([[n], [1]], n, axis=0)  # (2n, 1)
        self._col_nb = self._col * nb  # (n, 1)
        self._line_step = n * nb  # from row i to row i + 1 of an (n, n, B) array, flat
        self._line_at = self._col * nb + self._rows  # (n, B): [0, j, b], flat
        # [j, first]: row of node (first + j) % n in an (n, B) array, flat
        self._ring_at = (self._col + self._nodes) % n * nb
        self._ring = (self._col + self._nodes) % n  # [first]: the nodes from ``first`` on
        self._tally_dtype = None if n < 256 else np.int64  # counts of up to 255 in bytes
        # PBFT's scratch: phases' senders, completion flags and times
        self._pbft_senders = np.empty((2, n, 1, nb), dtype=bool)
        self._pbft_done = np.empty((3, n, nb), dtype=bool)
        self._pbft_times = np.empty((3, n, nb))
        self._ready = False

    # ------------------------------------------------------------------ episode
    def reset(
        self,
        network_rngs: Sequence[np.random.Generator],
        adversary_rngs: Sequence[np.random.Generator],
    ) -> None:
        """Start a new episode in every copy (the draws of ``Chain.__init__``, per copy).

        Copy b gets what ``Chain(params, ..., network_rngs[b], adversary_rngs[b], ...)``
        draws at construction; its network generator is then drawn from every period.

        Args:
            network_rngs: B network streams.
            adversary_rngs: B adversary streams.
        """
        nb, p, n = self.n_copies, self.params, self._n
        if len(network_rngs) != nb or len(adversary_rngs) != nb:
            raise ValueError(
                f"reset needs {nb} network and {nb} adversary generators, got "
                f"{len(network_rngs)} and {len(adversary_rngs)}"
            )
        self._t = 0
        self._next_serial = np.zeros(nb, dtype=np.int64)
        self._top = np.zeros(nb, dtype=np.int64)  # committed blocks (ledger height)
        self._height = np.zeros((n, nb), dtype=np.int64)
        self._forked = np.zeros((n, nb), dtype=bool)
        self._online_state: Bool | None = None
        self._view = np.zeros(nb, dtype=np.int64)
        self._ready = True
        if p.protocol == "ideal":
            return
        positions, storage, withhold, malicious, children = self._episode_draws(
            network_rngs, adversary_rngs
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
        self._draws.restart(network_rngs)
        chunk = 4 * self.horizon * n
        self._children = _ChildBuffer(children, chunk) if self._n_missing else None

    def _episode_draws(
        self,
        network_rngs: Sequence[np.random.Generator],
        adversary_rngs: Sequence[np.random.Generator],
    ) -> tuple[F64, F64, Bool, Bool, list[np.random.Generator]]:
        """What ``Chain.__init__`` draws, per copy (its generator calls, in order).

        Returns positions (B, n, 2) km, storage spaces (B, n), withholding and malicious
        nodes (B, n) and SBET's child streams if it draws from them later (interruptions).
        The generator calls of every copy, in the single chain's order; the arithmetic
        around them (``uniform``'s scaling, ``draw_withholding``'s and ``draw_malicious``'s
        selection) is done for all copies at once. A seeded PCG64 network stream's child is
        spawned as a bare bit generator (``child_stream`` builds a Generator around it).
        """
        p, n, nb = self.params, self._n, self.n_copies
        sbet = p.protocol == "sbet"
        unit = np.empty((nb, n, 2))  # positions / area_km
        child_raw = np.zeros((nb, n), dtype=np.uint64)  # SBET: the child streams' outputs
        storage_of: dict[int, F64] = {}  # copies whose child stream is not a seeded PCG64
        perms = np.empty((1 + sbet, nb, n), dtype=np.int64)  # the adversary's permutations
        children: list[np.random.Generator] = []
        for b, (net, adv) in enumerate(zip(network_rngs, adversary_rngs, strict=True)):
            net.random(out=unit[b])  # net.uniform(0, area_km, (n, 2)) is area_km * these
            if sbet:
                bits = net.bit_generator
                if type(bits) is np.random.PCG64 and isinstance(
                    bits.seed_seq, np.random.SeedSequence
                ):
                    child_bits = np.random.PCG64(bits.seed_seq.spawn(1)[0])  # child_stream
                    child_raw[b] = child_bits.random_raw(n)
                    if self._n_missing:
                        children.append(np.random.Generator(child_bits))
                else:
                    child = child_stream(net)
                    storage_of[b] = child.uniform(0.5, 1.5, n)
                    children.append(child)
            perms[0, b] = adv.permutation(n)  # draw_withholding's draw
            if sbet:
                perms[1, b] = adv.permutation(n)  # draw_malicious's draw
        # PCG64's uniform: (output >> 11) / 2^53; Generator.uniform(low, high): low + range u
        unit_u: F64 = np.multiply(child_raw >> np.uint64(11), 2.0**-53, dtype=np.float64)
        storage = 0.5 + 1.0 * unit_u
        for b, values in storage_of.items():
            storage[b] = values
        withhold: Bool = np.zeros((nb, n), dtype=bool)  # a permutation's first n_withholding
        np.put_along_axis(withhold, perms[0, :, : p.n_withholding], True, axis=1)
        malicious: Bool = np.zeros((nb, n), dtype=bool)
        if sbet:
            np.put_along_axis(malicious, perms[1, :, : self._n_mal], True, axis=1)
        return p.area_km * unit, storage, withhold, malicious, children

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
        valid, live = self._validity(seller, buyer, kwh, price, live)
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
        self._draws.next(self.horizon - self._t % self.horizon)
        self._t += 1
        if self.params.protocol == "pbft":
            return self._pbft(valid, reason)
        net = _Round(self)
        return self._sbet(period, net, np.asarray(seller), valid, n_live, reason)

    def _validity(
        self,
        seller: NDArray[np.integer],
        buyer: NDArray[np.integer],
        kwh: NDArray[np.floating],
        price: NDArray[np.floating],
        live: Bool,
    ) -> tuple[Bool, Bool]:
        """Check the arrays; the validity predicate of ``Chain`` (signatures always verify)."""
        s, b, m = np.asarray(seller), np.asarray(buyer), np.asarray(live)
        q, p = np.asarray(kwh, dtype=np.float64), np.asarray(price, dtype=np.float64)
        shape = m.shape
        if (
            len(shape) != 2
            or shape[0] != self.n_copies
            or any(a.shape != shape for a in (s, b, q, p))
        ):
            raise ValueError(
                f"seller, buyer, kwh, price, live must be ({self.n_copies}, T), got shapes "
                f"{s.shape}, {b.shape}, {q.shape}, {p.shape}, {m.shape}"
            )
        if s.dtype.kind not in "iu" or b.dtype.kind not in "iu" or m.dtype != np.bool_:
            raise ValueError(
                f"seller and buyer must be integer and live bool, got {s.dtype}, {b.dtype}, "
                f"{m.dtype}"
            )
        n_p = self.n_participants
        if s.dtype == b.dtype == np.int64:  # a negative index is a huge unsigned one
            bad: Bool = np.maximum(s.view(np.uint64), b.view(np.uint64)) >= n_p
        else:
            bad = (np.minimum(s, b) < 0) | (np.maximum(s, b) >= n_p)
        bad &= m
        if bad.any():
            k = int(np.argmax(bad))
            lo, hi = min(s.flat[k], b.flat[k]), max(s.flat[k], b.flat[k])
            raise ValueError(f"participant index {lo if lo < 0 else hi} is outside [0, {n_p - 1}]")
        ok: Bool = q > 0.0  # nan: False
        ok &= q < _INF
        ok &= np.isfinite(p)
        ok &= s != b
        ok &= m
        return ok, m

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

    # ------------------------------------------------------------------ PBFT
    def _pbft(self, valid: Bool, reason: NDArray[np.int8]) -> BatchedConsensus:
        """One PBFT round per copy (``PBFTProtocol.run_round``)."""
        n, f, rows, col = self._n, self._f, self._rows, self._col
        timeout = self.params.view_change_timeout_ms
        u = self._draws.by_draw  # (D, B): online, then loss and jitter [phase, sender, receiver]
        online = self._online(u[:n])
        n_online = self._tally("ib->b", online)
        has_block = _any(valid)
        # select_primary: the next online node from view % n on, if a view change can complete
        first = self._view % n
        ring = online.reshape(-1).take(self._ring_at[:, first] + rows)  # (n, B)
        skipped = np.argmax(ring[1:], axis=0) + 1
        no_primary = has_block & ~ring[0] & (n_online < 2 * f + 1)
        run = has_block & ~no_primary
        changes = np.where(run & ~ring[0], skipped, 0)
        primary = (first + changes) % n
        self._view += changes
        waited = changes * timeout
        # count_votes: the receiver must be online; senders are online by construction
        n_messages = 3 * n * n
        links = u[n : n + n_messages].reshape(3, n, n, -1) >= self.params.message_loss
        links &= self._off_diagonal & online[:, None] & online[None]  # (3, n, n, B)
        link = links[1:]  # prepares, commits
        line = primary * self._line_step + self._line_at  # the pre-prepares: row primary
        # (n, B); it differs from the single chain's only where the primary is offline, and
        # there nothing runs (no block, or no primary: the outcome does not use it)
        pre_link = links[0].reshape(-1).take(line)
        is_p = col == primary
        has_pp = pre_link | is_p
        prepare = has_pp & self._voters
        prepared = self._tally("sb,srb->rb", prepare, link[0]) >= 2 * f
        prepared &= has_pp
        commit = prepared & self._voters
        local = self._tally("sb,srb->rb", commit, link[1]) >= 2 * f
        local &= commit
        ok = self._tally("ib->b", local) >= 2 * f + 1
        ok &= run
        # no primary: no view change, waited = 0 and the latency is the timeout
        latency = np.where(has_block, waited + timeout, 0.0)
        if ok.any():
            # quorum_latency_ms, computed everywhere, used where committed
            jitter = u[n + n_messages : n + 2 * n_messages].reshape(3, n, n, -1)
            delays = np.negative(jitter)
            np.log1p(delays, out=delays)  # exponential jitters (NetworkModel.delays_ms)
            delays *= -self.params.jitter_ms
            if self._geo.slow is not None:
                delays *= self._geo.slow
            delays += self._geo.base_ms  # base + jitter
            senders = self._pbft_senders  # (2, n, 1, B): prepares, commits sent
            senders[0, :, 0], senders[1, :, 0] = prepare, commit
            arrival = np.where(link & senders, delays[1:], _INF)
            # completion of each phase at each node, (3, n, B): the pre-prepare (the primary
            # at once), the vote completing a quorum of prepares, of commits
            done, times = self._pbft_done, self._pbft_times
            done[0], done[1], done[2] = has_pp, prepared, local
            times[0] = np.where(pre_link, delays[0].reshape(-1).take(line), _INF)
            times[0][is_p] = 0.0
            times[1:] = kth_smallest(arrival, 2 * f, axis=1)
            phase = kth_smallest(np.where(done, times, _INF), 2 * f + 1, axis=1)  # (3, B)
            latency = np.where(ok, waited + (phase[0] + phase[1] + phase[2]), latency)
        fail = np.where(no_primary, np.int8(PRIMARY_OFFLINE), np.int8(NO_QUORUM))
        reason = np.where(valid & ~ok[:, None], fail[:, None], reason)
        self._top += ok
        extra = self._update_heights(online, local & ok)  # no malicious nodes in PBFT
        return BatchedConsensus(valid & ok[:, None], reason, latency, n_online / n, changes, extra)

    # ------------------------------------------------------------------ SBET
    def _sbet(
        self,
        period: int,
        net: _Round,
        seller: NDArray[np.integer],
        valid: Bool,
        n_live: I64,
        reason: NDArray[np.int8],
    ) -> BatchedConsensus:
        """One SBET block per copy (``SBETProtocol.decide_transactions``)."""
        n, rows = self._n, self._rows
        adm = valid
        if self.params.block_size < valid.shape[1]:  # DataPlane.admit: the first block_size
            adm = valid & (np.cumsum(valid, axis=1) <= self.params.block_size)
            reason = np.where(valid & ~adm, np.int8(BLOCK_FULL), reason)
        origin = self._node_of.take(seller, mode="clip")  # (B, T): the recording node
        slot = origin * rows.size + rows[:, None]  # (B, T) into (n, B)
        per_origin = np.bincount(slot[adm], minlength=n * rows.size).reshape(n, -1)
        n_adm = per_origin.sum(axis=0)
        # weighted counts are at most n T: int16 is exact and cheaper to contract if it fits
        weight_type = np.int16 if n * adm.shape[1] < 2**15 else np.int64
        children = self._children
        if children is not None:
            # each transaction has its own interruptions: a row per transaction
            width = adm.shape[1]
            groups = _Groups(
                np.ascontiguousarray(adm.T),
                adm.T.astype(weight_type),
                np.ascontiguousarray(origin.T),
                self._interrupted(children, adm, origin),
            )
            slot = np.arange(width) * rows.size + rows[:, None]
        else:  # the transactions of one origin hold the same copies: a row per origin node
            groups = _Groups(per_origin > 0, per_origin.astype(weight_type), None, None)
        blk = _SBETBlock(self, net, period, per_origin, groups, n_adm > 0).run()
        tx_reason = blk.reason.reshape(-1)[slot]  # (B, T)
        ok = tx_reason == 0
        ok &= adm
        reason = np.where(adm, tx_reason, reason)  # admitted ones had no reason yet
        n_valid = n_adm if adm is valid else _count(valid)
        n_ok = blk.committed
        extra = {
            "safety_violation": np.full(rows.size, float(3 * self._n_mal >= n)),
            "committed_share": np.where(n_live > 0, n_ok / np.maximum(n_live, 1), 1.0),
            "query_accuracy": np.where(n_valid > 0, n_ok / np.maximum(n_valid, 1), 1.0),
            "recovered": blk.recovered.astype(np.float64),
            "missing_copies": blk.missing.astype(np.float64),
            "tampered": blk.tampered.astype(np.float64),
            "creator": blk.creator.astype(np.float64),
        }
        extra |= self._update_nodes(net.online, blk.holders, blk.altered, n_ok > 0)
        share = self._tally("ib->b", net.online) / n
        return BatchedConsensus(ok, reason, blk.latency_ms, share, blk.view_changes, extra)

    def _interrupted(self, children: _ChildBuffer, adm: Bool, origin: NDArray[np.integer]) -> Bool:
        """``DataPlane.interrupted`` per copy, shape (T, n, B) (rows of admitted trades)."""
        n, rows = self._n, self._rows
        buf, start = children.take(_count(adm) * n)
        rank = np.maximum(np.cumsum(adm, axis=1) - 1, 0).T  # (T, B): the k-th admitted: row k
        index = start + rank[:, None, :] * n + self._col  # (T, n, B)
        index = np.minimum(index, buf.shape[1] - 1) + (rows * buf.shape[1])
        keys = buf.reshape(-1)[index]
        keys[origin.T[:, None, :] == self._col] = 2.0  # the origin always keeps its own
        order = keys.argsort(axis=1).argsort(axis=1)
        out: Bool = (order < self._n_missing) & adm.T[:, None, :]
        return out


def _count(x: Bool) -> I64:
    """Number of True along the last axis (a matmul: cheaper than a reduction on short rows)."""
    out: I64 = np.matmul(x, np.ones(x.shape[-1], dtype=np.int64))
    return out


def _any(x: Bool) -> Bool:
    """Any True along the last axis (a boolean matmul)."""
    out: Bool = np.matmul(x, np.ones(x.shape[-1], dtype=bool))
    return out


class _Round:
    """One period's network draw of every copy: online nodes, links and delays on demand.

    A link is "delivered and both ends online" (``RoundDraw.delivered`` and ``online``); a
    delay is ``NetworkModel.delays_ms`` of the message, computed only where gathered.
    """

    def __init__(self, chain: BatchedChain) -> None:
        self.c = chain
        self.flat = chain._draws.flat  # this period's draws (B, D), flattened
        self.online = chain._online(self.flat[chain._online_u])  # (n, B)
        self._both_on: Bool | None = None  # (n, n, B): both ends online, not a self-message

    def jitter_at(self, u_index: I64) -> F64:
        """Exponential jitters (ms) of the messages whose loss uniforms are at ``u_index``."""
        c = self.c
        u = self.flat.take(u_index + c._jitter_at)
        out: F64 = np.log1p(np.negative(u, out=u), out=u)  # in place: log1p(-u)
        out *= -c.params.jitter_ms
        return out

    def _index(self, phases: tuple[int, ...]) -> I64:
        """Offsets of the loss uniforms of some phases in the period draw, (m, n, n, B)."""
        c = self.c
        index = c._full_index.get(phases)
        if index is None:
            index = c._full_index[phases] = c._full_u[list(phases)] + c._row_start
        return index

    def both_on(self) -> Bool:
        """Shape (n, n, B), bool: both ends of a message online, and not a self-message."""
        if self._both_on is None:
            self._both_on = self.c._off_diagonal & self.online[:, None] & self.online[None]
        return self._both_on

    def full(self, phases: tuple[int, ...]) -> tuple[Bool, F64]:
        """Links and delays (ms) of every message of some phases, (m, n, n, B) each.

        Indexed [phase, sender, receiver, copy]; one gather for all the phases.
        """
        c = self.c
        index = self._index(phases)
        link: Bool = self.flat.take(index) >= c.params.message_loss
        link &= self.both_on()
        jitter = self.jitter_at(index)
        if c._geo.slow is not None:
            jitter *= c._geo.slow
        jitter += c._geo.base_ms  # base + jitter
        return link, jitter

    def lines(self, i: I64, spec: _Lines) -> tuple[Bool, F64]:
        """Some phases' rows or columns at node i[b] (online), (m, n, B) each: link, delay.

        The link at j == i is False (no self-messages); the peer j must be online.
        """
        c = self.c
        u_index = spec.u + i * spec.u_step
        peer = self.online & (c._col != i)
        link: Bool = (self.flat.take(u_index) >= c.params.message_loss) & peer
        # base delays are symmetric ([i, j] = [j, i]): rows and columns gather row i
        line = i * c._line_step + c._line_at  # (n, B) into the (n, n, B) link arrays
        jitter = self.jitter_at(u_index)
        if c._slow_flat is not None:
            jitter *= c._slow_flat.take(line)
        jitter += c._base_flat.take(line)  # base + jitter
        return link, jitter


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


class _Outcome(NamedTuple):
    """One SBET block per copy (``SBETBlock``; the empty outcome where nothing is admitted)."""

    reason: NDArray[np.int8]  # (G, B): 0 committed, else a reason (present rows only)
    latency_ms: F64
    view_changes: I64
    creator: I64
    recovered: NDArray[np.integer]  # (B,) each, counts of transactions
    missing: NDArray[np.integer]
    tampered: NDArray[np.integer]
    committed: NDArray[np.integer]
    holders: Bool  # (n, B): all False if nothing verified
    altered: Bool  # (B,): the creator is malicious and something verified


class _SBETBlock:
    """Steps 1-8 of :mod:`mgenv.chain.sbet` (``run_block``) for every copy, copies last.

    Arrays: (n, B) per node, (n, n, B) per link [sender, receiver], (G, n, B) per row
    (:class:`_Groups`) and node; a copy is "held" (not missing) and "true" (not altered).
    Counts of booleans are integer contractions (``_tally``): any summation order is exact.
    """

    def __init__(
        self,
        chain: BatchedChain,
        net: _Round,
        period: int,
        per_origin: I64,
        grp: _Groups,
        run: Bool,
    ) -> None:
        self.c, self.net, self.period, self.grp = chain, net, period, grp
        self.per_origin = per_origin
        self.go_run = run  # (B,): something was admitted (else the outcome is empty)
        # every message of the phases sent to all: [DATA, HASH]
        self.link, self.delay = net.full((DATA, HASH))

    def run(self) -> _Outcome:
        """The block of every copy."""
        c, net, grp = self.c, self.net, self.grp
        col, online = c._col, net.online
        q, t_max = c._q, c.params.t_max_ms
        held, data_ms = self._broadcast()
        true = held & c._honest if c._n_mal else held
        missing = _weigh("gb,gib->b", grp.weight, ~held & online)
        p, no_p, skips = self._coordinator()
        # 2. election [ELECT, YES] and 3. announcement [ANNOUNCE]
        l_p, d_p = net.lines(p, c._at_p)
        rt = d_p[0] + d_p[2]
        arrival = np.where(l_p[0] & l_p[2], rt, _INF)
        election = close_ms(arrival, q - 1, t_max)
        yes = arrival <= election
        yes &= c._able
        is_p = col == p
        announced = l_p[1] | is_p
        creator, found, changes = self._creator(rt, yes, announced)
        changes += skips
        elapsed = data_ms + changes * t_max + election
        run = self.go_run
        go = found & ~no_p & run
        # 4. serial lists [LISTS]; e_c's own arrival is inf (no self-link)
        l_c, d_c = net.lines(creator, c._at_c)  # COMPLETE, BLOCK, LISTS, INTEGRITY, COMMIT
        is_c = col == creator
        d_an = np.where(is_p, 0.0, d_p[1])  # e_p knows at once
        arrival = np.where(announced & l_c[2], d_an + d_c[2], _INF)
        lists = close_ms(arrival, q - 1, t_max)
        listed = arrival <= lists
        listed |= is_c
        complete = (held & listed).any(axis=1)  # (G, B)
        complete &= go
        # 5. redundant exchange [COMPLETE, REQUEST, REPLY]
        got = l_c[0] | is_c
        need = got & ~held
        need &= complete[:, None]
        if need.any():
            held, true, recovered, ready = self._recover(held, true, need)
            arrival = np.where(is_c, ready, d_c[0] + ready + d_c[3])
        else:
            recovered = np.zeros(c._rows.size, dtype=np.int64)
            arrival = np.where(is_c, 0.0, d_c[0] + d_c[3])  # ready = 0: x + 0.0 is x
        # 6. integrity [INTEGRITY]
        sent = got & l_c[3]
        sent |= is_c
        exchange = close_ms(np.where(sent, arrival, _INF), q, t_max)
        # 7. candidate [BLOCK], hash votes [HASH], commits [COMMIT]
        own = held.reshape(held.shape[0], -1).take(creator * c._rows.size + c._rows, axis=1)
        getter = l_c[1] | is_c
        getter &= c._voters
        if c._n_mal:
            altered = c._malicious.reshape(-1).take(creator * c._rows.size + c._rows)
            in_block = complete & (own | altered)
            voter = np.where(altered, c._malicious, c._honest) & getter
            vote = in_block[:, None] & (true | altered) & voter  # (G, n, B): votes "Yes"
        else:
            altered = None
            in_block = complete & own
            vote = in_block[:, None] & held
            vote &= getter
        n_block = _weigh("gb,gb->b", grp.weight, in_block)
        commits, voting = self._vote(is_c, vote, n_block, l_c, d_c)
        # 8. verdict
        verified = commits >= q
        verified &= in_block
        n_verified = _weigh("gb,gb->b", grp.weight, verified)
        some = go & (n_verified > 0)
        dissent = (verified[:, None] & ~vote).any(axis=0)  # (n, B): "No" on a verified one
        holders = ~dissent
        holders |= is_c
        holders &= some
        latency = np.where(no_p, data_ms, elapsed)
        latency = np.where(go, elapsed + lists + exchange + voting, latency)
        latency = np.where(run, latency, 0.0)
        # reasons: PRIMARY_OFFLINE unless go; else 0, TAMPERED, NO_QUORUM or MISSING
        code = _u8(in_block) + _u8(verified)  # 0 missing, 1 no quorum, 2 verified
        code += np.where(go, np.uint8(0), np.uint8(3))
        if altered is None:
            reason = _REASONS.take(code)
            tampered = np.zeros(c._rows.size, dtype=np.int64)
            committed = np.where(go, n_verified, 0)
            altered_some = np.zeros(c._rows.size, dtype=bool)
        else:
            code += np.where(altered, np.uint8(6), np.uint8(0))
            reason = _REASONS.take(code)
            tampered = np.where(go & altered, n_verified, 0)
            committed = np.where(go & ~altered, n_verified, 0)
            altered_some = altered & some
        return _Outcome(
            reason,
            latency,
            np.where(no_p | ~run, 0, changes),
            np.where(go, creator, -1),
            np.where(go, recovered, 0),
            missing,
            tampered,
            committed,
            holders,
            altered_some,
        )

    def _coordinator(self) -> tuple[I64, Bool, I64]:
        """Step 1: e_p (the first online node from period % n on), no e_p (B,), skips (B,)."""
        c, online = self.c, self.net.online
        n = c._n
        first = self.period % n
        ring = online[c._ring[first]]  # (n, B): online, from node ``first`` on
        skips = np.argmax(ring, axis=0)
        no_p = ~ring.any(axis=0)
        p = skips + first
        p %= n
        return p, no_p, skips

    def _creator(self, rt: F64, yes: Bool, announced: Bool) -> tuple[I64, Bool, I64]:
        """Steps 2-3: e_c, whether one was found, and the candidates skipped (B,) each.

        The candidates in eq. (7)'s order (key descending, ties by node index: the stable
        argsort of ``-key``), the first one that got the announcement (and, with colluders,
        is honest or backed by a malicious quorum). Without building the order: e_c is the
        fittest candidate with the largest key, the skips are the candidates ranked before
        it. Where no candidate fits, e_c is arbitrary (unused) and the skips are all the
        candidates.
        """
        c, net = self.c, self.net
        col, rows = c._col, c._rows
        key = rt * c._storage
        if c.params.creator_election == "proportional":
            extra_u = net.flat[c._extra_u]
            key = np.log(key + 1e-300) + -np.log(-np.log(extra_u))
            if (yes & (key == -_INF)).any():  # -key ties the non-candidates' inf: sort
                return self._creator_by_sort(key, yes, announced)
        fit = announced
        if c._n_mal:
            strong = c._tally("ib->b", c._malicious & net.online & c._voters) >= c._q
            fit = announced & (c._honest | strong)
        fit = fit & yes
        creator: I64 = np.argmax(np.where(fit, key, -_INF), axis=0)  # the first of equal keys
        found: Bool = np.logical_or.reduce(fit, axis=0)
        top = key.reshape(-1).take(creator * rows.size + rows)
        before = key > top
        before |= (key == top) & (col < creator)
        before &= yes
        n_yes = c._tally("ib->b", yes)
        changes = np.where(found, c._tally("ib->b", before), n_yes).astype(np.int64)
        return creator, found, changes

    def _creator_by_sort(self, key: F64, yes: Bool, announced: Bool) -> tuple[I64, Bool, I64]:
        """``_creator`` by the stable argsort itself (some candidate's key is -inf)."""
        c, net, rows, col = self.c, self.net, self.c._rows, self.c._col
        order = np.argsort(np.where(yes, -key, _INF), axis=0, kind="stable")
        n_yes = yes.sum(axis=0)
        if c._n_mal:
            strong = (c._malicious & net.online & c._voters).sum(axis=0) >= c._q
            fit = announced & (c._honest | strong)
        else:
            fit = announced
        ok = fit[order, rows] & (col < n_yes)
        at = np.argmax(ok, axis=0)
        found = ok[at, rows]
        return order[at, rows], found, np.where(found, at, n_yes)

    def _broadcast(self) -> tuple[Bool, F64]:
        """``DataPlane.broadcast``: who holds each row's copy (G, n, B), duration (B,) ms."""
        c, grp = self.c, self.grp
        t_max = c.params.t_max_ms
        link, delay = self.link[0], self.delay[0]  # (n, n, B)
        transit = delay + (c._header_ms + c._ms_per_record * self.per_origin)[:, None]
        in_time = transit <= t_max
        in_time &= link
        last = np.where(in_time, c._geo.wait_ms + transit, 0.0).max(axis=(0, 1))
        data_ms = np.maximum(last, t_max)
        if grp.origin is None:  # row g: the transactions of origin g
            held: Bool = in_time | c._eye
            held &= grp.present[:, None]
            return held, data_ms
        nb = c._rows.size
        sent = in_time.reshape(-1)[(grp.origin[:, None] * c._n + c._col) * nb + c._rows]
        held = (sent | (grp.origin[:, None] == c._col)) & grp.present[:, None]
        if grp.interrupted is not None:
            held &= ~grp.interrupted
        return held, data_ms

    def _recover(
        self, held: Bool, true: Bool, need: Bool
    ) -> tuple[Bool, Bool, NDArray[np.integer], F64]:
        """Step 5's exchange (``sbet_steps.recover``); where nothing is needed it is a no-op.

        Returns held, true (G, n, B) after it, the copies honest nodes recovered (B,) and
        when each node's exchange ended (n, B) (0 for nodes that requested nothing).

        Computed on the compact list of requests (g, i, b) (few: a copy is missing only where
        a message was lost or a node was offline), each against every holder j, (n, M):
        request i -> j, answer j -> i after eq. (6)'s wait, drawn straight from the period's
        uniforms. Base delays and waits are symmetric, so [i, j] serves for [j, i].
        """
        c, w, net = self.c, self.grp.weight, self.net
        n, nb, q, t_max = c._n, c._rows.size, c._q, c.params.t_max_ms
        size_ms = c._header_ms + c._ms_per_record * _weigh("gb,gib->ib", w, need)
        at = np.flatnonzero(need)  # requests, flat in (G, n, B)
        gi, b = np.divmod(at, nb)
        i = gi % n
        i_b = i * nb + b  # (M,): [i, b] in (n, B)
        j_b = c._col_nb + b  # (n, M): [j, b] in (n, B)
        i_j_b = i * (n * nb) + j_b  # (n, M): [i, j, b] in (n, n, B)
        # loss uniforms of the requests i -> j (n rows) and answers j -> i (n rows)
        both = c._ask_u + (b * c._draw_size + i * c._ask_step)  # (2n, M)
        answered = net.flat.take(both) >= c.params.message_loss
        jitter = net.jitter_at(both)
        if c._slow_flat is not None:
            jitter *= np.tile(c._slow_flat.take(i_j_b), (2, 1))
        base = c._base_flat.take(i_j_b)
        transit = base + jitter[:n] + (base + jitter[n:]) + size_ms.reshape(-1).take(i_b)
        answered = answered[:n] & answered[n:]
        # both ends online and j != i (requesters are online: they got e_c's list)
        answered &= net.both_on().reshape(-1).take(i_j_b)
        answered &= transit <= t_max
        waited = transit + c._geo.wait_ms.reshape(-1).take(i_j_b)
        # a recovery completes at its q-th true copy (finite iff q true copies came)
        j_g_b = (gi - i) * nb + j_b  # (n, M): [g, j, b] in (G, n, B)
        true_g = true.reshape(-1).take(j_g_b)
        done = kth_smallest(np.where(true_g & answered, waited, _INF), q)  # (M,)
        ask = c._honest.reshape(-1).take(i_b) if c._n_mal else np.ones(at.size, dtype=bool)
        got = done < _INF
        got &= ask
        got_true = np.zeros(need.shape, dtype=bool)
        got_true.reshape(-1)[at] = got
        held2, true2 = held | got_true, true | got_true
        if c._n_mal:
            n_true = c._tally("jm->m", true_g & answered)
            held_g = held.reshape(-1).take(j_g_b)
            n_alt = c._tally("jm->m", held_g & ~true_g & answered)
            alt = np.zeros(need.shape, dtype=bool)
            alt.reshape(-1)[at] = (ask & (n_alt >= q)) | (~ask & ((n_true > 0) | (n_alt > 0)))
            held2, true2 = held2 | alt, true2 & ~alt
        # a node that cannot recover gives up at its timer, or at the last answer if later
        give_up = np.maximum(np.where(answered, waited, 0.0).max(axis=0), t_max)  # (M,)
        ended = np.zeros(need.shape)
        ended.reshape(-1)[at] = np.where(ask, np.where(got, done, give_up), 0.0)
        recovered = _weigh("gb,gib->b", w, got_true)
        return held2, true2, recovered, ended.max(axis=0)

    def _vote(
        self, is_c: Bool, vote: Bool, n_block: NDArray[np.integer], l_c: Bool, d_c: F64
    ) -> tuple[NDArray[np.integer], F64]:
        """Step 7 (``sbet_steps.vote``): commits (G, B) reaching e_c and the vote time (B,)."""
        c = self.c
        q, t_max = c._q, c.params.t_max_ms
        hash_link = self.link[1]  # (n, n, B)
        # own hash included: a "Yes" node has q matching hashes iff q - 1 others reached it
        ready = c._tally("gsb,srb->grb", vote, hash_link) >= q - 1
        ready &= vote
        to_c = l_c[4] | is_c
        commits = c._tally("gib,ib->gb", ready, to_c)  # (G, B)
        passed = (commits >= q).any(axis=0)
        if not passed.any():
            never: F64 = np.full(c._rows.size, t_max)
            return commits, never
        block_at = d_c[1] + (c._header_ms + c._ms_per_record * n_block)
        block_at = np.where(is_c, 0.0, block_at)
        voting: Bool = np.logical_or.reduce(vote, axis=0)  # (n, B): sent a hash list
        hash_at = np.where(hash_link & voting[:, None], block_at[:, None] + self.delay[1], _INF)
        hashed = np.maximum(block_at, kth_smallest(hash_at, q - 1))
        commit_at = np.where(is_c, hashed, hashed + d_c[4])
        committing = ready.any(axis=0)
        committing &= to_c
        done = kth_smallest(np.where(committing, commit_at, _INF), q)
        out: F64 = np.where(passed, done, t_max)
        return commits, out
