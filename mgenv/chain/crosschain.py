"""Cross-chain consensus through verification node subsets (seed 000, section 3.2, eqs. 1-3, 12-16).

Topology. There are ``n_chains`` chains; participant ``p`` lives on chain ``p % n_chains`` and
validator node ``v`` on chain ``v % n_chains``. Each period every chain's verification node
subset (VNS) is its ``vns_size`` nodes of highest credibility (ties: lower index).

A trade is a request from the seller ``x_i`` (sender chain ``x``) to the buyer ``y_j``
(receiver chain ``y``). A trade *between* chains passes the six phases of section 3.2:

1. ``x_i`` signs the request with the threshold signature of section 4.2
   (:mod:`mgenv.chain.threshold`) for the receivers ``V_x u V_y``, and deploys the contract
   with its deadline ``deadline_ms``;
2. ``V_x`` verifies: a member verifies when it is online, honest, got the request and its
   vote back (each message lost with ``message_loss``) and the signature passes test (10)
   and rule (11) at it; the phase ends when the ``t_x``-th verification arrives (eq. 15);
3. the request crosses to ``V_y`` (one inter-chain message), which verifies the same way;
4. ``y_j`` concludes if condition (1) ``t_current <= deadline - Delta t`` (``deploy_ms``), (2)
   ``V_y`` recognised the request and (3) traceability - the signature verified by the
   threshold of every VNS and ``sum_d t'_d >= t = sum_d t_d`` (eq. 16) - hold;
5. ``x_i`` verifies ``y_j``'s response (one message back) and the contract executes
   (``deploy_ms``);
6. ``x_i`` and ``y_j`` broadcast the cross-chain certificate (one more message).

A trade *within* one chain uses that chain's internal consensus, modelled here by its VNS
alone: phases 1-2 with receivers ``V_x``, condition (1), then execution. (The paper keeps each
chain's own consensus unchanged and only specifies the cross-chain part.)

Failures. A VNS member that is offline, malicious or whose messages are lost does not verify;
a malicious member also forwards corrupted keys in the distribution phase, so honest members
fail its tests (10) - the "forged partial signatures" - and may reject by rule (11). A VNS
short of its threshold rejects the trade (``"vns_rejected"``); verifications that end after
``deadline - Delta t`` miss the deadline (``"deadline_missed"``). Failed trades fall back to
the grid in settlement. Credibility: after each period every VNS member's credibility moves
by ``CREDIBILITY_RATE`` towards 1 if it was online and did not misbehave, else towards 0 (a
false rejection of a valid, transferable signature is provable), so malicious or unreliable
members are replaced by reserve nodes over time when ``n_nodes > n_chains * vns_size``.

What the agents see. Every agent observes ``commit_ratio``, the exponential moving average
(``mgenv.core.COMMIT_EMA``) of the share of its own traded energy that committed: one minus
its recent failure rate. In ``crosschain_aggregators`` that covers its cross-chain and its
within-chain trades (both fail for the same reasons, the within-chain ones without the second
VNS); ``infos`` add the period's ``chain_cross_tx`` and ``chain_cross_failed`` counts for the
cross-chain rate alone.

Latency (a model). One-way delay from a chain's gateway (the centroid of its nodes) to a node:
``base_delay_ms + delay_per_km_ms * distance`` plus exponential jitter of mean ``jitter_ms``
per message; between chains: the same from gateway to gateway. A committed trade's latency is
the sum of its phases; a failed one waited ``deadline_ms``; the period reports the largest.

Random streams. ``network_rng``: node positions, initial credibilities and the key stream
(``spawn``) at construction; per period exactly two draws - ``random(n_nodes)`` (online) and
one integer that seeds the period's per-message draws, so the stream never depends on the
number of trades. ``adversary_rng``: the malicious members and the garbage keys' seed, at
construction. Keys: each signer's ``(n_nodes, n_nodes, 32)`` strings ``r_ij`` are drawn from a
Generator seeded by the key stream's seed and the signer's index (order independent). Online
status is memoryless here (``mean_outage_periods`` is not used by this protocol).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from mgenv.chain import threshold as ts
from mgenv.chain.types import (
    COMMITTED,
    DEADLINE_MISSED,
    VNS_REJECTED,
    PerTransactionProtocol,
    TxOutcome,
)

if TYPE_CHECKING:
    from _hashlib import HASH

    from mgenv.chain.params import ChainParams

CREDIBILITY_RATE: Final = 0.3  # weight of the latest period in a VNS member's credibility


class CrossChainProtocol(PerTransactionProtocol):
    """Per-transaction cross-chain consensus (see the module docstring).

    Args:
        params: Chain parameters (``n_nodes >= n_chains * vns_size``).
        network_rng: The network stream (kept: two draws every period).
        adversary_rng: The adversary stream (drawn from at construction only).
    """

    min_nodes = 1

    def __init__(
        self,
        params: ChainParams,
        network_rng: np.random.Generator,
        adversary_rng: np.random.Generator,
    ) -> None:
        n, c, k = params.n_nodes, params.n_chains, params.vns_size
        if n < c * k:
            raise ValueError(f"n_nodes={n} < n_chains * vns_size = {c * k}")
        self.p = params
        self.chain_of_node = np.arange(n) % c  # (N,)
        pos = network_rng.uniform(0.0, params.area_km, (n, 2))  # (N, 2) km
        self.credibility = network_rng.uniform(0.5, 1.0, n)  # (N,)
        self._key_seed = int(network_rng.spawn(1)[0].integers(2**63))
        gateway = np.stack([pos[self.chain_of_node == x].mean(axis=0) for x in range(c)])
        self.node_delay_ms = params.base_delay_ms + params.delay_per_km_ms * np.linalg.norm(
            pos[None, :, :] - gateway[:, None, :], axis=2
        )  # (C, N) gateway -> node
        self.hop_ms = params.base_delay_ms + params.delay_per_km_ms * np.linalg.norm(
            gateway[:, None, :] - gateway[None, :, :], axis=2
        )  # (C, C) gateway -> gateway
        self.vns = self.select_vns()  # (C, k)
        bad = math.floor(params.vns_malicious_share * k + 0.5)
        pick = adversary_rng.permuted(np.tile(np.arange(k), (c, 1)), axis=1)[:, :bad]
        self.malicious = np.zeros(n, dtype=bool)  # (N,)
        self.malicious[np.take_along_axis(self.vns, pick, axis=1).ravel()] = True
        self._garbage_seed = int(adversary_rng.integers(2**63))
        self._pad_cache: dict[int, tuple[HASH, HASH]] = {}
        self._key_cache: dict[int, tuple[NDArray[np.uint8], NDArray[np.uint8]]] = {}
        self._rng = network_rng

    def select_vns(self) -> NDArray[np.int64]:
        """Each chain's ``vns_size`` most credible nodes, shape ``(n_chains, vns_size)``."""
        n, k = self.chain_of_node.size, self.p.vns_size
        order = np.lexsort((np.arange(n), -self.credibility, self.chain_of_node))
        start = np.searchsorted(self.chain_of_node[order], np.arange(self.p.n_chains))
        return np.asarray(order[start[:, None] + np.arange(k)], dtype=np.int64)

    def signer_keys(self, signer: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """``(r, garbage)`` of one signer over all node pairs, each ``(N, N, 32)`` uint8.

        ``r[j, i]`` is the string ``r_ji`` for receiver nodes ``j, i``; ``garbage[j, i]`` is
        what node ``j`` forwards to ``i`` instead when ``j`` is malicious.
        """
        n = self.chain_of_node.size
        shape = (n, n, ts.TAG_BYTES)
        r = np.random.default_rng([self._key_seed, signer]).integers(0, 256, shape, np.uint8)
        g = np.random.default_rng([self._garbage_seed, signer]).integers(0, 256, shape, np.uint8)
        return r, g

    def _pads(self, ids: list[int]) -> list[tuple[HASH, HASH]]:
        """HMAC pad states of key ids ``(signer * N + j) * N + i`` (garbage keys: ``-1 - id``).

        Built on first use and cached, so that only the VNS pairs actually used cost anything.
        """
        cache, nn = self._pad_cache, self.chain_of_node.size**2
        for k in {k for k in ids if k not in cache}:  # first use of a key only
            signer, local = divmod(k if k >= 0 else -1 - k, nn)
            if signer not in self._key_cache:
                self._key_cache[signer] = self.signer_keys(signer)
            keys = self._key_cache[signer][0 if k >= 0 else 1].reshape(-1, ts.TAG_BYTES)
            cache[k] = ts.hmac_pads([keys[local].tobytes()])[0]
        return [cache[k] for k in ids]

    def signature_checks(
        self,
        signers: NDArray[np.int64],
        receivers: NDArray[np.int64],
        widths: NDArray[np.int64],
        payloads: list[bytes],
    ) -> NDArray[np.bool_]:
        """Sign each request for its receivers; run test (10) and rule (11) at each of them.

        Vectorised over the entries ``(t, j, i)`` of every request's ``n_t x n_t`` signature
        (only the HMACs themselves are a loop). Entry ``(j, i)`` of request ``t`` is
        ``f_ji(m_t)`` under the signer's key ``r_ji``; receiver ``i`` tests it with the key it
        got from ``j``: the garbage key if ``j`` is malicious and ``j != i``.

        Args:
            signers: Signer of each request, shape ``(V,)``.
            receivers: Receiver nodes, shape ``(V, W)``; request ``t`` uses the first
                ``widths[t]`` columns.
            widths: Number of receivers ``n_t`` of each request, shape ``(V,)``.
            payloads: The signed messages, length ``V``.

        Returns:
            Shape ``(V, W)`` bool: receiver ``receivers[t, i]`` accepts (False beyond width).
        """
        v, w_max, n = signers.size, receivers.shape[1], self.chain_of_node.size
        if v == 0:
            return np.zeros((0, w_max), dtype=bool)
        sizes = widths**2
        starts = np.cumsum(sizes) - sizes
        tx = np.repeat(np.arange(v), sizes)  # (E,) entries of all signatures
        off = np.arange(int(sizes.sum())) - starts[tx]
        jpos, ipos = off // widths[tx], off % widths[tx]
        nj, ni = receivers[tx, jpos], receivers[tx, ipos]
        ids = ((signers[tx] * n + nj) * n + ni).tolist()
        msgs = [payloads[t] for t in tx.tolist()]
        signature = ts.padded_tags(self._pads(ids), msgs)  # the signature phase
        expected = signature.copy()  # HMAC is deterministic: honest forwarding, same tag
        bad = np.flatnonzero(self.malicious[nj] & (jpos != ipos))  # corrupted forwarding
        if bad.size:  # tested with the key actually held
            expected[bad] = ts.padded_tags(
                self._pads([-1 - ids[e] for e in bad.tolist()]), [msgs[e] for e in bad.tolist()]
            )
        passed = ts.tag_tests(expected, signature)  # (E,) test (10)
        counts = np.bincount(tx * w_max + ipos, weights=passed, minlength=v * w_max)
        need = (0.5 + 2.0 * (1.0 - self.p.honest_share)) * widths  # rule (11)
        inside = np.arange(w_max) < widths[:, None]
        return np.asarray((counts.reshape(v, w_max) >= need[:, None] - 1e-9) & inside)

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_pad_cache"] = {}  # hash states do not pickle; rebuilt on use
        return state

    def decide_transactions(
        self,
        period: int,
        sellers: list[int],
        buyers: list[int],
        valid: NDArray[np.bool_],
        payloads: list[bytes],
    ) -> TxOutcome:
        """Run the six phases for every valid transaction of the period (vectorised).

        Args:
            period: Market period index (unused: the draws depend only on the stream).
            sellers: Seller (request sender) of each transaction, length T.
            buyers: Buyer (request receiver) of each transaction, length T.
            valid: Shape (T,) bool: passed the chain's signature and validity checks.
            payloads: The 40-byte transaction records (the signed messages).

        Returns:
            The :class:`~mgenv.chain.types.TxOutcome`.
        """
        p, k = self.p, self.p.vns_size
        online = self._rng.random(self.chain_of_node.size) < p.availability  # (N,)
        draws = np.random.default_rng(int(self._rng.integers(2**63)))
        vns = self.vns
        s, b = np.asarray(sellers, dtype=np.int64), np.asarray(buyers, dtype=np.int64)
        cs, cb = s % p.n_chains, b % p.n_chains
        cross = cs != cb  # (T,)
        members = np.concatenate((vns[cs], vns[cb]), axis=1)  # (T, 2k): V_x then V_y
        involved = np.ones(members.shape, dtype=bool)
        involved[~cross, k:] = False
        sig_ok = np.zeros(members.shape, dtype=bool)
        idx = np.flatnonzero(valid)
        widths = np.where(cross[idx], 2 * k, k)
        sig_ok[idx] = self.signature_checks(
            s[idx], members[idx], widths, [payloads[t] for t in idx.tolist()]
        )
        verified, arrival, hops = self._votes(draws, members, involved, sig_ok, online, cs, cb)
        committed, reason, latency = self._verdict(verified, arrival, hops, cross, valid)
        asked = np.zeros(self.chain_of_node.size, dtype=bool)
        asked[members[valid[:, None] & involved]] = True
        extra = self._update_credibility(online, asked)
        extra.update(
            cross_tx=float(np.count_nonzero(cross & valid)),
            cross_failed=float(np.count_nonzero(cross & valid & ~committed)),
        )
        share = float(online[vns].mean())
        worst = float(latency[valid].max()) if valid.any() else 0.0
        return TxOutcome(committed, reason, worst, share, int(extra["vns_changes"]), extra)

    def _votes(
        self,
        draws: np.random.Generator,
        members: NDArray[np.int64],
        involved: NDArray[np.bool_],
        sig_ok: NDArray[np.bool_],
        online: NDArray[np.bool_],
        cs: NDArray[np.int64],
        cb: NDArray[np.int64],
    ) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
        """Who verifies each request, when the vote arrives, and the inter-chain hops.

        Returns:
            ``verified`` (T, 2k) bool, ``arrival`` (T, 2k) ms since the phase started (inf if
            no vote), ``hops`` (T, 3) ms: to ``V_y``, response back, certificate.
        """
        p, k = self.p, self.p.vns_size
        t = members.shape[0]
        u = draws.random((t, 2 * k, 4))  # loss request, loss vote, jitter request, jitter vote
        hop_u = draws.random((t, 3))
        delivered = (u[..., 0] >= p.message_loss) & (u[..., 1] >= p.message_loss)
        chain_of = np.concatenate(
            (np.repeat(cs[:, None], k, 1), np.repeat(cb[:, None], k, 1)), axis=1
        )  # (T, 2k): which gateway sends to the member
        one_way = self.node_delay_ms[chain_of, members]
        jitter = -p.jitter_ms * np.log1p(-u[..., 2:]).sum(axis=-1)
        verified = involved & sig_ok & delivered & online[members] & ~self.malicious[members]
        arrival = np.where(verified, 2.0 * one_way + jitter, np.inf)
        hops = self.hop_ms[cs, cb][:, None] - p.jitter_ms * np.log1p(-hop_u)
        return verified, arrival, hops

    def _verdict(
        self,
        verified: NDArray[np.bool_],
        arrival: NDArray[np.float64],
        hops: NDArray[np.float64],
        cross: NDArray[np.bool_],
        valid: NDArray[np.bool_],
    ) -> tuple[NDArray[np.bool_], NDArray[np.int8], NDArray[np.float64]]:
        """Eqs. 15-16 and conditions (1)-(3): commit flags, reasons and latencies (ms)."""
        p, k, tk = self.p, self.p.vns_size, self.p.vns_threshold
        counts = np.stack((verified[:, :k].sum(axis=1), verified[:, k:].sum(axis=1)), axis=1)
        involved = np.stack((np.ones_like(cross), cross), axis=1)
        size, thr = np.full(2, k), np.full(2, tk)
        vns_ok = ts.crosschain_accepts(counts, size, thr, involved, tk * (1 + cross))
        phase2 = np.sort(arrival[:, :k], axis=1)[:, tk - 1]
        phase3 = np.where(cross, np.sort(arrival[:, k:], axis=1)[:, tk - 1] + hops[:, 0], 0.0)
        concluded = phase2 + phase3  # t_current at phase 4, ms after the request
        in_time = concluded <= p.deadline_ms - p.deploy_ms  # condition (1)
        committed = valid & vns_ok & in_time
        reason = np.where(vns_ok, np.where(in_time, COMMITTED, DEADLINE_MISSED), VNS_REJECTED)
        reason = np.where(valid, reason, COMMITTED).astype(np.int8)
        after = p.deploy_ms + np.where(cross, hops[:, 1] + hops[:, 2], 0.0)  # phases 5-6
        latency = np.where(committed, concluded + after, p.deadline_ms)
        return committed, reason, latency

    def _update_credibility(
        self, online: NDArray[np.bool_], asked: NDArray[np.bool_]
    ) -> dict[str, float]:
        """Move the VNS members' credibility, re-select the VNS, report the changes."""
        members = self.vns.ravel()
        good = online[members] & ~(self.malicious[members] & asked[members])
        self.credibility[members] += CREDIBILITY_RATE * (good - self.credibility[members])
        before = self.vns
        self.vns = self.select_vns()
        was = np.zeros(self.chain_of_node.size, dtype=bool)
        was[before] = True
        changes = np.count_nonzero(~was[self.vns])
        return {
            "vns_changes": float(changes),
            "vns_malicious": float(np.count_nonzero(self.malicious[before])),
        }
