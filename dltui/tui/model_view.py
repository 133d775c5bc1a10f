"""The Model view: the layers, output shapes and parameters of the model chosen in Setup
(or of the attached run), with its totals, for its dataset. Summaries are made in a thread
worker (50-300 ms: a model is built and run once) and kept per (model, dataset)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker

WAITING = "the model menu fills once torch is loaded…"


class ModelView(VerticalScroll):
    """Told by the app what Setup and the attached run hold (``follow_setup``,
    ``follow_run``); summarises only while it is on screen."""

    DEFAULT_CSS = """
    ModelView #model-summary {
        width: auto;
        text-wrap: nowrap;
    }
    """

    @dataclass
    class Summarized(Message):
        """A summary (or why there is none) for ``key``, from the worker."""

        key: tuple[str, str]
        summary: Any  # dltui.models.summary.ModelSummary, or None with ``error``
        error: str = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setup: tuple[str, str] | None = None  # (model, dataset) of Setup's menus
        self.run: tuple[str, str] | None = None  # ... of the attached run
        self.wanted: tuple[str, str] | None = None  # the one to show
        self.origin = ""  # whose choice it is, for the title: "Setup's choice" or "the attached run"
        self.pending: tuple[str, str] | None = None  # being summarised by the worker
        self.cache: dict[tuple[str, str], ModelView.Summarized] = {}

    def compose(self):
        yield Static(Text(WAITING, style="dim"), id="model-summary")

    def follow_setup(self, model: str | None, dataset: str | None) -> None:
        """Setup's menus changed. The latest choice wins, but the model menu's first fill
        (when torch has loaded) is no choice: it does not replace an attached run's model."""
        choice = (model, dataset) if model and dataset else None
        if choice == self.setup:
            return  # one change of the menus posts several events
        first_fill, self.setup = self.setup is None, choice
        if self.setup is not None and (not first_fill or self.run is None):
            self._want(self.setup, "Setup's choice")

    def follow_run(self, model: str, dataset: str) -> None:
        """A run was attached (or continued): show its model."""
        self.run = (model, dataset)
        self._want(self.run, "the attached run")

    def _want(self, key: tuple[str, str], origin: str) -> None:
        self.wanted, self.origin = key, origin
        if self.display and self.is_on_screen:  # else when it is next shown
            self._update()

    def on_show(self) -> None:
        self._update()

    def _update(self) -> None:
        if self.wanted is None:
            self._body(Text(WAITING, style="dim"))
        elif self.wanted in self.cache:
            self._present(self.cache[self.wanted])
        elif self.wanted != self.pending:
            self.pending = self.wanted  # a newer choice cancels an older one's worker (exclusive)
            model, dataset = self.wanted
            self._body(Text(f"summarising {model} on {dataset}…", style="dim"))
            self._summarize(self.wanted)

    @work(thread=True, exclusive=True, exit_on_error=False, group="summary", description="summarising a model")
    def _summarize(self, key: tuple[str, str]) -> None:
        from dltui.errors import DltuiError
        from dltui.models.summary import summarize

        try:
            message = self.Summarized(key, summarize(*key))
        except DltuiError as exc:  # a pair that does not fit, a dataset not built in
            message = self.Summarized(key, None, f"no summary: {exc}")
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    @on(Summarized)
    def _summarized(self, message: Summarized) -> None:
        message.stop()
        self.cache[message.key] = message
        if message.key == self.pending:
            self.pending = None
        if message.key == self.wanted:
            self._present(message)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """An unexpected failure (a bug, a broken install) is said in the view, not raised."""
        if event.worker.group == "summary" and event.state == WorkerState.ERROR:
            event.stop()
            error = event.worker.error
            self.pending = None
            self._body(Text(f"cannot summarise: {type(error).__name__}: {error}", style="red"))

    def _present(self, result: Summarized) -> None:
        from dltui.models.summary import summary_table, summary_title, summary_totals

        if result.summary is None:
            self._body(Text(result.error, style="red"))
            return
        s = result.summary
        title = Text(summary_title(s), style="bold")
        title.append(f" · {self.origin}", style="dim")
        totals = Text("\n".join(summary_totals(s)))
        self._body(Group(title, totals, Text(""), summary_table(s)))

    def _body(self, renderable: Any) -> None:
        self.query_one("#model-summary", Static).update(renderable)
