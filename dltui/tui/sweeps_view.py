"""Sweeps in the app: a sweep's trials as one row of the Runs tab, its leaderboard (tab 9),
and what the Setup form needs to start one.

A sweep is a directory (see dltui/sweep_board.py): sweep.json says what is swept,
leaderboard.csv ranks the trials (the sweep process rewrites it as trials start and end),
and each trial is an ordinary run directory one level down, which dltui.runs.scan lists
already. The app reads those files at its scan cadence, again only when they changed on
disk; it never opens the study (no Optuna in the app).
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from dltui.runs import COLOURS, GLYPHS, RunInfo, read_run
from dltui.sweep_board import DEFAULT_TRIALS, LEADERBOARD, SWEEP_FILE, is_sweep_dir, read_leaderboard, read_sweep
from dltui.tui.state import duration, shown_path

GLYPH = {**GLYPHS, "pruned": "✂"}
COLOUR = {**COLOURS, "pruned": "yellow"}
ORDER = {"finished": 0, "pruned": 1, "running": 2, "failed": 3, "stopped": 4, "crashed": 5}  # the leaderboard's
DONE = ("finished", "pruned", "failed")  # a trial that used up one of the sweep's (stopped, crashed: run again)
LOG = "sweep.log"  # what a sweep the app started printed, in its directory


# --- messages: a sweep to open, start, continue or stop ---


@dataclass
class SweepChosen(Message):
    """Show this sweep's leaderboard."""

    path: Path


@dataclass
class SweepRequested(Message):
    """The Setup form asks for `dltui sweep ARGS` (its fields as typed, lists and ranges kept)."""

    args: list[str]


@dataclass
class SweepResumeRequested(Message):
    path: Path


@dataclass
class SweepStopRequested(Message):
    """Stop the sweep: its process when this app started it, else the processes of its
    running trials (a trial runs inside its sweep worker)."""

    path: Path
    running: list[Path]


# --- reading a sweep directory ---


@dataclass
class Board:
    """A sweep directory as last read: sweep.json ({} while the sweep is starting) and
    leaderboard.csv's rows (text, best first)."""

    path: Path
    spec: dict[str, Any]
    rows: list[dict[str, str]]

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or self.path.name)

    @property
    def metric(self) -> str:
        return str(self.spec.get("metric") or "val_acc")

    @property
    def maximize(self) -> bool:
        return self.spec.get("direction", "maximize") == "maximize"

    @property
    def fields(self) -> list[str]:
        return [str(d.get("field")) for d in self.spec.get("space") or [] if isinstance(d, dict)]

    @property
    def target(self) -> int:
        try:
            return int(self.spec.get("trials") or 0)
        except (TypeError, ValueError):
            return 0

    def best(self) -> dict[str, str] | None:
        return self.rows[0] if self.rows and self.rows[0].get("rank") == "1" else None


_read: dict[Path, tuple[tuple[Any, ...], Board]] = {}


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def read_board(path: Path) -> Board:
    """sweep.json and leaderboard.csv, read again only when either changed on disk (the
    sweep process replaces leaderboard.csv atomically: a new file, a new stamp)."""
    path = Path(path)
    stamp = (_stamp(path / SWEEP_FILE), _stamp(path / LEADERBOARD))
    cached = _read.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    board = Board(path, read_sweep(path), read_leaderboard(path))
    _read[path] = (stamp, board)
    return board


def number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def live_rows(board: Board) -> list[dict[str, str]]:
    """The leaderboard's rows with what the files of its running trials say now: epochs
    done (leaderboard.csv changes only when a trial starts or ends), and a status other
    than running when the trial's process is gone (the sweep was killed)."""
    rows = []
    for row in board.rows:
        if row.get("status") == "running" and row.get("run_dir"):
            info = read_run(Path(row["run_dir"]))
            if info is not None:
                done, took = str(info.epochs_done), f"{info.wall_s:.2f}"
                row = {**row, "epochs_done": done, "epochs": str(info.epochs), "seconds": took}
                if info.status != "running":
                    row["status"] = info.status
        rows.append(row)
    return rows


# --- the Runs tab: one row a sweep ---


