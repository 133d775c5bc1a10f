"""The Setup form with the user's own data: a path typed (with completion) or picked from a
directory tree, read in a thread, its inspect summary shown; errors on the path field in
one line; a model reference run only when entered; and a run on the data end to end."""

from __future__ import annotations

import os
import random
from pathlib import Path

from pilot_helpers import status, wait_done, wait_for, wait_ready
from textual.widgets import Button, Input, Select

from dltui.data import sources
from dltui.tui.app import make_app
from dltui.tui.confusion import ConfusionGrid
from dltui.tui.own_data import PickPathScreen, complete_path
from dltui.tui.sampler import Sampler
from dltui.tui.setup import OWN

SIZE = (80, 24)
SPECIES = ("setosa", "versicolor", "virginica")


def write_csv(path: Path, rows: int = 90) -> Path:
    """Three classes, separable by the first column: a model learns them in a few epochs."""
    rng = random.Random(0)
    lines = ["width,height,colour,label"]
    for i in range(rows):
        k = i % 3
        lines.append(f"{k + rng.random():.3f},{rng.random():.3f},{['red', 'blue'][i % 2]},{SPECIES[k]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_images(root: Path, n: int = 6) -> Path:
    from PIL import Image

    for name, colour in (("cats", (200, 30, 30)), ("dogs", (30, 30, 200))):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8), colour).save(root / name / f"{i}.png")
    return root


def inspect_text(app) -> str:
    """The inspect summary (a Rich table) as plain text."""
    from rich.console import Console

    console = Console(width=78, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(app.query_one("#inspect").content)
    return console.export_text()


async def own_form(pilot):
    """Setup shown, "your own data" chosen and the path field focused."""
    app = pilot.app
    await wait_ready(pilot)
    await pilot.press("2")
    app.query_one("#dataset", Select).value = OWN
    await pilot.pause()
    app.query_one("#path", Input).focus()
    await pilot.pause()
    return app.query_one("#form")


async def checked(pilot) -> None:
    form = pilot.app.query_one("#form")
    await wait_for(pilot, lambda: not form.pending, timeout=30)
    await pilot.pause()


def test_paths_complete_to_folders_and_data_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flowers").mkdir()
    (tmp_path / "flowers.csv").write_text("a,b\n")
    (tmp_path / "fluff.png").write_bytes(b"")  # not a table: never offered
    (tmp_path / ".flask").mkdir()  # hidden: never offered
    assert complete_path("flo") == "flowers/"  # the folder first: the shorter name
    assert complete_path("flowers") == "flowers/"
    assert complete_path("flowers.") == "flowers.csv"
    assert complete_path("flu") is None and complete_path(".fl") is None
    assert complete_path(str(tmp_path) + "/flowers.c") == str(tmp_path / "flowers.csv")
    assert complete_path("nowhere/x") is None


async def test_a_csv_path_is_read_once_entered_and_its_summary_shown(tmp_path, monkeypatch):
    write_csv(tmp_path / "flowers.csv")
    calls = []  # the file read, each time
    real = sources._read_source
    monkeypatch.setattr(sources, "_read_source", lambda *a, **k: calls.append(a) or real(*a, **k))
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        form = await own_form(pilot)
        await pilot.press(*"flowers.cs")
        await pilot.pause(0.2)
        assert app.query_one("#path", Input)._suggestion == "flowers.csv"  # → would complete it
        await pilot.press("right")  # accept the completion
        assert app.query_one("#path", Input).value == "flowers.csv"
        assert not calls  # typing reads nothing
        await pilot.press("enter")
        await checked(pilot)
        reads = len(calls)
        assert reads >= 1
        shown = inspect_text(app)
        for line in ("as dltui sees it", "classification, vector input", "3 classes", "models that fit", "setosa"):
            assert line in shown, shown
        assert form.config is not None and form.config.dataset == str(tmp_path / "flowers.csv")
        assert not app.query_one("#start", Button).disabled
        models = [v for _, v in app.query_one("#model", Select)._options]
        assert "mlp" in models and "cnn" not in models  # the models that fit the data
        assert app.query_one("#target").display and not app.query_one("#image_size").parent.display
        app.query_one("#lr", Input).focus()
        await pilot.press("end", "5")  # another setting: checked again, the data not read again
        await checked(pilot)
        assert form.config.lr == 0.0015 and len(calls) == reads
        app.query_one("#target", Input).focus()
        await pilot.press(*"colour", "enter")  # another target: read again, with it
        await checked(pilot)
        assert form.config.target == "colour" and "2 classes" in inspect_text(app)
        assert len(calls) > reads


async def test_a_bad_path_marks_the_field_with_one_line(tmp_path):
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        form = await own_form(pilot)
        await pilot.press("enter")  # nothing typed yet
        assert app.query_one("#path").has_class("-invalid")
        await pilot.press(*"missing.csv", "enter")
        await checked(pilot)
        error = str(app.query_one("#form-error").render())
        assert error.startswith("path: ") and "missing.csv" in error and "no such file" in error
        assert "\n" not in error
        assert app.query_one("#path").has_class("-invalid") and form.config is None
        assert app.query_one("#start", Button).disabled
        app.query_one("#target", Input).focus()  # leaving the field again reads nothing new
        await pilot.pause()
        assert app.query_one("#path").has_class("-invalid")


async def test_the_directory_picker_fills_the_field(tmp_path, monkeypatch):
    here = tmp_path / "mine"  # a folder of its own: the picker opens in the working directory
    here.mkdir()
    monkeypatch.chdir(here)
    write_csv(here / "flowers.csv")
    write_images(here / "pets")
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("2")
        app.query_one("#dataset", Select).focus()
        await pilot.press("ctrl+o")  # from the dataset menu: switches to your own data
        await wait_for(pilot, lambda: isinstance(app.screen, PickPathScreen))
        tree = app.screen.query_one("#pick-tree")
        await wait_for(pilot, lambda: tree.root.children)
        names = [node.data.path.name for node in tree.root.children]
        assert names == ["pets", "flowers.csv"]  # folders first; nothing else is offered
        await pilot.press("down", "down", "enter")  # the csv
        await wait_for(pilot, lambda: not isinstance(app.screen, PickPathScreen))
        assert app.query_one("#path", Input).value == "flowers.csv"
        await checked(pilot)
        form = app.query_one("#form")
        assert form.config is not None and form.config.dataset == str(here / "flowers.csv")

        app.query_one("#path", Input).focus()
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, PickPathScreen))
        tree = app.screen.query_one("#pick-tree")
        await wait_for(pilot, lambda: tree.root.children)
        await pilot.press("down", "p")  # pets: a folder is picked with p
        await wait_for(pilot, lambda: not isinstance(app.screen, PickPathScreen))
        assert app.query_one("#path", Input).value == "pets"
        await checked(pilot)
        assert form.config is not None and form.config.dataset == str(here / "pets")
        assert "image input 3x8x8" in inspect_text(app) and "cats" in inspect_text(app)
        assert app.query_one("#image_size").parent.display and not app.query_one("#target").parent.display
        await pilot.press("ctrl+o", "escape")  # cancelled: the field keeps its path
        await wait_for(pilot, lambda: not isinstance(app.screen, PickPathScreen))
        assert app.query_one("#path", Input).value == "pets"


