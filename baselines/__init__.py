"""Baseline policies: the papers' solvers and simple reference strategies.

>>> import baselines
>>> baselines.names()
['fixed_quotes', 'grid_only', 'random', 'truthful']
>>> policy = baselines.make("truthful")   # policy(observations, env) -> actions
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from baselines.base import Policy, RolePolicy
from baselines.nash_bidding import NashBidding
from baselines.noncooperative import NoncooperativePolicy
from baselines.p2p_pso import PSOPolicy
from baselines.reference import FixedQuotes, GridOnly, RandomPolicy, Truthful
from baselines.stackelberg import BayesNashPolicy, StackelbergPolicy

_REGISTRY: dict[str, Callable[..., Any]] = {
    "truthful": Truthful,
    "fixed_quotes": FixedQuotes,
    "grid_only": GridOnly,
    "random": RandomPolicy,
    "stackelberg": StackelbergPolicy,
    "stackelberg_pso": PSOPolicy,
    "bayes_nash": BayesNashPolicy,
    "nash_bidding": NashBidding,
    "noncooperative": NoncooperativePolicy,
}


def register(name: str, factory: Callable[..., Any]) -> None:
    """Add a baseline factory under ``name`` (used by the paper-specific modules)."""
    _REGISTRY[name] = factory


def names() -> list[str]:
    """Names accepted by :func:`make`, sorted."""
    return sorted(_REGISTRY)


def make(name: str, **kwargs: Any) -> Policy:
    """Build the baseline ``name``; unknown names raise ``ValueError`` listing the valid ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown baseline {name!r}; valid names are {names()}")
    policy: Policy = _REGISTRY[name](**kwargs)
    return policy


__all__ = ["Policy", "RolePolicy", "make", "names", "register"]
