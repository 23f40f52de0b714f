"""``SingleBidder``: one participant learns, every other one is played by a policy.

>>> import gymnasium, mgenv
>>> env = gymnasium.make("mgenv/SingleBidder-v0", scenario="default", agent="mg_0")
>>> obs, info = env.reset(seed=0)

It is a plain ``gymnasium.Env`` (passes Gymnasium's and SB3's env checkers), so any
single-agent library can train a bidder against the baselines.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

import mgenv
from mgenv.config import ROLES


class SingleBidderEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """A Gymnasium view of one agent of the market env.

    Args:
        scenario: Scenario name.
        agent: The learning participant, e.g. ``"mg_0"``, ``"agg_1"``.
        others: Baseline name or policy callable that plays every other participant.
        render_mode: Passed to the market env.
        **overrides: Config overrides.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"]}  # noqa: RUF012 (gymnasium API)

    def __init__(
        self,
        scenario: str = "default",
        agent: str = "mg_0",
        others: Any = "truthful",
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        cfg = mgenv.make_config(scenario, **overrides)
        roles = tuple(r for r in ROLES if r != "user" or cfg.n_users > 0)
        self.market = mgenv.parallel_env(
            scenario, render_mode=render_mode, **{**overrides, "learning_roles": roles}
        )
        if agent not in self.market.possible_agents:
            raise ValueError(
                f"agent {agent!r} is not in scenario {scenario!r}; "
                f"agents are {self.market.possible_agents}"
            )
        if isinstance(others, str):
            import baselines

            others = baselines.make(others)
        self.agent = agent
        self.others = others
        self.render_mode = render_mode
        self.observation_space = self.market.observation_space(agent)
        self.action_space = self.market.action_space(agent)
        self._obs: dict[str, np.ndarray] = {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the market; returns the learning agent's observation."""
        super().reset(seed=seed)
        self._obs, infos = self.market.reset(seed=seed, options=options)
        return self._obs[self.agent], infos[self.agent]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One market period with ``action`` for the learner and the policy for the others."""
        rest = {a: o for a, o in self._obs.items() if a != self.agent}
        actions = dict(self.others(rest, self.market)) if rest else {}
        actions[self.agent] = action
        for a, act in actions.items():  # baselines give no set-points (dispatch="agent")
            if a != self.agent:
                actions[a] = self.market.with_rule_setpoints(a, act)
        obs, rewards, terms, truncs, infos = self.market.step(actions)
        self._obs = obs
        return (
            obs[self.agent],
            rewards[self.agent],
            terms[self.agent],
            truncs[self.agent],
            infos[self.agent],
        )

    def render(self) -> Any:
        """Render the market env."""
        return self.market.render()
