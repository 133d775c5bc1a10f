"""The training loop. Both faces call :func:`train`; it reports through one callback.

Hot-loop rules: whole splits live on the device as stored (uint8 images); batches are
index gathers from a per-epoch permutation, scaled on the device; losses and predictions
stay on the device and cross to the host only when an event is due (a few per second)
and at epoch end.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltui.engine import checkpoint as ckpt_io
from dltui.engine import rundir
from dltui.engine.events import (
    BatchProgressed,
    Callback,
    EpochEnded,
    EvaluationReady,
    RunFailed,
    RunFinished,
    RunStarted,
    RunStopped,
    RunSummary,
)
from dltui.engine.task import Task
from dltui.errors import Diverged, DltuiError, StorageError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dltui.config import TrainConfig
    from dltui.data import Data

PROGRESS_INTERVAL_S = 0.25  # at most ~4 progress events per second
SAMPLE_SIZE = 48  # test items the prediction sampler gets each epoch
EVAL_BATCH = 2048
# on the CPU, convolutions' activations make big batches cost peak memory (cnn: +100 MB at
# 2048) for no speed; dense models gain from them (softmax, 2k test rows: 2.2 -> 1.6 ms)
CPU_CONV_EVAL_BATCH = 512


def default_threads() -> int:
    """Torch threads for training: every core this process may use but one, which is left to
    the UI thread and the OS. On a 2-core machine that is 1: intra-op threads barely help the
    small models here, and an OpenMP team that loses a core to another thread stalls at every
    barrier (measured: 2.5x slower epochs), while one thread keeps a steady pace."""
    import os

    import torch

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), cores - 1))


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


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    """The optimizer ``cfg`` names, fused (one kernel for all parameters) where torch has it:
    the per-parameter Python loop costs as much as a small model's forward pass."""
    import torch

    params = list(params)
    if cfg.optimizer in ("sgd", "momentum"):
        cls, kw = torch.optim.SGD, {"momentum": cfg.momentum}
    else:
        cls, kw = (torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW), {}
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
    """For the synthetic linear set with linreg: the learned w, b beside the truth."""
    from torch import nn

    if "true_w" not in data.extras or not isinstance(model, nn.Sequential) or len(model) != 1:
        return {}
    layer = model[0]
    return {
        "w": [round(v, 5) for v in layer.weight.detach().cpu().view(-1).tolist()],
        "b": round(float(layer.bias.detach().cpu()), 5),
        "true_w": data.extras["true_w"],
        "true_b": data.extras["true_b"],
    }


class _Stopped(Exception):
    pass


class _WriteFailed(StorageError):
    """An epoch's files could not be written; that epoch and later ones are not on disk."""

    def __init__(self, message: str, epoch: int):
        super().__init__(message)
        self.epoch = epoch


def _diverged(epoch: int, window: torch.Tensor, first_step: int) -> None:
    """Raise Diverged for the first non-finite loss in ``window`` (steps from ``first_step``)."""
    import torch

    bad = (~torch.isfinite(window)).nonzero()
    # every loss finite but their sum overflowed: blame the largest
    i = int(bad[0]) if len(bad) else int(window.abs().argmax())
    raise Diverged(epoch, first_step + i + 1, float(window[i]))


