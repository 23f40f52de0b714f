"""SPFT: PBFT over SBET's data plane, without redundant exchange (seed 003's PBFT baseline).

The paper benchmarks SBET against "SPFT", a PBFT-based energy-trading chain (its ref. [7]).
Here it is :mod:`mgenv.chain.pbft`'s round (vote counting and latency model, reused as is) on
the same data plane as SBET (:mod:`mgenv.chain.dataplane`), so that the comparison differs only
in the consensus. Per period (n nodes, f = (n - 1) // 3, quorum 2f + 1):

1. **Broadcast** of the transactions (t_max; copies, losses, interruption as for SBET).
2. **Primary** (view-based, as PBFT). A malicious primary proposes altered records; the honest
   replicas reject its pre-prepare (the parties' signatures no longer verify) and change views
   as for an offline primary, unless the malicious nodes alone make a quorum (>= 2f + 1 of
   them online and voting: then the altered block commits and its transactions are
   ``"tampered"``). A view change needs 2f + 1 eligible nodes online, else
   ``"primary_offline"``.
3. **Block** = the transactions the primary holds after the broadcast: with no redundant
   exchange, the others are ``"missing"`` (the paper: "the missing data in the other two
   methods cannot be stored in blockchain").
4. **Three phases** (pre-prepare, prepare, commit) by :func:`mgenv.chain.pbft.count_votes`;
   malicious nodes vote falsely (never for an honest block; they count as withholding) as do
   the ``withhold_share`` nodes. The block commits iff >= 2f + 1 nodes commit locally, else
   its transactions are ``"no_quorum"``.

**Time model** (ms): the broadcast (t_max, :mod:`mgenv.chain.dataplane`), plus
``view_change_timeout_ms`` per view change, plus :func:`mgenv.chain.pbft.quorum_latency_ms` on
the round's delays with the block's transmission time added to the pre-prepare; a round that
does not commit adds one more timeout.

Random streams: as SBET, with 4 message phases and no extra uniforms per period; the
adversary stream draws the withholding then the malicious nodes.

Compiled path (:data:`mgenv._jit.ENABLED`): one kernel per period,
:func:`mgenv.chain.kernels_spft.spft_period`, on the same draws, bit-identical; the numpy
code here and in :mod:`mgenv.chain.pbft` is the reference.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv.chain import packed
from mgenv.chain.adversary import draw_malicious, draw_withholding, n_malicious
from mgenv.chain.dataplane import MISSING, DataPlane
from mgenv.chain.kernels_spft import spft_period
from mgenv.chain.network import NetworkModel, RoundDraw, child_stream
from mgenv.chain.nodeview import NodeRound
from mgenv.chain.pbft import count_votes, quorum_latency_ms, select_primary
from mgenv.chain.types import (
    COMMITTED,
    NO_QUORUM,
    PRIMARY_OFFLINE,
    TAMPERED,
    PerTransactionProtocol,
    TxOutcome,
)
from mgenv.chain.types import MISSING as NOT_IN_BLOCK

if TYPE_CHECKING:
    from mgenv.chain.params import ChainParams

N_PHASES: Final = 4  # broadcast, pre-prepare, prepare, commit (kernels_spft.N_PHASES)


class SPFTProtocol(PerTransactionProtocol):
    """PBFT with a data plane (see the module docstring for the model).

    Args:
        params: Chain parameters (n_nodes >= 4).
        network_rng: The network stream (kept: drawn from every period).
        adversary_rng: The adversary stream.

    Attributes:
        network: The network model (4 phases per period).
        plane: The data plane.
        voters: Shape (n,), bool: not withholding.
        view: Current PBFT view (the primary is ``view % n``).
        safety_violation: The malicious nodes are at least n / 3 (beyond f).
        read_quorum: Matching answers a client waits for on a query (2f + 1).
    """

    min_nodes = 4
    data_plane = True

    def __init__(
        self,
        params: ChainParams,
        network_rng: np.random.Generator,
        adversary_rng: np.random.Generator,
    ) -> None:
        n = params.n_nodes
        self.f = params.max_faulty
        self.timeout_ms = params.view_change_timeout_ms
        self.network = NetworkModel(params, network_rng, N_PHASES)
        self.voters = ~draw_withholding(adversary_rng, n, params.n_withholding)
        malicious = draw_malicious(adversary_rng, n, n_malicious(params.malicious_share, n))
        self.plane = DataPlane(params, self.network, malicious, child_stream(network_rng))
        self.view = 0
        self.safety_violation = 3 * int(np.count_nonzero(malicious)) >= n
        self.read_quorum = 2 * self.f + 1
        self.malicious = malicious
        self.last_round: NodeRound | None = None  # who holds this period's block (nodeview)
        self._rng = network_rng

    def decide_transactions(
        self,
        period: int,
        sellers: list[int],
        buyers: list[int],
        valid: NDArray[np.bool_],
        payloads: list[bytes],
    ) -> TxOutcome:
        """Draw this period's network and run the round (same contract as SBET's).

        Args:
            period: Market period index (unused: the view decides the primary).
            sellers: Length T: seller of each transaction (its origin node is seller % n).
            buyers: Length T: unused.
            valid: Shape (T,), bool: passed the signature and validity checks.
            payloads: Length T: unused.

        Returns:
            Per-transaction verdicts; ``extra`` as SBET's (``recovered`` is always 0).
        """
        del period, buyers, payloads
        if _jit.ENABLED:
            return self._decide_compiled(sellers, valid)
        draw, share, adm, empty = self.plane.open_round(
            self._rng, sellers, valid, self.safety_violation
        )
        self.last_round = NodeRound(draw.online, None, False)
        if empty is not None:
            return empty
        status, latency, changes, primary, missing = self.run_block(
            draw, adm.origin, self.plane.interrupted(adm.origin)
        )
        committed, reason, extra = self.plane.verdicts(
            adm, valid, status, self.safety_violation, 0, missing, primary
        )
        return TxOutcome(committed, reason, latency, share, changes, extra)

    @cached_property
    def _compiled(self) -> packed.Compiled:
        """The constants of the compiled path (built on its first period)."""
        return packed.compiled(self.plane, self.voters, N_PHASES, 0)

    def _decide_compiled(self, sellers: list[int], valid: NDArray[np.bool_]) -> TxOutcome:
        """:meth:`decide_transactions` by the kernel :func:`~mgenv.chain.kernels_spft.spft_period`.

        The same random draws as the numpy path, in the same order; the logarithms stay in
        numpy; the phase times are summed by Python's ``sum`` as in
        :func:`~mgenv.chain.pbft.quorum_latency_ms`. Advances ``view`` as :meth:`run_block`.
        """
        const = self._compiled
        plane, layout, keys = self.plane, const.layout, const.no_keys  # keys: none drawn yet
        geo, nodes, fc, ic = const.plane
        u = self._rng.random(layout.size)
        online = self.network.next_online(u[layout.online])
        n_valid = int(np.count_nonzero(valid))
        if n_valid == 0:
            self.last_round = NodeRound(online, None, False)
            return packed.empty_outcome(valid, online, self.safety_violation)
        lj = np.log1p(-u[layout.jitter])
        if plane.n_missing:
            keys = plane.interruption_uniforms(min(n_valid, plane.block_size))
        n_tx = valid.size
        committed, reason = np.zeros(n_tx, dtype=bool), np.zeros(n_tx, dtype=np.int8)
        holders, phases = np.empty(online.size, dtype=bool), np.empty(3)
        figures = spft_period(
            self.view,
            u,
            lj,
            online,
            valid,
            np.asarray(sellers, dtype=np.int64),
            keys,
            geo,
            nodes,
            fc,
            ic,
            self.timeout_ms,
            committed,
            reason,
            holders,
            phases,
        )
        has_holders, round_committed, latency, changes, primary, share = figures[:6]
        n_ok, n_valid, missing, n_tampered = figures[6:]
        self.view += changes
        if round_committed:
            latency += sum(phases.tolist())
        if has_holders:
            self.last_round = NodeRound(online, holders, bool(plane.malicious[primary]))
        else:
            self.last_round = NodeRound(online, None, False)
        extra = packed.extra_of_counts(
            self.safety_violation, n_tx, n_valid, n_ok, 0, missing, n_tampered, primary
        )
        return TxOutcome(committed, reason, latency, share, changes, extra)

    def run_block(
        self, draw: RoundDraw, origin: NDArray[np.intp], interrupted: NDArray[np.bool_] | None
    ) -> tuple[NDArray[np.int8], float, int, int, int]:
        """One round on a given draw: (reasons (B,), latency ms, view changes, primary, missing).

        Advances ``view`` by the view changes.
        """
        plane, f = self.plane, self.f
        online = draw.online
        link = draw.delivered[0] & (online[:, None] & online)
        delays = self.network.delays_ms(draw.jitter_u)
        copies, data_ms = plane.broadcast(link, delays[0], origin, interrupted)
        missing = int(np.count_nonzero((copies == MISSING) & online))
        bad = plane.malicious & online & self.voters
        strong = bool(np.count_nonzero(bad) >= 2 * f + 1)
        eligible = online & (plane.honest | strong)
        primary, changes = select_primary(eligible, self.view, 2 * f + 1)
        if primary < 0:
            reason = np.full(origin.size, PRIMARY_OFFLINE, dtype=np.int8)
            return reason, data_ms + self.timeout_ms, 0, -1, missing
        self.view += changes
        waited = data_ms + changes * self.timeout_ms
        altered = bool(plane.malicious[primary])
        in_block = copies[:, primary] != MISSING
        voters = self.voters & (plane.malicious if altered else plane.honest)
        votes = count_votes(online, draw.delivered[1:], primary, voters, f)
        reason = np.where(in_block, np.int8(NO_QUORUM), np.int8(NOT_IN_BLOCK))
        if np.count_nonzero(votes.committed) < 2 * f + 1:
            return reason, waited + self.timeout_ms, changes, primary, missing
        phase_ms = delays[1:]
        phase_ms[0] += plane.header_ms + plane.ms_per_record * int(np.count_nonzero(in_block))
        latency = waited + quorum_latency_ms(votes, phase_ms, primary, f)
        reason[in_block] = TAMPERED if altered else COMMITTED
        if in_block.any():  # the nodes that committed locally hold the block
            self.last_round = NodeRound(online, votes.committed, altered)
        return reason, latency, changes, primary, missing
