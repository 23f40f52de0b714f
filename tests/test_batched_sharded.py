"""The batched core split over processes (ShardedCore) against one BatchedCore: identical."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mgenv
from mgenv import _jit
from mgenv.batched import BatchedCore, BatchedVecEnv
from mgenv.batched.sharded import ShardedCore


def _actions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random actions, some beyond the bounds (clipped by the core)."""
    return rng.uniform(-1.2, 1.2, shape)


@pytest.mark.parametrize("jit", [True, False], ids=["kernels", "numpy"])
def test_sharded_core_equals_batched_core(jit: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two episodes and a bit of 7 copies in 3 uneven shards equal one core, bit for bit.

    Seeds given, then drawn (None) at the resets; the workers follow the caller's path.
    """
    monkeypatch.setattr(_jit, "ENABLED", jit and _jit.ENABLED)
    cfg = mgenv.make_config("default", message_loss=0.2)
    n = 7
    one = BatchedCore(cfg, n)
    with ShardedCore(cfg, n, processes=3) as sharded:
        assert sharded.edges == [0, 3, 5, 7]
        seeds: list[int | None] = list(range(20, 20 + n))
        np.testing.assert_array_equal(sharded.reset(seeds), one.reset(seeds))
        rng = np.random.default_rng(4)
        for _ in range(2 * cfg.horizon + 5):
            acts = _actions(rng, (n, cfg.n_microgrids, one.action_dim))
            got, want = sharded.step(acts), one.step(acts)
            for name, a, b in zip(want._fields, got, want, strict=True):
                np.testing.assert_array_equal(a, b, err_msg=name)
            if want.truncated:
                np.testing.assert_array_equal(sharded.reset([None] * n), one.reset([None] * n))
        stages = sharded.stage_time
        assert stages.keys() == one.stage_time.keys()
        assert all(v > 0 for k, v in stages.items())
        sharded.reset_stage_time()
        assert set(sharded.stage_time.values()) == {0.0}


def test_bad_actions_in_a_worker_change_nothing() -> None:
    """A NaN in a worker's copies is refused before any shard steps; errors name the copy."""
    cfg = mgenv.make_config("default")
    with ShardedCore(cfg, 4, processes=2) as core:
        obs = core.reset([1, 2, 3, 4])
        acts = np.zeros((4, 4, core.action_dim))
        acts[3, 1, 0] = np.inf
        with pytest.raises(ValueError, match="copy 3: action of mg_1"):
            core.step(acts)
        with pytest.raises(ValueError, match="expected"):
            core.step(np.zeros((4, 3, core.action_dim)))
        with pytest.raises(ValueError, match="4 seeds"):
            core.reset([1, 2])
        ok = core.step(np.zeros((4, 4, core.action_dim)))  # still in period 0: equal to fresh
        ref = BatchedCore(cfg, 4)
        np.testing.assert_array_equal(obs, ref.reset([1, 2, 3, 4]))
        np.testing.assert_array_equal(ok.obs, ref.step(np.zeros((4, 4, ref.action_dim))).obs)


def test_worker_errors_reach_the_caller() -> None:
    """An error raised in a worker (step after the horizon) is raised in the caller."""
    cfg = mgenv.make_config("default", horizon=2)
    core = ShardedCore(cfg, 2, processes=2)
    core.reset([0, 1])
    for _ in range(2):
        core.step(np.zeros((2, 4, core.action_dim)))
    with pytest.raises(RuntimeError, match="after the horizon"):
        core.step(np.zeros((2, 4, core.action_dim)))
    workers = [proc for proc, _ in core._workers]
    core.close()
    core.close()  # idempotent
    assert all(p.poll() is not None for p in workers)


def test_processes_are_validated() -> None:
    """processes must be an integer in [1, B]; a bad config fails before workers start."""
    cfg = mgenv.make_config("default")
    for bad in (0, 3, 1.5, True):
        with pytest.raises(ValueError, match="processes"):
            ShardedCore(cfg, 2, processes=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"chain\.protocol"):
        ShardedCore(mgenv.make_config("default", protocol="spft"), 2, processes=2)


def test_vec_env_with_processes_equals_one_process() -> None:
    """BatchedVecEnv(processes=2) gives the one-process view's observations and rewards."""
    a = BatchedVecEnv("default", n_copies=3)
    b = BatchedVecEnv("default", n_copies=3, processes=2)
    a.seed(5)
    b.seed(5)
    np.testing.assert_array_equal(b.reset(), a.reset())
    rng = np.random.default_rng(0)
    for _ in range(30):
        acts = _actions(rng, (a.num_envs, *a.action_space.shape)).astype(np.float32)
        for x, y in zip(b.step(acts)[:3], a.step(acts)[:3], strict=True):
            np.testing.assert_array_equal(x, y)
    b.close()
    assert isinstance(b.core, ShardedCore)


def test_script_without_main_guard(tmp_path: Path) -> None:
    """A plain script (no ``if __name__ == "__main__"``) can start workers: none re-runs it."""
    script = tmp_path / "plain.py"
    script.write_text(
        "import numpy as np, mgenv\n"
        "from mgenv.batched.sharded import ShardedCore\n"
        "print('script ran', flush=True)\n"
        "core = ShardedCore(mgenv.make_config('default'), 2, processes=2)\n"
        "print(core.reset([0, 1]).shape)\n"
        "core.close()\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.splitlines() == ["script ran", "(2, 4, 16)"]
