"""The setup form. Every change re-validates through ``make_config`` (the one validator);
its ConfigError names the field to mark, and Start stays disabled until the form is valid.

A dataset may be a registry name or the user's own data (a table file or an image folder,
"your own data" in the menu), a model a registry name or the user's code (FILE.py:NAME).
Those read files and run code, so the form then validates in a thread worker, and the
fields that name them are read when entered or left, not on every keystroke."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from dltui.tui.messages import SetupChecked, StartRequested
from dltui.tui.sweeps_view import trials_hint

FORM_FIELDS = ("dataset", "model", "epochs", "batch_size", "lr", "optimizer", "device", "seed")
INPUTS = ("epochs", "batch_size", "lr", "seed")  # free text; the rest are menus
OWN_FIELDS = ("target", "text", "task", "image_size", "test")  # make_config's settings for a path
TABLE_ONLY, FOLDER_ONLY = ("target", "text", "task"), ("image_size",)
SLOW = ("path", "model_ref", "target", "text", "image_size", "test")  # read on enter or leaving, not per key
OWN = "(own)"  # the dataset menu's entry for the user's own data
LABELS = {
    "batch_size": "batch size",
    "lr": "learning rate",
    "model_ref": "model code",
    "image_size": "image size",
    "test": "test data",
}
PLACEHOLDERS = {
    "path": "a .csv/.tsv file or an image folder",
    "target": "label column (the last)",
    "text": "a text column, read as characters",
    "image_size": "pixels (the most common size)",
    "test": "test split file or folder (optional)",
    "model_ref": "FILE.py:NAME: your nn.Module, or a list: mlp,cnn",
}
TASKS = (("inferred", ""), ("classification", "classification"), ("binary", "binary"), ("regression", "regression"))
RECOMMENDED = ("model", "epochs", "batch_size", "lr", "optimizer")  # follow the dataset unless edited
LOADING = "loading torch…"  # the model menu's only entry (disabled) until the catalog arrives


def label(field: str) -> str:
    """How the form names a field (the CLI names it by its flag)."""
    return LABELS.get(field, field)


def form_message(exc: Any, field: str | None = None) -> str:
    """A ConfigError worded for the form: the field's label instead of its flag."""
    return f"{label(field or exc.field)}: {str(exc).removeprefix(f'{exc.flag}: ')}"


def _text(value: object) -> str:
    return "" if value is None else str(value)


def is_model_ref(ref: str) -> bool:
    """The user's code rather than a registry name (as dltui.models.custom decides, without
    importing torch)."""
    return ":" in ref or ref.strip().endswith(".py")


