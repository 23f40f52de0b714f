"""Settlement: committed trades pay, the rest falls back to the grid, errors are compensated.

Participants use the global index: microgrids ``0..n_mg-1``, aggregators next, users last.
Per period, for every participant (seed 002's supply-demand and forecast-error compensation):

* a committed trade of ``q`` kWh at clearing price ``rho`` through aggregator ``a``: the
  seller receives ``rho q``, the buyer pays ``delta_a rho q``, the aggregator keeps
  ``(delta_a - 1) rho q`` (seed 000 eq. 4);
* a trade that did not commit: the seller's energy goes to the grid at the feed-in price and
  the buyer buys the same energy from the grid at the grid price;
* offered renewable surplus that was not sold goes to the grid at the feed-in price; a deficit
  that was not bought in the market is bought from the grid;
* the realised renewables and load differ from the forecast the dispatch used: a shortfall is
  bought from the grid at the grid price (the seller buys it: forecast-error compensation),
  an excess is fed in.

Money is conserved exactly: participants' cash + the grid's cash + fuel costs = 0; energy
balances per microgrid and user (see :func:`energy_residual`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mgenv import _jit
from mgenv.market.settle_kernels import settle_into

_new = tuple.__new__


class Trades(NamedTuple):
    """Matched trades of one period; arrays of shape ``(T,)``."""

    seller: np.ndarray  # int64 global index (a microgrid)
    buyer: np.ndarray  # int64 global index (a microgrid or a user)
    agg: np.ndarray  # int64 global index of the buyer's aggregator
    kwh: np.ndarray  # traded energy, kWh
    price: np.ndarray  # clearing price, yuan/kWh
    delta: np.ndarray  # the aggregator's service coefficient


class Positions(NamedTuple):
    """Physical positions of one period, kWh, global index (zeros where not applicable)."""

    surplus: np.ndarray  # (P,) offerable renewable surplus (forecast)
    deficit: np.ndarray  # (P,) energy to buy (forecast) after own generation
    error: np.ndarray  # (P,) realised minus forecast net production (renewables - load)


class Settlement(NamedTuple):
    """Money and energy of one period per participant (global index, shape ``(P,)``)."""

    cash: np.ndarray  # net money received, yuan (fuel cost excluded)
    revenue: np.ndarray  # money received, yuan
    cost: np.ndarray  # money paid, yuan
    sold: np.ndarray  # energy sold in trades (committed or not), kWh
    bought: np.ndarray  # energy bought in trades (committed or not), kWh
    sold_committed: np.ndarray  # kWh
    bought_committed: np.ndarray  # kWh
    grid_import: np.ndarray  # kWh
    grid_export: np.ndarray  # kWh
    grid_cash: float  # money the grid receives net, yuan


def _by(index: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Sum ``weights`` per participant: float64 of shape ``(n,)``.

    Even with no trades: ``np.bincount`` returns int64 for empty weights.
    """
    out = np.bincount(index, weights, n)  # positional: keyword parsing costs here
    return out if out.dtype == np.float64 else out.astype(np.float64)


