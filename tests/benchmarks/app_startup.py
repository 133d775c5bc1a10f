"""First paint and tab switch of the app, as a person at a terminal sees them.

usage: python tests/benchmarks/app_startup.py [--runs 5] [--size 80x24]

Starts ``python -m dltui --images halfblock`` in a pseudo-terminal (in an empty working
directory, so the Runs tab is empty), and measures, per run:
- first paint: from the process start to the first output that draws the tab bar
  ("1 Runs");
- tab switch: from a key press (3: Charts, then 1: Runs) to the end of the output burst it
  causes (no output for 50 ms), averaged over the presses.
Prints the medians, the machine and the spread; compare only numbers from one run of this
script on one machine.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time

QUIET_S = 0.05


def read_until(fd: int, predicate, timeout: float) -> tuple[bytes, float]:
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.01)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            data += chunk
            if predicate(data):
                return data, time.perf_counter()
    raise TimeoutError("no such output")


def burst(fd: int, timeout: float = 5.0) -> tuple[float, float]:
    """When the output caused by a key starts, and when it stops (QUIET_S of silence; the
    tab underline's animation is part of it)."""
    first = read_until(fd, lambda d: len(d) > 0, timeout)[1]
    last = first
    while True:
        r, _, _ = select.select([fd], [], [], QUIET_S)
        if not r:
            return first, last
        os.read(fd, 65536)
        last = time.perf_counter()


def one(size: tuple[int, int], flags: list[str]) -> tuple[float, float, float]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    cwd = tempfile.mkdtemp(prefix="dltui-startup-")
    env = {**os.environ, "TERM": "xterm-256color"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dltui", *flags],
        stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )  # fmt: skip
    os.close(slave)
    try:
        _, painted = read_until(master, lambda d: b"Runs" in d or b"Setup" in d, 60)
        first_paint = painted - t0
        time.sleep(3.0)  # let the engine warm-up finish and the screen settle
        while select.select([master], [], [], 0.2)[0]:
            os.read(master, 65536)
        starts, ends = [], []
        for key in (b"3", b"1", b"3", b"1"):
            t = time.perf_counter()
            os.write(master, key)
            first, last = burst(master)
            starts.append(first - t)
            ends.append(last - t)
        os.write(master, b"q")
        proc.wait(timeout=10)
        return first_paint, statistics.median(starts), statistics.median(ends)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--size", default="80x24")
    p.add_argument("--flags", default="--images halfblock", help="the app's flags ('' for an older dltui)")
    args = p.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; terminal {args.size}")
    paints, starts, ends = [], [], []
    for _ in range(args.runs):
        paint, start, end = one(size, args.flags.split())  # type: ignore[arg-type]
        paints.append(paint)
        starts.append(start)
        ends.append(end)
        print(f"  first paint {paint:.3f} s; tab switch: output {start * 1000:.0f} ms, settled {end * 1000:.0f} ms")
    ms = lambda xs: f"median {statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f})"  # noqa: E731
    print(
        f"first paint: median {statistics.median(paints):.3f} s (min {min(paints):.3f}, max {max(paints):.3f}); "
        f"tab switch first output: {ms(starts)}; settled: {ms(ends)} (incl. {QUIET_S * 1000:.0f} ms of quiet)"
    )


if __name__ == "__main__":
    main()
