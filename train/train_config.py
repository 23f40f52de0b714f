"""``TrainConfig``: every argument of one training run, validated.

A run is reproducible from its ``TrainConfig`` (saved as ``train_config`` in the run's
``config.json``; ``mgenv train --config runs/x/config.json`` runs it again) and from the
TOML files in ``train/configs/`` (``mgenv train --config train/configs/default.toml``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.run_config import ALGOS

__all__ = [
    "OPPONENTS",
    "ROLES",
    "SHARING",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
]

ROLES = ("mg", "agg", "user")
SHARING = ("role", "agent")
OPPONENTS = ("baseline", "selfplay")
_INTS = (
    ("total_timesteps", 1),
    ("seed", 0),
    ("n_envs", 1),
    ("n_procs", 1),
    ("snapshot_freq", 1),
    ("rounds", 1),
    ("eval_freq", 0),
    ("checkpoint_freq", 0),
    ("torch_threads", 1),
    ("verbose", 0),
)


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Arguments of one training run.

    Attributes:
        scenario: Scenario name (``mgenv.scenarios.names()``).
        algo: SB3 algorithm: "ppo", "a2c" or "sac".
        total_timesteps: Budget in agent steps, summed over all slots (copies x learners)
            and, with ``sharing="agent"``, over all learners' models.
        seed: Seeds python, numpy and torch once, and copy ``c`` of the env (``seed + c``).
        n_envs: Env copies; each contributes one slot per learner.
        n_procs: Worker processes for the env copies (1: step them in this process).
        role: The learning role ("mg", "agg" or "user"); the env is built with
            ``learning_roles=(role,)``.
        sharing: "role": one policy shared by all learners (parameter sharing); "agent": one
            policy per learner, trained in turn (``rounds`` times each).
        learners: The role's agents that learn (default: all of them; with
            ``opponents="selfplay"`` and ``sharing="role"``: the role's first agent).
        opponents: Who plays the role's agents that are not learners: "baseline" (the env's
            ``opponent_policy``, which also plays the other roles) or "selfplay" (frozen
            snapshots of the learned policies).
        snapshot_freq: Self-play with ``sharing="role"``: agent steps between refreshes of
            the opponents' snapshot.
        rounds: ``sharing="agent"``: times each learner's model is trained in turn; with
            self-play, the others play each learner's snapshot from its latest turn.
        overrides: Env config overrides for ``mgenv.parallel_env``.
        hyperparams: Keyword arguments for the algorithm, over ``default_hyperparams``.
        vec_normalize: Normalise observations and rewards with running statistics (saved).
        eval_freq: Agent steps between evaluations against ``eval_baselines`` (0: never).
        eval_baselines: Baselines the model is compared with during training.
        eval_seeds: Held-out episode seeds of those evaluations.
        out_dir: Parent folder of the run directory.
        run_name: Run directory name; default ``{scenario}__{algo}__{seed}__{time}``.
        progress_bar: Show SB3's progress bar (tqdm + rich).
        tensorboard: Write TensorBoard logs to ``run_dir/tb``.
        checkpoint_freq: Save a checkpoint every this many agent steps (0: never).
        torch_threads: Torch intra-op threads (small MLPs run fastest on one).
        verbose: SB3 verbosity (0: silent, 1: training tables).
        batched: Step the ``n_envs`` copies in one batched core
            (:class:`mgenv.batched.BatchedVecEnv`: same trajectories, many times faster for
            large ``n_envs``); needs role "mg", every microgrid learning with shared
            parameters against a baseline, one process and a configuration the batched core
            runs (otherwise a ValueError names what is not supported). No episode KPIs are
            logged during training with it (the batched view's infos are empty).
    """

    scenario: str = "default"
    algo: str = "ppo"
    total_timesteps: int = 100_000
    seed: int = 0
    n_envs: int = 4
    n_procs: int = 1
    role: str = "mg"
    sharing: str = "role"
    learners: tuple[str, ...] = ()
    opponents: str = "baseline"
    snapshot_freq: int = 20_000
    rounds: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    vec_normalize: bool = True
    eval_freq: int = 0
    eval_baselines: tuple[str, ...] = ("truthful", "fixed_quotes")
    eval_seeds: tuple[int, ...] = (1000, 1001, 1002)
    out_dir: Path = Path("runs")
    run_name: str | None = None
    progress_bar: bool = False
    tensorboard: bool = True
    checkpoint_freq: int = 0
    torch_threads: int = 1
    verbose: int = 0
    batched: bool = False

    def __post_init__(self) -> None:
        for name, valid in (
            ("algo", ALGOS),
            ("role", ROLES),
            ("sharing", SHARING),
            ("opponents", OPPONENTS),
        ):
            if getattr(self, name) not in valid:
                raise ValueError(
                    f"TrainConfig.{name}={getattr(self, name)!r} is unknown; valid: {list(valid)}"
                )
        if not isinstance(self.scenario, str) or not self.scenario:
            raise ValueError(f"TrainConfig.scenario={self.scenario!r} must be a scenario name")
        for name, low in _INTS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"TrainConfig.{name}={value!r} must be an integer >= {low}")
        for name in ("overrides", "hyperparams"):
            value = getattr(self, name)
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise ValueError(f"TrainConfig.{name}={value!r} must map names to values")
            object.__setattr__(self, name, dict(value))
        self._check_sequences()
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if not isinstance(self.batched, bool):
            raise ValueError(f"TrainConfig.batched={self.batched!r} must be true or false")
        if self.batched:
            self._check_batched()

    def _check_batched(self) -> None:
        """``batched=True`` runs only what the batched view exposes (see ``batched``)."""
        wanted = {"role": "mg", "sharing": "role", "opponents": "baseline", "n_procs": 1}
        for name, value in wanted.items():
            if getattr(self, name) != value:
                raise ValueError(
                    f"TrainConfig.batched=True needs {name}={value!r}, got {getattr(self, name)!r}"
                )
        if self.learners:
            raise ValueError(
                "TrainConfig.batched=True trains every microgrid: leave learners empty, got "
                f"{list(self.learners)}"
            )

    def _check_sequences(self) -> None:
        """Turn the list fields into tuples and check their items."""
        import baselines

        for name, kind in (("learners", str), ("eval_baselines", str), ("eval_seeds", int)):
            value = getattr(self, name)
            items = (value,) if isinstance(value, str | int) else tuple(value)
            if not all(isinstance(v, kind) and not isinstance(v, bool) for v in items):
                raise ValueError(f"TrainConfig.{name}={value!r} must be a list of {kind.__name__}")
            object.__setattr__(self, name, items)
        unknown = [b for b in self.eval_baselines if b not in baselines.names()]
        if unknown:
            raise ValueError(
                f"TrainConfig.eval_baselines: unknown {unknown}; valid: {baselines.names()}"
            )
        if any(s < 0 for s in self.eval_seeds) or (self.eval_freq and not self.eval_seeds):
            raise ValueError(f"TrainConfig.eval_seeds={self.eval_seeds} must be seeds >= 0")

    @property
    def env_overrides(self) -> dict[str, Any]:
        """Overrides as passed to the env: the user's plus ``learning_roles=(role,)``."""
        roles = tuple(self.overrides.get("learning_roles", (self.role,)))
        if roles != (self.role,):
            raise ValueError(
                f"overrides learning_roles={roles} conflicts with role={self.role!r}; "
                "training shares one policy over the agents of one role"
            )
        return {**self.overrides, "learning_roles": (self.role,)}

    def resolve_learners(self, role_agents: list[str]) -> tuple[str, ...]:
        """Return the learners among the role's agents (see ``learners``).

        Raises:
            ValueError: For unknown learners (lists the role's agents) or for self-play
                without an agent of the role left to play the opponents.
        """
        if self.learners:
            learners = self.learners
        elif self.opponents == "selfplay" and self.sharing == "role":
            learners = tuple(role_agents[:1])
        else:
            learners = tuple(role_agents)
        unknown = [a for a in learners if a not in role_agents]
        if unknown or len(set(learners)) != len(learners):
            raise ValueError(
                f"TrainConfig.learners={list(learners)}: unknown {unknown} or repeated; "
                f"valid: the agents of role {self.role!r}: {role_agents}"
            )
        if self.opponents == "selfplay" and (
            len(learners) < 2 if self.sharing == "agent" else len(learners) == len(role_agents)
        ):
            raise ValueError(
                f"self-play with sharing={self.sharing!r} needs "
                + ("two learners" if self.sharing == "agent" else "agents besides the learners")
                + f" of role {self.role!r} to play the snapshots; learners={list(learners)}, "
                f"role agents {role_agents}"
            )
        return learners


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Return ``config`` as plain JSON/TOML-friendly values (paths as strings)."""
    values = dataclasses.asdict(config)
    values["out_dir"] = str(values["out_dir"])
    return values


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """Build a ``TrainConfig`` from a mapping, naming unknown keys and listing valid ones."""
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown TrainConfig fields {unknown}; valid: {names}")
    return TrainConfig(**dict(values))
