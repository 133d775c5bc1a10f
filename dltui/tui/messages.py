"""Every custom message of the app. The training thread posts the Run* ones; the app
routes them down to the widgets. Engine events travel inside them untouched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from dltui.engine.events import (
        BatchProgressed,
        EpochEnded,
        EvaluationReady,
        RunFailed,
        RunFinished,
        RunStarted,
        RunStopped,
    )


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
class RunBegan(Message):
    """The engine loaded the data and built the model."""

    event: RunStarted


@dataclass
class BatchDone(Message):
    """Progress inside an epoch. Only the newest matters for the progress line; the loss
    points travel in the app's lock-free buffer, so replacing an older one loses nothing."""

    event: BatchProgressed

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, BatchDone)


@dataclass
class EpochDone(Message):
    """An epoch ended and was evaluated."""

    event: EpochEnded


@dataclass
class EvaluationDone(Message):
    """The confusion matrix and test predictions of the epoch that just ended. Only the
    newest is ever shown, so a queued older one is dropped (fast epochs: 30 a second)."""

    event: EvaluationReady

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EvaluationDone)


@dataclass
class RunEnded(Message):
    """The run finished, stopped or failed; the worker thread is about to return."""

    event: RunFinished | RunStopped | RunFailed


@dataclass
class StartRequested(Message):
    """The setup form asks to start a run with this validated config."""

    config: Any  # dltui.config.TrainConfig (kept untyped so this module never imports the engine)
