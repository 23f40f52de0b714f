"""Batched physics, observations and opponents against the single code, bit for bit.

B single envs (``mgenv.parallel_env``) with different seeds are run with random actions; at
every period their state is stacked and fed to the batched functions, whose results must equal
the stacked single results exactly (``np.array_equal``, same dtype).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from gymnasium.utils import seeding

import baselines
import mgenv
from mgenv import _jit
from mgenv import observe as mobs
from mgenv.batched import observe as bobs
from mgenv.batched.opponents import SUPPORTED, BatchedPublicInfo, batched_opponent
from mgenv.batched.physics import BatchedElectric, draw_profiles_batch
from mgenv.physics.model import Forecast
from mgenv.physics.profiles import draw_profiles
from mgenv.physics.units import Dispatch

# (scenario overrides, copies): the default config and variants that take other branches
# (16 microgrids: pairwise sums; 1 and 5 segments; a microgrid without battery; no users).
CASES = [
    ({}, 1),
    ({}, 3),
    ({}, 64),
    ({"n_microgrids": 16}, 3),
    ({"n_microgrids": 16, "n_aggregators": 3, "n_users": 5, "protocol": "ideal"}, 5),
    ({"n_segments": 1, "protocol": "ideal"}, 3),
    ({"n_segments": 5, "battery_kwh": (100.0, 0.0, 80.0), "protocol": "ideal"}, 3),
    ({"n_users": 0, "availability": 0.3, "protocol": "pbft"}, 3),
]
ROLES = ("mg", "agg", "user")


def equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def assert_stacked(batched, singles, what):
    ref = np.stack([np.asarray(s) for s in singles])
    assert equal(batched, ref), f"{what}: batched differs from the stacked single results"


class Buffers:
    """Records the float64 feature buffers that the observation builders cast to float32.

    The float32 cast hides most float64 rounding differences; comparing the buffers shows
    that every feature is computed exactly as the single code computes it.
    """

    def __init__(self, monkeypatch):
        # The numpy path's buffers: the single env's compiled observation kernel builds the
        # same values without one (tests/test_jit.py compares the two paths).
        monkeypatch.setattr(_jit, "ENABLED", False)
        self.single, self.batched = [], []
        finish = mobs._finish
        # The numpy path: with the kernels, the single env's microgrid observations (one
        # kernel, mgenv/observe.py) do not go through _finish (tests/test_jit.py compares
        # the two paths; the batched kernels are compared in the other tests here).
        monkeypatch.setattr(_jit, "ENABLED", False)

        def record(rows, role):
            # both go through mgenv.observe: (F, n) for one market, (F, B, n) for B copies
            seen = self.single if rows.ndim == 2 else self.batched
            seen.append((role, np.moveaxis(rows, 0, -1).copy() if rows.ndim > 2 else rows.copy()))
            return finish(rows, role)

        monkeypatch.setattr(mobs, "_finish", record)

    def check(self, copies, what):
        """Batched ``(B, n, F)`` buffers equal the single ``(F, n)`` ones, transposed, stacked."""
        assert len(self.single) == copies * len(self.batched)
        for r, (role, rows) in enumerate(self.batched):
            mine = [x for k, (ro, x) in enumerate(self.single) if k % len(self.batched) == r]
            assert all(ro == role for ro, _ in self.single[r :: len(self.batched)])
            assert equal(rows, np.stack([x.T for x in mine])), f"{what}: {role} float64 features"
        self.single.clear()
        self.batched.clear()


def episode_streams(seed):
    """The weather and load streams ``MarketEnv.reset(seed)`` gives the core."""
    seed_rng, _ = seeding.np_random(seed)
    root = np.random.default_rng(int(seed_rng.integers(2**63)))
    weather, load, *_ = root.spawn(6)
    return weather, load


def stack(envs, get):
    return np.stack([np.asarray(get(e.core)) for e in envs])


def scales_and_common(envs):
    core = envs[0].core
    s = bobs.obs_scales(core.cfg)
    t = core.t
    c = bobs.batched_common(
        s, t, stack(envs, lambda c: c.last_price), stack(envs, lambda c: c.online_share)
    )
    return s, c


def batched_observations(envs):
    """Every role's batched observations from the stacked state of ``envs``."""
    s, c = scales_and_common(envs)
    t = min(envs[0].core.t, envs[0].config.horizon - 1)
    prof = [stack(envs, lambda c, k=k: c.profiles[k][t]) for k in range(4)]
    d = Dispatch(*(stack(envs, lambda c, k=k: c.dispatch[k]) for k in range(6)))
    commit = stack(envs, lambda c: c.commit)
    served = stack(envs, lambda c: c.served_share)
    mg = bobs.mg_observations(
        c,
        s,
        (prof[0], prof[1], prof[2]),
        d,
        stack(envs, lambda c: c.physics.soc),
        stack(envs, lambda c: c.sold_share),
        commit,
    )
    delta = stack(envs, lambda c: c.delta)
    agg = bobs.agg_observations(c, s, d, prof[3], served, delta, commit)
    user = bobs.user_observations(c, s, prof[3], served, commit)
    return {"mg": mg, "agg": agg, "user": user}


