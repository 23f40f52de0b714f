"""The batched chain's random draws: per-episode constants, per-period buffers and gathers.

``_episode_draws`` makes, per copy, the draws of ``Chain.__init__`` (positions, SBET's child
stream and storage spaces, the adversary's permutations); ``_geometry`` turns the positions
into the network model's constants. The per-period network uniforms (one ``rng.random(D)``
per period, :mod:`mgenv.chain.network`) are drawn ahead in blocks of whole periods
(:class:`_Draws`), SBET's interruption uniforms from the private child streams into
:class:`_ChildBuffer`. :class:`_Round` is one period's draw of every copy: online nodes, and
links and delays gathered by flat index only for the messages a step needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np

from mgenv.batched import pcg64
from mgenv.batched.chain_types import F64, I64, Bool
from mgenv.chain.network import child_stream
from mgenv.chain.params import ChainParams
from mgenv.streams import PresetSeedSequence

_DRAWN = np.empty((0, 4), dtype=np.uint64)  # _Draws.start of a block that is drawn
# Seed sequences whose spawn(1)[0] is the child Generator.spawn would seed a PCG64 with.
_SPAWNABLE = (np.random.SeedSequence, PresetSeedSequence)

if TYPE_CHECKING:
    from mgenv.batched.chain import BatchedChain


class _Geometry(NamedTuple):
    """Per-copy constants of the network model, copies last (``NetworkModel``).

    Attributes:
        base_ms: Shape (n, n, B), [sender, receiver]: delay without jitter (ms), DDoS applied.
        slow: Shape (n, n, B) delay multiplier, or None if no link is slowed.
        wait_ms: Shape (n, n, B): eq. (6) waiting time [sender, receiver] (ms).
        down: Shape (n, B), bool: taken offline by a DDoS, or None.
        busy: Shape (n, B), bool: kept busy by a slowing DDoS.
    """

    base_ms: F64
    slow: F64 | None
    wait_ms: F64
    down: Bool | None
    busy: Bool


def _geometry(params: ChainParams, positions_km: F64) -> _Geometry:
    """The network model's constants from the node positions, shape (B, n, 2) (km).

    The arithmetic is ``NetworkModel.__init__``'s, per copy (B first), then copies go last.
    """
    n = params.n_nodes
    diff = positions_km[:, :, None, :] - positions_km[:, None, :, :]
    distance = np.sqrt((diff**2).sum(axis=-1))  # (B, n, n)
    base = params.base_delay_ms + params.delay_per_km_ms * distance
    central = np.argsort(distance.sum(axis=2), axis=1, kind="stable")[:, : params.ddos_nodes]
    attacked = np.zeros((positions_km.shape[0], n), dtype=bool)
    np.put_along_axis(attacked, central, True, axis=1)
    slowing = params.ddos_mode == "slow" and params.ddos_nodes > 0
    slow = None
    if slowing:
        slow = np.where(attacked[:, :, None] | attacked[:, None, :], params.ddos_slowdown, 1.0)
        base = base * slow
    d_max = math.sqrt(2.0) * params.area_km
    if d_max == 0.0:
        wait = np.full(distance.shape, params.t_max_ms)
    else:
        wait = (1.0 - distance / d_max) * params.t_max_ms
    last = (1, 2, 0)
    offline = params.ddos_mode == "offline" and params.ddos_nodes > 0
    return _Geometry(
        np.ascontiguousarray(base.transpose(last)),
        None if slow is None else np.ascontiguousarray(slow.transpose(last)),
        np.ascontiguousarray(wait.transpose(last)),
        np.ascontiguousarray(attacked.T) if offline else None,
        np.ascontiguousarray(attacked.T) if slowing else np.zeros((n, attacked.shape[0]), bool),
    )


class _Draws:
    """Per-copy uniforms drawn ahead in blocks of whole periods (one generator call each).

    The buffers are allocated once, not per block or episode: a fresh large array costs a
    page fault per 4 KiB page on first touch, more than drawing the numbers.

    A block may instead be *virtual* (the compiled path, PCG64 streams): the generators'
    states at its start are kept in ``start`` and each is advanced past the block's draws
    (``PCG64.advance``: the state it would have after drawing them), and the kernels compute
    the uniforms they read from ``start`` (:mod:`mgenv.batched.pcg64`); the numpy path
    draws the block from ``start`` if it needs it (:meth:`next`).

    Attributes:
        block: Shape (B, K, D): K periods' draws of every copy (if not virtual).
        flat: The current period's draws (B, D), flattened.
        by_draw: The current period's draws (D, B), if asked for (``transposed``): every
            message's uniforms of all copies are then a contiguous slice.
        start: Shape (B, 4) uint64: the copies' PCG64 states at the start of a virtual
            block (:func:`~mgenv.batched.pcg64.states`); shape (0, 4) if the block is drawn.
    """

    def __init__(self, n_copies: int, size: int, n_periods: int, transposed: bool) -> None:
        self.rngs: list[np.random.Generator] = []
        self.block = np.empty((n_copies, n_periods, size))
        self.period = np.empty((n_copies, size))
        self.flat = self.period.reshape(-1)
        self.by_draw = np.empty((size, n_copies) if transposed else (0, 0))
        self.k = 0
        self.n_block = 0
        self.start = _DRAWN
        self._next_start: pcg64.U64 | None = None
        self._by_period: pcg64.U64 | None = None

    def restart(
        self,
        rngs: Sequence[np.random.Generator],
        states: pcg64.U64 | None = None,
        by_period: pcg64.U64 | None = None,
    ) -> None:
        """Draw from these generators from now on (a new episode).

        Or, with ``states`` (B, 4) (and no generators), from PCG64 streams that are never
        built: every block is virtual and starts at ``states``, moved on a block at a time
        by ``by_period`` (:func:`~mgenv.batched.pcg64.jump_table` by periods of D).
        """
        self.rngs = list(rngs)
        self.k = self.n_block = 0
        self.start = _DRAWN
        self._next_start = states
        self._by_period = by_period

    def advance(self, periods_left: int, virtual: bool = False) -> int:
        """Move to the next period (starting a block first if needed); its index in the block.

        The compiled path reads ``block[:, k]`` in place, or computes a virtual block's
        draws; :meth:`next` copies the period out.

        Args:
            periods_left: Periods until the end of the episode (a block never crosses it).
            virtual: Start a virtual block if the generators allow (PCG64 streams).
        """
        if self.k == self.n_block:
            self.n_block = min(self.block.shape[1], periods_left)
            if self._next_start is not None and self._by_period is not None:
                self.start = self._next_start.copy()  # generator-free streams
                pcg64.advance_into(self._next_start, self._by_period, self.n_block)
            else:
                self._start_block(virtual)
            self.k = 0
        self.k += 1
        return self.k - 1

    def _start_block(self, virtual: bool) -> None:
        """Draw the block from the generators, or make it virtual.

        Virtual if ``virtual`` and they are PCG64s: their states are kept and they are
        moved past the block's draws.
        """
        start = pcg64.states(self.rngs) if virtual else None
        if start is None:
            for rng, out in zip(self.rngs, self.block[:, : self.n_block], strict=True):
                rng.random(out=out)  # = n_block calls of rng.random(size)
            self.start = _DRAWN
        else:
            skip = self.n_block * self.block.shape[2]
            for rng in self.rngs:  # all PCG64s (pcg64.states checked)
                cast(np.random.PCG64, rng.bit_generator).advance(skip)
            self.start = start

    def next(self, periods_left: int) -> None:
        """Copy the next period's draws to ``period`` (:meth:`advance`, then the copy).

        Args:
            periods_left: Periods until the end of the episode (a block never crosses it).
        """
        k = self.advance(periods_left)
        if self.start.shape[0]:
            self._draw_virtual()
        np.copyto(self.period, self.block[:, k])  # contiguous: the gathers hit the cache
        if self.by_draw.size:
            np.copyto(self.by_draw, self.period.T)  # transposed in the cache: cheaper

    def _draw_virtual(self) -> None:
        """Draw the virtual block into ``block``: what its generators drew from ``start``."""
        bits = np.random.PCG64()
        rng = np.random.Generator(bits)
        for (s_hi, s_lo, i_hi, i_lo), out in zip(
            self.start.tolist(), self.block[:, : self.n_block], strict=True
        ):
            state = {"state": (s_hi << 64) | s_lo, "inc": (i_hi << 64) | i_lo}
            bits.state = cast(
                Any, {"bit_generator": "PCG64", "state": state, "has_uint32": 0, "uinteger": 0}
            )
            rng.random(out=out)
        self.start = _DRAWN


class _ChildBuffer:
    """SBET's interruption uniforms per copy: the child streams' draws, consumed in order."""

    def __init__(self, rngs: Sequence[np.random.Generator], chunk: int) -> None:
        self.rngs = list(rngs)
        self.chunk = chunk
        self.buf = np.empty((len(self.rngs), 0))
        self.used = np.zeros(len(self.rngs), dtype=np.int64)
        self.drawn = np.zeros(len(self.rngs), dtype=np.int64)

    def take(self, need: I64) -> tuple[F64, I64]:
        """Reserve ``need[b]`` uniforms of copy b; the buffer (B, W) and each copy's start."""
        end = self.used + need
        short = np.flatnonzero(end > self.drawn)
        if short.size:  # now and then: the short copies draw a further chunk each
            keep = int(self.used.min())
            grow = int((end - self.drawn).max()) + self.chunk
            buf = np.empty((self.buf.shape[0], self.buf.shape[1] - keep + grow))
            buf[:, : self.buf.shape[1] - keep] = self.buf[:, keep:]
            self.buf, self.used, self.drawn = buf, self.used - keep, self.drawn - keep
            end = self.used + need
            for b in short.tolist():
                lo, hi = int(self.drawn[b]), int(end[b]) + self.chunk
                self.rngs[b].random(out=self.buf[b, lo:hi])
                self.drawn[b] = hi
        start = self.used
        self.used = end
        return self.buf, start


