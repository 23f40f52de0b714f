"""A whole period of the ``default`` family in one kernel call (:meth:`MarketCore.step`).

A step of the single env runs six kernels (the market's clearing, the SBET chain's period,
the settlement, the next period's dispatch, the microgrids' observations and the info
table), each wrapped in Python that builds its inputs and unpacks its outputs. For the
configurations where every one of them applies, :func:`fused_period` calls the same six
compiled functions in sequence inside one call, on the same inputs, so the numbers are
theirs bit for bit; what goes is the Python between them and five kernel entries.

When it applies (:meth:`mgenv.core.MarketCore.step` asks :meth:`FusedPeriod.step`, which
declines with None before anything changes): the kernels on (``_jit.ENABLED``), the
uniform-price market, the electric model with rule dispatch, a mechanism without settlement
hooks or fuel bills (``MarketCore._fusable``) and a chain whose period the SBET fast path
covers (:class:`mgenv.chain.fast_sbet.FastSBET`: modelled signatures, no tamper hook, no
ledger file). ``MarketCore.fuse = False`` switches it off (the benchmarks' per-stage clocks
need the stages run one by one).

The period's random draw is the chain's: made in the call from a view of the network
stream's PCG64 state (:meth:`FastSBET.draw_or_view`, :func:`mgenv.batched.pcg64.fill_live`:
numpy's doubles, the generator stepped alike), or where that view is not available, by
:meth:`FastSBET.draw` before the call, as the chain stage makes it; the market and the
settlement draw nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from mgenv import _jit
from mgenv.batched.pcg64 import fill_live
from mgenv.chain.kernels_sbet_chain import OK, Figures, sbet_chain_period
from mgenv.market.settle_kernels import info_rows_into
from mgenv.market.uniform import UniformPrice
from mgenv.market.uniform_kernel import clear_uniform
from mgenv.observe import BOUNDS, mg_obs_into
from mgenv.period_kernel import BOOK, N_ROWS, REALISED, SETTLEMENT, settle_period_into
from mgenv.physics.kernels import plan_into

if TYPE_CHECKING:
    from mgenv.chain.fast_sbet import FastSBET
    from mgenv.core import DeferredResult, MarketCore, PeriodResult

_I64_MAX = 2**63 - 1
_NO_SETPOINTS = np.zeros(0)


#: The columns of :func:`fused_period`'s ``episode`` argument, per period, in order: the
#: users' load forecasts (n_user), the microgrids' PV, wind and load forecasts (n_mg each),
#: every participant's energy to buy and forecast error (P each), kWh.
EPISODE_COLUMNS = (
    "user_load_forecast", "pv_forecast", "wind_forecast", "load_forecast", "need", "error",
)  # fmt: skip


class EpisodeBlocks(NamedTuple):
    """One episode's outputs of :func:`fused_period`, one slice per period (``[t]``).

    Made at every reset (:meth:`FusedPeriod.episode`) instead of fresh arrays every step: a
    period writes its own slices once and its result keeps them (a result held after the
    episode keeps its episode's blocks alive). The observations stay fresh arrays: the env
    hands them to the caller, who may keep any number of them.
    """

    rows: np.ndarray  # (H, N_ROWS, P) the settlement's rows
    floats: np.ndarray  # (H, 4, W) the clearing's float outputs (UniformPrice.outputs)
    ints: np.ndarray  # (H, 3, W') its integer outputs
    nodes: np.ndarray  # (H, 3, n) bool: the chain's online state, online nodes, holders
    committed: np.ndarray  # (H, T_max) bool: the chain's verdicts
    reason: np.ndarray  # (H, T_max) int8: their reason codes
    plan: np.ndarray  # (H, 6, n_mg): the next period's dispatch rows


@_jit.inlined
def _mg_forecasts(row: np.ndarray, nu: int, nm: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The microgrids' PV, wind and load forecasts in a period's ``episode`` row.

    kWh, ``(n_mg,)`` each (:data:`EPISODE_COLUMNS`: after the users' ``nu`` load forecasts).
    """
    return row[nu : nu + nm], row[nu + nm : nu + 2 * nm], row[nu + 2 * nm : nu + 3 * nm]


@_jit.kernel
def fused_period(
    mg: np.ndarray,
    agg: np.ndarray,
    user: np.ndarray,
    market: np.ndarray,
    buyers: np.ndarray,
    work_f: np.ndarray,
    work_i: np.ndarray,
    floats: np.ndarray,
    ints: np.ndarray,
    chain_ints: np.ndarray,
    words: np.ndarray,
    fbuf: np.ndarray,
    ibuf: np.ndarray,
    u8buf: np.ndarray,
    prev_state: np.ndarray,
    height: np.ndarray,
    head: np.ndarray,
    forked: np.ndarray,
    rows: np.ndarray,
    committed: np.ndarray,
    reason: np.ndarray,
    plan: np.ndarray,
    episode: np.ndarray,
    soc: np.ndarray,
    commit: np.ndarray,
    kpi: np.ndarray,
    out: np.ndarray,
    econ: np.ndarray,
    mg_consts: np.ndarray,
    plan_next: np.ndarray,
    bounds: np.ndarray,
    obs: np.ndarray,
    table: np.ndarray,
    counts: np.ndarray,
) -> tuple[Figures, float, bool, int, float, int]:
    """Market, chain, settlement, next dispatch, observations and info table of period ``t``.

    The calls and arguments of the stages as :class:`~mgenv.market.uniform.UniformPrice`,
    :meth:`FastSBET.process <mgenv.chain.fast_sbet.FastSBET.process>`,
    ``MarketCore._settle_fused``, ``ElectricModel.plan``, ``MarketCore._mg_obs`` and
    ``MarketCore.agent_infos`` make them (their docstrings give units and equations).

    The constants and per-episode inputs come packed in a few arrays (:class:`FusedPeriod`
    packs them): each array argument costs ~85 ns to unbox at the call (numba makes a
    memory-info record for each), which for the ~50 separate ones it had was ~4.5 us of a
    ~65 us step. Views of them are made in here, for free.

    Args:
        mg: The microgrids' actions ``(n_mg, 2S + 3)``, float64 in [-1, 1] (clipped).
        agg: The aggregators' ``(n_agg, 2)``.
        user: The large users' ``(n_user, 2)``.
        market: float64 ``(12,)``: ``(grid_buy, feed_in, price_floor, price_cap,
            delta_min, delta_max, ema)``, the period's grid prices (yuan/kWh), the market's
            bounds and the commit ratio's EMA weight; then ``(hour sin, hour cos, grid_buy,
            feed_in, last price before)`` of the period the observations describe (the next,
            or the last one at the end).
        buyers: int64 ``(2, n_mg + n_user)``: each buyer's aggregator (0-based) and global
            index.
        work_f: The clearing's float64 scratch (``uniform_kernel.work_sizes``).
        work_i: Its int64 scratch.
        floats: The clearing's float output ``(4, W)`` (``clear_uniform``).
        ints: Its int64 output ``(3, W')``; ``W' - n_mg + 1`` bounds the trades ``T``.
        chain_ints: int64 ``(9,)``: ``(period t, serial, top, kept, first)`` of
            ``sbet_chain_period``, the size D of the period's network draw, the next period
            (-1 at the episode's end: no dispatch planned then) and the offer segments per
            microgrid S.
        words: The network stream's PCG64 state (``FastSBET.draw_or_view``), uint64 (4,),
            stepped on as the draw is made here into ``fbuf[:D]``; or empty: drawn already.
        fbuf: :class:`FastSBET`'s float64 buffer, the period's draw in it (or made here).
        ibuf: Its int64 constants.
        u8buf: Its uint8 buffer (nodes, ring of hashes, header, records).
        prev_state: The online chain's state before, bool ``(n_nodes,)``.
        height: ``NodeHeads.height``, updated in place.
        head: ``NodeHeads.head``, likewise.
        forked: ``NodeHeads.forked``, likewise.
        rows: Output, bool ``(3, n_nodes)``: state, online nodes, block holders.
        committed: Output, bool ``(T_max,)``: the verdicts (the first ``T`` written).
        reason: Output, int8 ``(T_max,)``: the reason codes (likewise).
        plan: The period's dispatch, kWh, ``(6, n_mg)``, rows ``physics.kernels.PLAN_ROWS``.
        episode: float64 ``(H, n_user + 3 n_mg + 2 P)``, kWh, per period: the users' load
            forecasts, the PV, wind and load forecasts, every participant's energy to buy
            and forecast error (:data:`EPISODE_COLUMNS`).
        soc: The state of charge before the period, ``(n_mg,)``.
        commit: The commit ratio's EMA before the period, ``(P,)``.
        kpi: The four KPI accumulators ``(4, P)``, updated in place.
        out: Output, ``(N_ROWS, P)``: ``settle_period_into``'s rows.
        econ: The turbines' economic output at the next period's grid price, kWh,
            ``(n_mg,)`` (read only if there is a next period).
        mg_consts: float64 ``(14, n_mg)``: ``ElectricModel._realise_fleet`` (rows 0-4), its
            ``_plan_fleet`` (5-9), ``gen_kw * dt_h`` and ``battery_kw * dt_h`` (kWh, 10 and
            11), the microgrids' energy scales (kWh, 12) and marginal cost at full output
            (yuan/kWh, 13).
        plan_next: Output, ``(6, n_mg)``: the next period's dispatch (if there is one).
        bounds: float32 ``(2, 16)``: ``observe.BOUNDS["mg"]``.
        obs: Output, float32 ``(n_mg, 16)``: the microgrids' observations after the step.
        table: Output, ``(P, 6)``: ``info_rows_into``'s rows.
        counts: Output, int64: its rejection counts.

    Returns:
        ``(chain figures, price, cleared, T, grid_cash, rejected)``. If the chain's code is
        not OK nothing after the chain ran (the caller's ``FastSBET.finish`` raises).
    """
    nm, nu, n_all = mg.shape[0], user.shape[0], out.shape[1]  # n_all: P
    t, next_t, s = chain_ints[0], chain_ints[6], chain_ints[7]
    grid_buy, feed_in, ema = market[0], market[1], market[6]
    shared = market[7:]
    buyer_agg, buyer_global = buyers[0], buyers[1]
    realise_fleet, plan_fleet = mg_consts[0:5], mg_consts[5:10]
    gen_cap, power, scale, mc_max = mg_consts[10], mg_consts[11], mg_consts[12], mg_consts[13]
    # the episode's inputs of a period: one row, its parts in EPISODE_COLUMNS' order (a
    # row's slices are contiguous, as the separate arrays' rows were)
    at_need = nu + 3 * nm
    now = episode[t]
    offerable = plan[3] + plan[4]  # surplus + gen_headroom, as MarketInputs
    price, cleared, n = clear_uniform(
        (mg, agg, user),
        (offerable, plan[5], now[:nu]),
        (buyer_agg, buyer_global),
        grid_buy,
        (market[2], market[3], market[4], market[5]),
        s,
        (work_f, work_i),
        floats,
        ints,
    )
    if words.size:  # FastSBET.draw's draw (the market draws nothing: the order is free)
        fill_live(words, fbuf[: chain_ints[5]])
    seller, buyer, agg_i = ints[0, :n], ints[1, :n], ints[2, :n]
    kwh, trade_price, delta = floats[0, :n], floats[1, :n], floats[2, :n]
    ok, reason_n = committed[:n], reason[:n]
    figures = sbet_chain_period(
        chain_ints[0], chain_ints[1], chain_ints[2], chain_ints[3], chain_ints[4] != 0,
        seller, buyer, kwh, trade_price, fbuf, ibuf, u8buf, prev_state, height, head, forked,
        rows, ok, reason_n,
    )  # fmt: skip
    if figures[0] != OK:
        return figures, price, cleared, n, 0.0, 0
    grid_cash = settle_period_into(
        (seller, buyer, agg_i, kwh, trade_price, delta),
        ok,
        (plan[3], plan[5], plan[2], plan[0], plan[1]),
        (now[at_need : at_need + n_all], now[at_need + n_all :]),
        (grid_buy, feed_in),
        (soc, realise_fleet),
        (floats[3, :nm], buyer_global, commit),
        (kpi[0], kpi[1], kpi[2], kpi[3]),
        ema,
        out,
    )
    soc_after = out[REALISED + 3, :nm]
    obs_t, obs_plan = t, plan
    if next_t >= 0:
        nxt = episode[next_t]
        pv, wind, load = _mg_forecasts(nxt, nu, nm)
        plan_into(
            pv, wind, load, soc_after, econ, gen_cap, power, plan_fleet, _NO_SETPOINTS, False,
            plan_next,
        )  # fmt: skip
        obs_t, obs_plan = next_t, plan_next
    seen = episode[obs_t]  # the forecasts the observations show
    # the state the observations read: MarketCore._take_book's
    last_price = price if cleared else shared[4]
    new_commit = out[BOOK + 3] if n > 0 else commit
    mg_obs_into(
        (shared[0], shared[1], shared[2], shared[3], last_price, figures[8]),  # 8: online share
        scale,
        _mg_forecasts(seen, nu, nm),
        (obs_plan[3], obs_plan[4], obs_plan[5]),
        (soc_after, mc_max, out[BOOK, :nm], new_commit),
        (bounds[0], bounds[1]),
        np.empty(16),
        obs,
    )
    st = out[SETTLEMENT : SETTLEMENT + 9]
    rejected = info_rows_into(
        out[N_ROWS - 5], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8], ok, reason_n,
        table, counts,
    )  # fmt: skip
    return figures, price, cleared, n, grid_cash, rejected


