"""Live control of the attached run from the app (L lr, k checkpoint, S stop after this
epoch) through its control.jsonl, the run's notes in the Log, the offer to roll back a
diverged run, and the charts' validation and learning-rate curves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from pilot_helpers import finished_run, log_text, status, wait_done, wait_epochs, wait_for, wait_ready
from textual.widgets import Input

from dltui.tui.app import make_app
from dltui.tui.charts import AccuracyChart, Charts, LrChart
from dltui.tui.screens import DivergedScreen, LearningRateScreen, parse_lr

SIZE = (80, 24)
DIVERGED = "diverged at epoch 2, step 7 (loss=nan): lower the learning rate"


def requests(run_dir: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in (run_dir / "control.jsonl").read_text().splitlines()]
    except FileNotFoundError:
        return []


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def footer(app) -> str:
    return screen_text(app).splitlines()[-1]


def test_a_learning_rate_is_a_positive_number_up_to_100():
    assert parse_lr(" 0.05 ") == 0.05 and parse_lr("100") == 100
    for bad, why in (("abc", "not a number"), ("0", "out of range"), ("-1", "out of range"), ("1e3", "out of range")):
        with pytest.raises(ValueError, match=why):
            parse_lr(bad)
    with pytest.raises(ValueError, match="out of range"):
        parse_lr("nan")


async def test_a_live_run_takes_requests_and_its_notes_show_in_the_log():
    app = make_app({"batch_size": 1, "epochs": 40}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        assert app.check_action("set_lr", ()) is False  # nothing attached: hidden
        await wait_epochs(pilot, 1)
        await wait_for(pilot, lambda: app.live, timeout=10)
        run_dir = app.attached
        keys = ("L lr", "k Ckpt", "S Stop@epoch", "s Stop", "l Log loss")
        # the footer is redrawn on the next refresh after the run turns live
        await wait_for(pilot, lambda: all(k in footer(app) for k in keys), timeout=10)
        shown = footer(app)
        for key in keys:
            assert key in shown, shown  # they fit 80 columns
        await pilot.press("L")
        assert isinstance(app.screen, LearningRateScreen)
        field = app.screen.query_one(Input)
        assert float(field.value) == app.run_config.lr  # prefilled with the run's
        field.value = "500"
        await pilot.press("enter")
        assert isinstance(app.screen, LearningRateScreen)  # refused, said in the dialog
        assert "out of range" in str(app.screen.query_one("#lr-error").render())
        field.value = "0.05"
        await pilot.press("enter")
        assert not isinstance(app.screen, LearningRateScreen)
        assert requests(run_dir) == [{"kind": "lr", "value": 0.05}]
        await wait_for(pilot, lambda: "lr 0.001 -> 0.05" in log_text(app), timeout=30)  # the run's note
        await pilot.pause()
        assert any("0.05" in n.message and n.title == "Run" for n in app._notifications)  # and its toast
        await pilot.press("k", "S")
        assert requests(run_dir)[1:] == [{"kind": "checkpoint"}, {"kind": "stop-after-epoch"}]
        await wait_done(pilot)
        assert status(app) == "stopped"
        assert "on request" in log_text(app).split("0.05")[-1]
        assert app.check_action("set_lr", ()) is False and app.check_action("checkpoint", ()) is False
    assert list(run_dir.glob("checkpoint-e*.pt"))


def diverged_run(out: Path, epochs: int = 3) -> Path:
    """A run that stopped after its first epoch, rewritten to say what a divergence in
    epoch 2 leaves: summary.json and the final event failed with the message."""
    from dltui.engine import EpochEnded, train
    from dltui.resolve import make_config

    seen: list = []
    done = lambda: any(isinstance(e, EpochEnded) for e in seen)  # noqa: E731
    train(make_config(epochs=epochs, out=str(out)), seen.append, done, threads=1)
    summary = json.loads((out / "summary.json").read_text())
    summary.update(status="failed", error=DIVERGED)
    (out / "summary.json").write_text(json.dumps(summary))
    lines = (out / "events.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    assert last["event"] == "stopped"
    lines[-1] = json.dumps({**last, "event": "failed", "message": DIVERGED, "summary": summary})
    (out / "events.jsonl").write_text("\n".join(lines) + "\n")
    return out


async def test_a_diverged_run_rolls_back_with_half_the_learning_rate(processes):
    run_dir = diverged_run(Path("runs/div"))
    app = make_app(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DivergedScreen))
        await pilot.pause()
        text = str(app.screen.query_one("Static").render())
        assert "Roll back to epoch 1 and continue with lr halved (0.001 → 0.0005)" in text
        await pilot.press("r")
        await wait_for(pilot, lambda: processes)
        [proc] = processes
        assert proc.args[-6:] == ["dltui", "run", "--resume", str(run_dir), "--lr", "0.0005"]
        await wait_done(pilot)
        assert status(app) == "finished" and app.curves.epochs == [1, 2, 3]
        assert "rolling back" in log_text(app)
    assert json.loads((run_dir / "config.json").read_text())["lr"] == 0.0005


async def test_a_diverged_run_can_be_left_as_it_is(processes):
    run_dir = diverged_run(Path("runs/div"))
    app = make_app(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DivergedScreen))
        await pilot.press("s")
        await pilot.pause()
        assert not isinstance(app.screen, DivergedScreen) and status(app) == "failed"
    assert not processes


async def test_a_run_that_diverged_in_its_first_epoch_starts_again_slower(monkeypatch):
    app = make_app({"dataset": "linear", "lr": 10, "epochs": 2}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DivergedScreen))
        assert "No epoch was saved: start it again with lr halved (10 → 5)" in str(
            app.screen.query_one("Static").render()
        )
        launched = []
        monkeypatch.setattr(app, "_launch", lambda args, out: launched.append((args, out)))
        await pilot.press("enter")
        [(args, out)] = launched
        assert float(args[args.index("--lr") + 1]) == 5 and args[args.index("--dataset") + 1] == "linear"
        assert out != app.attached and out.parent == Path("runs")


def drop_columns(run_dir: Path, *names: str) -> None:
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [k for k in rows[0] if k not in names]
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, keep, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


async def test_charts_show_validation_curves_and_the_learning_rate():
    run_dir = finished_run(Path("runs/val"), epochs=3, val_fraction=0.2, lr=0.01, schedule="step", step_size=1)
    app = make_app(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        await wait_ready(pilot)
        charts = app.query_one("#charts-view", Charts)
        curves = charts.run
        assert curves.val_epochs == [1, 2, 3] and len(curves.val_loss) == 3 and len(curves.val_acc) == 3
        assert curves.lrs == pytest.approx([0.01, 0.001, 0.0001])  # the step schedule, epoch by epoch
        app._draw_tick()
        await pilot.pause()
        await pilot.press("3")
        legend = str(app.query_one("#chart-legend").render())
        assert "val" in legend and "a: lr per epoch" in legend
        await pilot.press("a")
        await pilot.pause()
        assert charts.query_one(LrChart).display and not charts.query_one(AccuracyChart).display
        assert "learning rate · now 0.0001" in screen_text(app)
        await pilot.press("a")
        await pilot.pause()
        assert charts.query_one(AccuracyChart).display and not charts.query_one(LrChart).display


async def test_charts_of_a_run_from_before_validation_columns():
    run_dir = finished_run(Path("runs/old"), epochs=2, lr=0.05)
    for name in ("events.jsonl", "evaluation.npz", "testset.npz"):  # an older dltui's files
        (run_dir / name).unlink()
    drop_columns(run_dir, "val_loss", "val_acc")
    app = make_app(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_done(pilot)
        await pilot.press("3")
        curves = app.query_one("#charts-view", Charts).run
        assert curves.epochs == [1, 2] and not curves.val_loss and not curves.val_acc
        assert curves.lrs == [0.05, 0.05]
        assert "val" not in str(app.query_one("#chart-legend").render()).split("a:")[0]
        await pilot.press("a")
        await pilot.pause()
        assert "learning rate · now 0.05" in screen_text(app)
