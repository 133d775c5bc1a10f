"""Run directories: config.json, metrics.csv, confusion.csv, summary.json, model.pt and
run.lock.

Every file but metrics.csv is replaced atomically, and metrics.csv gets one flushed,
fsynced row per epoch, so killing the process at any moment leaves readable files. A
replacement is written into an unnamed file (O_TMPFILE) that gets a name only for the
instant before the rename, so even kill -9 leaves no temporary file behind; files take
the mode the umask allows (0666 & ~umask), as any other program's would. During training
a :class:`Writer` thread writes them, in order, a few milliseconds after each epoch; a
kill can cost at most the last two epochs. One process at a time writes a run
directory: :class:`RunLock` holds ``run.lock``.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import queue
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltui.errors import ConfigError, RunLocked, StorageError

if TYPE_CHECKING:
    from dltui.config import TrainConfig

# new columns go at the end: older run directories (without them) still read
METRIC_COLUMNS = (
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "samples_per_s",
    "val_loss", "val_acc",
)  # fmt: skip
LOCK = "run.lock"
HEARTBEAT_S = 5.0  # how often a live run touches run.lock
RUN_FILES = ("model.pt", "metrics.csv")  # either one means the directory holds a run


def _tmp_name(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.tmp"


def _write_all(fd: int, payload: bytes, durable: bool) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]
    if durable:
        os.fsync(fd)


def atomic_write(path: Path, data: bytes | str, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: readers see the old file or the new one, never a part.
    ``durable`` fsyncs the data first, so a power cut cannot leave an empty file either;
    artefacts that only viewers read skip it (an fsync is 1-5 ms here, and the writer
    thread has one epoch's time for all of an epoch's files)."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    tmp = _tmp_name(path)
    try:
        fd = os.open(path.parent, os.O_TMPFILE | os.O_WRONLY, 0o666)  # type: ignore[attr-defined]
    except (AttributeError, OSError):  # not Linux, or a file system without O_TMPFILE
        fd = -1
    try:
        if fd >= 0:
            _write_all(fd, payload, durable)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if not _link_unnamed(fd, tmp):  # write a named file after all
                os.close(fd)
                fd = -1
        if fd < 0:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            _write_all(fd, payload, durable)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        if fd >= 0:
            os.close(fd)


_LINK: list[str] = ["proc", "linkat"]  # the ways still worth trying, best first


def _link_unnamed(fd: int, dest: Path) -> bool:
    """Give the O_TMPFILE ``fd`` the name ``dest``: through /proc (the usual way), else
    linkat(AT_EMPTY_PATH) (needs CAP_DAC_READ_SEARCH; some sandboxes refuse /proc links).
    A way that failed once is not tried again."""
    for way in list(_LINK):
        try:
            if way == "proc":
                os.link(f"/proc/self/fd/{fd}", dest, follow_symlinks=True)
                return True
            if _libc().linkat(fd, b"", -100, os.fsencode(dest), 0x1000) == 0:  # AT_FDCWD, AT_EMPTY_PATH
                return True
        except (OSError, AttributeError):
            pass
        _LINK.remove(way)
    return False


@functools.cache
def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary files a killed writer left (only where O_TMPFILE is unavailable)."""
    with contextlib.suppress(OSError):
        for p in run_dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                p.unlink()


def probe_writable(path: Path) -> None:
    """Prove a file can be created in ``path``: an unnamed temporary file, which no kill
    can leave behind."""
    with tempfile.TemporaryFile(dir=path):
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


class RunLock:
    """``run.lock``: the one live writer of a run directory, with its pid, host and start
    time, and a heartbeat (the file's mtime, refreshed every HEARTBEAT_S by a thread).

    The kernel's flock() is what excludes: it vanishes with the process, so a lock whose
    holder was killed is stale at once. Where flock is unavailable (some network file
    systems, Windows), a lock is stale when its pid is gone on this host, or its
    heartbeat is older than a few beats on another.
    """

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="dltui-heartbeat", daemon=True)
        self._thread.start()

    @classmethod
    def acquire(cls, run_dir: Path) -> RunLock:
        path = run_dir / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise StorageError(f"cannot write to '{run_dir}' ({exc.strerror or exc})") from None
        try:
            if not cls._flock(fd):
                holder = read_lock(run_dir) or {}
                raise RunLocked(
                    f"'{run_dir}' is in use by dltui pid {holder.get('pid', '?')} on {holder.get('host', '?')}; "
                    "wait for that run to end or stop it first"
                )
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        remove_stale_temporaries(run_dir)
        return cls(path, fd)

    @staticmethod
    def _flock(fd: int) -> bool:
        """True when this process now holds the lock."""
        try:
            import fcntl
        except ImportError:
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError:  # ENOLCK: no flock on this file system
                pass
        holder = _read_lock_fd(fd)
        return holder is None or not lock_alive(holder)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self._fd)

    def release(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _read_lock_fd(fd: int) -> dict[str, Any] | None:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"null")
        info["heartbeat"] = os.fstat(fd).st_mtime
    except (OSError, ValueError, TypeError):
        return None
    return info if isinstance(info, dict) else None