class SetupForm(VerticalScroll):
    """Dataset and model menus plus hyperparameters. ``options`` are the CLI flag values;
    flags without a field here (momentum, data_dir, out, ...) pass through unchanged."""

    BINDINGS = [Binding("ctrl+o", "browse", "Open file")]
    DEFAULT_CSS = """
    SetupForm .own-row, SetupForm #own-hint, SetupForm #inspect { display: none; }
    SetupForm.-own .own-row, SetupForm.-own #own-hint, SetupForm.-own #inspect { display: block; }
    SetupForm.-own.-folder .table-row, SetupForm.-own.-table .folder-row { display: none; }
    SetupForm .sweep-row { display: none; }
    SetupForm.-sweep .sweep-row { display: block; }
    SetupForm #own-hint { color: $text-muted; height: auto; }
    SetupForm #inspect { height: auto; margin: 1 0 0 0; }
    """

    def __init__(self, options: dict[str, object], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from dltui.data import DATASETS  # import-light registry: no torch
        from dltui.data.sources import looks_like_path

        self.datasets = DATASETS
        self.options = {k: v for k, v in options.items() if v is not None}
        given = str(self.options.get("dataset", "digits"))
        # dataset: the registry name shown (a path's form keeps the last one, for its catalog)
        self.dataset = given if given in DATASETS else "digits"
        self.own = given not in DATASETS and (looks_like_path(given) or Path(os.path.expanduser(given)).exists())
        self.unknown_dataset = given if given not in DATASETS and not self.own else None
        model = _text(self.options.get("model"))
        # what the slow fields held when last read (enter, leaving the field, the picker)
        self.committed = {f: _text(self.options.get(f)) for f in SLOW}
        self.committed["path"] = given if self.own else ""
        self.committed["model_ref"] = model if is_model_ref(model) else ""
        self.catalog: dict[str, list[tuple[str, int]]] | None = None
        self.cuda = False
        self.config: Any = None  # the validated TrainConfig, or None
        self.own_spec: Any = None  # the user's data as read (a DatasetSpec)
        self.own_models: list[tuple[str, int]] | None = None
        self._followed: Any = None  # the own data whose recommendations the form took
        self._generation = 0  # of the thread checks; an older answer is dropped
        self.pending = False  # a thread check is under way
        self._error: Any = None  # the ConfigError shown
        self.sweeping = False  # a field holds several values (a list, a range): Start starts a sweep
        self._start_when_checked = False
        rec = DATASETS[self.dataset].recommended
        # what the form itself put in each recommended field: a field still holding it was
        # not edited, so it follows the dataset (flags given on the command line were edits)
        self.auto = {f: _text(getattr(rec, f)) for f in RECOMMENDED if f not in self.options}
        self.data_dir = self._data_dir()

    def _data_dir(self) -> str | None:
        from dltui.config import resolve_data_dir
        from dltui.errors import ConfigError

        try:
            return resolve_data_dir(self.options.get("data_dir"))  # type: ignore[arg-type]
        except ConfigError:
            return None  # make_config reports it

    def on_disk(self, name: str) -> bool:
        return self.data_dir is None or self.datasets[name].available_offline(self.data_dir)

    def dataset_label(self, name: str) -> str:
        return name if self.on_disk(name) else f"{name} (download)"

    def _row(self, field: str, widget: Any, classes: str = "") -> Horizontal:
        return Horizontal(Label(label(field), classes="field-label"), widget, classes=f"row {classes}".strip())

    def _input(self, field: str, value: str) -> Input:
        from dltui.tui.own_data import MODEL_ENDINGS, PathSuggester

        suggester = None
        if field in ("path", "test"):
            suggester = PathSuggester()
        elif field == "model_ref":
            suggester = PathSuggester(MODEL_ENDINGS)
        placeholder = PLACEHOLDERS.get(field, "")
        return self._field(field, value, suggester=suggester, placeholder=placeholder)

    @staticmethod
    def _field(field: str, value: str, **kwargs: Any) -> Input:
        # validate_on=(): make_config marks fields; the Input's own (empty) validation would
        # clear the mark on blur
        return Input(value, id=field, compact=True, select_on_focus=True, validate_on=(), **kwargs)

    def compose(self) -> ComposeResult:
        rec = self.datasets[self.dataset].recommended
        value = lambda f: _text(self.options.get(f, getattr(rec, f, None)))  # noqa: E731
        with Horizontal(id="form-body"):
            with Vertical(id="fields"):
                options = [(self.dataset_label(name), name) for name in self.datasets]
                options.append(("your own data: a file or folder…", OWN))
                value_ = OWN if self.own else self.dataset
                yield self._row("dataset", Select(options, value=value_, allow_blank=False, id="dataset", compact=True))
                yield self._row("path", self._input("path", self.committed["path"]), "own-row")
                for field in OWN_FIELDS:
                    where = "table-row" if field in TABLE_ONLY else "folder-row" if field in FOLDER_ONLY else ""
                    if field == "task":
                        task = _text(self.options.get("task")).lower()
                        task = task if task in dict(TASKS).values() else ""
                        widget: Any = Select(TASKS, value=task, allow_blank=False, id="task", compact=True)
                    else:
                        widget = self._input(field, self.committed[field])
                    yield self._row(field, widget, f"own-row {where}")
                yield Static("→ completes a path · ctrl+o browses · enter reads it", id="own-hint")
                for field in FORM_FIELDS[1:]:
                    if field in INPUTS:
                        default = value(field) if field != "seed" else _text(self.options.get("seed", 0))
                        yield self._row(field, self._field(field, default))
                    elif field == "optimizer":
                        from dltui.config import OPTIMIZERS

                        opt = value(field).lower()
                        widget = Select(
                            [(o, o) for o in OPTIMIZERS],
                            allow_blank=False,
                            id=field,
                            compact=True,
                            value=opt if opt in OPTIMIZERS else rec.optimizer,
                        )
                        yield self._row(field, widget)
                    elif field == "device":
                        dev = _text(self.options.get("device", "auto"))
                        widget = Select(
                            [(d, d) for d in ("auto", "cpu")],
                            allow_blank=False,
                            id=field,
                            compact=True,
                            value=dev if dev in ("auto", "cpu") else "auto",
                        )
                        yield self._row(field, widget)
                    else:  # model: filled once torch is loaded
                        # one disabled entry, no blank: a prompt would stay in the menu
                        # as a pickable blank once the models arrive
                        loading = [(LOADING, "")]
                        widget = Select(loading, value="", allow_blank=False, id=field, compact=True, disabled=True)
                        yield self._row(field, widget)
                        yield self._row("model_ref", self._input("model_ref", self.committed["model_ref"]))
                # shown while a field holds a list or a range (sweeps_view.sweep_shape)
                yield self._row("trials", self._field("trials", "", placeholder=trials_hint(None)), "sweep-row")
                yield Static("", id="form-error")
                yield Button("Start (r)", id="start", variant="success", disabled=True)
            yield Static("", id="dataset-info")
        yield Static("", id="inspect")

    def on_mount(self) -> None:
        self._own_classes()
        self._describe()
        if self.unknown_dataset:
            from dltui.config import suggest

            name = self.unknown_dataset
            self.app.notify(
                f"--dataset: unknown value '{name}'{suggest(name, list(self.datasets))}; showing digits",
                severity="error",
                timeout=8,
            )

    # --- engine readiness ---

    def engine_ready(self, catalog: dict[str, list[tuple[str, int]]], cuda: bool) -> None:
        from dltui.errors import ConfigError
        from dltui.resolve import make_config

        self.catalog, self.cuda = catalog, cuda
        if not self._slow(self.options):  # the user's data or code is read in a thread, by validate()
            try:  # the flags as given: a bad one is reported once, the form shows what it chose instead
                make_config(**self.options)
            except ConfigError as exc:
                self.app.notify(str(exc), title="Flag not used", severity="error", timeout=8)
        if cuda:
            self.query_one("#device", Select).set_options([(d, d) for d in ("auto", "cpu", "cuda")])
            self.query_one("#device", Select).value = _text(self.options.get("device", "auto"))
        self._fill_models(_text(self.options.get("model")) or None)
        self.validate()

    def _models(self) -> list[tuple[str, int]] | None:
        """The model menu's entries: the dataset's fitting models (None: not known yet).
        Until the user's data is read, the last registry dataset's stand in."""
        if self.own and self.own_models is not None:
            return self.own_models
        return self.catalog[self.dataset] if self.catalog is not None else None

    def _recommended(self) -> Any:
        if self.own and self.own_spec is not None:
            return self.own_spec.recommended
        return self.datasets[self.dataset].recommended

    def _fill_models(self, wanted: str | None) -> None:
        models = self._models()
        select = self.query_one("#model", Select)
        if models is None:
            return
        options = [(f"{name}  ({params:,} params)", name) for name, params in models]
        select.set_options(options)
        names = [m for m, _ in models]
        rec = self._recommended().model
        # a model that does not fit stays selectable as text in the error, not in the menu
        select.value = wanted if wanted in names else rec
        if "model" in self.auto and wanted is None:
            self.auto["model"] = _text(select.value)
        select.disabled = bool(self.committed["model_ref"])  # the user's code replaces the menu's model

    # --- values and validation ---

    def _own_classes(self) -> None:
        """Show the rows that apply: a path's fields (a table's or a folder's), the model
        code field."""
        self.set_class(self.own, "-own")
        path = self.committed["path"]
        folder = bool(path) and Path(os.path.expanduser(path)).is_dir()
        self.set_class(folder, "-folder")
        self.set_class(not folder, "-table")

    def _own_applies(self) -> tuple[str, ...]:
        return tuple(f for f in OWN_FIELDS if f not in (FOLDER_ONLY if self.has_class("-table") else TABLE_ONLY))

    def raw(self) -> dict[str, object]:
        """The form as make_config's keyword arguments (strings as typed; the slow fields as
        last read)."""
        raw = {k: v for k, v in self.options.items() if k not in FORM_FIELDS + OWN_FIELDS}
        for field in FORM_FIELDS:
            value = self.query_one(f"#{field}").value  # type: ignore[attr-defined]
            raw[field] = None if value is Select.NULL else value
        if raw["dataset"] == OWN:
            raw["dataset"] = self.committed["path"]
            for field in self._own_applies():
                raw[field] = self.query_one("#task", Select).value if field == "task" else self.committed[field]
                raw[field] = raw[field] or None
        if self.committed["model_ref"]:
            raw["model"] = self.committed["model_ref"]
        return raw

    def _slow(self, raw: dict[str, object]) -> bool:
        """Whether checking ``raw`` reads the user's data or runs their code."""
        from dltui.data import DATASETS

        dataset, model = _text(raw.get("dataset")), _text(raw.get("model"))
        return bool(dataset) and dataset not in DATASETS or is_model_ref(model)

    def _widget_for(self, field: str) -> str:
        """The field a ConfigError's ``field`` is typed in."""
        if field == "dataset" and self.own:
            return "path"
        if field == "model" and self.committed["model_ref"]:
            return "model_ref"
        return field

    def validate(self) -> None:
        """Mark the field make_config blames; enable Start only for a valid form. With the
        user's data or code, the check runs in a thread and SetupChecked brings its answer."""
        from dltui.errors import ConfigError

        self._generation += 1  # whatever a thread check still under way says is stale now
        raw = self.raw()
        if self.own and not raw["dataset"]:
            self.pending = False
            self._show(None, ConfigError("dataset", "type a file or folder (→ completes), or pick one with ctrl+o"))
            self.query_one("#inspect", Static).update("")
            return
        if self._slow(raw):
            self.pending = True
            self.query_one("#start", Button).disabled = True
            own = None
            if self.own:
                settings = {k: raw[k] for k in (*OWN_FIELDS, "seed", "data_dir") if raw.get(k) is not None}
                own = (str(raw["dataset"]), settings)
            self._check(self._generation, raw, own, self._trials())
            return
        self.pending = False
        from dltui.tui.sweeps_view import check_form

        config, error = None, None
        try:
            config = check_form(raw, self._trials())  # make_config, for each value of a list or range
        except ConfigError as exc:
            error = exc
        self._show(config, error)

    def _show(self, config: Any, error: Any) -> None:
        for widget in self.query(".-invalid"):
            widget.remove_class("-invalid")
        self.config, self._error = config, error
        text = ""
        if error is not None:
            field = self._widget_for(error.field)
            text = form_message(error, field)
            for widget in self.query(f"#{field}"):
                widget.add_class("-invalid")
        elif not self.own and not self.on_disk(self.dataset):
            where = config.data_dir if config is not None else self.data_dir
            text = f"[yellow]{self.dataset} is not on disk: starting downloads it into {where}[/yellow]"
        unread = [label(f) for f in SLOW if self._unread(f)]
        if unread:
            text += ("\n" if text else "") + f"[yellow]{', '.join(unread)} changed: enter reads it[/yellow]"
        self.query_one("#form-error", Static).update(text)
        self.query_one("#start", Button).disabled = config is None
        self._sweep_shape()

    def _trials(self) -> str:
        return self.query_one("#trials", Input).value

    def _sweep_shape(self) -> None:
        """A field with a list or a range makes Start a sweep's, with a trials field."""
        from dltui.tui.sweeps_view import sweep_shape

        sweeping, grid = sweep_shape(self.raw())
        self.query_one("#trials", Input).placeholder = trials_hint(grid)
        if sweeping != self.sweeping:
            self.sweeping = sweeping
            self.set_class(sweeping, "-sweep")
            self.query_one("#start", Button).label = "Start sweep (r)" if sweeping else "Start (r)"
            self.app.refresh_bindings()

    def _unread(self, field: str) -> bool:
        widget = self.query_one(f"#{field}", Input)
        return widget.display and widget.parent.display and widget.value.strip() != self.committed[field]  # type: ignore[union-attr]

    @work(thread=True, exclusive=True, exit_on_error=False, group="setup-check", description="checking your data")
    def _check(
        self, generation: int, raw: dict[str, object], own: tuple[str, dict[str, Any]] | None, trials: str = ""
    ) -> None:
        """make_config, and for a path the inspect summary, away from the UI: reading the
        data takes time and a model reference runs the user's code."""
        from dltui.errors import ConfigError
        from dltui.tui.own_data import inspect_summary
        from dltui.tui.sweeps_view import check_form

        spec = summary = models = config = error = None
        blame = "dataset"
        try:
            if own is not None:
                spec, summary, models = inspect_summary(*own)
            blame = "model" if is_model_ref(str(raw.get("model") or "")) else "dataset"
            config = check_form(raw, trials)
        except ConfigError as exc:
            error = exc
        except Exception as exc:  # a reader's or the user's code's bug: said on the field, never a crash
            error = ConfigError(blame, f"{type(exc).__name__}: {exc}")
        self.post_message(SetupChecked(generation, config, error, spec, summary, models))

    @on(SetupChecked)
    def _checked(self, message: SetupChecked) -> None:
        message.stop()
        if message.generation != self._generation:
            return  # a newer check is under way
        if self.own:
            inspect = self.query_one("#inspect", Static)
            if message.summary is not None:
                inspect.update(message.summary)
            elif message.error is not None and message.error.field in ("dataset", *OWN_FIELDS, "seed"):
                inspect.update("")
            if message.spec is not None and self._follow_own(message.spec, message.models):
                self.validate()  # the menus now hold the data's recommendations: check those
                return
        self.pending = False
        self._show(message.config, message.error)
        if self._start_when_checked:
            self._start_when_checked = False
            self._start_now()

    def _follow_own(self, spec: Any, models: list[tuple[str, int]] | None) -> bool:
        """New data read: its fitting models fill the menu, and its recommendations the
        fields not edited. True when the form changed (to be checked again)."""
        key = (spec.path, spec.task, spec.kind, spec.input_shape)
        if key == self._followed:
            return False
        before = self.raw()
        self._followed, self.own_spec, self.own_models = key, spec, models
        self._follow(spec.recommended, f"Data {spec.name}")
        self._describe()
        return self.raw() != before

    def request_start(self) -> bool:
        if self.catalog is None:
            return False
        # a slow form was checked after its last change: only newly read fields need another
        if self._commit_all() or not self._slow(self.raw()):
            self.validate()
        if self.pending:  # answered by SetupChecked, which starts the run if the form is valid
            self._start_when_checked = True
            return True
        return self._start_now()

    def _start_now(self) -> bool:
        if self.config is None:
            self.app.notify(str(self.query_one("#form-error", Static).render()), severity="error", title="Cannot start")
            return False
        if self.sweeping:
            from dltui.tui.sweeps_view import SweepRequested, sweep_args

            self.post_message(SweepRequested(sweep_args(self.raw(), self._trials())))
            return True
        self.post_message(StartRequested(self.config))
        return True

    # --- the slow fields: read when entered or left ---

    def _commit(self, field: str) -> bool:
        """Take what ``field`` holds as read; True when it changed."""
        value = self.query_one(f"#{field}", Input).value.strip()
        if value == self.committed[field]:
            return False
        self.committed[field] = value
        if field == "path":
            self._own_classes()
        if field == "model_ref" and self.catalog is not None:
            self.query_one("#model", Select).disabled = bool(value)  # the user's code replaces the menu's model
        return True

    def _commit_all(self) -> bool:
        return any([self._commit(f) for f in SLOW])  # a list: every field, not the first changed

    # --- events ---

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if self.catalog is None:
            return
        if event.input.id in SLOW:  # read on enter or leaving: say it is not read yet
            if not self.pending:
                self._show(self.config, self._error)
            return
        self.validate()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.id in SLOW and self._commit(event.input.id):
            if self.catalog is not None:
                self.validate()
            return  # enter reads the new value; enter again starts
        self.request_start()

    @on(Input.Blurred)
    def _blurred(self, event: Input.Blurred) -> None:
        if event.input.id in SLOW and self._commit(event.input.id) and self.catalog is not None:
            self.validate()

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.request_start()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "dataset" and event.value is not Select.NULL:
            if event.value == OWN and not self.own:
                self._own_data(True)
            elif event.value != OWN and (self.own or event.value != self.dataset):
                self._own_data(False)
                self._dataset_changed(str(event.value))
        if self.catalog is not None:
            self.validate()

    def _own_data(self, own: bool) -> None:
        """The dataset menu moved to or from "your own data"."""
        self.own = own
        self._own_classes()
        self._describe()
        if own:
            self.query_one("#inspect", Static).update("")
            if self.has_focus_within:
                self.call_after_refresh(self.query_one("#path", Input).focus)
        else:
            self._followed = None  # the path's recommendations are taken again when it comes back

    def _dataset_changed(self, name: str) -> None:
        """A new dataset brings its recommended model and hyperparameters (like a preset),
        except in the fields the user edited: those keep their values (a model only while
        it fits the new dataset). A notification says what changed and what was kept."""
        self.dataset = name
        self._follow(self.datasets[name].recommended, f"Dataset {name}")
        self._describe()

    def _follow(self, rec: Any, title: str) -> None:
        changed, kept = [], []
        for field in RECOMMENDED:
            widget = self.query_one(f"#{field}")
            current = "" if widget.value is Select.NULL else _text(widget.value)  # type: ignore[attr-defined]
            new = _text(getattr(rec, field))
            if field == "model":
                if self._models() is None:
                    self.auto[field] = new  # the menu is filled with the new dataset's once known
                    continue
                edited = current != self.auto.get(field)
                self._fill_models(current if edited else None)
                new = _text(self.query_one("#model", Select).value)
                if edited and new == current:
                    kept.append(f"{label(field)} {current}")
                    continue
            elif current != self.auto.get(field) and current:
                kept.append(f"{label(field)} {current}")
                continue
            else:
                widget.value = new  # type: ignore[attr-defined]
            self.auto[field] = new
            if new != current:
                changed.append(f"{label(field)} {new}")
        parts = [f"recommended {', '.join(changed)}" if changed else "", f"kept your {', '.join(kept)}" if kept else ""]
        if any(parts):
            self.app.notify(" · ".join(p for p in parts if p), title=title, timeout=5)

    def _describe(self) -> None:
        spec = self.own_spec if self.own else self.datasets[self.dataset]
        info = self.query_one("#dataset-info", Static)
        if spec is None:
            info.update("[b]your own data[/b]: a CSV/TSV file (one row an item, a label column) or a folder of "
                        "images in one subfolder per class")  # fmt: skip
            return
        shape = "×".join(map(str, spec.input_shape))
        classes = f"{len(spec.classes)} classes" if spec.classes else "regression"
        info.update(
            f"[b]{spec.name}[/b]: {spec.description}\n"
            f"{spec.train_size:,} train · {spec.test_size:,} test · input {shape} · {classes}\n"
            f"[dim]{spec.source}[/dim]"
        )

    # --- the picker (ctrl+o) ---

    def action_browse(self) -> None:
        """Pick a file or folder for the focused path field (the data path otherwise)."""
        from dltui.tui.own_data import MODEL_ENDINGS, PickPathScreen, start_folder

        focused = self.app.focused
        field = focused.id if isinstance(focused, Input) and focused.id in ("test", "model_ref") else "path"
        if field == "path" and not self.own:
            self.query_one("#dataset", Select).value = OWN  # Select.Changed shows the path rows
        current = self.query_one(f"#{field}", Input).value
        if field == "model_ref":
            current = current.rpartition(":")[0] if ":" in current else current
            screen = PickPathScreen(start_folder(current), "Pick your model's .py file", MODEL_ENDINGS)
        else:
            screen = PickPathScreen(start_folder(current))

        def picked(path: str | None) -> None:
            if not path:
                return
            widget = self.query_one(f"#{field}", Input)
            shown = _shown(path)
            if field == "model_ref":
                widget.value = f"{shown}:"  # NAME is the user's to type
                widget.focus()
                widget.cursor_position = len(widget.value)
                return
            widget.value = shown
            widget.focus()
            if self._commit(field) and self.catalog is not None:
                self.validate()

        self.app.push_screen(screen, picked)


def _shown(path: str) -> str:
    """A picked path as the user would type it: relative to the working directory when
    inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path
