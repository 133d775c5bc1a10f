"""The setup form. Every change re-validates through ``make_config`` (the one validator);
its ConfigError names the field to mark, and Start stays disabled until the form is valid."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from dltui.tui.messages import StartRequested

FORM_FIELDS = ("dataset", "model", "epochs", "batch_size", "lr", "optimizer", "device", "seed")
INPUTS = ("epochs", "batch_size", "lr", "seed")  # free text; the rest are menus
LABELS = {"batch_size": "batch size", "lr": "learning rate"}
RECOMMENDED = ("model", "epochs", "batch_size", "lr", "optimizer")  # follow the dataset unless edited
LOADING = "loading torch…"  # the model menu's only entry (disabled) until the catalog arrives


def label(field: str) -> str:
    """How the form names a field (the CLI names it by its flag)."""
    return LABELS.get(field, field)


def form_message(exc: Any) -> str:
    """A ConfigError worded for the form: the field's label instead of its flag."""
    return f"{label(exc.field)}: {str(exc).removeprefix(f'{exc.flag}: ')}"


def _text(value: object) -> str:
    return "" if value is None else str(value)


class SetupForm(VerticalScroll):
    """Dataset and model menus plus hyperparameters. ``options`` are the CLI flag values;
    flags without a field here (momentum, data_dir, out, ...) pass through unchanged."""

    def __init__(self, options: dict[str, object], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from dltui.data import DATASETS  # import-light registry: no torch

        self.datasets = DATASETS
        self.options = {k: v for k, v in options.items() if v is not None}
        self.dataset = str(self.options.get("dataset", "digits"))
        self.unknown_dataset = self.dataset if self.dataset not in DATASETS else None
        if self.unknown_dataset:  # show the menu on the default and say why on mount
            self.dataset = "digits"
        self.catalog: dict[str, list[tuple[str, int]]] | None = None
        self.cuda = False
        self.config: Any = None  # the validated TrainConfig, or None
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

    def compose(self) -> ComposeResult:
        rec = self.datasets[self.dataset].recommended
        value = lambda f: _text(self.options.get(f, getattr(rec, f, None)))  # noqa: E731
        with Horizontal(id="form-body"):
            with Vertical(id="fields"):
                for field in FORM_FIELDS:
                    with Horizontal(classes="row"):
                        yield Label(LABELS.get(field, field), classes="field-label")
                        if field in INPUTS:
                            default = value(field) if field != "seed" else _text(self.options.get("seed", 0))
                            yield Input(default, id=field, compact=True, select_on_focus=True)
                        elif field == "dataset":
                            options = [(self.dataset_label(name), name) for name in self.datasets]
                            yield Select(options, value=self.dataset, allow_blank=False, id=field, compact=True)
                        elif field == "optimizer":
                            from dltui.config import OPTIMIZERS

                            opt = value(field).lower()
                            yield Select(
                                [(o, o) for o in OPTIMIZERS],
                                allow_blank=False,
                                id=field,
                                compact=True,
                                value=opt if opt in OPTIMIZERS else rec.optimizer,
                            )
                        elif field == "device":
                            dev = _text(self.options.get("device", "auto"))
                            yield Select(
                                [(d, d) for d in ("auto", "cpu")],
                                allow_blank=False,
                                id=field,
                                compact=True,
                                value=dev if dev in ("auto", "cpu") else "auto",
                            )
                        else:  # model: filled once torch is loaded
                            # one disabled entry, no blank: a prompt would stay in the menu
                            # as a pickable blank once the models arrive
                            loading = [(LOADING, "")]
                            yield Select(loading, value="", allow_blank=False, id=field, compact=True, disabled=True)
                yield Static("", id="form-error")
                yield Button("Start (r)", id="start", variant="success", disabled=True)
            yield Static("", id="dataset-info")

    def on_mount(self) -> None:
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
        from dltui.config import make_config
        from dltui.errors import ConfigError

        self.catalog, self.cuda = catalog, cuda
        try:  # the flags as given: a bad one is reported once, the form shows what it chose instead
            make_config(**self.options)
        except ConfigError as exc:
            self.app.notify(str(exc), title="Flag not used", severity="error", timeout=8)
        if cuda:
            self.query_one("#device", Select).set_options([(d, d) for d in ("auto", "cpu", "cuda")])
            self.query_one("#device", Select).value = _text(self.options.get("device", "auto"))
        self._fill_models(_text(self.options.get("model")) or None)
        self.validate()

    def _fill_models(self, wanted: str | None) -> None:
        assert self.catalog is not None
        models = self.catalog[self.dataset]
        select = self.query_one("#model", Select)
        select.set_options([(f"{name}  ({params:,} params)", name) for name, params in models])
        names = [m for m, _ in models]
        rec = self.datasets[self.dataset].recommended.model
        # a model that does not fit stays selectable as text in the error, not in the menu
        select.value = wanted if wanted in names else rec
        if "model" in self.auto and wanted is None:
            self.auto["model"] = _text(select.value)
        select.disabled = False

    # --- values and validation ---

    def raw(self) -> dict[str, object]:
        """The form as make_config's keyword arguments (strings as typed)."""
        raw = {k: v for k, v in self.options.items() if k not in FORM_FIELDS}
        for field in FORM_FIELDS:
            widget = self.query_one(f"#{field}")
            value = widget.value
            raw[field] = None if value is Select.NULL else value
        return raw

    def validate(self) -> None:
        """Mark the field make_config blames; enable Start only for a valid form."""
        from dltui.config import make_config
        from dltui.errors import ConfigError

        for widget in self.query(".-invalid"):
            widget.remove_class("-invalid")
        error = ""
        self.config = None
        try:
            self.config = make_config(**self.raw())
        except ConfigError as exc:
            error = form_message(exc)
            for widget in self.query(f"#{exc.field}"):
                widget.add_class("-invalid")
        if not error and not self.on_disk(self.dataset):
            where = self.config.data_dir if self.config is not None else self.data_dir
            error = f"[yellow]{self.dataset} is not on disk: starting downloads it into {where}[/yellow]"
        self.query_one("#form-error", Static).update(error)
        self.query_one("#start", Button).disabled = self.config is None

    def request_start(self) -> bool:
        if self.catalog is None:
            return False
        self.validate()
        if self.config is None:
            self.app.notify(str(self.query_one("#form-error", Static).render()), severity="error", title="Cannot start")
            return False
        self.post_message(StartRequested(self.config))
        return True

    # --- events ---

    @on(Input.Changed)
    def _input_changed(self) -> None:
        if self.catalog is not None:
            self.validate()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.request_start()

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.request_start()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "dataset" and event.value != self.dataset and event.value is not Select.NULL:
            self._dataset_changed(str(event.value))
        if self.catalog is not None:
            self.validate()

    def _dataset_changed(self, name: str) -> None:
        """A new dataset brings its recommended model and hyperparameters (like a preset),
        except in the fields the user edited: those keep their values (a model only while
        it fits the new dataset). A notification says what changed and what was kept."""
        self.dataset = name
        rec = self.datasets[name].recommended
        changed, kept = [], []
        for field in RECOMMENDED:
            widget = self.query_one(f"#{field}")
            current = "" if widget.value is Select.NULL else _text(widget.value)
            new = _text(getattr(rec, field))
            if field == "model":
                if self.catalog is None:
                    self.auto[field] = new  # the menu is filled with the new dataset's once torch loads
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
                widget.value = new
            self.auto[field] = new
            if new != current:
                changed.append(f"{label(field)} {new}")
        self._describe()
        parts = [f"recommended {', '.join(changed)}" if changed else "", f"kept your {', '.join(kept)}" if kept else ""]
        if any(parts):
            self.app.notify(" · ".join(p for p in parts if p), title=f"Dataset {name}", timeout=5)

    def _describe(self) -> None:
        spec = self.datasets[self.dataset]
        shape = "×".join(map(str, spec.input_shape))
        classes = f"{len(spec.classes)} classes" if spec.classes else "regression"
        info = (
            f"[b]{spec.name}[/b]: {spec.description}\n"
            f"{spec.train_size:,} train · {spec.test_size:,} test · input {shape} · {classes}\n"
            f"[dim]{spec.source}[/dim]"
        )
        self.query_one("#dataset-info", Static).update(info)
