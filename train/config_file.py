"""Run configurations as files: TOML in ``train/configs/`` or a finished run's ``config.json``.

A TOML file sets ``TrainConfig`` fields at the top level and the env overrides and algorithm
arguments in the tables ``[overrides]`` and ``[hyperparams]``::

    scenario = "default"
    algo = "ppo"
    total_timesteps = 1_000_000

    [overrides]
    message_loss = 0.05

    [hyperparams]
    learning_rate = 1e-3

``mgenv train --config FILE [options]`` starts from the file; options given on the command
line replace its values (``--override``/``--hyperparam`` add to its tables). A run's
``config.json`` holds the full ``TrainConfig`` of the run (``train_config``), so
``mgenv train --config runs/x/config.json`` trains the same run again.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from train.train_config import TrainConfig, config_from_dict

__all__ = ["CONFIG_DIR", "bundled_configs", "load_config_file", "load_train_config"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
_TABLES = ("overrides", "hyperparams")


def _tuples(value: Any) -> Any:
    """Lists (TOML arrays, JSON lists) as tuples, as the env's config fields want them."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def bundled_configs() -> dict[str, Path]:
    """The run configs checked into ``train/configs/`` by name (file stem)."""
    return {path.stem: path for path in sorted(CONFIG_DIR.glob("*.toml"))}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read the ``TrainConfig`` values of a TOML file or of a run's ``config.json``.

    A bare name (``default``) means ``train/configs/<name>.toml``.

    Raises:
        FileNotFoundError: If the file does not exist (lists the bundled configs).
        ValueError: For a file that does not parse, has unknown fields (listing the valid
            ones) or is a ``config.json`` without the run's train config.
    """
    file = Path(path)
    if not file.exists() and file.suffix == "" and (CONFIG_DIR / f"{file}.toml").is_file():
        file = CONFIG_DIR / f"{file}.toml"
    if not file.is_file():
        raise FileNotFoundError(
            f"no config file {file}; bundled configs: {list(bundled_configs())} (in {CONFIG_DIR})"
        )
    try:
        if file.suffix == ".json":
            raw = json.loads(file.read_text()).get("train_config")
            if not raw:
                raise ValueError(f"{file} has no train_config (a run of an older version)")
        else:
            raw = tomllib.loads(file.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise ValueError(f"{file} is not a valid TOML or run config.json: {exc}") from None
    values = {k: v for k, v in raw.items() if k not in _TABLES}
    for table in _TABLES:
        if not isinstance(raw.get(table, {}), Mapping):
            raise ValueError(f"{file}: [{table}] must be a table of KEY = VALUE")
        values[table] = dict(_tuples(raw.get(table, {})))
    try:
        config_from_dict(values)  # validate now, naming the file
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{file}: {exc}") from None
    return values


def load_train_config(path: str | Path, **replace: Any) -> TrainConfig:
    """Return the ``TrainConfig`` of a config file with some values replaced.

    Args:
        path: TOML file, run ``config.json`` or bundled config name.
        **replace: Fields to replace; ``overrides`` and ``hyperparams`` are merged key by
            key into the file's tables instead.
    """
    values = load_config_file(path)
    for table in _TABLES:
        values[table] = {**values[table], **dict(replace.pop(table, None) or {})}
    return config_from_dict({**values, **replace})
