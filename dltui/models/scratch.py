"""The classic lessons' models from scratch (d2l ch. 3-4): parameters as raw tensors, the
forward pass as the lessons' formulas, and their minibatch SGD as an optimizer.

A lesson's parameter is ``torch.normal(0, 0.01, size, requires_grad=True)``; here it is
the same tensor wrapped in nn.Parameter (a tensor with requires_grad=True), under the
lesson's name (w, b, W1, ...), so dltui's optimizers, checkpoints and parameter counts
see it. Each model initialises as the lessons do: N(0, 0.01) weights, zero biases.

The loss stays dltui's: MSE for linreg-scratch (the lessons' squared loss halves it, so
their lr is twice ours for the same step), ``F.cross_entropy`` for the classifiers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from dltui.models import ModelSpec

if TYPE_CHECKING:
    from dltui.data import DatasetSpec


def softmax(X: torch.Tensor) -> torch.Tensor:
    """The lessons' ``exp(X) / exp(X).sum(1, keepdim=True)``, with each row's max taken
    away first: the ratio is unchanged, and exp can no longer overflow to inf/inf = nan
    once a score passes ~88 (float32)."""
    X_exp = torch.exp(X - X.max(1, keepdim=True).values)
    return X_exp / X_exp.sum(1, keepdim=True)


def cross_entropy(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The lessons' hand-written loss per example: minus the log of the probability the
    model gave the true class."""
    return -torch.log(y_hat[range(len(y_hat)), y])


def relu(X: torch.Tensor) -> torch.Tensor:
    return torch.max(X, torch.zeros_like(X))


def _weight(*size: int) -> nn.Parameter:
    return nn.Parameter(torch.normal(0.0, 0.01, size))


class LinRegScratch(nn.Module):
    """d2l 3.2: ``linreg(X, w, b) = X @ w + b``."""

    def __init__(self, features: int):
        super().__init__()
        self.w = _weight(features, 1)
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X @ self.w + self.b


class SoftmaxScratch(nn.Module):
    """d2l 3.6: ``softmax(X.reshape(-1, W.shape[0]) @ W + b)``, returned as log-probabilities.

    Why the log: the loop's loss is ``F.cross_entropy``, which takes log_softmax of what the
    model returns. Log-probabilities already sum to one under exp, so that log_softmax
    changes nothing and the loss minimised is exactly the lesson's
    ``cross_entropy(softmax(O), y).mean()``, gradients included; argmax and confidences
    are those of the lesson's y_hat. Returning the scores O would have hidden the lesson's
    softmax inside torch's. What stays the lesson's too is its weakness: a true class whose
    probability underflows to 0 gives log 0 = -inf and an infinite loss, which dltui stops
    as a divergence (the concise lesson's LogSumExp trick is the cure).
    """

    def __init__(self, features: int, classes: int):
        super().__init__()
        self.W = _weight(features, classes)
        self.b = nn.Parameter(torch.zeros(classes))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return torch.log(softmax(X.reshape(-1, self.W.shape[0]) @ self.W + self.b))


class MLPScratch(nn.Module):
    """d2l 4.2: one hidden layer of 256 with the hand-written relu. Returns scores, as that
    lesson does: it hands them to the framework's cross-entropy (its softmax lesson made
    the point already)."""

    def __init__(self, features: int, classes: int, hiddens: int = 256):
        super().__init__()
        self.W1 = _weight(features, hiddens)
        self.b1 = nn.Parameter(torch.zeros(hiddens))
        self.W2 = _weight(hiddens, classes)
        self.b2 = nn.Parameter(torch.zeros(classes))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        H = relu(X.reshape(-1, self.W1.shape[0]) @ self.W1 + self.b1)
        return H @ self.W2 + self.b2


class ScratchSGD(torch.optim.Optimizer):
    """The lessons' minibatch SGD, ``sgd(params, lr, batch_size)``::

        with torch.no_grad():
            for param in params:
                param -= lr * param.grad / batch_size

    The lessons sum the loss over the minibatch and divide by its size here. dltui's losses
    are already means over the batch, so ``batch_size`` is 1 by default: the same step.
    ``weight_decay`` adds ``weight_decay * param`` to the gradient, as torch's SGD does (and
    as d2l 4.5's penalty ``lambd * (w**2).sum() / 2`` in the loss does for w).
    """

    def __init__(self, params, lr: float, batch_size: int = 1, weight_decay: float = 0.0):
        if not (lr > 0 and batch_size >= 1 and weight_decay >= 0):
            raise ValueError(f"ScratchSGD: lr {lr}, batch_size {batch_size}, weight_decay {weight_decay} out of range")
        super().__init__(params, {"lr": lr, "batch_size": batch_size, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, batch_size, decay = group["lr"], group["batch_size"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad + decay * param if decay else param.grad
                param -= lr * grad / batch_size
        return loss


def affine(model: nn.Module) -> tuple[list[float], float] | None:
    """(w, b) of a model that is one affine map, y = x . w + b: linreg / logreg (one
    nn.Linear) or linreg-scratch; None for any other model."""
    if isinstance(model, LinRegScratch):
        w, b = model.w, model.b
    elif isinstance(model, nn.Sequential) and len(model) == 1 and isinstance(model[0], nn.Linear):
        if model[0].out_features != 1:
            return None
        w, b = model[0].weight, model[0].bias
    else:
        return None
    return w.detach().cpu().reshape(-1).tolist(), float(b.detach().cpu().reshape(()))


def _features(spec: DatasetSpec) -> int:
    return math.prod(spec.input_shape)


SPECS = [
    ModelSpec(
        "linreg-scratch",
        "linear regression from scratch: X @ w + b, raw tensors",
        ("regression",),
        ("vector",),
        lambda spec: LinRegScratch(_features(spec)),
    ),
    ModelSpec(
        "softmax-scratch",
        "softmax regression from scratch: the lesson's softmax, log-probabilities out",
        ("classification",),
        ("vector", "image"),
        lambda spec: SoftmaxScratch(_features(spec), spec.num_outputs),
    ),
    ModelSpec(
        "mlp-scratch",
        "MLP from scratch: X @ W1 + b1, hand-written relu, 256 hidden",
        ("classification", "binary", "regression"),
        ("vector", "image"),
        lambda spec: MLPScratch(_features(spec), spec.num_outputs),
    ),
]