class _Lines(NamedTuple):
    """Flat indices to gather some phases' rows (sent by node i) or columns (to node i).

    Element [0, k, j, b] is the loss uniform of message (i -> j) of phase k for a row,
    (j -> i) for a column, in the copy's period draw; [1, k, j, b] is its jitter uniform
    (one gather takes both).
    """

    u: I64  # (2, m, n, B): offsets of the loss, jitter uniforms for i = 0, row start included
    u_step: I64  # (m, 1, 1): added per unit of i


def _lines(n: int, spec: Sequence[tuple[int, bool]], row_start: I64, jitter_at: int) -> _Lines:
    nodes = np.arange(n)
    u = np.array([n + ph * n * n + nodes * (1 if row else n) for ph, row in spec])
    step = np.array([n if row else 1 for _, row in spec])[:, None, None]
    return _Lines(np.stack((u, u + jitter_at))[:, :, :, None] + row_start, step)


def _episode_draws(
    params: ChainParams,
    network_rngs: Sequence[np.random.Generator],
    adversary_rngs: Sequence[np.random.Generator] | None,
    n_mal: int,
    interruptions: bool,
) -> tuple[F64, F64, Bool, Bool, list[np.random.Generator]]:
    """What ``Chain.__init__`` draws, per copy (its generator calls, in order).

    Returns positions (B, n, 2) km, storage spaces (B, n), withholding and malicious
    nodes (B, n) and SBET's child streams if it draws from them later (interruptions).
    The generator calls of every copy, in the single chain's order; the arithmetic
    around them (``uniform``'s scaling, ``draw_withholding``'s and ``draw_malicious``'s
    selection) is done for all copies at once. A seeded PCG64 network stream's child is
    spawned as a bare bit generator (``child_stream`` builds a Generator around it), also
    when the stream comes from :func:`~mgenv.batched.streams.episode_streams` (its preset
    seed sequence spawns the child numpy's would, with the child's seed words precomputed).

    Args:
        params: Chain parameters (``n_nodes`` n, protocol, area, withholding).
        network_rngs: B network streams.
        adversary_rngs: B adversary streams, or None: no withholding and no malicious nodes
            (the permutations would select nobody), nothing drawn.
        n_mal: Malicious nodes per copy (SBET).
        interruptions: SBET draws interruptions from the child streams later.
    """
    p, n, nb = params, params.n_nodes, len(network_rngs)
    sbet = p.protocol == "sbet"
    unit = np.empty((nb, n, 2))  # positions / area_km
    child_raw = np.zeros((nb, n), dtype=np.uint64)  # SBET: the child streams' outputs
    storage_of: dict[int, F64] = {}  # copies whose child stream is not a seeded PCG64
    children: list[np.random.Generator] = []
    for b, net in enumerate(network_rngs):
        net.random(out=unit[b])  # net.uniform(0, area_km, (n, 2)) is area_km * these
        if sbet:
            bits = net.bit_generator
            if type(bits) is np.random.PCG64 and isinstance(bits.seed_seq, _SPAWNABLE):
                # child_stream; numpy's stub omits it, but PCG64 takes any ISeedSequence
                child_bits = np.random.PCG64(bits.seed_seq.spawn(1)[0])  # type: ignore[arg-type]
                child_raw[b] = child_bits.random_raw(n)
                if interruptions:
                    children.append(np.random.Generator(child_bits))
            else:
                child = child_stream(net)
                storage_of[b] = child.uniform(0.5, 1.5, n)
                children.append(child)
    # PCG64's uniform: (output >> 11) / 2^53; Generator.uniform(low, high): low + range u
    unit_u: F64 = np.multiply(child_raw >> np.uint64(11), 2.0**-53, dtype=np.float64)
    storage = 0.5 + 1.0 * unit_u
    for b, values in storage_of.items():
        storage[b] = values
    withhold, malicious = _adversary_draws(params, adversary_rngs, n_mal, nb)
    return p.area_km * unit, storage, withhold, malicious, children


