"""`dltui sweep`: grids and ranges searched by Optuna, pruning, failed trials, two processes
on one SQLite storage, Ctrl+C and --resume, and the Titanic-style leaderboard. Tiny runs on
digits (or small generated tables), one thread each."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import cli, one_line_error
from test_own_data import titanic_like

from dltui.errors import ConfigError
from dltui.runs import read_run, scan
from dltui.sweep_board import is_sweep_dir, read_leaderboard, read_sweep
from dltui.sweep_space import parse, split_flags


def board(sweep_dir: Path) -> list[dict[str, str]]:
    rows = read_leaderboard(sweep_dir)
    assert rows, f"no leaderboard in {sweep_dir}"
    return rows


def best_val(run_dir: str, metric: str = "val_acc") -> float:
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        values = [float(r[metric]) for r in csv.DictReader(f)]
    return max(values) if metric.endswith("acc") else min(values)


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "dltui", "sweep", *args]


# --- the search space ---


def test_lists_and_ranges_parse_into_a_space():
    assert parse("model", "mlp") is None  # one value: a fixed setting
    d = parse("model", "MLP, softmax")
    assert d.kind == "list" and d.values == ("mlp", "softmax")
    d = parse("lr", "1e-4..1e-1:log")
    assert (d.kind, d.type, d.low, d.high, d.log) == ("range", "float", 1e-4, 0.1, True)
    d = parse("epochs", "2..6")
    assert (d.type, d.low, d.high, d.log) == ("int", 2, 6, False)
    assert parse("batch_size", "32,64").values == (32, 64)
    assert parse("dataset", "../data/a,b.csv") is None  # a path stays a path
    fixed, space = split_flags({"dataset": "digits", "model": "mlp,cnn", "lr": "0.1"})
    assert fixed == {"dataset": "digits", "lr": "0.1"} and space.fields == ["model"] and space.grid_size == 2


@pytest.mark.parametrize(
    ("field", "raw", "says"),
    [
        ("lr", "0.1..0.01", "lo < hi"),
        ("lr", "0..0.1:log", "lo > 0"),
        ("lr", "0.1..1:lin", "lo..hi:log"),
        ("lr", "0.1,abc", "'abc' is not a number"),
        ("epochs", "2..6.5", "not an integer"),
        ("model", "mlp,mpl", "did you mean 'mlp'"),
        ("optimizer", "adam,adma", "did you mean 'adam'"),
        ("lr", "0.1,,0.2", "empty item"),
        ("lr", "0.1,0.1", "listed twice"),
    ],
)
def test_malformed_lists_and_ranges_are_refused_in_one_line(field, raw, says):
    with pytest.raises(ConfigError) as err:
        parse(field, raw)
    assert says in str(err.value) and str(err.value).startswith("--" + field.replace("_", "-"))


def test_a_sweep_refuses_what_cannot_be_swept(tmp_path):
    nothing = cli("sweep", "--model", "mlp", "--epochs", "1")
    assert nothing.exit_code == 2 and "nothing to sweep" in one_line_error(nothing)
    val = cli("sweep", "--model", "mlp,softmax", "--val-fraction", "0.1,0.2")
    assert val.exit_code == 2 and "--val-fraction" in one_line_error(val)
    no_val = cli("sweep", "--model", "mlp,softmax", "--val-fraction", "0")
    assert no_val.exit_code == 2 and "chooses by validation" in one_line_error(no_val)
    big = cli("sweep", "--model", "mlp,softmax", "--trials", "3")
    assert big.exit_code == 2 and "1 to 2" in one_line_error(big)
    test_metric = cli("sweep", "--model", "mlp,softmax", "--metric", "test_acc")
    assert test_metric.exit_code == 2 and "--metric" in one_line_error(test_metric)
    typo = cli("sweep", "--model", "mlp,softmax", "--epochs", "x")  # every trial would fail: said at once
    assert typo.exit_code == 2 and "--epochs" in one_line_error(typo)
    gone = tmp_path / "no" / "such" / "dir" / "x.db"
    storage = cli("sweep", "--model", "mlp,softmax", "--storage", f"sqlite:///{gone}", "--out", str(tmp_path / "s"))
    assert storage.exit_code == 2 and "--storage: cannot open" in one_line_error(storage)
    assert not Path("runs").exists() and not (tmp_path / "s").exists()  # nothing was created


# --- sweeps ---


def test_grid_of_two_models_and_two_lrs_ranks_four_trials_by_their_metrics(tmp_path):
    out = tmp_path / "grid"
    result = cli("sweep", "--model", "mlp,softmax", "--lr", "0.01,0.001", "--epochs", "2", "--threads", "1",
                 "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = board(out)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"finished"}
    assert {(r["model"], float(r["lr"])) for r in rows} == {(m, lr) for m in ("mlp", "softmax") for lr in (0.01, 0.001)}
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    values = [float(r["val_acc"]) for r in rows]
    assert values == sorted(values, reverse=True)
    for r in rows:  # each row is its trial's own best validation accuracy, read from its run directory
        assert float(r["val_acc"]) == pytest.approx(best_val(r["run_dir"]), abs=1e-6)
        assert read_run(Path(r["run_dir"])).status == "finished"
        assert json.loads((Path(r["run_dir"]) / "trial.json").read_text())["status"] == "finished"
    spec = read_sweep(out)
    assert is_sweep_dir(out) and spec["sampler"] == "grid" and spec["trials"] == 4 and spec["metric"] == "val_acc"
    assert spec["fixed"]["val_fraction"] == "0.1" and spec["storage"] == "sweep.db"
    assert len(scan(tmp_path)) == 4  # `dltui runs` and the app find the trials one level down

    # the best trial's command line trains the same run again, alone
    line = next(ln for ln in result.output.splitlines() if ln.startswith("train it alone: "))
    args = shlex.split(line.removeprefix("train it alone: "))[2:]
    again = cli("run", *args, "--threads", "1", "--out", str(tmp_path / "again"), "--json")
    assert again.exit_code == 0, again.output
    assert best_val(str(tmp_path / "again")) == pytest.approx(float(rows[0]["val_acc"]))


def test_a_log_range_with_six_trials_draws_six_learning_rates_inside_it(tmp_path):
    out = tmp_path / "tpe"
    result = cli("sweep", "--model", "softmax", "--lr", "1e-3..1e-1:log", "--trials", "6", "--epochs", "2",
                 "--threads", "1", "--out", str(out), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(ln) for ln in result.stdout.splitlines()]
    assert [ln["event"] for ln in lines] == ["trial"] * 6 + ["sweep"]
    rows = board(out)
    lrs = [float(r["lr"]) for r in rows]
    assert len(rows) == 6 and len(set(lrs)) == 6 and all(1e-3 <= lr <= 0.1 for lr in lrs)
    assert read_sweep(out)["sampler"] == "tpe"
    assert lines[-1]["best"]["trial"] == int(rows[0]["trial"]) and "--lr" in lines[-1]["command"]


def test_pruning_ends_a_hopeless_trial_after_a_few_epochs(tmp_path):
    out = tmp_path / "prune"
    # seed 0 shuffles this grid so that the hopeless lr comes after two good ones have finished
    result = cli("sweep", "--model", "mlp", "--lr", "1e-6,0.01,0.005", "--epochs", "6", "--threads", "1",
                 "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {float(r["lr"]): r for r in board(out)}
    bad = rows[1e-6]
    assert int(bad["trial"]) == 2, "the grid's order changed: pick values so that 1e-6 runs last"
    assert bad["status"] == "pruned" and int(bad["epochs_done"]) < 6 and "pruned after epoch" in bad["reason"]
    assert rows[0.01]["status"] == rows[0.005]["status"] == "finished"
    assert int(rows[0.01]["epochs_done"]) == 6
    assert read_run(Path(bad["run_dir"])).status == "stopped"  # an ordinary run, stopped by its should_stop
    assert json.loads((Path(bad["run_dir"]) / "trial.json").read_text())["status"] == "pruned"


def test_failed_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "fits"
    result = cli("sweep", "--model", "mlp,logreg", "--epochs", "1", "--threads", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in board(out)}
    assert rows["mlp"]["status"] == "finished" and rows["mlp"]["rank"] == "1"
    assert rows["logreg"]["status"] == "failed" and "does not fit dataset 'digits'" in rows["logreg"]["reason"]
    assert "--model logreg fails" in result.output  # said before the sweep began

    out = tmp_path / "diverge"
    result = cli("sweep", "--dataset", "linear", "--model", "linreg", "--optimizer", "sgd", "--lr", "20,0.01",
                 "--epochs", "2", "--threads", "1", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {float(r["lr"]): r for r in board(out)}
    assert rows[20.0]["status"] == "failed" and "diverged" in rows[20.0]["reason"]
    assert rows[0.01]["status"] == "finished" and "val_loss" in rows[0.01]  # regression: ranked by val_loss

    none = cli("sweep", "--dataset", "linear", "--model", "linreg", "--optimizer", "sgd", "--lr", "20,30",
               "--epochs", "2", "--threads", "1", "--out", str(tmp_path / "none"))  # fmt: skip
    assert none.exit_code == 3, none.output  # no trial finished: the failures' own exit code (diverged)


def test_two_processes_joining_one_sqlite_storage_run_distinct_trials(tmp_path):
    from dltui.sweep import create

    sweep, _ = create({"model": "mlp,softmax,deep-mlp", "lr": "0.01,0.001", "epochs": "3"}, out=str(tmp_path / "s"))
    procs = [
        subprocess.Popen(sweep_cmd("--join", str(sweep.dir), "--threads", "1"), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    rows = board(sweep.dir)
    combos = [(r["model"], r["lr"]) for r in rows]
    assert len(rows) == 6 and len(set(combos)) == 6 and {r["status"] for r in rows} <= {"finished", "pruned"}
    pids = {json.loads((Path(r["run_dir"]) / "summary.json").read_text())["pid"] for r in rows}
    assert len(pids) == 2, outputs  # both processes trained, none twice
    assert len({r["trial"] for r in rows}) == 6


def test_parallel_runs_workers_that_share_the_cores(tmp_path):
    out = tmp_path / "par"
    # trials long enough (~3 s in all) that the second process, which starts in ~2 s, gets some
    result = cli("sweep", "--model", "mlp,softmax,deep-mlp", "--lr", "0.01,0.001", "--epochs", "20", "--no-prune",
                 "--parallel", "2", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = board(out)
    assert len(rows) == 6 and len({(r["model"], r["lr"]) for r in rows}) == 6
    assert "2 workers (1 thread each)" in result.output
    summaries = [json.loads((Path(r["run_dir"]) / "summary.json").read_text()) for r in rows]
    assert len({s["pid"] for s in summaries}) == 2, (out / "worker-1.log").read_text()
    threads = {json.loads((Path(r["run_dir"]) / "config.json").read_text())["threads"] for r in rows}
    assert threads == {max(1, len(os.sched_getaffinity(0)) // 2)}
    assert "trial" in (out / "worker-1.log").read_text()  # the worker's own lines


def test_ctrl_c_stops_the_sweep_cleanly_and_resume_adds_the_missing_trials(tmp_path):
    out = tmp_path / "stop"
    proc = subprocess.Popen(
        sweep_cmd("--model", "mlp,softmax", "--lr", "0.01,0.001", "--epochs", "40", "--threads", "1",
                  "--no-prune", "--out", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the first trial's first epoch is written: ~40 to go
        metrics = list(out.glob("trial-000-*/metrics.csv"))
        if metrics and len(metrics[0].read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, output
    assert "continue with: dltui sweep --resume" in output
    stopped = board(out)
    assert [r["status"] for r in stopped] == ["stopped"] and stopped[0]["trial"] == "0"

    resumed = cli("sweep", "--resume", str(out), "--epochs", "3")  # settings belong to the sweep
    assert resumed.exit_code == 2 and "--epochs cannot change" in one_line_error(resumed)
    resumed = cli("sweep", "--resume", str(out), "--threads", "1", "--trials", "4")
    assert resumed.exit_code == 0, resumed.output
    rows = board(out)
    # the stopped trial's settings ran again (its row gives way to the retry); 4 grid points, each once
    assert len(rows) == 4 and {r["status"] for r in rows} == {"finished"}
    assert len({(r["model"], r["lr"]) for r in rows}) == 4 and "0" not in {r["trial"] for r in rows}
    again = cli("sweep", "--resume", str(out))
    assert again.exit_code == 0 and "best: trial" in again.output  # full: nothing left to run


def test_a_titanic_like_table_gets_a_leaderboard_of_models(tmp_path):
    data = titanic_like(tmp_path / "train.csv", n=240)
    out = tmp_path / "titanic"
    result = cli("sweep", "--dataset", str(data), "--target", "Survived", "--model", "logreg,mlp,deep-mlp",
                 "--lr", "0.01,0.001", "--epochs", "3", "--threads", "1", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = board(out)
    assert len(rows) == 6 and {r["model"] for r in rows} == {"logreg", "mlp", "deep-mlp"}
    finished = [r for r in rows if r["status"] == "finished"]
    assert finished and all(0.5 <= float(r["val_acc"]) <= 1 for r in finished)
    assert read_sweep(out)["fixed"]["dataset"] == str(data.resolve())
    assert "--target Survived" in result.output and "#  trial  val_acc  model" in result.output
