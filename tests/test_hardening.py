"""What a hostile or clumsy user can do to a run: crafted checkpoints, a second writer, a
terminal that goes away, signals, odd paths and flags. Each case: one line, the documented
exit code, and nothing on disk that lies."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
import torch
from helpers import cli, one_line_error
from typer.testing import CliRunner

from dltui.cli import app
from dltui.engine.checkpoint import load_checkpoint
from dltui.sysinfo import cpu_has_amx

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
SLOW = ["--dataset", "digits", "--model", "mlp", "--batch-size", "1", "--threads", "1"]


def rows(run_dir: Path) -> int:
    return len((run_dir / "metrics.csv").read_text().splitlines()) - 1


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def env(**extra: str) -> dict[str, str]:
    e = {**os.environ, "DLTUI_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), e.get("PYTHONPATH", "")]))
    return e


def _default_hup() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # whatever the test runner's own disposition


def dltui(*args: str, **kw) -> subprocess.Popen:
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("preexec_fn", _default_hup)
    return subprocess.Popen([sys.executable, "-m", "dltui", *args], env=kw.pop("env", env()), **kw)


def wait_for_rows(out: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if rows(out) >= n and (out / "model.pt").exists():  # model.pt may trail metrics by one epoch
                return
        assert proc.poll() is None, f"the run ended early ({proc.returncode})"
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the run produced no epochs in time")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    assert runner.invoke(app, ["run", "--epochs", "2", "--optimizer", "adam", "--out", str(out)]).exit_code == 0
    return out


def crafted(tmp_path: Path, finished: Path, change) -> Path:
    """A copy of a finished adam run whose checkpoint ``change`` has edited in place."""
    out = tmp_path / "crafted"
    out.mkdir()
    for f in ("config.json", "metrics.csv"):
        (out / f).write_bytes((finished / f).read_bytes())
    state = torch.load(finished / "model.pt", weights_only=True)
    change(state)
    torch.save(state, out / "model.pt")
    return out


# --- checkpoints are untrusted input --------------------------------------------------------


def _sgd_run(tmp_path: Path) -> Path:
    out = tmp_path / "sgd"
    assert cli("run", "--epochs", "1", "--optimizer", "momentum", "--lr", "0.01", "--out", str(out)).exit_code == 0
    return out


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_misshaped_optimizer_buffer_is_refused_not_a_segfault(tmp_path, finished, optimizer):
    """The fused optimizer step read past a too-small buffer and crashed the interpreter
    (exit 139). Run in a subprocess so a crash fails this test instead of killing pytest."""
    source = finished if optimizer == "adam" else _sgd_run(tmp_path)
    key = "exp_avg" if optimizer == "adam" else "momentum_buffer"

    def shrink(state):
        state["optimizer"]["state"][0][key] = torch.zeros(3)

    out = crafted(tmp_path, source, shrink)
    proc = dltui("run", "--resume", str(out), "--epochs", "5", text=True)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, (proc.returncode, stderr)
    assert stderr.count("dltui: error:") == 1 and "Traceback" not in stderr
    assert f"optimizer buffer '{key}' of parameter 0 is (3) torch.float32" in stderr
    assert load_checkpoint(out)["epoch"] in (1, 2)  # untouched


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(epoch=-1), "epoch -1 is outside 0..2"),
        (lambda s: s.update(epoch=7), "epoch 7 is outside 0..2"),
        (lambda s: s.update(epoch=True), "'epoch' is a bool"),
        (lambda s: s.update(history="garbage"), "its history is not a list (a str)"),
        (lambda s: s.update(history=[{"epoch": 1}]), "its history has 1 epoch, its epoch counter says 2"),
        (lambda s: s["history"][1].update(test_acc="0.9"), "history row 2 is malformed"),
        (lambda s: s.update(rng=torch.zeros(7, dtype=torch.uint8)), "random-number state is malformed"),
        (lambda s: s.update(rng="seed"), "random-number state is malformed"),
        (lambda s: s["model"].update({"1.weight": torch.zeros(2, 2)}), "'1.weight' is (2, 2)"),
        (lambda s: s["model"].pop("3.bias"), "missing '3.bias'"),
        (lambda s: s["optimizer"]["param_groups"][0].update(lr="fast"), "optimizer setting 'lr' is 'fast'"),
        (lambda s: s["optimizer"]["state"].update({99: {}}), "names parameter 99"),
        (lambda s: s["optimizer"]["state"][0].update(step=torch.zeros(5)), "optimizer state 'step' of parameter 0"),
        (lambda s: s["optimizer"]["state"][1].update(exp_avg_sq=torch.zeros(10, dtype=torch.float64)), "float64"),
    ],
)
def test_damaged_checkpoint_is_one_line_exit_2(tmp_path, finished, change, message):
    out = crafted(tmp_path, finished, change)
    (out / "summary.json").write_bytes((finished / "summary.json").read_bytes())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = cli("run", "--resume", str(out), "--epochs", "4")
    assert result.exit_code == 2, result.output
    assert message in one_line_error(result)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written, no lock left


def test_keys_are_named_after_the_model_layers(finished):
    """The cases above rely on the mlp's layer names: make a rename fail loudly here."""
    assert {"1.weight", "1.bias", "3.weight", "3.bias"} == set(load_checkpoint(finished)["model"])


