"""The headless core never imports the app's UI toolkit: each module is imported in a fresh
interpreter and must leave `textual` out of sys.modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEADLESS = [
    "dltui.engine",
    "dltui.data",
    "dltui.models",
    "dltui.models.summary",
    "dltui.models.custom",
    "dltui.models.heads",
    "dltui.data.sources",
    "dltui.data.table",
    "dltui.data.tablefile",
    "dltui.data.imagefolder",
    "dltui.data.augment",
    "dltui.engine.callbacks",
    "dltui.config",
    "dltui.resolve",
    "dltui.render",
    "dltui.reporting",
    "dltui.evaluation",
    "dltui.cli",
    "dltui.serve",
    "dltui.runs",
    "dltui.sysinfo",
    "dltui.words",
    "dltui.sweep",
    "dltui.sweep_board",
    "dltui.sweep_space",
    "dltui.sweep_trial",
]

CHECK = """
import importlib, sys
importlib.import_module({module!r})
assert {module!r} in sys.modules
leaked = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual.") or m.startswith("textual_"))
print("LEAKED", leaked)
"""


def _import_fresh(module: str, cwd) -> subprocess.CompletedProcess:
    """Import ``module`` in a new interpreter and print which GUI modules came with it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize("module", HEADLESS)
def test_no_textual_import(module, tmp_path):
    proc = _import_fresh(module, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "LEAKED []" in proc.stdout, proc.stdout


def test_check_detects_textual(tmp_path):
    """The check itself can fail: the app module does import textual."""
    proc = _import_fresh("dltui.tui.app", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "LEAKED []" not in proc.stdout and "'textual'" in proc.stdout
