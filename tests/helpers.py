"""Helpers shared by the headless tests: tiny IDX files in torchvision's layout, and a
train() wrapper that records every event."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """Uncompressed IDX3 (big-endian header, uint8 pixels): images of shape (N, H, W)."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", IDX_IMAGES_MAGIC, n, h, w) + images.tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    """Uncompressed IDX1 (big-endian header, uint8 labels)."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    path.write_bytes(struct.pack(">II", IDX_LABELS_MAGIC, len(labels)) + labels.tobytes())


def make_images(n: int, seed: int, size: int = 28, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy images: label k lights up a band of rows whose position depends on k."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(n, size, size), dtype=np.uint8)
    band = size // classes
    for i, k in enumerate(labels):
        images[i, k * band : (k + 1) * band, :] = 200 + rng.integers(0, 55)
    return images, labels.astype(np.uint8)


def write_mnist_like(
    data_dir: Path, cls_name: str = "MNIST", n_train: int = 64, n_test: int = 32, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write ``<data_dir>/<cls_name>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, the
    layout torchvision's MNIST-family classes read with download=False."""
    raw = Path(data_dir) / cls_name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out: dict[str, np.ndarray] = {}
    for prefix, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        images, labels = make_images(n, s)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
        out[f"{prefix}_images"], out[f"{prefix}_labels"] = images, labels
    return out


def run_events(cfg, should_stop=None, **kw: Any) -> tuple[Any, list[Any]]:
    """train() on one thread; returns (final event, every event emitted in order)."""
    from dltui.engine import train

    events: list[Any] = []
    kw.setdefault("threads", 1)
    result = train(cfg, events.append, should_stop, **kw)
    return result, events


def of_type(events: list[Any], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def write_cifar_like(data_dir: Path, per_batch: int = 4, n_test: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """Write ``<data_dir>/cifar-10-batches-py/`` as CIFAR-10 ships it: five training batches
    and a test batch, each a pickled dict with ``data`` (N, 3072) uint8 and ``labels``."""
    import pickle

    rng = np.random.default_rng(seed)
    where = Path(data_dir) / "cifar-10-batches-py"
    where.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[np.ndarray]] = {"train_images": [], "train_labels": []}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        labels = rng.integers(0, 10, n)
        batch = {
            "batch_label": name,
            "labels": labels.tolist(),
            "data": data,
            "filenames": [f"{i}.png" for i in range(n)],
        }
        (where / name).write_bytes(pickle.dumps(batch, protocol=2))
        if name == "test_batch":
            out["test_images"], out["test_labels"] = [data], [labels]
        else:
            out["train_images"].append(data)
            out["train_labels"].append(labels)
    (where / "batches.meta").write_bytes(pickle.dumps({"label_names": ["airplane"] * 10}, protocol=2))
    return {k: np.concatenate(v) for k, v in out.items()}


def cli(*args: str, **kw: Any):
    """`dltui ARGS` in-process; a traceback in its output fails the test."""
    from typer.testing import CliRunner

    from dltui.cli import app

    result = CliRunner().invoke(app, list(args), **kw)
    assert "Traceback" not in result.output, result.output
    return result


def one_line_error(result) -> str:
    """The one `dltui: error:` line of a failed command (exactly one)."""
    lines = [ln for ln in result.output.splitlines() if ln.startswith("dltui: error:")]
    assert len(lines) == 1, result.output
    return lines[0]
