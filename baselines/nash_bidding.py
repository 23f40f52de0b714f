"""Seed 000's iterative search for the Nash bidding equilibrium (eqs. 7-9, Fig. 5), as a policy.

Solver (usable alone, :func:`solve_nash_bidding`). Round ``k`` (eq. 8, read as Gauss-Seidel:
the ``S^{t,k+1}_i, S^{t,k}_j`` mix of the garbled formula means that a microgrid answers the
strategies already updated in this round and the others' previous ones): every microgrid in
turn plays a best response over its discrete strategy set (:mod:`mgenv.market.bidding`,
eq. 6), the sets being bounded by the previous round's clearing price ``rho^(k-1)``; ties keep
the current strategy (so that indifference never cycles), else the lowest index wins. After
the round the clearing price is corrected into its preset interval and recorded. The search
stops when a round changes no strategy (eq. 9): then every strategy is a best response to the
others within the sets of ``rho* = rho^(k-1) = rho^k``, a pure Nash equilibrium of the
discrete game (eq. 7) - :func:`unilateral_gains` checks it. Fig. 5 starts from an initial
strategy "by simplex method": here the economic dispatch of the demand at marginal cost
(:func:`~mgenv.market.bidding.competitive_price`); every microgrid starts at its highest
admissible average price not above that price, and ``rho^0`` is the clearing price of this
initial profile (so that a round's bound is always the clearing price of the profile it
answers, and "nothing changed" means a consistent fixed point).

Income (eq. 5's ``W``): the paper writes the bidding income as ``sum_s b_s q_s``; in a
uniform-price auction every accepted kWh is paid the clearing price ``rho``, and a microgrid
that maximised revenue alone would sell at a loss, so the payoff here is the profit
``rho q - C_i(q)`` (what the env rewards). The aggregators bid the demand at any admissible
price (they would pay the grid more), so the clearing price is the dearest accepted quote.

Failure and fallback: if no equilibrium is reached within ``max_iter`` rounds the result has
``converged=False`` and holds the last iterate (the paper: "the current round of bidding for
the electricity market fails"); the policy then bids the traditional quotes instead. The
search is deterministic and a round's outcome depends only on the profile it starts from, so a
profile that comes back proves a cycle: the search stops there, also with ``converged=False``.

Traditional strategy (Fig. 7): the fixed high/medium/low quotes ``(1.2, 1.0, 0.8) x C_MC``
with equal shares (``du = 0.2 C_MC``, section 5.1), :func:`traditional_quotes` - the same
quotes as :class:`baselines.reference.FixedQuotes`. The paper takes microgrid 1 "as the
object": it bids the traditional quotes and the others search their equilibrium against it,
``solve_nash_bidding(game, fixed={0: row_0_of_traditional_quotes})``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from baselines.reference import TRUTHFUL_DELTA, Truthful, _mg_buy_tail
from mgenv.market.batch_clearing import clear_uniform_price_batch
from mgenv.market.bidding import (
    BiddingGame,
    StrategySet,
    clear_period,
    competitive_price,
    cost,
    feasible,
    strategy_set,
)
from mgenv.market.orders import from_price, from_unit

Offer = tuple[np.ndarray, np.ndarray]  # (prices (S,), shares (S,)) of one microgrid
_ANY_PRICE = np.array([math.inf])  # the aggregators' bid limit: every admissible quote


class NashResult(NamedTuple):
    """Outcome of :func:`solve_nash_bidding`.

    Attributes:
        strategy: Strategy index of each microgrid in its set, ``(n_mg,)`` (-1: fixed offer).
        prices: Segment prices, yuan/kWh, ``(n_mg, S)``.
        shares: Segment shares, ``(n_mg, S)`` (a row of zeros: withholds).
        price: Clearing price of the returned profile (corrected), yuan/kWh.
        sold_kwh: Bid-winning volume of each microgrid, kWh, ``(n_mg,)``.
        income: Profit ``rho q - C(q)`` of each microgrid, yuan, ``(n_mg,)``.
        price_trace: Clearing price ``rho^0, rho^1, ...`` after each round, yuan/kWh.
        iterations: Rounds run (the last one confirms that nothing changes when converged).
        converged: Whether a round changed no strategy within ``max_iter`` rounds.
        bound_price: ``rho^(k-1)`` of the last round, which bounds the final strategy sets.
    """

    strategy: np.ndarray
    prices: np.ndarray
    shares: np.ndarray
    price: float
    sold_kwh: np.ndarray
    income: np.ndarray
    price_trace: np.ndarray
    iterations: int
    converged: bool
    bound_price: float


def traditional_quotes(game: BiddingGame) -> tuple[np.ndarray, np.ndarray]:
    """The traditional fixed quotes of every microgrid (section 5.1, Fig. 7).

    Quotes ``C_MC (1 + 0.2 d_s)`` with ``d = linspace(1, -1, S)`` (high, medium, low for
    ``S = 3``) where ``C_MC = b + 2 a Q`` is the marginal cost at the maximum output; equal
    shares; clipped into ``quote_bounds`` as the env's action mapping would.

    Returns:
        ``(prices, shares)``, each ``(n_mg, S)``.
    """
    q, a, b = game.arrays
    s = game.n_segments
    factors = np.linspace(1.2, 0.8, s) if s > 1 else np.ones(1)
    prices = np.clip((b + 2.0 * a * q)[:, None] * factors, *game.quote_bounds)
    return prices, np.full((game.n_mg, s), 1.0 / s)


def best_response_payoffs(
    game: BiddingGame,
    sset: StrategySet,
    i: int,
    candidates: np.ndarray,
    book_price: np.ndarray,
    book_kwh: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Microgrid ``i``'s income for each candidate strategy, the others' offers fixed.

    Args:
        game: The game.
        sset: Its strategy sets.
        i: The deviating microgrid.
        candidates: Strategy indices of ``i`` to evaluate, shape ``(K',)``.
        book_price: Everyone's current segment prices, yuan/kWh, ``(n_mg, S)``.
        book_kwh: Everyone's current segment volumes, kWh, ``(n_mg, S)``.

    Returns:
        ``(income, sold_kwh, price)`` of each candidate, each ``(K',)``: income is profit
        ``rho q - C_i(q)`` in yuan at the corrected clearing price ``rho``.
    """
    q, a, b = game.arrays
    k, s = candidates.size, game.n_segments
    prices = np.broadcast_to(book_price, (k, *book_price.shape)).copy()
    kwh = np.broadcast_to(book_kwh, (k, *book_kwh.shape)).copy()
    prices[:, i] = sset.prices[i, candidates]
    kwh[:, i] = sset.shares[candidates] * q[i]
    res = clear_uniform_price_batch(
        prices.reshape(k, -1), kwh.reshape(k, -1), _ANY_PRICE, np.array([game.demand_kwh])
    )
    lo, hi = game.price_interval
    rho = np.where(res.cleared, np.clip(res.price, lo, hi), 0.0)
    sold = res.awarded_kwh[:, i * s : (i + 1) * s].sum(axis=1)
    return rho * sold - cost(sold, a[i], b[i]), sold, rho


