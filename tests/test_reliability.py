"""Bad input, divergence, interruption, resume and checkpoint safety, through the real CLI."""

from __future__ import annotations

import csv
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import cli, one_line_error, write_mnist_like
from typer.testing import CliRunner

from dltui.cli import app
from dltui.engine.checkpoint import load_checkpoint

runner = CliRunner()
# a real safetensors file: 8-byte header length, JSON header, one float32
SAFETENSORS = b"6\0\0\0\0\0\0\0" + b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' + b"\0" * 4
SLOW_RUN = ["run", "--dataset", "digits", "--model", "mlp", "--batch-size", "1", "--epochs", "40", "--threads", "1"]


def rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    result = runner.invoke(app, ["run", "--epochs", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


# --- bad data -----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate", "bad-magic", "empty", "huge-header"])
def test_corrupt_dataset_files_give_a_clear_error_and_no_lasting_damage(tmp_path, damage):
    write_mnist_like(tmp_path / "data")
    raw = tmp_path / "data" / "MNIST" / "raw"
    images = raw / "train-images-idx3-ubyte"
    good = images.read_bytes()
    broken = {
        "truncate": good[: len(good) // 2],
        "bad-magic": b"\0\0\0\0" + good[4:],
        "empty": b"",
        "huge-header": struct.pack(">IIII", 2051, 2**32 - 1, 28, 28) + good[16:],  # claims 3 TB
    }[damage]
    images.write_bytes(broken)
    args = ["run", "--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--epochs", "1", "--batch-size", "16"]
    t0 = time.monotonic()
    result = cli(*args, "--out", str(tmp_path / "bad"))
    assert result.exit_code == 2
    assert time.monotonic() - t0 < 30
    line = one_line_error(result)
    assert "damaged or incomplete" in line and str(raw) in line
    images.write_bytes(good)  # the user replaces the file: the next run works, nothing cached the failure
    assert cli(*args, "--out", str(tmp_path / "good")).exit_code == 0


def test_missing_dataset_offline_says_where_files_go(tmp_path):
    result = cli("run", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    line = one_line_error(result)
    assert str(tmp_path / "d" / "FashionMNIST" / "raw") in line and "digits" in line
    assert not (tmp_path / "d" / "FashionMNIST").exists()


def test_failed_download_leaves_no_partial_files(tmp_path, monkeypatch):
    import torchvision

    from dltui.data import DATASETS, vision
    from dltui.errors import DataError

    class HalfDownload:
        def __init__(self, root, train=True, download=False):
            raw = Path(root) / "MNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            (raw / "train-images-idx3-ubyte.gz").write_bytes(b"partial")
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error timed out>")

    monkeypatch.delenv("DLTUI_OFFLINE")
    monkeypatch.setattr(torchvision.datasets, "MNIST", HalfDownload)
    with pytest.raises(DataError, match="timed out"):
        vision._download(DATASETS["mnist"], "MNIST", str(tmp_path))
    assert not (tmp_path / "MNIST").exists()


def test_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli("run", "--dataset", "mnist", "--data-dir", str(blocker / "sub"))
    assert result.exit_code == 2
    assert one_line_error(result).startswith("dltui: error: --data-dir: cannot write")


def test_out_dir_holding_a_run_is_refused(finished_run):
    result = cli("run", "--out", str(finished_run))
    assert result.exit_code == 2
    assert "--resume" in one_line_error(result)


# --- divergence -------------------------------------------------------------------------------


def test_divergence_stops_with_exit_3_and_keeps_finished_epochs(tmp_path):
    out = tmp_path / "div"
    result = cli("run", "--dataset", "linear", "--lr", "1.05", "--epochs", "6", "--out", str(out))
    assert result.exit_code == 3
    line = one_line_error(result)
    assert " diverged at epoch " in line and "lower the learning rate" in line
    epoch = int(line.split("epoch ")[1].split(",")[0])
    assert epoch >= 2
    assert len(rows(out)) == epoch - 1
    assert load_checkpoint(out)["epoch"] == epoch - 1
    assert json.loads((out / "summary.json").read_text())["status"] == "failed"


def test_disk_full_mid_run_is_one_line_and_keeps_earlier_epochs(tmp_path, monkeypatch):
    """Run files are written on a writer thread; its failure still ends the run in one line
    (exit 5) and the epochs written before it stay readable."""
    import errno

    from dltui.engine import checkpoint as rundir

    real, calls = rundir.save_checkpoint, []

    def full_on_third(run_dir, state):
        calls.append(state["epoch"])
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "model.pt"))
        real(run_dir, state)

    monkeypatch.setattr(rundir, "save_checkpoint", full_on_third)
    out = tmp_path / "full"
    result = cli("run", "--epochs", "6", "--out", str(out))
    assert result.exit_code == 5, result.output
    line = one_line_error(result)
    assert "cannot write epoch 3's files" in line and "No space left on device" in line
    assert calls == [1, 2, 3]  # nothing after the failed write was attempted
    assert load_checkpoint(out)["epoch"] == 2
    assert [r["epoch"] for r in rows(out)] == ["1", "2", "3"]  # metrics may lead model.pt by one row
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["epochs_done"] == 2  # what is on disk


def test_a_failed_write_is_reported_even_when_the_run_stops(tmp_path, monkeypatch):
    """Stop requested after a write failed: the run fails on the write, not 'stopped'."""
    from helpers import run_events

    from dltui.engine import RunFailed
    from dltui.engine import checkpoint as rd
    from dltui.resolve import make_config

    real, failed = rd.save_checkpoint, []

    def fail_second(run_dir, state):
        if state["epoch"] == 2:
            failed.append(True)
            raise OSError(28, "No space left on device")
        real(run_dir, state)

    monkeypatch.setattr(rd, "save_checkpoint", fail_second)
    cfg = make_config(epochs=20, out=str(tmp_path / "r"))
    result, _ = run_events(cfg, should_stop=lambda: bool(failed))
    assert isinstance(result, RunFailed) and result.exit_code == 5, result
    assert "cannot write epoch 2's files" in result.message
    assert result.summary.epochs_done == 1 and load_checkpoint(tmp_path / "r")["epoch"] == 1


def test_writer_runs_nothing_after_a_failure():
    from dltui.engine.rundir import Writer

    ran: list[int] = []

    def job(i: int):
        def run() -> None:
            ran.append(i)
            if i == 1:
                raise OSError("disk full")

        return run

    w = Writer()
    w.submit(job(1))
    w.submit(job(2))  # may or may not see the failure yet; it must not run either way
    failure = w.close()
    assert ran == [1]
    assert isinstance(failure, OSError)


# --- checkpoints ------------------------------------------------------------------------------


class _Exploit:
    """Unpickling this would create a marker file: what a malicious model.pt could do."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_checkpoint_never_runs_code(tmp_path, finished_run):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil"
    evil.mkdir()
    state = load_checkpoint(finished_run)
    state["model"] = {"0.weight": _Exploit(str(marker))}
    torch.save(state, evil / "model.pt")
    for args in (
        ["eval", str(evil / "model.pt")],
        ["eval", str(evil)],
        ["run", "--resume", str(evil), "--epochs", "5"],
    ):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert "refusing to load" in one_line_error(result)
        assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"", "not a dltui checkpoint (the file is empty)"),
        (b"hello, I am a text file\n", "not a dltui checkpoint (not a PyTorch file"),
        (bytes(range(256)) * 64, "not a dltui checkpoint (not a PyTorch file"),
        (SAFETENSORS, "not a dltui checkpoint (a safetensors file"),
        ("tensor", "not a dltui checkpoint"),
        ("partial", "damaged or truncated zip archive"),
    ],
)
def test_bad_checkpoint_files(tmp_path, finished_run, content, message):
    path = tmp_path / "model.pt"
    if content == "tensor":
        torch.save(torch.zeros(3), path)
    elif content == "partial":
        data = (finished_run / "model.pt").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content is not None:
        path.write_bytes(content)
    result = cli("eval", str(path))
    assert result.exit_code == 2
    assert message in one_line_error(result)


def test_eval_refuses_a_checkpoint_for_another_model(finished_run):
    result = cli("eval", str(finished_run), "--model", "softmax")
    assert result.exit_code == 2
    assert "mlp trained on digits" in one_line_error(result)


def test_weights_that_do_not_fit_the_saved_config(tmp_path, finished_run):
    state = load_checkpoint(finished_run)
    state["config"]["model"] = "deep-mlp"
    torch.save(state, tmp_path / "model.pt")
    result = cli("eval", str(tmp_path / "model.pt"))
    assert result.exit_code == 2
    assert "weights do not fit deep-mlp" in one_line_error(result)


def test_resume_refuses_changed_settings_and_finished_runs(finished_run):
    changed = cli("run", "--resume", str(finished_run), "--model", "softmax", "--epochs", "5")
    assert changed.exit_code == 2
    assert "keeps its settings" in one_line_error(changed)
    done = cli("run", "--resume", str(finished_run))
    assert done.exit_code == 2
    assert "already completed 2 epochs" in one_line_error(done)
    missing = cli("run", "--resume", str(finished_run / "nope"))
    assert missing.exit_code == 2


# --- interruption and resume ------------------------------------------------------------------


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(tmp_path):
    from dltui.engine import EpochEnded, RunStopped, train
    from dltui.resolve import make_config

    settings = dict(dataset="digits", model="mlp", epochs=4, batch_size=32, lr=1e-3, optimizer="adam")
    whole = tmp_path / "whole"
    train(make_config(**settings, out=str(whole)))

    part = tmp_path / "part"
    seen: list[object] = []
    stop_after = {"n": 0}

    def should_stop() -> bool:  # stop in the middle of epoch 3
        if sum(isinstance(e, EpochEnded) for e in seen) >= 2:
            stop_after["n"] += 1
        return stop_after["n"] > 10

    assert isinstance(train(make_config(**settings, out=str(part)), seen.append, should_stop), RunStopped)
    assert len(rows(part)) == 2
    assert cli("run", "--resume", str(part)).exit_code == 0
    keep = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr")
    assert [{k: r[k] for k in keep} for r in rows(part)] == [{k: r[k] for k in keep} for r in rows(whole)]
    assert (part / "confusion.csv").read_text() == (whole / "confusion.csv").read_text()


def _start(out: Path) -> subprocess.Popen:
    env = {**os.environ, "DLTUI_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "dltui", *SLOW_RUN, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_rows(out: Path, n: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (out / "metrics.csv").exists() and len(rows(out)) >= n and (out / "model.pt").exists():
            return  # model.pt may trail metrics.csv by one epoch: wait for a checkpoint too
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the run produced no epochs in time")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_after_the_batch_and_saves_everything(tmp_path, sig):
    out = tmp_path / "run"
    proc = _start(out)
    _wait_for_rows(out, 1, proc)
    proc.send_signal(sig)
    t0 = time.monotonic()
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 5
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"metrics and checkpoint are in {out}" in stderr
    done = load_checkpoint(out)["epoch"]
    assert done >= 1 and len(rows(out)) == done
    assert json.loads((out / "summary.json").read_text())["status"] == "stopped"
    assert json.loads((out / "config.json").read_text())["epochs"] == 40


def test_second_ctrl_c_aborts_at_once(tmp_path):
    out = tmp_path / "run"
    proc = _start(out)
    _wait_for_rows(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=10)
    # 130 from our handler, or -SIGINT when it lands during interpreter shutdown (a shell shows 130 too)
    assert proc.returncode in (130, -signal.SIGINT)
    assert "Traceback" not in stderr
    assert load_checkpoint(out)["epoch"] >= 1


@pytest.mark.parametrize("delay", [0.0, 0.13, 0.37])
def test_kill_9_leaves_readable_files_and_the_run_resumes(tmp_path, delay):
    out = tmp_path / "run"
    proc = _start(out)
    _wait_for_rows(out, 2, proc)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    json.loads((out / "config.json").read_text())
    saved = load_checkpoint(out)["epoch"]
    written = len(rows(out))
    assert saved >= 1 and written - saved in (0, 1)
    # finish from the checkpoint, quickly, with the same settings
    result = cli("run", "--resume", str(out), "--epochs", str(saved + 1))
    assert result.exit_code == 0, result.output
    assert [int(r["epoch"]) for r in rows(out)] == list(range(1, saved + 2))
