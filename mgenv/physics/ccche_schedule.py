"""The CCHE model's day: tariff modes, thermal load shapes and end-of-day reachability sums.

Everything here depends on the clock only (period hours, the tariff's valley and peak hours,
day boundaries) and on constant unit parameters, so it is computed once at construction (the
tanks' reachability sums lazily, memoised per distinct remaining-day pattern); a period only
indexes it. Used by :class:`mgenv.physics.ccche.CCHEModel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mgenv.physics.profiles import period_hours, residential_load_shape

if TYPE_CHECKING:
    from mgenv.config import EnvConfig

Pair = tuple[np.ndarray, np.ndarray]


def heat_shape(hours: np.ndarray) -> np.ndarray:
    """Winter space-heating load per kW peak: high at night, a morning peak, low afternoon."""
    raw = (
        0.60
        + 0.28 * np.cos(2.0 * np.pi * (hours - 3.0) / 24.0)
        + 0.20 * np.exp(-0.5 * ((hours - 7.5) / 1.5) ** 2)
    )
    return np.asarray(np.clip(raw / 1.02, 0.0, 1.0))


def cool_shape(hours: np.ndarray) -> np.ndarray:
    """Summer cooling load per kW peak: a base of 0.15 and an afternoon peak at 14:30."""
    return np.asarray(0.15 + 0.85 * np.exp(-0.5 * ((hours - 14.5) / 3.5) ** 2))


class DaySchedule:
    """Per-period constants of the CCHE model (module docstring).

    Args:
        cfg: The env config (horizon, start hour, period length, ``thermal`` hours).
        keep: Share of each storage's content left after one period of self-loss, (3, n).
        ramp: Ramp limit of each storage, kWh per period, (3, n) (row 0: the battery).
        max_in: Largest charge per period, kWh, (3, n).
        max_out: Largest discharge per period, kWh, (3, n).

    Attributes:
        valley, peak: Whether period ``t`` is a valley / peak hour of the tariff, (H,) bool.
        heat_sh, cool_sh, res_sh: Heat, cooling and residential electric load shapes, (H,).
        day_end: Whether period ``t`` is the last of its day (midnight or episode end), (H,).
        n_after: Later periods in the same day, (H,) int.
        day_len: Periods in the day of period ``t``, (H,) int.
    """

    def __init__(
        self,
        cfg: EnvConfig,
        keep: np.ndarray,
        ramp: np.ndarray,
        max_in: np.ndarray,
        max_out: np.ndarray,
    ) -> None:
        horizon = cfg.horizon
        self.keep, self.ramp, self.max_in, self.max_out = keep, ramp, max_in, max_out
        mid = period_hours(cfg)
        hour = mid.astype(np.int64) % 24
        self.valley = np.isin(hour, cfg.thermal.valley_hours)
        self.peak = np.isin(hour, cfg.thermal.peak_hours)
        self.heat_sh, self.cool_sh = heat_shape(mid), cool_shape(mid)
        self.res_sh = residential_load_shape(mid)
        start = cfg.start_hour + np.arange(horizon) * cfg.dt_h
        day = np.floor(start / 24.0 + 1e-9).astype(np.int64)
        self.day_end = np.append(day[1:] != day[:-1], True)
        last = np.empty(horizon, dtype=np.int64)
        end = horizon - 1
        for k in range(horizon - 1, -1, -1):  # at construction, over periods
            end = k if self.day_end[k] else end
            last[k] = end
        self.n_after = last - np.arange(horizon)
        self.day_len = np.bincount(day - day[0])[day - day[0]]
        # the battery's reach (see reach): cum[c] = sum_{i <= c} min(P, i ramp) and
        # tent[c] = sum_{i <= c} min(P, i ramp, (c + 1 - i) ramp), each (n, K + 1)
        steps = np.arange(int(self.n_after.max()) + 2.0)
        p, r = max_in[0][:, None, None], ramp[0][:, None, None]
        i, c = steps[None, None, :], steps[None, :, None]
        self._cum = np.minimum(p, i * r)[:, 0, :].cumsum(axis=1)
        tent = np.minimum(np.minimum(p, i * r), (c + 1 - i) * r) * (i >= 1) * (i <= c)
        self._tent = tent.sum(axis=2)
        self._memo: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def reach(self, t: int, left: np.ndarray) -> tuple[Pair, Pair, Pair]:
        """The reachability sums of period ``t`` (:func:`~mgenv.physics.thermal.reach_moves`).

        ``decay``, ``reach_in``, ``reach_out``, each a pair of (3, n) arrays: sums over the
        day's later periods ``j = 1..k`` of ``w_j min(P, j ramp)`` (and of ``min(P, (j - 1)
        ramp)``), ``w_j`` the decay to the day's end times whether the storage may move then.
        The tanks' sums depend only on the schedule (memoised); the battery's (no self-loss,
        every period allowed) on its remaining count ``left`` (n,): ``cum[k]`` with ``cum[c] =
        sum_{i <= c} min(P, i ramp)`` when the day's end comes first, else ``tent[left - 1]``,
        the same sum over the ``left - 1`` periods it may still move, ramping down to a stop
        (``min(P, i ramp, (c + 1 - i) ramp)``).
        """
        k = int(self.n_after[t])
        future = slice(t + 1, t + k + 1)
        key = (k, self.valley[future].tobytes(), self.peak[future].tobytes())
        fixed = self._memo.get(key)
        if fixed is None:
            fixed = self._memo[key] = self._tanks(t, k)
        decay, sums = fixed
        bind = left - 1.0 <= k  # the count, not the day's end, limits the later moves
        c = np.minimum(k, np.maximum(left - 1.0, 0.0)).astype(np.int64)
        rows, c1 = np.arange(c.size), np.maximum(c - 1, 0)
        b0 = np.where(bind, self._tent[rows, c], self._cum[rows, c])
        b1 = np.where(bind, self._tent[rows, c1], self._cum[rows, c1])
        out: list[Pair] = []
        for s0, s1 in sums:
            s0, s1 = s0.copy(), s1.copy()
            s0[0], s1[0] = b0, b1
            out.append((s0, s1))
        return decay, out[0], out[1]

    def _tanks(self, t: int, k: int) -> tuple[Any, ...]:
        """The schedule-only part of :meth:`reach` (rows 1-2 meaningful)."""
        keep = self.keep
        if k == 0:
            one, zero = np.ones_like(keep), np.zeros_like(keep)
            return (one, one), ((zero, zero), (zero, zero))
        j = np.arange(1.0, k + 1.0)
        w = keep[..., None] ** (k - j)  # (3, n, k) decay from period j to the day's end
        future = slice(t + 1, t + k + 1)
        ones = np.ones(k)
        ramp = self.ramp[..., None]
        sums = []
        for allowed, power in ((self.valley, self.max_in), (self.peak, self.max_out)):
            mask = np.stack((ones, ones, allowed[future].astype(np.float64)))
            weights = w * mask[:, None, :]
            cap = power[..., None]
            sums.append(
                (
                    (weights * np.minimum(cap, j * ramp)).sum(axis=2),
                    (weights * np.minimum(cap, (j - 1.0) * ramp)).sum(axis=2),
                )
            )
        return (keep**k, keep ** (k - 1)), tuple(sums)
