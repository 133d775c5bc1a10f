"""Convolutional networks of the classic lessons: d2l's LeNet-5 and the PyTorch course's
CNN, Inception and residual networks. Flatten sizes are computed from the input shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from dltui.models import ModelSpec

if TYPE_CHECKING:
    from dltui.data import DatasetSpec


def _flat_size(features: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...]) -> int:
    """Output size of ``features`` for one input of ``shape``."""
    with torch.no_grad():
        out = features(torch.zeros(1, *shape))
    if out.numel() == 0:
        raise ValueError("input too small")
    return out.numel()


def lenet(spec: DatasetSpec) -> nn.Module:
    """LeNet-5 as in Dive into Deep Learning (sigmoid activations, average pooling)."""
    c = spec.input_shape[0]
    features = [
        nn.Conv2d(c, 6, kernel_size=5, padding=2),
        nn.Sigmoid(),
        nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5),
        nn.Sigmoid(),
        nn.AvgPool2d(2, 2),
        nn.Flatten(),
    ]
    flat = _flat_size(nn.Sequential(*features), spec.input_shape)
    return nn.Sequential(
        *features,
        nn.Linear(flat, 120),
        nn.Sigmoid(),
        nn.Linear(120, 84),
        nn.Sigmoid(),
        nn.Linear(84, spec.num_outputs),
    )


class ConvNet(nn.Module):
    """conv 10@5x5 -> max-pool -> conv 20@5x5 -> max-pool -> linear (the course's CNN)."""

    def __init__(self, spec: DatasetSpec):
        super().__init__()
        self.conv1 = nn.Conv2d(spec.input_shape[0], 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.pooling = nn.MaxPool2d(2)
        self.fc = nn.Linear(_flat_size(self.features, spec.input_shape), spec.num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.pooling(self.conv1(x)))
        return F.relu(self.pooling(self.conv2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


class InceptionA(nn.Module):
    """Four parallel branches (1x1, 5x5, double 3x3, pool) concatenated: 88 channels out."""

    channels = 16 + 24 + 24 + 24

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch1x1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_2 = nn.Conv2d(16, 24, kernel_size=5, padding=2)
        self.branch3x3_1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch3x3_2 = nn.Conv2d(16, 24, kernel_size=3, padding=1)
        self.branch3x3_3 = nn.Conv2d(24, 24, kernel_size=3, padding=1)
        self.branch_pool = nn.Conv2d(in_channels, 24, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3_3(self.branch3x3_2(self.branch3x3_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([b1, b5, b3, bp], dim=1)


class InceptionNet(nn.Module):
    def __init__(self, spec: DatasetSpec):
        super().__init__()
        self.conv1 = nn.Conv2d(spec.input_shape[0], 10, kernel_size=5)
        self.conv2 = nn.Conv2d(InceptionA.channels, 20, kernel_size=5)
        self.incep1 = InceptionA(10)
        self.incep2 = InceptionA(20)
        self.mp = nn.MaxPool2d(2)
        self.fc = nn.Linear(_flat_size(self.features, spec.input_shape), spec.num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.incep1(F.relu(self.mp(self.conv1(x))))
        return self.incep2(F.relu(self.mp(self.conv2(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


class ResidualBlock(nn.Module):
    """y = relu(x + conv2(relu(conv1(x)))): the skip adds the input before the last ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(x + y)


class ResNet(nn.Module):
    def __init__(self, spec: DatasetSpec):
        super().__init__()
        self.conv1 = nn.Conv2d(spec.input_shape[0], 16, kernel_size=5)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5)
        self.mp = nn.MaxPool2d(2)
        self.rblock1 = ResidualBlock(16)
        self.rblock2 = ResidualBlock(32)
        self.fc = nn.Linear(_flat_size(self.features, spec.input_shape), spec.num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.rblock1(self.mp(F.relu(self.conv1(x))))
        return self.rblock2(self.mp(F.relu(self.conv2(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


SPECS = [
    ModelSpec("lenet", "LeNet-5 (d2l): 2 conv + 3 linear, sigmoid, avg-pool", ("classification",), ("image",), lenet),
    ModelSpec(
        "cnn", "CNN: conv 10@5x5, max-pool, conv 20@5x5, max-pool, linear", ("classification",), ("image",), ConvNet
    ),
    ModelSpec(
        "inception", "two Inception-A blocks (1x1/5x5/3x3/pool branches)", ("classification",), ("image",), InceptionNet
    ),
    ModelSpec("resnet", "two residual blocks between conv/max-pool stages", ("classification",), ("image",), ResNet),
]