@dataclass
class SweepGroup:
    """A sweep as one row of the Runs tab; its trials (run directories here) follow it
    when it is open."""

    board: Board
    trials: list[RunInfo]  # leaderboard order, then the ones it does not list yet
    statuses: dict[str, str]  # trial run directory -> status (pruned is the leaderboard's word)
    counts: dict[str, int]  # status -> trials, those of other machines included
    started: float
    alive: bool = False  # this app started its process, which still runs
    seconds: float = 0.0

    @property
    def path(self) -> Path:
        return self.board.path

    @property
    def label(self) -> str:
        """Its name; for a default name (sweep-<time>: the row shows the time) its data's."""
        name = self.board.name
        if re.fullmatch(r"sweep-\d{8}-\d{6}(-\d+)?", name):
            dataset = str((self.board.spec.get("fixed") or {}).get("dataset") or "")
            return Path(dataset).name or name
        return name

    @property
    def done(self) -> int:
        return sum(n for status, n in self.counts.items() if status in DONE)

    @property
    def status(self) -> str:
        if self.counts.get("running") or (self.alive and self.done < self.board.target):
            return "running"
        if self.board.target and self.done >= self.board.target:
            return "finished"
        return "stopped" if self.counts or self.board.spec else "crashed"

    @property
    def best(self) -> float | None:
        best = self.board.best()
        return number(best.get(self.board.metric)) if best else None


def group_runs(runs: list[RunInfo], root: Path, alive: set[Path] | frozenset[Path] = frozenset()) -> list[Any]:
    """``runs`` (newest first) with each sweep's trials folded into one SweepGroup, placed
    where its newest trial (or its creation) is. A sweep under ``root`` with no trial yet
    is listed too. ``alive``: the sweep directories (resolved) whose process this app runs."""
    sweeps: dict[Path, list[RunInfo]] = {}
    with contextlib.suppress(OSError):
        for entry in sorted(Path(root).iterdir()):
            with contextlib.suppress(OSError):
                if is_sweep_dir(entry):
                    sweeps[entry] = []
    loose: list[Any] = []
    for run in runs:
        parent = run.path.parent
        if parent not in sweeps and parent != Path(root) and is_sweep_dir(parent):
            sweeps[parent] = []  # a trial attached from outside the root (dltui watch)
        sweeps.get(parent, loose).append(run)
    groups = [_group(read_board(path), trials, alive) for path, trials in sweeps.items()]
    entries = loose + groups
    entries.sort(key=lambda e: e.started, reverse=True)  # stable: runs keep scan's order
    return entries


def _group(board: Board, trials: list[RunInfo], alive: set[Path] | frozenset[Path]) -> SweepGroup:
    # trials are matched by their directory's name: leaderboard.csv holds absolute paths, on
    # the machine that ran each trial; the runs root may be relative, or mounted elsewhere
    listed = {Path(row.get("run_dir") or f"#{row.get('trial')}").name: row for row in board.rows}
    order = {name: i for i, name in enumerate(listed)}
    trials = sorted(trials, key=lambda r: (order.get(r.name, len(order)), r.name))
    statuses: dict[str, str] = {}
    for run in trials:
        said = listed.get(run.name, {}).get("status")
        # the leaderboard names pruned trials; while it says running, the run's own lock decides
        statuses[str(run.path)] = said if said and said != "running" else run.status
    here = {run.name for run in trials}
    counts = Counter(statuses.values())
    counts.update(row.get("status", "?") for name, row in listed.items() if name not in here)  # other machines'
    created = number(str(board.spec.get("created", ""))) or 0.0
    started = max([created, *(r.started for r in trials)])
    seconds = sum(number(row.get("seconds")) or 0.0 for row in board.rows)
    return SweepGroup(board, trials, statuses, dict(counts), started, board.path.resolve() in alive, seconds)


def flatten(entries: list[Any], expanded: set[str] | None) -> list[tuple[str, Any, SweepGroup | None]]:
    """The Runs tab's rows: (key, RunInfo or SweepGroup, the trial's group). A group's
    trials follow it when its key is in ``expanded`` (every group's when None)."""
    rows: list[tuple[str, Any, SweepGroup | None]] = []
    for entry in entries:
        key = str(entry.path)
        rows.append((key, entry, None))
        if isinstance(entry, SweepGroup) and (expanded is None or key in expanded):
            rows += [(str(run.path), run, entry) for run in entry.trials]
    return rows


