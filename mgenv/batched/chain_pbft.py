"""PBFT for B copies of the batched chain (``PBFTProtocol.run_round``), copies last.

PBFT uses every uniform of a period, so it reads the period's draws transposed
(``_Draws.by_draw``, (D, B)): every message's uniforms of all copies are a contiguous slice,
and only the pre-prepares (the primary's row) are gathered. All three phases' links are
taken at once, vote counts are integer contractions (``BatchedChain._tally``), completions
go to scratch buffers allocated once, and latencies are computed only if some copy commits.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from mgenv.batched.chain_select import _any, kth_smallest
from mgenv.batched.chain_types import F64, I64, BatchedConsensus, Bool
from mgenv.chain.types import NO_QUORUM, PRIMARY_OFFLINE

if TYPE_CHECKING:
    from mgenv.batched.chain import BatchedChain

_INF = math.inf


def _pbft(c: BatchedChain, valid: Bool, reason: NDArray[np.int8]) -> BatchedConsensus:
    """One PBFT round per copy (``PBFTProtocol.run_round``)."""
    n, f = c._n, c._f
    timeout = c.params.view_change_timeout_ms
    u = c._draws.by_draw  # (D, B): online, then loss and jitter [phase, sender, receiver]
    online = c._online(u[:n])
    n_online = c._tally("ib->b", online)
    has_block = _any(valid)
    primary, changes, run, no_primary = _select_primary(c, online, n_online, has_block)
    c._view += changes
    waited = changes * timeout
    # count_votes: the receiver must be online; senders are online by construction
    n_messages = 3 * n * n
    links = u[n : n + n_messages].reshape(3, n, n, -1) >= c.params.message_loss
    links &= c._off_diagonal & online[:, None] & online[None]  # (3, n, n, B)
    link = links[1:]  # prepares, commits
    line = primary * c._line_step + c._line_at  # the pre-prepares: row primary
    # (n, B); it differs from the single chain's only where the primary is offline, and
    # there nothing runs (no block, or no primary: the outcome does not use it)
    pre_link = links[0].reshape(-1).take(line)
    is_p = c._col == primary
    has_pp = pre_link | is_p
    prepare = has_pp & c._voters
    prepared = c._tally("sb,srb->rb", prepare, link[0]) >= 2 * f
    prepared &= has_pp
    commit = prepared & c._voters
    local = c._tally("sb,srb->rb", commit, link[1]) >= 2 * f
    local &= commit
    ok = c._tally("ib->b", local) >= 2 * f + 1
    ok &= run
    # no primary: no view change, waited = 0 and the latency is the timeout
    latency = np.where(has_block, waited + timeout, 0.0)
    if ok.any():
        sent, reached = (prepare, commit), (has_pp, prepared, local)
        phase = _phase_ms(c, u, link, pre_link, line, is_p, sent, reached)
        latency = np.where(ok, waited + (phase[0] + phase[1] + phase[2]), latency)
    fail = np.where(no_primary, np.int8(PRIMARY_OFFLINE), np.int8(NO_QUORUM))
    reason = np.where(valid & ~ok[:, None], fail[:, None], reason)
    c._top += ok
    extra = c._update_heights(online, local & ok)  # no malicious nodes in PBFT
    return BatchedConsensus(valid & ok[:, None], reason, latency, n_online / n, changes, extra)


def _select_primary(
    c: BatchedChain, online: Bool, n_online: NDArray[np.integer], has_block: Bool
) -> tuple[I64, I64, Bool, Bool]:
    """``select_primary``: the next online node from view % n on, if a view change can complete.

    Returns the primary, the view changes, whether the round runs and whether it has no
    primary, shape (B,) each (where no block is proposed nothing runs and nothing changes).
    """
    n, f = c._n, c._f
    first = c._view % n
    ring = online.reshape(-1).take(c._ring_at[:, first] + c._rows)  # (n, B)
    skipped = np.argmax(ring[1:], axis=0) + 1
    no_primary = has_block & ~ring[0] & (n_online < 2 * f + 1)
    run = has_block & ~no_primary
    changes = np.where(run & ~ring[0], skipped, 0)
    primary = (first + changes) % n
    return primary, changes, run, no_primary


def _phase_ms(
    c: BatchedChain,
    u: F64,
    link: Bool,
    pre_link: Bool,
    line: I64,
    is_p: Bool,
    sent: tuple[Bool, Bool],
    reached: tuple[Bool, Bool, Bool],
) -> F64:
    """``quorum_latency_ms``'s three phases, shape (3, B) ms, computed for every copy.

    Args:
        c: The chain.
        u: Shape (D, B): the period's draws.
        link: Shape (2, n, n, B), bool: prepares' and commits' links.
        pre_link: Shape (n, B), bool: the pre-prepare reached node j.
        line: Shape (n, B): the primary's row in an (n, n, B) array, flat.
        is_p: Shape (n, B), bool: node j is the primary.
        sent: Shape (n, B) each, bool: prepares, commits sent.
        reached: Shape (n, B) each, bool: node j has the pre-prepare, is prepared, has
            committed locally.
    """
    n, f = c._n, c._f
    n_messages = 3 * n * n
    jitter = u[n + n_messages : n + 2 * n_messages].reshape(3, n, n, -1)
    delays = np.negative(jitter)
    np.log1p(delays, out=delays)  # exponential jitters (NetworkModel.delays_ms)
    delays *= -c.params.jitter_ms
    if c._geo.slow is not None:
        delays *= c._geo.slow
    delays += c._geo.base_ms  # base + jitter
    senders = c._pbft_senders  # (2, n, 1, B): prepares, commits sent
    senders[0, :, 0], senders[1, :, 0] = sent
    arrival = np.where(link & senders, delays[1:], _INF)
    # completion of each phase at each node, (3, n, B): the pre-prepare (the primary
    # at once), the vote completing a quorum of prepares, of commits
    done, times = c._pbft_done, c._pbft_times
    done[0], done[1], done[2] = reached
    times[0] = np.where(pre_link, delays[0].reshape(-1).take(line), _INF)
    times[0][is_p] = 0.0
    times[1:] = kth_smallest(arrival, 2 * f, axis=1)
    phase: F64 = kth_smallest(np.where(done, times, _INF), 2 * f + 1, axis=1)  # (3, B)
    return phase
