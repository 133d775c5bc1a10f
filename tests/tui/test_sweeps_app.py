"""Sweeps in the app: a sweep is one row of the Runs tab that opens to its trials, its
leaderboard (tab 9) sorts, follows leaderboard.csv and attaches to a trial, and the Setup
form turns lists and ranges into `dltui sweep`. Most tests build a sweep directory by hand
(sweep_board's own writers: the files a sweep leaves); one runs a real two-trial sweep."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pilot_helpers import status, wait_done, wait_for, wait_ready
from textual.widgets import Button, Input, TabbedContent

from dltui.errors import ConfigError
from dltui.runs import RunInfo
from dltui.sweep_board import SweepSpec, TrialRow, rank, write_leaderboard
from dltui.sweep_space import split_flags
from dltui.tui.app import make_app
from dltui.tui.charts import Charts
from dltui.tui.runs_view import RunsTable
from dltui.tui.sweeps_view import (
    LeaderboardTable,
    SweepBoard,
    SweepGroup,
    check_form,
    group_runs,
    sweep_args,
    sweep_shape,
)

SIZE = (80, 24)
# (trial, model, lr, status, val_acc, test_acc): the leaderboard ranks them 2, 0, then pruned 1
TRIALS = [
    (0, "mlp", 0.01, "finished", 0.95, 0.94),
    (1, "softmax", 0.1, "pruned", 0.97, 0.90),
    (2, "mlp", 0.1, "finished", 0.96, 0.95),
]


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def fake_trial(path: Path, model: str, lr: float, status: str, test_acc: float, epochs: int = 2) -> Path:
    """A trial's run directory as an older dltui wrote runs (config, metrics, summary): the
    app lists it, attaches to it and draws its curves without loading a dataset."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"dataset": "digits", "model": model, "epochs": epochs, "lr": lr}))
    done = 1 if status == "pruned" else epochs
    lines = ["epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,samples_per_s"]
    lines += [f"{e},{1 / e:.3f},{test_acc - 0.01},{1.1 / e:.3f},{test_acc - 0.02 * (done - e)},{lr},0.1,1000"
              for e in range(1, done + 1)]  # fmt: skip
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")
    said = "stopped" if status == "pruned" else status
    (path / "summary.json").write_text(json.dumps({"status": said, "epochs_done": done, "wall_s": 0.2 * done}))
    return path


def fake_sweep(root: Path, name: str = "lr-sweep", trials: list[tuple] = TRIALS, target: int = 3) -> Path:
    """A sweep directory as `dltui sweep` leaves it (sweep.json, leaderboard.csv, one run
    directory a trial), without Optuna."""
    directory = root / name
    fixed, space = split_flags({"model": "mlp,softmax", "lr": "0.1,0.01"})
    spec = SweepSpec(name, "val_acc", target, {"dataset": "digits", "epochs": "2", **fixed}, space, created=time.time())
    directory.mkdir(parents=True)
    (directory / "sweep.json").write_text(json.dumps(spec.to_dict()))
    write_board(directory, spec, trials)
    return directory


def write_board(directory: Path, spec: SweepSpec, trials: list[tuple]) -> None:
    rows = []
    for number, model, lr, said, value, test_acc in trials:
        run_dir = directory / f"trial-{number:03d}-{model}-lr{lr}"
        if not run_dir.exists() and said != "running":  # a running trial's files: see live_rows
            fake_trial(run_dir, model, lr, said, test_acc)
        rows.append(TrialRow(number, said, value, {"model": model, "lr": lr}, 2, 2 if said != "pruned" else 1, 2,
                             0.4, test_acc, 0.3, "host", str(run_dir.absolute())))  # fmt: skip
    write_leaderboard(directory / "leaderboard.csv", rank(rows, spec.direction), spec)


def spec_of(directory: Path) -> SweepSpec:
    return SweepSpec.from_dict(json.loads((directory / "sweep.json").read_text()))


def trial_numbers(app) -> list[str]:
    return [row["trial"] for row in app.query_one(LeaderboardTable).trials]


