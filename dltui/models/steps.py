"""Recurrent models that answer at every step (task ``per-step``): the course's "hello" RNN
lessons, one model per lesson. Each takes (B, T) token ids and returns (B, T, V) scores.

The lessons feed one-hot vectors; dltui stores token ids, so the first two models one-hot
them as their first step (the same numbers the lessons' inputs hold).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dltui.models import ModelSpec


class CellRNN(nn.Module):
    """An nn.RNNCell unrolled by hand over the steps, as the first lesson writes it. The
    hidden state has one unit per class (character) and is itself each step's scores: the
    lesson has no output layer. Its scores live in tanh's [-1, 1], so its answers stay
    unsure (at best ~70 % for 4 classes) and flip more easily than rnn-emb's."""

    def __init__(self, vocab: int, n_out: int):
        super().__init__()
        self.vocab = vocab
        self.cell = nn.RNNCell(vocab, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = F.one_hot(x, self.vocab).float()
        hidden = inputs.new_zeros(len(x), self.cell.hidden_size)
        outputs = []
        for t in range(x.shape[1]):
            hidden = self.cell(inputs[:, t], hidden)
            outputs.append(hidden)
        return torch.stack(outputs, 1)


class OneHotRNN(nn.Module):
    """nn.RNN over one-hot input, the second lesson: the loop moves into the layer, the
    hidden state (one unit per class) is still the scores. The same network as CellRNN:
    same weights, same outputs."""

    def __init__(self, vocab: int, n_out: int):
        super().__init__()
        self.vocab = vocab
        self.rnn = nn.RNN(vocab, n_out, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(F.one_hot(x, self.vocab).float())
        return out


class EmbeddingRNN(nn.Module):
    """The third lesson: Embedding(V, 10) -> 2-layer RNN(10 -> 8) -> Linear(8, classes).
    The scores are no longer bounded by tanh, so they can grow as sure as the data allows."""

    def __init__(self, vocab: int, n_out: int, embedding: int = 10, hidden: int = 8, layers: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.rnn = nn.RNN(embedding, hidden, layers, batch_first=True)
        self.fc = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embedding(x))
        return self.fc(out)


def _builder(cls: type[nn.Module]):
    return lambda spec: cls(spec.vocab_size, spec.num_outputs)


SPECS = [
    ModelSpec(
        "rnn-cell",
        "RNNCell unrolled by hand, one-hot in, hidden state = scores",
        ("per-step",),
        ("sequence",),
        _builder(CellRNN),
    ),
    ModelSpec(
        "rnn-onehot",
        "nn.RNN over one-hot input, hidden state = scores",
        ("per-step",),
        ("sequence",),
        _builder(OneHotRNN),
    ),
    ModelSpec(
        "rnn-emb",
        "Embedding(10) -> 2-layer RNN(8) -> Linear, a score per step",
        ("per-step",),
        ("sequence",),
        _builder(EmbeddingRNN),
    ),
]
