"""Errors a user can cause. Each carries a one-line message and the exit code the CLI uses.

Exit codes, one per meaning (the README's table is this list):
0 finished · 1 internal error (a bug) · 2 bad input (flag, data, checkpoint) · 3 diverged ·
4 finished below ``--min-test-acc`` · 5 the run directory cannot be written (disk full,
read-only, removed) · 6 the run directory is held by another live run · 7 a data-parallel
run lost a rank (it died or stopped answering) · 130 stopped by Ctrl+C, SIGTERM or SIGHUP.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_BELOW_BAR = 4
EXIT_STORAGE = 5
EXIT_LOCKED = 6
EXIT_RANK_LOST = 7
EXIT_INTERRUPTED = 130


class DltuiError(Exception):
    """Base class: a problem to report in one line, never as a traceback."""

    exit_code = EXIT_INTERNAL


class ConfigError(DltuiError):
    """A setting is invalid. `field` names the config field (and so the CLI flag)."""

    exit_code = EXIT_USAGE

    def __init__(self, field: str, message: str):
        self.field = field
        # an environment variable (DLTUI_DATA_DIR) is named as it is
        self.flag = field if field.isupper() else "--" + field.replace("_", "-")
        super().__init__(f"{self.flag}: {message}")


class DataError(DltuiError):
    """A dataset cannot be loaded (missing offline, corrupt, unwritable directory)."""

    exit_code = EXIT_USAGE


class CheckpointError(DltuiError):
    """A checkpoint or run directory is missing, damaged, foreign or mismatched."""

    exit_code = EXIT_USAGE


class StorageError(DltuiError):
    """The run directory cannot be written; what was written before is kept."""

    exit_code = EXIT_STORAGE


class RunLocked(DltuiError):
    """Another live process is writing the run directory."""

    exit_code = EXIT_LOCKED


class Diverged(DltuiError):
    """The loss became non-finite."""

    exit_code = EXIT_DIVERGED

    def __init__(self, epoch: int, step: int, loss: float):
        self.epoch, self.step, self.loss = epoch, step, loss
        super().__init__(f"diverged at epoch {epoch}, step {step} (loss={loss}): lower the learning rate")
