"""Adversaries among the validator nodes: vote withholding and malicious (altering) nodes.

Random stream (``adversary_rng`` only), at construction, in this order:

1. ``rng.permutation(n_nodes)``; the first ``n_withholding`` nodes withhold their votes
   (:func:`draw_withholding`, every protocol that has votes);
2. data-plane protocols only: ``rng.permutation(n_nodes)``; the first
   ``floor(malicious_share * n_nodes)`` nodes are malicious (:func:`draw_malicious`).

Drawing a full permutation whatever the count makes the sets nested as the share grows, for a
fixed seed. ``floor`` (not rounding) keeps the malicious count below n / 3 whenever the share
is below 1/3, so "share < 1/3" means what the BFT bound needs.

Malicious nodes collude (the worst case): each stores and relays one and the same altered copy
of every transaction it holds (say, the quantity doubled), votes for altered copies and against
true ones, and as block creator, leader or forger proposes the altered records. The data plane
(:mod:`mgenv.chain.dataplane`) represents a node's copy by which record it is (true, altered or
none) rather than by its bytes: comparing the copies' SHA-256 digests, as the nodes' hash votes
do, is the same comparison.
"""

from __future__ import annotations

import math

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
    return chosen(rng.permutation(n_nodes), n_withholding)


def chosen(permutation: NDArray[np.int64], count: int) -> NDArray[np.bool_]:
    """Shape (n,), bool: the first ``count`` nodes of a permutation of the n nodes."""
    out = np.zeros(permutation.size, dtype=bool)
    out[permutation[:count]] = True
    return out


def n_malicious(malicious_share: float, n_nodes: int) -> int:
    """Number of malicious nodes: ``floor(malicious_share * n_nodes)`` (with a 1e-9 guard).

    Args:
        malicious_share: Share in [0, 1].
        n_nodes: Number of nodes.

    Returns:
        The count, in [0, n_nodes].
    """
    return min(n_nodes, math.floor(malicious_share * n_nodes + 1e-9))


def draw_malicious(rng: np.random.Generator, n_nodes: int, count: int) -> NDArray[np.bool_]:
    """Choose the malicious nodes (a fresh permutation, independent of the withholding set).

    Args:
        rng: The adversary stream.
        n_nodes: Number of validator nodes.
        count: How many are malicious, in [0, n_nodes].

    Returns:
        Shape (n_nodes,), bool: node is malicious.
    """
    if not 0 <= count <= n_nodes:
        raise ValueError(f"count={count} is outside [0, {n_nodes}]")
    return chosen(rng.permutation(n_nodes), count)
