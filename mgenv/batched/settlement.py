"""Batched settlement: :func:`mgenv.market.settlement.settle` for ``B`` copies at once.

Trades are padded to a fixed width ``T`` per configuration (see :class:`BatchedTrades`); the
per-participant sums are one ``np.bincount`` over ``b * P + participant`` per quantity.
``np.bincount`` adds its weights one by one in index order, exactly as the single
:func:`~mgenv.market.settlement.settle` does over one copy's trades, and the padding adds
``0.0`` (or ``-0.0``) to a sum, which leaves it unchanged; so every figure is bit-identical to
settling each copy on its own (tests/test_batched_market.py checks it).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

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
