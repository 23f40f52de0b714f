"""The chain stage's fast path for SBET: one kernel call per period (:meth:`Chain.process`).

The ``default`` scenario's chain (SBET, modelled HMAC signatures, no tamper hook, no node
authentication) spends most of a period in Python glue around its kernels: the trade lists,
signing and hashing with hashlib, the protocol's outcome, the verdicts' merge, the block and
the node view. :class:`FastSBET` does the period after its network draw in one call of
:func:`mgenv.chain.kernels_sbet_chain.sbet_chain_period` and builds the result from its
arrays; the results are those of the general code, bit for bit (same random draws in the same
order, same ledger bytes, verdicts, figures and node view; tests/test_fast_sbet.py).

When it applies: :func:`fast_path` says, once per chain, whether the configuration is one the
kernel covers (numba available, the SBET protocol with the argmax creator election and no
interruptions, modelled signatures, no node authentication, a PCG64 network stream, a
little-endian machine); :meth:`FastSBET.process` then declines (returns None, before drawing
anything) a period the kernel does not cover: the kernels switched off (``_jit.ENABLED``), a
tamper hook or a ledger sink set, or trade arrays :func:`mgenv.chain.screening.compilable`
refuses. The chain runs its general code for those periods; the two paths share every piece
of state (the protocol's network and ``last_round``, the ledger, the node view), so they can
alternate period by period.

State of its own: the constants packed for the kernel (built on the first period), buffers
reused every period (and by the next chain, when the env's reset builds it with
``Chain(previous=...)``), a view of the network stream's PCG64 state with which compiled
code makes the period's draw (:meth:`FastSBET.draw_or_view`: the fused step's kernel, or
:func:`mgenv.batched.pcg64.fill_live_kernel` in :meth:`FastSBET.process`), and a ring of the
committed block hashes
(:mod:`mgenv.chain.kernels_sbet_chain`), rebuilt from the ledger whenever the ledger has moved
without it (a period of the general path that committed, another ledger).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv._numpy_loops import log1p_loop
from mgenv.batched import pcg64
from mgenv.chain.kernels_pbft import log1p_matches_numpy
from mgenv.chain.kernels_sbet_chain import (
    AVAILABILITY,
    DOWN,
    DOWN_P,
    HDR_SIZE,
    HEADER_SIZE,
    HONEST,
    JITTER_IS_LOG,
    LOG1P_DATA,
    LOG1P_LOOP,
    MS_PER_PERIOD,
    N_FC,
    N_IC,
    N_NODE_ROWS,
    N_PARTICIPANTS,
    OUT_OF_RANGE,
    RECORD_SIZE,
    STAMP_OVERFLOW,
    UP_P,
    WINDOW,
    layout,
    sbet_chain_period,
    seeded_pads_into,
)
from mgenv.chain.ledger import Block
from mgenv.chain.nodeview import NodeRound
from mgenv.chain.packed import (
    FC_SIZE,
    IC_SIZE,
    PackedPlane,
    extra_of_counts,
    pack_plane_into,
)
from mgenv.chain.sbet import SBETProtocol
from mgenv.chain.sbet_steps import N_PHASES
from mgenv.chain.screening import check_range
from mgenv.chain.transactions import ModelledSigner
from mgenv.chain.types import ConsensusResult

if TYPE_CHECKING:
    from mgenv.chain.chain import Chain
    from mgenv.chain.ledger import Ledger

#: The attributes :meth:`FastSBET._views` makes, and ``_live`` (not copied or pickled).
_VIEWS = frozenset(
    ("_u", "_jitter_u", "_lj", "_ring", "_header", "_hash", "_records", "_capacity", "_live")
)
# No view of a stream's state: drawn in Python (writeable, as a view's type in the kernel)
_NO_WORDS = np.zeros(0, np.uint64)
_MIN_RECORDS = 32  # initial room for records (grown to the period's trades)
_new = tuple.__new__


def fast_path(chain: Chain, spare: FastSBET | None = None) -> FastSBET | None:
    """A :class:`FastSBET` if ``chain``'s configuration is one the kernel covers, else None.

    Checked once, when the chain is built; :meth:`FastSBET.process` checks what may change
    between periods. ``spare``: the :class:`FastSBET` of a chain this one replaces (handed
    over by ``Chain(previous=...)``: the env's last episode), whose buffers are reused when
    their sizes fit; else a new one.
    """
    proto = chain.protocol
    if not (
        _jit.AVAILABLE
        and sys.byteorder == "little"  # the payload words are written little-endian
        and type(proto) is SBETProtocol
        and type(chain.signer) is ModelledSigner
        and chain.auth is None
        and not proto.fixed.proportional  # its keys take numpy's logarithms
        and proto.plane.n_missing == 0  # interruptions draw again once the valid are known
        # a range error after the draw is undone by PCG64.advance (see FastSBET.process)
        and type(proto._rng.bit_generator) is np.random.PCG64
    ):
        return None
    if spare is None:
        return FastSBET()
    spare._forget_chain()
    return spare


class FastSBET:
    """The fast path's constants and buffers for one chain (see the module docstring)."""

    def __init__(self) -> None:
        self._sizes = (-1, -1, -1)  # (nodes, ledger window, participants) the buffers fit
        # (network stream's bit generator, a view of its state or _NO_WORDS): draw_or_view's
        self._live: tuple[np.random.BitGenerator, NDArray[np.uint64]] | None = None
        self._forget_chain()

    def _forget_chain(self) -> None:
        """Ready for a new chain: its constants packed on its first period, the ring synced."""
        self._built = False
        self._ring_top = 0  # the ledger height the ring is in step with
        self._ring_ledger: Ledger | None = None

    def _build(self, chain: Chain) -> None:
        """Pack the chain's constants into the buffers (on the chain's first period).

        The buffers are made here, or kept from the chain this object served before when
        they fit the same sizes: every constant is written again, and the other parts of
        the buffers are written by every period before they are read.
        """
        proto = chain.protocol
        assert isinstance(proto, SBETProtocol) and isinstance(chain.signer, ModelledSigner)
        net = proto.network
        n = net.n_nodes
        window = chain.ledger.window
        prefix, n_keys = chain.signer.key_material
        if self._sizes != (n, window, n_keys):
            self._allocate(n, window, n_keys)
        _, at_fc, at_geo, f_end, at_ring, _ = layout(n, window)
        fbuf, ibuf = self._fbuf, self._ibuf
        fc = fbuf[at_fc:at_geo]
        nodes = self._u8buf[:at_ring].view(bool).reshape(N_NODE_ROWS, n)
        packed = PackedPlane(
            fbuf[at_geo:f_end].reshape(3, n, n), nodes[:3], fc[:FC_SIZE], ibuf[:IC_SIZE]
        )
        pack_plane_into(proto.plane, proto.fixed.voters, packed)
        fc[DOWN_P], fc[UP_P] = net.transition
        fc[AVAILABILITY] = net.availability
        fc[MS_PER_PERIOD] = chain._ms_per_period
        fc[N_FC:] = proto.fixed.storage
        pads = self._pads
        seeded_pads_into(np.frombuffer(prefix, dtype=np.uint8), pads)  # the signer's keys
        ibuf[N_IC:] = pads.ravel()  # the uint32 states held in int64 words
        nodes[DOWN] = net.down
        nodes[HONEST] = chain.nodes.honest
        self._safety = bool(proto.safety_violation)
        self._built = True

    def _allocate(self, n: int, window: int, n_keys: int) -> None:
        """The buffers and their size-only constants for n nodes, a window, n_keys keys."""
        at_lj, at_fc, _, f_end, at_ring, at_hdr = layout(n, window)
        self._fbuf = np.zeros(f_end)
        self._at = (n + N_PHASES * n * n, at_lj, at_fc, at_ring, at_hdr)
        self._pads = np.empty((2, n_keys, 8), dtype=np.uint32)
        ibuf = np.zeros(N_IC + self._pads.size, dtype=np.int64)
        ibuf[N_PARTICIPANTS] = n_keys
        # the jitters' logarithms must be numpy's: the kernel calls numpy's own loop (found
        # on CPython), else the C library's where that gives numpy's numbers, else the
        # caller writes them before the kernel (draw)
        loop = log1p_loop()
        ibuf[LOG1P_LOOP], ibuf[LOG1P_DATA] = loop if loop is not None else (0, 0)
        self._jitter_is_log = loop is None and not log1p_matches_numpy()
        ibuf[JITTER_IS_LOG] = self._jitter_is_log
        ibuf[WINDOW] = window
        self._ibuf = ibuf
        self._u8buf = np.zeros(at_hdr + HDR_SIZE + _MIN_RECORDS * RECORD_SIZE, dtype=np.uint8)
        self._views()
        self._no_state = np.zeros(n, dtype=bool)
        self._sizes = (n, window, n_keys)

    def _views(self) -> None:
        """Make the views of the buffers (from ``_fbuf`` and ``_u8buf``).

        The draw, its jitters and their logarithms; the ring, the header, the hash and the
        records.
        """
        at_jitter, at_lj, at_fc, at_ring, at_hdr = self._at
        self._u = self._fbuf[:at_lj]  # the draw: rng.random(out=...)
        # the jitter uniforms: N_PHASES n^2 of them (as many as their logarithms), after
        # the online and loss ones and before the n extra ones (kernels_sbet_chain.layout)
        self._jitter_u = self._fbuf[at_jitter : at_jitter + (at_fc - at_lj)]
        self._lj = self._fbuf[at_lj:at_fc]
        buf = self._u8buf
        self._ring = buf[at_ring:at_hdr].reshape(-1, 32)
        self._header = buf[at_hdr : at_hdr + HEADER_SIZE]
        self._hash = buf[at_hdr + HEADER_SIZE : at_hdr + HDR_SIZE]
        self._records = buf[at_hdr + HDR_SIZE :].data  # sliced per block, cheaply
        self._capacity = (buf.size - at_hdr - HDR_SIZE) // RECORD_SIZE

    def __getstate__(self) -> dict[str, Any]:
        """The state without the views: a copy's views must look into its own buffers."""
        return {k: v for k, v in self.__dict__.items() if k not in _VIEWS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._live = None  # a copy's stream is another generator
        if self._built:
            self._views()

    def _grow(self, n_tx: int) -> None:
        """Room for ``n_tx`` records (the constants and the ring are kept)."""
        keep = self._at[-1] + HDR_SIZE
        grown = np.zeros(keep + max(n_tx, 2 * self._capacity) * RECORD_SIZE, dtype=np.uint8)
        grown[:keep] = self._u8buf[:keep]
        self._u8buf = grown
        self._views()

    def _sync_ring(self, ledger: Ledger) -> None:
        """Fill the ring with the hashes of the ledger's kept blocks (and the one before)."""
        ring = self._ring
        rows = ring.shape[0]
        top = ledger.next_height
        first = top - len(ledger)
        for k, block in enumerate(ledger):
            ring[(first + k) % rows] = np.frombuffer(block.hash, dtype=np.uint8)
        if first > 0:
            ring[(first - 1) % rows] = np.frombuffer(ledger[0].prev_hash, dtype=np.uint8)
        self._ring_top = top
        self._ring_ledger = ledger

    def process(
        self,
        chain: Chain,
        period: int,
        serial: int,
        seller: NDArray[np.int64],
        buyer: NDArray[np.int64],
        quantity_kwh: NDArray[np.float64],
        price: NDArray[np.float64],
    ) -> ConsensusResult | None:
        """``chain.process`` for one period, or None (nothing drawn) if this one is not covered.

        The arrays are ``screening.trade_arrays``' and ``screening.compilable`` accepts them
        (the caller checks); ``serial`` is the chain's next serial.

        Raises:
            ValueError: If a participant index is outside [0, n_participants) (nothing has
                changed then: the draw is undone).
        """
        n_tx = seller.size
        ints = np.empty(6, np.int64)
        begun = self.begin(chain, n_tx, ints)
        if begun is None:
            return None
        words, fbuf, ibuf, u8buf, state, height, head, forked = begun
        if words.size:  # the draw from the stream's live state, as the fused kernel makes it
            pcg64.fill_live_kernel(words, self._u)  # cached: fill_live alone compiles per process
        rows = np.empty((3, self._no_state.size), dtype=bool)  # state, online, holders
        committed = np.empty(n_tx, dtype=bool)
        reason = np.empty(n_tx, dtype=np.int8)
        top, kept, first = int(ints[2]), int(ints[3]), bool(ints[4])
        figures = sbet_chain_period(
            period, serial, top, kept, first, seller, buyer, quantity_kwh, price, fbuf, ibuf,
            u8buf, state, height, head, forked, rows, committed, reason,
        )  # fmt: skip
        return self.finish(chain, period, serial, n_tx, figures, rows, committed, reason)

    def prepare(self, chain: Chain, n_tx: int) -> bool:
        """Whether the kernel covers this period of ``chain`` with up to ``n_tx`` trades.

        If so, the buffers are ready for them (records' room, the ring in step with the
        ledger); nothing is drawn.
        """
        ledger = chain.ledger
        if not _jit.ENABLED or chain.tamper_hook is not None or ledger.sink is not None:
            return False
        if not self._built:
            self._build(chain)
        if n_tx > self._capacity:
            self._grow(n_tx)
        if ledger.next_height != self._ring_top or ledger is not self._ring_ledger:
            if ledger.window + 1 != self._ring.shape[0]:
                return False  # another ledger window: the constants do not fit it
            self._sync_ring(ledger)
        return True

    def begin(self, chain: Chain, n_tx: int, ints: NDArray[np.int64]) -> tuple[Any, ...] | None:
        """:meth:`prepare`, then the arguments a fused period's kernel takes from the chain.

        None (nothing drawn) if the kernel does not cover the period. Else ``ints[2:6]``
        receive ``sbet_chain_period``'s ``top`` (the ledger's next height), ``kept`` (the
        blocks it keeps), ``first`` (no online state yet) and the draw's size, and the
        result is ``(words, fbuf, ibuf, u8buf, state, height, head, forked)``: the view of
        the stream's state or, without one, the period's draw made (:meth:`draw_or_view`),
        the buffers and the state arguments. The fused step and :meth:`process` start here.
        """
        if not self.prepare(chain, n_tx):
            return None
        ledger, nodes = chain.ledger, chain.nodes
        state = cast(SBETProtocol, chain._protocol).network.online_state
        first = state is None
        ints[2], ints[3], ints[4], ints[5] = ledger.next_height, len(ledger), first, self._u.size
        return (
            self.draw_or_view(chain), self._fbuf, self._ibuf, self._u8buf,
            self._no_state if first else state, nodes.height, nodes.head, nodes.forked,
        )  # fmt: skip

    def draw_or_view(self, chain: Chain) -> NDArray[np.uint64]:
        """The period's network draw, or the view of the stream's state a kernel draws with.

        With a live view of the network stream's PCG64 state (:func:`pcg64.live_words`), a
        kernel makes :meth:`draw`'s draw with :func:`pcg64.fill_live` (the same doubles
        into the same buffer, the generator stepped alike): the view is returned and nothing
        is drawn. Otherwise :meth:`draw` draws and an empty array is returned.
        """
        bits = cast(SBETProtocol, chain._protocol)._rng.bit_generator
        live = self._live
        if live is None or live[0] is not bits:
            words = pcg64.live_words(bits)
            self._live = live = (bits, _NO_WORDS if words is None else words)
        if live[1].size and not self._jitter_is_log:
            return live[1]
        self.draw(chain, live[1])
        return _NO_WORDS

    def draw(self, chain: Chain, words: NDArray[np.uint64] = _NO_WORDS) -> None:
        """The period's network draw into the kernel's buffer (after :meth:`prepare`).

        Where the kernel cannot compute numpy's log1p (numpy's loop not found, and numpy's
        rounds differently from the C library's), the jitters' logarithms are numpy's,
        written here; then ``words``, the view of the network stream's state
        (:func:`pcg64.live_words`) if there is one, makes the draw and the jitters'
        negation one kernel call (the same numbers as ``rng.random``).
        Otherwise :meth:`draw_or_view` hands the view to the kernel, which draws itself.
        """
        if words.size and self._jitter_is_log:
            pcg64.fill_live_negated(words, self._u, self._at[0], self._lj)
            np.log1p(self._lj, out=self._lj)
            return
        rng = cast(SBETProtocol, chain._protocol)._rng  # fast_path checked its type
        rng.random(out=self._u)
        if self._jitter_is_log:  # the kernel cannot compute numpy's log1p here
            np.negative(self._jitter_u, out=self._lj)
            np.log1p(self._lj, out=self._lj)

    def finish(
        self,
        chain: Chain,
        period: int,
        serial: int,
        n_tx: int,
        figures: tuple[Any, ...],
        rows: NDArray[np.bool_],
        committed: NDArray[np.bool_],
        reason: NDArray[np.int8],
    ) -> ConsensusResult:
        """The chain's state and the period's result after ``sbet_chain_period``'s call.

        ``figures`` is what it returned; ``rows``, ``committed`` and ``reason`` its outputs.

        Raises:
            ValueError: If a participant index was out of range (the draw is undone) or the
                block's time stamp does not fit (as ``ledger.append`` raises).
        """
        (
            code, lo, hi, n_ok, n_valid, has_holders, altered, latency, share, changes, creator,
            recovered, missing, tampered, agree, lagging, off_chain, failures,
        ) = figures  # fmt: skip
        proto = cast(SBETProtocol, chain._protocol)
        net, ledger, nodes = proto.network, chain.ledger, chain.nodes
        if code == OUT_OF_RANGE:
            _undraw(proto._rng, self._u.size)
            check_range(lo, hi, chain.n_participants)
        chain._next_serial = serial + n_tx
        net.online_state = rows[0]
        # tuple.__new__ builds the same NamedTuples as their constructors, for less
        rnd = _new(NodeRound, (rows[1], rows[2] if has_holders else None, altered))
        proto.last_round = rnd
        extra = extra_of_counts(
            self._safety, n_tx, n_valid, n_ok, recovered, missing, tampered, creator
        )
        block = None
        if code == STAMP_OVERFLOW:  # ledger.append packs the stamp: it raises, as usual
            txs = self._records[: n_ok * RECORD_SIZE].tobytes()
            records = [txs[k : k + RECORD_SIZE] for k in range(0, len(txs), RECORD_SIZE)]
            stamp = round(period * chain._ms_per_period + latency)
            block = ledger.append(period, records, stamp)  # if not, the ring syncs next time
        elif n_ok:
            block = Block(
                self._header.tobytes(),
                self._records[: n_ok * RECORD_SIZE].tobytes(),
                self._hash.tobytes(),
            )
            ledger.adopt(block)
            self._ring_top += 1
        if altered or code == STAMP_OVERFLOW:  # the node view of the general code
            extra.update(nodes.update(period, ledger, block, rnd))
        else:
            nodes.link_failures += failures
            extra["honest_heads_agree"] = float(agree)
            extra["lagging_nodes"] = float(lagging)
            extra["forked_nodes"] = float(off_chain)
        return _new(ConsensusResult, (committed, reason, latency, share, changes, block, extra))


def _undraw(rng: np.random.Generator, size: int) -> None:
    """Move a PCG64 stream back by ``size`` 64-bit draws (``random`` of ``size`` doubles).

    ``PCG64.advance`` takes the step count modulo 2**128 (so a negative count goes back) and
    clears the buffered 32-bit half-word, which ``random`` does not use: it is put back.
    """
    bits = cast(np.random.PCG64, rng.bit_generator)  # fast_path checked its type
    before = bits.state
    bits.advance(-size)
    after = {**bits.state, "has_uint32": before["has_uint32"], "uinteger": before["uinteger"]}
    bits.state = cast(Any, after)  # the getter's own dict, two entries put back
