"""What the command line prints: the `run` callback (live progress on a terminal, a plain
line per epoch otherwise, JSON lines with --json) and the tables of `datasets`, `models`
and `eval`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from dltui.engine.events import (
    BatchProgressed,
    EpochEnded,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
    RunStopped,
    RunSummary,
)

if TYPE_CHECKING:
    from rich.progress import Progress

    from dltui.evaluation import EvalResult


def _f(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def epoch_line(e: EpochEnded) -> str:
    parts = [f"epoch {e.epoch}/{e.epochs}", f"train_loss {e.train_loss:.4g}"]
    if e.train_acc is not None:
        parts.append(f"train_acc {e.train_acc:.4f}")
    parts.append(f"test_loss {e.test_loss:.4g}")
    if e.test_acc is not None:
        parts.append(f"test_acc {e.test_acc:.4f}")
    parts += [f"lr {e.lr:g}", f"{e.seconds:.2f}s", f"{e.samples_per_s:,.0f} samples/s"]
    if "w" in e.extras:
        parts.append(f"w {e.extras['w']} (true {e.extras['true_w']}) b {e.extras['b']} (true {e.extras['true_b']})")
    return "  ".join(parts)


def _eta(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Reporter:
    """The `dltui run` callback. Use as a context manager around train()."""

    def __init__(self, json_out: bool = False, stdout=None, stderr=None):
        self.json_out = json_out
        self.out = stdout or sys.stdout
        # soft_wrap: an error stays one line however narrow the terminal
        self.console = Console(file=self.out, highlight=False, soft_wrap=True)
        self.err = Console(file=stderr or sys.stderr, highlight=False, soft_wrap=True)
        self.live = not json_out and self.console.is_terminal
        self.progress: Progress | None = None
        self.task: Any = None
        self.started: RunStarted | None = None

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_progress()

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _info(self, text: str) -> None:
        # keep stdout pure JSON with --json
        (self.err if self.json_out else self.console).print(text, markup=False)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.started = event
            d = event.data
            what = "resuming" if event.start_epoch else "training"
            self._info(
                f"dltui: {what} {event.config.model} ({event.n_params:,} params) on {event.config.dataset} "
                f"({len(d.y_train):,} train / {len(d.y_test):,} test) | {event.device} | {event.run_dir}"
            )
            if self.live:
                self._start_progress(event)
        elif isinstance(event, BatchProgressed):
            if self.progress is not None:
                self.progress.update(
                    self.task,
                    completed=event.step,
                    total=event.steps,
                    epoch=f"{event.epoch}/{event.epochs}",
                    loss=f"{event.loss:.4g}",
                    rate=f"{event.samples_per_s:,.0f}",
                    eta=_eta(event.eta_s),
                )
        elif isinstance(event, EpochEnded):
            self._epoch(event)
        elif isinstance(event, (RunFinished, RunStopped, RunFailed)):
            self._stop_progress()
            self._end(event)

    def _start_progress(self, event: RunStarted) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(bar_width=None),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[acc]}"),
            TextColumn("{task.fields[rate]} samples/s  ETA {task.fields[eta]}"),
            console=self.console,
            transient=True,
            refresh_per_second=4,
        )
        self.task = self.progress.add_task(
            "train",
            total=event.steps_per_epoch,
            epoch=f"{event.start_epoch + 1}/{event.config.epochs}",
            loss="-",
            acc="",
            rate="-",
            eta="-",
        )
        self.progress.start()

    def _epoch(self, e: EpochEnded) -> None:
        if self.json_out:
            row = {
                "event": "epoch",
                **{
                    k: getattr(e, k)
                    for k in (
                        "epoch",
                        "epochs",
                        "train_loss",
                        "train_acc",
                        "test_loss",
                        "test_acc",
                        "lr",
                        "seconds",
                        "samples_per_s",
                    )
                },
            }
            row.update(e.extras)
            print(json.dumps(row), file=self.out, flush=True)
            return
        if self.progress is not None:
            self.progress.console.print(epoch_line(e), markup=False)
            acc = f"acc {e.test_acc:.4f}" if e.test_acc is not None else f"mse {e.test_loss:.4g}"
            self.progress.update(self.task, completed=0, epoch=f"{min(e.epoch + 1, e.epochs)}/{e.epochs}", acc=acc)
        else:
            print(epoch_line(e), file=self.out, flush=True)

    def _end(self, event: RunFinished | RunStopped | RunFailed) -> None:
        s = event.summary
        status = {RunFinished: "finished", RunStopped: "stopped", RunFailed: "failed"}[type(event)]
        if self.json_out:
            print(json.dumps(summary_dict(status, s, getattr(event, "message", None))), file=self.out, flush=True)
        if isinstance(event, RunFailed):
            self.err.print(f"dltui: error: {event.message}", markup=False, highlight=False)
            if s and s.epochs_done:
                self.err.print(
                    f"dltui: metrics of {s.epochs_done} completed epoch(s) and the last good checkpoint "
                    f"are in {s.run_dir}",
                    markup=False,
                )
            return
        if isinstance(event, RunStopped):
            where = s.run_dir or "(no run directory yet)"
            self.err.print(
                f"dltui: stopped after {s.epochs_done} completed epoch(s); metrics and checkpoint are in {where}"
                + (f"\ndltui: continue with: dltui run --resume {s.run_dir}" if s.epochs_done else ""),
                markup=False,
            )
            return
        if not self.json_out:
            self.console.print(summary_text(s), markup=False)


def summary_dict(status: str, s: RunSummary | None, error: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"event": "summary", "status": status}
    if error:
        out["error"] = error
    if s is not None:
        f = s.final
        out.update(
            epochs_done=s.epochs_done,
            final_train_loss=f and f.train_loss,
            final_test_loss=f and f.test_loss,
            final_train_acc=f and f.train_acc,
            final_test_acc=f and f.test_acc,
            best_test_acc=s.best_test_acc,
            best_test_loss=s.best_test_loss,
            wall_s=round(s.wall_s, 3),
            samples_per_s=round(s.samples_per_s, 1),
            run_dir=s.run_dir,
        )
        if f is not None:
            out.update(f.extras)
    return out


def summary_text(s: RunSummary) -> str:
    f = s.final
    lines = ["", f"done: {s.epochs_done} epochs in {s.wall_s:.1f}s, {s.samples_per_s:,.0f} training samples/s"]
    if f is not None:
        if f.test_acc is not None:
            lines.append(f"final: test_acc {f.test_acc:.4f}  test_loss {f.test_loss:.4g}  train_acc {_f(f.train_acc)}")
            lines.append(f"best:  test_acc {s.best_test_acc:.4f}  test_loss {s.best_test_loss:.4g}")
        else:
            lines.append(
                f"final: test_mse {f.test_loss:.4g}  train_mse {f.train_loss:.4g}  (best {s.best_test_loss:.4g})"
            )
        if "w" in f.extras:
            lines.append(
                f"learned w {f.extras['w']}  b {f.extras['b']}   true w {f.extras['true_w']}  b {f.extras['true_b']}"
            )
    lines.append(f"run directory: {s.run_dir}")
    return "\n".join(lines)


def confusion_table(classes: tuple[str, ...], matrix: list[list[int]]) -> Table:
    table = Table(title="confusion matrix (rows: true, columns: predicted)", show_lines=False)
    table.add_column("true\\pred", style="bold")
    for c in classes:
        table.add_column(c[:10], justify="right")
    table.add_column("acc", justify="right")
    for name, row in zip(classes, matrix, strict=True):
        total = sum(row)
        correct = row[classes.index(name)]
        cells = [
            f"[bold green]{v}[/]" if j == classes.index(name) else (str(v) if v else "[dim]0[/]")
            for j, v in enumerate(row)
        ]
        table.add_row(name[:10], *cells, f"{correct / total:.2f}" if total else "-")
    return table


def print_evaluation(r: EvalResult, json_out: bool = False) -> None:
    if json_out:
        print(
            json.dumps(
                {
                    "path": r.path,
                    "dataset": r.config.dataset,
                    "model": r.config.model,
                    "epoch": r.epoch,
                    "n_test": r.n_test,
                    "test_loss": r.loss,
                    "test_acc": r.acc,
                    "classes": list(r.classes),
                    "confusion": r.confusion,
                    **r.extras,
                }
            )
        )
        return
    console = Console(highlight=False)
    console.print(f"{r.path}: {r.config.model} on {r.config.dataset}, {r.epoch} epochs trained", markup=False)
    if r.acc is not None:
        console.print(f"test accuracy {r.acc:.4f}  test loss {r.loss:.4g}  ({r.n_test:,} test items)", markup=False)
    else:
        console.print(f"test mse {r.loss:.4g}  ({r.n_test:,} test items)", markup=False)
    if "w" in r.extras:
        console.print(
            f"learned w {r.extras['w']}  b {r.extras['b']}   true w {r.extras['true_w']}  b {r.extras['true_b']}"
        )
    if r.confusion is not None:
        console.print(confusion_table(r.classes, r.confusion))


def print_datasets(data_dir: str | None) -> None:
    from dltui.config import default_data_dir
    from dltui.data import DATASETS

    root = data_dir or str(default_data_dir())
    table = Table(title=f"datasets (data dir: {root})")
    for col in ("name", "task", "input", "classes", "train", "test", "default model", "offline", "source"):
        table.add_column(col, overflow="fold")
    for s in DATASETS.values():
        classes = str(len(s.classes)) if s.classes else "-"
        shape = "x".join(map(str, s.input_shape))
        offline = "yes" if s.available_offline(root) else "[yellow]download[/]"
        table.add_row(
            s.name,
            s.task,
            shape,
            classes,
            f"{s.train_size:,}",
            f"{s.test_size:,}",
            s.recommended.model,
            offline,
            s.source,
        )
    Console().print(table)


def print_models(dataset: str | None) -> None:
    from dltui.config import choose
    from dltui.data import DATASETS
    from dltui.models import MODELS, param_count

    spec = DATASETS[choose("dataset", dataset, tuple(DATASETS))] if dataset else None
    title = f"models that fit {spec.name}" if spec else "models"
    table = Table(title=title)
    for col in ("name", "tasks", "params" if spec else "fits", "description"):
        table.add_column(col, overflow="fold")
    for m in MODELS.values():
        if spec is not None:
            if m.incompatibility(spec):
                continue
            third = f"{param_count(m.name, spec):,}"
        else:
            third = ", ".join(d.name for d in DATASETS.values() if m.incompatibility(d) is None)
        table.add_row(m.name, ", ".join(m.tasks), third, m.description)
    Console().print(table)