# --- one writer per run directory -----------------------------------------------------------


def test_a_second_writer_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / "live"
    first = dltui("run", *SLOW, "--epochs", "40", "--out", str(out), text=True)
    try:
        wait_for_rows(out, 1, first)
        holder = json.loads((out / "run.lock").read_text())
        assert holder["pid"] == first.pid
        for args in (["--resume", str(out), "--epochs", "50"], ["--out", str(out)]):
            result = cli("run", *args)
            assert result.exit_code == 6, result.output
            assert f"in use by dltui pid {first.pid}" in one_line_error(result)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 130
    assert not (out / "run.lock").exists()  # released on exit
    done = rows(out)
    assert summary(out)["epochs_done"] == done  # the refused writers wrote nothing
    assert cli("run", "--resume", str(out), "--epochs", str(done + 1)).exit_code == 0


def test_a_lock_left_by_a_dead_process_is_stale(tmp_path, finished):
    out = crafted(tmp_path, finished, lambda s: None)
    (out / "run.lock").write_text(json.dumps({"pid": 2**22 + 7, "host": os.uname().nodename, "started": 0}))
    assert cli("run", "--resume", str(out), "--epochs", "3").exit_code == 0
    assert not (out / "run.lock").exists()


# --- the terminal is not the run ------------------------------------------------------------


def _drain(fd: int, sink: bytearray) -> threading.Thread:
    def read() -> None:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            sink.extend(chunk)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


def _pty(controlling: bool) -> tuple[int, int, callable]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def pre() -> None:
        _default_hup()
        if controlling:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    return master, slave, pre


