"""Pilot tests: the app driven by keys over real run directories. The runs it starts are
`dltui run` processes of their own (one thread each: see conftest.py); finished runs to
look at are trained in this process first (pilot_helpers.finished_run)."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from pilot_helpers import (
    LONG,
    finished_run,
    log_text,
    start_headless,
    status,
    summary_status,
    wait_done,
    wait_epochs,
    wait_for,
    wait_ready,
    wait_until,
    without_clock,
)
from textual.widgets import Button, Select, TabbedContent

from dltui.engine.rundir import RunLock, read_lock
from dltui.errors import EXIT_INTERRUPTED, EXIT_USAGE
from dltui.runs import lock_held
from dltui.tui.app import make_app
from dltui.tui.charts import Charts
from dltui.tui.confusion import ConfusionGrid
from dltui.tui.runs_view import RunsTable
from dltui.tui.sampler import Sampler
from dltui.tui.screens import ConfirmQuitScreen, KeysScreen

SIZE = (80, 24)
LONG_RUN = {"batch_size": 1, "epochs": 40}  # the form's values for LONG


def screen_text(app) -> str:
    """The screen as plain text, as the terminal shows it."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def table_statuses(app) -> dict[str, str]:
    """The Runs tab's rows: run directory name -> status."""
    return {Path(key).name: run.status for key, run in app.query_one(RunsTable).runs.items()}


