"""The dltui app: a launcher and viewer over run directories.

Every training is its own `dltui run` process, started in a session of its own (so the
terminal's hang-up never reaches it) with its output in the run's run.log. The app
attaches to a run by following its directory (events.jsonl, evaluation.npz; see
dltui/runs.py), the same way for a run it launched, one started in another shell, by a
sweep, or on another machine writing to a shared file system. Quitting leaves runs
training unless the user asks to stop them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, RichLog, Select, Static, TabbedContent, TabPane

from dltui.errors import EXIT_USAGE
from dltui.tui.charts import Charts
from dltui.tui.confusion import ConfusionGrid
from dltui.tui.dashboard import MIN_SIZE, Dashboard, StatsCard
from dltui.tui.messages import EngineBroken, EngineReady, StartRequested
from dltui.tui.model_view import ModelView
from dltui.tui.progress import ProgressLine
from dltui.tui.runs_view import RunsTable
from dltui.tui.sampler import Sampler
from dltui.tui.screens import ConfirmQuitScreen, DivergedScreen, KeysScreen, LearningRateScreen
from dltui.tui.setup import SetupForm
from dltui.tui.state import Curves, RunStats, shown_path
from dltui.tui.sweeps_view import LeaderboardTable, SweepBoard, last_line
from dltui.words import plural

# charts and sampler redraw at most this often, however fast epochs come: drawing them is
# most of what the app costs a run beside it (measured: plotext and repainting were ~90 %
# of the app's CPU, reading events.jsonl 2 %)
DRAW_INTERVAL_S = 1.0
POLL_INTERVAL_S = 0.25  # the attached run's events.jsonl is read this often
SCAN_INTERVAL_S = 2.0  # the runs table, compared runs and the attached run's liveness
TABS = ("runs", "setup", "charts", "confusion", "samples", "log", "dashboard", "summary", "sweep")
TAB_ACTIONS = {"clear_old": "charts", "new_sample": "samples", "mistakes": "samples", "all_items": "samples"}
_catalog: tuple[dict[str, list[tuple[str, int]]], bool] | None = None  # per process: probing models costs ~2 s


def run_args(cfg: Any) -> list[str]:
    """`dltui run` flags that reproduce ``cfg`` exactly (every field resolved)."""
    args = []
    for key, value in cfg.to_dict().items():
        if key == "augment" and value is False:
            args.append("--no-augment")  # off where the dataset's default is on
            continue
        if value is None or value is False or key in ("threads", "out", "data_schema"):
            # threads: the run's own default, every core (the UI is another process); out: the
            # caller's; data_schema: the run infers it again from the path and the settings
            continue
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    return args


class DltuiApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "dltui"
    # below 80x24 the screen gets -narrow / -short and shows a "too small" notice instead
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (80, "-normal"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (24, "-normal-height"), (40, "-tall")]
    BINDINGS = [
        # a text field takes letter keys, and the footer drops the keys it takes: the
        # control and function keys after each letter keep Quit, Keys and Start listed
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("question_mark", "keys", "Keys", key_display="?"),
        Binding("f1", "keys", "Keys"),
        Binding("r", "start", "Start"),
        Binding("ctrl+r", "start", "Start"),
        Binding("r", "start_sweep", "Start sweep"),  # instead of Start while a Setup field holds several values
        Binding("ctrl+r", "start_sweep", "Start sweep"),
        Binding("s", "stop", "Stop"),
        # a live run's requests (control.jsonl): shown only while the attached run is alive,
        # in short words: with them the footer just fits 80 columns
        Binding("L", "set_lr", "lr"),
        Binding("k", "checkpoint", "Ckpt"),
        Binding("S", "stop_after_epoch", "Stop@epoch"),
        Binding("x", "clear_old", "Clear compare"),
        Binding("l", "log_scale", "Log loss"),
        Binding("a", "lr_chart", "Acc/lr", show=False),  # said in the charts' legend: the footer is full
        Binding("n", "new_sample", "New draw"),
        Binding("m", "mistakes", "Mistakes"),
        Binding("c", "all_items", "All"),
        Binding("ctrl+s", "save_screen", "Screenshot"),
        *(Binding(str(i + 1), f"tab('{tab}')", tab.title(), show=False) for i, tab in enumerate(TABS)),
    ]

    def __init__(
        self,
        options: dict[str, object] | None = None,
        start: bool = False,
        *,
        masked: bool = False,
        images: str = "halfblock",
        runs_dir: str | Path | None = None,
        watch: str | Path | None = None,
    ) -> None:
        super().__init__()
        from dltui.runs import default_runs_dir

        self.images = images  # how the sampler draws images: pixels.detect() decides, before the app runs
        self.options = dict(options or {})
        self.autostart = start
        self.masked = masked  # hide machine-dependent numbers (snapshot tests)
        self.runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
        self.watch = Path(watch) if watch else None
        self.attached: Path | None = None
        self.watcher: Any = None  # dltui.runs.RunWatcher of the attached run
        self.running = False  # the attached run is alive
        self.live = False  # its writer holds the lock: it reads requests (L, k, S)
        self.run_config: Any = None  # the attached run's TrainConfig, as it recorded it
        self._history = False  # reading what an attached run wrote before: notes are logged, not toasted
        self.ended = False  # the attached run's final event was seen
        self.launched: dict[Path, subprocess.Popen] = {}  # runs this app started (reaped as they end)
        self.curves: Curves | None = None
        self.stats = RunStats()  # the dashboard's stats card

        from dltui.sysinfo import Sampler as MachineSampler

        self._machine = MachineSampler()
        self.compared: list[Path] = []
        self.last_epoch: Any = None
        self._quit_pending = False
        self._dirty: set[str] = set()  # "loss" / "charts" (both) / "sampler": redrawn by the next _draw_tick
        self.log_lines: list[str] = []  # what the Log tab holds, readable while hidden
        self._log_stale = False  # log_lines has lines the (hidden) Log view does not

    def compose(self) -> ComposeResult:
        yield ProgressLine(masked=self.masked, id="progress")
        with TabbedContent(initial="setup" if self.options or self.autostart else "runs", id="tabs"):
            with TabPane("1 Runs", id="runs"):
                yield RunsTable(masked=self.masked, id="runs-table")
            with TabPane("2 Setup", id="setup"):
                yield SetupForm(self.options, id="form")
            with TabPane("3 Charts", id="charts"):
                yield Charts(id="charts-view")
            with TabPane("4 Confusion", id="confusion"):
                yield ConfusionGrid(id="grid")
            with TabPane("5 Samples", id="samples"):
                yield Sampler(self.images, id="sampler")
            with TabPane("6 Log", id="log"):
                yield RichLog(max_lines=1000, wrap=True, markup=True, min_width=20, id="log-view")
            with TabPane("7 Dashboard", id="dashboard"):  # shown at 120x40 and up
                yield Dashboard(self.images, id="dashboard-view")
            with TabPane("8 Model", id="summary"):  # not id "model": the Setup menu has it
                yield ModelView(id="model-view")
            with TabPane("9 Sweep", id="sweep"):  # shown once there is a sweep to show
                yield SweepBoard(masked=self.masked, id="sweep-board")
        yield Static("terminal too small (need 80×24)", id="too-small")
        yield Footer(show_command_palette=False)  # ^p still opens it; the 80 columns go to our keys

    def on_mount(self) -> None:
        self._catch_signals()
        self._warm_up(self.query_one(SetupForm).dataset)
        self.set_interval(DRAW_INTERVAL_S, self._draw_tick)
        self.set_interval(POLL_INTERVAL_S, self._poll)
        self.set_interval(SCAN_INTERVAL_S, self._scan)
        self.query_one(TabbedContent).hide_tab("sweep")  # until there is a sweep (_scan)
        self._scan()
        if self.watch is not None:
            self.attach(self.watch)

    def _draw_tick(self) -> None:
        """Draw what changed since the last tick: plotext and half-block drawing never run
        per event."""
        active = self.query_one(TabbedContent).active
        shown = {"charts": "#charts-view", "dashboard": "#dash-charts"}.get(active)
        if shown and self._dirty & {"loss", "charts"}:  # hidden charts wait for their tab
            self.query_one(shown, Charts).redraw(acc="charts" in self._dirty)
            self._dirty -= {"loss", "charts"}
        if "sampler" in self._dirty:
            self.query_one("#sampler", Sampler).redraw()
            self.query_one("#dash-sampler", Sampler).redraw()
            self._dirty.discard("sampler")
        if active == "dashboard":
            self.query_one(StatsCard).show(self.stats, self._machine.sample(), self.masked)

    # --- loading the engine (for the Setup form's menus) after the first paint ---

    @work(thread=True, exclusive=True, exit_on_error=False, group="warmup", description="loading torch")
    def _warm_up(self, first: str) -> None:
        global _catalog
        try:
            if _catalog is None:
                import torch

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
        if self.attached is None:
            self.query_one(ProgressLine).ready()
        self.log_line("engine ready" + (" (CUDA available)" if message.cuda else " (CPU only)"))
        self.refresh_bindings()
        if self.autostart:
            self.autostart = False
            self.action_start()

    def on_engine_broken(self, message: EngineBroken) -> None:
        self.notify(message.message, severity="error", timeout=30)
        self.log_line(f"[red]{message.message}[/red]")

    # --- launching runs: each its own `dltui run` process ---

    @on(StartRequested)
    def _start(self, message: StartRequested) -> None:
        from dltui.runs import is_run_dir

        cfg = message.config
        if cfg.out and is_run_dir(Path(cfg.out)):  # the run would refuse it, and we would show the old run
            self.notify(
                f"--out {cfg.out} already holds a run: continue it from Runs (1, r), or start without --out",
                title="Not started",
                severity="error",
                timeout=8,
            )
            return
        out = Path(cfg.out) if cfg.out else self._new_run_dir(cfg)
        what = f"{cfg.dataset_label} · {cfg.model_label} · {plural(cfg.epochs, 'epoch')}"
        what += f" · lr {cfg.lr:g} · {cfg.optimizer}"
        self.log_line(f"starting {what}")
        self._launch(["run", *run_args(cfg), "--out", str(out)], out)

    def _new_run_dir(self, cfg: Any) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{stamp}-{cfg.dataset_label}-{cfg.model_label}"  # labels: a path or FILE.py:NAME is no name
        path, n = self.runs_dir / name, 2
        while path.exists():
            path, n = self.runs_dir / f"{name}-{n}", n + 1
        return path

    def _launch(self, args: list[str], out: Path, attach: bool = True, log_name: str = "run.log") -> bool:
        """Start `dltui ARGS` detached from this terminal, its output in OUT/LOG_NAME, and
        attach to OUT (a run; a sweep's leaderboard is shown instead)."""
        try:
            out.mkdir(parents=True, exist_ok=True)
            with open(out / log_name, "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "dltui", *args],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,  # its own session: SIGHUP to this terminal never reaches it
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
        except OSError as exc:
            self.notify(f"cannot start a run in {out}: {exc.strerror or exc}", severity="error", title="Not started")
            return False
        self.launched[out.resolve()] = proc
        if attach:
            self.attach(out, continuing="--resume" in args)
        self._scan()
        return True

    def _reap(self) -> None:
        """Collect launched runs that ended (no zombies); the attached one is kept until its
        end is shown, for its exit code."""
        attached = self.attached.resolve() if self.attached is not None and not self.ended else None
        for path, proc in list(self.launched.items()):
            if proc.poll() is not None and path != attached:
                del self.launched[path]

    # --- attaching: following one run's directory ---

    def attach(self, path: Path, continuing: bool = False) -> None:
        """Follow ``path``: its whole story, or (``continuing``, a run this app just resumed)
        only what its new process writes."""
        from dltui.runs import RunWatcher

        self.attached, self.watcher = Path(path), RunWatcher(path, from_end=continuing)
        self.running, self.ended, self.curves, self.last_epoch = True, False, None, None
        self.live, self.run_config = False, None
        self.query_one(ProgressLine).attaching(shown_path(str(path)) if not self.masked else "··")
        self.query_one(TabbedContent).active = "dashboard" if self._roomy() else "charts"
        self._history = True
        try:
            self._poll()
        finally:
            self._history = False
        self.refresh_bindings()

    def _roomy(self) -> bool:
        return self.size.width >= MIN_SIZE[0] and self.size.height >= MIN_SIZE[1]

    def on_resize(self) -> None:
        """The dashboard tab exists at 120x40 and up; below, its views are the other tabs."""
        tabs = self.query_one(TabbedContent)
        if self._roomy():
            tabs.show_tab("dashboard")
        else:
            if tabs.active == "dashboard":
                tabs.active = "charts"
            tabs.hide_tab("dashboard")

    def _poll(self) -> None:
        """Feed the attached run's new events to the widgets, as the engine's events."""
        from dltui.engine import BatchProgressed, EpochEnded, EvaluationReady, RunStarted
        from dltui.engine.events import RunNoted
        from dltui.runs import engine_event

        self._reap()
        if self.watcher is None:
            return
        points = []
        lines = self.watcher.poll()
        # a run continued since: an earlier session's final line is history, not news (no toast)
        restarted = max((i for i, line in enumerate(lines) if line.get("event") == "started"), default=-1)
        for i, line in enumerate(lines):
            if i < restarted and line.get("event") in ("finished", "stopped", "failed"):
                continue
            event = engine_event(self.watcher, line, self.last_epoch)
            if isinstance(event, BatchProgressed):
                points.append((event.epoch - 1 + event.step / event.steps, event.loss))
                last_progress = event
            elif event is not None:
                if points and self.curves is not None:
                    self.curves.add_steps(points)
                    points = []
                if isinstance(event, RunStarted):
                    self._began(event)
                elif isinstance(event, EpochEnded):
                    self._epoch(event)
                elif isinstance(event, EvaluationReady):
                    self._evaluated(event)
                elif isinstance(event, RunNoted):
                    self._noted(event, toast=not self._history and i > restarted)
                else:
                    self._ended(event)
        if points and self.curves is not None:
            self.curves.add_steps(points)
            self._dirty.add("loss")  # the accuracy chart changes only at epochs
            self.query_one(ProgressLine).batch(last_progress)
            self.stats.progress(last_progress)

    def _check_alive(self) -> None:
        """A run whose writer is gone without a final event crashed (kill -9, OOM), unless
        it said why it ended elsewhere: the exit code and run.log of a process this app
        started (a refused --resume writes no event), or summary.json (written just before
        the final event, which a kill or a full disk can cut short)."""
        from dltui.runs import engine_event, lock_held, read_run

        if self.attached is None or self.ended or not self.running:
            return
        if not self.attached.exists():
            self.running = False
            self.query_one(ProgressLine).ended("deleted", "the run directory was removed")
            return
        held = lock_held(self.attached)
        if held != self.live:  # L, k and S show while the run can hear them
            self.live = held
            self.refresh_bindings()
        self._poll()  # a run writes its final line before it lets go of the lock
        proc = self.launched.get(self.attached.resolve())
        if held or self.ended or (proc is not None and proc.poll() is None):
            return
        info = read_run(self.attached)
        if proc is not None and proc.returncode > 0:  # it exited saying why, in its log
            why = last_line(self.attached / "run.log") or f"exit {proc.returncode}"
            line: dict[str, Any] = {"event": "failed", "message": why.removeprefix("dltui: error: ")}
        elif info is not None and info.status in ("finished", "stopped", "failed"):
            said = {"epochs_done": info.epochs_done, "best_test_acc": info.best_test_acc, "wall_s": info.wall_s}
            line = {"event": info.status, "message": info.error, "summary": said}
        elif proc is not None and proc.returncode == -signal.SIGTERM:  # stopped before it took its lock
            line = {"event": "stopped"}
        else:  # killed by a signal, or by the machine
            line = {"event": "crashed"}
        self._ended(engine_event(self.watcher, line, self.last_epoch))

    def _began(self, ev: Any) -> None:
        from dltui.runs import lock_held, read_curves

        self.running, self.ended = True, False  # also when a run ended once and was continued
        data, cfg = ev.data, ev.config
        self.run_config = cfg
        self.live = lock_held(ev.run_dir)
        regression = data.task == "regression"
        name = f"{cfg.dataset} · {cfg.model}"
        # a continued run keeps the curves of its epochs before the restart (metrics.csv's)
        self.curves = read_curves(ev.run_dir, name, up_to=ev.start_epoch) if ev.start_epoch else Curves(name)
        self.curves.regression = regression
        for charts in self.query(Charts):
            charts.begin(self.curves)
        self.query_one(ProgressLine).started(ev)
        self.stats.started(ev)
        if regression:
            note = "regression: no classes, see the fit view in Charts (3)"
        elif data.x_test is None:
            note = "this run kept no evaluation (an older dltui): its curves are in Charts (3)"
        else:
            note = "waiting for epoch 1…"
        for grid in self.query(ConfusionGrid):
            grid.reset(data.classes, note)
        for sampler in self.query(Sampler):
            sampler.set_data(data)  # also for a run without test items: drops the last run's
        self.query_one(ModelView).follow_run(cfg.model, cfg.dataset)
        where = "··" if self.masked else shown_path(ev.run_dir)
        self.log_line(f"{cfg.model}: {ev.n_params:,} parameters · {ev.steps_per_epoch} steps/epoch · run dir {where}")
        for note in ev.notes:  # settings not applied, columns dropped, files skipped
            self.log_line(f"[yellow]note:[/yellow] {escape(note)}")
        self.refresh_bindings()

    def _epoch(self, ev: Any) -> None:
        self.last_epoch = ev
        if self.curves is not None:
            self.curves.add_epoch(ev.epoch, ev.train_loss, ev.test_loss, ev.train_acc, ev.test_acc)
            self.curves.add_extra(ev.epoch, ev.lr, ev.val_loss, ev.val_acc)
        self._dirty.add("charts")
        self.query_one(ProgressLine).epoch(ev)
        self.stats.ended_epoch(ev)
        acc = f" · train acc {ev.train_acc:.1%} · test acc {ev.test_acc:.1%}" if ev.test_acc is not None else ""
        secs = "··" if self.masked else f"{ev.seconds:.2f}s"
        losses = f"train loss {ev.train_loss:.4f} · test loss {ev.test_loss:.4f}"
        self.log_line(f"epoch {ev.epoch}/{ev.epochs} · {losses}{acc} · {secs}")

    def _evaluated(self, ev: Any) -> None:
        sampler = self.query_one("#sampler", Sampler)
        if ev.confusion is not None:
            for grid in self.query(ConfusionGrid):
                grid.show(ev.confusion, ev.epoch)
        elif sampler.data is not None:
            extras = self.last_epoch.extras if self.last_epoch else {}
            x = sampler.data.x_test.tolist()
            for charts in self.query(Charts):
                charts.show_fit(x, ev.y_true.tolist(), ev.y_pred.tolist(), extras)
        if sampler.data is not None:
            for each in self.query(Sampler):
                each.set_eval(ev)  # stores; drawn by the next _draw_tick
            self._dirty.add("sampler")

    def _ended(self, ev: Any) -> None:
        from dltui.engine import RunFailed, RunFinished

        self.running, self.ended, self.live = False, True, False
        summary = ev.summary
        self.stats.status = {RunFinished: "finished", RunFailed: "failed"}.get(type(ev), "stopped")
        crashed = isinstance(ev, RunFailed) and ev.message.startswith("the run's process died")
        status = "finished" if isinstance(ev, RunFinished) else "failed" if isinstance(ev, RunFailed) else "stopped"
        status = "crashed" if crashed else status
        self.query_one(ProgressLine).ended(status, summary.run_dir if summary else "")
        self._draw_tick()  # the final state at once, not half a second later
        if isinstance(ev, RunFailed):
            hint = "Continue it from Runs (1, r)." if crashed else "Fix the setup (2) and start again (r)."
            self.notify(f"{ev.message}\n{hint}", title=f"Run {status}", severity="error", timeout=15)
            self.log_line(f"[red]run {status}: {ev.message}[/red]")
            if self._diverged(ev):
                self._offer_rollback(ev)
        else:
            best = f" · best test acc {summary.best_test_acc:.1%}" if summary.best_test_acc is not None else ""
            text = f"{status} after {plural(summary.epochs_done, 'epoch')}{best}"
            self.notify(text, title=f"Run {status}", timeout=6)
            where = "··" if self.masked else shown_path(summary.run_dir)
            self.log_line(f"{text} · saved in {where}")
        self.refresh_bindings()
        self._scan()

    # --- the runs table, comparisons, liveness ---

    def _scan(self) -> None:
        from dltui.runs import scan

        runs = scan(self.runs_dir)
        if self.attached is not None and all(r.path.resolve() != self.attached.resolve() for r in runs):
            from dltui.runs import read_run

            info = read_run(self.attached)  # a run outside the runs root (dltui watch, --out elsewhere)
            runs = ([info] if info is not None else []) + runs
        from dltui.tui.sweeps_view import SweepGroup, group_runs

        entries = group_runs(runs, self.runs_dir, set(self._live_launched()))
        self.query_one(RunsTable).show(entries)
        board = self.query_one(SweepBoard)
        if board.path is not None:
            board.poll(alive=board.path.resolve() in self._live_launched())
        tabs = self.query_one(TabbedContent)
        if (board.path is not None or any(isinstance(e, SweepGroup) for e in entries)) and not tabs.get_tab(
            "sweep"
        ).display:
            tabs.show_tab("sweep")
        self._check_alive()
        if self.compared:
            self._draw_compare()

    # --- sweeps: each its own `dltui sweep` process; the app reads its directory ---

    def on_sweep_chosen(self, message: Any) -> None:
        self._open_sweep(message.path)

    def _open_sweep(self, path: Path) -> None:
        board = self.query_one(SweepBoard)
        board.open(path)
        board.poll(alive=Path(path).resolve() in self._live_launched())
        self.query_one(TabbedContent).show_tab("sweep")
        self.query_one(TabbedContent).active = "sweep"

    def on_sweep_requested(self, message: Any) -> None:
        from dltui.tui.sweeps_view import LOG, new_sweep_dir

        out = new_sweep_dir(self.runs_dir)
        self.log_line(f"starting a sweep: dltui sweep {escape(' '.join(message.args))}")
        if self._launch(["sweep", *message.args, "--out", str(out)], out, attach=False, log_name=LOG):
            self._open_sweep(out)

    def on_sweep_resume_requested(self, message: Any) -> None:
        from dltui.tui.sweeps_view import LOG, live_rows, read_board, resume_refusal

        board = read_board(message.path)
        running = message.path.resolve() in self._live_launched() or any(
            r.get("status") == "running" for r in live_rows(board)
        )
        refusal = resume_refusal(board, running)
        if refusal is not None:
            self.notify(refusal, title="Sweep", timeout=6)
            return
        self.log_line(f"continuing the sweep {shown_path(str(message.path))}")
        if self._launch(["sweep", "--resume", str(message.path)], message.path, attach=False, log_name=LOG):
            self._open_sweep(message.path)

    def on_sweep_stop_requested(self, message: Any) -> None:
        """Its process when this app started it (it stops its workers), else each running
        trial's process (a trial runs in its sweep worker): the current trials stop."""
        ours = message.path.resolve() in self._live_launched()
        targets = [message.path] if ours else message.running
        if any([self._signal_run(path) for path in targets]):
            self.log_line(f"stop requested: sweep {shown_path(str(message.path))}")
            self.notify("stopping the sweep after this batch…", timeout=3)

    def on_leaderboard_table_chosen(self, message: LeaderboardTable.Chosen) -> None:
        self.attach(message.path)

    def on_leaderboard_table_compare_requested(self, message: LeaderboardTable.CompareRequested) -> None:
        self.on_runs_table_compare_requested(message)  # type: ignore[arg-type]

    def on_runs_table_chosen(self, message: RunsTable.Chosen) -> None:
        self.attach(message.path)

    def on_runs_table_new_requested(self, message: RunsTable.NewRequested) -> None:
        self.query_one(TabbedContent).active = "setup"

    def on_runs_table_compare_requested(self, message: RunsTable.CompareRequested) -> None:
        if len(message.paths) < 2:
            self.notify("mark two or more runs with space, then c", title="Compare", timeout=4)
            return
        self.compared = list(message.paths)
        self._draw_compare()
        self.query_one(TabbedContent).active = "charts"
        self.refresh_bindings()

    def _draw_compare(self) -> None:
        from dltui.runs import differing, label, read_curves, read_run

        infos = [i for i in map(read_run, self.compared) if i is not None]
        fields = differing(infos)
        curves = [read_curves(i.path, label(i, fields)) for i in infos]
        self.query_one("#charts-view", Charts).compare(curves, infos, fields)

    def on_runs_table_resume_requested(self, message: RunsTable.ResumeRequested) -> None:
        from dltui.runs import read_run

        if message.status not in ("stopped", "crashed", "failed"):
            self.notify(f"this run is {message.status}: only a stopped or crashed run continues", timeout=4)
            return
        info = read_run(message.path)
        if info is not None and info.epochs_done == 0:
            self.notify("it stopped before its first epoch ended: nothing to continue, start a new run", timeout=5)
            return
        self.log_line(f"continuing {shown_path(str(message.path))}")
        self._launch(["run", "--resume", str(message.path)], message.path)

    # --- a live run's requests, and what a diverged run may do next ---

    def _controllable(self) -> bool:
        return self.attached is not None and self.running and self.live

    def action_set_lr(self) -> None:
        if not self._controllable():
            return
        current = self.stats.lr if self.stats.lr is not None else getattr(self.run_config, "lr", None)
        name = "··" if self.masked else shown_path(str(self.attached))

        def answered(value: float | None) -> None:
            if value is not None:
                self._control("lr", value, f"learning rate {value:g} from now on")

        self.push_screen(LearningRateScreen(current, name), answered)

    def action_checkpoint(self) -> None:
        self._control("checkpoint", None, "a checkpoint now")

    def action_stop_after_epoch(self) -> None:
        self._control("stop-after-epoch", None, "a stop after this epoch")

    def _control(self, kind: str, value: float | None, what: str) -> None:
        """Append a request to the attached run's control.jsonl; the run answers with a
        note (shown by _noted) when it acts on it."""
        from dltui.engine.callbacks import send

        if not self._controllable() or self.attached is None:
            return
        try:
            send(self.attached, kind, value)
        except (OSError, ValueError) as exc:
            self.notify(f"cannot ask the run: {getattr(exc, 'strerror', None) or exc}", severity="error")
            return
        self.log_line(f"asked the run for {what}")
        self.notify(f"asked the run for {what}", timeout=3)

    def _noted(self, ev: Any, toast: bool) -> None:
        """What the run did on request or on its own (a rollback, a new lr, a checkpoint)."""
        self.log_line(f"[cyan]epoch {ev.epoch}:[/cyan] {escape(ev.text)}")
        if toast:
            self.notify(ev.text, title="Run", timeout=6)

    def _diverged(self, ev: Any) -> bool:
        """A run that failed because its loss diverged (exit code 3): the failure's message,
        else its summary.json's, else its process's exit code says so."""
        from dltui.errors import EXIT_DIVERGED
        from dltui.runs import read_run

        if self.attached is None or self.run_config is None:
            return False
        proc = self.launched.get(self.attached.resolve())
        info = read_run(self.attached)
        said = [ev.message, info.error if info is not None else None]
        return any(m and m.startswith("diverged") for m in said) or bool(proc and proc.returncode == EXIT_DIVERGED)

    def _offer_rollback(self, ev: Any) -> None:
        path, cfg = self.attached, self.run_config
        done = ev.summary.epochs_done if ev.summary is not None else 0

        def answered(answer: str | None) -> None:
            if answer == "rollback" and path is not None:
                self._roll_back(path, cfg, done)

        self.push_screen(DivergedScreen(ev.message, cfg.lr, done), answered)

    def _roll_back(self, path: Path, cfg: Any, done: int) -> None:
        """Continue a diverged run from its last checkpoint with half its learning rate,
        as `dltui run --resume RUN_DIR --lr HALF` does; with no epoch saved, start it again
        so in a new run directory."""
        from dataclasses import replace

        half = format(cfg.lr / 2, ".10g")
        if done:
            self.log_line(f"rolling back {shown_path(str(path))} to epoch {done}, lr {half}")
            self._launch(["run", "--resume", str(path), "--lr", half], path)
            return
        again = replace(cfg, lr=float(half), out=None)
        out = self._new_run_dir(again)
        self.log_line(f"starting {shown_path(str(path))} again with lr {half}")
        self._launch(["run", *run_args(again), "--out", str(out)], out)

    # --- actions ---

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # True: shown; None: shown greyed out; False: hidden (the footer keeps 80 columns for keys that work)
        active = self.query_one(TabbedContent).active
        if action in ("log_scale", "lr_chart"):
            return active in ("charts", "dashboard")
        if action in ("set_lr", "checkpoint", "stop_after_epoch"):
            return self._controllable()
        if action in TAB_ACTIONS:
            if action == "clear_old":
                return active == "charts" and bool(self.compared)
            return active == TAB_ACTIONS[action]
        if action in ("start", "start_sweep"):
            if (action == "start_sweep") != self.query_one(SetupForm).sweeping:
                return False  # one of the two: Start, or Start sweep while a field holds several values
            if active == "runs":
                return False  # r continues the selected run there
            if active != "setup" and self._controllable():
                return False  # while a live run is watched r starts nothing by accident; its keys need the room
            return None if self.query_one(SetupForm).catalog is None else True
        if action == "stop":
            return self.running and self.attached is not None
        return True

    def action_start(self) -> None:
        if self.query_one(TabbedContent).active != "setup":
            self.query_one(TabbedContent).active = "setup"
        self.query_one(SetupForm).request_start()

    def action_start_sweep(self) -> None:
        self.action_start()

    def action_stop(self) -> None:
        if self.attached is not None and self.running and self._signal_run(self.attached):
            self.log_line("stop requested")
            self.notify("stopping after this batch…", timeout=3)

    def _signal_run(self, path: Path, sig: int = signal.SIGTERM) -> bool:
        """Ask a run to stop as Ctrl+C would. Only a run on this host can be signalled."""
        from dltui.engine.rundir import read_lock

        info = read_lock(path) or {}
        proc = self.launched.get(Path(path).resolve())
        if not info and proc is not None and proc.poll() is None:  # ours, still starting: no lock yet
            proc.send_signal(sig)
            return True
        if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
            self.notify(f"this run is on {info.get('host', 'another machine')}: stop it there", timeout=5)
            return False
        try:
            os.kill(info["pid"], sig)
        except OSError as exc:
            self.notify(f"cannot stop pid {info['pid']}: {exc.strerror}", severity="error")
            return False
        return True

    def action_tab(self, tab: str) -> None:
        if tab == "sweep" and self.query_one(SweepBoard).path is None:
            from dltui.tui.sweeps_view import SweepGroup

            newest = next((e for e in self.query_one(RunsTable).entries if isinstance(e, SweepGroup)), None)
            if newest is None:
                self.notify("no sweep yet: several values in a Setup field (lr 0.1,0.01) start one", timeout=5)
                return
            self._open_sweep(newest.path)
        self.query_one(TabbedContent).active = tab

    def action_lr_chart(self) -> None:
        for charts in self.query(Charts):
            on = charts.toggle_lr()
        self.notify("learning rate per epoch" if on else "accuracy", timeout=2)

    def action_log_scale(self) -> None:
        for charts in self.query(Charts):
            on = charts.toggle_log()
        self.notify(f"loss on a {'log' if on else 'linear'} scale", timeout=2)

    def action_clear_old(self) -> None:
        self.compared = []
        self.query_one("#charts-view", Charts).compare([], [], [])
        self.notify("comparison cleared", timeout=2)
        self.refresh_bindings()

    def action_new_sample(self) -> None:
        self.query_one("#sampler", Sampler).new_sample()

    def action_mistakes(self) -> None:
        self.query_one("#sampler", Sampler).toggle_mistakes()

    def action_all_items(self) -> None:
        self.query_one("#sampler", Sampler).clear_filter()

    def action_keys(self) -> None:
        self.push_screen(KeysScreen())

    def action_save_screen(self) -> None:
        """Save the screen as SVG (and PNG where a converter is at hand) beside the attached
        run, else in the runs directory, else here."""
        from dltui.tui.screenshot import screenshot_dir

        where = screenshot_dir(self.attached, self.runs_dir)
        try:
            svg = Path(self.save_screenshot(path=str(where)))
        except OSError as exc:
            self.notify(f"cannot save a screenshot in {where}: {exc.strerror or exc}", severity="error")
            return
        self._convert_screenshot(svg)

    @work(thread=True, exit_on_error=False, group="screenshot", description="converting a screenshot")
    def _convert_screenshot(self, svg: Path) -> None:
        from dltui.tui.screenshot import svg_to_png

        png = svg_to_png(svg)
        saved = shown_path(str(svg)) + (f"\nand {png.name}" if png is not None else "")
        self.call_from_thread(self.notify, saved, title="Screenshot saved", timeout=6)

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        # Textual's default folder is ~/Downloads, which may not exist
        from dltui.tui.screenshot import screenshot_dir

        where = path or str(screenshot_dir(self.attached, self.runs_dir))
        return super().deliver_screenshot(filename, where, time_format)

    def get_system_commands(self, screen: Any) -> Any:
        """The palette's Screenshot is ctrl+s's (the run's folder, a PNG too)."""
        from textual.app import SystemCommand

        for command in super().get_system_commands(screen):
            if command.title == "Screenshot":
                help_text = "Save the screen (SVG, and PNG) beside the run (ctrl+s)"
                command = SystemCommand(command.title, help_text, self.action_save_screen)
            yield command

    def _live_launched(self) -> list[Path]:
        return [path for path, proc in self.launched.items() if proc.poll() is None]

    async def action_quit(self) -> None:
        live = self._live_launched()
        if not live:
            self.exit(0)
            return

        def answered(answer: str | None) -> None:
            if answer == "stop":
                for path in live:
                    self._signal_run(path)
                self.exit(0)
            elif answer == "keep":
                self.exit(0)

        self.push_screen(ConfirmQuitScreen(len(live)), answered)

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        pane = event.pane.id
        focused = {
            "runs": RunsTable,
            "confusion": ConfusionGrid,
            "samples": Sampler,
            "log": RichLog,
            "summary": ModelView,
            "sweep": LeaderboardTable,
        }
        target = focused.get(pane or "")
        if target is not None:
            self.query_one(target).focus()
        if pane == "log":
            self.call_after_refresh(self._refill_log)  # at the width it has now that it shows
        if pane == "samples":
            self.call_after_refresh(self.query_one("#sampler", Sampler).redraw)  # it may have been drawn while hidden
        if pane in ("charts", "dashboard") and self._dirty & {"loss", "charts"}:
            self._draw_tick()

    @on(Select.Changed, "#form Select")
    def _setup_choice(self) -> None:
        """The Model view follows the model and dataset menus of Setup."""
        raw = self.query_one(SetupForm).raw()
        self.query_one(ModelView).follow_setup(raw["model"], raw["dataset"])  # type: ignore[arg-type]

    def on_confusion_grid_cell_selected(self, message: ConfusionGrid.CellSelected) -> None:
        self.query_one("#sampler", Sampler).filter_cell(message.true, message.pred)
        self.query_one(TabbedContent).active = "samples"

    def _catch_signals(self) -> None:
        """SIGTERM and SIGHUP (the terminal went away) close the app cleanly, restoring the
        terminal where it still exists. Runs are other processes in other sessions: they
        keep training."""
        loop = asyncio.get_running_loop()
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self.exit)

    def log_line(self, text: str) -> None:
        self.log_lines.append(text)
        del self.log_lines[:-1000]
        if self.query_one(TabbedContent).active == "log":
            self.query_one("#log-view", RichLog).write(text)
        else:  # a hidden RichLog wraps at its min_width (20): rewritten when its tab shows
            self._log_stale = True

    def _refill_log(self) -> None:
        if self._log_stale:
            self._log_stale = False
            log = self.query_one("#log-view", RichLog)
            log.clear()
            for line in self.log_lines:
                log.write(line)


def make_app(options: dict[str, object] | None = None, start: bool = False, **kwargs: Any) -> DltuiApp:
    """The app factory the CLI and the tests share."""
    return DltuiApp(options, start, **kwargs)


def run_app(
    options: dict[str, object],
    start: bool,
    images: str = "halfblock",
    runs_dir: str | None = None,
    watch: str | None = None,
) -> int:
    """Entry point for ``dltui`` without a subcommand (and `dltui watch`); returns the exit
    code. ``images`` is --images: 'auto' asks the terminal for an image protocol now, while
    it is still ours."""
    from dltui.tui import pixels

    if not os.environ.get("TEXTUAL_DRIVER") and not (sys.stdin.isatty() and sys.stdout.isatty()):
        sys.stderr.write("dltui: error: the app needs a terminal (stdin and stdout); train headless with `dltui run`\n")
        return EXIT_USAGE
    protocol = pixels.detect(images)
    pixels.prepare(protocol)
    app = make_app(options, start, images=protocol, runs_dir=runs_dir, watch=watch)
    app.run()
    return app.return_code or 0