def counts_text(counts: dict[str, int]) -> Text:
    """'4✓ 2✂ 1▶': trials per status, in the leaderboard's order."""
    text = Text()
    for status in sorted(counts, key=lambda s: ORDER.get(s, 9)):
        if text:
            text.append(" ")
        text.append(f"{counts[status]}{GLYPH.get(status, '?')}", style=COLOUR.get(status, "white"))
    return text


def when(t: float) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(t)) if t else "?"


def group_cells(group: SweepGroup, expanded: bool, masked: bool) -> list[Any]:
    """The Runs tab's cells of a sweep: ▸ its name, trials done / asked for, the best
    trial's metric, the time its trials took, and trials per status."""
    colour = COLOUR.get(group.status, "white")
    best = group.best
    return [
        "",
        Text(GLYPH.get(group.status, "?"), style=f"bold {colour}"),
        f"{'▾' if expanded else '▸'} {'··' if masked else when(group.started)} {group.label}"[:24],
        f"{group.done}/{group.board.target or '?'}",
        "-" if best is None else f"{best:.4f}",
        "",
        "··" if masked else duration(group.seconds),
        counts_text(group.counts),
    ]


def trial_name(run: RunInfo, last: bool) -> str:
    """'  ├ 3 mlp-lr0.1': a trial under its sweep's row."""
    m = re.fullmatch(r"trial-0*(\d+)-(.*)", run.name)
    name = f"{m.group(1)} {m.group(2)}" if m else run.name
    return f"  {'└' if last else '├'} {name}"[:24]


# --- the Setup form: lists and ranges make a sweep ---


def _given(raw: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in raw.items() if k not in ("out", "monitor")}  # the sweep sets both


def sweep_shape(raw: dict[str, object]) -> tuple[bool, int | None]:
    """Whether the form asks for a sweep (a field holds a list or a range, even a malformed
    one), and its grid size (None: a range, or not known yet)."""
    from dltui.errors import ConfigError
    from dltui.sweep_space import split_flags

    try:
        _, space = split_flags(_given(raw))
    except ConfigError:  # only text with a ',' or '..' gets this far: a list or range being typed
        return True, None
    return (True, space.grid_size) if space.dims else (False, None)


def trials_count(text: str, grid: int | None) -> int | None:
    """The trials field: None when blank (the grid's size, else DEFAULT_TRIALS)."""
    from dltui.config import number as to_number
    from dltui.errors import ConfigError

    if not text.strip():
        return None
    top = grid or 100_000
    n = to_number("trials", text, int, f"a whole number from 1 to {top}")
    if not 1 <= n <= top:
        why = f"1 to {grid}: a grid tries each of its points once" if grid else "a whole number >= 1"
        raise ConfigError("trials", f"{n} is out of range ({why})")
    return n


def check_form(raw: dict[str, object], trials: str = "") -> Any:
    """make_config for a form whose fields may hold lists and ranges: each field's text
    through sweep_space.parse, then make_config for every listed value and each range's
    ends (the other swept fields at their first value), then the trials count. Returns the
    config of the first values (the Model view's); raises the first ConfigError, which
    names the field to mark. A form with one value a field is make_config's alone."""
    from dltui.resolve import make_config
    from dltui.sweep_space import split_flags

    fixed, space = split_flags(_given(raw))
    if not space.dims:
        return make_config(**raw)
    first = {d.field: d.probes()[0] for d in space.dims}
    config = None
    for dim in space.dims:
        for value in dim.probes():
            built = make_config(**{**fixed, **first, dim.field: value})
            config = config or built
    trials_count(trials, space.grid_size)
    return config


def sweep_args(raw: dict[str, object], trials: str = "") -> list[str]:
    """`dltui sweep` flags for the form's settings as typed (lists and ranges kept as text),
    then --trials when given."""
    args: list[str] = []
    for key, value in _given(raw).items():
        if key in ("threads", "graph", "data_schema") or value is None or value == "":
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is False:
            args += ["--no-augment"] if key == "augment" else []
        else:
            args += [flag, str(value)]
    return args + (["--trials", trials.strip()] if trials.strip() else [])


def trials_hint(grid: int | None) -> str:
    return f"blank: {grid}, every point of the grid" if grid else f"blank: {DEFAULT_TRIALS}"


def new_sweep_dir(root: Path) -> Path:
    """runs/sweep-<time>, as `dltui sweep` names one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = Path(root) / f"sweep-{stamp}", 2
    while path.exists():
        path, n = Path(root) / f"sweep-{stamp}-{n}", n + 1
    return path


def resume_refusal(board: Board, running: bool) -> str | None:
    """Why `dltui sweep --resume` would do nothing for this sweep (None: it would)."""
    if not board.spec:
        return "no sweep.json here: the sweep never started"
    if running:
        return "this sweep is running: s stops it"
    done = sum(1 for row in board.rows if row.get("status") in DONE)
    if board.target and done >= board.target:
        return (f"all {board.target} trials ran; more with `dltui sweep --resume {shown_path(str(board.path))} "
                f"--trials N`")  # fmt: skip
    return None


# --- the leaderboard (tab 9) ---


def _sort_value(row: dict[str, str], key: str) -> tuple[int, float, str]:
    if key == "status":
        return 0, ORDER.get(row.get("status", ""), 9), ""
    text = row.get(key, "")
    value = number(text)
    return (0, value, "") if value is not None else (1, 0.0, text.lower())


class LeaderboardTable(DataTable):
    """One row a trial, in leaderboard.csv's order until sorted otherwise. Enter attaches
    to the trial, space marks, c compares the marked trials, o sorts by the next column."""

    BINDINGS = [
        Binding("enter", "attach", "Attach"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("o", "sort", "Sort"),
        Binding("O", "sort_back", "Reverse", show=False),
        Binding("s", "stop", "Stop sweep"),
        Binding("r", "resume", "Resume"),
    ]

    @dataclass
    class Chosen(Message):
        """Attach to this trial's run directory."""

        path: Path

    @dataclass
    class CompareRequested(Message):
        paths: list[Path]

    def __init__(self, masked: bool = False, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.masked = masked
        self.board: Board | None = None
        self.source: list[dict[str, str]] = []  # leaderboard.csv's order
        self.trials: list[dict[str, str]] = []  # as shown, sorted
        self.alive = False  # this app started the sweep's process, which still runs
        self.marked: set[str] = set()
        self.sort_key = "rank"  # "rank": leaderboard.csv's order
        self.reverse = False
        self._shown: Any = None

    # --- what is shown ---

    def sort_keys(self) -> list[str]:
        board = self.board
        if board is None:
            return ["rank"]
        return ["rank", board.metric, *board.fields, "epochs_done", "seconds", self._test_key(), "status"]

    def _test_key(self) -> str:
        return "test_loss" if self.board is not None and not self.board.metric.endswith("acc") else "test_acc"

    def _columns(self) -> list[tuple[str, str]]:
        board = self.board
        assert board is not None
        test = "test acc" if self._test_key() == "test_acc" else "test loss"
        return [
            ("mark", ""), ("rank", "#"), ("trial", "trial"), (board.metric, board.metric),
            *((f, f.replace("_", " ")) for f in board.fields),
            ("epochs_done", "epochs"), ("seconds", "time"), (self._test_key(), test), ("status", "status"),
        ]  # fmt: skip

    def sort_label(self) -> str:
        """'lr ↑' (small to large), 'val_acc ↓'; 'rank' for the leaderboard's own order."""
        if self.sort_key == "rank":
            return "rank, reversed" if self.reverse else "rank"
        name = dict(self._columns()).get(self.sort_key, self.sort_key) if self.board is not None else self.sort_key
        return f"{name} {'↓' if self._descending() else '↑'}"

    def _descending(self) -> bool:
        # best first by the metric and test accuracy, otherwise small to large (until reversed)
        board = self.board
        best_first = self.sort_key == "test_acc" or (board is not None and self.sort_key == board.metric)
        down = best_first and (self.sort_key == "test_acc" or bool(board and board.maximize))
        return down != self.reverse

    @staticmethod
    def key(row: dict[str, str]) -> str:
        return row.get("run_dir") or f"trial-{row.get('trial', '?')}"

    def _sorted(self, rows: list[dict[str, str]]) -> list[dict[str, str]]:
        if self.sort_key == "rank":
            return rows[::-1] if self.reverse else list(rows)
        blank = [r for r in rows if not r.get(self.sort_key, "").strip()]  # last either way
        rest = [r for r in rows if r.get(self.sort_key, "").strip()]
        rest.sort(key=lambda r: _sort_value(r, self.sort_key), reverse=self._descending())
        return rest + blank

    def _cells(self, row: dict[str, str]) -> list[Any]:
        board = self.board
        assert board is not None
        status = row.get("status", "")
        value = lambda k: "-" if number(row.get(k)) is None else f"{number(row.get(k)):.4f}"  # noqa: E731
        seconds = number(row.get("seconds"))
        took = "-" if seconds is None else f"{seconds:.2f}s" if seconds < 60 else duration(seconds)
        done, total = row.get("epochs_done", ""), row.get("epochs", "")
        return [
            Text("●", style="bold magenta") if self.key(row) in self.marked else "",
            row.get("rank") or "-",
            row.get("trial", ""),
            value(board.metric),
            *(row.get(f, "") for f in board.fields),
            f"{done}/{total}" if total else done,
            "··" if self.masked else took,
            value(self._test_key()),
            Text(status, style=COLOUR.get(status, "white")),
        ]

    def show(self, board: Board, rows: list[dict[str, str]]) -> None:
        """Show ``rows`` of ``board`` (sorted as chosen), keeping the cursor's trial; the
        table is rebuilt only when something it shows changed."""
        keep = self.selected_key()  # before self.trials changes: the cursor follows its trial
        if self.board is None or board.path != self.board.path:
            self.marked, self.sort_key, self.reverse = set(), "rank", False
        self.board, self.source = board, rows
        trials = self._sorted(rows)
        cells = [self._cells(r) for r in trials]
        shown = (self._columns(), [self.key(r) for r in trials], cells)
        self.trials = trials
        if shown == self._shown:
            return
        self._shown = shown
        self.clear(columns=True)
        for key, label in self._columns():
            self.add_column(label, key=key)
        for row, line in zip(trials, cells, strict=True):
            self.add_row(*line, key=self.key(row))
        keys = [self.key(r) for r in trials]
        if keep in keys:
            self.move_cursor(row=keys.index(keep))
        self.marked &= set(keys)

    def selected_key(self) -> str | None:
        if not self.trials or self.cursor_row is None or not 0 <= self.cursor_row < len(self.trials):
            return None
        return self.key(self.trials[self.cursor_row])

    def _running_trials(self) -> list[Path]:
        return [Path(r["run_dir"]) for r in self.trials if r.get("status") == "running" and r.get("run_dir")]

    # --- keys ---

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("attach", "mark"):
            return self.selected_key() is not None or None
        running = self.alive or bool(self._running_trials())
        if action == "stop":
            return self.board is not None and running
        if action == "resume":
            return self.board is not None and resume_refusal(self.board, running) is None
        return True

    def action_attach(self) -> None:
        key = self.selected_key()
        if key is None:
            return
        row = self.trials[self.cursor_row]
        path = Path(row.get("run_dir") or "")
        if not row.get("run_dir") or not path.is_dir():
            host = row.get("host") or "another machine"
            self.app.notify(f"trial {row.get('trial')} ran on {host}: its run directory is not here", timeout=5)
            return
        self.post_message(self.Chosen(path))

    def action_mark(self) -> None:
        key = self.selected_key()
        if key is None:
            return
        self.marked ^= {key}
        row = self.cursor_row
        self.update_cell(key, "mark", self._cells(self.trials[row])[0])
        self._shown = None  # the marks are part of what is shown
        self.move_cursor(row=min(row + 1, len(self.trials) - 1))

    def action_compare(self) -> None:
        paths = [Path(r["run_dir"]) for r in self.trials if self.key(r) in self.marked and r.get("run_dir")]
        self.post_message(self.CompareRequested(paths))

    def action_sort(self) -> None:
        keys = self.sort_keys()
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)] if self.sort_key in keys else "rank"
        self.reverse = False
        self._resort()

    def action_sort_back(self) -> None:
        self.reverse = not self.reverse
        self._resort()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = str(event.column_key.value)
        if key == "mark":
            return
        if key == "trial":
            key = "rank"
        self.reverse = not self.reverse if key == self.sort_key else False
        self.sort_key = key
        self._resort()

    def _resort(self) -> None:
        if self.board is not None:
            self.show(self.board, self.source)
        self.post_message(SweepBoard.Sorted())

    def action_stop(self) -> None:
        if self.board is not None:
            self.post_message(SweepStopRequested(self.board.path, self._running_trials()))

    def action_resume(self) -> None:
        if self.board is not None:
            self.post_message(SweepResumeRequested(self.board.path))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_attach()

    def on_data_table_row_highlighted(self) -> None:
        self.refresh_bindings()


