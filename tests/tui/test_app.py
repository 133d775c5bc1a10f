"""Pilot tests: the app driven by keys, on real (tiny, seeded) runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pilot_helpers import paced_train, quiet_train, status, wait_done, wait_for, wait_ready
from textual.widgets import Button, Select, TabbedContent

from dltui.tui.app import make_app
from dltui.tui.charts import Charts
from dltui.tui.confusion import ConfusionGrid
from dltui.tui.messages import BatchDone
from dltui.tui.sampler import Sampler
from dltui.tui.screens import ConfirmQuitScreen, KeysScreen

SIZE = (80, 24)


def log_text(app) -> str:
    return "\n".join(app.log_lines)


async def test_digits_run_to_completion():
    app = make_app({"epochs": 3}, start=True, threads=1)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        assert status(app) == "finished"
        charts = app.query_one(Charts)
        assert charts.run.epochs == [1, 2, 3]
        assert len(charts.run.test_acc) == 3 and len(charts.run.train_acc) == 3  # one point per epoch
        grid = app.query_one(ConfusionGrid)
        n_test = len(app.query_one(Sampler).data.y_test)
        assert grid.total == n_test == 359
        await pilot.press("4")
        await pilot.pause()
        sampler = app.query_one(Sampler)
        assert len(sampler.shown) == 48
        body = str(app.query_one("#sampler-body").render())
        assert body.count("%") == 48  # every cell captioned with a confidence
    run_dir = next(Path("runs").iterdir())  # the same files `dltui run` writes
    files = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "metrics.csv", "summary.json", "model.pt", "confusion.csv"} <= files
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"


async def test_stop_mid_run_returns_control_and_keys_still_work():
    app = make_app({"epochs": 2000}, start=True, threads=1, trainer=paced_train)
    async with app.run_test(size=SIZE) as pilot:
        charts = app.query_one(Charts)
        await wait_for(pilot, lambda: charts.run is not None and len(charts.run.epochs) >= 2)
        t0 = time.monotonic()
        await pilot.press("s")
        await wait_done(pilot, timeout=5)
        assert time.monotonic() - t0 < 1.0
        assert status(app) == "stopped"
        await pilot.press("3")
        assert app.query_one(TabbedContent).active == "confusion"
        assert not app.query_one("#start", Button).disabled  # a new run can start
    summary = json.loads(next(Path("runs").iterdir()).joinpath("summary.json").read_text())
    assert summary["status"] == "stopped"


async def test_invalid_learning_rate_keeps_start_disabled():
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        start = app.query_one("#start", Button)
        assert not start.disabled
        app.query_one("#lr").focus()
        await pilot.press("ctrl+a", "a", "b", "c")
        await pilot.pause()
        assert start.disabled
        assert app.query_one("#lr").has_class("-invalid")
        assert "--lr" in str(app.query_one("#form-error").render())
        await pilot.press("enter")  # submitting an invalid form starts nothing
        await pilot.pause()
        assert not app.running
        app.query_one("#lr").value = "0.01"
        await pilot.pause()
        assert not start.disabled and not app.query_one("#lr").has_class("-invalid")


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
    app = make_app({"epochs": 2}, start=True, threads=1)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        await pilot.press("3")
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


async def test_unavailable_dataset_fails_softly_and_a_new_run_can_start(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    app = make_app({"dataset": "fashion-mnist", "model": "softmax", "epochs": 1, "data_dir": str(empty)}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        assert status(app) == "failed"
        assert any(n.severity == "error" and "fashion-mnist" in n.message for n in app._notifications)
        assert "run failed" in log_text(app)
        app.query_one("#dataset", Select).value = "digits"
        await pilot.pause()
        app.query_one("#epochs").value = "1"
        await pilot.pause()
        await pilot.press("1", "tab")  # focus leaves the fields' text: r is a key again
        app.query_one("#start", Button).focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: status(app) == "finished")


async def test_divergence_is_reported_and_offers_a_new_run():
    app = make_app({"dataset": "linear", "lr": 10, "epochs": 2}, start=True, threads=1)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        assert status(app) == "failed"
        messages = [n.message for n in app._notifications]
        assert any("diverged at epoch 1" in m and "lower the learning rate" in m for m in messages)
        assert not app.query_one("#start", Button).disabled


async def test_regression_shows_the_fit_view():
    app = make_app({"dataset": "linear", "epochs": 3}, start=True, threads=1)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        charts = app.query_one(Charts)
        assert charts.has_class("-regression")
        assert charts.run.regression and not charts.run.test_acc
        note = str(app.query_one("#fit-note").render())
        assert "learned w=" in note and "true w=[2.000, -3.400]" in note


async def test_quit_mid_run_asks_then_stops_the_worker():
    app = make_app({"epochs": 2000}, start=True, threads=1, trainer=paced_train)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.query_one(Charts).run is not None and app.query_one(Charts).run.epochs)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmQuitScreen)
        await pilot.press("n")  # keep training
        await pilot.pause()
        assert app.running and not isinstance(app.screen, ConfirmQuitScreen)
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: not app.is_running, timeout=5)
    assert app.join_training(timeout=0.1)  # the engine had already returned
    summary = json.loads(next(Path("runs").iterdir()).joinpath("summary.json").read_text())
    assert summary["status"] == "stopped"


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


async def test_resizing_during_training_is_fine():
    app = make_app({"epochs": 3}, start=True, threads=1, trainer=paced_train)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.running)
        for size in ((120, 40), (60, 20), (100, 30), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.05)
        await wait_done(pilot)
        assert status(app) == "finished"


async def test_second_run_keeps_previous_curves_until_cleared():
    app = make_app({"epochs": 2}, start=True, threads=1, trainer=quiet_train)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        first = app.query_one(Charts).run
        app.query_one("#start", Button).focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: app.query_one(Charts).run is not first)
        await wait_done(pilot)
        charts = app.query_one(Charts)
        assert charts.old is first
        await pilot.press("2", "x")
        assert charts.old is None


async def test_keys_screen_lists_every_key():
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.query_one("#start", Button).focus()
        await pilot.press("question_mark")
        assert isinstance(app.screen, KeysScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, KeysScreen)


async def test_flags_preselect_the_form():
    app = make_app({"dataset": "names", "model": "lstm", "epochs": 2, "lr": "0.005", "seed": 3})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        form = app.query_one("#form")
        cfg = form.config
        assert (cfg.dataset, cfg.model, cfg.epochs, cfg.lr, cfg.seed) == ("names", "lstm", 2, 0.005, 3)
        assert not app.running  # no --start


def test_progress_messages_coalesce():
    assert BatchDone(event=None).can_replace(BatchDone(event=None))
