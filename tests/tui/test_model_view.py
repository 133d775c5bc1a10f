"""The Model view (8): the summary of the model chosen in Setup, at 80x24, following the
menus, made in a worker and kept per (model, dataset)."""

from __future__ import annotations

import io

from pilot_helpers import finished_run, wait_for, wait_ready
from rich.console import Console
from textual.widgets import Select, TabbedContent

from dltui.tui.app import make_app
from dltui.tui.model_view import ModelView

SIZE = (80, 24)


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def view_text(app) -> str:
    """What the view holds, scrolled into view or not, as plain text."""
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(app.query_one("#model-summary").content)
    return console.export_text()


async def test_model_tab_shows_the_default_setups_layers_and_totals():
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("8")
        assert app.query_one(TabbedContent).active == "summary"
        view = app.query_one(ModelView)
        assert view.has_focus  # arrows and page keys scroll it
        await wait_for(pilot, lambda: "19,210" in view_text(app), timeout=30)
        await pilot.pause()
        screen = screen_text(app)
        # digits (1x8x8) with its recommended mlp: 64*256+256 and 256*10+10 parameters
        assert "8 Model" in screen
        assert "mlp on digits" in screen and "Setup's choice" in screen
        for row in ("Sequential", "0 (Flatten)", "1 (Linear)", "2 (ReLU)", "3 (Linear)", "16,640", "2,570"):
            assert row in screen, row
        assert "params   19,210 (all trainable)" in screen
        assert "MACs     19,210 per sample" in screen
        assert view.max_scroll_x == 0  # nothing cut off at 80 columns


async def test_model_view_follows_the_setup_menus_and_scrolls_a_long_table():
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("2")
        app.query_one("#dataset", Select).value = "names"  # its recommended model: gru
        await pilot.pause()
        await pilot.press("8")
        await wait_for(pilot, lambda: "321,517" in view_text(app), timeout=30)
        text = view_text(app)
        assert "gru on names" in text and "rnn (GRU)" in text and "20x200 packed" in text

        await pilot.press("2")
        app.query_one("#dataset", Select).value = "mnist"
        await pilot.pause()
        app.query_one("#model", Select).value = "inception"  # 22 layers: taller than the view
        await pilot.pause()
        await pilot.press("8")
        await wait_for(pilot, lambda: "97,298" in view_text(app), timeout=30)
        await pilot.pause()
        view = app.query_one(ModelView)
        assert view.max_scroll_y > 0 and view.max_scroll_x == 0
        assert "fc (Linear)" not in screen_text(app)  # the last row is below the fold...
        await pilot.press("end")
        await pilot.pause()
        assert "fc (Linear)" in screen_text(app)  # ...until scrolled to

        await pilot.press("2")
        app.query_one("#dataset", Select).value = "names"
        await pilot.pause()
        assert ("gru", "names") in view.cache  # kept: shown at once, no second summary
        await pilot.press("8")
        await pilot.pause()
        assert "321,517" in view_text(app)


async def test_model_view_shows_the_attached_runs_model(tmp_path):
    run = finished_run(tmp_path / "runs" / "xor-run", dataset="xor", model="deep-mlp", epochs=1)
    app = make_app({}, runs_dir=tmp_path / "runs", watch=run)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.query_one(ModelView).wanted == ("deep-mlp", "xor"))
        await pilot.press("8")
        await wait_for(pilot, lambda: "176,872" in view_text(app), timeout=30)  # deep-mlp for 3 features, 8 classes
        assert "deep-mlp on xor" in view_text(app) and "the attached run" in view_text(app)
        await pilot.press("2")
        app.query_one("#model", Select).value = "softmax"  # the latest choice wins
        await pilot.pause()
        await pilot.press("8")
        await wait_for(pilot, lambda: "softmax on digits" in view_text(app), timeout=30)
        assert "params   650 (all trainable)" in view_text(app)  # 64 * 10 + 10
