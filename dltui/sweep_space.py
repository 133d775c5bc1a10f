"""A sweep's search space: the flags that were given several values.

Any config flag may take a list (``--model softmax,mlp``, ``--batch-size 32,64``) or, for a
number, a range (``--lr 1e-4..1e-1:log``, ``--epochs 2..6``). Each such flag is one
:class:`Dimension`; Optuna draws the values (``suggest``), this module only says what may
be drawn. Plain Python: no torch, no Optuna import at module level.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from dltui.config import INITS, ON_DIVERGE, OPTIMIZERS, SCHEDULES, TrainConfig, choose, model_label, number
from dltui.errors import ConfigError

# What one sweep compares must share its data and its yardstick: these take one value only
# (a comma in a path or a column name stays part of it).
FIXED_ONLY = frozenset(
    {"dataset", "data_dir", "out", "threads", "device", "target", "text", "task", "image_size", "test",
     "val_fraction", "monitor", "data_schema", "amp", "compile", "augment"}
)  # fmt: skip
# of those, the ones where a comma or '..' can only mean a list or a range (not a path or a name)
ONE_VALUE = frozenset({"val_fraction", "monitor", "threads", "device", "task", "image_size"})
CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "init": INITS, "on_diverge": ON_DIVERGE}
SHORT = {"lr": "lr", "batch_size": "bs", "weight_decay": "wd", "momentum": "mom", "epochs": "ep", "dropout": "drop",
         "label_smoothing": "ls", "clip_grad": "clip", "seed": "seed", "warmup": "wu", "early_stop": "es"}  # fmt: skip


def _kind(name: str) -> str:
    """'int', 'float' or 'str': the type of a TrainConfig field (its annotation is a string)."""
    annotation = str(next(f.type for f in fields(TrainConfig) if f.name == name))
    for kind in ("bool", "int", "float"):
        if re.search(rf"\b{kind}\b", annotation):
            return kind
    return "str"


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Dimension:
    """One swept flag: a list of values, or a numeric range (``log``: drawn on a log scale)."""

    field: str
    kind: str  # "list" | "range"
    type: str  # "int" | "float" | "str"
    values: tuple[Any, ...] = ()  # list
    low: float | int | None = None  # range
    high: float | int | None = None
    log: bool = False

    def suggest(self, trial: Any) -> Any:
        """The value Optuna's ``trial`` draws. Floats from a range keep 4 significant digits,
        so a trial's setting reads back exactly from its directory name and command line."""
        if self.kind == "list":
            return trial.suggest_categorical(self.field, list(self.values))
        if self.type == "int":
            return trial.suggest_int(self.field, int(self.low), int(self.high), log=self.log)
        return round_sig(trial.suggest_float(self.field, float(self.low), float(self.high), log=self.log))

    def probes(self) -> list[Any]:
        """The values checked before the sweep starts: every listed value, a range's ends."""
        return list(self.values) if self.kind == "list" else [self.low, self.high]

    def describe(self) -> str:
        if self.kind == "list":
            return ",".join(fmt(v) for v in self.values)
        return f"{fmt(self.low)}..{fmt(self.high)}{':log' if self.log else ''}"

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "list":
            return {"field": self.field, "kind": "list", "type": self.type, "values": list(self.values)}
        return {"field": self.field, "kind": "range", "type": self.type, "low": self.low, "high": self.high,
                "log": self.log}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Dimension:
        return cls(
            str(d["field"]), str(d["kind"]), str(d["type"]), tuple(d.get("values") or ()),
            d.get("low"), d.get("high"), bool(d.get("log")),
        )  # fmt: skip


def round_sig(v: float, digits: int = 4) -> float:
    return float(f"{v:.{digits}g}")


def fmt(v: Any) -> str:
    """A value as a flag would take it back: 0.001, 64, mlp."""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _number(name: str, raw: str, kind: str) -> int | float:
    allowed = "a whole number" if kind == "int" else "a number"
    return number(name, raw, int if kind == "int" else float, f"{allowed}, a list a,b,c or a range lo..hi[:log]")