def _initial(sset: StrategySet, rho0: float, given: np.ndarray | None) -> np.ndarray:
    if given is not None:
        return np.asarray(given, dtype=np.int64).copy()
    ok = feasible(sset, rho0)
    ok[:, 0] = False
    avg = np.where(ok, sset.average, -np.inf)
    return np.where(ok.any(axis=1), np.argmax(avg, axis=1), 0).astype(np.int64)


def _book(
    game: BiddingGame, sset: StrategySet, strategy: np.ndarray, fixed: Mapping[int, Offer]
) -> tuple[np.ndarray, np.ndarray]:
    """Segment prices and shares of a profile, ``(n_mg, S)`` each."""
    idx = np.maximum(strategy, 0)
    prices = sset.prices[np.arange(game.n_mg), idx].copy()
    shares = sset.shares[idx].copy()
    for i, (p, x) in fixed.items():
        prices[i], shares[i] = p, x
    return prices, shares


def _clear(game: BiddingGame, prices: np.ndarray, shares: np.ndarray) -> tuple[float, np.ndarray]:
    c = clear_period(
        prices, shares, np.asarray(game.capacity_kwh), game.demand_kwh, game.price_interval
    )
    return c.price, c.sold_kwh


def _round(
    game: BiddingGame,
    sset: StrategySet,
    strategy: np.ndarray,
    free: list[int],
    rho: float,
    fixed: Mapping[int, Offer],
) -> bool:
    """One Gauss-Seidel round of best responses (in place); returns whether anything changed."""
    ok = feasible(sset, rho)
    q = np.asarray(game.capacity_kwh)
    prices, shares = _book(game, sset, strategy, fixed)
    changed = False
    for i in free:  # a loop over solver players, not in the env's per-period hot path
        cand = np.flatnonzero(ok[i])
        income, _, _ = best_response_payoffs(game, sset, i, cand, prices, shares * q[:, None])
        top = float(income.max())
        here = np.flatnonzero(cand == strategy[i])
        tol = 1e-9 * max(1.0, abs(top))
        if here.size and income[here[0]] >= top - tol:
            continue
        strategy[i] = cand[int(np.argmax(income))]
        prices[i], shares[i] = sset.prices[i, strategy[i]], sset.shares[strategy[i]]
        changed = True
    return changed


