"""Reading run directories, as any viewer does: the app's Runs view, `dltui runs` and
`dltui watch`. Plain Python and numpy: a viewer never imports torch or loads a dataset.

A run is a directory that one process writes (see engine/rundir.py) and any number of
viewers read. They tolerate what a live or dead writer leaves: a half-written last line
of events.jsonl, files replaced while read, a directory deleted while watched, and runs
from older dltui versions that have no events.jsonl (their metrics.csv stands in).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dltui.config import model_label
from dltui.engine.rundir import EVALUATION, EVENTS, LOCK, TESTSET, lock_alive, read_lock

STATUSES = ("running", "finished", "stopped", "failed", "crashed")
GLYPHS = {"running": "▶", "finished": "✓", "stopped": "■", "failed": "✗", "crashed": "✗"}
COLOURS = {"running": "cyan", "finished": "green", "stopped": "yellow", "failed": "red", "crashed": "red"}


def default_runs_dir() -> Path:
    return Path(os.path.expanduser(os.environ.get("DLTUI_RUNS_DIR") or "runs"))


def _short_dataset(config: dict[str, Any]) -> str:
    """A registry name, or your data's file or folder name without its suffixes."""
    dataset = str(config.get("dataset", "?"))
    if not config.get("data_schema"):
        return dataset
    return Path(dataset.rstrip("/")).name.split(".")[0] or dataset


def best_by_validation(rows: list[dict[str, Any]], config: dict[str, Any]) -> float | None:
    """The test accuracy of the epoch with the best monitored validation value (the epoch
    best.pt holds; the earliest on a tie), or None for a run that held no validation out:
    nothing is ever chosen by the test split."""
    monitor = str(config.get("monitor") or "val_acc")
    scored = [(r, _float(r.get(monitor))) for r in rows]
    scored = [(r, v) for r, v in scored if v is not None]
    if not scored:
        return None
    pick = max if monitor.endswith("acc") else min
    row, _ = pick(scored, key=lambda rv: rv[1])
    return _float(row.get("test_acc"))


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _metrics(path: Path) -> list[dict[str, str]]:
    try:
        with open(path / "metrics.csv", newline="") as f:
            return [r for r in csv.DictReader(f) if r.get("epoch", "").isdigit()]
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def _float(v: Any) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def lock_held(run_dir: Path) -> bool:
    """Whether a live process holds the run's lock: the kernel's answer where flock works,
    else the pid (this host) or the heartbeat (another host)."""
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            info = read_lock(run_dir)
            return info is not None and lock_alive(info)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except ImportError:  # pragma: no cover - no fcntl (Windows)
        info = read_lock(run_dir)
        return info is not None and lock_alive(info)
    finally:
        os.close(fd)


@dataclass
class RunInfo:
    """One row of the runs table: what a run's files say, and whether its writer lives."""

    path: Path
    status: str  # one of STATUSES
    dataset: str
    model: str
    epochs_done: int
    epochs: int
    best_test_acc: float | None
    last_test_acc: float | None
    last_test_loss: float | None
    wall_s: float
    started: float  # unix time
    config: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    host: str | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "status": self.status,
            "dataset": self.dataset,
            "model": self.model,
            "epochs_done": self.epochs_done,
            "epochs": self.epochs,
            "best_test_acc": self.best_test_acc,
            "last_test_acc": self.last_test_acc,
            "last_test_loss": self.last_test_loss,
            "wall_s": round(self.wall_s, 3),
            "started": self.started,
            "pid": self.pid,
            "host": self.host,
            "error": self.error,
        }


def is_run_dir(path: Path) -> bool:
    return (path / "config.json").is_file() or (path / "metrics.csv").is_file()


def read_run(path: Path) -> RunInfo | None:
    """What ``path``'s files say; None when it holds no run (or vanished meanwhile)."""
    path = Path(path)
    if not is_run_dir(path):
        return None
    config = _json(path / "config.json")
    summary = _json(path / "summary.json")
    rows = _metrics(path)
    accs = [a for a in (_float(r.get("test_acc")) for r in rows) if a is not None]
    held = lock_held(path)
    said = summary.get("status")
    if held:
        status = "running"
    elif said in ("finished", "stopped", "failed"):
        status = said
    else:  # "running" without a live writer, or no summary at all: the process died
        status = "crashed"
    try:
        started = (path / "config.json").stat().st_mtime if not (path / EVENTS).exists() else _first_time(path)
    except OSError:
        started = 0.0
    lock = read_lock(path) if held else None
    wall = _float(summary.get("wall_s")) or sum(_float(r.get("seconds")) or 0.0 for r in rows)
    return RunInfo(
        path=path,
        status=status,
        dataset=_short_dataset(config),
        model=model_label(str(config.get("model", "?"))),
        epochs_done=len(rows),
        epochs=int(config.get("epochs") or summary.get("epochs") or len(rows)),
        best_test_acc=best_by_validation(rows, config),
        last_test_acc=accs[-1] if accs else None,
        last_test_loss=_float(rows[-1].get("test_loss")) if rows else None,
        wall_s=wall,
        started=started,
        config=config,
        pid=(lock or summary).get("pid"),
        host=(lock or summary).get("host"),
        error=summary.get("error"),
    )


