"""Image datasets in torchvision's root layout, so files already downloaded for other
PyTorch code are reused; torchvision's own classes download them. Reading needs no
torchvision: the files are decoded straight into uint8 tensors (importing torchvision
alone costs ~170 MB of RSS and ~0.5 s), and no per-sample transform ever runs."""

from __future__ import annotations

import importlib
import math
import os
import pickle
import shutil
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from dltui.data import Data, DatasetSpec, Recommended
from dltui.errors import DataError

if TYPE_CHECKING:
    import torch

    from dltui.config import TrainConfig

DOWNLOAD_TIMEOUT_S = 10.0  # per network operation: fail fast when offline instead of hanging
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")

# torchvision class name -> (folder under the data dir, files that must exist there)
LAYOUT = {
    "MNIST": ("MNIST/raw", MNIST_FILES),
    "FashionMNIST": ("FashionMNIST/raw", MNIST_FILES),
    "KMNIST": ("KMNIST/raw", MNIST_FILES),
    "CIFAR10": ("cifar-10-batches-py", CIFAR_FILES),
}


def folder(cls_name: str, data_dir: str) -> Path:
    return Path(data_dir) / LAYOUT[cls_name][0]


def files_present(cls_name: str, data_dir: str) -> bool:
    where = folder(cls_name, data_dir)
    return all((where / f).is_file() for f in LAYOUT[cls_name][1])


def _reason(exc: BaseException) -> str:
    """The most telling line of a (possibly multi-line) download error."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    telling = [ln for ln in lines if ln.startswith("<") or "rror" in ln.split(" ")[0]]
    text = (telling or lines or [type(exc).__name__])[-1].strip("<>")
    return text[:160]


def _download(spec: DatasetSpec, cls_name: str, data_dir: str) -> None:
    """Download through torchvision; on failure remove what this attempt left behind."""
    import torchvision

    where = folder(cls_name, data_dir)
    top = Path(data_dir) / LAYOUT[cls_name][0].split("/")[0]
    existed = top.exists()
    before = set(top.rglob("*")) if existed else set()
    expected = ", ".join(LAYOUT[cls_name][1])
    hint = (
        f"{spec.name} is not in {where} and could not be downloaded ({{reason}}); "
        f"place the files there in torchvision's layout ({expected}), "
        f"or use --dataset digits, which works offline"
    )
    if os.environ.get("DLTUI_OFFLINE"):
        raise DataError(hint.format(reason="DLTUI_OFFLINE is set"))
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        for train in (True, False):
            getattr(torchvision.datasets, cls_name)(data_dir, train=train, download=True)
    except Exception as exc:  # URLError, RuntimeError (md5), OSError, timeouts ...
        if existed:
            for p in sorted(set(top.rglob("*")) - before, reverse=True):
                p.unlink() if p.is_file() else shutil.rmtree(p, ignore_errors=True)
        else:
            shutil.rmtree(top, ignore_errors=True)
        raise DataError(hint.format(reason=_reason(exc))) from None
    finally:
        socket.setdefaulttimeout(old_timeout)


def _read_idx(path: Path, ndim: int) -> torch.Tensor:
    """An IDX file of unsigned bytes (the MNIST family's format) as a uint8 tensor, read
    straight into the tensor's memory."""
    import torch

    with open(path, "rb") as f:
        head = f.read(4 + 4 * ndim)
        if len(head) < 4 + 4 * ndim or head[:4] != bytes((0, 0, 8, ndim)):
            raise ValueError(f"{path.name} is not an IDX file of {ndim}-d unsigned bytes")
        dims = struct.unpack(f">{ndim}I", head[4:])
        size = os.fstat(f.fileno()).st_size - len(head)
        if size != math.prod(dims):  # checked before allocating: a damaged header can claim terabytes
            raise ValueError(f"{path.name} holds {size} bytes of data, its header says {math.prod(dims)}")
        out = torch.empty(dims, dtype=torch.uint8)
        if f.readinto(out.numpy()) != size:
            raise ValueError(f"{path.name} changed while being read")
    return out


def _read_mnist(where: Path) -> list[torch.Tensor]:
    x_train, y_train, x_test, y_test = (where / name for name in MNIST_FILES)
    return [  # images -> (N, 1, H, W)
        _read_idx(x_train, 3).unsqueeze(1),
        _read_idx(y_train, 1).long(),
        _read_idx(x_test, 3).unsqueeze(1),
        _read_idx(y_test, 1).long(),
    ]


# what a CIFAR-10 batch (a pickled dict of numpy arrays) may name; "numpy.core" is numpy 1's
# name for numpy._core, which the original files (Python 2 pickles) use
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Loads numpy arrays, lists, dicts and strings, and refuses anything else: a plain
    pickle.load (what torchvision does) runs whatever callable a tampered file names."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core"):
            try:
                return getattr(importlib.import_module("numpy._core" + module[len("numpy.core") :]), name)
            except ImportError:  # numpy 1
                pass
        return getattr(importlib.import_module(module), name)


