"""mgenv: a multi-microgrid energy market whose trades settle through a faulty blockchain.

>>> import mgenv
>>> env = mgenv.parallel_env("default", message_loss=0.1)
>>> obs, infos = env.reset(seed=0)
>>> actions = {a: env.action_space(a).sample() for a in env.agents}
>>> obs, rewards, terminations, truncations, infos = env.step(actions)
"""

from __future__ import annotations

from typing import Any

from mgenv import scenarios
from mgenv.config import EnvConfig, apply_overrides
from mgenv.env import MarketEnv

__version__ = "0.1.0"


def make_config(scenario: str = "default", **overrides: Any) -> EnvConfig:
    """The validated config of ``scenario`` with ``overrides`` applied."""
    return apply_overrides(scenarios.get(scenario), overrides)


def parallel_env(
    scenario: str = "default", render_mode: str | None = None, **overrides: Any
) -> MarketEnv:
    """The PettingZoo ``ParallelEnv`` of ``scenario``.

    Args:
        scenario: One of ``mgenv.scenarios.names()``.
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
        **overrides: Config fields to change, e.g. ``message_loss=0.1``,
            ``n_microgrids=8``, ``protocol="ideal"`` (see ``mgenv.config``).
    """
    return MarketEnv(make_config(scenario, **overrides), render_mode=render_mode)


def env(scenario: str = "default", render_mode: str | None = None, **overrides: Any) -> Any:
    """The AEC version of :func:`parallel_env` (PettingZoo's own conversion)."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(parallel_env(scenario, render_mode=render_mode, **overrides))


def single_agent_env(
    scenario: str = "default", agent: str = "mg_0", others: Any = "truthful", **overrides: Any
) -> Any:
    """A Gymnasium env in which ``agent`` learns and every other participant is ``others``.

    ``others`` is a baseline name or a policy callable (``policy(observations, env)``).
    """
    from mgenv.wrappers.single_agent import SingleBidderEnv

    return SingleBidderEnv(scenario=scenario, agent=agent, others=others, **overrides)


def _register() -> None:
    import gymnasium

    if "mgenv/SingleBidder-v0" not in gymnasium.registry:
        gymnasium.register(
            id="mgenv/SingleBidder-v0",
            entry_point="mgenv.wrappers.single_agent:SingleBidderEnv",
        )


_register()

__all__ = [
    "EnvConfig",
    "MarketEnv",
    "env",
    "make_config",
    "parallel_env",
    "scenarios",
    "single_agent_env",
]
