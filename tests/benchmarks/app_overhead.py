"""App overhead: a run's epoch time while the app draws its live charts, against the run alone.

usage: python tests/benchmarks/app_overhead.py [--rounds 3] [--epochs 3] [--configs names,mnist]
       [--data-dir MNIST_ROOT] [--poll 0.1] [--omp-threads N] [--profile-app DIR]

For each config (names + gru; mnist + cnn on an MNIST root) it alternates, --rounds times:

  A  ``python -m dltui run FLAGS --out DIR`` alone (its own session, output to /dev/null:
     the same as the app gives the runs it launches, whose output goes to run.log);
  B  ``python -m dltui FLAGS --out DIR --start --images halfblock`` in a 120x40
     pseudo-terminal: the app launches the same run as its own process, attaches and
     shows the Charts tab for the whole run (its output is read and counted, never shown).

Each run gets a fresh --out directory. An epoch's time is the ``seconds`` column of
metrics.csv (evaluation included). Epoch 1 is a warm-up and is left out: it holds
one-time costs on both sides (first calls into torch, the testset written) and in B the
app's own first drawing of the run; with 3 epochs that leaves epochs 2-3 of each run,
pooled over the rounds. Printed: the median timed epoch per mode, B/A per round (the
medians of that round's two runs) and overall (pooled medians), the fastest timed epoch
per mode (less moved by other load), and the CPU time the app process used while the
timed epochs ran (/proc/PID/stat utime+stime; per thread too, so its source shows), beside
the run process's own CPU per timed epoch in A and B and how many cores other processes
kept busy meanwhile (/proc/stat less ours: the noise a run saw). --profile-app adds where
the app's main thread spends its CPU (cProfile; it slows the app, so B/A is then moot).
--omp-threads N sets OMP_NUM_THREADS on both sides (the app passes no --threads to its
runs, so this is the only way to give both the same other thread count). The app is quit
after the run ends: ``q`` (it exits at once when no run it launched is alive), else
SIGTERM, else SIGKILL; the way it ended is printed.

Without --data-dir the MNIST root is written into a temporary directory by
../shared/tools/mnist_root.py (8,000 train / 2,000 test images of the real MNIST test set).
The machine is named (CPU model, cores, load average, torch version) because the numbers
only mean something side by side: absolute times on a shared VM move a lot minute to
minute, the ratios much less.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import json
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MNIST_TOOL = ROOT.parent / "shared" / "tools" / "mnist_root.py"
TICK = os.sysconf("SC_CLK_TCK")
COLS, ROWS = 120, 40
RUN_TIMEOUT_S = 900  # one run; the whole benchmark is meant to take minutes

CONFIGS = {
    "names": ["--dataset", "names", "--model", "gru"],
    "mnist": ["--dataset", "mnist", "--model", "cnn"],
}


# --- /proc ----------------------------------------------------------------------------


def _stat(path: str) -> tuple[str, float] | None:
    """(state, utime+stime in seconds) from a /proc stat file; None once it is gone."""
    try:
        with open(path) as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "
    return fields[0], (int(fields[11]) + int(fields[12])) / TICK


def cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    st = _stat(f"/proc/{pid}/stat")
    return st[1] if st else None


def thread_cpu(pid: int) -> dict[int, float]:
    """utime+stime of each of the process's threads, by thread id."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        st = _stat(f"/proc/{pid}/task/{tid}/stat")
        if st is not None:
            out[int(tid)] = st[1]
    return out


def alive(pid: int) -> bool:
    """Running, sleeping, ... but not gone and not a zombie waiting to be reaped."""
    st = _stat(f"/proc/{pid}/stat")
    return st is not None and st[0] not in ("Z", "X")


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (everything but idle and iowait)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / TICK  # user..steal, less idle and iowait