def _first_time(path: Path) -> float:
    with open(path / EVENTS, "rb") as f:
        first = f.readline()
    try:
        return float(json.loads(first)["time"])
    except (ValueError, KeyError, TypeError):
        return (path / "config.json").stat().st_mtime


def scan(root: Path) -> list[RunInfo]:
    """Every run directly under ``root`` (and one level down, where sweeps keep theirs),
    newest first."""
    runs: list[RunInfo] = []
    try:
        entries = sorted(Path(root).iterdir())
    except OSError:
        return runs
    for entry in entries:
        with contextlib.suppress(OSError):
            if not entry.is_dir():
                continue
            if is_run_dir(entry):
                info = read_run(entry)
                if info is not None:
                    runs.append(info)
            else:
                runs += [i for i in map(read_run, sorted(entry.iterdir())) if i is not None]
    runs.sort(key=lambda r: r.started, reverse=True)
    return runs


def differing(runs: list[RunInfo]) -> list[str]:
    """The config fields whose values differ between ``runs`` (the compare legend)."""
    skip = {"out", "data_dir", "threads", "device"}
    keys = sorted({k for r in runs for k in r.config} - skip)
    return [k for k in keys if len({json.dumps(r.config.get(k)) for r in runs}) > 1]


def label(run: RunInfo, fields: list[str]) -> str:
    """'mlp lr 0.1': a run named by what differs from the others it is shown with."""
    parts = []
    for k in fields:
        v = run.config.get(k)
        if k in ("model", "dataset", "optimizer"):
            parts.append(str(v))
        else:
            parts.append(f"{k.replace('_', ' ')} {v:g}" if isinstance(v, float) else f"{k.replace('_', ' ')} {v}")
    return " ".join(parts) or run.name


class RunWatcher:
    """Follows one run directory: the events appended since the last poll, and the latest
    evaluation once a newer one is on disk. A run from an older dltui (no events.jsonl)
    is followed through config.json and metrics.csv."""

    def __init__(self, path: Path, from_end: bool = False):
        """``from_end``: follow only what is written from now on (a run being continued:
        its earlier sessions' lines, their final status included, are history)."""
        self.path = Path(path)
        self._offset = 0
        self._partial = b""
        self._legacy_rows = 0
        self._legacy_started = self._legacy_ended = False
        self._eval_epoch = -1
        self._testset: dict[str, Any] | None = None
        if from_end:
            with contextlib.suppress(OSError):
                self._offset = (self.path / EVENTS).stat().st_size
            self._legacy_started = self._legacy_ended = True
            self._legacy_rows = len(_metrics(self.path))

    def poll(self) -> list[dict[str, Any]]:
        """New events, oldest first. Never raises: a vanished directory yields nothing."""
        events_file = self.path / EVENTS
        if not events_file.exists():
            return self._legacy()
        try:
            with open(events_file, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" after a complete line; else a half-written one
        out = []
        for line in lines:
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                event = json.loads(line)
                if isinstance(event, dict) and "event" in event:
                    out.append(event)
        return out

    def _legacy(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self._legacy_started and (self.path / "config.json").exists():
            self._legacy_started = True
            out.append({"event": "started", "config": _json(self.path / "config.json"), "legacy": True})
        rows = _metrics(self.path)
        epochs = _json(self.path / "config.json").get("epochs") or 0
        for r in rows[self._legacy_rows :]:
            e = {k: _float(v) for k, v in r.items() if k != "epoch"}
            out.append({"event": "epoch", "epoch": int(r["epoch"]), "epochs": epochs, "extras": {}, **e})
        self._legacy_rows = len(rows)
        said = _json(self.path / "summary.json").get("status")
        if said in ("finished", "stopped", "failed") and not self._legacy_ended:
            self._legacy_ended = True
            out.append({"event": said, "summary": _json(self.path / "summary.json")})
        return out

    def testset(self) -> dict[str, Any] | None:
        """x (as stored), y and the sampler's items; None until written (or never, for an
        older run)."""
        if self._testset is None:
            self._testset = _npz(self.path / TESTSET)
        return self._testset

    def evaluation(self, at_least: int = 0) -> dict[str, Any] | None:
        """The latest evaluation when it is newer than the last one returned."""
        ev = _npz(self.path / EVALUATION)
        if ev is None or int(ev["epoch"]) <= self._eval_epoch or int(ev["epoch"]) < at_least:
            return None
        self._eval_epoch = int(ev["epoch"])
        return ev


def _npz(path: Path) -> dict[str, Any] | None:
    """An .npz read whole, with pickles refused; None while absent or being replaced."""
    import numpy as np

    for _ in range(3):
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError, KeyError):
            time.sleep(0.01)  # caught mid-replace on a file system without atomic rename
    return None


# --- a run's events as the engine's: what the app's widgets are fed, live or replayed ---


@dataclass(frozen=True)
class RunSpec:
    """The dataset facts a viewer needs, as the run recorded them."""

    name: str
    task: str
    kind: str
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]


