"""Compiled trade screening for :meth:`mgenv.chain.Chain.process` (numba, :mod:`mgenv._jit`).

:func:`screen_and_pack` does in one call, on the trade arrays, what the Python path does on
lists: the participants' range (``Chain._trade_lists``), the 40-byte payloads
(``TX_STRUCT.pack``, :mod:`mgenv.chain.transactions`) and the validity predicate
(``_all_valid`` / ``_reject_reasons`` for trades whose signatures verify). Results are
identical: the payload bytes are the same little-endian fields (the floats' bits copied, not
converted), the predicate is the same exact comparisons.
"""

from __future__ import annotations

import struct
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv.chain.transactions import PAYLOAD_SIZE
from mgenv.chain.types import INVALID_TRADE

_INF = np.inf
_WORDS = PAYLOAD_SIZE // 8  # a payload is 5 little-endian 64-bit words
_U32 = np.uint64(0xFFFFFFFF)


@_jit.kernel
def screen_and_pack(
    seller: NDArray[np.int64],
    buyer: NDArray[np.int64],
    quantity_kwh: NDArray[np.float64],
    price: NDArray[np.float64],
    serial: int,
    period: int,
    words: NDArray[np.uint64],
    reason: NDArray[np.int8],
) -> tuple[int, int, int]:
    """Range, payloads and validity of T trades in one pass.

    Args:
        seller: Shape (T,), the sellers' participant indices.
        buyer: Shape (T,), the buyers'.
        quantity_kwh: Shape (T,), traded energy (kWh).
        price: Shape (T,), prices (yuan/kWh).
        serial: Serial of the first trade (the others follow), in [0, 2**63).
        period: Market period, an int64.
        words: Shape (T, 5), uint64, filled with the payloads: ``words.tobytes()`` is the
            concatenation of ``TX_STRUCT.pack(serial + t, period, q, p, seller, buyer)``
            (on a little-endian machine; the caller checks). Only meaningful when every
            index is in [0, 2**32).
        reason: Shape (T,), int8, filled with ``INVALID_TRADE`` where the trade fails the
            validity predicate (quantity in (0, inf), price finite, seller != buyer), else 0:
            ``_reject_reasons`` when every signature verifies.

    Returns:
        ``(lo, hi, n_invalid)``: the smallest and largest participant index among sellers
        and buyers (0, 0 without trades) and the number of invalid trades.
    """
    n = seller.size
    bits = np.empty(2, dtype=np.float64)  # a float's bits, through a contiguous view
    as_words = bits.view(np.uint64)
    lo = seller[0] if n else 0
    hi = lo
    n_invalid = 0
    for t in range(n):
        s, b, q, p = seller[t], buyer[t], quantity_kwh[t], price[t]
        lo = min(lo, s, b)
        hi = max(hi, s, b)
        bits[0] = q
        bits[1] = p
        words[t, 0] = np.uint64(serial + t)
        words[t, 1] = np.uint64(period)  # two's complement, as "<q" packs it
        words[t, 2] = as_words[0]
        words[t, 3] = as_words[1]
        words[t, 4] = (np.uint64(s) & _U32) | ((np.uint64(b) & _U32) << np.uint64(32))
        if 0.0 < q < _INF and -_INF < p < _INF and s != b:
            reason[t] = 0
        else:
            reason[t] = INVALID_TRADE
            n_invalid += 1
    return lo, hi, n_invalid


@lru_cache(maxsize=64)
def payload_splitter(n_tx: int) -> struct.Struct:
    """A struct that unpacks ``n_tx`` concatenated payloads into separate bytes objects."""
    return struct.Struct(f"{PAYLOAD_SIZE}s" * n_tx)


@_jit.kernel
def combine_verdicts(
    reason: NDArray[np.int8],
    protocol_committed: NDArray[np.bool_],
    protocol_reason: NDArray[np.int8],
    committed: NDArray[np.bool_],
) -> int:
    """A per-transaction protocol's verdicts merged with the chain's own checks, in place.

    The numpy code of ``Chain._per_transaction``: ``valid = reason == 0``; ``committed =
    valid & protocol_committed``; ``reason = where(valid & ~committed, protocol_reason,
    reason)``. Writes ``committed`` (T,) and overwrites ``reason`` (T,); returns how many
    committed.
    """
    n_ok = 0
    for t in range(reason.shape[0]):
        valid = reason[t] == 0
        ok = valid and protocol_committed[t]
        committed[t] = ok
        if valid and not ok:
            reason[t] = protocol_reason[t]
        n_ok += ok
    return n_ok
