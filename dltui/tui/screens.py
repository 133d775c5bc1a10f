"""Modal screens: the key list (?) and the quit question while launched runs train."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("1 … 8", "Runs · Setup · Charts · Confusion · Samples · Log · Dashboard (120×40 and up) · Model"),
    ("enter", "runs: attach to the run (live, or its final state)"),
    ("space, c", "runs: mark runs, compare the marked ones in Charts"),
    ("r", "runs: continue a stopped or crashed run · setup: start a run"),
    ("n", "runs: new run (Setup) · samples: draw a new sample"),
    ("s", "stop the attached run (within one batch)"),
    ("tab / shift+tab", "move between fields and panes"),
    ("x", "charts: back from a comparison to the attached run"),
    ("l", "charts: loss on a log scale / back to linear"),
    ("arrows, enter", "confusion: move, show that cell's items"),
    ("m", "samples: mistakes only / all"),
    ("c", "samples: back from a confusion cell"),
    ("ctrl+s", "save the screen (SVG, and PNG) beside the attached run"),
    ("q, ctrl+q", "quit (runs keep training unless you stop them)"),
    ("?, f1", "this list · in a text field: f1 keys, ctrl+r start, ctrl+q quit"),
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


class ConfirmQuitScreen(ModalScreen[str | None]):
    """Quitting while runs this app started are training: they keep going in the background
    (the default) or are stopped first."""

    BINDINGS = [
        Binding("k,enter", "answer('keep')", "Keep training"),
        Binding("s", "answer('stop')", "Stop and quit"),
        Binding("escape", "answer(None)", "Cancel"),
    ]

    def __init__(self, live: int = 1) -> None:
        super().__init__()
        self.live = live

    def compose(self) -> ComposeResult:
        one = self.live == 1
        runs = "A run you started is" if one else f"{self.live} runs you started are"
        own = "It runs in a process of its own: `dltui` shows it" if one else (
            "They run in processes of their own: `dltui` shows them"
        )
        with Vertical(id="quit-box", classes="dialog"):
            yield Static(
                f"[b]{runs} still training.[/b]\n\n{own} again later.\n\n"
                "[b]k[/b]/enter keep training and quit · [b]s[/b] stop and quit · [b]esc[/b] cancel"
            )

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
