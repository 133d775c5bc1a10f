"""Hyperparameter sweeps: many runs of one dataset, searched and pruned by Optuna.

A sweep is a directory and an Optuna study. The study is its storage (SQLite ``sweep.db``
in the directory by default, or a PostgreSQL/MySQL URL that many machines share); workers
are plain processes that open the same storage and take trials from it. The sampler (grid
or TPE) and the median pruner are Optuna's objects: this module only turns a trial's
settings into an ordinary run (``engine.train``) and reports its per-epoch validation
metric back. Nothing is ever chosen by the test split.

On disk, for viewers (the app, `dltui runs`), all plain files:

    <sweep>/sweep.json           format, name, metric, direction, trials, sampler, fixed
                                 settings, space, storage (without password), command
    <sweep>/leaderboard.csv      one row per trial, best first, atomically replaced
    <sweep>/sweep.db             the study, when the storage is the default SQLite file
    <sweep>/trial-NNN-<label>/   an ordinary run directory, plus trial.json (its outcome)
    <sweep>/worker-K.log         what the extra processes of --parallel printed
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltui.config import MONITORS, choose, number, user_path
from dltui.errors import EXIT_USAGE, ConfigError, DltuiError
from dltui.sweep_space import Space, flag, fmt, split_flags

if TYPE_CHECKING:
    import optuna

FORMAT = 1
SWEEP_FILE = "sweep.json"
LEADERBOARD = "leaderboard.csv"
DATABASE = "sweep.db"
TRIAL_FILE = "trial.json"
STUDY_ATTR = "dltui_sweep"  # the spec, kept in the study so a worker given only a URL has it
DEFAULT_TRIALS = 20
VAL_FRACTION = "0.1"  # what a sweep holds out when --val-fraction is not given
HEARTBEAT_S = 30  # a worker's trial shows it is alive this often; after GRACE_S without, it is failed and retried
GRACE_S = 120
SQLITE_TIMEOUT_S = 60  # how long a worker waits for another's write to the SQLite file
STATUSES = ("finished", "pruned", "running", "failed", "stopped", "crashed")


class SweepError(DltuiError):
    """A sweep cannot be started or joined as asked (exit 2)."""

    exit_code = EXIT_USAGE


class _TrialFailed(Exception):
    """A trial failed (recorded); the sweep goes on."""


class _Interrupted(Exception):
    """Ctrl+C: the trial is stopped and queued again; the sweep ends."""


class _Surplus(Exception):
    """Other workers filled the sweep while this one asked for a trial."""


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
            "grid_size": self.space.grid_size, "prune": self.prune, "pruner": pruner_settings(self),
            "seed": self.seed, "fixed": self.fixed, "space": self.space.to_list(), "storage": self.storage,
            "created": self.created, "host": self.host, "command": self.command,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepSpec:
        return cls(
            str(d["name"]), str(d["metric"]), int(d["trials"]), dict(d.get("fixed") or {}),
            Space.from_list(list(d.get("space") or [])), int(d.get("seed") or 0), bool(d.get("prune", True)),
            str(d.get("storage") or DATABASE), float(d.get("created") or 0), str(d.get("host") or ""),
            str(d.get("command") or ""),
        )  # fmt: skip


def pruner_settings(spec: SweepSpec) -> dict[str, int]:
    """MedianPruner for short runs: judge from the second epoch (the first is noisy), once a
    few trials have finished (2 of a 4-trial grid, 5 of 20 or more)."""
    return {"n_startup_trials": max(2, min(5, spec.trials // 4)), "n_warmup_steps": 2}


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


# --- storage ---


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our leaderboard says what happened
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def shown_url(url: str) -> str:
    """``url`` without its password (libpq still finds one in PGPASSWORD or ~/.pgpass)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).set(password=None).render_as_string(hide_password=False)
    except Exception:  # not a URL SQLAlchemy parses: said as it was given, minus anything after '@'
        return url.split("@")[-1]


DRIVERS = {
    "psycopg": "pip install 'psycopg[binary]'",
    "psycopg2": "pip install psycopg2-binary",
    "MySQLdb": "pip install mysqlclient, or use mysql+pymysql://… after pip install pymysql",
    "pymysql": "pip install pymysql",
}