def grid_fallback(
    pos: Positions,
    energy: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    money: tuple[np.ndarray, np.ndarray, np.ndarray],
    grid_buy: float,
    feed_in: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grid exchanges and each participant's money after the trades (elementwise).

    Failed trades (sold - sold committed) go to the grid, and so do the unsold surplus and
    the forecast excess; missing energy is bought from it. Any shape: ``(P,)`` for one
    market, ``(B, P)`` for the batched core.

    Args:
        pos: Positions (surplus, deficit, forecast error), kWh.
        energy: ``(sold, sold_committed, bought, bought_committed)`` in trades, kWh.
        money: ``(margin, received, paid)``: aggregators' net margin, sellers' income and
            buyers' payments from committed trades, yuan.
        grid_buy: Grid purchase price, yuan/kWh.
        feed_in: Feed-in price, yuan/kWh.

    Returns:
        ``(grid_export, grid_import, revenue, cost)``.
    """
    sold, sold_ok, bought, bought_ok = energy
    margin, received, paid = money
    export = np.maximum(pos.surplus - sold, 0.0) + (sold - sold_ok) + np.maximum(pos.error, 0.0)
    imports = (
        np.maximum(pos.deficit - bought, 0.0) + (bought - bought_ok) + np.maximum(-pos.error, 0.0)
    )
    # An aggregator's net margin counts as revenue, or with delta < 1 as a cost.
    revenue = received + np.maximum(margin, 0.0) + feed_in * export
    cost = paid + np.maximum(-margin, 0.0) + grid_buy * imports
    return export, imports, revenue, cost


def settle(
    trades: Trades,
    committed: np.ndarray,
    pos: Positions,
    grid_buy: float,
    feed_in: float,
) -> Settlement:
    """Settle one period (vectorised over trades and participants).

    Args:
        trades: The period's matched trades.
        committed: Whether each trade committed on the chain, shape ``(T,)`` bool.
        pos: Physical positions used by the dispatch and their realised error.
        grid_buy: Grid purchase price, yuan/kWh.
        feed_in: Feed-in price, yuan/kWh.

    Returns:
        The :class:`Settlement`.
    """
    if _jit.ENABLED and pos.surplus.ndim == 1:  # one market: the kernel (same numbers)
        return _settle_kernel(trades, committed, pos, grid_buy, feed_in)
    n, count = pos.surplus.shape[0], trades.kwh.shape[0]
    if count == 0:  # no trade: every per-participant sum below is zero (no bincount needed)
        sold, bought, sold_ok, bought_ok = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        margin = received = paid = np.zeros(n)  # read only below
    else:
        sold = _by(trades.seller, trades.kwh, n)
        bought = _by(trades.buyer, trades.kwh, n)
        if np.count_nonzero(committed) == count:  # the common case: the committed sums are
            q_ok = trades.kwh  # the totals, so two bincounts and a where are skipped
            sold_ok, bought_ok = sold.copy(), bought.copy()
        else:
            q_ok = np.where(committed, trades.kwh, 0.0)
            sold_ok = _by(trades.seller, q_ok, n)
            bought_ok = _by(trades.buyer, q_ok, n)
        value = q_ok * trades.price
        # An aggregator's net margin; with delta < 1 it is negative and counts as a cost.
        margin = _by(trades.agg, (trades.delta - 1.0) * value, n)
        received = _by(trades.seller, value, n)
        paid = _by(trades.buyer, trades.delta * value, n)
    export, imports, revenue, cost = grid_fallback(
        pos, (sold, sold_ok, bought, bought_ok), (margin, received, paid), grid_buy, feed_in
    )
    return Settlement(
        cash=revenue - cost,
        revenue=revenue,
        cost=cost,
        sold=sold,
        bought=bought,
        sold_committed=sold_ok,
        bought_committed=bought_ok,
        grid_import=imports,
        grid_export=export,
        grid_cash=float(grid_buy * np.add.reduce(imports) - feed_in * np.add.reduce(export)),
    )


def _settle_kernel(
    trades: Trades,
    committed: np.ndarray,
    pos: Positions,
    grid_buy: float,
    feed_in: float,
) -> Settlement:
    """:func:`settle` of one market in one kernel call (:func:`settle_into`).

    The fields are the rows of one ``(9, P)`` array (views): allocating one array and
    slicing it costs less than nine arrays.
    """
    out = np.empty((9, pos.surplus.shape[0]))
    grid_cash: float = settle_into(
        trades.seller,
        trades.buyer,
        trades.agg,
        trades.kwh,
        trades.price,
        trades.delta,
        committed,
        pos.surplus,
        pos.deficit,
        pos.error,
        grid_buy,
        feed_in,
        out,
    )
    return settlement_of(out, grid_cash)


def settlement_of(rows: np.ndarray, grid_cash: float) -> Settlement:
    """A :class:`Settlement` whose fields are the rows of ``settle_into``'s output (9, P)."""
    return _new(
        Settlement,
        (
            rows[0],
            rows[1],
            rows[2],
            rows[3],
            rows[4],
            rows[5],
            rows[6],
            rows[7],
            rows[8],
            grid_cash,
        ),
    )  # tuple.__new__: the NamedTuple its constructor builds, without the keyword handling
