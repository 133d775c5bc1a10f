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
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from dltui.errors import ConfigError

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
INITS = ("default", "normal")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "digits"  # registry name; digits ships inside dltui, so it works offline
    model: str | None = None  # None: the dataset's recommended model
    epochs: int | None = None  # total epochs of the run (a resumed run continues up to this)
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None  # sgd | momentum (SGD, momentum 0.9) | adam | adamw
    momentum: float | None = None  # SGD momentum; None: 0.9 for "momentum", else 0
    weight_decay: float = 0.0
    init: str = "default"  # default (PyTorch's) | normal: N(0, 0.01) weights, zero biases
    device: str = "auto"  # auto: CUDA when available
    seed: int = 0
    data_dir: str | None = None  # None: $DLTUI_DATA_DIR or the user cache dir
    out: str | None = None  # run directory; None: runs/<timestamp>-<dataset>-<model>
    amp: bool = False  # bf16 autocast (CUDA only; recorded as off where it did not apply)
    compile: bool = False  # torch.compile (CUDA only; likewise)
    threads: int | None = None  # CPU threads for torch; None: torch's default; recorded as applied

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from a saved dict; unknown keys (from a newer version) are ignored."""
        names = {f.name for f in fields(cls)}
        return make_config(**{k: v for k, v in data.items() if k in names})


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


def _number(field: str, raw: Any, kind: type, allowed: str) -> Any:
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


def _bool(field: str, raw: Any) -> bool:
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


def make_config(**raw: Any) -> TrainConfig:
    """Parse, resolve and validate settings given as Python values or strings (from a flag
    or a text field). Raises ConfigError naming the field, the value and what is allowed."""
    from dltui.data import DATASETS
    from dltui.models import MODELS, compatible_models

    names = {f.name for f in fields(TrainConfig)}
    unknown = set(raw) - names
    if unknown:
        raise TypeError(f"unknown config fields: {sorted(unknown)}")
    # an empty text field means "not given", like an absent flag
    given = {k: v for k, v in raw.items() if v is not None and not (isinstance(v, str) and not v.strip())}

    dataset = choose("dataset", given.get("dataset", TrainConfig.dataset), tuple(DATASETS))
    spec = DATASETS[dataset]
    rec = spec.recommended

    model_name = choose("model", given.get("model", rec.model), tuple(MODELS))
    fitting = compatible_models(spec)
    if model_name not in fitting:
        why = MODELS[model_name].incompatibility(spec) or "does not fit"
        raise ConfigError(
            "model",
            f"'{model_name}' does not fit dataset '{dataset}' ({why}); models that fit: {', '.join(fitting)}",
        )

    epochs = _number("epochs", given.get("epochs", rec.epochs), int, "a whole number >= 1")
    if not 1 <= epochs <= 100_000:
        raise ConfigError("epochs", f"{epochs} is out of range (a whole number from 1 to 100000)")

    batch_size = _number("batch_size", given.get("batch_size", rec.batch_size), int, "a whole number >= 1")
    check_batch_size(batch_size, spec.train_size, dataset)

    lr = _number("lr", given.get("lr", rec.lr), float, "a positive number such as 0.01")
    if not 0 < lr <= 100:
        raise ConfigError("lr", f"{lr:g} is out of range (a positive number up to 100, such as 0.01)")

    optimizer = choose("optimizer", given.get("optimizer", rec.optimizer), OPTIMIZERS)
    default_momentum = 0.9 if optimizer == "momentum" else 0.0
    momentum = _number("momentum", given.get("momentum", default_momentum), float, "a number in [0, 1)")
    if not 0 <= momentum < 1:
        raise ConfigError("momentum", f"{momentum:g} is out of range (a number in [0, 1), such as 0.9)")
    if momentum and optimizer in ("adam", "adamw"):
        raise ConfigError("momentum", f"{momentum:g} has no meaning for {optimizer} (use sgd or momentum)")

    weight_decay = _number("weight_decay", given.get("weight_decay", 0.0), float, "a number in [0, 1)")
    if not 0 <= weight_decay < 1:
        raise ConfigError("weight_decay", f"{weight_decay:g} is out of range (a number in [0, 1), such as 1e-4)")

    init = choose("init", given.get("init", "default"), INITS)
    device = choose("device", given.get("device", "auto"), DEVICES)
    if device == "cuda" and not cuda_available():
        raise ConfigError("device", "'cuda' was asked for but no CUDA device is available (use cpu or auto)")

    seed = _number("seed", given.get("seed", 0), int, "a whole number")
    if not 0 <= seed < 2**63:
        raise ConfigError("seed", f"{seed} is out of range (a whole number from 0 to 2**63-1)")

    data_dir = resolve_data_dir(given.get("data_dir"))
    if spec.needs_data_dir:
        check_writable_dir("data_dir", Path(data_dir))

    out = given.get("out")
    out = str(user_path("out", str(out))) if out else None

    threads = given.get("threads")
    if threads is not None:
        cores = usable_cores()
        threads = _number("threads", threads, int, f"a whole number from 1 to {cores}")
        if not 1 <= threads <= cores:
            raise ConfigError(
                "threads", f"{threads} is out of range (a whole number from 1 to {cores}: the cores this process has)"
            )

    return TrainConfig(
        dataset=dataset,
        model=model_name,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        momentum=momentum,
        weight_decay=weight_decay,
        init=init,
        device=device,
        seed=seed,
        data_dir=data_dir,
        out=out,
        amp=_bool("amp", given.get("amp", False)),
        compile=_bool("compile", given.get("compile", False)),
        threads=threads,
    )


def check_batch_size(batch_size: int, train_size: int, dataset: str) -> None:
    if not 1 <= batch_size <= train_size:
        raise ConfigError(
            "batch_size",
            f"{batch_size} is out of range (a whole number from 1 to {train_size}, "
            f"the size of {dataset}'s training split)",
        )


def with_overrides(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """A validated copy of ``cfg`` with some fields changed."""
    return make_config(**{**cfg.to_dict(), **changes}) if changes else replace(cfg)
