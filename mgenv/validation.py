"""Small validators shared by every parameter dataclass.

Each raises ``ValueError`` with a message that names the field, the value and the allowed
range, e.g. ``"GridParams.feed_in_price=-1.0 is outside [0, inf)"``. They are used in
``__post_init__`` of frozen dataclasses (not ``assert``, which ``python -O`` strips).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def _fmt(bound: float) -> str:
    if math.isinf(bound):
        return "inf" if bound > 0 else "-inf"
    return f"{bound:g}"


def check_range(
    owner: str,
    field: str,
    value: float,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise if ``value`` is not a finite number inside the interval.

    Args:
        owner: Class name used in the message.
        field: Field name used in the message.
        value: The value to check.
        low: Lower bound.
        high: Upper bound.
        low_open: Whether the lower bound is excluded.
        high_open: Whether the upper bound is excluded.
    """
    lb = "(" if low_open or math.isinf(low) else "["
    hb = ")" if high_open or math.isinf(high) else "]"
    interval = f"{lb}{_fmt(low)}, {_fmt(high)}{hb}"
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}.{field}={value!r} is not a number; allowed {interval}") from None
    ok = math.isfinite(v) and (v > low if low_open else v >= low)
    ok = ok and (v < high if high_open else v <= high)
    if not ok:
        raise ValueError(f"{owner}.{field}={value!r} is outside {interval}")


def check_int(owner: str, field: str, value: int, low: int, high: int | None = None) -> None:
    """Raise if ``value`` is not an integer in ``[low, high]``."""
    hi = "inf" if high is None else str(high)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{owner}.{field}={value!r} is not an integer; allowed [{low}, {hi}]")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{owner}.{field}={value!r} is outside [{low}, {hi}]")


def check_choice(owner: str, field: str, value: str, choices: Iterable[str]) -> None:
    """Raise if ``value`` is not one of ``choices`` (listed in the message)."""
    allowed = sorted(choices)
    if value not in allowed:
        raise ValueError(f"{owner}.{field}={value!r} is not one of {allowed}")


def check_all_range(
    owner: str,
    field: str,
    values: Sequence[float],
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Apply :func:`check_range` to each element, naming the index in the message."""
    if len(values) == 0:
        raise ValueError(f"{owner}.{field} is empty; give at least one value")
    for i, v in enumerate(values):
        check_range(owner, f"{field}[{i}]", v, low, high, low_open=low_open, high_open=high_open)


#: The smallest storage capacity, kWh, other than 0 (none): smaller ones put a state of charge
#: (content / capacity) among the subnormal floats, where it rounds to its bounds or past them.
MIN_CAPACITY_KWH = 1e-6


def check_capacities(owner: str, field: str, values: Sequence[float]) -> None:
    """Each storage capacity is 0 (no storage) or at least :data:`MIN_CAPACITY_KWH` kWh."""
    for i, v in enumerate(values):
        if 0.0 < v < MIN_CAPACITY_KWH:
            raise ValueError(
                f"{owner}.{field}[{i}]={v!r} kWh is below {MIN_CAPACITY_KWH} kWh; "
                "use 0 for no storage"
            )
