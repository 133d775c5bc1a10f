"""Training throughput with 1 and N data-parallel ranks (the real torchrun), side by side.

usage: python tests/benchmarks/ddp_speed.py --data-dir MNIST_ROOT [--model cnn] [--epochs 3]
       [--ranks 2] [--rounds 2] [--device cpu|cuda]

Runs `dltui run --json` in one process and `dltui run --nproc N --json` alternately
(--rounds), the same global batch, and reports the median training samples/s of the epochs
after the first (the per-epoch `samples_per_s`, evaluation excluded). On CUDA each rank
takes one GPU (torchrun's LOCAL_RANK); on the CPU each rank gets one thread.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile


def rates(args: argparse.Namespace, ranks: int, out: str) -> list[float]:
    cmd = [sys.executable, "-m", "dltui", "run", "--dataset", "mnist", "--data-dir", args.data_dir,
           "--model", args.model, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
           "--device", args.device, "--out", out, "--json"]  # fmt: skip
    if args.device == "cpu":
        cmd += ["--threads", "1"]
    if ranks > 1:
        cmd += ["--nproc", str(ranks)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    epochs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return [e["samples_per_s"] for e in epochs if e.get("event") == "epoch"][1:]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", default="cnn")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    seen: dict[int, list[float]] = {1: [], args.ranks: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for ranks in seen:
                seen[ranks] += rates(args, ranks, f"{tmp}/{ranks}-{r}")
    one, many = statistics.median(seen[1]), statistics.median(seen[args.ranks])
    print(f"machine: {platform.processor() or platform.machine()}, {args.device}; {args.model} on mnist, "
          f"global batch {args.batch_size}")  # fmt: skip
    print(f"1 rank: {one:,.0f} samples/s · {args.ranks} ranks: {many:,.0f} samples/s · ratio {many / one:.2f}x")


if __name__ == "__main__":
    main()
