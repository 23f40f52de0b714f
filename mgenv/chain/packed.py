"""What the compiled paths of the data-plane protocols share outside their kernels.

The protocols' fixed constants packed into a few contiguous arrays (a kernel call costs per
argument), the layout of the period's network draw, and the outcome and figures that
:class:`~mgenv.chain.dataplane.DataPlane` builds in numpy, built here from the kernels'
counts. Kernels: :mod:`mgenv.chain.kernels_dataplane` and the protocols' own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv.chain.types import TxOutcome

if TYPE_CHECKING:
    from mgenv.chain.dataplane import DataPlane

BASE, SLOW, WAIT = 0, 1, 2  # planes of ``PackedPlane.geo``
MALICIOUS, ABLE, VOTERS = 0, 1, 2  # rows of ``PackedPlane.nodes``
T_MAX, HEADER, RECORD, LOSS, JITTER = 0, 1, 2, 3, 4  # entries of ``PackedPlane.fc``
QUORUM, BLOCK_SIZE, N_MISSING = 0, 1, 2  # entries of ``PackedPlane.ic``
FC_SIZE, IC_SIZE = JITTER + 1, N_MISSING + 1  # the lengths of ``fc`` and ``ic``


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
    n = plane.n_nodes
    packed = PackedPlane(
        np.empty((3, n, n)),
        np.empty((3, n), dtype=bool),
        np.empty(FC_SIZE),
        np.empty(IC_SIZE, np.int64),
    )
    pack_plane_into(plane, voters, packed)
    return packed


def pack_plane_into(plane: DataPlane, voters: NDArray[np.bool_], out: PackedPlane) -> None:
    """:func:`pack_plane` into the arrays of ``out`` (views of a kernel's buffers, say).

    Every entry of ``out``'s four arrays is written (shapes as :class:`PackedPlane`'s).
    """
    net = plane.network
    geo, nodes, fc, ic = out
    geo[BASE] = net.base_delay_ms
    geo[SLOW] = net.slow if net.slow is not None else 1.0
    geo[WAIT] = plane.wait_ms
    nodes[MALICIOUS], nodes[ABLE], nodes[VOTERS] = plane.malicious, plane.able, voters
    fc[T_MAX], fc[HEADER], fc[RECORD] = plane.t_max_ms, plane.header_ms, plane.ms_per_record
    fc[LOSS], fc[JITTER] = net.message_loss, net.jitter_ms
    ic[QUORUM], ic[BLOCK_SIZE], ic[N_MISSING] = plane.quorum, plane.block_size, plane.n_missing


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


class Compiled(NamedTuple):
    """What a protocol's compiled path keeps (built on its first period).

    Attributes:
        plane: The packed data plane.
        layout: Where the parts of the period's network draw lie.
        no_keys: Shape (0, n): no interruption uniforms.
    """

    plane: PackedPlane
    layout: DrawLayout
    no_keys: NDArray[np.float64]


def compiled(plane: DataPlane, voters: NDArray[np.bool_], n_phases: int, n_extra: int) -> Compiled:
    """The :class:`Compiled` constants of a protocol on ``plane``.

    Args:
        plane: The data plane.
        voters: Shape (n,), bool: nodes that send votes.
        n_phases: Message phases P drawn per period.
        n_extra: Extra uniforms E drawn per period.
    """
    n = plane.n_nodes
    return Compiled(pack_plane(plane, voters), draw_layout(n, n_phases, n_extra), np.empty((0, n)))


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
