"""Compiled kernels of the data plane (:mod:`mgenv.chain.dataplane`), shared by SBET, SPFT, PoS.

Each kernel mirrors one numpy function of the data plane or of the network model, loop by
loop, and gives bit-identical results (see :mod:`mgenv._jit`): the same elementwise
expressions in the same order, and maxima and k-th smallest values (which do not depend on the
order of evaluation). They work on one period of n nodes and B admitted transactions and are
called from the protocols' whole-period kernels (:mod:`mgenv.chain.kernels_sbet`), never from
Python one by one.

Inputs the kernels share:

* ``u``: shape (D,), the period's single network draw ``rng.random(D)``, in the layout of
  :mod:`mgenv.chain.network` (``online`` n | loss P n^2 | jitter P n^2 | extra E);
* ``lj``: shape (P n^2,), ``np.log1p(-jitter uniforms)``, computed by numpy: a compiled log1p
  need not round as numpy's (which may use SIMD code), so every transcendental function stays
  in numpy;
* the plane's constants packed once per protocol (:class:`PackedPlane`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv._jit import kernel
from mgenv.chain.dataplane import ALTERED, MISSING, TRUE
from mgenv.chain.types import BLOCK_FULL, COMMITTED, TAMPERED, TxOutcome

if TYPE_CHECKING:
    from mgenv.chain.dataplane import DataPlane

BASE, SLOW, WAIT = 0, 1, 2  # planes of ``PackedPlane.geo``
MALICIOUS, ABLE, VOTERS = 0, 1, 2  # rows of ``PackedPlane.nodes``
T_MAX, HEADER, RECORD, LOSS, JITTER = 0, 1, 2, 3, 4  # entries of ``PackedPlane.fc``
QUORUM, BLOCK_SIZE, N_MISSING = 0, 1, 2  # entries of ``PackedPlane.ic``
_INF: Final = np.inf


class PackedPlane(NamedTuple):
    """A data plane's fixed constants in a few contiguous arrays (fewer kernel arguments).

    Attributes:
        geo: Shape (3, n, n), float64 [sender, receiver]: ``BASE`` delay without jitter
            (DDoS applied), ``SLOW`` delay multiplier (ones if no link is slowed), ``WAIT``
            eq. (6)'s waiting time; ms.
        nodes: Shape (3, n), bool: ``MALICIOUS``, ``ABLE`` (would take on the block),
            ``VOTERS`` (not withholding).
        fc: Shape (5,), float64: ``T_MAX`` t_max (ms), ``HEADER`` a header's transmission
            time (ms), ``RECORD`` a stored transaction's (ms), ``LOSS`` message loss
            probability, ``JITTER`` mean jitter (ms).
        ic: Shape (3,), int64: ``QUORUM`` q, ``BLOCK_SIZE``, ``N_MISSING`` nodes each
            transaction misses by interruption.
    """

    geo: NDArray[np.float64]
    nodes: NDArray[np.bool_]
    fc: NDArray[np.float64]
    ic: NDArray[np.int64]


def pack_plane(plane: DataPlane, voters: NDArray[np.bool_]) -> PackedPlane:
    """The constants of ``plane`` (and its network) for the kernels.

    Args:
        plane: The data plane.
        voters: Shape (n,), bool: nodes that send votes.
    """
    net = plane.network
    n = plane.n_nodes
    slow = net.slow if net.slow is not None else np.ones((n, n))
    return PackedPlane(
        np.ascontiguousarray(np.stack((net.base_delay_ms, slow, plane.wait_ms)), np.float64),
        np.ascontiguousarray(np.stack((plane.malicious, plane.able, voters)), np.bool_),
        np.array(
            [plane.t_max_ms, plane.header_ms, plane.ms_per_record, net.message_loss, net.jitter_ms]
        ),
        np.array([plane.quorum, plane.block_size, plane.n_missing], np.int64),
    )


class DrawLayout(NamedTuple):
    """Where the parts of a period's network draw ``rng.random(size)`` lie.

    The layout of :meth:`mgenv.chain.network.NetworkModel.draw_round` (its module docstring):
    ``online`` n | loss P n^2 | jitter P n^2 | extra E.

    Attributes:
        size: D = n + 2 P n^2 + E.
        online: The online uniforms.
        jitter: The jitter uniforms.
        extra: The extra uniforms.
    """

    size: int
    online: slice
    jitter: slice
    extra: slice


def draw_layout(n: int, n_phases: int, n_extra: int) -> DrawLayout:
    """The layout for n nodes, P phases and E extra uniforms."""
    loss_end = n + n_phases * n * n
    jitter_end = loss_end + n_phases * n * n
    return DrawLayout(
        jitter_end + n_extra, slice(0, n), slice(loss_end, jitter_end), slice(jitter_end, None)
    )


def extra_of_counts(
    safety_violation: bool,
    n_tx: int,
    n_valid: int,
    n_committed: int,
    recovered: int,
    missing: int,
    tampered: int,
    creator: int,
) -> dict[str, float]:
    """``DataPlane.extra`` from counts (the compiled paths count in their kernels).

    Args:
        safety_violation: The protocol's malicious nodes are beyond its bound.
        n_tx: The period's transactions (T).
        n_valid: The valid ones among them.
        n_committed: The committed ones.
        recovered: Copies honest nodes recovered.
        missing: Copies missing after the broadcast.
        tampered: Transactions verified with an altered copy.
        creator: Block creator, primary or forger (-1 if none).
    """
    return {
        "safety_violation": float(safety_violation),
        "committed_share": n_committed / n_tx if n_tx else 1.0,
        "query_accuracy": n_committed / n_valid if n_valid else 1.0,
        "recovered": float(recovered),
        "missing_copies": float(missing),
        "tampered": float(tampered),
        "creator": float(creator),
    }


def empty_outcome(
    valid: NDArray[np.bool_], online: NDArray[np.bool_], safety_violation: bool
) -> TxOutcome:
    """``DataPlane.open_round``'s ``empty``: the outcome of a period with no valid transaction.

    Args:
        valid: Shape (T,), bool, none of them True.
        online: Shape (n,), bool: the period's online nodes.
        safety_violation: The protocol's malicious nodes are beyond its bound.
    """
    share = float(np.count_nonzero(online)) / online.size
    extra = extra_of_counts(safety_violation, valid.size, 0, 0, 0, 0, 0, -1)
    n_tx = valid.size
    return TxOutcome(
        np.zeros(n_tx, dtype=bool), np.zeros(n_tx, dtype=np.int8), 0.0, share, 0, extra
    )


@kernel
def sorts_before(a: float, b: float) -> bool:
    """Whether numpy's sort puts ``a`` strictly before ``b`` (NaN after every number)."""
    return a < b or (b != b and a == a)


