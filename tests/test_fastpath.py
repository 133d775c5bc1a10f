"""The eager run keeps torch.compile's machinery off its path (start-up and memory)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from dltui.engine.fastpath import bare_step

CHECK = """
import sys
from dltui.engine import train
from dltui.resolve import make_config
train(make_config(epochs=1, schedule="cosine", out=sys.argv[1]), threads=1)
print("LOADED", sorted(m for m in ("torch._dynamo", "sympy") if m in sys.modules))
"""


def test_an_eager_run_never_imports_dynamo_or_sympy(tmp_path):
    proc = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path / "r")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_bare_step_is_the_optimizer_step(name):
    results = []
    for use_bare in (False, True):
        torch.manual_seed(0)
        model = torch.nn.Linear(5, 3)
        opt = getattr(torch.optim, name)(model.parameters(), lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
        step = bare_step(opt) if use_bare else opt.step
        for _ in range(3):
            model(torch.randn(4, 5, generator=torch.Generator().manual_seed(1))).square().mean().backward()
            step()
            opt.zero_grad()
        results.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))
    assert torch.is_grad_enabled() is not False  # grad mode restored after the step