def driver_url(url: str) -> str:
    """``url`` with a driver SQLAlchemy can load from what dltui installs: a plain
    postgresql:// (whose default driver depends on the SQLAlchemy version) uses psycopg 3;
    a URL naming its driver (postgresql+psycopg2://, mysql+pymysql://) is used as given."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if sep and scheme in ("postgresql", "postgres") else url


def storage_url(recorded: str, directory: Path) -> str:
    return f"sqlite:///{(directory / DATABASE).absolute()}" if recorded == DATABASE else recorded


def open_storage(url: str, on_stale: Callable[[Any, Any], None] | None = None) -> Any:
    """Optuna's RDBStorage for ``url``, with heartbeats, so a trial whose worker died is
    failed and queued again. SQLite gets WAL (readers never block the writer) and a long
    busy timeout (workers wait their turn instead of failing with 'database is locked')."""
    import inspect

    import optuna

    _quiet_optuna()
    shown = shown_url(url)
    kwargs: dict[str, Any] = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S}
    params = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
    key = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in params else "failed_trial_callback"
    kwargs[key] = on_stale
    engine: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        import sqlite3

        path = url[len("sqlite:///") :]
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S)) as db:
                db.execute("pragma journal_mode=wal")  # kept by the file: every later connection uses it
        except sqlite3.Error as exc:
            raise SweepError(f"--storage: cannot open the SQLite file '{path}' ({exc})") from None
        engine = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    try:
        return optuna.storages.RDBStorage(driver_url(url), engine_kwargs=engine, **kwargs)
    except ImportError as exc:  # Optuna's own, raised from the driver's
        module = getattr(exc.__cause__ or exc, "name", None) or "?"
        hint = DRIVERS.get(module.split(".")[0], f"pip install {module}")
        raise SweepError(f"--storage: {shown} needs the database driver '{module}' ({hint})") from None
    except Exception as exc:  # sqlalchemy's ArgumentError, OperationalError, …: one line
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
        raise SweepError(f"--storage: cannot open {shown} ({reason})") from None


def _sampler(spec: SweepSpec, seed: int | None) -> Any:
    import optuna

    if spec.space.is_grid:  # every worker shuffles the grid alike: trial n takes grid point n
        return optuna.samplers.GridSampler(spec.space.grid(), seed=spec.seed)
    startup = max(2, min(10, spec.trials // 2))  # random trials before TPE models what it has seen
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def _pruner(spec: SweepSpec) -> Any:
    import optuna

    if not spec.prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(**pruner_settings(spec))


# --- creating and joining ---


def default_sweep_dir(name: str | None) -> Path:
    from dltui.runs import default_runs_dir

    root = default_runs_dir()
    if name:
        return root / name
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = root / f"sweep-{stamp}", 2
    while path.exists():
        path, n = root / f"sweep-{stamp}-{n}", n + 1
    return path


def _make_dir(path: Path) -> None:
    from dltui.config import check_writable_dir

    check_writable_dir("out", path)


def _check(fixed: dict[str, Any], space: Space) -> tuple[Any, list[str]]:
    """Build a config for each listed value and each range end (the other swept flags at
    their first value): the first config that builds, and a note for each value that did
    not. When none builds, the first error is the user's (a typo in a fixed flag)."""
    from dltui.resolve import make_config

    first = {d.field: d.probes()[0] for d in space.dims}
    built, errors, notes = None, [], []
    for dim in space.dims:
        for value in dim.probes():
            try:
                cfg = make_config(**fixed, **{**first, dim.field: value})
            except DltuiError as exc:
                errors.append(exc)
                line = f"{flag(dim.field)} {fmt(value)} fails: {exc}; its trials will be recorded as failed"
                if line not in notes:
                    notes.append(line)
                continue
            built = built or cfg
    if built is None:
        raise errors[0]
    return built, notes