def solve_nash_bidding(
    game: BiddingGame,
    *,
    fixed: Mapping[int, Offer] | None = None,
    initial_price: float | None = None,
    initial_strategy: np.ndarray | None = None,
    max_iter: int = 60,
    sset: StrategySet | None = None,
) -> NashResult:
    """Iterative search for the Nash bidding equilibrium (see the module docstring).

    Args:
        game: The period's bidding game.
        fixed: Microgrids whose offer is fixed (index -> ``(prices, shares)``), e.g. the
            traditional quotes of microgrid 0; they do not best-respond.
        initial_price: Price from which the initial strategies are chosen, yuan/kWh (default:
            :func:`~mgenv.market.bidding.competitive_price`).
        initial_strategy: Initial strategy indices ``(n_mg,)`` (warm start), default as in
            the module docstring.
        max_iter: Largest number of rounds.
        sset: The game's strategy sets, if already built.

    Returns:
        The :class:`NashResult`.
    """
    fixed = dict(fixed or {})
    sset = strategy_set(game) if sset is None else sset
    lo, hi = game.price_interval
    start = competitive_price(game) if initial_price is None else initial_price
    rho = float(np.clip(start, lo, hi))
    strategy = _initial(sset, rho, initial_strategy)
    for i in fixed:
        strategy[i] = -1
    free = [i for i in range(game.n_mg) if i not in fixed]
    rho, _ = _clear(game, *_book(game, sset, strategy, fixed))
    trace, bound, converged, k = [rho], rho, False, 0
    seen = {strategy.tobytes()}
    while k < max_iter and not converged:
        k += 1
        bound = rho
        converged = not _round(game, sset, strategy, free, rho, fixed)
        rho, _ = _clear(game, *_book(game, sset, strategy, fixed))
        trace.append(rho)
        if not converged and strategy.tobytes() in seen:
            break  # a profile came back: the deterministic search cycles forever
        seen.add(strategy.tobytes())
    prices, shares = _book(game, sset, strategy, fixed)
    price, sold = _clear(game, prices, shares)
    _, a, b = game.arrays
    return NashResult(
        strategy,
        prices,
        shares,
        price,
        sold,
        price * sold - cost(sold, a, b),
        np.asarray(trace),
        k,
        converged,
        bound,
    )


def unilateral_gains(
    game: BiddingGame, result: NashResult, sset: StrategySet | None = None
) -> np.ndarray:
    """Best income gain of each microgrid from a unilateral change within its set (eq. 7).

    The sets are those of the last round (bounded by ``result.bound_price``). Fixed
    microgrids get 0. At an equilibrium every entry is <= 0 (up to rounding).

    Returns:
        Shape ``(n_mg,)``, yuan.
    """
    sset = strategy_set(game) if sset is None else sset
    ok = feasible(sset, result.bound_price)
    q = np.asarray(game.capacity_kwh)
    gains = np.zeros(game.n_mg)
    for i in np.flatnonzero(result.strategy >= 0).tolist():
        cand = np.flatnonzero(ok[i])
        income, _, _ = best_response_payoffs(
            game, sset, i, cand, result.prices, result.shares * q[:, None]
        )
        gains[i] = float(income.max()) - float(result.income[i])
    return gains


