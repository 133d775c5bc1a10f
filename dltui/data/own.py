"""The record a user's data file or folder becomes, before it joins the catalogue's shape.

Readers of one kind of source (``table.py``: CSV/TSV files, ``imagefolder.py``: folders of
images) each return an :class:`OwnData`; ``sources.py`` turns it into the ``DatasetSpec`` +
``Data`` pair every other part of dltui reads. ``schema`` is everything the reader inferred,
JSON-able, including the state of its encoders (column means, category levels, class names,
image size, normalisation): given back to the reader, it rebuilds exactly the same features
from the same file, so ``eval`` and ``--resume`` never re-infer from data that changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass
class OwnData:
    task: str  # classification | binary | regression | sequence (one of dltui.data.TASKS)
    kind: str  # vector | image | sequence
    input_shape: tuple[int, ...]  # (features,) | (C, H, W) | (max_len,)
    classes: tuple[str, ...]  # class names in label order; () for regression
    x_train: torch.Tensor  # float32 features | uint8 images (N, C, H, W) | int64 token ids (0 = padding)
    y_train: torch.Tensor  # int64 labels | float32 for binary and regression
    x_test: torch.Tensor
    y_test: torch.Tensor
    schema: dict[str, Any]  # JSON-able; passing it back to the reader rebuilds the same features
    report: list[tuple[str, str]] = field(default_factory=list)  # `dltui inspect` lines: (label, text)
    notes: list[str] = field(default_factory=list)  # said once when the run starts (dropped columns, skipped files)
    vocab_size: int = 0  # sequence: token ids run 1..vocab_size-1
    vocab: str = ""  # sequence: the characters, id i+1 = vocab[i]
    scale: float = 1.0  # images: x_float = x_uint8 * scale, then (x - mean) / std per channel
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    split: str = ""  # how train/test were made, e.g. "train/ and test/ folders" or "80/20 by --seed 0"
