"""What the command line prints: the `run` callback (live progress on a terminal, a plain
line per epoch otherwise, JSON lines with --json) and the tables of `datasets`, `models`
and `eval`."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from dltui.engine.events import (
    BatchProgressed,
    EpochEnded,
    EvaluationReady,
    Event,
    RunFailed,
    RunFinished,
    RunNoted,
    RunStarted,
    RunStopped,
    RunSummary,
)
from dltui.words import plural

if TYPE_CHECKING:
    from rich.progress import Progress

    from dltui.evaluation import EvalResult


def _f(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def epoch_line(e: EpochEnded) -> str:
    parts = [f"epoch {e.epoch}/{e.epochs}", f"train_loss {e.train_loss:.4g}"]
    if e.train_acc is not None:
        parts.append(f"train_acc {e.train_acc:.4f}")
    if e.val_loss is not None:
        parts.append(f"val_loss {e.val_loss:.4g}")
    if e.val_acc is not None:
        parts.append(f"val_acc {e.val_acc:.4f}")
    parts.append(f"test_loss {e.test_loss:.4g}")
    if e.test_acc is not None:
        parts.append(f"test_acc {e.test_acc:.4f}")
    parts += [f"lr {e.lr:.4g}", f"{e.seconds:.2f}s", f"{e.samples_per_s:,.0f} samples/s"]
    if "w" in e.extras:
        parts.append(_fit_brief(e.extras))
    return "  ".join(parts)


def _fit_brief(x: dict[str, Any]) -> str:
    """The epoch line's part of a linear fit: 'w [1.99] (true [2.0]) b 0.02 (true 0.0)  y(x=4) 7.99'."""
    true_w = f" (true {x['true_w']})" if "true_w" in x else ""
    true_b = f" (true {x['true_b']})" if "true_b" in x else ""
    text = f"w {x['w']}{true_w} b {x['b']}{true_b}"
    if "at_y" in x:
        text += f"  y(x={x['at_x']:g}) {x['at_y']:.4g}"
    if "at_p" in x:
        text += f"  P(1|x={x['at_x']:g}) {x['at_p']:.4f}"
    return text


def fit_lines(x: dict[str, Any]) -> list[str]:
    """A linear fit for a summary: the learned w, b beside the truth and least squares where
    the data has them, and the prediction at the toys' x = 4 (a value, or P(class 1))."""
    if "w" not in x:
        return []
    line = f"learned w {x['w']}  b {x['b']}"
    if "true_w" in x:
        line += f"   true w {x['true_w']}  b {x['true_b']}"
    if "lstsq_w" in x:
        line += f"   least squares w {x['lstsq_w']}  b {x['lstsq_b']}"
    lines = [line]
    if "at_y" in x:
        lines.append(f"prediction at x = {x['at_x']:g}: y = {x['at_y']:.4g}")
    if "at_p" in x:
        lines.append(f"prediction at x = {x['at_x']:g}: P(class 1) = {x['at_p']:.4f}")
    return lines


