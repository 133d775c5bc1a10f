"""The Runs tab: every run under the runs root, newest first, live. Enter attaches, space
marks for comparison, c compares the marked runs, r continues a stopped or crashed run,
s stops a running one. A sweep is one row (see sweeps_view.py): → shows its trials under
it, ← hides them, enter opens its leaderboard, r continues it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from dltui.runs import RunInfo
from dltui.tui.state import duration
from dltui.tui.sweeps_view import (
    COLOUR,
    GLYPH,
    SweepChosen,
    SweepGroup,
    SweepResumeRequested,
    flatten,
    group_cells,
    trial_name,
)


def _when(t: float) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(t)) if t else "?"


class RunsTable(DataTable):
    """One row a run or a sweep. The app feeds it fresh lists of RunInfo and SweepGroup;
    rows update in place."""

    BINDINGS = [
        Binding("enter", "attach", "Attach"),
        Binding("enter", "open_sweep", "Leaderboard"),  # on a sweep's row, instead of Attach
        Binding("right", "expand", "Trials"),
        Binding("left", "collapse", "Fold"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("r", "resume", "Resume"),
        Binding("n", "new", "New run"),
    ]

    @dataclass
    class Chosen(Message):
        """Attach to this run."""

        path: Path

    @dataclass
    class CompareRequested(Message):
        paths: list[Path]

    @dataclass
    class ResumeRequested(Message):
        path: Path
        status: str

    class NewRequested(Message):
        pass

    def __init__(self, masked: bool = False, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.masked = masked
        self.items: dict[str, RunInfo | SweepGroup] = {}  # the rows, in order
        self.groups: dict[str, SweepGroup] = {}  # a shown trial's sweep
        self.entries: list[RunInfo | SweepGroup] = []  # as last given
        self.expanded: set[str] = set()  # the sweeps whose trials show
        self.marked: set[str] = set()
        self._shown: dict[str, list[Any]] = {}

    @property
    def runs(self) -> dict[str, RunInfo]:
        """The rows that are runs (a sweep's trials while it is open)."""
        return {key: r for key, r in self.items.items() if isinstance(r, RunInfo)}

    def on_mount(self) -> None:
        # 77 columns with the cells' padding: the status note stays visible at 80x24, even
        # beside a scrollbar
        for label, key, width in (
            ("", "mark", 1), ("st", "st", 2), ("run", "run", 24), ("epoch", "epoch", 7),
            ("best", "best", 6), ("last", "last", 6), ("time", "time", 7), ("", "note", 8),
        ):  # fmt: skip
            self.add_column(label, key=key, width=width)

    def _cells(self, key: str) -> list[Any]:
        r = self.items[key]
        if isinstance(r, SweepGroup):
            return group_cells(r, key in self.expanded, self.masked)
        group = self.groups.get(key)
        status = group.statuses.get(key, r.status) if group else r.status
        colour = COLOUR.get(status, "white")
        acc = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        if group is not None:
            name = trial_name(r, last=r is group.trials[-1])
        else:
            name = f"{'··' if self.masked else _when(r.started)} {r.dataset} · {r.model}"
        return [
            Text("●", style="bold magenta") if str(r.path) in self.marked else "",
            Text(GLYPH.get(status, "?"), style=f"bold {colour}"),
            name[:24],
            epochs_text(r.epochs_done, r.epochs),
            acc(r.best_test_acc),
            acc(r.last_test_acc),
            "··" if self.masked else duration(r.wall_s),
            Text(status if status != "finished" else "", style=colour),
        ]

    def show(self, entries: list[RunInfo | SweepGroup]) -> None:
        """Replace the rows with ``entries`` (already newest first; an open sweep's trials
        follow its row), keeping the cursor's row."""
        keep = self.selected()
        self.entries = entries
        rows = flatten(entries, self.expanded)
        old = list(self.items)
        self.items = {key: item for key, item, _ in rows}
        self.groups = {key: group for key, _, group in rows if group is not None}
        cells = {key: self._cells(key) for key in self.items}
        if list(self.items) != old:
            self.clear()
            for key, line in cells.items():
                self.add_row(*line, key=key)
            if keep is not None and str(keep) in self.items:
                self.move_cursor(row=list(self.items).index(str(keep)))
        else:
            for key, line in cells.items():
                if line != self._shown.get(key):
                    for col, value in zip(self.columns, line, strict=True):
                        self.update_cell(key, col, value)
        self._shown = cells
        self.marked &= {key for key, item, _ in flatten(entries, None) if isinstance(item, RunInfo)}
        self.expanded &= {key for key, item in self.items.items() if isinstance(item, SweepGroup)}

    def selected(self) -> Path | None:
        if not self.items or self.cursor_row is None or self.cursor_row >= len(self.items):
            return None
        return Path(list(self.items)[self.cursor_row])

    def _current(self) -> RunInfo | SweepGroup | None:
        path = self.selected()
        return None if path is None else self.items.get(str(path))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # the footer shows what the cursor's row takes: a sweep's keys, or a run's
        item = self._current()
        on_sweep = isinstance(item, SweepGroup)
        if action == "attach":
            return not on_sweep
        if action == "open_sweep":
            return on_sweep
        if action == "mark":
            return not on_sweep
        if action == "expand":
            return on_sweep and str(self.selected()) not in self.expanded
        if action == "collapse":
            return (on_sweep and str(self.selected()) in self.expanded) or str(self.selected()) in self.groups
        return True

    def action_attach(self) -> None:
        item = self._current()
        if isinstance(item, SweepGroup):
            self.post_message(SweepChosen(item.path))
        elif item is not None:
            self.post_message(self.Chosen(item.path))

    def action_open_sweep(self) -> None:
        self.action_attach()

    def action_expand(self) -> None:
        item = self._current()
        if isinstance(item, SweepGroup):
            self.expanded.add(str(item.path))
            self.show(self.entries)
            self.refresh_bindings()

    def action_collapse(self) -> None:
        path = self.selected()
        if path is None:
            return
        key = str(self.groups[str(path)].path) if str(path) in self.groups else str(path)
        self.expanded.discard(key)
        self.show(self.entries)
        if key in self.items:
            self.move_cursor(row=list(self.items).index(key))
        self.refresh_bindings()

    def action_mark(self) -> None:
        item = self._current()
        if not isinstance(item, RunInfo):
            return
        key = str(item.path)
        self.marked ^= {key}
        self.update_cell(key, "mark", self._cells(key)[0])
        self._shown.pop(key, None)
        self.move_cursor(row=min(self.cursor_row + 1, len(self.items) - 1))

    def action_compare(self) -> None:
        order = [key for key, item, _ in flatten(self.entries, None) if isinstance(item, RunInfo)]
        paths = [Path(k) for k in order if k in self.marked]
        if not paths and self.selected() is not None:
            paths = [self.selected()]
        self.post_message(self.CompareRequested(paths))

    def action_resume(self) -> None:
        item = self._current()
        if isinstance(item, SweepGroup):
            self.post_message(SweepResumeRequested(item.path))
        elif item is not None and str(item.path) in self.groups:
            self.app.notify("a sweep's trial continues with its sweep: r on the sweep's row", timeout=5)
        elif item is not None:
            self.post_message(self.ResumeRequested(item.path, item.status))

    def action_new(self) -> None:
        self.post_message(self.NewRequested())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_attach()

    def on_data_table_row_highlighted(self) -> None:
        self.refresh_bindings()  # a sweep's row and a run's take different keys


def epochs_text(done: int, total: int, width: int = 8) -> str:
    """'12/30', and for long runs thousands as k ('1938/20k', '19k/20k'), never cut into a
    wrong number."""
    k = lambda n: f"{n // 1000}k" if n >= 1000 else str(n)  # noqa: E731
    for text in (f"{done}/{total}", f"{done}/{k(total)}", f"{k(done)}/{k(total)}"):
        if len(text) <= width:
            return text
    return text[: width - 1] + "…"
