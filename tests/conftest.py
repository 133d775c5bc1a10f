"""Shared fixtures for the headless tests: every test runs in its own tmp dir, offline.

Kept generic on purpose; tests/tui has its own conftest for the app.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Nothing lands in the repo (runs/ goes to tmp_path) and no download is ever tried."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLTUI_OFFLINE", "1")
    monkeypatch.setenv("DLTUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path
