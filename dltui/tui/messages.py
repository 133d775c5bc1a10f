"""The app's own messages: the engine warm-up's result and the form's start request.
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