def create(
    given: dict[str, Any],
    *,
    trials: str | int | None = None,
    metric: str | None = None,
    storage: str | None = None,
    name: str | None = None,
    out: str | None = None,
    prune: bool = True,
    command: str = "",
    sampler_seed: int | None = None,
) -> tuple[Sweep, list[str]]:
    """A new sweep from config flags as given (text; any may be a list or a range): its
    directory, study and sweep.json. Returns the sweep and notes for the user."""
    import optuna

    fixed, space = split_flags({k: v for k, v in given.items() if k not in ("out", "monitor")})
    if not space.dims:
        raise SweepError(
            "nothing to sweep: give a flag several values, a list (--model softmax,mlp) or a range (--lr 1e-4..1e-1:log)"
        )
    if metric is not None:
        metric = choose("metric", metric, MONITORS)
    val = fixed.setdefault("val_fraction", VAL_FRACTION)  # every trial is judged on held-out data
    if number("val_fraction", val, float, "a fraction in (0, 0.5]") == 0:
        raise ConfigError("val_fraction", "0 holds nothing out; a sweep chooses by validation (leave it out for 0.1)")
    if metric is not None:
        fixed["monitor"] = metric
    try:
        cfg, notes = _check(fixed, space)
    except ConfigError as exc:
        if exc.field == "monitor":  # --metric set it: name the flag the user typed
            raise ConfigError("metric", str(exc).split(": ", 1)[1]) from None
        raise
    fixed["monitor"] = metric = cfg.monitor
    if cfg.data_schema is not None:
        fixed["dataset"] = cfg.dataset  # a path made absolute: workers started elsewhere find it
    grid = space.grid_size
    n = grid if trials is None and grid is not None else DEFAULT_TRIALS if trials is None else trials
    n = number("trials", n, int, "a whole number >= 1")
    if n < 1:
        raise ConfigError("trials", f"{n} is out of range (a whole number >= 1)")
    directory = (user_path("out", out) if out else default_sweep_dir(name)).absolute()
    if (directory / SWEEP_FILE).exists():
        raise SweepError(f"'{directory}' already holds a sweep (continue it with --resume {directory})")
    _make_dir(directory)
    study_name = name or directory.name
    spec = SweepSpec(
        study_name, metric, n, fixed, space, seed=int(cfg.seed), prune=prune,
        storage=shown_url(storage) if storage else DATABASE, created=time.time(), host=socket.gethostname(),
        command=command,
    )  # fmt: skip
    url = storage or storage_url(DATABASE, directory)
    holder = _Stale()
    store = open_storage(url, holder)
    try:
        study = optuna.create_study(
            storage=store, study_name=study_name, direction=spec.direction,
            sampler=_sampler(spec, spec.seed if sampler_seed is None else sampler_seed), pruner=_pruner(spec),
        )  # fmt: skip
    except optuna.exceptions.DuplicatedStudyError:
        raise SweepError(
            f"{shown_url(url)} already holds a sweep named '{study_name}' "
            f"(join it with --join {shown_url(url)} --name {study_name}, or pick another --name)"
        ) from None
    study.set_user_attr(STUDY_ATTR, spec.to_dict())
    sweep = Sweep(spec, directory, url, store, study)
    holder.sweep = sweep
    sweep.save_spec()
    return sweep, notes


