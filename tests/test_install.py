"""What an installed dltui relies on besides its code: the data it ships (package data, in
the wheel), one version, and a cache directory chosen the platform's way. The wheel itself is
built, installed and run in .ci/run."""

from __future__ import annotations

import fnmatch
import sys
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

import platformdirs
import pytest

import dltui
from dltui.config import default_data_dir
from dltui.data import DATASETS, names, shipped

ROOT = Path(__file__).resolve().parents[1]


def test_one_version():
    """pyproject takes the version from dltui.__version__; the installed metadata agrees."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dltui.__version__"}
    assert version("dltui") == dltui.__version__


def test_data_dir_env_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("DLTUI_DATA_DIR", str(tmp_path / "d"))
    assert default_data_dir() == tmp_path / "d"
    monkeypatch.setenv("DLTUI_DATA_DIR", "~/dltui-data")
    assert default_data_dir() == Path.home() / "dltui-data"


def test_data_dir_is_the_platform_user_cache(monkeypatch):
    monkeypatch.delenv("DLTUI_DATA_DIR")
    assert default_data_dir() == platformdirs.user_cache_path("dltui", appauthor=False) / "data"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG is the Linux convention")
def test_data_dir_follows_xdg_on_linux(monkeypatch, tmp_path):
    monkeypatch.delenv("DLTUI_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_data_dir() == tmp_path / "cache" / "dltui" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "dltui" / "data"


def test_shipped_data_is_package_data():
    """The shipped data lives inside the package and is read through importlib.resources, and
    pyproject's package-data globs take every file of it into the wheel."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    assets = files("dltui.data") / "assets"
    assert (assets / "digits" / "digits.csv.gz").is_file()
    assert sorted(f.name for f in (assets / "names").iterdir() if f.name.endswith(".txt")) == sorted(
        f"{lang}.txt" for lang in names.LANGUAGES
    )
    for spec in DATASETS.values():
        if spec.assets:
            assert (shipped(spec.assets) / "README.md").is_file(), spec.name
    package = ROOT / "dltui" / "data"
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["dltui.data"]
    on_disk = [p.relative_to(package).as_posix() for p in (package / "assets").rglob("*") if p.is_file()]
    assert len(on_disk) == 2 + 18  # digits: csv + README; names: 17 languages + README
    assert all(any(fnmatch.fnmatch(f, g) for g in globs) for f in on_disk), on_disk
