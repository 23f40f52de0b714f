"""The ``crosschain_aggregators`` scenario and ``mgenv reproduce crosschain_aggregators``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import mgenv
from train import reproduce
from train.reproduce.crosschain import DEMANDS_KW, run, scenario_game, solve_both


@pytest.mark.parametrize("demand", DEMANDS_KW)
def test_scenario_demand_is_flat_and_selectable(demand: float) -> None:
    env = mgenv.parallel_env("crosschain_aggregators", user_load_kw=(demand / 2,))
    env.reset(seed=1)
    prof = env.core.profiles
    np.testing.assert_allclose(prof.user_load_forecast.sum(axis=1), demand)
    np.testing.assert_allclose(prof.user_load_real, prof.user_load_forecast)
    game = scenario_game(demand)
    assert game.demand_kwh == pytest.approx(demand)
    assert game.capacity_kwh == (130.0, 258.0, 114.0, 148.0)


def test_user_load_shape_is_validated() -> None:
    with pytest.raises(ValueError, match=r"ProfileParams.user_load_shape='square' is not one of"):
        mgenv.parallel_env("default", user_load_shape="square")
    env = mgenv.parallel_env("default")  # the commercial shape stays the default
    env.reset(seed=0)
    assert np.ptp(env.core.profiles.user_load_forecast[:, 0]) > 0


def test_reproduce_writes_tables_and_plots(tmp_path: Path) -> None:
    assert "crosschain_aggregators" in reproduce.names()
    text = reproduce.get("crosschain_aggregators")(tmp_path, True)
    for name in (
        "bidding.csv",
        "price_trace.csv",
        "crosschain.csv",
        "fig7_income_volume.png",
        "fig8_clearing_price.png",
        "crosschain_failures.png",
    ):
        assert (tmp_path / name).stat().st_size > 0
    assert "Fig. 8" in text and "Cross-chain consensus" in text
    with (tmp_path / "bidding.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 2 * 4
    imp = solve_both(scenario_game(550.0))["improved"]
    got = [
        float(r["sold_kw"])
        for r in rows
        if r["strategy"] == "improved" and float(r["demand_kw"]) == 550.0
    ]
    np.testing.assert_allclose(got, imp.sold_kwh, atol=1e-3)
    with (tmp_path / "crosschain.csv").open() as fh:
        chain = list(csv.DictReader(fh))
    honest = [
        r
        for r in chain
        if float(r["vns_malicious_share"]) == 0.0 and float(r["availability"]) == 1.0
    ]
    assert all(float(r["commit_share"]) > 0.8 for r in honest)
    doomed = [r for r in chain if r["n_nodes"] == "8" and float(r["vns_malicious_share"]) == 0.5]
    assert all(float(r["commit_share"]) == 0.0 for r in doomed)
    assert run is reproduce.get("crosschain_aggregators")
