"""Snapshots of a deterministic finished run (digits + mlp, 3 epochs, one thread, no
clock-paced progress events, machine-dependent numbers masked)."""

from __future__ import annotations

import pytest
from pilot_helpers import quiet_train, wait_done

from dltui.tui.app import make_app


def finished_run():
    return make_app({"epochs": 3, "out": "run"}, start=True, masked=True, threads=1, trainer=quiet_train)


def showing(tab: str):
    async def run_before(pilot) -> None:
        await wait_done(pilot)
        pilot.app.clear_notifications()  # toasts time out: never let one decide a snapshot
        await pilot.press(tab)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_charts(snap_compare, size):
    assert snap_compare(finished_run(), terminal_size=size, run_before=showing("2"))


def test_confusion_80x24(snap_compare):
    assert snap_compare(finished_run(), terminal_size=(80, 24), run_before=showing("3"))


def test_samples_120x40(snap_compare):
    assert snap_compare(finished_run(), terminal_size=(120, 40), run_before=showing("4"))
