"""PBFT consensus (Castro & Liskov, 1999), one round per market period, vectorised over nodes.

Model of one period (n validator nodes, f = (n - 1) // 3, quorum 2f + 1):

1. **Leader.** The primary is ``view % n``. If it is offline and at least 2f + 1 nodes are
   online, views change to the next online node in index order; each skipped node counts as one
   view change and costs ``view_change_timeout_ms``. The view persists across periods (the
   leader stays until it fails). If the primary is offline and fewer than 2f + 1 nodes are
   online, no view change can complete (a NEW-VIEW needs 2f + 1 VIEW-CHANGE messages): the
   period's trades are rejected as ``"primary_offline"``. View-change messages are not subject
   to loss in this model.
2. **Pre-prepare.** The primary sends the block to every other node.
3. **Prepare.** Every non-withholding node holding the pre-prepare (the primary included)
   sends a prepare to every other node. A node is *prepared* when it holds the pre-prepare and
   received >= 2f prepares from other nodes (2f + 1 counting its own). (In Castro & Liskov the
   primary sends no prepare and the pre-prepare counts instead; the count here is the same,
   except that the primary's vote can be lost like any other.)
4. **Commit.** Every prepared, non-withholding node sends a commit to every other node. It
   *commits locally* when it received >= 2f commits from other nodes (2f + 1 with its own).
   A withholding node (drawn once, :mod:`mgenv.chain.adversary`) sends no prepare or commit
   votes, and so never counts as committing locally; as primary it still sends pre-prepares.
5. **Decision (a modelling choice).** The block commits when >= 2f + 1 nodes commit locally:
   a client waiting for 2f + 1 matching replies then accepts it, and a quorum of honest nodes
   holds it. Otherwise every trade of the period is rejected as ``"no_quorum"`` (no retry
   in a later period: the trades fall back to the grid). The nodes that committed locally
   hold the block (``last_round``); the others fetch it later (:mod:`mgenv.chain.nodeview`).

Messages are delivered only between online nodes and are each lost with ``message_loss``
(:mod:`mgenv.chain.network`). Signatures are checked once per period before the round.

Latency (a model, phase-synchronous): in each phase a node completes at the arrival time of
the vote that completes its quorum, the k-th smallest arrival among the votes delivered to it
(k = 1 for the pre-prepare, k = 2f for prepares and commits; the primary completes the
pre-prepare at 0); the phase lasts until the (2f + 1)-th node completes it. The block latency
is the sum of the three phase durations plus ``view_change_timeout_ms`` per view change. A
round that does not commit reports the view-change time plus one more timeout (the request
timer that expired); a round that cannot elect a leader reports one timeout.

Compiled path: with numba (:data:`mgenv._jit.ENABLED`), :meth:`PBFTProtocol.decide` runs the
whole round (online chain, leader, votes, latency) in one kernel,
:func:`mgenv.chain.kernels_pbft.pbft_round`, on the same draw, with bit-identical results.
The numpy functions here (:func:`select_primary`, :func:`count_votes`,
:func:`quorum_latency_ms`, :meth:`PBFTProtocol.run_round`) stay the reference and fallback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv.chain.adversary import draw_withholding
from mgenv.chain.kernels_pbft import COMMITTED as ROUND_COMMITTED
from mgenv.chain.kernels_pbft import (
    N_WORK_ROWS,
    NO_BLOCK,
    NO_LEADER,
    log1p_matches_numpy,
    pbft_round,
)
from mgenv.chain.network import NetworkModel, RoundDraw
from mgenv.chain.nodeview import NodeRound
from mgenv.chain.types import COMMITTED, NO_QUORUM, PRIMARY_OFFLINE, RoundOutcome

if TYPE_CHECKING:
    from mgenv.chain.params import ChainParams

_PHASE = np.arange(3)
_new = tuple.__new__


class Votes(NamedTuple):
    """Who voted and who completed each phase of one PBFT round (n nodes).

    Attributes:
        link: Shape (3, n, n), bool, [phase, sender, receiver]: a message sent would be
            delivered (not lost, receiver online).
        has_pre_prepare: Shape (n,), bool: node holds the pre-prepare (the primary does).
        prepare_senders: Shape (n,), bool: node sent prepares.
        prepared: Shape (n,), bool: node is prepared.
        commit_senders: Shape (n,), bool: node sent commits.
        committed: Shape (n,), bool: node committed locally.
    """

    link: NDArray[np.bool_]
    has_pre_prepare: NDArray[np.bool_]
    prepare_senders: NDArray[np.bool_]
    prepared: NDArray[np.bool_]
    commit_senders: NDArray[np.bool_]
    committed: NDArray[np.bool_]


def select_primary(online: NDArray[np.bool_], view: int, quorum: int) -> tuple[int, int]:
    """Leader of this period and the number of view changes needed to reach it.

    Args:
        online: Shape (n,), bool: node is online.
        view: Current view; the primary is ``view % n``.
        quorum: 2f + 1, the number of online nodes a view change needs.

    Returns:
        (primary, view_changes); primary is -1 if the primary is offline and fewer than
        ``quorum`` nodes are online (no view change can complete).
    """
    n = online.size
    primary = view % n
    if online[primary]:
        return primary, 0
    if np.count_nonzero(online) < quorum:
        return -1, 0
    order = (primary + np.arange(1, n)) % n
    skipped = int(np.argmax(online[order]))
    return int(order[skipped]), skipped + 1


def count_votes(
    online: NDArray[np.bool_],
    delivered: NDArray[np.bool_],
    primary: int,
    voters: NDArray[np.bool_],
    f: int,
) -> Votes:
    """Run the three PBFT phases as vote counts over boolean delivery masks.

    Vote counts are matrix-vector products: prepares received by node i =
    sum_j prepare_senders[j] * link[1, j, i].

    Args:
        online: Shape (n,), bool: node is online (the primary must be).
        delivered: Shape (3, n, n), bool, [phase, sender, receiver], no self-delivery.
        primary: Index of the (online) primary.
        voters: Shape (n,), bool: node sends prepare/commit votes (not withholding).
        f: Tolerated faulty nodes; thresholds are 2f votes from other nodes.

    Returns:
        The votes; the block commits iff ``count_nonzero(committed) >= 2f + 1``.
    """
    # Receiver online. The sender side needs no mask: only online nodes ever hold the
    # pre-prepare (the primary is online), so every sender below is online.
    link = delivered & online
    has_pp = link[0, primary].copy()
    has_pp[primary] = True
    prepare_senders = has_pp & voters
    prepared = np.matmul(prepare_senders, link[1], dtype=np.intp) >= 2 * f
    prepared &= has_pp
    commit_senders = prepared & voters
    committed = np.matmul(commit_senders, link[2], dtype=np.intp) >= 2 * f
    committed &= commit_senders
    return Votes(link, has_pp, prepare_senders, prepared, commit_senders, committed)


def quorum_latency_ms(votes: Votes, delays_ms: NDArray[np.float64], primary: int, f: int) -> float:
    """Sum over the three phases of the time the (2f + 1)-th node completes the phase (ms).

    Args:
        votes: Result of :func:`count_votes`.
        delays_ms: Shape (3, n, n), one-way delay of every message (ms).
        primary: Index of the primary.
        f: Tolerated faulty nodes.

    Returns:
        The latency (ms); inf if some phase has fewer than 2f + 1 completing nodes.
    """
    n = votes.has_pre_prepare.size
    senders = np.array((np.arange(n) == primary, votes.prepare_senders, votes.commit_senders))
    arrival = np.where(votes.link & senders[:, :, None], delays_ms, np.inf)  # (3, n, n)
    arrival.sort(axis=1)  # along senders: row k holds each receiver's (k+1)-th arrival
    kth = arrival[_PHASE, (0, 2 * f - 1, 2 * f - 1)]  # (3, n): arrival completing the quorum
    kth[0, primary] = 0.0
    done = np.array((votes.has_pre_prepare, votes.prepared, votes.committed))
    completion = np.where(done, kth, np.inf)  # (3, n)
    completion.sort(axis=1)
    phase_ms: list[float] = completion[:, 2 * f].tolist()
    return sum(phase_ms)


class PBFTProtocol:
    """PBFT as a chain protocol (see the module docstring for the model).

    Random streams: ``network_rng`` draws the node positions here and one
    :class:`~mgenv.chain.network.RoundDraw` per period; ``adversary_rng`` draws the withholding
    nodes here (:func:`~mgenv.chain.adversary.draw_withholding`).

    Args:
        params: Chain parameters (n_nodes >= 4).
        network_rng: The network stream (kept: drawn from every period).
        adversary_rng: The adversary stream.
    """

    min_nodes = 4

    def __init__(
        self,
        params: ChainParams,
        network_rng: np.random.Generator,
        adversary_rng: np.random.Generator,
    ) -> None:
        self.f = params.max_faulty
        self.timeout_ms = params.view_change_timeout_ms
        self.network = NetworkModel(params, network_rng)
        self.voters = ~draw_withholding(adversary_rng, params.n_nodes, params.n_withholding)
        self.view = 0
        self.malicious = np.zeros(params.n_nodes, dtype=bool)  # withholding only, no altering
        self.last_round: NodeRound | None = None  # who holds this period's block (nodeview)
        self._rng = network_rng

    def decide(self, has_block: bool) -> RoundOutcome:
        """Draw this period's network and run the round (if there is a block to agree on).

        Args:
            has_block: Whether any valid transaction was submitted this period.

        Returns:
            The round's outcome.
        """
        if _jit.ENABLED:
            return self._decide_compiled(has_block)
        return self.run_round(self.network.draw_round(self._rng), has_block)

    def _decide_compiled(self, has_block: bool) -> RoundOutcome:
        """:meth:`decide` with the round in one kernel (:mod:`mgenv.chain.kernels_pbft`).

        Same draw (one ``rng.random`` of the same size), same state changes (``view``,
        ``last_round``, the network's ``online_state``) and the same outcome as
        ``run_round(network.draw_round(rng), has_block)``.
        """
        net = self.network
        state, slow = net.online_state, net.slow
        work = np.empty((N_WORK_ROWS, net.n_nodes), dtype=bool)
        u = net.draw_uniforms(self._rng)
        jitter_is_log = not log1p_matches_numpy()
        if jitter_is_log:  # numpy's log1p rounds differently here: the kernel takes its values
            jitter = u[net.n_nodes * (1 + 3 * net.n_nodes) :]
            np.log1p(np.negative(jitter), out=jitter)
        n_online, code, changes, *phase_ms = pbft_round(
            u,
            work if state is None else state,
            state is not None,
            *net.transition,
            net.availability,
            net.down,
            net.message_loss,
            self.voters,
            self.view,
            self.f,
            net.base_delay_ms,
            net.base_delay_ms if slow is None else slow,
            slow is not None,
            net.jitter_ms,
            has_block,
            jitter_is_log,
            work,
        )
        net.online_state = work[0]
        online = work[1]
        share = n_online / online.size
        # tuple.__new__ builds the same NamedTuples as their constructors, without the
        # Python-level __new__ call (this method runs every period)
        if code == ROUND_COMMITTED:
            self.view += changes
            self.last_round = _new(NodeRound, (online, work[2], False))
            # Python's sum over the three phases, as quorum_latency_ms's
            latency = changes * self.timeout_ms + sum(phase_ms)
            return _new(RoundOutcome, (True, COMMITTED, latency, share, changes))
        self.last_round = _new(NodeRound, (online, None, False))
        if code == NO_BLOCK:
            return _new(RoundOutcome, (False, NO_QUORUM, 0.0, share, 0))
        if code == NO_LEADER:
            return _new(RoundOutcome, (False, PRIMARY_OFFLINE, self.timeout_ms, share, 0))
        self.view += changes
        waited_ms = changes * self.timeout_ms + self.timeout_ms
        return _new(RoundOutcome, (False, NO_QUORUM, waited_ms, share, changes))

    def run_round(self, draw: RoundDraw, has_block: bool) -> RoundOutcome:
        """Run one round on a given network draw (tests feed their own draws here).

        Args:
            draw: This period's network realisation.
            has_block: Whether there is a block to agree on; if not, only the online share
                is reported (no leader is needed, so no view change happens).

        Returns:
            The round's outcome; advances ``view`` by the view changes.
        """
        n_online = int(np.count_nonzero(draw.online))
        share = n_online / draw.online.size
        self.last_round = NodeRound(draw.online, None, False)
        if not has_block:
            return RoundOutcome(False, NO_QUORUM, 0.0, share, 0)
        f = self.f
        primary, changes = select_primary(draw.online, self.view, 2 * f + 1)
        if primary < 0:
            return RoundOutcome(False, PRIMARY_OFFLINE, self.timeout_ms, share, 0)
        self.view += changes
        waited_ms = changes * self.timeout_ms
        votes = count_votes(draw.online, draw.delivered, primary, self.voters, f)
        if np.count_nonzero(votes.committed) < 2 * f + 1:
            return RoundOutcome(False, NO_QUORUM, waited_ms + self.timeout_ms, share, changes)
        self.last_round = NodeRound(draw.online, votes.committed, False)
        delays = self.network.delays_ms(draw.jitter_u)
        latency = waited_ms + quorum_latency_ms(votes, delays, primary, f)
        return RoundOutcome(True, COMMITTED, latency, share, changes)
