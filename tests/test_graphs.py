"""The captured training step, checked where the CPU can check it: which runs are captured
and why not, how an epoch splits into replays and an eager last batch, and that an epoch of
replays trains and scores exactly like the eager loop (the capture itself replaced by a
stand-in that replays the same step function; CUDA runs the real one)."""

from __future__ import annotations

import pytest
import torch

from dltui.engine import EpochEnded, RunNoted, graphs, train
from dltui.resolve import make_config


def test_plan_says_why_a_step_is_not_captured():
    cfg = make_config()
    assert graphs.plan(cfg, "cuda", "vector") == (True, "")
    assert graphs.plan(cfg, "cpu", "vector")[1] == "not on CUDA"
    assert graphs.plan(make_config(graph=False), "cuda", "vector")[1] == "--no-graph"
    assert "packed sequences" in graphs.plan(make_config(dataset="names"), "cuda", "sequence")[1]
    assert "--schedule cosine" in graphs.plan(make_config(schedule="cosine"), "cuda", "vector")[1]
    assert "scratch-sgd" in graphs.plan(make_config(optimizer="scratch-sgd"), "cuda", "vector")[1]
    assert "data-parallel" in graphs.plan(cfg, "cuda", "vector", distributed=True)[1]


@pytest.mark.parametrize(("n", "bs", "expected"), [(1438, 32, (44, 30)), (64, 32, (2, 0)), (5, 8, (0, 5))])
def test_an_epoch_is_full_replays_and_one_eager_partial_batch(n, bs, expected):
    assert graphs.batches(n, bs) == expected


class _Replayer:
    """Stands in for a CUDA graph on the CPU: replaying runs the captured step function with
    the grads it would own (written, not accumulated)."""

    def __init__(self, step, optimizer):
        self.step, self.optimizer = step, optimizer

    def replay(self):
        self.optimizer.zero_grad(set_to_none=True)
        self.step()


def _run(tmp_path, name, monkeypatch, graphed: bool, **kw):
    if graphed:
        monkeypatch.setattr(graphs, "plan", lambda *a, **k: (True, ""))
        holder = {}

        def record(step, warm_up, device):
            warm_up()
            return _Replayer(step, holder["optimizer"])

        real_capture = graphs.capture

        def capture(model, optimizer, *args, **kwargs):
            holder["optimizer"] = optimizer
            return real_capture(model, optimizer, *args, **kwargs)

        monkeypatch.setattr(graphs, "record", record)
        monkeypatch.setattr(graphs, "capture", capture)
    events: list = []
    cfg = make_config(device="cpu", out=str(tmp_path / name), optimizer="momentum", lr=0.05, **kw)
    result = train(cfg, events.append, threads=1)
    monkeypatch.undo()
    return result, [e for e in events if isinstance(e, EpochEnded)], events


def test_replayed_epochs_train_like_the_eager_loop(tmp_path, monkeypatch):
    kw = dict(epochs=3, batch_size=32, model="mlp")  # 1,438 rows: 44 replays + an eager batch of 30
    _, eager, _ = _run(tmp_path, "eager", monkeypatch, False, **kw)
    _, replayed, events = _run(tmp_path, "graph", monkeypatch, True, **kw)
    assert not [e for e in events if isinstance(e, RunNoted)]  # captured, no fallback
    for a, b in zip(eager, replayed, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-5)
        assert b.train_acc == a.train_acc and b.test_acc == a.test_acc
        assert b.test_loss == pytest.approx(a.test_loss, rel=1e-5)


def test_a_step_that_cannot_be_captured_trains_eagerly_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(graphs, "plan", lambda *a, **k: (True, ""))

    def refuse(step, warm_up, device):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(graphs, "record", refuse)
    events: list = []
    result = train(make_config(device="cpu", out=str(tmp_path / "r"), epochs=2), events.append, threads=1)
    notes = [e.text for e in events if isinstance(e, RunNoted)]
    assert type(result).__name__ == "RunFinished"
    assert notes == ["CUDA graph: capture failed (operation not permitted when stream is capturing); training eagerly"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_real_capture_matches_eager_on_cuda(tmp_path):
    results = {}
    for graph in (False, True):
        events: list = []
        cfg = make_config(device="cuda", out=str(tmp_path / str(graph)), epochs=2, graph=graph, model="mlp")
        train(cfg, events.append)
        results[graph] = [e for e in events if isinstance(e, EpochEnded)]
    for a, b in zip(results[False], results[True], strict=True):
        assert b.test_acc == pytest.approx(a.test_acc, abs=0.02)
