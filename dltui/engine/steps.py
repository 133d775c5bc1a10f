"""The pieces every training step and evaluation is made of: device, optimizer, gradient
clearing, whole-split evaluation, divergence, the compile warm-up. Plain functions the loop
(``loop.py``) calls by name; ``eval`` uses the same evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dltui.errors import Diverged

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dltui.config import TrainConfig
    from dltui.data import Data
    from dltui.engine.task import Task

EVAL_BATCH = 2048
# on the CPU, convolutions' activations make big batches cost peak memory (cnn: +100 MB at
# 2048) for no speed; dense models gain from them (softmax, 2k test rows: 2.2 -> 1.6 ms)
CPU_CONV_EVAL_BATCH = 512


def resolve_device(name: str) -> torch.device:
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'' if n == 1 else 's'})"


def make_optimizer(cfg: TrainConfig, params, capturable: bool = False) -> torch.optim.Optimizer:
    """The optimizer ``cfg`` names, fused (one kernel for all parameters) where torch has it:
    the per-parameter Python loop costs as much as a small model's forward pass.
    ``capturable``: Adam's step counter on the device, so a CUDA graph can hold its step."""
    import torch

    params = list(params)
    if cfg.optimizer == "scratch-sgd":  # the lessons' own update: a Python loop over the parameters
        from dltui.models.scratch import ScratchSGD

        return ScratchSGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer in ("sgd", "momentum"):
        cls, kw = torch.optim.SGD, {"momentum": cfg.momentum}
    else:
        cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        kw = {"capturable": True} if capturable else {}
    try:
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device without fused kernels
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)


def grad_clearer(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """``optimizer.zero_grad(set_to_none=True)`` without its wrappers (a profiler range and
    a torch._dynamo "disable" guard): 0.2 us instead of 7.7 us per step, ~2.5 % of a
    softmax step on the CPU."""
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def clear() -> None:
        for p in params:
            p.grad = None

    return clear


@dataclass
class Evaluation:
    loss: float
    acc: float | None
    y_pred: torch.Tensor
    confidence: torch.Tensor
    confusion: list[list[int]] | None


def evaluate(
    model: nn.Module, data: Data, x: torch.Tensor, y: torch.Tensor, task: Task, transform, amp: bool = False
) -> Evaluation:
    """Whole-split evaluation in large batches under inference_mode; loss, predictions and
    confidences are computed once over all outputs (per batch they cost as much as a small
    model's forward pass), and the confusion matrix is counted on the device with bincount."""
    import torch

    model.eval()
    outs = []
    conv = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    step = CPU_CONV_EVAL_BATCH if conv and x.device.type == "cpu" else EVAL_BATCH
    with torch.inference_mode(), torch.autocast(x.device.type, torch.bfloat16, enabled=amp):
        for s in range(0, len(x), step):
            outs.append(model(transform(x[s : s + step])))
    model.train()
    with torch.inference_mode():
        out = torch.cat(outs).float()
        loss, y_pred, conf = task.score(out, y)
    acc = confusion = None
    if task.has_accuracy:
        k = len(data.classes)
        # per-step targets (B, T) count every step: a confusion of characters
        counts = torch.bincount(y.reshape(-1).long() * k + y_pred.reshape(-1), minlength=k * k).view(k, k)
        confusion = counts.tolist()
        acc = float(counts.diagonal().sum()) / max(y.numel(), 1)
    return Evaluation(float(loss), acc, y_pred.cpu(), conf.cpu(), confusion)


def linear_fit(model: nn.Module, data: Data) -> dict[str, Any]:
    """For data with a known line (extras true_w/true_b) or a point to predict at (the toys'
    x = 4) and a one-affine-map model (linreg, logreg, linreg-scratch): learned w, b beside
    the truth and least squares where the data has them, and the prediction there."""
    from dltui.data.toys import predict_at
    from dltui.models.scratch import affine

    if not {"true_w", "predict_at"} & data.extras.keys():
        return {}
    wb = affine(getattr(model, "_orig_mod", model))
    if wb is None:
        return {}
    w, b = wb
    fit = {"w": [round(v, 5) for v in w], "b": round(b, 5)}
    fit |= {k: data.extras[k] for k in ("true_w", "true_b", "lstsq_w", "lstsq_b") if k in data.extras}
    return fit | predict_at(data, w, b)


def diverged(epoch: int, window: torch.Tensor, first_step: int) -> None:
    """Raise Diverged for the first non-finite loss in ``window`` (steps from ``first_step``)."""
    import torch

    bad = (~torch.isfinite(window)).nonzero()
    # every loss finite but their sum overflowed: blame the largest
    i = int(bad[0]) if len(bad) else int(window.abs().argmax())
    raise Diverged(epoch, first_step + i + 1, float(window[i]))


def warm_up(
    model, optimizer, task: Task, gather, transform, x: torch.Tensor, y: torch.Tensor, bs: int, amp: bool
) -> None:
    """Compile the training and evaluation graphs before any epoch is timed. Gradients are
    computed and dropped; no optimizer step runs, so the weights are untouched."""
    import torch

    model.train()
    with torch.autocast(x.device.type, torch.bfloat16, enabled=amp):
        # the training input as the loop builds it: same strides, so the graph is reused
        out = model(gather(torch.arange(min(bs, len(x)), device=x.device)))
    task.loss(out.float(), y[:bs]).backward()
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    with torch.inference_mode(), torch.autocast(x.device.type, torch.bfloat16, enabled=amp):
        model(transform(x[:EVAL_BATCH]))
    model.train()
