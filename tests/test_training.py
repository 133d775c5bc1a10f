"""Training as practitioners run it: validation, schedules, early stopping, best.pt,
clipping, smoothing, dropout, augmentation, divergence rollback and live control."""

from __future__ import annotations

import json
import math
import threading

import pytest
import torch
from helpers import cli, one_line_error, write_mnist_like

from dltui.engine import EpochEnded, RunFinished, RunNoted, RunStopped, callbacks, train
from dltui.engine.checkpoint import load_checkpoint
from dltui.engine.loop import validation_split
from dltui.errors import ConfigError
from dltui.resolve import make_config


def run(tmp_path, name="run", **kw):
    events: list = []
    cfg = make_config(device="cpu", out=str(tmp_path / name), **kw)
    result = train(cfg, events.append, threads=1)
    return result, [e for e in events if isinstance(e, EpochEnded)], events


def test_plain_runs_hold_nothing_out_and_choose_nothing(tmp_path):
    result, ended, _ = run(tmp_path, epochs=2)
    assert all(e.val_loss is None and e.val_acc is None for e in ended)
    assert result.summary.best_epoch is None and not (tmp_path / "run" / "best.pt").exists()
    cfg = make_config(epochs=2)
    assert cfg.val_fraction == 0 and cfg.early_stop == 0


def test_validation_is_carved_from_train_and_never_overlaps():
    keep, held = validation_split(1000, 0.1, seed=3)
    assert len(held) == 100 and len(keep) == 900
    assert not set(keep.tolist()) & set(held.tolist())
    assert sorted(keep.tolist() + held.tolist()) == list(range(1000))
    again = validation_split(1000, 0.1, seed=3)
    assert torch.equal(again[1], held)  # deterministic by seed
    assert not torch.equal(validation_split(1000, 0.1, seed=4)[1], held)


def test_validation_rows_are_not_trained_on_and_metrics_gain_columns(tmp_path):
    result, ended, events = run(tmp_path, epochs=2, val_fraction=0.2)
    started = next(e for e in events if type(e).__name__ == "RunStarted")
    assert started.notes[0].startswith("validation: 288 of 1,438 training rows held out")
    assert all(e.val_loss is not None and 0 <= e.val_acc <= 1 for e in ended)
    assert ended[0].samples_per_s > 0
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:8] == ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "samples_per_s"]
    assert header[8:] == ["val_loss", "val_acc"]


def test_early_stopping_carves_validation_and_stops_at_the_right_epoch(tmp_path):
    # lr far too small: val_acc creeps, so a huge min_delta means "never improved" after epoch 1
    result, ended, events = run(tmp_path, epochs=10, early_stop=2, min_delta=0.5, lr=1e-5)
    assert isinstance(result, RunFinished)
    cfg = make_config(early_stop=2)
    assert cfg.val_fraction == 0.1  # choosing needs held-out data; carved automatically
    assert [e.epoch for e in ended] == [1, 2, 3]  # best at 1, no real improvement at 2 and 3
    assert "did not improve for 2 epochs" in result.summary.stop_reason
    assert any(isinstance(e, RunNoted) and "stopped early after epoch 3" in e.text for e in events)
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["status"] == "finished" and "stopped early" in saved["stop_reason"]


def test_early_stopping_rule():
    monitor = callbacks.Monitor("val_loss", min_delta=0.01)
    stop = callbacks.EarlyStopping(monitor, 2, [])
    rows = [1.0, 0.9, 0.895, 0.899, 0.5]
    decisions = [stop.update({"epoch": i + 1, "val_loss": v}) for i, v in enumerate(rows)]
    assert decisions == [False, False, False, True, False]  # 0.895 is within min_delta of 0.9


def test_best_pt_is_the_best_validation_epoch_and_eval_defaults_to_it(tmp_path):
    result, ended, _ = run(tmp_path, epochs=5, val_fraction=0.2, lr=0.05, optimizer="sgd")
    best_epoch = max(ended, key=lambda e: (e.val_acc, -e.epoch)).epoch
    assert result.summary.best_epoch == best_epoch
    assert result.summary.best_test_acc == ended[best_epoch - 1].test_acc  # test reported at that epoch
    best = load_checkpoint(tmp_path / "run", "best")
    assert best["epoch"] == best_epoch
    assert load_checkpoint(tmp_path / "run")["epoch"] == 5
    out = cli("eval", str(tmp_path / "run"), "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["epoch"] == best_epoch
    last = cli("eval", str(tmp_path / "run"), "--which", "last", "--json")
    assert json.loads(last.stdout)["epoch"] == 5


@pytest.mark.parametrize(
    ("schedule", "extra", "factory"),
    [
        ("step", {"step_size": 2, "gamma": 0.5}, lambda opt: torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)),
        ("cosine", {}, lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, 6)),
    ],
)
def test_schedule_lr_per_epoch_matches_torch(tmp_path, schedule, extra, factory):
    _, ended, _ = run(tmp_path, epochs=6, lr=0.1, optimizer="sgd", schedule=schedule, **extra)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = factory(opt)
    expected = []
    for _ in range(6):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert [e.lr for e in ended] == pytest.approx(expected)
    lrs = [float(r.split(",")[5]) for r in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]]
    assert lrs == pytest.approx(expected, rel=1e-5)


