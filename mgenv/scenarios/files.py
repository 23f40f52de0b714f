"""Scenario files: a named scenario plus overrides, in TOML (or YAML with PyYAML installed).

>>> env = mgenv.parallel_env("my_market.toml")   # doctest: +SKIP

A file names the scenario it starts from and changes any config field, flat or by section::

    # my_market.toml
    base = "default"          # optional; "default" if absent
    n_microgrids = 8
    horizon = 48
    [chain]
    protocol = "pbft"
    message_loss = 0.1
    [fleet]
    pv_kw = [150, 60]         # templates, tiled to n_microgrids

Every error names the file and the line: a syntax error where the parser stopped, a bad
value at the line of its key (``ValueError: my_market.toml:6: ChainParams.message_loss=1.5
is outside [0, 1]``).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from mgenv.config import SECTIONS, EnvConfig, apply_overrides

SUFFIXES = (".toml", ".yaml", ".yml")


def is_scenario_file(name: str) -> bool:
    """Whether ``name`` refers to a scenario file (by its suffix)."""
    return Path(name).suffix.lower() in SUFFIXES


def _parse(path: Path, text: str) -> dict[str, Any]:
    if path.suffix.lower() == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line = re.search(r"line (\d+)", str(exc))
            raise ValueError(f"{path}:{line.group(1) if line else '?'}: {exc}") from None
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise ValueError(
            f"{path}: YAML scenario files need PyYAML (pip install pyyaml); TOML needs nothing"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ValueError(f"{path}:{mark.line + 1 if mark else '?'}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}:1: a scenario file is a mapping of keys to values")
    return data


def _line_of(text: str, key: str) -> int | str:
    """1-based line where ``key`` is assigned, or '?'."""
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*[=:]")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return "?"


def _flatten(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """``{"chain": {"protocol": ...}, "horizon": 48}`` -> ``{"chain.protocol": ..., ...}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key == "base":
            continue
        if isinstance(value, dict):
            if key not in SECTIONS:
                raise ValueError(f"{path}: unknown section [{key}]; sections are {list(SECTIONS)}")
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def load_scenario_file(name: str | Path) -> EnvConfig:
    """Build the config a scenario file describes (see the module docstring).

    Raises:
        ValueError: Naming the file and line of a syntax error, an unknown key or section,
            or a bad value.
    """
    from mgenv.scenarios import get  # the registry imports this module

    path = Path(name)
    if not path.is_file():
        raise ValueError(f"scenario file {str(path)!r} does not exist")
    text = path.read_text()
    data = _parse(path, text)
    base = data.get("base", "default")
    try:
        cfg = get(str(base))
    except ValueError as exc:
        raise ValueError(f"{path}:{_line_of(text, 'base')}: {exc}") from None
    overrides = {"scenario": path.stem, **_flatten(path, data)}
    try:  # all at once: fields that constrain each other (floor and cap) change together
        return apply_overrides(cfg, overrides)
    except (ValueError, TypeError) as exc:
        message = str(exc)

        # the message names the field ("MarketParams.price_cap=...", "unknown override 'x'")
        def names(key: str) -> bool:
            field = re.escape(key.rpartition(".")[2])
            head = message.split("; valid")[0]  # not the list of valid keys that may follow
            return re.search(rf"'{field}'|\.{field}=", head) is not None

        named = [k for k in overrides if names(k)]
        line = _line_of(text, named[0].rpartition(".")[2]) if named else "?"
        raise ValueError(f"{path}:{line}: {message}") from None
