"""Modal screens: the key list (?), the quit question while launched runs train, the
learning rate for a live run (L), and what to do about a run that diverged."""

from __future__ import annotations

import math

from rich.table import Table
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

KEYS = (
    ("1 … 9", "Runs · Setup · Charts · Confusion · Samples · Log · Dashboard (120×40 and up) · Model · Sweep"),
    ("enter", "runs: attach to a run · on a sweep ▸: its leaderboard"),
    ("→ / ←", "runs: show / hide a sweep's trials under its row"),
    ("space, c", "runs: mark runs, compare the marked ones in Charts"),
    ("r", "continue a stopped run or sweep (1, 9) · start (2)"),
    ("o O · s r", "sweep: sort by a column, reverse · stop, continue"),
    ("0.1,0.01", "setup: a list or range (1e-4..0.1:log) makes a sweep"),
    ("n", "runs: new run (Setup) · samples: draw a new sample"),
    ("s / L k S", "stop · live run: lr, checkpoint now, stop after epoch"),
    ("tab / shift+tab", "move between fields and panes · ctrl+o: pick data"),
    ("x / l / a", "charts: end a comparison · log loss · accuracy or lr"),
    ("arrows, enter", "confusion: move, show that cell's items"),
    ("m / c", "samples: mistakes or all · back from a confusion cell"),
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
        own = (
            "It runs in a process of its own: `dltui` shows it"
            if one
            else ("They run in processes of their own: `dltui` shows them")
        )
        with Vertical(id="quit-box", classes="dialog"):
            yield Static(
                f"[b]{runs} still training.[/b]\n\n{own} again later.\n\n"
                "[b]k[/b]/enter keep training and quit · [b]s[/b] stop and quit · [b]esc[/b] cancel"
            )

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)


def parse_lr(text: str) -> float:
    """A learning rate as typed: a positive number up to 100 (what a run accepts live).
    Raises ValueError with the one line to show."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"'{text.strip()}' is not a number (such as 0.01)") from None
    if not math.isfinite(value) or not 0 < value <= 100:
        raise ValueError(f"{value:g} is out of range (a positive number up to 100)")
    return value


class LearningRateScreen(ModalScreen[float | None]):
    """The learning rate from now on, for the live run being viewed (prefilled with its
    current one): enter sends it, escape cancels."""

    DEFAULT_CSS = "LearningRateScreen { align: center middle; }"
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, current: float | None, run: str) -> None:
        super().__init__()
        self.current, self.run = current, run

    def compose(self) -> ComposeResult:
        with Vertical(id="lr-box", classes="dialog"):
            yield Static(f"[b]Learning rate from now on[/b] · {self.run}")
            yield Input(f"{self.current:g}" if self.current is not None else "", id="lr-input", select_on_focus=True)
            yield Static("", id="lr-error")
            yield Static("[b]enter[/b] send to the run (it applies at its next check, within a second) · "
                         "[b]esc[/b] cancel")  # fmt: skip

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _send(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            value = parse_lr(event.value)
        except ValueError as exc:
            self.query_one("#lr-error", Static).update(f"[red]{exc}[/red]")
            return
        self.dismiss(value)

    @on(Input.Changed)
    def _clear(self) -> None:
        self.query_one("#lr-error", Static).update("")

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class DivergedScreen(ModalScreen[str | None]):
    """A run ended because its loss diverged: continue it from its last good epoch with
    half the learning rate (or start it again so, when no epoch was saved), or leave it."""

    DEFAULT_CSS = "DivergedScreen { align: center middle; }"
    BINDINGS = [
        Binding("r,enter", "answer('rollback')", "Roll back"),
        Binding("s,escape", "answer(None)", "Stop"),
    ]

    def __init__(self, message: str, lr: float, epochs_done: int) -> None:
        super().__init__()
        self.message, self.lr, self.epochs_done = message, lr, epochs_done

    def compose(self) -> ComposeResult:
        half = f"{self.lr / 2:g}"
        if self.epochs_done:
            offer = f"Roll back to epoch {self.epochs_done} and continue with lr halved ({self.lr:g} → {half})"
        else:
            offer = f"No epoch was saved: start it again with lr halved ({self.lr:g} → {half})"
        with Vertical(id="diverged-box", classes="dialog"):
            yield Static(
                f"[b]The run diverged.[/b]\n{self.message}\n\n"
                f"[b]r[/b]/enter  {offer}\n[b]s[/b]/esc    Stop: leave it as it is"
            )

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
