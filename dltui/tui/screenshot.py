"""Saving what the screen shows (ctrl+s, and the command palette's Screenshot): an SVG
from Textual, plus a PNG where a converter is at hand."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path


def screenshot_dir(attached: Path | None, runs_dir: Path) -> Path:
    """The attached run's directory, else the runs directory, else the current one: never a
    folder that may not exist (Textual's default is ~/Downloads)."""
    for where in (attached, runs_dir):
        if where is not None and Path(where).is_dir():
            return Path(where)
    return Path.cwd()


def svg_to_png(svg: Path) -> Path | None:
    """Convert ``svg`` to a PNG beside it with cairosvg, rsvg-convert or ImageMagick's
    convert, whichever is there first; None when none is (or it failed)."""
    png = svg.with_suffix(".png")
    try:
        import cairosvg  # type: ignore[import-not-found]
    except ImportError:
        cairosvg = None
    if cairosvg is not None:
        with contextlib.suppress(Exception):  # a broken cairo install: try the tools
            cairosvg.svg2png(url=str(svg), write_to=str(png))
            return png
    for tool, args in (("rsvg-convert", ["-o", str(png), str(svg)]), ("convert", [str(svg), str(png)])):
        exe = shutil.which(tool)
        if exe is None:
            continue
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run([exe, *args], capture_output=True, timeout=60, check=False)
            if done.returncode == 0 and png.is_file():
                return png
    return None
