"""Label-preserving image augmentation for whole batches on the training device.

One gather per batch does the random crop (a shift within zero padding: zero is the
dataset's mean once normalised) and the left-right flip together; no per-sample Python,
no PIL. Evaluation never sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def padding_for(height: int) -> int:
    """The crop's padding: 4 pixels for 32x32 (the CIFAR recipe), 3 for 28x28, 1 for 8x8."""
    return max(1, height // 8)


def augmenter(
    ops: tuple[str, ...], input_shape: tuple[int, ...], device: torch.device, generator: torch.Generator
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function augmenting a float batch (B, C, H, W) with ``ops`` ("crop", "flip"),
    drawing from ``generator`` so a seeded run repeats."""
    import torch
    import torch.nn.functional as F

    _, h, w = input_shape
    pad = padding_for(h) if "crop" in ops else 0
    flip = "flip" in ops
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    channels = torch.arange(input_shape[0], device=device).view(1, -1, 1, 1)

    def augment(x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        c = cols.expand(b, w)
        if flip:
            mirrored = torch.rand(b, device=device, generator=generator) < 0.5
            c = torch.where(mirrored.unsqueeze(1), (w - 1) - cols, c)
        if not pad:
            return x.gather(3, c.view(b, 1, 1, w).expand_as(x))
        dy = torch.randint(0, 2 * pad + 1, (b, 1), device=device, generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (b, 1), device=device, generator=generator)
        padded = F.pad(x, (pad, pad, pad, pad))
        r = (rows + dy).view(b, 1, h, 1)
        c = (c + dx).view(b, 1, 1, w)
        return padded[torch.arange(b, device=device).view(b, 1, 1, 1), channels, r, c]

    return augment