async def test_a_model_reference_runs_the_users_code_only_when_entered(tmp_path):
    ran = tmp_path / "imported"
    (tmp_path / "mine.py").write_text(
        "from pathlib import Path\n"
        "from torch import nn\n"
        f"Path({str(ran)!r}).write_text('yes')\n"
        "def Net(in_features, num_outputs):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_outputs))\n"
    )
    app = make_app({})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press("2")
        ref = app.query_one("#model_ref", Input)
        ref.focus()
        await pilot.press(*"mine.py:Net")
        await pilot.pause(0.3)
        assert not ran.exists()  # not a keystroke runs it
        await pilot.press("enter")
        form = app.query_one("#form")
        await checked(pilot)
        assert ran.exists()
        assert form.config is not None and form.config.model == f"{tmp_path / 'mine.py'}:Net"
        assert app.query_one("#model", Select).disabled  # the menu's model is not the one used
        ref.value = "mine.py:Nett"
        await pilot.press("enter")
        await checked(pilot)
        assert ref.has_class("-invalid") and str(app.query_one("#form-error").render()).startswith("model code: ")


async def test_a_run_on_your_own_csv_shows_its_classes_everywhere(tmp_path):
    data = write_csv(tmp_path / "flowers.csv")
    app = make_app({"dataset": str(data), "epochs": 2})
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        form = app.query_one("#form")
        await checked(pilot)
        assert form.own and "setosa" in inspect_text(app)
        await pilot.press("ctrl+r")
        await wait_done(pilot)
        assert status(app) == "finished"
        assert app.curves.epochs == [1, 2]
        assert app.query_one(ConfusionGrid).labels == SPECIES
        await pilot.press("5")
        await pilot.pause()
        sampler = app.query_one(Sampler)
        assert sampler.shown and any(name in str(app.query_one("#sampler-body").render()) for name in SPECIES)
    [run_dir] = Path("runs").iterdir()
    assert run_dir.name.endswith("-flowers-mlp")  # named by the data's name, not its path
