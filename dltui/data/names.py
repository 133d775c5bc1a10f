"""Surnames -> language of origin, one character per step (0 = padding).

The files are UTF-8, and some surnames carry letters beyond ASCII (Müller, Ślusarczyk,
Gáspár): the vocabulary holds each of them as itself, since they say much about the
language (ß is German, ő and ű are Hungarian, ł is Polish). ASCII characters keep their code points
as ids; the other letters of the files follow from 128 (see LETTERS).
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from dltui.data import Data, DatasetSpec, Recommended, shipped, split_indices
from dltui.errors import DataError

if TYPE_CHECKING:
    from dltui.config import TrainConfig

# Every letter beyond ASCII in the shipped files, ids 128.. in this order (a test keeps it
# complete). A new letter goes at the end so the others keep their ids; any change resizes
# the recurrent models' embedding, so their older checkpoints no longer load.
LETTERS = "ÁÉßàáãäçèéêìíñòóõöùúüąłńőŚűŻż"
VOCAB = 128 + len(LETTERS)
_ID = {c: 128 + i for i, c in enumerate(LETTERS)}
_CHAR = {i: c for c, i in _ID.items()}
MAX_LEN = 20  # the longest surname in the set has 20 characters
LANGUAGES = (  # one file per language, shipped("names") / "<language>.txt"
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


def to_ascii(text: str) -> str:
    """'Ślusarczyk' -> 'Slusarczyk': accents stripped; what has no ASCII base is dropped."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn" and ord(c) < 128)


def encode(name: str, max_len: int = MAX_LEN) -> list[int]:
    """Token ids of ``name``, padded with 0 to ``max_len``. A character outside the
    vocabulary (none in the shipped files) falls back to its ASCII base letter."""
    codes: list[int] = []
    for c in unicodedata.normalize("NFC", name):
        if c in _ID:
            codes.append(_ID[c])
        elif 0 < ord(c) < 128:
            codes.append(ord(c))
        else:
            codes.extend(ord(a) for a in to_ascii(c) if ord(a))
    codes = codes[:max_len]
    return codes + [0] * (max_len - len(codes))


def decode(codes) -> str:
    return "".join(_CHAR.get(int(c)) or chr(int(c)) for c in codes if int(c))


def _load(cfg: TrainConfig) -> Data:
    import torch

    langs = NAMES.classes
    rows, labels = [], []
    for label, lang in enumerate(langs):
        path = shipped("names") / f"{lang}.txt"
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
    source="PyTorch tutorials' surname data (BSD-3-Clause)",
    description="surname -> language of origin, characters as a sequence",
    recommended=Recommended("gru", 10, 256, 1e-3, "adam"),
    loader=_load,
    assets="names",
    vocab_size=VOCAB,
)

SPECS = [NAMES]
