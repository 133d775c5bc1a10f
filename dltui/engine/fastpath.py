"""The optimizer without torch.compile's machinery, for runs that do not compile.

torch.optim guards its methods against tracing: ``add_param_group``, ``zero_grad``,
``state_dict`` … are wrapped by ``torch._disable_dynamo``, and every ``step`` goes through
``_use_grad``, which imports ``torch._dynamo`` and calls its ``graph_break()``. In an eager
run that import is all they do, and it is the costliest thing a small run does before its
first batch: torch._dynamo pulls in sympy (measured: 0.9-1.3 s and ~150 MB of RSS on this
project's CPU machine). Both guards have a documented escape (the wrapped function is kept
in ``__wrapped__``, and ``_disable_dynamo`` caches its disabled function on the original
as ``__dynamo_disable``), which this module uses. With ``--compile`` nothing here runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _guarded(klass: type) -> list[Any]:
    """The originals of ``klass``'s methods wrapped by torch._disable_dynamo."""
    found = []
    for cls in klass.__mro__:
        for f in vars(cls).values():
            code, raw = getattr(f, "__code__", None), getattr(f, "__wrapped__", None)
            if raw is not None and code is not None and code.co_filename.endswith("_compile.py"):
                found.append(raw)
    return found


def skip_dynamo_guards(*classes: type) -> int:
    """Let ``classes``' guarded methods run as themselves (what they do whenever nothing is
    being compiled), so calling them does not import torch._dynamo. Returns how many."""
    n = 0
    for klass in classes:
        for raw in _guarded(klass):
            if getattr(raw, "__dynamo_disable", None) is None:
                raw.__dynamo_disable = raw
                n += 1
    return n


def bare_step(optimizer: Any) -> Callable[[], None]:
    """``optimizer.step()`` as its own update under no_grad, without the profiler range,
    the hooks dltui never registers and the tracing guard (a Python-level saving of a few
    microseconds per step besides the import). Optimizers without that structure (dltui's
    scratch SGD) keep their ``step``."""
    import inspect

    import torch

    wrapped = type(optimizer).step
    raw = inspect.unwrap(wrapped)
    if raw is wrapped:
        return optimizer.step
    no_grad = torch.no_grad()

    def step() -> None:
        with no_grad:
            raw(optimizer)

    return step