def game_from_info(info: Any, **kwargs: Any) -> BiddingGame | None:
    """The period's bidding game as the env's public information describes it.

    Bidding volume: each microgrid's offerable energy (surplus + generator headroom) at its
    fleet cost coefficients (exact for gas-only microgrids as in ``crosschain_aggregators``;
    renewable surplus is costed like gas elsewhere, an approximation). Demand: every buyer's
    need. Quotes and the price interval: ``[price_floor, min(price_cap, grid_buy / 1.05)]``,
    the highest price the truthful aggregators (service coefficient 1.05) let their customers
    pay. Returns None when that interval is empty.
    """
    m = info.market
    hi = min(m.price_cap, info.grid_buy / TRUTHFUL_DELTA)
    if hi <= m.price_floor:
        return None
    f = info.fleet
    return BiddingGame(
        capacity_kwh=tuple((info.surplus + info.gen_headroom).tolist()),
        cost_a=tuple(f.gen_cost_a.tolist()),
        cost_b=tuple(f.gen_cost_b.tolist()),
        demand_kwh=float(info.user_need.sum() + info.deficit.sum()),
        quote_bounds=(m.price_floor, hi),
        price_interval=(m.price_floor, hi),
        n_segments=m.n_segments,
        grid_price=info.grid_buy,
        delta=TRUTHFUL_DELTA,
        **kwargs,
    )


class NashBidding(Truthful):
    """Microgrids bid their Nash equilibrium strategies; aggregators and users act truthfully.

    Every period the policy solves the period's game (:func:`game_from_info`) as
    :func:`solve_nash_bidding` does on its own (so the env reproduces the standalone solver)
    and plays the equilibrium offers of the microgrids it controls (the others are assumed to
    play theirs too). Results are cached per game, so a repeated period costs a dictionary
    look-up. If the search fails, the microgrids bid the traditional quotes.

    Args:
        price_step: Medium-price grid step, yuan/kWh.
        share_resolution: Shares in multiples of ``1 / share_resolution``.
        max_iter: Round cap of the search.
    """

    name = "nash_bidding"

    def __init__(
        self, price_step: float = 0.005, share_resolution: int = 4, max_iter: int = 60
    ) -> None:
        self.options = {"price_step": price_step, "share_resolution": share_resolution}
        self.max_iter = max_iter
        self._cache: dict[BiddingGame, NashResult] = {}

    def solve(self, game: BiddingGame) -> NashResult:
        """The equilibrium of ``game`` (cached)."""
        hit = self._cache.get(game)
        if hit is None:
            hit = solve_nash_bidding(game, max_iter=self.max_iter)
            if len(self._cache) >= 256:
                self._cache.clear()
            self._cache[game] = hit
        return hit

    def act_role(self, role: str, rows: np.ndarray, obs: np.ndarray, env: Any) -> np.ndarray:
        """See :class:`baselines.base.RolePolicy`."""
        if role != "mg" or env.config.market.mechanism != "uniform_price":
            return super().act_role(role, rows, obs, env)
        info = env.public_info()
        game = game_from_info(info, **self.options)
        if game is None:
            return super().act_role(role, rows, obs, env)
        result = self.solve(game)
        prices, shares = result.prices, result.shares
        if not result.converged:
            prices, shares = traditional_quotes(game)
        offer = (shares.sum(axis=1) > 0).astype(np.float64)
        return np.concatenate(
            (
                from_price(prices[rows], info.market),
                from_unit(shares[rows]),
                from_unit(offer[rows])[:, None],
                _mg_buy_tail(rows.size, 1.0, info),
            ),
            axis=1,
        )
