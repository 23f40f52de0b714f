"""The SHA-NI compression function (mgenv.chain.kernels_sha) equals the portable one, bit for bit.

With SHA-NI on (the default where numba's target CPU has the SHA extensions), every test of
tests/test_sha_kernels.py already runs on it against hashlib; here the two compression
functions are compared directly on random states and schedules, the choice of implementation
is checked against the host, and subprocesses check that ``MGENV_SHA_NI=0`` selects the
portable code, that numba's on-disk cache does not serve one to the other, and that kernels
holding the intrinsic load from the cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mgenv import _jit
from mgenv.chain import kernels_sha as ks

ROOT = Path(__file__).resolve().parents[1]

needs_sha_ni = pytest.mark.skipif(
    not ks.HAVE_SHA_NI, reason="numba missing or disabled, no SHA extensions, or MGENV_SHA_NI=0"
)
needs_numba = pytest.mark.skipif(not _jit.AVAILABLE, reason="numba is not installed or MGENV_JIT=0")


def test_choice_follows_host_and_setting() -> None:
    """SHA-NI is used exactly when numba is on, its target has ``+sha`` and the user allows it."""
    expected = _jit.AVAILABLE and ks._sha_ni_setting() and ks._numba_target_has_sha()
    assert expected == ks.HAVE_SHA_NI
    if ks.HAVE_SHA_NI:
        assert ks._compress_words is ks._compress_words_sha_ni
        assert ks._sha_ni_compress is not None
    else:
        assert ks._compress_words is ks._compress_words_portable
        assert ks._sha_ni_compress is None


if ks.HAVE_SHA_NI:

    @_jit.kernel
    def _both(states: np.ndarray, ws: np.ndarray, out_ni: np.ndarray, out_p: np.ndarray) -> None:
        """Row i: SHA-NI into out_ni[i], portable into out_p[i] (from states[i], ws[i])."""
        w = np.empty(64, np.uint32)
        for i in range(states.shape[0]):
            for j in range(8):
                out_ni[i, j] = states[i, j]
                out_p[i, j] = states[i, j]
            for t in range(16):
                w[t] = ws[i, t]
            ks._compress_words_sha_ni(out_ni[i], w, True)
            for t in range(16):
                w[t] = ws[i, t]
            ks._compress_words_portable(out_p[i], w, True)

    @_jit.kernel
    def _strided(state: np.ndarray, w: np.ndarray) -> None:
        """The SHA-NI compression on arrays of any layout (here non-contiguous views)."""
        ks._compress_words_sha_ni(state, w, True)


@needs_sha_ni
def test_sha_ni_equals_portable_on_random_blocks() -> None:
    rng = np.random.default_rng(20261206)
    n = 5000
    states = rng.integers(0, 2**32, (n, 8), dtype=np.uint32)
    ws = rng.integers(0, 2**32, (n, 16), dtype=np.uint32)
    # extremes: all zeros, all ones, H(0) with a zero block, single bits
    states[0], ws[0] = 0, 0
    states[1], ws[1] = 0xFFFFFFFF, 0xFFFFFFFF
    states[2], ws[2] = ks.H0, 0
    for k in range(32):
        states[3 + k] = np.uint32(1 << k)
        ws[3 + k] = np.uint32(1 << (31 - k))
    out_ni = np.empty_like(states)
    out_p = np.empty_like(states)
    _both(states, ws, out_ni, out_p)
    np.testing.assert_array_equal(out_ni, out_p)
    assert not np.array_equal(out_ni, states)
    for i in (0, 1, 2, 7, n - 1):  # and the plain-Python compression, the reference
        py = ks._py_compress([int(x) for x in states[i]], ws[i].astype(">u4").tobytes())
        assert [int(x) for x in out_ni[i]] == py


@needs_sha_ni
def test_sha_ni_on_strided_arrays() -> None:
    """Non-contiguous ``state`` and ``w`` (numba layout 'A') are addressed through strides."""
    rng = np.random.default_rng(3)
    big_state = rng.integers(0, 2**32, 24, dtype=np.uint32)
    big_w = rng.integers(0, 2**32, 48, dtype=np.uint32)
    state, w = big_state[::3], big_w[::3]
    expected = ks._py_compress([int(x) for x in state], w.astype(">u4").tobytes())
    rest_state = np.delete(big_state, np.arange(0, 24, 3)).copy()
    rest_w = big_w.copy()
    _strided(state, w)
    assert [int(x) for x in state] == expected
    np.testing.assert_array_equal(np.delete(big_state, np.arange(0, 24, 3)), rest_state)
    np.testing.assert_array_equal(big_w, rest_w)  # w is only read


@needs_sha_ni
def test_sha_ni_in_machine_code() -> None:
    """Code compiled with ``_compress_words`` holds the SHA instructions (the intrinsic's).

    Compiled here without numba's cache (numba cannot show the assembly of cached code).
    """
    import numba

    @numba.njit(cache=False)
    def compress(state: np.ndarray, w: np.ndarray) -> None:
        ks._compress_words(state, w, True)

    state, w = ks.H0.copy(), np.zeros(64, np.uint32)
    compress(state, w)
    expected = ks._py_compress([int(x) for x in ks.H0], bytes(64))
    assert [int(x) for x in state] == expected
    asm = "\n".join(compress.inspect_asm().values())
    assert "sha256rnds2" in asm and "sha256msg1" in asm and "sha256msg2" in asm
    # where the target has AVX, the upper halves are cleared before the (legacy SSE) SHA
    # instructions, after the last 256/512-bit instruction: Intel's transition penalty
    lines = asm.splitlines()
    first_sha = next(i for i, line in enumerate(lines) if "sha256" in line)
    before = lines[:first_sha]
    if "avx" in ks._numba_target_features():
        clears = [i for i, line in enumerate(before) if "vzeroupper" in line]
        wide = [i for i, line in enumerate(before) if "%ymm" in line or "%zmm" in line]
        assert clears and (not wide or clears[-1] > wide[-1])
    else:
        assert not any("vzeroupper" in line for line in lines)


def test_target_features_are_llvms_enabled_names() -> None:
    features = ks._numba_target_features()
    assert all(f and not f.startswith(("+", "-")) for f in features)
    assert ks._numba_target_has_sha() == ("sha" in features)
    if _jit.AVAILABLE and features:  # an x86 target: SSE2 is in every x86-64 CPU
        assert "sse2" in features


# A run in a copy of the package (its own numba cache next to the sources and its own stamp,
# so the checkout's caches are left alone). Prints the path taken, the cache hits, and checks
# SHA-256, HMAC and a block against hashlib / the chain's code.
_RUN = r"""
import hashlib, hmac, sys
import numpy as np
from mgenv.chain import kernels_sha as ks
from mgenv.chain.ledger import make_block
assert ks.__file__.startswith(sys.argv[1]), ks.__file__
for n in (0, 40, 55, 56, 64, 100, 300):
    data = bytes((5 * i + 1) & 0xFF for i in range(n))
    out = np.zeros(32, np.uint8)
    ks.sha256_into(np.frombuffer(data, np.uint8), out)
    assert out.tobytes() == hashlib.sha256(data).digest(), n
    inner, outer = ks.hmac_pads(b"key" * 7)
    ks.hmac_into(inner, outer, np.frombuffer(data, np.uint8), out)
    assert out.tobytes() == hmac.digest(b"key" * 7, data, "sha256"), n
recs = [bytes([i]) * 104 for i in range(5)]
ref = make_block(3, 9, b"\1" * 32, recs, 123)
header, bh = np.empty(92, np.uint8), np.empty(32, np.uint8)
rec = np.frombuffer(b"".join(recs), np.uint8).reshape(5, 104)
ks.block_into(3, 9, np.frombuffer(b"\1" * 32, np.uint8), rec, 123, header, bh)
assert header.tobytes() == ref.header and bh.tobytes() == ref.hash
hits = sum(ks._sha256_core.stats.cache_hits.values())
if hits:
    rnds2 = "cached"
else:
    rnds2 = "sha256rnds2" in "\n".join(ks._sha256_core.inspect_asm().values())
portable = ks._compress_words is ks._compress_words_portable
print(f"have={ks.HAVE_SHA_NI} portable={portable} hits={hits} rnds2={rnds2}")
"""


def _run_copy(pkg_parent: Path, sha_ni: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MGENV_SHA_NI", "NUMBA_CACHE_DIR")}
    env["PYTHONPATH"] = str(pkg_parent)
    if sha_ni is not None:
        env["MGENV_SHA_NI"] = sha_ni
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(pkg_parent)],
        env=env,
        cwd=pkg_parent,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@needs_numba
def test_env_var_selects_portable_and_cache_follows(tmp_path: Path) -> None:
    """``MGENV_SHA_NI=0`` runs the portable code, never SHA-NI code from numba's cache.

    Four processes on one copy of the package: the default setting compiles, then loads
    from the cache; ``MGENV_SHA_NI=0`` then finds the stamp changed, drops the cache and
    compiles the portable code (no SHA instruction in it), which the next such run loads.
    On a host without the SHA extensions every run is portable.
    """
    shutil.copytree(
        ROOT / "mgenv", tmp_path / "mgenv", ignore=shutil.ignore_patterns("__pycache__")
    )
    have = ks._numba_target_has_sha()
    first = _run_copy(tmp_path, None)
    assert first == f"have={have} portable={not have} hits=0 rnds2={have}"
    again = _run_copy(tmp_path, "1")
    assert again.startswith(f"have={have} portable={not have} hits=") and "hits=0" not in again
    off = _run_copy(tmp_path, "0")
    assert off == "have=False portable=True hits=0 rnds2=False"
    off_again = _run_copy(tmp_path, "0")
    assert off_again.startswith("have=False portable=True hits=") and "hits=0" not in off_again
