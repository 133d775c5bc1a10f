"""Real pixels: which image protocol the terminal speaks, and the widgets that draw test
images with it (through textual-image).

The terminal is asked once, before the app starts (afterwards Textual's input thread owns
stdin and would swallow the answer): a Kitty graphics query for a 1x1 image, then Primary
Device Attributes (DA1). Every terminal answers DA1, so its reply ends the wait at once;
one that speaks the Kitty protocol answers the graphics query first, and a DA1 reply
listing attribute 4 means Sixel. A terminal that says nothing costs ``TIMEOUT_S`` and
gets half blocks, as does anything that is not a terminal (pipes, tests, textual-serve).
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import IO, Any

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static

from dltui.render import image_rgb

TIMEOUT_S = 0.5  # generous for a terminal at the far end of SSH; terminals answer DA1 in ms

KITTY_QUERY = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
DA1_QUERY = "\x1b[c"
_DA1 = re.compile(r"\x1b\[\?([0-9;]*)c")
_KITTY = re.compile(r"\x1b_G(?:[^;\x1b]*,)?i=31(?:,[^;\x1b]*)?;([^\x1b]*)\x1b\\")


def choose(answer: str) -> str:
    """The protocol to draw with, from what the terminal answered to the queries. Sixel
    wins when both are offered: WezTerm and Konsole accept Kitty graphics but not the
    Unicode placeholders textual-image draws them with; kitty itself has no Sixel."""
    da1 = _DA1.search(answer)
    if da1 and "4" in da1.group(1).split(";"):
        return "sixel"
    kitty = _KITTY.search(answer)
    if kitty and kitty.group(1) == "OK":
        return "kitty"
    return "halfblock"


def query_terminal(fd_in: int, fd_out: int, timeout: float = TIMEOUT_S) -> str:
    """Send both queries to the terminal on ``fd_out`` and read its answer from ``fd_in``
    until the DA1 reply has arrived or ``timeout`` seconds have passed. Without echo or
    line buffering, restored afterwards. '' when the terminal said nothing."""
    import select
    import termios

    saved = termios.tcgetattr(fd_in)
    quiet = termios.tcgetattr(fd_in)
    quiet[3] &= ~(termios.ECHO | termios.ICANON)  # the answer is neither shown nor held for a newline
    quiet[6][termios.VMIN], quiet[6][termios.VTIME] = 1, 0
    answer = b""
    try:
        termios.tcsetattr(fd_in, termios.TCSANOW, quiet)
        os.write(fd_out, (KITTY_QUERY + DA1_QUERY).encode())
        deadline = time.monotonic() + timeout
        while not _DA1.search(answer.decode("latin-1")):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd_in], [], [], left)[0]:
                break
            chunk = os.read(fd_in, 1024)
            if not chunk:
                break
            answer += chunk
    finally:
        termios.tcsetattr(fd_in, termios.TCSANOW, saved)
    return answer.decode("latin-1")


def detect(
    mode: str = "auto",
    stdin: IO[Any] | None = None,
    stdout: IO[Any] | None = None,
    environ: dict[str, str] | None = None,
    timeout: float = TIMEOUT_S,
) -> str:
    """``--images`` → the protocol the sampler draws with: 'kitty', 'sixel' or 'halfblock'."""
    if mode == "halfblock":
        return "halfblock"
    env = os.environ if environ is None else environ
    if env.get("TEXTUAL_DRIVER") or env.get("TERM", "") in ("dumb", "linux"):
        return "halfblock"  # textual-serve's browser terminal and the console have no image protocol
    stdin = sys.__stdin__ if stdin is None else stdin
    stdout = sys.__stdout__ if stdout is None else stdout
    try:
        import termios
    except ImportError:  # Windows: no way to ask without Textual's own driver
        return "halfblock"
    try:
        if not (stdin and stdout and stdin.isatty() and stdout.isatty()):
            return "halfblock"
        return choose(query_terminal(stdin.fileno(), stdout.fileno(), timeout))
    except (OSError, ValueError, termios.error):  # a closed stream, a terminal that refused cbreak
        return "halfblock"


def prepare(protocol: str) -> None:
    """Import textual-image while the terminal is still ours: it asks the terminal for its
    cell size (and, on import, for its protocols) and caches the answers."""
    if protocol != "halfblock":
        import textual_image.widget  # noqa: F401


def _cell_pixels() -> tuple[int, int]:
    try:
        from textual_image._terminal import get_cell_size

        size = get_cell_size()
        return max(size.width, 1), max(size.height, 1)
    except Exception:  # its private helper moved: a VT340's cell, textual-image's own default
        return 10, 20


class PixelCell(Vertical):
    """One test item in real pixels: the image above its caption, in the same number of
    cells as its half-block drawing, so the layout does not change with the protocol."""

    DEFAULT_CSS = """
    PixelCell { height: auto; width: auto; }
    PixelCell > .pixel-caption { height: 1; }
    """

    def __init__(self, protocol: str, pixels: Any, scale: float, size: tuple[int, int], caption: Text) -> None:
        super().__init__()
        self.protocol, self.size_cells, self.caption = protocol, size, caption
        rgb = image_rgb(pixels, scale)
        cols, rows = size
        cw, ch = _cell_pixels()
        from PIL import Image

        # nearest neighbour to the widget's own pixel size: textual-image then has nothing left
        # to resample, so every source pixel stays a sharp square instead of a bicubic blur
        self._image = Image.fromarray(rgb).resize((cols * cw, rows * ch), Image.Resampling.NEAREST)

    def compose(self):
        from textual_image.widget import SixelImage, TGPImage

        widget = (SixelImage if self.protocol == "sixel" else TGPImage)(self._image, classes="pixel-image")
        widget.styles.width, widget.styles.height = self.size_cells
        yield widget
        yield Static(self.caption, classes="pixel-caption")

    def release(self) -> None:
        """Free the image in the terminal (Kitty keeps it until told) before removal."""
        if self.protocol == "kitty":
            for widget in self.query(".pixel-image"):
                widget.image = None  # type: ignore[attr-defined]
