"""Helpers shared by the app's pilot and snapshot tests (imported by name: pytest puts
this folder on sys.path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def quiet_train(cfg, callback, should_stop, **kwargs):
    """The real engine minus progress events: those are paced by the wall clock, so
    dropping them makes a run's curves identical on every machine (snapshots)."""
    from dltui.engine import BatchProgressed, train

    return train(cfg, lambda e: None if isinstance(e, BatchProgressed) else callback(e), should_stop, **kwargs)


async def wait_for(pilot, condition: Callable[[], Any], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        await pilot.pause(0.02)


def status(app) -> str:
    return str(app.query_one("#status").render())


async def wait_ready(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.query_one("#form").catalog is not None)


async def wait_done(pilot, timeout: float = 60.0) -> None:
    await wait_for(pilot, lambda: status(pilot.app) in ("finished", "stopped", "failed"), timeout)
    await pilot.pause()


def paced_train(cfg, callback, should_stop, **kwargs):
    """The real engine, sleeping 5 ms per batch. The pilot waits for the process to go idle
    after each key (up to 1 s); a busy CPU-bound run never lets it, so long runs in tests
    are paced (a test harness cost only: the app itself answers keys while training)."""
    from dltui.engine import train

    def stop() -> bool:
        time.sleep(0.005)
        return should_stop()

    return train(cfg, callback, stop, **kwargs)
