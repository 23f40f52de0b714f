"""Seed 002's pricing game solved exactly, with complete or incomplete information (baselines).

:func:`solve_exact` computes the equilibrium of one period (sellers best-respond by eq. 9,
the price setter optimises the formulation's objective, :mod:`mgenv.market.p2p_game`): a
bounded one-dimensional search over the breakpoints of the sellers' clipped best responses.
Between consecutive breakpoints (and the price where supply meets demand) every quantity is a
closed form in ``p``, so the objective is smooth there; on each piece its exact derivative is
scanned at ``n_scan`` points and every sign change from + to - is bisected to machine
precision. The best of these stationary points, the scan points and the piece ends is the
optimum. For ``"literal"`` the objective is concave on each piece (one stationary point,
``p = sqrt(p_b Lambda / A)``, which the tests check); for ``"bargaining"`` the scan guards
against pieces where it is not.

:func:`solve_bayesian` is the Bayesian-Nash variant (section 3.1.1, eq. 2): the price setter
knows only a prior over each seller's type ``theta`` (its lambda is ``theta`` times the
calibrated one; independent across sellers); each seller best-responds with its true type; the
price maximises the expected objective over type profiles (all of them when there are at most
``max_profiles``, else ``max_profiles`` drawn from the given generator).

Policies (``baselines.make``): ``"stackelberg"`` posts the exact equilibrium price as ``agg_0``
and plays the prosumers truthfully (declared load = forecast, everything published);
``"bayes_nash"`` posts the Bayesian price. The formulation is ``MarketParams.p2p_formulation``.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple, Protocol

import numpy as np

from baselines.base import RolePolicy
from mgenv.market.p2p import price_to_action
from mgenv.market.p2p_game import (
    FORMULATIONS,
    Array,
    Objective,
    Outcome,
    P2PPeriod,
    outcome,
    period_objective,
)

N_SCAN = 32
BISECTIONS = 56  # halvings: 0.08 yuan/kWh / 2**56 is below one ulp of a price
DEFAULT_PRIOR = ((0.8, 1.0, 1.25), (0.25, 0.5, 0.25))  # (theta values, probabilities)


class PriceObjective(Protocol):
    """What the solvers need from an objective (:class:`~mgenv.market.p2p_game.Objective`)."""

    @property
    def breakpoints(self) -> Array:
        """Prices where the formula changes, sorted."""
        ...

    def value_and_slope(self, p: Array) -> tuple[Array, Array]:
        """``(J(p), dJ/dp)`` for prices of any shape."""
        ...


class Equilibrium(NamedTuple):
    """The solved period."""

    price: float  # yuan/kWh
    value: float  # the price setter's objective at the price
    shortage: bool  # False: supply covers demand and the compromise price applies
    outcome: Outcome  # trading at the price with the sellers' true types


def _bisect(obj: PriceObjective, lo: Array, hi: Array) -> Array:
    """Bisect brackets whose left end rises (or is -inf) and right end falls (or is -inf)."""
    v_lo, _ = obj.value_and_slope(lo)
    left_dead = np.isneginf(v_lo)
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        v, s = obj.value_and_slope(mid)
        go_right = np.where(np.isneginf(v), left_dead, s > 0)
        lo, hi = np.where(go_right, mid, lo), np.where(go_right, hi, mid)
    return 0.5 * (lo + hi)


def maximise(
    obj: PriceObjective, lo: float, hi: float, n_scan: int = N_SCAN
) -> tuple[float, float]:
    """Global maximum of a piecewise-smooth objective on ``[lo, hi]``: ``(price, value)``.

    Args:
        obj: The objective.
        lo: Lowest price, yuan/kWh.
        hi: Highest price, yuan/kWh.
        n_scan: Derivative scan points per piece.
    """
    pts = obj.breakpoints
    edges = np.concatenate(([lo], pts[(pts > lo) & (pts < hi)], [hi]))
    width = np.diff(edges)[:, None]
    u = np.concatenate(([1e-9], np.arange(1, n_scan + 1) / (n_scan + 1), [1.0 - 1e-9]))
    grid = edges[:-1, None] + u[None, :] * width  # (pieces, n_scan + 2), inside each piece
    val, slope = obj.value_and_slope(grid)
    dead = np.isneginf(val)
    rising = (slope > 0) | dead
    falling = (slope < 0) | dead
    br = rising[:, :-1] & falling[:, 1:] & ~(dead[:, :-1] & dead[:, 1:])
    roots = _bisect(obj, grid[:, :-1][br], grid[:, 1:][br])
    cand = np.concatenate((edges, grid.ravel(), roots))
    values, _ = obj.value_and_slope(cand)
    k = int(np.argmax(values))
    return float(cand[k]), float(values[k])


def solve_exact(period: P2PPeriod, formulation: str = "bargaining") -> Equilibrium:
    """Exact equilibrium price of one period (module docstring).

    Args:
        period: The period's data.
        formulation: ``"bargaining"`` (default) or ``"literal"``.

    Returns:
        The :class:`Equilibrium`; the compromise price when supply covers demand.
    """
    if not period.shortage:
        p = period.compromise_price
        obj = period_objective(period, formulation)
        return Equilibrium(p, float(obj.value_and_slope(np.array(p))[0]), False, outcome(period, p))
    price, value = maximise(period_objective(period, formulation), period.p_s, period.p_b)
    return Equilibrium(price, value, True, outcome(period, price))


class ExpectedObjective:
    """The formulation's objective over expected gains across type profiles.

    ``literal``: ``E[G_b]``; ``bargaining``: ``w_b ln E[G_b] + w_s ln E[G_s]``, a Nash
    bargaining over the groups' expected gains (a profile in which nobody trades at any price
    adds nothing, instead of making every price ``-inf``).
    """

    def __init__(self, objectives: list[Objective], probs: Array) -> None:
        self.objectives, self.probs = objectives, np.asarray(probs, np.float64)

    @property
    def breakpoints(self) -> Array:
        """Union of the profiles' breakpoints, sorted."""
        return np.unique(np.concatenate([o.breakpoints for o in self.objectives]))

    def value_and_slope(self, p: Array) -> tuple[Array, Array]:
        """``(J, dJ/dp)`` of the expected gains, shape of ``p``."""
        p = np.asarray(p, np.float64)
        total = [np.zeros(p.shape) for _ in range(4)]
        for w, o in zip(self.probs.tolist(), self.objectives, strict=True):
            for acc, g in zip(total, o.gains(p), strict=True):
                acc += w * g
        return self.objectives[0].combine(*total)


