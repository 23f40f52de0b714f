"""Reference baselines follow their definitions."""

from __future__ import annotations

import numpy as np
import pytest

import baselines
import mgenv
from mgenv.market.orders import to_price, to_unit


def test_names():
    assert {"truthful", "fixed_quotes", "grid_only", "random"} <= set(baselines.names())


def _mg_offers(name, env):
    obs, _ = env.reset(seed=0)
    for _ in range(12):  # noon: every microgrid is a seller
        obs, *_ = env.step(baselines.make("truthful")(obs, env))
    acts = baselines.make(name)(obs, env)
    s = env.config.market.n_segments
    return {
        a: (to_price(x[:s], env.config.market), to_unit(x[s : 2 * s]), to_unit(x[2 * s]))
        for a, x in acts.items()
    }


def test_truthful_offers_marginal_cost():
    env = mgenv.parallel_env("default", price_cap=3.0)
    offers = _mg_offers("truthful", env)
    info = env.public_info()
    f = info.fleet
    for i, (prices, shares, frac) in enumerate(offers.values()):
        assert frac == pytest.approx(1.0)
        head = info.gen_headroom[i]
        expected = [
            env.config.market.price_floor,
            f.gen_cost_b[i] + f.gen_cost_a[i] * head,
            f.gen_cost_b[i] + 2 * f.gen_cost_a[i] * head,
        ]
        np.testing.assert_allclose(prices, expected, rtol=1e-5)
        total = info.surplus[i] + head
        w = shares / shares.sum()
        np.testing.assert_allclose(w * total, [info.surplus[i], head / 2, head / 2], rtol=1e-5)


def test_fixed_quotes_are_high_medium_low_around_marginal_cost():
    env = mgenv.parallel_env("default", price_cap=3.0)
    offers = _mg_offers("fixed_quotes", env)
    f = env.core.fleet
    for i, (prices, shares, _) in enumerate(offers.values()):
        mc = f.gen_cost_b[i] + 2 * f.gen_cost_a[i] * f.gen_kw[i]
        np.testing.assert_allclose(prices, [1.2 * mc, mc, 0.8 * mc], rtol=1e-5)
        np.testing.assert_allclose(shares / shares.sum(), [1 / 3] * 3, rtol=1e-5)


def test_random_policy_uses_env_stream_reproducibly():
    env = mgenv.parallel_env("default")
    pol = baselines.make("random")
    obs, _ = env.reset(seed=5)
    a1 = pol(obs, env)
    obs, _ = env.reset(seed=5)
    a2 = pol(obs, env)
    for a in a1:
        np.testing.assert_array_equal(a1[a], a2[a])
        assert env.action_space(a).contains(a1[a])


@pytest.mark.parametrize("name", ["grid_only", "random", "truthful", "fixed_quotes"])
@pytest.mark.parametrize("role", ["mg", "agg", "user"])
def test_role_policies_accept_a_role_without_members(name, role):
    env = mgenv.parallel_env("default")
    env.reset(seed=0)
    policy = baselines.make(name)
    out = policy.act_role(role, np.zeros(0, dtype=np.int64), np.zeros((0, 1)), env)
    assert out.shape == (0, env.core.action_shapes[role][1])
