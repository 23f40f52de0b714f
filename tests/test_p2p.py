"""The ``"p2p"`` mechanism: layouts, clearing against the game, env integration, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import baselines
import mgenv
import mgenv.core
from baselines.stackelberg import solve_exact
from mgenv.config import MarketParams
from mgenv.market import mechanism
from mgenv.market.mechanism import MarketInputs, make_mechanism
from mgenv.market.p2p import declared_load, price_to_action
from mgenv.market.p2p_game import best_response, case_period
from tests.test_invariants import check_period

P_S, P_B = 0.77, 0.85


def inputs(per, load=True, period=0):
    """MarketInputs of a case period with the five users as microgrids (no users, 1 agg)."""
    net = per.net_kwh
    n = net.size
    return MarketInputs(
        np.maximum(net, 0.0),
        np.maximum(-net, 0.0),
        np.zeros(0),
        per.p_b,
        per.p_s,
        np.arange(n) % 1,
        np.arange(n),
        n,
        1,
        per.load_kwh.copy() if load else None,
        period,
    )


def acts(n, price=0.0, declared=0.0, frac=1.0):
    mg = np.tile([declared, 2 * frac - 1], (n, 1))
    return {"mg": mg, "agg": np.array([[price]]), "user": np.zeros((0, 1))}


def test_action_layouts():
    env = mgenv.parallel_env("consortium_p2p")
    assert env.action_names("mg_0") == ["declared_load", "trade_frac"]
    assert env.action_names("agg_0") == ["price"]
    assert env.action_space("mg_3").shape == (2,)
    assert price_to_action(0.81, P_S, P_B) == pytest.approx(0.0)
    np.testing.assert_allclose(
        declared_load(np.array([-1.0, -0.5, 0.0, 0.5, 1.0]), np.full(5, 2.0), np.full(5, 6.0)),
        [0.0, 1.0, 2.0, 4.0, 6.0],
    )


@pytest.mark.parametrize("t", [7, 12, 18])
@pytest.mark.parametrize("a_price", [-0.6, 0.0, 0.9])
def test_shortage_period_clears_at_the_posted_price_with_eq9_responses(t, a_price):
    per = case_period(t)
    mech = make_mechanism(MarketParams(mechanism="p2p"))
    out = mech.clear(acts(5, a_price), inputs(per))
    price = P_S + (a_price + 1) / 2 * (P_B - P_S)
    assert out.price == pytest.approx(price) and out.cleared
    s = per.sellers
    expect = best_response(per.lam, per.pv_kwh, price) - per.load_kwh
    np.testing.assert_allclose(out.load_shift_kwh[s], expect[s], atol=1e-12)
    assert np.all(out.load_shift_kwh[~s] == 0)
    tr = out.trades
    sold = np.bincount(tr.seller, tr.kwh, 5)
    bought = np.bincount(tr.buyer, tr.kwh, 5)
    supply = per.pv_kwh - per.load_kwh - out.load_shift_kwh
    assert sold.sum() == pytest.approx(bought.sum(), abs=1e-12)
    need = np.maximum(-per.net_kwh, 0)
    ration = min(1.0, need.sum() / supply[s].sum())  # period 7: the load cuts overshoot demand
    np.testing.assert_allclose(sold[s], supply[s] * ration, rtol=1e-12)
    np.testing.assert_allclose(bought, need * sold.sum() / need.sum(), atol=1e-12)  # eq. 13
    assert np.all(tr.agg == 5) and np.all(tr.delta == 1.0) and np.all(tr.price == out.price)
    assert tr.kwh.size <= s.sum() + per.buyers.sum() - 1


@pytest.mark.parametrize("t", [13, 14])
def test_surplus_period_uses_the_compromise_price_whatever_is_posted(t):
    per = case_period(t)
    mech = make_mechanism(MarketParams(mechanism="p2p"))
    out = mech.clear(acts(5, 0.9), inputs(per))
    assert out.price == pytest.approx(0.81)
    bought = np.bincount(out.trades.buyer, out.trades.kwh, 5)
    np.testing.assert_allclose(bought, np.maximum(-per.net_kwh, 0), rtol=1e-12)


def test_declared_type_and_trade_fraction_change_the_response():
    per = case_period(12)
    mech = make_mechanism(MarketParams(mechanism="p2p"))
    truth = mech.clear(acts(5, 0.5), inputs(per)).load_shift_kwh
    low = mech.clear(acts(5, 0.5, declared=-1.0), inputs(per)).load_shift_kwh
    assert np.all(low[:2] < truth[:2])  # a lower declared load consumes less at any price
    half = mech.clear(acts(5, 0.5, frac=0.5), inputs(per))
    assert np.all(half.load_shift_kwh[:2] > truth[:2])  # half sold at p_s: less incentive
    assert mech.last is not None
    np.testing.assert_allclose(half.offered_kwh[:2], 0.5 * mech.last.supply_kwh[:2])
    none = mech.clear(acts(5, 0.5, frac=0.0), inputs(per))
    assert none.trades.kwh.size == 0 and not none.cleared and np.all(none.load_shift_kwh == 0)


def test_without_load_the_mechanism_warns_and_keeps_loads():
    mech = make_mechanism(MarketParams(mechanism="p2p"))
    with pytest.warns(UserWarning, match="load_kwh"):
        out = mech.clear(acts(5), inputs(case_period(9), load=False))
    assert np.all(out.load_shift_kwh == 0) and out.cleared


@pytest.fixture
def core_passes_load(monkeypatch):
    """The core change asked for in the report: MarketInputs(..., load_kwh=..., period=t)."""
    real = mechanism.MarketInputs
    state = {}

    def make(*args, **kw):
        core = state["env"].core
        if len(args) <= 9:
            kw.setdefault("load_kwh", core.profiles.load_forecast[core.t])
            kw.setdefault("period", core.t)
        return real(*args, **kw)

    monkeypatch.setattr(mgenv.core, "MarketInputs", make)
    return state


def test_env_episode_matches_the_game_and_balances(core_passes_load):
    env = mgenv.parallel_env("consortium_p2p")
    core_passes_load["env"] = env
    obs, _ = env.reset(seed=0)
    pol = baselines.make("stackelberg")
    while env.agents:
        obs, *_ = env.step(pol(obs, env))
    for t, r in zip(range(7, 19), env.history, strict=True):
        check_period(env, r)
        eq = solve_exact(case_period(t))
        assert r.price == pytest.approx(eq.price, abs=1e-12)
        np.testing.assert_allclose(r.realised[2], eq.outcome.load_kwh, atol=1e-12)  # Table 12
        st = r.settlement
        np.testing.assert_allclose(st.bought[:5], eq.outcome.bought_kwh, atol=1e-12)  # Table 13
        per = case_period(t)
        b, s = per.buyers, per.sellers
        assert np.all(st.cost[:5][b] < eq.outcome.buyer_grid_cost[b])  # Fig. 4
        assert np.all(st.revenue[:5][s] > eq.outcome.seller_grid_revenue[s])  # Fig. 5
        assert r.committed.all()


def test_unqualified_participant_cannot_trade(core_passes_load):
    env = mgenv.parallel_env("consortium_p2p", p2p_unqualified=("mg_0", "mg_4"))
    core_passes_load["env"] = env
    obs, _ = env.reset(seed=1)
    pol = baselines.make("truthful")
    while env.agents:
        obs, *_ = env.step(pol(obs, env))
    for r in env.history:
        check_period(env, r)
        assert not np.isin(r.trades.seller, (0, 4)).any()
        assert not np.isin(r.trades.buyer, (0, 4)).any()
    assert sum(r.trades.kwh.sum() for r in env.history) > 0  # mg_1 still sells


def test_grid_only_reference_policy_does_not_trade(core_passes_load):
    env = mgenv.parallel_env("consortium_p2p", opponent_policy="grid_only")
    core_passes_load["env"] = env
    obs, _ = env.reset(seed=0)
    pol = baselines.make("grid_only")
    while env.agents:
        obs, *_ = env.step(pol(obs, env))
    assert all(r.trades.kwh.size == 0 for r in env.history)


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"feed_in_price": 0.85}, r"feed_in_price must be below buy_price"),
        ({"buy_price": 0.5}, r"feed_in_price must be below buy_price"),
        ({"horizon": 13}, r"data_kwh has shape \(12, 5\); needs at least \(horizon=13"),
        ({"p2p_unqualified": ("mg_5",)}, r"p2p_unqualified names 'mg_5', but there are 5 mg"),
        ({"p2p_unqualified": ("boss",)}, r"p2p_unqualified has 'boss'"),
        ({"p2p_formulation": "auction"}, r"p2p_formulation='auction' is not one of"),
        ({"p2p_lambda_ref": 2.0}, r"p2p_lambda_ref=2.0 is outside \[0, 1\]"),
        ({"p2p_installed_kw": (-1.0,)}, r"p2p_installed_kw\[0\]=-1.0 is outside"),
    ],
)
def test_bad_configuration_names_the_culprit(overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        mgenv.parallel_env("consortium_p2p", **overrides)


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_bad_data_names_the_cell(bad):
    rows = [list(r) for r in mgenv.make_config("consortium_p2p").profiles.load_data_kwh]
    rows[3][2] = bad
    with pytest.raises(ValueError, match=r"load_data_kwh\[3\]\[2\]=.* is outside"):
        mgenv.parallel_env("consortium_p2p", load_data_kwh=rows)


def test_after_settlement_records_the_sellers_shortfall():
    per = case_period(11)
    mech = make_mechanism(MarketParams(mechanism="p2p"))
    assert mech.after_settlement(np.zeros(0, bool), np.zeros(6), None) is None
    out = mech.clear(acts(5, 0.2), inputs(per))
    t = out.trades.kwh.size
    committed = np.arange(t) % 2 == 0
    error = np.array([-0.4, -0.1, 0.3, 0.0, -2.0, 0.0])  # global: 5 microgrids, then agg_0
    rec = mech.after_settlement(committed, error, None).records
    sold = np.bincount(out.trades.seller, out.trades.kwh, 5)
    np.testing.assert_allclose(
        -np.bincount(rec["su_id"], rec["difference_kwh"], 5),
        np.minimum(np.maximum(-error[:5], 0) * (sold > 0), sold),
    )
    assert np.all(rec["grid_price"] == 0.85)
    assert np.all(rec["transaction_record"] == b"")  # no block passed: nothing on the chain
