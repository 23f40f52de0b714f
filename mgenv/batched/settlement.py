"""Batched settlement: :func:`mgenv.market.settlement.settle` for ``B`` copies at once.

Trades are padded to a fixed width ``T`` per configuration (see :class:`BatchedTrades`); the
per-participant sums are one ``np.bincount`` over ``b * P + participant`` per quantity.
``np.bincount`` adds its weights one by one in index order, exactly as the single
:func:`~mgenv.market.settlement.settle` does over one copy's trades, and the padding adds
``0.0`` (or ``-0.0``) to a sum, which leaves it unchanged; so every figure is bit-identical to
settling each copy on its own (tests/test_batched_market.py checks it).

With :data:`mgenv._jit.ENABLED` the batched core settles and books a period in one kernel
call instead (:func:`settle_copies`): copy by copy, the single market's settlement and
bookkeeping kernels' steps (:func:`mgenv.market.settle_kernels.settle_rows` and
:func:`~mgenv.market.settle_kernels.book_rows`) on its live trades.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mgenv import _jit
from mgenv.market.settle_kernels import book_rows, settle_rows
from mgenv.market.settlement import Positions, grid_fallback


class BatchedTrades(NamedTuple):
    """Matched trades of ``B`` copies, padded to ``T`` columns; arrays of shape ``(B, T)``.

    In each row the live trades come first, in the single mechanism's order; padding has
    ``seller = buyer = agg = 0`` and ``kwh = price = delta = 0``.
    """

    seller: np.ndarray  # int64 global index (a microgrid)
    buyer: np.ndarray  # int64 global index (a microgrid or a user)
    agg: np.ndarray  # int64 global index of the buyer's aggregator
    kwh: np.ndarray  # float64 traded energy, kWh
    price: np.ndarray  # float64 clearing price, yuan/kWh
    delta: np.ndarray  # float64 the aggregator's service coefficient
    live: np.ndarray  # bool, a real trade (not padding)


class BatchedSettlement(NamedTuple):
    """:class:`~mgenv.market.settlement.Settlement` of ``B`` copies: ``(B, P)`` arrays.

    Same fields; ``grid_cash`` is an array of shape ``(B,)`` instead of a float.
    """

    cash: np.ndarray  # net money received, yuan (fuel cost excluded)
    revenue: np.ndarray  # money received, yuan
    cost: np.ndarray  # money paid, yuan
    sold: np.ndarray  # energy sold in trades (committed or not), kWh
    bought: np.ndarray  # energy bought in trades (committed or not), kWh
    sold_committed: np.ndarray  # kWh
    bought_committed: np.ndarray  # kWh
    grid_import: np.ndarray  # kWh
    grid_export: np.ndarray  # kWh
    grid_cash: np.ndarray  # (B,) money the grid receives net, yuan


def settle_batch(
    trades: BatchedTrades,
    committed: np.ndarray,
    surplus: np.ndarray,
    deficit: np.ndarray,
    error: np.ndarray,
    grid_buy: float,
    feed_in: float,
) -> BatchedSettlement:
    """Settle one period of ``B`` copies (see :func:`mgenv.market.settlement.settle`).

    Row ``b`` equals ``settle(Trades(<row b's live trades>), committed[b, live[b]],
    Positions(surplus[b], deficit[b], error[b]), grid_buy, feed_in)`` bit for bit.

    Args:
        trades: The copies' padded trades, ``(B, T)``.
        committed: Whether each trade committed on the chain, ``(B, T)`` bool (padding is
            ignored).
        surplus: Offerable renewable surplus (forecast), kWh, ``(B, P)``.
        deficit: Energy to buy (forecast) after own generation, kWh, ``(B, P)``.
        error: Realised minus forecast net production, kWh, ``(B, P)``.
        grid_buy: Grid purchase price, yuan/kWh.
        feed_in: Feed-in price, yuan/kWh.

    Returns:
        The :class:`BatchedSettlement`.
    """
    b, n = surplus.shape
    size = b * n
    # Row b's participants are bins b * n .. b * n + n - 1, so a row's sums never mix.
    base = (np.arange(b) * n)[:, None]
    seller = (trades.seller + base).ravel()
    buyer = (trades.buyer + base).ravel()
    agg = (trades.agg + base).ravel()
    kwh = trades.kwh.ravel()
    # Padding has kwh = 0, so it adds zeros; the mask only drops uncommitted live trades.
    q_ok = np.where(committed.ravel(), kwh, 0.0)
    value = q_ok * trades.price.ravel()
    delta = trades.delta.ravel()
    sold = np.bincount(seller, kwh, size).reshape(b, n)
    bought = np.bincount(buyer, kwh, size).reshape(b, n)
    sold_ok = np.bincount(seller, q_ok, size).reshape(b, n)
    bought_ok = np.bincount(buyer, q_ok, size).reshape(b, n)
    # An aggregator's net margin; with delta < 1 it is negative and counts as a cost.
    margin = np.bincount(agg, (delta - 1.0) * value, size).reshape(b, n)
    received = np.bincount(seller, value, size).reshape(b, n)
    paid = np.bincount(buyer, delta * value, size).reshape(b, n)
    export, imports, revenue, cost = grid_fallback(
        Positions(surplus, deficit, error),
        (sold, sold_ok, bought, bought_ok),
        (margin, received, paid),
        grid_buy,
        feed_in,
    )
    # Row sums over the contiguous last axis: numpy reduces each row as it does a 1-D array
    # (same pairwise order), so grid_cash matches the single np.add.reduce.
    grid_cash = grid_buy * np.add.reduce(imports, axis=1) - feed_in * np.add.reduce(export, axis=1)
    return BatchedSettlement(
        cash=revenue - cost,
        revenue=revenue,
        cost=cost,
        sold=sold,
        bought=bought,
        sold_committed=sold_ok,
        bought_committed=bought_ok,
        grid_import=imports,
        grid_export=export,
        grid_cash=grid_cash,
    )


@_jit.kernel
def settle_copies(
    ints: tuple[np.ndarray, np.ndarray, np.ndarray],
    floats: tuple[np.ndarray, np.ndarray, np.ndarray],
    live: np.ndarray,
    committed: np.ndarray,
    positions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    prices: tuple[float, float],
    offered: np.ndarray,
    buyer_global: np.ndarray,
    ema: float,
    out: np.ndarray,
    book: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Settle and book one period of every copy (``BatchedCore.step``'s settlement).

    Copy b: its live trades (the first ``live[b].sum()`` columns) settled by
    :func:`~mgenv.market.settle_kernels.settle_rows` against the positions the core builds
    (surplus: the microgrids' then zeros; deficit: the microgrids' then the users' needs),
    then ``MarketCore._book``'s shares and commit ratio
    (:func:`~mgenv.market.settle_kernels.book_rows`) and the committed share of the trades.

    Args:
        ints: ``(seller, buyer, agg)`` of the trades, ``(B, T)`` int64 global indices.
        floats: ``(kwh, price, delta)`` of the trades, ``(B, T)`` float64.
        live: Shape (B, T), bool: live trades first in each row.
        committed: Shape (B, T), bool.
        positions: ``(surplus (B, n_mg), deficit (B, n_mg), need (B, P), error (B, P))``,
            kWh: the microgrids' dispatch, every participant's forecast need (the users')
            and realised minus forecast net production.
        prices: ``(grid_buy, feed_in)``, yuan/kWh.
        offered: Shape (B, n_mg): energy each microgrid offered, kWh.
        buyer_global: Shape (n_buyers,): each buyer's global index.
        ema: Weight of the period in the commit ratio's EMA (``COMMIT_EMA``).
        out: Shape (B, 11, P), float64: receives :data:`SETTLE_ROWS` in rows 0-8 (as
            :func:`~mgenv.market.settle_kernels.settle_into`), ``grid_cash`` in ``[b, 9,
            0]`` and the committed share of the trades (1 without trades) in ``[b, 10, 0]``;
            row 10 ``[1:]`` is scratch.
        book: ``(sold share (B, n_mg), served share (B, n_buyers), commit (B, P))``: the
            shares are written, the commit ratio's EMA updated in place.
    """
    seller, buyer, agg = ints
    kwh, price, delta = floats
    surplus_mg, deficit_mg, need, error = positions
    sold_share, served_share, commit = book
    grid_buy, feed_in = prices
    nb, n = need.shape
    nm = surplus_mg.shape[1]
    surplus = np.zeros(n)
    deficit = np.empty(n)
    for b in range(nb):
        n_live = 0
        n_ok = 0
        for t in range(live.shape[1]):
            n_live += live[b, t]
            n_ok += live[b, t] and committed[b, t]
        for i in range(n):
            deficit[i] = need[b, i]
        for i in range(nm):
            surplus[i] = surplus_mg[b, i]
            deficit[i] = deficit_mg[b, i]
        rows = out[b]
        grid_cash = settle_rows(
            seller[b][:n_live], buyer[b][:n_live], agg[b][:n_live], kwh[b][:n_live],
            price[b][:n_live], delta[b][:n_live], committed[b][:n_live], surplus, deficit,
            error[b], grid_buy, feed_in, rows,
        )  # fmt: skip
        energy = (rows[3], rows[4], rows[5], rows[6])
        shares = (sold_share[b], served_share[b], rows[10], commit[b])
        book_rows(energy, deficit, offered[b], buyer_global, commit[b], n_live > 0, ema, shares)
        rows[9, 0] = grid_cash
        # np.divide(n_ok, n_live, out=np.ones(B), where=n_live > 0)
        rows[10, 0] = n_ok / n_live if n_live > 0 else 1.0
