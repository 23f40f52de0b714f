"""One SBET block for B copies of the batched chain (steps 1-8 of :mod:`mgenv.chain.sbet`).

:class:`_SBETBlock` follows ``run_block``: ``run`` wires the steps in order, each a method
named after its counterpart in :mod:`mgenv.chain.sbet_steps` (coordinator, election and
creator, serial lists, redundant exchange and integrity, candidate and votes, verdict).
Arrays carry the copy axis last. SBET's creator is an argmax over eq. (7)'s keys rather
than a sort, step 5 works on the compact list of requests, and the phases sent to all
(DATA, HASH) are gathered at once.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv.batched.chain_draws import _Round
from mgenv.batched.chain_select import _u8, _weigh, close_ms, kth_smallest
from mgenv.batched.chain_types import F64, I64, Bool
from mgenv.chain.sbet_steps import DATA, HASH
from mgenv.chain.types import MISSING, NO_QUORUM, PRIMARY_OFFLINE, TAMPERED

if TYPE_CHECKING:
    from mgenv.batched.chain import BatchedChain
    from mgenv.batched.chain_sbet import _Groups

_INF = math.inf
_REASONS: Final = np.array(  # SBET verdict by code: in block + verified, + 3 if no e_c, + 6 altered
    [MISSING, NO_QUORUM, 0, *[PRIMARY_OFFLINE] * 3, MISSING, NO_QUORUM, TAMPERED]
    + [PRIMARY_OFFLINE] * 3,
    dtype=np.int8,
)


class _Outcome(NamedTuple):
    """One SBET block per copy (``SBETBlock``; the empty outcome where nothing is admitted)."""

    reason: NDArray[np.int8]  # (G, B): 0 committed, else a reason (present rows only)
    latency_ms: F64
    view_changes: I64
    creator: I64
    recovered: NDArray[np.integer]  # (B,) each, counts of transactions
    missing: NDArray[np.integer]
    tampered: NDArray[np.integer]
    committed: NDArray[np.integer]
    holders: Bool  # (n, B): all False if nothing verified
    altered: Bool  # (B,): the creator is malicious and something verified


class _SBETBlock:
    """Steps 1-8 of :mod:`mgenv.chain.sbet` (``run_block``) for every copy, copies last.

    Arrays: (n, B) per node, (n, n, B) per link [sender, receiver], (G, n, B) per row
    (:class:`~mgenv.batched.chain_sbet._Groups`) and node; a copy is "held" (not missing)
    and "true" (not altered). Counts of booleans are integer contractions (``_tally``): any
    summation order is exact.
    """

    def __init__(
        self,
        chain: BatchedChain,
        net: _Round,
        period: int,
        per_origin: I64,
        grp: _Groups,
        run: Bool,
    ) -> None:
        self.c, self.net, self.period, self.grp = chain, net, period, grp
        self.per_origin = per_origin
        self.go_run = run  # (B,): something was admitted (else the outcome is empty)
        # every message of the phases sent to all: [DATA, HASH]
        self.link, self.delay = net.full((DATA, HASH))

    def run(self) -> _Outcome:
        """The block of every copy (``run_block``: steps 1-8 in order)."""
        c, net, grp = self.c, self.net, self.grp
        col, online = c._col, net.online
        q, t_max = c._q, c.params.t_max_ms
        held, data_ms = self._broadcast()
        true = held & c._honest if c._n_mal else held
        missing = _weigh("gb,gib->b", grp.weight, ~held & online)
        p, no_p, skips = self._coordinator()
        creator, found, changes, election, announced, d_an = self._elect(p)
        changes += skips
        elapsed = data_ms + changes * t_max + election
        run = self.go_run
        go = found & ~no_p & run
        # 4. serial lists [LISTS]; e_c's own arrival is inf (no self-link)
        l_c, d_c = net.lines(creator, c._at_c)  # COMPLETE, BLOCK, LISTS, INTEGRITY, COMMIT
        is_c = col == creator
        arrival = np.where(announced & l_c[2], d_an + d_c[2], _INF)
        lists = close_ms(arrival, q - 1, t_max)
        listed = arrival <= lists
        listed |= is_c
        complete = (held & listed).any(axis=1)  # (G, B)
        complete &= go
        held, true, recovered, exchange = self._exchange(held, true, complete, l_c, d_c, is_c)
        in_block, vote, altered = self._candidate(creator, complete, held, true, l_c[1], is_c)
        n_block = _weigh("gb,gb->b", grp.weight, in_block)
        commits, voting = self._vote(is_c, vote, n_block, l_c, d_c)
        reason, committed, tampered, holders, altered_some = self._verdict(
            commits, in_block, vote, is_c, go, altered
        )
        latency = np.where(no_p, data_ms, elapsed)
        latency = np.where(go, elapsed + lists + exchange + voting, latency)
        latency = np.where(run, latency, 0.0)
        return _Outcome(
            reason,
            latency,
            np.where(no_p | ~run, 0, changes),
            np.where(go, creator, -1),
            np.where(go, recovered, 0),
            missing,
            tampered,
            committed,
            holders,
            altered_some,
        )

    def _broadcast(self) -> tuple[Bool, F64]:
        """``DataPlane.broadcast``: who holds each row's copy (G, n, B), duration (B,) ms."""
        c, grp = self.c, self.grp
        t_max = c.params.t_max_ms
        link, delay = self.link[0], self.delay[0]  # (n, n, B)
        transit = delay + (c._header_ms + c._ms_per_record * self.per_origin)[:, None]
        in_time = transit <= t_max
        in_time &= link
        last = np.where(in_time, c._geo.wait_ms + transit, 0.0).max(axis=(0, 1))
        data_ms = np.maximum(last, t_max)
        if grp.origin is None:  # row g: the transactions of origin g
            held: Bool = in_time | c._eye
            held &= grp.present[:, None]
            return held, data_ms
        nb = c._rows.size
        sent = in_time.reshape(-1).take((grp.origin[:, None] * c._n + c._col) * nb + c._rows)
        held = (sent | (grp.origin[:, None] == c._col)) & grp.present[:, None]
        if grp.interrupted is not None:
            held &= ~grp.interrupted
        return held, data_ms

    def _coordinator(self) -> tuple[I64, Bool, I64]:
        """Step 1: e_p (the first online node from period % n on), no e_p (B,), skips (B,)."""
        c, online = self.c, self.net.online
        n = c._n
        first = self.period % n
        if c._step1 is not None:  # up to 8 nodes: by look-up (as the ring's argmax below)
            weights, first_online, skipped = c._step1
            code = np.matmul(weights, _u8(online))  # (B,) uint8: sum of 2^i over online i
            return first_online[first].take(code), code == 0, skipped[first].take(code)
        ring = online[c._ring[first]]  # (n, B): online, from node ``first`` on
        skips = np.argmax(ring, axis=0)
        no_p = ~ring.any(axis=0)
        p = skips + first
        p %= n
        return p, no_p, skips

    def _elect(self, p: I64) -> tuple[I64, Bool, I64, F64, Bool, F64]:
        """Steps 2-3, election [ELECT, YES] and announcement [ANNOUNCE] around e_p = ``p``.

        Returns e_c, whether one was found and the candidates skipped (B,) each, the
        election's close (B,) ms, and who got the announcement and when, (n, B) each (ms;
        e_p knows at once).
        """
        c = self.c
        l_p, d_p = self.net.lines(p, c._at_p)
        rt = d_p[0] + d_p[2]
        arrival = np.where(l_p[0] & l_p[2], rt, _INF)
        election = close_ms(arrival, c._q - 1, c.params.t_max_ms)
        yes = arrival <= election
        yes &= c._able
        is_p = c._col == p
        announced = l_p[1] | is_p
        creator, found, changes = self._creator(rt, yes, announced)
        d_an = np.where(is_p, 0.0, d_p[1])  # e_p knows at once
        return creator, found, changes, election, announced, d_an

    def _creator(self, rt: F64, yes: Bool, announced: Bool) -> tuple[I64, Bool, I64]:
        """Steps 2-3: e_c, whether one was found, and the candidates skipped (B,) each.

        The candidates in eq. (7)'s order (key descending, ties by node index: the stable
        argsort of ``-key``), the first one that got the announcement (and, with colluders,
        is honest or backed by a malicious quorum). Without building the order: e_c is the
        fittest candidate with the largest key, the skips are the candidates ranked before
        it. Where no candidate fits, e_c is arbitrary (unused) and the skips are all the
        candidates.
        """
        c, net, col = self.c, self.net, self.c._col
        key = rt * c._storage
        if c.params.creator_election == "proportional":
            extra_u = net.flat[c._extra_u]
            key = np.log(key + 1e-300) + -np.log(-np.log(extra_u))
            if (yes & (key == -_INF)).any():  # -key ties the non-candidates' inf: sort
                return self._creator_by_sort(key, yes, announced)
        fit = announced
        if c._n_mal:
            strong = c._tally("ib->b", c._malicious & net.online & c._voters) >= c._q
            fit = announced & (c._honest | strong)
        fit = fit & yes
        fit_key = np.where(fit, key, -_INF)
        creator: I64 = np.argmax(fit_key, axis=0)  # the first of equal keys
        found: Bool = np.logical_or.reduce(fit, axis=0)
        top = np.maximum.reduce(fit_key, axis=0)  # e_c's key where found (else unused)
        before = key > top
        before |= (key == top) & (col < creator)
        before &= yes
        # skipped: the candidates before e_c, or all of them where none fits
        changes: I64 = np.add.reduce(np.where(found, before, yes), axis=0, dtype=np.int64)
        return creator, found, changes

    def _creator_by_sort(self, key: F64, yes: Bool, announced: Bool) -> tuple[I64, Bool, I64]:
        """``_creator`` by the stable argsort itself (some candidate's key is -inf)."""
        c, net, rows, col = self.c, self.net, self.c._rows, self.c._col
        order = np.argsort(np.where(yes, -key, _INF), axis=0, kind="stable")
        n_yes = yes.sum(axis=0)
        if c._n_mal:
            strong = (c._malicious & net.online & c._voters).sum(axis=0) >= c._q
            fit = announced & (c._honest | strong)
        else:
            fit = announced
        ok = fit[order, rows] & (col < n_yes)
        at = np.argmax(ok, axis=0)
        found = ok[at, rows]
        return order[at, rows], found, np.where(found, at, n_yes)

    def _exchange(
        self, held: Bool, true: Bool, complete: Bool, l_c: Bool, d_c: F64, is_c: Bool
    ) -> tuple[Bool, Bool, NDArray[np.integer], F64]:
        """Steps 5-6: redundant exchange [COMPLETE, REQUEST, REPLY], integrity [INTEGRITY].

        Returns held and true (G, n, B) after the exchange, the copies recovered (B,) and
        the integrity collector's close (B,) ms (``sbet_steps.integrity_ms``).
        """
        c = self.c
        got = l_c[0] | is_c
        need = got & ~held
        need &= complete[:, None]
        if need.any():
            held, true, recovered, ready = self._recover(held, true, need)
            arrival = np.where(is_c, ready, d_c[0] + ready + d_c[3])
        else:
            recovered = np.zeros(c._rows.size, dtype=np.int64)
            arrival = np.where(is_c, 0.0, d_c[0] + d_c[3])  # ready = 0: x + 0.0 is x
        sent = got & l_c[3]
        sent |= is_c
        exchange = close_ms(np.where(sent, arrival, _INF), c._q, c.params.t_max_ms)
        return held, true, recovered, exchange

    def _recover(
        self, held: Bool, true: Bool, need: Bool
    ) -> tuple[Bool, Bool, NDArray[np.integer], F64]:
        """Step 5's exchange (``sbet_steps.recover``); where nothing is needed it is a no-op.

        Returns held, true (G, n, B) after it, the copies honest nodes recovered (B,) and
        when each node's exchange ended (n, B) (0 for nodes that requested nothing).

        Computed on the compact list of requests (g, i, b) (few: a copy is missing only where
        a message was lost or a node was offline), each against every holder j, (n, M):
        request i -> j, answer j -> i after eq. (6)'s wait, drawn straight from the period's
        uniforms. Base delays and waits are symmetric, so [i, j] serves for [j, i].
        """
        c, w, net = self.c, self.grp.weight, self.net
        n, nb, q, t_max = c._n, c._rows.size, c._q, c.params.t_max_ms
        size_ms = c._header_ms + c._ms_per_record * _weigh("gb,gib->ib", w, need)
        at = np.flatnonzero(need)  # requests, flat in (G, n, B)
        gi, b = np.divmod(at, nb)
        i = gi % n
        i_b = i * nb + b  # (M,): [i, b] in (n, B)
        j_b = c._col_nb + b  # (n, M): [j, b] in (n, B)
        i_j_b = i * (n * nb) + j_b  # (n, M): [i, j, b] in (n, n, B)
        # loss and jitter uniforms of the requests i -> j (n rows) and answers j -> i (n rows)
        answered, jitter = net.gather(c._ask_u + (b * c._draw_size + i * c._ask_step))  # (2n, M)
        if c._slow_flat is not None:
            jitter *= np.tile(c._slow_flat.take(i_j_b), (2, 1))
        base = c._base_flat.take(i_j_b)
        transit = base + jitter[:n] + (base + jitter[n:]) + size_ms.reshape(-1).take(i_b)
        answered = answered[:n] & answered[n:]
        # both ends online and j != i (requesters are online: they got e_c's list)
        answered &= net.both_on().reshape(-1).take(i_j_b)
        answered &= transit <= t_max
        waited = transit + c._geo.wait_ms.reshape(-1).take(i_j_b)
        # a recovery completes at its q-th true copy (finite iff q true copies came)
        j_g_b = (gi - i) * nb + j_b  # (n, M): [g, j, b] in (G, n, B)
        true_g = true.reshape(-1).take(j_g_b)
        done = kth_smallest(np.where(true_g & answered, waited, _INF), q)  # (M,)
        got = done < _INF
        ask = c._honest.reshape(-1).take(i_b) if c._n_mal else None  # None: all honest
        if ask is not None:
            got &= ask
        got_true = np.zeros(need.shape, dtype=bool)
        got_true.reshape(-1)[at] = got
        held2, true2 = held | got_true, true | got_true
        if ask is not None:
            n_true = c._tally("jm->m", true_g & answered)
            held_g = held.reshape(-1).take(j_g_b)
            n_alt = c._tally("jm->m", held_g & ~true_g & answered)
            alt = np.zeros(need.shape, dtype=bool)
            alt.reshape(-1)[at] = (ask & (n_alt >= q)) | (~ask & ((n_true > 0) | (n_alt > 0)))
            held2, true2 = held2 | alt, true2 & ~alt
        # a node that cannot recover gives up at its timer, or at the last answer if later
        give_up = np.maximum(np.where(answered, waited, 0.0).max(axis=0), t_max)  # (M,)
        ended = np.zeros(need.shape)
        ended_at = np.where(got, done, give_up)
        if ask is not None:  # the malicious request nothing
            ended_at = np.where(ask, ended_at, 0.0)
        ended.reshape(-1)[at] = ended_at
        recovered = _weigh("gb,gib->b", w, got_true)
        return held2, true2, recovered, ended.max(axis=0)

    def _candidate(
        self, creator: I64, complete: Bool, held: Bool, true: Bool, got_block: Bool, is_c: Bool
    ) -> tuple[Bool, Bool, Bool | None]:
        """Step 7's candidate [BLOCK] (``sbet_steps.candidate_votes``).

        Returns the rows in e_c's block (G, B), the "Yes" votes (G, n, B) and whether e_c
        is malicious (B,) (its block altered; None without malicious nodes).
        """
        c = self.c
        own = held.reshape(held.shape[0], -1).take(creator * c._rows.size + c._rows, axis=1)
        getter = got_block | is_c
        getter &= c._voters
        if c._n_mal:
            altered = c._malicious.reshape(-1).take(creator * c._rows.size + c._rows)
            in_block = complete & (own | altered)
            voter = np.where(altered, c._malicious, c._honest) & getter
            vote = in_block[:, None] & (true | altered) & voter  # (G, n, B): votes "Yes"
            return in_block, vote, altered
        in_block = complete & own
        vote = in_block[:, None] & held
        vote &= getter
        return in_block, vote, None

    def _vote(
        self, is_c: Bool, vote: Bool, n_block: NDArray[np.integer], l_c: Bool, d_c: F64
    ) -> tuple[NDArray[np.integer], F64]:
        """Step 7 (``sbet_steps.vote``): commits (G, B) reaching e_c and the vote time (B,)."""
        c = self.c
        q, t_max = c._q, c.params.t_max_ms
        hash_link = self.link[1]  # (n, n, B)
        # own hash included: a "Yes" node has q matching hashes iff q - 1 others reached it
        ready = c._tally("gsb,srb->grb", vote, hash_link) >= q - 1
        ready &= vote
        to_c = l_c[4] | is_c
        commits = c._tally("gib,ib->gb", ready, to_c)  # (G, B)
        passed = (commits >= q).any(axis=0)
        if not passed.any():
            never: F64 = np.full(c._rows.size, t_max)
            return commits, never
        block_at = d_c[1] + (c._header_ms + c._ms_per_record * n_block)
        block_at = np.where(is_c, 0.0, block_at)
        voting: Bool = np.logical_or.reduce(vote, axis=0)  # (n, B): sent a hash list
        hash_at = np.where(hash_link & voting[:, None], block_at[:, None] + self.delay[1], _INF)
        hashed = np.maximum(block_at, kth_smallest(hash_at, q - 1))
        commit_at = np.where(is_c, hashed, hashed + d_c[4])
        committing = ready.any(axis=0)
        committing &= to_c
        done = kth_smallest(np.where(committing, commit_at, _INF), q)
        out: F64 = np.where(passed, done, t_max)
        return commits, out

    def _verdict(
        self,
        commits: NDArray[np.integer],
        in_block: Bool,
        vote: Bool,
        is_c: Bool,
        go: Bool,
        altered: Bool | None,
    ) -> tuple[NDArray[np.int8], NDArray[np.integer], NDArray[np.integer], Bool, Bool]:
        """Step 8: reasons (G, B), committed and tampered transactions (B,), holders (n, B).

        Also whether the decided block is the colluders' altered one (B,). Reasons:
        PRIMARY_OFFLINE unless ``go``; else 0, TAMPERED, NO_QUORUM or MISSING.
        """
        c, w = self.c, self.grp.weight
        verified = commits >= c._q
        verified &= in_block
        n_verified = _weigh("gb,gb->b", w, verified)
        some = go & (n_verified > 0)
        dissent = (verified[:, None] & ~vote).any(axis=0)  # (n, B): "No" on a verified one
        holders = ~dissent
        holders |= is_c
        holders &= some
        code = _u8(in_block) + _u8(verified)  # 0 missing, 1 no quorum, 2 verified
        code += np.where(go, np.uint8(0), np.uint8(3))
        if altered is None:
            reason = _REASONS.take(code)
            tampered = np.zeros(c._rows.size, dtype=np.int64)
            committed = np.where(go, n_verified, 0)
            altered_some = np.zeros(c._rows.size, dtype=bool)
        else:
            code += np.where(altered, np.uint8(6), np.uint8(0))
            reason = _REASONS.take(code)
            tampered = np.where(go & altered, n_verified, 0)
            committed = np.where(go & ~altered, n_verified, 0)
            altered_some = altered & some
        return reason, committed, tampered, holders, altered_some
