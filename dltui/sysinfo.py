"""The machine at a glance, for the app's dashboard: CPU use since the last call, memory,
and CUDA memory where torch already sees a GPU. Plain Python (Linux /proc; elsewhere
what os offers); never imports torch itself."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu_busy: float | None  # cores busy since the previous sample (0..cores); None on the first
    mem_used_gb: float | None
    mem_total_gb: float | None
    gpu: str | None  # "NVIDIA H100 · 5.1/80.0 GB" where torch is loaded and sees CUDA

    def line(self) -> str:
        cpu = "-" if self.cpu_busy is None else f"{self.cpu_busy:.1f}/{self.cores}"
        mem = "-" if self.mem_used_gb is None else f"{self.mem_used_gb:.1f}/{self.mem_total_gb:.1f} GB"
        return f"cpu {cpu} cores · mem {mem}" + (f" · gpu {self.gpu}" if self.gpu else "")


class Sampler:
    """Call ``sample()`` every second or so: CPU use is the busy share between two calls."""

    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None

    def _cpu(self) -> float | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle, total = fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)
        last, self._last = self._last, (idle, total)
        if last is None or total == last[1]:
            return None
        return (1 - (idle - last[0]) / (total - last[1])) * (os.cpu_count() or 1)

    @staticmethod
    def _memory() -> tuple[float | None, float | None]:
        try:
            with open("/proc/meminfo") as f:
                info = {line.split(":")[0]: int(line.split()[1]) for line in f if line.count(":") == 1}
            total, avail = info["MemTotal"] / 2**20, info["MemAvailable"] / 2**20
            return total - avail, total
        except (OSError, ValueError, KeyError, IndexError):
            return None, None

    @staticmethod
    def _gpu() -> str | None:
        torch = sys.modules.get("torch")  # only if already loaded: a dashboard never pays its import
        try:
            if torch is None or not torch.cuda.is_available():
                return None
            free, total = torch.cuda.mem_get_info()
            name = torch.cuda.get_device_name()
            return f"{name} · {(total - free) / 2**30:.1f}/{total / 2**30:.1f} GB"
        except Exception:  # a driver that answers badly must not break the view
            return None

    def sample(self) -> Machine:
        used, total = self._memory()
        return Machine(os.cpu_count() or 1, self._cpu(), used, total, self._gpu())


def cpu_has_amx() -> bool:
    """Whether the CPU has AMX bf16 tiles (Linux /proc/cpuinfo flags). Only there does bf16
    autocast beat float32 for the small models here: on an AVX512-BF16 EPYC without AMX it
    measured 0.70x (mlp) and 0.88x (cnn) of float32's speed."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return any(line.startswith("flags") and " amx_bf16" in line for line in f)
    except OSError:
        return False


def choose_threads() -> tuple[int, str]:
    """Torch threads for a run that was not given --threads, and why: the cores this process
    may use (its affinity, shared among torchrun's local ranks) that the machine's load
    leaves idle, at least one. An OpenMP team that has to share its cores with other busy
    processes stalls at every barrier: on a loaded 2-core machine 2 threads measured 3-18x
    slower than 1, on an idle one 1.6-1.9x faster."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    if local > 1:  # torchrun's ranks on this machine split its cores
        cores = max(1, cores // local)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores, f"{cores} usable core{'s' if cores != 1 else ''}"
    idle = max(0.0, (os.cpu_count() or cores) - load)
    n = max(1, min(cores, int(idle + 0.5)))
    return n, f"{cores} usable core{'s' if cores != 1 else ''}, load {load:.1f}"
