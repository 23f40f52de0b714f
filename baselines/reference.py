"""Reference policies: truthful, fixed quotes (seed 000's "traditional"), grid-only, random.

All read only public information (``env.public_info()``): costs, price bounds, this period's
forecast surplus, generator headroom and deficits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from baselines.base import RolePolicy
from baselines.noncooperative import tier_reference_actions
from baselines.stackelberg import truthful_actions
from mgenv.market.orders import from_delta, from_price, from_unit
from mgenv.physics.units import marginal_cost

TRUTHFUL_DELTA = 1.05  # a modest service fee inside seed 000's interval (0.85, 1.2)


def _buyer_actions(k: int, limit: np.ndarray | float, frac: float, info: Any) -> np.ndarray:
    """``[buy_frac, buy_limit]`` actions for ``k`` buyers."""
    out = np.empty((k, 2))
    out[:, 0] = from_unit(frac)
    out[:, 1] = from_price(limit, info.market)
    return out


def _mg_buy_tail(k: int, frac: float, info: Any) -> np.ndarray:
    """``[buy_frac, buy_limit]`` for microgrids: bid the deficit up to the grid price."""
    return _buyer_actions(k, info.grid_buy, frac, info)


def _assemble(
    prices: np.ndarray, shares: np.ndarray, offer_frac: float, tail: np.ndarray, info: Any
) -> np.ndarray:
    """Microgrid action rows from segment prices (yuan/kWh) and shares (sum 1)."""
    k = prices.shape[0]
    frac = np.full((k, 1), float(from_unit(offer_frac)))
    return np.concatenate((from_price(prices, info.market), from_unit(shares), frac, tail), axis=1)


def truthful_mg_offers(rows: np.ndarray, info: Any) -> tuple[np.ndarray, np.ndarray]:
    """Truthful segments: offers priced at marginal cost.

    The renewable surplus goes at the price floor (its marginal cost is 0), then the generator
    headroom in equal slices, each priced at the marginal cost at the slice's end.

    Returns:
        ``(prices, shares)`` of shape ``(k, S)`` (yuan/kWh, fractions summing to 1).
    """
    s = info.market.n_segments
    f = info.fleet
    sur, head = info.surplus[rows], info.gen_headroom[rows]
    total = sur + head
    if s == 1:
        fsub = type(f)(*(a[rows] for a in f))
        return marginal_cost(head, fsub)[:, None], np.ones((rows.size, 1))
    ends = head[:, None] * np.arange(1, s) / (s - 1)  # (k, S-1) cumulative output, kWh
    mc = f.gen_cost_b[rows, None] + 2.0 * f.gen_cost_a[rows, None] * ends
    prices = np.concatenate((np.full((rows.size, 1), info.market.price_floor), mc), axis=1)
    safe = np.where(total > 0, total, 1.0)
    gen_share = np.repeat((head / safe / (s - 1))[:, None], s - 1, axis=1)
    shares = np.concatenate(((sur / safe)[:, None], gen_share), axis=1)
    shares = np.where(total[:, None] > 0, shares, 1.0 / s)
    return prices, shares


def _p2p_actions(role: str, rows: np.ndarray, env: Any, grid_only: bool) -> np.ndarray:
    return truthful_actions(role, rows.size, grid_only=grid_only)


# Mechanisms whose action layout is not the uniform-price one: their own truthful and
# grid-only actions, (role, rows, env, grid_only) -> (k, action_dim).
OTHER_LAYOUTS: dict[str, Callable[[str, np.ndarray, Any, bool], np.ndarray]] = {
    "p2p": _p2p_actions,  # seed 002: baselines.stackelberg
    "three_tier": tier_reference_actions,  # seed 001: baselines.noncooperative
}


def other_layout(env: Any) -> Callable[[str, np.ndarray, Any, bool], np.ndarray] | None:
    """The reference actions of the env's mechanism if it has its own layout, else None."""
    return OTHER_LAYOUTS.get(env.config.market.mechanism)


