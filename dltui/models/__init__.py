"""Model registry: each entry builds a network shaped for a dataset (channels, image size,
features, classes), never with hard-coded sizes."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from dltui.data import DatasetSpec


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    tasks: tuple[str, ...]
    kinds: tuple[str, ...]  # input kinds it accepts: image / vector / sequence
    builder: Callable[[DatasetSpec], nn.Module]

    def incompatibility(self, spec: DatasetSpec) -> str | None:
        """Why this model cannot train on ``spec``, or None when it can."""
        if spec.task not in self.tasks:
            return f"{self.name} is for {' / '.join(self.tasks)}, {spec.name} is {spec.task}"
        if spec.kind not in self.kinds:
            return f"{self.name} takes {' / '.join(self.kinds)} input, {spec.name} is {spec.kind}"
        return _probe(self, spec)[0]


@functools.cache  # specs are frozen; the app asks on every keystroke, a probe takes ~2 ms
def _probe(model: ModelSpec, spec: DatasetSpec) -> tuple[str | None, int]:
    """Build ``model`` for ``spec`` once, on the CPU, and for fixed-size inputs run a
    2-sample forward pass (every model here builds and runs in under 10 ms). Not on the
    meta device: that path imports sympy, ~155 MB of RSS and ~1 s. The global RNG is left
    as it was, so probing never shifts a seeded run. Returns (why it cannot train on
    ``spec`` or None, its parameter count)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        try:
            net = model.builder(spec)
            if spec.kind != "sequence":  # recurrent models accept any length
                with torch.inference_mode():
                    net.eval()(torch.zeros(2, *spec.input_shape))
        except (RuntimeError, ValueError) as exc:
            if spec.kind == "image":
                h, w = spec.input_shape[1:]
                return f"{model.name} needs larger images than {h}x{w}", 0
            return str(exc).splitlines()[0], 0
    return None, count_params(net)


def compatible_models(spec: DatasetSpec) -> list[str]:
    return [name for name, m in MODELS.items() if m.incompatibility(spec) is None]


def build_model(name: str, spec: DatasetSpec, init: str = "default") -> nn.Module:
    """Build model ``name`` (a registry name or the user's ``FILE.py:NAME``) for dataset
    ``spec`` on the CPU, with the requested init."""
    model = resolve_model(name).builder(spec)
    if init == "normal":
        normal_init(model)
    return model


def normal_init(model: nn.Module) -> None:
    """N(0, 0.01) weights and zero biases, as the classic lessons initialise."""
    import torch

    with torch.no_grad():
        for pname, p in model.named_parameters():
            leaf = pname.rsplit(".", 1)[-1]
            if "bias" in pname or re.fullmatch(r"b\d*", leaf):  # the scratch models' b, b1, b2
                p.zero_()
            else:
                p.normal_(0.0, 0.01)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def param_count(name: str, spec: DatasetSpec) -> int:
    """Parameters of model ``name`` built for ``spec`` (a pair that fits)."""
    return _probe(resolve_model(name), spec)[1]


def _registry() -> dict[str, ModelSpec]:
    from dltui.models import cnn, linear, recurrent, scratch, steps

    specs = (*linear.SPECS, *scratch.SPECS, *cnn.SPECS, *recurrent.SPECS, *steps.SPECS)
    return {m.name: m for m in specs}


MODELS: dict[str, ModelSpec] = _registry()


def resolve_model(ref: str) -> ModelSpec:
    """The ModelSpec a ``--model`` value names: a registry name (any case), or the user's own
    model as ``FILE.py:NAME`` or ``package.module:NAME`` (see :mod:`dltui.models.custom`;
    its name is the reference with a file's path made absolute). Raises ConfigError("model", ...)."""
    text = str(ref).strip()
    if text.lower() in MODELS:
        return MODELS[text.lower()]
    from dltui.models import custom

    if custom.is_reference(text):
        return custom.custom_spec(text)
    from dltui.config import choose

    return MODELS[choose("model", text, tuple(MODELS))]
