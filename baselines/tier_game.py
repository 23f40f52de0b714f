"""Seed 001's three-tier game of one period: public information, supply, gains, links.

The building blocks of :mod:`baselines.noncooperative` (its module docstring states the game):
:class:`TierGame` (what every node knows), the microgrids' economic supply and gains, the two
links' gains for candidate prices, and the published offer sets (eqs. 35-36).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from mgenv.market.three_tier import intervals


class TierGame(NamedTuple):
    """One period's public information (complete-information game, section 5)."""

    surplus: np.ndarray  # (n_mg,) renewable surplus, kWh
    headroom: np.ndarray  # (n_mg,) turbine energy beyond own use, kWh
    self_gen: np.ndarray  # (n_mg,) turbine output for own use, kWh
    cost_a: np.ndarray  # (n_mg,) yuan/kWh^2
    cost_b: np.ndarray  # (n_mg,) yuan/kWh
    need: np.ndarray  # (n_b,) energy each buyer must buy (deficit mgs then users), kWh
    buyer_agg: np.ndarray  # (n_b,) home aggregator of each buyer
    buyer_top: np.ndarray  # (n_b,) top of each buyer's price interval, yuan/kWh
    n_agg: int
    grid_buy: float  # yuan/kWh
    feed_in: float  # yuan/kWh
    bounds: dict[str, tuple[float, float]]  # price interval per role

    @property
    def seller_agg(self) -> np.ndarray:
        """Home aggregator of each microgrid, ``(n_mg,)``."""
        return np.arange(self.surplus.size) % self.n_agg

    @property
    def buyer_target(self) -> np.ndarray:
        """Highest price each buyer accepts: ``min(grid price, top of its interval)``."""
        return np.asarray(np.minimum(self.grid_buy, self.buyer_top))


class TierEquilibrium(NamedTuple):
    """Outcome of :func:`solve_tier_game` (per aggregator unless stated)."""

    price_mg: np.ndarray  # beta, p_J->M, yuan/kWh (nan where no agreement)
    price_buyer: np.ndarray  # alpha, p_J->Y, yuan/kWh (nan where no agreement)
    quantity: np.ndarray  # kWh through each aggregator
    sold: np.ndarray  # (n_mg,) kWh each microgrid sells
    offered: np.ndarray  # (n_mg,) its economic volume at beta
    asks: np.ndarray  # (n_mg,) p_M->J: reservation of the last offered kWh, yuan/kWh
    bids: np.ndarray  # (n_b,) p_Y->J: the buyers' target values, yuan/kWh
    gain_mg: np.ndarray  # (n_mg,) yuan over not trading
    gain_agg: np.ndarray  # yuan
    gain_buyer: np.ndarray  # (n_b,) yuan over buying from the grid
    iterations: int
    converged: bool


def game_from_env(env: Any) -> TierGame:
    """The current period of a ``"three_tier"`` env as a :class:`TierGame` (public info)."""
    info, cfg = env.public_info(), env.config
    f = info.fleet
    bounds = intervals(info.market)
    nm, nu = cfg.n_microgrids, cfg.n_users
    top = np.concatenate((np.full(nm, bounds["mg"][1]), np.full(nu, bounds["user"][1])))
    return TierGame(
        surplus=np.asarray(info.surplus, dtype=np.float64),
        headroom=np.asarray(info.gen_headroom, dtype=np.float64),
        self_gen=np.where(info.gen_headroom > 0, f.gen_kw * cfg.dt_h - info.gen_headroom, 0.0),
        cost_a=f.gen_cost_a,
        cost_b=f.gen_cost_b,
        need=np.concatenate((info.deficit, info.user_need)),
        buyer_agg=np.asarray(info.buyer_agg, dtype=np.int64),
        buyer_top=top,
        n_agg=cfg.n_aggregators,
        grid_buy=float(info.grid_buy),
        feed_in=float(info.feed_in),
        bounds=bounds,
    )


def supply(game: TierGame, beta: np.ndarray) -> np.ndarray:
    """Economic volume of each microgrid at offer ``beta``, kWh.

    The surplus (reservation: the feed-in price) and the turbine output up to marginal cost
    ``beta``: ``b + 2 a (g + q) <= beta`` beyond its own use ``g``.

    Args:
        game: The period.
        beta: Offers broadcastable to ``(n_mg, K)``: ``(1, K)`` candidates for everyone or
            ``(n_mg, 1)`` one offer per microgrid.

    Returns:
        ``(n_mg, K)`` kWh.
    """
    a, b, g, h = (x[:, None] for x in (game.cost_a, game.cost_b, game.self_gen, game.headroom))
    beta = np.broadcast_to(beta, np.broadcast_shapes(beta.shape, a.shape))
    lin = np.where(b <= beta, h, 0.0)
    quad = np.divide(beta - b, 2.0 * a, out=np.zeros_like(lin), where=a > 0) - g
    extra = np.where(a > 0, np.clip(quad, 0.0, h), lin)
    return np.asarray(np.where(beta >= game.feed_in, game.surplus[:, None], 0.0) + extra)


