"""The fast path of the training loop: what it must keep while it goes fast.

CPU: same seed => same metrics, resume == uninterrupted, exact divergence step, a bounded
number of extra ops per step over a bare step. CUDA (skipped without a GPU): no host sync
per step, and amp / channels-last / compile runs that finish and learn.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from helpers import write_mnist_like

from dltui.engine import EpochEnded, RunFailed, RunFinished, loop, train
from dltui.engine.checkpoint import load_checkpoint
from dltui.engine.task import Task
from dltui.resolve import make_config

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
METRICS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")


def _cfg(tmp_path, name="run", **kw):
    kw = {
        "dataset": "digits",
        "model": "mlp",
        "epochs": 2,
        "batch_size": 32,
        "lr": 0.05,
        "optimizer": "momentum",
        "device": "cpu",
        "seed": 3,
        **kw,
    }
    return make_config(out=str(tmp_path / name), **kw)


def _run(cfg, **kw):
    ended: list[EpochEnded] = []
    result = train(cfg, lambda e: ended.append(e) if isinstance(e, EpochEnded) else None, threads=1, **kw)
    assert isinstance(result, RunFinished), result
    return [tuple(getattr(e, k) for k in METRICS) for e in ended]


def test_same_seed_same_metrics(tmp_path):
    assert _run(_cfg(tmp_path, "a")) == _run(_cfg(tmp_path, "b"))


def test_resume_matches_uninterrupted(tmp_path):
    whole = _run(_cfg(tmp_path, "whole", epochs=3))
    first = _run(_cfg(tmp_path, "part", epochs=1))
    part = tmp_path / "part"
    rest = _run(_cfg(tmp_path, "part", epochs=3), checkpoint=load_checkpoint(part), run_dir=part)
    assert first + rest == whole


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=cuda)])
def test_divergence_reports_exact_step(tmp_path, monkeypatch, device):
    """The 50th training loss (epoch 2, step 5 of 45) is NaN: that step is reported."""
    real_init = loop.Task.__init__

    def init(self, kind):
        real_init(self, kind)
        real_loss, calls = self.loss, [0]

        def loss(out, y):
            value = real_loss(out, y)
            if not out.requires_grad:  # evaluation
                return value
            calls[0] += 1
            return value * float("nan") if calls[0] == 50 else value

        self.loss = loss

    monkeypatch.setattr(loop.Task, "__init__", init)
    result = train(_cfg(tmp_path, epochs=3, device=device), threads=1)
    assert isinstance(result, RunFailed)
    assert "diverged at epoch 2, step 5 " in result.message, result.message


def test_thread_policy_follows_cores_and_load(monkeypatch):
    from dltui import sysinfo

    monkeypatch.setattr(sysinfo.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(sysinfo.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(sysinfo.os, "getloadavg", lambda: (0.1, 0, 0))
    assert sysinfo.choose_threads()[0] == 4  # idle: every core
    monkeypatch.setattr(sysinfo.os, "getloadavg", lambda: (3.2, 0, 0))
    assert sysinfo.choose_threads()[0] == 1  # busy: one thread keeps a steady pace
    monkeypatch.setattr(sysinfo.os, "getloadavg", lambda: (9.0, 0, 0))
    assert sysinfo.choose_threads()[0] == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(sysinfo.os, "getloadavg", lambda: (0.0, 0, 0))
    assert sysinfo.choose_threads()[0] == 2  # two ranks on this machine share its 4 cores


def test_fused_optimizer_where_available(tmp_path):
    params = [torch.nn.Parameter(torch.zeros(3))]
    for name in ("momentum", "sgd", "adam", "adamw"):
        opt = loop.make_optimizer(_cfg(tmp_path, optimizer=name), params)
        assert opt.param_groups[0]["fused"] is True  # CPU fused kernels exist since torch 2.4


def test_few_extra_ops_per_step(tmp_path):
    """The loop adds a handful of aten ops per step to forward/backward/step (gather, scale,
    argmax); anything per step beyond that is overhead that shows on small models."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    def ops(batch_size):
        Count.n = 0
        with Count():
            _run(_cfg(tmp_path, f"ops{batch_size}", epochs=1, batch_size=batch_size))
        return Count.n

    # 1437 training rows: 45 steps at 32, 12 at 128; the difference is the per-step cost
    per_step = (ops(32) - ops(128)) / (45 - 12)
    cfg = _cfg(tmp_path)
    from dltui.data import DATASETS
    from dltui.models import build_model

    model = build_model("mlp", DATASETS["digits"])
    opt = loop.make_optimizer(cfg, model.parameters())
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    Count.n = 0
    with Count():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    bare = Count.n
    assert per_step <= bare + 8, (per_step, bare)  # measured: +6 (was +15 before the fast path)


