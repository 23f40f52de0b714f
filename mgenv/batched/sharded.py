"""A batched core split over processes: B copies as shards stepped at the same time.

:class:`ShardedCore` has :class:`~mgenv.batched.core.BatchedCore`'s episode interface
(``reset``, ``step``, ``n_copies``, ``action_dim``, ``stage_time``) and returns the same
arrays, bit for bit: copies are independent (each has its own seed stream and episode), so
splitting the B copies into contiguous shards changes nothing but who computes them. Shard 0
runs in the calling process; each other shard is a :class:`BatchedCore` in a worker process,
sent its actions through a socket pair. The calling process steps its own shard while the
workers step theirs.

Workers are fresh interpreters (``python -m mgenv.batched.sharded FD``) talking through a
:class:`multiprocessing.connection.Connection` on an inherited socket: not forked (forking a
process whose torch or numba threads hold locks can deadlock the child), and not
``multiprocessing``'s "spawn", which re-imports the caller's main script in the worker (a
script without an ``if __name__ == "__main__"`` guard would start workers recursively).
POSIX only (the socket is passed as an inherited file descriptor).

Why processes and not threads: the kernels release the GIL, but about half of a batched
step is Python and numpy glue between them, and two threads of glue serialise on the GIL
(measured: no gain at B = 256 on 2 cores). Processes cost a pipe round trip per step
(~0.1 ms for B = 256, against ~1-2 ms of work per shard).

>>> import mgenv
>>> from mgenv.batched.sharded import ShardedCore
>>> with ShardedCore(mgenv.make_config("default"), n_copies=4, processes=2) as core:
...     obs = core.reset([0, 1, 2, 3])
...     out = core.step(np.zeros((4, 4, core.action_dim)))
>>> obs.shape, out.reward.shape
((4, 4, 16), (4, 4))
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import weakref
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

import mgenv
from mgenv import _jit
from mgenv.batched.core import BatchedCore, BatchedStep, check_actions
from mgenv.config import EnvConfig
from mgenv.observe import BOUNDS


def _serve(conn: Connection, cfg: EnvConfig, n_copies: int, jit: bool) -> None:
    """A worker: a BatchedCore of ``n_copies`` copies answering the parent's requests.

    Requests are ``(command, argument)`` with command "reset", "step", "stage_time", "zero"
    (the stage clocks) or "close"; each answer is ``(True, result)`` or ``(False, exception)``.
    Arrays travel as raw bytes after the message (about a third of pickling's cost): a
    "step" request is followed by the actions (float64, (n_copies, n_mg, A)); a reset's
    answer by the observations, a step's (whose result is ``truncated``) by the
    observations and then :func:`_pack` of the step's figures.
    """
    _jit.ENABLED = jit  # the parent's path (tests switch it at run time)
    try:
        core = BatchedCore(cfg, n_copies)
    except Exception as exc:  # reported to the parent, which raises it
        conn.send((False, exc))
        return
    conn.send((True, core.action_dim))
    acts = np.empty((n_copies, cfg.n_microgrids, core.action_dim))
    while True:
        try:
            command, arg = conn.recv()
            if command == "step":
                conn.recv_bytes_into(_bytes(acts))
        except EOFError:  # the parent is gone
            return
        if command == "close":
            conn.close()
            return
        arrays: tuple[np.ndarray, ...] = ()
        try:
            if command == "reset":
                result: Any = None
                arrays = (core.reset(arg),)
            elif command == "step":
                out = core.step(acts)
                result, arrays = out.truncated, (out.obs, _pack(out))
            elif command == "zero":
                core.reset_stage_time()
                result = None
            else:
                result = dict(core.stage_time)
        except Exception as exc:
            conn.send((False, exc))
        else:
            conn.send((True, result))
            for a in arrays:
                conn.send_bytes(_bytes(a))


def _bytes(a: np.ndarray) -> memoryview:
    """``a``'s memory as flat bytes (a C-contiguous copy first if it is not).

    A connection sizes a buffer by ``len`` x item size, which is wrong for an array of more
    than one dimension; a flat byte view is what its ``*_bytes`` methods expect. Arrays
    received into are this module's own, C-contiguous (so no copy is taken of them).
    """
    return np.ascontiguousarray(a).data.cast("B")


def _pack(out: BatchedStep) -> np.ndarray:
    """A step's reward (B, n_mg), price (B,) and committed share (B,) as one (B, n_mg + 2)."""
    return np.column_stack((out.reward, out.price, out.committed_share))


def _start_worker(cfg: EnvConfig, n_copies: int) -> tuple[subprocess.Popen[bytes], Connection]:
    """A worker interpreter serving a shard of ``n_copies`` copies, and its connection.

    The worker imports the same ``mgenv`` as this process (its directory first on
    ``PYTHONPATH``) and follows this process's kernels-or-numpy choice.
    """
    mine, theirs = socket.socketpair()
    env = dict(os.environ)
    root = str(Path(mgenv.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    fd = theirs.fileno()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mgenv.batched.sharded", str(fd)], pass_fds=(fd,), env=env
    )
    theirs.close()
    conn = Connection(mine.detach())
    conn.send((cfg, n_copies, _jit.ENABLED))
    return proc, conn


def _shutdown(workers: list[tuple[subprocess.Popen[bytes], Connection]]) -> None:
    """Ask every worker to stop, then make sure it has (at close or garbage collection)."""
    for _, conn in workers:
        try:
            conn.send(("close", None))
        except OSError:
            pass  # already gone
    for proc, conn in workers:
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        conn.close()
    workers.clear()


class ShardedCore:
    """B copies of a scenario in ``processes`` shards, stepped concurrently.

    Args:
        cfg: The scenario configuration (as :class:`BatchedCore`).
        n_copies: B, >= 1.
        processes: Number of shards, 1 <= processes <= B: the calling process runs one,
            ``processes - 1`` workers the others. Copies split as evenly as possible,
            contiguously (shard sizes differ by at most one).

    Call :meth:`close` (or use ``with``) to stop the workers; they also stop when the
    object is garbage collected or the program exits.
    """

    def __init__(self, cfg: EnvConfig, n_copies: int, processes: int = 2) -> None:
        if isinstance(n_copies, bool) or not isinstance(n_copies, int) or n_copies < 1:
            raise ValueError(f"n_copies={n_copies!r} must be an integer >= 1")
        if (
            isinstance(processes, bool)
            or not isinstance(processes, int)
            or not 1 <= processes <= n_copies
        ):
            raise ValueError(f"processes={processes!r} must be an integer in [1, {n_copies}]")
        self.cfg = cfg
        self.n_copies = n_copies
        sizes = [n_copies // processes + (k < n_copies % processes) for k in range(processes)]
        #: Copy b lives in the shard whose range [edges[k], edges[k + 1]) holds it.
        self.edges = np.cumsum([0, *sizes]).tolist()
        self.local = BatchedCore(cfg, sizes[0])  # validates cfg before any worker starts
        self.action_dim = self.local.action_dim
        # (n_mg, F): the microgrids' observation rows, F as the observation bounds say
        self._obs_shape = (cfg.n_microgrids, BOUNDS["mg"][0].shape[0])
        self._workers: list[tuple[subprocess.Popen[bytes], Connection]] = []
        self._close = weakref.finalize(self, _shutdown, self._workers)
        try:
            for size in sizes[1:]:
                self._workers.append(_start_worker(cfg, size))
            for _, conn in self._workers:
                self._answer(conn)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def _answer(conn: Connection) -> Any:
        """A worker's answer; its exception is raised here."""
        try:
            ok, value = conn.recv()
        except EOFError:
            raise RuntimeError("a shard worker exited (its error is on stderr)") from None
        if not ok:
            raise value
        return value

    def _gather(self, local: Any, outs: Sequence[np.ndarray]) -> list[Any]:
        """The workers' answers after the local shard's ``local()``, arrays into ``outs``.

        Worker k's arrays are received into ``out[edges[k + 1]:edges[k + 2]]`` of each
        ``out`` in ``outs``; returns ``[local(), worker results...]``. Every worker is
        answered before an exception is raised, so the connections stay in step.
        """
        results: list[Any] = []
        error: BaseException | None = None
        try:
            results.append(local())
        except Exception as exc:
            error = exc
        e = self.edges
        for k, (_, conn) in enumerate(self._workers, start=1):
            try:
                results.append(self._answer(conn))
                for out in outs:
                    conn.recv_bytes_into(_bytes(out[e[k] : e[k + 1]]))
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error
        return results

    # ------------------------------------------------------------------ episodes
    def reset(self, seeds: Sequence[int | None]) -> np.ndarray:
        """:meth:`BatchedCore.reset` of every copy: observations (B, n_mg, F), float32."""
        if len(seeds) != self.n_copies:
            raise ValueError(f"reset needs {self.n_copies} seeds, got {len(seeds)}")
        e = self.edges
        for k, (_, conn) in enumerate(self._workers, start=1):
            conn.send(("reset", list(seeds[e[k] : e[k + 1]])))
        obs = np.empty((self.n_copies, *self._obs_shape), np.float32)
        [local] = self._gather(lambda: self.local.reset(seeds[: e[1]]), (obs,))[:1]
        obs[: e[1]] = local
        return obs

    def step(self, mg_actions: np.ndarray) -> BatchedStep:
        """:meth:`BatchedCore.step` of every copy, actions (B, n_mg, A) in [-1, 1].

        The actions are checked here, before any shard steps (so a bad action anywhere
        leaves every copy as it was, as in :class:`BatchedCore`). Any other error raised in
        a shard is raised here after every shard has answered; the shards that did step
        have moved on, so :meth:`reset` before stepping again.
        """
        nm, e = self.cfg.n_microgrids, self.edges
        acts = check_actions(mg_actions, (self.n_copies, nm, self.action_dim))
        for k, (_, conn) in enumerate(self._workers, start=1):
            conn.send(("step", None))
            conn.send_bytes(_bytes(acts[e[k] : e[k + 1]]))
        obs = np.empty((self.n_copies, *self._obs_shape), np.float32)
        figures = np.empty((self.n_copies, nm + 2))
        [local, *_] = self._gather(lambda: self.local.step(acts[: e[1]]), (obs, figures))
        obs[: e[1]] = local.obs
        figures[: e[1]] = _pack(local)
        return BatchedStep(
            obs,
            np.ascontiguousarray(figures[:, :nm]),
            figures[:, nm].copy(),
            figures[:, nm + 1].copy(),
            local.truncated,
        )

    @property
    def stage_time(self) -> dict[str, float]:
        """Seconds per stage summed over the shards (busy time of all processes)."""
        total = dict(self.local.stage_time)
        for _, conn in self._workers:
            conn.send(("stage_time", None))
        for _, conn in self._workers:
            for k, v in self._answer(conn).items():
                total[k] += v
        return total

    def reset_stage_time(self) -> None:
        """Zero every shard's stage clocks."""
        self.local.reset_stage_time()
        for _, conn in self._workers:
            conn.send(("zero", None))
        for _, conn in self._workers:
            self._answer(conn)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Stop the workers (idempotent)."""
        self._close()

    def __enter__(self) -> ShardedCore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


if __name__ == "__main__":  # a worker: python -m mgenv.batched.sharded FD
    _conn = Connection(int(sys.argv[1]))
    _serve(_conn, *_conn.recv())
