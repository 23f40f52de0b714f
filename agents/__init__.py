"""Learned bidders: trained Stable-Baselines3 models as policies.

A policy has the contract of ``baselines.make(name)``:
``policy(observations: dict[str, np.ndarray], env) -> dict[str, np.ndarray]``.
"""

from agents.run_config import ALGOS, RunConfig
from agents.sb3_policy import LearnedPolicy, PerAgentPolicy, load_policy

__all__ = ["ALGOS", "LearnedPolicy", "PerAgentPolicy", "RunConfig", "load_policy"]
