"""The dashboard: the attached run on one screen when the terminal is at least 120×40 — a
stats card, the loss and accuracy charts, a small confusion grid and a strip of samples.
Below that size the same views stay behind tabs. The widgets are the tabs' own kinds, fed
the same events; the stats card is one pure function of RunStats and the machine."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Static

from dltui.runs import COLOURS
from dltui.sysinfo import Machine
from dltui.tui.charts import Charts
from dltui.tui.confusion import ConfusionGrid
from dltui.tui.sampler import Sampler
from dltui.tui.state import RunStats, duration

MIN_SIZE = (120, 40)  # columns, rows: below this the tabs stay


def stats_table(s: RunStats, machine: Machine | None, masked: bool = False) -> Table:
    """The stats card: what a glance at a run should answer."""
    mask = (lambda text: "··") if masked else (lambda text: text)  # noqa: E731
    acc = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_row("run", Text(s.name or "-", style="bold"))
    table.add_row("status", Text(s.status, style=f"bold {COLOURS.get(s.status, 'white')}"))
    table.add_row("epoch", f"{s.epoch}/{s.epochs}" if s.epochs else "-")
    best = f"{acc(s.best_acc)} @ {s.best_epoch}" if s.best_acc is not None else "-"
    table.add_row("test acc", f"{acc(s.last_acc)}   best {best}")
    loss = "-" if s.test_loss is None else f"train {s.train_loss:.4g} · test {s.test_loss:.4g}"
    table.add_row("loss", loss)
    table.add_row("lr", "-" if s.lr is None else f"{s.lr:g}")
    epoch_s = "-" if s.epoch_s is None else mask(f"{s.epoch_s:.2f} s")
    eta = "-" if s.eta_s is None or s.status != "running" else mask(duration(s.eta_s))
    table.add_row("epoch time", f"{epoch_s}   ETA {eta}")
    table.add_row("samples/s", "-" if s.samples_per_s is None else mask(f"{s.samples_per_s:,.0f}"))
    if machine is not None:
        table.add_row("", "")
        cpu = "-" if machine.cpu_busy is None else f"{machine.cpu_busy:.1f} of {machine.cores} cores"
        cpu = mask(cpu)  # masked whether or not a first sample exists yet: snapshots must not race it
        table.add_row("cpu", cpu)
        mem = "-" if machine.mem_used_gb is None else mask(f"{machine.mem_used_gb:.1f} / {machine.mem_total_gb:.1f} GB")
        table.add_row("memory", mem)
        table.add_row("gpu", mask(machine.gpu) if machine.gpu else "none")
    return table


class StatsCard(Static):
    def show(self, stats: RunStats, machine: Machine | None, masked: bool = False) -> None:
        self.update(stats_table(stats, machine, masked))


class Dashboard(Grid):
    """Stats and charts above, the confusion grid and samples below."""

    def __init__(self, images: str = "halfblock", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.images = images

    def compose(self) -> ComposeResult:
        yield StatsCard(id="dash-stats")
        yield Charts(id="dash-charts")
        yield ConfusionGrid(id="dash-grid")
        yield Sampler(self.images, id="dash-sampler")
