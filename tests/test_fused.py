"""A period in one kernel call (:mod:`mgenv.fused`) gives the stage-by-stage step's results.

Two envs with the same seeds and actions, one with ``core.fuse`` on (the default), the other
off (the six kernels called one by one, with the Python between them), must return the same
observations, rewards, infos, histories (every field, blocks included), KPIs, ledgers, node
views and random states, bit for bit; over configurations the fused call covers (empty and
failed periods, adversaries that alter blocks, a ledger window that wraps, the last period)
and ones it declines (other protocols, agent dispatch, a tamper hook), with the two paths
alternating step by step.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest

import mgenv
from mgenv import _jit
from mgenv.batched import pcg64
from mgenv.chain.fast_sbet import FastSBET
from mgenv.chain.kernels_pbft import log1p_matches_numpy
from mgenv.chain.kernels_sbet_chain import LOG1P_LOOP
from mgenv.core import DeferredResult, MarketCore, PeriodResult
from mgenv.env import MarketEnv
from tests.test_jit_sbet import assert_same

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")


def chain_state(env: MarketEnv) -> list[Any]:
    """The chain's state the two paths share: ledger, node view, streams, serial."""
    chain = env.core.chain
    proto: Any = chain.protocol
    last = getattr(proto, "last_round", None)  # (the ideal chain has no rounds or streams)
    rng, net = getattr(proto, "_rng", None), getattr(proto, "network", None)
    return [
        list(chain.ledger),
        chain.ledger.next_height,
        chain.node_heads(),
        chain.nodes.height,
        chain.nodes.forked,
        chain.nodes.link_failures,
        chain.next_serial,
        None if rng is None else rng.bit_generator.state,
        None if net is None else net.online_state,
        None if last is None else list(last),
    ]


def run(
    fuse: bool | np.random.Generator,
    overrides: dict[str, Any],
    seed: int,
    episodes: int = 2,
    hook_at: frozenset[int] = frozenset(),
) -> tuple[list[Any], float]:
    """Episodes of ``default`` with ``overrides``: everything a step shows, and the seconds
    the fused path ran. ``fuse`` a generator: on or off at random, step by step."""
    env = mgenv.parallel_env("default", **overrides)
    rng = np.random.default_rng(seed)
    out: list[Any] = []
    step = 0
    for episode in range(episodes):
        obs, infos = env.reset(seed=seed + episode)
        out.append([obs, infos, env.state()])
        while env.agents:
            env.core.fuse = fuse if isinstance(fuse, bool) else bool(fuse.integers(2))
            # a tamper hook that alters nothing: the fused path must decline the period
            env.core.chain.tamper_hook = (lambda *_: None) if step in hook_at else None
            acts = {
                a: rng.uniform(-1.2, 1.2, env.action_space(a).shape).astype(np.float32)
                for a in env.agents
            }
            result = env.step(acts)
            r = env.history[-1]
            out.append([result, list(r), env.state(), env.episode_kpis(), chain_state(env)])
            step += 1
        # an earlier period's infos, after the fused step wrote the latest one's table
        out.append(env.core.agent_infos(list(env.possible_agents), env.history[0]))
        out.append([list(r) for r in env.history])
    return out, env.core.stage_time["fused"]


COVERED = [
    {},
    {"message_loss": 0.4, "availability": 0.7},  # many trades fail, empty blocks
    {"withhold_share": 0.5},  # withholding creators: altered blocks, the node view's fork
    {"malicious_share": 0.3, "missing_share": 0.2},
    {"ddos_nodes": 1, "mean_outage_periods": 2.0},
    {"n_microgrids": 12, "n_users": 5},  # more trades than the records' first room
    {"n_users": 0},
    {"horizon": 1},  # every step is the last: no next dispatch
    {"ledger_window": 3, "n_nodes": 7},  # the ring of block hashes wraps
    {"learning_roles": ("mg", "agg", "user")},  # the other roles' observations staged
    {"learning_roles": ("agg",), "opponent_policy": "nash_bidding"},  # opponents observe
]


