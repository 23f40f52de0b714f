"""CCHE units of seed 001 (section 3, eqs. 1-16) as pure functions over arrays.

Every function takes arrays of any common shape (the CCHE model stacks its three storages,
battery, heat storage tank and ice tank, as rows of ``(3, n_microgrids)`` arrays) and returns
new arrays; nothing is mutated. Energies are kWh per period (electric) or kWh_th (heat and
cold); a storage *move* is the signed energy at its port in one period: positive charges
(energy drawn from the bus, or heat / cold delivered to the tank), negative discharges
(energy delivered to the bus or to the thermal load). One signed move per storage and period
makes charge and discharge mutually exclusive by construction (eqs. 5 and 11).

Readings of the paper chosen where its text is garbled or silent (the docstrings repeat them):

* eq. 10 bounds the tank's content by ``0.2 E_BT,max`` and ``0.8 E_BT,max``, the battery's
  capacity: a typo for the tank's own capacity (its units are heat, and the text right after
  calls ``E_BT,max`` "the maximum capacity of TST"). Bounds are configurable shares.
* The minimum powers ``U P_min`` of eqs. 3, 7 and 9 are taken as 0: the paper gives no value,
  and a positive minimum would make the feasible set of a period non-convex (the agents'
  set-points are projected onto it).
* eq. 5's frequency constraint ``sum_t (U_cha + U_dis) <= T`` reads as: at most
  ``battery_max_active`` periods per day with the battery moving.
* eqs. 13-14 subtract the boiler's ``P_GB`` from the electric output: the boiler is electric.
* The gas turbine is run electric-led (the paper: waste heat is "recycled and stored"): its
  output follows the electric deficit at the grid price (including the boiler's
  electricity), and its recovered waste heat serves the heat load, then the tank; the rest is
  vented. No absorption chiller is described, so summer waste heat is vented.
"""

from __future__ import annotations

import numpy as np

BIG = 1e12  # an unbounded move (kWh) before the windows cut it


def turbine_gas_m3(elec_kwh: np.ndarray, eta_mt: np.ndarray, lhv_kwh_m3: float) -> np.ndarray:
    """Gas burnt by the turbine for ``elec_kwh``, m^3: eq. 2 ``p_MT = eta_MT V_MT L_MT``."""
    return np.asarray(elec_kwh / (eta_mt * lhv_kwh_m3))


def recovery_ratio(eta_mt: np.ndarray, heat_recovery: np.ndarray) -> np.ndarray:
    """Recovered waste heat per kWh of turbine electricity, kWh_th/kWh.

    The fuel energy is ``p / eta_MT``; all but ``p`` is waste heat, of which the share
    ``heat_recovery`` is recovered (section 3.1.3: "the waste heat collected by the MT").
    """
    return np.asarray(heat_recovery * (1.0 - eta_mt) / eta_mt)


def level_after(
    decayed: np.ndarray, move: np.ndarray, eta_c: np.ndarray, eta_d: np.ndarray
) -> np.ndarray:
    """Storage content after a move, kWh (eqs. 4 and 10).

    ``E(t) = (1 - mu) E(t-1) + (P_cha eta_cha - P_dis / eta_dis) dT`` where ``decayed`` is
    ``(1 - mu) E(t-1)`` (mu = 0 for the battery) and ``move = P_cha - P_dis`` per period.
    """
    return np.asarray(decayed + eta_c * np.maximum(move, 0.0) + np.minimum(move, 0.0) / eta_d)


def move_for_level(
    decayed: np.ndarray, level: np.ndarray, eta_c: np.ndarray, eta_d: np.ndarray
) -> np.ndarray:
    """Inverse of :func:`level_after`: the port move that takes ``decayed`` to ``level``."""
    d = level - decayed
    return np.asarray(np.where(d >= 0.0, d / eta_c, d * eta_d))