EMPTY = (
    "No sweep open. Enter on a sweep (▸) in Runs (1) shows its leaderboard here; in Setup (2), "
    "several values in a field (learning rate 0.1,0.01 or 1e-4..1e-1:log) start one."
)


class SweepBoard(Vertical):
    """The leaderboard of one sweep: a line on the sweep, the table, and the best trial as
    a `dltui run` command. ``poll`` (the app's scan) re-reads the files when they change."""

    DEFAULT_CSS = """
    SweepBoard #sweep-head { height: auto; }
    SweepBoard LeaderboardTable { height: 1fr; }
    SweepBoard #sweep-best { height: auto; max-height: 4; color: $text-muted; }
    """

    class Sorted(Message):
        """The sort changed: the head line says by what."""

    def __init__(self, masked: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.masked = masked
        self.path: Path | None = None
        self.board: Board | None = None
        self._failed: str | None = None  # the start's error, said once

    def compose(self) -> ComposeResult:
        yield Static(EMPTY, id="sweep-head")
        yield LeaderboardTable(masked=self.masked, id="leaderboard")
        yield Static("", id="sweep-best")

    def open(self, path: Path) -> None:
        self.path, self.board, self._failed = Path(path), None, None
        self.poll()

    def poll(self, alive: bool = False) -> None:
        """Show what the sweep's files say now (cheap when they did not change). ``alive``:
        this app started the sweep's process, which still runs."""
        if self.path is None:
            return
        board = read_board(self.path)
        self.board = board
        table = self.query_one(LeaderboardTable)
        if alive != table.alive:
            table.alive = alive
            table.refresh_bindings()
        if board.spec:
            table.show(board, live_rows(board))
        self._head(board, table)

    def on_sweep_board_sorted(self, message: Sorted) -> None:
        message.stop()
        if self.board is not None:
            self._head(self.board, self.query_one(LeaderboardTable))

    def _head(self, board: Board, table: LeaderboardTable) -> None:
        head, best = self.query_one("#sweep-head", Static), self.query_one("#sweep-best", Static)
        where = "··" if self.masked else shown_path(str(board.path))
        if not board.spec:
            line = last_line(board.path / LOG)
            if line.startswith("dltui: error:"):
                head.update(Text(f"the sweep in {where} did not start: {line.removeprefix('dltui: error: ')}",
                                 style="red"))  # fmt: skip
                if self._failed != line:
                    self._failed = line
                    self.app.notify(line.removeprefix("dltui: error: "), title="Sweep not started", severity="error")
            else:
                head.update(Text(f"starting the sweep in {where}… {line}".rstrip(), style="dim"))
            best.update("")
            return
        counts = Counter(r.get("status", "?") for r in table.trials)
        done = sum(n for s, n in counts.items() if s in DONE)
        how = f"grid of {board.spec.get('grid_size')}" if board.spec.get("sampler") == "grid" else "TPE"
        text = Text.assemble((board.name, "bold"), f" · {how} · ranked by {board.metric}")
        text.append(f" · {done}/{board.target or '?'} trials")
        if counts:
            text.append(": ")
            for i, status in enumerate(sorted(counts, key=lambda s: ORDER.get(s, 9))):
                text.append(("" if i == 0 else " ") + f"{counts[status]} {status}", style=COLOUR.get(status, "white"))
        text.append(f" · sort: {table.sort_label()}", style="dim")
        head.update(text)
        top = board.best()
        if top is None:
            best.update("")
            return
        value = number(top.get(board.metric))
        said = f"{board.metric} {value:.4f}" if value is not None else board.metric
        best.update(Text(f"best: trial {top.get('trial')}, {said} · {_command(board, top)}"))


def _command(board: Board, row: dict[str, str]) -> str:
    from dltui.sweep_board import SweepSpec, run_command

    try:
        return run_command(SweepSpec.from_dict(board.spec), {f: row.get(f, "") for f in board.fields})
    except (KeyError, TypeError, ValueError):
        return ""


def last_line(path: Path) -> str:
    """The last non-blank line of a log, for a one-line reason (the app and the board)."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""
