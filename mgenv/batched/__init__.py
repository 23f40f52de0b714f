"""Batched core: B copies of a scenario stepped together as arrays of shape (B, ...).

:class:`BatchedCore` (:mod:`mgenv.batched.core`) is the batched twin of the single env's
core, identical copy by copy; :class:`BatchedVecEnv` (:mod:`mgenv.batched.vec`) exposes it to
Stable-Baselines3 with the slot layout and episode semantics of ``MarketVecEnv``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mgenv.batched.core import BatchedCore
    from mgenv.batched.vec import BatchedVecEnv

__all__ = ["BatchedCore", "BatchedVecEnv"]


def __getattr__(name: str) -> Any:
    """Import lazily: the stage modules are only loaded when the batched core is used."""
    if name == "BatchedCore":
        from mgenv.batched.core import BatchedCore

        return BatchedCore
    if name == "BatchedVecEnv":
        from mgenv.batched.vec import BatchedVecEnv

        return BatchedVecEnv
    raise AttributeError(f"module 'mgenv.batched' has no attribute {name!r}")