def lock_pid(run_dir: Path) -> int | None:
    """The pid the run wrote into run.lock."""
    try:
        pid = json.loads((run_dir / "run.lock").read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) else None


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    try:
        with open(run_dir / "metrics.csv", newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


# --- one run, watched -----------------------------------------------------------------


@dataclass
class Snap:
    """What the processes had used when metrics.csv reached ``rows`` rows."""

    rows: int
    wall: float
    run_cpu: float | None
    app_cpu: float | None = None
    app_threads: dict[int, float] = field(default_factory=dict)
    out_bytes: int = 0
    busy: float = 0.0  # CPU seconds the whole machine had spent (/proc/stat), for the others' load
    own: float = 0.0  # this script's CPU seconds


@dataclass
class Result:
    mode: str
    epochs: list[float]  # metrics.csv's seconds, epoch 1 first
    config: dict
    snaps: dict[int, Snap]
    app_pid: int | None = None
    app_exit: str = ""
    out_bytes: int = 0
    charts_seen: int = 0  # times the accuracy chart's title was drawn
    profile: Path | None = None

    @property
    def timed(self) -> list[float]:
        return self.epochs[1:] or self.epochs


class _Drain(threading.Thread):
    """Reads the pseudo-terminal's master side so the app never blocks on its output."""

    def __init__(self, fd: int):
        super().__init__(daemon=True)
        self.fd, self.bytes, self.charts, self._tail = fd, 0, 0, b""

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: every slave side is closed, the app is gone
                return
            if not chunk:
                return
            self.bytes += len(chunk)
            data = self._tail + chunk
            self.charts += data.count(b"accuracy %")
            self._tail = data[-16:]


def _watch(run_dir: Path, pid_of_run, app_pid: int | None, drain: _Drain | None, poll: float):
    """Poll until the run's process is gone; a snapshot at each new metrics.csv row."""
    snaps: dict[int, Snap] = {}
    run_pid, last_run_cpu, rows = None, None, 0
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        if run_pid is None:
            run_pid = pid_of_run()
        if run_pid is not None:
            c = cpu_seconds(run_pid)
            last_run_cpu = c if c is not None else last_run_cpu
        n = len(metrics_rows(run_dir))
        if n > rows:
            rows = n
            snaps[n] = Snap(
                n,
                time.monotonic(),
                last_run_cpu,
                cpu_seconds(app_pid),
                thread_cpu(app_pid) if app_pid else {},
                drain.bytes if drain else 0,
                machine_busy(),
                time.process_time(),
            )
        if run_pid is not None and not alive(run_pid):
            return snaps, run_pid
        if app_pid is not None and not alive(app_pid):
            raise SystemExit(f"the app (pid {app_pid}) exited before its run ended; see {run_dir}/run.log")
        time.sleep(poll)
    raise SystemExit(f"a run took over {RUN_TIMEOUT_S} s: {run_dir}")


OMP_THREADS: str | None = None  # --omp-threads: OMP_NUM_THREADS for the run and the app alike
PROFILE_DIR: Path | None = None  # --profile-app: cProfile the app's main thread into this folder
# the app's own entry point under cProfile; `python -m dltui` leaves by os._exit (no profile dump)
_PROFILED = """
import cProfile, sys, time
from dltui.cli import app
profile = cProfile.Profile(time.thread_time)  # CPU of the main thread, not wall time
profile.enable()
try:
    app(prog_name="dltui", args=sys.argv[2:])
except SystemExit:
    pass
finally:
    profile.disable()
    profile.dump_stats(sys.argv[1])
"""


def _env() -> dict[str, str]:
    env = {**os.environ, "DLTUI_OFFLINE": "1", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("OMP_NUM_THREADS", None)
    if OMP_THREADS:
        env["OMP_NUM_THREADS"] = OMP_THREADS  # torch's default thread count, which the run keeps
    env["TERM"] = "xterm-256color"
    for var in ("COLUMNS", "LINES", "TEXTUAL_DRIVER", "DLTUI_RUNS_DIR"):
        env.pop(var, None)
    return env


def run_alone(flags: list[str], out: Path, poll: float) -> Result:
    """A: ``dltui run`` on its own, started as the app starts its runs."""
    cmd = [sys.executable, "-m", "dltui", "run", *flags, "--out", str(out)]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=_env(),
        cwd=out.parent,
    )
    snaps, _ = _watch(out, lambda: proc.pid, None, None, poll)
    code = proc.wait()
    if code != 0:
        raise SystemExit(f"`{' '.join(cmd)}` exited {code}; see {out}/run.log")
    return _result("A", out, snaps)


def _set_ctty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the pty becomes the app's controlling terminal


def run_in_app(flags: list[str], out: Path, poll: float) -> Result:
    """B: the app in a pseudo-terminal, launching the same run and showing its charts."""
    runs_dir = out.parent / "runs"  # empty but for this run: the 2 s scan reads only it
    args = [*flags, "--out", str(out), "--runs-dir", str(runs_dir), "--start", "--images", "halfblock"]
    cmd = [sys.executable, "-m", "dltui", *args]
    if PROFILE_DIR is not None:
        cmd = [sys.executable, "-c", _PROFILED, str(PROFILE_DIR / f"{out.parent.parent.name}.prof"), *args]
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    proc = subprocess.Popen(
        cmd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=_set_ctty,
        env=_env(),
        cwd=out.parent,
    )
    os.close(slave)
    drain = _Drain(master)
    drain.start()
    try:
        snaps, run_pid = _watch(out, lambda: lock_pid(out), proc.pid, drain, poll)
        how = _quit(proc, master)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
        os.close(master)
    rows = metrics_rows(out)
    summary = json.loads((out / "summary.json").read_text())
    if summary.get("status") != "finished" or not rows:
        raise SystemExit(f"the app's run did not finish ({summary.get('status')}); see {out}/run.log")
    result = _result("B", out, snaps)
    result.app_pid, result.app_exit = proc.pid, how
    result.out_bytes, result.charts_seen = drain.bytes, drain.charts
    if PROFILE_DIR is not None:
        result.profile = PROFILE_DIR / f"{out.parent.parent.name}.prof"
    return result


def _quit(proc: subprocess.Popen, master: int) -> str:
    """q (the app exits at once when no run it launched is alive), else SIGTERM, else SIGKILL."""
    time.sleep(0.5)  # let the app reap its run and show the end (its poll is every 0.25 s)
    t0 = time.monotonic()
    os.write(master, b"q")
    try:
        proc.wait(timeout=5)
        return f"q ({time.monotonic() - t0:.2f} s, exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        pass
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
        return f"q ignored; SIGTERM (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "q and SIGTERM ignored; SIGKILL"


def _result(mode: str, out: Path, snaps: dict[int, Snap]) -> Result:
    rows = metrics_rows(out)
    config = json.loads((out / "config.json").read_text())
    return Result(mode, [float(r["seconds"]) for r in rows], config, snaps)


# --- reporting ------------------------------------------------------------------------


def _window(r: Result) -> tuple[Snap, Snap] | None:
    """The snapshots at the end of epoch 1 and of the last epoch: the timed epochs."""
    if len(r.epochs) < 2 or 1 not in r.snaps or len(r.epochs) not in r.snaps:
        return None
    return r.snaps[1], r.snaps[len(r.epochs)]


def _run_cpu_per_epoch(r: Result) -> float | None:
    w = _window(r)
    if w is None or w[0].run_cpu is None or w[1].run_cpu is None:
        return None
    return (w[1].run_cpu - w[0].run_cpu) / (len(r.epochs) - 1)


def _others(r: Result) -> str:
    """How busy the rest of the machine was over the timed epochs (the noise in this run)."""
    w = _window(r)
    if w is None or w[0].run_cpu is None or w[1].run_cpu is None or not w[0].busy:
        return "others' load n/a"
    a, b = w
    ours = (b.run_cpu - a.run_cpu) + (b.own - a.own)
    ours += (b.app_cpu - a.app_cpu) if a.app_cpu is not None and b.app_cpu is not None else 0.0
    return f"other processes {max(0.0, b.busy - a.busy - ours) / (b.wall - a.wall):.2f} cores"


def _app_usage(r: Result) -> str:
    w = _window(r)
    if w is None or w[0].app_cpu is None or w[1].app_cpu is None:
        return "app CPU: n/a (fewer than 2 epochs seen)"
    a, b = w
    wall = b.wall - a.wall
    cpu = b.app_cpu - a.app_cpu
    per_thread = sorted(
        ((tid, b.app_threads[tid] - a.app_threads.get(tid, 0.0)) for tid in b.app_threads), key=lambda t: -t[1]
    )
    main = next((s for tid, s in per_thread if tid == r.app_pid), 0.0)
    others = [f"{s:.2f}" for tid, s in per_thread if tid != r.app_pid and s > 0.005]
    return (
        f"app CPU over the timed epochs: {cpu:.2f} s in {wall:.1f} s wall ({100 * cpu / wall:.1f} % of a core); "
        f"main thread {main:.2f} s, other threads [{', '.join(others) or '0'}] s; "
        f"{(b.out_bytes - a.out_bytes) / wall / 1024:.1f} KiB/s to the terminal"
    )


# where the app's main thread spends its CPU: (label, function of the profile, as pstats names it)
AREAS = (
    ("the whole app session", r"dltui/tui/app.py:\d+\(run_app\)"),
    ("Textual painting changed regions (compositor)", r"textual/_compositor.py:\d+\(render_update\)"),
    ("  of it: plotext charts rendered to text", r"textual_plotext/plotext_plot.py:\d+\(render\)"),
    ("dltui: _draw_tick (chart/sampler redraw requests)", r"dltui/tui/app.py:\d+\(_draw_tick\)"),
    ("dltui: _poll (events.jsonl, every 0.25 s)", r"dltui/tui/app.py:\d+\(_poll\)"),
    ("dltui: _scan (runs table + liveness, every 2 s)", r"dltui/tui/app.py:\d+\(_scan\)"),
)


def _print_profile(path: Path) -> None:
    """CPU time of the app's main thread by area (cumulative, whole session, profiler on)."""
    import pstats
    import re

    stats = pstats.Stats(str(path)).stats  # {(file, line, function): (cc, nc, tottime, cumtime, callers)}
    print(f"    app main thread CPU by area (cProfile with thread_time, whole session; {path}):")
    for label, pattern in AREAS:
        rx = re.compile(pattern)
        cum = [ct for (file, line, fn), (_, _, _, ct, _) in stats.items() if rx.search(f"{file}:{line}({fn})")]
        print(f"      {label}: {max(cum):.2f} s" if cum else f"      {label}: not seen")


def _fmt(xs: list[float]) -> str:
    return "[" + ", ".join(f"{x:.2f}" for x in xs) + "]"


def _same_config(a: Result, b: Result) -> list[str]:
    skip = {"out"}
    keys = (set(a.config) | set(b.config)) - skip
    return sorted(k for k in keys if a.config.get(k) != b.config.get(k))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0))
    torch_version = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    return f"{cpu}, {os.cpu_count()} cores ({usable} usable); torch {torch_version}; Python {sys.version.split()[0]}"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench(name: str, flags: list[str], rounds: int, tmp: Path, poll: float) -> tuple[float, float]:
    print(f"\n== {name}: dltui run {' '.join(flags)} (load average {_load()})", flush=True)
    a_all, b_all, ratios = [], [], []
    for k in range(1, rounds + 1):
        pair = {}
        for mode, runner in (("A", run_alone), ("B", run_in_app)):
            out = tmp / f"{name}-{k}-{mode}" / "runs" / "run"
            out.parent.mkdir(parents=True)
            t0 = time.monotonic()
            r = runner(flags, out, poll)
            pair[mode] = r
            run_cpu = _run_cpu_per_epoch(r)
            cpu = f"; run CPU {run_cpu:.2f} s/timed epoch" if run_cpu is not None else ""
            print(
                f"  round {k} {mode}: epochs {_fmt(r.epochs)} s, timed median {statistics.median(r.timed):.3f} s"
                f"{cpu}; threads {r.config.get('threads')}; {_others(r)}; {time.monotonic() - t0:.1f} s wall",
                flush=True,
            )
            if mode == "B":
                print(
                    f"    {_app_usage(r)}; accuracy chart drawn {r.charts_seen}x; "
                    f"{r.out_bytes / 1024:.0f} KiB output in all; quit: {r.app_exit}",
                    flush=True,
                )
                if r.profile is not None:
                    _print_profile(r.profile)
        a, b = pair["A"], pair["B"]
        if diff := _same_config(a, b):
            print(f"    WARNING: A and B resolved different settings: {', '.join(diff)}")
        ratio = statistics.median(b.timed) / statistics.median(a.timed)
        ratios.append(ratio)
        a_all += a.timed
        b_all += b.timed
        print(f"  round {k}: B/A = {ratio:.3f}", flush=True)
    ma, mb = statistics.median(a_all), statistics.median(b_all)
    print(
        f"  {name}: median timed epoch A (run alone) {ma:.3f} s, B (in the app) {mb:.3f} s; "
        f"B/A {mb / ma:.3f} overall, per round {', '.join(f'{x:.3f}' for x in ratios)}; "
        f"fastest timed epoch A {min(a_all):.3f} s, B {min(b_all):.3f} s (B/A {min(b_all) / min(a_all):.3f}: "
        "less moved by other load)",
        flush=True,
    )
    return ma, mb


