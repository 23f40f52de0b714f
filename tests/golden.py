"""Golden trajectories: a regression guard for speed work ("speed never changes results").

``python -m tests.golden`` rewrites ``tests/data/golden.npz`` from the current code; the test
``tests/test_golden.py`` replays the same seeded episodes and compares every observation,
reward, committed-trade count and clearing price with the stored ones (to 1e-9). Regenerate
only for a deliberate change of the dynamics (and bump the env version).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import mgenv

PATH = Path(__file__).parent / "data" / "golden.npz"
CASES = [(s, p) for s in mgenv.scenarios.names() for p in ("own", "pbft")]


def trajectory(scenario: str, protocol: str, seed: int = 3) -> dict[str, np.ndarray]:
    """Observations, rewards, committed counts and prices of one seeded random episode."""
    overrides = {} if protocol == "own" else {"protocol": protocol}
    env = mgenv.parallel_env(scenario, **overrides)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rows_obs, rows_rew, committed, prices = [], [], [], []
    while env.agents:
        acts = {
            a: rng.uniform(-1, 1, env.action_space(a).shape).astype(np.float32) for a in env.agents
        }
        obs, rewards, *_ = env.step(acts)
        r = env.history[-1]
        rows_obs.append(np.concatenate([obs[a] for a in sorted(obs)]))
        rows_rew.append([rewards[a] for a in sorted(rewards)])
        committed.append(int(r.committed.sum()))
        prices.append(r.price)
    return {
        "obs": np.array(rows_obs),
        "reward": np.array(rows_rew),
        "committed": np.array(committed),
        "price": np.array(prices),
    }


def main() -> None:
    """Write the golden file."""
    PATH.parent.mkdir(exist_ok=True)
    data = {f"{s}/{p}/{k}": v for s, p in CASES for k, v in trajectory(s, p).items()}
    np.savez_compressed(PATH, **data)
    print(f"wrote {len(data)} arrays to {PATH}")


if __name__ == "__main__":
    main()
