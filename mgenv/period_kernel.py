"""The single env's settlement stage of one period in one kernel call (:mod:`mgenv._jit`).

:meth:`mgenv.core.MarketCore._settle` runs positions, settlement, the physics after the
market, profits and bookkeeping as five kernels with Python between them; for the common
case (the electric model, a market without load shifts, aggregator storage, settlement
hooks or fuel bills: the ``default`` family) :func:`settle_period_into` calls the same five
kernels in sequence inside one compiled call. The numbers are the five kernels' (the same
compiled functions on the same inputs); what goes is ~15 µs of Python glue and four kernel
entries per step.
"""

from __future__ import annotations

import numpy as np

from mgenv import _jit
from mgenv.market.settle_kernels import book_into, positions_into, profit_into, settle_into
from mgenv.physics.kernels import realise_into

#: Rows of :func:`settle_period_into`'s output ``(N_ROWS, P)``: the positions' surplus and
#: deficit (2), the settlement's nine rows (``settle_kernels.SETTLE_ROWS``), the realised
#: physics' four rows (``[:n_mg]``: generation, fuel cost, penalty, next SOC), the profit,
#: then the bookkeeping's four rows (``book_into``).
POSITIONS, SETTLEMENT, REALISED, PROFIT, BOOK = 0, 2, 11, 15, 16
N_ROWS = 20


@_jit.kernel
def settle_period_into(
    trades: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    committed: np.ndarray,
    plan: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    need_error: tuple[np.ndarray, np.ndarray],
    prices: tuple[float, float],
    physics: tuple[np.ndarray, np.ndarray],
    book: tuple[np.ndarray, np.ndarray, np.ndarray],
    kpi: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    ema: float,
    out: np.ndarray,
) -> float:
    """Positions, settlement, realised physics, profit and bookkeeping of one period.

    Args:
        trades: ``(seller, buyer, agg, kwh, price, delta)`` of the period's T trades
            (:class:`~mgenv.market.settlement.Trades`).
        committed: Shape (T,), bool: committed on the chain.
        plan: The microgrids' dispatch ``(surplus, deficit, self_gen, charge, discharge)``,
            kWh, each ``(n_mg,)`` (no load shift: the surplus is what they could sell).
        need_error: Every participant's energy to buy and forecast error this period, kWh,
            ``(P,)`` each.
        prices: ``(grid_buy, feed_in)``, yuan/kWh.
        physics: ``(soc before the period (n_mg,), fleet rows (5, n_mg))`` of the electric
            model (``ElectricModel._realise_fleet``).
        book: ``(offered (n_mg,), buyer_global (n_buyers,), commit EMA (P,))``.
        kpi: The four KPI accumulators ``(profit, sold, sold_ok, export_surplus)`` (P,),
            updated in place.
        ema: Weight of the period in the commit ratio's EMA.
        out: Output, float64 ``(N_ROWS, P)``: the rows named above (overwritten).

    Returns:
        The settlement's ``grid_cash``, yuan.
    """
    seller, buyer, agg, kwh, price, delta = trades
    surplus, deficit, self_gen, charge, discharge = plan
    need, error = need_error
    soc, fleet = physics
    offered, buyer_global, commit = book
    nm = soc.shape[0]
    positions_into(surplus, deficit, need, out[POSITIONS : POSITIONS + 2])
    grid_cash: float = settle_into(
        seller, buyer, agg, kwh, price, delta, committed, out[POSITIONS], out[POSITIONS + 1],
        error, prices[0], prices[1], out[SETTLEMENT : SETTLEMENT + 9],
    )  # fmt: skip
    sold = out[SETTLEMENT + 3]
    realise_into(
        self_gen, charge, discharge, sold[:nm], surplus, soc, fleet,
        out[REALISED : REALISED + 4, :nm],
    )  # fmt: skip
    profit = out[PROFIT]
    # the microgrids pay their fuel (row 1) and penalties (row 2)
    profit_into(out[SETTLEMENT], out[REALISED + 1, :nm], out[REALISED + 2, :nm], profit)
    kpi_profit, kpi_sold, kpi_sold_ok, kpi_export = kpi
    book_into(
        sold, out[SETTLEMENT + 4], out[SETTLEMENT + 5], out[SETTLEMENT + 6], out[POSITIONS],
        out[POSITIONS + 1], offered, buyer_global, profit, commit, kpi_profit, kpi_sold,
        kpi_sold_ok, kpi_export, kwh.shape[0] > 0, ema, out[BOOK : BOOK + 4],
    )  # fmt: skip
    return grid_cash