@dataclass
class RunData:
    """Stands in for dltui.data.Data in a viewer: the test split from testset.npz (None for
    a run from an older dltui) and how to read it."""

    spec: RunSpec
    x_test: Any
    y_test: Any
    scale: float = 1.0
    extras: dict[str, Any] = field(default_factory=dict)
    y_train: Any = ()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes

    @property
    def task(self) -> str:
        return self.spec.task


def _config(raw: dict[str, Any]) -> Any:
    from dataclasses import fields

    from dltui.config import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in raw.items() if k in names})  # as recorded: no re-validation


def _data(watcher: RunWatcher, e: dict[str, Any]) -> RunData:
    import torch

    meta = e.get("dataset") or {}
    if not meta:  # an older run: the registry knows its dataset, if it still exists
        from dltui.data import DATASETS

        spec = DATASETS.get(str(e.get("config", {}).get("dataset")))
        if spec is not None:
            meta = {"name": spec.name, "task": spec.task, "kind": spec.kind, "input_shape": spec.input_shape,
                    "classes": spec.classes}  # fmt: skip
    spec = RunSpec(
        str(meta.get("name", "?")),
        str(meta.get("task", "classification")),
        str(meta.get("kind", "vector")),
        tuple(meta.get("input_shape", ())),
        tuple(meta.get("classes", ())),
    )
    ts = watcher.testset()
    x = torch.from_numpy(ts["x"]) if ts else None
    y = torch.from_numpy(ts["y"]) if ts else None
    return RunData(spec, x, y, float(meta.get("scale", 1.0)), dict(meta.get("extras") or {}))


def engine_event(watcher: RunWatcher, e: dict[str, Any], last: Any = None) -> Any:
    """The engine event a line of events.jsonl stands for (None for one a viewer skips).
    ``last`` is the latest EpochEnded, for the final summary."""
    from dltui.engine import events as ev

    kind = e.get("event")
    fields_of = lambda cls: {k: e[k] for k in cls.__dataclass_fields__ if k in e}  # noqa: E731
    try:
        if kind == "started":
            cfg = _config(e.get("config") or {})
            return ev.RunStarted(
                cfg, _data(watcher, e), int(e.get("n_params", 0)), str(e.get("device", "?")), str(watcher.path),
                int(e.get("start_epoch", 0)), int(e.get("steps_per_epoch", 1)), tuple(e.get("notes", ())),
            )  # fmt: skip
        if kind == "progress":
            return ev.BatchProgressed(**fields_of(ev.BatchProgressed))
        if kind == "note":
            return ev.RunNoted(int(e.get("epoch") or 0), str(e.get("text", "")))
        if kind == "epoch":
            return ev.EpochEnded(**{"epochs": 0, "extras": {}, **fields_of(ev.EpochEnded)})
        if kind == "evaluation":
            import torch

            got, ts = watcher.evaluation(), watcher.testset()
            if got is None or ts is None:
                return None
            confusion = got["confusion"].tolist() if got["confusion"].size else None
            return ev.EvaluationReady(
                int(got["epoch"]), confusion, torch.from_numpy(ts["y"]), torch.from_numpy(got["y_pred"]),
                torch.from_numpy(got["confidence"]), ts["sample"].tolist(),
            )  # fmt: skip
        if kind in ("finished", "stopped", "failed", "crashed"):
            s = e.get("summary") or {}
            summary = ev.RunSummary(
                int(s.get("epochs_done", getattr(last, "epoch", 0))), last, s.get("best_test_acc"),
                s.get("best_test_loss"), float(s.get("wall_s") or 0.0), float(s.get("samples_per_s") or 0.0),
                str(watcher.path), int(s.get("resumed_from") or 0),
            )  # fmt: skip
            if kind == "finished":
                return ev.RunFinished(summary)
            if kind == "stopped":
                return ev.RunStopped(summary)
            message = e.get("message") or ("the run's process died without a word (killed, or out of memory)"
                                           if kind == "crashed" else "failed")  # fmt: skip
            return ev.RunFailed(str(message), 1, summary)
    except (TypeError, ValueError, KeyError):  # a line from another version: skipped, not fatal
        return None
    return None


def read_curves(path: Path, name: str, up_to: int | None = None) -> Any:
    """A run's per-epoch curves from metrics.csv (for comparing runs; up to epoch ``up_to``
    for a continued run's first part)."""
    from dltui.tui.state import Curves

    curves = Curves(name)
    for r in _metrics(Path(path)):
        train_loss, test_loss = _float(r.get("train_loss")), _float(r.get("test_loss"))
        if train_loss is None or test_loss is None or (up_to is not None and int(r["epoch"]) > up_to):
            continue
        curves.add_epoch(int(r["epoch"]), train_loss, test_loss, _float(r.get("train_acc")), _float(r.get("test_acc")))
        curves.add_extra(int(r["epoch"]), _float(r.get("lr")), _float(r.get("val_loss")), _float(r.get("val_acc")))
    curves.regression = not curves.test_acc
    return curves
