"""Per-episode market metrics and per-period series computed from ``env.history``.

The env's own ``episode_kpis()`` give profit per role, welfare and shares; this module adds
what the buyers and the sellers gained from trading locally instead of with the grid, and
the per-period series the evaluation plots (storage state of charge, committed share).

Both comparisons use the settlement of each period (:class:`mgenv.market.settlement.Settlement`)
and the period's public tariffs (grid price and feed-in price, yuan/kWh, read with
``env.public_info()`` before the step):

* **Buyers' saving against grid-only** (``buyers_saving_vs_grid``, yuan per episode): for
  every participant that bought energy in the market in a period (``bought > 0``: microgrids
  with a deficit and large users), what the same energy would have cost from the grid minus
  what it actually paid. Its energy is what the committed trades delivered plus what it
  imported from the grid (``bought_committed + grid_import``; the imports already include
  trades that did not commit and forecast-error shortfalls of the realised load), so::

      saving = sum over buyers and periods of grid_buy * (bought_committed + grid_import) - cost

  ``buyers_saving_vs_grid_pct`` is that saving in percent of the grid-only cost. A buyer
  that only imports from the grid saves exactly 0; committed trades below the grid price
  (times the aggregator's service coefficient) save the difference.
* **Sellers' benefit against feed-in** (``sellers_benefit_vs_feed_in``, yuan per episode):
  for every participant that sold energy in the market in a period (``sold > 0``), its
  revenue minus what the same energy would have earned fed into the grid
  (``feed_in * (sold_committed + grid_export)``; the exports include trades that did not
  commit, unsold surplus and forecast excess). ``sellers_benefit_vs_feed_in_pct`` is the
  benefit in percent of the feed-in revenue.

Periods without buyers (sellers) add nothing; an episode without any gives 0 yuan and 0 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["MARKET_METRICS", "Tariff", "market_metrics", "period_series"]

MARKET_METRICS = (
    "buyers_saving_vs_grid",
    "buyers_saving_vs_grid_pct",
    "sellers_benefit_vs_feed_in",
    "sellers_benefit_vs_feed_in_pct",
)


class Tariff(NamedTuple):
    """The grid's prices in one period, yuan/kWh."""

    grid_buy: float
    feed_in: float


def _pct(part: float, whole: float) -> float:
    """``part`` in percent of ``whole``; 0.0 when ``whole`` is 0 (nothing to compare)."""
    return 100.0 * part / whole if whole > 0 else 0.0


def market_metrics(history: Sequence[Any], tariffs: Sequence[Tariff]) -> dict[str, float]:
    """Buyers' saving against grid-only and sellers' benefit against feed-in of an episode.

    Args:
        history: The episode's :class:`mgenv.core.PeriodResult` list (``env.history``).
        tariffs: The grid and feed-in price of each period, same length as ``history``.

    Returns:
        ``MARKET_METRICS`` as floats: savings and benefits in yuan per episode and in percent
        of the grid-only cost and the feed-in revenue (see the module docstring).
    """
    if len(history) != len(tariffs):
        raise ValueError(f"{len(history)} periods but {len(tariffs)} tariffs")
    grid_cost = paid = feed_value = revenue = 0.0
    for result, tariff in zip(history, tariffs, strict=True):
        st = result.settlement
        buyers = st.bought > 0
        if buyers.any():
            energy = st.bought_committed[buyers] + st.grid_import[buyers]
            grid_cost += tariff.grid_buy * float(energy.sum())
            paid += float(st.cost[buyers].sum())
        sellers = st.sold > 0
        if sellers.any():
            energy = st.sold_committed[sellers] + st.grid_export[sellers]
            feed_value += tariff.feed_in * float(energy.sum())
            revenue += float(st.revenue[sellers].sum())
    saving, benefit = grid_cost - paid, revenue - feed_value
    return {
        "buyers_saving_vs_grid": saving,
        "buyers_saving_vs_grid_pct": _pct(saving, grid_cost),
        "sellers_benefit_vs_feed_in": benefit,
        "sellers_benefit_vs_feed_in_pct": _pct(benefit, feed_value),
    }


def period_series(history: Sequence[Any]) -> dict[str, np.ndarray]:
    """Per-period series of an episode for the plots, each of shape ``(periods,)``.

    Args:
        history: The episode's :class:`mgenv.core.PeriodResult` list (``env.history``).

    Returns:
        ``"soc"``: battery state of charge at the end of the period, mean over microgrids
        (NaN without microgrids); ``"commit_share"``: committed share of the energy traded in
        the period (NaN when nothing traded).
    """
    soc = np.full(len(history), np.nan)
    commit = np.full(len(history), np.nan)
    for t, result in enumerate(history):
        after = np.asarray(result.physics.soc_after, dtype=float)
        if after.size:
            soc[t] = float(after.mean())
        sold = float(result.settlement.sold.sum())
        if sold > 0:
            commit[t] = float(result.settlement.sold_committed.sum()) / sold
    return {"soc": soc, "commit_share": commit}