def test_warmup_then_constant(tmp_path):
    _, ended, _ = run(tmp_path, epochs=4, lr=0.1, optimizer="sgd", warmup=2)
    assert [e.lr for e in ended] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1, 0.1])


def test_onecycle_steps_per_batch_and_resume_continues_the_schedule(tmp_path):
    kw = dict(epochs=4, lr=0.1, optimizer="sgd", schedule="onecycle", batch_size=256)
    _, whole, _ = run(tmp_path, "whole", **kw)
    assert whole[0].lr != whole[1].lr and max(e.lr for e in whole) <= 0.1
    # stop after 2 epochs, resume: the schedule continues where it stopped
    run(tmp_path, "part", **{**kw, "epochs": 2})
    cfg = make_config(device="cpu", out=str(tmp_path / "part"), **kw)
    events: list = []
    train(cfg, events.append, run_dir=tmp_path / "part", checkpoint=load_checkpoint(tmp_path / "part"), threads=1)
    resumed = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.lr for e in resumed] == pytest.approx([e.lr for e in whole[2:]])


def test_clip_label_smoothing_and_dropout_change_training_not_evaluation(tmp_path):
    base = run(tmp_path, "base", epochs=1)[1][0]
    for name, kw in {"clip": {"clip_grad": 0.01}, "smooth": {"label_smoothing": 0.2}, "drop": {"dropout": 0.5}}.items():
        e = run(tmp_path, name, epochs=1, **kw)[1][0]
        assert e.train_loss != pytest.approx(base.train_loss, rel=1e-6), name
    # dropout keeps the weights' names: a checkpoint loads into the model without it
    state = load_checkpoint(tmp_path / "drop")
    assert set(state["model"]) == set(load_checkpoint(tmp_path / "base")["model"])


def test_bad_training_flags_are_one_line_config_errors():
    cases = {
        "val_fraction": {"val_fraction": 0.9},
        "schedule": {"schedule": "cosin"},
        "monitor": {"dataset": "linear", "monitor": "val_acc"},
        "label_smoothing": {"dataset": "linear", "label_smoothing": 0.1},
        "augment": {"augment": True},  # digits has no label-preserving augmentation
        "warmup": {"epochs": 3, "warmup": 3},
        "clip_grad": {"clip_grad": -1},
        "on_diverge": {"on_diverge": "retry"},
    }
    for field, kw in cases.items():
        with pytest.raises(ConfigError) as err:
            make_config(**kw)
        assert err.value.field == field and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="needs a validation split"):
        make_config(early_stop=2, val_fraction=0)