def attach(
    target: str,
    *,
    storage: str | None = None,
    name: str | None = None,
    out: str | None = None,
    trials: str | int | None = None,
    overrides: dict[str, Any] | None = None,
    sampler_seed: int | None = None,
) -> Sweep:
    """An existing sweep, from its directory (sweep.json names the storage) or a storage URL
    (``name`` picks the study when it holds several): --join and --resume. ``overrides``
    (dataset path, data dir, device) apply to this worker's trials only; ``trials`` changes
    the sweep's target for every worker."""
    import optuna

    if "://" in target:
        url, directory = target, None
    else:
        directory = user_path("join", target).absolute()
        recorded = _read_json(directory / SWEEP_FILE)
        if not recorded:
            raise SweepError(f"'{target}' is not a sweep directory (no {SWEEP_FILE} in it)")
        url = storage or storage_url(str(recorded.get("storage") or DATABASE), directory)
        name = name or str(recorded.get("name"))
    holder = _Stale()
    store = open_storage(url, holder)
    names = optuna.get_all_study_names(store)
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) or "none"
            raise SweepError(f"{shown_url(url)} holds {len(names)} sweeps ({listed}): pick one with --name")
        name = names[0]
    if name not in names:
        raise SweepError(f"{shown_url(url)} holds no sweep named '{name}' (it has: {', '.join(names) or 'none'})")
    attrs = store.get_study_user_attrs(store.get_study_id_from_name(name))
    if STUDY_ATTR not in attrs:
        raise SweepError(f"the study '{name}' in {shown_url(url)} was not made by dltui sweep")
    spec = SweepSpec.from_dict(attrs[STUDY_ATTR])
    study = optuna.load_study(
        study_name=name, storage=store, sampler=_sampler(spec, sampler_seed), pruner=_pruner(spec)
    )
    if trials is not None:
        n = number("trials", trials, int, "a whole number >= 1")
        if n < 1:
            raise ConfigError("trials", f"{n} is out of range (a whole number >= 1)")
        spec.trials = n
        study.set_user_attr(STUDY_ATTR, spec.to_dict())
    if directory is None:
        directory = (user_path("out", out) if out else default_sweep_dir(name)).absolute()
        mine = _read_json(directory / SWEEP_FILE)
        if mine and mine.get("name") != name:
            raise SweepError(f"'{directory}' holds another sweep ('{mine.get('name')}'); pick another --out")
        _make_dir(directory)
    sweep = Sweep(spec, directory, url, store, study)
    holder.sweep = sweep
    sweep.save_spec()
    sweep.spec.fixed.update(overrides or {})  # after saving: this worker's, not the sweep's
    return sweep


class _Stale:
    """Optuna calls this for a trial whose worker stopped beating: it is queued again."""

    sweep: Sweep | None = None

    def __call__(self, study: Any, trial: Any) -> None:
        if self.sweep is not None:
            self.sweep.requeue(trial)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


# --- the sweep ---


