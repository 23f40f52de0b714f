"""The market mechanism interface and its registry.

A mechanism turns one period's action matrices (one per role, entries in [-1, 1]) and the
physical positions into matched trades. To add one (the three-tier game, peer-to-peer
pricing, a call double auction), write a class with this interface in its own module and add
``"name": "module:Class"`` to :data:`MECHANISMS`; ``MarketParams.mechanism`` then accepts it.
The registry holds import paths so that :mod:`mgenv.config` can validate names without
importing the mechanisms (which import the config).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol

import numpy as np

from mgenv.market.settlement import Trades

if TYPE_CHECKING:
    from mgenv.config import MarketParams

MECHANISMS: Final[dict[str, str]] = {
    "uniform_price": "mgenv.market.uniform:UniformPrice",
    "p2p": "mgenv.market.p2p:P2PMarket",
    "three_tier": "mgenv.market.three_tier:ThreeTier",
}


class MarketInputs(NamedTuple):
    """What a mechanism may use besides the actions (forecast positions of the period)."""

    offerable_kwh: np.ndarray  # (n_mg,) surplus + generator headroom
    deficit_kwh: np.ndarray  # (n_mg,) microgrids' energy to buy
    user_need_kwh: np.ndarray  # (n_user,) users' energy to buy
    grid_buy: float  # yuan/kWh
    feed_in: float  # yuan/kWh
    buyer_agg: np.ndarray  # (n_mg + n_user,) aggregator of each buyer (0-based)
    buyer_global: np.ndarray  # (n_mg + n_user,) global index of each buyer
    n_mg: int
    n_agg: int
    # (n_mg,) microgrids' forecast electric load, kWh (seed 002 eq. 9 needs e_L); None if the
    # core does not provide it.
    load_kwh: np.ndarray | None = None
    period: int | None = None  # market period index, if the core provides it
    dt_h: float = 1.0  # period length, hours (storage power limits)


class StorageMoves(NamedTuple):
    """Aggregators' batteries in one period (seed 001 eq. 19), each ``(n_agg,)``.

    Energy balance: ``level_after = level_before + eta_charge * charge_kwh - discharge_kwh /
    eta_discharge``, within ``[soc_min, soc_max] * capacity``. The core books ``charge_kwh`` as
    the aggregator's deficit position: what its market did not deliver (``grid_kwh``, failed
    purchases) is a grid import at the grid price.
    """

    level_before: np.ndarray  # content at the start of the period, kWh
    level_after: np.ndarray  # content at its end, kWh
    charge_kwh: np.ndarray  # energy bought: in the market (failed on chain: grid) + grid_kwh
    discharge_kwh: np.ndarray  # energy sold in the market (or, failed, fed in), kWh
    capacity_kwh: np.ndarray  # capacity, kWh
    soc_min: np.ndarray  # share of capacity
    soc_max: np.ndarray  # share of capacity
    eta_charge: np.ndarray  # in (0, 1]
    eta_discharge: np.ndarray  # in (0, 1]
    # C_battery * charge_kwh (eq. 19) + the day-end residue charge, yuan, paid outside the market
    cost: np.ndarray
    grid_kwh: np.ndarray  # bought from the grid by the valley rule, kWh (part of charge_kwh)
    residue_kwh: np.ndarray  # |content - start content| at the battery's day end, else 0, kWh


class MarketOutcome(NamedTuple):
    """A mechanism's result for one period."""

    trades: Trades
    price: float  # yuan/kWh, the period's reference (clearing) price; 0 if nothing cleared
    cleared: bool
    offered_kwh: np.ndarray  # (n_mg,) energy each microgrid offered
    delta: np.ndarray  # (n_agg,) aggregators' service coefficients
    # (n_mg,) extra own consumption of each microgrid decided in the market, kWh, within
    # [-load, surplus] (seed 002 eq. 9: sellers adjust their load, usually down); None = none.
    load_shift_kwh: np.ndarray | None = None
    storage: StorageMoves | None = None  # aggregators' batteries (seed 001), if any


class Mechanism(Protocol):
    """A market mechanism (see the module docstring)."""

    def action_names(self, role: str) -> list[str]:
        """Names of the action entries of ``role`` (its action dimension is their number)."""
        ...

    def clear(self, actions: dict[str, np.ndarray], inputs: MarketInputs) -> MarketOutcome:
        """Clear one period from the per-role action matrices."""
        ...


def make_mechanism(params: MarketParams) -> Mechanism:
    """Build the mechanism named by ``params.mechanism``."""
    module, _, cls = MECHANISMS[params.mechanism].partition(":")
    factory = getattr(importlib.import_module(module), cls)
    mech: Mechanism = factory(params)
    return mech
