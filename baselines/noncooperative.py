"""Seed 001's noncooperative game between microgrids, aggregators and large users (section 5).

The period's game, as formalised here (the paper states players, strategies and objectives,
eqs. 29-34, and the flow of Fig. 4, but no solution concept or acceptance rule):

* players and strategies as in :mod:`mgenv.market.three_tier`: aggregator ``j`` posts
  ``beta_j`` (its offer to its microgrids for their electricity, ``p_J->M``) and ``alpha_j``
  (its selling price to its buyers, ``p_J->Y``); microgrids and users post the target values
  at which they accept (``p_M->J``, ``p_Y->J``);
* gains over the no-trade outcome (eqs. 32-34): a selling microgrid gets ``beta x`` for ``x``
  kWh instead of feeding its surplus in at the feed-in price and not running its turbine for
  the rest (fuel ``a q^2 + b q``, eq. 2: ``V_MT = p / (eta L)``); the aggregator keeps
  ``(alpha - beta) Q``; a buyer pays ``alpha`` instead of the grid price;
* quantities: a microgrid offers the energy whose reservation is at most ``beta`` (its
  surplus, and turbine output up to marginal cost ``beta``); a buyer accepts ``alpha`` up to
  its target ``min(grid price, top of its interval)``; ``Q_j = min(supply, demand)``.

Flow (Fig. 4, eqs. 35-37). (a) Every node draws ``n_a`` offers in its interval (eq. 35).
(b) They publish them (eq. 36); every published offer is a candidate contract price of the
link it belongs to (microgrid-aggregator, aggregator-buyer), within both sides' intervals.
(c) On each link the counterparties evaluate their target values (gains) for the candidates:
an offer that leaves either side worse off than not trading is refused; among the acceptable
ones the pair agrees on the one that maximises the product of their gains (each side asks for
a new offer while another acceptable one would make the product larger: the Nash bargaining
outcome of the link); if none is acceptable the link terminates (no trade this period).
(d) An agreement on one link changes the other's gains, so the links renegotiate in turn
(Gauss-Seidel, the aggregator opening with the highest selling price its buyers accept)
until neither price changes: then each link's price is the Nash bargaining price given the
other's, the "Nash-in-Nash" equilibrium of bilateral bargaining in a chain (Horn and Wolinsky,
1988). It is individually rational and Pareto optimal on every link. With linear costs the
prices have a closed form: ``beta = r + (g - r) / 3`` and ``alpha = g - (g - r) / 3`` for sellers of
reservation ``r`` and buyers facing the grid price ``g`` (tests check it).

:func:`solve_tier_game` returns the price combination with its iteration count;
:class:`NoncooperativePolicy` (``baselines.make("noncooperative")``) plays it: aggregators
post ``(beta, alpha)``, microgrids accept from their reservation and offer their economic
volume, buyers accept up to their target value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baselines.base import RolePolicy
from baselines.tier_game import (
    TierEquilibrium,
    TierGame,
    argmax_product,
    game_from_env,
    link_buyer,
    link_mg,
    offer_sets,
    seller_gain,
    supply,
)
from mgenv.market.three_tier import to_action

_EPS = 1e-6  # margin of the acceptance limits against float32 round-off of actions


def solve_tier_game(
    game: TierGame, n_a: int = 20, rng: np.random.Generator | None = None, max_iter: int = 50
) -> TierEquilibrium:
    """The equilibrium price combination of one period (module docstring), per aggregator.

    Args:
        game: The period's public information.
        n_a: Offers each node draws in its interval (eq. 35).
        rng: Generator for the draws (default ``default_rng(0)``).
        max_iter: Most renegotiation rounds; ``converged`` says whether prices settled.

    Returns:
        The :class:`TierEquilibrium`; ``iterations`` counts the rounds, the last one being the
        round that changed nothing when converged.
    """
    c1, c2 = offer_sets(game, n_a, rng if rng is not None else np.random.default_rng(0))
    na = game.n_agg
    # the aggregators open with the highest selling price their buyers would accept
    top = np.full(na, -np.inf)
    np.maximum.at(top, game.buyer_agg, game.buyer_target)
    k2 = np.maximum(np.searchsorted(c2, top, side="right") - 1, 0)
    k1 = np.zeros(na, dtype=np.int64)
    ok1 = ok2 = np.zeros(na, dtype=bool)
    converged, it = False, 0
    q1 = supply(game, c1[None, :])  # the microgrids' volumes at every offer
    for it in range(1, max_iter + 1):
        u, v, q, _ = link_mg(game, c1, c2[k2], q1)
        new1, ok1 = argmax_product(u, v, q)
        v2, w, q2 = link_buyer(game, c1[new1], c2)
        new2, ok2 = argmax_product(v2, w, q2)
        if np.array_equal(new1, k1) and np.array_equal(new2, k2) and it > 1:
            converged = True
            break
        k1, k2 = new1, new2
    return _equilibrium(game, c1[k1], c2[k2], ok1 & ok2, it, converged)


def _equilibrium(
    game: TierGame,
    beta: np.ndarray,
    alpha: np.ndarray,
    agreed: np.ndarray,
    it: int,
    converged: bool,
) -> TierEquilibrium:
    """Quantities and gains at the agreed prices (no trade where a link terminated)."""
    na, sa, ba = game.n_agg, game.seller_agg, game.buyer_agg
    beta_i = beta[sa][:, None]
    offered = np.where(agreed[sa], supply(game, beta_i)[:, 0], 0.0)
    s_tot = np.bincount(sa, weights=offered, minlength=na)
    accept = (alpha[ba] <= game.buyer_target) & agreed[ba]
    dem = np.bincount(ba, weights=game.need * accept, minlength=na)
    q = np.minimum(s_tot, dem)
    sold = offered * np.divide(q, s_tot, out=np.zeros(na), where=s_tot > 0)[sa]
    bought = game.need * accept * np.divide(q, dem, out=np.zeros(na), where=dem > 0)[ba]
    gain = seller_gain(game, beta_i, sold[:, None])[:, 0]
    mc = game.cost_b + 2.0 * game.cost_a * (game.self_gen + np.maximum(offered - game.surplus, 0.0))
    asks = np.where(offered > game.surplus + 1e-12, mc, game.feed_in)
    nan = np.full(na, np.nan)
    return TierEquilibrium(
        price_mg=np.where(agreed, beta, nan),
        price_buyer=np.where(agreed, alpha, nan),
        quantity=q,
        sold=sold,
        offered=offered,
        asks=asks,
        bids=game.buyer_target,
        gain_mg=gain,
        gain_agg=(alpha - beta) * q,
        gain_buyer=(game.grid_buy - alpha[ba]) * bought,
        iterations=it,
        converged=converged,
    )


def _buyer_cols(k: int, target: np.ndarray, low: float, top: float) -> tuple[np.ndarray, ...]:
    """``(buy_frac, limit)`` actions of buyers with target values ``target``.

    Buy everything up to the target value; nothing when the target lies below the interval
    (the grid is cheaper than any admissible price).
    """
    frac = np.where(target >= low, 1.0, -1.0) * np.ones(k)
    return frac, to_action(target + _EPS, low, top)


def tier_actions(
    role: str, rows: np.ndarray, game: TierGame, eq: TierEquilibrium | None, offerable: np.ndarray
) -> np.ndarray:
    """Actions of ``rows`` of ``role`` in the ``"three_tier"`` layout.

    With an equilibrium ``eq``: its prices, volumes and acceptance limits. With ``eq=None``:
    never trade (sell and buy nothing; aggregators post prices nobody accepts).
    """
    b, k, nm = game.bounds, rows.size, game.surplus.size
    out = np.zeros((k, 4 if role == "mg" else 2))
    if role == "agg":
        agreed = np.zeros(k, bool) if eq is None else np.isfinite(eq.price_mg[rows])
        beta = np.where(agreed, np.nan_to_num(eq.price_mg[rows]) if eq else 0.0, b["agg"][0])
        alpha = np.where(agreed, np.nan_to_num(eq.price_buyer[rows]) if eq else 0.0, b["agg"][1])
        return np.stack((to_action(beta, *b["agg"]), to_action(alpha, *b["agg"])), axis=1)
    lo, hi = b[role]
    buyers = rows if role == "mg" else nm + rows
    frac, limit = _buyer_cols(k, game.buyer_target[buyers], lo, hi)
    if eq is None:
        frac = -np.ones(k)
    if role == "user":
        return np.stack((limit, frac), axis=1)
    ask = np.full(k, hi) if eq is None else eq.asks[rows] - _EPS
    share = (
        np.zeros(k)
        if eq is None
        else np.divide(
            eq.offered[rows], offerable[rows], out=np.zeros(k), where=offerable[rows] > 0
        )
    )
    out[:, 0], out[:, 1] = to_action(ask, lo, hi), 2.0 * np.clip(share, 0.0, 1.0) - 1.0
    out[:, 2], out[:, 3] = frac, limit
    return out


def truthful_equilibrium(game: TierGame, fee: float) -> TierEquilibrium:
    """Reference strategy of the ``truthful`` baseline in the ``"three_tier"`` market (no game).

    Microgrids offer everything at marginal cost; aggregators pass energy through, selling at
    the grid price (within their interval) and offering ``1 / fee`` of it.
    """
    lo, hi = game.bounds["agg"]
    alpha = np.full(game.n_agg, min(max(game.grid_buy, lo), hi))
    beta = np.maximum(alpha / fee, lo)
    offered = game.surplus + game.headroom
    mc = game.cost_b + 2.0 * game.cost_a * (game.self_gen + game.headroom)
    asks = np.where(game.headroom > 0, mc, game.feed_in)
    zeros = np.zeros(game.n_agg)
    return TierEquilibrium(
        beta,
        alpha,
        zeros,
        0.0 * offered,
        offered,
        asks,
        game.buyer_target,
        0.0 * offered,
        zeros,
        0.0 * game.need,
        0,
        True,
    )


class NoncooperativePolicy(RolePolicy):
    """Plays :func:`solve_tier_game`'s equilibrium of each period (``"noncooperative"``).

    Reads public information only; the offers of eq. 35 are drawn from a generator seeded by
    ``(seed, period)``, so runs are reproducible. One solve per period, shared by the roles.
    """

    name = "noncooperative"
    observes = False

    def __init__(self, n_a: int = 20, seed: int = 0, max_iter: int = 50) -> None:
        self.n_a, self.seed, self.max_iter = n_a, seed, max_iter
        self._key: tuple[Any, ...] | None = None
        self._cached: tuple[TierGame, TierEquilibrium] | None = None

    def solve(self, env: Any) -> tuple[TierGame, TierEquilibrium]:
        """The current period's game and equilibrium (cached per period)."""
        game = game_from_env(env)
        period = int(getattr(getattr(env, "core", None), "t", 0))
        key = (
            id(env),
            period,
            game.grid_buy,
            game.surplus.tobytes(),
            game.headroom.tobytes(),
            game.need.tobytes(),
        )
        if key != self._key or self._cached is None:
            rng = np.random.default_rng([self.seed, period])
            self._cached = (game, solve_tier_game(game, self.n_a, rng, self.max_iter))
            self._key = key
        return self._cached

    def act_role(self, role: str, rows: np.ndarray, obs: np.ndarray, env: Any) -> np.ndarray:
        """See :class:`baselines.base.RolePolicy`."""
        if env.config.market.mechanism != "three_tier":
            raise ValueError(
                "the noncooperative baseline plays the 'three_tier' market; got "
                f"mechanism={env.config.market.mechanism!r}"
            )
        game, eq = self.solve(env)
        return tier_actions(role, rows, game, eq, game.surplus + game.headroom)


def tier_reference_actions(role: str, rows: np.ndarray, env: Any, grid_only: bool) -> np.ndarray:
    """Actions of the ``truthful`` (fee 1.05) or ``grid_only`` baselines in ``"three_tier"``.

    Called by :mod:`baselines.reference`.
    """
    game = game_from_env(env)
    eq = None if grid_only else truthful_equilibrium(game, 1.05)
    return tier_actions(role, rows, game, eq, game.surplus + game.headroom)


__all__ = [
    "NoncooperativePolicy",
    "TierEquilibrium",
    "TierGame",
    "game_from_env",
    "link_buyer",
    "link_mg",
    "offer_sets",
    "solve_tier_game",
    "tier_actions",
    "tier_reference_actions",
]
