"""Training, loading, evaluation and the command line against the real env."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

import mgenv
from agents import RunConfig, load_policy
from mgenv.cli import main, parse_assignments
from mgenv.wrappers.sb3_vec import MarketVecEnv
from train import report
from train.evaluate import evaluate, parse_policies, parse_seeds
from train.sb3 import TrainConfig, config_from_dict, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained by ``mgenv train --timesteps 512`` in a subprocess."""
    out = tmp_path_factory.mktemp("runs")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mgenv.cli",
            "train",
            "--timesteps",
            "512",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    assert run_dir.name.startswith("default__ppo__3__")
    return run_dir


def test_vec_env_over_default_env() -> None:
    make = functools.partial(mgenv.parallel_env, "default")
    with closing(MarketVecEnv([make, make])) as venv:
        probe = make()
        n_agents = len(probe.possible_agents)
        assert venv.num_envs == 2 * n_agents and venv.agents == probe.possible_agents
        assert venv.observation_space == probe.observation_space(probe.possible_agents[0])
        venv.seed(0)
        obs = venv.reset()
        rng = np.random.default_rng(0)
        for period in range(1, probe.config.horizon + 1):
            assert obs.shape == (venv.num_envs, *venv.observation_space.shape)
            assert obs.dtype == venv.observation_space.dtype
            assert all(venv.observation_space.contains(o) for o in obs)
            actions = rng.uniform(-1, 1, (venv.num_envs, *venv.action_space.shape))
            obs, rews, dones, infos = venv.step(actions.astype(np.float32))
            assert rews.shape == (venv.num_envs,) and np.isfinite(rews).all()
            assert rews == pytest.approx([i["profit"] for i in infos], rel=1e-5, abs=1e-3)
            assert dones.all() == (period == probe.config.horizon) and dones.any() == dones.all()
        for info in infos:
            assert info["TimeLimit.truncated"] is True
            assert venv.observation_space.contains(info["terminal_observation"])
            assert {"welfare", "commit_share"} <= set(info["episode_kpis"])


def test_cli_train_then_load_and_evaluate(cli_run: Path, tmp_path: Path) -> None:
    config = RunConfig.load(cli_run / "config.json")
    assert config.algo == "ppo" and config.role == "mg" and config.scenario == "default"
    assert (cli_run / "model.zip").is_file() and (cli_run / "vecnormalize.pkl").is_file()
    assert any((cli_run / "tb").rglob("events.out.tfevents*"))
    policy = load_policy(cli_run / "model.zip")
    env = mgenv.parallel_env("default")
    obs, _ = env.reset(seed=0)
    first, again = policy(obs, env), policy(obs, env)
    assert set(first) == set(obs)
    for agent, action in first.items():
        assert env.action_space(agent).contains(action)
        np.testing.assert_array_equal(action, again[agent])
    results = evaluate(
        {"learned": str(cli_run), "truthful": "truthful"}, seeds=[0, 1], out_dir=tmp_path / "eval"
    )
    assert set(results.summary) == {"learned", "truthful"}
    assert {"md", "csv", "episodes", "png"} == set(results.files)
    assert all(path.stat().st_size > 0 for path in results.files.values())
    assert "| learned |" in (tmp_path / "eval" / "results.md").read_text()
    assert results.prices["learned"].shape == (2, env.config.horizon)
    stat = results.summary["truthful"]["welfare"]
    assert stat.n == 2 and stat.low <= stat.mean <= stat.high


def test_observation_layout_mismatch_names_both(cli_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(cli_run, tmp_path / "run"))
    raw = json.loads((run / "config.json").read_text())
    raw["observation_names"] = ["old_feature", *raw["observation_names"][1:]]
    (run / "config.json").write_text(json.dumps(raw))
    policy = load_policy(run)
    env = mgenv.parallel_env("default")
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="old_feature") as err:
        policy(obs, env)
    assert env.observation_names(env.agents[0])[0] in str(err.value)
    other_role = mgenv.parallel_env("default", learning_roles=("agg",))
    obs, _ = other_role.reset(seed=0)
    with pytest.raises(ValueError, match="plays role 'mg'"):
        load_policy(cli_run)(obs, other_role)


