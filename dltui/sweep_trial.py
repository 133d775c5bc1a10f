"""One trial of a sweep, as an ordinary run: Optuna's trial gives the settings, the engine
trains them in the sweep directory, and each epoch's validation metric goes back to Optuna
(whose pruner may end the run early). Also the extra worker processes of --parallel."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltui.errors import DltuiError
from dltui.sweep_board import TRIAL_FILE

if TYPE_CHECKING:
    from dltui.sweep import Sweep

WORKER_STORAGE = "DLTUI_SWEEP_STORAGE"  # set for the processes of --parallel only


class TrialFailed(Exception):
    """A trial failed (recorded); the sweep goes on."""


class Interrupted(Exception):
    """Ctrl+C: the trial is stopped and queued again; the sweep ends."""


class Surplus(Exception):
    """Other workers filled the sweep while this one asked for a trial."""


class Objective:
    """One trial: its settings from Optuna, an ordinary run in the sweep directory, each
    epoch's validation metric reported back (and the median pruner asked)."""

    def __init__(self, sweep: Sweep, threads: int | None, should_stop: Callable[[], bool], on_event) -> None:
        self.sweep, self.threads, self.should_stop, self.on_event = sweep, threads, should_stop, on_event

    def __call__(self, trial: Any) -> float:
        import optuna

        from dltui.engine import EpochEnded, RunFailed, RunFinished, train
        from dltui.resolve import make_config

        sweep, spec = self.sweep, self.sweep.spec
        if self.should_stop():
            self._end(trial, "stopped", "stopped before it began")
            sweep.requeue(trial)
            raise Interrupted
        if sweep._surplus(trial.number):
            trial.set_user_attr("status", "surplus")
            raise Surplus
        params = spec.space.suggest(trial)
        run_dir = sweep.dir / f"trial-{trial.number:03d}-{spec.space.label(params)}"
        for key, value in {"status": "running", "host": sweep.host, "pid": os.getpid(), "run_dir": str(run_dir),
                           "settings": params}.items():  # fmt: skip
            trial.set_user_attr(key, value)
        try:
            cfg = make_config(**{**spec.fixed, **params, "out": str(run_dir)})
        except DltuiError as exc:  # a model that does not fit the data, momentum with adam, …
            self._end(trial, "failed", str(exc), exit_code=exc.exit_code)
            raise TrialFailed(str(exc)) from None
        trial.set_user_attr("epochs", cfg.epochs)
        pruned: list[int] = []

        def callback(event: Any) -> None:
            if isinstance(event, EpochEnded):
                value = getattr(event, spec.metric)
                if value is not None and math.isfinite(value):
                    trial.report(value, event.epoch)
                    if spec.prune and event.epoch < event.epochs and not pruned and trial.should_prune():
                        pruned.append(event.epoch)  # the run stops at its next check
            self.on_event(trial.number, event)

        try:
            result = train(cfg, callback, lambda: bool(pruned) or self.should_stop(), threads=self.threads)
        except Exception as exc:  # a bug, or a user's model failing in a way the engine does not name
            self._end(trial, "failed", f"internal error: {type(exc).__name__}: {exc}", run_dir=run_dir)
            raise TrialFailed(str(exc)) from None
        s = result.summary
        if s is not None:
            trial.set_user_attr("epochs_done", s.epochs_done)
            trial.set_user_attr("seconds", round(s.wall_s, 3))
            for key in ("best_epoch", "best_value", "best_test_acc", "best_test_loss"):
                trial.set_user_attr(key.replace("best_test", "test"), getattr(s, key))
        if isinstance(result, RunFinished):
            if s.best_value is None:
                self._end(trial, "failed", f"no {spec.metric} was measured", run_dir=run_dir)
                raise TrialFailed(spec.metric)
            self._end(trial, "finished", "", run_dir=run_dir, value=s.best_value)
            return s.best_value
        if isinstance(result, RunFailed):
            self._end(trial, "failed", result.message, run_dir=run_dir, exit_code=result.exit_code)
            raise TrialFailed(result.message)
        if pruned:
            why = f"pruned after epoch {pruned[0]}: {spec.metric} below the median of earlier trials"
            self._end(trial, "pruned", why, run_dir=run_dir)
            raise optuna.TrialPruned(why)
        self._end(trial, "stopped", f"stopped after {s.epochs_done} epochs (Ctrl+C)", run_dir=run_dir)
        sweep.requeue(trial)
        raise Interrupted

    def _end(self, trial: Any, status: str, reason: str, *, run_dir: Path | None = None, value: float | None = None,
             exit_code: int | None = None) -> None:  # fmt: skip
        """Record the outcome in the study and, beside the run's own files, in trial.json."""
        from dltui.engine.rundir import write_json

        trial.set_user_attr("status", status)
        if reason:
            trial.set_user_attr("reason", reason)
        if exit_code is not None:
            trial.set_user_attr("exit_code", exit_code)
        if run_dir is not None and run_dir.is_dir():
            spec = self.sweep.spec
            info = {"sweep": spec.name, "trial": trial.number, "status": status, "reason": reason,
                    "metric": spec.metric, "value": value, "params": trial.user_attrs.get("settings")}  # fmt: skip
            with contextlib.suppress(OSError):
                write_json(run_dir / TRIAL_FILE, info)


# --- processes: --parallel K ---


def worker_threads(parallel: int, given: int | None) -> int | None:
    """Torch threads per trial: what was asked, else an equal share of this process's cores
    (at least 1); None for one worker (the engine's default: all cores but one)."""
    from dltui.config import usable_cores

    if given:
        return given
    return max(1, usable_cores() // parallel) if parallel > 1 else None


def spawn_workers(sweep: Sweep, count: int, args: list[str], seeds: list[int | None]) -> list[Any]:
    """``count`` more workers: `dltui sweep --join DIR` processes in this process group (so
    the terminal's Ctrl+C reaches them too), each writing to worker-K.log."""
    import subprocess
    import sys

    procs = []
    # the storage URL with its password (sweep.json holds none) goes by the environment, not argv
    env = {**os.environ, WORKER_STORAGE: sweep.url}
    for k in range(1, count + 1):
        cmd = [sys.executable, "-m", "dltui", "sweep", "--join", str(sweep.dir), "--worker", *args]
        if seeds[k - 1] is not None:
            cmd += ["--sampler-seed", str(seeds[k - 1])]
        log = open(sweep.dir / f"worker-{k}.log", "ab")  # noqa: SIM115 - the child holds it
        try:
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env))
        finally:
            log.close()
    return procs
