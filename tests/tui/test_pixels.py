"""Real pixels: the sampler picks the image protocol from the terminal's answer and falls
back to half blocks. A pseudo-terminal plays the terminal, answering (or not) the queries."""

from __future__ import annotations

import io
import os
import pty
import threading

import pytest
import torch
from textual.app import App, ComposeResult

from dltui.tui import pixels
from dltui.tui.app import DltuiApp, run_app
from dltui.tui.pixels import DA1_QUERY, PixelCell, choose, detect
from dltui.tui.sampler import Sampler

KITTY_OK = "\x1b_Gi=31;OK\x1b\\"
DA1_PLAIN = "\x1b[?62;22c"  # VT220 with colour: no Sixel
DA1_SIXEL = "\x1b[?62;4;6;22c"  # attribute 4: Sixel graphics


@pytest.mark.parametrize(
    ("answer", "protocol"),
    [
        (KITTY_OK + DA1_PLAIN, "kitty"),  # kitty, ghostty
        (DA1_SIXEL, "sixel"),  # foot, xterm -ti vt340, Windows Terminal, VS Code
        (KITTY_OK + DA1_SIXEL, "sixel"),  # WezTerm, Konsole: both offered, Sixel works better there
        ("\x1b_Gi=31;ENOTSUPPORTED:no\x1b\\" + DA1_PLAIN, "halfblock"),
        (DA1_PLAIN, "halfblock"),  # GNOME Terminal, tmux, screen
        ("\x1b[?1;2c", "halfblock"),  # a VT100 answer
        ("", "halfblock"),  # no answer at all
    ],
)
def test_choose_reads_the_answer(answer, protocol):
    assert choose(answer) == protocol


class FakeTerminal:
    """The far end of a pty: waits for the DA1 query, then answers ``answer`` (or nothing)."""

    def __init__(self, answer: str) -> None:
        self.master, slave = pty.openpty()
        self.tty = os.fdopen(slave, "r+b", buffering=0)
        self.answer = answer
        self.heard = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while DA1_QUERY.encode() not in self.heard:
            try:
                self.heard += os.read(self.master, 1024)
            except OSError:
                return
        if self.answer:
            os.write(self.master, self.answer.encode())

    def close(self) -> None:
        self.tty.close()
        os.close(self.master)
        self._thread.join()


@pytest.fixture
def terminal():
    made = []

    def make(answer: str) -> FakeTerminal:
        made.append(FakeTerminal(answer))
        return made[-1]

    yield make
    for t in made:
        t.close()


@pytest.mark.parametrize(
    ("answer", "protocol"),
    [(KITTY_OK + DA1_PLAIN, "kitty"), (DA1_SIXEL, "sixel"), (DA1_PLAIN, "halfblock"), ("", "halfblock")],
    ids=["kitty", "sixel", "plain", "silent"],
)
def test_detect_asks_the_terminal(terminal, answer, protocol):
    term = terminal(answer)
    assert detect("auto", term.tty, term.tty, environ={"TERM": "xterm-256color"}, timeout=0.3) == protocol
    assert term.heard.startswith(pixels.KITTY_QUERY.encode())  # the graphics query goes first
    assert b"a=q" in term.heard  # a query, never an image transmission


def test_no_query_when_not_asked_for_or_not_possible(terminal, tmp_path):
    term = terminal(KITTY_OK + DA1_PLAIN)
    assert detect("halfblock", term.tty, term.tty, environ={}) == "halfblock"
    served = {"TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver"}  # textual-serve's app processes
    assert detect("auto", term.tty, term.tty, environ=served) == "halfblock"
    assert term.heard == b""
    with open(tmp_path / "pipe", "w+b") as not_a_tty:
        assert detect("auto", not_a_tty, not_a_tty, environ={}) == "halfblock"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_run_app_hands_the_detected_protocol_to_the_sampler(monkeypatch):
    seen = {}
    monkeypatch.setattr("sys.stdin", _Tty())
    monkeypatch.setattr("sys.stdout", _Tty())
    monkeypatch.setattr(pixels, "detect", lambda mode: {"auto": "sixel", "halfblock": "halfblock"}[mode])
    monkeypatch.setattr(pixels, "prepare", lambda protocol: seen.setdefault("prepared", protocol))
    monkeypatch.setattr(DltuiApp, "run", lambda self: seen.setdefault("images", self.images))
    assert run_app({}, False, "auto") == 0
    assert seen == {"prepared": "sixel", "images": "sixel"}


class SamplerHost(App):
    """The Samples view alone, on the real digits test split with made-up predictions."""

    def __init__(self, images: str) -> None:
        super().__init__()
        self.images = images

    def compose(self) -> ComposeResult:
        yield Sampler(self.images, id="sampler")

    def on_mount(self) -> None:
        from dltui.data import load
        from dltui.engine import EvaluationReady
        from dltui.resolve import make_config

        data = load(make_config(dataset="digits"))
        y_true = data.y_test.clone()
        y_pred = torch.where(torch.arange(len(y_true)) % 7 == 0, (y_true + 1) % 10, y_true)  # every 7th wrong
        ev = EvaluationReady(1, None, y_true, y_pred, torch.full((len(y_true),), 0.9), list(range(48)))
        sampler = self.query_one(Sampler)
        sampler.set_data(data)
        sampler.set_eval(ev)
        sampler.redraw()


async def test_sampler_draws_real_pixels_with_the_protocol():
    from textual_image.widget import SixelImage

    app = SamplerHost("sixel")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        sampler = app.query_one(Sampler)
        cells = list(sampler.query(PixelCell))
        assert len(cells) == len(sampler.shown) == 48
        assert all(len(cell.query(SixelImage)) == 1 for cell in cells)
        assert cells[0].query_one(SixelImage).size == (16, 8)  # the half-block drawing's cells
        assert not app.query_one("#sampler-body").display  # the half-block text steps aside
        assert str(cells[0].query_one(".pixel-caption").render()).strip().endswith("90%")
        sampler.toggle_mistakes()  # a redraw replaces the cells instead of adding to them
        await pilot.pause()
        assert len(sampler.query(PixelCell)) == len(sampler.shown) == 48


async def test_half_blocks_by_default():
    app = SamplerHost("halfblock")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert not app.query(PixelCell) and not app.query("#sampler-pixels")
        assert str(app.query_one("#sampler-body").render()).count("%") == 48


def test_images_flag_is_checked():
    from typer.testing import CliRunner

    from dltui.cli import app

    result = CliRunner().invoke(app, ["--images", "sixel"])
    assert result.exit_code == 2
    assert result.output.strip() == "dltui: error: --images: 'sixel' is not one of auto, halfblock"
