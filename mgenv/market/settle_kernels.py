"""Compiled settlement and bookkeeping of one market (numba kernels, :mod:`mgenv._jit`).

Each kernel does what a sequence of numpy calls does in :mod:`mgenv.market.settlement` and
:meth:`mgenv.core.MarketCore._book`, in one call and bit for bit: the same expressions in the
same order, ``np.bincount`` as a sequential sum per participant in trade order starting from
0.0, ``np.add.reduce`` as :func:`mgenv._ufuncs.add_reduce`, ``np.maximum``/``np.minimum`` as
:mod:`mgenv._ufuncs`. The kernels write into arrays the caller allocates (returning arrays
from numba costs more than allocating them in Python) and only serve the single env's 1-D
arrays; the batched core keeps the numpy code.
"""

from __future__ import annotations

import numpy as np

from mgenv import _jit
from mgenv._ufuncs import add_reduce, divide_where, maximum

#: Rows of the :func:`settle_into` output, in :class:`~mgenv.market.settlement.Settlement`'s
#: field order (``grid_cash`` is the kernel's return value).
SETTLE_ROWS = (
    "cash",
    "revenue",
    "cost",
    "sold",
    "bought",
    "sold_committed",
    "bought_committed",
    "grid_import",
    "grid_export",
)


@_jit.kernel
def _check_index(index: np.ndarray, n: int) -> None:
    """Raise on a participant index outside ``[0, n)``: the loops below do not bound-check.

    ``np.bincount`` would raise on a negative index and lengthen its output on a large one;
    either is a caller's bug here, and an unchecked write would corrupt memory instead.
    """
    for i in range(index.shape[0]):
        if index[i] < 0 or index[i] >= n:
            raise ValueError("trade participant index outside [0, n)")


@_jit.kernel
def settle_into(
    seller: np.ndarray,
    buyer: np.ndarray,
    agg: np.ndarray,
    kwh: np.ndarray,
    price: np.ndarray,
    delta: np.ndarray,
    committed: np.ndarray,
    surplus: np.ndarray,
    deficit: np.ndarray,
    error: np.ndarray,
    grid_buy: float,
    feed_in: float,
    out: np.ndarray,
) -> float:
    """:func:`~mgenv.market.settlement.settle` with its ``grid_fallback``, for one market.

    Per participant ``i`` (seed 000 eq. 4 for the margin; seed 002's compensation): ``sold``,
    ``bought`` and their committed parts are sums of ``kwh`` per seller / buyer; a committed
    trade's value ``v = q p`` goes to the seller, ``delta v`` comes from the buyer and
    ``(delta - 1) v`` is its aggregator's margin. Then, elementwise as ``grid_fallback``::

        export  = max(surplus - sold, 0) + (sold - sold_ok) + max(error, 0)
        imports = max(deficit - bought, 0) + (bought - bought_ok) + max(-error, 0)
        revenue = received + max(margin, 0) + feed_in export
        cost    = paid + max(-margin, 0) + grid_buy imports

    Args:
        seller: Seller of each trade, int, ``(T,)``.
        buyer: Buyer of each trade, int, ``(T,)``.
        agg: The buyer's aggregator of each trade, int, ``(T,)``.
        kwh: Traded energy, kWh, ``(T,)``.
        price: Trade price, yuan/kWh, ``(T,)``.
        delta: The aggregator's service coefficient, ``(T,)``.
        committed: Whether each trade committed, bool, ``(T,)``.
        surplus: Offerable surplus per participant, kWh, ``(P,)``.
        deficit: Energy to buy per participant, kWh, ``(P,)``.
        error: Realised minus forecast net production, kWh, ``(P,)``.
        grid_buy: Grid purchase price, yuan/kWh.
        feed_in: Feed-in price, yuan/kWh.
        out: Output, float64 ``(9, P)``; rows as :data:`SETTLE_ROWS` (overwritten).

    Returns:
        ``grid_cash``: ``grid_buy * sum(imports) - feed_in * sum(export)``, yuan.
    """
    n, count = surplus.shape[0], kwh.shape[0]
    # numba does not bound-check: mismatched lengths, which numpy would refuse, must raise
    # (explicit tests, not a loop over a tuple: the arrays may have different dtypes)
    if seller.shape[0] != count or buyer.shape[0] != count or agg.shape[0] != count:
        raise ValueError("trade arrays of different lengths")
    if price.shape[0] != count or delta.shape[0] != count:
        raise ValueError("trade arrays of different lengths")
    if committed.shape[0] != count:
        raise ValueError("committed and trades of different lengths")
    if deficit.shape[0] != n or error.shape[0] != n or out.shape[0] != 9 or out.shape[1] != n:
        raise ValueError("positions or output of different lengths")
    _check_index(seller, n)
    _check_index(buyer, n)
    _check_index(agg, n)
    return settle_rows(
        seller, buyer, agg, kwh, price, delta, committed, surplus, deficit, error, grid_buy,
        feed_in, out,
    )  # fmt: skip


