"""Seed 000's uniform-price aggregator auction as a :class:`~mgenv.market.mechanism.Mechanism`.

Microgrids offer price/quantity segments, buyers (microgrids in deficit and large users) bid
through their aggregators, the auction clears at one price in merit order
(:func:`~mgenv.market.clearing.clear_uniform_price`) and the cleared volumes are split into
bilateral trades (:func:`~mgenv.market.clearing.match_bilateral`).
"""

from __future__ import annotations

import numpy as np

from mgenv import _jit
from mgenv.config import MarketParams
from mgenv.market.clearing import clear_uniform_price, match_bilateral
from mgenv.market.mechanism import MarketInputs, MarketOutcome
from mgenv.market.orders import action_names, decode_orders
from mgenv.market.settlement import Trades
from mgenv.market.uniform_kernel import clear_uniform, work_sizes

_tuple_new = tuple.__new__


def trades_of(ints: np.ndarray, floats: np.ndarray, n: int) -> Trades:
    """The :class:`Trades` in ``clear_uniform``'s outputs: the first ``n`` columns of its rows.

    ``ints`` (3, W'): seller, buyer, aggregator; ``floats`` (4, W): kWh, price, coefficient
    (row 3 is not a trade's). Views, built by ``tuple.__new__``: half the cost of a
    NamedTuple's keyword-checking constructor.
    """
    return _tuple_new(
        Trades,
        (ints[0, :n], ints[1, :n], ints[2, :n], floats[0, :n], floats[1, :n], floats[2, :n]),
    )


class UniformPrice:
    """The uniform-price call auction with aggregators as intermediaries."""

    def __init__(self, params: MarketParams) -> None:
        self.params = params
        p = params
        self._bounds = (p.price_floor, p.price_cap, p.delta_min, p.delta_max)
        # the compiled clearing's scratch, by (n_mg, n_agg, n_buyers): reused every period
        self._scratch: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def scratch_for(self, nm: int, na: int, nb: int) -> tuple[np.ndarray, np.ndarray]:
        """``clear_uniform``'s scratch for these sizes, made once and reused every period."""
        key = (nm, na, nb)
        buf = self._scratch.get(key)
        if buf is None:
            n_f, n_i = work_sizes(nm, na, nb, self.params.n_segments)
            buf = self._scratch[key] = (np.empty(n_f), np.empty(n_i, np.int64))
        return buf

    def outputs(self, nm: int, na: int, nb: int) -> tuple[np.ndarray, np.ndarray]:
        """Fresh ``(floats (4, W), ints (3, W'))`` outputs for ``clear_uniform``.

        Fresh every period: the trades outlive the step in ``PeriodResult``. At most
        ``n_mg + n_buyers - 1`` trades; ``W`` also covers the offered/coefficient row.
        """
        return np.empty((4, nm + max(nb, na))), np.empty((3, nm + nb), np.int64)

    def action_names(self, role: str) -> list[str]:
        """See :mod:`mgenv.market.orders` for the layouts."""
        return action_names(role, self.params)

    def clear(self, actions: dict[str, np.ndarray], inputs: MarketInputs) -> MarketOutcome:
        """Decode the orders, clear them and match the trades."""
        nm, s = inputs.n_mg, self.params.n_segments
        if _jit.ENABLED:  # the same in one compiled call (mgenv.market.uniform_kernel)
            buyer_agg, na = inputs.buyer_agg, inputs.n_agg
            nb = buyer_agg.shape[0]
            floats, ints = self.outputs(nm, na, nb)
            p, cleared, n = clear_uniform(
                (actions["mg"], actions["agg"], actions["user"]),
                inputs[:3],  # offerable, deficit, user need
                (buyer_agg, inputs.buyer_global),
                inputs.grid_buy,
                self._bounds,
                s,
                self.scratch_for(nm, na, nb),
                floats,
                ints,
            )
            trades = trades_of(ints, floats, n)
            return _tuple_new(
                MarketOutcome,
                (trades, p, cleared, floats[3, :nm], floats[3, nm : nm + na], None, None),
            )
        orders = decode_orders(
            actions["mg"],
            actions["agg"],
            actions["user"],
            inputs.offerable_kwh,
            inputs.deficit_kwh,
            inputs.user_need_kwh,
            inputs.buyer_agg,
            inputs.grid_buy,
            self.params,
        )
        c = clear_uniform_price(
            orders.offer_price, orders.offer_kwh, orders.bid_limit, orders.bid_kwh
        )
        # np.add.reduce over the (n_mg, S) views: the .sum() method's Python wrapper costs more
        # than the sums themselves here.
        sold = np.add.reduce(c.awarded_kwh.reshape(nm, s), axis=1)
        si, bi, kwh = match_bilateral(sold, c.served_kwh)
        agg = inputs.buyer_agg[bi]
        price = np.empty(kwh.shape[0])
        price.fill(c.price)
        trades = Trades(
            seller=si,
            buyer=inputs.buyer_global[bi],
            agg=nm + agg,
            kwh=kwh,
            price=price,
            delta=orders.delta[agg],
        )
        offered = np.add.reduce(orders.offer_kwh.reshape(nm, s), axis=1)
        return MarketOutcome(trades, c.price, c.cleared, offered, orders.delta)
