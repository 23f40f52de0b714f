from __future__ import annotations

import numpy as np
import pytest

import mgenv

SCENARIOS = mgenv.scenarios.names()


def rollout(env, seed, policy=None, steps=None):
    """Run an episode with seeded random actions (or ``policy``); return per-step records."""
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed + 1000)
    records = []
    while env.agents and (steps is None or len(records) < steps):
        if policy is None:
            actions = {
                a: rng.uniform(-1, 1, env.action_space(a).shape).astype(np.float32)
                for a in env.agents
            }
        else:
            actions = policy(obs, env)
        obs, rewards, terms, truncs, infos = env.step(actions)
        records.append((obs, rewards, terms, truncs, infos))
    return records


@pytest.fixture(params=SCENARIOS)
def scenario(request):
    return request.param
