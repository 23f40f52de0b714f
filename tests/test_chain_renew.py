"""A chain built on the previous one (``Chain(previous=...)``, every env reset) is a fresh chain.

With the same parameters the SBET protocol is renewed from the previous one's
(``SBETProtocol.renewed``, ``NetworkModel.renewed``, ``DataPlane.renewed``): the constants
shared, the draws made again in the same order. Every attribute of the renewed protocol must
equal a freshly built one's, the streams must end in the same states, the two chains must run
alike period after period, and the previous chain must be left as it was.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import numpy as np
import pytest

from mgenv.chain import Chain, ChainParams
from mgenv.chain.dataplane import DataPlane
from mgenv.chain.network import NetworkModel
from mgenv.chain.sbet import SBETProtocol
from tests.test_fast_sbet import CONFIGS, N_PARTICIPANTS, same_state, trades
from tests.test_jit_chain import same_result
from tests.test_jit_pbft import numpy_path

_OBJECTS = (NetworkModel, DataPlane, SBETProtocol)


def same_tree(a: Any, b: Any, path: str = "protocol") -> None:
    """``a`` and ``b`` equal attribute by attribute (arrays by value, dtype and shape)."""
    assert type(a) is type(b), path
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, np.random.Generator):
        assert a.bit_generator.state == b.bit_generator.state, path
        sa, sb = a.bit_generator.seed_seq, b.bit_generator.seed_seq
        assert (sa.spawn_key, sa.n_children_spawned) == (sb.spawn_key, sb.n_children_spawned)
    elif isinstance(a, _OBJECTS):
        assert a.__dict__.keys() == b.__dict__.keys(), path
        for k in a.__dict__:
            same_tree(a.__dict__[k], b.__dict__[k], f"{path}.{k}")
    elif isinstance(a, tuple):
        assert len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            same_tree(x, y, f"{path}[{k}]")
    else:
        assert a == b, path


def snapshot(chain: Chain) -> SBETProtocol:
    return copy.deepcopy(chain.protocol)  # type: ignore[return-value]


def build(params: ChainParams, seed: int, previous: Chain | None = None) -> Chain:
    net, adv = np.random.default_rng(seed).spawn(2)
    return Chain(params, N_PARTICIPANTS, net, adv, key_seed=seed, period_h=0.25, previous=previous)


@pytest.mark.parametrize("numpy_code", [False, True], ids=["kernels", "numpy"])
@pytest.mark.parametrize("fields", CONFIGS)
def test_a_renewed_chain_is_a_fresh_one(fields: dict[str, object], numpy_code: bool) -> None:
    params = ChainParams(protocol="sbet", **fields)  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    with numpy_path() if numpy_code else contextlib.nullcontext():
        old = build(params, 1)
        for t in range(20):  # some state of its own: online state, ledger, last round
            old.process(t, *trades(rng, t))
        before = snapshot(old)
        # the same parameters, as the env passes them (the same object), and equal ones
        for k, same in enumerate((params, copy.deepcopy(params))):
            new = build(same, 10 + k, previous=old)
            fresh = build(same, 10 + k)
            renewed, built = new.protocol, fresh.protocol
            assert isinstance(renewed, SBETProtocol) and isinstance(built, SBETProtocol)
            # renewed (its constants are the old protocol's), and equal to the fresh one
            assert renewed.plane._no_keys is old.protocol.plane._no_keys  # type: ignore[attr-defined]
            assert renewed.network is not old.protocol.network  # type: ignore[attr-defined]
            assert renewed.plane.network is renewed.network
            same_tree(renewed, built)
            same_tree(before, old.protocol)  # the old chain's protocol is untouched
            for t in range(30):
                inputs = trades(rng, t)
                same_result(new.process(t, *inputs), fresh.process(t, *inputs))
                same_state(new, fresh)
            old = new
            before = snapshot(old)


def test_other_parameters_build_a_new_protocol() -> None:
    """Different parameters: nothing is shared, the chain is built as without ``previous``."""
    a = ChainParams(protocol="sbet", **CONFIGS[0])  # type: ignore[arg-type]
    b = ChainParams(protocol="sbet", **CONFIGS[5])  # type: ignore[arg-type]
    old = build(a, 1)
    new, fresh = build(b, 2, previous=old), build(b, 2)
    assert new.protocol.plane._no_keys is not old.protocol.plane._no_keys  # type: ignore[attr-defined]
    same_tree(new.protocol, fresh.protocol)
