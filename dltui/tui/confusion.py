"""The confusion grid: browse with the arrow keys, press enter (or click) on a cell to see
exactly those test items in the sampler."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget

from dltui.render import confusion_grid, grid_layout


class ConfusionGrid(Widget, can_focus=True):
    """Counts [true][pred] of the latest evaluation, with a cell cursor."""

    BINDINGS = [
        Binding("up", "move(-1, 0)", "Up", show=False),
        Binding("down", "move(1, 0)", "Down", show=False),
        Binding("left", "move(0, -1)", "Left", show=False),
        Binding("right", "move(0, 1)", "Right", show=False),
        Binding("enter", "select", "Show items"),
    ]

    @dataclass
    class CellSelected(Message):
        """The user picked a cell: show the test items with this true and predicted class."""

        true: int
        pred: int

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.matrix: list[list[int]] | None = None
        self.labels: tuple[str, ...] = ()
        self.epoch = 0
        self.note = "no evaluation yet: start a run (r)"
        self.cursor = (0, 0)

    def reset(self, classes: tuple[str, ...], note: str) -> None:
        self.matrix, self.labels, self.note, self.epoch = None, classes, note, 0
        self.cursor = (0, 0)
        self.refresh(layout=True)

    def show(self, matrix: list[list[int]], epoch: int) -> None:
        self.matrix, self.epoch = matrix, epoch
        self.refresh(layout=True)

    @property
    def total(self) -> int:
        return sum(map(sum, self.matrix)) if self.matrix else 0

    def render(self) -> Text:
        if not self.matrix:
            return Text(self.note, style="dim")
        width = max(self.size.width, 40)
        correct = sum(self.matrix[i][i] for i in range(len(self.matrix)))
        text = Text(no_wrap=True, overflow="crop")
        text.append(
            f"{correct / max(self.total, 1):.1%} right · epoch {self.epoch} · {self.total} test items"
            " · rows true, columns predicted"[:width]
            + "\n",
            style="dim",
        )
        cursor = self.cursor if self.has_focus else None
        return text.append_text(confusion_grid(self.matrix, self.labels, width, cursor))

    def get_content_height(self, container, viewport, width: int) -> int:
        return 1 + (len(self.matrix) + 1 if self.matrix else 0)

    def action_move(self, rows: int, cols: int) -> None:
        n = len(self.matrix or [])
        if n:
            r, c = self.cursor
            self.cursor = ((r + rows) % n, (c + cols) % n)
            self.refresh()

    def action_select(self) -> None:
        if self.matrix:
            self.post_message(self.CellSelected(*self.cursor))

    def on_click(self, event: events.Click) -> None:
        if not self.matrix:
            return
        lay = grid_layout(self.labels, self.matrix, max(self.size.width, 40))
        # +1: the summary line above the grid
        cell = lay.cell_at(event.x, event.y - 1, len(self.matrix))
        if cell is not None:
            self.cursor = cell
            self.refresh()
            self.post_message(self.CellSelected(*cell))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