@_jit.inlined
def settle_rows(
    seller: np.ndarray,
    buyer: np.ndarray,
    agg: np.ndarray,
    kwh: np.ndarray,
    price: np.ndarray,
    delta: np.ndarray,
    committed: np.ndarray,
    surplus: np.ndarray,
    deficit: np.ndarray,
    error: np.ndarray,
    grid_buy: float,
    feed_in: float,
    out: np.ndarray,
) -> float:
    """:func:`settle_into` without its checks (the batched core's copies are checked once)."""
    n, count = surplus.shape[0], kwh.shape[0]
    # Rows 0-2 first hold the bincounts of margin, received and paid: each element is read
    # once, at the same index, before the final loop overwrites it with cash/revenue/cost.
    for r in range(7):
        for i in range(n):
            out[r, i] = 0.0
    for k in range(count):  # np.bincount: per bin, in trade order, from 0.0
        q = kwh[k]
        q_ok = q if committed[k] else 0.0  # np.where(committed, kwh, 0.0)
        value = q_ok * price[k]
        s, b = seller[k], buyer[k]
        out[3, s] += q
        out[4, b] += q
        out[5, s] += q_ok
        out[6, b] += q_ok
        out[0, agg[k]] += (delta[k] - 1.0) * value
        out[1, s] += value
        out[2, b] += delta[k] * value
    for i in range(n):
        sold, bought = out[3, i], out[4, i]
        margin, received, paid = out[0, i], out[1, i], out[2, i]
        export = maximum(surplus[i] - sold, 0.0) + (sold - out[5, i]) + maximum(error[i], 0.0)
        imports = maximum(deficit[i] - bought, 0.0) + (bought - out[6, i]) + maximum(-error[i], 0.0)
        revenue = received + maximum(margin, 0.0) + feed_in * export
        cost = paid + maximum(-margin, 0.0) + grid_buy * imports
        out[0, i] = revenue - cost
        out[1, i] = revenue
        out[2, i] = cost
        out[7, i] = imports
        out[8, i] = export
    imports_sum = add_reduce(out[7], 0, n)
    export_sum = add_reduce(out[8], 0, n)
    return float(grid_buy * imports_sum - feed_in * export_sum)


