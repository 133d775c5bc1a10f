"""The training step as one CUDA graph: gather, forward, loss, backward and optimizer step
captured once, then replayed per batch with one copy of the batch's row indices.

Small models on a GPU are launch-bound: their kernels take microseconds, Python and the
launches do not. Replaying a captured step removes both (a bare loop measured 9-10x
faster on an H100 that way). What cannot be captured stays eager, said in one line:
packed sequences (their lengths go to the host every batch), ``--compile`` (it captures
its own), schedules and live learning-rate changes with an optimizer whose rate is baked
into the captured kernels, the CPU. The last, partial batch of an epoch runs eagerly, so
the epoch's metrics stay exact; loss sums and correct counts accumulate on the device
inside the graph and reach the host only when an event is due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from dltui.config import TrainConfig

WARMUP_STEPS = 3  # eager steps on a side stream before capture: lazy optimizer state, cuDNN choices


def plan(cfg: TrainConfig, device_type: str, kind: str, distributed: bool = False) -> tuple[bool, str]:
    """Whether this run's training step is captured, and, when not, why (one line)."""
    if device_type != "cuda":
        return False, "not on CUDA"
    if not cfg.graph:
        return False, "--no-graph"
    if distributed:
        return False, "data-parallel runs keep DDP's own gradient hooks"
    if cfg.compile:
        return False, "--compile captures its own graphs"
    if kind == "sequence":
        return False, "packed sequences send their lengths to the host every batch"
    if cfg.schedule != "constant" or cfg.warmup:
        return False, f"--schedule {cfg.schedule} changes the learning rate the captured step would bake in"
    if cfg.optimizer == "scratch-sgd":
        return False, "the lessons' scratch-sgd is a Python loop kept as written"
    return True, ""


def batches(n: int, bs: int) -> tuple[int, int]:
    """(full batches, rows of the last partial batch or 0) of an epoch of ``n`` rows: the
    full ones replay the graph, the partial one runs eagerly."""
    return n // bs, n % bs


@dataclass
class Step:
    """A captured training step and the device tensors it reads and writes."""

    graph: Any  # torch.cuda.CUDAGraph
    idx: torch.Tensor  # (bs,) int64: copy a batch's row indices here, then replay
    loss_sum: torch.Tensor  # float64 scalar: sum over replays of batch loss x batch size
    correct: torch.Tensor  # int64 scalar: correct predictions over replays

    def run(self, idx: torch.Tensor) -> None:
        self.idx.copy_(idx, non_blocking=True)
        self.graph.replay()

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()


def capture(
    model: Any,
    optimizer: Any,
    gather: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    predict: Callable[[torch.Tensor], torch.Tensor] | None,
    warmup_idx: list[torch.Tensor],
    amp: bool,
    clip: float | None,
) -> Step:
    """Warm up on a side stream with real training steps (``warmup_idx``: full batches of
    this epoch, so they count as trained), then capture one step. Raises whatever torch
    raises when the model cannot be captured; the caller falls back to eager."""
    import torch

    bs = len(warmup_idx[0])
    device = y.device
    params = [p for g in optimizer.param_groups for p in g["params"]]
    static_idx = torch.zeros(bs, dtype=torch.long, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)

    def step() -> None:
        xb = gather(static_idx)
        yb = y.index_select(0, static_idx)
        with torch.autocast(device.type, torch.bfloat16, enabled=amp, cache_enabled=False):
            out = model(xb)
        out = out.float()
        loss = loss_fn(out, yb)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
        optimizer.step()
        loss_sum.add_(loss.detach().double() * bs)
        if predict is not None:
            correct.add_((predict(out.detach()) == yb).sum())

    def warm_up() -> None:
        for idx in warmup_idx:
            static_idx.copy_(idx)
            optimizer.zero_grad(set_to_none=True)
            step()
        optimizer.zero_grad(set_to_none=True)  # backward inside the graph allocates the grads it writes

    return Step(record(step, warm_up, device), static_idx, loss_sum, correct)


def record(step: Callable[[], None], warm_up: Callable[[], None], device: torch.device) -> Any:
    """PyTorch's whole-network capture: warm up on a side stream, then capture ``step``."""
    import torch

    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        warm_up()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph
