"""What goes in and out of the batched chain (:mod:`mgenv.batched.chain`), and array aliases.

In: the trade arrays of a period, checked by ``_validity`` (with ``Chain``'s validity
predicate). Out: :class:`BatchedConsensus`. A leaf module: the protocol modules
(:mod:`~mgenv.batched.chain_pbft`, :mod:`~mgenv.batched.chain_sbet`) build the result
without importing the facade.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Bool = NDArray[np.bool_]
_INF = math.inf


class BatchedConsensus(NamedTuple):
    """What the chain decided about one period's trades, for every copy.

    Attributes:
        committed: Shape (B, T), bool: trade settles (False on padding).
        reason: Shape (B, T), int8: index into ``REJECT_REASONS`` (0 on padding).
        latency_ms: Shape (B,), simulated consensus latency (ms).
        online_share: Shape (B,), share of validator nodes online.
        view_changes: Shape (B,), int64.
        extra: Shape (B,) float64 arrays under the single ``ConsensusResult.extra`` keys:
            none for ideal; ``honest_heads_agree``, ``lagging_nodes``, ``forked_nodes`` for
            pbft; those and ``safety_violation``, ``committed_share``, ``query_accuracy``,
            ``recovered``, ``missing_copies``, ``tampered``, ``creator`` for sbet.
    """

    committed: Bool
    reason: NDArray[np.int8]
    latency_ms: F64
    online_share: F64
    view_changes: I64
    extra: dict[str, F64]


def _validity(
    n_copies: int,
    n_participants: int,
    seller: NDArray[np.integer],
    buyer: NDArray[np.integer],
    kwh: NDArray[np.floating],
    price: NDArray[np.floating],
    live: Bool,
) -> tuple[Bool, Bool]:
    """Check the arrays; the validity predicate of ``Chain`` (signatures always verify).

    Returns valid and live, shape (B, T) bool each (``BatchedChain.process``'s arguments).
    """
    s, b, m = np.asarray(seller), np.asarray(buyer), np.asarray(live)
    q, p = np.asarray(kwh, dtype=np.float64), np.asarray(price, dtype=np.float64)
    shape = m.shape
    if len(shape) != 2 or shape[0] != n_copies or any(a.shape != shape for a in (s, b, q, p)):
        raise ValueError(
            f"seller, buyer, kwh, price, live must be ({n_copies}, T), got shapes "
            f"{s.shape}, {b.shape}, {q.shape}, {p.shape}, {m.shape}"
        )
    if s.dtype.kind not in "iu" or b.dtype.kind not in "iu" or m.dtype != np.bool_:
        raise ValueError(
            f"seller and buyer must be integer and live bool, got {s.dtype}, {b.dtype}, {m.dtype}"
        )
    n_p = n_participants
    if s.dtype == b.dtype == np.int64:  # a negative index is a huge unsigned one
        bad: Bool = np.maximum(s.view(np.uint64), b.view(np.uint64)) >= n_p
    else:
        bad = (np.minimum(s, b) < 0) | (np.maximum(s, b) >= n_p)
    bad &= m
    if bad.any():
        k = int(np.argmax(bad))
        lo, hi = min(s.flat[k], b.flat[k]), max(s.flat[k], b.flat[k])
        raise ValueError(f"participant index {lo if lo < 0 else hi} is outside [0, {n_p - 1}]")
    ok: Bool = q > 0.0  # nan: False
    ok &= q < _INF
    ok &= np.isfinite(p)
    ok &= s != b
    ok &= m
    return ok, m
