"""A whole period of the chain stage for SBET in one kernel call (numba, :mod:`mgenv._jit`).

:func:`sbet_chain_period` does what :meth:`mgenv.chain.Chain.process` does for an SBET chain
with modelled (HMAC) signatures, no tamper hook and no node authentication, after the
period's network draw: the trades' range check and validity verdicts
(:func:`mgenv.chain.kernels_chain.screen_and_pack`), the online nodes
(``NetworkModel.next_online``), SBET's admission, block and verdicts
(:func:`mgenv.chain.kernels_sbet.sbet_period`), the merge with the chain's own verdicts
(:func:`mgenv.chain.kernels_chain.combine_verdicts`), the committed records (payload and the
seller's and buyer's HMAC tags, ``ModelledSigner.sign_pairs``), the block's Merkle root,
header and hash (``ledger.make_block``, :mod:`mgenv.chain.kernels_sha`) and the validator
nodes' view (:mod:`mgenv.chain.kernels_nodeview`, ``NodeHeads.update``). Python keeps the
random draw (``rng.random(out=...)``), builds the result's objects from the kernel's arrays
and falls back to the general code for what the kernel leaves out (an altered block's fork
in the node view). :mod:`mgenv.chain.fast_sbet` is the caller and says when it applies.

Bit for bit: the same expressions as the kernels and numpy code it mirrors, in the same order.
Only the trades of the block are signed: the tags of the others never leave the chain stage
(records are stored only in blocks), and an HMAC has no side effect.

The committed chain's hashes the node view looks up (a node's head against the block at its
height) come from a ring of the last ``window + 1`` block hashes that the caller keeps in step
with the ledger (:mod:`mgenv.chain.fast_sbet`), instead of the ledger's Python objects: the
hash at height h is in row ``h % (window + 1)``, and block h's ``prev_hash`` is the hash at
h - 1 (zeros at 0), as the ledger links them.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from mgenv._jit import inlined, kernel
from mgenv._numpy_loops import call_unary
from mgenv.chain import kernels_dataplane as kd
from mgenv.chain.kernels_nodeview import _at_head, _same_hash, deliver
from mgenv.chain.kernels_sbet import run_block
from mgenv.chain.kernels_sbet_steps import work
from mgenv.chain.kernels_sha import H0, _block_core, _hmac_core, _sha256_core, sha256_compress
from mgenv.chain.packed import BLOCK_SIZE, JITTER, LOSS, MALICIOUS, QUORUM
from mgenv.chain.sbet_steps import N_PHASES
from mgenv.chain.types import INVALID_TRADE

_INF: Final = np.inf
_U32: Final = np.uint64(0xFFFFFFFF)

# A kernel call costs ~0.15-0.25 µs per array argument, so the chain's constants and buffers
# travel in three arrays, one per dtype, laid out as below (n nodes, P participants, W the
# ledger window; :func:`layout` gives the offsets, :mod:`mgenv.chain.fast_sbet` fills them).
#
# ``fbuf`` (float64): the draw (D = 2 n + 2 P_h n^2, P_h = N_PHASES) | log1p(-jitter
# uniforms) (P_h n^2) | ``fc`` (N_FC + n) | ``geo`` (3 n^2, PackedPlane.geo).
# Entries of ``fc``: PackedPlane.fc's five (T_MAX .. JITTER), then these, then storage (n).
DOWN_P, UP_P, AVAILABILITY, MS_PER_PERIOD = 5, 6, 7, 8
N_FC: Final = 9  # fc[N_FC : N_FC + n]: the nodes' storage spaces s_i (eq. 7)
# ``ibuf`` (int64): PackedPlane.ic's three (QUORUM, BLOCK_SIZE, N_MISSING), these, then the
# HMAC midstates (2, P, 8): inner (row 0) and outer (row 1), 32-bit words. LOG1P_LOOP and
# LOG1P_DATA: numpy's log1p loop (mgenv._numpy_loops.log1p_loop), 0 to use the C library's.
N_PARTICIPANTS, JITTER_IS_LOG, WINDOW, LOG1P_LOOP, LOG1P_DATA = 3, 4, 5, 6, 7
N_IC: Final = 8
# ``u8buf`` (uint8): the node rows (N_NODE_ROWS, n) as bool | the ring of committed hashes
# (W + 1, 32) | the block's header (92) and hash (32) | the records (TXS_CAP, 104).
# Rows of the node rows: PackedPlane.nodes' three (MALICIOUS, ABLE, VOTERS), then these.
DOWN, HONEST = 3, 4
N_NODE_ROWS: Final = 5
# Rows of the per-period ``rows`` (bool, (3, n)).
STATE, ONLINE, HOLDERS = 0, 1, 2
# Layout of a record: payload (40 bytes) || seller tag (32) || buyer tag (32).
PAYLOAD, SIG, RECORD_SIZE = 40, 32, 104
HEADER_SIZE, HDR_SIZE = 92, 124  # the header, then the block hash
# ``code``, the first value returned.
OK, OUT_OF_RANGE, STAMP_OVERFLOW = 0, 1, 2
#: :func:`sbet_chain_period`'s result (see its docstring).
Figures = tuple[int, int, int, int, int, bool, bool, float, float, int, int, int, int, int, bool, int, int, int]  # fmt: skip # noqa: E501
_STAMP_MAX: Final = 9.2e18  # |timestamp| below 2**63 (9.22e18): fits HEADER_STRUCT's "q"


@inlined
def layout(n: int, window: int) -> tuple[int, int, int, int, int, int]:
    """Offsets: ``(lj, fc, geo, end of fbuf)`` in fbuf, ``(ring, hdr)`` in u8buf.

    The draw starts fbuf; the node rows start u8buf, the records follow the hdr (HDR_SIZE).
    """
    p_n2 = N_PHASES * n * n
    lj = 2 * n + 2 * p_n2
    fc = lj + p_n2
    geo = fc + N_FC + n
    ring = N_NODE_ROWS * n
    return lj, fc, geo, geo + 3 * n * n, ring, ring + 32 * (window + 1)


@inlined
def _put_le(row: NDArray[np.uint8], at: int, word: np.uint64) -> None:
    """The 8 bytes of ``word``, little-endian, at ``row[at : at + 8]``."""
    for k in range(8):
        row[at + k] = np.uint8((word >> np.uint64(8 * k)) & np.uint64(0xFF))


@inlined
def _ring_row(ring: NDArray[np.uint8], h: int) -> NDArray[np.uint8]:
    """The committed hash at height h >= 0 (row ``h % rows``); the caller checks h is kept."""
    row: NDArray[np.uint8] = ring[h % ring.shape[0]]
    return row


@inlined
def _same_at(
    head: NDArray[np.uint8], i: int, ring: NDArray[np.uint8], h: int, zeros: NDArray[np.uint8]
) -> bool:
    """Node i's head equals the committed hash at height h - 1 (zeros if h = 0).

    Block h's ``prev_hash`` and the chain's head hash at height h are both that hash.
    """
    return _same_hash(head, i, zeros if h == 0 else _ring_row(ring, h - 1))


@inlined
def node_view(
    height: NDArray[np.int64],
    head: NDArray[np.uint8],
    forked: NDArray[np.bool_],
    nodes: NDArray[np.bool_],
    rows: NDArray[np.bool_],
    give: bool,
    top: int,
    kept: int,
    ring: NDArray[np.uint8],
    zeros: NDArray[np.uint8],
) -> tuple[bool, int, int, int]:
    """``NodeHeads._update_compiled`` (no altered block), the ledger's hashes from ``ring``.

    :func:`mgenv.chain.kernels_nodeview.deliver` then, unless every node is at the head,
    :func:`~mgenv.chain.kernels_nodeview.catch_up_figures`, whose tables by level hold what
    is looked up here by height: a node at height h checks block h's ``prev_hash`` (known
    while block h is kept: ``first <= h < top``) when it fetches, and is on the chain if its
    head is the chain's hash at h (known for h = 0 and while block h - 1 is kept).

    Args:
        height: ``NodeHeads.height``, (n,), updated in place.
        head: ``NodeHeads.head``, (n, 32), updated in place.
        forked: ``NodeHeads.forked``, (n,), updated in place.
        nodes: Rows ``HONEST`` (and the plane's) of the constants.
        rows: The period's ``ONLINE`` and ``HOLDERS`` rows.
        give: The holders take the period's block (it committed and is not altered).
        top: The ledger's next height, after this period's block.
        kept: The blocks the ledger keeps, after it.
        ring: The committed hashes (see the module docstring), this period's included.
        zeros: 32 zero bytes (the genesis hash).

    Returns:
        ``(honest_heads_agree, lagging_nodes, forked_nodes, link_failures)``.
    """
    n = height.size
    head_hash = zeros if top == 0 else _ring_row(ring, top - 1)
    # the period's block, when it is given, is the head: its hash is head_hash
    if deliver(height, head, forked, rows[HOLDERS], give, top, head_hash, head_hash):
        return True, 0, 0, 0
    # kernels_nodeview.catch_up_figures, looking hashes up by height instead of by level
    first = top - kept  # height of the oldest kept block
    online, honest = rows[ONLINE], nodes[HONEST]
    any_behind = False
    any_server = False
    for i in range(n):
        if online[i] and not forked[i]:
            any_behind |= height[i] < top
            any_server |= honest[i] and height[i] == top
    failures = 0
    if any_behind and any_server:
        for i in range(n):
            h = height[i]
            if not (online[i] and not forked[i] and h < top):
                continue
            if first <= h and not _same_at(head, i, ring, h, zeros):
                failures += 1  # the first fetched block does not link to its head
                continue
            height[i] = top
            for b in range(32):
                head[i, b] = head_hash[b]
    if _at_head(height, head, top, head_hash):
        return True, 0, 0, failures
    agree = True
    lagging = 0
    off_chain = 0
    for i in range(n):
        h = height[i]
        known = h == 0 or (first <= h - 1 and h - 1 < top)
        on_chain = not forked[i] and (not known or _same_at(head, i, ring, h, zeros))
        off_chain += not on_chain
        if honest[i]:
            agree &= on_chain
            lagging += h < top
    return agree, lagging, off_chain, failures


@inlined
def _put_record(
    rec: NDArray[np.uint8],
    serial: int,
    period: int,
    q: float,
    p: float,
    s: int,
    b: int,
    bits: NDArray[np.float64],
) -> None:
    """``TX_STRUCT.pack(serial, period, q, p, s, b)`` into ``rec[:40]`` (little-endian).

    The words of :func:`mgenv.chain.kernels_chain.screen_and_pack`; the floats' bits are
    copied through ``bits`` (float64 (2,)) viewed as uint64.
    """
    words = bits.view(np.uint64)
    bits[0] = q
    bits[1] = p
    _put_le(rec, 0, np.uint64(serial))
    _put_le(rec, 8, np.uint64(period))  # two's complement, as "<q" packs it
    _put_le(rec, 16, words[0])
    _put_le(rec, 24, words[1])
    _put_le(rec, 32, (np.uint64(s) & _U32) | ((np.uint64(b) & _U32) << np.uint64(32)))


@kernel
def sbet_chain_period(
    period: int,
    serial: int,
    top: int,
    kept: int,
    first: bool,
    seller: NDArray[np.int64],
    buyer: NDArray[np.int64],
    quantity_kwh: NDArray[np.float64],
    price: NDArray[np.float64],
    fbuf: NDArray[np.float64],
    ibuf: NDArray[np.int64],
    u8buf: NDArray[np.uint8],
    prev_state: NDArray[np.bool_],
    height: NDArray[np.int64],
    head: NDArray[np.uint8],
    forked: NDArray[np.bool_],
    rows: NDArray[np.bool_],
    committed: NDArray[np.bool_],
    reason: NDArray[np.int8],
) -> Figures:
    """One period of an SBET chain (see the module docstring), in place.

    Args:
        period: Market period (int64).
        serial: Serial of the period's first trade (in [0, 2**63 - T]).
        top: The ledger's next height before this period.
        kept: The blocks the ledger keeps before this period.
        first: No online state yet (the network's first period: ``availability`` applies).
        seller: Shape (T,), int64: the sellers' participant indices.
        buyer: Shape (T,), int64: the buyers'.
        quantity_kwh: Shape (T,), float64: traded energy (kWh).
        price: Shape (T,), float64: prices (yuan/kWh).
        fbuf: float64 (layout above): the period's network draw ``rng.random(D)`` (layout
            of :mod:`mgenv.chain.network`, E = n extra uniforms) and room for its jitters'
            ``log1p(-u)``, numpy's numbers: written here (by numpy's own loop at
            ``ibuf[LOG1P_LOOP]``, or by the C library's where that is 0), or by the caller
            beforehand when ``ibuf[JITTER_IS_LOG]`` (neither gives numpy's numbers here);
            then the constants.
        ibuf: int64 constants (layout above).
        u8buf: uint8 (layout above): the node rows; the ring of committed hashes (module
            docstring), this period's block's added; receives the block's header and hash
            and its records (the first ``n_ok``; room for at least T).
        prev_state: Shape (n,), bool: the online chain's state before (ignored if ``first``).
        height: ``NodeHeads.height`` (n,), updated in place unless the period's block is
            altered (returned ``altered``: the caller then updates the node view).
        head: ``NodeHeads.head`` (n, 32), likewise.
        forked: ``NodeHeads.forked`` (n,), likewise.
        rows: Shape (3, n), bool: receives the online chain's new ``STATE``, the ``ONLINE``
            nodes (the DDoS applied) and the block's ``HOLDERS`` (if ``has_holders``).
        committed: Shape (T,), bool: receives the verdicts.
        reason: Shape (T,), int8: receives the reason codes.

    Returns:
        ``(code, lo, hi, n_ok, n_valid, has_holders, altered, latency ms, online share,
        view changes, creator, recovered, missing copies, tampered, honest_heads_agree,
        lagging_nodes, forked_nodes, link failures)``. ``code`` OUT_OF_RANGE: a participant
        index (``lo`` or ``hi``) is outside [0, P) and nothing else was done (no state
        changed); STAMP_OVERFLOW: the block's timestamp does not fit int64, everything up to
        its records is done but no block is made and the node view is not updated.
    """
    n = height.size
    n_tx = seller.size
    n_participants = ibuf[N_PARTICIPANTS]
    at_lj, at_fc, at_geo, f_end, at_ring, at_hdr = layout(n, ibuf[WINDOW])
    fc = fbuf[at_fc:at_geo]
    geo = fbuf[at_geo:f_end].reshape((3, n, n))
    nodes = u8buf[:at_ring].view(np.bool_).reshape((N_NODE_ROWS, n))
    ring = u8buf[at_ring:at_hdr].reshape((ibuf[WINDOW] + 1, 32))
    hdr = u8buf[at_hdr : at_hdr + HDR_SIZE]
    at_txs = at_hdr + HDR_SIZE
    txs = u8buf[at_txs : at_txs + RECORD_SIZE * n_tx].reshape((n_tx, RECORD_SIZE))
    n_pads = 16 * n_participants
    pads = ibuf[N_IC : N_IC + n_pads].reshape((2, n_participants, 8))
    # 1. screening (kernels_chain.screen_and_pack without the payloads): range, validity
    lo = seller[0] if n_tx else 0
    hi = lo
    n_valid = 0
    for t in range(n_tx):
        s, b, q, p = seller[t], buyer[t], quantity_kwh[t], price[t]
        lo = min(lo, s, b)
        hi = max(hi, s, b)
        committed[t] = False
        if 0.0 < q < _INF and -_INF < p < _INF and s != b:
            reason[t] = 0
            n_valid += 1
        else:
            reason[t] = INVALID_TRADE
    if lo < 0 or hi >= n_participants:
        return (
            OUT_OF_RANGE, lo, hi, 0, 0, False, False, 0.0, 0.0, 0, -1, 0, 0, 0, False, 0, 0, 0
        )  # fmt: skip
    # 2. NetworkModel.next_online on the draw's first n uniforms
    n_online = 0
    for i in range(n):
        if first:
            up = fbuf[i] < fc[AVAILABILITY]
        else:
            up = fbuf[i] < (fc[UP_P] if prev_state[i] else fc[DOWN_P])
        rows[STATE, i] = up
        rows[ONLINE, i] = up and not nodes[DOWN, i]
        n_online += rows[ONLINE, i]
    share = n_online / n  # as numpy's float(count) / n
    # 3. SBET (kernels_sbet.sbet_period), its verdicts merged into the chain's as it goes:
    # the protocol only writes the rows of valid trades, whose chain reason is 0
    has_holders, latency, changes, creator, recovered, missing = False, 0.0, 0, -1, 0, 0
    n_ok, n_tampered = 0, 0
    online = rows[ONLINE]
    if n_valid:
        p_n2 = N_PHASES * n * n
        lj = fbuf[at_lj:at_fc]
        if not ibuf[JITTER_IS_LOG]:
            at = n + p_n2  # the jitter uniforms follow the online and loss ones
            if ibuf[LOG1P_LOOP]:  # numpy's own loop: numpy's numbers on every CPU
                for k in range(p_n2):
                    lj[k] = -fbuf[at + k]
                call_unary(ibuf[LOG1P_LOOP], ibuf[LOG1P_DATA], lj, lj, p_n2)
            else:  # the C library's, which numpy's equals on this machine
                for k in range(p_n2):
                    lj[k] = np.log1p(-fbuf[at + k])
        u = fbuf[:at_lj]
        valid = np.empty(n_tx, np.bool_)
        for t in range(n_tx):
            valid[t] = reason[t] == 0
        cap = min(n_tx, ibuf[BLOCK_SIZE])
        adm_rows = np.empty(cap, np.int64)
        origin = np.empty(cap, np.int64)
        n_adm, _ = kd.admit_into(valid, seller, n, ibuf[BLOCK_SIZE], reason, adm_rows, origin)
        adm_rows, origin = adm_rows[:n_adm], origin[:n_adm]
        link = np.empty((N_PHASES, n, n), np.bool_)
        kd.fill_links(u, online, fc[LOSS], link)
        delay = kd.delays(lj, geo, fc[JITTER], N_PHASES)
        cut = np.zeros((0, n), np.bool_)
        w = work(n, n_adm)
        storage = fc[N_FC : N_FC + n]
        no_pkey = np.empty((0, 0))  # argmax election
        has_holders, latency, changes, creator, recovered, missing = run_block(
            period, link, delay, origin, cut, online, storage, no_pkey, geo, nodes, fc,
            ibuf[QUORUM], w,
        )  # fmt: skip
        if has_holders:
            for i in range(n):
                rows[HOLDERS, i] = w.holders[i]
        n_ok, n_tampered = kd.verdicts(adm_rows, w.status[:n_adm], committed, reason)
    altered = has_holders and nodes[MALICIOUS, creator]
    if n_ok:
        # 4. the records of the block (payload || seller tag || buyer tag), in trade order
        bits = np.empty(2, np.float64)
        state = np.empty(8, np.uint32)
        w64 = np.empty(64, np.uint32)
        inner, outer = pads[0], pads[1]
        k = 0
        for t in range(n_tx):
            if not committed[t]:
                continue
            s, b = seller[t], buyer[t]
            rec = txs[k]
            _put_record(rec, serial + t, period, quantity_kwh[t], price[t], s, b, bits)
            msg = rec[:PAYLOAD]
            _hmac_core(inner[s], outer[s], msg, rec[PAYLOAD : PAYLOAD + SIG], state, w64)
            _hmac_core(inner[b], outer[b], msg, rec[PAYLOAD + SIG :], state, w64)
            k += 1
        # 5. the block: round(period * ms_per_period + latency) as Python's round (to even)
        stamp_f = np.rint(period * fc[MS_PER_PERIOD] + latency)
        if not -_STAMP_MAX < stamp_f < _STAMP_MAX:
            return (
                STAMP_OVERFLOW, lo, hi, n_ok, n_valid, has_holders, altered, latency, share,
                changes, creator, recovered, missing, n_tampered, False, 0, 0, 0,
            )  # fmt: skip
        zeros = np.zeros(32, np.uint8)
        prev = zeros if top == 0 else _ring_row(ring, top - 1)
        leaves = np.empty((n_ok, 32), np.uint8)
        _block_core(
            top, period, prev, txs[:n_ok], int(stamp_f), hdr[:HEADER_SIZE],
            hdr[HEADER_SIZE:], leaves, state, w64,
        )  # fmt: skip
        row = _ring_row(ring, top)
        for b in range(32):
            row[b] = hdr[HEADER_SIZE + b]
        top += 1
        kept = min(kept + 1, ring.shape[0] - 1)
    if altered:  # the caller runs NodeHeads.update's fork (numpy code)
        return (
            OK, lo, hi, n_ok, n_valid, has_holders, altered, latency, share, changes, creator,
            recovered, missing, n_tampered, False, 0, 0, 0,
        )  # fmt: skip
    # 6. the nodes' view
    agree, lagging, off_chain, failures = node_view(
        height, head, forked, nodes, rows, n_ok > 0 and has_holders, top, kept, ring,
        np.zeros(32, np.uint8),
    )  # fmt: skip
    return (
        OK, lo, hi, n_ok, n_valid, has_holders, altered, latency, share, changes, creator,
        recovered, missing, n_tampered, agree, lagging, off_chain, failures,
    )  # fmt: skip


@kernel
def hmac_pads_into(keys: NDArray[np.uint8], pads: NDArray[np.uint32]) -> None:
    """Every participant's HMAC-SHA-256 midstates (RFC 2104), as ``ModelledSigner``'s pads.

    The SHA-256 states after compressing ``key ^ 0x36..`` (inner) and ``key ^ 0x5c..``
    (outer), the key padded with zeros to the 64-byte block; one call per chain instead of
    :func:`mgenv.chain.kernels_sha.hmac_pad_table`'s Python compressions (a chain is built at
    every reset).

    Args:
        keys: Shape (P, K), uint8, K <= 64: the participants' keys.
        pads: Shape (2, P, 8), uint32: receives the inner (row 0) and outer (row 1) states.
    """
    block = np.empty(64, np.uint8)
    w = np.empty(64, np.uint32)
    for k in range(2):
        pad = 0x36 if k == 0 else 0x5C
        for p in range(keys.shape[0]):
            for j in range(64):
                block[j] = (keys[p, j] if j < keys.shape[1] else 0) ^ pad
            state = pads[k, p]
            for i in range(8):
                state[i] = H0[i]
            sha256_compress(state, block, w)


@kernel
def seeded_pads_into(prefix: NDArray[np.uint8], pads: NDArray[np.uint32]) -> None:
    """:func:`hmac_pads_into` of the keys ``ModelledSigner`` derives from its seed.

    Participant i's key is ``SHA-256(prefix || i as 4 bytes little-endian)``
    (``transactions.derive_key``; ``prefix`` is ``ModelledSigner.key_material``'s), hashed
    here: the signer need not derive its keys (with hashlib) at every reset.

    Args:
        prefix: uint8, the derivation's bytes before the index.
        pads: Shape (2, P, 8), uint32: receives the inner and outer states of P keys.
    """
    n, m = pads.shape[1], prefix.size
    keys = np.empty((n, 32), np.uint8)
    msg = np.empty(m + 4, np.uint8)
    msg[:m] = prefix
    state = np.empty(8, np.uint32)
    w = np.empty(64, np.uint32)
    for i in range(n):
        for b in range(4):
            msg[m + b] = (i >> (8 * b)) & 0xFF
        _sha256_core(msg, keys[i], state, w)
    hmac_pads_into(keys, pads)
