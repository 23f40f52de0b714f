"""B copies of a scenario as arrays of shape (B, ...): the batched twin of :class:`MarketCore`.

:class:`BatchedCore` steps B copies of one configuration together. Every copy has the random
streams a single :class:`~mgenv.env.MarketEnv` would have for the same seed, and every stage
computes, copy by copy, bit for bit what the single core computes (tests/test_batched_env.py
compares full episodes with B separate ``ParallelEnv``s exactly). What differs is the shape:
physics, market, chain, settlement and observations are each one numpy pass over all copies
(:mod:`mgenv.batched.physics`, :mod:`~mgenv.batched.market`, :mod:`~mgenv.batched.chain`,
:mod:`~mgenv.batched.settlement`, :mod:`~mgenv.batched.observe`), so the Python and numpy
call overhead that dominates a single small market is paid once per B copies.

Copies run in lockstep: episodes have a fixed horizon and end by truncation only, so all
copies are always in the same period and reset together.

Scope: the configurations of the ``default`` family (:func:`check_supported` says which
fields and values). Design decision, lazy hashing: the batched chain decides the same
verdicts as the single chain but signs, hashes and stores nothing (with modelled signatures
and no adversary hook every signature verifies by construction, so verdicts do not depend on
the bytes); use the single env to inspect ledgers and blocks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from gymnasium.utils import seeding

from mgenv import _jit
from mgenv.batched import normals
from mgenv.batched.chain import BatchedChain
from mgenv.batched.market import clear_uniform_batch
from mgenv.batched.observe import (
    agg_observations,
    batched_common,
    mg_observations,
    obs_scales,
    user_observations,
)
from mgenv.batched.opponents import BatchedPublicInfo, batched_opponent
from mgenv.batched.physics import BatchedElectric, draw_profiles_batch, draw_profiles_seeded
from mgenv.batched.settlement import BatchedSettlement, settle_batch, settle_copies
from mgenv.batched.streams import EpisodeBatch, seed_streams
from mgenv.config import EnvConfig
from mgenv.core import COMMIT_EMA, STAGES, MarketCore
from mgenv.physics.model import Forecast

#: Supported values of the configuration fields the batched core depends on.
SUPPORTED: dict[str, tuple[object, ...]] = {
    "physics": ("electric",),
    "dispatch": ("rule",),
    "market.mechanism": ("uniform_price",),
    "chain.protocol": ("ideal", "pbft", "sbet"),
    "chain.signatures": ("modelled",),
    "chain.auth_identity": ("none",),
    "chain.ledger_path": ("", None),
}


def _field(cfg: EnvConfig, dotted: str) -> object:
    obj: object = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def check_supported(cfg: EnvConfig) -> None:
    """Raise ValueError naming the first configuration field the batched core cannot run."""
    for name, allowed in SUPPORTED.items():
        value = _field(cfg, name)
        if value not in allowed:
            raise ValueError(
                f"the batched core supports {name} in {list(allowed)}, got {value!r} "
                "(use mgenv.parallel_env for this configuration)"
            )


def check_actions(mg_actions: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The learners' actions as float64 of ``shape`` (B, n_mg, A), or ValueError.

    Raises ValueError for another shape and for non-finite values (naming the first copy
    and microgrid that has one), before anything is stepped.
    """
    acts = np.asarray(mg_actions, dtype=np.float64)
    if acts.shape != shape:
        raise ValueError(f"mg_actions has shape {acts.shape}; expected {shape}")
    if not np.isfinite(acts).all():
        b, i = np.argwhere(~np.isfinite(acts).all(axis=2))[0].tolist()
        raise ValueError(f"copy {b}: action of mg_{i} has non-finite values")
    return acts


class BatchedStep(NamedTuple):
    """What one batched step returns (learning agents in their role order).

    Attributes:
        obs: Shape (B, n_learn, F), float32: the learning agents' next observations.
        reward: Shape (B, n_learn), float64: their profit this period, yuan.
        price: Shape (B,): clearing price, yuan/kWh (0 if nothing cleared).
        committed_share: Shape (B,): committed / all trades of the period (1 if none).
        truncated: The horizon was reached (every copy: they run in lockstep).
    """

    obs: np.ndarray
    reward: np.ndarray
    price: np.ndarray
    committed_share: np.ndarray
    truncated: bool


