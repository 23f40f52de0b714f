"""Adversaries among the validator nodes (first version: vote withholding).

Random stream (``adversary_rng`` only), at construction: ``rng.permutation(n_nodes)``; the
first ``n_withholding`` nodes of the permutation withhold. Drawing a full permutation whatever
the count makes the withholding sets nested as ``withhold_share`` grows, for a fixed seed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def draw_withholding(
    rng: np.random.Generator, n_nodes: int, n_withholding: int
) -> NDArray[np.bool_]:
    """Choose which validator nodes never send prepare/commit votes.

    Args:
        rng: The adversary stream.
        n_nodes: Number of validator nodes.
        n_withholding: How many of them withhold, in [0, n_nodes].

    Returns:
        Shape (n_nodes,), bool: node withholds its votes.
    """
    if not 0 <= n_withholding <= n_nodes:
        raise ValueError(f"n_withholding={n_withholding} is outside [0, {n_nodes}]")
    withholding = np.zeros(n_nodes, dtype=bool)
    withholding[rng.permutation(n_nodes)[:n_withholding]] = True
    return withholding
