"""SHA-256 kernels (mgenv.chain.kernels_sha) vs the chain's hashlib code, per call.

``PYTHONPATH=. python benchmarks/bench_sha.py [--repeat 500] [--rounds 100]``

Prints µs per call (the minimum over interleaved rounds of each round's mean) for:

* signing T transactions: ``ModelledSigner.sign_pairs`` (hashlib, lists of bytes) vs
  ``sign_pairs_into`` on ready arrays, and vs the kernel with the conversions a Python caller
  needs (payload bytes to an array, tags back to lists of bytes);
* making a block of n records: ``ledger.make_block`` vs ``block_into`` on ready arrays, and
  with the conversions (records joined into an array, header and hash back to bytes);
* first, one compression (64 rounds of one block) in a kernel's loop: the portable code vs
  the SHA extensions (SHA-NI, where numba's target CPU has them), and hashlib's (OpenSSL)
  time per block on a 64 KiB message for scale. The kernels use SHA-NI when
  ``kernels_sha.HAVE_SHA_NI`` (printed); ``MGENV_SHA_NI=0`` measures them portable.

The "ready arrays" figures are what a fused kernel pays; the "with conversions" figures say
whether the Python functions gain by calling the kernels.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from typing import cast

import numpy as np

from mgenv import _jit
from mgenv.chain import kernels_sha
from mgenv.chain.ledger import make_block
from mgenv.chain.transactions import PAYLOAD_SIZE, ModelledSigner


def per_call_us(fns: dict[str, Callable[[], object]], repeat: int, rounds: int) -> dict[str, float]:
    """Per function, the minimum over rounds of the mean time of one call (µs).

    The functions take turns within each round, so that all see the same machine load; the
    minimum discards rounds slowed by other processes.
    """
    best = dict.fromkeys(fns, float("inf"))
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(repeat):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / repeat * 1e6)
    return best


def _uncached(fn: Callable[..., None]) -> Callable[..., None]:
    """``fn`` compiled with numba but not cached (plain Python without numba).

    numba keys a cached kernel by its own file only: these loops inline mgenv's compression
    code, and mgenv drops its own caches when its files change (``mgenv._jit``), not this
    directory's, so a cached loop would keep timing an old compression (it did: a stale
    SHA-NI loop without the ``vzeroupper`` read ~7,600 ns a block after the fix).
    """
    if not _jit.AVAILABLE:
        return fn
    import numba

    return cast(Callable[..., None], numba.njit(nogil=True, error_model="numpy")(fn))


@_uncached
def _loop_portable(state: np.ndarray, w: np.ndarray, n: int) -> None:
    for _ in range(n):
        kernels_sha._compress_words_portable(state, w, True)


@_uncached
def _loop_sha_ni(state: np.ndarray, w: np.ndarray, n: int) -> None:
    for _ in range(n):
        kernels_sha._compress_words_sha_ni(state, w, True)


def bench_compress(repeat: int, rounds: int) -> None:
    """Time per compression: portable, SHA-NI (if available), hashlib on 64 KiB."""
    state = kernels_sha.H0.copy()
    w = np.arange(64, dtype=np.uint32)
    n = 1000
    data = bytes(65536)
    fns: dict[str, Callable[[], object]] = {
        "portable": lambda: _loop_portable(state, w, n),
        "hashlib": lambda: hashlib.sha256(data).digest(),
    }
    if kernels_sha.HAVE_SHA_NI:
        fns["sha_ni"] = lambda: _loop_sha_ni(state, w, n)
    us = per_call_us(fns, max(1, repeat // 50), rounds)
    ni = f"{us['sha_ni'] / n * 1e3:5.0f} ns" if "sha_ni" in us else "  n/a"
    print(
        f"compress: portable {us['portable'] / n * 1e3:5.0f} ns | SHA-NI {ni} | hashlib "
        f"{us['hashlib'] / (len(data) // 64) * 1e3:5.0f} ns per block "
        f"(kernels use SHA-NI: {kernels_sha.HAVE_SHA_NI})"
    )


def bench_sign(t: int, repeat: int, rounds: int) -> None:
    rng = np.random.default_rng(1)
    signer = ModelledSigner(42, 8)
    sellers = rng.integers(0, 8, t).tolist()
    buyers = rng.integers(0, 8, t).tolist()
    payloads = [rng.bytes(PAYLOAD_SIZE) for _ in range(t)]
    inner, outer = kernels_sha.hmac_pad_table(signer.keys)
    s_arr = np.array(sellers, dtype=np.int64)
    b_arr = np.array(buyers, dtype=np.int64)
    p_arr = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(t, PAYLOAD_SIZE)
    s_sig = np.empty((t, 32), dtype=np.uint8)
    b_sig = np.empty((t, 32), dtype=np.uint8)

    def kernel_ready() -> None:
        kernels_sha.sign_pairs_into(inner, outer, s_arr, b_arr, p_arr, s_sig, b_sig)

    def kernel_lists() -> tuple[list[bytes], list[bytes]]:
        p = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(t, PAYLOAD_SIZE)
        ss = np.empty((t, 32), dtype=np.uint8)
        bs = np.empty((t, 32), dtype=np.uint8)
        kernels_sha.sign_pairs_into(inner, outer, np.array(sellers), np.array(buyers), p, ss, bs)
        raw_s, raw_b = ss.tobytes(), bs.tobytes()
        return (
            [raw_s[i : i + 32] for i in range(0, 32 * t, 32)],
            [raw_b[i : i + 32] for i in range(0, 32 * t, 32)],
        )

    ref = signer.sign_pairs(sellers, buyers, payloads)
    kernel_ready()
    assert ([bytes(r) for r in s_sig], [bytes(r) for r in b_sig]) == ref
    assert kernel_lists() == ref
    us = per_call_us(
        {
            "hashlib": lambda: signer.sign_pairs(sellers, buyers, payloads),
            "ready": kernel_ready,
            "lists": kernel_lists,
        },
        repeat,
        rounds,
    )
    hashlib_us, ready_us, lists_us = us["hashlib"], us["ready"], us["lists"]
    print(
        f"sign T={t}:  sign_pairs (hashlib) {hashlib_us:6.2f} µs | sign_pairs_into "
        f"{ready_us:6.2f} µs ({ready_us / (4 * t) * 1e3:4.0f} ns per compression) | "
        f"kernel from/to lists {lists_us:6.2f} µs"
    )


def bench_block(n: int, repeat: int, rounds: int) -> None:
    rng = np.random.default_rng(2)
    records = [rng.bytes(PAYLOAD_SIZE + 64) for _ in range(n)]
    prev = rng.bytes(32)
    rec_arr = np.frombuffer(b"".join(records), dtype=np.uint8).reshape(n, -1)
    prev_arr = np.frombuffer(prev, dtype=np.uint8)
    header = np.empty(92, dtype=np.uint8)
    block_hash = np.empty(32, dtype=np.uint8)

    def kernel_ready() -> None:
        kernels_sha.block_into(5, 17, prev_arr, rec_arr, 4_500_000, header, block_hash)

    def kernel_bytes() -> tuple[bytes, bytes, bytes]:
        txs = b"".join(records)
        out = np.empty(124, dtype=np.uint8)
        arr = np.frombuffer(txs, dtype=np.uint8).reshape(n, -1)
        kernels_sha.block_into(5, 17, prev, arr, 4_500_000, out[:92], out[92:])
        raw = out.tobytes()
        return raw[:92], txs, raw[92:]

    ref = make_block(5, 17, prev, records, 4_500_000)
    kernel_ready()
    assert header.tobytes() == ref.header and block_hash.tobytes() == ref.hash
    assert kernel_bytes() == (ref.header, ref.txs, ref.hash)
    us = per_call_us(
        {
            "hashlib": lambda: make_block(5, 17, prev, records, 4_500_000),
            "ready": kernel_ready,
            "bytes": kernel_bytes,
        },
        repeat,
        rounds,
    )
    hashlib_us, ready_us, bytes_us = us["hashlib"], us["ready"], us["bytes"]
    print(
        f"block n={n}: make_block (hashlib) {hashlib_us:6.2f} µs | block_into "
        f"{ready_us:6.2f} µs | kernel from/to bytes {bytes_us:6.2f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    if not _jit.ENABLED:
        raise SystemExit("numba is disabled (MGENV_JIT=0) or missing: nothing to compare")
    bench_compress(args.repeat, args.rounds)
    for t in (1, 2, 4, 8):
        bench_sign(t, args.repeat, args.rounds)
    for n in (1, 2, 4, 8):
        bench_block(n, args.repeat, args.rounds)


if __name__ == "__main__":
    main()
