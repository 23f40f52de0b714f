"""Electric physics and profile kernels against the numpy code they replace.

As tests/test_jit_settle.py: the numpy path (``mgenv._jit.ENABLED`` false) and the kernel
path on the same random inputs, with the stage's edge cases (SOC at its bounds, missing
batteries and turbines, set-points beyond [-1, 1], NaN and signed zeros; scenarios with
tabulated data, no users, calm and storm winds), every output equal to the bit and the
random streams left in the same state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import mgenv
from mgenv import _jit
from mgenv.physics.model import ElectricModel, Forecast, Realised
from mgenv.physics.profiles import DayProfiles, draw_profiles, profile_bases
from mgenv.physics.units import Dispatch, FleetArrays
from tests.jit_compare import SPECIAL, both, same

pytestmark = pytest.mark.skipif(not _jit.ENABLED, reason="numba is not installed")


def random_fleet(rng: np.random.Generator, n: int) -> FleetArrays:
    """Fleet parameters with linear and convex costs, missing batteries and turbines."""
    soc_min = rng.uniform(0.0, 0.4, n)
    return FleetArrays(
        gen_kw=np.where(rng.random(n) < 0.2, 0.0, rng.uniform(10, 300, n)),
        gen_cost_a=np.where(rng.random(n) < 0.3, 0.0, rng.uniform(1e-4, 5e-3, n)),
        gen_cost_b=rng.uniform(0.1, 1.2, n),
        battery_kwh=np.where(rng.random(n) < 0.25, 0.0, rng.uniform(10, 500, n)),
        battery_kw=rng.uniform(0, 200, n),
        eta_charge=rng.uniform(0.8, 1.0, n),
        eta_discharge=rng.uniform(0.8, 1.0, n),
        soc_min=soc_min,
        soc_max=soc_min + rng.uniform(0.2, 0.6, n),
        soc_init=rng.uniform(0.2, 0.8, n),
    )


def physics_run(
    fleet: FleetArrays, dt: float, periods: list[tuple[Forecast, float, Any, np.ndarray]]
) -> list[Any]:
    """Plan and realise a sequence of periods; every dispatch, outcome and SOC."""
    cfg = mgenv.make_config("default", n_microgrids=fleet.gen_kw.shape[0], dt_h=dt)
    model = ElectricModel(cfg, fleet)
    out: list[Any] = []
    for forecast, price, setpoints, sold_share in periods:
        d = model.plan(0, forecast, price, setpoints)
        offer = d.surplus + d.gen_headroom
        r = model.realise(sold_share * offer, d.surplus)
        out += [d, r, model.soc.copy()]
    return out


@pytest.mark.parametrize("dispatch", ["rule", "agent"])
def test_electric_kernels_match_numpy(monkeypatch: pytest.MonkeyPatch, dispatch: str) -> None:
    rng = np.random.default_rng(4)
    for case in range(150):
        n = int(rng.integers(1, 13))
        fleet = random_fleet(rng, n)
        if case % 5 == 0:  # every SOC at a bound: no charge or no discharge possible
            fleet = fleet._replace(
                soc_init=np.where(rng.random(n) < 0.5, fleet.soc_min, fleet.soc_max)
            )
        periods = []
        for _ in range(6):
            forecast = Forecast(
                *(rng.uniform(0, 1, n) * 10.0 ** rng.uniform(-2, 2.5, n) for _ in range(3))
            )
            # every 2nd column of the (n, 3) set-points: a strided view, as the core passes
            sp = rng.uniform(-1.5, 1.5, (n, 3))[:, 1:] if dispatch == "agent" else None
            sold = np.where(rng.random(n) < 0.3, 0.0, rng.uniform(0, 1, n))
            periods.append((forecast, float(rng.choice([0.3, 0.6, 1.1, 2.0])), sp, sold))
        fast, slow = both(monkeypatch, physics_run, fleet, float(rng.choice([0.25, 1.0])), periods)
        same(fast, slow, f"case {case}")
        assert isinstance(fast[0], Dispatch) and isinstance(fast[1], Realised)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf on purpose
def test_electric_kernels_special_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """NaN / inf / signed zeros in forecasts and set-points, the SOC exactly at bounds."""
    rng = np.random.default_rng(5)
    special = np.array(SPECIAL)
    for case in range(150):
        n = int(rng.integers(1, 9))
        fleet = random_fleet(rng, n)

        def pick(a: np.ndarray, n: int = n) -> np.ndarray:
            return np.where(rng.random(n) < 0.3, rng.choice(special, n), a)

        periods = []
        for _ in range(3):
            forecast = Forecast(*(pick(rng.uniform(0, 100, n)) for _ in range(3)))
            sp = pick(rng.uniform(-1, 1, n))[:, None] if case % 2 else None
            periods.append((forecast, 0.8, sp, pick(rng.uniform(0, 1, n))))
        fast, slow = both(monkeypatch, physics_run, fleet, 1.0, periods)
        same(fast, slow, f"case {case}")


def test_electric_kernels_refuse_mismatched_lengths() -> None:
    """numba does not bound-check: lengths numpy would refuse raise instead of corrupting."""
    rng = np.random.default_rng(12)
    cfg = mgenv.make_config("default", n_microgrids=3)
    model = ElectricModel(cfg, random_fleet(rng, 3))
    forecast = Forecast(np.ones(3), np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="lengths"):
        model.plan(0, forecast, 0.5, None)
    with pytest.raises(ValueError, match="length"):
        model.plan(0, forecast._replace(load=np.ones(3)), 0.5, np.zeros((2, 1)))
    model.plan(0, forecast._replace(load=np.ones(3)), 0.5, None)
    with pytest.raises(ValueError, match="lengths"):
        model.realise(np.ones(2), np.ones(3))


def test_electric_kernels_take_float32_setpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 set-points (numpy clips them in float32) compile and agree."""
    rng = np.random.default_rng(13)
    fleet = random_fleet(rng, 6)
    sp = rng.uniform(-1.5, 1.5, (6, 1)).astype(np.float32)
    periods = [(Forecast(*(rng.uniform(0, 50, 6) for _ in range(3))), 0.7, sp, rng.random(6))]
    fast, slow = both(monkeypatch, physics_run, fleet, 1.0, periods)
    same(fast, slow)


