"""Live charts: loss on the left; accuracy (classification) or the fit view (regression) on
the right. The previous run stays drawn in grey for comparison until cleared."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from dltui.tui.state import Curves

OLD = "gray"  # the previous run: visible, but clearly not the live one


def _epoch_ticks(plt, *runs: Curves | None) -> None:
    """Whole-epoch ticks for short runs (plotext would label 1.50 on a 3-epoch run)."""
    n = max((c.epochs[-1] for c in runs if c is not None and c.epochs), default=0)
    if 0 < n <= 12:
        plt.xticks(list(range(1, n + 1)))


class LossChart(PlotextPlot):
    """Smoothed running training loss within epochs, plus train and test loss per epoch."""

    def draw(self, run: Curves | None, old: Curves | None) -> None:
        plt = self.plt
        plt.clear_figure()  # not clear_data: ticks from the last draw would stay
        plt.title("loss (MSE)" if run and run.regression else "loss")
        plt.xlabel("epoch")
        for curves, live in ((old, False), (run, True)):
            if curves is None:
                continue
            tag = "" if live else " (prev)"
            colour = (lambda c: c) if live else (lambda c: OLD)  # noqa: E731
            if curves.steps:
                xs, ys = zip(*curves.steps, strict=True)
                plt.plot(xs, ys, marker="braille", color=colour("cyan"), label="running" if live else None)
            if curves.epochs:
                plt.plot(curves.epochs, curves.train_loss, marker="braille", color=colour("blue"), label=f"train{tag}")
                plt.plot(curves.epochs, curves.test_loss, marker="braille", color=colour("orange"), label=f"test{tag}")
        _epoch_ticks(plt, run, old)
        self.refresh()


class AccuracyChart(PlotextPlot):
    """Train and test accuracy per epoch, in percent."""

    def draw(self, run: Curves | None, old: Curves | None) -> None:
        plt = self.plt
        plt.clear_figure()  # not clear_data: ticks from the last draw would stay
        plt.title("accuracy %")
        plt.xlabel("epoch")
        for curves, live in ((old, False), (run, True)):
            if curves is None or not curves.train_acc:
                continue
            tag = "" if live else " (prev)"
            colour = (lambda c: c) if live else (lambda c: OLD)  # noqa: E731
            plt.plot(curves.epochs, curves.train_acc, marker="braille", color=colour("blue"), label=f"train{tag}")
            plt.plot(curves.epochs, curves.test_acc, marker="braille", color=colour("green"), label=f"test{tag}")
        _epoch_ticks(plt, run, old)
        self.refresh()


class FitChart(PlotextPlot):
    """Regression: points and the learned line for one feature, else predicted vs true."""

    def draw_fit(self, x: Any, y_true: list[float], y_pred: list[float]) -> None:
        plt = self.plt
        plt.clear_figure()  # not clear_data: ticks from the last draw would stay
        if x is not None and len(x[0]) == 1:
            xs = [float(r[0]) for r in x]
            plt.title("fit: data and learned line")
            plt.scatter(xs, y_true, marker="dot", color="gray")
            line = sorted(zip(xs, y_pred, strict=True))
            plt.plot([p[0] for p in line], [p[1] for p in line], marker="braille", color="green")
        else:
            plt.title("fit: predicted vs true")
            plt.scatter(y_true, y_pred, marker="dot", color="cyan")
            lo, hi = min(y_true), max(y_true)
            plt.plot([lo, hi], [lo, hi], marker="braille", color="gray")  # the perfect fit
            plt.xlabel("true")
        self.refresh()


class Charts(Vertical):
    """The Charts tab."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run: Curves | None = None
        self.old: Curves | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="chart-row"):
            yield LossChart(id="loss-chart")
            yield AccuracyChart(id="acc-chart")
            yield FitChart(id="fit-chart")
        yield Static("", id="fit-note")

    def begin(self, run: Curves) -> None:
        """A new run: the current one (if it got anywhere) becomes the grey comparison."""
        if self.run is not None and self.run.epochs and self.run.regression == run.regression:
            self.old = self.run
        self.run = run
        self.set_class(run.regression, "-regression")
        self.query_one("#fit-note", Static).update("")
        self.redraw()

    def clear_old(self) -> bool:
        had = self.old is not None
        self.old = None
        self.redraw()
        return had

    def redraw(self) -> None:
        self.query_one(LossChart).draw(self.run, self.old)
        self.query_one(AccuracyChart).draw(self.run, self.old)

    def show_fit(self, x: Any, y_true: list[float], y_pred: list[float], extras: dict[str, Any]) -> None:
        self.query_one(FitChart).draw_fit(x, y_true, y_pred)
        if "w" in extras:
            fmt = lambda ws: "[" + ", ".join(f"{w:.3f}" for w in ws) + "]"  # noqa: E731
            note = (
                f"learned w={fmt(extras['w'])} b={extras['b']:.3f}   "
                f"true w={fmt(extras['true_w'])} b={extras['true_b']:.3f}"
            )
            self.query_one("#fit-note", Static).update(note)
