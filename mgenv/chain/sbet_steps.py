"""The steps of an SBET block (seed 003, Algorithm 1), as pure functions over numpy arrays.

:mod:`mgenv.chain.sbet` describes the model and wires these steps in order; each function
here is one step, vectorised over nodes (n) and transactions (B). Arrays indexed
[phase, sender, receiver] are (P, n, n); ``link`` is "delivered and both ends online".
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv.chain.dataplane import ALTERED, MISSING, TRUE, DataPlane, close_ms, kth_smallest

(DATA, ELECT, YES, ANNOUNCE, LISTS, COMPLETE, REQUEST, REPLY, INTEGRITY, BLOCK, HASH, COMMIT) = (
    range(12)
)
N_PHASES: Final = 12
_INF = np.inf


class SBETFixed(NamedTuple):
    """Per-node constants of an SBET network.

    Attributes:
        storage: Shape (n,), storage space s_i of eq. (7) (relative units).
        voters: Shape (n,), bool: node sends votes (not withholding).
        proportional: Creator drawn with probability p_i (else the argmax).
        onehot: Shape (n, n), bool identity: ``onehot[c]`` marks node c.
    """

    storage: NDArray[np.float64]
    voters: NDArray[np.bool_]
    proportional: bool
    onehot: NDArray[np.bool_]


def coordinator(online: NDArray[np.bool_], period: int) -> tuple[int, int]:
    """Step 1: e_p, the first online node from ``period % n`` on, and the skips (-1: none)."""
    n = online.size
    first = period % n
    if online[first]:
        return first, 0
    up = np.roll(online, -first)
    if not up.any():
        return -1, 0
    skipped = int(np.argmax(up))
    return (first + skipped) % n, skipped


def elect(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    p: int,
    able: NDArray[np.bool_],
    fixed: SBETFixed,
    gumbel: NDArray[np.float64] | None,
    q: int,
    t_max: float,
) -> tuple[NDArray[np.intp], float]:
    """Step 2: the candidates in eq. (7)'s order, best first, and the election time (ms).

    Args:
        link: Shape (P, n, n), bool: delivered and both ends online.
        delay: Shape (P, n, n), one-way delays (ms).
        p: The coordinator.
        able: Shape (n,), bool: would answer "Yes" (honest and not busy, or malicious).
        fixed: Storage spaces s_i.
        gumbel: Shape (n,), Gumbel noise for the proportional draw, or None for the argmax.
        q: The quorum.
        t_max: The timer (ms).
    """
    rt = delay[ELECT, p] + delay[YES, :, p]  # (n,) response time t_i, ms
    arrival = np.where(link[ELECT, p] & link[YES, :, p], rt, _INF)
    yes = arrival.copy()
    closed = close_ms(arrival, q - 1, t_max)
    yes = (yes <= closed) & able
    key = rt * fixed.storage  # eq. (7): p_i proportional to t_i s_i
    if gumbel is not None:
        key = np.log(key + 1e-300) + gumbel
    order = np.argsort(np.where(yes, -key, _INF), kind="stable")
    return order[: np.count_nonzero(yes)], closed


def pick_creator(
    candidates: NDArray[np.intp],
    announced: NDArray[np.bool_],
    honest: NDArray[np.bool_],
    malicious_pass: bool,
) -> tuple[int, int]:
    """Step 3: the first acceptable candidate and how many were skipped (-1 if none)."""
    ok = announced[candidates] & (honest[candidates] | malicious_pass)
    if np.count_nonzero(ok) == 0:
        return -1, int(candidates.size)
    first = int(np.argmax(ok))
    return int(candidates[first]), first


def serial_lists(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    p: int,
    c: int,
    announced: NDArray[np.bool_],
    copies: NDArray[np.int8],
    q: int,
    t_max: float,
) -> tuple[NDArray[np.bool_], float]:
    """Step 4: the complete list, shape (B,) bool, and the time to its close (ms)."""
    announce = delay[ANNOUNCE, p].copy()
    announce[p] = 0.0  # e_p knows at once
    arrival = np.where(announced & link[LISTS, :, c], announce + delay[LISTS, :, c], _INF)
    arrival[c] = _INF  # e_c has its own list and waits for q - 1 others
    listed = arrival.copy()
    closed = close_ms(arrival, q - 1, t_max)
    listed = listed <= closed
    listed[c] = True
    return (copies[:, listed] != MISSING).any(axis=1), closed


def recover(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    plane: DataPlane,
    copies: NDArray[np.int8],
    need: NDArray[np.bool_],
) -> tuple[NDArray[np.int8], int, NDArray[np.float64]]:
    """Step 5's redundant exchange (Alg. 1, lines 19-25).

    Args:
        link: Shape (P, n, n), bool: delivered and both ends online.
        delay: Shape (P, n, n), one-way delays (ms).
        plane: The data plane (timers, quorum, malicious nodes).
        copies: Shape (B, n), the copies after the broadcast.
        need: Shape (B, n), bool: node i requests transaction t.

    Returns:
        (copies after the exchange, copies honest nodes recovered, shape (n,) time at which
        each node's exchange ends, ms after its request; 0 for nodes that requested nothing).
    """
    q, t_max, honest = plane.quorum, plane.t_max_ms, plane.honest
    size_ms = plane.header_ms + plane.ms_per_record * need.sum(axis=0)  # (n,) per requester
    # [holder j, requester i]: request i -> j, answer j -> i after eq. (6)'s wait
    transit = delay[REQUEST].T + delay[REPLY] + size_ms
    answered = link[REQUEST].T & link[REPLY] & (transit <= t_max)
    arrival = np.where(answered, transit + plane.wait_ms, _INF)
    true_held = copies == TRUE
    n_true = np.matmul(true_held, answered, dtype=np.intp)  # (B, n): true copies received
    ask = need & honest
    got_true = ask & (n_true >= q)
    out = copies.copy()
    out[got_true] = TRUE
    if plane.any_malicious:
        n_alt = np.matmul(copies == ALTERED, answered, dtype=np.intp)
        out[(ask & (n_alt >= q)) | (need & ~honest & (n_true + n_alt > 0))] = ALTERED
    times = np.where(true_held[:, :, None], arrival, _INF)  # (B, j, i)
    times.sort(axis=1)
    # a node that cannot recover gives up at its timer, or at the last answer if later
    give_up = np.maximum(np.where(answered, arrival, 0.0).max(axis=0), t_max)  # (n,)
    done = np.where(got_true, times[:, q - 1, :], give_up)
    end = np.where(ask, done, 0.0).max(axis=0)
    return out, int(np.count_nonzero(got_true)), end


def integrity_ms(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    c: int,
    got: NDArray[np.bool_],
    ready: NDArray[np.float64],
    q: int,
    t_max: float,
) -> float:
    """Step 6: from e_c sending the complete list to its q-th integrity message (ms).

    Args:
        link: Shape (P, n, n), bool.
        delay: Shape (P, n, n), ms.
        c: The creator.
        got: Shape (n,), bool: node got the complete list (e_c included).
        ready: Shape (n,): when each node's exchange ended, ms after the list reached it.
        q: The quorum.
        t_max: The timer (ms).
    """
    arrival = delay[COMPLETE, c] + ready + delay[INTEGRITY, :, c]
    arrival[c] = ready[c]
    sent = got & link[INTEGRITY, :, c]
    sent[c] = True
    return close_ms(np.where(sent, arrival, _INF), q, t_max)


def vote(
    link: NDArray[np.bool_],
    delay: NDArray[np.float64],
    plane: DataPlane,
    c: int,
    yes: NDArray[np.bool_],
    onehot: NDArray[np.bool_],
    n_block: int,
) -> tuple[NDArray[np.intp], float]:
    """Step 7: commits per transaction reaching e_c (own included) and the vote time (ms).

    Args:
        link: Shape (P, n, n), bool.
        delay: Shape (P, n, n), ms.
        plane: The data plane.
        c: The creator.
        yes: Shape (B, n), bool: node got the candidate and votes for transaction t.
        onehot: Shape (n,), bool: marks e_c.
        n_block: Transactions in the candidate (for its transmission time).
    """
    q = plane.quorum
    hash_link = link[HASH]
    # own hash included: a "Yes" node has q matching hashes iff q - 1 others reached it
    ready = yes & (np.matmul(yes, hash_link, dtype=np.intp) >= q - 1)  # (B, n)
    to_c = link[COMMIT, :, c] | onehot
    commits = np.add.reduce(ready & to_c, axis=1)  # (B,)
    if np.count_nonzero(commits >= q) == 0:
        return commits, plane.t_max_ms
    block_at = delay[BLOCK, c] + (plane.header_ms + plane.ms_per_record * n_block)
    block_at[c] = 0.0
    voting = np.logical_or.reduce(yes, axis=0)  # (n,) sent a hash list
    hash_at = np.where(hash_link & voting[:, None], block_at[:, None] + delay[HASH], _INF)
    hash_at.sort(axis=0)  # [k-th arrival, receiver]; q >= 2 as n >= 3 and gamma > 1/2
    hashed = np.maximum(block_at, hash_at[q - 2])
    commit_at = hashed + delay[COMMIT, :, c]
    commit_at[c] = hashed[c]
    committing = np.logical_or.reduce(ready, axis=0) & to_c
    return commits, kth_smallest(np.where(committing, commit_at, _INF), q)


def candidate_votes(
    link: NDArray[np.bool_],
    plane: DataPlane,
    c: int,
    copies: NDArray[np.int8],
    complete: NDArray[np.bool_],
    fixed: SBETFixed,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Step 7's candidate (B,) and who votes "Yes" on each transaction (B, n)."""
    altered = bool(plane.malicious[c])
    in_block = complete & ((copies[:, c] != MISSING) | altered)
    got = (link[BLOCK, c] | fixed.onehot[c]) & fixed.voters
    if altered:  # only the colluders vote for the altered candidate
        return in_block, in_block[:, None] & (plane.malicious & got)
    return in_block, in_block[:, None] & (copies == TRUE) & (plane.honest & got)