@pytest.mark.parametrize("overrides", COVERED)
def test_fused_step_equals_the_stages(overrides: dict[str, Any]) -> None:
    fused, seconds = run(True, overrides, 7)
    staged, none = run(False, overrides, 7)
    assert seconds > 0.0 and none == 0.0  # each ran the path it was asked for
    assert_same(fused, staged)


@pytest.mark.parametrize("overrides", [{}, {"withhold_share": 0.5}, {"horizon": 3}])
def test_paths_alternate_on_one_state(overrides: dict[str, Any]) -> None:
    mixed, seconds = run(np.random.default_rng(3), overrides, 11, episodes=3)
    staged, _ = run(False, overrides, 11, episodes=3)
    assert seconds > 0.0
    assert_same(mixed, staged)


def test_the_network_draw_is_made_in_the_call_or_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fused call draws from a view of the network stream's state; without one
    (another numpy layout), FastSBET draws before the call (``Generator.random``). The
    jitters' logarithms must be numpy's: the kernel calls numpy's own loop; without it, the
    C library's log1p where that gives numpy's numbers, else (numpy's AVX-512 loops)
    FastSBET draws before the call, from the view or with ``Generator.random``, and takes
    numpy's log1p: the same results every way."""
    import mgenv.chain.fast_sbet as fast_module

    env = mgenv.parallel_env("default")
    env.reset(seed=2)
    env.step({a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents})
    fast = env.core.chain._fast
    assert fast is not None and fast._live is not None and fast._live[1].size == 4
    assert fast._ibuf[LOG1P_LOOP] != 0 and not fast._jitter_is_log  # numpy's loop, found
    staged, _ = run(False, {}, 9)
    ways = ["numpy's loop", "numpy's log1p before the call"]
    if log1p_matches_numpy():  # not on AVX-512 machines, where numpy's loop is its own
        ways.append("the C library's")
    for way in ways:
        with monkeypatch.context() as m:
            if way != "numpy's loop":
                m.setattr(fast_module, "log1p_loop", lambda: None)
            if way == "numpy's log1p before the call":
                m.setattr(fast_module, "log1p_matches_numpy", lambda: False)
            assert_same(run(True, {}, 9)[0], staged)  # from the view
            m.setattr(pcg64, "live_words", lambda bits: None)
            assert_same(run(True, {}, 9)[0], staged)  # Generator.random


def test_a_tamper_hook_sends_the_period_to_the_stages() -> None:
    hooks = frozenset({0, 5, 6, 30})
    fused, _ = run(True, {}, 5, hook_at=hooks)
    staged, _ = run(False, {}, 5, hook_at=hooks)
    assert_same(fused, staged)


@pytest.mark.parametrize(
    "overrides",
    [{"protocol": "pbft"}, {"protocol": "ideal"}, {"dispatch": "agent"}, {"signatures": "ed25519"}],
)
def test_uncovered_configurations_run_the_stages(overrides: dict[str, Any]) -> None:
    fused, seconds = run(True, overrides, 2, episodes=1)
    staged, _ = run(False, overrides, 2, episodes=1)
    assert seconds == 0.0
    assert_same(fused, staged)


@pytest.mark.parametrize(
    "name", ["ccche_thermal_game", "consortium_p2p", "crosschain_aggregators", "default"]
)
def test_which_scenarios_are_fused(name: str) -> None:
    """Only ``default``'s periods (SBET) run fused; the cross-chain scenario has the uniform
    market and electric model, so its core can fuse, but its chain declines every period."""
    env = mgenv.parallel_env(name)
    assert (env.core._fused is None) == (name in ("ccche_thermal_game", "consortium_p2p"))
    env.reset(seed=0)
    for _ in range(3):
        env.step({a: env.action_space(a).sample() for a in env.agents})
    assert (env.core.stage_time["fused"] > 0.0) == (name == "default")


def test_kernels_off_runs_the_numpy_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    fused, _ = run(True, {}, 4, episodes=1)
    monkeypatch.setattr(_jit, "ENABLED", False)
    numpy_run, seconds = run(True, {}, 4, episodes=1)
    assert seconds == 0.0
    assert_same(fused, numpy_run)


def test_observations_are_fresh_arrays() -> None:
    """Each step's observations and result arrays are new: earlier ones stay as they were."""
    env = mgenv.parallel_env("default")
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    kept = []
    for _ in range(5):
        acts = {a: rng.uniform(-1, 1, (9,)).astype(np.float32) for a in env.agents}
        o = env.step(acts)[0]
        kept.append((o, {k: v.copy() for k, v in o.items()}, env.history[-1].profit.copy()))
    assert isinstance(env.core.chain._fast, FastSBET)
    for (o, copies, profit), r in zip(kept, env.history, strict=True):
        for k in o:
            np.testing.assert_array_equal(o[k], copies[k])
        np.testing.assert_array_equal(r.profit, profit)


def test_the_next_dispatch_is_made_when_read() -> None:
    """After a fused step the plan stays as the kernel's rows until ``core.dispatch`` is read;
    read or not, it is the staged twin's, and reading it keeps the next step fused."""
    fused, staged = mgenv.parallel_env("default"), mgenv.parallel_env("default")
    staged.core.fuse = False
    rng = np.random.default_rng(5)
    for env in (fused, staged):
        env.reset(seed=3)
    for k in range(6):
        acts = {a: rng.uniform(-1, 1, (9,)).astype(np.float32) for a in fused.agents}
        seconds = fused.core.stage_time["fused"]
        for env in (fused, staged):
            env.step(acts)
        assert fused.core.stage_time["fused"] > seconds  # this step ran fused
        assert fused.core._dispatch is None  # not made yet
        if k % 2:  # read every other period: the step after must still be fused
            assert_same(list(fused.core.dispatch), list(staged.core.dispatch))
            assert fused.core._dispatch is not None
    assert_same(list(fused.history), list(staged.history))  # the rows made into results


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_step_on_their_own_state(how: str) -> None:
    """A copied env's fused step works on the copy's core, chain and buffers."""
    env = mgenv.parallel_env("default")
    env.reset(seed=2)
    rng = np.random.default_rng(1)

    def acts() -> dict[str, np.ndarray]:
        return {a: rng.uniform(-1, 1, (9,)).astype(np.float32) for a in env.possible_agents}

    for _ in range(5):
        env.step(acts())
    twin = copy.deepcopy(env) if how == "deepcopy" else pickle.loads(pickle.dumps(env))
    assert twin.core._fused is not None and twin.core._fused.core is twin.core
    twin.core.stage_time["fused"] = 0.0
    for _ in range(10):
        a = acts()
        assert_same(list(env.step(a)), list(twin.step(a)))
        assert_same(list(env.history[-1]), list(twin.history[-1]))
    assert_same(chain_state(env), chain_state(twin))
    assert twin.core.stage_time["fused"] > 0.0


def test_history_read_late_equals_the_staged_steps() -> None:
    """Results deferred by the env (read only at the episode's end) are the staged ones."""
    late, staged = mgenv.parallel_env("default"), mgenv.parallel_env("default")
    staged.core.fuse = False
    rng = np.random.default_rng(4)
    for env in (late, staged):
        env.reset(seed=9)
    while late.agents:
        acts = {a: rng.uniform(-1, 1, (9,)).astype(np.float32) for a in late.agents}
        assert_same(list(late.step(acts)), list(staged.step(acts)))
        assert isinstance(late._history[-1], DeferredResult)
        assert type(staged.history[-1]) is PeriodResult
    assert_same([list(r) for r in late.history], [list(r) for r in staged.history])
    assert all(type(r) is PeriodResult for r in late.history)


def test_a_core_of_its_own_returns_period_results() -> None:
    """Without the env shell (``defer_results`` off), a fused step returns a PeriodResult."""
    env = mgenv.parallel_env("default")
    env.reset(seed=0)
    core = MarketCore(env.config)
    core.reset(*np.random.default_rng(0).spawn(2), env.core.chain)
    mats = {r: np.zeros(s) for r, s in core.action_shapes.items()}
    assert type(core.step(mats)) is PeriodResult
    assert core.stage_time["fused"] > 0.0