@kernel
def kth_smallest(values: NDArray[np.float64], k: int) -> float:
    """``dataplane.kth_smallest``: the k-th smallest (1-based), inf if out of range; in place.

    Insertion sort: the arrays hold one value per node (n <= 256) and are mostly short.
    """
    m = values.size
    if k < 1 or k > m:
        return _INF
    for i in range(1, m):
        v = values[i]
        j = i - 1
        while j >= 0 and sorts_before(v, values[j]):
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v
    return float(values[k - 1])


@kernel
def close_ms(arrival: NDArray[np.float64], k: int, t_max: float) -> float:
    """``dataplane.close_ms``: the k-th arrival if within t_max, else t_max; 0 if k <= 0."""
    if k <= 0:
        return 0.0
    kth = kth_smallest(arrival, k)
    return kth if kth <= t_max else t_max


@kernel
def maximum(a: float, b: float) -> float:
    """``np.maximum`` of two floats: NaN propagates (unlike Python's ``max``)."""
    if a != a:
        return a
    return a if a >= b else b


@kernel
def admit(
    valid: NDArray[np.bool_],
    sellers: NDArray[np.int64],
    n: int,
    block_size: int,
    reason: NDArray[np.int8],
) -> tuple[NDArray[np.int64], NDArray[np.int64], int]:
    """``DataPlane.admit``: the first ``block_size`` valid transactions and their origins.

    Args:
        valid: Shape (T,), bool: passed the signature and validity checks.
        sellers: Shape (T,): seller's participant index.
        n: Number of nodes.
        block_size: Maximum transactions in a block.
        reason: Shape (T,), int8, zeros: receives BLOCK_FULL for the valid transactions
            beyond the block.

    Returns:
        ``(rows (B,), origin (B,) = seller % n, number of valid transactions)``.
    """
    n_tx = valid.size
    rows = np.empty(min(n_tx, block_size), np.int64)
    n_adm = 0
    n_valid = 0
    for t in range(n_tx):
        if valid[t]:
            n_valid += 1
            if n_adm < block_size:
                rows[n_adm] = t
                n_adm += 1
            else:
                reason[t] = BLOCK_FULL
    rows = rows[:n_adm]
    origin = np.empty(n_adm, np.int64)
    for b in range(n_adm):
        origin[b] = sellers[rows[b]] % n  # Python's modulo, as numpy's on intp
    return rows, origin, n_valid


@kernel
def links(
    u: NDArray[np.float64], online: NDArray[np.bool_], loss: float, n_phases: int
) -> NDArray[np.bool_]:
    """``draw.delivered & (online[:, None] & online)``, shape (P, n, n) [phase, sender, receiver].

    ``NetworkModel.draw_round``: a message is delivered iff its loss uniform is >= the loss
    probability and it is not to the sender itself. (Bitwise ``&`` without branches.)
    """
    n = online.size
    link = np.empty((n_phases, n, n), np.bool_)
    at = n
    for k in range(n_phases):
        for j in range(n):
            for i in range(n):
                link[k, j, i] = (u[at + i] >= loss) & (j != i) & online[j] & online[i]
            at += n
    return link