def type_profiles(
    n_sellers: int,
    prior: tuple[tuple[float, ...], tuple[float, ...]],
    max_profiles: int = 729,
    rng: np.random.Generator | None = None,
) -> tuple[Array, Array]:
    """Sellers' type profiles and their probabilities: ``(thetas (K, n_s), probs (K,))``.

    All ``len(values) ** n_sellers`` profiles if at most ``max_profiles``, else
    ``max_profiles`` independent draws from ``rng`` with equal weights.

    Raises:
        ValueError: For a bad prior, or if sampling is needed and ``rng`` is None.
    """
    values, probs = np.asarray(prior[0], np.float64), np.asarray(prior[1], np.float64)
    if (
        values.shape != probs.shape
        or values.size == 0
        or np.any(values <= 0)
        or np.any(probs < 0)
        or abs(probs.sum() - 1.0) > 1e-9
    ):
        raise ValueError(
            f"prior={prior!r}: give positive type values and probabilities "
            "summing to 1, of one length"
        )
    if values.size**n_sellers <= max_profiles:
        idx = np.array(
            list(itertools.product(range(values.size), repeat=n_sellers)), dtype=np.intp
        ).reshape(-1, n_sellers)
        return values[idx], probs[idx].prod(axis=1)
    if rng is None:
        raise ValueError(
            f"{values.size}**{n_sellers} type profiles exceed max_profiles="
            f"{max_profiles}: pass rng to sample them"
        )
    idx = rng.choice(values.size, size=(max_profiles, n_sellers), p=probs)
    return values[idx], np.full(max_profiles, 1.0 / max_profiles)


def solve_bayesian(
    period: P2PPeriod,
    formulation: str = "bargaining",
    prior: tuple[tuple[float, ...], tuple[float, ...]] = DEFAULT_PRIOR,
    max_profiles: int = 729,
    rng: np.random.Generator | None = None,
) -> Equilibrium:
    """Bayesian-Nash price: maximise the expected objective over the sellers' types (eq. 2).

    The outcome is evaluated with the sellers' true lambda (the calibration, ``theta = 1``).
    """
    if not period.shortage:
        return solve_exact(period, formulation)
    s = period.sellers
    thetas, probs = type_profiles(int(s.sum()), prior, max_profiles, rng)
    objs = []
    for theta in thetas:
        lam = period.lam.copy()
        lam[s] *= theta
        objs.append(period_objective(period, formulation, lam))
    price, value = maximise(ExpectedObjective(objs, probs), period.p_s, period.p_b)
    return Equilibrium(price, value, True, outcome(period, price))