def _read_cifar_batches(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    import torch

    images, labels = [], []
    for path in paths:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="latin1").load()
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(batch["labels"]) != len(data):
            raise ValueError(f"{path.name}: unexpected data {data.shape} with {len(batch['labels'])} labels")
        images.append(torch.from_numpy(data).view(-1, 3, 32, 32))
        labels.append(torch.as_tensor(batch["labels"], dtype=torch.long))
    return torch.cat(images), torch.cat(labels)


def _read_cifar(where: Path) -> list[torch.Tensor]:
    *train, test, _meta = (where / name for name in CIFAR_FILES)
    return [*_read_cifar_batches(train), *_read_cifar_batches([test])]


_READERS = {"MNIST": _read_mnist, "FashionMNIST": _read_mnist, "KMNIST": _read_mnist, "CIFAR10": _read_cifar}


def _loader(cls_name: str, mean: tuple[float, ...], std: tuple[float, ...]):
    def load(cfg: TrainConfig) -> Data:
        spec = _SPECS[cls_name]
        if not files_present(cls_name, cfg.data_dir):
            _download(spec, cls_name, cfg.data_dir)
        where = folder(cls_name, cfg.data_dir)
        try:
            tensors = _READERS[cls_name](where)
            for x, y in (tensors[:2], tensors[2:]):
                if tuple(x.shape[1:]) != spec.input_shape or len(x) != len(y):
                    raise ValueError(f"unexpected shape {tuple(x.shape)} with {len(y)} labels")
                if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(spec.classes)):
                    raise ValueError("labels out of range")
        except Exception as exc:  # whatever a damaged file makes the readers raise
            raise DataError(
                f"{spec.name} files in {where} are damaged or incomplete "
                f"({_reason(exc)}); delete that folder to download them again, or replace the files"
            ) from None
        if len(tensors[0]) == 0 or len(tensors[2]) == 0:
            raise DataError(f"{spec.name} files in {where} hold no images")
        return Data(spec, *tensors, scale=1 / 255, mean=mean, std=std)

    return load


def _spec(
    cls_name, name, shape, classes, sizes, rec, mean, std, description, augment=(("crop",), False)
) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        task="classification",
        kind="image",
        input_shape=shape,
        classes=classes,
        train_size=sizes[0],
        test_size=sizes[1],
        source=f"torchvision.datasets.{cls_name} (downloads into --data-dir)",
        description=description,
        recommended=rec,
        loader=_loader(cls_name, mean, std),
        needs_data_dir=True,
        files_present=lambda d: files_present(cls_name, d),
        folder=lambda d: folder(cls_name, d),
        augmentations=augment[0],
        augment_default=augment[1],
    )


FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")

_SPECS = {
    "FashionMNIST": _spec(
        "FashionMNIST",
        "fashion-mnist",
        (1, 28, 28),
        FASHION_CLASSES,
        (60000, 10000),
        Recommended("cnn", 10, 128, 2e-3, "adam"),
        (0.2860,),
        (0.3530,),
        "Zalando clothing, 28x28 grayscale, 10 classes",
        (("crop", "flip"), False),
    ),
    "MNIST": _spec(
        "MNIST",
        "mnist",
        (1, 28, 28),
        tuple(str(i) for i in range(10)),
        (60000, 10000),
        Recommended("cnn", 5, 64, 0.01, "momentum"),
        (0.1307,),
        (0.3081,),
        "handwritten digits, 28x28 grayscale",
    ),
    "KMNIST": _spec(
        "KMNIST",
        "kmnist",
        (1, 28, 28),
        KMNIST_CLASSES,
        (60000, 10000),
        Recommended("cnn", 10, 128, 2e-3, "adam"),
        (0.1918,),
        (0.3483,),
        "Kuzushiji-MNIST: cursive Japanese characters, 28x28",
    ),
    "CIFAR10": _spec(
        "CIFAR10",
        "cifar10",
        (3, 32, 32),
        CIFAR_CLASSES,
        (50000, 10000),
        Recommended("resnet", 10, 128, 1e-3, "adam"),
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        "32x32 colour photos, 10 classes",
        (("crop", "flip"), True),  # the standard CIFAR-10 recipe; a mirrored cat is a cat
    ),
}

SPECS = [_SPECS["FashionMNIST"], _SPECS["MNIST"], _SPECS["KMNIST"], _SPECS["CIFAR10"]]