def _adversary_draws(
    params: ChainParams,
    adversary_rngs: Sequence[np.random.Generator] | None,
    n_mal: int,
    nb: int,
) -> tuple[Bool, Bool]:
    """``Chain.__init__``'s adversary draws: withholding, then (SBET) malicious nodes (B, n).

    Args:
        params: Chain parameters.
        adversary_rngs: B adversary streams, or None: no withholding and no malicious nodes
            (the permutations would select nobody), nothing drawn.
        n_mal: Malicious nodes per copy (SBET).
        nb: Number of copies B.
    """
    p, n = params, params.n_nodes
    sbet = p.protocol == "sbet"
    withhold: Bool = np.zeros((nb, n), dtype=bool)  # a permutation's first n_withholding
    malicious: Bool = np.zeros((nb, n), dtype=bool)
    if adversary_rngs is None:  # nobody withholds or is malicious
        return withhold, malicious
    perms = np.empty((1 + sbet, nb, n), dtype=np.int64)  # the adversary's permutations
    for b, adv in enumerate(adversary_rngs):
        perms[0, b] = adv.permutation(n)  # draw_withholding's draw
        if sbet:
            perms[1, b] = adv.permutation(n)  # draw_malicious's draw
    np.put_along_axis(withhold, perms[0, :, : p.n_withholding], True, axis=1)
    if sbet:
        np.put_along_axis(malicious, perms[1, :, :n_mal], True, axis=1)
    return withhold, malicious


