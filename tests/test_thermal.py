"""CCHE units (mgenv.physics.thermal) against slow scalar references; ThermalParams checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mgenv
from mgenv.physics import thermal as th
from mgenv.physics.ccche_params import ThermalParams

F = st.floats(0.0, 1.0)


# ------------------------------------------------------------------ scalar references
def scalar_level(decayed, move, eta_c, eta_d):
    return decayed + (eta_c * move if move >= 0 else move / eta_d)


def scalar_window(level, keep, cap, lo, hi, p_in, p_out, eta_c, eta_d):
    """Brute force: the moves on a fine grid whose next content is in bounds."""
    decayed = keep * level
    grid = np.linspace(-p_out, p_in, 4001)
    ok = [
        m
        for m in grid
        if lo * cap - 0.02 <= scalar_level(decayed, m, eta_c, eta_d) <= hi * cap + 0.02
    ]
    return (min(ok), max(ok)) if ok else None


def scalar_turbine_boiler(net0, heat, r, eta, bmax, econ):
    """The electric-led rule for one microgrid by bisection on the turbine output ``g``:
    ``g = min(max(b(g) - net0, 0), econ)`` with ``b(g) = max(heat - r g, 0) / eta`` (the right
    side decreases in ``g``, so the root is unique)."""
    lo, hi = 0.0, econ
    for _ in range(200):
        g = 0.5 * (lo + hi)
        b = max(heat - r * g, 0.0) / eta
        if min(max(b - net0, 0.0), econ) > g:
            lo = g
        else:
            hi = g
    g = 0.5 * (lo + hi)
    b = max(heat - r * g, 0.0) / eta
    if b > bmax:
        b = bmax
        g = min(max(b - net0, 0.0), econ)
    return g, b


def greedy_end(level, move, k, p, ramp, eta_c, eta_d, up):
    """Content at the day's end after ``move`` now and the most charging (``up``) or most
    discharging later path allowed by power and the ramp limit of eq. 6 (mu = 0)."""
    x = scalar_level(level, move, eta_c, eta_d)
    prev = move
    for _ in range(k):
        lo = prev - ramp if (prev > ramp or prev < 0) else -ramp
        hi = prev + ramp if (prev < -ramp or prev > 0) else ramp
        m = min(hi, p) if up else max(lo, -p)
        x = scalar_level(x, m, eta_c, eta_d)
        prev = m
    return x


# ------------------------------------------------------------------ tests
@settings(max_examples=60, deadline=None)
@given(F, st.floats(0.9, 1.0), F, F, st.floats(0.5, 1.0), st.floats(0.5, 1.0))
def test_physical_window_matches_brute_force(lvl, keep, lo, span, eta_c, eta_d):
    cap, hi = 100.0, min(lo + span, 1.0)
    level = cap * (lo + (hi - lo) * lvl)
    a = np.array
    wlo, whi = th.physical_window(
        a(keep * level), a(cap), a(lo), a(hi), a(30.0), a(20.0), a(eta_c), a(eta_d)
    )
    ref = scalar_window(level, keep, cap, lo, hi, 30.0, 20.0, eta_c, eta_d)
    if ref is None:  # the content decays below the bound even at full charge
        assert wlo == whi == pytest.approx(30.0)
        return
    assert float(wlo) == pytest.approx(ref[0], abs=0.05)
    assert float(whi) == pytest.approx(ref[1], abs=0.05)
    for m in (float(wlo), float(whi)):  # the bounds themselves are feasible
        nxt = scalar_level(keep * level, m, eta_c, eta_d)
        assert lo * cap - 1e-9 <= nxt <= hi * cap + 1e-9


@settings(max_examples=80, deadline=None)
@given(st.floats(-40, 40), st.floats(1.0, 40.0))
def test_ramp_window_is_eq6_with_exclusive_charge_and_discharge(prev, ramp):
    lo, hi = (float(x) for x in th.ramp_window(np.array(prev), np.array(ramp)))
    c0, d0 = max(prev, 0.0), max(-prev, 0.0)
    for m in np.linspace(-100, 100, 2001):
        c, d = max(m, 0.0), max(-m, 0.0)
        # Each way with the slack on the side that can only admit more: a slack on both
        # sides disagreed where the ramp is within 1e-9 of a crossing (prev 40, ramp
        # 40 - 1e-14: the slack let -40 through, the exact window rightly does not).
        if abs(c - c0) <= ramp and abs(d - d0) <= ramp:
            assert lo - 1e-9 <= m <= hi + 1e-9, (m, lo, hi)
        if lo + 1e-9 <= m <= hi - 1e-9:
            assert abs(c - c0) <= ramp + 1e-9 and abs(d - d0) <= ramp + 1e-9, (m, lo, hi)


@settings(max_examples=80, deadline=None)
@given(
    F,
    st.floats(-1, 1),
    st.integers(0, 8),
    st.floats(0.5, 1.0),
    st.floats(0.8, 1.0),
    st.floats(0.8, 1.0),
)
def test_reach_bounds_are_exact_for_a_ramp_limited_battery(lvl, prev_s, k, rshare, ec, ed):
    """At the lower (upper) bound the day can still end at the target by charging
    (discharging) as fast as eq. 6 allows; just beyond it (for moves away from the target),
    it cannot."""
    p, cap, target = 30.0, 200.0, 100.0
    ramp = rshare * p
    level = 20.0 + 160.0 * lvl
    j = np.arange(1.0, k + 1.0)
    f0 = float(np.minimum(p, j * ramp).sum())
    f1 = float(np.minimum(p, (j - 1.0) * ramp).sum())
    one = np.ones(1)
    r = ramp if k > 0 else th.BIG
    lo, hi = th.reach_moves(
        np.array([level]),
        np.array([target]),
        (one, one),
        (np.array([f0]), np.array([f1])),
        (np.array([f0]), np.array([f1])),
        np.array([r]),
        np.array([ec]),
        np.array([ed]),
    )
    lo, hi = float(lo[0]), float(hi[0])
    del cap, prev_s
    # sufficient: from the bound the fastest path still reaches the target (when any does)
    if greedy_end(level, p, k, p, ramp, ec, ed, up=True) >= target and -p <= lo <= p:
        assert greedy_end(level, lo, k, p, ramp, ec, ed, up=True) >= target - 1e-6
    if greedy_end(level, -p, k, p, ramp, ec, ed, up=False) <= target and -p <= hi <= p:
        assert greedy_end(level, hi, k, p, ramp, ec, ed, up=False) <= target + 1e-6
    # exact for moves against the direction of travel (the ramp-from-rest regimes)
    if -p + 0.5 <= lo <= 0.0:
        assert greedy_end(level, lo - 0.5, k, p, ramp, ec, ed, up=True) < target
    if 0.0 <= hi <= p - 0.5:
        assert greedy_end(level, hi + 0.5, k, p, ramp, ec, ed, up=False) > target


@settings(max_examples=120, deadline=None)
@given(
    st.floats(-200, 200),
    st.floats(0, 300),
    st.floats(0.5, 2.5),
    st.floats(0.5, 1.0),
    st.floats(0, 200),
    st.floats(0, 250),
)
def test_turbine_and_boiler_match_the_fixed_point(net0, heat, r, eta, bmax, econ):
    g, b = th.turbine_and_boiler(*(np.array([x]) for x in (net0, heat, r, eta, bmax, econ)))
    g_ref, b_ref = scalar_turbine_boiler(net0, heat, r, eta, bmax, econ)
    assert float(g[0]) == pytest.approx(g_ref, abs=1e-6)
    assert float(b[0]) == pytest.approx(b_ref, abs=1e-6)
    assert 0.0 <= g[0] <= econ + 1e-9 and 0.0 <= b[0] <= bmax + 1e-9


@settings(max_examples=80, deadline=None)
@given(st.floats(0, 150), st.floats(-60, 60), st.floats(10, 200), st.floats(2, 6), st.floats(2, 5))
def test_cooling_dispatch_scalar(cool, ice, cmax, cop, cop_ice):
    ice = max(ice, -cool)  # release never exceeds the load (the mode window)
    chill, unmet, e_a, e_c = (
        float(x[0])
        for x in th.cooling_dispatch(
            np.array([cool]),
            np.array([ice]),
            np.array([cmax]),
            np.array([cop]),
            np.array([cop_ice]),
        )
    )
    release, making = max(-ice, 0.0), max(ice, 0.0)
    want = cool - release
    ref = min(want, max(cmax - making, 0.0))
    assert chill == pytest.approx(ref) and unmet == pytest.approx(want - ref)
    assert chill + making <= max(cmax, making) + 1e-9  # eq. 7: Q_A + Q_C <= Q_A,max
    assert e_a == pytest.approx(chill / cop) and e_c == pytest.approx(making / cop_ice)


@settings(max_examples=80, deadline=None)
@given(st.floats(-1.5, 1.5), st.floats(-50, 10), st.floats(0, 60))
def test_setpoints_are_projected_and_invertible(s, lo, width):
    lo_a, hi_a = np.array([lo]), np.array([lo + width])
    m = th.setpoint_move(np.array([s]), lo_a, hi_a)
    assert lo - 1e-12 <= m[0] <= lo + width + 1e-12
    back = th.move_setpoint(m, lo_a, hi_a)
    assert th.setpoint_move(back, lo_a, hi_a)[0] == pytest.approx(m[0], abs=1e-9)


def test_eq2_gas_volume_and_recovered_heat():
    # eq. 2: p = eta V L  ->  V = p / (eta L)
    assert th.turbine_gas_m3(np.array(33.0), np.array(0.33), 10.0) == pytest.approx(10.0)
    # fuel 100 kWh for 33 kWh electric: 67 kWh waste heat, 75 % recovered
    assert th.recovery_ratio(np.array(0.33), np.array(0.75)) * 33.0 == pytest.approx(50.25)


def test_ice_mode_window():
    cool, cmax = np.array([30.0]), np.array([100.0])
    assert [float(x[0]) for x in th.ice_mode_window(True, False, cool, cmax)] == [0.0, 70.0]
    assert [float(x[0]) for x in th.ice_mode_window(False, True, cool, cmax)] == [-30.0, 0.0]
    assert [float(x[0]) for x in th.ice_mode_window(False, False, cool, cmax)] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"season": "autumn"}, "season"),
        ({"tst_soc_min": 0.9, "tst_soc_max": 0.3}, "tst_soc_min"),
        ({"ice_soc_init": 0.95}, "ice_soc_init"),
        ({"tst_eta_charge": 1.2}, "tst_eta_charge"),
        ({"eta_boiler": 0.0}, "eta_boiler"),
        ({"tst_kwh": -5.0}, "tst_kwh"),
        ({"chiller_cop": -1.0}, "chiller_cop"),
        ({"battery_ramp": 0.3}, "battery_ramp"),
        ({"valley_hours": (0, 24)}, "valley_hours"),
        ({"peak_hours": (3,), "valley_hours": (3,)}, "peak_hours"),
        ({"battery_max_active": 2.5}, "battery_max_active"),
    ],
)
def test_bad_thermal_params_name_the_field(override, field):
    with pytest.raises(ValueError, match=field):
        mgenv.make_config("ccche_thermal_game", **override)


def test_thermal_params_defaults_and_overrides():
    p = ThermalParams()
    assert p.season == "winter" and math.isclose(p.tiled("tst_soc_min", 3)[2], 0.2)
    cfg = mgenv.make_config("ccche_thermal_game", season="summer", tst_loss=0.02)
    assert cfg.thermal.season == "summer" and cfg.thermal.tst_loss == (0.02,)


@settings(max_examples=80, deadline=None)
@given(F, st.floats(0.95, 1.0), st.floats(0.5, 1.0), st.floats(0.8, 1.0), st.floats(0.8, 1.0))
def test_braking_window_leaves_room_to_stop(lvl, keep, rshare, eta_c, eta_d):
    """After any move the window allows, the slowest ramp down (eq. 6) stays in bounds."""
    cap, lo, hi, p = 100.0, 0.2, 0.8, 30.0
    ramp = rshare * p
    decayed = keep * (cap * (lo + (hi - lo) * lvl))
    a = np.array
    plo, phi = th.physical_window(a(decayed), a(cap), a(lo), a(hi), a(p), a(p), a(eta_c), a(eta_d))
    blo, bhi = th.braking_window(
        a(decayed), a(keep), a(cap), a(lo), a(hi), a(ramp), a(eta_c), a(eta_d)
    )
    wlo, whi = th.narrow(plo, phi, blo, bhi)
    for m in np.linspace(float(wlo), float(whi), 41):
        x = scalar_level(decayed, m, eta_c, eta_d)
        nxt = m - ramp if m > ramp else (m + ramp if m < -ramp else 0.0)
        x2 = scalar_level(keep * x, nxt, eta_c, eta_d)
        assert lo * cap - 1e-6 <= x2 <= hi * cap + 1e-6 or abs(nxt) < 1e-12
