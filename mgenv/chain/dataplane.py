"""The data plane (seed 003, section III-A): who holds which copy of each transaction.

Shared by the protocols whose nodes broadcast the transactions themselves (``sbet``, ``spft``,
``pos``). A model, not a measurement.

**Origin.** Transaction t is recorded by node ``seller % n`` (the microgrid where the trade
was made; in seed 003 the microgrids are the validators) and broadcast from there.

**Broadcast** (Algorithm 1, lines 1-2; eq. 6). Node i sends its transactions ``tau_i`` to every
node u after the waiting time ``wait[i, u] = (1 - d(u, i) / d_max) t_max`` of eq. (6)
(contention-timer reading: the farther receivers are served first). A copy counts if it is
delivered (not lost, both ends online) and its transit time (delay + bytes * 8 / bandwidth) is
within the receiver's timer t_max, i.e. only a slowed DDoS link makes it late. The round lasts
the paper's "settled waiting time" t_max, or until the last counted copy arrives if that is
later (``wait + transit`` can exceed t_max by a transit time). Reading eq. (6) as a deadline
(arrival within t_max of the round's start) was rejected: two nodes a few hundred metres apart
wait almost t_max and could then never exchange data. On top of the losses, each transaction
fails to reach ``floor(missing_share * n)`` nodes other than its origin, chosen uniformly per
transaction (communication interruption; the paper's "missing transactions").

**Copies.** ``copies[t, i]`` (int8, shape (T, n)) is ``MISSING`` (0), ``TRUE`` (1) or
``ALTERED`` (2). The origin broadcasts the true record (it is a party to the trade). A
malicious node stores, relays and votes for the one altered copy the colluding adversaries
agree on (:mod:`mgenv.chain.adversary`); an honest node stores a copy only from the
broadcast or, in SBET, after the redundant exchange confirms it, so its copy is true or
missing unless the malicious nodes reach the threshold themselves.

**Query** (section IV-A, Figs. 7-8). Any node can be asked for a transaction; the client
accepts an answer once the protocol's read quorum of nodes give the same record (SBET: q;
SPFT: 2f + 1; PoS: one answer with a Merkle proof against the chain it follows), so a malicious
node's altered answer is outvoted while the honest nodes hold the protocol's bound. The answer
is correct iff it equals the true record, i.e. iff the transaction committed with its true
record: the period's query accuracy is the share of its valid transactions that committed
(missing and tampered ones are wrong answers). :func:`query_delay_ms` models the delay: the
client, at a uniformly random point, asks every node and waits for the read quorum's answers.

Random stream: the tx-level draws (which nodes miss each transaction) vary in size with the
number of trades, so they come from a child of the network stream spawned at construction;
the network's own per-period draw keeps its fixed size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv.chain.network import constant, identity
from mgenv.chain.transactions import PAYLOAD_SIZE
from mgenv.chain.types import BLOCK_FULL, COMMITTED, TAMPERED, TxOutcome

if TYPE_CHECKING:
    from mgenv.chain.network import NetworkModel, RoundDraw
    from mgenv.chain.params import ChainParams

MISSING: Final = 0
TRUE: Final = 1
ALTERED: Final = 2
_STORED = np.array([TRUE, ALTERED], np.int8)  # indexed by malicious: each node's stored copy
_STORED.flags.writeable = False
HEADER_BYTES: Final = 96  # message header: sender, type, period, node signature
HASH_BYTES: Final = 32  # a SHA-256 digest
SERIAL_BYTES: Final = 8


def kth_smallest(values: NDArray[np.float64], k: int) -> float:
    """The k-th smallest (1-based) of a 1-D array, sorting it in place; inf if out of range."""
    if not 1 <= k <= values.size:
        return math.inf
    values.sort()
    return float(values[k - 1])


def close_ms(arrival: NDArray[np.float64], k: int, t_max: float) -> float:
    """When a collector closes (ms): its k-th arrival if within t_max, else t_max; 0 if k <= 0.

    Args:
        arrival: Shape (m,), arrival times, inf for messages that never come (sorted in
            place).
        k: Messages the collector waits for.
        t_max: Its timer (ms).
    """
    if k <= 0:
        return 0.0
    kth = kth_smallest(arrival, k)
    return kth if kth <= t_max else t_max


def quorum(gamma: float, n_nodes: int) -> int:
    """Smallest count k with k / n >= gamma (eq. 4), with a 1e-9 guard against rounding."""
    return max(1, math.ceil(gamma * n_nodes - 1e-9))


def record_bytes(params: ChainParams) -> int:
    """Bytes of one stored transaction: the 40-byte payload and two signatures."""
    return PAYLOAD_SIZE + 2 * (64 if params.signatures == "ed25519" else 32)


class Admitted(NamedTuple):
    """The period's transactions that enter the block process.

    Attributes:
        rows: Shape (B,), int: positions (in the period's list) of the admitted ones, the
            first ``block_size`` valid transactions in serial order.
        reason: Shape (T,), int8: ``BLOCK_FULL`` for valid ones beyond the block, else 0.
        origin: Shape (B,), int: the node that broadcasts each admitted transaction.
    """

    rows: NDArray[np.intp]
    reason: NDArray[np.int8]
    origin: NDArray[np.intp]


class OpenRound(NamedTuple):
    """The start of a data-plane protocol's period (see :meth:`DataPlane.open_round`).

    Attributes:
        draw: This period's network realisation.
        share: Share of validator nodes online.
        admitted: The transactions that enter the block process.
        empty: The period's outcome when nothing was admitted, else None.
    """

    draw: RoundDraw
    share: float
    admitted: Admitted
    empty: TxOutcome | None


def missing_count(params: ChainParams) -> int:
    """Nodes each transaction misses by interruption: ``floor(missing_share * n)``, < n."""
    n = params.n_nodes
    return min(n - 1, math.floor(params.missing_share * n + 1e-9))


class DataPlane:
    """Fixed data-plane state of a protocol: timers, malicious nodes, interruption stream.

    Args:
        params: Chain parameters.
        network: The protocol's network model (its geometry gives the eq. 6 waiting times).
        malicious: Shape (n,), bool: malicious nodes.
        rng: The child stream for the tx-level draws (None: there are none, no
            interruptions).

    Attributes:
        t_max_ms: The timer t_max (ms).
        wait_ms: Shape (n, n): eq. (6) waiting time [sender, receiver] (ms).
        header_ms: Transmission time of a message header (ms).
        ms_per_record: Transmission time of one stored transaction (ms).
        quorum: ceil(gamma * n), the verification threshold of eq. (4) as a count.
        n_missing: Nodes each transaction misses by interruption.
        able: Shape (n,), bool: would take on the block (not kept busy by a DDoS, or
            malicious: those always volunteer).
    """

    def __init__(
        self,
        params: ChainParams,
        network: NetworkModel,
        malicious: NDArray[np.bool_],
        rng: np.random.Generator | None,
    ) -> None:
        n = params.n_nodes
        self.n_nodes = n
        self.network = network
        self.malicious = malicious
        self.any_malicious = bool(np.count_nonzero(malicious))
        everyone = constant(n, True)  # read-only, shared: no fresh row when nobody is
        self.honest = ~malicious if self.any_malicious else everyone
        idle = network.slow is None  # no slowing DDoS: nobody kept busy
        self.able = everyone if idle and not self.any_malicious else malicious | ~network.busy
        self.t_max_ms = params.t_max_ms
        self.wait_ms = network.wait_ms(params.t_max_ms)
        self.header_ms = network.ms_per_byte * HEADER_BYTES
        self.ms_per_record = network.ms_per_byte * record_bytes(params)
        self.quorum = quorum(params.gamma, n)
        self.n_missing = missing_count(params)
        self.block_size = params.block_size
        # (n,): ALTERED where malicious
        self._stored = (
            _STORED[malicious.view(np.uint8)] if self.any_malicious else constant(n, TRUE, np.int8)
        )
        self._onehot = identity(n)  # read-only
        if rng is None and self.n_missing:
            raise ValueError("a data plane with interruptions needs their stream")
        self._rng = rng
        self._no_keys = np.empty((0, n))  # no interruption uniforms (compiled path)

    def open_round(
        self,
        rng: np.random.Generator,
        sellers: list[int],
        valid: NDArray[np.bool_],
        safety_violation: bool,
    ) -> OpenRound:
        """Draw the period's network from ``rng`` and admit its transactions.

        The common start of sbet, spft and pos; ``empty`` is the whole outcome of a period in
        which no transaction is admitted (nothing commits, no latency).
        """
        draw = self.network.draw_round(rng)
        share = float(np.count_nonzero(draw.online)) / draw.online.size
        adm = self.admit(sellers, valid)
        empty = None
        if adm.rows.size == 0:
            empty = TxOutcome(
                np.zeros(valid.size, dtype=bool),
                adm.reason,
                0.0,
                share,
                0,
                self.extra(safety_violation, 0, valid, 0, 0, 0, -1),
            )
        return OpenRound(draw, share, adm, empty)

    def admit(self, sellers: list[int], valid: NDArray[np.bool_]) -> Admitted:
        """Choose the transactions of this period's block and their origin nodes.

        Args:
            sellers: Length T: seller's participant index of each transaction.
            valid: Shape (T,), bool: passed the signature and validity checks.

        Returns:
            The admitted transactions.
        """
        index = np.flatnonzero(valid)
        reason = np.zeros(valid.size, dtype=np.int8)
        if index.size > self.block_size:
            reason[index[self.block_size :]] = BLOCK_FULL
            index = index[: self.block_size]
        origin = np.asarray(sellers, dtype=np.intp)[index] % self.n_nodes
        return Admitted(index, reason, origin)

    def interrupted(self, origin: NDArray[np.intp]) -> NDArray[np.bool_] | None:
        """Which nodes each transaction misses by interruption, shape (T, n); None if none.

        Draws ``rng.random((T, n))`` from the child stream when ``n_missing > 0``: the
        ``n_missing`` non-origin nodes with the smallest uniforms miss the transaction.

        Args:
            origin: Shape (T,), the origin node of each transaction.
        """
        if self.n_missing == 0 or origin.size == 0 or self._rng is None:
            return None
        keys = self._rng.random((origin.size, self.n_nodes))
        keys[self._onehot[origin]] = 2.0  # the origin always keeps its own
        rank = keys.argsort(axis=1).argsort(axis=1)
        return rank < self.n_missing

    def interruption_uniforms(self, n_admitted: int) -> NDArray[np.float64]:
        """The uniforms :meth:`interrupted` draws for ``n_admitted`` transactions (same draw).

        For the compiled path, which ranks them in a kernel
        (:func:`mgenv.chain.kernels_dataplane.interruptions`).

        Returns:
            Shape (n_admitted, n) from ``rng.random``; shape (0, n) when :meth:`interrupted`
            draws nothing (no interruptions, or no transaction).
        """
        if self.n_missing == 0 or n_admitted == 0 or self._rng is None:
            return self._no_keys
        return self._rng.random((n_admitted, self.n_nodes))

    def broadcast(
        self,
        link: NDArray[np.bool_],
        delay_ms: NDArray[np.float64],
        origin: NDArray[np.intp],
        interrupted: NDArray[np.bool_] | None,
    ) -> tuple[NDArray[np.int8], float]:
        """Copies after the broadcast round and the round's duration (ms).

        Args:
            link: Shape (n, n), bool [sender, receiver]: delivered, both ends online.
            delay_ms: Shape (n, n), one-way delays of the round (ms).
            origin: Shape (T,), origin node of each transaction.
            interrupted: Shape (T, n) from :meth:`interrupted`, or None.

        Returns:
            ``(copies, duration_ms)``: copies shape (T, n), int8 (MISSING / TRUE / ALTERED).
        """
        size_ms = self.ms_per_record * np.bincount(origin, minlength=self.n_nodes)  # (n,)
        transit = delay_ms + (self.header_ms + size_ms)[:, None]  # (n, n)
        in_time = link & (transit <= self.t_max_ms)
        has = in_time[origin] | self._onehot[origin]  # (T, n)
        if interrupted is not None:
            has &= ~interrupted
        last = float(np.where(in_time, self.wait_ms + transit, 0.0).max())
        copies = (has * self._stored).astype(np.int8, copy=False)
        return copies, last if last > self.t_max_ms else self.t_max_ms

    def verdicts(
        self,
        adm: Admitted,
        valid: NDArray[np.bool_],
        status: NDArray[np.int8],
        safety_violation: bool,
        recovered: int,
        missing: int,
        creator: int,
    ) -> tuple[NDArray[np.bool_], NDArray[np.int8], dict[str, float]]:
        """The period's verdicts from the admitted transactions' block status (common end).

        Args:
            adm: The admitted transactions (:meth:`admit`); its ``reason`` is filled in.
            valid: Shape (T,), bool: passed the signature and validity checks.
            status: Shape (B,), int8: each admitted transaction's reason code from the block.
            safety_violation: The protocol's malicious nodes are beyond its bound.
            recovered: Copies honest nodes recovered (SBET; 0 for the others).
            missing: Copies missing after the broadcast.
            creator: Block creator, primary or forger (-1 if none).

        Returns:
            ``(committed (T,) bool, reason (T,) int8, extra)`` for the :class:`TxOutcome`.
        """
        committed = np.zeros(valid.size, dtype=bool)
        reason = adm.reason
        reason[adm.rows] = status
        ok = status == COMMITTED
        committed[adm.rows] = ok
        n_tampered = int(np.count_nonzero(status == TAMPERED))
        extra = self.extra(
            safety_violation,
            int(np.count_nonzero(ok)),
            valid,
            recovered,
            missing,
            n_tampered,
            creator,
        )
        return committed, reason, extra

    @staticmethod
    def extra(
        safety_violation: bool,
        n_committed: int,
        valid: NDArray[np.bool_],
        recovered: int,
        missing: int,
        tampered: int,
        creator: int,
    ) -> dict[str, float]:
        """The protocol figures of a period (``TxOutcome.extra``; ``chain_<name>`` in infos).

        ``committed_share``: committed / all the period's transactions; ``query_accuracy``:
        committed / valid ones (a query is correct iff the transaction committed with its true
        record); both 1.0 when there are none. ``creator`` (block creator, primary or forger)
        is -1 when there is none.
        """
        n_valid = int(np.count_nonzero(valid))
        return {
            "safety_violation": float(safety_violation),
            "committed_share": n_committed / valid.size if valid.size else 1.0,
            "query_accuracy": n_committed / n_valid if n_valid else 1.0,
            "recovered": float(recovered),
            "missing_copies": float(missing),
            "tampered": float(tampered),
            "creator": float(creator),
        }


def query_delay_ms(
    network: NetworkModel,
    rng: np.random.Generator,
    needed: int,
    t_max_ms: float,
    proof_bytes: int,
) -> float:
    """Simulated delay of one query (ms): the arrival of the ``needed``-th answer.

    The client sits at a uniformly random point of the square and sends the query to every
    node; each node that is online (DDoS included) and whose request and answer are not lost
    answers with the record and its Merkle proof (``proof_bytes``). Round trip = 2 (base +
    distance delay) + two independent exponential jitters, all times the node's DDoS
    slowdown, + the answer's transmission time. If fewer than ``needed`` answers come, the
    client retries after t_max (at most 8 tries, then ``inf``: the query failed).

    Args:
        network: The protocol's network model (positions, delays, availability, loss).
        rng: The experiment's stream (client position, online states, losses, jitter).
        needed: Answers the client waits for (the protocol's read quorum), >= 1.
        t_max_ms: The retry timer (ms).
        proof_bytes: Size of an answer (bytes).

    Returns:
        The delay (ms).
    """
    n = network.n_nodes
    client = rng.uniform(0.0, network.area_km, 2)
    dist = np.sqrt(((network.positions_km - client) ** 2).sum(axis=1))  # (n,)
    one_way = network.base_ms + network.per_km_ms * dist  # (n,)
    size_ms = float(network.transmission_ms(proof_bytes))
    waited = 0.0
    for _ in range(8):
        u = rng.random((5, n))
        answers = (u[0] < network.availability) & ~network.down
        answers &= (u[1] >= network.message_loss) & (u[2] >= network.message_loss)
        jitter = -network.jitter_ms * (np.log1p(-u[3]) + np.log1p(-u[4]))
        rtt = np.where(answers, network.node_slow * (2.0 * one_way + jitter) + size_ms, np.inf)
        if np.count_nonzero(answers) >= needed:
            return waited + float(np.partition(rtt, needed - 1)[needed - 1])
        waited += t_max_ms
    return math.inf