def _warm_up(
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


def train(
    cfg: TrainConfig,
    callback: Callback | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    run_dir: str | Path | None = None,
    checkpoint: dict[str, Any] | None = None,
    threads: int | None = None,
) -> RunFinished | RunStopped | RunFailed:
    """Train ``cfg`` to completion, a stop request, or a failure; return the final event.

    ``checkpoint`` (from rundir.load_checkpoint) resumes: model, optimizer, completed epochs
    and RNG state are restored and ``run_dir`` is appended to. User-caused problems
    (missing data, divergence, bad checkpoint) end in RunFailed; bugs propagate after a
    RunFailed has been reported.
    """
    emit = callback or (lambda e: None)
    stop = should_stop or (lambda: False)
    t_start = time.perf_counter()
    start_epoch = checkpoint["epoch"] if checkpoint else 0
    history: list[dict[str, Any]] = list(checkpoint.get("history") or [])[:start_epoch] if checkpoint else []
    state: dict[str, Any] = {
        "run_dir": str(run_dir or ""),
        "history": history,
        "last": None,
        "samples": 0,
        "train_s": 0.0,
        "lock": None,
        "writing": False,
        "events": None,  # the run's events.jsonl, once its directory exists
        "cfg": cfg,
    }

    def summary() -> RunSummary:
        accs = [h["test_acc"] for h in history if h.get("test_acc") is not None]
        losses = [h["test_loss"] for h in history]
        return RunSummary(
            epochs_done=len(history),
            final=state["last"],
            best_test_acc=max(accs) if accs else None,
            best_test_loss=min(losses) if losses else None,
            wall_s=time.perf_counter() - t_start,
            samples_per_s=state["samples"] / state["train_s"] if state["train_s"] else 0.0,
            run_dir=state["run_dir"],
            start_epoch=start_epoch,
        )

    def finish(event, status: str):
        if state["writing"]:  # only once the run wrote its first files: a refused resume changes nothing
            error = event.message if isinstance(event, RunFailed) else None
            info = summary_file(status, summary(), state["cfg"], error)
            with contextlib.suppress(OSError):
                rundir.write_json(Path(state["run_dir"]) / "summary.json", info)
            if state["events"] is not None:
                state["events"].write(status, summary=info, **({"message": error} if error else {}))
                state["events"].close()
        emit(event)
        return event

    try:
        _run(cfg, emit, stop, state, checkpoint, threads, summary)
    except _Stopped:
        return finish(RunStopped(summary()), "stopped")
    except DltuiError as exc:
        if isinstance(exc, _WriteFailed):  # epochs from the failed one on exist only in memory
            history[:] = [h for h in history if h["epoch"] < exc.epoch]
            if state["last"] is not None and state["last"].epoch >= exc.epoch:
                state["last"] = None
        return finish(RunFailed(str(exc), exc.exit_code, summary()), "failed")
    except BaseException as exc:
        finish(RunFailed(f"internal error: {type(exc).__name__}: {exc}", 1, summary()), "failed")
        raise
    else:
        return finish(RunFinished(summary()), "finished")
    finally:
        if state["lock"] is not None:
            state["lock"].release()


def summary_file(status: str, s: RunSummary, cfg: TrainConfig, error: str | None = None) -> dict[str, Any]:
    """summary.json: rewritten after every epoch's files (status running) and at the end, so
    it always agrees with metrics.csv and model.pt."""
    info: dict[str, Any] = {
        "status": status,
        "epochs_done": s.epochs_done,
        "epochs": cfg.epochs,
        "resumed_from": s.start_epoch,
        "best_test_acc": s.best_test_acc,
        "best_test_loss": s.best_test_loss,
        "wall_s": round(s.wall_s, 3),
        "samples_per_s": round(s.samples_per_s, 1),
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }
    if error:
        info["error"] = error
    return info


def _logged(emit: Callback, log: rundir.EventLog) -> Callback:
    """``emit`` that first appends each event to events.jsonl, for viewers in other
    processes (evaluations are announced by the writer, once their file is on disk)."""
    from dataclasses import asdict

    def record(event) -> None:
        if isinstance(event, RunStarted):
            d, spec = event.data, event.data.spec
            log.write(
                "started",
                config=event.config.to_dict(),
                dataset={
                    "name": spec.name,
                    "task": spec.task,
                    "kind": spec.kind,
                    "input_shape": spec.input_shape,
                    "classes": spec.classes,
                    "scale": d.scale,
                    "train_size": len(d.y_train),
                    "test_size": len(d.y_test),
                    "extras": {k: v for k, v in d.extras.items() if k in ("true_w", "true_b")},
                },
                n_params=event.n_params,
                device=event.device,
                start_epoch=event.start_epoch,
                steps_per_epoch=event.steps_per_epoch,
                notes=event.notes,
                pid=os.getpid(),
                host=socket.gethostname(),
            )
        elif isinstance(event, BatchProgressed):
            log.write("progress", **asdict(event))
        elif isinstance(event, EpochEnded):
            log.write("epoch", **asdict(event))
        emit(event)

    return record


@contextlib.contextmanager
def _storage(run_dir: Path, doing: str) -> Iterator[None]:
    """OSError while writing the run directory -> StorageError in one line."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or exc
        raise StorageError(f"cannot {doing} in '{run_dir}' ({reason}); files already there are kept") from None


def _run(cfg, emit, stop, state, checkpoint, threads, summary) -> None:
    import torch

    from dltui import data as datasets
    from dltui.config import check_batch_size
    from dltui.models import build_model, count_params

    resumed = state["run_dir"]
    if resumed:  # before anything else: a directory another process writes is refused at once
        state["lock"] = rundir.lock_run_dir(Path(resumed))
    n_threads = threads or cfg.threads
    if n_threads:
        torch.set_num_threads(n_threads)
    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    # record what is applied, not what was asked for
    notes = [
        f"--{f} has no effect on the CPU; recorded as off" for f in ("amp", "compile") if getattr(cfg, f) and not cuda
    ]
    cfg = replace(cfg, threads=torch.get_num_threads(), amp=cfg.amp and cuda, compile=cfg.compile and cuda)
    state["cfg"] = cfg
    data = datasets.load(cfg)
    check_batch_size(cfg.batch_size, len(data.x_train), cfg.dataset)
    task = Task(data.task)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data.spec, cfg.init).to(device)
    channels_last = cuda and data.spec.kind == "image" and len(data.spec.input_shape) == 3
    if cuda:
        torch.backends.cudnn.benchmark = True
        if channels_last:
            model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model.parameters())
    start_epoch = 0
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    if checkpoint is not None:  # every tensor checked before any is used
        where = Path(resumed or ".") / ckpt_io.CHECKPOINT
        ckpt_io.check_fits(checkpoint, model, optimizer, where, f"{cfg.model} on {cfg.dataset}")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        start_epoch = checkpoint["epoch"]
        rng = checkpoint.get("rng")
        if rng is not None and not cuda:
            gen.set_state(rng)
    if cfg.compile:
        model = torch.compile(model)

    if resumed:
        run_dir = Path(resumed)
    else:
        run_dir, state["lock"] = rundir.open_run_dir(cfg)
    state["run_dir"] = str(run_dir)
    sample = torch.randperm(len(data.x_test), generator=torch.Generator().manual_seed(cfg.seed))[:SAMPLE_SIZE].tolist()
    with _storage(run_dir, "write the run's first files"):
        state["writing"] = True
        rundir.write_config(run_dir, cfg)
        metrics = rundir.MetricsFile(run_dir, state["history"])
        rundir.write_json(run_dir / "summary.json", summary_file("running", summary(), cfg))
        rundir.write_testset(run_dir, data.x_test, data.y_test, sample)
        log = state["events"] = rundir.EventLog(run_dir)
    emit = _logged(emit, log)

    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    transform = data.batch_transform(device)  # evaluation; training gathers into reused buffers
    gather = data.batch_gather(x_train, cfg.batch_size, channels_last)
    if channels_last:
        base = transform
        transform = lambda xb: base(xb).contiguous(memory_format=torch.channels_last)  # noqa: E731
    n, bs = len(x_train), cfg.batch_size
    steps = math.ceil(n / bs)
    emit(
        RunStarted(
            cfg, data, count_params(model), describe_device(device), str(run_dir), start_epoch, steps, tuple(notes)
        )
    )

    amp = cfg.amp
    if cfg.compile:
        _warm_up(model, optimizer, task, gather, transform, x_train, y_train, bs, amp)
    clear_grads = grad_clearer(optimizer)
    # per-step sizes weight the per-step mean losses into the epoch's mean
    sizes = torch.tensor([min(bs, n - i * bs) for i in range(steps)], dtype=torch.float64, device=device)
    total_steps = (cfg.epochs - start_epoch) * steps
    done_steps = 0
    model.train()

    writer = rundir.Writer()  # the run's files are written beside training, in order
    try:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=gen, device=device)
            y_perm = y_train.index_select(0, perm)
            # values stay on the device, one tensor per step, until an event is due
            losses: list[torch.Tensor] = []
            outputs: list[torch.Tensor] = []  # detached logits: argmax once per epoch, not per step
            next_event = time.monotonic() + PROGRESS_INTERVAL_S
            last_step, last_t = 0, t0
            for i, (idx, yb) in enumerate(zip(perm.split(bs), y_perm.split(bs), strict=True)):
                xb = gather(idx)
                if amp:
                    with torch.autocast(device.type, torch.bfloat16):
                        out = model(xb).float()
                else:
                    out = model(xb)
                loss = task.loss(out, yb)
                clear_grads()
                loss.backward()
                optimizer.step()
                loss = loss.detach()
                losses.append(loss)
                if task.has_accuracy:
                    outputs.append(out.detach())
                if stop():
                    raise _Stopped
                if time.monotonic() >= next_event:
                    writer.check()
                    window = torch.stack(losses[last_step:])
                    mean = float(window.double().mean())
                    if not math.isfinite(mean):
                        _diverged(epoch, window, last_step)
                    now = time.perf_counter()
                    done_steps += i + 1 - last_step
                    rate = (i + 1 - last_step) * bs / max(now - last_t, 1e-9)
                    per_step = (state["train_s"] + now - t0) / max(done_steps, 1)
                    eta = per_step * (total_steps - done_steps)
                    emit(BatchProgressed(epoch, cfg.epochs, i + 1, steps, mean, rate, eta))
                    last_step, last_t = i + 1, now
                    next_event = time.monotonic() + PROGRESS_INTERVAL_S
            done_steps += steps - last_step
            loss_vec = torch.stack(losses)
            train_loss = float((loss_vec.double() * sizes).sum()) / n
            if not math.isfinite(train_loss):
                _diverged(epoch, loss_vec, 0)
            train_acc = None
            if task.has_accuracy:
                train_acc = float((task.predict(torch.cat(outputs)) == y_perm).sum()) / y_perm.numel()
            train_s = time.perf_counter() - t0
            ev = evaluate(model, data, x_test, y_test, task, transform, amp)
            seconds = time.perf_counter() - t0
            state["samples"] += n
            state["train_s"] += train_s
            ended = EpochEnded(
                epoch,
                cfg.epochs,
                train_loss,
                train_acc,
                ev.loss,
                ev.acc,
                optimizer.param_groups[0]["lr"],
                seconds,
                n / train_s,
                linear_fit(getattr(model, "_orig_mod", model), data),
            )
            row = {k: getattr(ended, k) for k in rundir.METRIC_COLUMNS}
            state["history"].append(row)
            state["last"] = ended
            checkpoint_state = rundir.host_copy(
                {
                    "model": getattr(model, "_orig_mod", model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "config": cfg.to_dict(),
                    "epoch": epoch,
                    "rng": gen.get_state() if not cuda else None,
                    "history": list(state["history"]),
                }
            )

            info = summary_file("running", summary(), cfg)

            def write_epoch(
                row=row,
                ckpt=checkpoint_state,
                confusion=ev.confusion,
                info=info,
                y_pred=ev.y_pred,
                confidence=ev.confidence,
            ) -> None:
                try:
                    # metrics and summary first: they may run one epoch ahead of model.pt, never behind
                    metrics.append(row)
                    rundir.write_json(run_dir / "summary.json", info, durable=False)  # finish()'s is durable
                    ckpt_io.save_checkpoint(run_dir, ckpt)
                    if confusion is not None:
                        rundir.write_confusion(run_dir, data.classes, confusion)
                    rundir.write_evaluation(run_dir, row["epoch"], y_pred, confidence, confusion)
                    log.write("evaluation", epoch=row["epoch"])
                except OSError as exc:  # disk full, directory removed, ...
                    raise _WriteFailed(
                        f"cannot write epoch {row['epoch']}'s files to {run_dir} "
                        f"({exc.strerror or exc}); epochs up to {row['epoch'] - 1} and their checkpoint are kept",
                        row["epoch"],
                    ) from None

            writer.submit(write_epoch)
            emit(ended)
            emit(EvaluationReady(epoch, ev.confusion, data.y_test, ev.y_pred, ev.confidence, sample))
    finally:
        failed = writer.close()  # every epoch's files are on disk before train() reports
        if failed is not None:  # even when stopping or diverging: a lost write is what to report
            raise failed
