"""Network model: Markov online process, DDoS, eq. (6) waiting time, draw layout."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from mgenv.chain import ChainParams
from mgenv.chain.network import (
    NetworkModel,
    child_stream,
    critical_nodes,
    online_transition,
)


def model(seed: int = 0, n_phases: int = 3, n_extra: int = 0, **kw: object):
    rng = np.random.default_rng(seed)
    params = ChainParams(**kw)  # type: ignore[arg-type]
    return NetworkModel(params, rng, n_phases, n_extra), rng, params


def test_memoryless_default_is_the_bernoulli_draw_bit_for_bit() -> None:
    """PBFT's former layout: online = u[:n] < a, delivered = u[n:n+3n^2] >= loss."""
    net, rng, p = model(n_nodes=6, availability=0.7, message_loss=0.2)
    shadow = copy.deepcopy(rng)
    n = 6
    for _ in range(50):
        draw = net.draw_round(rng)
        u = shadow.random(n + 6 * n * n)
        np.testing.assert_array_equal(draw.online, u[:n] < p.availability)
        expect = (u[n : n + 3 * n * n].reshape(3, n, n) >= p.message_loss) & ~np.eye(n, dtype=bool)
        np.testing.assert_array_equal(draw.delivered, expect)
        np.testing.assert_array_equal(draw.jitter_u, u[n + 3 * n * n :].reshape(3, n, n))
        assert draw.extra_u.size == 0


def test_draw_size_is_fixed_whatever_the_state() -> None:
    net, rng, _ = model(
        n_nodes=5, n_phases=12, n_extra=5, availability=0.6, mean_outage_periods=3.0
    )
    shadow = copy.deepcopy(rng)
    for _ in range(20):
        draw = net.draw_round(rng)
        assert draw.delivered.shape == (12, 5, 5) and draw.extra_u.shape == (5,)
        shadow.random(5 + 2 * 12 * 25 + 5)
    assert rng.random() == shadow.random()


@pytest.mark.parametrize(("a", "mean_out"), [(0.8, 4.0), (0.95, 2.0), (0.5, 1.5)])
def test_markov_online_matches_availability_and_mean_outage(a: float, mean_out: float) -> None:
    n, periods = 256, 800
    net, rng, _ = model(seed=3, n_nodes=n, availability=a, mean_outage_periods=mean_out)
    online = np.array([net.next_online(rng.random(n)) for _ in range(periods)])  # (T, n)
    assert online.mean() == pytest.approx(a, abs=0.02)
    down = ~online
    starts = np.count_nonzero(down[0]) + np.count_nonzero(down[1:] & online[:-1])
    assert np.count_nonzero(down) / starts == pytest.approx(mean_out, rel=0.08)


def test_transition_probabilities_closed_form() -> None:
    down_up, up_up = online_transition(0.8, 4.0)
    assert down_up == pytest.approx(0.25)
    assert up_up == pytest.approx(1.0 - 0.25 * 0.2 / 0.8)
    q_on, q_off = down_up, 1.0 - up_up
    assert q_on / (q_on + q_off) == pytest.approx(0.8)  # stationary availability
    assert online_transition(0.8, 0.0) == (0.8, 0.8)  # memoryless
    assert online_transition(1.0, 5.0) == (1.0, 1.0)


def test_ddos_offline_takes_the_most_central_nodes_offline() -> None:
    net, rng, _ = model(n_nodes=9, ddos_nodes=2, ddos_mode="offline")
    pos = net.positions_km.tolist()
    total = [sum(math.dist(pos[i], pos[j]) for j in range(9)) for i in range(9)]
    central = sorted(range(9), key=lambda i: (total[i], i))[:2]
    assert np.flatnonzero(net.attacked).tolist() == sorted(central)
    for _ in range(30):
        draw = net.draw_round(rng)
        assert not draw.online[net.attacked].any() and draw.online[~net.attacked].all()
    assert not net.busy.any()


def test_ddos_slow_multiplies_the_delays_of_attacked_links() -> None:
    slow, rng, _ = model(seed=1, n_nodes=6, ddos_nodes=1, ddos_mode="slow", ddos_slowdown=7.0)
    plain, _, _ = model(seed=1, n_nodes=6)
    u = np.random.default_rng(2).random((3, 6, 6))
    ratio = slow.delays_ms(u) / plain.delays_ms(u)
    hit = slow.attacked[:, None] | slow.attacked[None, :]
    np.testing.assert_allclose(ratio[:, hit], 7.0)
    np.testing.assert_allclose(ratio[:, ~hit], 1.0)
    assert slow.busy.tolist() == slow.attacked.tolist() and slow.draw_round(rng).online.all()


def test_wait_time_is_eq_6() -> None:
    net, _, _ = model(n_nodes=5, area_km=8.0)
    wait = net.wait_ms(1500.0)
    pos = net.positions_km.tolist()
    for i in range(5):
        for u in range(5):
            d = math.dist(pos[i], pos[u])
            assert wait[i, u] == pytest.approx((1 - d / (math.sqrt(2) * 8.0)) * 1500.0)
    assert (wait >= 0).all() and (wait <= 1500.0).all()
    # the kernel's numbers are numpy's expression's, bit for bit
    np.testing.assert_array_equal(wait, (1.0 - net.distance_km / net.d_max_km) * 1500.0)


def test_critical_nodes_and_child_stream() -> None:
    dist = np.array([[0, 1, 5], [1, 0, 4], [5, 4, 0]], dtype=float)
    assert critical_nodes(dist, 1).tolist() == [False, True, False]
    rng = np.random.default_rng(7)
    twin = copy.deepcopy(rng)
    child = child_stream(rng)
    assert rng.random() == twin.random()  # the parent did not move
    assert child.random() != twin.random()


@pytest.mark.parametrize(("a", "mean_out"), [(0.5, 0.5), (0.2, 3.0), (0.9, 0.99)])
def test_impossible_outage_lengths_raise(a: float, mean_out: float) -> None:
    with pytest.raises(ValueError, match=r"ChainParams\.mean_outage_periods="):
        ChainParams(availability=a, mean_outage_periods=mean_out)


@pytest.mark.parametrize("n_nodes", [4, 7, 25])
def test_geometry_is_numpys_bit_for_bit(n_nodes: int) -> None:
    """The compiled distances and base delays equal the numpy expressions they replace."""
    for seed in range(50):
        net, _, params = model(seed, n_nodes=n_nodes, ddos_nodes=1, ddos_mode="slow")
        pos = np.random.default_rng(seed).uniform(0.0, params.area_km, (n_nodes, 2))
        diff = pos[:, None, :] - pos[None, :, :]
        dist = np.sqrt((diff**2).sum(axis=-1))
        base = (params.base_delay_ms + params.delay_per_km_ms * dist) * net.slow
        assert net.distance_km.tobytes() == dist.tobytes()
        assert net.base_delay_ms.tobytes() == base.tobytes()
        assert net.node_slow.tolist() == np.where(net.busy, params.ddos_slowdown, 1.0).tolist()
    plain, _, _ = model(0, n_nodes=n_nodes)
    assert not plain.attacked.any() and plain.node_slow.tolist() == [1.0] * n_nodes