class Sweep:
    """An open sweep: its spec, directory, storage and study. ``work`` runs trials in this
    process until the sweep has its trials, the timeout passes or ``should_stop`` says so."""

    def __init__(self, spec: SweepSpec, directory: Path, url: str, storage: Any, study: optuna.Study):
        self.spec, self.dir, self.url, self.storage, self.study = spec, Path(directory), url, storage, study
        self.host = socket.gethostname()

    def save_spec(self) -> None:
        from dltui.engine.rundir import write_json

        write_json(self.dir / SWEEP_FILE, {**self.spec.to_dict(), "storage": self._recorded_storage()})

    def _recorded_storage(self) -> str:
        local = storage_url(DATABASE, self.dir)
        return DATABASE if self.url == local else shown_url(self.url)

    # --- counting ---

    def _trials(self, states: Any = None) -> list[Any]:
        return self.study.get_trials(deepcopy=False, states=states)

    @staticmethod
    def _counts(t: Any) -> bool:
        """Whether ``t`` uses up one of the sweep's trials: finished, pruned, running, or
        failed on its own (a stopped or crashed trial is queued again instead)."""
        from optuna.trial import TrialState

        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
            return t.user_attrs.get("status") != "surplus"
        return t.state == TrialState.FAIL and t.user_attrs.get("status") == "failed"

    def counted(self) -> int:
        return sum(map(self._counts, self._trials()))

    def remaining(self) -> int:
        return max(0, self.spec.trials - self.counted())

    def _surplus(self, number: int) -> bool:
        """Whether the sweep was full before trial ``number`` was asked for: it counts what
        finished and what other workers started earlier (two workers asking at once each
        see the other; only the later one stands down)."""
        from optuna.trial import TrialState

        ahead = [
            t for t in self._trials()
            if t.number != number and self._counts(t) and (t.state != TrialState.RUNNING or t.number < number)
        ]  # fmt: skip
        return len(ahead) >= self.spec.trials

    def requeue(self, trial: Any) -> None:
        """Queue ``trial``'s settings again (it was stopped, or its worker died). A grid
        trial keeps its grid point, so Optuna's GridSampler counts the point once."""
        from optuna.trial import TrialState

        self.study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
        grid = self.storage.get_trial_system_attrs(trial._trial_id)
        if "grid_id" not in grid:
            return
        for t in self._trials(states=(TrialState.WAITING,)):
            if t.user_attrs.get("retry_of") == trial.number:
                self.storage.set_trial_system_attr(t._trial_id, "search_space", grid["search_space"])
                self.storage.set_trial_system_attr(t._trial_id, "grid_id", grid["grid_id"])

    def reclaim(self) -> int:
        """Trials this host was running in a process that is gone (kill -9, a power cut):
        failed as crashed and queued again, without waiting for the heartbeat to go stale."""
        from optuna.trial import TrialState

        n = 0
        for t in self._trials(states=(TrialState.RUNNING,)):
            pid = t.user_attrs.get("pid")
            if t.user_attrs.get("host") != self.host or pid == os.getpid() or _pid_alive(pid):
                continue
            try:
                self.storage.set_trial_user_attr(t._trial_id, "status", "crashed")
                if not self.storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                    continue
            except Exception:  # another worker reclaimed it first
                continue
            self.requeue(t)
            n += 1
        return n

    # --- running trials ---

    def work(
        self,
        *,
        threads: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        timeout_s: float | None = None,
        on_event: Callable[[int, Any], None] | None = None,
        on_trial: Callable[[Any], None] | None = None,
    ) -> str:
        """Run trials until the sweep is full ('done'), Ctrl+C ('stopped') or the timeout
        ('timeout': no trial starts after it; the running one finishes)."""
        self.reclaim()
        if self.remaining() == 0:
            return "done"
        objective = _Objective(self, threads, should_stop, on_event or (lambda n, e: None))

        def after(study: Any, frozen: Any) -> None:
            self.write_leaderboard()
            if on_trial is not None:
                on_trial(frozen)
            if self.remaining() == 0 or should_stop():
                study.stop()

        try:
            self.study.optimize(objective, timeout=timeout_s, catch=(_TrialFailed,), callbacks=[after])
        except _Interrupted:
            return "stopped"
        except _Surplus:
            return "done"
        finally:
            with contextlib.suppress(OSError):
                self.write_leaderboard()
        if should_stop():
            return "stopped"
        return "done" if self.remaining() == 0 else "timeout"

    # --- the leaderboard ---

    def rows(self) -> list[TrialRow]:
        """Every trial but queued ones, best first: finished trials ranked by the metric,
        then pruned ones by theirs, then running, then failed, stopped and crashed. A
        stopped or crashed trial whose retry has begun is left out (the retry stands for it)."""
        from optuna.trial import TrialState

        trials = self._trials()
        retried = {t.user_attrs.get("retry_of") for t in trials if t.state != TrialState.WAITING}
        out: list[TrialRow] = []
        for t in trials:
            attrs = t.user_attrs
            if t.state == TrialState.WAITING or attrs.get("status") == "surplus":
                continue
            if t.state == TrialState.COMPLETE:
                status = "finished"
            elif t.state == TrialState.PRUNED:
                status = "pruned"
            elif t.state == TrialState.RUNNING:
                status = "running"
            else:
                status = attrs.get("status") if attrs.get("status") in ("failed", "stopped") else "crashed"
            if status in ("stopped", "crashed") and t.number in retried:
                continue
            value = t.value if t.state == TrialState.COMPLETE else attrs.get("best_value")
            if value is None and t.intermediate_values:
                values = list(t.intermediate_values.values())
                value = max(values) if self.spec.direction == "maximize" else min(values)
            out.append(
                TrialRow(
                    t.number, status, value, dict(attrs.get("settings") or t.params), attrs.get("best_epoch"),
                    int(attrs.get("epochs_done", len(t.intermediate_values))), attrs.get("epochs"),
                    attrs.get("seconds"), attrs.get("test_acc"), attrs.get("test_loss"), str(attrs.get("host", "")),
                    str(attrs.get("run_dir", "")), str(attrs.get("reason", "")), exit_code=attrs.get("exit_code"),
                )
            )  # fmt: skip
        return rank(out, self.spec.direction)

    def write_leaderboard(self, rows: list[TrialRow] | None = None) -> None:
        write_leaderboard(self.dir / LEADERBOARD, self.rows() if rows is None else rows, self.spec)

    def best(self, rows: list[TrialRow] | None = None) -> TrialRow | None:
        rows = self.rows() if rows is None else rows
        return rows[0] if rows and rows[0].rank == 1 else None

    def run_command(self, row: TrialRow) -> str:
        """The `dltui run` line that trains ``row``'s settings again, alone."""
        return run_command(self.spec, row.params)


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


