"""SBET consensus with redundant data exchange (seed 003, Huang et al. 2021, sec. III-B, Alg. 1).

Decides per transaction, vectorised over nodes and transactions. One block per period; n nodes
(the microgrids), quorum q = ceil(gamma n) (eq. 4 as a count); the data plane
(:mod:`mgenv.chain.dataplane`) gives who holds which copy after the broadcast (Alg. 1, lines
1-2). Then, with the message phases named in brackets (one loss/delay draw each):

1. **Coordinator.** The pre-specified node e_p is ``period % n`` (rotating, so that no node is a
   permanent single point of failure); if it is offline the next online node takes over after
   one timer t_max (a view change).
2. **Election** (lines 3-13, eq. 7) [ELECT, YES]. e_p sends the election message; each node that
   gets it answers at once; its response time t_i is the round trip. Honest nodes kept busy by a
   slowing DDoS answer "No"; the others (and malicious nodes, always) "Yes". e_p closes the
   election at the (q-1)-th answer (q counting itself), or at t_max. Among the "Yes" nodes the
   creator is the argmax of p_i = t_i s_i / sum_k t_k s_k (Algorithm 1, line 12; the default,
   ``creator_election="argmax"``) or drawn with probability p_i (eq. 7's "selected in the
   possibility of p_i"; ``"proportional"``, Gumbel-top-k over the extra uniforms), s_i being
   the node's storage space. Literal reading kept: t_i is a response *time*, so slower (farther)
   responders weigh more; e_p itself never answers, so it is never the creator.
3. **Announcement** [ANNOUNCE]: e_p sends the ranking. The creator e_c is the first candidate
   that received it and is honest, or malicious with at least q malicious voters online (then
   its altered block passes). A malicious creator short of that fails the hash vote: the honest
   nodes move to the next candidate after the timer t_max (a view change). No acceptable
   candidate: every transaction is rejected as ``"primary_offline"``.
4. **Serial lists** (lines 14-16) [LISTS]: the nodes that got the announcement send e_c the serial
   list of the transactions they hold; e_c closes at q lists (its own included) or at t_max.
   Closing at q loses nothing that could commit: a transaction that can gather q votes is held
   by >= q nodes, and two sets of q nodes intersect because gamma > 1/2.
5. **Complete list and redundant exchange** (lines 17-26, eq. 8) [COMPLETE, REQUEST, REPLY]. e_c
   sends the complete list; each node that got it and misses some of its transactions
   (D_i(T) = 0, eq. 8) asks every node; each node holding one answers with its copy after the
   waiting time of eq. (6); answers count if their transit (request and answer) is within
   t_max (eq. 6's wait delays them but does not make them late). An honest
   node stores a copy once at least q of the copies it received agree ("S_T / ||e_i|| >=
   gamma": the paper's threshold is over all nodes, which also means at least gamma of the
   copies received; reading the denominator as the copies received would let a single malicious
   relay plant its altered copy). A malicious node stores (altered) whatever it gets.
6. **Integrity** (line 26) [INTEGRITY]: each node that got the complete list tells e_c when its
   exchange is over; e_c starts the block at q such messages (its own included) or at t_max.
7. **Block, hash votes, commits** (lines 27-34) [BLOCK, HASH, COMMIT]. e_c sends its candidate
   (the complete list's transactions it holds; a malicious creator: the altered copies). A node
   that got it and whose copy of T matches votes "Yes" on T by sending its hashes to all; a node
   with at least q matching hashes (its own included) sends e_c a commit for T. Malicious nodes
   vote falsely (for altered copies only); withholding nodes send no votes or commits.
8. **Verdict** (eqs. 3-4): r(T) = (commits for T reaching e_c, its own included) / n; T is
   verified iff r(T) >= gamma (eq. 4's ">="; the prose's "more than" is read as eq. 4). A
   verified altered copy is ``"tampered"`` (the true trade does not settle); an unverified one
   in the block is ``"no_quorum"``; one not in the block is ``"missing"``.

**Time model** (a model, ms, from the start of the period's broadcast to the block): the
broadcast lasts t_max (:mod:`mgenv.chain.dataplane`); each skipped coordinator or creator costs
t_max; the election lasts until its closing answer; the lists until e_c's q-th list (the
ANNOUNCE and LISTS delays); the exchange until e_c's q-th integrity message, each node being
ready when its last missing transaction got its q-th agreeing copy (if one cannot be recovered:
at its timer t_max, or at its last answer if later); the vote until the q-th commit reaches e_c
(t_max if nothing verifies), node j sending its commit at the arrival of its (q - 1)-th matching
hash list. The block and the data messages add their transmission time (bytes * 8 / bandwidth).
The paper counts from the election; the broadcast is included here because it is what t_max
times and the paper's Fig. 5 grows with t_max for all methods.

Random streams: ``network_rng`` draws the positions (here) and one fixed-size
:class:`~mgenv.chain.network.RoundDraw` of 12 phases plus n extra uniforms per period; a child
spawned from it draws the storage spaces s_i ~ U(0.5, 1.5) (here) and the interruption draws;
``adversary_rng`` draws the withholding then the malicious nodes (here).

**Compiled path.** With :data:`mgenv._jit.ENABLED`, ``decide_transactions`` draws the same
numbers in the same order and hands them to one kernel per period
(:func:`mgenv.chain.kernels_sbet.sbet_period`: admission, steps 1-8, verdicts), which gives
bit-identical results; :func:`run_block` and the functions of :mod:`mgenv.chain.sbet_steps`
stay the reference (and the path without numba).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit, streams
from mgenv.chain import kernels_dataplane as kd
from mgenv.chain import packed
from mgenv.chain.adversary import chosen, draw_malicious, draw_withholding, n_malicious
from mgenv.chain.dataplane import MISSING, DataPlane, missing_count
from mgenv.chain.kernels_sbet import sbet_period
from mgenv.chain.network import NetworkModel, RoundDraw, child_stream, constant, identity
from mgenv.chain.nodeview import NodeRound
from mgenv.chain.sbet_steps import (
    ANNOUNCE,
    COMPLETE,
    DATA,
    ELECT,
    N_PHASES,
    YES,
    SBETFixed,
    candidate_votes,
    coordinator,
    elect,
    integrity_ms,
    pick_creator,
    recover,
    serial_lists,
    vote,
)
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


_NO_PKEY = np.empty((0, 0))  # argmax election: no proportional keys (compiled path)


class SBETBlock(NamedTuple):
    """Outcome of one SBET block over its B admitted transactions.

    Attributes:
        reason: Shape (B,), int8: 0 committed, else a ``REJECT_REASONS`` index.
        latency_ms: Simulated block creation time (ms).
        view_changes: Skipped coordinators and creators.
        creator: Index of e_c, -1 if none.
        recovered: Copies honest nodes obtained by the redundant exchange.
        missing_copies: Copies missing at online nodes after the broadcast.
        tampered: Transactions verified with an altered copy.
        holders: Shape (n,), bool: nodes holding the block (e_c, and the nodes that got the
            candidate and voted "Yes" on each verified transaction); None if none verified.
    """

    reason: NDArray[np.int8]
    latency_ms: float
    view_changes: int
    creator: int
    recovered: int
    missing_copies: int
    tampered: int
    holders: NDArray[np.bool_] | None = None


def run_block(
    draw: RoundDraw,
    period: int,
    plane: DataPlane,
    origin: NDArray[np.intp],
    interrupted: NDArray[np.bool_] | None,
    fixed: SBETFixed,
) -> SBETBlock:
    """One SBET block on a given network draw (steps 1-8 of the module docstring).

    Args:
        draw: The period's network draw (12 phases, n extra uniforms).
        period: Market period (for the coordinator's rotation).
        plane: The data plane.
        origin: Shape (B,), origin node of each admitted transaction.
        interrupted: Shape (B, n) interruption mask, or None.
        fixed: Storage, voters, election mode.
    """
    q, t_max = plane.quorum, plane.t_max_ms
    online = draw.online
    link = draw.delivered & (online[:, None] & online)
    delay = plane.network.delays_ms(draw.jitter_u)
    copies, data_ms = plane.broadcast(link[DATA], delay[DATA], origin, interrupted)
    missing = int(np.count_nonzero((copies == MISSING) & online))
    p, skips = coordinator(online, period)
    if p < 0:
        return SBETBlock(
            np.full(origin.size, PRIMARY_OFFLINE, np.int8), data_ms, 0, -1, 0, missing, 0
        )
    gumbel = -np.log(-np.log(draw.extra_u)) if fixed.proportional else None
    candidates, election = elect(link, delay, p, plane.able, fixed, gumbel, q, t_max)
    announced = link[ANNOUNCE, p] | fixed.onehot[p]
    strong = plane.any_malicious and bool(
        np.count_nonzero(plane.malicious & online & fixed.voters) >= q
    )
    c, passed = pick_creator(candidates, announced, plane.honest, strong)
    elapsed = data_ms + (skips + passed) * t_max + election
    if c < 0:
        return SBETBlock(
            np.full(origin.size, PRIMARY_OFFLINE, np.int8),
            elapsed,
            skips + passed,
            -1,
            0,
            missing,
            0,
        )
    complete, lists = serial_lists(link, delay, p, c, announced, copies, q, t_max)
    got = link[COMPLETE, c] | fixed.onehot[c]
    need = (copies == MISSING) & got & complete[:, None]
    recovered, ready = 0, np.zeros(online.size)
    if np.count_nonzero(need):
        copies, recovered, ready = recover(link, delay, plane, copies, need)
    exchange = integrity_ms(link, delay, c, got, ready, q, t_max)
    in_block, yes = candidate_votes(link, plane, c, copies, complete, fixed)
    n_block = int(np.count_nonzero(in_block))
    commits, voting = vote(link, delay, plane, c, yes, fixed.onehot[c], n_block)
    verified = in_block & (commits >= q)
    reason = np.where(in_block, np.int8(NO_QUORUM), np.int8(NOT_IN_BLOCK))
    altered = bool(plane.malicious[c])
    reason[verified] = TAMPERED if altered else COMMITTED
    tampered = int(np.count_nonzero(verified)) if altered else 0
    holders = None
    if verified.any():  # learning the verdicts from e_c is assumed (mgenv.chain.nodeview)
        holders = np.logical_and.reduce(yes[verified], axis=0) | fixed.onehot[c]
    return SBETBlock(
        reason,
        elapsed + lists + exchange + voting,
        skips + passed,
        c,
        recovered,
        missing,
        tampered,
        holders,
    )


class SBETDraws(NamedTuple):
    """:class:`SBETProtocol`'s construction draws, made elsewhere from the same streams.

    :mod:`mgenv.episode_draws` computes them from the streams' seed words (numpy's numbers,
    without the generators that would draw them).

    Attributes:
        positions_km: Shape (n, 2): the network stream's ``uniform(0, area_km, (n, 2))``;
            the stream handed over is already past them.
        storage: Shape (n,): the network stream's first child's ``uniform(0.5, 1.5, n)``.
        perms: Shape (2, n) int64: the adversary stream's first two ``permutation(n)``
            (withholding, then malicious nodes).
    """

    positions_km: NDArray[np.float64]
    storage: NDArray[np.float64]
    perms: NDArray[np.int64]


class SBETProtocol(PerTransactionProtocol):
    """SBET as a chain protocol (see the module docstring for the model).

    Args:
        params: Chain parameters (n_nodes >= 3).
        network_rng: The network stream (kept: drawn from every period).
        adversary_rng: The adversary stream (None with ``drawn``: not used).
        drawn: The construction's draws already made (:class:`SBETDraws`), or None: drawn
            here. With them, the network stream's child is spawned as here (a generator
            only if the data plane draws interruptions from it, moved past the storage).

    Attributes:
        network: The network model (12 phases, n extra uniforms per period).
        plane: The data plane (timers, quorum, malicious nodes).
        fixed: Storage spaces, voters, election mode.
        safety_violation: The malicious nodes are at least n / 3, beyond SBET's bound.
        read_quorum: Matching answers a client waits for on a query (the quorum q).
    """

    min_nodes = 3
    data_plane = True

    def __init__(
        self,
        params: ChainParams,
        network_rng: np.random.Generator,
        adversary_rng: np.random.Generator | None,
        drawn: SBETDraws | None = None,
    ) -> None:
        n = params.n_nodes
        n_mal = n_malicious(params.malicious_share, n)
        child: np.random.Generator | None
        if drawn is None:
            if adversary_rng is None:
                raise ValueError("SBETProtocol needs the adversary stream or its draws")
            self.network = NetworkModel(params, network_rng, N_PHASES, n_extra=n)
            child = child_stream(network_rng)
            storage = child.uniform(0.5, 1.5, n)
            voters = ~draw_withholding(adversary_rng, n, params.n_withholding)
            malicious = draw_malicious(adversary_rng, n, n_mal)
        else:
            self.network = NetworkModel(params, network_rng, N_PHASES, n, drawn.positions_km)
            child = _drawn_child(network_rng, n, missing_count(params) > 0)
            storage = drawn.storage
            # read-only and shared when nobody withholds or is malicious (as usual)
            k = params.n_withholding
            voters = ~chosen(drawn.perms[0], k) if k else constant(n, True)
            malicious = chosen(drawn.perms[1], n_mal) if n_mal else constant(n, False)
        self.plane = DataPlane(params, self.network, malicious, child)
        proportional = params.creator_election == "proportional"
        self.fixed = SBETFixed(storage, voters, proportional, identity(n))
        self.safety_violation = 3 * int(np.count_nonzero(malicious)) >= n
        self.read_quorum = self.plane.quorum
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
        """Draw this period's network and create its block.

        Args:
            period: Market period index.
            sellers: Length T: seller of each transaction (its origin node is seller % n).
            buyers: Length T: buyer of each transaction (unused).
            valid: Shape (T,), bool: passed the signature and validity checks.
            payloads: Length T: the 40-byte records (unused: copies are tracked by identity).

        Returns:
            Per-transaction verdicts; ``extra`` holds ``safety_violation`` (1.0 if malicious
            nodes are >= n / 3), ``query_accuracy`` (share of valid transactions committed
            with their true record; 1.0 when there are none), ``recovered``,
            ``missing_copies``, ``tampered`` and ``creator`` (-1 if none).
        """
        del buyers, payloads
        if _jit.ENABLED:
            return self._decide_compiled(period, sellers, valid)
        draw, share, adm, empty = self.plane.open_round(
            self._rng, sellers, valid, self.safety_violation
        )
        self.last_round = NodeRound(draw.online, None, False)
        if empty is not None:
            return empty
        blk = run_block(
            draw, period, self.plane, adm.origin, self.plane.interrupted(adm.origin), self.fixed
        )
        if blk.holders is not None:
            self.last_round = NodeRound(
                draw.online, blk.holders, bool(self.plane.malicious[blk.creator])
            )
        committed, reason, extra = self.plane.verdicts(
            adm,
            valid,
            blk.reason,
            self.safety_violation,
            blk.recovered,
            blk.missing_copies,
            blk.creator,
        )
        return TxOutcome(committed, reason, blk.latency_ms, share, blk.view_changes, extra)

    @cached_property
    def _compiled(self) -> packed.Compiled:
        """The constants of the compiled path (built on its first period)."""
        return packed.compiled(self.plane, self.fixed.voters, N_PHASES, self.network.n_nodes)

    def _decide_compiled(
        self, period: int, sellers: list[int], valid: NDArray[np.bool_]
    ) -> TxOutcome:
        """:meth:`decide_transactions` by the kernel :func:`~mgenv.chain.kernels_sbet.sbet_period`.

        The same random draws as the numpy path, in the same order (the network's one draw
        per period, split as ``NetworkModel.draw_round`` splits it; the interruption uniforms
        when something is admitted); the logarithms stay in numpy (see
        :mod:`mgenv.chain.kernels_dataplane`).
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
        pkey = _NO_PKEY
        if self.fixed.proportional:
            pkey = self._proportional_keys(u[layout.extra], lj)
        n_tx = valid.size
        committed, reason = np.zeros(n_tx, dtype=bool), np.zeros(n_tx, dtype=np.int8)
        holders = np.empty(online.size, dtype=bool)
        figures = sbet_period(
            period,
            u,
            lj,
            online,
            valid,
            np.asarray(sellers, dtype=np.int64),
            keys,
            pkey,
            self.fixed.storage,
            geo,
            nodes,
            fc,
            ic,
            committed,
            reason,
            holders,
        )
        has_holders, latency, changes, creator, share = figures[:5]
        n_ok, n_valid, recovered, missing, n_tampered = figures[5:]
        if has_holders:
            self.last_round = NodeRound(online, holders, bool(plane.malicious[creator]))
        else:
            self.last_round = NodeRound(online, None, False)
        extra = packed.extra_of_counts(
            self.safety_violation, n_tx, n_valid, n_ok, recovered, missing, n_tampered, creator
        )
        return TxOutcome(committed, reason, latency, share, changes, extra)

    def _proportional_keys(
        self, extra_u: NDArray[np.float64], lj: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """``elect``'s ``log(t_i s_i + 1e-300) + gumbel_i`` for every coordinator, (n, n).

        Row p is what :func:`~mgenv.chain.sbet_steps.elect` computes with coordinator p
        (the same elementwise expressions), in numpy for its logarithms.

        Args:
            extra_u: Shape (n,), the draw's extra uniforms.
            lj: Shape (P n^2,), ``np.log1p(-jitter uniforms)``.
        """
        geo, _, fc, _ = self._compiled.plane
        delay = kd.delays(lj, geo, fc[packed.JITTER], N_PHASES)
        rt = delay[ELECT] + delay[YES].T  # [p, i]: t_i = delay[ELECT, p, i] + delay[YES, i, p]
        gumbel = -np.log(-np.log(extra_u))
        return np.ascontiguousarray(np.log(rt * self.fixed.storage + 1e-300) + gumbel)


def _drawn_child(
    network_rng: np.random.Generator, n: int, needed: bool
) -> np.random.Generator | None:
    """The network stream's child after its storage draw, as :func:`child_stream` spawns it.

    For :class:`SBETDraws`, whose storage spaces are its first ``n`` doubles: the child is
    spawned (the parent's seed sequence counts it, as ``rng.spawn(1)`` does), and made a
    generator moved past them only if ``needed`` (the data plane's interruptions).
    """
    kid = network_rng.bit_generator.seed_seq.spawn(1)[0]  # type: ignore[attr-defined]
    if not needed:
        return None
    child = streams.generator(kid)
    child.bit_generator.advance(n)  # type: ignore[attr-defined]  # a PCG64: n doubles
    return child