class FusedPeriod:
    """The fused step's constants and buffers for one :class:`MarketCore`."""

    def __init__(self, core: MarketCore, ema: float) -> None:
        cfg = core.cfg
        mech, physics = core.mechanism, core._electric
        assert isinstance(mech, UniformPrice) and physics is not None
        self.core = core
        self._mech, self._physics = mech, physics
        self._sizes = (cfg.n_microgrids, cfg.n_aggregators, core.buyer_agg.shape[0])
        nm, _, nb = self._sizes
        self.t_max = nm + nb - 1  # the most trades a period can match
        p = mech.params
        # fused_period's packed arguments (its docstring): the market's figures, then the
        # five the observations share (written every period)
        self._market = np.zeros(12)
        self._market[2:7] = (p.price_floor, p.price_cap, p.delta_min, p.delta_max, ema)
        self._buyers = np.stack((core.buyer_agg, core.buyer_global)).astype(np.int64, copy=False)
        self._scratch = mech.scratch_for(*self._sizes)
        self._chain_ints = np.zeros(9, np.int64)
        self._chain_ints[7] = p.n_segments
        # the fleet's constants, fixed for the env's life (the physics model and the core
        # make them once, at construction, and only read them)
        self._mg_consts = np.vstack((*physics.fleet_rows(), core.mg_scale, core.mc_max))
        self._bounds = np.stack(BOUNDS["mg"])
        self.blocks: EpisodeBlocks | None = None
        self._episode = np.zeros((0, 0))  # EPISODE_COLUMNS per period, made at reset

    def episode(self, n_nodes: int) -> None:
        """Make the episode's :class:`EpisodeBlocks` (at every reset), for ``n_nodes`` nodes.

        And the episode's inputs per period, :data:`EPISODE_COLUMNS` side by side (after
        the core made its ``_need`` and ``_error``): an episode's profiles are fixed.
        """
        core = self.core
        p = core.profiles
        self._episode = np.concatenate(
            (
                p.user_load_forecast, p.pv_forecast, p.wind_forecast, p.load_forecast,
                core._need, core._error,
            ),
            axis=1,
        )  # fmt: skip
        h, n, nm = core.cfg.horizon, core.cfg.n_participants, core.cfg.n_microgrids
        floats, ints = self._mech.outputs(*self._sizes)  # their shapes
        self.blocks = EpisodeBlocks(
            np.empty((h, N_ROWS, n)),
            np.empty((h, *floats.shape)),
            np.empty((h, *ints.shape), np.int64),
            np.empty((h, 3, n_nodes), dtype=bool),
            np.empty((h, self.t_max), dtype=bool),
            np.empty((h, self.t_max), dtype=np.int8),
            np.empty((h, 6, nm)),
        )

    def step(self, actions: dict[str, np.ndarray]) -> PeriodResult | DeferredResult | None:
        """:meth:`MarketCore.step` in one kernel call, or None (nothing changed) if not covered."""
        core = self.core
        chain = core.chain
        fast: FastSBET | None = chain._fast
        serial = chain.next_serial
        physics = self._physics
        # None: the numpy path planned the period (core._dispatch None: the last fused step's)
        plan = physics.plan_rows(core._dispatch)
        ci = self._chain_ints
        if fast is None or plan is None or serial + self.t_max > _I64_MAX:
            return None
        # writes ci[2:6] (top, kept, first, draw size); None: not covered, nothing changed
        begun = fast.begin(chain, self.t_max, ci)
        if begun is None:
            return None
        words, fbuf, ibuf, u8buf, state, height, head, forked = begun
        cfg, t = core.cfg, core.t
        market = self._market
        next_t = t + 1 if t + 1 < cfg.horizon else -1
        obs_t = t if next_t < 0 else next_t  # the period the observations describe
        grid_next, feed_next = core._prices[obs_t]
        market[0], market[1] = core.grid_buy, core.feed_in
        market[7], market[8] = core._hour_angles[obs_t]
        market[9], market[10], market[11] = grid_next, feed_next, core.last_price
        ci[0], ci[1], ci[6] = t, serial, next_t
        blocks = self.blocks
        assert blocks is not None and blocks.nodes.shape[2] == state.size  # made at reset
        # this period's slices (written once, kept by its result)
        out, floats, ints, rows = blocks.rows[t], blocks.floats[t], blocks.ints[t], blocks.nodes[t]
        committed, reason, plan_next = blocks.committed[t], blocks.reason[t], blocks.plan[t]
        obs = np.empty((cfg.n_microgrids, 16), np.float32)  # fresh: the caller may keep it
        t0 = time.perf_counter()
        figures, price, cleared, n, grid_cash, rejected = fused_period(
            actions["mg"], actions["agg"], actions["user"], market, self._buyers,
            self._scratch[0], self._scratch[1], floats, ints, ci, words, fbuf, ibuf, u8buf,
            state, height, head, forked, rows, committed, reason, plan, self._episode,
            physics.soc, core.commit, core._kpi_rows, out, physics.economic(grid_next),
            self._mg_consts, plan_next, self._bounds, obs, core._info_table,
            core._reject_counts,
        )  # fmt: skip
        core.stage_time["fused"] += time.perf_counter() - t0
        res = fast.finish(chain, t, serial, n, figures, rows, committed[:n], reason[:n])
        return core._after_fused(
            (ints, floats, n, price, cleared), res, out, grid_cash, plan_next, obs, rejected
        )


def fusable(core: MarketCore) -> bool:
    """Whether :class:`FusedPeriod` serves ``core``'s configuration (the chain checked later)."""
    # _fusable: the electric model and a mechanism without settlement hooks or fuel bills
    return (
        _jit.AVAILABLE
        and core._fusable
        and type(core.mechanism) is UniformPrice
        and not core.setpoints
    )
