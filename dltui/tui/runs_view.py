"""The Runs tab: every run under the runs root, newest first, live. Enter attaches, space
marks for comparison, c compares the marked runs, r continues a stopped or crashed run,
s stops a running one."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from dltui.runs import COLOURS, GLYPHS, RunInfo
from dltui.tui.state import duration


def _when(t: float) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(t)) if t else "?"


class RunsTable(DataTable):
    """One row a run. The app feeds it fresh RunInfo lists; rows update in place."""

    BINDINGS = [
        Binding("enter", "attach", "Attach"),
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
        self.runs: dict[str, RunInfo] = {}
        self.marked: set[str] = set()

    def on_mount(self) -> None:
        # 77 columns with the cells' padding: the status note stays visible at 80x24, even
        # beside a scrollbar
        for label, key, width in (
            ("", "mark", 1), ("st", "st", 2), ("run", "run", 24), ("epoch", "epoch", 7),
            ("best", "best", 6), ("last", "last", 6), ("time", "time", 7), ("", "note", 8),
        ):  # fmt: skip
            self.add_column(label, key=key, width=width)

    def _cells(self, r: RunInfo) -> list[Any]:
        colour = COLOURS.get(r.status, "white")
        acc = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        name = f"{r.dataset} · {r.model}"
        when = "··" if self.masked else _when(r.started)
        return [
            Text("●", style="bold magenta") if str(r.path) in self.marked else "",
            Text(GLYPHS.get(r.status, "?"), style=f"bold {colour}"),
            f"{when} {name}"[:24],
            f"{r.epochs_done}/{r.epochs}",
            acc(r.best_test_acc),
            acc(r.last_test_acc),
            "··" if self.masked else duration(r.wall_s),
            Text(r.status if r.status != "finished" else "", style=colour),
        ]

    def show(self, runs: list[RunInfo]) -> None:
        """Replace the rows with ``runs`` (already newest first), keeping the cursor's run."""
        keep = self.selected()
        new = {str(r.path): r for r in runs}
        if list(new) != list(self.runs):
            self.clear()
            for key, r in new.items():
                self.add_row(*self._cells(r), key=key)
            if keep is not None and str(keep) in new:
                self.move_cursor(row=list(new).index(str(keep)))
        else:
            for key, r in new.items():
                if r != self.runs.get(key):
                    for col, value in zip(self.columns, self._cells(r), strict=True):
                        self.update_cell(key, col, value)
        self.runs = new
        self.marked &= set(new)

    def selected(self) -> Path | None:
        if not self.runs or self.cursor_row is None or self.cursor_row >= len(self.runs):
            return None
        return Path(list(self.runs)[self.cursor_row])

    def action_attach(self) -> None:
        path = self.selected()
        if path is not None:
            self.post_message(self.Chosen(path))

    def action_mark(self) -> None:
        path = self.selected()
        if path is None:
            return
        key = str(path)
        self.marked ^= {key}
        self.update_cell(key, "mark", self._cells(self.runs[key])[0])
        self.move_cursor(row=min(self.cursor_row + 1, len(self.runs) - 1))

    def action_compare(self) -> None:
        paths = [Path(k) for k in self.runs if k in self.marked]
        if not paths and self.selected() is not None:
            paths = [self.selected()]
        self.post_message(self.CompareRequested(paths))

    def action_resume(self) -> None:
        path = self.selected()
        if path is not None:
            self.post_message(self.ResumeRequested(path, self.runs[str(path)].status))

    def action_new(self) -> None:
        self.post_message(self.NewRequested())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_attach()
