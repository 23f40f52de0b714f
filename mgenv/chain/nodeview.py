"""Each validator node's own view of the chain: its height and head hash, shape (n,) arrays.

The chain keeps one ledger (the blocks that committed); this module tracks which of those
blocks every validator node actually holds, so that "all honest nodes end with the same head
hash" can be checked. A model, updated once per period from what the protocol knows about the
round (:class:`NodeRound`), vectorised over nodes.

**State.** ``height[i]``: number of blocks node i holds (its head is its block at height
``height[i] - 1``); ``head[i]``: that block's 32-byte hash (32 zero bytes before the first
block); ``forked[i]``: node i's head is not on the committed chain.

**Per period** (:meth:`NodeHeads.update`), in this order:

1. **Delivery.** If a block committed, the nodes the protocol names as holding it (PBFT and
   SPFT: the nodes that committed locally; SBET: the creator and the nodes that got the
   candidate and voted for every verified transaction; PoS: the forger and the nodes the block
   reached) take it as their head; a node that lacked earlier blocks fetches them as in 2.
   A malicious node on a fork abandons it when it takes a committed block. If instead the
   malicious nodes agreed on an altered block among themselves (beyond the protocol's bound:
   its transactions are ``"tampered"``), the colluders that hold it move to a divergent head,
   ``SHA-256(b"altered" || previous head || period)`` (the altered block's bytes are not
   materialised; this stands for its hash) and are ``forked``. Honest nodes never take an
   altered block: they check both parties' signatures on every record they store, which an
   altered record fails whatever the quorum behind it.
2. **Catch-up rule.** A node that is online this period, not forked and behind the committed
   head fetches the missing blocks from a peer that is online and holds the head. Malicious
   nodes serve nothing (worst case), so an honest server must exist. The node accepts the
   fetched blocks only if the first one's ``prev_hash`` equals its own head (the hash link;
   the rest link among themselves, which :meth:`mgenv.chain.Ledger.verify` checks); if its
   height is older than the ledger's window it takes a state transfer (the committed head,
   trusted as a checkpoint). A failed link leaves the node where it is and is counted.
   Fetches are not subject to message loss (they are retried within the period).
3. **Figures** (added to ``ConsensusResult.extra``, so ``chain_<name>`` in the env's infos):
   ``honest_heads_agree`` (1.0 iff every honest node's stored head hash equals the committed
   chain's hash at its height: honest nodes differ at most by lag, no two hold conflicting
   heads), ``lagging_nodes`` (honest nodes behind the committed head after catch-up) and
   ``forked_nodes`` (nodes, malicious ones in this model, whose head is off the chain).

Protocols without a node model (ideal, cross-chain) report no round: every node then holds
every committed block and no figures are added. No randomness is drawn: the trajectory
(verdicts, blocks, random streams) is the same with or without this view.

Compiled path: with numba (:data:`mgenv._jit.ENABLED`), :meth:`NodeHeads.update` runs steps
1-3 in one or two kernels (:mod:`mgenv.chain.kernels_nodeview`), except for a period with an
altered block; same state and figures as the numpy code, which stays the reference.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit
from mgenv.chain import kernels_nodeview
from mgenv.chain.ledger import GENESIS_PREV_HASH
from mgenv.chain.network import constant

if TYPE_CHECKING:
    from mgenv.chain.ledger import Block, Ledger


class NodeRound(NamedTuple):
    """What a protocol knows about its nodes after one period's round.

    Attributes:
        online: Shape (n,), bool: node is online this period.
        holders: Shape (n,), bool: node holds the period's decided block (committed or
            altered); None if no block was decided.
        altered: The decided block is the malicious nodes' altered one.
    """

    online: NDArray[np.bool_]
    holders: NDArray[np.bool_] | None
    altered: bool


#: The figures when every node holds the committed head (see ``NodeHeads._at_head``).
_SYNCED: dict[str, float] = {"honest_heads_agree": 1.0, "lagging_nodes": 0.0, "forked_nodes": 0.0}


def _row(digest: bytes) -> NDArray[np.uint8]:
    return np.frombuffer(digest, dtype=np.uint8)


class NodeHeads:
    """Every validator node's height and head hash (see the module docstring).

    Args:
        malicious: Shape (n,), bool: the protocol's malicious nodes (the others are honest).
    """

    def __init__(self, malicious: NDArray[np.bool_]) -> None:
        n = malicious.size
        # read-only and shared when nobody is malicious (no fresh row at every reset)
        self.honest: NDArray[np.bool_] = (
            ~malicious if np.count_nonzero(malicious) else constant(n, True)
        )
        self.height = np.zeros(n, dtype=np.int64)
        self.head = np.zeros((n, 32), dtype=np.uint8)
        self.forked = np.zeros(n, dtype=bool)
        self.link_failures = 0

    def heads(self) -> list[bytes]:
        """Each node's head hash (32 bytes; zeros before its first block)."""
        return [row.tobytes() for row in self.head]

    def update(
        self, period: int, ledger: Ledger, block: Block | None, rnd: NodeRound | None
    ) -> dict[str, float]:
        """Apply one period (delivery, catch-up) and return the figures (empty without a round).

        Args:
            period: Market period.
            ledger: The chain's ledger, after this period's append.
            block: The block appended this period, or None.
            rnd: The protocol's report of the round, or None (every node holds every block).
        """
        if _jit.ENABLED and not (rnd is not None and rnd.altered):
            return self._update_compiled(ledger, block, rnd)
        top = ledger.next_height
        if rnd is None:
            if block is not None:
                self.height[:] = top
                self.head[:] = _row(block.hash)
                self.forked[:] = False
            return {}
        if rnd.holders is not None:
            if block is not None and not rnd.altered:
                if rnd.holders.all():  # usually: every node takes the block, so none is
                    # behind or forked, and steps 2 and 3 have nothing to do.
                    self.height.fill(top)
                    self.head[:] = _row(block.hash)
                    self.forked.fill(False)
                    return dict(_SYNCED)
                self.height[rnd.holders] = top
                self.head[rnd.holders] = _row(block.hash)
                self.forked[rnd.holders] = False
            elif block is None and rnd.altered:
                fork = hashlib.sha256(
                    b"altered" + ledger.head_hash + period.to_bytes(8, "little", signed=True)
                ).digest()
                self.height[rnd.holders] = top + 1
                self.head[rnd.holders] = _row(fork)
                self.forked[rnd.holders] = True
        if self._at_head(ledger):  # nobody is behind: no catch-up, the common figures
            return dict(_SYNCED)
        self.catch_up(rnd.online, ledger)
        return self.figures(ledger)

    def _update_compiled(
        self, ledger: Ledger, block: Block | None, rnd: NodeRound | None
    ) -> dict[str, float]:
        """:meth:`update` (no altered block) with :mod:`mgenv.chain.kernels_nodeview`.

        Same state changes (``height``, ``head``, ``forked``, ``link_failures``) and figures.
        """
        top = ledger.next_height
        head_hash = ledger.head_hash
        if rnd is None:  # every node holds every block
            if block is not None:
                kernels_nodeview.deliver_all(self.height, self.head, self.forked, top, block.hash)
            return {}
        holders = rnd.holders
        if kernels_nodeview.deliver(
            self.height,
            self.head,
            self.forked,
            self.honest if holders is None else holders,
            block is not None and holders is not None,
            top,
            head_hash if block is None else block.hash,
            head_hash,
        ):
            return dict(_SYNCED)
        # The committed chain's hashes at the nodes' distinct heights, as _hashes_at looks
        # them up, 32 bytes per height (zeros where unknown) and a known flag per height.
        first = top - len(ledger)
        prev_rows, prev_known, chain_rows, chain_known = [], [], [], []
        for h in sorted(set(self.height.tolist())):
            known = first <= h < top
            prev_rows.append(ledger[h - first].prev_hash if known else GENESIS_PREV_HASH)
            prev_known.append(known)
            known = first <= h - 1 < top
            chain_rows.append(ledger[h - 1 - first].hash if known else GENESIS_PREV_HASH)
            chain_known.append(known or h == 0)  # height 0: the genesis zeros
        agree, lagging, off_chain, failures = kernels_nodeview.catch_up_figures(
            self.height,
            self.head,
            self.forked,
            self.honest,
            rnd.online,
            top,
            head_hash,
            b"".join(prev_rows),
            bytes(prev_known),
            b"".join(chain_rows),
            bytes(chain_known),
        )
        self.link_failures += failures
        return {
            "honest_heads_agree": float(agree),
            "lagging_nodes": float(lagging),
            "forked_nodes": float(off_chain),
        }

    def catch_up(self, online: NDArray[np.bool_], ledger: Ledger) -> None:
        """Step 2 of the module docstring for the nodes in ``online``.

        Args:
            online: Shape (n,), bool: nodes that try to catch up (and may serve).
            ledger: The chain's ledger.
        """
        top = ledger.next_height
        behind = online & ~self.forked & (self.height < top)
        if not behind.any():
            return
        servers = online & self.honest & ~self.forked & (self.height == top)
        if not servers.any():
            return
        expected, known = self._hashes_at(self.height, ledger, prev=True)
        links = known & (self.head == expected).all(axis=1)
        ok = behind & (links | ~known)
        self.link_failures += int(np.count_nonzero(behind & ~ok))
        self.height[ok] = top
        self.head[ok] = _row(ledger.head_hash)

    def figures(self, ledger: Ledger) -> dict[str, float]:
        """``honest_heads_agree``, ``lagging_nodes``, ``forked_nodes`` (module docstring, 3)."""
        if self._at_head(ledger):
            # The general path below gives the same figures for this state.
            return dict(_SYNCED)
        return self.figures_by_height(ledger)

    def _at_head(self, ledger: Ledger) -> bool:
        """Every node holds the committed head, in two cheap checks.

        Its stored hash is the head's, at the head's height; so none lags or is forked
        (a forked node's head is the hash of an altered block, never the committed one).
        """
        return bool(
            self.head.tobytes() == ledger.head_hash * self.height.size
            and self.height.min() == ledger.next_height
        )

    def figures_by_height(self, ledger: Ledger) -> dict[str, float]:
        """:meth:`figures` by looking up the committed hash at every node's height."""
        honest = self.honest
        expected, known = self._hashes_at(self.height, ledger, prev=False)
        on_chain = ~self.forked & (~known | (self.head == expected).all(axis=1))
        agree = bool(on_chain[honest].all())
        return {
            "honest_heads_agree": float(agree),
            "lagging_nodes": float(np.count_nonzero(honest & (self.height < ledger.next_height))),
            "forked_nodes": float(np.count_nonzero(~on_chain)),
        }

    @staticmethod
    def _hashes_at(
        heights: NDArray[np.int64], ledger: Ledger, prev: bool
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """The committed chain's head hash at each height, shape (n, 32), and whether known.

        The hash at height h (h blocks held) is block h - 1's (zeros at 0); it is known for
        h = 0 and for blocks still in the ledger's window (one lookup per distinct height, or
        per height from the lowest to the highest when they are within 4 blocks).
        With ``prev``, it is read instead from block h's ``prev_hash`` (what a node that
        fetches block h checks against its head), known while block h is in the window.
        """
        first = ledger.next_height - len(ledger)  # height of the oldest kept block
        lo, hi = int(heights.min()), int(heights.max())
        if hi - lo < 4:  # usually: nodes lag by a block or two; cheaper than np.unique
            levels, inverse = np.arange(lo, hi + 1), heights - lo
        else:
            levels, inverse = np.unique(heights, return_inverse=True)
        table = np.zeros((levels.size, 32), dtype=np.uint8)
        found = np.zeros(levels.size, dtype=bool)
        for k, h in enumerate(levels.tolist()):
            if prev:
                if first <= h < ledger.next_height:
                    table[k] = _row(ledger[h - first].prev_hash)
                    found[k] = True
            elif h == 0:
                table[k] = _row(GENESIS_PREV_HASH)
                found[k] = True
            elif first <= h - 1 < ledger.next_height:
                table[k] = _row(ledger[h - 1 - first].hash)
                found[k] = True
        return table[inverse], found[inverse]
