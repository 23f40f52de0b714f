"""mgenv_market_v1: a regional market of microgrids, aggregators and large users.

Environment card
================
* **Agents**: ``mg_i`` (microgrids), ``agg_j`` (aggregators), ``user_k`` (large users). The
  roles in ``EnvConfig.learning_roles`` are the PettingZoo agents; the other roles are played
  inside the env by the baseline named ``EnvConfig.opponent_policy``.
* **Step** = one market period (default 1 h), five stages (DESIGN.md): physics (forecast and
  rule-based dispatch of the period, prepared at the end of the previous step), market
  (actions -> offers and bids -> uniform-price clearing -> bilateral trades), chain (each trade
  a transaction signed by both parties; the consensus protocol decides which commit), settlement
  (committed trades pay; the rest falls back to the grid; forecast errors compensated), physics
  after (storage moves to its realised state of charge).
* **Actions**: ``Box(-1, 1)`` float32 per agent; layouts in :mod:`mgenv.market.orders`. Finite
  values outside [-1, 1] are clipped; NaN or infinite values raise ``ValueError``.
* **Observations**: ``Box`` float32 with finite bounds; names in :mod:`mgenv.observe`
  (``env.observation_names(agent)``). ``state()`` concatenates every participant's observation.
* **Rewards**: each agent's profit in the period, yuan (money received - money paid - fuel).
* **Episode end**: truncation after ``horizon`` periods (24 by default); never termination.
* **infos[agent]**: ``profit``, ``revenue``, ``cost`` (yuan), ``traded_kwh``, ``grid_kwh``,
  ``commit_ratio`` (this agent's traded energy that committed), ``clearing_price`` and
  ``cleared`` (whether anything traded; the price is 0.0 when not),
  ``latency_ms`` (simulated consensus latency), ``online_share`` (validators online),
  ``rejected`` (the period's rejected transactions by reason, whole market) and the chain
  protocol's own figures as ``chain_<name>``.

Version history:

* v1 (this): ``default`` settles on the SBET chain (seed 003) instead of PBFT;
  ``crosschain_aggregators`` on the cross-chain VNS protocol with Nash-bidding opponents
  (seed 000); ``consortium_p2p`` on the peer-to-peer market with a Stackelberg price setter
  (seed 002); ``sbet_cooperative`` on SBET with a slowed central node.
  ``ccche_thermal_game``: aggregators sell gas (seed 001 eq. 18) and keep batteries
  (eqs. 19, 34) charged from the grid at the valley price (the battery change altered only
  that scenario's trajectories; same env version, as for the gas sales).
* v0: first release (uniform-price market, ideal and PBFT chains, electric microgrids).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, cast

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from mgenv import _jit, streams
from mgenv import episode_draws as ed
from mgenv._ufuncs import stack_rows
from mgenv.chain import Chain, ConsensusResult
from mgenv.chain.sbet import SBETDraws
from mgenv.config import EnvConfig
from mgenv.core import DeferredResult, MarketCore, PeriodResult, built
from mgenv.physics.profiles import normals_per_episode

RENDER_MODES = ("ansi", "rgb_array")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))  # action dtypes the kernel copies


class MarketEnv(ParallelEnv[str, np.ndarray, np.ndarray]):
    """The PettingZoo ParallelEnv; build it with ``mgenv.parallel_env(scenario, **overrides)``."""

    metadata: ClassVar[dict[str, Any]] = {
        "name": "mgenv_market_v1",
        "render_modes": list(RENDER_MODES),
        "is_parallelizable": True,
    }

    def __init__(self, config: EnvConfig, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode={render_mode!r} is not one of {list(RENDER_MODES)}")
        self.config = config
        self.render_mode = render_mode
        self.core = MarketCore(config)
        # The step reads a period's result for the infos only: its arrays become a
        # PeriodResult when the history is read (mgenv.core.DeferredResult).
        self.core.defer_results = True
        self.all_agents: list[str] = self.core.names
        self.possible_agents = [
            a for a in self.all_agents if self.role_of(a) in config.learning_roles
        ]
        self.agents: list[str] = []
        # Each learning role's agents in row order (every member of a learning role learns),
        # the roles in the agents' order (mg, agg, user), so that the learners' rows follow
        # each other as in possible_agents.
        self._learners = {
            r: [f"{r}_{i}" for i in range(self.core.role_index[r].size)]
            for r in ("mg", "agg", "user")
            if r in config.learning_roles
        }
        # The roles (and shapes) whose action matrices _check_actions makes: the learners'
        # and those with no member (the opponents' are made by _opponent_actions, or are
        # the price-only cache's read-only matrices).
        self._own_shapes = tuple(
            (r, shape)
            for r, shape in self.core.action_shapes.items()
            if r not in self.core.opponent_roles
        )
        self._obs_spaces = {a: self._space_for(self.role_of(a)) for a in self.all_agents}
        self._act_spaces = {
            a: gymnasium.spaces.Box(
                -1.0, 1.0, (self.core.action_shapes[self.role_of(a)][1],), np.float32
            )
            for a in self.all_agents
        }
        lows, highs = zip(
            *(self.core.obs_bounds(self.role_of(a)) for a in self.all_agents), strict=True
        )
        self.state_space = gymnasium.spaces.Box(
            np.concatenate(lows), np.concatenate(highs), dtype=np.float32
        )
        import baselines  # baselines depend on mgenv: import at first use

        self._opponents = baselines.make(config.opponent_policy)
        # Zero-width observations for opponents that read only public information (built once:
        # an empty array cannot be modified).
        self._no_obs = {
            r: np.zeros((self.core.role_index[r].size, 0), np.float32)
            for r in self.core.opponent_roles
        }
        self._seed_rng: np.random.Generator | None = None
        # The int seed whose stream gave the last episode seed, if that stream was never
        # built (its first draw made by mgenv.episode_draws); built if a second is drawn.
        self._seed_of: int | None = None
        # The episode's policy stream, or its seed sequence until first used (policy_rng).
        self._policy: np.random.Generator | streams.PresetSeedSequence | None = None
        self._history: list[PeriodResult | DeferredResult] = []
        self._n_built = 0  # the history's leading entries that are PeriodResults
        self._last_chain: ConsensusResult | None = None
        # Opponent roles whose actions the policy declares a function of the config and the
        # period's grid price alone (``price_only_roles``): their action matrix is computed
        # once per grid price (a handful of values per day) and copied every period, which
        # skips the policy's per-role Python and the public information it would read.
        price_only = getattr(self._opponents, "price_only_roles", None)
        self._price_only = (
            frozenset(price_only(self)) & frozenset(self.core.opponent_roles)
            if price_only is not None and hasattr(self._opponents, "act_role")
            else frozenset()
        )
        self._price_only_cache: dict[tuple[str, float], np.ndarray] = {}

    # ----------------------------------------------------------------- spaces and names
    def _space_for(self, role: str) -> gymnasium.spaces.Box:
        low, high = self.core.obs_bounds(role)
        return gymnasium.spaces.Box(low, high, dtype=np.float32)

    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        """Observation space of ``agent`` (shared by every agent of its role)."""
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Box:
        """Action space of ``agent``: ``Box(-1, 1)`` float32."""
        return self._act_spaces[agent]

    def role_of(self, agent: str) -> str:
        """Role of an agent name: ``"mg"``, ``"agg"`` or ``"user"``."""
        return agent.rsplit("_", 1)[0]

    def observation_names(self, agent: str) -> list[str]:
        """Names of the observation features of ``agent``, in vector order."""
        return [f[0] for f in self.core.feature_spec(self.role_of(agent))]

    def action_names(self, agent: str) -> list[str]:
        """Names of the action entries of ``agent``, in vector order."""
        return self.core.action_names(self.role_of(agent))

    # ----------------------------------------------------------------- episode
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode. Every random stream is spawned from ``seed``.

        Streams (each its own generator, so extra draws in one never shift another):
        weather, load, network, adversary, keys, policy. ``reset()`` without a seed draws
        the next episode's seed from the stream seeded by the last explicit seed.

        With the kernels on, the streams read only here (weather, load, keys, SBET's
        adversary and the network's child) are never built: :mod:`mgenv.episode_draws`
        computes their draws, numpy's numbers, from their seed words in one call; the
        policy stream is built when first read, the seed stream of an int seed when a
        second episode seed is drawn from it.
        """
        fast = _jit.ENABLED and ed.AVAILABLE
        drawn: ed.EpisodeDraws | None = None
        if seed is not None or (self._seed_rng is None and self._seed_of is None):
            self._seed_rng = self._seed_of = None
            if fast and type(seed) is int and 0 <= seed < 2**128:
                drawn = self._draws(seed, 0)  # the seed stream's first draw made there
                self._seed_of = seed
            else:
                self._seed_rng = streams.seed_stream(seed)  # gymnasium's np_random(seed)
        if drawn is None:
            episode_seed = streams.draw_seed(self._seed_generator())  # rng.integers(2**63)
            if fast:
                drawn = self._draws(None, episode_seed)
        previous = getattr(self.core, "chain", None)  # its buffers are reused
        cfg = self.config
        if drawn is None:
            # default_rng(episode_seed).spawn(6), seeded by compiled code (mgenv.streams); the
            # network stream's first child (SBET's draws) precomputed too.
            streams_ = streams.spawn(episode_seed, 6, (0, 0, 1))
            weather, load, network, adversary, keys, policy = streams_
            self._policy = policy
            chain = Chain(
                cfg.chain, cfg.n_participants, network, adversary, streams.draw_seed(keys),
                cfg.dt_h, previous,
            )  # fmt: skip
            self.core.reset(weather, load, chain)
        else:
            self._policy, chain = self._drawn_streams(drawn, previous)
            self.core.reset(None, None, chain, (drawn.cloud, drawn.weather_z, drawn.load_z))
        self.agents = list(self.possible_agents)
        self._history = []
        self._n_built = 0
        obs = self.core.observations(self.config.learning_roles)
        return self._split(obs), {a: {} for a in self.agents}

    @property
    def policy_rng(self) -> np.random.Generator:
        """The episode's stream for the opponents' and baselines' random choices.

        Raises:
            AttributeError: Before the first :meth:`reset`.
        """
        policy = self._policy
        if isinstance(policy, np.random.Generator):
            return policy
        if policy is None:
            raise AttributeError("no policy_rng before reset()")
        # its seed sequence, kept by reset (mgenv.episode_draws): built on first use
        self._policy = rng = streams.generator(policy)
        return rng

    @policy_rng.setter
    def policy_rng(self, rng: np.random.Generator) -> None:
        self._policy = rng

    def _seed_generator(self) -> np.random.Generator:
        """The stream episode seeds are drawn from (after a first reset).

        Built here if only its int seed was kept (``_seed_of``: its first draw was made by
        :mod:`mgenv.episode_draws`), and moved past that draw.
        """
        if self._seed_rng is None:
            if self._seed_of is None:
                raise RuntimeError("no seed stream before the first reset()")
            self._seed_rng = streams.seed_stream(self._seed_of)
            streams.draw_seed(self._seed_rng)
            self._seed_of = None
        return self._seed_rng

    def _draws(self, seed: int | None, episode_seed: int) -> ed.EpisodeDraws:
        """:func:`mgenv.episode_draws.episode_draws` for this env's sizes."""
        cfg = self.config
        n_weather, n_load = normals_per_episode(cfg)
        return ed.episode_draws(
            seed, episode_seed, cfg.chain.n_nodes, cfg.chain.area_km,
            cfg.profiles.cloudiness_max, n_weather, n_load,
        )  # fmt: skip

    def _drawn_streams(
        self, drawn: ed.EpisodeDraws, previous: Chain | None
    ) -> tuple[streams.PresetSeedSequence, Chain]:
        """The policy stream's seed sequence and the chain, from :meth:`_draws`' draws.

        The network stream is ``streams.spawn``'s generator (its first child's words
        preset), the policy stream its seed sequence (:attr:`policy_rng` builds it); the
        other streams' draws come from ``drawn``: SBET's construction draws (the network
        stream moved past the positions), or for other protocols the adversary stream is
        built as ``streams.spawn`` builds it (their constructors draw from it).
        """
        cfg, ep, words = self.config, drawn.episode_seed, drawn.words
        preset = streams.PresetSeedSequence
        net_seq = preset(ep, (ed.NETWORK,), words[ed.NETWORK], (words[ed.CHILD],))
        network = streams.generator(net_seq)
        policy = preset(ep, (ed.POLICY,), words[ed.POLICY])  # built on first use
        adversary = None
        sbet: SBETDraws | None = None
        if cfg.chain.protocol == "sbet":
            network.bit_generator.advance(drawn.positions.size)  # type: ignore[attr-defined]
            sbet = SBETDraws(drawn.positions, drawn.storage, drawn.perms)
        else:
            adversary = streams.generator(preset(ep, (ed.ADVERSARY,), words[ed.ADVERSARY]))
        chain = Chain(
            cfg.chain, cfg.n_participants, network, adversary, drawn.key_seed, cfg.dt_h,
            previous, sbet,
        )  # fmt: skip
        return policy, chain

    def step(
        self, actions: dict[str, np.ndarray]
    ) -> tuple[
        dict[str, np.ndarray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Advance one market period; see the module docstring for the stages."""
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        mats = self._check_actions(actions)
        self._opponent_actions(mats)
        core = self.core
        result = core.step(mats)
        self._history.append(result)
        done = core.t >= self.config.horizon
        obs = self._split(core.observations(self.config.learning_roles))
        agents = self.agents
        rewards: dict[str, float] = {}
        infos = core.agent_infos(agents, result, rewards)
        truncs = dict.fromkeys(agents, done)
        terms = dict.fromkeys(agents, False)
        if done:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def _split(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Rows of the per-role observation matrices for the live agents."""
        out: dict[str, np.ndarray] = {}
        for role, members in self._learners.items():  # the live agents are all the learners
            rows = obs[role]
            # row views by index: iterating the matrix would end on a formatted IndexError
            for i, a in enumerate(members):
                out[a] = rows[i]
        return out

    def _check_actions(self, actions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate the learners' actions and write them into per-role action matrices.

        Everything is checked before any state changes, so a bad action changes nothing.
        The matrices are fresh (``core.step`` may keep them): the learners' rows are all
        written here (or an error raised), and the other roles made here have no rows (so
        ``np.empty`` leaves nothing unwritten); the opponents' matrices are made and
        written by :meth:`_opponent_actions`.
        """
        mats = {}
        for role, shape in self._own_shapes:  # a loop: no comprehension's frame
            mats[role] = np.empty(shape)
        for role, members in self._learners.items():
            try:
                rows = tuple(map(actions.__getitem__, members))  # no comprehension's frame
            except KeyError:
                missing = [a for a in self.agents if a not in actions]
                raise ValueError(f"actions missing for agents {missing}") from None
            mat = mats[role]
            width = mat.shape[1:]
            usual = _jit.ENABLED
            for r in rows:  # float arrays of the right shape (a loop: cheaper than all())
                if type(r) is not np.ndarray or r.shape != width or r.dtype not in _FLOATS:
                    usual = False
                    break
            if usual:  # the rows copied and checked in one compiled call
                first_bad = stack_rows(rows, mat)
            else:
                self._fill_rows(mat, members, actions)
                finite = np.isfinite(mat).all(axis=1)
                first_bad = -1 if finite.all() else int(np.argmin(finite))
            if first_bad >= 0:
                bad = members[first_bad]
                raise ValueError(
                    f"action of {bad} has non-finite values: {np.asarray(actions[bad]).tolist()}"
                )
        return mats

    def _fill_rows(self, mat: np.ndarray, members: list[str], actions: dict[str, Any]) -> None:
        """Write ``members``' actions row by row (numpy broadcasting), naming a bad shape."""
        try:
            for i, a in enumerate(members):
                mat[i] = actions[a]
        except ValueError:
            for a in members:
                shape = np.shape(actions[a])
                if shape != self._act_spaces[a].shape:
                    raise ValueError(
                        f"action of {a} has shape {shape}; expected {self._act_spaces[a].shape}"
                    ) from None
            raise

    def with_rule_setpoints(self, agent: str, action: np.ndarray) -> np.ndarray:
        """``action`` completed with the rule dispatch's set-points if it has none.

        Baselines act on the market only; with ``dispatch="agent"`` a microgrid's action also
        ends with storage set-points, which this fills in from the rule-based plan.
        """
        act = np.asarray(action, dtype=np.float32)
        width = self._act_spaces[agent].shape[0]
        if act.shape[0] >= width:
            return act
        rule = self.core.physics.rule_setpoints()[self.core.role_rows[agent][1]]
        return np.concatenate((act, rule)).astype(np.float32)

    def _fill(self, mats: dict[str, np.ndarray], role: str, acts: np.ndarray) -> bool:
        """Make a role's action matrix and write its actions (set-points: the rule's).

        Missing trailing set-points follow the rule dispatch. Returns whether ``acts``
        covered the whole matrix (no rule set-points added).
        """
        mat = mats[role] = self.core.empty_actions((role,))[role]
        k = acts.shape[1]
        mat[:, :k] = acts
        if k < mat.shape[1]:  # a policy that gives no set-points (dispatch="agent")
            mat[:, k:] = self.core.physics.rule_setpoints()
            return False
        return True

    def _opponent_actions(self, mats: dict[str, np.ndarray]) -> None:
        """Fill in the actions of the participants that do not learn (opponent baseline)."""
        others = self.core.non_learning
        if not others:
            return
        roles, rows = self.core.opponent_roles, self.core.role_rows
        act_role = getattr(self._opponents, "act_role", None)
        if act_role is not None:  # vectorised baselines: one call per role, no dicts
            cache, grid_buy = self._price_only_cache, self.core.grid_buy
            obs: dict[str, np.ndarray] | None = None
            for role in roles:
                price_only = role in self._price_only
                if price_only:
                    hit = cache.get((role, grid_buy))
                    if hit is not None:  # read-only: core.step only reads its matrices
                        mats[role] = hit
                        continue
                if obs is None:  # built once, for the first role the policy is asked about
                    if getattr(self._opponents, "observes", True):
                        obs = self.core.observations(roles)
                    else:  # the policy reads only public information: skip building them
                        obs = self._no_obs
                whole = self._fill(
                    mats, role, act_role(role, self.core.role_index[role], obs[role], self)
                )
                if price_only and whole:  # rule set-points change every period: not kept
                    if len(cache) >= 256:  # bounded, though the grid prices are few
                        cache.clear()
                    kept = cache[role, grid_buy] = mats[role].copy()
                    kept.flags.writeable = False  # shared by the periods at this price
            return
        obs = self.core.observations(roles)
        acts = self._opponents({a: obs[rows[a][0]][rows[a][1]] for a in others}, self)
        for role in roles:
            members = [a for a in others if rows[a][0] == role]
            self._fill(mats, role, np.stack([np.asarray(acts[a], np.float64) for a in members]))

    # ----------------------------------------------------------------- extras
    @property
    def history(self) -> list[PeriodResult]:
        """Every :class:`~mgenv.core.PeriodResult` of the episode so far (read-only use)."""
        h = self._history
        for i in range(self._n_built, len(h)):  # the periods since the last read
            h[i] = built(h[i])
        self._n_built = len(h)
        return cast(list[PeriodResult], h)

    def state(self) -> np.ndarray:
        """Global state for centralised critics: every participant's observation, concatenated."""
        return self.core.observations_flat()

    def public_info(self) -> Any:
        """Public market information for baselines (costs, bounds, this period's forecasts)."""
        return self.core.public_info()

    def episode_kpis(self) -> dict[str, float]:
        """Episode KPIs so far: profit per role, welfare, commit share, local consumption."""
        return self.core.kpis()

    def render(self) -> Any:
        """``"ansi"``: the per-period table so far; ``"rgb_array"``: an image of it."""
        from mgenv import render

        if self.render_mode == "ansi":
            return render.ansi_table(self.history, self.core)
        if self.render_mode == "rgb_array":
            return render.rgb_image(self.history, self.core)
        gymnasium.logger.warn("render() called without a render_mode; returning None")
        return None

    def close(self) -> None:
        """Nothing to release (the persistent ledger, when configured, closes here)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> MarketEnv:
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            setattr(new, k, copy.deepcopy(v, memo))
        return new
