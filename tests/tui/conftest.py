"""Fixtures for the app's pilot and snapshot tests. The app launches every run as a
`dltui run` process of its own; these keep those processes small and leave none behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _run_processes_env(monkeypatch):
    """The runs the app launches (`python -m dltui run`) import the dltui these tests
    import, installed or not; and they train on one thread: torch's default is every
    core, and the app and the pilot need one of them (two cores on CI)."""
    import dltui

    checkout = str(Path(dltui.__file__).resolve().parent.parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (checkout, os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def processes(monkeypatch):
    """Every process started during a test (the app's runs live in sessions of their own,
    so they outlive the app by design) is killed, by its id, when the test ends."""
    started: list[subprocess.Popen] = []
    real = subprocess.Popen

    class Recorded(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    yield started
    for proc in started:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                if os.getpgid(proc.pid) == proc.pid:  # a session of its own: take its children too
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
