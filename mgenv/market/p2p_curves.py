"""Sellers' eq. 9 best responses in closed form, and the pro-rata allocation (seed 002).

Helpers of :mod:`mgenv.market.p2p_game` (see it for the model and the readings chosen).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def calibrate_lambda(load_kwh: Array, p_ref: float) -> Array:
    """``lambda = p_ref (1 + e_L)``: the printed load is the eq. 9 optimum at ``p_ref``."""
    return np.asarray(p_ref * (1.0 + np.asarray(load_kwh, dtype=np.float64)))


def best_response(lam: Array, gen_kwh: Array, price: Array | float) -> Array:
    """Sellers' consumption maximising eq. 9: ``clip(lambda / p - 1, 0, e_DG)``, kWh.

    Broadcasts: ``lam`` and ``gen_kwh`` of shape ``(n,)`` with ``price`` a scalar, ``(n,)`` (a
    price per seller) or ``(m, 1)`` (``m`` prices, result ``(m, n)``).
    """
    return np.asarray(np.minimum(np.maximum(lam / price - 1.0, 0.0), gen_kwh))


def allocate(supply_kwh: Array, demand_kwh: Array) -> tuple[Array, Array]:
    """Pro-rata allocation (eq. 13) of ``Q = min(S, D)`` on both sides.

    Args:
        supply_kwh: What each seller offers, kWh, shape ``(n,)`` (zero for non-sellers).
        demand_kwh: What each buyer needs, kWh, shape ``(n,)`` (zero for non-buyers).

    Returns:
        ``(sold, bought)``, kWh, each of shape ``(n,)``; ``sold.sum() == bought.sum() == Q``.
    """
    s_tot, d_tot = float(supply_kwh.sum()), float(demand_kwh.sum())
    q = min(s_tot, d_tot)
    if q <= 0.0:
        return np.zeros_like(supply_kwh), np.zeros_like(demand_kwh)
    sold = supply_kwh * (q / s_tot) if s_tot > q else supply_kwh.copy()
    bought = demand_kwh * (q / d_tot) if d_tot > q else demand_kwh.copy()
    return sold, bought


class SellerCurves:
    """Closed-form supply and utility of a set of sellers, piecewise between breakpoints.

    Seller ``i`` supplies 0 for ``p <= lo_i = lambda_i / (1 + e_DG,i)``, ``e_DG,i + 1 -
    lambda_i / p`` between, ``e_DG,i`` for ``p >= hi_i = lambda_i``. Per price the aggregates
    ``A = sum_int (e_DG + 1) + sum_full e_DG``, ``Lambda = sum_int lambda`` and ``K`` come from
    sorted breakpoints and cumulative sums, so ``m`` prices cost ``O((m + n) log n)``.

    Args:
        lam: Sellers' lambda, yuan, shape ``(n,)``, positive.
        gen_kwh: Sellers' PV output ``e_DG``, kWh, shape ``(n,)``, positive.
    """

    def __init__(self, lam: Array, gen_kwh: Array) -> None:
        lam, gen = np.asarray(lam, dtype=np.float64), np.asarray(gen_kwh, dtype=np.float64)
        keep = (lam > 0.0) & (gen > 0.0)
        lam, gen = lam[keep], gen[keep]
        self.lam, self.gen = lam, gen
        lo, hi = lam / (1.0 + gen), lam
        self._lo_order, self._hi_order = np.argsort(lo), np.argsort(hi)
        self.lo, self.hi = lo[self._lo_order], hi[self._hi_order]
        zero_u = lam * np.log1p(gen)  # utility of a seller consuming all its PV
        interior_k = lam * np.log(np.where(lam > 0, lam, 1.0)) - lam
        self.total_zero_u = float(zero_u.sum())
        self._lo_sums = self._cumsums(self._lo_order, (gen + 1.0, lam, zero_u, interior_k))
        self._hi_sums = self._cumsums(self._hi_order, (np.ones_like(gen), lam, interior_k))

    @staticmethod
    def _cumsums(order: NDArray[np.intp], cols: tuple[Array, ...]) -> Array:
        """Cumulative sums of ``cols`` in ``order``, with a leading zero row: ``(n + 1, k)``."""
        stacked = np.stack([c[order] for c in cols], axis=1).reshape(order.size, len(cols))
        out = np.zeros((order.size + 1, len(cols)))
        out[1:] = np.cumsum(stacked, axis=0)
        return out

    @property
    def breakpoints(self) -> Array:
        """All ``lo_i`` and ``hi_i``, yuan/kWh, sorted."""
        return np.sort(np.concatenate((self.lo, self.hi)))

    def aggregates(self, p: Array) -> tuple[Array, Array, Array]:
        """``(A, Lambda, K)`` at prices ``p`` (any shape): ``S = A - Lambda / p``.

        ``sum_i u_i(p) = K + A p - Lambda ln p`` with ``u_i`` eq. 9 at the best response.
        """
        p = np.asarray(p, dtype=np.float64)
        below = self._lo_sums[np.searchsorted(self.lo, p, side="left")]  # lo_i < p
        full = self._hi_sums[np.searchsorted(self.hi, p, side="right")]  # hi_i <= p
        a = below[..., 0] - full[..., 0]
        lam = below[..., 1] - full[..., 1]
        k = self.total_zero_u - below[..., 2] + below[..., 3] - full[..., 2]
        return a, lam, k

    def supply(self, p: Array) -> Array:
        """Total supply ``S(p)``, kWh, shape of ``p``."""
        a, lam, _ = self.aggregates(p)
        return np.asarray(np.maximum(a - lam / p, 0.0))

    def utility(self, p: Array) -> Array:
        """Sum of the sellers' eq. 9 utilities at their best responses, yuan, shape of ``p``."""
        a, lam, k = self.aggregates(p)
        return np.asarray(k + a * p - lam * np.log(p))

    def price_for_supply(self, target_kwh: float, lo: float, hi: float) -> float:
        """Least price in ``[lo, hi]`` with ``S(p) >= target_kwh``; ``inf`` if none.

        ``S`` is non-decreasing and ``A - Lambda / p`` on each piece, so the crossing is found
        by locating its piece and solving ``A - Lambda / p = target`` there.
        """
        grid = np.concatenate(
            ([lo], self.breakpoints[(self.breakpoints > lo) & (self.breakpoints < hi)], [hi])
        )
        ok = np.flatnonzero(self.supply(grid) >= target_kwh)
        if ok.size == 0:
            return math.inf
        k = int(ok[0])
        if k == 0:
            return lo
        a, lam, _ = self.aggregates(np.array(0.5 * (grid[k - 1] + grid[k])))
        cross = float(lam / (a - target_kwh)) if a > target_kwh and lam > 0 else float(grid[k])
        return min(max(cross, float(grid[k - 1])), float(grid[k]))
