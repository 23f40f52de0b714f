"""The chain stage's facade: trades in, signed transactions, consensus, ledger, verdicts out.

Per period (:meth:`Chain.process`):

1. each trade becomes a transaction with the next serial; its 40-byte payload is signed by the
   seller and by the buyer (:mod:`mgenv.chain.transactions`);
2. ``Chain.tamper_hook``, if set, may alter payloads or signatures in flight (the seam where
   adversaries act; tests use it to tamper);
3. the nodes check each transaction once: the validity predicate (quantity a positive finite
   number of kWh, finite price, seller != buyer) and both signatures;
4. the protocol decides the block of the valid transactions (:mod:`mgenv.chain.protocols`);
5. if it commits, the block is appended to the bounded, hash-linked ledger
   (:mod:`mgenv.chain.ledger`) with the simulated timestamp
   ``round(period * period_h * 3.6e6 + latency_ms)`` ms (``period_h``: the market period's
   length, given by the env);
6. each validator node's own height and head hash are updated from who received the block,
   with a catch-up rule for the nodes that missed one (:mod:`mgenv.chain.nodeview`;
   ``Chain.node_heads``); protocols with a node model (PBFT, SPFT, SBET, PoS) add
   ``honest_heads_agree``, ``lagging_nodes`` and ``forked_nodes`` to ``extra``.

Compiled paths (numba, :data:`mgenv._jit.ENABLED`): step 1's checks, payloads and validity
verdicts (:mod:`mgenv.chain.screening`, one kernel), PBFT's round and the nodes' view run as
kernels with the same results; signing, verification and hashing stay in Python's hashlib.

Random streams: ``network_rng`` belongs to the network model (node positions at
construction, one fixed-size draw per period), ``adversary_rng`` to the adversaries (the
withholding nodes at construction); see :mod:`mgenv.chain.network`,
:mod:`mgenv.chain.adversary`. Keys come from ``key_seed`` without randomness. The ideal
protocol draws nothing. Same seeds give identical results, block hashes included.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from itertools import compress

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mgenv import _jit
from mgenv.chain import screening
from mgenv.chain.auth import make_auth
from mgenv.chain.fast_sbet import FastSBET, fast_path
from mgenv.chain.kernels_chain import combine_verdicts
from mgenv.chain.ledger import Block, Ledger
from mgenv.chain.nodeview import NodeHeads
from mgenv.chain.params import ChainParams
from mgenv.chain.protocols import PROTOCOLS, ConsensusProtocol
from mgenv.chain.sbet import SBETDraws, SBETProtocol
from mgenv.chain.store import LedgerStore
from mgenv.chain.transactions import Signer, check_key_seed, make_signer
from mgenv.chain.types import ConsensusResult, TxOutcome

#: Called as ``hook(period, payloads, seller_sigs, buyer_sigs)`` after signing and before
#: verification; may replace list items in place (lists of length T, aligned with the trades).
TamperHook = Callable[[int, list[bytes], list[bytes], list[bytes]], None]

MAX_PARTICIPANTS = 2**32 - 1  # participant indices are packed as uint32
_INF = math.inf
_MS_PER_H = 3_600_000.0
_join = b"".join
_ALL_TRUE = np.ones(256, dtype=bool)  # sliced and copied: cheaper than reason == 0
_ALL_TRUE.flags.writeable = False


class Chain:
    """A simulated permissioned blockchain that settles a market's trades.

    Participants (0..n_participants-1, the env's global order) sign transactions; validator
    nodes (0..n_nodes-1, separate) run the consensus protocol.

    Args:
        params: Chain parameters.
        n_participants: Number of market participants, each with its own signing key.
        network_rng: Stream for the network model (kept and drawn from every period).
        adversary_rng: Stream for the adversaries (drawn from at construction); None with
            ``drawn``.
        key_seed: Integer in [0, 2**128) from which every participant's key is derived.
        period_h: Length of a market period (h), for the blocks' simulated timestamps only;
            the env passes its ``dt_h`` (the chain keeps no copy of it in ``ChainParams``).
        previous: A chain this one replaces (the env passes its last episode's): its fast
            path's buffers are taken over (:func:`mgenv.chain.fast_sbet.fast_path`); it
            stays usable, on its general path.
        drawn: SBET only: the construction's draws already made from these streams
            (:class:`mgenv.chain.sbet.SBETDraws`, :mod:`mgenv.episode_draws`), the network
            stream past them; None: drawn here.

    Attributes:
        params: The parameters.
        n_participants: Number of participants.
        ledger: Bounded window of recent blocks.
        nodes: Each validator node's height and head hash (:mod:`mgenv.chain.nodeview`).
        tamper_hook: Optional adversary / test seam, see ``TamperHook``; None by default.
    """

    def __init__(
        self,
        params: ChainParams,
        n_participants: int,
        network_rng: np.random.Generator,
        adversary_rng: np.random.Generator | None,
        key_seed: int,
        period_h: float = 1.0,
        previous: Chain | None = None,
        drawn: SBETDraws | None = None,
    ) -> None:
        if not 0.0 < period_h < _INF:
            raise ValueError(f"period_h={period_h!r} is outside (0, inf)")
        if isinstance(n_participants, bool) or not 1 <= operator.index(n_participants) <= (
            MAX_PARTICIPANTS
        ):
            raise ValueError(f"n_participants={n_participants!r} is outside [1, 2**32 - 1]")
        self.params = params
        self.n_participants = operator.index(n_participants)
        self.store = LedgerStore(params.ledger_path) if params.ledger_path else None
        self.ledger = Ledger(params.ledger_window, self.store.append if self.store else None)
        self.tamper_hook: TamperHook | None = None
        self._signer: Signer = make_signer(
            params.signatures, check_key_seed(key_seed), self.n_participants
        )
        self._protocol: ConsensusProtocol
        if drawn is not None:
            if params.protocol != "sbet":
                raise ValueError(f"drawn is for protocol 'sbet', not {params.protocol!r}")
            self._protocol = SBETProtocol(params, network_rng, adversary_rng, drawn)
        elif adversary_rng is None:
            raise ValueError("Chain needs adversary_rng (or, for SBET, drawn)")
        else:
            self._protocol = PROTOCOLS[params.protocol](params, network_rng, adversary_rng)
        self._next_serial = 0
        malicious = getattr(self._protocol, "malicious", None)
        self.nodes = NodeHeads(
            malicious if malicious is not None else np.zeros(params.n_nodes, dtype=bool)
        )
        self._ms_per_period = float(period_h) * _MS_PER_H
        # Seed 001: registration and authentication of every participant (None: no checks).
        self.auth = make_auth(params, self.n_participants, check_key_seed(key_seed))
        # SBET's periods in one kernel call when the configuration allows (mgenv.chain.fast_sbet),
        # in the buffers of the chain this one replaces if it had them (it keeps working, on
        # its general path: the two paths give the same results)
        spare: FastSBET | None = None
        if previous is not None:
            spare, previous._fast = previous._fast, None
        self._fast: FastSBET | None = fast_path(self, spare)

    @property
    def protocol(self) -> ConsensusProtocol:
        """The consensus protocol instance (its state: view, network, adversaries)."""
        return self._protocol

    @property
    def signer(self) -> Signer:
        """The participants' signer (keys derived from ``key_seed``)."""
        return self._signer

    def node_heads(self) -> list[bytes]:
        """Each validator node's head hash (32 bytes), in node order; see ``nodes``."""
        return self.nodes.heads()

    def sync_nodes(self) -> None:
        """Every node comes online once and catches up (e.g. at the end of an episode).

        Forked (malicious) nodes stay on their fork; see :mod:`mgenv.chain.nodeview`.
        """
        self.nodes.catch_up(np.ones(self.nodes.height.size, dtype=bool), self.ledger)

    def _track(self, period: int, block: Block | None) -> dict[str, float]:
        """Update the nodes' view after the period's decision; the figures for ``extra``."""
        return self.nodes.update(
            period, self.ledger, block, getattr(self._protocol, "last_round", None)
        )

    @property
    def next_serial(self) -> int:
        """Serial the next transaction gets (= number of transactions ever submitted)."""
        return self._next_serial

    def process(
        self,
        period: int,
        seller: ArrayLike,
        buyer: ArrayLike,
        quantity_kwh: ArrayLike,
        price: ArrayLike,
        intermediary: ArrayLike | None = None,
    ) -> ConsensusResult:
        """Turn one period's cleared trades into transactions and decide which settle.

        Call exactly once per market period, in order (the network draws once per call).

        Args:
            period: Market period index.
            seller: Shape (T,), integer: seller's participant index.
            buyer: Shape (T,), integer: buyer's participant index.
            quantity_kwh: Shape (T,), float: traded energy (kWh).
            price: Shape (T,), float: price (yuan/kWh).
            intermediary: Optional shape (T,), integer: the aggregator that brokers each trade;
                with node authentication on, it must be authenticated too (not signed: the
                payload layout names only the two parties).

        Returns:
            Per-trade verdicts and the period's consensus figures.

        Raises:
            ValueError: If the arrays are not 1-D of one length, the indices are not integers,
                or a participant index is outside [0, n_participants).
        """
        period = operator.index(period)
        serial = self._next_serial
        n_participants = self.n_participants
        arrays = screening.trade_arrays(seller, buyer, quantity_kwh, price)  # 4 x (T,)
        if self._fast is not None and screening.compilable(*arrays, serial, period):
            fast = self._fast.process(self, period, serial, *arrays)
            if fast is not None:
                return fast
        verdict: NDArray[np.int8] | None = None  # the compiled validity verdicts, if any
        quantities: list[float] | None = None  # made only when needed on the compiled path
        prices: list[float] | None = None
        if _jit.ENABLED and screening.compilable(*arrays, serial, period):
            payloads, verdict, n_invalid = screening.screen_compiled(
                *arrays, serial, period, n_participants
            )
            sellers, buyers = arrays[0].tolist(), arrays[1].tolist()
            self._next_serial = serial + len(sellers)
        else:
            sellers, buyers, quantities, prices = screening.trade_lists(*arrays, n_participants)
            # advanced before packing, which raises for a period outside int64
            self._next_serial = serial + len(sellers)
            payloads = screening.pack_payloads(serial, period, sellers, buyers, quantities, prices)
        n_tx = len(sellers)
        seller_sigs, buyer_sigs = self._signer.sign_pairs(sellers, buyers, payloads)
        hook = self.tamper_hook
        if hook is not None:
            hook(period, payloads, seller_sigs, buyer_sigs)
            # The nodes judge the transactions as received, not as the market sent them.
            sellers, buyers, quantities, prices = screening.as_received(
                payloads, serial, period, n_participants
            )
            verdict = None  # about the trades as sent
        if hook is None and self._signer.kind == "modelled":
            # Nothing altered the payloads or tags since they were computed a moment ago, and
            # recomputing an HMAC gives the same tag: every one verifies by construction. The
            # check runs whenever an adversary hook is set, and always for Ed25519.
            signed = None
        else:
            signed = self._signer.verify_pairs(sellers, buyers, payloads, seller_sigs, buyer_sigs)
        # clean: every trade valid and signed, so every reason is 0 (the usual period)
        if verdict is not None and (signed is None or all(signed)):
            reason, clean = verdict, n_invalid == 0  # = reject_reasons with every sig good
        else:
            if quantities is None or prices is None:
                quantities, prices = arrays[2].tolist(), arrays[3].tolist()
            clean = (signed is None or all(signed)) and screening.all_valid(
                sellers, buyers, quantities, prices
            )
            if clean:
                reason = np.zeros(n_tx, dtype=np.int8)  # (T,)
            else:
                signed = [True] * n_tx if signed is None else signed
                reason = screening.reject_reasons(signed, sellers, buyers, quantities, prices)
        if self.auth is not None:  # seed 001: trades of unauthenticated nodes are refused
            clean = False
            brokers = None if intermediary is None else np.asarray(intermediary).tolist()
            reason = self.auth.screen(sellers, buyers, reason, brokers)
        decide_tx = getattr(self._protocol, "decide_transactions", None)
        if decide_tx is not None:  # it builds the records of what it commits
            return self._per_transaction(
                decide_tx, period, sellers, buyers, payloads, seller_sigs, buyer_sigs, reason
            )
        # payload || seller sig || buyer sig; b"".join of a 3-tuple is cheaper than two +
        records = list(map(_join, zip(payloads, seller_sigs, buyer_sigs, strict=True)))
        if not clean:
            records = list(compress(records, (reason == 0).tolist()))
        outcome = self._protocol.decide(len(records) > 0)
        if not (records and outcome.committed):
            if clean:  # every reason is 0: all become the round's
                reason.fill(outcome.reason)
            else:
                reason[reason == 0] = outcome.reason
            return ConsensusResult(
                np.zeros(n_tx, dtype=bool),
                reason,
                outcome.latency_ms,
                outcome.online_share,
                outcome.view_changes,
                None,
                self._track(period, None),
            )
        stamp = round(period * self._ms_per_period + outcome.latency_ms)
        block = self.ledger.append(period, records, stamp)
        return ConsensusResult(
            _ALL_TRUE[:n_tx].copy() if clean and n_tx <= _ALL_TRUE.size else reason == 0,
            reason,
            outcome.latency_ms,
            outcome.online_share,
            outcome.view_changes,
            block,
            self._track(period, block),
        )

    def _per_transaction(
        self,
        decide_tx: Callable[..., TxOutcome],
        period: int,
        sellers: list[int],
        buyers: list[int],
        payloads: list[bytes],
        seller_sigs: list[bytes],
        buyer_sigs: list[bytes],
        reason: np.ndarray,
    ) -> ConsensusResult:
        """Run a per-transaction protocol; the transactions it commits form the block.

        The protocol is called as ``decide_transactions(period, sellers, buyers, valid,
        payloads)`` with ``valid`` the (T,) mask of transactions that passed the checks.
        """
        valid = reason == 0
        out = decide_tx(period, sellers, buyers, valid, payloads)
        if _jit.ENABLED:  # the same three lines as below, in one compiled call
            committed = np.empty(valid.size, dtype=bool)
            reason = reason.astype(np.int8)  # a copy: the caller's array stays as it was
            n_ok = combine_verdicts(reason, out.committed, out.reason, committed)
        else:
            committed = valid & out.committed
            reason = np.where(valid & ~committed, out.reason, reason).astype(np.int8)
            n_ok = int(np.count_nonzero(committed))
        block = None
        if n_ok:
            records = [
                b"".join((payloads[i], seller_sigs[i], buyer_sigs[i]))
                for i, ok in enumerate(committed.tolist())
                if ok
            ]
            stamp = round(period * self._ms_per_period + out.latency_ms)
            block = self.ledger.append(period, records, stamp)
        figures = self._track(period, block)
        extra = {**out.extra, **figures} if figures else out.extra
        return ConsensusResult(
            committed, reason, out.latency_ms, out.online_share, out.view_changes, block, extra
        )