def test_training_is_reproducible_and_checkpoints_load(tmp_path: Path) -> None:
    def run(name: str) -> Path:
        return train(
            TrainConfig(
                total_timesteps=400,
                n_envs=1,
                seed=5,
                out_dir=tmp_path,
                run_name=name,
                tensorboard=False,
                checkpoint_freq=192,
                hyperparams={"n_steps": 48, "batch_size": 48, "n_epochs": 2},
            )
        )

    first, second = run("a"), run("b")
    env = mgenv.parallel_env("default")
    obs, _ = env.reset(seed=1)
    act_a, act_b = load_policy(first)(obs, env), load_policy(second)(obs, env)
    for agent in obs:
        np.testing.assert_array_equal(act_a[agent], act_b[agent])
    checkpoints = sorted((first / "checkpoints").glob("model_*_steps.zip"))
    assert checkpoints and load_policy(checkpoints[0])(obs, env).keys() == obs.keys()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["evaluate", "--policies", "nonsense", "--seeds", "0"], "truthful"),
        (["evaluate", "--policies", "truthful", "--seeds", "x-y"], "0-9"),
        (["evaluate", "--policies", "runs/missing/model.zip", "--seeds", "0"], "no trained model"),
        (["train", "--algo", "dqn"], "'ppo', 'a2c', 'sac'"),
        (["train", "--scenario", "nope"], "default"),
        (["train", "--override", "horizon"], "KEY=VALUE"),
    ],
)
def test_cli_user_errors_exit_2_with_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "evaluate" in capsys.readouterr().err


def test_train_config_validation() -> None:
    with pytest.raises(ValueError, match="total_timesteps"):
        TrainConfig(total_timesteps=0)
    with pytest.raises(ValueError, match=r"valid: \['ppo', 'a2c', 'sac'\]"):
        TrainConfig(algo="dqn")
    with pytest.raises(ValueError, match="role"):
        TrainConfig(role="grid")
    with pytest.raises(ValueError, match="conflicts"):
        _ = TrainConfig(overrides={"learning_roles": ("agg",)}).env_overrides
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        config_from_dict({"algo": "ppo", "lr": 1})
    assert TrainConfig(role="agg").env_overrides == {"learning_roles": ("agg",)}


def test_parsers() -> None:
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_policies("truthful,ppo=runs/x/model.zip,runs/y/model.zip") == {
        "truthful": "truthful",
        "ppo": "runs/x/model.zip",
        "y": "runs/y/model.zip",
    }
    assert parse_assignments(["horizon=12", "name=abc", 'roles=["mg"]'], "override") == {
        "horizon": 12,
        "name": "abc",
        "roles": ["mg"],
    }


def test_mean_ci_uses_student_t() -> None:
    stat = report.mean_ci([1.0, 2.0, 3.0])
    assert stat.mean == pytest.approx(2.0)
    assert stat.half_width == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    assert report.mean_ci([4.0]).n == 1


@pytest.mark.parametrize(
    ("algo", "hyperparams"),
    [
        ("a2c", {"n_steps": 8}),
        ("sac", {"learning_starts": 64, "batch_size": 32, "buffer_size": 1000}),
    ],
)
def test_a2c_and_sac_train_save_load_and_act(tmp_path: Path, algo, hyperparams) -> None:
    run = train(
        TrainConfig(
            algo=algo,
            total_timesteps=256,
            n_envs=1,
            seed=0,
            out_dir=tmp_path,
            run_name=algo,
            tensorboard=False,
            hyperparams=hyperparams,
        )
    )
    env = mgenv.parallel_env("default")
    obs, _ = env.reset(seed=2)
    actions = load_policy(run)(obs, env)
    assert set(actions) == set(obs)
    for agent, action in actions.items():
        assert env.action_space(agent).contains(np.asarray(action, dtype=np.float32))


def test_batched_training_equals_training_on_single_envs(tmp_path: Path) -> None:
    """``batched=True`` feeds PPO the same data: the trained models are identical."""

    def run(name: str, batched: bool) -> Path:
        return train(
            TrainConfig(
                total_timesteps=2 * 4 * 48 * 2,
                n_envs=2,
                seed=7,
                out_dir=tmp_path,
                run_name=name,
                tensorboard=False,
                batched=batched,
                hyperparams={"n_steps": 48, "batch_size": 96, "n_epochs": 2},
            )
        )

    single, batched = run("single", False), run("batched", True)
    from stable_baselines3 import PPO

    a, b = PPO.load(single / "model.zip"), PPO.load(batched / "model.zip")
    for (name, x), (_, y) in zip(
        a.policy.state_dict().items(), b.policy.state_dict().items(), strict=True
    ):
        assert bool((x == y).all()), name
    with pytest.raises(ValueError, match="batched=True needs sharing='role'"):
        TrainConfig(batched=True, sharing="agent")
    with pytest.raises(ValueError, match="leave learners empty"):
        TrainConfig(batched=True, learners=("mg_0",))
    with pytest.raises(ValueError, match=r"chain\.protocol"):
        train(TrainConfig(batched=True, overrides={"protocol": "pos"}, out_dir=tmp_path))
