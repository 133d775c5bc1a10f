"""Data-parallel runs under the real torchrun: two CPU processes with gloo (no mocks)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dltui.engine import EpochEnded, train
from dltui.engine.distributed import Distributed
from dltui.resolve import make_config

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process tests use /proc")

SETTINGS = ["--model", "mlp", "--batch-size", "32", "--lr", "0.001", "--optimizer", "adam", "--threads", "1"]


def torchrun(n: int, *args: str, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
           "-m", "dltui", "run", *args]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, **kw)


def rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def wait_for_epoch(run: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if (run / "metrics.csv").exists() and rows(run):
            return
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    raise AssertionError("no epoch finished in time")


def ranks_of(parent: int) -> dict[int, int]:
    """{rank: pid} of torchrun's workers, from their environment."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if ppid == parent:
            for kv in env:
                if kv.startswith(b"RANK="):
                    found[int(kv[5:])] = int(entry.name)
    return found


def test_two_ranks_match_one_and_resume_on_one(tmp_path):
    run = tmp_path / "ddp"
    proc = torchrun(2, "--epochs", "3", "--out", str(run), *SETTINGS)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "data-parallel: 2 ranks x batch 16 = global batch 32 (gloo)" in out
    assert out.count("epoch 3/3") == 1  # rank 0 alone reports
    metrics = rows(run)
    assert [int(r["epoch"]) for r in metrics] == [1, 2, 3]
    confusion = list(csv.reader((run / "confusion.csv").read_text().splitlines()))[1:]
    assert sum(int(v) for r in confusion for v in r[1:]) == 359  # the whole test split, counted once
    saved = json.loads((run / "config.json").read_text())
    assert saved["batch_size"] == 32  # --batch-size is the global batch

    events: list = []
    single = make_config(device="cpu", out=str(tmp_path / "one"), epochs=3, model="mlp", batch_size=32,
                         lr=0.001, optimizer="adam")  # fmt: skip
    train(single, events.append, threads=1)
    one = [e for e in events if isinstance(e, EpochEnded)][-1].test_acc
    assert abs(float(metrics[-1]["test_acc"]) - one) <= 0.02

    # the 2-rank run continues in a single process
    resumed = subprocess.run(
        [sys.executable, "-m", "dltui", "run", "--resume", str(run), "--epochs", "4", "--threads", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert [int(r["epoch"]) for r in rows(run)] == [1, 2, 3, 4]


def test_sigterm_stops_every_rank_with_finished_epochs_on_disk(tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "dltui", "run", "--nproc", "2", "--epochs", "500", "--out", str(run), *SETTINGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_epoch(run, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["epochs_done"] == len(rows(run)) >= 1
    assert out.count("stopping after this batch") == 1  # one rank speaks for all


def test_a_killed_rank_ends_the_run_with_one_clear_line(tmp_path):
    run = tmp_path / "ddp"
    proc = torchrun(2, "--epochs", "500", "--out", str(run), *SETTINGS)
    wait_for_epoch(run, proc)
    workers = ranks_of(proc.pid)
    assert set(workers) == {0, 1}
    os.kill(workers[1], signal.SIGKILL)
    t0 = time.monotonic()
    out, _ = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 30
    assert proc.returncode != 0
    errors = [ln for ln in out.splitlines() if ln.startswith("dltui: error:")]
    assert len(errors) == 1 and "died or stopped answering" in errors[0], out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["epochs_done"] >= 1


def test_single_process_has_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert Distributed.start("cpu") is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert Distributed.start("cpu") is None


def test_nproc_is_validated():
    from helpers import cli, one_line_error

    result = cli("run", "--nproc", "two")
    assert result.exit_code == 2 and "--nproc" in one_line_error(result)