def batched_public(envs):
    infos = [e.public_info() for e in envs]
    i0 = infos[0]
    return BatchedPublicInfo(
        i0.market,
        i0.grid_buy,
        i0.feed_in,
        np.array([i.last_price for i in infos]),
        *(np.stack([getattr(i, k) for i in infos]) for k in ("surplus", "gen_headroom")),
        *(np.stack([getattr(i, k) for i in infos]) for k in ("deficit", "user_need")),
        np.stack([i.load_forecast for i in infos]),
        i0.fleet,
        i0.buyer_agg,
    )


def check_period(envs, model, policies, buffers):
    """Observations, opponents and the plan of the current period, batched vs single."""
    obs = batched_observations(envs)
    for e in envs:
        e.core._obs = {}  # rebuild (same values) to record the float64 features
    single = [e.core.observations(ROLES) for e in envs]
    for role in ROLES:
        assert_stacked(obs[role], [o[role] for o in single], f"{role} at t={envs[0].core.t}")
    buffers.check(len(envs), f"t={envs[0].core.t}")
    pub = batched_public(envs)
    for name, (single, batch) in policies.items():
        for role in ROLES:
            rows = envs[0].core.role_index[role]
            if not rows.size:  # the env never asks a policy for an empty role
                continue
            want = [single.act_role(role, rows, e.core.observations(ROLES)[role], e) for e in envs]
            assert_stacked(batch.act_role(role, pub), want, f"{name} {role}")
    core = envs[0].core
    if core.t < core.cfg.horizon:
        t = core.t
        fc = [stack(envs, lambda c, k=k: c.profiles[k][t]) for k in range(3)]
        d = model.plan(t, Forecast(*fc), core.grid_buy, None)
        for k, field in enumerate(Dispatch._fields):
            assert_stacked(d[k], [e.core.dispatch[k] for e in envs], f"plan {field} t={t}")


@pytest.mark.parametrize(("overrides", "copies"), CASES)
def test_batched_matches_single_envs(overrides, copies, monkeypatch):
    buffers = Buffers(monkeypatch)
    envs = [mgenv.parallel_env("default", **overrides) for _ in range(copies)]
    seeds = [11 * b + 3 for b in range(copies)]
    for e, seed in zip(envs, seeds, strict=True):
        e.reset(seed=seed)
    buffers.single.clear()  # the env's own observations are not compared here
    cfg = envs[0].config
    # The profiles the envs drew at reset, from the same streams.
    streams = [episode_streams(seed) for seed in seeds]
    prof = draw_profiles_batch(cfg, [w for w, _ in streams], [ld for _, ld in streams])
    for k, field in enumerate(prof._fields):
        assert_stacked(prof[k], [e.core.profiles[k] for e in envs], f"profiles {field}")
    model = BatchedElectric(cfg, envs[0].core.fleet, copies)
    model.reset()
    assert_stacked(model.soc, [e.core.physics.soc for e in envs], "soc at reset")
    policies = {
        n: (baselines.make(n), batched_opponent(n, cfg, envs[0].core if copies > 3 else None))
        for n in SUPPORTED
    }
    rng = np.random.default_rng(copies)
    nm = cfg.n_microgrids
    for t in range(cfg.horizon):
        check_period(envs, model, policies, buffers)
        results = []
        for b, e in enumerate(envs):
            # Random actions; every third period copy 0 neither offers nor bids (no trades).
            acts = {a: rng.uniform(-1, 1, e.action_space(a).shape) for a in e.agents}
            if b == 0 and t % 3 == 2:
                acts = {a: -np.ones(e.action_space(a).shape) for a in e.agents}
            e.step(acts)
            buffers.single.clear()  # the env's own observations are not compared here
            results.append(e.history[-1])
        sold = np.stack([r.settlement.sold[:nm] for r in results])
        surplus = np.stack([r.dispatch.surplus for r in results])
        real = model.realise(sold, surplus)
        for k, field in enumerate(real._fields[:5]):
            assert_stacked(real[k], [r.physics[k] for r in results], f"realise {field} t={t}")
        assert real.extra == {}
        assert_stacked(model.soc, [e.core.physics.soc for e in envs], f"soc after t={t}")
    check_period(envs, model, policies, buffers)  # the observations after the last period