def parse(name: str, raw: Any) -> Dimension | None:
    """The dimension a flag's text asks for; None for one plain value (a fixed setting).
    Raises ConfigError for a malformed list or range, a value that is not a number for a
    numeric flag, an unknown choice or model name."""
    if name in FIXED_ONLY or not isinstance(raw, str):
        return None
    kind = _kind(name)
    text = raw.strip()
    if kind in ("int", "float") and ".." in text:
        return _range(name, text, kind)
    if "," not in text:
        return None
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise ConfigError(name, f"'{raw}' has an empty item (a list is a,b,c)")
    if kind in ("int", "float"):
        values: list[Any] = [_number(name, item, kind) for item in items]
    elif name in CHOICES:
        values = [choose(name, item, CHOICES[name]) for item in items]
    elif name == "model":
        from dltui.models import resolve_model

        values = [resolve_model(item).name for item in items]  # an unknown name is a typo: refused now
    else:
        values = items
    seen: set[Any] = set()
    for v in values:
        if v in seen:
            raise ConfigError(name, f"'{fmt(v)}' is listed twice in '{raw}'")
        seen.add(v)
    return Dimension(name, "list", kind, tuple(values))


def _range(name: str, text: str, kind: str) -> Dimension:
    body, _, scale = text.partition(":")
    if scale not in ("", "log"):
        raise ConfigError(name, f"'{text}': a range is lo..hi or lo..hi:log, not ':{scale}'")
    lo_text, _, hi_text = body.partition("..")
    low, high = _number(name, lo_text, kind), _number(name, hi_text, kind)
    if not low < high:
        raise ConfigError(name, f"'{text}': a range needs lo < hi")
    log = scale == "log"
    if log and low <= 0:
        raise ConfigError(name, f"'{text}': a log range needs lo > 0")
    if kind == "float" and not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(name, f"'{text}': a range needs finite ends")
    return Dimension(name, "range", kind, low=low, high=high, log=log)


@dataclass(frozen=True)
class Space:
    """The swept flags, in the order they were given (the leaderboard's column order)."""

    dims: tuple[Dimension, ...]

    @property
    def fields(self) -> list[str]:
        return [d.field for d in self.dims]

    @property
    def is_grid(self) -> bool:
        return all(d.kind == "list" for d in self.dims)

    @property
    def grid_size(self) -> int | None:
        return math.prod(len(d.values) for d in self.dims) if self.is_grid else None

    def grid(self) -> dict[str, list[Any]]:
        """The search space as optuna.samplers.GridSampler takes it."""
        return {d.field: list(d.values) for d in self.dims}

    def suggest(self, trial: Any) -> dict[str, Any]:
        return {d.field: d.suggest(trial) for d in self.dims}

    def label(self, params: dict[str, Any]) -> str:
        """'mlp-lr0.01': the varied settings of a trial, safe in a directory name."""
        parts = []
        for d in self.dims:
            v = params.get(d.field)
            if d.field == "model":
                parts.append(model_label(str(v)))
            elif d.type == "str":
                parts.append(str(v))
            else:
                parts.append(f"{SHORT.get(d.field, d.field.replace('_', '-'))}{fmt(v)}")
        text = re.sub(r"[^A-Za-z0-9._+=-]+", "_", "-".join(parts))
        return text[:60] or "trial"

    def to_list(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self.dims]

    @classmethod
    def from_list(cls, items: list[dict[str, Any]]) -> Space:
        return cls(tuple(Dimension.from_dict(d) for d in items))


def split_flags(given: dict[str, Any]) -> tuple[dict[str, Any], Space]:
    """Config flags as given -> (the fixed ones, the space of the swept ones)."""
    fixed: dict[str, Any] = {}
    dims: list[Dimension] = []
    for name, raw in given.items():
        if name in ONE_VALUE and isinstance(raw, str) and ("," in raw or ".." in raw):
            raise ConfigError(name, f"'{raw}': takes one value in a sweep (every trial must be judged alike)")
        if name == "dataset" and isinstance(raw, str) and "," in raw and not Path(raw).expanduser().exists():
            raise ConfigError(name, f"'{raw}': a sweep compares settings on one dataset; give one (sweep each apart)")
        dim = parse(name, raw)
        if dim is None:
            fixed[name] = raw
        else:
            dims.append(dim)
    return fixed, Space(tuple(dims))
