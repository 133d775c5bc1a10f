"""How long a user's image folder takes to load: first (decode + cache write) and cached.

usage: python tests/benchmarks/image_folder_load.py [DIR] [--n 10000] [--source /work/shared/data/mnist]

Writes N real MNIST digits (the t10k IDX files of --source, read with numpy) as 28x28
grayscale PNGs into DIR/<digit>/ (a temporary folder when DIR is not given; an existing
DIR with the PNGs already there is reused), then loads the folder twice, each time in a
fresh process so that each reports its own peak RSS: first with no cache (every file
decoded, the cache written), then from the cache. Each line gives the time of
``open_image_folder`` itself and the whole process's wall time (Python, torch import).
The loaded tensors are checked against the source digits. The last line is the summary.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def build(folder: Path, source: Path, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    from PIL import Image

    images = read_idx(source / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)[:n]
    labels = read_idx(source / "t10k-labels-idx1-ubyte.gz", 8)[:n]
    t0 = time.perf_counter()
    for digit in range(10):
        (folder / str(digit)).mkdir(parents=True, exist_ok=True)
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        path = folder / str(label) / f"{i:05d}.png"
        if not path.exists():
            Image.fromarray(img).save(path)
    return images, labels, time.perf_counter() - t0


def measure(folder: str) -> None:
    """Child process: one load, printed as JSON."""
    import resource

    t0 = time.perf_counter()
    import torch  # noqa: F401  (every dltui process has it: its import is not the reader's time)

    from dltui.data.imagefolder import open_image_folder

    torch_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t1 = time.perf_counter()
    d = open_image_folder(Path(folder))
    t2 = time.perf_counter()
    x = np.concatenate([d.x_train.numpy(), d.x_test.numpy()])
    y = np.concatenate([d.y_train.numpy(), d.y_test.numpy()])
    out = {
        "load_s": t2 - t1,
        "import_s": t1 - t0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_rss_mb": torch_rss,
        "torchvision_imported": "torchvision" in sys.modules,
        "cache": dict(d.report)["cache"],
        "shape": list(x.shape),
        "pixel_sums": sorted(int(v) for v in x.reshape(len(x), -1).sum(1)),
        "class_counts": np.bincount(y, minlength=10).tolist(),
        "classes": list(d.classes),
        "mean": d.mean,
        "std": d.std,
    }
    print(json.dumps(out))


def run_child(folder: Path) -> tuple[dict, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--measure", str(folder)], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"load failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--source", type=Path, default=Path("/work/shared/data/mnist"))
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        return measure(args.measure)

    tmp = None if args.dir else tempfile.mkdtemp(prefix="dltui-imagefolder-")
    folder = args.dir or Path(tmp)
    try:
        images, labels, write_s = build(folder, args.source, args.n)
        print(f"folder {folder}: {len(images)} PNGs of 28x28 (written in {write_s:.1f} s)")
        shutil.rmtree(folder / ".dltui-cache", ignore_errors=True)
        first, first_wall = run_child(folder)
        cached, cached_wall = run_child(folder)
        want_sums = sorted(int(v) for v in images.reshape(len(images), -1).astype(np.int64).sum(1))
        for name, r, wall in (("first ", first, first_wall), ("cached", cached, cached_wall)):
            ok = (
                r["shape"] == [len(images), 1, 28, 28]
                and r["pixel_sums"] == want_sums
                and r["class_counts"] == np.bincount(labels, minlength=10).tolist()
                and r["classes"] == [str(i) for i in range(10)]
            )
            print(
                f"{name}: open_image_folder {r['load_s']:.2f} s, process {wall:.2f} s "
                f"(import torch {r['import_s']:.2f} s), peak RSS {r['peak_rss_mb']:.0f} MB "
                f"({r['torch_rss_mb']:.0f} MB after importing torch), "
                f"torchvision imported: {r['torchvision_imported']}, tensors match the digits: {ok}"
            )
            print(f"        cache {r['cache']}")
            if not ok:
                sys.exit("the loaded tensors do not match the source digits")
        if first["mean"] != cached["mean"] or first["std"] != cached["std"]:
            sys.exit("cached load gave other normalisation statistics")
        print(
            f"summary: {len(images)} PNGs, first load {first['load_s']:.2f} s, "
            f"cached {cached['load_s']:.2f} s, peak RSS {first['peak_rss_mb']:.0f}/{cached['peak_rss_mb']:.0f} MB"
        )
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