def test_augmentation_changes_training_batches_only(tmp_path):
    from dltui.data.augment import augmenter

    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = augmenter(("crop", "flip"), (3, 8, 8), torch.device("cpu"), g)(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    # every output pixel is an input pixel of the same image and channel, or padding (0)
    for b in range(2):
        for c in range(3):
            assert set(out[b, c].flatten().tolist()) <= set(x[b, c].flatten().tolist()) | {0.0}
    flip_only = augmenter(("flip",), (3, 8, 8), torch.device("cpu"), torch.Generator().manual_seed(1))(x)
    for b in range(2):
        assert torch.equal(flip_only[b], x[b]) or torch.equal(flip_only[b], x[b].flip(2))

    root = tmp_path / "data"
    write_mnist_like(root, n_train=256, n_test=64)
    kw = dict(dataset="mnist", model="softmax", data_dir=str(root), epochs=1, batch_size=64)
    plain = run(tmp_path, "plain", **kw)[1][0]
    aug = run(tmp_path, "aug", augment=True, **kw)[1][0]
    assert aug.train_loss != pytest.approx(plain.train_loss, rel=1e-6)
    assert make_config(**kw).augment is False and make_config(dataset="cifar10").augment is True


def test_rollback_restores_the_last_good_epoch_and_halves_lr(tmp_path, monkeypatch):
    from dltui.engine import loop

    calls = {"n": 0}
    real = loop._Training.train_epoch

    def flaky(self, epoch):  # epoch 2 diverges once: the weights it saw must be epoch 1's
        calls["n"] += 1
        if epoch == 2 and calls["n"] == 2:
            calls["weights"] = [p.detach().clone() for p in self.raw_model.parameters()]
            with torch.no_grad():
                for p in self.raw_model.parameters():
                    p.fill_(math.nan)
            loop.diverged(epoch, torch.tensor([math.nan]), 0)
        if epoch == 2 and calls["n"] == 3:
            after = [p.detach() for p in self.raw_model.parameters()]
            calls["restored"] = all(torch.equal(a, b) for a, b in zip(after, calls["weights"], strict=True))
        return real(self, epoch)

    monkeypatch.setattr(loop._Training, "train_epoch", flaky)
    result, ended, events = run(tmp_path, epochs=3, on_diverge="rollback", lr=0.01)
    assert isinstance(result, RunFinished) and [e.epoch for e in ended] == [1, 2, 3]
    assert calls["restored"]
    assert ended[0].lr == pytest.approx(0.01) and ended[1].lr == pytest.approx(0.005)
    notes = [e.text for e in events if isinstance(e, RunNoted)]
    assert any("rolled back to epoch 1" in t and "rollback 1 of 3" in t for t in notes)
    assert result.summary.rollbacks == 1


def test_rollback_gives_up_after_three(tmp_path):
    result, ended, events = run(tmp_path, epochs=2, on_diverge="rollback", dataset="linear", model="linreg", lr=90)
    assert type(result).__name__ == "RunFailed" and result.exit_code == 3
    assert result.summary.rollbacks == 3
    notes = [e.text for e in events if isinstance(e, RunNoted)]
    assert [n.split("lr ")[1].split(" (")[0] for n in notes] == ["90 -> 45", "45 -> 22.5", "22.5 -> 11.25"]


def test_live_control_lr_checkpoint_and_stop_after_epoch(tmp_path):
    cfg = make_config(device="cpu", out=str(tmp_path / "run"), epochs=50, lr=0.01, optimizer="sgd")
    events: list = []
    sent = threading.Event()

    def on_event(e):
        events.append(e)
        if isinstance(e, EpochEnded) and e.epoch == 1 and not sent.is_set():
            sent.set()
            callbacks.send(tmp_path / "run", "lr", 0.002)
            callbacks.send(tmp_path / "run", "checkpoint")
            callbacks.send(tmp_path / "run", "stop-after-epoch")

    result = train(cfg, on_event, threads=1)
    ended = [e for e in events if isinstance(e, EpochEnded)]
    assert isinstance(result, RunStopped) and [e.epoch for e in ended] == [1]
    notes = [e.text for e in events if isinstance(e, RunNoted)]
    assert any("0.01 -> 0.002" in t for t in notes) and any("will stop after epoch 1" in t for t in notes)
    assert load_checkpoint(tmp_path / "run" / "checkpoint-e1.pt")["epoch"] == 1
    assert "stopped after epoch 1 on request" in result.summary.stop_reason


def test_control_requests_are_validated(tmp_path):
    with pytest.raises(ValueError):
        callbacks.parse_request({"kind": "lr", "value": -1})
    with pytest.raises(ValueError):
        callbacks.parse_request({"kind": "explode"})
    (tmp_path / "config.json").write_text("{}")
    out = cli("control", str(tmp_path), "--lr", "0.1")
    assert out.exit_code == 2 and "not running" in one_line_error(out)


def test_the_runs_table_reports_test_at_the_best_validation_epoch(tmp_path):
    from dltui.runs import read_run

    result, ended, _ = run(tmp_path, "val", epochs=5, val_fraction=0.2, lr=0.05, optimizer="sgd")
    info = read_run(tmp_path / "val")
    assert info.best_test_acc == pytest.approx(ended[result.summary.best_epoch - 1].test_acc, abs=1e-5)  # csv: 6 digits
    assert result.summary.best_test_acc == ended[result.summary.best_epoch - 1].test_acc
    run(tmp_path, "plain", epochs=2)
    assert read_run(tmp_path / "plain").best_test_acc is None  # nothing chose an epoch


def test_a_resume_keeps_a_live_rate_change(tmp_path):
    from dltui.engine.checkpoint import save_checkpoint

    run(tmp_path, "r", epochs=2, lr=0.01, optimizer="sgd")
    state = load_checkpoint(tmp_path / "r")
    for group in state["optimizer"]["param_groups"]:
        group["lr"] = 0.002  # as `dltui control --lr 0.002` leaves it
    save_checkpoint(tmp_path / "r", state)
    cfg = make_config(device="cpu", out=str(tmp_path / "r"), epochs=3, lr=0.01, optimizer="sgd")
    events: list = []
    train(cfg, events.append, run_dir=tmp_path / "r", checkpoint=load_checkpoint(tmp_path / "r"), threads=1)
    started = next(e for e in events if type(e).__name__ == "RunStarted")
    assert any("continuing at lr 0.002, the rate the run had" in n for n in started.notes)
    assert [e.lr for e in events if isinstance(e, EpochEnded)] == [pytest.approx(0.002)]
    events.clear()  # an explicit --lr on resume wins
    cfg = make_config(device="cpu", out=str(tmp_path / "r"), epochs=4, lr=0.005, optimizer="sgd")
    train(cfg, events.append, run_dir=tmp_path / "r", checkpoint=load_checkpoint(tmp_path / "r"), threads=1)
    assert [e.lr for e in events if isinstance(e, EpochEnded)] == [pytest.approx(0.005)]
