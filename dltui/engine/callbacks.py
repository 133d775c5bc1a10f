"""The concerns the loop consults at epoch boundaries, one small object each.

Like Lightning's or Keras' callbacks, but called directly by name from the loop's
``end_epoch`` step: nothing here runs per batch (the one exception, OneCycle's per-step
learning rate, is a bound method the loop calls only when that schedule is chosen).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from dltui.config import TrainConfig

CONTROL_FILE = "control.jsonl"  # requests to a live run, one JSON object per line
MAX_ROLLBACKS = 3


class LrSchedule:
    """``--schedule`` and ``--warmup`` through torch.optim.lr_scheduler.

    Per-epoch schedules step once per epoch; onecycle steps per batch (its shape is defined
    in steps). A resumed run replays the steps already taken, so the schedule continues
    exactly where it stopped without any scheduler state in the checkpoint.
    """

    def __init__(self, cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int, done_epochs: int):
        import torch.optim.lr_scheduler as sched

        self.optimizer = optimizer
        self.per_step = cfg.schedule == "onecycle"
        main_epochs = cfg.epochs - cfg.warmup
        if cfg.schedule == "onecycle":
            total = cfg.epochs * steps_per_epoch
            pct = cfg.warmup / cfg.epochs if cfg.warmup else 0.3
            self.scheduler = sched.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=pct)
        else:
            if cfg.schedule == "step":
                main = sched.StepLR(optimizer, step_size=cfg.step_size or 1, gamma=cfg.gamma)
            elif cfg.schedule == "cosine":
                main = sched.CosineAnnealingLR(optimizer, T_max=max(1, main_epochs))
            else:
                main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
            if cfg.warmup:
                # from lr/warmup up to lr over the warm-up epochs, then the schedule itself
                warm = sched.LinearLR(optimizer, start_factor=1 / (cfg.warmup + 1), total_iters=cfg.warmup)
                self.scheduler = sched.SequentialLR(optimizer, [warm, main], milestones=[cfg.warmup])
            else:
                self.scheduler = main
        optimizer._opt_called = True  # the loop steps it through fastpath.bare_step, which the scheduler cannot see
        replay = done_epochs * (steps_per_epoch if self.per_step else 1)
        with warnings.catch_warnings():  # "step() before optimizer.step()": replaying, not training
            warnings.simplefilter("ignore")
            for _ in range(replay):
                self.scheduler.step()
        self.step = self.scheduler.step if self.per_step else None  # the loop's per-batch hook

    def end_epoch(self) -> None:
        if not self.per_step:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SequentialLR's deprecated-epoch warning
                self.scheduler.step()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def scale(self, factor: float) -> None:
        """Multiply the learning rate from now on (a live change, a rollback's halving),
        keeping the schedule's shape."""
        scale_lr(self.optimizer, self.scheduler, factor)


def scale_lr(optimizer: Any, scheduler: Any, factor: float) -> None:
    for group in optimizer.param_groups:
        for key in ("lr", "initial_lr", "max_lr", "min_lr"):
            if key in group:
                group[key] = group[key] * factor
    for s in (scheduler, *getattr(scheduler, "_schedulers", ())):
        if hasattr(s, "base_lrs"):
            s.base_lrs = [b * factor for b in s.base_lrs]
        if getattr(s, "eta_min", 0):
            s.eta_min *= factor


@dataclass
class Monitor:
    """The validation metric every choice is made by (never a test metric)."""

    name: str  # val_loss | val_acc
    min_delta: float = 0.0

    @property
    def higher_is_better(self) -> bool:
        return self.name.endswith("acc")

    def improved(self, value: float | None, best: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best + self.min_delta if self.higher_is_better else value < best - self.min_delta


class BestEpoch:
    """The epoch with the best monitored value: it is what best.pt holds."""

    def __init__(self, monitor: Monitor, history: list[dict[str, Any]]):
        self.monitor = monitor
        self.epoch: int | None = None
        self.value: float | None = None
        self.row: dict[str, Any] | None = None
        for row in history:
            self.update(row)

    def update(self, row: dict[str, Any]) -> bool:
        """Record ``row``; True when it is the new best (strictly better than before)."""
        value = row.get(self.monitor.name)
        best = self.value
        if value is None or not math.isfinite(value):
            return False
        better = best is None or (value > best if self.monitor.higher_is_better else value < best)
        if better:
            self.epoch, self.value, self.row = row["epoch"], value, row
        return better


class EarlyStopping:
    """Stop when the monitored value has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor: Monitor, patience: int, history: list[dict[str, Any]]):
        self.monitor, self.patience = monitor, patience
        self.best: float | None = None
        self.waited = 0
        self.reason: str | None = None
        for row in history:
            self.update(row)

    def update(self, row: dict[str, Any]) -> bool:
        """Record ``row``; True when training should stop after it."""
        value = row.get(self.monitor.name)
        if self.monitor.improved(value, self.best):
            self.best, self.waited = value, 0
            return False
        self.waited += 1
        if self.waited >= self.patience:
            self.reason = (
                f"{self.monitor.name} did not improve for {self.patience} epoch{'s' if self.patience > 1 else ''}"
                f" (best {self.best:.4g})"
                if self.best is not None
                else f"{self.monitor.name} was never finite"
            )
            return True
        return False


class Rollback:
    """``--on-diverge rollback``: back to the last good epoch's weights and optimizer state
    with the learning rate halved, at most MAX_ROLLBACKS times."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.used = 0
        self.good: dict[str, Any] | None = None  # host copies: {"model", "optimizer", "epoch"}

    def remember(self, epoch: int, model_state: dict[str, Any], optimizer_state: dict[str, Any]) -> None:
        if self.enabled:
            self.good = {"epoch": epoch, "model": model_state, "optimizer": optimizer_state}

    def can(self) -> bool:
        return self.enabled and self.good is not None and self.used < MAX_ROLLBACKS

    def restore(self, model: Any, optimizer: Any) -> int:
        """Load the last good weights and optimizer state back, keeping the learning rate the
        run has now (the saved state holds the rate of that epoch, before any halving);
        returns the epoch it belongs to."""
        assert self.good is not None
        self.used += 1
        keys = ("lr", "initial_lr", "max_lr", "min_lr")
        rates = [{k: g[k] for k in keys if k in g} for g in optimizer.param_groups]
        model.load_state_dict(self.good["model"])
        optimizer.load_state_dict(self.good["optimizer"])
        for group, kept in zip(optimizer.param_groups, rates, strict=True):
            group.update(kept)
        return self.good["epoch"]


@dataclass
class Request:
    kind: str  # lr | checkpoint | stop-after-epoch | stop
    value: float | None = None


class Control:
    """Requests from outside the process (the app, `dltui control`), appended to
    ``control.jsonl`` in the run directory and read when the loop reports progress (a few
    times a second: one stat call) and at every epoch end. Bad lines are skipped with a note."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / CONTROL_FILE
        try:
            self.offset = self.path.stat().st_size  # requests before this process started are not ours
        except OSError:
            self.offset = 0

    def poll(self) -> tuple[list[Request], list[str]]:
        """New requests and notes about lines that could not be read."""
        try:
            if self.path.stat().st_size <= self.offset:
                return [], []
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return [], []
        end = chunk.rfind(b"\n") + 1  # a half-written last line waits for the next poll
        self.offset += end
        requests, notes = [], []
        for line in chunk[:end].splitlines():
            try:
                requests.append(parse_request(json.loads(line)))
            except (ValueError, TypeError, KeyError) as exc:
                notes.append(f"ignored a control request ({exc})")
        return requests, notes


def parse_request(obj: Any) -> Request:
    """One control request, validated (the one place: the app and the CLI write through it)."""
    if not isinstance(obj, dict) or obj.get("kind") not in ("lr", "checkpoint", "stop-after-epoch", "stop"):
        raise ValueError(f"unknown request {str(obj)[:60]}")
    if obj["kind"] != "lr":
        return Request(obj["kind"])
    value = obj.get("value")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= 100
    ):
        raise ValueError(f"lr {value!r} is not a number in (0, 100]")
    return Request("lr", float(value))


def send(run_dir: Path, kind: str, value: float | None = None) -> None:
    """Append one request for the live run in ``run_dir`` (one write: atomic on O_APPEND)."""
    req = parse_request({"kind": kind, **({"value": value} if value is not None else {})})
    line = json.dumps({"kind": req.kind, **({"value": req.value} if req.value is not None else {})}) + "\n"
    fd = os.open(run_dir / CONTROL_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