def seller_gain(game: TierGame, beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gain of each microgrid selling ``x`` (n_mg, K) at ``beta`` over not selling, yuan.

    ``beta`` broadcasts against ``x``. The surplus goes first (it would be fed in), then extra
    turbine output, whose fuel is ``a q^2 + b q`` (eq. 2).
    """
    s, a, b, g = (v[:, None] for v in (game.surplus, game.cost_a, game.cost_b, game.self_gen))
    gen = np.maximum(x - s, 0.0)
    fuel = a * ((g + gen) ** 2 - g**2) + b * gen
    return np.asarray(beta * x - game.feed_in * np.minimum(x, s) - fuel)


def _members(group: np.ndarray, n: int) -> np.ndarray:
    """``(n, len(group))`` 0/1 matrix: row ``j`` marks the members of group ``j``."""
    return np.asarray(group[None, :] == np.arange(n)[:, None], dtype=np.float64)


def _demand(game: TierGame, alpha: np.ndarray) -> np.ndarray:
    """Accepted demand per aggregator at its own ``alpha`` (n_agg,), kWh."""
    accept = alpha[game.buyer_agg] <= game.buyer_target
    return np.bincount(game.buyer_agg, weights=game.need * accept, minlength=game.n_agg)


def argmax_product(u: np.ndarray, v: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the acceptable candidate with the largest gain product, and whether any is.

    Acceptable: both gains >= 0 and something traded.
    """
    ok = (u >= 0.0) & (v >= 0.0) & (q > 1e-12)
    score = np.where(ok, u * v, -np.inf)
    return np.argmax(score, axis=1), np.asarray(ok.any(axis=1))


def link_mg(
    game: TierGame, beta: np.ndarray, alpha: np.ndarray, q_i: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """Gains on the microgrid-aggregator link for candidate offers ``beta`` (K,).

    Given the aggregators' selling prices ``alpha`` (n_agg,): ``(U, V, Q)``, each
    ``(n_agg, K)``, and the sales ``x`` (n_mg, K) (pro rata when supply exceeds demand).
    ``q_i``: ``supply(game, beta[None, :])`` if already computed.
    """
    sa = game.seller_agg
    q_i = supply(game, beta[None, :]) if q_i is None else q_i
    sel = _members(sa, game.n_agg)
    s_tot = sel @ q_i
    qty = np.minimum(s_tot, _demand(game, alpha)[:, None])
    ratio = np.divide(qty, s_tot, out=np.zeros_like(qty), where=s_tot > 0)
    x = q_i * ratio[sa]
    u = sel @ seller_gain(game, beta[None, :], x)
    return u, (alpha[:, None] - beta[None, :]) * qty, qty, x


def link_buyer(game: TierGame, beta: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, ...]:
    """Gains on the aggregator-buyer link for candidate prices ``alpha`` (K,).

    Given the aggregators' offers ``beta`` (n_agg,): ``(V, W, Q)``, each ``(n_agg, K)``.
    """
    sa, ba = game.seller_agg, game.buyer_agg
    own = supply(game, beta[sa][:, None])[:, 0]
    s_tot = np.bincount(sa, weights=own, minlength=game.n_agg)
    accept = alpha[None, :] <= game.buyer_target[:, None]
    d_tot = _members(ba, game.n_agg) @ (game.need[:, None] * accept)
    qty = np.minimum(s_tot[:, None], d_tot)
    return (alpha[None, :] - beta[:, None]) * qty, (game.grid_buy - alpha[None, :]) * qty, qty


def offer_sets(game: TierGame, n_a: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Published candidate prices of the two links (eqs. 35-36), sorted.

    Every microgrid and aggregator draws ``n_a`` offers in its interval for the first link;
    every aggregator and buyer ``n_a`` for the second; candidates are kept within both sides'
    intervals (clipped).
    """
    b = game.bounds
    nm, nb, na = game.surplus.size, game.need.size, game.n_agg
    link1 = np.concatenate(
        (rng.uniform(*b["mg"], size=n_a * nm), rng.uniform(*b["agg"], size=n_a * na))
    )
    low = np.repeat(np.where(np.arange(nb) < nm, b["mg"][0], b["user"][0]), n_a)
    top = np.repeat(game.buyer_top, n_a)
    link2 = np.concatenate(
        (rng.uniform(*b["agg"], size=n_a * na), low + rng.uniform(size=n_a * nb) * (top - low))
    )
    lo1, hi1 = max(b["mg"][0], b["agg"][0]), min(b["mg"][1], b["agg"][1])
    lo2 = max(b["agg"][0], min(b["mg"][0], b["user"][0]))
    hi2 = min(b["agg"][1], float(game.buyer_top.max()))
    return np.unique(np.clip(link1, lo1, hi1)), np.unique(np.clip(link2, lo2, hi2))