# ----------------------------------------------------------------------------- profiles
def profiles_run(cfg: Any, seed: int) -> list[Any]:
    """Two episodes' profiles from the same streams, and the streams' states after."""
    weather, load = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    bases = profile_bases(cfg)
    first = draw_profiles(cfg, weather, load, bases)
    second = draw_profiles(cfg, weather, load)
    return [first, second, weather.bit_generator.state, load.bit_generator.state]


@pytest.mark.parametrize("scenario", mgenv.scenarios.names())
def test_profile_kernels_match_numpy(monkeypatch: pytest.MonkeyPatch, scenario: str) -> None:
    rng = np.random.default_rng(7)
    for case in range(12):
        overrides: dict[str, Any] = {}
        if scenario != "consortium_p2p" and case:  # its tables fix the horizon and the fleet
            overrides = {
                "n_microgrids": int(rng.integers(1, 9)),
                "n_users": int(rng.integers(0 if scenario == "default" else 1, 4)),
                "horizon": int(rng.integers(1, 49)),
                "dt_h": float(rng.choice([0.25, 0.5, 1.0])),
                "start_hour": int(rng.integers(0, 24)),
                # 0: no noise; 40 m/s: speeds beyond cut-out; 0.99: clouds clipped
                "wind_mean_ms": float(rng.choice([0.0, 3.0, 8.0, 40.0])),
                "cloudiness_max": float(rng.choice([0.0, 0.5, 0.99])),
                "forecast_error": float(rng.choice([0.0, 0.1, 1.0])),
                "load_noise": float(rng.choice([0.0, 0.1, 1.0])),
            }
        cfg = mgenv.make_config(scenario, **overrides)
        fast, slow = both(monkeypatch, profiles_run, cfg, case)
        assert isinstance(fast[0], DayProfiles)
        same(fast, slow, f"case {case} {overrides}")
