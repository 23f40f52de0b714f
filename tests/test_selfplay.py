"""Training features: per-role and per-agent policies, self-play, evaluation, run configs.

Runs are tiny (a few hundred agent steps, one env copy) so that the tests check wiring and
reproducibility, not learning.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pettingzoo.test import parallel_api_test

import baselines
import mgenv
from agents import PerAgentPolicy, load_policy
from mgenv.cli import main
from train.config_file import bundled_configs, load_config_file, load_train_config
from train.evaluate import run_episode
from train.sb3 import TrainConfig, make_env, train
from train.selfplay import AgentDispatch, RoleOpponentsEnv, SelfPlayCallback, Snapshot

TINY = {"n_steps": 24, "batch_size": 24, "n_epochs": 1}
ROOT = Path(__file__).resolve().parents[1]


def tiny_config(tmp_path: Path, **kwargs) -> TrainConfig:
    values = {
        "total_timesteps": 192,
        "n_envs": 1,
        "seed": 3,
        "out_dir": tmp_path,
        "tensorboard": False,
        "hyperparams": TINY,
        **kwargs,
    }
    return TrainConfig(**values)


def parameters(model_file: Path) -> dict[str, torch.Tensor]:
    from stable_baselines3 import PPO

    return PPO.load(model_file, device="cpu").policy.state_dict()


def same_parameters(a: Path, b: Path) -> bool:
    pa, pb = parameters(a), parameters(b)
    assert pa.keys() == pb.keys()
    return all(torch.equal(pa[k], pb[k]) for k in pa)


# ---------------------------------------------------------------- the opponents wrapper
def test_role_opponents_env_passes_the_parallel_api_test() -> None:
    env = RoleOpponentsEnv(
        mgenv.parallel_env("default"), ["mg_1", "mg_3"], baselines.make("truthful")
    )
    parallel_api_test(env, num_cycles=30)
    assert env.possible_agents == ["mg_1", "mg_3"] and env.played == ["mg_0", "mg_2"]
    assert env.observation_names("mg_1") == mgenv.parallel_env().observation_names("mg_1")


def test_role_opponents_env_plays_the_others_with_the_opponent() -> None:
    seen: list[list[str]] = []

    def passive(observations, env):
        seen.append(sorted(observations))
        return {a: -np.ones(env.action_space(a).shape, np.float32) for a in observations}

    wrapped = RoleOpponentsEnv(mgenv.parallel_env("default"), ["mg_0"], passive)
    obs, _ = wrapped.reset(seed=0)
    plain = mgenv.parallel_env("default")
    plain.reset(seed=0)
    act = np.full(wrapped.action_space("mg_0").shape, 0.3, np.float32)
    _, rewards, *_ = wrapped.step({"mg_0": act})
    others = {a: -np.ones(act.shape, np.float32) for a in ["mg_1", "mg_2", "mg_3"]}
    _, plain_rewards, *_ = plain.step({"mg_0": act, **others})
    assert set(obs) == {"mg_0"} and seen == [["mg_1", "mg_2", "mg_3"]]
    assert rewards["mg_0"] == plain_rewards["mg_0"]


def test_role_opponents_env_bad_input() -> None:
    with pytest.raises(ValueError, match=r"valid: .*'mg_3'"):
        RoleOpponentsEnv(mgenv.parallel_env("default"), ["mg_9"])
    env = RoleOpponentsEnv(mgenv.parallel_env("default"), ["mg_0"])
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match="set_opponent"):
        env.step({"mg_0": np.zeros(env.action_space("mg_0").shape, np.float32)})


def test_agent_dispatch_routes_each_agent_to_its_policy() -> None:
    def const(value: float):
        def policy(observations, env):
            return {a: np.full(env.action_space(a).shape, value, np.float32) for a in observations}

        return policy

    env = mgenv.parallel_env("default")
    obs, _ = env.reset(seed=0)
    actions = AgentDispatch({"mg_1": const(0.5)}, const(-0.5))(obs, env)
    assert actions["mg_1"][0] == 0.5 and all(actions[a][0] == -0.5 for a in ("mg_0", "mg_2"))
    with pytest.raises(ValueError, match="mg_0"):
        AgentDispatch({"mg_1": const(0.5)})(obs, env)


# ---------------------------------------------------------------- snapshots and self-play
def test_snapshot_is_frozen_and_acts_like_the_model(tmp_path: Path) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from mgenv.wrappers.sb3_vec import MarketVecEnv

    venv = VecNormalize(MarketVecEnv([functools.partial(mgenv.parallel_env, "default")]))
    model = PPO("MlpPolicy", venv, seed=0, device="cpu", **TINY)
    model.learn(48)
    snap = Snapshot.of(model, "t")
    env = mgenv.parallel_env("default")
    obs, _ = env.reset(seed=4)
    batch = venv.normalize_obs(np.stack([obs[a] for a in env.agents]))
    expected, _ = model.predict(batch, deterministic=True)
    before = snap(obs, env)
    for i, agent in enumerate(env.agents):
        np.testing.assert_allclose(before[agent], expected[i], rtol=1e-6)
    model.learn(96)  # changes the model and the running statistics, not the snapshot
    after = snap(obs, env)
    changed, _ = model.predict(venv.normalize_obs(np.stack(list(obs.values()))), True)
    assert all(np.array_equal(before[a], after[a]) for a in obs)
    assert not np.allclose(changed, expected)
    venv.close()


def test_selfplay_callback_refreshes_the_opponents(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    from mgenv.wrappers.sb3_vec import MarketVecEnv

    fn = functools.partial(make_env, "default", {"learning_roles": ("mg",)}, ("mg_0",), None)
    venv = MarketVecEnv([fn, fn])
    model = PPO("MlpPolicy", venv, seed=0, device="cpu", **TINY)  # 48 agent steps per rollout
    callback = SelfPlayCallback(snapshot_freq=96, label="mg_0")
    model.learn(240, callback=callback)
    # snapshots at 0 and at the first rollout start at or after 96 and 192 agent steps
    assert callback.refreshes == 3 and callback.last_refresh == 192
    opponents = venv.get_attr("opponent")
    assert all(isinstance(o, Snapshot) and o.label == "mg_0@192" for o in opponents)
    venv.close()


# ---------------------------------------------------------------- reproducible training
@pytest.mark.parametrize(
    "mode",
    [
        {},
        {"opponents": "selfplay", "snapshot_freq": 48},
        {"sharing": "agent", "opponents": "selfplay", "learners": ("mg_0", "mg_2"), "rounds": 2},
    ],
    ids=["role-baseline", "role-selfplay", "agent-selfplay"],
)
def test_same_seed_and_config_give_identical_parameters(tmp_path: Path, mode: dict) -> None:
    first = train(tiny_config(tmp_path, run_name="a", **mode))
    second = train(tiny_config(tmp_path, run_name="b", **mode))
    other_seed = train(tiny_config(tmp_path, run_name="c", **{**mode, "seed": 4}))
    models = sorted(p.relative_to(first) for p in first.rglob("model.zip"))
    assert models == sorted(p.relative_to(second) for p in second.rglob("model.zip"))
    assert len(models) == (2 if mode.get("sharing") == "agent" else 1)
    for rel in models:
        assert same_parameters(first / rel, second / rel)
        assert not same_parameters(first / rel, other_seed / rel)


def test_selfplay_in_worker_processes_matches_one_process(tmp_path: Path) -> None:
    mode = {"opponents": "selfplay", "snapshot_freq": 48, "n_envs": 2, "total_timesteps": 144}
    one = train(tiny_config(tmp_path, run_name="one", **mode))
    two = train(tiny_config(tmp_path, run_name="two", n_procs=2, **mode))
    assert same_parameters(one / "model.zip", two / "model.zip")


def test_per_agent_run_loads_as_one_policy_per_agent(tmp_path: Path) -> None:
    run = train(tiny_config(tmp_path, sharing="agent", learners=("mg_0", "mg_1")))
    config = json.loads((run / "config.json").read_text())
    assert config["sharing"] == "agent" and config["agents"] == ["mg_0", "mg_1"]
    policy = load_policy(run)
    assert isinstance(policy, PerAgentPolicy) and set(policy.policies) == {"mg_0", "mg_1"}
    env = mgenv.parallel_env("default")
    obs, _ = env.reset(seed=2)
    actions = policy(obs, env)
    for agent in ("mg_0", "mg_1"):
        own = load_policy(run / agent / "model.zip")({agent: obs[agent]}, env)
        np.testing.assert_array_equal(actions[agent], own[agent])
    truthful = baselines.make("truthful")({"mg_2": obs["mg_2"], "mg_3": obs["mg_3"]}, env)
    np.testing.assert_array_equal(actions["mg_3"], truthful["mg_3"])
    assert not np.array_equal(actions["mg_0"], actions["mg_1"])


# ---------------------------------------------------------------- evaluation during training
def test_eval_callback_compares_with_the_baselines(tmp_path: Path) -> None:
    run = train(
        tiny_config(
            tmp_path,
            learners=("mg_1",),
            eval_freq=96,
            eval_seeds=(11, 12),
            eval_baselines=("truthful", "grid_only"),
        )
    )
    rows = list(csv.DictReader((run / "eval.csv").open()))
    assert [(r["timesteps"], r["policy"]) for r in rows] == [
        ("0", "truthful"),
        ("0", "grid_only"),
        ("96", "model"),
        ("192", "model"),
    ]
    env = make_env("default", {"learning_roles": ("mg",)}, ("mg_1",), "truthful")
    direct = [run_episode(env, baselines.make("grid_only"), s)[0] for s in (11, 12)]
    expected = np.mean([m["profit_learners"] for m in direct])
    assert float(rows[1]["profit_learners"]) == pytest.approx(expected, rel=1e-12)
    model_rows = [float(r["profit_learners"]) for r in rows[2:]]
    final = [run_episode(env, load_policy(run), s)[0]["profit_learners"] for s in (11, 12)]
    assert model_rows[-1] == pytest.approx(np.mean(final), rel=1e-5)


# ---------------------------------------------------------------- run config files
@pytest.mark.parametrize("name", sorted(bundled_configs()))
def test_bundled_configs_are_valid(name: str) -> None:
    config = load_train_config(name)
    assert config.scenario in mgenv.scenarios.names()
    env = mgenv.parallel_env(config.scenario, **config.env_overrides)
    config.resolve_learners(list(env.possible_agents))
    for baseline in config.eval_baselines:
        baselines.make(baseline)


def test_every_paper_scenario_has_a_config() -> None:
    scenarios = {load_train_config(name).scenario for name in bundled_configs()}
    assert scenarios == set(mgenv.scenarios.names())


def test_command_line_replaces_file_values(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        'scenario = "default"\nseed = 9\nn_envs = 2\n'
        "[overrides]\nmessage_loss = 0.1\n[hyperparams]\nn_epochs = 2\n"
    )
    config = load_train_config(path, seed=1, hyperparams={"gamma": 0.9})
    assert (config.seed, config.n_envs) == (1, 2)
    assert config.overrides == {"message_loss": 0.1}
    assert config.hyperparams == {"n_epochs": 2, "gamma": 0.9}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr = 1\n", r"unknown TrainConfig fields \['lr'\]; valid: \['scenario'"),
        ('sharing = "team"\n', r"valid: \['role', 'agent'\]"),
        ('opponents = "league"\n', r"valid: \['baseline', 'selfplay'\]"),
        ('eval_baselines = ["nash"]\n', r"unknown \['nash'\]; valid: \[.*'truthful'\]"),
        ("seed = \n", "not a valid TOML"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=expected) as err:
        load_config_file(path)
    assert str(path) in str(err.value)


def test_bad_learners_list_the_role_agents(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"valid: the agents of role 'mg'"):
        train(tiny_config(tmp_path, learners=("agg_0",)))
    with pytest.raises(ValueError, match="self-play"):
        train(
            tiny_config(tmp_path, opponents="selfplay", learners=("mg_0", "mg_1", "mg_2", "mg_3"))
        )
    with pytest.raises(FileNotFoundError, match="default_selfplay"):
        load_config_file("no_such_config")


def test_cli_trains_from_a_toml_and_again_from_the_run_config(tmp_path: Path, capsys) -> None:
    common = ["--timesteps", "96", "--n-envs", "1", "--no-tensorboard", "--out", str(tmp_path)]
    tiny = [f"--hyperparam={k}={v}" for k, v in TINY.items()]
    toml = str(ROOT / "train" / "configs" / "default.toml")
    assert main(["train", "--config", toml, "--eval-freq", "0", *common, *tiny]) == 0
    first = Path(capsys.readouterr().out.strip().splitlines()[-1])
    saved = json.loads((first / "config.json").read_text())["train_config"]
    assert saved["total_timesteps"] == 96 and saved["n_envs"] == 1 and saved["eval_freq"] == 0
    assert saved["hyperparams"]["learning_rate"] == 1e-3  # from the TOML file
    assert main(["train", "--config", str(first / "config.json")]) == 0
    second = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert second != first
    assert same_parameters(first / "model.zip", second / "model.zip")


# ---------------------------------------------------------------- bad input
def test_model_from_another_scenario_names_both_action_layouts(tmp_path: Path) -> None:
    run = train(tiny_config(tmp_path, total_timesteps=24))
    env = mgenv.parallel_env("consortium_p2p")
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="action layout mismatch") as err:
        load_policy(run)(obs, env)
    message = str(err.value)
    assert "'default'" in message and "'consortium_p2p'" in message
    assert all(name in message for name in env.action_names("mg_0"))
    assert "'price_0'" in message


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--opponents", "league"], "valid: ['baseline', 'selfplay']"),
        (["--sharing", "team"], "valid: ['role', 'agent']"),
        (["--algo", "dqn"], "valid: ['ppo', 'a2c', 'sac']"),
        (["--eval-baselines", "nash"], "'truthful'"),
        (["--config", "nope"], "default_selfplay"),
        (["--learners", "agg_0", "--timesteps", "8"], "valid: the agents of role 'mg'"),
    ],
)
def test_train_cli_errors_list_the_valid_values(argv: list[str], expected: str, capsys) -> None:
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
