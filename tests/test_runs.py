"""Run directories as the channel between a run and its viewers: events.jsonl, the
evaluation artefacts, run statuses (crashed included), `dltui runs` and `dltui watch`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dltui.cli import app
from dltui.engine import EpochEnded, EvaluationReady, RunFinished, RunStarted
from dltui.resolve import make_config
from dltui.runs import RunWatcher, engine_event, read_run, scan

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    e = {**os.environ, "DLTUI_OFFLINE": "1"}
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), e.get("PYTHONPATH", "")]))
    return e


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, list]:
    from helpers import run_events

    out = tmp_path_factory.mktemp("runs") / "done"
    result, events = run_events(make_config(epochs=3, batch_size=8, out=str(out)))
    assert isinstance(result, RunFinished)
    return out, events


def lines(run_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "events.jsonl").read_text().splitlines()]


def test_events_jsonl_tells_the_whole_run(finished):
    out, _ = finished
    events = lines(out)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("epoch") == 3 and kinds.count("evaluation") == 3
    started = events[0]
    assert started["config"]["epochs"] == 3 and started["dataset"]["classes"] == [str(i) for i in range(10)]
    assert started["dataset"]["input_shape"] == [1, 8, 8] and started["pid"] == os.getpid()
    assert events[-1]["summary"]["epochs_done"] == 3 and events[-1]["summary"]["status"] == "finished"
    progress = [e["time"] for e in events if e["event"] == "progress"]
    assert all(b - a >= 0.2 for a, b in zip(progress, progress[1:], strict=False))  # coalesced, ~4/s at most


def test_evaluation_artefacts_hold_what_a_viewer_draws(finished):
    out, events = finished
    with np.load(out / "testset.npz", allow_pickle=False) as t:
        assert t["x"].shape == (359, 1, 8, 8) and t["x"].dtype == np.uint8 and len(t["sample"]) == 48
        y = t["y"]
    with np.load(out / "evaluation.npz", allow_pickle=False) as e:
        assert int(e["epoch"]) == 3 and len(e["y_pred"]) == len(y) == 359
        assert int(e["confusion"].sum()) == 359
        last = [ev for ev in events if isinstance(ev, EvaluationReady)][-1]
        assert e["confusion"].tolist() == last.confusion
        assert (e["y_pred"] == last.y_pred.numpy()).all()


def test_replaying_a_run_gives_the_engine_events(finished):
    out, events = finished
    watcher = RunWatcher(out)
    replayed = [engine_event(watcher, e) for e in watcher.poll()]
    started = next(e for e in replayed if isinstance(e, RunStarted))
    assert started.config.epochs == 3 and started.data.x_test.shape == (359, 1, 8, 8)
    got = [e for e in replayed if isinstance(e, EpochEnded)]
    want = [e for e in events if isinstance(e, EpochEnded)]
    assert [(e.epoch, e.test_acc, e.train_loss) for e in got] == [(e.epoch, e.test_acc, e.train_loss) for e in want]
    assert isinstance(replayed[-1], RunFinished) and replayed[-1].summary.epochs_done == 3
    assert watcher.poll() == []  # nothing new


def test_watcher_waits_for_a_half_written_line(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with open(run / "events.jsonl", "w") as f:
        f.write('{"event": "started", "config": {}}\n{"event": "ep')
    watcher = RunWatcher(run)
    assert [e["event"] for e in watcher.poll()] == ["started"]
    with open(run / "events.jsonl", "a") as f:
        f.write('och", "epoch": 1}\nnot json at all\n')
    assert watcher.poll() == [{"event": "epoch", "epoch": 1}]  # the garbage line is skipped


def test_watcher_survives_a_deleted_directory(tmp_path, finished):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(finished[0], run)
    watcher = RunWatcher(run)
    assert watcher.poll()
    shutil.rmtree(run)
    assert watcher.poll() == [] and watcher.evaluation() is None and read_run(run) is None


def test_a_run_from_an_older_dltui_reads_from_metrics(tmp_path, finished):
    """No events.jsonl, no artefacts: config.json and metrics.csv stand in."""
    old = tmp_path / "old"
    old.mkdir()
    for name in ("config.json", "metrics.csv", "summary.json"):
        (old / name).write_bytes((finished[0] / name).read_bytes())
    summary = json.loads((old / "summary.json").read_text())
    (old / "summary.json").write_text(json.dumps({k: summary[k] for k in ("status", "epochs_done", "best_test_acc")}))
    watcher = RunWatcher(old)
    kinds = [e["event"] for e in watcher.poll()]
    assert kinds == ["started", "epoch", "epoch", "epoch", "finished"]
    info = read_run(old)
    assert info.status == "finished" and info.epochs_done == 3


def _slow_run(out: Path) -> subprocess.Popen:
    args = ["run", "--batch-size", "1", "--epochs", "40", "--threads", "1", "--out", str(out)]
    return subprocess.Popen([sys.executable, "-m", "dltui", *args], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _wait(condition, proc=None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        assert proc is None or proc.poll() is None or condition(), f"exited {proc.returncode}"
        time.sleep(0.05)


def test_statuses_running_stopped_crashed(tmp_path, finished):
    live, stopped, killed = tmp_path / "live", tmp_path / "stopped", tmp_path / "killed"
    procs = {p: _slow_run(p) for p in (live, stopped, killed)}
    try:
        for path, proc in procs.items():
            # model.pt too: it may trail metrics.csv by one epoch, and the killed run resumes from it
            ok = lambda path=path: (path / "model.pt").exists() and read_run(path).epochs_done >= 1  # noqa: E731
            _wait(ok, proc)
        assert {read_run(p).status for p in procs} == {"running"}
        procs[stopped].send_signal(signal.SIGTERM)
        procs[killed].kill()  # no final event, no summary update: a crash
        procs[stopped].wait(60)
        procs[killed].wait(60)
        statuses = {r.path.name: r.status for r in scan(tmp_path)}
        assert statuses == {"live": "running", "stopped": "stopped", "killed": "crashed"}
        result = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path), "--json"])
        listed = {Path(r["path"]).name: r for r in json.loads(result.output)}
        assert listed["killed"]["status"] == "crashed" and listed["live"]["pid"] == procs[live].pid
        # a crashed run continues from its checkpoint, and is then just finished
        done = read_run(killed).epochs_done
        cont = runner.invoke(app, ["run", "--resume", str(killed), "--epochs", str(done + 1)])
        assert cont.exit_code == 0, cont.output
        assert read_run(killed).status == "finished"
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def test_runs_table_and_watch_refusal(tmp_path, finished):
    result = runner.invoke(app, ["runs", "--runs-dir", str(finished[0].parent)])
    assert result.exit_code == 0 and "done" in result.output and "finished" in result.output
    empty = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path / "none")])
    assert empty.exit_code == 0 and "no runs yet" in empty.output
    bad = runner.invoke(app, ["watch", str(tmp_path)])
    assert bad.exit_code == 2 and "is not a run directory" in bad.output


def test_a_run_without_out_starts_where_the_runs_are_listed(tmp_path, monkeypatch):
    """$DLTUI_RUNS_DIR is where the app and `dltui runs` look: `dltui run` starts there too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLTUI_RUNS_DIR", str(tmp_path / "elsewhere"))
    result = runner.invoke(app, ["run", "--epochs", "1", "--threads", "1"])
    assert result.exit_code == 0, result.output
    made = list((tmp_path / "elsewhere").iterdir())
    assert len(made) == 1 and made[0].name.endswith("-digits-mlp") and not (tmp_path / "runs").exists()