class Truthful(RolePolicy):
    """Bid marginal cost, buy up to the grid price, charge a modest service fee (1.05)."""

    name = "truthful"
    observes = False

    def price_only_roles(self, env: Any) -> frozenset[str]:
        """Aggregators and users in the uniform-price layout: :meth:`_quotes`."""
        return frozenset(("agg", "user")) if other_layout(env) is None else frozenset()

    def act_role(self, role: str, rows: np.ndarray, obs: np.ndarray, env: Any) -> np.ndarray:
        """See :class:`baselines.base.RolePolicy`."""
        layout = other_layout(env)
        if layout is not None:
            return layout(role, rows, env, False)
        info = env.public_info()
        k = rows.size
        if role == "mg":
            prices, shares = truthful_mg_offers(rows, info)
            return _assemble(prices, shares, 1.0, _mg_buy_tail(k, 1.0, info), info)
        return self._quotes(role, k, info).copy()

    def _quotes(self, role: str, k: int, info: Any) -> np.ndarray:
        """Aggregator or user actions of ``k`` agents (cached; callers get copies).

        They depend only on the market parameters and the period's grid price, which takes a
        handful of values per day, so they are computed once per (role, k, grid price) and
        market parameters object instead of every period.
        """
        cache: dict[tuple[str, int, float], tuple[Any, np.ndarray]]
        cache = self.__dict__.setdefault("_quote_cache", {})
        key = (role, k, info.grid_buy)
        hit = cache.get(key)
        if hit is not None and hit[0] is info.market:
            return hit[1]
        if role == "agg":
            out = np.empty((k, 2))
            out[:, 0] = from_price(info.market.price_cap, info.market)
            out[:, 1] = from_delta(TRUTHFUL_DELTA, info.market)
        else:
            out = _buyer_actions(k, info.grid_buy, 1.0, info)
        if len(cache) >= 256:  # bounded: a new market object per episode must not grow it
            cache.clear()
        cache[key] = (info.market, out)
        return out


class FixedQuotes(Truthful):
    """Seed 000's "traditional" strategy: fixed high / medium / low quotes.

    The paper sets ``Delta u = 0.2 C_MC`` around the marginal cost at full output ``C_MC``
    (section 5.1), so the three quotes are ``1.2, 1.0, 0.8 x C_MC`` with equal shares of the
    whole bidding volume; with ``S != 3`` segments the quotes are spread evenly over
    ``[0.8, 1.2] x C_MC`` from high to low. Aggregators and users act as :class:`Truthful`.
    """

    name = "fixed_quotes"

    def act_role(self, role: str, rows: np.ndarray, obs: np.ndarray, env: Any) -> np.ndarray:
        """See :class:`baselines.base.RolePolicy`."""
        if role != "mg" or other_layout(env) is not None:
            return super().act_role(role, rows, obs, env)
        info = env.public_info()
        s, f = info.market.n_segments, info.fleet
        mc_max = f.gen_cost_b[rows] + 2.0 * f.gen_cost_a[rows] * f.gen_kw[rows] * env.config.dt_h
        factors = np.linspace(1.2, 0.8, s) if s > 1 else np.ones(1)
        prices = mc_max[:, None] * factors[None, :]
        shares = np.full((rows.size, s), 1.0 / s)
        return _assemble(prices, shares, 1.0, _mg_buy_tail(rows.size, 1.0, info), info)


class GridOnly(RolePolicy):
    """Never trade: offer nothing, bid nothing; everything goes through the grid."""

    name = "grid_only"
    observes = False

    def price_only_roles(self, env: Any) -> frozenset[str]:
        """Every role in the uniform-price layout: the same actions every period."""
        return frozenset(("mg", "agg", "user")) if other_layout(env) is None else frozenset()

    def act_role(self, role: str, rows: np.ndarray, obs: np.ndarray, env: Any) -> np.ndarray:
        """See :class:`baselines.base.RolePolicy`."""
        layout = other_layout(env)
        if layout is not None:
            return layout(role, rows, env, True)
        dim = env.core.action_shapes[role][1]  # known even for a role without members
        out = np.zeros((rows.size, dim))
        if role == "mg":
            s = env.config.market.n_segments
            out[:, 2 * s] = -1.0  # offer_frac = 0
            out[:, 2 * s + 1] = -1.0  # buy_frac = 0
        elif role == "user":
            out[:, 0] = -1.0
        return out


class RandomPolicy(RolePolicy):
    """Uniform random actions in [-1, 1], drawn from the env's ``policy`` stream."""

    name = "random"
    observes = False

    def act_role(self, role: str, rows: np.ndarray, obs: np.ndarray, env: Any) -> np.ndarray:
        """See :class:`baselines.base.RolePolicy`."""
        dim = env.core.action_shapes[role][1]  # known even for a role without members
        rng: np.random.Generator = env.policy_rng
        return rng.uniform(-1.0, 1.0, size=(rows.size, dim))