# --- pure parts: the form's lists, the grouping ---


def test_a_form_with_a_list_is_a_sweep_and_becomes_dltui_sweep_flags():
    raw = {"dataset": "digits", "model": "mlp", "epochs": "2", "lr": "0.1,0.01", "seed": "0", "out": "x", "amp": True}
    assert sweep_shape(raw) == (True, 2)
    assert sweep_shape({**raw, "lr": "0.1"}) == (False, None)
    assert sweep_shape({**raw, "lr": "1e-4..1e-1:log"}) == (True, None)
    assert sweep_shape({**raw, "lr": "0.1,abc"}) == (True, None)  # being typed: still a sweep's form
    assert check_form(raw).lr == 0.1  # the first value's config
    assert sweep_args(raw, " 2 ") == [
        "--dataset", "digits", "--model", "mlp", "--epochs", "2", "--lr", "0.1,0.01", "--seed", "0", "--amp",
        "--trials", "2",
    ]  # fmt: skip
    for bad, field, why in (
        ({**raw, "lr": "0.1,-1"}, "lr", "out of range"),  # each value through the one validator
        ({**raw, "lr": "0.1,,0.2"}, "lr", "empty item"),
        ({**raw, "model": "mlp,cnn"}, "model", "does not fit"),
        ({**raw, "epochs": "5..2"}, "epochs", "lo < hi"),
    ):
        with pytest.raises(ConfigError, match=why) as caught:
            check_form(bad)
        assert caught.value.field == field
    with pytest.raises(ConfigError, match="1 to 2") as caught:
        check_form(raw, "3")  # a grid tries each point once
    assert caught.value.field == "trials"


def test_a_sweeps_trials_fold_into_one_group(tmp_path):
    from dltui.runs import scan

    sweep = fake_sweep(Path("runs"))
    fake_trial(Path("runs/plain"), "mlp", 0.1, "finished", 0.9)
    spec = spec_of(sweep)
    # a trial of another machine is in the leaderboard only
    write_board(sweep, spec, [*TRIALS, (3, "softmax", 0.01, "failed", None, 0.1)])
    (sweep / "trial-003-softmax-lr0.01").rename(tmp_path / "elsewhere")
    entries = group_runs(scan(Path("runs")), Path("runs"))
    assert sorted(type(e).__name__ for e in entries) == ["RunInfo", "SweepGroup"]
    [group] = [e for e in entries if isinstance(e, SweepGroup)]
    assert [r.name for r in group.trials] == ["trial-002-mlp-lr0.1", "trial-000-mlp-lr0.01", "trial-001-softmax-lr0.1"]
    assert group.counts == {"finished": 2, "pruned": 1, "failed": 1}
    assert group.statuses[str(group.trials[2].path)] == "pruned"  # the leaderboard's word, not the run's "stopped"
    assert (group.done, group.status, group.best) == (4, "finished", 0.96)
    assert all(isinstance(e, RunInfo) or e is group for e in entries)


# --- the Runs tab ---


