"""The progress line: epoch i/N, a batch bar, ETA, samples/s and the device, always visible.

``masked`` hides what differs between machines and runs (timings, rates, thread counts,
timestamped run directories) so snapshot tests are stable.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from dltui.tui.state import duration, shown_path


class ProgressLine(Horizontal):
    """One row: status, batch bar, numbers."""

    def __init__(self, masked: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.masked = masked
        self.device = ""
        self.acc = ""  # the attached run's last test accuracy, first in the numbers: it survives 80 columns

    def compose(self) -> ComposeResult:
        yield Label("dltui", id="status")
        yield ProgressBar(total=None, show_eta=False, id="bar")
        yield Label("loading torch…", id="stats")

    def _set(self, status: str | None = None, stats: str | None = None) -> None:
        if status is not None:
            self.query_one("#status", Label).update(status)
        if stats is not None:
            self.query_one("#stats", Label).update(f"acc {self.acc} · {stats}" if self.acc else stats)

    def _mask(self, text: str) -> str:
        return "··" if self.masked else text

    def ready(self) -> None:
        self.query_one(ProgressBar).update(total=1, progress=0)
        self._set("ready", "1 runs · 2 new run: pick a dataset and model, then r to start")

    def attaching(self, where: str) -> None:
        self.acc = ""
        self.query_one(ProgressBar).update(total=None)
        self._set("attaching", f"reading {where}")

    def started(self, ev: Any) -> None:
        self.device = self._mask(ev.device)
        self.query_one(ProgressBar).update(total=ev.steps_per_epoch, progress=0)
        self._set(f"epoch {ev.start_epoch + 1}/{ev.config.epochs}", f"starting · {self.device}")

    def batch(self, ev: Any) -> None:
        self.query_one(ProgressBar).update(total=ev.steps, progress=ev.step)
        eta, rate = self._mask(duration(ev.eta_s)), self._mask(f"{ev.samples_per_s:,.0f}")
        self._set(f"epoch {ev.epoch}/{ev.epochs}", f"ETA {eta} · {rate} samples/s · {self.device}")

    def epoch(self, ev: Any) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(progress=bar.total or 0)
        self.acc = f"{ev.test_acc:.1%}" if ev.test_acc is not None else ""
        acc = "" if self.acc else f" · test loss {ev.test_loss:.4g}"  # accuracy leads the line
        rate = self._mask(f"{ev.samples_per_s:,.0f}")
        self._set(f"epoch {ev.epoch}/{ev.epochs}", f"{rate} samples/s{acc} · {self.device}")

    def ended(self, status: str, run_dir: str) -> None:
        where = self._mask(shown_path(run_dir)) if run_dir else "nothing saved"
        self._set(status, f"run dir: {where}")