def _eta(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class _SafeStream:
    """A stream whose failures are the reader's problem, not the run's: after the terminal
    went away (EIO), the pipe closed (`| head -1`) or the disk filled (`>/dev/full`), writes
    are dropped and training goes on; run.log still gets every line."""

    def __init__(self, stream: Any):
        self._stream = stream
        self.dead = False

    def write(self, text: str) -> int:
        if not self.dead:
            try:
                self._stream.write(text)
            except (OSError, ValueError):
                self.dead = True
        return len(text)

    def flush(self) -> None:
        if not self.dead:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.dead = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


RUN_LOG = "run.log"


class Reporter:
    """The `dltui run` callback. Use as a context manager around train(). What it prints
    also goes to run.log in the run directory, whatever becomes of the terminal."""

    def __init__(self, json_out: bool = False, stdout=None, stderr=None):
        self.json_out = json_out
        self.out = _SafeStream(stdout or sys.stdout)
        # soft_wrap: an error stays one line however narrow the terminal
        self.console = Console(file=self.out, highlight=False, soft_wrap=True)
        self.err = Console(file=_SafeStream(stderr or sys.stderr), highlight=False, soft_wrap=True)
        self.live = not json_out and self.console.is_terminal
        self.progress: Progress | None = None
        self.task: Any = None
        self.started: RunStarted | None = None
        self.log: Any = None  # run.log, opened once the run directory exists
        self.evaluated: EvaluationReady | None = None  # the last, for per-step data only

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_progress()
        if self.log is not None:
            with contextlib.suppress(OSError):
                self.log.close()
            self.log = None

    def _stop_progress(self) -> None:
        if self.progress is not None:
            with contextlib.suppress(OSError, ValueError):
                self.progress.stop()
            self.progress = None

    def _to_log(self, text: str) -> None:
        if self.log is not None:
            try:
                self.log.write(text + "\n")
                self.log.flush()
            except (OSError, ValueError):
                self.log = None  # a full disk: the run itself reports what it could not write

    def _print(self, console: Console, text: str) -> None:
        if self.progress is not None and console is self.console:
            console = self.progress.console  # above the live bar
        console.print(text, markup=False)
        self._to_log(text)

    def _info(self, text: str) -> None:
        # keep stdout pure JSON with --json
        self._print(self.err if self.json_out else self.console, text)

    def _json(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(obj) + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """A line for stderr and run.log (the CLI's verdicts, such as --min-test-acc)."""
        self._print(self.err, text)

    def _open_log(self, run_dir: str) -> None:
        path = Path(run_dir) / RUN_LOG
        with contextlib.suppress(OSError, ValueError, AttributeError):
            out, log = os.fstat(self.out.fileno()), os.stat(path)
            if (out.st_dev, out.st_ino) == (log.st_dev, log.st_ino):
                return  # stdout already is run.log (a run the app launched): no second copy
        try:
            self.log = open(path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        except OSError:
            self.log = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.started = event
            self._open_log(event.run_dir)
            d = event.data
            what = f"resuming at epoch {event.start_epoch + 1}:" if event.start_epoch else "training"
            n_val = round(len(d.y_train) * (event.config.val_fraction or 0))
            held = f" / {n_val:,} val" if n_val else ""
            sizes = f"{len(d.y_train) - n_val:,} train{held} / {len(d.y_test):,} test"
            if d.spec.test_is_train:
                sizes = f"{len(d.y_train):,} items, test = train"
            self._info(
                f"dltui: {what} {event.config.model} ({event.n_params:,} params) on {event.config.dataset} "
                f"({sizes}) | {event.device} | {event.run_dir}"
            )
            for note in event.notes:
                self._info(f"dltui: note: {note}")
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
        elif isinstance(event, RunNoted):
            if self.json_out:
                self._json({"event": "note", "epoch": event.epoch, "text": event.text})
            self._info(f"dltui: {event.text}")
        elif isinstance(event, EvaluationReady):
            if self.started is not None and self.started.data.task == "per-step":
                self.evaluated = event  # its strings go into the summary
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
            self._json(row)
            self._to_log(epoch_line(e))
            return
        self._print(self.console, epoch_line(e))
        if self.progress is not None:
            acc = f"acc {e.test_acc:.4f}" if e.test_acc is not None else f"mse {e.test_loss:.4g}"
            self.progress.update(self.task, completed=0, epoch=f"{min(e.epoch + 1, e.epochs)}/{e.epochs}", acc=acc)

    def _end(self, event: RunFinished | RunStopped | RunFailed) -> None:
        s = event.summary
        status = {RunFinished: "finished", RunStopped: "stopped", RunFailed: "failed"}[type(event)]
        if self.json_out:
            self._json(summary_dict(status, s, getattr(event, "message", None)))
        if isinstance(event, RunFailed):
            self.note(f"dltui: error: {event.message}")
            if s and s.epochs_done and self.started is not None:  # only a run that got going kept anything new
                self.note(f"dltui: metrics of {_epochs(s)} and the last good checkpoint are in {s.run_dir}")
            return
        if isinstance(event, RunStopped):
            if not s.epochs_done:
                self.note("dltui: stopped before the first epoch ended; nothing to continue")
                return
            self.note(
                f"dltui: stopped after {_epochs(s)}; metrics and checkpoint are in {s.run_dir}"
                f"\ndltui: continue with: dltui run --resume {s.run_dir}"
            )
            return
        d = self.started.data if self.started is not None else None
        steps = step_lines(d, self.evaluated) if d is not None and self.evaluated is not None else []
        text = summary_text(s, test_is_train=d is not None and d.spec.test_is_train, predictions=steps)
        if self.json_out:
            self._to_log(text)
        else:
            self._print(self.console, text)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _epochs(s: RunSummary) -> str:
    """'4 epochs' or, for a resumed run, '4 epochs (2 in this session)'."""
    text = _plural(s.epochs_done, "epoch")
    if s.start_epoch:
        text += f" ({s.epochs_done - s.start_epoch} in this session, resumed after epoch {s.start_epoch})"
    return text


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


def step_lines(data: Any, ev: EvaluationReady, limit: int = 12) -> list[str]:
    """Per-step data: 'hello → ohlol ✓ 97%' for the first ``limit`` test items."""
    from dltui.render import steps_text

    spell = lambda ids: "".join(data.classes[int(c)] for c in ids)  # noqa: E731
    return [
        steps_text(spell(x), spell(t), spell(p), float(c.prod())).plain
        for x, t, p, c in zip(data.x_test[:limit], ev.y_true, ev.y_pred, ev.confidence, strict=False)
    ]


def summary_text(s: RunSummary, test_is_train: bool = False, predictions: list[str] | tuple[str, ...] = ()) -> str:
    """The end-of-run summary. ``test_is_train``: the lessons' tiny sets, fitted whole (the
    test scores measure the fit); ``predictions``: lines from :func:`step_lines`."""
    f = s.final
    lines = ["", f"done: {_epochs(s)} in {s.wall_s:.1f}s, {s.samples_per_s:,.0f} training samples/s"]
    if s.stop_reason:
        lines.append(s.stop_reason)
    if f is not None:
        if f.test_acc is not None:
            lines.append(f"final: test_acc {f.test_acc:.4f}  test_loss {f.test_loss:.4g}  train_acc {_f(f.train_acc)}")
        else:
            lines.append(f"final: test_mse {f.test_loss:.4g}  train_mse {f.train_loss:.4g}")
        if s.best_epoch is not None:  # chosen by validation, never by test
            acc, loss = s.best_test_acc, s.best_test_loss
            test = f"test_acc {acc:.4f}" if acc is not None else f"test_loss {loss:.4g}"
            lines.append(f"best:  epoch {s.best_epoch} by {s.monitor} {s.best_value:.4g}: {test} (best.pt)")
        if test_is_train:
            lines.append("test = train: the data is fitted whole, so test scores measure the fit, not generalisation")
        lines += fit_lines(f.extras)
    if predictions:
        lines += ["predictions (input → predicted):", *(f"  {p}" for p in predictions)]
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
    console.print(f"{r.path}: {r.config.model} on {r.config.dataset}, {plural(r.epoch, 'epoch')} trained", markup=False)
    if r.acc is not None:
        console.print(f"test accuracy {r.acc:.4f}  test loss {r.loss:.4g}  ({r.n_test:,} test items)", markup=False)
    else:
        console.print(f"test mse {r.loss:.4g}  ({r.n_test:,} test items)", markup=False)
    from dltui.data import DATASETS

    if r.config.dataset in DATASETS and DATASETS[r.config.dataset].test_is_train:
        console.print("test = train: the data is fitted whole, so test scores measure the fit", markup=False)
    for line in fit_lines(r.extras):
        console.print(line, markup=False)
    if r.confusion is not None:
        console.print(confusion_table(r.classes, r.confusion))


def print_datasets(data_dir: str | None, console: Console | None = None) -> None:
    """One line per dataset, 80 columns wide; `dltui datasets NAME` has the rest."""
    from rich import box

    from dltui.config import default_data_dir
    from dltui.data import DATASETS

    root = data_dir or str(default_data_dir())
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for col in ("name", "task", "input", "classes", "train", "test", "offline"):
        numeric = col in ("classes", "train", "test")
        table.add_column(col, justify="right" if numeric else "left", no_wrap=True)
    for s in DATASETS.values():
        table.add_row(
            s.name,
            s.task,
            "x".join(map(str, s.input_shape)),
            str(len(s.classes)) if s.classes else "-",
            f"{s.train_size:,}",
            f"{s.test_size:,}",
            "yes" if s.available_offline(root) else "[yellow]download[/]",
        )
    console = console or Console()
    console.print(table)
    # soft wrap: a long path stays one piece to copy
    console.print(f"\ndata dir: {root}", soft_wrap=True, highlight=False)
    console.print("dltui datasets NAME: classes, recommended settings, models, files, provenance")


def print_dataset(name: str, data_dir: str | None, console: Console | None = None) -> None:
    """Everything about one dataset: what it is, its recommended run, where its files are."""
    from dltui.config import default_data_dir, suggest
    from dltui.data import DATASETS, shipped
    from dltui.errors import DataError
    from dltui.models import compatible_models

    key = name.strip().lower()
    if key not in DATASETS:
        raise DataError(f"unknown dataset '{name}'{suggest(key, tuple(DATASETS))} (choose from: {', '.join(DATASETS)})")
    s = DATASETS[key]
    root = data_dir or str(default_data_dir())
    r = s.recommended
    if s.task == "regression":
        task = "regression, one output"
    else:
        task = f"{s.task}, {len(s.classes)} classes"
    split = "the official split" if s.needs_data_dir else "80/20, drawn by --seed"
    sizes = f"{s.train_size:,} train / {s.test_size:,} test ({split})"
    if s.test_is_train:
        sizes = f"none: all {s.train_size:,} items train and are tested, as in the lesson"
    rec = f"--model {r.model} --epochs {r.epochs} --batch-size {r.batch_size} --lr {r.lr:g} --optimizer {r.optimizer}"
    models = [m + (" (recommended)" if m == r.model else "") for m in compatible_models(s)]
    rows = [
        ("task", task),
        ("classes", ", ".join(s.classes) if s.classes else "-"),
        ("input", f"{'x'.join(map(str, s.input_shape))} ({s.kind})"),
        ("split", sizes),
        ("recommended", rec),
        ("models", ", ".join(models)),
        ("source", s.source),
    ]
    if s.assets:
        rows.append(("files", f"{shipped(s.assets)} (inside dltui; its README.md: provenance, licence)"))
    elif s.folder is not None:
        rows.append(("files", f"{s.folder(root)} (under --data-dir)"))
    offline = s.available_offline(root)
    rows.append(("offline", "yes" if offline else "no: the first run downloads it (torchvision)"))

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value)
    console = console or Console()
    console.print(f"[bold]{s.name}[/]: {s.description}", highlight=False)
    console.print()
    console.print(grid, highlight=False)


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


def print_summary(s: Any, json_out: bool = False, console: Console | None = None) -> None:
    """`dltui summary`: a model's layers as an 80-column table and its totals, or the same
    as one JSON object (``s``: a dltui.models.summary.ModelSummary)."""
    if json_out:
        print(json.dumps(s.to_dict()))
        return
    from dltui.models.summary import summary_table, summary_title, summary_totals

    console = console or Console(highlight=False)
    console.print(summary_title(s), markup=False, highlight=False)
    console.print(summary_table(s))
    for line in summary_totals(s):
        console.print(line, markup=False, highlight=False)


def print_runs(runs: list[Any], json_out: bool = False) -> None:
    """`dltui runs`: the runs table (newest first), or the same as one JSON array."""
    import time

    if json_out:
        print(json.dumps([r.to_dict() for r in runs]))
        return

    table = Table(box=None, padding=(0, 1), header_style="bold")
    for col in ("st", "run", "model", "status", "epoch", "best acc", "last acc", "time", "started"):
        table.add_column(col, justify="right" if col in ("epoch", "best acc", "last acc", "time") else "left")
    from dltui.runs import COLOURS as colour
    from dltui.runs import GLYPHS as glyphs

    acc = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    for r in runs:
        c = colour.get(r.status, "white")
        table.add_row(
            f"[{c}]{glyphs.get(r.status, '?')}[/]", r.name, f"{r.dataset} · {r.model}", f"[{c}]{r.status}[/]",
            f"{r.epochs_done}/{r.epochs}",
            acc(r.best_test_acc), acc(r.last_test_acc), f"{r.wall_s:.0f}s",
            time.strftime("%m-%d %H:%M", time.localtime(r.started)) if r.started else "?",
        )  # fmt: skip
    console = Console(highlight=False)
    if not runs:
        console.print("no runs yet (start one with `dltui run` or in the app)", markup=False)
        return
    console.print(table)


def print_inspection(spec: Any, data: Any, flags: str = "", console: Console | None = None) -> None:
    """`dltui inspect`: what was inferred from a path, as a run will see it."""
    from dltui.models import compatible_models

    console = console or Console(highlight=False)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, text in data.extras.get("report") or []:
        table.add_row(label, text)
    shape = "x".join(map(str, spec.input_shape))
    table.add_row("as dltui sees it", f"{spec.task}, {spec.kind} input {shape}, {len(spec.classes) or '-'} classes")
    table.add_row("models that fit", ", ".join(compatible_models(spec)) or "none")
    rec = spec.recommended
    settings = f"{rec.model}, {rec.epochs} epochs, batch {rec.batch_size}, {rec.optimizer} lr {rec.lr:g}"
    table.add_row("recommended", settings)
    console.print(table)
    for note in data.extras.get("notes") or []:
        console.print(f"note: {note}")
    console.print(f"train: dltui run --dataset {shlex.quote(spec.path)}{flags}")


# --- dltui sweep: the leaderboard ---

SWEEP_COLOURS = {"finished": "green", "pruned": "yellow", "running": "cyan", "failed": "red", "stopped": "yellow",
                 "crashed": "red"}  # fmt: skip


def _seconds(s: float | None) -> str:
    return "-" if s is None else f"{s:.2f}s" if s < 10 else f"{s:.0f}s"


def _setting(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def leaderboard_table(rows: list[Any], metric: str, fields: list[str], limit: int | None = None) -> Table:
    """`dltui sweep`'s table (rows: dltui.sweep.TrialRow, best first): rank, the metric at
    each trial's best epoch, the swept settings, epochs, time, status, and the test accuracy
    at that epoch (shown, never chosen by)."""
    table = Table(box=None, padding=(0, 1), header_style="bold")
    test = "test_acc" if metric.endswith("acc") else "test_loss"  # at the chosen epoch: shown, never chosen by
    for col in ("#", "trial", metric, *fields, "epochs", "time", test.replace("_", " ")):
        table.add_column(col, justify="left" if col in fields else "right")
    table.add_column("status")
    shown = rows if limit is None or len(rows) <= limit else rows[: max(1, limit - 1)]
    for r in shown:
        c = SWEEP_COLOURS.get(r.status, "white")
        epochs = f"{r.epochs_done}/{r.epochs}" if r.epochs else "-"
        table.add_row(
            str(r.rank or "-"), str(r.number), _f(r.value), *(_setting(r.params.get(k, "-")) for k in fields),
            epochs, _seconds(r.seconds), _f(getattr(r, test)),
            f"[{c}]{r.status}[/]",
        )  # fmt: skip
    if len(shown) < len(rows):
        table.add_row("…", f"{len(rows) - len(shown)} more", *[""] * (len(fields) + 5))
    return table


def leaderboard_line(r: Any, metric: str, fields: list[str]) -> str:
    """One trial as a plain line: 'trial 3 finished  val_acc 0.9722  model mlp  lr 0.01  epochs 3/3  2.1s'."""
    parts = [f"trial {r.number} {r.status}"] + ([f"{metric} {_f(r.value)}"] if r.value is not None else [])
    parts += [f"{k} {_setting(r.params.get(k, '-'))}" for k in fields]
    if r.epochs:
        parts.append(f"epochs {r.epochs_done}/{r.epochs}")
    if r.seconds is not None:
        parts.append(_seconds(r.seconds))
    if r.test_acc is not None:
        parts.append(f"test_acc {r.test_acc:.4f}")
    elif r.test_loss is not None:
        parts.append(f"test_loss {r.test_loss:.4g}")
    if r.reason and r.status != "finished":
        parts.append(f"({r.reason})")
    return "  ".join(parts)


class SweepReporter:
    """What `dltui sweep` shows while it runs: on a terminal a live leaderboard (refreshed
    from the study's storage about once a second, so trials of other workers and other
    machines show too) under the progress of this process's trial; otherwise one line per
    ended trial, or one JSON object per ended trial with --json. leaderboard.csv is
    rewritten whenever a trial ends. Use as a context manager around the sweep's work."""

    POLL_S = 1.0

    def __init__(self, sweep: Any, json_out: bool = False, own_only: bool = False, stdout=None, stderr=None):
        import threading
        import time

        self.sweep, self.json_out, self.own_only = sweep, json_out, own_only
        self.metric, self.fields = sweep.spec.metric, sweep.spec.space.fields
        self.out = _SafeStream(stdout or sys.stdout)
        self.console = Console(file=self.out, highlight=False, soft_wrap=True)
        self.err = Console(file=_SafeStream(stderr or sys.stderr), highlight=False, soft_wrap=True)
        self.live_mode = not json_out and not own_only and self.console.is_terminal
        self.rows: list[Any] = []
        self.ended: set[int] = set()  # trials already announced
        self.own = 0  # trials this process ran
        self.current = ""  # this process's trial, for the live view
        self.started = time.monotonic()
        self._lock = threading.RLock()
        self._done = threading.Event()
        self._thread: Any = None
        self._live: Any = None

    def __enter__(self) -> SweepReporter:
        import threading

        with contextlib.suppress(Exception):  # trials ended before this process came (a resume)
            self.ended = {r.number for r in self.sweep.rows() if r.status not in ("running",)}
        if self.live_mode:
            from rich.live import Live

            self._live = Live(console=self.console, get_renderable=self._render, refresh_per_second=4, transient=True)
            self._live.start()
        if not self.own_only:
            self._thread = threading.Thread(target=self._watch, name="dltui-sweep-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.poll()
        if self._live is not None:
            with contextlib.suppress(OSError, ValueError):
                self._live.stop()
            self._live = None

    def info(self, text: str) -> None:
        """A line for the user: stdout, or stderr where stdout is JSON."""
        console = self.err if self.json_out else self.console
        with self._lock:
            console.print(text, markup=False)

    def _watch(self) -> None:
        while not self._done.wait(self.POLL_S):
            with contextlib.suppress(Exception):  # a storage hiccup: the next poll tries again
                self.poll()

    def poll(self) -> None:
        """Read the leaderboard from the storage; announce trials that ended since; rewrite
        leaderboard.csv when anything changed."""
        with self._lock:
            try:
                rows = self.sweep.rows()
            except Exception:
                return
            changed = [(r.number, r.status) for r in rows] != [(r.number, r.status) for r in self.rows]
            self.rows = rows
            for r in sorted(rows, key=lambda r: r.number):
                if r.status != "running" and r.number not in self.ended:
                    self.ended.add(r.number)
                    if not self.own_only:
                        self._announce(r)
            if changed:
                with contextlib.suppress(OSError):
                    self.sweep.write_leaderboard(rows)

    def trial(self, frozen: Any) -> None:
        """Optuna's after-trial callback in this process: announce at once."""
        self.own += 1
        if self.own_only:
            with self._lock:
                row = next((r for r in self.sweep.rows() if r.number == frozen.number), None)
                if row is not None and row.number not in self.ended:
                    self.ended.add(row.number)
                    self._announce(row)
        else:
            self.poll()
        self.current = ""

    def _announce(self, r: Any) -> None:
        if self.json_out:
            self.out.write(json.dumps({"event": "trial", **r.to_dict(self.metric)}) + "\n")
            self.out.flush()
        elif not self.live_mode:
            self.console.print(leaderboard_line(r, self.metric, self.fields), markup=False)

    def event(self, number: int, event: Event) -> None:
        """The engine's events of this process's trial (the training thread): its progress."""
        if not self.live_mode:
            return
        label = f"trial {number}"
        if isinstance(event, RunStarted):
            self.current = f"{label}: starting {event.config.model}"
        elif isinstance(event, BatchProgressed):
            step = f"step {event.step}/{event.steps}  loss {event.loss:.4g}"
            self.current = f"{label}: epoch {event.epoch}/{event.epochs}  {step}"
        elif isinstance(event, EpochEnded):
            value = getattr(event, self.metric, None)
            self.current = f"{label}: epoch {event.epoch}/{event.epochs} done  {self.metric} {_f(value)}"

    def _render(self) -> Any:
        import time

        from rich.console import Group
        from rich.text import Text

        with self._lock:
            rows = list(self.rows)
        spec = self.sweep.spec
        done = sum(r.status not in ("running",) for r in rows)
        running = sum(r.status == "running" for r in rows)
        elapsed = _eta(time.monotonic() - self.started)
        head = f"sweep {spec.name}: {done}/{spec.trials} trials, {running} running, by {self.metric} | {elapsed}"
        limit = max(3, self.console.size.height - 6)
        parts: list[Any] = [Text(head, style="bold"), leaderboard_table(rows, self.metric, self.fields, limit)]
        if self.current:
            parts.append(Text(self.current, style="cyan"))
        return Group(*parts)

    def finish(self, outcome: str, workers: int = 1) -> None:
        """The final table, the best trial and its `dltui run` line, and how to continue."""
        rows = self.rows
        spec, where = self.sweep.spec, self.sweep.dir
        best = self.sweep.best(rows)
        if self.json_out:
            line = {"event": "sweep", "status": outcome, "name": spec.name, "metric": self.metric,
                    "trials": len(rows), "dir": str(where)}  # fmt: skip
            if best is not None:
                line |= {"best": best.to_dict(self.metric), "command": self.sweep.run_command(best)}
            self.out.write(json.dumps(line) + "\n")
            self.out.flush()
        elif not self.own_only:
            self.console.print(leaderboard_table(rows, self.metric, self.fields))
        if self.own_only:
            if not self.own:
                self.info(f"dltui: sweep {spec.name}: no trial was left for this worker")
            return
        if best is not None:
            settings = "  ".join(f"{k} {_setting(best.params.get(k))}" for k in self.fields)
            at = f"{self.metric} {_f(best.value)} (epoch {best.best_epoch})"
            self.info(f"best: trial {best.number}, {at}: {settings}")
            self.info(f"train it alone: {self.sweep.run_command(best)}")
        else:
            self.info("no trial finished")
        reasons: dict[str, list[str]] = {}
        for r in rows:
            if r.status in ("failed", "crashed") and r.reason:
                reasons.setdefault(r.reason, []).append(str(r.number))
        for reason, numbers in reasons.items():
            self.info(f"failed: trial{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}: {reason}")
        self.info(f"leaderboard: {where / 'leaderboard.csv'}")
        if outcome == "stopped":
            self.info(f"dltui: sweep stopped; continue with: dltui sweep --resume {where}")
        elif outcome == "timeout":
            self.info(f"dltui: --timeout reached; continue with: dltui sweep --resume {where}")
