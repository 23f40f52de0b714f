"""The scripts in examples/ run (each framework's own test file checks it in depth).

The RLlib example runs in tests/test_rllib.py (in .venv-rllib).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import mgenv

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gymnasium_example_runs_without_checker_warnings() -> None:
    example = load_example("gymnasium_single_bidder")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning of either env checker fails the test
        returns = example.main(["--num-envs", "3", "--seed", "5"])
    assert returns.shape == (3,) and np.isfinite(returns).all()
    np.testing.assert_array_equal(returns, example.run_vector(3, seed=5))
    assert len(set(returns.tolist())) == 3  # copies get different seeds (5, 6, 7)


@pytest.mark.parametrize("agent", ["mg_0", "agg_1", "user_0"])
def test_single_bidder_observation_bounds_are_finite(agent: str) -> None:
    env = gymnasium.make("mgenv/SingleBidder-v0", agent=agent)
    space = env.observation_space
    assert np.isfinite(space.low).all() and np.isfinite(space.high).all()
    obs, _ = env.reset(seed=0)
    assert space.contains(obs)


def test_gymnasium_example_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "gymnasium_single_bidder.py"), "--num-envs", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "mg_0 profit per copy over one day" in done.stdout


def test_torchrl_example_runs() -> None:
    pytest.importorskip("torchrl", reason="needs the torchrl extra")
    example = load_example("torchrl_market")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested")
        rollout = example.main(["--scenario", "default", "--seed", "0"])
    horizon = mgenv.make_config("default").horizon
    assert rollout.batch_size == (horizon,)
    assert rollout["mg", "observation"].shape[:2] == (horizon, 4)
    assert rollout["state"].shape[0] == horizon
