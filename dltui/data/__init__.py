"""Dataset registry: small specs that know their shape and recommendations without loading.

``load(cfg)`` turns a spec into :class:`Data`: whole splits as CPU tensors (uint8 images,
float features, int64 token sequences). Scaling to floats happens per batch on the
training device via :meth:`Data.batch_transform`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable
    from pathlib import Path

    import torch

    from dltui.config import TrainConfig

TASKS = ("classification", "binary", "regression", "sequence", "per-step")  # per-step: a class at every step


def shipped(name: str) -> Traversable:
    """The folder of data that dltui ships inside the package (``dltui/data/assets/<name>``),
    its README giving provenance and licence. Read through importlib.resources, so it is
    found wherever the package is installed: a wheel, an editable checkout, a zip."""
    return files(__name__) / "assets" / name


@dataclass(frozen=True)
class Recommended:
    """Hyperparameters that give a good run without tuning."""

    model: str
    epochs: int
    batch_size: int
    lr: float
    optimizer: str


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    task: str  # one of TASKS
    kind: str  # "image" | "vector" | "sequence": what shape the input has
    input_shape: tuple[int, ...]  # (C, H, W) | (features,) | (max_len,)
    classes: tuple[str, ...]  # empty for regression
    train_size: int
    test_size: int
    source: str
    description: str
    recommended: Recommended
    loader: Callable[[TrainConfig], Data]
    needs_data_dir: bool = False  # torchvision datasets live in --data-dir
    files_present: Callable[[str], bool] | None = None  # offline availability under data_dir
    folder: Callable[[str], Path] | None = None  # where its files live under data_dir
    assets: str = ""  # shipped(assets) holds its files: it ships inside the package
    vocab_size: int = 0  # sequence datasets
    test_is_train: bool = False  # the lessons' tiny sets: every point trains and is evaluated, no split
    augmentations: tuple[str, ...] = ()  # label-preserving ones: "crop" (pad and shift), "flip" (left-right)
    augment_default: bool = False  # on unless --no-augment
    path: str = ""  # your own data: the absolute path it was read from

    @property
    def ref(self) -> str:
        """What a config's ``dataset`` holds for it: the registry name, or the path."""
        return self.path or self.name

    @property
    def num_outputs(self) -> int:
        return len(self.classes) if self.task in ("classification", "sequence", "per-step") else 1

    def available_offline(self, data_dir: str) -> bool:
        return self.files_present is None or self.files_present(data_dir)


@dataclass
class Data:
    """A loaded dataset: both splits as CPU tensors plus what is needed to read them."""

    spec: DatasetSpec
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    # images: x_float = x_uint8 * scale, then (x - mean) / std per channel
    scale: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. true_w / true_b; vocab

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes

    @property
    def task(self) -> str:
        return self.spec.task

    def _normalise_(self, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
        """In-place scale and normalisation of a float batch, folded into one multiply-add."""
        import torch

        std = torch.tensor(self.std, dtype=torch.float32)
        mean = torch.tensor(self.mean, dtype=torch.float32)
        shape = (1, -1, 1, 1)
        mul = (self.scale / std).view(shape).to(device)
        add = (-mean / std).view(shape).to(device)
        if len(self.std) == 1:
            # one vectorised kernel on floats: add + alpha * f (a uint8 input would take
            # the slower type-promoting path: 10 us vs. 3.4 us copy + 4.4 us add per MNIST batch)
            m, a = float(mul), add.view(()).clone()
            return lambda f: torch.add(a, f, alpha=m, out=f)
        return lambda f: f.mul_(mul).add_(add)

    def batch_transform(self, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function turning a stored batch (already on ``device``) into model input."""
        if self.mean is None:
            return lambda xb: xb  # features are stored as floats; token ids stay int64
        normalise_ = self._normalise_(device)
        return lambda xb: normalise_(xb.float())

    def batch_gather(
        self, x: torch.Tensor, batch_size: int, channels_last: bool = False
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function giving the model input for rows ``idx`` of ``x`` (a stored split on its
        device), written into buffers that every call reuses.

        A fresh batch tensor per step cost more than the copy into it (cold cache lines on
        every write; measured on softmax/MNIST: 1.08x bare with fresh tensors, 1.03x with
        reused ones). Reuse is safe because a step's backward pass ends before the next
        gather, on CPU by program order and on CUDA by stream order; callers must not keep
        the returned tensor past the step.
        """
        import torch

        raw = torch.empty((batch_size, *x.shape[1:]), dtype=x.dtype, device=x.device)
        if self.mean is None:
            return lambda idx: torch.index_select(x, 0, idx, out=raw[: len(idx)])
        normalise_ = self._normalise_(x.device)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        flt = torch.empty(raw.shape, dtype=torch.float32, device=x.device, memory_format=fmt)

        def gather(idx: torch.Tensor) -> torch.Tensor:
            k = len(idx)
            r, f = (raw, flt) if k == batch_size else (raw[:k], flt[:k])
            # index_select copies whole rows; x[idx] goes element by element (10x slower)
            torch.index_select(x, 0, idx, out=r)
            return normalise_(f.copy_(r))

        return gather


_cache: dict[tuple, Data] = {}


def load(cfg: TrainConfig) -> Data:
    """Load (once per process) the built-in dataset ``cfg`` names (``sources.load`` takes
    paths too), split by ``cfg.seed`` where the
    dataset has no official split. Raises DataError with a one-line explanation."""
    spec = DATASETS[cfg.dataset]
    key = (cfg.dataset, cfg.data_dir if spec.needs_data_dir else None, cfg.seed)
    if key not in _cache:
        if len(_cache) >= 4:  # bounded: the app may switch between many datasets
            _cache.pop(next(iter(_cache)))
        _cache[key] = spec.loader(cfg)
    return _cache[key]


def split_indices(n: int, seed: int, test_fraction: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic shuffled train/test split for datasets without an official one."""
    import torch

    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_test = int(round(n * test_fraction))
    return perm[n_test:], perm[:n_test]


def standardise(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero mean, unit variance per feature, with statistics from the training split only."""
    mean = x_train.mean(0, keepdim=True)
    std = x_train.std(0, keepdim=True).clamp_min(1e-8)
    return (x_train - mean) / std, (x_test - mean) / std


def _registry() -> dict[str, DatasetSpec]:
    from dltui.data import names, tabular, toys, vision

    specs = [*tabular.SPECS[:1], *vision.SPECS, *tabular.SPECS[1:], *names.SPECS, *toys.SPECS]
    return {s.name: s for s in specs}


DATASETS: dict[str, DatasetSpec] = _registry()
