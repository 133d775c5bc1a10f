"""Modal screens: the key list (?) and the quit confirmation while a run is going."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("r / enter", "start a run (from the form: enter in any field)"),
    ("s", "stop the run (within one batch)"),
    ("1 … 5", "Setup · Charts · Confusion · Samples · Log"),
    ("tab / shift+tab", "move between fields and panes"),
    ("x", "charts: clear the previous run's grey curves"),
    ("arrows, enter", "confusion: move, show that cell's items"),
    ("n", "samples: draw a new sample"),
    ("m", "samples: mistakes only / all"),
    ("c", "samples: back from a confusion cell"),
    ("q", "quit (asks first while training)"),
    ("?", "this list"),
)


class KeysScreen(ModalScreen[None]):
    """Every key, in one place."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        with Vertical(id="keys-box", classes="dialog"):
            yield Static("[b]Keys[/b]  (escape closes)")
            yield Static(table)


class ConfirmQuitScreen(ModalScreen[bool]):
    """Quitting mid-run stops the run first, so its directory is left consistent."""

    BINDINGS = [
        Binding("y", "answer(True)", "Stop and quit"),
        Binding("n,escape", "answer(False)", "Keep training"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-box", classes="dialog"):
            yield Static(
                "[b]A run is in progress.[/b]\n\nStop it (completed epochs stay saved) and quit?\n\n"
                "[b]y[/b] stop and quit · [b]n[/b] keep training"
            )

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
