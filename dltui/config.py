"""The one run configuration both faces share, and the one place it is validated.

Field names match the CLI flags (``batch_size`` <-> ``--batch-size``). ``None`` means
"the dataset's recommendation"; :func:`make_config` resolves every ``None`` so the saved
config always says exactly what ran.
"""

from __future__ import annotations

import difflib
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dltui.errors import ConfigError

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "scratch-sgd")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
MONITORS = ("val_loss", "val_acc")
ON_DIVERGE = ("stop", "rollback")
OWN_TASKS = ("classification", "binary", "regression")
INITS = ("default", "normal")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "digits"  # registry name or a path (CSV/TSV table, image folder); digits ships inside dltui
    model: str | None = None  # registry name, FILE.py:NAME or package.module:NAME; None: the dataset's
    epochs: int | None = None  # total epochs of the run (a resumed run continues up to this)
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None  # sgd | momentum (SGD, momentum 0.9) | adam | adamw | scratch-sgd
    momentum: float | None = None  # SGD momentum; None: 0.9 for "momentum", else 0
    weight_decay: float = 0.0
    init: str = "default"  # default (PyTorch's) | normal: N(0, 0.01) weights, zero biases
    device: str = "auto"  # auto: CUDA when available
    seed: int = 0
    data_dir: str | None = None  # None: $DLTUI_DATA_DIR or the user cache dir
    out: str | None = None  # run directory; None: runs/<timestamp>-<dataset>-<model>
    amp: bool = False  # bf16 autocast (recorded as off where it did not apply)
    compile: bool = False  # torch.compile (CUDA only; likewise)
    graph: bool = True  # CUDA: the training step captured as one CUDA graph where it can be (--no-graph: off)
    threads: int | None = None  # CPU threads for torch; None: torch's default; recorded as applied
    # your own data (a path in `dataset`)
    target: str | None = None  # table: the label column (name or index); None: the last column
    text: str | None = None  # table: a string column read as characters, for rnn / lstm / gru
    task: str | None = None  # table: classification | binary | regression; None: inferred from the target
    image_size: int | None = None  # image folder: the side images are resized to; None: the most common size
    test: str | None = None  # a file or folder holding the test split; None: the data's own split, else 80/20
    data_schema: dict | None = None  # everything inferred from a path, encoders included (resolved, never typed)
    # how training is run
    val_fraction: float | None = None  # of the training split, held out to choose by; None: 0, or 0.1 when choosing
    schedule: str = "constant"  # constant | step | cosine | onecycle (torch.optim.lr_scheduler)
    warmup: int = 0  # epochs of linear warm-up before the schedule
    step_size: int | None = None  # step: epochs between decays; None: a third of the run
    gamma: float = 0.1  # step: the decay factor
    early_stop: int = 0  # patience in epochs; 0: off
    monitor: str | None = None  # val_loss | val_acc; None: val_acc where there is accuracy, else val_loss
    min_delta: float = 0.0  # an improvement smaller than this does not count
    clip_grad: float | None = None  # max gradient norm; None: no clipping
    label_smoothing: float = 0.0  # classification only
    dropout: float | None = None  # before the classifier head; None: the model's own (none)
    augment: bool | None = None  # random crop + flip where the dataset allows; None: the dataset's default
    on_diverge: str = "stop"  # stop | rollback (to the last good epoch with the lr halved, at most 3 times)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def chooses(self) -> bool:
        """Whether anything in this run picks an epoch or stops early: it then needs validation."""
        return self.early_stop > 0

    @property
    def dataset_label(self) -> str:
        """The dataset as a short name: a registry name, or a path's last part."""
        if self.data_schema is None:
            return self.dataset
        return Path(self.dataset.rstrip("/")).name.split(".")[0] or self.dataset

    @property
    def model_label(self) -> str:
        return model_label(self.model or "")


def model_label(ref: str) -> str:
    """A model reference as a short name, safe in a directory name: ``course_cnn.Net`` for
    ``/any/where/course_cnn.py:Net``, ``pkg.mod.Net`` for ``pkg.mod:Net``, a registry name
    as it is."""
    source, sep, name = ref.rpartition(":")
    if not sep:
        return ref
    return f"{Path(source).stem if source.endswith('.py') else source}.{name}"


def default_data_dir() -> Path:
    """$DLTUI_DATA_DIR, else the platform's user cache dir: ~/.cache/dltui/data on Linux
    ($XDG_CACHE_HOME honoured), ~/Library/Caches/dltui/data on macOS,
    %LOCALAPPDATA%\\dltui\\Cache\\data on Windows."""
    env = os.environ.get("DLTUI_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path("dltui", appauthor=False) / "data"


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def user_path(field: str, raw: str) -> Path:
    """A path as the user typed it, ``~`` expanded, refused in one line when it cannot name
    a file here (unknown user, a name or path too long for the file system, a NUL byte)."""
    try:
        path = Path(os.path.expanduser(raw))
        if path.parts and path.parts[0].startswith("~"):
            raise ConfigError(field, f"'{raw}': no such user '{path.parts[0][1:]}'")
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        shown = raw if len(raw) <= 60 else raw[:40] + "…" + raw[-15:]
        raise ConfigError(field, f"'{shown}' cannot be used ({reason})") from None
    return path


def resolve_data_dir(given: str | None) -> str:
    """--data-dir, else $DLTUI_DATA_DIR, else the user cache directory, checked as a path."""
    if given:
        return str(user_path("data_dir", str(given)))
    env = "DLTUI_DATA_DIR" if os.environ.get("DLTUI_DATA_DIR") else "data_dir"
    return str(user_path(env, str(default_data_dir())))


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def number(field: str, raw: Any, kind: type, allowed: str) -> Any:
    if isinstance(raw, bool):
        raise ConfigError(field, f"{raw!r} is not a number ({allowed})")
    try:
        value = kind(raw.strip()) if isinstance(raw, str) else kind(raw)
        if kind is int and not isinstance(raw, str) and float(raw) != value:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        what = "an integer" if kind is int else "a number"
        raise ConfigError(field, f"{raw!r} is not {what} ({allowed})") from None
    if kind is float and not math.isfinite(value):
        raise ConfigError(field, f"{raw!r} is not finite ({allowed})")
    return value


def choose(field: str, raw: Any, choices: tuple[str, ...]) -> str:
    value = str(raw).strip().lower()
    if value not in choices:
        raise ConfigError(field, f"unknown value '{raw}'{suggest(value, choices)} (choose from: {', '.join(choices)})")
    return value


def boolean(field: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(field, f"{raw!r} is not true/false")


def check_writable_dir(field: str, path: Path) -> None:
    """Create ``path`` if needed and prove a file can be written in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # unnamed where the OS allows: no kill leaves it behind
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(field, f"cannot write to '{path}' ({reason})") from None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def check_batch_size(batch_size: int, train_size: int, dataset: str) -> None:
    if not 1 <= batch_size <= train_size:
        raise ConfigError(
            "batch_size",
            f"{batch_size} is out of range (a whole number from 1 to {train_size}, "
            f"the size of {dataset}'s training split)",
        )