class BatchedCore:
    """Episode state of B copies (arrays (B, ...)) and the batched step pipeline.

    Args:
        cfg: The scenario configuration (see :func:`check_supported`).
        n_copies: B, the number of copies, >= 1.
    """

    def __init__(self, cfg: EnvConfig, n_copies: int) -> None:
        check_supported(cfg)
        if isinstance(n_copies, bool) or not isinstance(n_copies, int) or n_copies < 1:
            raise ValueError(f"n_copies={n_copies!r} must be an integer >= 1")
        if cfg.learning_roles != ("mg",):
            raise ValueError(
                f"the batched core supports learning_roles=('mg',), got {cfg.learning_roles}"
            )
        self.cfg = cfg
        self.n_copies = n_copies
        # The single core holds every per-configuration constant (scales, tariff, hours,
        # buyer -> aggregator map, spaces); the batched core reads them, never its state.
        self.single = single = MarketCore(cfg)
        self.action_dim = len(single.action_names("mg"))
        self.physics = BatchedElectric(cfg, single.fleet, n_copies)
        self.chain = BatchedChain(
            cfg.chain, cfg.n_participants, n_copies, cfg.dt_h, horizon=cfg.horizon
        )
        self.opponent = batched_opponent(cfg.opponent_policy, cfg, single)
        self.scales = obs_scales(cfg, single)
        self._seed_rngs: list[np.random.Generator | None] = [None] * n_copies
        self.t = 0
        # Accumulated seconds per stage (as MarketCore.stage_time) plus the episode resets.
        self.stage_time = dict.fromkeys((*STAGES, "reset"), 0.0)

    def reset_stage_time(self) -> None:
        """Zero the stage clocks (:attr:`stage_time`)."""
        for k in self.stage_time:
            self.stage_time[k] = 0.0

    # ------------------------------------------------------------------ episodes
    def reset(self, seeds: Sequence[int | None]) -> np.ndarray:
        """Start an episode in every copy; return the learners' observations (B, n_mg, F).

        ``seeds[b]`` plays the role of ``MarketEnv.reset(seed=...)``: an int re-seeds copy
        b's seed stream, None draws the next episode from it (a fresh entropy seed if the
        copy was never seeded).
        """
        if len(seeds) != self.n_copies:
            raise ValueError(f"reset needs {self.n_copies} seeds, got {len(seeds)}")
        t0 = time.perf_counter()
        streams = self._episode_streams(seeds)
        cfg, nm, na = self.cfg, self.cfg.n_microgrids, self.cfg.n_aggregators
        n, horizon, big_b = cfg.n_participants, cfg.horizon, self.n_copies
        if _jit.ENABLED and normals.AVAILABLE:  # the draws from the seed words: no generators
            p = draw_profiles_seeded(cfg, streams.words("weather"), streams.words("load"))
        else:
            p = draw_profiles_batch(cfg, streams.streams("weather"), streams.streams("load"))
        self.profiles = p
        users = slice(nm + na, None)
        # (B, H, P): users' energy to buy, and realised minus forecast net production.
        self._need = np.zeros((big_b, horizon, n))
        self._need[:, :, users] = p.user_load_forecast
        self._error = np.zeros((big_b, horizon, n))
        self._error[:, :, :nm] = (p.pv_real + p.wind_real - p.load_real) - (
            p.pv_forecast + p.wind_forecast - p.load_forecast
        )
        self._error[:, :, users] = p.user_load_forecast - p.user_load_real
        # The chain's streams serve this episode's chain only: one it does not draw from
        # (ideal: neither; no withholding or malicious nodes: the adversary's) is not built.
        chain = self.chain
        adversary = streams.streams("adversary") if chain.needs_adversary_streams else None
        if chain.takes_seeds:  # the kernels compute the network draws from the seed words
            chain.reset(None, adversary, network_seeds=streams.network_seeds())
        else:
            network = streams.streams("network") if chain.needs_network_streams else None
            chain.reset(network, adversary)
        self._streams = streams
        self.t = 0
        self.physics.reset()
        self.last_price = np.full(big_b, 0.5 * (cfg.market.price_floor + cfg.market.price_cap))
        self.sold_share = np.zeros((big_b, nm))
        self.served_share = np.zeros((big_b, nm + cfg.n_users))
        self.delta = np.ones((big_b, na))
        self.commit = np.ones((big_b, n))
        self.online_share = np.ones(big_b)
        self._plan()
        self.stage_time["reset"] += time.perf_counter() - t0
        return self.mg_observations()

    @property
    def policy_rngs(self) -> list[np.random.Generator]:
        """Every copy's "policy" stream of this episode, for an opponent that draws.

        None of the batched opponents does, so the generators are built on first access.
        """
        return self._streams.streams("policy")

    def _episode_streams(self, seeds: Sequence[int | None]) -> EpisodeBatch:
        """Re-seed the copies given a seed, then draw every copy's episode streams."""
        given = [(b, s) for b, s in enumerate(seeds) if s is not None]
        for (b, _), rng in zip(given, seed_streams([s for _, s in given]), strict=True):
            self._seed_rngs[b] = rng
        seed_rngs = []
        for b, old in enumerate(self._seed_rngs):
            # Never seeded: fresh OS entropy, as MarketEnv.reset() (rare, so not batched).
            new = seeding.np_random(None)[0] if old is None else old
            self._seed_rngs[b] = new
            seed_rngs.append(new)
        return EpisodeBatch(seed_rngs)

    def _plan(self) -> None:
        """This period's forecast and rule-based dispatch, every copy."""
        t0 = time.perf_counter()
        p, t = self.profiles, self.t
        s = self.single
        h = int(s.hours[t]) % 24
        self.grid_buy, self.feed_in = float(s.tou[h]), float(s.feed[h])
        forecast = Forecast(p.pv_forecast[:, t], p.wind_forecast[:, t], p.load_forecast[:, t])
        self.dispatch = self.physics.plan(t, forecast, self.grid_buy, None)
        self.stage_time["physics"] += time.perf_counter() - t0

    # ------------------------------------------------------------------ step
    def public_info(self) -> BatchedPublicInfo:
        """This period's public information of every copy (what baselines may read)."""
        d, t, s = self.dispatch, min(self.t, self.cfg.horizon - 1), self.single
        return BatchedPublicInfo(
            self.cfg.market,
            self.grid_buy,
            self.feed_in,
            self.last_price,
            d.surplus,
            d.gen_headroom,
            d.deficit,
            self.profiles.user_load_forecast[:, t],
            self.profiles.load_forecast[:, t],
            s.fleet,
            s.buyer_agg,
        )

    def step(self, mg_actions: np.ndarray) -> BatchedStep:
        """Advance every copy one period with the learners' actions (B, n_mg, A) in [-1, 1].

        Non-finite actions raise ValueError naming the copy and agent, before any state
        changes; finite out-of-range ones are clipped (as in the single env).
        """
        cfg, p, t, s = self.cfg, self.profiles, self.t, self.single
        if t >= cfg.horizon:
            raise RuntimeError("step() after the horizon; call reset() first")
        nm, big_b = cfg.n_microgrids, self.n_copies
        acts = check_actions(mg_actions, (big_b, nm, self.action_dim))
        t0 = time.perf_counter()
        info = self.public_info()
        agg = self.opponent.act_role("agg", info)
        user = self.opponent.act_role("user", info)
        d = self.dispatch
        out = clear_uniform_batch(
            cfg.market,
            acts,
            agg,
            user,
            d.surplus + d.gen_headroom,
            d.deficit,
            p.user_load_forecast[:, t],
            s.buyer_agg,
            s.buyer_global,
            self.grid_buy,
        )
        tr = out.trades
        t1 = time.perf_counter()
        res = self.chain.process(t, tr.seller, tr.buyer, tr.kwh, tr.price, tr.live)
        t2 = time.perf_counter()
        if _jit.ENABLED:  # settlement and bookkeeping copy by copy, in one kernel call
            rows = np.empty((big_b, 11, cfg.n_participants))
            settle_copies(
                (tr.seller, tr.buyer, tr.agg),
                (tr.kwh, tr.price, tr.delta),
                tr.live,
                res.committed,
                (d.surplus, d.deficit, self._need[:, t], self._error[:, t]),
                (self.grid_buy, self.feed_in),
                out.offered,
                s.buyer_global,
                COMMIT_EMA,
                rows,
                (self.sold_share, self.served_share, self.commit),
            )
            sold, cash, share = rows[:, 3], rows[:, 0], rows[:, 10, 0]
            self.last_price = np.where(out.cleared, out.price, self.last_price)
        else:
            surplus_p = np.zeros((big_b, cfg.n_participants))
            surplus_p[:, :nm] = d.surplus
            deficit_p = self._need[:, t].copy()
            deficit_p[:, :nm] = d.deficit
            st = settle_batch(
                tr, res.committed, surplus_p, deficit_p, self._error[:, t], self.grid_buy,
                self.feed_in,
            )  # fmt: skip
            self._book(out.price, out.cleared, out.offered, st, deficit_p)
            sold, cash = st.sold, st.cash
            n_live = np.count_nonzero(tr.live, axis=1)
            n_ok = np.count_nonzero(res.committed, axis=1)
            share = np.divide(n_ok, n_live, out=np.ones(big_b), where=n_live > 0)
        phys = self.physics.realise(sold[:, :nm], d.surplus)
        profit = cash.copy()
        profit[:, :nm] -= phys.fuel_cost + phys.penalty
        self.online_share = res.online_share.astype(np.float64)
        self.delta = out.delta
        t3 = time.perf_counter()
        st_time = self.stage_time
        st_time["market"] += t1 - t0
        st_time["chain"] += t2 - t1
        st_time["settlement"] += t3 - t2
        self.t += 1
        if self.t < cfg.horizon:
            self._plan()  # times itself as physics
        t4 = time.perf_counter()
        obs = self.mg_observations()
        st_time["observation"] += time.perf_counter() - t4
        return BatchedStep(obs, profit[:, :nm], out.price, share, self.t >= cfg.horizon)

    def _book(
        self,
        price: np.ndarray,
        cleared: np.ndarray,
        offered: np.ndarray,
        st: BatchedSettlement,
        deficit_p: np.ndarray,
    ) -> None:
        """The bookkeeping the observations need (as ``MarketCore._book``), every copy."""
        nm, n = self.cfg.n_microgrids, self.cfg.n_participants
        s = self.single
        self.last_price = np.where(cleared, price, self.last_price)
        # Without trades the sums below are 0, so the shares are 0 and the EMA is unchanged,
        # as MarketCore._book's special case gives.
        sold, bought = st.sold, st.bought
        self.sold_share = np.divide(
            sold[:, :nm], offered, out=np.zeros_like(offered), where=offered > 0
        )
        need = deficit_p[:, s.buyer_global]
        self.served_share = np.divide(
            bought[:, s.buyer_global], need, out=np.zeros(need.shape), where=need > 0
        )
        mine = sold + bought
        mine_ok = st.sold_committed + st.bought_committed
        ratio = np.divide(mine_ok, mine, out=np.ones((self.n_copies, n)), where=mine > 0)
        ema = (1 - COMMIT_EMA) * self.commit + COMMIT_EMA * ratio
        self.commit = np.where(mine > 0, ema, self.commit)

    # ------------------------------------------------------------------ views
    def mg_observations(self) -> np.ndarray:
        """The microgrids' observations (B, n_mg, F), float32."""
        return self.role_observations("mg")

    def role_observations(self, role: str) -> np.ndarray:
        """Observations of ``role`` ("mg", "agg" or "user"), (B, n_role, F), float32."""
        t = min(self.t, self.cfg.horizon - 1)
        p, d, s = self.profiles, self.dispatch, self.scales
        c = batched_common(s, self.t, self.last_price, self.online_share)
        if role == "mg":
            forecasts = (p.pv_forecast[:, t], p.wind_forecast[:, t], p.load_forecast[:, t])
            return mg_observations(
                c, s, forecasts, d, self.physics.soc, self.sold_share, self.commit
            )
        user_need = p.user_load_forecast[:, t]
        if role == "agg":
            return agg_observations(c, s, d, user_need, self.served_share, self.delta, self.commit)
        if role == "user":
            return user_observations(c, s, user_need, self.served_share, self.commit)
        raise ValueError(f"role={role!r} is not one of 'mg', 'agg', 'user'")
