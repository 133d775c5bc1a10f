"""The dltui app: a face over the headless engine. It owns the run state and routes the
engine's events (arriving as messages from the training thread) down to the widgets."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, RichLog, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from dltui.tui.charts import Charts
from dltui.tui.confusion import ConfusionGrid
from dltui.tui.messages import (
    BatchDone,
    EngineBroken,
    EngineReady,
    EpochDone,
    EvaluationDone,
    RunBegan,
    RunEnded,
    StartRequested,
)
from dltui.tui.progress import ProgressLine
from dltui.tui.sampler import Sampler
from dltui.tui.screens import ConfirmQuitScreen, KeysScreen
from dltui.tui.setup import SetupForm
from dltui.tui.state import Curves, shown_path

DRAW_INTERVAL_S = 0.5  # charts and sampler redraw at most this often, however fast epochs come
TABS = ("setup", "charts", "confusion", "samples", "log")
TAB_ACTIONS = {"clear_old": "charts", "new_sample": "samples", "mistakes": "samples", "all_items": "samples"}
_catalog: tuple[dict[str, list[tuple[str, int]]], bool] | None = None  # per process: probing models costs ~2 s


class DltuiApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "dltui"
    # below 80x24 the screen gets -narrow / -short and shows a "too small" notice instead
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (80, "-normal"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (24, "-normal-height"), (40, "-tall")]
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "keys", "Keys", key_display="?"),
        Binding("r", "start", "Start"),
        Binding("s", "stop", "Stop"),
        Binding("x", "clear_old", "Clear old curves"),
        Binding("n", "new_sample", "New draw"),
        Binding("m", "mistakes", "Mistakes"),
        Binding("c", "all_items", "All"),
        *(Binding(str(i + 1), f"tab('{tab}')", tab.title(), show=False) for i, tab in enumerate(TABS)),
    ]

    def __init__(
        self,
        options: dict[str, object] | None = None,
        start: bool = False,
        *,
        masked: bool = False,
        trainer: Callable[..., Any] | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        self.options = dict(options or {})
        self.autostart = start
        self.masked = masked  # hide machine-dependent numbers (snapshot tests)
        self.trainer = trainer  # None: dltui.engine.train (tests inject a filtering wrapper)
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)  # leave the UI a core
        self.running = False
        self.curves: Curves | None = None
        self.last_epoch: Any = None
        self._stop = threading.Event()
        self._points: deque[tuple[float, float]] = deque()  # (fractional epoch, loss) from the trainer
        self._quit_pending = False
        self._dirty: set[str] = set()  # "charts" / "sampler": redrawn by the next _draw_tick
        self._train_idle = threading.Event()  # clear while the engine runs in the worker
        self._train_idle.set()
        self.log_lines: deque[str] = deque(maxlen=1000)  # what the Log tab holds, readable while hidden

    def compose(self) -> ComposeResult:
        yield ProgressLine(masked=self.masked, id="progress")
        with TabbedContent(initial="setup", id="tabs"):
            with TabPane("1 Setup", id="setup"):
                yield SetupForm(self.options, id="form")
            with TabPane("2 Charts", id="charts"):
                yield Charts(id="charts-view")
            with TabPane("3 Confusion", id="confusion"):
                yield ConfusionGrid(id="grid")
            with TabPane("4 Samples", id="samples"):
                yield Sampler(id="sampler")
            with TabPane("5 Log", id="log"):
                yield RichLog(max_lines=1000, wrap=True, markup=True, min_width=20, id="log-view")
        yield Static("terminal too small (need 80×24)", id="too-small")
        yield Footer(show_command_palette=False)  # ^p still opens it; the 80 columns go to our keys

    def on_mount(self) -> None:
        self._warm_up(self.query_one(SetupForm).dataset)
        self.set_interval(DRAW_INTERVAL_S, self._draw_tick)

    def _draw_tick(self) -> None:
        """Draw what changed since the last tick. Plotext and half-block drawing hold the GIL
        the training thread needs, so they never run per event."""
        if "charts" in self._dirty:
            self.query_one(Charts).redraw()
        if "sampler" in self._dirty:
            self.query_one(Sampler).redraw()
        self._dirty.clear()

    # --- loading the engine after the first paint ---

    @work(thread=True, exclusive=True, exit_on_error=False, group="warmup", description="loading torch")
    def _warm_up(self, first: str) -> None:
        global _catalog
        try:
            if _catalog is None:
                import torch

                import dltui.engine  # noqa: F401 - warm the import the run needs
                from dltui.data import DATASETS
                from dltui.models import compatible_models, param_count

                catalog = {}
                for name in [first, *(d for d in DATASETS if d != first)]:
                    spec = DATASETS[name]
                    catalog[name] = [(m, param_count(m, spec)) for m in compatible_models(spec)]
                _catalog = (catalog, torch.cuda.is_available())
        except Exception as exc:  # a broken install must not take the window down
            self.post_message(EngineBroken(f"cannot load the engine: {type(exc).__name__}: {exc}"))
            return
        self.post_message(EngineReady(*_catalog))

    def on_engine_ready(self, message: EngineReady) -> None:
        self.query_one(SetupForm).engine_ready(message.catalog, message.cuda)
        self.query_one(ProgressLine).ready()
        self.log_line("engine ready" + (" (CUDA available)" if message.cuda else " (CPU only)"))
        self.refresh_bindings()
        if self.autostart:
            self.action_start()

    def on_engine_broken(self, message: EngineBroken) -> None:
        self.notify(message.message, severity="error", timeout=30)
        self.log_line(f"[red]{message.message}[/red]")

    # --- training ---

    @on(StartRequested)
    def _start(self, message: StartRequested) -> None:
        if self.running:
            return
        self.running = True
        self._stop.clear()
        self._points.clear()
        self.query_one(SetupForm).set_running(True)
        self.query_one(TabbedContent).active = "charts"
        cfg = message.config
        self.log_line(f"starting {cfg.dataset} · {cfg.model} · {cfg.epochs} epochs · lr {cfg.lr:g} · {cfg.optimizer}")
        self.refresh_bindings()
        self._train_idle.clear()
        self._train(cfg)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train", description="training")
    def _train(self, cfg: Any) -> None:
        """Runs the engine. Only posts messages: the UI thread does all drawing."""
        from dltui.engine import BatchProgressed, EpochEnded, EvaluationReady, RunStarted, train

        worker = get_current_worker()
        wrap = {RunStarted: RunBegan, EpochEnded: EpochDone, EvaluationReady: EvaluationDone}

        def callback(event: Any) -> None:
            if isinstance(event, BatchProgressed):
                self._points.append((event.epoch - 1 + event.step / event.steps, event.loss))
                self.post_message(BatchDone(event))
            else:
                self.post_message(wrap.get(type(event), RunEnded)(event))

        should_stop = lambda: self._stop.is_set() or worker.is_cancelled  # noqa: E731
        try:
            (self.trainer or train)(cfg, callback, should_stop, threads=self.threads)
        finally:
            self._train_idle.set()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "train" and event.state == WorkerState.ERROR:
            # the engine already posted RunFailed; this is the traceback side of a bug
            self.log_line(f"[red]training thread crashed: {event.worker.error!r}[/red]")
            self._run_over()

    def on_run_began(self, message: RunBegan) -> None:
        ev = message.event
        data, cfg = ev.data, ev.config
        regression = data.task == "regression"
        self.curves = Curves(f"{cfg.dataset} · {cfg.model}", regression)
        self.query_one(Charts).begin(self.curves)
        self.query_one(ProgressLine).started(ev)
        note = "regression: no classes, see the fit view in Charts (2)" if regression else "waiting for epoch 1…"
        self.query_one(ConfusionGrid).reset(data.classes, note)
        self.query_one(Sampler).set_data(data)
        where = "··" if self.masked else shown_path(ev.run_dir)
        self.log_line(f"{cfg.model}: {ev.n_params:,} parameters · {ev.steps_per_epoch} steps/epoch · run dir {where}")

    def _drain(self) -> None:
        points = []
        while self._points:
            points.append(self._points.popleft())
        if self.curves is not None and points:
            self.curves.add_steps(points)

    def on_batch_done(self, message: BatchDone) -> None:
        self._drain()
        self._dirty.add("charts")
        self.query_one(ProgressLine).batch(message.event)

    def on_epoch_done(self, message: EpochDone) -> None:
        ev = message.event
        self._drain()
        self.last_epoch = ev
        if self.curves is not None:
            self.curves.add_epoch(ev.epoch, ev.train_loss, ev.test_loss, ev.train_acc, ev.test_acc)
        self._dirty.add("charts")
        self.query_one(ProgressLine).epoch(ev)
        acc = f" · train acc {ev.train_acc:.1%} · test acc {ev.test_acc:.1%}" if ev.test_acc is not None else ""
        secs = "··" if self.masked else f"{ev.seconds:.2f}s"
        losses = f"train loss {ev.train_loss:.4f} · test loss {ev.test_loss:.4f}"
        self.log_line(f"epoch {ev.epoch}/{ev.epochs} · {losses}{acc} · {secs}")

    def on_evaluation_done(self, message: EvaluationDone) -> None:
        ev = message.event
        sampler = self.query_one(Sampler)
        if ev.confusion is not None:
            self.query_one(ConfusionGrid).show(ev.confusion, ev.epoch)
        elif sampler.data is not None:
            extras = self.last_epoch.extras if self.last_epoch else {}
            x = sampler.data.x_test.tolist()
            self.query_one(Charts).show_fit(x, ev.y_true.tolist(), ev.y_pred.tolist(), extras)
        sampler.set_eval(ev)  # stores; drawn by the next _draw_tick
        self._dirty.add("sampler")

    def on_run_ended(self, message: RunEnded) -> None:
        from dltui.engine import RunFailed, RunFinished

        ev = message.event
        summary = ev.summary
        status = "finished" if isinstance(ev, RunFinished) else "failed" if isinstance(ev, RunFailed) else "stopped"
        self.query_one(ProgressLine).ended(status, summary.run_dir if summary else "")
        self._draw_tick()  # the final state at once, not half a second later
        if isinstance(ev, RunFailed):
            hint = "Fix the setup (1) and start again (r)."
            self.notify(f"{ev.message}\n{hint}", title="Run failed", severity="error", timeout=15)
            self.log_line(f"[red]run failed: {ev.message}[/red]")
        else:
            best = f" · best test acc {summary.best_test_acc:.1%}" if summary.best_test_acc is not None else ""
            text = f"{status} after {summary.epochs_done} epochs{best}"
            self.notify(text, title=f"Run {status}", timeout=6)
            where = "··" if self.masked else shown_path(summary.run_dir)
            self.log_line(f"{text} · saved in {where}")
        self._run_over()

    def _run_over(self) -> None:
        self.running = False
        self.query_one(SetupForm).set_running(False)
        self.refresh_bindings()
        if self._quit_pending:
            self.exit(0)

    def join_training(self, timeout: float = 30.0) -> bool:
        """Stop the engine and wait until it has returned (after the app closed), so no
        training is left running behind the shell prompt. True when it has."""
        self._stop.set()
        return self._train_idle.wait(timeout)

    # --- actions ---

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in TAB_ACTIONS:
            return self.query_one(TabbedContent).active == TAB_ACTIONS[action]
        if action == "start":
            return None if self.running or self.query_one(SetupForm).catalog is None else True
        if action == "stop":
            return True if self.running else None
        return True

    def action_start(self) -> None:
        self.query_one(SetupForm).request_start()

    def action_stop(self) -> None:
        if self.running and not self._stop.is_set():
            self._stop.set()
            self.log_line("stop requested")

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_clear_old(self) -> None:
        if self.query_one(Charts).clear_old():
            self.notify("previous run's curves cleared", timeout=2)

    def action_new_sample(self) -> None:
        self.query_one(Sampler).new_sample()

    def action_mistakes(self) -> None:
        self.query_one(Sampler).toggle_mistakes()

    def action_all_items(self) -> None:
        self.query_one(Sampler).clear_filter()

    def action_keys(self) -> None:
        self.push_screen(KeysScreen())

    async def action_quit(self) -> None:
        if not self.running:
            self.exit(0)
            return

        def answered(stop: bool | None) -> None:
            if stop:
                self._quit_pending = True
                self._stop.set()
                self.notify("stopping the run, then quitting…", timeout=5)

        self.push_screen(ConfirmQuitScreen(), answered)

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        pane = event.pane.id
        target = {"confusion": ConfusionGrid, "samples": Sampler, "log": RichLog}.get(pane or "")
        if target is not None:
            self.query_one(target).focus()
        if pane == "samples":
            self.call_after_refresh(self.query_one(Sampler).redraw)  # it may have been drawn while hidden

    def on_confusion_grid_cell_selected(self, message: ConfusionGrid.CellSelected) -> None:
        self.query_one(Sampler).filter_cell(message.true, message.pred)
        self.query_one(TabbedContent).active = "samples"

    def on_unmount(self) -> None:
        self._stop.set()  # any exit path stops the engine at its next batch

    def log_line(self, text: str) -> None:
        self.log_lines.append(text)
        self.query_one("#log-view", RichLog).write(text)


def make_app(options: dict[str, object] | None = None, start: bool = False, **kwargs: Any) -> DltuiApp:
    """The app factory the CLI and the tests share."""
    return DltuiApp(options, start, **kwargs)


def run_app(options: dict[str, object], start: bool) -> int:
    """Entry point for ``dltui`` without a subcommand; returns the exit code."""
    app = make_app(options, start)
    app.run()
    app.join_training()
    return app.return_code or 0
