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


def test_paired_ratio_takes_turns_and_pairs_the_rates(monkeypatch):
    """Each pair's ratio from the two runs of that pair (A first in even pairs), with fake
    clocks: the ratios 2, 4, 1 give the median 2 and quartiles 1.5 and 3."""
    import train.bench as bench

    a, b = mgenv.parallel_env("default", horizon=3), mgenv.parallel_env("default", horizon=3)
    seconds = {id(a): [0.5, 0.25, 1.0], id(b): [1.0, 1.0, 1.0]}  # after the warm-ups
    order: list[str] = []
    real = bench.timed_steps

    def fake(env, actions, steps):
        real(env, actions, 2)  # the env runs (and is warm) whatever the clock says
        if steps == 10:  # the warm-up's min(steps, 500)
            order.append("a" if env is a else "b")
            return seconds[id(env)].pop(0) if len(order) > 2 else 1.0
        raise AssertionError(steps)

    monkeypatch.setattr(bench, "timed_steps", fake)
    r = bench.paired_ratio(lambda: a, lambda: b, steps=10, pairs=3)
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert r["pairs"] == 3 and r["median"] == 2.0 and (r["q1"], r["q3"]) == (1.5, 3.0)
    assert r["a"] == 20.0 and r["b"] == 10.0


def test_bench_prints_the_paired_ratio(capsys):
    import pytest

    from train.bench import mpe_factory

    if mpe_factory() is None:
        pytest.skip("mpe2 is not installed (the bench extra)")
    main(["--steps", "30", "--repeats", "1", "--protocols", "ideal", "--pairs", "2"])
    out = capsys.readouterr().out
    assert "paired with MPE (2 pairs of 30 steps, taken in turns): default / ideal / kernels" in out