def mnist_root(tmp: Path) -> str:
    if not MNIST_TOOL.exists():
        raise SystemExit(
            f"no MNIST root: pass --data-dir DIR (a torchvision-layout MNIST root), or provide {MNIST_TOOL}"
        )
    root = tmp / "mnist-root"
    subprocess.run([sys.executable, str(MNIST_TOOL), str(root)], check=True, stdout=subprocess.DEVNULL)
    return str(root)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="A/B pairs per config (default 3)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is a warm-up (default 3)")
    p.add_argument("--configs", default="names,mnist", help="which of: names (gru), mnist (cnn)")
    p.add_argument("--data-dir", help="MNIST root for the mnist config (default: built with mnist_root.py)")
    p.add_argument("--poll", type=float, default=0.1, help="seconds between this script's looks at /proc")
    p.add_argument(
        "--omp-threads",
        type=int,
        help="set OMP_NUM_THREADS for both modes (the app passes no --threads to its runs; default: unset)",
    )
    p.add_argument(
        "--profile-app",
        metavar="DIR",
        help="cProfile the app's main thread into DIR (slows the app: B/A is then no headline number)",
    )
    args = p.parse_args(argv)
    global OMP_THREADS, PROFILE_DIR
    OMP_THREADS = str(args.omp_threads) if args.omp_threads else None
    if args.profile_app:
        PROFILE_DIR = Path(args.profile_app).resolve()
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    if unknown := [c for c in names if c not in CONFIGS]:
        p.error(f"unknown config(s) {unknown}: choose from {', '.join(CONFIGS)}")
    if args.epochs < 2:
        p.error("--epochs must be at least 2: epoch 1 is a warm-up")

    omp = f"; OMP_NUM_THREADS={OMP_THREADS}" if OMP_THREADS else ""
    print(f"machine: {machine()}{omp}")
    print(
        f"A = `dltui run` alone; B = the same run launched by the app (--start, Charts tab, {COLS}x{ROWS} pty); "
        f"{args.rounds} rounds A,B; {args.epochs} epochs a run, epoch 1 a warm-up: medians over epochs 2-{args.epochs} "
        "(metrics.csv seconds, evaluation included), pooled over rounds"
    )
    t0 = time.monotonic()
    results = {}
    with tempfile.TemporaryDirectory(prefix="dltui-app-overhead-") as raw:
        tmp = Path(raw)
        for name in names:
            flags = [*CONFIGS[name], "--epochs", str(args.epochs)]
            if name == "mnist":
                flags += ["--data-dir", args.data_dir or mnist_root(tmp)]
            results[name] = bench(name, flags, args.rounds, tmp, args.poll)
    print(f"\ntotal {time.monotonic() - t0:.0f} s; load average at the end {_load()}")
    print(" ".join(f"{name}: A {a:.3f} s B {b:.3f} s B/A {b / a:.3f};" for name, (a, b) in results.items()).rstrip(";"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
