"""Seed 000's threshold signature (section 4.2) and VNS rules (eqs. 15-16).

Receivers are indexed 0..n-1; ``held[j, i]`` is the key receiver i got from receiver j.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time

import numpy as np
import pytest

from mgenv.chain import threshold as ts


def _dist(n: int, seed: int = 0, dishonest: np.ndarray | None = None) -> ts.KeyDistribution:
    key_rng, adv_rng = np.random.default_rng(seed).spawn(2)
    return ts.distribute(key_rng, n, dishonest, adv_rng)


def _accepts_scalar(
    dist: ts.KeyDistribution, message: bytes, sig: np.ndarray, sigma: float
) -> list[bool]:
    """Slow reference: test (10) entry by entry with stdlib hmac, rule (11) per receiver."""
    n = sig.shape[0]
    out = []
    for i in range(n):
        passed = sum(
            hmac.compare_digest(
                sig[j, i].tobytes(),
                hmac.new(dist.held[j, i].tobytes(), message, hashlib.sha256).digest(),
            )
            for j in range(n)
        )
        out.append(passed >= (0.5 + 2 * (1 - sigma)) * n - 1e-9)
    return out


def test_rule11_threshold_and_sigma_range() -> None:
    assert ts.rule11_threshold(10, 1.0) == pytest.approx(5.0)
    assert ts.rule11_threshold(10, 0.9) == pytest.approx(7.0)
    assert ts.rule11_threshold(8, 0.75) == pytest.approx(8.0)
    with pytest.raises(ValueError, match=r"sigma=0.7 is outside \[0.75, 1\]"):
        ts.rule11_threshold(8, 0.7)


def test_tags_are_hmac_sha256() -> None:
    dist = _dist(3)
    sig = ts.sign(dist.keys, b"transaction 7")
    for j in range(3):
        for i in range(3):
            ref = hmac.new(dist.keys[j, i].tobytes(), b"transaction 7", hashlib.sha256).digest()
            assert sig[j, i].tobytes() == ref


def test_keys_are_seeded_and_reproducible() -> None:
    a, b, c = _dist(5, seed=1), _dist(5, seed=1), _dist(5, seed=2)
    np.testing.assert_array_equal(a.keys, b.keys)
    assert not np.array_equal(a.keys, c.keys)
    np.testing.assert_array_equal(ts.sign(a.keys, b"m"), ts.sign(b.keys, b"m"))


@pytest.mark.parametrize(("n", "sigma"), [(6, 1.0), (12, 5 / 6), (10, 0.9), (7, 0.95)])
def test_transferability_every_honest_receiver_accepts(n: int, sigma: float) -> None:
    # the worst case under rule (11)'s assumption: floor((1 - sigma) n) receivers forward
    # garbage keys to everyone
    d = math.floor((1 - sigma) * n + 1e-9)
    dishonest = np.zeros(n, dtype=bool)
    dishonest[np.random.default_rng(n).permutation(n)[:d]] = True
    dist = _dist(n, seed=n, dishonest=dishonest)
    assert dist.corrupted.sum() == d * (n - 1)
    msg = b"serial=42;Q=12.5;p=0.61"
    sig = ts.sign(dist.keys, msg)
    tests = ts.tag_tests(ts.expected_tags(dist, msg, sig), sig)
    ok = ts.accepts(tests, sigma)
    assert ok[~dishonest].all()
    assert ok.tolist() == _accepts_scalar(dist, msg, sig, sigma)
    # the shortcut that reuses the signer's tags equals a full recomputation
    np.testing.assert_array_equal(ts.expected_tags(dist, msg, sig), ts.expected_tags(dist, msg))


def test_transferability_fails_below_five_sixths() -> None:
    # n = 10, sigma = 0.8: rule (11) wants 9 passes, 2 saboteurs leave 8 (module docstring)
    n, sigma = 10, 0.8
    dishonest = np.zeros(n, dtype=bool)
    dishonest[:2] = True
    dist = _dist(n, dishonest=dishonest)
    sig = ts.sign(dist.keys, b"m")
    ok = ts.accepts(ts.tag_tests(ts.expected_tags(dist, b"m", sig), sig), sigma)
    assert not ok[~dishonest].any()


def test_acceptance_is_exactly_at_the_threshold() -> None:
    n, sigma = 10, 0.9  # threshold 7 passes
    dist = _dist(n)
    sig = ts.sign(dist.keys, b"m").copy()
    rng = np.random.default_rng(3)
    for wrong, expected in ((3, True), (4, False)):
        bad = sig.copy()
        bad[:wrong] = rng.integers(0, 256, bad[:wrong].shape, dtype=np.uint8)  # rows 0..wrong-1
        ok = ts.accepts(ts.tag_tests(ts.expected_tags(dist, b"m"), bad), sigma)
        assert ok.all() == expected and ok.any() == expected


def test_forger_without_keys_100k_random_signatures_never_accepted() -> None:
    n, sigma = 4, 0.9
    dist = _dist(n, seed=11)
    rng = np.random.default_rng(12)
    start = time.perf_counter()
    accepted = 0
    for m in range(1000):  # 1000 messages x 100 random signatures = 100,000 tries
        msg = f"forged transfer {m}".encode()
        expected = ts.expected_tags(dist, msg)
        forged = rng.integers(0, 256, size=(100, n, n, ts.TAG_BYTES), dtype=np.uint8)
        accepted += int(ts.verify_batch(expected, forged, sigma).sum())
    assert accepted == 0
    assert time.perf_counter() - start < 10.0
    # and the same machinery does accept the genuine signature of those messages
    genuine = ts.sign(dist.keys, b"forged transfer 5")[None]
    assert ts.verify_batch(ts.expected_tags(dist, b"forged transfer 5"), genuine, sigma).all()


def test_coalition_of_dishonest_receivers_cannot_forge() -> None:
    n, sigma = 20, 0.9
    d = math.floor((1 - sigma) * n + 1e-9)  # 2 dishonest receivers, the most rule (11) assumes
    coalition = np.zeros(n, dtype=bool)
    coalition[[4, 11]] = True
    dist = _dist(n, seed=5, dishonest=coalition)
    rng = np.random.default_rng(6)
    msg = b"transfer never signed by P0"
    true = ts.sign(dist.keys, msg)  # what the coalition cannot compute in full
    forged = rng.integers(0, 256, size=(1000, n, n, ts.TAG_BYTES), dtype=np.uint8)
    forged[:, coalition] = true[coalition]  # rows j of the coalition: it knows r_ji for all i
    forged[:, :, coalition] = true[:, coalition]  # columns of the coalition too
    ok = ts.verify_batch(ts.expected_tags(dist, msg), forged, sigma)
    assert d == 2 and not ok[:, ~coalition].any()


def test_signature_does_not_transfer_to_another_message() -> None:
    dist = _dist(6)
    sig = ts.sign(dist.keys, b"Q=10 kWh")
    ok = ts.accepts(ts.tag_tests(ts.expected_tags(dist, b"Q=11 kWh"), sig), 0.9)
    assert not ok.any()


def test_undeniability_serial_binding_and_dispute() -> None:
    n, sigma = 6, 1.0
    dist = _dist(n, seed=9)
    honest = np.ones(n, dtype=bool)
    registry = ts.SerialRegistry()
    m1, m2 = b"serial=5;Q=10", b"serial=5;Q=99"
    s1, s2 = ts.sign(dist.keys, m1), ts.sign(dist.keys, m2)
    # both verify cryptographically: only the signer could have made them ...
    assert ts.dispute(dist, m1, s1, sigma, honest) and ts.dispute(dist, m2, s2, sigma, honest)
    # ... so the signer cannot deny m1, and cannot get m2 accepted under the same serial
    assert registry.bind(5, m1)
    assert not registry.bind(5, m2)
    assert registry.bind(5, m1) and len(registry) == 1
    forged = np.random.default_rng(0).integers(0, 256, s1.shape, dtype=np.uint8)
    assert not ts.dispute(dist, m1, forged, sigma, honest)


def test_vns_rules_against_scalar_loops() -> None:
    rng = np.random.default_rng(0)
    size, thr = np.array([4, 5, 3]), np.array([3, 4, 2])
    verified = rng.integers(0, 6, (200, 3))
    involved = rng.random((200, 3)) < 0.7
    total = rng.integers(0, 12, 200)
    got = ts.crosschain_accepts(verified, size, thr, involved, total)
    for t in range(200):
        each = all(size[d] >= verified[t, d] >= thr[d] for d in range(3) if involved[t, d])
        s = sum(int(verified[t, d]) for d in range(3) if involved[t, d])
        assert got[t] == (each and s >= total[t])
    np.testing.assert_array_equal(
        ts.vns_accepts(verified, size, thr), (verified >= thr) & (verified <= size)
    )


def test_verify_batch_matches_single_verifications() -> None:
    n, sigma = 5, 0.9
    dist = _dist(n, seed=4)
    expected = ts.expected_tags(dist, b"m")
    sigs = np.repeat(ts.sign(dist.keys, b"m")[None], 20, axis=0)
    rng = np.random.default_rng(1)
    for b in range(20):  # corrupt a random number of entries of each
        k = rng.integers(0, n * n)
        flat = sigs[b].reshape(-1, ts.TAG_BYTES)
        flat[rng.permutation(n * n)[:k]] ^= 1
    batch = ts.verify_batch(expected, sigs, sigma)
    for b in range(20):
        assert batch[b].tolist() == ts.accepts(ts.tag_tests(expected, sigs[b]), sigma).tolist()


def test_distribute_needs_adversary_stream_for_dishonest() -> None:
    with pytest.raises(ValueError, match="adversary_rng"):
        ts.distribute(np.random.default_rng(0), 3, np.array([True, False, False]))


def test_padded_hmac_equals_stdlib_hmac() -> None:
    rng = np.random.default_rng(2)
    keys = [rng.bytes(32) for _ in range(20)]
    msgs = [rng.bytes(int(rng.integers(0, 100))) for _ in range(20)]
    got = ts.padded_tags(ts.hmac_pads(keys), msgs)
    for k, m, tag in zip(keys, msgs, got, strict=True):
        assert tag.tobytes() == hmac.digest(k, m, "sha256")
