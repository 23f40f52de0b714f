"""Named scenarios: each builds an :class:`~mgenv.config.EnvConfig`.

>>> import mgenv
>>> mgenv.scenarios.names()
['ccche_thermal_game', 'consortium_p2p', 'crosschain_aggregators', 'default', 'sbet_cooperative']

=========================  ==================================================================
scenario                   what it is (paper)
=========================  ==================================================================
default                    4 microgrids, 2 aggregators, 2 large users, uniform-price market,
                           PBFT chain with 5% message loss and 98% node availability
crosschain_aggregators     seed 000 (Hu, Xia, Zhang 2022): 4 gas-fired microgrids with Table
                           1's capacities 130/258/114/148 kW selling to aggregators facing a
                           market demand of 220, 550 or 1000 kW
ccche_thermal_game         seed 001 (Zhang, Wu, Hu 2021): 4 microgrids, 2 aggregators, 2 large
                           users
consortium_p2p             seed 002 (Zhao et al. 2019): 5 PV prosumers, periods 7-18, load and
                           PV of Tables 8-9, p_s = 0.77, p_b = 0.85 yuan/kWh
sbet_cooperative           seed 003 (Huang et al. 2021): 5 cooperative microgrids as validators
=========================  ==================================================================

The paper scenarios start thin: this release gives each its participants, data and prices on
the uniform-price market and the PBFT or ideal chain; the paper-specific mechanisms (cross-chain
VNS consensus, CCHE physics and the three-tier game, peer-to-peer pricing, SBET) arrive as
later versions, and ``default`` moves to the SBET chain when it exists.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from importlib import resources

from mgenv.chain import ChainParams
from mgenv.config import EnvConfig, FleetParams, GridParams, MarketParams, ProfileParams, UserParams


def _default() -> EnvConfig:
    return EnvConfig(
        scenario="default",
        chain=ChainParams(protocol="pbft", n_nodes=4, message_loss=0.05, availability=0.98),
    )


def _crosschain_aggregators(demand_kw: float = 1000.0) -> EnvConfig:
    """Seed 000's case: Table 1's generation capacities.

    Microgrid 1 (``mg_0``) is the costly one, microgrid 2 (``mg_1``) the cheap large one; the
    market demand is split over two large users.
    """
    fleet = FleetParams(
        pv_kw=(0.0,),
        wind_kw=(0.0,),
        load_kw=(0.0,),
        gen_kw=(130.0, 258.0, 114.0, 148.0),
        gen_cost_a=(0.0012, 0.0004, 0.0010, 0.0007),
        gen_cost_b=(0.50, 0.32, 0.40, 0.36),
        battery_kwh=(0.0,),
        battery_kw=(0.0,),
    )
    return EnvConfig(
        scenario="crosschain_aggregators",
        n_microgrids=4,
        n_aggregators=2,
        n_users=2,
        fleet=fleet,
        users=UserParams(user_load_kw=(demand_kw / 2,)),
        market=MarketParams(price_floor=0.40, price_cap=0.80),
        grid=GridParams(buy_price=(0.80,), feed_in_price=(0.40,)),
        profiles=ProfileParams(forecast_error=0.0, load_noise=0.0),
        chain=ChainParams(protocol="ideal"),
    )


def _ccche_thermal_game() -> EnvConfig:
    return EnvConfig(
        scenario="ccche_thermal_game",
        n_microgrids=4,
        n_aggregators=2,
        n_users=2,
        market=MarketParams(price_floor=0.50, price_cap=1.10),
        chain=ChainParams(protocol="pbft", n_nodes=4),
    )


def _read_table(name: str) -> tuple[tuple[int, ...], tuple[tuple[float, ...], ...]]:
    """Read a packaged CSV table: ``(periods, rows)`` with one row per period."""
    text = resources.files("mgenv.scenarios").joinpath("data", name).read_text()
    reader = csv.reader(text.splitlines())
    next(reader)  # header: period,user_1..user_5
    rows = [r for r in reader if r]
    return tuple(int(r[0]) for r in rows), tuple(tuple(float(x) for x in r[1:]) for r in rows)


def _consortium_p2p() -> EnvConfig:
    """Seed 002's case: five PV users of one microgrid, periods 7-18 (Tables 8-9)."""
    periods, load = _read_table("consortium_p2p_load_kwh.csv")
    _, pv = _read_table("consortium_p2p_pv_kwh.csv")
    n = len(load[0])
    fleet = FleetParams(
        pv_kw=tuple(max(r[i] for r in pv) for i in range(n)),
        wind_kw=(0.0,),
        load_kw=tuple(max(r[i] for r in load) for i in range(n)),
        gen_kw=(0.0,),
        gen_cost_a=(0.0,),
        gen_cost_b=(0.0,),
        battery_kwh=(0.0,),
        battery_kw=(0.0,),
    )
    return EnvConfig(
        scenario="consortium_p2p",
        horizon=len(periods),
        start_hour=periods[0],
        n_microgrids=n,
        n_aggregators=1,
        n_users=0,
        fleet=fleet,
        grid=GridParams(buy_price=(0.85,), feed_in_price=(0.77,)),
        market=MarketParams(price_floor=0.77, price_cap=0.85, delta_min=1.0, delta_max=1.0),
        profiles=ProfileParams(
            forecast_error=0.0, load_noise=0.0, pv_data_kwh=pv, load_data_kwh=load
        ),
        chain=ChainParams(protocol="pbft", n_nodes=4),
    )


def _sbet_cooperative() -> EnvConfig:
    return EnvConfig(
        scenario="sbet_cooperative",
        n_microgrids=5,
        n_aggregators=1,
        n_users=1,
        chain=ChainParams(protocol="pbft", n_nodes=5, message_loss=0.05),
    )


_BUILDERS: dict[str, Callable[[], EnvConfig]] = {
    "default": _default,
    "crosschain_aggregators": _crosschain_aggregators,
    "ccche_thermal_game": _ccche_thermal_game,
    "consortium_p2p": _consortium_p2p,
    "sbet_cooperative": _sbet_cooperative,
}


def names() -> list[str]:
    """Names of the scenarios, sorted."""
    return sorted(_BUILDERS)


def get(name: str) -> EnvConfig:
    """The config of scenario ``name`` (a registered name or a scenario file path)."""
    if name not in _BUILDERS:
        from mgenv.scenarios.files import is_scenario_file, load_scenario_file

        if is_scenario_file(name):
            return load_scenario_file(name)
        raise ValueError(
            f"unknown scenario {name!r}; scenarios are {names()} or a .toml/.yaml file"
        )
    return _BUILDERS[name]()
