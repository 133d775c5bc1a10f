"""Surnames -> language of origin, one character per step (ASCII code points, 0 = padding)."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from dltui.data import ASSETS, Data, DatasetSpec, Recommended, split_indices
from dltui.errors import DataError

if TYPE_CHECKING:
    from dltui.config import TrainConfig

NAMES_DIR = ASSETS / "names"
VOCAB = 128  # ASCII, as in the classic name classifier
MAX_LEN = 20  # the longest surname in the set has 20 characters
LANGUAGES = (  # one file per language in assets/names
    "Arabic",
    "Chinese",
    "Czech",
    "Dutch",
    "English",
    "French",
    "German",
    "Greek",
    "Hungarian",
    "Italian",
    "Japanese",
    "Korean",
    "Polish",
    "Portuguese",
    "Russian",
    "Spanish",
    "Vietnamese",
)


def to_ascii(name: str) -> str:
    """'Ślusarczyk' -> 'Slusarczyk': strip accents as the classic tutorial does."""
    decomposed = unicodedata.normalize("NFD", name)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn" and ord(c) < VOCAB)


def encode(name: str, max_len: int = MAX_LEN) -> list[int]:
    codes = [ord(c) for c in to_ascii(name)[:max_len] if ord(c)]
    return codes + [0] * (max_len - len(codes))


def decode(codes) -> str:
    return "".join(chr(int(c)) for c in codes if int(c))


def _load(cfg: TrainConfig) -> Data:
    import torch

    langs = NAMES.classes
    rows, labels = [], []
    for label, lang in enumerate(langs):
        path = NAMES_DIR / f"{lang}.txt"
        try:
            words = path.read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"names: cannot read {path} ({exc.__class__.__name__})") from None
        for w in words:
            w = w.strip()
            if w:
                rows.append(encode(w))
                labels.append(label)
    x = torch.tensor(rows, dtype=torch.long)
    y = torch.tensor(labels, dtype=torch.long)
    tr, te = split_indices(len(x), cfg.seed)
    return Data(NAMES, x[tr].contiguous(), y[tr].contiguous(), x[te].contiguous(), y[te].contiguous())


NAMES = DatasetSpec(
    name="names",
    task="sequence",
    kind="sequence",
    input_shape=(MAX_LEN,),
    classes=LANGUAGES,
    train_size=15846,
    test_size=3961,
    source="PyTorch tutorials' surname data (BSD-3-Clause), shipped in assets/names",
    description="surname -> language of origin, characters as a sequence",
    recommended=Recommended("gru", 10, 256, 1e-3, "adam"),
    loader=_load,
    vocab_size=VOCAB,
)

SPECS = [NAMES]
