"""Your own model for dltui: the CNN of the classic PyTorch course, written for any data.

    dltui run --dataset mnist --model examples/course_cnn.py:Net
    dltui run --dataset xor --model examples/course_cnn.py:wide_mlp

The network is the MNIST CNN of the classic PyTorch course (the lecture on basic
convolutional networks; the Net of early pytorch/examples mnist/main.py without its dropout
and hidden layer): conv 10@5x5, max-pool, conv 20@5x5, max-pool, one linear layer from 320
features to 10 classes. There the sizes are written in for 1x28x28 MNIST; here they come
from the data: dltui passes ``in_shape`` and ``num_outputs`` to parameters of those names,
so the same class fits Fashion-MNIST, KMNIST or CIFAR-10 (3x32x32) as well, and refuses
8x8 digits in one line before training. The ``__main__`` block never runs under dltui.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    """The course's CNN: conv 10@5x5, max-pool, conv 20@5x5, max-pool, linear."""

    def __init__(self, in_shape: tuple[int, ...] = (1, 28, 28), num_outputs: int = 10):
        super().__init__()
        channels, height, width = in_shape
        self.conv1 = nn.Conv2d(channels, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.mp = nn.MaxPool2d(2)
        # each 5x5 convolution takes 4 pixels off a side, each pooling halves it:
        # 28 -> 24 -> 12 -> 8 -> 4, so 20 channels x 4 x 4 = 320 inputs for MNIST
        h, w = (((side - 4) // 2 - 4) // 2 for side in (height, width))
        if h < 1 or w < 1:
            raise ValueError(f"Net needs images of at least 16x16 pixels, these are {height}x{width}")
        self.fc = nn.Linear(20 * h * w, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.mp(self.conv1(x)))
        x = F.relu(self.mp(self.conv2(x)))
        return self.fc(x.flatten(1))  # logits: dltui's loss applies the softmax


def wide_mlp(in_shape: tuple[int, ...], num_outputs: int, hidden: int = 512) -> nn.Module:
    """One wide hidden layer: flatten, linear, ReLU, linear (a function returning a model)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(in_shape), hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_outputs),
    )


if __name__ == "__main__":  # a quick look without dltui: python examples/course_cnn.py
    net = Net()
    print(net)
    print(net(torch.zeros(2, 1, 28, 28)).shape)  # torch.Size([2, 10])
