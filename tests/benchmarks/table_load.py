"""Load time and peak memory of ``open_table`` on a large generated CSV.

usage: python tests/benchmarks/table_load.py [--rows 1000000] [--gzip] [--names] [--repeats 3]

Writes a table into a temporary directory: 10 numeric columns (2 of them with 5 % missing
cells), 2 categorical ones (5 levels; 30 levels, so some are grouped as "other") and a 0/1
target, with a header. With --names, the course's names layout instead: ``name,country``
without a header (random 3-12 letter words, some accented; 18 countries), read with
``text="0"`` as character sequences. Each measurement runs in a fresh interpreter so its peak RSS
(ru_maxrss) is its own: first one that only imports torch, pandas and dltui (the floor),
then ``pd.read_csv`` alone (what parsing costs), then ``open_table`` (scan, parse, infer,
fit, encode, split). Prints seconds and peak RSS for each, and the machine, since absolute
numbers move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import json, resource, sys, time
from pathlib import Path
import pandas as pd, torch
from dltui.data.table import open_table
mode, path, text = sys.argv[1], Path(sys.argv[2]), sys.argv[3] or None
t0 = time.perf_counter()
shape = None
if mode == "read_csv":
    shape = list(pd.read_csv(path, low_memory=False, header=None if text else 0).shape)
elif mode == "open_table":
    d = open_table(path, text=text)
    shape = [list(d.x_train.shape), list(d.x_test.shape), d.task]
seconds = time.perf_counter() - t0
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, "shape": shape}))
"""


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    import numpy as np
    import pandas as pd

    r = np.random.default_rng(seed)
    x = r.normal(size=(rows, 10)).astype(np.float32)
    df = pd.DataFrame({f"x{i}": x[:, i] for i in range(10)})
    for c in ("x3", "x7"):
        df.loc[r.random(rows) < 0.05, c] = np.nan
    df["colour"] = r.choice(["red", "green", "blue", "grey", "black"], rows)
    df["town"] = r.choice([f"town{i:02d}" for i in range(30)], rows, p=np.arange(30, 0, -1) / 465)
    df["label"] = (x[:, 0] + x[:, 1] > 0).astype(np.int8)
    df.to_csv(path, index=False, float_format="%.5f")


def write_names(path: Path, rows: int, seed: int = 0) -> None:
    import numpy as np
    import pandas as pd

    r = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzéüßłñ"))
    lengths = r.integers(3, 13, rows)
    chars = letters[r.integers(0, len(letters), (rows, 12))]
    names = ["".join(row[:k]).capitalize() for row, k in zip(chars, lengths, strict=True)]
    countries = r.choice([f"Country{i:02d}" for i in range(18)], rows)
    pd.DataFrame({"name": names, "country": countries}).to_csv(path, index=False, header=False)


def measure(mode: str, path: Path, text: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), text], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--gzip", action="store_true", help="write the table as .csv.gz")
    ap.add_argument("--names", action="store_true", help="the names layout, read as character sequences")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("big.csv.gz" if args.gzip else "big.csv")
        t0 = time.perf_counter()
        (write_names if args.names else write_table)(path, args.rows)
        size = path.stat().st_size / 2**20
        what = "name,country" if args.names else "13 columns"
        print(f"wrote {args.rows:,} rows ({what}), {size:.1f} MiB, in {time.perf_counter() - t0:.1f} s")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, ", end="")
        print(f"load average {os.getloadavg()[0]:.2f}, python {platform.python_version()}")
        for mode in ("imports", "read_csv", "open_table"):
            runs = [
                measure(mode, path, "0" if args.names else "") for _ in range(args.repeats if mode != "imports" else 1)
            ]
            best = min(r["seconds"] for r in runs)
            peak = max(r["peak_mib"] for r in runs)
            shape = runs[0]["shape"] or ""
            print(f"{mode:>10}: best {best:6.2f} s of {len(runs)}, peak RSS {peak:7.0f} MiB  {shape}")


if __name__ == "__main__":
    main()