@_jit.inlined
def book_rows(
    energy: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    deficit: np.ndarray,
    offered: np.ndarray,
    buyer_global: np.ndarray,
    commit: np.ndarray,
    traded: bool,
    ema: float,
    out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """:func:`book_into`'s shares and ratios (its rows 0-3) into the four arrays of ``out``.

    ``energy`` is ``(sold, bought, sold_ok, bought_ok)``; ``out`` is ``(sold share (n_mg,),
    served share (n_buyers,), commit ratio (P,), its EMA (P,))``. The EMA may be written
    over ``commit`` (each entry is read before it is written).
    """
    sold, bought, sold_ok, bought_ok = energy
    sold_share, served_share, ratios, after = out
    n, nm, nb = sold.shape[0], offered.shape[0], buyer_global.shape[0]
    keep = 1 - ema  # the numpy code's (1 - COMMIT_EMA), the same double
    for i in range(nm):
        # np.divide(sold[:nm], offered, out=np.zeros(nm), where=offered > 0)
        sold_share[i] = divide_where(sold[i], offered[i], 0.0, offered[i] > 0) if traded else 0.0
    for j in range(nb):
        g = buyer_global[j]
        need = deficit[g]
        served_share[j] = divide_where(bought[g], need, 0.0, need > 0) if traded else 0.0
    for i in range(n):
        if traded:
            mine = sold[i] + bought[i]
            ratio = divide_where(sold_ok[i] + bought_ok[i], mine, 1.0, mine > 0)
            ratios[i] = ratio
            # np.where(mine > 0, (1 - ema) * commit + ema * ratio, commit)
            after[i] = keep * commit[i] + ema * ratio if mine > 0 else commit[i]
        else:
            ratios[i] = 1.0
            after[i] = commit[i]


@_jit.kernel
def book_into(
    sold: np.ndarray,
    bought: np.ndarray,
    sold_ok: np.ndarray,
    bought_ok: np.ndarray,
    surplus: np.ndarray,
    deficit: np.ndarray,
    offered: np.ndarray,
    buyer_global: np.ndarray,
    profit: np.ndarray,
    commit: np.ndarray,
    kpi_profit: np.ndarray,
    kpi_sold: np.ndarray,
    kpi_sold_ok: np.ndarray,
    kpi_export: np.ndarray,
    traded: bool,
    ema: float,
    out: np.ndarray,
) -> None:
    """The per-period bookkeeping of :meth:`mgenv.core.MarketCore._book`.

    Writes ``out`` (float64 ``(4, P)``): row 0 ``[:n_mg]`` each microgrid's sold share of
    its offer, row 1 ``[:n_buyers]`` each buyer's served share of its need, row 2 each
    participant's commit ratio of the period, row 3 the commit ratio's EMA after the period.
    With ``traded`` false (no trade) the shares are 0, the ratios 1 and row 3 the old EMA.
    Adds the period to the four KPI accumulators in place (``kpi_export`` gets the surplus
    that was not sold, ``max(surplus - sold, 0)``).

    Args:
        sold: Energy sold per participant, kWh, ``(P,)``.
        bought: Energy bought, kWh, ``(P,)``.
        sold_ok: Committed part of ``sold``, kWh, ``(P,)``.
        bought_ok: Committed part of ``bought``, kWh, ``(P,)``.
        surplus: Offerable surplus, kWh, ``(P,)``.
        deficit: Energy to buy, kWh, ``(P,)``.
        offered: Energy each microgrid offered, kWh, ``(n_mg,)``.
        buyer_global: Global index of each buyer, int, ``(n_buyers,)``.
        profit: The period's profit, yuan, ``(P,)``.
        commit: The commit ratio's EMA before the period, ``(P,)`` (read only).
        kpi_profit: Accumulated profit, yuan, ``(P,)`` (updated).
        kpi_sold: Accumulated sales, kWh, ``(P,)`` (updated).
        kpi_sold_ok: Accumulated committed sales, kWh, ``(P,)`` (updated).
        kpi_export: Accumulated unsold surplus, kWh, ``(P,)`` (updated).
        traded: Whether the period had any trade.
        ema: Weight of the period in the EMA (``COMMIT_EMA``).
        out: Output, float64 ``(4, P)`` (overwritten where described).
    """
    n = sold.shape[0]
    book_rows(
        (sold, bought, sold_ok, bought_ok), deficit, offered, buyer_global, commit, traded, ema,
        (out[0], out[1], out[2], out[3]),
    )  # fmt: skip
    for i in range(n):
        kpi_profit[i] += profit[i]
        kpi_sold[i] += sold[i]
        kpi_sold_ok[i] += sold_ok[i]
        kpi_export[i] += maximum(surplus[i] - sold[i], 0.0)


@_jit.kernel
def episode_rows_into(
    forecast: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    real: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    n_mg: int,
    n_agg: int,
    need: np.ndarray,
    error: np.ndarray,
) -> None:
    """An episode's per-period settlement inputs, as ``MarketCore.reset`` computes them.

    ``need`` is each user's forecast load (0 for microgrids and aggregators, whose deficit
    comes from the dispatch); ``error`` the realised minus forecast net production
    ``(pv + wind - load)_real - (pv + wind - load)_forecast`` of microgrids and
    ``load_forecast - load_real`` of users (0 for aggregators).

    Args:
        forecast: ``(pv, wind, load, user_load)`` forecasts, kWh, ``(h, n_mg)`` and
            ``(h, n_user)``.
        real: The realised values, same shapes, kWh.
        n_mg: Number of microgrids.
        n_agg: Number of aggregators.
        need: Output, float64 ``(h, P)`` (overwritten).
        error: Output, float64 ``(h, P)`` (overwritten).
    """
    pv_f, wind_f, load_f, user_f = forecast
    pv_r, wind_r, load_r, user_r = real
    need[:] = 0.0
    error[:] = 0.0
    users = n_mg + n_agg
    for t in range(need.shape[0]):
        for j in range(n_mg):
            error[t, j] = (pv_r[t, j] + wind_r[t, j] - load_r[t, j]) - (
                pv_f[t, j] + wind_f[t, j] - load_f[t, j]
            )
        for k in range(user_f.shape[1]):
            need[t, users + k] = user_f[t, k]
            error[t, users + k] = user_f[t, k] - user_r[t, k]


@_jit.kernel
def info_rows_into(
    profit: np.ndarray,
    revenue: np.ndarray,
    cost: np.ndarray,
    sold: np.ndarray,
    bought: np.ndarray,
    sold_ok: np.ndarray,
    bought_ok: np.ndarray,
    grid_import: np.ndarray,
    grid_export: np.ndarray,
    committed: np.ndarray,
    reason: np.ndarray,
    out: np.ndarray,
    rejected: np.ndarray,
) -> int:
    """The per-participant columns of ``MarketCore.agent_infos`` and its rejection counts.

    Row ``i`` of ``out`` is ``(profit, revenue, cost, traded, grid, commit_ratio)`` with
    ``traded = sold + bought``, ``grid = import + export`` and the commit ratio
    ``np.divide(sold_ok + bought_ok, traded, out=ones, where=traded > 0)``; one row per
    participant so that one ``tolist()`` gives each agent's values. ``rejected[k]`` counts
    the trades that did not commit for reason ``k`` (``np.bincount(reason[~committed])``).

    Args:
        profit: The period's profit, yuan, ``(P,)``.
        revenue: Money received, yuan, ``(P,)``.
        cost: Money paid, yuan, ``(P,)``.
        sold: Energy sold in trades, kWh, ``(P,)``.
        bought: Energy bought in trades, kWh, ``(P,)``.
        sold_ok: Committed part of ``sold``, kWh, ``(P,)``.
        bought_ok: Committed part of ``bought``, kWh, ``(P,)``.
        grid_import: Energy bought from the grid, kWh, ``(P,)``.
        grid_export: Energy fed in, kWh, ``(P,)``.
        committed: Whether each trade committed, bool, ``(T,)``.
        reason: Each trade's ``REJECT_REASONS`` index, int, ``(T,)``.
        out: Output, float64 ``(P, 6)`` (overwritten).
        rejected: Output counts, int64 ``(len(REJECT_REASONS),)`` (overwritten).

    Returns:
        The number of trades that did not commit.
    """
    for i in range(profit.shape[0]):
        traded = sold[i] + bought[i]
        out[i, 0] = profit[i]
        out[i, 1] = revenue[i]
        out[i, 2] = cost[i]
        out[i, 3] = traded
        out[i, 4] = grid_import[i] + grid_export[i]
        out[i, 5] = divide_where(sold_ok[i] + bought_ok[i], traded, 1.0, traded > 0)
    rejected[:] = 0
    count = 0
    for k in range(committed.shape[0]):
        if not committed[k]:
            r = reason[k]
            if r < 0 or r >= rejected.shape[0]:
                raise ValueError("trade rejection reason outside REJECT_REASONS")
            rejected[r] += 1
            count += 1
    return count


@_jit.kernel
def kpi_sums(
    profit: np.ndarray,
    sold: np.ndarray,
    sold_ok: np.ndarray,
    export: np.ndarray,
    n_mg: int,
    n_agg: int,
) -> tuple[float, float, float, float, float, float, float]:
    """The sums behind ``MarketCore.kpis``, each ``np.add.reduce`` of a contiguous run.

    Args:
        profit: Accumulated profit, yuan, ``(P,)``.
        sold: Accumulated sales, kWh, ``(P,)``.
        sold_ok: Accumulated committed sales, kWh, ``(P,)``.
        export: Accumulated unsold surplus, kWh, ``(P,)``.
        n_mg: Number of microgrids.
        n_agg: Number of aggregators.

    Returns:
        ``(profit of microgrids, of aggregators, of users, of all, sold, sold_ok, export)``.
    """
    n, users = profit.shape[0], n_mg + n_agg
    return (
        add_reduce(profit, 0, min(n_mg, n)),
        add_reduce(profit, min(n_mg, n), min(users, n)),
        add_reduce(profit, min(users, n), n),
        add_reduce(profit, 0, n),
        add_reduce(sold, 0, sold.shape[0]),
        add_reduce(sold_ok, 0, sold_ok.shape[0]),
        add_reduce(export, 0, export.shape[0]),
    )


@_jit.kernel
def positions_into(
    surplus_mg: np.ndarray, deficit_mg: np.ndarray, need: np.ndarray, out: np.ndarray
) -> None:
    """Each participant's surplus and deficit of the period, as ``MarketCore._positions``.

    Row 0: the microgrids' surplus, then zeros; row 1: the microgrids' deficit, then the
    period's ``need`` of the others (users' forecast load, 0 for aggregators).

    Args:
        surplus_mg: The microgrids' offerable surplus, kWh, ``(n_mg,)``.
        deficit_mg: The microgrids' deficit, kWh, ``(n_mg,)``.
        need: Every participant's energy to buy this period, kWh, ``(P,)``.
        out: Output, float64 ``(2, P)`` (overwritten).
    """
    nm = surplus_mg.shape[0]
    for i in range(need.shape[0]):
        out[0, i] = surplus_mg[i] if i < nm else 0.0
        out[1, i] = deficit_mg[i] if i < nm else need[i]


@_jit.kernel
def profit_into(cash: np.ndarray, fuel: np.ndarray, penalty: np.ndarray, out: np.ndarray) -> None:
    """Each participant's profit before the aggregators' extras, as ``MarketCore._settle``.

    ``profit = cash.copy(); profit[:n_mg] -= fuel + penalty`` (the microgrids pay their fuel,
    or their gas bill, and penalties).

    Args:
        cash: Net money from the settlement, yuan, ``(P,)``.
        fuel: The microgrids' fuel cost or gas bill, yuan, ``(n_mg,)``.
        penalty: The microgrids' penalties, yuan, ``(n_mg,)``.
        out: Output profit, yuan, float64 ``(P,)`` (overwritten).
    """
    nm = fuel.shape[0]
    for i in range(cash.shape[0]):
        out[i] = cash[i] - (fuel[i] + penalty[i]) if i < nm else cash[i]
