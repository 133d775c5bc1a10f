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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltui.engine import callbacks, graphs, rundir
from dltui.engine import checkpoint as ckpt_io
from dltui.engine.distributed import SYNC_EVERY, Distributed, RankLost
from dltui.engine.events import (
    BatchProgressed,
    Callback,
    EpochEnded,
    EvaluationReady,
    RunFailed,
    RunFinished,
    RunNoted,
    RunStarted,
    RunStopped,
    RunSummary,
)
from dltui.engine.fastpath import bare_step, skip_dynamo_guards
from dltui.engine.steps import (  # noqa: F401 (re-exported: the loop's pieces by their old address)
    CPU_CONV_EVAL_BATCH,
    EVAL_BATCH,
    Evaluation,
    describe_device,
    diverged,
    evaluate,
    grad_clearer,
    linear_fit,
    make_optimizer,
    resolve_device,
    warm_up,
)
from dltui.engine.task import Task
from dltui.errors import ConfigError, Diverged, DltuiError, StorageError
from dltui.sysinfo import choose_threads, cpu_has_amx

if TYPE_CHECKING:
    import torch

    from dltui.config import TrainConfig

PROGRESS_INTERVAL_S = 0.25  # at most ~4 progress events per second
SAMPLE_SIZE = 48  # test items the prediction sampler gets each epoch


class _Stopped(Exception):
    pass


class _WriteFailed(StorageError):
    """An epoch's files could not be written; that epoch and later ones are not on disk."""

    def __init__(self, message: str, epoch: int):
        super().__init__(message)
        self.epoch = epoch


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
    run = _Training(cfg, callback or (lambda e: None), should_stop or (lambda: False), run_dir, checkpoint)
    try:
        run.prepare(threads)
        run.fit()
    except _Stopped:
        return run.finish(RunStopped(run.summary()), "stopped")
    except DltuiError as exc:
        if isinstance(exc, _WriteFailed):  # epochs from the failed one on exist only in memory
            run.forget_from(exc.epoch)
        return run.finish(RunFailed(str(exc), exc.exit_code, run.summary()), "failed")
    except BaseException as exc:
        run.finish(RunFailed(f"internal error: {type(exc).__name__}: {exc}", 1, run.summary()), "failed")
        raise
    else:
        return run.finish(RunFinished(run.summary()), "finished")
    finally:
        if run.lock is not None:
            run.lock.release()
        if run.dist is not None:
            run.dist.close()


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
        "best_epoch": s.best_epoch,
        "monitor": s.monitor,
        "best_value": s.best_value,
        "wall_s": round(s.wall_s, 3),
        "samples_per_s": round(s.samples_per_s, 1),
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }
    if s.stop_reason:
        info["stop_reason"] = s.stop_reason
    if s.rollbacks:
        info["rollbacks"] = s.rollbacks
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
                    "extras": {
                        k: v for k, v in d.extras.items() if k in ("true_w", "true_b", "vocab", "feature_names")
                    },
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
        elif isinstance(event, RunNoted):
            log.write("note", **asdict(event))
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


