"""The training engine: plain Python + torch, shared by the CLI and the TUI."""

from dltui.engine.events import (
    BatchProgressed,
    EpochEnded,
    EvaluationReady,
    Event,
    RunFailed,
    RunFinished,
    RunNoted,
    RunStarted,
    RunStopped,
    RunSummary,
)
from dltui.engine.loop import evaluate, train

__all__ = [
    "BatchProgressed",
    "EpochEnded",
    "Event",
    "EvaluationReady",
    "RunFailed",
    "RunFinished",
    "RunNoted",
    "RunStarted",
    "RunStopped",
    "RunSummary",
    "evaluate",
    "train",
]
