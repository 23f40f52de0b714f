"""Compiled PBFT round (numba, :mod:`mgenv._jit`): one call per period instead of ~60 numpy calls.

:func:`pbft_round` does in one call what :meth:`mgenv.chain.network.NetworkModel.draw_round`
(after its ``rng.random``), :func:`mgenv.chain.pbft.select_primary`,
:func:`mgenv.chain.pbft.count_votes`, :meth:`NetworkModel.delays_ms` and
:func:`mgenv.chain.pbft.quorum_latency_ms` do with numpy, with bit-identical results:

* the uniforms are the same array the numpy path draws (one ``rng.random`` call, made by the
  caller), read with the same layout: online | loss (3, n, n) | jitter (3, n, n);
* comparisons and vote counts are exact whatever the order;
* a delay is the same expression, ``base + ((-jitter_ms) * log1p(-u)) * slow``, evaluated per
  element; numba calls the C library's ``log1p``, as numpy's ufunc does unless it has a
  vectorised version (AVX-512): :func:`log1p_matches_numpy` checks once, and where they
  differ the caller passes numpy's ``log1p(-u)`` values in;
* a phase's duration is an order statistic, a value picked, not computed, so any correct
  selection gives the same float (no delay is nan or -0.0: base >= 0 and jitter >= +0.0);
* the three phase durations are returned separately and summed by the caller with Python's
  ``sum`` exactly as :func:`~mgenv.chain.pbft.quorum_latency_ms` does.

The numpy functions stay the reference, the fallback without numba and what SPFT calls.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv._numpy_loops import gives_numpys_log1p

#: ``pbft_round``'s ``code``: what the period's round came to.
NO_BLOCK = 0  # nothing to agree on: only the online draw was made
NO_LEADER = 1  # primary offline and fewer than 2f + 1 online: no view change can complete
NO_QUORUM = 2  # fewer than 2f + 1 nodes committed locally
COMMITTED = 3  # the block commits; the phase durations are set
N_WORK_ROWS = 7  # rows of pbft_round's bool work array: 3 outputs, 4 scratch

_INF = np.inf


@_jit.kernel
def _kth_smallest(buf: NDArray[np.float64], m: int, k: int) -> float:
    """The (k+1)-th smallest of ``buf[:m]`` (inf if m <= k); reorders ``buf[:m]``.

    Mirrors ``np.sort(...)[k]`` of the numpy path for values without nan: Wirth's selection
    (Hoare's partitioning around ``buf[k]``, average O(m)), which picks the same value as a
    sort; np.sort itself would take seconds to compile.
    """
    if m <= k:
        return _INF
    lo, hi = 0, m - 1
    while lo < hi:
        x = buf[k]
        i, j = lo, hi
        while i <= j:
            while buf[i] < x:
                i += 1
            while x < buf[j]:
                j -= 1
            if i <= j:
                buf[i], buf[j] = buf[j], buf[i]
                i += 1
                j -= 1
        if j < k:
            lo = i
        if k < i:
            hi = j
    return float(buf[k])


@_jit.kernel
def pbft_round(
    u: NDArray[np.float64],
    state: NDArray[np.bool_],
    has_state: bool,
    p_up_from_down: float,
    p_up_from_up: float,
    availability: float,
    down: NDArray[np.bool_],
    message_loss: float,
    voters: NDArray[np.bool_],
    view: int,
    f: int,
    base_delay_ms: NDArray[np.float64],
    slow: NDArray[np.float64],
    has_slow: bool,
    jitter_ms: float,
    has_block: bool,
    jitter_is_log: bool,
    work: NDArray[np.bool_],
) -> tuple[int, int, int, float, float, float]:
    """One PBFT period on the network's uniforms (see the module docstring).

    Args:
        u: Shape (n + 6 n^2,), the period's uniforms in [0, 1) (``NetworkModel.draw_round``'s
            ``rng.random`` output).
        state: Shape (n,), bool: who was online last period (ignored without ``has_state``).
        has_state: Whether there was a last period (``NetworkModel.online_state`` not None).
        p_up_from_down: P(online | offline before) (``online_transition``).
        p_up_from_up: P(online | online before).
        availability: Probability of being online in the first period.
        down: Shape (n,), bool: nodes taken offline by a DDoS (all False if none).
        message_loss: Probability that a message is lost.
        voters: Shape (n,), bool: node sends prepare/commit votes (not withholding).
        view: Current view (>= 0); the primary is ``view % n``.
        f: Tolerated faulty nodes (quorum 2f + 1, vote thresholds 2f).
        base_delay_ms: Shape (n, n), ``NetworkModel.base_delay_ms`` (ms).
        slow: Shape (n, n), ``NetworkModel.slow`` (ignored without ``has_slow``).
        has_slow: Whether the jitter is multiplied by ``slow``.
        jitter_ms: Mean exponential jitter (ms).
        has_block: Whether there is a block to agree on.
        jitter_is_log: The jitter part of ``u`` already holds ``np.log1p(-u)`` (computed by
            numpy, where its log1p differs from the kernel's: see :func:`log1p_matches_numpy`).
        work: Shape (N_WORK_ROWS, n), bool, filled here (passed in: returning a new array
            costs more than allocating it in Python); the outputs are row [0] the new online
            state (before the DDoS, as ``NetworkModel.online_state``), [1] online this
            period, [2] committed locally (``Votes.committed``; all False unless the round
            ran); the other rows are scratch.

    Returns:
        ``(n_online, code, view_changes, phase0_ms, phase1_ms, phase2_ms)``: ``code`` is one of
        NO_BLOCK, NO_LEADER, NO_QUORUM, COMMITTED; the phase durations
        (``quorum_latency_ms``'s three terms) are 0.0 unless COMMITTED.
    """
    n = down.size
    for r in range(work.shape[0]):
        for i in range(n):
            work[r, i] = False
    state_new, online, committed = work[0], work[1], work[2]
    has_pp, prepared, prep_send, com_send = work[3], work[4], work[5], work[6]
    n_online = 0
    for i in range(n):  # NetworkModel.next_online
        if not has_state:
            on = u[i] < availability
        elif p_up_from_down == p_up_from_up:
            on = u[i] < p_up_from_up
        else:
            on = u[i] < (p_up_from_up if state[i] else p_up_from_down)
        state_new[i] = on
        online[i] = on and not down[i]
        n_online += online[i]
    if not has_block:
        return n_online, NO_BLOCK, 0, 0.0, 0.0, 0.0

    primary = view % n  # select_primary
    changes = 0
    if not online[primary]:
        if n_online < 2 * f + 1:
            return n_online, NO_LEADER, 0, 0.0, 0.0, 0.0
        for k in range(1, n):
            if online[(primary + k) % n]:
                primary = (primary + k) % n
                changes = k
                break

    # count_votes: a message j -> i of phase p is delivered iff j != i, the receiver is
    # online and u[n + (p n + j) n + i] >= message_loss (senders are online by construction)
    for i in range(n):
        has_pp[i] = i == primary or (online[i] and u[n + primary * n + i] >= message_loss)
        prep_send[i] = has_pp[i] and voters[i]
    for i in range(n):
        prepared[i] = has_pp[i] and _votes(u, 1, prep_send, i, message_loss) >= 2 * f
        com_send[i] = prepared[i] and voters[i]
    n_committed = 0
    for i in range(n):
        committed[i] = com_send[i] and _votes(u, 2, com_send, i, message_loss) >= 2 * f
        n_committed += committed[i]
    if n_committed < 2 * f + 1:
        return n_online, NO_QUORUM, changes, 0.0, 0.0, 0.0

    # quorum_latency_ms with NetworkModel.delays_ms's delays, computed only where used
    times = np.empty((2, n), dtype=np.float64)  # scratch: completions, arrivals
    done = times[0]  # each node's completion time of the pre-prepare
    for i in range(n):  # the primary at once, the others when the pre-prepare arrives
        done[i] = _INF
        if i == primary:
            done[i] = 0.0
        elif has_pp[i]:
            done[i] = _delay(
                u, 0, primary, i, base_delay_ms, slow, has_slow, jitter_ms, jitter_is_log
            )
    phase0 = _kth_smallest(done, n, 2 * f)
    phase1 = _vote_phase_ms(
        u,
        1,
        prep_send,
        prepared,
        message_loss,
        f,
        base_delay_ms,
        slow,
        has_slow,
        jitter_ms,
        jitter_is_log,
        times,
    )
    phase2 = _vote_phase_ms(
        u,
        2,
        com_send,
        committed,
        message_loss,
        f,
        base_delay_ms,
        slow,
        has_slow,
        jitter_ms,
        jitter_is_log,
        times,
    )
    return n_online, COMMITTED, changes, phase0, phase1, phase2


@_jit.kernel
def _votes(
    u: NDArray[np.float64], p: int, senders: NDArray[np.bool_], i: int, message_loss: float
) -> int:
    """Phase-``p`` votes node ``i`` receives from ``senders`` (``count_votes``'s matmul row)."""
    n = senders.size
    loss = n + p * n * n  # this phase's loss uniforms, [sender, receiver]
    votes = 0
    for j in range(n):
        if senders[j] and j != i and u[loss + j * n + i] >= message_loss:
            votes += 1
    return votes


@_jit.kernel
def _vote_phase_ms(
    u: NDArray[np.float64],
    p: int,
    senders: NDArray[np.bool_],
    reached: NDArray[np.bool_],
    message_loss: float,
    f: int,
    base_delay_ms: NDArray[np.float64],
    slow: NDArray[np.float64],
    has_slow: bool,
    jitter_ms: float,
    jitter_is_log: bool,
    times: NDArray[np.float64],
) -> float:
    """Duration of vote phase ``p`` (1 prepare, 2 commit): ``quorum_latency_ms``'s term (ms).

    A node that ``reached`` the phase completes it at the arrival of the 2f-th vote delivered
    to it from ``senders``; the phase lasts until the (2f + 1)-th node completes it.
    ``times`` is (2, n) scratch.
    """
    n = senders.size
    loss = n + p * n * n  # this phase's loss uniforms, [sender, receiver]
    done, arrival = times[0], times[1]
    for i in range(n):
        done[i] = _INF
        if not reached[i]:
            continue
        m = 0
        for j in range(n):
            if senders[j] and j != i and u[loss + j * n + i] >= message_loss:
                arrival[m] = _delay(
                    u, p, j, i, base_delay_ms, slow, has_slow, jitter_ms, jitter_is_log
                )
                m += 1
        done[i] = _kth_smallest(arrival, m, 2 * f - 1)
    return _kth_smallest(done, n, 2 * f)


@_jit.kernel
def _delay(
    u: NDArray[np.float64],
    p: int,
    j: int,
    i: int,
    base_delay_ms: NDArray[np.float64],
    slow: NDArray[np.float64],
    has_slow: bool,
    jitter_ms: float,
    jitter_is_log: bool,
) -> float:
    """``NetworkModel.delays_ms(jitter_u)[p, j, i]``, message j -> i of phase p (ms).

    Same expression and order as the numpy code: ``(-jitter_ms) * log1p(-u)``, times the
    link's slowdown if any, added to the base delay; ``u`` is the whole draw (jitter part at
    ``n + 3 n^2``), whose jitter part holds ``log1p(-u)`` already if ``jitter_is_log``.
    """
    n = base_delay_ms.shape[0]
    at = n + 3 * n * n + (p * n + j) * n + i
    jitter = -jitter_ms * (u[at] if jitter_is_log else np.log1p(-u[at]))
    if has_slow:
        jitter *= slow[j, i]
    return float(base_delay_ms[j, i] + jitter)


@_jit.kernel
def _log1p_of_negated(u: NDArray[np.float64]) -> NDArray[np.float64]:
    """``np.log1p(-u)`` computed as :func:`_delay` computes it, one element at a time."""
    out = np.empty(u.size, dtype=np.float64)
    for k in range(u.size):
        out[k] = np.log1p(-u[k])
    return out


@functools.cache
def log1p_matches_numpy() -> bool:
    """Whether the kernels' ``log1p`` gives numpy's, bit for bit (``gives_numpys_log1p``).

    numba calls the C library's ``log1p``; numpy's ufunc does too, except where it has a
    vectorised version (with AVX-512, for instance), which may round some results
    differently. Where they differ, the caller fills the jitter part of the draw with numpy's
    ``log1p(-u)`` before the kernel runs (``jitter_is_log``).
    """
    return gives_numpys_log1p(_log1p_of_negated)