async def test_a_sweep_shows_as_one_row_that_opens_to_its_trials(monkeypatch):
    sweep = fake_sweep(Path("runs"), target=4)  # 3 of 4 trials ran: it can continue
    fake_trial(Path("runs/plain"), "mlp", 0.1, "finished", 0.9)
    app = make_app({})
    launched: list[tuple] = []
    monkeypatch.setattr(app, "_launch", lambda args, out, attach=True, log_name="": launched.append((args, out)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: len(table.items) == 2)
        assert app.query_one(TabbedContent).get_tab("sweep").display  # a sweep exists: its tab shows
        keys = list(table.items)
        table.move_cursor(row=keys.index(str(sweep)))
        await pilot.pause()
        [row] = [line for line in screen_text(app).splitlines() if "lr-sweep" in line]
        assert "▸" in row and "3/4" in row and "0.9600" in row and "2✓ 1✂" in row
        await wait_for(pilot, lambda: "⏎ Leaderboard" in screen_text(app).splitlines()[-1], timeout=10)
        await pilot.press("right")  # open: its trials follow it, best first
        await pilot.pause()
        names = [Path(k).name for k in table.items]
        start = names.index("lr-sweep")
        assert names[start + 1 : start + 4] == [
            "trial-002-mlp-lr0.1",
            "trial-000-mlp-lr0.01",
            "trial-001-softmax-lr0.1",
        ]
        shown = screen_text(app)
        assert "├ 2 mlp-lr0.1" in shown and "└ 1 softmax-lr0.1" in shown and "pruned" in shown
        await pilot.press("down")
        await pilot.pause()
        await wait_for(pilot, lambda: "⏎ Attach" in screen_text(app).splitlines()[-1], timeout=10)  # a trial is a run
        await pilot.press("left")  # fold from a trial: back on the sweep's row
        await pilot.pause()
        assert len(table.items) == 2 and table.selected() == sweep
        await pilot.press("r")  # continue the sweep: its remaining trial
        assert launched == [(["sweep", "--resume", str(sweep)], sweep)]


# --- the leaderboard ---


async def test_the_leaderboard_lists_sorts_and_follows_its_file():
    sweep = fake_sweep(Path("runs"))
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.items)
        table.move_cursor(row=list(table.items).index(str(sweep)))
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "sweep"
        board = app.query_one(LeaderboardTable)
        assert board.has_focus
        assert trial_numbers(app) == ["2", "0", "1"]  # leaderboard.csv's order
        shown = screen_text(app)
        assert "lr-sweep · grid of 4 · ranked by val_acc" in shown and "2 finished 1 pruned" in shown
        assert "o Sort" in shown.splitlines()[-1]
        await pilot.press("o")  # by val_acc, best first: the pruned trial's 0.97 leads
        await pilot.pause()
        assert board.sort_key == "val_acc" and trial_numbers(app) == ["1", "2", "0"]
        assert board.selected_key().endswith("trial-002-mlp-lr0.1")  # the cursor stays on its trial
        assert "sort: val_acc ↓" in screen_text(app)
        await pilot.press("o", "O")  # by model, reversed
        await pilot.pause()
        assert board.sort_key == "model" and [r["model"] for r in board.trials] == ["softmax", "mlp", "mlp"]
        await pilot.press("o", "o", "o", "o", "o", "o")  # lr, epochs, time, test acc, status, back to rank
        assert board.sort_key == "rank" and trial_numbers(app) == ["2", "0", "1"]
        # the sweep process replaces the file: a new trial runs, trial 0 finished better
        write_board(sweep, spec_of(sweep), [(0, "mlp", 0.01, "finished", 0.99, 0.97), *TRIALS[1:],
                                            (3, "softmax", 0.01, "running", 0.5, 0.5)])  # fmt: skip
        await wait_for(pilot, lambda: trial_numbers(app) == ["0", "2", "1", "3"], timeout=10)  # the app's scan
        assert "running" in screen_text(app)


async def test_enter_on_a_leaderboard_row_attaches_to_that_trial_and_marked_rows_compare():
    sweep = fake_sweep(Path("runs"))
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.query_one(RunsTable).items)
        await pilot.press("9")  # no sweep open: the newest one
        await pilot.pause()
        board = app.query_one(LeaderboardTable)
        assert app.query_one(SweepBoard).path == sweep and board.trials
        await pilot.press("down", "enter")
        await wait_done(pilot)
        row = board.trials[1]
        assert app.attached == Path(row["run_dir"]) and Path(row["run_dir"]).name == "trial-000-mlp-lr0.01"
        assert status(app) == "finished" and app.curves.epochs == [1, 2]
        await pilot.press("9")
        board.move_cursor(row=0)
        await pilot.press("space", "space", "c")  # mark the two best, compare their curves
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "charts"
        charts = app.query_one(Charts)
        assert sorted(c.label for c in charts.others) == ["lr 0.01", "lr 0.1"]


# --- Setup: lists and ranges start a sweep ---