class _Round:
    """One period's network draw of every copy: online nodes, links and delays on demand.

    A link is "delivered and both ends online" (``RoundDraw.delivered`` and ``online``); a
    delay is ``NetworkModel.delays_ms`` of the message, computed only where gathered.
    """

    def __init__(self, chain: BatchedChain) -> None:
        self.c = chain
        self.flat = chain._draws.flat  # this period's draws (B, D), flattened
        self.online = chain._online(self.flat[chain._online_u])  # (n, B)
        self._both_on: Bool | None = None  # (n, n, B): both ends online, not a self-message

    def _jitter(self, u: F64) -> F64:
        """Exponential jitters (ms) from the messages' jitter uniforms ``u`` (in place)."""
        out: F64 = np.log1p(np.negative(u, out=u), out=u)  # in place: log1p(-u)
        out *= -self.c.params.jitter_ms
        return out

    def gather(self, index: I64) -> tuple[Bool, F64]:
        """Messages' loss test and jitter (ms) from offsets [loss, jitter] (2, ...), one take.

        Returns whether each message survived its loss draw (``RoundDraw.delivered``
        without the online ends) and its exponential jitter, shape ``index.shape[1:]`` each.
        """
        u = self.flat.take(index)
        delivered: Bool = u[0] >= self.c.params.message_loss
        return delivered, self._jitter(u[1])

    def _index(self, phases: tuple[int, ...]) -> I64:
        """Offsets of the loss, jitter uniforms of some phases in the draw, (2, m, n, n, B)."""
        c = self.c
        index = c._full_index.get(phases)
        if index is None:
            loss = c._full_u[list(phases)] + c._row_start
            index = c._full_index[phases] = np.stack((loss, loss + c._jitter_at))
        return index

    def both_on(self) -> Bool:
        """Shape (n, n, B), bool: both ends of a message online, and not a self-message."""
        if self._both_on is None:
            self._both_on = self.c._off_diagonal & self.online[:, None] & self.online[None]
        return self._both_on

    def full(self, phases: tuple[int, ...]) -> tuple[Bool, F64]:
        """Links and delays (ms) of every message of some phases, (m, n, n, B) each.

        Indexed [phase, sender, receiver, copy]; one gather for all the phases.
        """
        c = self.c
        link, jitter = self.gather(self._index(phases))
        link &= self.both_on()
        if c._geo.slow is not None:
            jitter *= c._geo.slow
        jitter += c._geo.base_ms  # base + jitter
        return link, jitter

    def lines(self, i: I64, spec: _Lines) -> tuple[Bool, F64]:
        """Some phases' rows or columns at node i[b] (online), (m, n, B) each: link, delay.

        The link at j == i is False (no self-messages); the peer j must be online.
        """
        c = self.c
        link, jitter = self.gather(spec.u + i * spec.u_step)
        link &= self.online
        link &= c._col != i
        # base delays are symmetric ([i, j] = [j, i]): rows and columns gather row i
        line = i * c._line_step + c._line_at  # (n, B) into the (n, n, B) link arrays
        if c._slow_flat is not None:
            jitter *= c._slow_flat.take(line)
        jitter += c._base_flat.take(line)  # base + jitter
        return link, jitter