def metric_rows(run_dir: Path) -> list[dict[str, str]]:
    import csv

    try:
        with open(run_dir / "metrics.csv", newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def run_processes(processes) -> list:
    """The `dltui run` processes started during the test (the conftest records them)."""
    return [p for p in processes if "run" in p.args]


# --- starting runs from Setup ---


async def test_digits_run_to_completion():
    app = make_app({"epochs": 3}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        assert status(app) == "finished"
        assert app.query_one(TabbedContent).active == "charts"  # starting a run attaches to it
        charts = app.query_one(Charts)
        assert charts.run.epochs == [1, 2, 3]
        assert len(charts.run.test_acc) == 3 and len(charts.run.train_acc) == 3  # one point per epoch
        grid = app.query_one(ConfusionGrid)
        n_test = len(app.query_one(Sampler).data.y_test)
        assert grid.total == n_test == 359 and grid.epoch == 3
        await pilot.press("5")
        await pilot.pause()
        sampler = app.query_one(Sampler)
        assert len(sampler.shown) == 48
        body = str(app.query_one("#sampler-body").render())
        assert body.count("%") == 48  # every cell captioned with a confidence
        await pilot.press("1")
        await wait_for(pilot, lambda: list(table_statuses(app).values()) == ["finished"])
    run_dir = next(Path("runs").iterdir())  # the same files `dltui run` writes, and its output
    files = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "metrics.csv", "summary.json", "model.pt", "confusion.csv", "events.jsonl"} <= files
    assert "run.log" in files
    assert summary_status(run_dir) == "finished"


async def test_stop_mid_run_returns_control_and_keys_still_work(processes):
    app = make_app(LONG_RUN, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_epochs(pilot, 1)
        assert status(app).startswith("epoch ")
        await pilot.press("s")
        await wait_done(pilot)
        assert status(app) == "stopped"
        assert "stop requested" in log_text(app)
        await pilot.press("4")
        assert app.query_one(TabbedContent).active == "confusion"
        await pilot.press("2")
        assert not app.query_one("#start", Button).disabled  # a new run can start
        assert app.check_action("stop", ()) is False  # nothing left to stop: hidden
    [proc] = run_processes(processes)
    assert proc.wait(timeout=30) == EXIT_INTERRUPTED  # it stopped as Ctrl+C stops it
    assert summary_status(next(Path("runs").iterdir())) == "stopped"


async def test_stop_while_the_run_is_still_starting():
    app = make_app(LONG_RUN, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.attached is not None)
        await pilot.press("s")  # the process is still importing torch: it holds no lock yet
        await wait_done(pilot)
        assert status(app) == "stopped"
        assert not any("another machine" in n.message for n in app._notifications)


async def test_an_out_that_holds_a_run_is_not_started_twice(processes):
    app = make_app({"epochs": 1, "out": "run"}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        assert status(app) == "finished"
        await pilot.press("2")
        app.query_one("#start", Button).focus()
        await pilot.press("r")
        await pilot.pause()
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert any("--out run already holds a run" in m for m in errors), errors
        assert len(run_processes(processes)) == 1 and app.query_one(TabbedContent).active == "setup"


async def test_invalid_learning_rate_keeps_start_disabled():
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("2")
        start = app.query_one("#start", Button)
        assert not start.disabled
        app.query_one("#lr").focus()
        await pilot.press("ctrl+a", "a", "b", "c")
        await pilot.pause()
        assert start.disabled
        assert app.query_one("#lr").has_class("-invalid")
        assert str(app.query_one("#form-error").render()).startswith("learning rate: ")  # the label, not the flag
        await pilot.press("enter")  # submitting an invalid form starts nothing
        await pilot.pause()
        assert not app.launched and app.attached is None
        app.query_one("#lr").value = "0.01"
        await pilot.pause()
        assert not start.disabled and not app.query_one("#lr").has_class("-invalid")
    assert not Path("runs").exists()


async def test_choosing_a_dataset_filters_the_model_menu():
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        model = app.query_one("#model", Select)
        assert "mlp" in [v for _, v in model._options] and "gru" not in [v for _, v in model._options]
        app.query_one("#dataset", Select).value = "names"
        await pilot.pause()
        assert [v for _, v in model._options if v is not Select.NULL] == ["rnn", "lstm", "gru"]
        assert model.value == "gru"  # the dataset's recommendation
        assert not app.query_one("#start", Button).disabled


async def test_selecting_a_confusion_cell_filters_the_sampler():
    app = make_app({"epochs": 2}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        await pilot.press("4")
        grid = app.query_one(ConfusionGrid)
        assert grid.has_focus
        await pilot.press("down", "down", "down", "right", "right", "right")  # true 3, predicted 3
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "samples"
        sampler = app.query_one(Sampler)
        ev = sampler.eval
        expected = [i for i in range(len(ev.y_true)) if int(ev.y_true[i]) == 3 and int(ev.y_pred[i]) == 3]
        assert sampler.shown == expected[:48]
        assert len(sampler.shown) == min(grid.matrix[3][3], 48) > 0
        await pilot.press("c")  # back to the sample
        await pilot.pause()
        assert sampler.cell is None and len(sampler.shown) == 48
        await pilot.press("m")  # mistakes only
        await pilot.pause()
        assert all(int(ev.y_true[i]) != int(ev.y_pred[i]) for i in sampler.shown)


async def test_unavailable_dataset_fails_softly_and_a_new_run_can_start(tmp_path, processes):
    empty = tmp_path / "empty"
    empty.mkdir()
    app = make_app({"dataset": "fashion-mnist", "model": "softmax", "epochs": 1, "data_dir": str(empty)}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        assert status(app) == "failed"
        [proc] = run_processes(processes)
        assert proc.returncode == EXIT_USAGE
        # the process's own error line, from its run.log, without the CLI's prefix
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert any(m.startswith("fashion-mnist is not in") and str(empty) in m for m in errors), errors
        assert "run failed: fashion-mnist is not in" in log_text(app)
        await pilot.press("2")
        app.query_one("#dataset", Select).value = "digits"
        await pilot.pause()
        app.query_one("#epochs").value = "1"
        await pilot.pause()
        app.query_one("#start", Button).focus()  # focus off the text fields: r is a key again
        await pilot.press("r")
        await wait_for(pilot, lambda: status(app) == "finished")
        assert app.query_one(Charts).run.epochs == [1]


async def test_divergence_is_reported_and_offers_a_new_run():
    app = make_app({"dataset": "linear", "lr": 10, "epochs": 2}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        assert status(app) == "failed"
        messages = [n.message for n in app._notifications]
        assert any("diverged at epoch 1" in m and "lower the learning rate" in m for m in messages), messages
        assert not app.query_one("#start", Button).disabled


async def test_regression_shows_the_fit_view():
    app = make_app({"dataset": "linear", "epochs": 3}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        charts = app.query_one(Charts)
        assert charts.has_class("-regression")
        assert charts.run.regression and not charts.run.test_acc
        note = str(app.query_one("#fit-note").render())
        assert "learned w=" in note and "true w=[2.000, -3.400]" in note
        await pilot.press("5")
        await pilot.pause()
        assert "fit view in Charts (3)" in str(app.query_one("#sampler-body").render())


async def test_resizing_during_training_is_fine():
    app = make_app(LONG_RUN, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_epochs(pilot, 1)
        for size in ((120, 40), (60, 20), (100, 30), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.05)
        seen = len(app.curves.epochs)
        await wait_epochs(pilot, seen + 1)  # still following the run
        assert status(app).startswith("epoch ")


# --- quitting while runs train ---


async def test_quit_mid_run_asks_and_keeps_the_run_training():
    app = make_app(LONG_RUN, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_epochs(pilot, 1)
        run_dir = app.attached
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmQuitScreen)
        await pilot.press("escape")  # cancel: back to the app
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmQuitScreen) and app.is_running
        await pilot.press("q", "k")  # keep training, quit
        await wait_for(pilot, lambda: not app.is_running, timeout=10)
    assert app.return_code == 0
    assert lock_held(run_dir)  # the run goes on in its own process
    done = len(metric_rows(run_dir))
    wait_until(lambda: len(metric_rows(run_dir)) > done)


async def test_quit_mid_run_can_stop_the_run_first():
    app = make_app(LONG_RUN, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_epochs(pilot, 1)
        run_dir = app.attached
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmQuitScreen)
        await pilot.press("s")  # stop the run, then quit
        await wait_for(pilot, lambda: not app.is_running, timeout=10)
    wait_until(lambda: summary_status(run_dir) == "stopped" and not lock_held(run_dir))


# --- the Runs tab: runs on disk, however they were started ---


async def test_runs_tab_lists_the_runs_with_their_status():
    from dltui.engine import RunFailed, RunStopped, train
    from dltui.resolve import make_config

    finished_run(Path("runs/a"), epochs=1)
    stopped = train(make_config(epochs=2, out="runs/b"), should_stop=lambda: True, threads=1)
    assert isinstance(stopped, RunStopped)
    finished_run(Path("runs/c"), epochs=1)
    info = json.loads(Path("runs/c/summary.json").read_text())
    Path("runs/c/summary.json").write_text(json.dumps({**info, "status": "running"}))  # what kill -9 leaves
    failed = train(make_config(dataset="linear", lr=10, epochs=2, out="runs/d"), threads=1)
    assert isinstance(failed, RunFailed)
    Path("runs/notes").mkdir()  # not a run: not listed
    (Path("runs/notes") / "todo.txt").write_text("try lr 0.1")

    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(RunsTable)
        assert app.query_one(TabbedContent).active == "runs" and table.has_focus  # no flags: Runs first
        await wait_for(pilot, lambda: len(table.runs) == 4)
        assert list(table_statuses(app).items()) == [  # newest first
            ("d", "failed"),
            ("c", "crashed"),
            ("b", "stopped"),
            ("a", "finished"),
        ]
        await pilot.pause()
        shown = screen_text(app)
        for line in ("✗ ", "■ ", "✓ "):
            assert line in shown
        assert "linear · lin" in shown and "digits · mlp" in shown
        assert "crashed" in shown and "stopped" in shown and "failed" in shown
        assert "0/2" in shown and "1/1" in shown  # epochs done / epochs


async def test_attaching_to_a_finished_run_replays_its_final_state(processes):
    run_dir = finished_run(Path("runs/done"), epochs=3)
    rows = metric_rows(run_dir)
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: table_statuses(app) == {"done": "finished"})
        await pilot.press("enter")
        await wait_done(pilot)
        assert status(app) == "finished"
        assert app.query_one(TabbedContent).active == "charts"
        assert "runs/done" in str(app.query_one("#stats").render())
        charts = app.query_one(Charts)
        assert charts.run.epochs == [1, 2, 3]
        assert charts.run.test_acc == pytest.approx([float(r["test_acc"]) * 100 for r in rows], rel=1e-5)
        grid = app.query_one(ConfusionGrid)
        assert grid.epoch == 3 and grid.total == 359
        await pilot.press("5")
        await pilot.pause()
        assert len(app.query_one(Sampler).shown) == 48
    assert not processes  # looking at a run starts nothing


async def test_comparing_two_marked_runs_overlays_them():
    finished_run(Path("runs/fast"), lr=0.1, epochs=2)
    finished_run(Path("runs/slow"), lr=0.01, epochs=2)
    app = make_app({})
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: len(table.runs) == 2)
        await pilot.press("c")  # one run is no comparison
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "runs"
        await pilot.press("space", "space", "c")  # mark both, compare
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "charts"
        charts = app.query_one(Charts)
        assert charts.has_class("-comparing")
        assert sorted(c.label for c in charts.others) == ["lr 0.01", "lr 0.1"]
        assert all(c.epochs == [1, 2] for c in charts.others)
        shown = screen_text(app)
        assert "test loss" in shown and "test accuracy %" in shown
        [head] = [line.split() for line in shown.splitlines() if "last acc" in line]
        assert head[:2] == ["lr", "epochs"]  # the one field that differs, then the results
        rows = [line.split() for line in shown.splitlines() if "■" in line]
        assert sorted(row[1] for row in rows) == ["0.01", "0.1"] and all(row[2] == "2/2" for row in rows)
        await pilot.press("x")  # back from the comparison
        await pilot.pause()
        assert not charts.others and not charts.has_class("-comparing")


# --- runs a viewer must survive ---


async def test_a_run_directory_deleted_while_watched_does_not_crash_the_app():
    run_dir = Path("runs/doomed")
    start_headless(run_dir, *LONG)
    wait_until(lambda: (run_dir / "config.json").exists())
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: table_statuses(app) == {"doomed": "running"})
        await pilot.press("enter")
        await wait_epochs(pilot, 1)
        while run_dir.exists():  # the run may add a file while it is deleted
            shutil.rmtree(run_dir, ignore_errors=True)
        await wait_for(pilot, lambda: status(app) == "deleted")
        for key in "123456":
            await pilot.press(key)
        await wait_for(pilot, lambda: not app.query_one(RunsTable).runs)
        assert app.is_running


async def test_a_half_written_last_line_is_waited_for():
    src = without_clock(finished_run(Path("src"), epochs=3))
    lines = (src / "events.jsonl").read_text().splitlines(keepends=True)
    second = next(i for i, line in enumerate(lines) if json.loads(line)["event"] == "epoch" and '"epoch": 2' in line)
    live = Path("runs/live")
    shutil.copytree(src, live)
    events = live / "events.jsonl"
    lock = RunLock.acquire(live)  # this test is the run's writer
    try:
        half = len(lines[second]) // 2
        events.write_text("".join(lines[:second]) + lines[second][:half])
        app = make_app(watch=live)
        async with app.run_test(size=SIZE) as pilot:
            await wait_epochs(pilot, 1)
            await pilot.pause(0.6)  # a few polls find the half line
            assert app.curves.epochs == [1] and status(app) == "epoch 1/3"
            with open(events, "a") as f:
                f.write(lines[second][half:])
            await wait_epochs(pilot, 2)
            assert app.curves.epochs == [1, 2]
            with open(events, "a") as f:
                f.write("".join(lines[second + 1 :]))
            await wait_done(pilot)
            assert status(app) == "finished" and app.curves.epochs == [1, 2, 3]
    finally:
        lock.release()


async def test_a_final_line_cut_short_falls_back_to_the_summary():
    run_dir = finished_run(Path("runs/cut"), epochs=2)
    events = (run_dir / "events.jsonl").read_text()
    (run_dir / "events.jsonl").write_text(events[: events.rindex('{"event": "finished"') + 30])
    app = make_app(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        assert status(app) == "finished"  # as summary.json and the Runs tab say, not crashed
        assert app.curves.epochs == [1, 2]


async def test_a_run_from_an_older_dltui_shows_its_curves():
    run_dir = finished_run(Path("runs/old"), epochs=3)
    for path in run_dir.iterdir():  # what dltui wrote before events.jsonl existed
        if path.name not in ("config.json", "metrics.csv", "summary.json"):
            path.unlink()
    rows = metric_rows(run_dir)
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: table_statuses(app) == {"old": "finished"})
        await pilot.press("enter")
        await wait_done(pilot)
        assert status(app) == "finished"
        curves = app.query_one(Charts).run
        assert curves.epochs == [1, 2, 3]
        assert curves.test_loss == pytest.approx([float(r["test_loss"]) for r in rows])
        assert curves.test_acc == pytest.approx([float(r["test_acc"]) * 100 for r in rows])
        assert "epoch 3/3" in log_text(app)
        await pilot.press("5")
        await pilot.pause()
        assert "older dltui" in str(app.query_one("#sampler-body").render())


async def test_a_killed_run_shows_as_crashed_and_r_continues_it():
    app = make_app({"batch_size": 1, "epochs": 8}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.attached is not None)
        run_dir = app.attached
        await wait_for(pilot, lambda: (run_dir / "model.pt").exists())  # one epoch's checkpoint
        os.kill(read_lock(run_dir)["pid"], signal.SIGKILL)
        await wait_for(pilot, lambda: status(app) == "crashed", timeout=30)
        assert any("Continue it from Runs (1, r)" in n.message for n in app._notifications)
        await pilot.press("1")
        await wait_for(pilot, lambda: table_statuses(app) == {run_dir.name: "crashed"})
        await pilot.press("r")
        await wait_done(pilot)
        assert status(app) == "finished"
        assert app.query_one(Charts).run.epochs == list(range(1, 9))  # the epochs before the kill too
        assert "continuing" in log_text(app)
    assert [int(r["epoch"]) for r in metric_rows(run_dir)] == list(range(1, 9))
    assert summary_status(run_dir) == "finished"


async def test_a_refused_continuation_says_why(processes):
    run_dir = finished_run(Path("runs/broken"), epochs=2)
    events = (run_dir / "events.jsonl").read_text()  # what kill -9 leaves: no final line or status
    (run_dir / "events.jsonl").write_text(events[: events.rindex('{"event": "finished"')])
    info = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**info, "status": "running"}))
    (run_dir / "model.pt").write_bytes(b"not a checkpoint")
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: table_statuses(app) == {"broken": "crashed"})
        await pilot.press("r")
        await wait_done(pilot)
        [proc] = run_processes(processes)
        assert proc.args[-2:] == ["--resume", str(run_dir)] and proc.returncode == EXIT_USAGE
        assert status(app) == "failed"
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert any("is not a dltui checkpoint" in m for m in errors), errors


