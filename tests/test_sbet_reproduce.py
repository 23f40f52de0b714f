"""``mgenv reproduce sbet_cooperative --quick``: files written, the paper's shapes hold."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from train.reproduce import get, names


def read(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("sbet")
    return folder, get("sbet_cooperative")(folder, True)


def test_registered_and_writes_every_figure(out: tuple[Path, str]) -> None:
    folder, text = out
    assert "sbet_cooperative" in names()
    for fig in (
        "fig5_creation_vs_tmax",
        "fig6_creation_vs_block_size",
        "fig7_query_delay",
        "fig8_query_accuracy",
    ):
        assert (folder / f"{fig}.csv").stat().st_size > 0
        assert (folder / f"{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "sbet/pbft" in text


def test_creation_time_shapes(out: tuple[Path, str]) -> None:
    rows = read(out[0] / "fig5_creation_vs_tmax.csv")
    ms = {(r["protocol"], r["volume"], float(r["t_max_s"])): float(r["creation_ms"]) for r in rows}
    for volume in ("100", "200"):
        for t in (0.5, 1.0, 1.5, 2.0):
            assert 1.5 < ms["sbet", volume, t] / ms["pbft", volume, t] < 2.6
            assert ms["pos", volume, t] / ms["pbft", volume, t] > 50
        for label in ("sbet", "pbft", "pos"):
            series = [ms[label, volume, t] for t in (0.5, 1.0, 1.5, 2.0)]
            assert series == sorted(series)  # grows with t_max


def test_query_accuracy_shapes(out: tuple[Path, str]) -> None:
    rows = read(out[0] / "fig8_query_accuracy.csv")
    acc = {
        (r["protocol"], r["factor"], float(r["share"])): float(r["query_accuracy"]) for r in rows
    }
    for share in (0.1, 0.2, 0.3):  # below 1/3
        assert acc["sbet", "malicious_share", share] == 1.0
        assert acc["sbet", "missing_share", share] == 1.0
        assert acc["pbft", "missing_share", share] < 1.0
        assert acc["pos", "missing_share", share] < 1.0
    assert acc["sbet", "malicious_share", 0.4] < 1.0


def test_query_delay_is_tens_of_ms(out: tuple[Path, str]) -> None:
    rows = read(out[0] / "fig7_query_delay.csv")
    assert {int(r["creators"]) for r in rows if r["protocol"] == "sbet"} == set(range(3, 13))
    assert min(int(r["creators"]) for r in rows if r["protocol"] == "pbft") == 4
    assert all(5.0 < float(r["query_delay_ms"]) < 200.0 for r in rows)
