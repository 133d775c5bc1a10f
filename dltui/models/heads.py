"""``--dropout``: dropout on the input of a model's classifier head (its last Linear layer).

Added as a forward pre-hook, so the weights keep their names and a checkpoint of the same
model loads with or without it; in eval mode the hook passes the input through unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dltui.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn


def head(model: nn.Module) -> nn.Module | None:
    """The classifier head: the last nn.Linear a model registers (built-in models register
    their layers in forward order)."""
    from torch import nn

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def apply_dropout(model: nn.Module, p: float, name: str) -> None:
    import torch.nn.functional as F

    layer = head(model)
    if layer is None:
        raise ConfigError("dropout", f"{name} has no Linear classifier head to put dropout before")

    def drop(module: nn.Module, args: tuple) -> tuple:
        return (F.dropout(args[0], p, module.training), *args[1:])

    layer.register_forward_pre_hook(drop)