def validation_split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic (train, validation) row indices carved from a training split of ``n``:
    a seeded permutation, its first round(n * fraction) rows held out."""
    import torch

    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919))  # not the data split's stream
    n_val = round(n * fraction)
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def _agreed(dist: Distributed, stop: Callable[[], bool]) -> Callable[[], bool]:
    """``stop`` as every rank's shared answer, asked every SYNC_EVERY steps (the ranks
    take the same steps, so they ask together): a rank that stopped alone would leave the
    others waiting in the next gradient all-reduce."""
    steps = iter(range(1, 1 << 62))

    def agreed() -> bool:
        return next(steps) % SYNC_EVERY == 0 and dist.any(stop())[0]

    return agreed


class _Training:
    """One run, as named steps: ``prepare`` (data, model, run directory), then per epoch
    ``train_epoch`` (the hot loop), ``evaluate_epoch`` (validation and test) and
    ``end_epoch`` (files, schedule, best checkpoint, early stopping, live requests).
    Each concern past the hot loop is one small object from ``callbacks``."""

    def __init__(self, cfg, emit, stop, run_dir, checkpoint) -> None:
        self.cfg = cfg
        self.emit = emit
        self.stop = stop
        self.checkpoint = checkpoint
        self.t_start = time.perf_counter()
        self.start_epoch = checkpoint["epoch"] if checkpoint else 0
        self.history: list[dict[str, Any]] = (
            list(checkpoint.get("history") or [])[: self.start_epoch] if checkpoint else []
        )
        self.resumed = str(run_dir or "")
        self.run_dir = Path(run_dir) if run_dir else None
        self.last: EpochEnded | None = None
        self.samples = 0
        self.train_s = 0.0
        self.lock = None
        self.writing = False
        self.log: rundir.EventLog | None = None
        self.best: callbacks.BestEpoch | None = None
        self.early: callbacks.EarlyStopping | None = None
        self.rollback = callbacks.Rollback(cfg.on_diverge == "rollback")
        self.stop_reason: str | None = None
        self.stop_after_epoch = False
        self.thread_note = ""
        self.dist: Distributed | None = None
        self.writes = True

    # --- the summary every ending reports ---

    def summary(self) -> RunSummary:
        best = self.best.row if self.best is not None else None
        return RunSummary(
            epochs_done=len(self.history),
            final=self.last,
            best_test_acc=best.get("test_acc") if best else None,
            best_test_loss=best.get("test_loss") if best else None,
            wall_s=time.perf_counter() - self.t_start,
            samples_per_s=self.samples / self.train_s if self.train_s else 0.0,
            run_dir=str(self.run_dir or ""),
            start_epoch=self.start_epoch,
            best_epoch=self.best.epoch if self.best else None,
            monitor=self.best.monitor.name if self.best else None,
            best_value=self.best.value if self.best else None,
            stop_reason=self.stop_reason,
            rollbacks=self.rollback.used,
        )

    def finish(self, event, status: str):
        if self.writing:  # only once the run wrote its first files: a refused resume changes nothing
            error = event.message if isinstance(event, RunFailed) else None
            info = summary_file(status, self.summary(), self.cfg, error)
            if isinstance(event, RunFailed):
                info["exit_code"] = event.exit_code  # 3: diverged, 7: a rank lost, ...
            with contextlib.suppress(OSError):
                rundir.write_json(self.run_dir / "summary.json", info)
            if self.log is not None:
                self.log.write(status, summary=info, **({"message": error} if error else {}))
                self.log.close()
        self.emit(event)
        return event

    def forget_from(self, epoch: int) -> None:
        self.history[:] = [h for h in self.history if h["epoch"] < epoch]
        if self.last is not None and self.last.epoch >= epoch:
            self.last = None

    # --- prepare ---

    def prepare(self, threads: int | None) -> None:
        import torch

        from dltui.config import check_batch_size
        from dltui.data import sources
        from dltui.models import build_model, count_params
        from dltui.models.heads import apply_dropout

        cfg = self.cfg
        dist = self.dist = Distributed.start(cfg.device)  # None for a single process
        self.writes = dist is None or dist.writes
        if self.resumed and self.writes:  # before anything else: a directory another process writes is refused
            self.lock = rundir.lock_run_dir(Path(self.resumed))
        n_threads = threads or cfg.threads
        if not n_threads:
            n_threads, why = choose_threads()
            self.thread_note = f"threads: {n_threads} ({why}; --threads overrides)"
        torch.set_num_threads(n_threads)
        device = self.device = dist.device if dist else resolve_device(cfg.device)
        cuda = device.type == "cuda"
        # record what is applied, not what was asked for
        notes = ["--compile has no effect on the CPU; recorded as off"] if cfg.compile and not cuda else []
        if self.thread_note and not cuda:
            notes.append(self.thread_note)
        amp = cfg.amp and (cuda or cpu_has_amx())
        if cfg.amp and not amp:
            notes.append("--amp: bf16 is slower than float32 on a CPU without AMX; recorded as off")
        cfg = self.cfg = replace(cfg, threads=torch.get_num_threads(), amp=amp, compile=cfg.compile and cuda)
        data = self.data = sources.load(cfg)
        notes += list(data.extras.get("notes") or [])
        x_train, y_train = data.x_train, data.y_train
        self.x_val = self.y_val = None
        if cfg.val_fraction:
            keep, held = validation_split(len(y_train), cfg.val_fraction, cfg.seed)
            self.x_val, self.y_val = x_train[held].to(device), y_train[held].to(device)
            x_train, y_train = x_train[keep], y_train[keep]
            why = ", --early-stop chooses by it" if cfg.early_stop else ""
            notes.insert(
                0,
                f"validation: {len(held):,} of {len(data.y_train):,} training rows held out "
                f"(--val-fraction {cfg.val_fraction:g}{why}); best.pt is chosen by {cfg.monitor}, never by test",
            )
        check_batch_size(cfg.batch_size, len(x_train), data.spec.name)
        bs, n = cfg.batch_size, len(x_train)
        if dist is not None:  # --batch-size is the global batch: each rank takes its share
            if bs % dist.world:
                raise ConfigError(
                    "batch_size", f"{bs} does not split over {dist.world} ranks (use a multiple of {dist.world})"
                )
            bs, n = bs // dist.world, (n - n % dist.world) // dist.world
            notes.append(
                f"data-parallel: {dist.world} ranks x batch {bs} = global batch {cfg.batch_size} "
                f"({'nccl' if cuda else 'gloo'}); rank 0 writes the run directory"
            )
        self.task = Task(data.task)

        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model, data.spec, cfg.init)
        if not any(p.requires_grad for p in model.parameters()):
            raise ConfigError("model", f"{cfg.model_label} has no trainable parameters: there is nothing to train")
        if cfg.dropout:
            apply_dropout(model, cfg.dropout, cfg.model)
        model = model.to(device)
        # channels-last convolutions: measured on the CPU (1 thread, batch 64, MNIST-sized):
        # cnn 1.63x, inception 1.43x, resnet 1.31x, lenet 1.05x faster per epoch
        conv = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        self.channels_last = conv and data.spec.kind == "image" and len(data.spec.input_shape) == 3
        if cuda:
            torch.backends.cudnn.benchmark = True
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if not cfg.compile:
            import torch.optim.lr_scheduler as schedulers

            skip_dynamo_guards(torch.optim.Optimizer, schedulers.LRScheduler)
        self.graphed, why = graphs.plan(cfg, device.type, data.spec.kind, dist is not None)
        if cuda:
            notes.append(
                "CUDA graph: the training step is captured and replayed; each epoch's last partial batch runs eagerly"
                if self.graphed
                else f"CUDA graph: off ({why})"
            )
        self.graph_step: graphs.Step | None = None
        self.optimizer = make_optimizer(cfg, model.parameters(), capturable=self.graphed)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        if self.checkpoint is not None:  # every tensor checked before any is used
            where = Path(self.resumed or ".") / ckpt_io.CHECKPOINT
            ckpt_io.check_fits(self.checkpoint, model, self.optimizer, where, f"{cfg.model} on {cfg.dataset}")
            model.load_state_dict(self.checkpoint["model"])
            self.optimizer.load_state_dict(self.checkpoint["optimizer"])
            saved_lr = float(self.optimizer.param_groups[0]["lr"])
            for group in self.optimizer.param_groups:  # the schedule below replays from --lr (maybe a new one)
                group["lr"] = cfg.lr
                for key in ("initial_lr", "max_lr", "min_lr"):
                    group.pop(key, None)
            rng = self.checkpoint.get("rng")
            if rng is not None and not cuda:
                self.gen.set_state(rng)
        self.raw_model = model
        if dist is not None:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(model, device_ids=[device] if cuda else None)
        self.model = torch.compile(model) if cfg.compile else model

        self.bs = bs
        self.steps = math.ceil(n / bs)
        self.schedule = callbacks.LrSchedule(cfg, self.optimizer, self.steps, self.start_epoch)
        # a live change (or a rollback's halving) lives in the optimizer, not in the settings: a
        # steady-rate run goes on at it unless this resume asked for another --lr
        steady = cfg.schedule == "constant" and not cfg.warmup
        if (
            self.checkpoint is not None
            and steady
            and not math.isclose(saved_lr, self.schedule.lr, rel_tol=1e-6)
            and math.isclose(cfg.lr, float(self.checkpoint["config"].get("lr") or 0), rel_tol=1e-9)
        ):
            self.schedule.scale(saved_lr / self.schedule.lr)
            notes.append(f"continuing at lr {saved_lr:.4g}, the rate the run had when it stopped (--lr sets another)")
        if self.x_val is not None:
            monitor = callbacks.Monitor(cfg.monitor, cfg.min_delta)
            self.best = callbacks.BestEpoch(monitor, self.history)
            if cfg.early_stop:
                self.early = callbacks.EarlyStopping(monitor, cfg.early_stop, self.history)

        self.sample = torch.randperm(len(data.x_test), generator=torch.Generator().manual_seed(cfg.seed))[
            :SAMPLE_SIZE
        ].tolist()
        if self.writes:
            if self.resumed:
                run_dir = Path(self.resumed)
            else:
                run_dir, self.lock = rundir.open_run_dir(cfg)
            self.run_dir = run_dir
            with _storage(run_dir, "write the run's first files"):
                self.writing = True
                rundir.write_config(run_dir, cfg)
                self.metrics = rundir.MetricsFile(run_dir, self.history)
                rundir.write_json(run_dir / "summary.json", summary_file("running", self.summary(), cfg))
                rundir.write_testset(run_dir, data.x_test, data.y_test, self.sample)
                self.log = rundir.EventLog(run_dir)
            self.emit = _logged(self.emit, self.log)
            self.control = callbacks.Control(run_dir)
        else:  # other ranks train and agree; rank 0 alone writes and reports
            run_dir = Path(self.resumed or ".")
            self.emit = lambda event: None
            self.control = None

        self.x_train, self.y_train = x_train.to(device), y_train.to(device)
        self.x_test, self.y_test = data.x_test.to(device), data.y_test.to(device)
        self.transform = data.batch_transform(device)  # evaluation; training gathers into reused buffers
        gather = data.batch_gather(self.x_train, bs, self.channels_last)
        if cfg.augment:
            from dltui.data.augment import augmenter

            augment = augmenter(data.spec.augmentations, data.spec.input_shape, device, self.gen)
            plain = gather
            gather = lambda idx: augment(plain(idx))  # noqa: E731
            notes.append(f"augmentation: {' + '.join(data.spec.augmentations)} on training batches")
        self.gather = gather
        if self.channels_last:
            base = self.transform
            self.transform = lambda xb: base(xb).contiguous(memory_format=torch.channels_last)  # noqa: E731
        self.loss = self.task.loss
        if cfg.label_smoothing:
            import torch.nn.functional as F

            s = cfg.label_smoothing
            self.loss = lambda out, y: F.cross_entropy(out, y, label_smoothing=s)  # noqa: E731
        self.amp = cfg.amp
        self.emit(
            RunStarted(
                cfg, data, count_params(model), describe_device(device), str(run_dir), self.start_epoch,
                self.steps, tuple(notes),
            )
        )  # fmt: skip
        if cfg.compile:
            warm_up(self.model, self.optimizer, self.task, self.gather, self.transform, self.x_train,
                     self.y_train, bs, self.amp)  # fmt: skip
        self.clear_grads = grad_clearer(self.optimizer)
        self.opt_step = self.optimizer.step if cfg.compile else bare_step(self.optimizer)
        # per-step sizes weight the per-step mean losses into the epoch's mean
        self.sizes = torch.tensor([min(bs, n - i * bs) for i in range(self.steps)], dtype=torch.float64, device=device)
        self.total_steps = (cfg.epochs - self.start_epoch) * self.steps
        self.done_steps = 0
        if self.rollback.enabled:
            self.rollback.remember(self.start_epoch, *self._states())

    def _states(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return rundir.host_copy(self.raw_model.state_dict()), rundir.host_copy(self.optimizer.state_dict())

    # --- the epochs ---

    def fit(self) -> None:
        writer = self.writer = rundir.Writer()  # the run's files are written beside training, in order
        try:
            epoch = self.start_epoch + 1
            while epoch <= self.cfg.epochs:
                try:
                    train_loss, train_acc, train_s = self.train_epoch(epoch)
                except Diverged as exc:
                    if not self.rollback.can():
                        raise
                    self._roll_back(exc)
                    continue
                except RuntimeError as exc:  # DDP's gradient all-reduce found a peer gone
                    if self.dist is None:
                        raise
                    raise RankLost.of(self.dist, exc) from None
                val, test = self.evaluate_epoch()
                if self.end_epoch(epoch, train_loss, train_acc, train_s, val, test):
                    break
                epoch += 1
        finally:
            failed = writer.close()  # every epoch's files are on disk before train() reports
            if failed is not None:  # even when stopping or diverging: a lost write is what to report
                raise failed

    def _roll_back(self, exc: Diverged) -> None:
        old = self.schedule.lr
        good = self.rollback.restore(self.raw_model, self.optimizer)
        self.schedule.scale(0.5)
        self.graph_step = None  # new optimizer state and a new lr: captured again
        self.emit(
            RunNoted(
                exc.epoch,
                f"diverged at epoch {exc.epoch}, step {exc.step}: rolled back to epoch {good}'s weights, "
                f"lr {old:.4g} -> {self.schedule.lr:.4g} (rollback {self.rollback.used} of {callbacks.MAX_ROLLBACKS})",
            )
        )

    def train_epoch(self, epoch: int) -> tuple[float, float | None, float]:
        """One pass over the training rows: the hot loop. Values stay on the device, one
        tensor per step, until an event is due."""
        import torch

        if self.graphed:
            return self._train_epoch_graphed(epoch)

        cfg, model, optimizer, task, gather = self.cfg, self.model, self.optimizer, self.task, self.gather
        opt_step = self.opt_step
        loss_fn, clear_grads, stop, bs, device = self.loss, self.clear_grads, self.stop, self.bs, self.device
        amp, clip, step_lr, steps, dist = self.amp, cfg.clip_grad, self.schedule.step, self.steps, self.dist
        params = [p for g in optimizer.param_groups for p in g["params"]] if clip else None
        t0 = self.t_epoch = time.perf_counter()
        perm = torch.randperm(len(self.y_train), generator=self.gen, device=device)
        if dist is not None:  # every rank draws the same permutation and takes its shard
            perm = dist.shard(perm)
            stop = _agreed(dist, stop)
        n = len(perm)
        y_perm = self.y_train.index_select(0, perm)
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
            loss = loss_fn(out, yb)
            clear_grads()
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
            opt_step()
            if step_lr is not None:
                step_lr()
            loss = loss.detach()
            losses.append(loss)
            if task.has_accuracy:
                outputs.append(out.detach())
            if stop():
                raise _Stopped
            if time.monotonic() >= next_event:
                self.writer.check()
                window = torch.stack(losses[last_step:])
                mean = float(window.double().mean())
                if not math.isfinite(mean) and dist is None:  # ranks agree on divergence at epoch end
                    diverged(epoch, window, last_step)
                now = time.perf_counter()
                self.done_steps += i + 1 - last_step
                rate = (i + 1 - last_step) * bs / max(now - last_t, 1e-9)
                per_step = (self.train_s + now - t0) / max(self.done_steps, 1)
                eta = per_step * (self.total_steps - self.done_steps)
                self.emit(BatchProgressed(epoch, cfg.epochs, i + 1, steps, mean, rate, eta))
                if dist is None:  # under torchrun, requests are shared once an epoch
                    self._obey(epoch, i + 1)
                last_step, last_t = i + 1, now
                next_event = time.monotonic() + PROGRESS_INTERVAL_S
        self.done_steps += steps - last_step
        loss_vec = torch.stack(losses)
        sums = torch.stack([(loss_vec.double() * self.sizes).sum(), loss_vec.new_zeros((), dtype=torch.float64)])
        if task.has_accuracy:
            sums[1] = (task.predict(torch.cat(outputs)) == y_perm).sum()
        if dist is not None:  # the epoch's metrics over every rank's rows
            dist.sum_(sums)
            n *= dist.world
        loss_sum, correct = sums.tolist()
        train_loss = loss_sum / n
        if not math.isfinite(train_loss):
            diverged(epoch, loss_vec, 0)
        train_acc = correct / (n * y_perm[0].numel()) if task.has_accuracy else None
        train_s = time.perf_counter() - t0
        self.samples += n
        self.train_s += train_s
        return train_loss, train_acc, train_s

    def _train_epoch_graphed(self, epoch: int) -> tuple[float, float | None, float]:
        """The epoch as replays of the captured step (see graphs.py); the step is captured
        at the first epoch's start, after a few real, counted warm-up steps, and again after
        anything replaced what it points at (a rollback, a live lr change)."""
        import torch

        cfg, bs, device, task = self.cfg, self.bs, self.device, self.task
        t0 = self.t_epoch = time.perf_counter()
        perm = torch.randperm(len(self.y_train), generator=self.gen, device=device)
        n = len(perm)
        full, rest = graphs.batches(n, bs)
        rows = perm[: full * bs].view(full, bs)
        done = 0
        if self.graph_step is None:
            warm = min(graphs.WARMUP_STEPS, full)
            try:
                self.graph_step = graphs.capture(
                    self.model, self.optimizer, self.gather, self.y_train, self.loss,
                    task.predict if task.has_accuracy else None, list(rows[:warm]), self.amp, cfg.clip_grad,
                )  # fmt: skip
            except Exception as exc:  # a model that cannot be captured trains eagerly, said once
                self.graphed = False
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
                self.emit(RunNoted(epoch, f"CUDA graph: capture failed ({first}); training eagerly"))
                return self.train_epoch(epoch)
            done = warm  # the warm-up steps trained on this epoch's first batches; their sums are in
        else:
            self.graph_step.reset()
        step = self.graph_step
        next_event = time.monotonic() + PROGRESS_INTERVAL_S
        for i in range(done, full):
            step.run(rows[i])
            if self.stop():
                raise _Stopped
            if time.monotonic() >= next_event:
                self.writer.check()
                mean = float(step.loss_sum) / ((i + 1) * bs)  # the epoch so far: one sync per event
                if not math.isfinite(mean):
                    raise Diverged(epoch, i + 1, mean)
                now = time.perf_counter()
                rate = (i + 1) * bs / max(now - t0, 1e-9)
                eta = (now - t0) / (i + 1) * (full - i - 1 + (cfg.epochs - epoch) * self.steps)
                self.emit(BatchProgressed(epoch, cfg.epochs, i + 1, self.steps, mean, rate, eta))
                self._obey(epoch, i + 1)
                next_event = time.monotonic() + PROGRESS_INTERVAL_S
        if rest:  # the partial batch, eagerly: every row counts once
            idx = perm[full * bs :]
            yb = self.y_train.index_select(0, idx)
            with torch.autocast(device.type, torch.bfloat16, enabled=self.amp):
                out = self.model(self.gather(idx))
            out = out.float()
            loss = self.loss(out, yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad:
                params = [p for g in self.optimizer.param_groups for p in g["params"]]
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad, foreach=True)
            self.optimizer.step()
            step.loss_sum.add_(loss.detach().double() * rest)
            if task.has_accuracy:
                step.correct.add_((task.predict(out.detach()) == yb).sum())
        loss_sum, correct = float(step.loss_sum), int(step.correct)
        train_loss = loss_sum / n
        if not math.isfinite(train_loss):
            raise Diverged(epoch, self.steps, train_loss)
        train_acc = correct / (n * self.y_train[0].numel()) if task.has_accuracy else None
        train_s = time.perf_counter() - t0
        self.done_steps += self.steps
        self.samples += n
        self.train_s += train_s
        return train_loss, train_acc, train_s

    def evaluate_epoch(self) -> tuple[Evaluation | None, Evaluation]:
        val = None
        if self.x_val is not None:
            val = self._evaluate(self.x_val, self.y_val)
        return val, self._evaluate(self.x_test, self.y_test)

    def _evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        dist = self.dist
        if dist is None:
            return evaluate(self.model, self.data, x, y, self.task, self.transform, self.amp)
        # each rank scores rows r, r + world, ...; loss sums and confusion counts are reduced,
        # predictions gathered, so every rank holds the same evaluation of the whole split
        import torch

        part = evaluate(self.raw_model, self.data, x[dist.rank :: dist.world], y[dist.rank :: dist.world],
                        self.task, self.transform, self.amp)  # fmt: skip
        m = len(range(dist.rank, len(y), dist.world))
        k = len(self.data.classes) if part.confusion is not None else 0
        sums = torch.zeros(1 + k * k, dtype=torch.float64, device=self.device)
        sums[0] = part.loss * m
        if k:
            sums[1:] = torch.tensor(part.confusion, dtype=torch.float64).view(-1)
        dist.sum_(sums)
        confusion = sums[1:].view(k, k).long().tolist() if k else None
        acc = float(sums[1:].view(k, k).diagonal().sum()) / max(y.numel(), 1) if k else None
        y_pred = dist.gather_rows(part.y_pred, len(y))
        confidence = dist.gather_rows(part.confidence, len(y))
        return Evaluation(float(sums[0]) / max(len(y), 1), acc, y_pred, confidence, confusion)

    def end_epoch(self, epoch, train_loss, train_acc, train_s, val, test) -> bool:
        """Record the epoch, have its files written, step the schedule, keep the best
        checkpoint, obey requests; True when the run should end after it."""
        cfg, data = self.cfg, self.data
        ended = EpochEnded(
            epoch, cfg.epochs, train_loss, train_acc, test.loss, test.acc, self.schedule.lr,
            time.perf_counter() - self.t_epoch, len(self.y_train) / train_s,
            linear_fit(self.raw_model, data),
            val_loss=val.loss if val else None, val_acc=val.acc if val else None,
        )  # fmt: skip
        row = {k: getattr(ended, k) for k in rundir.METRIC_COLUMNS}
        self.history.append(row)
        self.last = ended
        is_best = self.best is not None and self.best.update(row)
        should_end = self.early is not None and self.early.update(row)
        if should_end:
            self.stop_reason = f"stopped early after epoch {epoch}: {self.early.reason}"
        if not self.writes and not self.rollback.enabled:  # other ranks keep no copies
            return self._after_epoch(epoch, should_end)
        model_state, optimizer_state = self._states()
        self.rollback.remember(epoch, model_state, optimizer_state)
        if not self.writes:
            return self._after_epoch(epoch, should_end)
        ckpt = {
            "model": model_state,
            "optimizer": optimizer_state,
            "config": cfg.to_dict(),
            "epoch": epoch,
            "rng": self.gen.get_state() if self.device.type != "cuda" else None,
            "history": list(self.history),
        }
        info = summary_file("running", self.summary(), cfg)
        run_dir, metrics, log = self.run_dir, self.metrics, self.log

        def write_epoch(confusion=test.confusion, y_pred=test.y_pred, confidence=test.confidence) -> None:
            try:
                # metrics and summary first: they may run one epoch ahead of model.pt, never behind
                metrics.append(row)
                rundir.write_json(run_dir / "summary.json", info, durable=False)  # finish()'s is durable
                ckpt_io.save_checkpoint(run_dir, ckpt)
                if is_best:
                    ckpt_io.save_checkpoint(run_dir, ckpt, ckpt_io.BEST)
                if confusion is not None:
                    rundir.write_confusion(run_dir, data.classes, confusion)
                rundir.write_evaluation(run_dir, epoch, y_pred, confidence, confusion)
                log.write("evaluation", epoch=epoch)
            except OSError as exc:  # disk full, directory removed, ...
                raise _WriteFailed(
                    f"cannot write epoch {epoch}'s files to {run_dir} "
                    f"({exc.strerror or exc}); epochs up to {epoch - 1} and their checkpoint are kept",
                    epoch,
                ) from None

        self.writer.submit(write_epoch)
        self.emit(ended)
        self.emit(EvaluationReady(epoch, test.confusion, data.y_test, test.y_pred, test.confidence, self.sample))
        return self._after_epoch(epoch, should_end)

    def _after_epoch(self, epoch: int, should_end: bool) -> bool:
        """Early stopping, the schedule's step and live requests: on every rank alike."""
        if should_end:
            self.emit(RunNoted(epoch, self.stop_reason))
            return True
        self.schedule.end_epoch()
        self._obey(epoch, None)
        if self.stop_after_epoch and epoch < self.cfg.epochs:
            self.stop_reason = f"stopped after epoch {epoch} on request"
            raise _Stopped
        return False

    def _obey(self, epoch: int, step: int | None) -> None:
        """Apply requests from outside the process (a few times a second, never per step;
        under torchrun once an epoch, rank 0's requests shared with every rank)."""
        requests, notes = self.control.poll() if self.control is not None else ([], [])
        if self.dist is not None:
            requests = self.dist.broadcast(requests)
        for text in notes:
            self.emit(RunNoted(epoch, text))
        for req in requests:
            if req.kind == "lr":
                old = self.schedule.lr
                self.schedule.scale(req.value / old)
                self.graph_step = None  # the captured step baked the old rate in
                self.emit(RunNoted(epoch, f"lr {old:.4g} -> {self.schedule.lr:.4g} on request"))
            elif req.kind == "checkpoint":
                name = f"checkpoint-e{epoch}-s{step}.pt" if step is not None else f"checkpoint-e{epoch}.pt"
                state = {
                    "model": rundir.host_copy(self.raw_model.state_dict()),
                    "optimizer": rundir.host_copy(self.optimizer.state_dict()),
                    "config": self.cfg.to_dict(),
                    "epoch": epoch - 1 if step is not None else epoch,  # completed epochs
                }
                if self.writes:
                    self.writer.submit(lambda s=state, name=name: ckpt_io.save_checkpoint(self.run_dir, s, name))
                self.emit(RunNoted(epoch, f"saving {name} on request (evaluate it with `dltui eval`)"))
            elif req.kind == "stop-after-epoch":
                self.stop_after_epoch = True
                self.emit(RunNoted(epoch, f"will stop after epoch {epoch} on request"))
            elif req.kind == "stop":
                self.stop_reason = "stopped on request"
                raise _Stopped