@pytest.mark.parametrize("jit", [True, False], ids=["kernels", "numpy"])
@pytest.mark.parametrize("scenario", mgenv.scenarios.names())
@pytest.mark.parametrize("copies", [1, 3, 64])
def test_profiles_match_and_streams_stay_in_sync(scenario, copies, jit, monkeypatch):
    """Both paths: the profile kernels copy by copy (mgenv/_jit.py) and the numpy code."""
    monkeypatch.setattr(_jit, "ENABLED", jit and _jit.ENABLED)
    cfg = mgenv.make_config(scenario)
    gens = [np.random.default_rng(1000 + b).spawn(2) for b in range(copies)]
    single = copy.deepcopy(gens)
    prof = draw_profiles_batch(cfg, [g[0] for g in gens], [g[1] for g in gens])
    want = [draw_profiles(cfg, w, ld) for w, ld in single]
    for k, field in enumerate(prof._fields):
        assert prof[k].shape[:2] == (copies, cfg.horizon)
        assert_stacked(prof[k], [p[k] for p in want], f"{scenario} {field}")
    for (w, ld), (sw, sl) in zip(gens, single, strict=True):
        assert w.bit_generator.state == sw.bit_generator.state
        assert ld.bit_generator.state == sl.bit_generator.state
        # ... and the next draws agree too.
        assert w.random() == sw.random() and ld.random() == sl.random()


def test_profiles_with_other_bit_generators():
    """The cloudiness uniform comes from a raw PCG64 draw; other bit generators take the
    uniform double itself: both give draw_profiles's profiles and end states."""
    cfg = mgenv.make_config("default")
    kinds = [np.random.PCG64, np.random.MT19937, np.random.Philox, np.random.SFC64]
    gens = [[np.random.Generator(k(100 * b + s)) for s in range(2)] for b, k in enumerate(kinds)]
    single = copy.deepcopy(gens)
    prof = draw_profiles_batch(cfg, [g[0] for g in gens], [g[1] for g in gens])
    want = [draw_profiles(cfg, w, ld) for w, ld in single]
    for k, field in enumerate(prof._fields):
        assert_stacked(prof[k], [p[k] for p in want], field)
    for (w, ld), (sw, sl) in zip(gens, single, strict=True):
        assert w.random() == sw.random() and ld.random() == sl.random()


def test_profiles_reject_mismatched_streams():
    cfg = mgenv.make_config("default")
    gens = np.random.default_rng(0).spawn(3)
    with pytest.raises(ValueError, match="one of each per copy"):
        draw_profiles_batch(cfg, gens[:2], gens[2:])


def random_state(rng, copies, cfg):
    """Random bookkeeping state with edge cases: zero needs, zero plans, extreme values."""
    nm, na, nu, n = cfg.n_microgrids, cfg.n_aggregators, cfg.n_users, cfg.n_participants

    def draw(*shape, zeros=0.3):
        x = rng.exponential(50.0, shape) * rng.choice([1e-9, 1.0, 1e3], shape, p=[0.1, 0.8, 0.1])
        return np.where(rng.random(shape) < zeros, 0.0, x)

    return {
        "forecasts": tuple(draw(copies, nm) for _ in range(4)),
        "user_need": draw(copies, nu),
        "dispatch": Dispatch(*(draw(copies, nm) for _ in range(6))),
        "soc": rng.uniform(-0.1, 1.1, (copies, nm)),
        "last_price": rng.uniform(-1.0, 200.0, copies),
        "online_share": rng.choice([0.0, 0.5, 1.0], copies),
        "sold_share": rng.uniform(0.0, 1.0, (copies, nm)),
        "served_share": np.where(
            rng.random((copies, nm + nu)) < 0.2, 0.0, rng.random((copies, nm + nu))
        ),
        "delta": rng.uniform(0.85, 1.2, (copies, na)),
        "commit": rng.uniform(0.0, 1.0, (copies, n)),
    }


