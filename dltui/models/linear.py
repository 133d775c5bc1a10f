"""Linear models and MLPs, as plain nn.Sequential so their checkpoints load into the
lessons' own definitions with strict=True."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from dltui.models import ModelSpec

if TYPE_CHECKING:
    from dltui.data import DatasetSpec


def _features(spec: DatasetSpec) -> int:
    return math.prod(spec.input_shape)


def linreg(spec: DatasetSpec):
    from torch import nn

    return nn.Sequential(nn.Linear(_features(spec), 1))


def softmax(spec: DatasetSpec):
    from torch import nn

    # the softmax itself lives in the cross-entropy loss, as in the lessons
    return nn.Sequential(nn.Flatten(), nn.Linear(_features(spec), spec.num_outputs))


def mlp(spec: DatasetSpec):
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(_features(spec), 256), nn.ReLU(), nn.Linear(256, spec.num_outputs))


DEEP_HIDDEN = (512, 256, 128, 64, 32)


def deep_mlp(spec: DatasetSpec):
    from torch import nn

    layers: list[nn.Module] = [nn.Flatten()]
    width = _features(spec)
    for hidden in DEEP_HIDDEN:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, spec.num_outputs))
    return nn.Sequential(*layers)


SPECS = [
    ModelSpec("linreg", "linear regression: Linear -> 1, MSE loss", ("regression",), ("vector",), linreg),
    ModelSpec(
        "logreg",
        "logistic regression: Linear -> 1, sigmoid + BCE (fused in the loss)",
        ("binary",),
        ("vector",),
        linreg,
    ),
    ModelSpec(
        "softmax",
        "softmax regression: Flatten + Linear, cross-entropy",
        ("classification",),
        ("vector", "image"),
        softmax,
    ),
    ModelSpec(
        "mlp",
        "multilayer perceptron: Linear(.,256), ReLU, Linear(256,.)",
        ("classification", "binary", "regression"),
        ("vector", "image"),
        mlp,
    ),
    ModelSpec(
        "deep-mlp",
        "deep MLP: hidden 512-256-128-64-32 with ReLU",
        ("classification", "binary", "regression"),
        ("vector", "image"),
        deep_mlp,
    ),
]
