"""What the app remembers about a run, as plain data the widgets read (no Textual, no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SMOOTHING = 0.3  # weight of the newest progress loss in the running curve


@dataclass
class Curves:
    """The loss and accuracy history of one run, as the charts plot it."""

    label: str  # 'digits · mlp'
    regression: bool = False
    steps: list[tuple[float, float]] = field(default_factory=list)  # (fractional epoch, smoothed loss)
    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)  # percent
    test_acc: list[float] = field(default_factory=list)
    lr: float | None = None  # the learning rate of the latest epoch
    # per epoch where the run has them: metrics.csv gained lr, val_loss, val_acc over time
    lr_epochs: list[int] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    val_epochs: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)  # percent

    def add_steps(self, points: list[tuple[float, float]]) -> None:
        """Append raw (fractional epoch, loss) points, smoothed with an EMA."""
        for x, loss in points:
            prev = self.steps[-1][1] if self.steps else loss
            self.steps.append((x, prev + SMOOTHING * (loss - prev)))

    def add_epoch(
        self, epoch: int, train_loss: float, test_loss: float, train_acc: float | None, test_acc: float | None
    ) -> None:
        self.epochs.append(epoch)
        self.train_loss.append(train_loss)
        self.test_loss.append(test_loss)
        if train_acc is not None and test_acc is not None:
            self.train_acc.append(train_acc * 100)
            self.test_acc.append(test_acc * 100)

    def add_extra(self, epoch: int, lr: float | None, val_loss: float | None, val_acc: float | None) -> None:
        """An epoch's learning rate and validation metrics, each where the run has it (a
        run without a validation split, or from an older dltui, has none)."""
        if lr is not None:
            self.lr_epochs.append(epoch)
            self.lrs.append(lr)
            self.lr = lr
        if val_loss is not None:
            self.val_epochs.append(epoch)
            self.val_loss.append(val_loss)
            if val_acc is not None:
                self.val_acc.append(val_acc * 100)


def shown_path(path: str) -> str:
    """A run directory as the user should see it: relative to the working directory when
    inside it (runs/2024...), else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def duration(seconds: float) -> str:
    seconds = max(int(round(seconds)), 0)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass
class RunStats:
    """What the dashboard's stats card shows of the attached run, kept up to date from its
    events."""

    name: str = ""
    status: str = "-"
    epoch: int = 0
    epochs: int = 0
    best_acc: float | None = None
    best_epoch: int = 0
    best_val: float | None = None
    last_acc: float | None = None
    train_loss: float | None = None
    test_loss: float | None = None
    lr: float | None = None
    epoch_s: float | None = None
    eta_s: float | None = None
    samples_per_s: float | None = None

    def started(self, ev) -> None:
        cfg = ev.config
        name = f"{getattr(cfg, 'dataset_label', cfg.dataset)} · {getattr(cfg, 'model_label', cfg.model)}"
        self.__init__(name, "running", ev.start_epoch, cfg.epochs or 0, lr=cfg.lr)  # type: ignore[misc]

    def progress(self, ev) -> None:
        self.eta_s, self.samples_per_s, self.epochs = ev.eta_s, ev.samples_per_s, ev.epochs or self.epochs

    def ended_epoch(self, ev) -> None:
        self.epoch, self.epochs = ev.epoch, ev.epochs or self.epochs
        self.train_loss, self.test_loss, self.lr, self.epoch_s = ev.train_loss, ev.test_loss, ev.lr, ev.seconds
        self.samples_per_s = ev.samples_per_s
        # epochs shorter than a progress event have none: the ETA from the epoch's own time
        self.eta_s = ev.seconds * max(0, self.epochs - ev.epoch)
        self.last_acc = ev.test_acc
        # "best" is the test accuracy at the best validation epoch, as best.pt: never chosen by test
        val = getattr(ev, "val_acc", None)
        if val is not None and (self.best_val is None or val > self.best_val):
            self.best_val, self.best_acc, self.best_epoch = val, ev.test_acc, ev.epoch