def single_observations(core, state, b):
    """The single core's observations for copy ``b`` of ``state`` (written into its fields)."""
    p, t = core.profiles, min(core.t, core.cfg.horizon - 1)
    for k, name in enumerate(("pv_forecast", "wind_forecast", "load_forecast")):
        getattr(p, name)[t] = state["forecasts"][k][b]
    p.user_load_forecast[t] = state["user_need"][b]
    core.dispatch = Dispatch(*(x[b] for x in state["dispatch"]))
    core.physics._soc = state["soc"][b]
    core.last_price = float(state["last_price"][b])
    core.online_share = float(state["online_share"][b])
    for name in ("sold_share", "served_share", "delta", "commit"):
        setattr(core, name, state[name][b])
    core._obs = {}
    return core.observations(ROLES)


@pytest.mark.parametrize(
    "overrides", [{}, {"n_microgrids": 16}, {"n_microgrids": 9, "n_aggregators": 4, "n_users": 7}]
)
@pytest.mark.parametrize("copies", [1, 3, 64])
def test_observations_on_random_states(overrides, copies, monkeypatch):
    buffers = Buffers(monkeypatch)
    env = mgenv.parallel_env("default", **overrides)
    env.reset(seed=0)
    buffers.single.clear()
    core, cfg = env.core, env.config
    rng = np.random.default_rng(copies)
    s = bobs.obs_scales(cfg, core)
    for t in (0, 7, cfg.horizon):  # the horizon: the observations after the last period
        core.t = min(t, cfg.horizon - 1)
        core._plan()  # the single core's prices of the period
        core.t = t
        state = random_state(rng, copies, cfg)
        c = bobs.batched_common(s, t, state["last_price"], state["online_share"])
        d, served, commit = state["dispatch"], state["served_share"], state["commit"]
        got = {
            "mg": bobs.mg_observations(
                c, s, state["forecasts"][:3], d, state["soc"], state["sold_share"], commit
            ),
            "agg": bobs.agg_observations(
                c, s, d, state["user_need"], served, state["delta"], commit
            ),
            "user": bobs.user_observations(c, s, state["user_need"], served, commit),
        }
        singles = [single_observations(core, state, b) for b in range(copies)]
        for role in ROLES:
            assert got[role].dtype == np.float32
            assert_stacked(got[role], [o[role] for o in singles], f"{role} t={t}")
        buffers.check(copies, f"t={t}")


def test_obs_scales_are_the_cores():
    env = mgenv.parallel_env("default", n_microgrids=16)
    s = bobs.obs_scales(env.config)
    core = env.core
    assert equal(s.mg_scale, core.mg_scale) and equal(s.user_scale, core.user_scale)
    assert s.system_scale == core.system_scale and equal(s.mc_max, core.mc_max)
    assert bobs.period_prices(s, 10**6) == bobs.period_prices(s, env.config.horizon - 1)


def test_unsupported_configs_raise():
    cfg = mgenv.make_config("default")
    with pytest.raises(ValueError, match="supported are"):
        batched_opponent("nash_bidding", cfg)
    p2p = mgenv.make_config("consortium_p2p")
    with pytest.raises(ValueError, match="uniform_price"):
        batched_opponent("truthful", p2p)
    agent = mgenv.make_config("default", dispatch="agent")
    env = mgenv.parallel_env("default")
    with pytest.raises(ValueError, match="dispatch='rule'"):
        BatchedElectric(agent, env.core.fleet, 2)
    model = BatchedElectric(cfg, env.core.fleet, 2)
    with pytest.raises(RuntimeError, match="before plan"):
        model.realise(np.zeros((2, 4)), np.zeros((2, 4)))