async def test_a_headless_run_is_listed_live_and_can_be_stopped():
    run_dir = Path("runs/headless")
    proc = start_headless(run_dir, *LONG)
    wait_until(lambda: (run_dir / "config.json").exists())  # started in another shell, before the app
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: table_statuses(app) == {"headless": "running"})
        await pilot.press("enter")
        await wait_epochs(pilot, 1)
        seen = len(app.curves.epochs)
        await wait_epochs(pilot, seen + 1)  # live: epochs keep coming
        assert status(app).startswith("epoch ") and status(app).endswith("/40")
        await pilot.press("s")  # a run on this host stops from any viewer
        await wait_done(pilot)
        assert status(app) == "stopped"
        await pilot.press("1")
        await wait_for(pilot, lambda: table_statuses(app) == {"headless": "stopped"})
    assert proc.wait(timeout=30) == EXIT_INTERRUPTED


# --- the rest of the app ---


async def test_too_small_terminal_says_so():
    app = make_app({})
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        assert app.query_one("#too-small").display and app.query_one("#too-small").region.width > 0
        assert app.query_one("#tabs").region.width == 0
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert app.query_one("#too-small").region.width == 0
        assert app.query_one("#tabs").region.width == 80


async def test_keys_screen_lists_every_key():
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, KeysScreen)
        await pilot.pause()
        box = app.screen.query_one("#keys-box")
        assert box.size.width >= 60 and box.size.height >= 10  # not an empty 6x4 box (width: auto collapsed)
        await pilot.press("escape")
        assert not isinstance(app.screen, KeysScreen)