@kernel
def delays(
    lj: NDArray[np.float64], geo: NDArray[np.float64], jitter_ms: float, n_phases: int
) -> NDArray[np.float64]:
    """``NetworkModel.delays_ms``: ``base + (-jitter_ms * log1p(-u)) * slow``, (P, n, n), ms.

    Multiplying by a slow factor of 1.0 is exact, so links that are not slowed need no branch.
    """
    n = geo.shape[1]
    out = np.empty((n_phases, n, n))
    at = 0
    for k in range(n_phases):
        for j in range(n):
            for i in range(n):
                out[k, j, i] = geo[BASE, j, i] + (-jitter_ms * lj[at]) * geo[SLOW, j, i]
                at += 1
    return out


@kernel
def interruptions(
    keys: NDArray[np.float64], origin: NDArray[np.int64], n_missing: int
) -> NDArray[np.bool_]:
    """``DataPlane.interrupted`` from its uniforms: the ``n_missing`` smallest non-origin keys.

    numpy ranks by ``keys.argsort(axis=1).argsort(axis=1)`` with the origin's key set to 2.0;
    here the rank is the count of smaller keys plus the equal ones before (ties between two
    uniforms, probability ~n^2 / 2^53 a row, would be ordered by index).

    Args:
        keys: Shape (B, n), the uniforms ``rng.random((B, n))`` (not modified).
        origin: Shape (B,), origin node of each transaction.
        n_missing: Nodes each transaction misses.
    """
    n_tx, n = keys.shape
    cut = np.zeros((n_tx, n), np.bool_)
    for t in range(n_tx):
        for i in range(n):
            if i == origin[t]:
                continue  # key 2.0: ranked last, never cut (n_missing <= n - 1)
            v = keys[t, i]
            rank = 0
            for j in range(n):
                if j != origin[t]:
                    w = keys[t, j]
                    if w < v or (w == v and j < i):
                        rank += 1
            cut[t, i] = rank < n_missing
    return cut


@kernel
def broadcast(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    origin: NDArray[np.int64],
    cut: NDArray[np.bool_],
    nodes: NDArray[np.bool_],
    geo: NDArray[np.float64],
    fc: NDArray[np.float64],
) -> tuple[NDArray[np.int8], float]:
    """``DataPlane.broadcast`` on phase 0 of ``link`` and ``delay`` (Alg. 1, lines 1-2; eq. 6).

    Args:
        link: Shape (P, n, n), bool; phase 0 is the data broadcast.
        delay: Shape (P, n, n), ms.
        origin: Shape (B,), origin node of each transaction.
        cut: Shape (B, n), bool interruptions, or shape (0, n) for none.
        nodes: ``PackedPlane.nodes`` (malicious nodes store the altered copy).
        geo: ``PackedPlane.geo`` (its waiting times).
        fc: ``PackedPlane.fc``.

    Returns:
        ``(copies (B, n) int8, round duration ms)``.
    """
    t_max, header_ms, ms_per_record = fc[T_MAX], fc[HEADER], fc[RECORD]
    n = nodes.shape[1]
    n_tx = origin.size
    count = np.zeros(n, np.int64)
    for b in range(n_tx):
        count[origin[b]] += 1
    in_time = np.zeros((n, n), np.bool_)
    last = 0.0
    for j in range(n):
        head = header_ms + ms_per_record * count[j]
        for i in range(n):
            transit = delay[0, j, i] + head
            if link[0, j, i] and transit <= t_max:
                in_time[j, i] = True
                last = maximum(last, geo[WAIT, j, i] + transit)
    copies = np.zeros((n_tx, n), np.int8)
    for b in range(n_tx):
        o = origin[b]
        for i in range(n):
            if (in_time[o, i] or i == o) and not (cut.shape[0] > 0 and cut[b, i]):
                copies[b, i] = ALTERED if nodes[MALICIOUS, i] else TRUE
    return copies, last if last > t_max else t_max


@kernel
def count_missing(copies: NDArray[np.int8], online: NDArray[np.bool_]) -> int:
    """``np.count_nonzero((copies == MISSING) & online)``: copies missing at online nodes."""
    total = 0
    for b in range(copies.shape[0]):
        for i in range(copies.shape[1]):
            if copies[b, i] == MISSING and online[i]:
                total += 1
    return total


@kernel
def verdicts(
    rows: NDArray[np.int64],
    status: NDArray[np.int8],
    committed: NDArray[np.bool_],
    reason: NDArray[np.int8],
) -> tuple[int, int]:
    """``DataPlane.verdicts``' arrays, in place: ``reason[rows] = status``, committed ones.

    Args:
        rows: Shape (B,), the admitted transactions' positions.
        status: Shape (B,), int8: each admitted transaction's reason code from the block.
        committed: Shape (T,), bool, False: set where the status is COMMITTED.
        reason: Shape (T,), int8: from :func:`admit`.

    Returns:
        ``(committed count, count of status TAMPERED)``.
    """
    n_ok = 0
    n_tampered = 0
    for b in range(rows.size):
        reason[rows[b]] = status[b]
        if status[b] == COMMITTED:
            committed[rows[b]] = True
            n_ok += 1
        elif status[b] == TAMPERED:
            n_tampered += 1
    return n_ok, n_tampered
