"""Particle swarm optimisation of seed 002's pricing objective, as the paper solved it.

Section 4.2.1: "the particle swarm optimization (PSO) algorithm was used to ... find the
optimal price ... and the optimal benefits of sellers". Each particle is a price in
``[p_s, p_b]``; its sellers best-respond by eq. 9 (closed form), so a particle's fitness is the
price setter's objective (:class:`~mgenv.market.p2p_game.Objective`). The paper prints no
settings; we use the standard global-best PSO with Clerc's constriction coefficients (inertia
0.7298, cognitive and social 1.49618), 30 particles, 100 iterations, velocities limited to a
fifth of the interval. It is the comparison point for :func:`baselines.stackelberg.maximise`,
whose optimum is never worse (tests check it); randomness comes from the generator passed in.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from baselines.stackelberg import Equilibrium, PriceObjective, StackelbergPolicy
from mgenv.market.p2p_game import P2PPeriod, outcome, period_objective

INERTIA, COGNITIVE, SOCIAL = 0.7298, 1.49618, 1.49618


class SwarmResult(NamedTuple):
    """Best price found, its objective and the number of objective evaluations."""

    price: float  # yuan/kWh
    value: float
    evaluations: int


def pso_maximise(
    obj: PriceObjective,
    lo: float,
    hi: float,
    rng: np.random.Generator,
    n_particles: int = 30,
    iterations: int = 100,
) -> SwarmResult:
    """Maximise ``obj`` over ``[lo, hi]`` with a global-best particle swarm.

    Args:
        obj: The objective (vectorised over prices).
        lo: Lowest price, yuan/kWh.
        hi: Highest price, yuan/kWh.
        rng: Source of the swarm's randomness.
        n_particles: Swarm size.
        iterations: Velocity/position updates.
    """
    if n_particles < 1 or iterations < 0:
        raise ValueError(f"n_particles={n_particles} must be >= 1 and iterations={iterations} >= 0")
    vmax = 0.2 * (hi - lo)
    x = rng.uniform(lo, hi, n_particles)
    v = rng.uniform(-vmax, vmax, n_particles)
    best_x, (best_f, _) = x.copy(), obj.value_and_slope(x)
    g = int(np.argmax(best_f))
    for _ in range(iterations):
        r1, r2 = rng.random(n_particles), rng.random(n_particles)
        v = INERTIA * v + COGNITIVE * r1 * (best_x - x) + SOCIAL * r2 * (best_x[g] - x)
        v = np.clip(v, -vmax, vmax)
        x = np.clip(x + v, lo, hi)
        f, _ = obj.value_and_slope(x)
        better = f > best_f
        best_x[better], best_f[better] = x[better], f[better]
        g = int(np.argmax(best_f))
    return SwarmResult(float(best_x[g]), float(best_f[g]), n_particles * (iterations + 1))


def solve_pso(
    period: P2PPeriod,
    rng: np.random.Generator,
    formulation: str = "bargaining",
    n_particles: int = 30,
    iterations: int = 100,
) -> Equilibrium:
    """The paper's PSO solution of one period (compromise price when supply covers demand)."""
    if not period.shortage:
        from baselines.stackelberg import solve_exact

        return solve_exact(period, formulation)
    res = pso_maximise(
        period_objective(period, formulation), period.p_s, period.p_b, rng, n_particles, iterations
    )
    return Equilibrium(res.price, res.value, True, outcome(period, res.price))


class PSOPolicy(StackelbergPolicy):
    """``agg_0`` posts the swarm's price (drawn from the env's policy stream)."""

    name = "stackelberg_pso"
    deterministic = False  # the swarm draws from the env's policy stream every period

    def solve(self, period: P2PPeriod, env: Any) -> Equilibrium:
        """The swarm's solution for ``period``."""
        return solve_pso(period, env.policy_rng, self._formulation(env))