async def test_quit_dialog_shows_its_question():
    from dltui.tui.screens import ConfirmQuitScreen

    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(ConfirmQuitScreen(2))
        await pilot.pause()
        box = app.screen.query_one("#quit-box")
        assert box.size.width >= 60 and box.size.height >= 5
        assert "2 runs you started are still training" in str(box.query_one("Static").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, ConfirmQuitScreen)


async def test_flags_preselect_the_form():
    app = make_app({"dataset": "names", "model": "lstm", "epochs": 2, "lr": "0.005", "seed": 3})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        assert app.query_one(TabbedContent).active == "setup"  # flags: the form first
        form = app.query_one("#form")
        cfg = form.config
        assert (cfg.dataset, cfg.model, cfg.epochs, cfg.lr, cfg.seed) == ("names", "lstm", 2, 0.005, 3)
        assert not app.launched and app.attached is None  # no --start


async def test_a_stopped_run_continued_from_runs_can_be_stopped_again():
    """Continuing a stopped run attaches to its new process only: the earlier session's
    'stopped' line is history (no stale toast), and s stops the continued run."""
    app = make_app({"batch_size": 1, "epochs": 40}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.attached is not None)
        run_dir = app.attached
        await wait_for(pilot, lambda: (run_dir / "model.pt").exists())
        await pilot.press("s")
        await wait_for(pilot, lambda: status(app) == "stopped", timeout=30)
        await pilot.press("1")
        await wait_for(pilot, lambda: table_statuses(app) == {run_dir.name: "stopped"})
        app.clear_notifications()
        await pilot.press("r")
        await wait_for(pilot, lambda: status(app).startswith("epoch "), timeout=60)
        assert app.check_action("stop", ()) is True
        assert not any("stopped" in n.message for n in app._notifications)
        await pilot.press("s")
        await wait_for(pilot, lambda: status(app) == "stopped", timeout=30)
    wait_until(lambda: summary_status(run_dir) == "stopped" and not lock_held(run_dir))
