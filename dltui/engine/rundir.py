"""Run directories: config.json, metrics.csv, confusion.csv, summary.json and model.pt.

Every file but metrics.csv is replaced atomically (temporary file + os.replace), and
metrics.csv gets one flushed, fsynced row per epoch, so killing the process at any
moment leaves readable files. During training a :class:`Writer` thread writes them, in
order, a few milliseconds after each epoch; a kill can cost at most the last two epochs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltui.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from dltui.config import TrainConfig

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "samples_per_s")
CHECKPOINT = "model.pt"
CHECKPOINT_KEYS = {"model", "optimizer", "config", "epoch"}


def atomic_write(path: Path, data: bytes | str) -> None:
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Writer:
    """Runs file writes on a thread of its own, in the order they were submitted, so the
    training thread never waits on the disk: each epoch's fsyncs cost ~3 ms here (7 % of
    a softmax epoch on 8k images) and far more on a network file system. One epoch's writes
    may wait while another is written; beyond that, training waits for the disk. After a
    write fails no later write runs, and the failure is raised in the training thread by
    check(), submit() or close().
    """

    def __init__(self, depth: int = 1):
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=depth)
        self._failed: BaseException | None = None  # sticky: set once, by the writer thread
        self._reported = False
        self._thread = threading.Thread(target=self._work, name="dltui-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._failed is None:
                try:
                    job()
                except BaseException as exc:  # handed to the training thread
                    self._failed = exc

    def check(self) -> None:
        """Raise the failure of an earlier write (once)."""
        if self._failed is not None and not self._reported:
            self._reported = True
            raise self._failed

    def submit(self, job: Callable[[], None]) -> None:
        self.check()
        self._jobs.put(job)

    def close(self) -> BaseException | None:
        """Wait for every submitted write; return a failure not yet raised, if any."""
        self._jobs.put(None)
        self._thread.join()
        return None if self._reported else self._failed


def host_copy(obj: Any) -> Any:
    """``obj`` (a state dict, nested dicts and lists) with every tensor copied to the CPU, so
    a writer thread can serialise it while training goes on changing the originals."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        out = type(obj)((k, host_copy(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):  # a module state_dict's per-module versions
            out._metadata = obj._metadata  # type: ignore[attr-defined]
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(host_copy(v) for v in obj)
    return obj


def new_run_dir(cfg: TrainConfig, root: str = "runs") -> Path:
    """Create the run directory: ``cfg.out`` (must not already hold a run), else
    runs/<timestamp>-<dataset>-<model>."""
    if cfg.out:
        path = Path(cfg.out)
        if (path / CHECKPOINT).exists() or (path / "metrics.csv").exists():
            raise ConfigError(
                "out", f"'{path}' already holds a run (continue it with --resume {path}, or pick another --out)"
            )
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(root) / f"{stamp}-{cfg.dataset}-{cfg.model}"
        n = 2
        while path.exists():
            path = Path(root) / f"{stamp}-{cfg.dataset}-{cfg.model}-{n}"
            n += 1
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError("out", f"cannot write to '{path}' ({exc.strerror or type(exc).__name__})") from None
    return path


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    atomic_write(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=2) + "\n")


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


class MetricsFile:
    """metrics.csv, one row per epoch, flushed and fsynced as each epoch ends."""

    def __init__(self, run_dir: Path, rows: list[dict[str, Any]] | None = None):
        self.path = run_dir / "metrics.csv"
        # (re)write the header and any rows carried over from a checkpoint, atomically
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(METRIC_COLUMNS)
        for row in rows or []:
            w.writerow([_fmt(row.get(c)) for c in METRIC_COLUMNS])
        atomic_write(self.path, buf.getvalue())

    def append(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f, lineterminator="\n").writerow([_fmt(row.get(c)) for c in METRIC_COLUMNS])
            f.flush()
            os.fsync(f.fileno())


def write_confusion(run_dir: Path, classes: tuple[str, ...], matrix: list[list[int]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["true\\pred", *classes])
    for name, row in zip(classes, matrix, strict=True):
        w.writerow([name, *row])
    atomic_write(run_dir / "confusion.csv", buf.getvalue())


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(run_dir / CHECKPOINT, buf.getvalue())


def checkpoint_path(path: str | Path) -> Path:
    p = Path(path)
    return p / CHECKPOINT if p.is_dir() else p


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a dltui checkpoint safely (weights_only: no code in the file can run).

    ``path`` is a run directory or a model.pt. Raises CheckpointError in one line.
    """
    import pickle

    import torch

    p = checkpoint_path(path)
    if not p.exists():
        where = f"'{path}' has no {CHECKPOINT}" if Path(path).is_dir() else f"'{p}' does not exist"
        raise CheckpointError(f"cannot load checkpoint: {where}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"refusing to load '{p}': it holds objects other than tensors and plain data "
                "(a pickle that could run code); only dltui checkpoints are accepted"
            ) from None
        raise CheckpointError(f"'{p}' is not a readable checkpoint ({first[:120]})") from None
    except Exception as exc:  # torch.load on arbitrary bytes raises all kinds (KeyError, EOFError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"'{p}' is truncated or not a checkpoint ({first[:120]})") from None
    if not isinstance(state, dict) or not set(state) >= CHECKPOINT_KEYS:
        raise CheckpointError(f"'{p}' is not a dltui checkpoint (expected keys: {', '.join(sorted(CHECKPOINT_KEYS))})")
    if not isinstance(state["config"], dict) or not isinstance(state["epoch"], int):
        raise CheckpointError(f"'{p}' is not a dltui checkpoint (config or epoch malformed)")
    return state


def config_from_checkpoint(
    state: dict[str, Any], source: str | Path, device: str | None = None, data_dir: str | None = None
) -> TrainConfig:
    """The saved config, validated again; ``device``/``data_dir`` replace the saved ones
    (a run trained on CUDA falls back to ``auto`` on a machine without it)."""
    from dltui.config import TrainConfig, cuda_available

    saved = dict(state["config"])
    if device:
        saved["device"] = device
    elif saved.get("device") == "cuda" and not cuda_available():
        saved["device"] = "auto"
    if data_dir:
        saved["data_dir"] = data_dir
    try:
        return TrainConfig.from_dict(saved)
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint '{source}' cannot be used here: {exc}") from None
    except (TypeError, AttributeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint '{source}' holds a malformed config ({exc})") from None