def physical_window(
    decayed: np.ndarray,
    cap: np.ndarray,
    soc_lo: np.ndarray,
    soc_hi: np.ndarray,
    max_in: np.ndarray,
    max_out: np.ndarray,
    eta_c: np.ndarray,
    eta_d: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Moves allowed by the power and content bounds: eqs. 3-4 (battery), 7-8 (ice), 9-10 (tank).

    Content after the move within ``[soc_lo cap, soc_hi cap]`` (eq. 10's ``E_BT,max`` read as
    the tank's own capacity), charge at most ``max_in``, discharge at most ``max_out`` (kWh at
    the port per period). If self-loss would take the content below ``soc_lo cap`` even
    without discharging, the window starts above 0 (the storage must be topped up).

    Returns:
        ``(lo, hi)`` signed moves, ``lo <= hi``.
    """
    x_lo = np.maximum(soc_lo * cap, decayed - max_out / eta_d)
    x_hi = np.minimum(soc_hi * cap, decayed + eta_c * max_in)
    x_lo = np.minimum(x_lo, x_hi)  # bounds out of reach in one period: charge at full power
    return move_for_level(decayed, x_lo, eta_c, eta_d), move_for_level(decayed, x_hi, eta_c, eta_d)


def braking_window(
    decayed: np.ndarray,
    keep: np.ndarray,
    cap: np.ndarray,
    soc_lo: np.ndarray,
    soc_hi: np.ndarray,
    ramp: np.ndarray,
    eta_c: np.ndarray,
    eta_d: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Moves after which the ramp limit still lets the storage stop inside its bounds.

    A charge ``m > ramp`` forces a charge of at least ``m - ramp`` next period (eqs. 6, 12),
    so it is allowed only if the content then stays below ``soc_hi cap``:
    ``keep (decayed + eta_c m) + eta_c (m - ramp) <= soc_hi cap``; symmetrically for a
    discharge beyond ``ramp``. Ramps of at least half the power make one braking period
    enough. Moves within ``[-ramp, ramp]`` are always allowed by this window.

    Returns:
        ``(lo, hi)`` signed moves.
    """
    brake_hi = (soc_hi * cap - keep * decayed + eta_c * ramp) / (eta_c * (keep + 1.0))
    brake_lo = (eta_d * (keep * decayed - soc_lo * cap) + ramp) / (keep + 1.0)
    return -np.maximum(brake_lo, ramp), np.maximum(brake_hi, ramp)


def ramp_window(prev: np.ndarray, ramp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moves allowed by the ramp limits of eqs. 6 (battery) and 12 (tank).

    ``|P_cha(t) - P_cha(t-1)| <= ramp`` and ``|P_dis(t) - P_dis(t-1)| <= ramp`` with charge
    and discharge mutually exclusive: from charging at ``c`` the battery may go to any charge
    in ``[c - ramp, c + ramp]``, and to discharging (up to ``ramp``) only if ``c <= ramp``.
    (The paper's ``P^down`` and ``P^up`` are read as ``-ramp`` and ``+ramp``.)

    Args:
        prev: Last period's signed move, kWh.
        ramp: Largest change of charge or discharge between periods, kWh per period.

    Returns:
        ``(lo, hi)`` signed moves.
    """
    lo = np.where((prev > ramp) | (prev < 0.0), prev - ramp, -ramp)
    hi = np.where((prev < -ramp) | (prev > 0.0), prev + ramp, ramp)
    return lo, hi


def narrow(
    lo: np.ndarray, hi: np.ndarray, a: np.ndarray | float, b: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Intersect ``[lo, hi]`` with ``[a, b]`` (``a <= b``), or collapse to the nearest point.

    If they are disjoint, both bounds become the point of ``[lo, hi]`` nearest to ``[a, b]``:
    earlier windows thus take precedence.
    """
    return np.minimum(np.maximum(a, lo), hi), np.minimum(np.maximum(b, lo), hi)


def reach_moves(
    decayed: np.ndarray,
    target: np.ndarray,
    decay: tuple[np.ndarray, np.ndarray],
    reach_in: tuple[np.ndarray, np.ndarray],
    reach_out: tuple[np.ndarray, np.ndarray],
    ramp: np.ndarray,
    eta_c: np.ndarray,
    eta_d: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Moves from which the day can still end at ``target`` content (eq. 5's E(0) = E(24)).

    eq. 5 asks ``E(0) = E(24)``; the dispatch keeps it reachable. With ``k`` later periods in
    the day, the content ``x`` after this period's move ``m`` ends the day at
    ``decay^k x + sum_j decay^(k-j) move_j``. The later moves are bounded by power, by the
    periods in which the storage may charge / discharge, by the battery's remaining count and
    by the ramp limit (eqs. 6, 12) starting from rest: ``reach_in[0] = sum_j w_j min(P,
    j ramp)`` (the caller's weighted sums; ``reach_in[1]`` the same from the second period on,
    with ``(j - 1) ramp``). That is exact for ``-ramp <= m <= 0`` (a discharge up to ``ramp``
    can turn into a charge of ``ramp`` next period) and conservative for a charge ``m > 0``
    (after which the next period could charge more than from rest); a deeper discharge ``m in
    [-2 ramp, -ramp)`` keeps discharging ``m + ramp`` next period, which the second bound
    accounts for exactly (ramps of at least half the power, so every move is covered).
    Symmetric for the upper bound. The content bounds along the way are not re-checked (paths
    towards ``target`` stay inside).

    Args:
        decayed: This period's content after self-loss, kWh.
        target: Content at the day's end, kWh.
        decay: ``(decay^k, decay^(k-1))`` (k = later periods; both 1 when k = 0).
        reach_in: Weighted sums of the later charges, level side / ``eta_c`` (see above).
        reach_out: Weighted sums of the later discharges (port side).
        ramp: Ramp limit, kWh per period (huge: no limit; pass a huge value when ``k = 0``).
        eta_c: Charge efficiency.
        eta_d: Discharge efficiency.

    Returns:
        ``(lo, hi)`` bounds on this period's move.
    """
    dk, dk1 = decay
    lo1 = move_for_level(decayed, (target - eta_c * reach_in[0]) / dk, eta_c, eta_d)
    lo2 = eta_d * (target - eta_c * reach_in[1] - dk * decayed - dk1 * ramp / eta_d) / (dk + dk1)
    hi1 = move_for_level(decayed, (target + reach_out[0] / eta_d) / dk, eta_c, eta_d)
    hi2 = (target + reach_out[1] / eta_d - dk * decayed + dk1 * eta_c * ramp) / (eta_c * (dk + dk1))
    lo = np.maximum(lo1, np.minimum(np.maximum(lo2, -2.0 * ramp), -ramp))
    hi = np.minimum(hi1, np.maximum(np.minimum(hi2, 2.0 * ramp), ramp))
    return np.minimum(lo, hi), hi


def setpoint_move(s: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Project an agent's set-point in [-1, 1] onto the window ``[lo, hi]`` (never rejected).

    ``s = 0`` is the move nearest to idle, ``s = 1`` the largest charge, ``s = -1`` the
    largest discharge the window allows; linear in between (piecewise).
    """
    c0 = np.minimum(np.maximum(0.0, lo), hi)
    s = np.minimum(np.maximum(s, -1.0), 1.0)
    return np.asarray(np.where(s >= 0.0, c0 + s * (hi - c0), c0 + s * (c0 - lo)))


def move_setpoint(m: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Inverse of :func:`setpoint_move` for a move inside ``[lo, hi]``."""
    c0 = np.minimum(np.maximum(0.0, lo), hi)
    up = np.divide(m - c0, hi - c0, out=np.zeros_like(m), where=hi - c0 > 1e-12)
    down = np.divide(m - c0, c0 - lo, out=np.zeros_like(m), where=c0 - lo > 1e-12)
    return np.asarray(np.clip(np.where(m > c0, up, down), -1.0, 1.0))


def ice_mode_window(
    valley: bool, peak: bool, cool_kwh: np.ndarray, chiller_max: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ice tank moves allowed by the operating modes (eqs. 7-8, 15-16).

    Ice is made only in valley hours, with the refrigerator's capacity left after cooling the
    air (``Q_A + Q_C <= Q_A,max``); the tank releases cold only in peak hours and no more
    than the cooling load; otherwise it idles.
    """
    spare = np.maximum(chiller_max - cool_kwh, 0.0)
    zero = np.zeros_like(cool_kwh)
    if valley:
        return zero, spare
    if peak:
        return -cool_kwh, zero
    return zero, zero


def cooling_dispatch(
    cool_kwh: np.ndarray,
    ice_move: np.ndarray,
    chiller_max: np.ndarray,
    chiller_cop: np.ndarray,
    ice_cop: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The refrigerator's share of the cooling load and its electricity (eqs. 7, 15-16).

    The ice tank's release ``Q_D`` cools first; the refrigerator cools the rest ``Q_A`` within
    its capacity left after ice-making ``Q_C`` (eq. 7: ``Q_A + Q_C <= Q_A,max``).

    Returns:
        ``(chill, unmet, elec_chiller, elec_ice)``: cold from the refrigerator, unmet cooling
        (kWh_th), and the electricity of air cooling ``Q_A / COP`` and of ice-making
        ``Q_C / COP_ice`` (kWh).
    """
    release = np.maximum(-ice_move, 0.0)
    making = np.maximum(ice_move, 0.0)
    need = np.maximum(cool_kwh - release, 0.0)
    chill = np.minimum(need, np.maximum(chiller_max - making, 0.0))
    return chill, need - chill, chill / chiller_cop, making / ice_cop


def turbine_and_boiler(
    net0: np.ndarray,
    heat_need: np.ndarray,
    ratio: np.ndarray,
    eta_boiler: np.ndarray,
    boiler_max: np.ndarray,
    econ_max: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Electric-led turbine output and electric boiler input of one period (eqs. 1-2, 13-14).

    The turbine covers the electric deficit, the boiler's electricity included, up to its
    economic output at the grid price (``econ_max``); its recovered heat ``ratio g`` serves
    the heat need first and the boiler ``eta b`` the rest. The fixed point of
    ``g = min(max(b - net0, 0), econ_max)`` and ``b = max(heat_need - ratio g, 0) / eta`` is
    ``g = clip((heat_need - eta net0) / (eta + ratio), 0, econ_max)`` when the boiler runs.
    A boiler at its limit leaves the rest of the heat need unmet (the caller charges it).

    Args:
        net0: Electric balance before turbine and boiler (renewables - load - chillers -
            battery move), kWh.
        heat_need: Heat to supply from turbine and boiler (load + tank move), kWh_th, >= 0.
        ratio: Recovered heat per kWh of turbine electricity (:func:`recovery_ratio`).
        eta_boiler: Boiler efficiency.
        boiler_max: Boiler input limit, kWh.
        econ_max: Turbine output at which its marginal cost reaches the grid price, kWh.

    Returns:
        ``(gen, boiler)``: turbine electricity and boiler electricity, kWh.
    """
    g_el = np.minimum(np.maximum(-net0, 0.0), econ_max)
    fixed = np.minimum(
        np.maximum((heat_need - eta_boiler * net0) / (eta_boiler + ratio), 0.0), econ_max
    )
    gen = np.where(ratio * g_el < heat_need, np.maximum(fixed, g_el), g_el)
    boiler = np.maximum(heat_need - ratio * gen, 0.0) / eta_boiler
    capped = boiler > boiler_max
    boiler = np.where(capped, boiler_max, boiler)
    gen = np.where(capped, np.minimum(np.maximum(boiler - net0, 0.0), econ_max), gen)
    return gen, boiler


def tou_move(valley: bool, peak: bool, peak_move: np.ndarray, flat_move: np.ndarray) -> np.ndarray:
    """The operating rule of a storage (section 3.1.4).

    Charge as much as the windows allow in valley hours, ``peak_move`` (a discharge) in peak
    hours, ``flat_move`` otherwise.
    """
    if valley:
        return np.full_like(flat_move, BIG)
    return peak_move if peak else flat_move