def read_lock(run_dir: Path) -> dict[str, Any] | None:
    """The holder written in ``run.lock`` (pid, host, started, heartbeat), or None."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_lock_fd(fd)
    finally:
        os.close(fd)


def lock_alive(info: dict[str, Any]) -> bool:
    """Whether the holder described by ``info`` looks alive (without flock's certainty)."""
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        return info["pid"] != os.getpid() and _pid_alive(info["pid"])
    return time.time() - float(info.get("heartbeat", 0)) < 4 * HEARTBEAT_S


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


def open_run_dir(cfg: TrainConfig, root: str | None = None) -> tuple[Path, RunLock]:
    """Create and lock the run directory of a new run: ``cfg.out`` (must not already hold
    a run), else <runs dir>/<timestamp>-<dataset>-<model>, the runs dir being
    $DLTUI_RUNS_DIR or runs/ (where the app and `dltui runs` look)."""
    root = root or os.path.expanduser(os.environ.get("DLTUI_RUNS_DIR") or "runs")
    try:
        if cfg.out:
            path = Path(cfg.out)
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = Path(root) / f"{stamp}-{cfg.dataset_label}-{cfg.model_label}"
            n = 2
            while path.exists():
                path = Path(root) / f"{stamp}-{cfg.dataset_label}-{cfg.model_label}-{n}"
                n += 1
        path.mkdir(parents=True, exist_ok=True)
        probe_writable(path)
    except OSError as exc:
        raise StorageError(f"cannot write to '{cfg.out or root}' ({exc.strerror or type(exc).__name__})") from None
    lock = RunLock.acquire(path)
    if any((path / f).exists() for f in RUN_FILES):
        lock.release()
        raise ConfigError(
            "out", f"'{path}' already holds a run (continue it with --resume {path}, or pick another --out)"
        )
    return path, lock


def lock_run_dir(path: Path) -> RunLock:
    """Lock an existing run directory to continue it, proving it is writable."""
    try:
        probe_writable(path)
    except OSError as exc:
        raise StorageError(f"cannot continue the run in '{path}': cannot write there ({exc.strerror})") from None
    return RunLock.acquire(path)


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    atomic_write(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")


def write_json(path: Path, data: dict[str, Any], durable: bool = True) -> None:
    atomic_write(path, json.dumps(data, indent=2) + "\n", durable)


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


EVENTS = "events.jsonl"
TESTSET = "testset.npz"
EVALUATION = "evaluation.npz"


class EventLog:
    """events.jsonl: one JSON object per line, appended, the channel from a run to any
    viewer. Each line is one write() to a file opened O_APPEND, so lines from the
    training thread and the writer thread never interleave; a viewer may find the last
    line half written and waits for the rest. Not fsynced: metrics.csv is the durable
    record, this is the live one."""

    def __init__(self, run_dir: Path):
        self._fd = os.open(Path(run_dir) / EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._broken = False

    def write(self, kind: str, **fields: Any) -> None:
        if self._broken:
            return
        line = json.dumps({"event": kind, "time": round(time.time(), 3), **fields}, default=_jsonable) + "\n"
        try:
            os.write(self._fd, line.encode())
        except OSError:  # a full disk: metrics.csv and the writer report it; viewers fall back to it
            self._broken = True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple | set):
        return list(v)
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def _savez(path: Path, durable: bool, **arrays: Any) -> None:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue(), durable)


def write_testset(run_dir: Path, x_test: Any, y_test: Any, sample: list[int]) -> None:
    """The test split as stored (uint8 images, float features, token ids) and the sampler's
    seeded items, once per run: a viewer draws test items without loading the dataset
    (a viewer's artefact like evaluation.npz: no fsync; a resume writes it again)."""
    import numpy as np

    _savez(run_dir / TESTSET, False, x=x_test.numpy(), y=y_test.numpy(), sample=np.asarray(sample, dtype=np.int64))


def write_evaluation(run_dir: Path, epoch: int, y_pred: Any, confidence: Any, confusion: Any) -> None:
    """The latest evaluation of the test split: predictions, confidences and the confusion
    counts (empty for regression), replaced atomically each epoch."""
    import numpy as np

    counts = np.asarray(confusion if confusion is not None else np.zeros((0, 0)), dtype=np.int64)
    _savez(  # a viewer's artefact, rewritten every epoch: not worth an fsync
        run_dir / EVALUATION,
        False,
        epoch=np.int64(epoch),
        y_pred=y_pred.numpy(),
        confidence=confidence.numpy(),
        confusion=counts,
    )
