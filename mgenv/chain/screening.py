"""The chain's first steps on a period's trades: checked lists, payloads, validity verdicts.

Used by :meth:`mgenv.chain.Chain.process`. Two paths give the same payloads and verdicts:

* Python: :func:`trade_lists` (checks, lists), :func:`pack_payloads` (``TX_STRUCT.pack``),
  :func:`all_valid` / :func:`reject_reasons` on the lists;
* compiled (:mod:`mgenv._jit` enabled, int64 / float64 arrays, :func:`compilable`):
  :func:`screen_compiled`, one call of :func:`mgenv.chain.kernels_chain.screen_and_pack`.

The validity predicate: quantity_kwh in (0, inf), price finite, seller != buyer.
"""

from __future__ import annotations

import math
import operator
import sys
from itertools import repeat

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mgenv.chain import kernels_chain
from mgenv.chain.transactions import TX_STRUCT
from mgenv.chain.types import BAD_SIGNATURE, INVALID_TRADE

_INF = math.inf
_I8, _F8 = np.dtype(np.int64), np.dtype(np.float64)
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_LITTLE_ENDIAN = sys.byteorder == "little"


def trade_arrays(
    seller: ArrayLike, buyer: ArrayLike, quantity_kwh: ArrayLike, price: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The trade arrays, checked: 1-D of one length, integer participant indices.

    Raises:
        ValueError: If they are not 1-D of one length or the indices are not integers.
    """
    s, b, q, p = (
        np.asarray(seller),
        np.asarray(buyer),
        np.asarray(quantity_kwh),
        np.asarray(price),
    )
    shape = s.shape
    if len(shape) != 1 or b.shape != shape or q.shape != shape or p.shape != shape:
        raise ValueError(
            "seller, buyer, quantity_kwh, price must be 1-D of one length, got shapes "
            f"{s.shape}, {b.shape}, {q.shape}, {p.shape}"
        )
    if s.dtype.kind not in "iu" or b.dtype.kind not in "iu":
        raise ValueError(f"seller and buyer must be integer arrays, got {s.dtype}, {b.dtype}")
    return s, b, q, p


def check_range(lo: int, hi: int, n_participants: int) -> None:
    """Raise ValueError if a participant index in [lo, hi] is outside [0, n_participants)."""
    if lo < 0 or hi >= n_participants:
        raise ValueError(
            f"participant index {lo if lo < 0 else hi} is outside [0, {n_participants - 1}]"
        )


def trade_lists(
    s: np.ndarray, b: np.ndarray, q: np.ndarray, p: np.ndarray, n_participants: int
) -> tuple[list[int], list[int], list[float], list[float]]:
    """The checked trade arrays as Python lists (cheap per element), indices in range."""
    sellers, buyers = s.tolist(), b.tolist()
    if sellers:
        check_range(min(min(sellers), min(buyers)), max(max(sellers), max(buyers)), n_participants)
    return sellers, buyers, q.tolist(), p.tolist()


def pack_payloads(
    serial: int,
    period: int,
    sellers: list[int],
    buyers: list[int],
    quantities: list[float],
    prices: list[float],
) -> list[bytes]:
    """``TX_STRUCT.pack`` of every trade, serials from ``serial`` on (40 bytes each)."""
    n_tx = len(sellers)
    return list(
        map(
            TX_STRUCT.pack,
            range(serial, serial + n_tx),
            repeat(period, n_tx),
            quantities,
            prices,
            sellers,
            buyers,
        )
    )


def compilable(
    s: np.ndarray, b: np.ndarray, q: np.ndarray, p: np.ndarray, serial: int, period: int
) -> bool:
    """Whether :func:`screen_compiled` takes these inputs (the kernel's one signature).

    int64 indices, float64 amounts of native byte order (dtype equality tells byte orders
    apart; identity would not do: numba hands back arrays with dtype objects of their own,
    e.g. the market kernel's trades), a serial and period that fit int64
    (``TX_STRUCT.pack`` raises for a period outside int64: the Python path then runs), a
    little-endian machine (the payload words are written in native order).
    """
    return (
        _LITTLE_ENDIAN
        and s.dtype == _I8
        and b.dtype == _I8
        and q.dtype == _F8
        and p.dtype == _F8
        and _I64_MIN <= period <= _I64_MAX
        and serial + s.size <= _I64_MAX
    )


def screen_compiled(
    s: np.ndarray,
    b: np.ndarray,
    q: np.ndarray,
    p: np.ndarray,
    serial: int,
    period: int,
    n_participants: int,
) -> tuple[list[bytes], NDArray[np.int8], int]:
    """Range check, payloads and validity verdicts in one kernel call.

    Returns:
        The payloads (those of :func:`pack_payloads`), the reasons of
        :func:`reject_reasons` when every signature verifies (INVALID_TRADE or 0, shape
        (T,), int8) and the number of invalid trades.

    Raises:
        ValueError: If a participant index is outside [0, n_participants).
    """
    n_tx = s.size
    words = np.empty((n_tx, 5), dtype=np.uint64)
    reason = np.empty(n_tx, dtype=np.int8)
    lo, hi, n_invalid = kernels_chain.screen_and_pack(s, b, q, p, serial, period, words, reason)
    if lo < 0 or hi >= n_participants:
        check_range(lo, hi, n_participants)
    payloads = list(kernels_chain.payload_splitter(n_tx).unpack(words.tobytes()))
    return payloads, reason, n_invalid


def all_valid(
    sellers: list[int], buyers: list[int], quantities: list[float], prices: list[float]
) -> bool:
    """Fast check that every trade passes the validity predicate (see ``reject_reasons``)."""
    if not quantities:
        return True
    # A sum is finite only if no term is nan or +-inf; min is reliable once there is no nan.
    return (
        math.isfinite(sum(quantities))
        and math.isfinite(sum(prices))
        and min(quantities) > 0.0
        and not any(map(operator.eq, sellers, buyers))
    )


def as_received(
    payloads: list[bytes], serial: int, period: int, n_participants: int
) -> tuple[list[int], list[int], list[float], list[float]]:
    """Decode possibly altered payloads; a malformed one decodes as an invalid trade.

    A payload is malformed if it is not 40 bytes, its serial or period is not the one issued
    for its slot (a replay), or a party index is out of range; it then decodes as a self-trade
    of participant 0 with nan kWh, which the validity predicate rejects.
    """
    sellers, buyers, quantities, prices = [], [], [], []
    for k, payload in enumerate(payloads):
        fields = TX_STRUCT.unpack(payload) if len(payload) == TX_STRUCT.size else None
        if (
            fields is None
            or fields[:2] != (serial + k, period)
            or not (0 <= fields[4] < n_participants and 0 <= fields[5] < n_participants)
        ):
            fields = (serial + k, period, math.nan, math.nan, 0, 0)
        quantities.append(fields[2])
        prices.append(fields[3])
        sellers.append(fields[4])
        buyers.append(fields[5])
    return sellers, buyers, quantities, prices


def reject_reasons(
    signed: list[bool],
    sellers: list[int],
    buyers: list[int],
    quantities: list[float],
    prices: list[float],
) -> NDArray[np.int8]:
    """Reason codes of the trades, shape (T,), int8, for a period with some rejection.

    INVALID_TRADE if the trade fails the validity predicate (quantity_kwh in (0, inf), price
    finite, seller != buyer), else BAD_SIGNATURE if a signature fails, else 0.
    """
    reason = np.where(signed, np.int8(0), np.int8(BAD_SIGNATURE))
    for i, (s, b, q, p) in enumerate(zip(sellers, buyers, quantities, prices, strict=True)):
        if not (0.0 < q < _INF and -_INF < p < _INF and s != b):
            reason[i] = INVALID_TRADE
    return reason
