"""Scenario files (TOML): overrides by key or section; errors name the file and the line."""

from __future__ import annotations

import textwrap

import pytest

import mgenv


def _write(tmp_path, text, name="market.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_file_sets_fields_flat_and_by_section(tmp_path):
    path = _write(
        tmp_path,
        """
        base = "default"
        n_microgrids = 6
        horizon = 12
        [chain]
        protocol = "pbft"
        message_loss = 0.2
        [fleet]
        pv_kw = [150, 60]
    """,
    )
    env = mgenv.parallel_env(path)
    cfg = env.config
    assert (cfg.n_microgrids, cfg.horizon, cfg.chain.message_loss) == (6, 12, 0.2)
    assert cfg.fleet.pv_kw == (150, 60) and cfg.scenario == "market"
    assert len(env.possible_agents) == 6
    env.reset(seed=0)


def test_syntax_error_names_file_and_line(tmp_path):
    path = _write(
        tmp_path,
        """
        horizon = 12
        n_microgrids = = 3
    """,
    )
    with pytest.raises(ValueError, match=r"market\.toml:3: "):
        mgenv.parallel_env(path)


@pytest.mark.parametrize(
    ("body", "line", "pattern"),
    [
        ("horizon = 12\n[chain]\nmessage_loss = 1.5\n", 3, r"ChainParams\.message_loss=1\.5"),
        ("horizon = 12\nnonsense = 3\n", 2, r"unknown override 'nonsense'"),
        ("[market]\nprice_floor = 0.5\nprice_cap = 0.4\n", 3, r"MarketParams\.price_cap=0\.4"),
        ('base = "nope"\n', 1, r"unknown scenario 'nope'"),
    ],
)
def test_bad_value_names_file_and_line_of_its_key(tmp_path, body, line, pattern):
    path = _write(tmp_path, body)
    with pytest.raises(ValueError, match=rf"market\.toml:{line}: .*{pattern}"):
        mgenv.parallel_env(path)


def test_unknown_section_and_missing_file(tmp_path):
    path = _write(tmp_path, "[weather]\nsun = 1\n")
    with pytest.raises(ValueError, match=r"unknown section \[weather\]"):
        mgenv.parallel_env(path)
    with pytest.raises(ValueError, match="does not exist"):
        mgenv.parallel_env(str(tmp_path / "missing.toml"))


def test_floor_and_cap_change_together(tmp_path):
    path = _write(tmp_path, "[market]\nprice_floor = 1.2\nprice_cap = 1.5\n")
    cfg = mgenv.parallel_env(path).config.market
    assert (cfg.price_floor, cfg.price_cap) == (1.2, 1.5)
