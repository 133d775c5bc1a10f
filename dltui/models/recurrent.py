"""Character-level recurrent classifiers: embedding -> recurrent layer -> linear, over
packed sequences so padding never reaches the recurrence (the classic name classifier)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from dltui.models import ModelSpec

if TYPE_CHECKING:
    from dltui.data import DatasetSpec

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentClassifier(nn.Module):
    def __init__(self, cell: str, vocab: int, n_out: int, hidden: int, layers: int = 1, bidirectional: bool = False):
        super().__init__()
        self.cell = cell
        self.n_directions = 2 if bidirectional else 1
        self.embedding = nn.Embedding(vocab, hidden, padding_idx=0)
        self.rnn = CELLS[cell](hidden, hidden, layers, batch_first=True, bidirectional=bidirectional)
        self.fc = nn.Linear(hidden * self.n_directions, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # tokens are left-aligned with 0 as padding; lengths must live on the CPU for packing
        lengths = (x != 0).sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(self.embedding(x), lengths, batch_first=True, enforce_sorted=False)
        _, hidden = self.rnn(packed)
        if self.cell == "lstm":
            hidden = hidden[0]
        # last layer's final state, both directions when bidirectional
        last = torch.cat([hidden[-1], hidden[-2]], dim=1) if self.n_directions == 2 else hidden[-1]
        return self.fc(last)


def _builder(cell: str, hidden: int, layers: int = 1, bidirectional: bool = False):
    def build(spec: DatasetSpec) -> nn.Module:
        return RecurrentClassifier(cell, spec.vocab_size, spec.num_outputs, hidden, layers, bidirectional)

    return build


SPECS = [
    ModelSpec(
        "rnn", "Elman RNN: embedding(128) -> RNN(128) -> linear", ("sequence",), ("sequence",), _builder("rnn", 128)
    ),
    ModelSpec(
        "lstm", "LSTM: embedding(128) -> LSTM(128) -> linear", ("sequence",), ("sequence",), _builder("lstm", 128)
    ),
    ModelSpec(
        "gru",
        "GRU, 2-layer bidirectional (100 hidden) over packed sequences",
        ("sequence",),
        ("sequence",),
        _builder("gru", 100, layers=2, bidirectional=True),
    ),
]
