"""Seed 002's peer-to-peer market inside one microgrid as a mechanism (``"p2p"``).

The microgrids ``mg_i`` are the microgrid's PV prosumers (the paper's users): sellers when
their forecast position is a surplus, buyers when it is a deficit (Table 10). Large users
``user_k``, if any, are buyers. ``agg_0`` is the microgrid operator that posts the internal
price; other aggregators have no part. The game and its formulas: :mod:`mgenv.market.p2p_game`.

Action layouts (entries in [-1, 1]):

=======  ===============  ===================================================================
role     entries          meaning
=======  ===============  ===================================================================
mg       ``declared_load`` the seller's consumption at the calibration's reference price,
                          which fixes its eq. 9 lambda (``lambda = p_ref (1 + load)``); -1..0
                          maps to ``[0, forecast load]``, 0..1 to ``[forecast load, PV]``;
                          0 is the truthful type. Ignored while buying.
         ``trade_frac``   share of its position published in the microgrid (0..1 from
                          -1..1); the rest goes to or comes from the grid
agg      ``price``        internal price, ``[-1, 1]`` to ``[feed-in, grid price]`` (eq. 8);
                          only ``agg_0``'s counts, and only when supply falls short
user     ``trade_frac``   as for mg
=======  ===============  ===================================================================

A period, through the chaincodes of :mod:`mgenv.chain.consortium`: publication (qualified
sellers publish ``trade_frac x surplus``, buyers ``trade_frac x deficit``; unqualified
participants cannot); pricing (published supply >= demand: the compromise price ``(p_s +
p_b) / 2``; otherwise ``agg_0``'s posted price); sellers' consumption response by eq. 9 at
their effective price ``f p + (1 - f) p_s`` (a share ``f`` of each marginal kWh is sold in the
microgrid), returned as ``load_shift_kwh``; pro-rata allocation (eq. 13); matchmaking into
transaction paths, which become the trades (through ``agg_0``, service coefficient 1); a
supply-demand compensation record. The chain stage then orders the trades with the
scenario's consensus protocol and settlement does the compensation.

Seller responses need each microgrid's forecast load (``MarketInputs.load_kwh``). Without it
the mechanism cannot evaluate eq. 9: sellers keep their forecast load (their eq. 9 optimum
at the reference price) and ``declared_load`` has no effect; a warning says so once.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import NamedTuple

import numpy as np

from mgenv.chain.consortium import ConsortiumChannel, Matching, make_identities
from mgenv.chain.consortium_records import Signed
from mgenv.chain.ledger import Block
from mgenv.config import MarketParams, tile
from mgenv.market.mechanism import MarketInputs, MarketOutcome
from mgenv.market.orders import to_unit
from mgenv.market.p2p_game import allocate, best_response, calibrate_lambda
from mgenv.market.settlement import Trades

ACTION_NAMES = {"mg": ["declared_load", "trade_frac"], "agg": ["price"], "user": ["trade_frac"]}
KEY_SEED = int.from_bytes(hashlib.sha256(b"mgenv/p2p/consortium").digest()[:16], "little")
MS_PER_PERIOD = 3_600_000  # hour-ahead market (section 3.2.1)


def price_to_action(price: float, feed_in: float, grid_buy: float) -> float:
    """Inverse of the ``price`` action map: price in yuan/kWh to [-1, 1]."""
    x = 2.0 * (price - feed_in) / (grid_buy - feed_in) - 1.0
    return float(min(max(x, -1.0), 1.0))


def declared_load(action: np.ndarray, load_kwh: np.ndarray, pv_kwh: np.ndarray) -> np.ndarray:
    """The ``declared_load`` action map (see the module docstring), kWh, shape ``(n,)``."""
    a = np.minimum(np.maximum(action, -1.0), 1.0)
    return np.asarray(np.where(a <= 0.0, (1.0 + a) * load_kwh, load_kwh + a * (pv_kwh - load_kwh)))


class P2PPeriodState(NamedTuple):
    """What the mechanism decided in its last period (for inspection and reproduction)."""

    period: int
    price: float  # yuan/kWh
    shortage: bool
    supply_kwh: np.ndarray  # (n_mg,) sellers' net output after responding
    sold_kwh: np.ndarray  # (n,) local participants: microgrids then users
    bought_kwh: np.ndarray  # (n,)
    demand_kwh: np.ndarray  # (n,) published demand
    load_shift_kwh: np.ndarray  # (n_mg,)
    matching: Matching
    compensation: Signed
    grid_buy: float  # p_b of the period, yuan/kWh


class P2PMarket:
    """The ``"p2p"`` mechanism (see the module docstring).

    Args:
        params: Market parameters (``p2p_*`` fields).
    """

    def __init__(self, params: MarketParams) -> None:
        self.params = params
        self.channel: ConsortiumChannel | None = None
        self.last: P2PPeriodState | None = None
        self._calls = 0
        self._warned = False

    def action_names(self, role: str) -> list[str]:
        """Names of the action entries of ``role``."""
        return list(ACTION_NAMES[role])

    def _channel(self, n_mg: int, n_agg: int, n_user: int) -> ConsortiumChannel:
        """Register and authenticate the participants at the first period."""
        if self.channel is None or self.channel.n != n_mg + n_user:
            names = [f"mg_{i}" for i in range(n_mg)] + [f"user_{k}" for k in range(n_user)]
            bad = [s for s in self.params.p2p_unqualified if s not in names]
            if bad:
                raise ValueError(
                    f"MarketParams.p2p_unqualified names {bad[0]!r}, which is not "
                    f"a participant (mg_0..mg_{n_mg - 1}, {n_user} users)"
                )
            glob = np.concatenate((np.arange(n_mg), n_mg + n_agg + np.arange(n_user)))
            cap = self.params.p2p_installed_kw
            installed = np.concatenate((tile(cap, n_mg), np.zeros(n_user))) if cap else None
            ids = make_identities(names, glob, self.params.p2p_unqualified, installed)
            self.channel = ConsortiumChannel(
                ids, self.params.p2p_signatures, KEY_SEED, require_capacity=bool(cap)
            )
        return self.channel

    def _load(self, inputs: MarketInputs) -> np.ndarray | None:
        if inputs.load_kwh is None and not self._warned:
            warnings.warn(
                "p2p: the core passes no MarketInputs.load_kwh, so sellers cannot "
                "respond by eq. 9 (their load stays at the forecast)",
                stacklevel=3,
            )
            self._warned = True
        return None if inputs.load_kwh is None else np.asarray(inputs.load_kwh, np.float64)

    def clear(self, actions: dict[str, np.ndarray], inputs: MarketInputs) -> MarketOutcome:
        """Publish, price, respond, allocate and match one period (module docstring)."""
        nm, nu = inputs.n_mg, inputs.user_need_kwh.shape[0]
        period = self._calls if inputs.period is None else int(inputs.period)
        self._calls += 1
        ch = self._channel(nm, inputs.n_agg, nu)
        p_s, p_b = float(inputs.feed_in), float(inputs.grid_buy)
        mg, user = actions["mg"], actions["user"]
        frac = to_unit(np.concatenate((mg[:, 1], user[:, 0]))) if nu else to_unit(mg[:, 1])
        surplus = np.asarray(inputs.offerable_kwh, np.float64)
        need = np.concatenate((inputs.deficit_kwh, inputs.user_need_kwh))
        sale = np.concatenate((surplus, np.zeros(nu))) * frac
        demand = need * frac
        ch.publish(period, sale, demand, p_s, p_b, period * MS_PER_PERIOD)
        selling, buying = ch.active(period)
        sale, demand = np.where(selling, sale, 0.0), np.where(buying, demand, 0.0)
        shortage = bool(sale.sum() < demand.sum())
        posted = p_s + float(to_unit(actions["agg"][0, 0])) * (p_b - p_s)
        price = posted if shortage else 0.5 * (p_s + p_b)
        supply, shift = self._respond(
            mg[:, 0], frac[:nm], selling[:nm], surplus, price, p_s, p_b, self._load(inputs)
        )
        offer = np.concatenate((supply * frac[:nm], np.zeros(nu)))
        sold, bought = allocate(offer, demand)
        matching = ch.match(period, price, sold, bought)
        comp = ch.compensate_supply_demand(
            period, (price, p_s, p_b), np.concatenate((supply, np.zeros(nu))), demand, sold, bought
        )
        self.last = P2PPeriodState(
            period, price, shortage, supply, sold, bought, demand, shift, matching, comp, p_b
        )
        glob = ch.ids.participant
        kwh = matching.kwh
        trades = Trades(
            seller=glob[matching.seller],
            buyer=glob[matching.buyer],
            agg=np.full(kwh.size, nm, np.int64),
            kwh=kwh,
            price=matching.price,
            delta=np.ones(kwh.size),
        )
        cleared = bool(kwh.size)
        return MarketOutcome(
            trades, price if cleared else 0.0, cleared, offer[:nm], np.ones(inputs.n_agg), shift
        )

    def _respond(
        self,
        declared: np.ndarray,
        frac: np.ndarray,
        selling: np.ndarray,
        surplus: np.ndarray,
        price: float,
        p_s: float,
        p_b: float,
        load: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sellers' eq. 9 consumption: ``(supply, load_shift)``, kWh, each ``(n_mg,)``.

        A seller that publishes a share ``f`` of its supply sells each marginal kWh at
        ``f p + (1 - f) p_s``, the price its eq. 9 response faces; non-sellers do not move.
        """
        if load is None:
            return np.where(selling, surplus, 0.0), np.zeros_like(surplus)
        pv = load + surplus
        p_ref = p_s + self.params.p2p_lambda_ref * (p_b - p_s)
        lam = calibrate_lambda(declared_load(declared, load, pv), p_ref)
        effective = frac * price + (1.0 - frac) * p_s
        new_load = np.where(selling, best_response(lam, pv, effective), load)
        return np.where(selling, pv - new_load, 0.0), new_load - load

    def after_settlement(
        self, committed: np.ndarray, error_kwh: np.ndarray, block: Block | None
    ) -> Signed | None:
        """Error compensation chaincode (Table 7) for the period just settled.

        Args:
            committed: Which of the period's trades committed, shape ``(T,)``.
            error_kwh: Realised minus forecast net output per participant, kWh, global
                index, shape ``(P,)``; a negative value of a seller is its shortfall.
            block: The period's block (its records are the committed transactions, in order).

        Returns:
            The records, or None before the first period.
        """
        if self.last is None or self.channel is None:
            return None
        ch = self.channel
        short = np.maximum(-np.asarray(error_kwh)[ch.ids.participant], 0.0)
        it = iter(block.records() if block is not None else [])
        tx = [next(it, None) if ok else None for ok in np.asarray(committed).tolist()]
        return ch.compensate_errors(
            self.last.period, self.last.matching, short, tx, self.last.grid_buy
        )