def write_leaderboard(path: Path, rows: list[TrialRow], spec: SweepSpec) -> None:
    from dltui.engine.rundir import atomic_write

    columns = leaderboard_columns(spec)
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        d = r.to_dict(spec.metric)
        w.writerow({k: "" if d.get(k) is None else fmt(d[k]) for k in columns})
    atomic_write(path, buf.getvalue(), durable=False)  # rebuilt from the storage whenever a trial ends


class _Objective:
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
            raise _Interrupted
        if sweep._surplus(trial.number):
            trial.set_user_attr("status", "surplus")
            raise _Surplus
        params = spec.space.suggest(trial)
        run_dir = sweep.dir / f"trial-{trial.number:03d}-{spec.space.label(params)}"
        for key, value in {"status": "running", "host": sweep.host, "pid": os.getpid(), "run_dir": str(run_dir),
                           "settings": params}.items():  # fmt: skip
            trial.set_user_attr(key, value)
        try:
            cfg = make_config(**{**spec.fixed, **params, "out": str(run_dir)})
        except DltuiError as exc:  # a model that does not fit the data, momentum with adam, …
            self._end(trial, "failed", str(exc), exit_code=exc.exit_code)
            raise _TrialFailed(str(exc)) from None
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
            raise _TrialFailed(str(exc)) from None
        s = result.summary
        if s is not None:
            trial.set_user_attr("epochs_done", s.epochs_done)
            trial.set_user_attr("seconds", round(s.wall_s, 3))
            for key in ("best_epoch", "best_value", "best_test_acc", "best_test_loss"):
                trial.set_user_attr(key.replace("best_test", "test"), getattr(s, key))
        if isinstance(result, RunFinished):
            if s.best_value is None:
                self._end(trial, "failed", f"no {spec.metric} was measured", run_dir=run_dir)
                raise _TrialFailed(spec.metric)
            self._end(trial, "finished", "", run_dir=run_dir, value=s.best_value)
            return s.best_value
        if isinstance(result, RunFailed):
            self._end(trial, "failed", result.message, run_dir=run_dir, exit_code=result.exit_code)
            raise _TrialFailed(result.message)
        if pruned:
            why = f"pruned after epoch {pruned[0]}: {spec.metric} below the median of earlier trials"
            self._end(trial, "pruned", why, run_dir=run_dir)
            raise optuna.TrialPruned(why)
        self._end(trial, "stopped", f"stopped after {s.epochs_done} epochs (Ctrl+C)", run_dir=run_dir)
        sweep.requeue(trial)
        raise _Interrupted

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
            info = {"sweep": self.sweep.spec.name, "trial": trial.number, "status": status, "reason": reason,
                    "metric": self.sweep.spec.metric, "value": value, "params": trial.user_attrs.get("settings")}  # fmt: skip
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
    for k in range(1, count + 1):
        cmd = [sys.executable, "-m", "dltui", "sweep", "--join", str(sweep.dir), "--worker", *args]
        if sweep._recorded_storage() != DATABASE:
            cmd += ["--storage", sweep.url]  # the password too: the file above holds none
        if seeds[k - 1] is not None:
            cmd += ["--sampler-seed", str(seeds[k - 1])]
        log = open(sweep.dir / f"worker-{k}.log", "ab")  # noqa: SIM115 - the child holds it
        try:
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        finally:
            log.close()
    return procs


# --- reading, for viewers: no Optuna, no torch ---


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def read_sweep(path: Path) -> dict[str, Any]:
    """sweep.json as written ({} when absent or unreadable)."""
    return _read_json(Path(path) / SWEEP_FILE)


def read_leaderboard(path: Path) -> list[dict[str, str]]:
    """leaderboard.csv's rows, best first, as text ([] while it is not written yet)."""
    try:
        with open(Path(path) / LEADERBOARD, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []
