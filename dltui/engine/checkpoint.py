"""model.pt: saved atomically, loaded as untrusted input.

A checkpoint may come from anyone who can write a shared run directory, so nothing in it
is used before all of it has been checked: what kind of file it is (before torch reads
it), the structure and types of what it holds (:func:`load_checkpoint`), and, once the
model and optimizer are built, every tensor's shape and dtype against theirs
(:func:`check_fits`). A mis-shaped optimizer buffer crashed the fused optimizer step
with a segfault; here it is one line and exit 2.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltui.engine.rundir import atomic_write
from dltui.errors import CheckpointError, ConfigError
from dltui.words import article, plural

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dltui.config import TrainConfig

CHECKPOINT = "model.pt"
REQUIRED = {"model": dict, "optimizer": dict, "config": dict, "epoch": int}
# what each optimizer keeps per parameter: buffers shaped like the parameter, and Adam's step
PARAM_SHAPED = {"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
SCALAR_STATE = {"step"}


BEST = "best.pt"  # the epoch with the best monitored validation value


def save_checkpoint(run_dir: Path, state: dict[str, Any], name: str = CHECKPOINT) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(run_dir / name, buf.getvalue())


def checkpoint_path(path: str | Path, which: str = "last") -> Path:
    """The file a path means: itself, or a run directory's model.pt (``last``) or best.pt
    (``best``, falling back to model.pt in a run that held out no validation split)."""
    p = Path(path)
    if not p.is_dir():
        return p
    if which == "best" and (p / BEST).is_file():
        return p / BEST
    return p / CHECKPOINT


def _not_ours(p: Path, why: str) -> CheckpointError:
    return CheckpointError(f"'{p}' is not a dltui checkpoint ({why})")


def _sniff(p: Path) -> None:
    """Refuse files torch would misreport, by their first bytes: torch.save writes a zip
    archive holding data.pkl (or, before torch 1.6, a pickle starting with 0x80)."""
    try:
        with open(p, "rb") as f:
            head = f.read(16)
            size = f.seek(0, 2)
    except OSError as exc:
        raise CheckpointError(f"cannot read '{p}' ({exc.strerror or exc})") from None
    if size == 0:
        raise _not_ours(p, "the file is empty")
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(p) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            raise _not_ours(p, "a damaged or truncated zip archive") from None
        if not any(n.endswith("data.pkl") for n in names):
            raise _not_ours(p, "a zip archive, but not one written by torch.save")
        return
    if head[:1] == b"\x80":
        return  # a legacy torch.save pickle: torch.load(weights_only=True) judges it
    if len(head) >= 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if n <= size - 8:
            raise _not_ours(p, "a safetensors file; dltui saves torch.save files with weights, optimizer and config")
    raise _not_ours(p, "not a PyTorch file: unrecognised content")


def load_checkpoint(path: str | Path, which: str = "last") -> dict[str, Any]:
    """Load a dltui checkpoint safely (weights_only: no code in the file can run) and check
    its structure. ``path`` is a run directory (its model.pt, or best.pt for ``which`` =
    best) or a checkpoint file. Raises CheckpointError in one line naming what is wrong."""
    import pickle

    import torch

    p = checkpoint_path(path, which)
    if not p.is_file():
        where = f"'{path}' has no {CHECKPOINT}" if Path(path).is_dir() else f"'{p}' does not exist"
        raise CheckpointError(f"cannot load checkpoint: {where}")
    _sniff(p)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "GLOBAL" in text or "Unsupported operand" in text:
            raise CheckpointError(
                f"refusing to load '{p}': it holds objects other than tensors and plain data "
                "(a pickle that could run code); only dltui checkpoints are accepted"
            ) from None
        raise _not_ours(p, "its pickle is damaged") from None
    except Exception as exc:  # torch.load on damaged bytes raises all kinds (RuntimeError, EOFError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"'{p}' is truncated or damaged ({first[:120]})") from None
    check_structure(state, p)
    return state


def _is_float(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_structure(state: Any, p: Path | str) -> None:
    """Keys and types, epoch within 0..epochs, history and RNG state: everything that can be
    checked before a model exists."""
    import torch

    if not isinstance(state, dict):
        raise _not_ours(p, f"it holds {article(type(state).__name__)}, not a dict")
    missing = sorted(set(REQUIRED) - set(state))
    if missing:
        raise _not_ours(p, f"missing {', '.join(missing)}")
    for key, kind in REQUIRED.items():
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise _not_ours(p, f"'{key}' is {article(type(state[key]).__name__)}, not {article(kind.__name__)}")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state["model"].items()):
        raise _not_ours(p, "'model' must map names to tensors")
    epochs = state["config"].get("epochs")
    epoch = state["epoch"]
    if not isinstance(epochs, int) or isinstance(epochs, bool) or not 0 <= epoch <= epochs:
        raise CheckpointError(f"'{p}': epoch {epoch} is outside 0..{epochs} (the run's epochs)")
    opt = state["optimizer"]
    if not isinstance(opt.get("state"), dict) or not isinstance(opt.get("param_groups"), list):
        raise _not_ours(p, "'optimizer' lacks state and param_groups")
    history = state.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise CheckpointError(f"'{p}': its history is not a list (a {type(history).__name__})")
        if len(history) != epoch:
            n = plural(len(history), "epoch")
            raise CheckpointError(f"'{p}': its history has {n}, its epoch counter says {epoch}")
        for i, row in enumerate(history, 1):
            ok = isinstance(row, dict) and row.get("epoch") == i
            ok = ok and all(isinstance(k, str) and (v is None or _is_float(v)) for k, v in row.items())
            if not ok:
                raise CheckpointError(f"'{p}': history row {i} is malformed")
    rng = state.get("rng")
    if rng is not None:
        expected = torch.Generator().get_state()
        if not isinstance(rng, torch.Tensor) or rng.dtype != expected.dtype or rng.shape != expected.shape:
            raise CheckpointError(f"'{p}': the saved random-number state is malformed")


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(map(str, t.shape)) + ")"


def check_fits(
    state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, p: Path | str, what: str = "this model"
) -> None:
    """Every saved tensor against the model and optimizer just built: names, shapes and
    dtypes of the weights; the optimizer's groups, hyperparameter types and per-parameter
    buffers. Run before either load_state_dict."""
    check_weights(state, model, p, what)
    _check_optimizer(state, optimizer, p)


def check_weights(state: dict[str, Any], model: nn.Module, p: Path | str, what: str = "this model") -> None:
    want = model.state_dict()
    got = state["model"]
    if set(got) != set(want):
        extra, lost = sorted(set(got) - set(want)), sorted(set(want) - set(got))
        why = f"unexpected '{extra[0]}'" if extra else f"missing '{lost[0]}'"
        raise CheckpointError(f"'{p}': its weights do not fit {what} ({why})")
    for name, ref in want.items():
        t = got[name]
        if t.shape != ref.shape or t.dtype != ref.dtype:
            raise CheckpointError(
                f"'{p}': its weights do not fit {what}: '{name}' is {_shape(t)} {t.dtype}, "
                f"the model needs {_shape(ref)} {ref.dtype}"
            )


def _check_optimizer(state: dict[str, Any], optimizer: torch.optim.Optimizer, p: Path | str) -> None:
    import torch

    ref_opt = optimizer.state_dict()
    saved = state["optimizer"]
    groups = saved["param_groups"]
    if len(groups) != len(ref_opt["param_groups"]):
        raise CheckpointError(f"'{p}': the optimizer has {len(groups)} parameter groups, expected 1")
    params = [q for g in optimizer.param_groups for q in g["params"]]
    for g, ref in zip(groups, ref_opt["param_groups"], strict=True):
        if not isinstance(g, dict) or g.get("params") != ref["params"]:
            raise CheckpointError(f"'{p}': the optimizer's parameter list does not fit this model")
        for key, v in g.items():
            r = ref.get(key, v)
            if key == "params" or v is None and r is None:
                continue
            if isinstance(r, bool) or isinstance(v, bool):
                ok = isinstance(v, bool) and isinstance(r, bool)
            elif isinstance(r, tuple | list):
                ok = isinstance(v, tuple | list) and len(v) == len(r) and all(map(_is_number, v))
            elif _is_number(r):
                ok = _is_number(v) and v >= 0
            else:
                ok = type(v) is type(r) and isinstance(v, str | type(None))
            if not ok:
                raise CheckpointError(f"'{p}': optimizer setting '{key}' is {v!r}")
    for index, entry in saved["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(entry, dict):
            raise CheckpointError(f"'{p}': optimizer state names parameter {index!r}, which this model lacks")
        param = params[index]
        for key, v in entry.items():
            if key in PARAM_SHAPED and isinstance(v, torch.Tensor):
                if v.shape != param.shape or v.dtype != param.dtype:
                    raise CheckpointError(
                        f"'{p}': optimizer buffer '{key}' of parameter {index} is {_shape(v)} {v.dtype}, "
                        f"the parameter is {_shape(param)} {param.dtype}"
                    )
            elif (
                key in SCALAR_STATE
                and (
                    (
                        isinstance(v, torch.Tensor)
                        and v.numel() == 1
                        and v.is_floating_point()
                        and bool(v.isfinite().all())
                    )
                    or _is_number(v)
                )
                or key == "momentum_buffer"
                and v is None
            ):
                continue
            else:
                raise CheckpointError(f"'{p}': optimizer state '{key}' of parameter {index} is malformed")


def config_from_checkpoint(
    state: dict[str, Any], source: str | Path, device: str | None = None, data_dir: str | None = None
) -> TrainConfig:
    """The saved config, validated again; ``device``/``data_dir`` replace the saved ones
    (a run trained on CUDA falls back to ``auto`` on a machine without it, one saved with
    more threads than this machine has uses them all)."""
    from dltui.config import cuda_available, usable_cores
    from dltui.resolve import config_from_dict

    saved = dict(state["config"])
    if device:
        saved["device"] = device
    elif saved.get("device") == "cuda" and not cuda_available():
        saved["device"] = "auto"
    if data_dir:
        saved["data_dir"] = data_dir
    if isinstance(saved.get("threads"), int) and saved["threads"] > usable_cores():
        saved["threads"] = usable_cores()
    try:
        return config_from_dict(saved)
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint '{source}' cannot be used here: {exc}") from None
    except (TypeError, AttributeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint '{source}' holds a malformed config ({exc})") from None
