"""Shared helpers for the app's pilot and snapshot tests: every run happens in a tmp dir,
offline, on seeded data."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """runs/ lands in tmp_path, never in the repo; no download is ever tried."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLTUI_OFFLINE", "1")
    monkeypatch.setenv("DLTUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path
