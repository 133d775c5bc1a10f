"""Pilot tests for the defects of issue 17, one (or two) a defect, at 80x24."""

from __future__ import annotations

from pathlib import Path

from pilot_helpers import wait_for, wait_ready
from textual.widgets import Input, RichLog, Select
from textual.widgets._footer import FooterKey
from textual.widgets._select import SelectOverlay
from textual.widgets._toast import Toast

from dltui.tui import screenshot
from dltui.tui.app import make_app
from dltui.tui.charts import Charts, FitChart, epoch_ticks
from dltui.tui.state import Curves

SIZE = (80, 24)


def footer_keys(app) -> list[str]:
    return [str(key.description) for key in app.query(FooterKey)]


async def test_log_wraps_at_its_width_after_being_hidden(tmp_path):
    app = make_app(runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        app.log_line("word " * 12)  # 60 columns: fits the 78 of the Log tab
        await pilot.press("6")
        await pilot.pause()
        await pilot.pause()
        lines = [strip.text.rstrip() for strip in app.query_one("#log-view", RichLog).lines]
        assert ("word " * 12).rstrip() in lines


async def test_loading_torch_is_not_a_model_to_pick(tmp_path):
    app = make_app(runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        model = app.query_one("#model", Select)
        await wait_ready(pilot)
        await pilot.pause()
        prompts = [str(o.prompt) for o in model.query_one(SelectOverlay).options]
        assert prompts and not any("loading" in p for p in prompts)
        assert len(prompts) == len(app.query_one("#form").catalog["digits"])


async def test_ctrl_s_saves_the_screen_in_the_runs_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(screenshot, "svg_to_png", lambda svg: None)  # no converter needed
    app = make_app(runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: footer_keys(app))
        assert "Screenshot" in footer_keys(app)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: list(tmp_path.glob("*.svg")) and app._notifications)
        svg = next(tmp_path.glob("*.svg"))
        assert "<svg" in svg.read_text()
        assert any(svg.name in n.message for n in app._notifications)


async def test_the_palette_screenshot_lands_in_a_real_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home-without-downloads"))
    monkeypatch.setattr(screenshot, "svg_to_png", lambda svg: None)
    app = make_app(runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Screenshot")
        command.callback()
        await wait_for(pilot, lambda: list(tmp_path.glob("*.svg")))


def test_svg_to_png_without_a_converter_gives_none(tmp_path, monkeypatch):
    import builtins
    import shutil

    real_import = builtins.__import__
    monkeypatch.setattr(
        builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "cairosvg"
        else real_import(name, *a, **k),
    )  # fmt: skip
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    svg = tmp_path / "x.svg"
    svg.write_text("<svg/>")
    assert screenshot.svg_to_png(svg) is None


def test_epoch_ticks_are_whole_for_any_run_length():
    for n in (3, 12, 13, 17, 30, 99, 250, 1000):
        ticks = epoch_ticks(n)
        assert all(isinstance(t, int) for t in ticks) and ticks[0] == 1 and ticks[-1] <= n
        assert len(ticks) <= 10


async def test_charts_legend_sits_off_the_plot_and_fit_points_over_the_line(tmp_path):
    app = make_app(runs_dir=tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("3")
        curves = Curves("digits · mlp")
        for e in range(1, 18):
            curves.add_epoch(e, 1 / e, 1.1 / e, 0.5 + e / 40, 0.5 + e / 41)
        charts = app.query_one("#charts-view", Charts)
        charts.begin(curves)
        await pilot.pause()
        loss = charts.query_one("#loss-chart")
        assert loss.plt._active.monitor.label in ([], [None] * len(loss.plt._active.monitor.label))
        xticks = loss.plt._active.monitor.xticks
        assert any(xticks) and all(float(t).is_integer() for ts in xticks if ts for t in ts)
        assert "running" in str(charts.query_one("#chart-legend").render())
        fit = charts.query_one(FitChart)
        fit.draw_fit([[0.0], [1.0], [2.0]], [0.1, 1.2, 1.9], [0.0, 1.0, 2.0])
        assert fit.plt._active.monitor.marker[-1][0] != "braille"  # the points are drawn last
        app.notify("a toast")
        await wait_for(pilot, lambda: app.screen.query(Toast))
        toast = app.screen.query_one(Toast)
        assert toast.region.y < charts.region.y + 2  # at the top, clear of the epoch axis


async def test_footer_keeps_its_keys_while_a_field_has_focus(tmp_path):
    app = make_app(runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.query_one("#lr", Input).focus()
        await pilot.pause()
        keys = footer_keys(app)
        assert "Quit" in keys and "Keys" in keys
        await pilot.press("end", "q", "r")  # letters still type
        assert app.query_one("#lr", Input).value.endswith("qr")


async def test_form_errors_name_the_field_not_the_flag(tmp_path):
    app = make_app(runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.query_one("#lr", Input).value = "fast"
        await pilot.pause()
        error = str(app.query_one("#form-error").render())
        assert error.startswith("learning rate: ") and "--lr" not in error


async def test_datasets_not_on_disk_are_marked(tmp_path):
    app = make_app({"data_dir": str(tmp_path / "empty")}, runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        menu = app.query_one("#dataset", Select)
        prompts = {str(o.prompt) for o in menu.query_one(SelectOverlay).options}
        assert "fashion-mnist (download)" in prompts and "digits" in prompts
        menu.value = "fashion-mnist"
        await pilot.pause()
        assert "not on disk" in str(app.query_one("#form-error").render())


async def test_progress_line_shows_the_test_accuracy_at_80_columns(tmp_path):
    from types import SimpleNamespace

    app = make_app(runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        line = app.query_one("#progress")
        ev = SimpleNamespace(epoch=3, epochs=3, test_acc=0.9712, test_loss=0.1, samples_per_s=1234.0)
        line.epoch(ev)
        line.ended("finished", str(tmp_path / "a-long-run-directory-name-that-does-not-fit-80-columns"))
        await pilot.pause()
        shown = "".join(s.text for s in app.screen._compositor.render_strips()[:1])
        assert "acc 97.1%" in shown


def test_names_grid_fits_80_columns_with_readable_labels():
    from dltui.data import DATASETS
    from dltui.render import confusion_grid

    classes = DATASETS["names"].classes
    matrix = [[300 if i == j else 27 for j in range(len(classes))] for i in range(len(classes))]
    lines = confusion_grid(matrix, classes, 78).plain.splitlines()
    assert max(map(len, lines)) <= 78
    assert "…" not in "".join(lines)  # row labels abbreviated like the column heads
    assert " 27 300" in lines[1] or "300  27" in lines[1]  # counts stay apart


async def test_focused_field_is_highlighted(tmp_path):
    app = make_app(runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        field = app.query_one("#lr", Input)
        before = field.styles.background
        field.focus()
        await pilot.pause()
        assert field.styles.background != before


async def test_changing_the_dataset_keeps_edited_fields(tmp_path):
    app = make_app(runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.query_one("#batch_size", Input).value = "17"
        await pilot.pause()
        app.query_one("#dataset", Select).value = "linear"
        await pilot.pause()
        assert app.query_one("#batch_size", Input).value == "17"
        assert app.query_one("#model", Select).value == "linreg"  # not edited: follows the dataset
        assert any("kept your batch size 17" in n.message for n in app._notifications)


def test_counts_and_articles_read_right():
    from dltui.words import article, plural

    assert plural(1, "epoch") == "1 epoch" and plural(3, "epoch") == "3 epochs"
    assert article("mlp") == "an mlp" and article("cnn") == "a cnn" and article("int") == "an int"
    source = (Path(__file__).parents[2] / "dltui" / "tui" / "app.py").read_text()
    assert "} epochs ·" not in source
