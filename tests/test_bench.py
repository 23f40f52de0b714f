"""The benchmark command runs and prints its table (speed itself is never asserted)."""

from __future__ import annotations

import mgenv
from train.bench import main, measure, stage_profile


def test_bench_prints_table(capsys):
    main(["--steps", "30", "--repeats", "1", "--protocols", "ideal"])
    out = capsys.readouterr().out
    assert "| default | ideal | kernels | 4 |" in out
    assert "microseconds per step" in out and "chain" in out


def test_bench_measures_both_paths(capsys):
    from mgenv import _jit

    before = _jit.ENABLED
    main(["--steps", "30", "--repeats", "1", "--protocols", "ideal", "--paths", "kernels,numpy"])
    out = capsys.readouterr().out
    assert "| default | ideal | kernels | 4 |" in out and "| default | ideal | numpy | 4 |" in out
    assert _jit.ENABLED == before  # restored


def test_bench_jit_prints_start_up_times(capsys):
    from train.bench_jit import main as bench_jit

    bench_jit(["--scenarios", "default"])
    out = capsys.readouterr().out
    for row in ("| cold", "| warm", "| numpy only"):
        assert row in out


def test_measure_and_profile_fields():
    r = measure(lambda: mgenv.parallel_env("default", horizon=4), steps=20, repeats=2)
    assert r["min"] <= r["steps_per_s"] <= r["max"] and r["agents"] == 4
    prof = stage_profile("default", 20)
    assert set(prof) >= {"physics", "market", "chain", "settlement", "observation", "total"}
    assert all(v >= 0 for v in prof.values())


def test_cli_passes_options_to_the_default_target(capsys):
    from mgenv.cli import main as cli

    assert cli(["bench", "--steps", "20", "--repeats", "1", "--protocols", "ideal"]) == 0
    assert "| default | ideal |" in capsys.readouterr().out
    assert cli(["bench", "soak", "--steps", "30"]) == 0
    assert "non-finite observations or rewards: 0" in capsys.readouterr().out
