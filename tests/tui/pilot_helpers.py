"""Helpers shared by the app's pilot and snapshot tests (imported by name: pytest puts
this folder on sys.path).

Runs are real: the app launches `python -m dltui run` processes and follows their
directories, and the tests build finished runs with the engine in-process. Waits poll
for a condition; their timeouts only turn a hang into a failure, they time nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENDED = ("finished", "stopped", "failed", "crashed")
LONG = ["--batch-size", "1", "--epochs", "40"]  # ~20 s of training: runs to stop, kill or quit on


async def wait_for(pilot, condition: Callable[[], Any], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {timeout}s waiting for {condition}")
        await pilot.pause(0.05)


def wait_until(condition: Callable[[], Any], timeout: float = 60.0) -> None:
    """wait_for without an app (files written by another process)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {timeout}s waiting for {condition}")
        time.sleep(0.05)


def status(app) -> str:
    return str(app.query_one("#status").render())


def log_text(app) -> str:
    return "\n".join(app.log_lines)


async def wait_ready(pilot) -> None:
    """torch loaded and the model menus filled: `r` can start a run."""
    await wait_for(pilot, lambda: pilot.app.query_one("#form").catalog is not None)


async def wait_done(pilot, timeout: float = 90.0) -> None:
    await wait_for(pilot, lambda: status(pilot.app) in ENDED, timeout)
    await pilot.pause()


async def wait_epochs(pilot, n: int, timeout: float = 90.0) -> None:
    """The attached run has shown ``n`` epochs (live)."""
    app = pilot.app
    await wait_for(pilot, lambda: app.curves is not None and len(app.curves.epochs) >= n, timeout)


def finished_run(out: Path, **settings: Any) -> Path:
    """A run trained to the end in this process, on one thread (seeded: the same numbers
    on every machine). ``settings`` are make_config's (epochs=3 unless given)."""
    from dltui.engine import RunFinished, train
    from dltui.resolve import make_config

    settings.setdefault("epochs", 3)
    result = train(make_config(out=str(out), **settings), threads=1)
    assert isinstance(result, RunFinished), result
    return Path(out)


def without_clock(run_dir: Path) -> Path:
    """Drop what the wall clock decides from a run directory: the progress lines (paced by
    time, so their number and losses vary) and every timestamp and timing."""
    lines = []
    for n, line in enumerate((run_dir / "events.jsonl").read_text().splitlines()):
        event = json.loads(line)
        if event["event"] == "progress":
            continue
        event["time"] = 1_700_000_000.0 + n
        if "seconds" in event:
            event["seconds"], event["samples_per_s"] = 1.0, 1000.0
        if "summary" in event:
            event["summary"].update(wall_s=3.0, samples_per_s=1000.0, pid=1, host="host")
        lines.append(json.dumps(event) + "\n")
    (run_dir / "events.jsonl").write_text("".join(lines))
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(wall_s=3.0, samples_per_s=1000.0, pid=1, host="host")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return run_dir


def start_headless(out: Path, *flags: str) -> subprocess.Popen:
    """`dltui run --out OUT FLAGS` in a process of its own, as a user would start it in
    another shell (its output in OUT.log). The tui conftest kills it after the test."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{out}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "dltui", "run", "--out", str(out), *flags],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def summary_status(run_dir: Path) -> str | None:
    try:
        return json.loads((Path(run_dir) / "summary.json").read_text()).get("status")
    except (OSError, ValueError):
        return None
