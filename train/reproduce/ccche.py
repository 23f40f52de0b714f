"""Seed 001's case (section 6): equilibrium prices per period and CCHE dispatch, both seasons.

``mgenv reproduce ccche_thermal_game`` runs one day of the ``ccche_thermal_game`` scenario per
season with every role played by the ``noncooperative`` baseline (the paper's Fig. 4 game) on
an ideal chain, records the equilibrium price combination of every period (the solver's
``p_J->M`` and ``p_J->Y`` per aggregator, the microgrids' and users' target values ``p_M->J``
and ``p_Y->J``, the iteration count, the aggregators' battery SOC after the period), compares
11:00 with the paper's ranges, prints every storage's end-of-day SOC against its start, and
plots: ``prices.png`` (prices per period, both seasons, the paper's Fig. 7 as measured here),
``dispatch_<season>.png`` (per microgrid: electric, heat and cooling stacks per period) and
``agg_batteries.png`` (the aggregators' battery SOC per period, both seasons). CSV files
hold the same numbers.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

SEASONS = ("winter", "summer")
PAPER = {"p_J->M": (0.93, 0.98), "p_J->Y": (0.98, 1.03)}  # section 6 at 11:00, yuan/kWh
HOUR = 11


def run_season(season: str, seed: int = 0) -> tuple[list[dict[str, float]], Any]:
    """One day of the scenario in ``season``; per-period price rows and the env (history)."""
    import baselines
    import mgenv

    env = mgenv.parallel_env(
        "ccche_thermal_game", season=season, protocol="ideal", learning_roles=("mg", "agg", "user")
    )
    pol: Any = baselines.make("noncooperative")  # NoncooperativePolicy: has solve()
    obs, _ = env.reset(seed=seed)
    rows = []
    while env.agents:
        _, eq = pol.solve(env)
        selling = eq.offered > 0
        hour = int(env.core.hours[env.core.t])
        row = {
            "hour": hour,
            "iterations": eq.iterations,
            "converged": int(eq.converged),
            "quantity_kwh": float(eq.quantity.sum()),
            "p_M->J": float(eq.asks[selling].mean()) if selling.any() else float("nan"),
            "p_Y->J": float(eq.bids[env.config.n_microgrids :].mean()),
        }
        for j in range(env.config.n_aggregators):
            row[f"p_J->M[{j}]"] = float(eq.price_mg[j])
            row[f"p_J->Y[{j}]"] = float(eq.price_buyer[j])
        obs, *_ = env.step(pol(obs, env))
        b = env.history[-1].agg_storage
        if b is not None:
            for j, soc in enumerate((b.level_after / b.capacity_kwh).tolist()):
                row[f"soc_agg[{j}]"] = soc
        rows.append(row)
    return rows, env


def end_of_day(env: Any) -> str:
    """Every storage's SOC after the last period against its start (eq. 5's E(24) = E(0))."""
    m, last = env.core.physics, env.history[-1]
    parts = []
    b = last.agg_storage
    if b is not None:
        start = np.asarray(env.config.market.agg_soc_init)
        start = start[np.arange(b.capacity_kwh.size) % start.size]
        soc = b.level_after / b.capacity_kwh
        parts.append(f"aggregators' batteries {_shares(soc)} (start {_shares(start)})")
    names = ("microgrids' batteries", "heat tanks", "ice tanks")
    shares = (
        last.physics.soc_after,
        last.physics.extra["heat_tank_soc"],
        last.physics.extra["ice_soc"],
    )
    for row, (name, soc) in enumerate(zip(names, shares, strict=True)):
        if np.any(m.cap[row] > 0):
            start = m.target[row] / np.where(m.cap[row] > 0, m.cap[row], 1.0)
            parts.append(f"{name} {_shares(soc)} (start {_shares(start)})")
    return "end of day, SOC: " + "; ".join(parts)


def _shares(x: np.ndarray) -> str:
    return "/".join(f"{v:.3f}" for v in np.asarray(x).tolist())


def _table(season: str, rows: list[dict[str, float]]) -> str:
    keys = [k for k in rows[0] if k not in ("converged",)]
    lines = [
        f"{season}: equilibrium per period (yuan/kWh; nan: no agreement)",
        "  ".join(f"{k:>12}" for k in keys),
    ]
    for r in rows:
        lines.append(
            "  ".join(f"{r[k]:>12.3f}" if isinstance(r[k], float) else f"{r[k]:>12}" for k in keys)
        )
    at = next(r for r in rows if r["hour"] == HOUR)
    checks = []
    for name, (lo, hi) in PAPER.items():
        vals = [v for k, v in at.items() if k.startswith(name + "[")]
        ok = all(lo <= v <= hi for v in vals)
        checks.append(
            f"{name} = {', '.join(f'{v:.3f}' for v in vals)} "
            f"(paper {lo}-{hi}: {'inside' if ok else 'OUTSIDE'})"
        )
    lines.append(f"at {HOUR}:00: " + "; ".join(checks))
    return "\n".join(lines)


def _plot_agg_batteries(out: Path, data: dict[str, list[dict[str, float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), sharey=True)
    for ax, (season, rows) in zip(axes, data.items(), strict=True):
        hours = [r["hour"] for r in rows]
        for key in (k for k in rows[0] if k.startswith("soc_agg[")):
            ax.plot(hours, [r[key] for r in rows], marker="o", ms=3, label=key)
        ax.set_title(f"{season}: aggregators' batteries (SOC after the period)")
        ax.set_xlabel("hour")
    axes[0].set_ylabel("share of capacity")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "agg_batteries.png", dpi=110)
    plt.close(fig)


def _plot_prices(out: Path, data: dict[str, list[dict[str, float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, (season, rows) in zip(axes, data.items(), strict=True):
        hours = [r["hour"] for r in rows]
        for key in ("p_J->M[0]", "p_J->Y[0]", "p_M->J", "p_Y->J"):
            ax.plot(hours, [r[key] for r in rows], marker="o", ms=3, label=key)
        ax.axvline(HOUR, color="grey", lw=0.5)
        ax.set_title(f"{season}: equilibrium prices")
        ax.set_xlabel("hour")
    axes[0].set_ylabel("yuan/kWh")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "prices.png", dpi=110)
    plt.close(fig)


def _stacks(r: Any, i: int, nm: int) -> dict[str, dict[str, float]]:
    """Sources (positive) and sinks (negative) of microgrid ``i`` in one period, per carrier."""
    e, st, d = r.physics.extra, r.settlement, r.dispatch
    pv, wind, load, _ = r.realised
    elec = {
        "PV + wind": pv[i] + wind[i],
        "turbine": r.physics.gen_kwh[i],
        "battery out": d.discharge[i],
        "bought": st.bought_committed[i] + st.grid_import[i],
        "load": -load[i],
        "battery in": -e["battery_charge"][i],
        "boiler + chillers": -(e["elec_boiler"][i] + e["elec_chiller"][i] + e["elec_ice"][i]),
        "sold": -(st.sold_committed[i] + st.grid_export[i]),
    }
    heat = {
        "recovered": e["heat_recovered"][i],
        "boiler": e["heat_boiler"][i],
        "tank out": e["heat_tank_discharge"][i],
        "load": -e["heat_load"][i],
        "tank in": -e["heat_tank_charge"][i],
        "vented": -e["heat_vented"][i],
    }
    cool = {
        "refrigerator": e["cool_chiller"][i] + e["ice_making"][i],
        "ice tank out": e["cool_ice"][i],
        "load": -e["cool_load"][i],
        "ice making": -e["ice_making"][i],
    }
    return {"electric": elec, "heat": heat, "cooling": cool}


def _plot_dispatch(out: Path, season: str, env: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nm = env.config.n_microgrids
    hours = np.array([int(r.hour) for r in env.history])
    fig, axes = plt.subplots(nm, 3, figsize=(13, 2.6 * nm), sharex=True)
    for i in range(nm):
        per = [_stacks(r, i, nm) for r in env.history]
        for c, carrier in enumerate(("electric", "heat", "cooling")):
            ax = axes[i, c]
            pos, neg = np.zeros(hours.size), np.zeros(hours.size)
            for name in per[0][carrier]:
                v = np.array([p[carrier][name] for p in per])
                base = np.where(v >= 0, pos, neg)
                ax.bar(hours, v, bottom=base, width=0.8, label=name)
                pos, neg = pos + np.maximum(v, 0), neg + np.minimum(v, 0)
            ax.axhline(0, color="black", lw=0.5)
            ax.set_title(f"mg_{i} {carrier} (kWh)", fontsize=9)
            if i == 0:
                ax.legend(fontsize=6, ncol=2)
    fig.suptitle(f"CCHE dispatch, {season}")
    fig.tight_layout()
    fig.savefig(out / f"dispatch_{season}.png", dpi=100)
    plt.close(fig)


def run(out_dir: Path, quick: bool) -> str:
    """Both seasons' equilibria and dispatch; CSV and PNG files in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data, texts = {}, []
    for season in SEASONS:
        rows, env = run_season(season)
        data[season] = rows
        texts.append(_table(season, rows) + "\n" + end_of_day(env))
        with (out / f"prices_{season}.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        _plot_dispatch(out, season, env)
    _plot_prices(out, data)
    _plot_agg_batteries(out, data)
    texts.append(
        f"plots: {out / 'prices.png'}, {out / 'agg_batteries.png'}, "
        + ", ".join(str(out / f"dispatch_{s}.png") for s in SEASONS)
    )
    return "\n\n".join(texts)
