"""Learning curves read from the TensorBoard logs of training runs.

``mgenv train`` writes TensorBoard event files to ``{run_dir}/tb/`` (one folder per
``learn`` call, e.g. ``PPO_1``). :func:`read_curves` reads the scalars worth plotting: SB3's
``rollout/ep_rew_mean`` (mean episode reward of the learners over the last rollouts) and the
``eval/*`` scalars of our evaluation callback (profit of the model and the baselines on the
held-out seeds). Runs without event files give an empty result, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["CURVE_TAGS", "Curve", "curves_for_policies", "plot_curves", "read_curves", "run_dir_of"]

CURVE_TAGS = ("rollout/ep_rew_mean", "eval/")  # exact tags, or prefixes ending in "/"

Curve = tuple[np.ndarray, np.ndarray]  # (steps, values)


def run_dir_of(spec: str | Path) -> Path | None:
    """The run directory of a model spec (run dir, its ``model.zip`` or a checkpoint), or None.

    Args:
        spec: A run directory, a model ``.zip`` in it or in its ``checkpoints/`` folder.
    """
    path = Path(spec)
    if path.is_dir():
        return path
    if path.suffix != ".zip":
        return None
    parent = path.parent
    return parent.parent if parent.name == "checkpoints" else parent


def _wanted(tag: str) -> bool:
    return any(tag == t or (t.endswith("/") and tag.startswith(t)) for t in CURVE_TAGS)


def read_curves(run_dir: str | Path) -> dict[str, Curve]:
    """Read the learning-curve scalars of one run.

    Args:
        run_dir: A training run directory (its ``tb/`` folder holds the event files).

    Returns:
        ``{tag: (steps, values)}`` sorted by step, the last value logged at each step (the
        final evaluation can log twice at the last step); tags of several event files (e.g.
        per-agent models or resumed runs) are prefixed by their folder name. Empty when the
        run has no TensorBoard logs.
    """
    from tensorboard.backend.event_processing.event_accumulator import (  # type: ignore[import-untyped]
        EventAccumulator,
    )

    curves: dict[str, Curve] = {}
    folders = sorted({p.parent for p in Path(run_dir).rglob("events.out.tfevents*")})
    for folder in folders:
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in filter(_wanted, acc.Tags().get("scalars", [])):
            events = acc.Scalars(tag)
            if not events:
                continue
            steps = np.array([e.step for e in events], dtype=float)
            values = np.array([e.value for e in events], dtype=float)
            order = np.argsort(steps, kind="stable")
            steps, values = steps[order], values[order]
            last = np.append(steps[1:] != steps[:-1], True)  # the last value logged per step
            key = tag if len(folders) == 1 else f"{folder.name}:{tag}"
            curves[key] = (steps[last], values[last])
    return curves


def curves_for_policies(policies: Mapping[str, object]) -> dict[str, dict[str, Curve]]:
    """Learning curves of the policies given as model paths (others are skipped).

    Args:
        policies: ``{label: spec}``; string specs that name a run directory or a model
            ``.zip`` are read.

    Returns:
        ``{label: {tag: (steps, values)}}`` for the trained models that have TensorBoard logs.
    """
    out: dict[str, dict[str, Curve]] = {}
    for label, spec in policies.items():
        run_dir = run_dir_of(spec) if isinstance(spec, (str, Path)) else None
        if run_dir is None or not run_dir.is_dir():
            continue
        curves = read_curves(run_dir)
        if curves:
            out[label] = curves
    return out


def plot_curves(curves: Mapping[str, Mapping[str, Curve]], path: Path, title: str = "") -> Path:
    """Plot the learning curves: one panel per tag, one line per trained policy.

    Args:
        curves: ``{label: {tag: (steps, values)}}`` as :func:`curves_for_policies` returns.
        path: PNG file to write.
        title: Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tags = sorted({tag for per_run in curves.values() for tag in per_run})
    cols = min(len(tags), 3) or 1
    rows = max(-(-len(tags) // cols), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.5 * rows), squeeze=False)
    for ax, tag in zip(axes.flat, tags, strict=False):
        for label, per_run in curves.items():
            if tag in per_run:
                steps, values = per_run[tag]
                ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=label)
        ax.set_title(tag, fontsize="small")
        ax.set_xlabel("timesteps")
        ax.legend(fontsize="x-small")
    for ax in list(axes.flat)[len(tags) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