def test_terminal_gone_mid_run_training_goes_on(tmp_path):
    """`dltui run ... & disown; exit`: the next write to the terminal gets EIO. Training
    goes on, run.log gets every line, and the exit code is the run's."""
    out = tmp_path / "r"
    master, slave, pre = _pty(controlling=False)
    proc = dltui(
        "run", "--epochs", "6", "--batch-size", "4", "--threads", "1", "--out", str(out),
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, preexec_fn=pre, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    seen = bytearray()
    reader = _drain(master, seen)
    wait_for_rows(out, 1, proc)
    os.close(master)  # the terminal goes away
    reader.join(5)
    assert proc.wait(timeout=120) == 0
    assert summary(out)["status"] == "finished" and rows(out) == 6
    log = (out / "run.log").read_text()
    assert "epoch 6/6" in log and "done: 6 epochs" in log


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_reader_closing_the_pipe_does_not_stop_training(tmp_path, json_flag):
    """`dltui run | head -1`: exit 0 and every epoch, not BrokenPipe (or exit 1)."""
    out = tmp_path / "r"
    proc = dltui("run", "--epochs", "4", "--batch-size", "8", *json_flag, "--out", str(out))
    assert proc.stdout.readline()
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert b"Traceback" not in stderr
    assert summary(out)["status"] == "finished" and rows(out) == 4
    assert "done: 4 epochs" in (out / "run.log").read_text()


def test_full_stdout_is_not_a_traceback(tmp_path):
    out = tmp_path / "r"
    with open("/dev/full", "w") as full:
        proc = dltui("run", "--epochs", "2", "--out", str(out), stdout=full)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in stderr, stderr
    assert summary(out)["status"] == "finished"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_like_ctrl_c(tmp_path, sig):
    out = tmp_path / "r"
    proc = dltui("run", *SLOW, "--epochs", "40", "--out", str(out), text=True)
    wait_for_rows(out, 1, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"{signal.Signals(sig).name}: stopping after this batch" in stderr
    done = load_checkpoint(out)["epoch"]
    assert summary(out)["status"] == "stopped" and summary(out)["epochs_done"] == done == rows(out)


def test_a_closing_terminal_s_two_sighups_still_stop_after_the_batch(tmp_path):
    """The hang-up and then the shell each send SIGHUP: only a second Ctrl+C aborts."""
    out = tmp_path / "r"
    proc = dltui("run", *SLOW, "--epochs", "40", "--out", str(out), text=True)
    wait_for_rows(out, 1, proc)
    proc.send_signal(signal.SIGHUP)
    proc.send_signal(signal.SIGHUP)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert summary(out)["status"] == "stopped" and summary(out)["epochs_done"] == rows(out)


def test_nohup_keeps_sighup_ignored(tmp_path):
    out = tmp_path / "r"

    def ignore_hup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    proc = dltui("run", *SLOW, "--epochs", "3", "--out", str(out), preexec_fn=ignore_hup)
    wait_for_rows(out, 1, proc)
    proc.send_signal(signal.SIGHUP)
    proc.communicate(timeout=120)
    assert proc.returncode == 0 and summary(out)["status"] == "finished"


def _app_in_pty(tmp_path: Path, out: Path, epochs: int = 40):
    master, slave, pre = _pty(controlling=True)
    args = ["--out", str(out), *SLOW[:-2], "--epochs", str(epochs), "--start", "--images", "halfblock"]
    proc = dltui(*args, stdin=slave, stdout=slave, stderr=slave, preexec_fn=pre, start_new_session=True,
                 env=env(TERM="xterm-256color"), cwd=tmp_path)  # fmt: skip
    os.close(slave)
    seen = bytearray()
    reader = _drain(master, seen)
    wait_for_rows(out, 1, proc)
    return proc, master, seen, reader


def _wait_status(out: Path, status: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if summary(out)["status"] == status:
                return summary(out)
        time.sleep(0.1)
    pytest.fail(f"the run never became {status}")


def test_app_on_sigterm_closes_cleanly_and_its_run_trains_on(tmp_path):
    """The app is a viewer: SIGTERM closes it and restores the terminal; the run it
    launched is another process and keeps training (stop it with s, or kill -TERM)."""
    out = tmp_path / "r"
    proc, master, seen, reader = _app_in_pty(tmp_path, out, epochs=6)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    reader.join(5)
    os.close(master)
    tail = bytes(seen[-4000:])
    assert b"\x1b[?1049l" in tail  # left the alternate screen
    assert b"\x1b[?1000l" in tail  # mouse reporting off
    assert _wait_status(out, "finished")["epochs_done"] == 6 == rows(out)


def test_terminal_hang_up_leaves_the_run_training(tmp_path):
    """The SSH connection drops (the app's terminal hangs up, SIGHUP): the app ends, the run
    it launched finishes all its epochs, and a new app session lists it as finished."""
    out = tmp_path / "r"
    proc, master, seen, reader = _app_in_pty(tmp_path, out, epochs=8)
    os.close(master)  # hang-up: the kernel sends SIGHUP to the app's session
    proc.wait(timeout=60)
    assert proc.returncode in (0, -signal.SIGHUP), proc.returncode
    s = _wait_status(out, "finished")
    assert s["epochs_done"] == 8 == rows(out) and not (out / "run.lock").exists()
    listed = subprocess.run([sys.executable, "-m", "dltui", "runs", "--runs-dir", str(tmp_path), "--json"],
                            capture_output=True, text=True, env=env(), timeout=120)  # fmt: skip
    assert [(r["path"], r["status"]) for r in json.loads(listed.stdout)] == [(str(out), "finished")]


def test_app_without_a_terminal_says_so(tmp_path):
    proc = dltui(stdin=subprocess.DEVNULL, text=True, cwd=tmp_path)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert (
        stderr.strip() == "dltui: error: the app needs a terminal (stdin and stdout); train headless with `dltui run`"
    )  # noqa: E501


# --- a run never lies -----------------------------------------------------------------------


def test_interrupted_resume_updates_the_summary(tmp_path, finished):
    out = crafted(tmp_path, finished, lambda s: None)
    (out / "summary.json").write_bytes((finished / "summary.json").read_bytes())
    assert summary(out)["status"] == "finished"
    proc = dltui("run", "--resume", str(out), "--epochs", "200", "--threads", "1")
    wait_for_rows(out, 3, proc)
    proc.kill()  # no chance to write a final status
    proc.wait()
    s, done = summary(out), load_checkpoint(out)["epoch"]
    assert s["status"] == "running" and s["resumed_from"] == 2  # not "finished": a viewer sees the dead pid
    assert s["epochs_done"] in (done, done + 1) and rows(out) in (done, done + 1)
    proc = dltui("run", "--resume", str(out), "--epochs", "200", "--threads", "1")
    deadline = time.monotonic() + 120
    # this process's epochs: its own summary (its pid; metrics.csv is rewritten before it), then a new row.
    # The killed run's files can satisfy "resumed_from == done, rows > done" on their own (metrics.csv
    # runs one epoch ahead of model.pt), and a SIGINT sent then lands before the run has begun
    while not (summary(out).get("pid") == proc.pid and rows(out) > done):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    done = load_checkpoint(out)["epoch"]
    assert summary(out)["status"] == "stopped" and summary(out)["epochs_done"] == done == rows(out)


def test_resume_says_how_many_epochs_ran_in_this_session(tmp_path, finished):
    out = crafted(tmp_path, finished, lambda s: None)
    result = cli("run", "--resume", str(out), "--epochs", "4")
    assert result.exit_code == 0, result.output
    assert "done: 4 epochs (2 in this session, resumed after epoch 2)" in result.output


@pytest.mark.parametrize("delay", [0.05, 0.21, 0.33, 0.6])
def test_no_temporary_files_after_kill_9(tmp_path, delay):
    out = tmp_path / "r"
    proc = dltui("run", "--epochs", "200", "--batch-size", "16", "--threads", "1", "--out", str(out))
    wait_for_rows(out, 1, proc)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_run_files_respect_the_umask(tmp_path, umask, mode):
    out = tmp_path / "r"
    proc = dltui("run", "--epochs", "1", "--out", str(out), preexec_fn=lambda: os.umask(umask))
    assert proc.wait(timeout=120) == 0
    for name in ("config.json", "metrics.csv", "confusion.csv", "model.pt", "summary.json", "run.log"):
        assert (out / name).stat().st_mode & 0o777 == mode, name


def test_settings_are_recorded_as_applied(tmp_path, finished):
    out = tmp_path / "r"
    result = cli("run", "--epochs", "1", "--amp", "--compile", "--threads", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    if not cpu_has_amx():
        assert "--amp: bf16 is slower than float32 on a CPU without AMX; recorded as off" in result.output
        assert saved["amp"] is False
    assert saved["compile"] is False and saved["threads"] == 1
    assert load_checkpoint(out)["config"]["threads"] == 1
    assert cli("run", "--resume", str(out), "--epochs", "2").exit_code == 0
    assert json.loads((out / "config.json").read_text())["threads"] == 1  # kept on resume
    if (os.cpu_count() or 1) > 1 and len(os.sched_getaffinity(0)) > 1:
        assert cli("run", "--resume", str(out), "--epochs", "3", "--threads", "2").exit_code == 0
        assert json.loads((out / "config.json").read_text())["threads"] == 2  # unless overridden


# --- input that was silently misread or crashed ---------------------------------------------


def test_empty_dataset_is_refused():
    result = cli("run", "--dataset", "")
    assert result.exit_code == 2 and "--dataset: an empty value" in one_line_error(result)


def test_options_before_the_command(tmp_path):
    out = tmp_path / "lin"
    result = cli("--dataset", "linear", "run", "--epochs", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["dataset"] == "linear"
    result = cli("--dataset", "linear", "eval", str(out))
    assert result.exit_code == 2 and "--dataset goes after the command" in one_line_error(result)
    result = cli("--start", "run")
    assert result.exit_code == 2 and "--start opens the app" in one_line_error(result)


@pytest.mark.parametrize("value", ["0", "100000", "-1", "two"])
def test_threads_bounded_by_the_usable_cores(value):
    result = cli("run", "--threads", value)
    assert result.exit_code == 2
    assert f"--threads: {value!r}" in one_line_error(result) or f"--threads: {value} " in one_line_error(result)


def test_usage_errors_are_one_line():
    result = cli("run", "--no-such-flag")
    assert result.exit_code == 2
    assert "No such option: --no-such-flag" in one_line_error(result)
    assert "Usage:" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--out", "x" * 256], "cannot be used (File name too long)"),
        (["run", "--out", "~nosuchuser/r"], "no such user 'nosuchuser'"),
        (["run", "--data-dir", "~nosuchuser/d"], "no such user 'nosuchuser'"),
        (["run", "--resume", "~nosuchuser/r"], "no such user 'nosuchuser'"),
        (["eval", "~nosuchuser/r"], "no such user 'nosuchuser'"),
    ],
)
def test_unusable_paths_are_one_line(args, message):
    result = cli(*args)
    assert result.exit_code == 2
    assert message in one_line_error(result)


def test_app_form_refuses_an_unknown_user_in_its_fields():
    """The app validates its form through make_config: a ConfigError, not a crash."""
    from dltui.errors import ConfigError
    from dltui.resolve import make_config

    with pytest.raises(ConfigError, match="no such user"):
        make_config(out="~nosuchuser/r")


def test_long_data_dir_env_in_datasets(monkeypatch):
    monkeypatch.setenv("DLTUI_DATA_DIR", "/d" * 2050)
    result = cli("datasets")
    assert result.exit_code == 2
    assert "DLTUI_DATA_DIR: " in one_line_error(result) and "File name too long" in one_line_error(result)


def _fail_with(monkeypatch, target, name: str, err: int) -> None:
    def broken(*a, **k):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(target, name, broken)


def test_full_disk_at_the_start(tmp_path, monkeypatch):
    from dltui.engine import rundir

    _fail_with(monkeypatch, rundir, "write_config", errno.ENOSPC)
    result = cli("run", "--epochs", "1", "--out", str(tmp_path / "r"))
    assert result.exit_code == 5
    assert "No space left on device" in one_line_error(result)


def test_resume_on_a_read_only_directory(tmp_path, finished, monkeypatch):
    from dltui.engine import rundir

    out = crafted(tmp_path, finished, lambda s: None)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    if os.geteuid() == 0:  # root writes through permission bits: simulate the file system's answer
        _fail_with(monkeypatch, rundir, "probe_writable", errno.EROFS)
    else:
        out.chmod(0o555)
    try:
        result = cli("run", "--resume", str(out), "--epochs", "3")
    finally:
        out.chmod(0o755)
    assert result.exit_code == 5
    assert "cannot continue the run" in one_line_error(result)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_ascii_terminal_and_a_non_ascii_run_directory(tmp_path):
    out = tmp_path / "rün-ü"
    proc = dltui("run", "--epochs", "1", "--out", str(out), env=env(PYTHONIOENCODING="ascii"), text=True,
                 encoding="ascii", errors="replace")  # fmt: skip
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "r\\xfcn-\\xfc" in stdout
    assert summary(out)["status"] == "finished"
