"""Live charts: loss on the left; accuracy (classification) or the fit view (regression) on
the right, or (key a) the learning rate per epoch. Validation curves join train and test
where the run holds a validation split. Comparing runs (marked in the Runs tab) overlays
their test curves, one colour a run, each named by what differs between them, with a
table of those fields below."""

from __future__ import annotations

import itertools
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from dltui.tui.state import Curves

PALETTE = ("cyan", "orange", "green", "magenta", "blue", "red", "yellow", "white")  # one per compared run
RICH = {"orange": "dark_orange"}  # plotext colour names Rich spells otherwise
# the curves of one run: (label, colour), one colour a meaning in both charts
RUNNING, TRAIN, TEST, VAL = ("running", "cyan"), ("train", "blue"), ("test", "orange"), ("val", "green")
LR_COLOUR = "magenta"
MAX_TICKS = 8  # epoch labels on the x axis: room for 3-digit epochs in a half-width chart


def epoch_ticks(n: int) -> list[int]:
    """Whole epochs to label, about MAX_TICKS: every epoch, else every 2, 5, 10, 20, 50,
    100, ... (and epoch 1). plotext alone labels 1.50 on a 3-epoch run."""
    if n <= 0:
        return []
    steps = (m * 10**e for e in itertools.count() for m in (1, 2, 5))
    step = next(s for s in steps if n // s <= MAX_TICKS)
    return sorted({1, *range(step, n + 1, step)})


def _epoch_ticks(plt, *runs: Curves | None) -> None:
    n = max((c.epochs[-1] for c in runs if c is not None and c.epochs), default=0)
    if n > 0:
        plt.xticks(epoch_ticks(n))


def legend(items: list[tuple[str, str]]) -> Text:
    """The charts' legend, under them: plotext's own sits on the curves' top-left corner,
    where a falling loss starts."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for label, colour in items:
        text.append("━━ ", RICH.get(colour, colour))
        text.append(f"{label}   ")
    return text


def _compare(plt, others: list[Curves], title: str, attr: str, x: str = "epochs") -> None:
    """One curve a compared run, in its own colour, named by what differs."""
    plt.title(title)
    for colour, curves in zip(PALETTE, others, strict=False):
        if getattr(curves, attr):
            plt.plot(getattr(curves, x), getattr(curves, attr), marker="braille", color=colour)
    _epoch_ticks(plt, *others)


class LossChart(PlotextPlot):
    """Smoothed running training loss within epochs, plus train and test loss per epoch;
    when comparing, each compared run's test loss."""

    log = False  # l toggles a log scale (losses spanning decades)

    def draw(self, run: Curves | None, others: list[Curves]) -> None:
        plt = self.plt
        plt.clear_figure()  # not clear_data: ticks from the last draw would stay
        plt.xlabel("epoch")
        if self.log:
            plt.yscale("log")
        scale = " (log)" if self.log else ""
        if others:
            _compare(plt, others, "test loss" + scale, "test_loss")
            self.refresh()
            return
        lr = f" · lr {run.lr:g}" if run is not None and run.lr is not None else ""  # always in sight
        plt.title(("loss (MSE)" if run and run.regression else "loss") + scale + lr)
        if run is not None:
            if run.steps:
                xs, ys = zip(*run.steps, strict=True)
                plt.plot(xs, ys, marker="braille", color=RUNNING[1])
            if run.epochs:
                plt.plot(run.epochs, run.train_loss, marker="braille", color=TRAIN[1])
                plt.plot(run.epochs, run.test_loss, marker="braille", color=TEST[1])
            if run.val_loss:
                plt.plot(run.val_epochs, run.val_loss, marker="braille", color=VAL[1])
        _epoch_ticks(plt, run)
        self.refresh()


class AccuracyChart(PlotextPlot):
    """Train and test accuracy per epoch, in percent; when comparing, each run's test accuracy."""

    def draw(self, run: Curves | None, others: list[Curves]) -> None:
        plt = self.plt
        plt.clear_figure()  # not clear_data: ticks from the last draw would stay
        plt.xlabel("epoch")
        if others:
            _compare(plt, others, "test accuracy %", "test_acc")
            self.refresh()
            return
        plt.title("accuracy %")
        if run is not None and run.train_acc:
            plt.plot(run.epochs, run.train_acc, marker="braille", color=TRAIN[1])
            plt.plot(run.epochs, run.test_acc, marker="braille", color=TEST[1])
        if run is not None and run.val_acc:
            plt.plot(run.val_epochs[: len(run.val_acc)], run.val_acc, marker="braille", color=VAL[1])
        _epoch_ticks(plt, run)
        self.refresh()


class LrChart(PlotextPlot):
    """The learning rate of each epoch (schedules, warm-up, live changes, rollbacks); when
    comparing, each run's."""

    def draw(self, run: Curves | None, others: list[Curves]) -> None:
        plt = self.plt
        plt.clear_figure()  # not clear_data: ticks from the last draw would stay
        plt.xlabel("epoch")
        if others:
            _compare(plt, others, "learning rate", "lrs", "lr_epochs")
            self.refresh()
            return
        now = f" · now {run.lr:g}" if run is not None and run.lr is not None else ""
        plt.title("learning rate" + now)
        if run is not None and run.lrs:
            plt.plot(run.lr_epochs, run.lrs, marker="braille", color=LR_COLOUR)
        _epoch_ticks(plt, run)
        self.refresh()


class FitChart(PlotextPlot):
    """Regression: points and the learned line for one feature, else predicted vs true."""

    def draw_fit(self, x: Any, y_true: list[float], y_pred: list[float]) -> None:
        plt = self.plt
        plt.clear_figure()  # not clear_data: ticks from the last draw would stay
        if x is not None and len(x[0]) == 1:
            xs = [float(r[0]) for r in x]
            plt.title("fit: data (dots) and learned line")
            line = sorted(zip(xs, y_pred, strict=True))
            plt.plot([p[0] for p in line], [p[1] for p in line], marker="braille", color="orange")
            plt.scatter(xs, y_true, marker="dot", color="cyan")  # last: over the line, not under it
        else:
            plt.title("fit: predicted vs true")
            plt.scatter(y_true, y_pred, marker="dot", color="cyan")
            lo, hi = min(y_true), max(y_true)
            plt.plot([lo, hi], [lo, hi], marker="braille", color="gray")  # the perfect fit
            plt.xlabel("true")
        self.refresh()


class Charts(Vertical):
    """The Charts tab: the attached run, or the runs being compared."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run: Curves | None = None
        self.others: list[Curves] = []
        self.show_lr = False  # key a: the learning rate in place of accuracy (or the fit view)

    def compose(self) -> ComposeResult:
        with Horizontal(id="chart-row"):
            yield LossChart(id="loss-chart")
            yield AccuracyChart(id="acc-chart")
            yield FitChart(id="fit-chart")
            yield LrChart(id="lr-chart")
        yield Static("", id="chart-legend")
        yield Static("", id="fit-note")
        yield Static("", id="compare-table")

    def begin(self, run: Curves) -> None:
        self.run = run
        self.set_class(run.regression and not self.others, "-regression")
        self.query_one("#fit-note", Static).update("")
        self._arrange()
        self.redraw()

    def compare(self, curves: list[Curves], infos: list[Any], fields: list[str]) -> None:
        """Overlay ``curves`` (empty: back to the attached run), with a table of the fields
        that differ and each run's last and best test metrics."""
        from rich.table import Table

        self.others = curves
        self.set_class(bool(curves), "-comparing")
        self.set_class(bool(self.run and self.run.regression and not curves), "-regression")
        self._arrange()
        table = Table(box=None, padding=(0, 1), header_style="bold")
        if curves:
            table.add_column("")
            for f in fields:
                table.add_column(f.replace("_", " "))
            for col in ("epochs", "last acc", "best acc", "last loss"):
                table.add_column(col, justify="right")
            num = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
            for colour, info in zip(PALETTE, infos, strict=False):
                values = [str(info.config.get(f, "-")) for f in fields]
                table.add_row(
                    f"[{colour}]■[/]", *values, f"{info.epochs_done}/{info.epochs}",
                    num(info.last_test_acc), num(info.best_test_acc), num(info.last_test_loss),
                )  # fmt: skip
        self.query_one("#compare-table", Static).update(table if curves else "")
        self.redraw()

    def toggle_lr(self) -> bool:
        self.show_lr = not self.show_lr
        self._arrange()
        self.redraw()
        return self.show_lr

    def _arrange(self) -> None:
        """The right-hand chart: accuracy, the fit view (regression) or the learning rate.
        Set here rather than in CSS: the app's stylesheet decides the regression case."""
        regression = self.has_class("-regression")
        self.query_one(AccuracyChart).display = not self.show_lr and not regression
        self.query_one(FitChart).display = not self.show_lr and regression
        self.query_one(LrChart).display = self.show_lr

    def toggle_log(self) -> bool:
        chart = self.query_one(LossChart)
        chart.log = not chart.log
        self.redraw(acc=False)
        return chart.log

    def redraw(self, acc: bool = True) -> None:
        if self.others:
            items = [(c.label, colour) for colour, c in zip(PALETTE, self.others, strict=False)]
        elif self.run is not None:
            items = [RUNNING, TRAIN, TEST, *([VAL] if self.run.val_epochs else [])]
        else:
            items = []
        text = legend(items)
        if self.run is not None or self.others:
            back = "fit" if self.has_class("-regression") else "accuracy"
            text.append("a: " + (back if self.show_lr else "lr per epoch"), "dim")
        self.query_one("#chart-legend", Static).update(text)
        self.query_one(LossChart).draw(self.run, self.others)
        if acc:
            self.query_one(LrChart if self.show_lr else AccuracyChart).draw(self.run, self.others)

    def show_fit(self, x: Any, y_true: list[float], y_pred: list[float], extras: dict[str, Any]) -> None:
        self.query_one(FitChart).draw_fit(x, y_true, y_pred)
        if "w" in extras:
            fmt = lambda ws: "[" + ", ".join(f"{w:.3f}" for w in ws) + "]"  # noqa: E731
            note = (
                f"learned w={fmt(extras['w'])} b={extras['b']:.3f}   "
                f"true w={fmt(extras['true_w'])} b={extras['true_b']:.3f}"
            )
            self.query_one("#fit-note", Static).update(note)
