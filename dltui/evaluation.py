"""`dltui eval`: rebuild a saved model from its checkpoint and score it on the test split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltui.config import TrainConfig
from dltui.errors import CheckpointError
from dltui.words import article


@dataclass(frozen=True)
class EvalResult:
    path: str
    config: TrainConfig
    epoch: int  # completed epochs in the checkpoint
    n_test: int
    loss: float
    acc: float | None
    classes: tuple[str, ...]
    confusion: list[list[int]] | None
    extras: dict[str, Any]


def evaluate_checkpoint(
    path: str | Path,
    dataset: str | None = None,
    model: str | None = None,
    device: str | None = None,
    data_dir: str | None = None,
    which: str = "best",
) -> EvalResult:
    from dltui.config import user_path
    from dltui.data import sources
    from dltui.engine.checkpoint import check_weights, checkpoint_path, config_from_checkpoint, load_checkpoint
    from dltui.engine.loop import evaluate, linear_fit, resolve_device
    from dltui.engine.task import Task
    from dltui.models import build_model

    path = user_path("path", str(path))
    state = load_checkpoint(path, which)
    source = checkpoint_path(path, which)
    cfg = config_from_checkpoint(state, source, device=device, data_dir=data_dir)
    for flag, wanted, saved in (("--dataset", dataset, cfg.dataset), ("--model", model, cfg.model)):
        if wanted and not _same_ref(wanted, saved):
            held = f"{article(cfg.model)} trained on {cfg.dataset}"
            raise CheckpointError(f"{flag}: '{source}' holds {held}, not {wanted}")
    data = sources.load(cfg)
    net = build_model(cfg.model, data.spec)
    check_weights(state, net, source, f"{cfg.model} on {cfg.dataset}")
    try:
        net.load_state_dict(state["model"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"'{source}': weights do not fit {cfg.model} on {cfg.dataset} ({first[:160]})") from None
    dev = resolve_device(cfg.device)
    net.to(dev)
    ev = evaluate(net, data, data.x_test.to(dev), data.y_test.to(dev), Task(data.task), data.batch_transform(dev))
    return EvalResult(
        str(source),
        cfg,
        state["epoch"],
        len(data.y_test),
        ev.loss,
        ev.acc,
        data.classes,
        ev.confusion,
        linear_fit(net, data),
    )


def _same_ref(wanted: str, saved: str) -> bool:
    """Whether a --dataset / --model given to eval names what the checkpoint holds: a
    registry name in any case, or a path (FILE.py:NAME) as the config saved it, absolute."""
    import os

    w = wanted.strip()
    if w.lower() == saved.lower():
        return True
    source, sep, name = w.rpartition(":")
    if sep and source.endswith(".py"):
        w = os.path.abspath(os.path.expanduser(source)) + ":" + name
    else:
        w = os.path.abspath(os.path.expanduser(w))
    return w == saved
