"""What the training loop reports, as past-tense dataclasses passed to one callback.

The CLI's callback prints them; the TUI's posts them as messages. Tensors in events live
on the CPU, so a receiver in another thread never touches the training device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from dltui.config import TrainConfig
    from dltui.data import Data


@dataclass(frozen=True)
class RunStarted:
    """The model is built and the data is loaded; training is about to begin."""

    config: TrainConfig
    data: Data  # CPU tensors and metadata; the sampler draws test items from data.x_test
    n_params: int
    device: str  # e.g. "cpu" or "cuda (NVIDIA H100)"
    run_dir: str
    start_epoch: int  # 0 for a new run; the completed epochs for a resumed one
    steps_per_epoch: int
    notes: tuple[str, ...] = ()  # settings asked for but not applied, and why


@dataclass(frozen=True)
class BatchProgressed:
    """Progress inside an epoch. Emitted a few times per second, never per step."""

    epoch: int  # 1-based
    epochs: int
    step: int  # steps done in this epoch
    steps: int
    loss: float  # mean training loss over the steps since the previous progress event
    samples_per_s: float
    eta_s: float  # estimated seconds left in the whole run


@dataclass(frozen=True)
class EpochEnded:
    """One epoch finished and was evaluated. Accuracies are None for regression."""

    epoch: int
    epochs: int
    train_loss: float
    train_acc: float | None
    test_loss: float
    test_acc: float | None
    lr: float
    seconds: float  # wall time of the epoch, evaluation included
    samples_per_s: float  # training samples per second
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. learned w, b for linear
    val_loss: float | None = None  # on the validation split; None when the run holds none out
    val_acc: float | None = None


@dataclass(frozen=True)
class EvaluationReady:
    """Per-epoch evaluation artefacts on the whole test split (CPU tensors)."""

    epoch: int
    confusion: list[list[int]] | None  # counts [true][pred]; None for regression
    y_true: torch.Tensor  # (n_test,) labels, or targets for regression
    y_pred: torch.Tensor  # (n_test,) predicted labels, or predictions for regression
    confidence: torch.Tensor  # (n_test,) probability of the predicted label (1.0 for regression)
    sample: list[int]  # a seeded sample of test indices for the prediction sampler


@dataclass(frozen=True)
class RunNoted:
    """Something the run did on its own or on request: a rollback, a live lr change, a
    checkpoint saved now, a stop scheduled. One line for the user."""

    epoch: int  # the epoch in progress
    text: str


@dataclass(frozen=True)
class RunSummary:
    epochs_done: int
    final: EpochEnded | None
    # the test metrics of the epoch chosen by validation (best.pt); None without validation:
    # nothing is ever chosen by the test split
    best_test_acc: float | None
    best_test_loss: float | None
    wall_s: float
    samples_per_s: float
    run_dir: str
    start_epoch: int = 0  # epochs completed before this process resumed the run
    best_epoch: int | None = None  # the epoch with the best monitored validation value
    monitor: str | None = None  # val_acc | val_loss; None without validation
    best_value: float | None = None
    stop_reason: str | None = None  # why it ended before its last epoch (early stopping)
    rollbacks: int = 0


@dataclass(frozen=True)
class RunFinished:
    summary: RunSummary


@dataclass(frozen=True)
class RunStopped:
    """Stopped on request; everything up to the last completed epoch is on disk."""

    summary: RunSummary


@dataclass(frozen=True)
class RunFailed:
    """The run failed: `message` is one line for the user; `exit_code` what the CLI returns."""

    message: str
    exit_code: int
    summary: RunSummary | None = None


Event = RunStarted | BatchProgressed | EpochEnded | EvaluationReady | RunNoted | RunFinished | RunStopped | RunFailed
Callback = Callable[[Event], None]
