"""A sweep's records, as files any viewer reads: sweep.json (what is swept and how) and
leaderboard.csv (one row per trial, best first), beside one run directory per trial with
its trial.json. Plain Python: no Optuna, no torch, so the app reads sweeps cheaply.

    <sweep>/sweep.json           format, name, metric, direction, trials, sampler, grid_size,
                                 prune, pruner, seed, fixed settings, space, storage (a
                                 database URL without its password, or "sweep.db"), created,
                                 host, command
    <sweep>/leaderboard.csv      rank, trial, status, <metric>, best_epoch, epochs_done,
                                 epochs, seconds, test_acc, test_loss, <each swept flag>,
                                 host, run_dir, reason; atomically replaced as trials end
    <sweep>/sweep.db             the Optuna study, when the storage is the default SQLite file
    <sweep>/trial-NNN-<label>/   an ordinary run directory, plus trial.json (its outcome)
    <sweep>/worker-K.log         what the extra processes of --parallel printed
"""

from __future__ import annotations

import csv
import io
import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dltui.sweep_space import Space, flag, fmt

FORMAT = 1
SWEEP_FILE = "sweep.json"
LEADERBOARD = "leaderboard.csv"
DATABASE = "sweep.db"
TRIAL_FILE = "trial.json"
DEFAULT_TRIALS = 20
STATUSES = ("finished", "pruned", "running", "failed", "stopped", "crashed")


@dataclass
class SweepSpec:
    """What a sweep compares, as sweep.json and the study's user attribute record it."""

    name: str
    metric: str  # val_acc | val_loss
    trials: int
    fixed: dict[str, Any]  # config flags as given (text), val_fraction and monitor included
    space: Space
    seed: int = 0
    prune: bool = True
    pruner: dict[str, int] = field(default_factory=lambda: pruner_settings(DEFAULT_TRIALS, 10))
    storage: str = DATABASE  # DATABASE (in the sweep directory) or a URL without its password
    created: float = 0.0
    host: str = ""
    command: str = ""

    @property
    def direction(self) -> str:
        return "maximize" if self.metric.endswith("acc") else "minimize"

    @property
    def sampler(self) -> str:
        return "grid" if self.space.is_grid else "tpe"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "kind": "dltui-sweep", "name": self.name, "metric": self.metric,
            "direction": self.direction, "trials": self.trials, "sampler": self.sampler,
            "grid_size": self.space.grid_size, "prune": self.prune, "pruner": self.pruner,
            "seed": self.seed, "fixed": self.fixed, "space": self.space.to_list(), "storage": self.storage,
            "created": self.created, "host": self.host, "command": self.command,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepSpec:
        return cls(
            str(d["name"]), str(d["metric"]), int(d["trials"]), dict(d.get("fixed") or {}),
            Space.from_list(list(d.get("space") or [])), int(d.get("seed") or 0), bool(d.get("prune", True)),
            dict(d.get("pruner") or pruner_settings(int(d["trials"]), 10)), str(d.get("storage") or DATABASE),
            float(d.get("created") or 0), str(d.get("host") or ""), str(d.get("command") or ""),
        )  # fmt: skip


def pruner_settings(trials: int, epochs: int) -> dict[str, int]:
    """MedianPruner's settings for short runs: prune once a few trials have finished (2 of
    a 4-trial grid, 5 of 20 or more), and judge a trial from its second epoch on (the first
    is noisy), or after a fifth of its epochs in longer runs (a low learning rate starts
    slow and may still end best)."""
    return {"n_startup_trials": max(2, min(5, trials // 4)), "n_warmup_steps": max(2, epochs // 5)}


@dataclass
class TrialRow:
    """One trial as the leaderboard shows it."""

    number: int
    status: str  # one of STATUSES
    value: float | None  # the metric: the best epoch's (so far, for running and pruned trials)
    params: dict[str, Any]
    best_epoch: int | None = None
    epochs_done: int = 0
    epochs: int | None = None
    seconds: float | None = None
    test_acc: float | None = None  # at the best epoch: shown, never chosen by
    test_loss: float | None = None
    host: str = ""
    run_dir: str = ""
    reason: str = ""
    rank: int | None = None  # finished trials only, 1 = best
    exit_code: int | None = None  # a failed trial's, as `dltui run` would have exited

    def to_dict(self, metric: str) -> dict[str, Any]:
        return {
            "rank": self.rank, "trial": self.number, "status": self.status, metric: self.value,
            "best_epoch": self.best_epoch, "epochs_done": self.epochs_done, "epochs": self.epochs,
            "seconds": None if self.seconds is None else round(self.seconds, 2), "test_acc": self.test_acc,
            "test_loss": self.test_loss, **self.params, "host": self.host, "run_dir": self.run_dir,
            "reason": self.reason,
        }  # fmt: skip


def rank(rows: list[TrialRow], direction: str) -> list[TrialRow]:
    sign = -1 if direction == "maximize" else 1
    order = {"finished": 0, "pruned": 1, "running": 2, "failed": 3, "stopped": 4, "crashed": 5}

    def key(r: TrialRow) -> tuple:
        value = r.value if r.value is not None and math.isfinite(r.value) else None
        return (order.get(r.status, 9), value is None, sign * value if value is not None else 0.0, r.number)

    rows = sorted(rows, key=key)
    n = 0
    for r in rows:
        if r.status == "finished" and r.value is not None:
            n += 1
            r.rank = n
    return rows


def run_command(spec: SweepSpec, params: dict[str, Any]) -> str:
    import shlex

    settings = {**spec.fixed, **params}
    parts = ["dltui", "run"]
    for key, value in settings.items():
        if key in ("out", "threads", "data_schema") or value is None:
            continue
        if isinstance(value, bool):
            if key == "augment":
                parts.append("--augment" if value else "--no-augment")
            elif value:
                parts.append(flag(key))
            continue
        parts += [flag(key), shlex.quote(fmt(value))]
    return " ".join(parts)


def leaderboard_columns(spec: SweepSpec) -> list[str]:
    return ["rank", "trial", "status", spec.metric, "best_epoch", "epochs_done", "epochs", "seconds", "test_acc",
            "test_loss", *spec.space.fields, "host", "run_dir", "reason"]  # fmt: skip


_WRITING = threading.Lock()  # the watcher thread and the trial's end may both write it


def write_leaderboard(path: Path, rows: list[TrialRow], spec: SweepSpec) -> None:
    from dltui.engine.rundir import atomic_write

    columns = leaderboard_columns(spec)
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        d = r.to_dict(spec.metric)
        w.writerow({k: "" if d.get(k) is None else fmt(d[k]) for k in columns})
    with _WRITING:  # its temporary name is per process, not per thread
        atomic_write(path, buf.getvalue(), durable=False)  # rebuilt from the storage whenever a trial ends


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def read_sweep(path: Path) -> dict[str, Any]:
    """sweep.json as written ({} when absent or unreadable)."""
    return read_json(Path(path) / SWEEP_FILE)


def read_leaderboard(path: Path) -> list[dict[str, str]]:
    """leaderboard.csv's rows, best first, as text ([] while it is not written yet)."""
    try:
        with open(Path(path) / LEADERBOARD, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
