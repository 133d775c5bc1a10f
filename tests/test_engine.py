"""The training engine: one short run per task, the event protocol, stopping, determinism,
the run directory's files, init, and the acceptance numbers that are cheap to check."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import of_type, run_events

from dltui.data import DATASETS
from dltui.engine import (
    BatchProgressed,
    EpochEnded,
    EvaluationReady,
    RunFinished,
    RunStarted,
    RunStopped,
)
from dltui.engine.rundir import METRIC_COLUMNS
from dltui.models import build_model, count_params
from dltui.resolve import config_from_dict, make_config

HEADER = "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,samples_per_s,val_loss,val_acc"
LOSS_ACC = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")


def cfg_for(tmp_path, name="run", **kw):
    kw.setdefault("device", "cpu")
    return make_config(out=str(tmp_path / name), **kw)


def read_rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def check_protocol(events, result, epochs: int, test_size: int):
    """RunStarted first; per epoch EpochEnded then EvaluationReady; the final event last."""
    assert isinstance(events[0], RunStarted)
    assert events[-1] is result
    assert sum(isinstance(e, RunStarted) for e in events) == 1
    body = [e for e in events[1:-1] if not isinstance(e, BatchProgressed)]
    assert [type(e) for e in body] == [EpochEnded, EvaluationReady] * epochs
    assert [e.epoch for e in body] == [i for i in range(1, epochs + 1) for _ in range(2)]
    # BatchProgressed only inside epochs, each for the epoch that is running
    epoch = 1
    for e in events[1:-1]:
        if isinstance(e, BatchProgressed):
            assert e.epoch == epoch and e.epochs == epochs and 1 <= e.step <= e.steps
            assert math.isfinite(e.loss) and e.samples_per_s > 0 and e.eta_s >= 0
        elif isinstance(e, EvaluationReady):
            epoch += 1
            assert len(e.y_true) == len(e.y_pred) == len(e.confidence) == test_size
            assert float(e.confidence.min()) >= 0 and float(e.confidence.max()) <= 1


# --- one short run per task ------------------------------------------------------------


def test_classification_digits_mlp(tmp_path):
    cfg = cfg_for(tmp_path, dataset="digits", model="mlp", epochs=2)
    result, events = run_events(cfg)
    assert isinstance(result, RunFinished), result
    check_protocol(events, result, 2, 359)
    started = events[0]
    assert started.config == replace(cfg, threads=1) and started.start_epoch == 0  # threads: as applied
    assert started.steps_per_epoch == math.ceil(1438 / 32)
    assert started.n_params == count_params(build_model("mlp", DATASETS["digits"])) == 19210
    assert started.run_dir == str(tmp_path / "run") and started.device.startswith("cpu")
    ended = of_type(events, EpochEnded)
    for e in ended:
        assert 0 <= e.train_acc <= 1 and 0 <= e.test_acc <= 1
        assert e.lr == cfg.lr and e.seconds > 0 and e.samples_per_s > 0 and e.extras == {}
    assert ended[1].train_loss < ended[0].train_loss
    assert ended[-1].test_acc > 0.85
    for ev in of_type(events, EvaluationReady):
        assert len(ev.confusion) == 10 and all(len(r) == 10 for r in ev.confusion)
        assert sum(map(sum, ev.confusion)) == 359
        # the diagonal is the accuracy the epoch reported
        correct = sum(ev.confusion[i][i] for i in range(10))
        assert correct == int((ev.y_pred == ev.y_true).sum())
        assert len(ev.sample) == 48 and all(0 <= i < 359 for i in ev.sample)
    evs = of_type(events, EvaluationReady)
    assert correct / 359 == pytest.approx(ended[-1].test_acc)
    assert evs[0].sample == evs[1].sample  # the sampler watches the same items every epoch
    s = result.summary
    assert s.epochs_done == 2 and s.final is ended[-1]
    # nothing is chosen by the test split: without validation there is no "best"
    assert s.best_test_acc is None and s.best_test_loss is None and s.best_epoch is None
    assert s.run_dir == str(tmp_path / "run") and s.samples_per_s > 0 and s.wall_s > 0


def test_binary_breast_cancer_logreg(tmp_path):
    cfg = cfg_for(tmp_path, dataset="breast-cancer", model="logreg", epochs=3)
    result, events = run_events(cfg)
    assert isinstance(result, RunFinished), result
    check_protocol(events, result, 3, 114)
    ev = of_type(events, EvaluationReady)[-1]
    assert len(ev.confusion) == 2 and sum(map(sum, ev.confusion)) == 114
    assert set(ev.y_pred.tolist()) <= {0, 1}
    assert float(ev.confidence.min()) >= 0.5  # probability of the predicted label
    assert of_type(events, EpochEnded)[-1].test_acc > 0.85


def test_regression_linear_linreg(tmp_path):
    cfg = cfg_for(tmp_path, dataset="linear", model="linreg", epochs=2)
    result, events = run_events(cfg)
    assert isinstance(result, RunFinished), result
    check_protocol(events, result, 2, 200)
    for e in of_type(events, EpochEnded):
        assert e.train_acc is None and e.test_acc is None
        assert set(e.extras) == {"w", "b", "true_w", "true_b"}
        assert len(e.extras["w"]) == 2 and isinstance(e.extras["b"], float)
        assert e.extras["true_w"] == [2.0, -3.4] and e.extras["true_b"] == 4.2
    for ev in of_type(events, EvaluationReady):
        assert ev.confusion is None
        assert torch.equal(ev.confidence, torch.ones(200))
        assert ev.y_pred.dtype == torch.float32
    assert result.summary.best_test_acc is None
    rows = read_rows(tmp_path / "run")
    assert len(rows) == 2 and all(r["train_acc"] == "" and r["test_acc"] == "" for r in rows)
    assert not (tmp_path / "run" / "confusion.csv").exists()


def test_regression_with_mlp_has_no_linear_extras(tmp_path):
    result, events = run_events(cfg_for(tmp_path, dataset="linear", model="mlp", epochs=1))
    assert isinstance(result, RunFinished), result
    assert of_type(events, EpochEnded)[0].extras == {}


def test_sequence_names_rnn(tmp_path):
    cfg = cfg_for(tmp_path, dataset="names", model="rnn", epochs=1, batch_size=256)
    result, events = run_events(cfg)
    assert isinstance(result, RunFinished), result
    n_test = len(of_type(events, EvaluationReady)[0].y_true)
    assert n_test == 3961
    check_protocol(events, result, 1, n_test)
    ev = of_type(events, EvaluationReady)[0]
    assert len(ev.confusion) == 17 and sum(map(sum, ev.confusion)) == n_test
    # better than always guessing the largest language (English, ~19%)
    assert of_type(events, EpochEnded)[0].test_acc > 0.4


# --- progress, stopping ----------------------------------------------------------------


def test_batch_progress_is_coalesced(tmp_path):
    cfg = cfg_for(tmp_path, dataset="digits", model="softmax", epochs=2, batch_size=4)
    result, events = run_events(cfg)
    assert isinstance(result, RunFinished), result
    steps = events[0].steps_per_epoch
    assert steps == 360
    progress = of_type(events, BatchProgressed)
    # at most ~4 per second: far fewer than the 720 steps of these fast epochs
    assert len(progress) <= (2 * steps) // 10
    assert all(p.steps == steps for p in progress)
    for a, b in zip(progress, progress[1:], strict=False):
        assert (a.epoch, a.step) < (b.epoch, b.step)


def test_should_stop_stops_within_one_batch(tmp_path):
    cfg = cfg_for(tmp_path, dataset="digits", model="mlp", epochs=3)
    steps = math.ceil(1438 / 32)
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= steps + 3  # third batch of epoch 2

    result, events = run_events(cfg, should_stop)
    assert isinstance(result, RunStopped), result
    assert calls["n"] == steps + 3  # checked once per batch, and nothing ran after True
    assert events[-1] is result
    assert [e.epoch for e in of_type(events, EpochEnded)] == [1]
    assert result.summary.epochs_done == 1
    assert all(p.epoch == 1 or p.step <= 3 for p in of_type(events, BatchProgressed))
    run = tmp_path / "run"
    assert len(read_rows(run)) == 1
    assert torch.load(run / "model.pt", weights_only=True)["epoch"] == 1
    assert json.loads((run / "summary.json").read_text())["status"] == "stopped"


def test_stop_before_first_epoch_ends(tmp_path):
    result, events = run_events(cfg_for(tmp_path, dataset="digits", epochs=2), lambda: True)
    assert isinstance(result, RunStopped), result
    assert result.summary.epochs_done == 0 and result.summary.final is None
    assert not of_type(events, EpochEnded)
    assert read_rows(tmp_path / "run") == []


# --- determinism -----------------------------------------------------------------------


def _loss_acc(run_dir):
    return [tuple(r[c] for c in LOSS_ACC) for r in read_rows(run_dir)]


def test_same_seed_same_metrics_different_seed_differs(tmp_path):
    kw = {"dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 64}
    run_events(cfg_for(tmp_path, "a", seed=7, **kw))
    run_events(cfg_for(tmp_path, "b", seed=7, **kw))
    run_events(cfg_for(tmp_path, "c", seed=8, **kw))
    a, b, c = (_loss_acc(tmp_path / n) for n in "abc")
    assert len(a) == 2
    assert a == b
    assert a != c
    assert [r[1:] for r in a] != [r[1:] for r in c]
    # timing columns are present but not compared
    assert all(float(r["seconds"]) > 0 for r in read_rows(tmp_path / "a"))


# --- run directory ---------------------------------------------------------------------


def test_run_dir_contents(tmp_path):
    cfg = cfg_for(
        tmp_path,
        dataset="digits",
        model="softmax",
        epochs=2,
        batch_size=64,
        lr=0.01,
        optimizer="momentum",
        weight_decay=1e-4,
        seed=3,
    )
    result, events = run_events(cfg)
    assert isinstance(result, RunFinished), result
    run = tmp_path / "run"
    files = {p.name for p in run.iterdir()}
    assert {"config.json", "metrics.csv", "confusion.csv", "model.pt", "summary.json"} <= files
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]

    saved = json.loads((run / "config.json").read_text())
    assert saved == {**cfg.to_dict(), "threads": 1}  # the thread count as applied
    assert config_from_dict(saved) == replace(cfg, threads=1)
    assert saved["momentum"] == 0.9 and saved["data_dir"]  # every None resolved

    text = (run / "metrics.csv").read_text()
    assert text.splitlines()[0] == HEADER == ",".join(METRIC_COLUMNS)
    rows = read_rows(run)
    ended = of_type(events, EpochEnded)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for r, e in zip(rows, ended, strict=True):
        assert float(r["test_acc"]) == pytest.approx(e.test_acc, rel=1e-5)
        assert float(r["train_loss"]) == pytest.approx(e.train_loss, rel=1e-5)
        assert float(r["lr"]) == 0.01

    lines = list(csv.reader((run / "confusion.csv").read_text().splitlines()))
    assert lines[0] == ["true\\pred", *DATASETS["digits"].classes]
    assert [r[0] for r in lines[1:]] == list(DATASETS["digits"].classes)
    matrix = [[int(v) for v in r[1:]] for r in lines[1:]]
    assert matrix == of_type(events, EvaluationReady)[-1].confusion
    assert sum(map(sum, matrix)) == 359

    state = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "config", "epoch"} <= set(state)
    assert state["epoch"] == 2 and state["config"] == saved
    net = build_model("softmax", DATASETS["digits"])
    net.load_state_dict(state["model"], strict=True)
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.01
    assert state["optimizer"]["param_groups"][0]["momentum"] == 0.9

    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_done"] == 2
    assert summary["best_test_acc"] == result.summary.best_test_acc


def test_default_run_dir_under_runs(tmp_path):
    cfg = make_config(dataset="breast-cancer", epochs=1, device="cpu")
    result, _ = run_events(cfg)
    assert isinstance(result, RunFinished), result
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 1 and run_dirs[0].name.endswith("-breast-cancer-logreg")
    assert Path(result.summary.run_dir).resolve() == run_dirs[0].resolve()


# --- init ------------------------------------------------------------------------------


def test_init_normal():
    torch.manual_seed(0)
    net = build_model("deep-mlp", DATASETS["mnist"], init="normal")
    weights = torch.cat([p.detach().view(-1) for n, p in net.named_parameters() if "weight" in n])
    biases = [p for n, p in net.named_parameters() if "bias" in n]
    assert len(biases) == 6 and all(torch.count_nonzero(b) == 0 for b in biases)
    assert abs(float(weights.mean())) < 1e-3
    assert float(weights.std()) == pytest.approx(0.01, rel=0.02)
    # PyTorch's default init is neither
    default = build_model("deep-mlp", DATASETS["mnist"])
    assert torch.count_nonzero(default[1].bias) > 0
    assert float(default[1].weight.detach().std()) > 0.015


def test_init_normal_through_config(tmp_path):
    cfg = cfg_for(tmp_path, dataset="digits", model="mlp", epochs=1, init="normal", lr=1e-6, optimizer="sgd")
    assert cfg.init == "normal"
    result, _ = run_events(cfg)
    assert isinstance(result, RunFinished), result
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["model"]
    # one epoch at lr 1e-6 barely moves the N(0, 0.01) weights and zero biases
    assert float(state["1.weight"].std()) == pytest.approx(0.01, rel=0.05)
    assert float(state["1.bias"].abs().max()) < 1e-4


# --- acceptance numbers ----------------------------------------------------------------


def test_linear_defaults_recover_truth(tmp_path):
    cfg = cfg_for(tmp_path, dataset="linear")
    assert (cfg.model, cfg.epochs, cfg.batch_size, cfg.lr, cfg.optimizer) == ("linreg", 5, 10, 0.03, "sgd")
    result, _ = run_events(cfg)
    assert isinstance(result, RunFinished), result
    final = result.summary.final
    w, b = final.extras["w"], final.extras["b"]
    assert w == pytest.approx([2.0, -3.4], abs=0.05)
    assert b == pytest.approx(4.2, abs=0.05)
    assert final.test_loss < 1e-3


def test_xor_mlp_beats_softmax(tmp_path):
    accs = {}
    for model in ("mlp", "softmax"):
        cfg = cfg_for(tmp_path, model, dataset="xor", model=model)
        result, _ = run_events(cfg)
        assert isinstance(result, RunFinished), result
        accs[model] = result.summary.final.test_acc
    assert accs["mlp"] >= accs["softmax"] + 0.10, accs


def test_digits_default_run(tmp_path):
    cfg = cfg_for(tmp_path, dataset="digits")
    assert (cfg.model, cfg.epochs) == ("mlp", 30)
    result, _ = run_events(cfg)
    assert isinstance(result, RunFinished), result
    assert result.summary.final.test_acc >= 0.93
