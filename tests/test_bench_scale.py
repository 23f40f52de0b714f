"""``mgenv bench scale``: tables of the right shape, the plot written (speed never asserted)."""

from __future__ import annotations

import csv

import pytest

import mgenv
from mgenv.cli import main as cli
from train.bench_scale import COLUMNS, ScaleRow, markdown, measure, scale_overrides


def _table(out: str, title: str) -> list[list[str]]:
    """Cells of the markdown table printed after the line starting with ``title``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title)) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_cli_prints_three_tables_and_writes_the_plot(tmp_path, capsys):
    png, rows_csv = tmp_path / "docs" / "scaling.png", tmp_path / "rows.csv"
    argv = ["bench", "scale", "--sizes", "2,4", "--nodes", "4,5", "--steps", "6"]
    argv += ["--repeats", "1", "--plot", str(png), "--out", str(rows_csv)]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    mg = _table(out, "Cost per step as microgrids grow")
    nodes = _table(out, "Cost per step as validator nodes grow")
    sig = _table(out, "Modelled (HMAC) vs real Ed25519")
    assert [r[0] for r in mg[2:]] == ["2", "4"]
    expected = [(p, n) for p in ("sbet", "pbft") for n in ("4", "5")]
    assert [(r[0], r[1]) for r in nodes[2:]] == expected
    assert [(r[0], r[1]) for r in sig[2:]] == [
        ("modelled", "4"),
        ("ed25519", "4"),
        ("modelled", "5"),
        ("ed25519", "5"),
    ]
    for table in (mg, nodes, sig):  # every row has the header's number of cells
        assert len({len(r) for r in table}) == 1
    assert mg[0][-len(COLUMNS) :] == list(COLUMNS) and nodes[0][-len(COLUMNS) :] == list(COLUMNS)
    # the smallest size is the reference of the ratios and has no marginal cost
    assert mg[2][8] == "1.00" and mg[2][10] == "1.00" and mg[2][11] == "-"
    assert "Ed25519 alone, timed in the same run" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with rows_csv.open() as fh:
        assert len(list(csv.DictReader(fh))) == 2 + 4 + 4


def test_proportional_mix_starts_at_default_and_keeps_its_shape():
    cfg = mgenv.make_config("default")
    assert scale_overrides(4) == {
        "n_microgrids": cfg.n_microgrids,
        "n_aggregators": cfg.n_aggregators,
        "n_users": cfg.n_users,
    }
    assert scale_overrides(256) == {"n_microgrids": 256, "n_aggregators": 128, "n_users": 128}
    assert scale_overrides(1) == {"n_microgrids": 1, "n_aggregators": 1, "n_users": 0}
    assert scale_overrides(64, "fixed") == {"n_microgrids": 64}
    with pytest.raises(ValueError, match="mix='linear'"):
        scale_overrides(4, "linear")


def test_measure_row_stages_add_up_to_the_step():
    row = measure("microgrids", scale_overrides(8), steps=30, repeats=1)
    assert (row.n_microgrids, row.n_aggregators, row.n_users, row.agents) == (8, 4, 4, 8)
    assert row.participants == row.units == 16 and row.size == 8
    assert row.us_min == row.us_per_step == row.us_max > 0
    assert sum(row.stages_us.values()) == pytest.approx(row.us_per_step, rel=1e-9)
    assert all(row.stages_us[c] >= 0 for c in COLUMNS if c != "shell")
    with pytest.raises(ValueError, match="repeats=0"):
        measure("nodes", {}, steps=10, repeats=0)


def _row(sweep: str, n_mg: int, n_nodes: int, us: float, signatures: str = "modelled") -> ScaleRow:
    stages = dict.fromkeys(COLUMNS, us / len(COLUMNS))
    return ScaleRow(
        sweep,
        "sbet",
        signatures,
        n_mg,
        n_mg // 2,
        n_mg // 2,
        n_nodes,
        n_mg,
        4.0,
        us,
        us,
        us,
        stages,
    )


def test_ratios_and_marginal_cost_in_the_tables():
    rows = [
        _row("microgrids", 4, 4, 100.0),  # 8 participants
        _row("microgrids", 16, 4, 300.0),  # 32 participants
        _row("nodes", 4, 4, 200.0),
        _row("nodes", 4, 8, 240.0),
        _row("signatures", 4, 4, 100.0),
        _row("signatures", 4, 4, 900.0, "ed25519"),
    ]
    out = markdown(rows)
    mg = _table(out, "Cost per step as microgrids grow")[3]
    # steps/s, µs/step, spread, x smallest, µs/participant, x smallest, marginal
    assert mg[5:12] == ["3,333", "300.0", "300.0-300.0", "3.00", "9.38", "0.75", "8.33"]
    node = _table(out, "Cost per step as validator nodes grow")[3]
    assert node[3:10] == ["4,167", "240.0", "240.0-240.0", "1.20", "30.00", "0.60", "10.00"]
    ed = _table(out, "Modelled (HMAC) vs real Ed25519")[3]
    assert ed[-2:] == ["800.0", "200.0"]  # extra per step, per transaction (4 tx per step)
