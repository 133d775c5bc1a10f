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
RECOMMENDED = ("model", "epochs", "batch_size", "lr", "optimizer")  # reset when the dataset changes


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
        self.running = False
        self.config: Any = None  # the validated TrainConfig, or None

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
                            options = [(name, name) for name in self.datasets]
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
                            yield Select([], prompt="loading torch…", id=field, compact=True, disabled=True)
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
            error = str(exc)
            for widget in self.query(f"#{exc.field}"):
                widget.add_class("-invalid")
        self.query_one("#form-error", Static).update(error)
        self.query_one("#start", Button).disabled = self.config is None or self.running

    def set_running(self, running: bool) -> None:
        self.running = running
        if self.catalog is not None:
            self.validate()

    def request_start(self) -> bool:
        if self.catalog is None or self.running:
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
        """A new dataset brings its recommended model and hyperparameters (like a preset)."""
        self.dataset = name
        rec = self.datasets[name].recommended
        for field in RECOMMENDED[1:]:
            widget = self.query_one(f"#{field}")
            widget.value = _text(getattr(rec, field))
        if self.catalog is not None:
            self._fill_models(None)
        self._describe()

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