def env_period(env: Any) -> P2PPeriod:
    """The current period of a ``"p2p"`` env as a :class:`P2PPeriod` (public forecasts).

    Microgrids are the users (PV = load + offerable - deficit), large users buyers without
    PV; unqualified participants sit out (their PV is set to their load).
    """
    info = env.public_info()
    load = getattr(info, "load_forecast", None)
    if load is None:  # the core's PublicInfo does not carry the load forecast (yet)
        core = env.core
        load = core.profiles.load_forecast[min(core.t, env.config.horizon - 1)]
    mg_load = np.asarray(load, np.float64)
    pv = np.concatenate(
        (
            mg_load + info.surplus + info.gen_headroom - info.deficit,
            np.zeros(info.user_need.shape[0]),
        )
    )
    all_load = np.concatenate((mg_load, info.user_need))
    nm = mg_load.size
    for name in env.config.market.p2p_unqualified:
        role, idx = name.split("_")
        k = int(idx) + (0 if role == "mg" else nm)
        pv[k] = all_load[k]
    return P2PPeriod(
        np.maximum(pv, 0.0), all_load, info.feed_in, info.grid_buy, env.config.market.p2p_lambda_ref
    )


def truthful_actions(role: str, k: int, grid_only: bool = False) -> Array:
    """Prosumers/users: truthful type, publish all (or nothing); price setter: compromise."""
    if role == "mg":
        return np.tile([0.0, -1.0 if grid_only else 1.0], (k, 1))
    if role == "user":
        return np.full((k, 1), -1.0 if grid_only else 1.0)
    return np.zeros((k, 1))


class StackelbergPolicy(RolePolicy):
    """``agg_0`` posts the exact equilibrium price; prosumers and users play truthfully."""

    name = "stackelberg"
    deterministic = True  # same period, same price: solutions are memoised
    CACHE_SIZE = 4096

    def __init__(self, formulation: str | None = None) -> None:
        if formulation is not None and formulation not in FORMULATIONS:
            raise ValueError(f"formulation={formulation!r} is not one of {list(FORMULATIONS)}")
        self.formulation = formulation
        self._cache: dict[bytes, float] = {}

    def price(self, period: P2PPeriod, env: Any) -> float:
        """The posted price for ``period``, yuan/kWh (memoised if :attr:`deterministic`)."""
        if not self.deterministic:
            return self.solve(period, env).price
        key = b"".join(
            (
                period.pv_kwh.tobytes(),
                period.load_kwh.tobytes(),
                np.array([period.p_s, period.p_b, period.lambda_ref]).tobytes(),
                self._formulation(env).encode(),
            )
        )
        if key not in self._cache:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = self.solve(period, env).price
        return self._cache[key]

    def solve(self, period: P2PPeriod, env: Any) -> Equilibrium:
        """The price setter's solution for ``period``."""
        return solve_exact(period, self._formulation(env))

    def _formulation(self, env: Any) -> str:
        return self.formulation or str(env.config.market.p2p_formulation)

    def act_role(self, role: str, rows: np.ndarray, obs: np.ndarray, env: Any) -> np.ndarray:
        """See :class:`baselines.base.RolePolicy`."""
        if env.config.market.mechanism != "p2p":
            raise ValueError(
                f"baseline {self.name!r} plays the 'p2p' mechanism, not "
                f"{env.config.market.mechanism!r}"
            )
        if role != "agg":
            return truthful_actions(role, rows.size)
        period = env_period(env)
        return np.full(
            (rows.size, 1), price_to_action(self.price(period, env), period.p_s, period.p_b)
        )


class BayesNashPolicy(StackelbergPolicy):
    """``agg_0`` posts the Bayesian-Nash price under a prior over the sellers' types."""

    name = "bayes_nash"

    def __init__(
        self,
        formulation: str | None = None,
        prior: tuple[tuple[float, ...], tuple[float, ...]] = DEFAULT_PRIOR,
        max_profiles: int = 729,
    ) -> None:
        super().__init__(formulation)
        self.prior, self.max_profiles = prior, max_profiles
        # sampled type profiles draw from the env's policy stream: never memoise those
        self.deterministic = False
        type_profiles(1, prior)  # validate the prior now

    def solve(self, period: P2PPeriod, env: Any) -> Equilibrium:
        """Bayesian solution; samples profiles from the env's policy stream if needed."""
        return solve_bayesian(
            period, self._formulation(env), self.prior, self.max_profiles, env.policy_rng
        )
