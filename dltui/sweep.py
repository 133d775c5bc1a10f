"""Hyperparameter sweeps: many runs of one dataset, searched and pruned by Optuna.

A sweep is a directory and an Optuna study. The study is its storage (SQLite ``sweep.db``
in the directory by default, or a PostgreSQL/MySQL URL that many machines share); workers
are plain processes that open the same storage and take trials from it. The sampler (grid
or TPE) and the median pruner are Optuna's objects: this module only turns a trial's
settings into an ordinary run (``engine.train``) and reports its per-epoch validation
metric back. Nothing is ever chosen by the test split.

The files a sweep leaves for viewers are described in :mod:`dltui.sweep_board`; what may
be swept in :mod:`dltui.sweep_space`; one trial in :mod:`dltui.sweep_trial`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltui.config import MONITORS, choose, number, user_path
from dltui.errors import EXIT_USAGE, ConfigError, DltuiError
from dltui.sweep_board import (
    DATABASE,
    DEFAULT_TRIALS,
    LEADERBOARD,
    SWEEP_FILE,
    SweepSpec,
    TrialRow,
    pruner_settings,
    rank,
    read_json,
    run_command,
    write_leaderboard,
)
from dltui.sweep_space import Space, flag, fmt, split_flags

if TYPE_CHECKING:
    import optuna

STUDY_ATTR = "dltui_sweep"  # the spec, kept in the study so a worker given only a URL has it
VAL_FRACTION = "0.1"  # what a sweep holds out when --val-fraction is not given
HEARTBEAT_S = 30  # a worker's trial shows it is alive this often; after GRACE_S without, it is failed and retried
GRACE_S = 120
SQLITE_TIMEOUT_S = 60  # how long a worker waits for another's write to the SQLite file


class SweepError(DltuiError):
    """A sweep cannot be started or joined as asked (exit 2)."""

    exit_code = EXIT_USAGE


# --- storage ---


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our leaderboard says what happened
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def shown_url(url: str) -> str:
    """``url`` without its password (libpq still finds one in PGPASSWORD or ~/.pgpass)."""
    try:
        from sqlalchemy.engine import URL, make_url

        u = make_url(url)
        bare = URL.create(u.drivername, u.username, None, u.host, u.port, u.database, u.query)
        return bare.render_as_string(hide_password=False)
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
    return optuna.pruners.MedianPruner(**spec.pruner)


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


def _trials(raw: Any, space: Space) -> int:
    n = number("trials", raw, int, "a whole number >= 1")
    grid = space.grid_size
    if grid is not None and not 1 <= n <= grid:
        raise ConfigError("trials", f"{n} is out of range (1 to {grid}: a grid tries each of its points once)")
    if n < 1:
        raise ConfigError("trials", f"{n} is out of range (a whole number >= 1)")
    return n


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
            "nothing to sweep: give a flag several values, as a list (--model softmax,mlp) "
            "or a range (--lr 1e-4..1e-1:log)"
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
    n = _trials(n, space)
    directory = (user_path("out", out) if out else default_sweep_dir(name)).absolute()
    if (directory / SWEEP_FILE).exists():
        raise SweepError(f"'{directory}' already holds a sweep (continue it with --resume {directory})")
    study_name = name or directory.name
    spec = SweepSpec(
        study_name, metric, n, fixed, space, seed=int(cfg.seed), prune=prune, pruner=pruner_settings(n, cfg.epochs),
        storage=shown_url(storage) if storage else DATABASE, created=time.time(), host=socket.gethostname(),
        command=command,
    )  # fmt: skip
    holder = _Stale()
    store = open_storage(storage, holder) if storage else None  # a database refusing us leaves no directory
    made = not directory.exists()
    _make_dir(directory)
    url = storage or storage_url(DATABASE, directory)
    try:
        store = store or open_storage(url, holder)
        study = optuna.create_study(
            storage=store, study_name=study_name, direction=spec.direction,
            sampler=_sampler(spec, spec.seed if sampler_seed is None else sampler_seed), pruner=_pruner(spec),
        )  # fmt: skip
    except BaseException as exc:
        if made:  # nothing of ours is in it yet but the empty study
            shutil.rmtree(directory, ignore_errors=True)
        if isinstance(exc, optuna.exceptions.DuplicatedStudyError):
            raise SweepError(
                f"{shown_url(url)} already holds a sweep named '{study_name}' "
                f"(join it with --join {shown_url(url)} --name {study_name}, or pick another --name)"
            ) from None
        raise
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
        recorded = read_json(directory / SWEEP_FILE)
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
        spec.trials = _trials(trials, spec.space)
        study.set_user_attr(STUDY_ATTR, spec.to_dict())
    if directory is None:
        directory = (user_path("out", out) if out else default_sweep_dir(name)).absolute()
        mine = read_json(directory / SWEEP_FILE)
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
        from dltui.sweep_trial import Interrupted, Objective, Surplus, TrialFailed

        self.reclaim()
        if self.remaining() == 0:
            return "done"
        objective = Objective(self, threads, should_stop, on_event or (lambda n, e: None))

        def after(study: Any, frozen: Any) -> None:
            with contextlib.suppress(OSError):  # a full disk loses the file, not the sweep
                self.write_leaderboard()
            if on_trial is not None:
                on_trial(frozen)
            if self.remaining() == 0 or should_stop():
                study.stop()

        started = time.monotonic()
        try:
            while True:
                try:
                    self.study.optimize(objective, timeout=timeout_s, catch=(TrialFailed,), callbacks=[after])
                    break
                except ValueError as exc:
                    # another worker already ended this trial (its reclaim or Optuna's stale-heartbeat
                    # check judged it dead while this one was busy): leave it as they recorded it
                    if "Cannot tell" not in str(exc) or self.remaining() == 0 or should_stop():
                        if "Cannot tell" in str(exc):
                            break
                        raise
        except Interrupted:
            return "stopped"
        except Surplus:
            return "done"
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError

            if not isinstance(exc, SQLAlchemyError):
                raise
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise SweepError(f"the sweep's storage {shown_url(self.url)} failed ({reason})") from None
        finally:
            with contextlib.suppress(OSError):
                self.write_leaderboard()
        if should_stop():
            return "stopped"
        if self.remaining() and timeout_s is not None and time.monotonic() - started >= timeout_s:
            return "timeout"
        return "done"  # full, or a grid with every point taken

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
