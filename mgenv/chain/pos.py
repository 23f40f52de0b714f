"""PoS: a stake-lottery chain over SBET's data plane (seed 003's "ETPS" baseline).

The paper compares SBET with "ETPS", a PoS-based energy-trading chain (its ref. [6]), and
reports its block creation "nearly a hundred times" slower "due to its complex verification
and block generation processes". The model (a model, documented as such; no redundant
exchange):

1. **Broadcast** of the transactions (t_max; copies, losses, interruption as for SBET).
2. **Kernel lottery** (Peercoin-style proof of stake). Time is cut into staking slots of t_max.
   Node i's kernel is a uniform u_i read from SHAKE-256(beacon || period), 8 bytes per node (a
   real hash every node can recompute; the beacon is a SHA-256 chain over the forged blocks).
   With stake share w_i (equal stakes) and S = ``pos_slots_per_block``, node i hits the target
   in a slot with probability s_i = 1 - (1 - 1/S)^{w_i}, so that some node hits with
   probability 1/S per slot when all are online; its first hit is slot
   k_i = floor(ln u_i / ln(1 - s_i)) (inverse transform of the geometric law). The forger is
   the online node with the smallest k_i (ties: smaller u_i).
3. **Validity.** A malicious forger's block carries altered records; honest nodes reject it
   and the next honest forger's block wins, unless the malicious nodes hold at least half of
   the stake (they then out-mint the honest chain: its transactions are ``"tampered"``; that
   is PoS's bound, reported as ``safety_violation``).
4. **Block** = the transactions the forger holds after the broadcast; the others are
   ``"missing"``. No vote: an honest forger's block commits.

**Time model** (ms): the broadcast (t_max, :mod:`mgenv.chain.dataplane`), + (k_forger + 1) slots
of t_max, + the block's propagation until a majority of nodes hold it (delay + transmission), +
finality: ``pos_confirmations`` further blocks, each taking the expected lottery wait t_max / (1
- prod_i (1 - s_i)) over the current eligible forgers. With the defaults (S = 16, 6
confirmations) a block is final after about 7 * 16 t_max: the "hundred times" of the paper comes
from these two parameters, not from a measurement.

Random streams: positions and one fixed-size draw per period (2 phases) from the network
stream; the interruption draws from its child; the withholding then malicious nodes from the
adversary stream; the beacon starts from 32 bytes of the child stream.

Compiled path (:data:`mgenv._jit.ENABLED`): one kernel per period,
:func:`mgenv.chain.kernels_pos.pos_period`, on the same draws and hashes, bit-identical; the
numpy code here is the reference.
"""

from __future__ import annotations

import hashlib
import math
from functools import cached_property
from itertools import compress
from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv.chain import packed
from mgenv.chain.adversary import draw_malicious, draw_withholding, n_malicious
from mgenv.chain.dataplane import MISSING, DataPlane, kth_smallest
from mgenv.chain.kernels_pos import pos_period
from mgenv.chain.network import NetworkModel, RoundDraw, child_stream
from mgenv.chain.nodeview import NodeRound
from mgenv.chain.types import (
    COMMITTED,
    PRIMARY_OFFLINE,
    TAMPERED,
    PerTransactionProtocol,
    TxOutcome,
)
from mgenv.chain.types import MISSING as NOT_IN_BLOCK

if TYPE_CHECKING:
    from mgenv.chain.params import ChainParams

DATA, BLOCK = 0, 1
N_PHASES: Final = 2  # kernels_pos.N_PHASES
_TWO_64: Final = float(2**64)


class _Compiled(NamedTuple):
    """Constants of PoS's compiled path (see ``PoSProtocol._compiled_constants``).

    Attributes:
        plane: The packed data plane; ``fc`` has the confirmations appended (``fc[5]``).
        layout: Where the parts of the period's network draw lie.
        log_miss: Shape (n,), ``np.log1p(-hit_p)``.
        per_block: Shape (n + 1,), the expected wait per further block (ms) by the number
            of eligible forgers (entry 0 unused).
        no_keys: Shape (0, n): no interruption uniforms.
    """

    plane: packed.PackedPlane
    layout: packed.DrawLayout
    log_miss: NDArray[np.float64]
    per_block: NDArray[np.float64]
    no_keys: NDArray[np.float64]


class PoSProtocol(PerTransactionProtocol):
    """PoS as a chain protocol (see the module docstring for the model).

    Args:
        params: Chain parameters.
        network_rng: The network stream (kept: drawn from every period).
        adversary_rng: The adversary stream.

    Attributes:
        network: The network model (2 phases per period).
        plane: The data plane.
        hit_p: Shape (n,), per-slot probability s_i that node i's kernel hits.
        beacon: The 32-byte SHA-256 chain value the kernels are drawn from.
        safety_violation: Malicious nodes hold at least half of the stake.
        read_quorum: Answers a client waits for on a query (1: it checks a Merkle proof).
    """

    min_nodes = 1
    data_plane = True
    read_quorum = 1

    def __init__(
        self,
        params: ChainParams,
        network_rng: np.random.Generator,
        adversary_rng: np.random.Generator,
    ) -> None:
        n = params.n_nodes
        self.network = NetworkModel(params, network_rng, N_PHASES)
        child = child_stream(network_rng)
        self.beacon = child.bytes(32)
        draw_withholding(adversary_rng, n, params.n_withholding)  # keeps the stream layout
        malicious = draw_malicious(adversary_rng, n, n_malicious(params.malicious_share, n))
        self.plane = DataPlane(params, self.network, malicious, child)
        stake = np.full(n, 1.0 / n)  # equal stakes
        self.hit_p = (
            -np.expm1(stake * math.log1p(-1.0 / params.pos_slots_per_block))
            if params.pos_slots_per_block > 1.0
            else np.ones(n)
        )
        self.malicious_stake = float(stake[malicious].sum())
        self.safety_violation = self.malicious_stake >= 0.5
        self.confirmations = params.pos_confirmations
        self.malicious = malicious
        self.last_round: NodeRound | None = None  # who holds this period's block (nodeview)
        self._rng = network_rng

    def kernels(self, period: int) -> NDArray[np.float64]:
        """Each node's kernel uniform in (0, 1), from SHAKE-256(beacon || period), shape (n,)."""
        n = self.network.n_nodes
        digest = hashlib.shake_256(self.beacon + period.to_bytes(8, "little", signed=True))
        words = np.frombuffer(digest.digest(8 * n), dtype="<u8")
        return (words.astype(np.float64) + 0.5) / _TWO_64

    def decide_transactions(
        self,
        period: int,
        sellers: list[int],
        buyers: list[int],
        valid: NDArray[np.bool_],
        payloads: list[bytes],
    ) -> TxOutcome:
        """Draw this period's network and forge its block (same contract as SBET's).

        Args:
            period: Market period index (enters the kernels).
            sellers: Length T: seller of each transaction (its origin node is seller % n).
            buyers: Length T: unused.
            valid: Shape (T,), bool: passed the signature and validity checks.
            payloads: Length T: the records; committed ones advance the beacon.

        Returns:
            Per-transaction verdicts; ``extra`` as SBET's (``recovered`` is always 0).
        """
        del buyers
        if _jit.ENABLED and self._compiled is not None:
            return self._decide_compiled(self._compiled, period, sellers, valid, payloads)
        draw, share, adm, empty = self.plane.open_round(
            self._rng, sellers, valid, self.safety_violation
        )
        self.last_round = NodeRound(draw.online, None, False)
        if empty is not None:
            return empty
        status, latency, forger, missing = self.run_block(
            draw, period, adm.origin, self.plane.interrupted(adm.origin)
        )
        committed, reason, extra = self.plane.verdicts(
            adm, valid, status, self.safety_violation, 0, missing, forger
        )
        chosen = b"".join(payloads[i] for i in adm.rows[status != NOT_IN_BLOCK].tolist())
        self.beacon = hashlib.sha256(
            self.beacon + forger.to_bytes(4, "little", signed=True) + chosen
        ).digest()
        return TxOutcome(committed, reason, latency, share, 0, extra)

    @cached_property
    def _compiled(self) -> _Compiled | None:
        """The constants of the compiled path (built on first use); None: the numpy path runs.

        None when the stakes differ. The expected wait per further block depends on the
        eligible forgers only through their count when every node has the same hit
        probability (equal stakes, as built here), so it is tabulated by count with numpy's
        expression on the first k nodes.
        """
        n = self.network.n_nodes
        if not bool((self.hit_p == self.hit_p[0]).all()):
            return None
        geo, nodes, fc, ic = packed.pack_plane(self.plane, np.ones(n, dtype=bool))
        t_max = self.plane.t_max_ms
        per_block = np.full(n + 1, np.inf)
        with np.errstate(divide="ignore"):  # hit_p = 1 (one slot per block): log1p(-1) = -inf
            log_miss = np.log1p(-self.hit_p)
            for k in range(1, n + 1):
                per_block[k] = t_max / -np.expm1(np.log1p(-self.hit_p[:k]).sum())
        return _Compiled(
            packed.PackedPlane(geo, nodes, np.append(fc, float(self.confirmations)), ic),
            packed.draw_layout(n, N_PHASES, 0),
            log_miss,
            per_block,
            np.empty((0, n)),
        )

    def _decide_compiled(
        self,
        const: _Compiled,
        period: int,
        sellers: list[int],
        valid: NDArray[np.bool_],
        payloads: list[bytes],
    ) -> TxOutcome:
        """:meth:`decide_transactions` by the kernel :func:`~mgenv.chain.kernels_pos.pos_period`.

        The same random draws as the numpy path, in the same order; the kernel hashes, the
        beacon and the logarithms stay in Python and numpy.
        """
        plane = self.plane
        u = self._rng.random(const.layout.size)
        online = self.network.next_online(u[const.layout.online])
        n_valid = int(np.count_nonzero(valid))
        if n_valid == 0:
            self.last_round = NodeRound(online, None, False)
            return packed.empty_outcome(valid, online, self.safety_violation)
        lj = np.log1p(-u[const.layout.jitter])
        keys = const.no_keys
        if plane.n_missing:
            keys = plane.interruption_uniforms(min(n_valid, plane.block_size))
        kernel_u = self.kernels(period)
        n_tx = valid.size
        committed, reason = np.zeros(n_tx, dtype=bool), np.zeros(n_tx, dtype=np.int8)
        holders, chosen = np.empty(online.size, dtype=bool), np.zeros(n_tx, dtype=bool)
        geo, nodes, fc, ic = const.plane
        has_holders, latency, forger, share, n_ok, n_valid, missing, n_tampered = pos_period(
            u,
            lj,
            online,
            valid,
            np.asarray(sellers, dtype=np.int64),
            keys,
            kernel_u,
            np.log(kernel_u),
            const.log_miss,
            const.per_block,
            geo,
            nodes,
            fc,
            ic,
            self.safety_violation,
            committed,
            reason,
            holders,
            chosen,
        )
        if has_holders:
            self.last_round = NodeRound(online, holders, bool(plane.malicious[forger]))
        else:
            self.last_round = NodeRound(online, None, False)
        extra = packed.extra_of_counts(
            self.safety_violation, n_tx, n_valid, n_ok, 0, missing, n_tampered, forger
        )
        block = b"".join(compress(payloads, chosen.tolist()))  # rows in order, as numpy's
        self.beacon = hashlib.sha256(
            self.beacon + forger.to_bytes(4, "little", signed=True) + block
        ).digest()
        return TxOutcome(committed, reason, latency, share, 0, extra)

    def run_block(
        self,
        draw: RoundDraw,
        period: int,
        origin: NDArray[np.intp],
        interrupted: NDArray[np.bool_] | None,
    ) -> tuple[NDArray[np.int8], float, int, int]:
        """One block on a given draw: (reasons (B,), latency ms, forger or -1, missing copies)."""
        plane, t_max = self.plane, self.plane.t_max_ms
        online = draw.online
        link = draw.delivered & (online[:, None] & online)
        delays = self.network.delays_ms(draw.jitter_u)
        copies, data_ms = plane.broadcast(link[DATA], delays[DATA], origin, interrupted)
        missing = int(np.count_nonzero((copies == MISSING) & online))
        eligible = online & (plane.honest | self.safety_violation)
        if np.count_nonzero(eligible) == 0:
            return np.full(origin.size, PRIMARY_OFFLINE, np.int8), data_ms + t_max, -1, missing
        u = self.kernels(period)
        with np.errstate(divide="ignore"):
            slot = np.floor(np.log(u) / np.log1p(-self.hit_p))  # (n,) first hitting slot
        slot[self.hit_p >= 1.0] = 0.0
        forger = int(np.argmin(np.where(eligible, slot + u, np.inf)))
        in_block = copies[:, forger] != MISSING
        reason = np.where(
            in_block,
            np.int8(TAMPERED if plane.malicious[forger] else COMMITTED),
            np.int8(NOT_IN_BLOCK),
        )
        n = online.size
        size_ms = plane.header_ms + plane.ms_per_record * int(np.count_nonzero(in_block))
        arrival = delays[BLOCK, forger] + size_ms
        arrival = np.where(link[BLOCK, forger], arrival, np.inf)
        arrival[forger] = 0.0
        if in_block.any():  # the forger and the nodes its block reached hold it; an
            altered = bool(plane.malicious[forger])  # altered one only the colluders take
            holders = link[BLOCK, forger] & (plane.malicious if altered else True)
            holders[forger] = True
            self.last_round = NodeRound(online, holders, altered)
        spread = kth_smallest(arrival, n // 2 + 1)
        spread = spread if spread <= t_max else t_max
        with np.errstate(divide="ignore"):  # a certain forger: log1p(-1) = -inf, per_block = t_max
            per_block = t_max / -np.expm1(np.log1p(-self.hit_p[eligible]).sum())
        latency = data_ms + (slot[forger] + 1.0) * t_max + spread + self.confirmations * per_block
        return reason, float(latency), forger, missing