def _data(kind: str):
    from dltui.data import DATASETS, Data

    g = torch.Generator().manual_seed(0)
    spec = DATASETS["digits"]
    if kind == "vector":
        return Data(spec, torch.randn(70, 5, generator=g), torch.zeros(70), torch.zeros(1), torch.zeros(1))
    channels = 1 if kind == "gray" else 3
    x = torch.randint(0, 256, (70, channels, 6, 6), dtype=torch.uint8, generator=g)
    mean, std = ((0.1307,), (0.3081,)) if channels == 1 else ((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
    return Data(spec, x, torch.zeros(70), x[:1], torch.zeros(1), scale=1 / 255, mean=mean, std=std)


@pytest.mark.parametrize("kind", ["gray", "colour", "vector"])
def test_batch_gather_is_the_transform_into_reused_buffers(kind):
    """Training batches come from buffers reused by every step, with the same values the
    evaluation transform gives, the short last batch included."""
    data = _data(kind)
    transform = data.batch_transform(torch.device("cpu"))
    gather = data.batch_gather(data.x_train, 32)
    perm = torch.randperm(70, generator=torch.Generator().manual_seed(1))
    seen = set()
    for idx in perm.split(32):  # 32, 32, 6
        xb = gather(idx)
        assert xb.dtype == torch.float32 and xb.shape == (len(idx), *data.x_train.shape[1:])
        assert torch.equal(xb, transform(data.x_train[idx]))
        seen.add(xb.data_ptr())
    assert len(seen) == 1


def test_score_matches_the_textbook_formulas():
    g = torch.Generator().manual_seed(0)
    out, y = torch.randn(300, 7, generator=g) * 5, torch.randint(0, 7, (300,), generator=g)
    loss, pred, conf = Task("classification").score(out, y)
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(out, y), atol=1e-6)
    assert torch.equal(pred, out.argmax(1))
    assert torch.allclose(conf, out.softmax(1).amax(1), atol=1e-6)

    logit, target = torch.randn(50, 1, generator=g), torch.randint(0, 2, (50,), generator=g).float()
    loss, pred, conf = Task("binary").score(logit, target)
    p = torch.sigmoid(logit.squeeze(1))
    assert torch.allclose(loss, torch.nn.functional.binary_cross_entropy(p, target), atol=1e-6)
    assert torch.equal(pred, (p > 0.5).long())
    assert torch.allclose(conf, torch.maximum(p, 1 - p))


def _mnist_cnn(tmp_path, device="cuda", **kw):
    """cnn needs 28x28 images: a small generated MNIST root (digits are 8x8)."""
    write_mnist_like(tmp_path / "data", "MNIST", n_train=512, n_test=128)
    return _cfg(tmp_path, dataset="mnist", model="cnn", device=device, data_dir=str(tmp_path / "data"), **kw)


@cuda
def test_cuda_no_sync_per_step(tmp_path):
    syncs = []
    cfg = _cfg(tmp_path, device="cuda", epochs=1, batch_size=8)  # 180 steps
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _run(cfg)
        syncs = [w for w in caught if "synchroniz" in str(w.message)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(syncs) < 60, len(syncs)


@cuda
@pytest.mark.parametrize("flags", [{"amp": True}, {"compile": True}, {"amp": True, "compile": True}])
def test_cuda_extras_train(tmp_path, flags):
    rows = _run(_mnist_cnn(tmp_path, epochs=2, **flags))
    assert all(math.isfinite(r[1]) for r in rows)
    assert rows[-1][4] > 0.5  # it learns


@cuda
def test_cuda_channels_last_for_cnn(tmp_path, monkeypatch):
    seen = []
    real = loop.evaluate

    def spy(model, data, x, y, task, transform, amp=False):
        seen.append(transform(x[:2]).is_contiguous(memory_format=torch.channels_last))
        return real(model, data, x, y, task, transform, amp)

    from dltui.data import Data

    real_gather = Data.batch_gather

    def spy_gather(self, x, batch_size, channels_last=False):
        gather = real_gather(self, x, batch_size, channels_last)
        return lambda idx: seen.append(gather(idx).is_contiguous(memory_format=torch.channels_last)) or gather(idx)

    monkeypatch.setattr(loop, "evaluate", spy)
    monkeypatch.setattr(Data, "batch_gather", spy_gather)
    _run(_mnist_cnn(tmp_path, epochs=1))
    assert seen and all(seen)
