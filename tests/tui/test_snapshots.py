"""Snapshots of the app attached to one finished run (digits + mlp, 3 epochs, trained on
one thread in this process), with what the clock decides taken out of its files (the
clock-paced progress lines, timestamps, timings) and machine-dependent numbers masked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pilot_helpers import finished_run, wait_done, wait_for, wait_ready, without_clock

from dltui.tui.app import make_app
from dltui.tui.runs_view import RunsTable


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Trained once for the module; each test gets its own copy."""
    return without_clock(finished_run(tmp_path_factory.mktemp("trained") / "run", epochs=3))


@pytest.fixture
def run_dir(trained) -> Path:
    return Path(shutil.copytree(trained, Path("runs") / "run"))  # the autouse fixture chdirs into tmp_path


def attached(run_dir: Path):
    return make_app(watch=run_dir, masked=True)


def showing(tab: str):
    async def run_before(pilot) -> None:
        await wait_done(pilot)
        await wait_ready(pilot)  # the footer's keys depend on it
        await wait_for(pilot, lambda: pilot.app.query_one(RunsTable).runs)
        pilot.app.clear_notifications()  # toasts time out: never let one decide a snapshot
        await pilot.press(tab)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_charts(snap_compare, run_dir, size):
    assert snap_compare(attached(run_dir), terminal_size=size, run_before=showing("3"))


def test_confusion_80x24(snap_compare, run_dir):
    assert snap_compare(attached(run_dir), terminal_size=(80, 24), run_before=showing("4"))


def test_samples_120x40(snap_compare, run_dir):
    assert snap_compare(attached(run_dir), terminal_size=(120, 40), run_before=showing("5"))


def test_runs_80x24(snap_compare, run_dir):
    assert snap_compare(attached(run_dir), terminal_size=(80, 24), run_before=showing("1"))


def test_dashboard_160x50(snap_compare, run_dir):
    """At 120x40 and up the attached run is on one screen: stats, charts, confusion, samples."""
    assert snap_compare(attached(run_dir), terminal_size=(160, 50), run_before=showing("7"))


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
@pytest.mark.parametrize("dialog", ["keys", "quit"])
def test_dialogs(snap_compare, run_dir, dialog, size):
    from dltui.tui.screens import ConfirmQuitScreen, KeysScreen

    async def run_before(pilot) -> None:
        await showing("1")(pilot)
        pilot.app.push_screen(KeysScreen() if dialog == "keys" else ConfirmQuitScreen(1))
        await pilot.pause()

    assert snap_compare(attached(run_dir), terminal_size=size, run_before=run_before)


@pytest.fixture(scope="module")
def linear(tmp_path_factory) -> Path:
    return without_clock(finished_run(tmp_path_factory.mktemp("linear") / "run", dataset="linear", epochs=3))


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_linear_charts(snap_compare, linear, size):
    run_dir = Path(shutil.copytree(linear, Path("runs") / "linear"))
    assert snap_compare(attached(run_dir), terminal_size=size, run_before=showing("3"))
