"""Epoch time of dltui against the loop people already write, and against the limit.

usage: python tests/benchmarks/train_speed.py [--device cpu|cuda] [--amp] [--data-dir DIR]
       [--epochs N] [--rounds R] [--models softmax,mlp,cnn] [--batch-size 64] [--threads T]
       [--rss-model cnn]
       python tests/benchmarks/train_speed.py --generate DIR   # only write the generated root

Three loops, same data, model, seed, batch size and optimizer (SGD, lr 0.01, momentum 0.9),
each timed per epoch *including its evaluation on the test split*; the first epoch of each
run is a warm-up and the median of the rest is reported. dltui and bare run alternately
(--rounds, default 2) and their timed epochs are pooled, so a busy spell on a shared
machine does not land on one loop only:

1. reference: torchvision.datasets.MNIST with Compose([ToTensor(), Normalize(...)]), a
   DataLoader(batch_size, shuffle=True) (num_workers=0, as the lessons write it),
   ``loss.item()`` every step, evaluation through a DataLoader(batch_size=1000).
2. dltui: ``dltui.engine.train(make_config(...), callback)`` exactly as ``dltui run`` calls
   it: metrics, events, checkpoint and run-directory writes included. The time of an epoch
   is the wall time between consecutive EpochEnded events, so it covers everything the
   engine does between them (EpochEnded.seconds leaves out the checkpoint write).
3. bare: the limit. Pre-normalised float tensors on the device, contiguous slices (no
   shuffle), forward/loss/zero_grad/backward/step and nothing else (the same fused optimizer
   and gradient clearing as dltui, so the gap is data handling and bookkeeping), then a
   bare evaluation (forward + argmax + correct count in batches of 2048 under inference_mode).

Without --data-dir, a torchvision-layout MNIST root of 60k/10k generated 28x28 digits
(class templates of blurred random strokes, shifted, scaled and noised) is written to a
temporary directory, so the reference reads it through torchvision.datasets.MNIST too.
Then one whole ``dltui run --model cnn`` process on the same data reports its peak RSS
(wait4's ru_maxrss). The last line printed is the summary the targets are checked against.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dltui.data import DATASETS  # noqa: E402
from dltui.engine import EpochEnded, RunFinished, train  # noqa: E402
from dltui.engine.loop import grad_clearer, make_optimizer  # noqa: E402
from dltui.models import build_model  # noqa: E402
from dltui.resolve import make_config  # noqa: E402
from dltui.sysinfo import choose_threads  # noqa: E402

LR, MOMENTUM = 0.01, 0.9
MEAN, STD = (0.1307,), (0.3081,)
TEST_BATCH = 1000  # pytorch/examples mnist's --test-batch-size
BARE_EVAL_BATCH = 2048


# --- generated data -------------------------------------------------------------------


def _templates(rng: np.random.Generator, k: int = 10, size: int = 28) -> np.ndarray:
    """One blurred random-stroke image per class, values in [0, 1]."""
    out = np.zeros((k, size, size), np.float32)
    t = np.linspace(0, 1, 64)[:, None]
    for c in range(k):
        points = rng.uniform(6, size - 7, (rng.integers(3, 6), 2))
        for a, b in zip(points[:-1], points[1:], strict=True):
            line = np.rint(a + (b - a) * t).astype(int)
            out[c, line[:, 0], line[:, 1]] = 1.0
        for _ in range(2):  # a cheap blur: average with the four neighbours
            img = out[c]
            out[c] = (img + np.roll(img, 1, 0) + np.roll(img, -1, 0) + np.roll(img, 1, 1) + np.roll(img, -1, 1)) / 2.2
        out[c] = np.clip(out[c] / out[c].max(), 0, 1)
    return out


def _digits(rng: np.random.Generator, templates: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, len(templates), n).astype(np.uint8)
    images = templates[labels] * rng.uniform(0.6, 1.0, (n, 1, 1)).astype(np.float32)
    shifts = rng.integers(-2, 3, (n, 2))
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            images[sel] = np.roll(images[sel], (dy, dx), axis=(1, 2))
    images += rng.normal(0, 0.15, images.shape).astype(np.float32)
    return (np.clip(images, 0, 1) * 255).astype(np.uint8), labels


def write_generated_root(root: str | Path, n_train: int = 60_000, n_test: int = 10_000, seed: int = 0) -> Path:
    """Write MNIST/raw/*-idx?-ubyte files of generated digits, as torchvision lays them out."""
    rng = np.random.default_rng(seed)
    templates = _templates(rng)
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images, labels = _digits(rng, templates, n)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return Path(root)


# --- the three loops ------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model(name: str, device: torch.device):
    torch.manual_seed(0)
    return build_model(name, DATASETS["mnist"]).to(device)


def run_reference(root: str, model_name: str, epochs: int, bs: int, device: torch.device):
    """The plain loop of the classic lessons."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    train_set = datasets.MNIST(root, train=True, download=False, transform=tf)
    test_set = datasets.MNIST(root, train=False, download=False, transform=tf)
    train_loader = DataLoader(train_set, batch_size=bs, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=TEST_BATCH)
    model = _model(model_name, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    times, acc = [], 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        running = 0.0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            running += loss.item()
        model.eval()
        test_loss, correct = 0.0, 0
        with torch.no_grad():
            for x, y in test_loader:
                x, y = x.to(device), y.to(device)
                out = model(x)
                test_loss += F.cross_entropy(out, y, reduction="sum").item()
                correct += (out.argmax(1) == y).sum().item()
        acc = correct / len(test_loader.dataset)
        times.append(time.perf_counter() - t0)
    return times, acc


def run_dltui(
    root: str, model_name: str, epochs: int, bs: int, device: torch.device, threads: int, out: str, amp: bool
):
    """The engine as ``dltui run`` uses it; epoch time = wall time between EpochEnded events."""
    cfg = make_config(
        dataset="mnist",
        model=model_name,
        epochs=epochs,
        batch_size=bs,
        lr=LR,
        optimizer="momentum",
        momentum=MOMENTUM,
        device=device.type,
        seed=0,
        data_dir=root,
        out=out,
        amp=amp,
    )
    stamps: list[float] = []
    ended: list[EpochEnded] = []

    def callback(event) -> None:
        if isinstance(event, EpochEnded):
            stamps.append(time.perf_counter())
            ended.append(event)

    result = train(cfg, callback, threads=threads)
    if not isinstance(result, RunFinished):
        raise SystemExit(f"dltui run failed: {result}")
    # the first epoch's start is not observable from outside; it is the warm-up anyway
    times = [ended[0].seconds] + [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return times, ended[-1].test_acc


def _normalised(x_uint8: torch.Tensor) -> torch.Tensor:
    return (x_uint8.float().div(255).sub(MEAN[0]).div(STD[0])).unsqueeze(1).contiguous()


def run_bare(root: str, model_name: str, epochs: int, bs: int, device: torch.device, amp: bool, graph: bool = False):
    """The limit: device-resident float tensors, train steps, a bare evaluation (bf16
    autocast around the forward passes with --amp, as dltui does). ``graph`` (CUDA): the
    whole step captured in one CUDA graph, the floor a launch-bound model can reach."""
    from torchvision import datasets

    train_set = datasets.MNIST(root, train=True, download=False)
    test_set = datasets.MNIST(root, train=False, download=False)
    x, y = _normalised(train_set.data).to(device), train_set.targets.to(device)
    xt, yt = _normalised(test_set.data).to(device), test_set.targets.to(device)
    model = _model(model_name, device)
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):  # the memory format dltui uses
        model.to(memory_format=torch.channels_last)
        x, xt = x.contiguous(memory_format=torch.channels_last), xt.contiguous(memory_format=torch.channels_last)
    cfg = make_config(dataset="mnist", model=model_name, lr=LR, optimizer="momentum", momentum=MOMENTUM, data_dir=root)
    optimizer = make_optimizer(cfg, model.parameters())  # the optimizer dltui builds
    clear_grads = grad_clearer(optimizer)  # and its way of dropping gradients: the limit is the same step
    n, times, acc = len(x), [], 0.0
    if graph:
        return _bare_graph(model, optimizer, x, y, xt, yt, epochs, bs, amp)
    for _ in range(epochs):
        _sync(device)
        t0 = time.perf_counter()
        model.train()
        for i in range(0, n, bs):
            with torch.autocast(device.type, torch.bfloat16, enabled=amp):
                out = model(x[i : i + bs])
            loss = F.cross_entropy(out.float(), y[i : i + bs])
            clear_grads()
            loss.backward()
            optimizer.step()
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=device)
        with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=amp):
            for s in range(0, len(xt), BARE_EVAL_BATCH):
                correct += (model(xt[s : s + BARE_EVAL_BATCH]).argmax(1) == yt[s : s + BARE_EVAL_BATCH]).sum()
        acc = int(correct) / len(xt)  # syncs
        times.append(time.perf_counter() - t0)
    return times, acc


def _bare_graph(model, optimizer, x, y, xt, yt, epochs: int, bs: int, amp: bool):
    """PyTorch's whole-network capture recipe on the bare loop: full batches replayed from
    static buffers (the partial last batch is dropped: this is the floor, not a product)."""
    device = x.device
    sx, sy = x[:bs].clone(), y[:bs].clone()

    def step():
        with torch.autocast("cuda", torch.bfloat16, enabled=amp, cache_enabled=False):
            out = model(sx)
        F.cross_entropy(out.float(), sy).backward()
        optimizer.step()

    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    optimizer.zero_grad(set_to_none=True)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        step()
    times, acc = [], 0.0
    for _ in range(epochs):
        _sync(device)
        t0 = time.perf_counter()
        model.train()
        for i in range(0, len(x) - bs + 1, bs):
            sx.copy_(x[i : i + bs])
            sy.copy_(y[i : i + bs])
            g.replay()
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=device)
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=amp):
            for s in range(0, len(xt), BARE_EVAL_BATCH):
                correct += (model(xt[s : s + BARE_EVAL_BATCH]).argmax(1) == yt[s : s + BARE_EVAL_BATCH]).sum()
        acc = int(correct) / len(xt)
        times.append(time.perf_counter() - t0)
    return times, acc


# Started from this (large) process, a child's ru_maxrss would include this process's own
# RSS: the high-water mark survives vfork + exec. A small launcher starts the run instead and
# reports its child's peak.
_LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss_mb(root: str, model_name: str, epochs: int, device: torch.device, out: str) -> float:
    """Peak RSS of a whole ``dltui run`` process on this root, as the kernel counts it
    (wait4's ru_maxrss: the process from start to exit)."""
    cmd = [sys.executable, "-m", "dltui", "run", "--dataset", "mnist", "--model", model_name]
    cmd += ["--epochs", str(epochs), "--data-dir", root, "--device", device.type, "--out", out]
    env = {**os.environ, "DLTUI_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, text=True, env=env)
    code, maxrss_kb = (int(v) for v in proc.stdout.split())
    if code != 0:
        raise SystemExit(f"dltui run failed: {proc.stderr.strip()}")
    return maxrss_kb / 1024


# --- driver ---------------------------------------------------------------------------


def _timed(times: list[float]) -> list[float]:
    """The epochs after the warm-up (all of them when there is only one)."""
    return times[1:] or times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--data-dir", help="a torchvision-layout MNIST root (e.g. from shared/tools/mnist_root.py)")
    p.add_argument("--epochs", type=int, default=4, help="per run: 1 warm-up + the timed epochs")
    p.add_argument(
        "--rounds", type=int, default=2, help="dltui and bare run alternately this many times; epochs pooled"
    )
    p.add_argument("--models", default="softmax,mlp,cnn")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, help="torch threads for all loops (default: dltui's policy)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast for dltui and bare (CUDA only)")
    p.add_argument("--rss-model", default="cnn", help="model of the peak-RSS run ('' to skip it)")
    p.add_argument("--generate", metavar="DIR", help="write the generated MNIST root into DIR and exit")
    args = p.parse_args(argv)

    if args.generate:
        print(write_generated_root(args.generate))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    if args.amp and args.device != "cuda":
        p.error("--amp applies to --device cuda only (dltui ignores it on the CPU)")
    device = torch.device(args.device)
    threads = args.threads or choose_threads()[0]
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    with tempfile.TemporaryDirectory(prefix="dltui-bench-") as tmp:
        if args.data_dir:
            root, source = args.data_dir, f"MNIST root {args.data_dir}"
        else:
            root, source = str(write_generated_root(Path(tmp) / "data")), "generated 28x28 digits"
        from torchvision import datasets

        n_train = len(datasets.MNIST(root, train=True, download=False))
        n_test = len(datasets.MNIST(root, train=False, download=False))
        cpu = _cpu_name()
        where = f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f"cpu ({cpu})"
        print(
            f"data: {source}, {n_train} train / {n_test} test; device: {where}; torch {torch.__version__}; "
            f"threads {threads}; batch {args.batch_size}; SGD lr {LR} momentum {MOMENTUM}; "
            f"{'bf16 autocast (dltui, bare); ' if args.amp else ''}"
            f"medians of {max(args.epochs - 1, 1)} epochs after 1 warm-up (dltui and bare: "
            f"{args.rounds} alternating runs, {args.rounds * max(args.epochs - 1, 1)} epochs pooled)"
        )
        print(
            "epoch times include evaluation on the test split for all three loops "
            "(bare: train steps on pre-normalised unshuffled tensors + forward/argmax eval)"
        )
        rows, graph_rows = [], []
        for name in models:
            torch.set_num_threads(threads)
            ref, ref_acc = run_reference(root, name, args.epochs, args.batch_size, device)
            dl, bare, floor = [], [], []  # timed epochs, pooled over rounds that alternate the loops
            for k in range(args.rounds):
                out = str(Path(tmp) / f"run-{name}-{k}")
                times, dl_acc = run_dltui(root, name, args.epochs, args.batch_size, device, threads, out, args.amp)
                dl += _timed(times)
                torch.set_num_threads(threads)
                times, bare_acc = run_bare(root, name, args.epochs, args.batch_size, device, args.amp)
                bare += _timed(times)
                if device.type == "cuda":
                    times, _ = run_bare(root, name, args.epochs, args.batch_size, device, args.amp, graph=True)
                    floor += _timed(times)
            r, d, b = statistics.median(_timed(ref)), statistics.median(dl), statistics.median(bare)
            rows.append((name, r, d, b, ref_acc, dl_acc, bare_acc))
            if floor:
                g = statistics.median(floor)
                graph_rows.append(f"| {name} | {d:.3f} | {b:.3f} | {g:.4f} | {d / g:.2f}x |")
            print(
                f"  {name}: reference (first: warm-up) {[round(t, 3) for t in ref]}  "
                f"dltui timed {[round(t, 3) for t in dl]}  bare timed {[round(t, 3) for t in bare]}",
                flush=True,
            )
        rss = None
        if args.rss_model:
            rss = peak_rss_mb(root, args.rss_model, args.epochs, device, str(Path(tmp) / "run-rss"))

    print()
    print(
        "| model | reference s/epoch | dltui s/epoch | bare s/epoch | dltui speedup vs reference "
        "| dltui overhead vs bare | dltui samples/s | test acc ref / dltui / bare |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, r, d, b, ra, da, ba in rows:
        print(
            f"| {name} | {r:.3f} | {d:.3f} | {b:.3f} | {r / d:.1f}x | {d / b:.3f} | {n_train / d:,.0f} "
            f"| {ra:.3f} / {da:.3f} / {ba:.3f} |"
        )
    print()
    if graph_rows:
        print("| model | dltui s/epoch | bare eager | bare, step in one CUDA graph | dltui / graph floor |")
        print("|---|---:|---:|---:|---:|")
        print("\n".join(graph_rows))
        print()
    if rss is not None:
        print(
            f"peak RSS of `dltui run --dataset mnist --model {args.rss_model} --epochs {args.epochs}` "
            f"on this data, whole process: {rss:,.0f} MB"
        )
    by = {name: (r / d, d / b) for name, r, d, b, *_ in rows}
    simple = [by[m][0] for m in ("softmax", "mlp") if m in by]
    parts = []
    parts.append(f"speedup_vs_reference={min(simple):.2f}" if simple else "speedup_vs_reference=n/a")
    parts.append(f"cnn_speedup={by['cnn'][0]:.2f}" if "cnn" in by else "cnn_speedup=n/a")
    parts.append(f"overhead_vs_bare={max(o for _, o in by.values()):.3f}")
    print(" ".join(parts))
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{os.cpu_count()} cores"


if __name__ == "__main__":
    sys.exit(main())
