"""The policy contract and a vectorised base class for baselines.

A policy is any callable ``policy(observations, env) -> actions`` where ``observations`` maps
agent names to observation vectors and the result maps the same names to actions in [-1, 1]
(DESIGN.md). A baseline may read public market information through ``env.public_info()``
(costs, price bounds, this period's forecasts), never the env's random streams or realised
future values.

:class:`RolePolicy` groups the agents by role and calls :meth:`RolePolicy.act_role` once per
role with all of that role's agents at once, so that baselines are vectorised too.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Policy(Protocol):
    """Callable that maps observations of some agents to their actions."""

    def __call__(
        self, observations: dict[str, np.ndarray], env: Any
    ) -> dict[str, np.ndarray]:  # pragma: no cover - protocol
        """Return an action for every agent in ``observations``."""
        ...


def split_agent(agent: str) -> tuple[str, int]:
    """``"mg_3" -> ("mg", 3)``."""
    role, _, idx = agent.rpartition("_")
    return role, int(idx)


class RolePolicy:
    """Base class: subclasses implement :meth:`act_role` for whole roles at once."""

    name = "role_policy"
    #: Whether :meth:`act_role` reads its ``obs`` argument. Policies that act on public
    #: information only set it to False; the env then passes zero-width observations and
    #: skips building them.
    observes = True

    def price_only_roles(self, env: Any) -> frozenset[str]:
        """Roles whose :meth:`act_role` answer depends only on the config and the grid price.

        That is on ``env.config`` and the period's ``env.public_info().grid_buy``: no
        observation, no other public information, no random draw, no state of the policy.
        The env then asks once per role and grid price and reuses copies of the answer.
        Default: no role. A subclass that changes these roles' actions must override this.
        """
        return frozenset()

    def act_role(self, role: str, rows: np.ndarray, obs: np.ndarray, env: Any) -> np.ndarray:
        """Actions of the agents ``rows`` (indices within ``role``), shape ``(k, action_dim)``.

        Args:
            role: ``"mg"``, ``"agg"`` or ``"user"``.
            rows: Indices of the agents within their role, shape ``(k,)``.
            obs: Their observations, shape ``(k, obs_dim)``.
            env: The env (for ``public_info()`` and the action spaces).
        """
        raise NotImplementedError

    def __call__(self, observations: dict[str, np.ndarray], env: Any) -> dict[str, np.ndarray]:
        """Group agents by role, act per role, and split back into a dict."""
        by_role: dict[str, list[str]] = {}
        for agent in observations:
            by_role.setdefault(split_agent(agent)[0], []).append(agent)
        out: dict[str, np.ndarray] = {}
        for role, agents in by_role.items():
            rows = np.array([split_agent(a)[1] for a in agents], dtype=np.int64)
            obs = np.stack([observations[a] for a in agents])
            acts = np.asarray(self.act_role(role, rows, obs, env), dtype=np.float32)
            for k, a in enumerate(agents):
                out[a] = acts[k]
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
