"""The app's own messages: the engine warm-up's result, the form's checks and start request.
(Runs reach the app through their directories: see dltui/runs.py.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class EngineReady(Message):
    """torch is imported and the model menus are known (posted once, after first paint)."""

    catalog: dict[str, list[tuple[str, int]]]  # dataset -> [(model, parameters)], fitting only
    cuda: bool


@dataclass
class EngineBroken(Message):
    """torch or the engine could not be imported: the app stays up to say so."""

    message: str


@dataclass
class StartRequested(Message):
    """The setup form asks to start a run with this validated config."""

    config: Any  # dltui.config.TrainConfig (kept untyped so this module never imports the engine)


@dataclass
class SetupChecked(Message):
    """The setup form's settings, checked in a thread: with a path or the user's model code
    they read files and run code. Only the newest ``generation`` is shown."""

    generation: int
    config: Any  # the validated TrainConfig, or None
    error: Any  # dltui.errors.ConfigError, or None
    spec: Any = None  # the user's data as a DatasetSpec (a path in dataset only)
    summary: Any = None  # its inspect summary, a Rich renderable
    models: list[tuple[str, int]] | None = None  # the models that fit it, with their parameters
