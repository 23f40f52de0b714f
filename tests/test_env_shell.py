"""The env shell's shortcuts give what the general path gives.

Opponents that declare ``price_only_roles`` get their action matrices from a per-grid-price
cache (:meth:`mgenv.env.MarketEnv._opponent_actions`); the info dicts are copies of one
template (:meth:`mgenv.core.MarketCore.agent_infos`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import baselines
import mgenv
from baselines.reference import GridOnly, Truthful


class _NoCache:
    """Wraps a policy and hides its ``price_only_roles``: the env asks it every period."""

    observes = False

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def act_role(self, role: str, rows: np.ndarray, obs: np.ndarray, env: Any) -> np.ndarray:
        self.calls += 1
        out: np.ndarray = self.inner.act_role(role, rows, obs, env)
        return out


def _episode(env: mgenv.MarketEnv, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out: list[Any] = [obs]
    while env.agents:
        acts = {
            a: rng.uniform(-1, 1, env.action_space(a).shape).astype(np.float32) for a in env.agents
        }
        out.append(env.step(acts))
    return out


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert type(a) is type(b) and (a == b or (a != a and b != b))


@pytest.mark.parametrize(
    ("policy", "overrides"),
    [
        (Truthful, {}),
        (Truthful, {"learning_roles": ("mg", "user")}),
        (GridOnly, {"learning_roles": ("agg",)}),
        (GridOnly, {"dispatch": "agent"}),
        (GridOnly, {"dispatch": "agent", "learning_roles": ("agg",)}),
    ],
)
def test_price_only_cache_equals_asking_every_period(
    policy: type, overrides: dict[str, Any]
) -> None:
    cached = mgenv.parallel_env("default", opponent_policy=policy.name, **overrides)
    asked = mgenv.parallel_env("default", opponent_policy=policy.name, **overrides)
    plain = _NoCache(policy())
    asked._opponents, asked._price_only = plain, frozenset()  # as built with this policy
    assert cached._price_only
    calls = []
    for seed in (0, 1):
        _assert_same(_episode(cached, seed), _episode(asked, seed))
        calls.append(plain.calls)
    horizon, roles = cached.config.horizon, len(cached.core.opponent_roles)
    assert calls == [horizon * roles, 2 * horizon * roles]
    # one entry per role and grid price seen, not per period
    prices = {p for p, _ in cached.core._prices}
    assert len(cached._price_only_cache) <= len(prices) * len(cached._price_only)


def test_price_only_matrices_are_fresh_or_read_only() -> None:
    """core.step gets fresh matrices, or the price-only cache's, which nothing can change."""
    env = mgenv.parallel_env("default")
    seen: list[dict[str, np.ndarray]] = []
    step = env.core.step

    def spoil(mats: dict[str, np.ndarray]) -> Any:
        seen.append(mats)
        result = step(mats)
        for m in mats.values():  # whatever core.step's caller does with them afterwards
            if m.flags.writeable:
                m[...] = np.nan
            else:
                with pytest.raises(ValueError, match="read-only"):
                    m[...] = np.nan
        return result

    env.core.step = spoil  # type: ignore[method-assign]
    ref = _episode(mgenv.parallel_env("default"), 3)
    _assert_same(_episode(env, 3), ref)
    fresh = [m for mats in seen for m in mats.values() if m.flags.writeable]
    shared = {id(m) for mats in seen for m in mats.values() if not m.flags.writeable}
    assert fresh and shared  # the learners' matrices, and the cached opponents'
    assert len({id(m) for m in fresh}) == len(fresh)  # no writeable matrix handed out twice
    assert len(shared) <= len(env._price_only_cache)  # the others are the cache's own


def test_which_policies_declare_price_only_roles() -> None:
    env = mgenv.parallel_env("default")
    declared = {
        name: frozenset(getattr(baselines.make(name), "price_only_roles", lambda e: ())(env))
        for name in baselines.names()
    }
    quotes = frozenset(("agg", "user"))
    assert {n: r for n, r in declared.items() if r} == {
        "truthful": quotes,
        "fixed_quotes": quotes,
        "nash_bidding": quotes,
        "grid_only": frozenset(("mg", "agg", "user")),
    }
    for scenario in ("ccche_thermal_game", "consortium_p2p"):  # their own action layouts
        for name in ("truthful", "grid_only"):
            assert not mgenv.parallel_env(scenario, opponent_policy=name)._price_only
