"""Setup's pieces for the user's own data: path completion, a directory picker, and the
inspect summary (what `dltui inspect` prints) as a Rich renderable.

Reading a file or folder can take seconds and, for a model reference, runs the user's
code: nothing here reads data on the UI thread. ``inspect_summary`` is called from the
form's thread worker; the completer lists one folder (asyncio.to_thread)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import DirectoryTree, Static

TABLE_ENDINGS = (".csv", ".tsv", ".txt", ".gz")  # what the completer and the picker offer beside folders
MODEL_ENDINGS = (".py",)
MAX_LISTED = 2000  # a folder's entries looked at per completion: a huge folder never stalls typing
_summaries: dict[str, tuple[Any, Any, list[tuple[str, int]]]] = {}  # per process, keyed on path + settings
MAX_SUMMARIES = 8


def _offered(entry: os.DirEntry, endings: tuple[str, ...]) -> bool:
    if entry.name.startswith("."):
        return False
    try:
        return entry.is_dir() or entry.name.lower().endswith(endings)
    except OSError:
        return False


def complete_path(value: str, endings: tuple[str, ...] = TABLE_ENDINGS) -> str | None:
    """``value`` completed to the first folder or file (with one of ``endings``) it starts
    (folders get a trailing /), in the user's own spelling (``~`` stays ``~``); None when
    nothing more matches."""
    if not value.strip():
        return None
    head, _, prefix = value.rpartition("/")
    folder = os.path.expanduser(head + "/" if head or value.startswith("/") else ".")
    try:
        with os.scandir(folder) as it:
            names = []
            for n, entry in enumerate(it):
                if n >= MAX_LISTED:
                    break
                if entry.name.startswith(prefix) and _offered(entry, endings):
                    is_dir = entry.is_dir()
                    if entry.name != prefix or is_dir:  # a folder typed in full still lacks its /
                        names.append((entry.name, is_dir))
    except OSError:
        return None
    if not names:
        return None
    name, is_dir = min(names, key=lambda e: (len(e[0]), e[0]))  # the shortest: a path prefix first
    return value[: len(value) - len(prefix)] + name + ("/" if is_dir else "")


class PathSuggester(Suggester):
    """Completes file-system paths to folders and data files as the user types (→ accepts)."""

    def __init__(self, endings: tuple[str, ...] = TABLE_ENDINGS) -> None:
        super().__init__(use_cache=False, case_sensitive=True)  # folders change: never cached
        self.endings = endings

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(complete_path, value, self.endings)


class DataTree(DirectoryTree):
    """Folders and data files only (hidden ones left out)."""

    endings: tuple[str, ...] = TABLE_ENDINGS

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        shown = []
        for path in paths:
            if path.name.startswith("."):
                continue
            try:
                if path.is_dir() or path.name.lower().endswith(self.endings):
                    shown.append(path)
            except OSError:
                continue
        return shown


def start_folder(value: str) -> Path:
    """Where the picker opens: the folder of what is typed, else the working directory."""
    path = Path(os.path.expanduser(value.strip())) if value.strip() else Path.cwd()
    for candidate in (path, *path.parents):
        try:
            if candidate.is_dir():
                return candidate.absolute()
        except OSError:
            continue
    return Path.cwd()


class PickPathScreen(ModalScreen[str | None]):
    """A directory tree to pick a data file or an image folder, keyboard only: arrows move,
    enter opens a folder or picks a file, p picks the highlighted folder, backspace goes
    up a level, escape cancels."""

    DEFAULT_CSS = """
    PickPathScreen { align: center middle; }
    PickPathScreen #pick-box { height: 90%; }
    PickPathScreen #pick-tree { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "dismiss_none", "Cancel"),
        Binding("p", "pick", "Pick this"),
        Binding("backspace", "up", "Up a folder"),
    ]

    def __init__(self, start: Path, title: str = "Pick a data file or an image folder", endings=TABLE_ENDINGS) -> None:
        super().__init__()
        self.start, self.title_text, self.endings = start, title, endings

    def compose(self) -> ComposeResult:
        with Vertical(id="pick-box", classes="dialog"):
            yield Static(f"[b]{self.title_text}[/b]", id="pick-title")
            yield Static("", id="pick-where")
            tree = DataTree(self.start, id="pick-tree")
            tree.endings = self.endings
            yield tree
            yield Static(
                "[b]↑↓[/b] move · [b]enter[/b] open folder / pick file · [b]p[/b] pick folder · "
                "[b]backspace[/b] up · [b]esc[/b] cancel",
                id="pick-help",
            )

    def on_mount(self) -> None:
        self._where()
        self.query_one(DataTree).focus()

    def _where(self) -> None:
        self.query_one("#pick-where", Static).update(Text(str(self.query_one(DataTree).path), style="dim"))

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.dismiss(str(event.path))

    def action_pick(self) -> None:
        node = self.query_one(DataTree).cursor_node
        if node is not None and node.data is not None:
            self.dismiss(str(node.data.path))

    def action_up(self) -> None:
        tree = self.query_one(DataTree)
        parent = Path(tree.path).absolute().parent
        if parent != Path(tree.path).absolute():
            tree.path = parent
            self._where()

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


# --- the inspect summary (called in a thread worker) ---


def summary_key(ref: str, settings: dict[str, Any]) -> str:
    """The cache key of a summary: the path as it is on disk now, and the settings."""
    path = Path(os.path.expanduser(ref.strip())).absolute()
    try:
        stat = path.stat()
        stamp = [stat.st_mtime_ns, stat.st_size]
    except OSError:
        stamp = None
    return json.dumps([str(path), stamp, settings], sort_keys=True, default=str)


def inspect_summary(ref: str, settings: dict[str, Any]) -> tuple[Any, Table, list[tuple[str, int]]]:
    """The spec of the data at ``ref`` read with ``settings`` (make_config's own-data
    fields, seed, data_dir), its summary as `dltui inspect` shows it, and the models that
    fit with their parameter counts. Raises ConfigError (field: the setting to blame)."""
    key = summary_key(ref, settings)
    if key not in _summaries:
        from dltui.data import sources
        from dltui.models import compatible_models, param_count
        from dltui.resolve import make_config

        spec, data = sources.inspect(make_config(dataset=ref, **settings))
        models = [(m, param_count(m, spec)) for m in compatible_models(spec)]
        if len(_summaries) >= MAX_SUMMARIES:
            _summaries.pop(next(iter(_summaries)))
        _summaries[key] = (spec, summary_table(spec, data, [m for m, _ in models]), models)
    return _summaries[key]


def summary_table(spec: Any, data: Any, models: list[str]) -> Table:
    """`dltui inspect`'s lines (see reporting.print_inspection) as one table."""
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, text in data.extras.get("report") or []:
        table.add_row(label, Text(text))
    shape = "x".join(map(str, spec.input_shape))
    table.add_row("as dltui sees it", f"{spec.task}, {spec.kind} input {shape}, {len(spec.classes) or '-'} classes")
    table.add_row("models that fit", ", ".join(models) or "none")
    rec = spec.recommended
    table.add_row(
        "recommended", f"{rec.model}, {rec.epochs} epochs, batch {rec.batch_size}, {rec.optimizer} lr {rec.lr:g}"
    )
    for note in data.extras.get("notes") or []:
        table.add_row(Text("note", style="yellow"), Text(note))
    return table