async def test_a_list_in_setup_starts_a_sweep_with_its_flags(monkeypatch):
    app = make_app({"epochs": 2})
    launched: list[tuple] = []

    def launch(args, out, attach=True, log_name="run.log"):
        launched.append((args, out, attach, log_name))
        return True

    monkeypatch.setattr(app, "_launch", launch)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        form = app.query_one("#form")
        trials = app.query_one("#trials", Input)
        assert not form.sweeping and trials.region.height == 0
        app.query_one("#lr", Input).value = "0.1,0.01"
        await pilot.pause()
        assert form.sweeping and str(app.query_one("#start", Button).label) == "Start sweep (r)"
        assert trials.region.height == 1 and "blank: 2" in trials.placeholder  # the grid's size
        assert app.check_action("start_sweep", ()) and not app.check_action("start", ())
        trials.value = "3"
        await pilot.pause()
        assert "trials: 3 is out of range" in str(app.query_one("#form-error").render())
        assert trials.has_class("-invalid") and app.query_one("#start", Button).disabled
        trials.value = "2"
        await pilot.pause()
        await pilot.press("ctrl+r")
        await pilot.pause()
        [(args, out, attach, log_name)] = launched
        assert args == [
            "sweep", "--dataset", "digits", "--model", "mlp", "--epochs", "2", "--batch-size", "32",
            "--lr", "0.1,0.01", "--optimizer", "adam", "--device", "auto", "--seed", "0", "--trials", "2",
            "--out", str(out),
        ]  # fmt: skip
        assert out.parent == Path("runs") and out.name.startswith("sweep-") and not attach and log_name == "sweep.log"
        assert app.query_one(TabbedContent).active == "sweep" and app.query_one(SweepBoard).path == out
        app.query_one("#lr", Input).value = "0.1"  # one value again: a run
        await pilot.pause()
        assert not form.sweeping and str(app.query_one("#start", Button).label) == "Start (r)"


async def test_a_bad_value_in_a_list_marks_its_field():
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        lr = app.query_one("#lr", Input)
        lr.value = "0.1,abc"
        await pilot.pause()
        error = str(app.query_one("#form-error").render())
        assert error.startswith("learning rate: 'abc' is not a number") and "\n" not in error.strip()
        assert lr.has_class("-invalid") and app.query_one("#start", Button).disabled
        lr.value = "0.1,-1"  # a well-formed list whose value the run's validator refuses
        await pilot.pause()
        assert "learning rate: -1" in str(app.query_one("#form-error").render()) and lr.has_class("-invalid")
        lr.value = "0.1"
        model_code = app.query_one("#model_ref", Input)
        model_code.value = "mlp,nosuch"
        model_code.focus()
        await pilot.press("enter")  # the model field is read on enter
        await pilot.pause()
        assert "unknown value 'nosuch'" in str(app.query_one("#form-error").render())
        assert model_code.has_class("-invalid") and not lr.has_class("-invalid")


async def test_a_sweep_started_from_setup_fills_its_leaderboard_live(processes):
    """A real `dltui sweep` of two trials, launched as the app launches runs."""
    app = make_app({"epochs": 2})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.query_one("#lr", Input).value = "0.1,0.01"
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: processes)
        [proc] = processes
        assert proc.args[1:4] == ["-m", "dltui", "sweep"] and "0.1,0.01" in proc.args
        board = app.query_one(LeaderboardTable)
        done = lambda: [r["status"] for r in board.trials] == ["finished", "finished"]  # noqa: E731
        await wait_for(pilot, done, timeout=90)
        sweep = app.query_one(SweepBoard).path
        assert (sweep / "sweep.log").exists()
        assert "best: trial" in screen_text(app)
        await pilot.press("enter")  # the best trial
        await wait_done(pilot)
        assert app.attached == Path(board.trials[0]["run_dir"]) and status(app) == "finished"
        await pilot.press("1")
        await wait_for(pilot, lambda: any(isinstance(i, SweepGroup) for i in app.query_one(RunsTable).items.values()))
        assert "2/2" in screen_text(app)
