"""Errors a user can cause. Each carries a one-line message and the exit code the CLI uses."""

from __future__ import annotations


class DltuiError(Exception):
    """Base class: a problem to report in one line, never as a traceback."""

    exit_code = 1


class ConfigError(DltuiError):
    """A setting is invalid. `field` names the config field (and so the CLI flag)."""

    exit_code = 2

    def __init__(self, field: str, message: str):
        self.field = field
        self.flag = "--" + field.replace("_", "-")
        super().__init__(f"{self.flag}: {message}")


class DataError(DltuiError):
    """A dataset cannot be loaded (missing offline, corrupt, unwritable directory)."""

    exit_code = 2


class CheckpointError(DltuiError):
    """A checkpoint or run directory is missing, damaged, foreign or mismatched."""

    exit_code = 2


class Diverged(DltuiError):
    """The loss became non-finite."""

    exit_code = 3

    def __init__(self, epoch: int, step: int, loss: float):
        self.epoch, self.step, self.loss = epoch, step, loss
        super().__init__(f"diverged at epoch {epoch}, step {step} (loss={loss}): lower the learning rate")
