"""Rendering: an ANSI per-period table and a small RGB image, both from the period history."""

from __future__ import annotations

from typing import Any

import numpy as np

HEIGHT, WIDTH = 200, 400


def ansi_table(history: list[Any], core: Any) -> str:
    """One line per period so far: hour, price, traded and committed kWh, latency, profits."""
    names = core.names
    head = (
        f"{'t':>3} {'hour':>5} {'price':>6} {'traded':>8} {'ok_kwh':>7} {'lat_ms':>7} | "
        + " ".join(f"{n:>8}" for n in names)
    )
    lines = [head, "-" * len(head)]
    for r in history:
        traded = float(r.trades.kwh.sum())
        ok = float(r.trades.kwh[r.committed].sum())
        profits = " ".join(f"{p:>8.2f}" for p in r.profit)
        lines.append(
            f"{r.period:>3} {r.hour:>5.1f} {r.price:>6.3f} {traded:>8.2f} "
            f"{ok:>7.2f} {r.chain.latency_ms:>7.1f} | {profits}"
        )
    return "\n".join(lines)


def rgb_image(history: list[Any], core: Any) -> np.ndarray:
    """A (200, 400, 3) uint8 image of the episode so far.

    Left: clearing price per period (blue bars). Right: each participant's cumulative profit
    (green positive, red negative bars).
    """
    img = np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8)
    half = WIDTH // 2
    horizon = max(core.cfg.horizon, 1)
    cap = core.cfg.market.price_cap
    bar_w = max(half // horizon, 1)
    for r in history:
        h = int((HEIGHT - 10) * min(r.price / cap, 1.0))
        x0 = r.period * bar_w
        img[HEIGHT - h :, x0 : x0 + max(bar_w - 1, 1)] = (60, 90, 200)
    if history:
        total = np.sum([r.profit for r in history], axis=0)
        scale = float(np.abs(total).max()) or 1.0
        mid, w = HEIGHT // 2, max((WIDTH - half) // total.size, 1)
        for i, v in enumerate(total):
            h = int((HEIGHT // 2 - 5) * abs(v) / scale)
            x0 = half + i * w
            color = (40, 160, 60) if v >= 0 else (200, 50, 50)
            rows = slice(mid - h, mid) if v >= 0 else slice(mid, mid + h)
            img[rows, x0 : x0 + max(w - 1, 1)] = color
        img[mid, half:] = 0
    img[:, half] = 0
    return img
