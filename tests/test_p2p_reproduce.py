"""``mgenv reproduce consortium_p2p``: files, tables and the figures' claims."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from baselines.stackelberg import solve_exact
from mgenv.market.p2p_game import case_period
from train import reproduce


@pytest.mark.filterwarnings("ignore:p2p")
def test_reproduction_writes_tables_and_plots(tmp_path):
    text = reproduce.get("consortium_p2p")(tmp_path, True)
    for name in (
        "table12_13.csv",
        "solvers.csv",
        "figs4_5.csv",
        "fig4_purchase_cost.png",
        "fig5_sales_benefit.png",
        "table12_price.png",
    ):
        assert (tmp_path / name).stat().st_size > 0
    with (tmp_path / "table12_13.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["period"]) for r in rows] == list(range(7, 19))
    for r in rows:
        eq = solve_exact(case_period(int(r["period"])))
        assert float(r["price"]) == pytest.approx(eq.price)
        assert float(r["e_L1"]) == pytest.approx(eq.outcome.load_kwh[0])
    with (tmp_path / "figs4_5.csv").open() as fh:
        figs = np.array([[float(x) for x in r.values()] for r in csv.DictReader(fh)])
    assert np.all(figs[:, 1] < figs[:, 2])  # Fig. 4: cheaper than the grid every period
    assert np.all(figs[:, 3] > figs[:, 4])  # Fig. 5: more than surplus-to-grid
    with (tmp_path / "solvers.csv").open() as fh:
        gaps = [float(r["objective_gap"]) for r in csv.DictReader(fh)]
    assert min(gaps) > -1e-12  # exact never worse than the swarm
    assert "Table 12 vs the paper: price RMSE" in text and "ledger and the channel log" in text
