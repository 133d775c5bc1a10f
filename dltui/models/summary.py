"""What a model is made of: its layers with their output shapes and parameters, and the
totals (parameters, multiply-accumulates, memory) for one sample of a dataset.

torchinfo does the counting (imported only here, when asked), with corrections where its
rule of thumb misleads: a Linear or recurrent layer uses each parameter once per position
(row of a sequence, token of a packed batch), and an embedding is a lookup, not a product.
MACs follow torchinfo's convention: a bias add counts as one. Should torchinfo be missing
or fail on a model, a plain walk of the modules with forward hooks still gives the layers,
shapes and parameters, only without MACs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from dltui.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from rich.table import Table
    from torch import nn

    from dltui.data import DatasetSpec

NO_MACS = "(no MAC count)"


@dataclass(frozen=True)
class LayerRow:
    depth: int  # 0: the model itself, 1: its children, ...
    name: str  # attribute name in its parent ("" for the model itself)
    kind: str  # class name: Conv2d, Linear, ...
    output_shape: tuple[int, ...]  # with the batch dimension (1); () when the layer did not run
    params: int  # its own and its children's
    trainable: str  # yes | no | partial | "-" (no parameters)
    macs: int | None  # per sample, children included; None: not counted
    reused: bool = False  # a second call of a module listed above (its parameters are counted once)
    packed: bool = False  # output_shape is a packed sequence's data: (tokens, features)

    @property
    def label(self) -> str:
        """'conv1 (Conv2d)', as torchinfo and Keras write a layer; the model by its class."""
        return f"{self.name} ({self.kind})" if self.depth else self.kind


@dataclass(frozen=True)
class ModelSummary:
    model: str
    dataset: str
    input_shape: tuple[int, ...]  # one sample's, without the batch dimension
    input_dtype: str  # float32 | int64 (token ids)
    rows: tuple[LayerRow, ...]
    total_params: int
    trainable_params: int
    macs: int | None  # multiply-accumulates per sample; None: not counted (see notes)
    param_bytes: int
    activation_bytes: int  # forward + backward per sample: outputs of the layers with weights, twice
    counted_by: str  # torchinfo | hooks
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rows"] = [{**asdict(r), "label": r.label} for r in self.rows]
        return out


# --- which dataset: the pairs the registries allow ---


def fitting_datasets(model: str) -> list[str]:
    """The built-in datasets ``model`` (a registry name) can train on, in catalogue order."""
    from dltui.data import DATASETS
    from dltui.models import MODELS

    return [d for d, spec in DATASETS.items() if MODELS[model].incompatibility(spec) is None]


def default_dataset(model: str) -> str:
    """The dataset a summary of ``model`` is shown for when none is named: the first whose
    recommended model it is, else the first it fits."""
    from dltui.data import DATASETS
    from dltui.models import MODELS

    typical = [d for d, spec in DATASETS.items() if spec.recommended.model == model]
    for name in typical:
        if MODELS[model].incompatibility(DATASETS[name]) is None:
            return name
    fits = fitting_datasets(model)
    if not fits:
        raise ConfigError("model", f"{model} fits none of the built-in datasets")
    return fits[0]


def resolve(model: str, dataset: str | None = None) -> tuple[str, DatasetSpec]:
    """(model, dataset spec) for a summary, or a one-line ConfigError: an unknown name (with
    a suggestion), or a model that does not fit the dataset (with the datasets it fits)."""
    from dltui.config import choose
    from dltui.data import DATASETS
    from dltui.models import MODELS

    model = choose("model", model, tuple(MODELS))
    if dataset is None:
        return model, DATASETS[default_dataset(model)]
    spec = DATASETS[choose("dataset", dataset, tuple(DATASETS))]
    why = MODELS[model].incompatibility(spec)
    if why is not None:
        fits = ", ".join(fitting_datasets(model)) or "none of the built-in datasets"
        raise ConfigError("dataset", f"{model} does not fit {spec.name} ({why}); {model} fits: {fits}")
    return model, spec


# --- counting ---


def example_input(spec: DatasetSpec, device: Any = None) -> torch.Tensor:
    """One sample as the model receives it: floats of the input shape, or for a sequence
    dataset int64 token ids at the full length (ones: every position a real token)."""
    import torch

    if spec.kind == "sequence":
        return torch.ones(1, *spec.input_shape, dtype=torch.long, device=device)
    return torch.zeros(1, *spec.input_shape, device=device)


def summarize(model: str, dataset: str | None = None) -> ModelSummary:
    """The summary of registry model ``model`` built (freshly, on the CPU) for built-in
    ``dataset`` (None: :func:`default_dataset`). The global RNG is left as it was."""
    import torch

    from dltui.models import build_model

    name, spec = resolve(model, dataset)
    with torch.random.fork_rng(devices=[]):
        net = build_model(name, spec)
    return summarize_module(net, spec, name=name)


def summarize_module(net: nn.Module, spec: DatasetSpec, name: str | None = None) -> ModelSummary:
    """The summary of a built module for one sample of ``spec`` (on the module's device;
    run in eval mode without gradients, the module's mode restored)."""
    x = example_input(spec, device=_device(net))
    notes = []
    if spec.kind == "sequence":
        notes.append(f"per sample of the full length, {spec.input_shape[0]} tokens")
    try:
        rows, totals, more = _torchinfo(net, x)
        notes += more
        counted_by = "torchinfo"
    except Exception as exc:  # any failure of the counter: the walk still shows the model
        rows, totals = _walk(net, x)
        counted_by = "hooks"
        why = "torchinfo is not installed" if isinstance(exc, ImportError) else f"torchinfo failed: {_first_line(exc)}"
        notes.append(f"{NO_MACS}: {why}")
    return ModelSummary(
        model=name or type(net).__name__,
        dataset=spec.name,
        input_shape=tuple(spec.input_shape),
        input_dtype=str(x.dtype).removeprefix("torch."),
        rows=tuple(rows),
        counted_by=counted_by,
        notes=tuple(notes),
        **totals,
    )


def _device(net: nn.Module) -> Any:
    import torch

    p = next(net.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _first_line(exc: BaseException) -> str:
    exc = exc.__cause__ or exc  # torchinfo wraps the model's own error
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _trainable(params: int, trainable: int) -> str:
    if params == 0:
        return "-"
    return "yes" if trainable == params else "no" if trainable == 0 else "partial"


# layers that apply every parameter once per position (a row of a Linear's input, a step of
# a recurrence): torchinfo charges a Linear per batch row only and a recurrent layer per
# step times features, so these are counted here as positions x parameters
def _position_layers() -> tuple[type, ...]:
    from torch import nn

    return (nn.Linear, nn.RNNBase, nn.RNNCellBase)


def _count_positions(net: nn.Module) -> tuple[dict[int, list[tuple[int, bool]]], list[Any]]:
    """Forward hooks recording, per call of each position layer, (positions, packed)."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    calls: dict[int, list[tuple[int, bool]]] = {}

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        first = out[0] if isinstance(out, tuple) and out else out
        packed = isinstance(first, PackedSequence)
        t = first.data if packed else first
        if not isinstance(t, torch.Tensor):
            return  # a subclass returning something else: torchinfo's own count stands
        positions = t.numel() // t.shape[-1] if t.dim() and t.shape[-1] else 1
        calls.setdefault(id(module), []).append((positions, packed))

    kinds = _position_layers()
    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, kinds)]
    return calls, handles


def _matmul_macs(net: nn.Module, x: torch.Tensor) -> int | None:
    """MACs of the matrix products a forward pass runs (output elements x inner size),
    seen at the torch-function level: for a model computing with raw parameters, where
    torchinfo sees no layers. Not torch's FlopCounterMode: it imports torch._dynamo (~2 s,
    and sympy). None if the forward pass fails."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    T = torch.Tensor
    products = {torch.matmul, T.matmul, T.__matmul__, T.__rmatmul__, torch.mm, T.mm, torch.bmm, T.bmm, F.linear}

    class Count(TorchFunctionMode):
        macs = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
            out = func(*args, **(kwargs or {}))
            if func in products and isinstance(out, torch.Tensor):
                # linear(x, W): W is (out, in); otherwise the left operand's last size
                left = args[1] if func is T.__rmatmul__ else args[0]
                inner = args[1].shape[-1] if func is F.linear else left.shape[-1]
                self.macs += out.numel() * inner
            return out

    was_training = net.training
    try:
        with Count() as count, torch.no_grad():
            net.eval()(x)
    except (RuntimeError, ValueError, TypeError, IndexError):
        return None
    finally:
        net.train(was_training)
    return count.macs


def _torchinfo(net: nn.Module, x: torch.Tensor) -> tuple[list[LayerRow], dict[str, Any], list[str]]:
    import torchinfo
    from torch import nn

    calls, handles = _count_positions(net)
    try:
        stats = torchinfo.summary(
            net,
            input_data=x,
            verbose=0,
            depth=64,
            cache_forward_pass=False,  # its cache is keyed by class name: every Sequential would share one
            col_names=("output_size", "num_params", "trainable", "mult_adds"),
        )
    finally:
        for h in handles:
            h.remove()
    infos = stats.summary_list
    own: list[int] = []  # MACs of each leaf call; containers sum their leaves below
    packed: list[bool] = []
    counted = 0  # parameters whose work is in the count
    for info in infos:
        macs, was_packed = (info.macs if info.is_leaf_layer else 0), False
        if id(info.module) in calls and calls[id(info.module)]:
            positions, was_packed = calls[id(info.module)].pop(0)  # infos list calls in order
            macs = positions * info.num_params
        elif isinstance(info.module, nn.Embedding):
            macs = 0  # a table lookup
        if info.is_leaf_layer and not info.is_recursive and (macs or isinstance(info.module, nn.Embedding)):
            counted += info.num_params
        own.append(macs)
        packed.append(was_packed)
    rows = []
    for i, info in enumerate(infos):
        below = 0
        for j in range(i + 1, len(infos)):
            if infos[j].depth <= info.depth:
                break
            below += own[j]
        rows.append(
            LayerRow(
                depth=info.depth,
                name="" if info.depth == 0 else info.var_name,
                kind=info.class_name,
                output_shape=tuple(info.output_size),
                params=info.num_params,
                trainable=_trainable(info.num_params, info.trainable_params),
                macs=own[i] + below,
                reused=info.is_recursive,
                packed=packed[i],
            )
        )
    total: int | None = sum(own)
    notes = []
    unseen = stats.total_params - counted
    if unseen and not counted:
        # every parameter used outside layers torchinfo knows (the from-scratch lessons)
        total = _matmul_macs(net, x)
        how = "matrix products only" if total is not None else NO_MACS
        notes.append(f"{how}: it computes with raw parameters, not layers")
        for k, row in enumerate(rows):
            rows[k] = replace(row, macs=total if row.depth == 0 else None)
    elif unseen:
        notes.append(f"MACs leave out the work of {unseen:,} parameters outside layers")
    totals = {
        "total_params": stats.total_params,
        "trainable_params": stats.trainable_params,
        "macs": total,
        "param_bytes": stats.total_param_bytes,
        "activation_bytes": stats.total_output_bytes,
    }
    return rows, totals, notes


def _walk(net: nn.Module, x: torch.Tensor) -> tuple[list[LayerRow], dict[str, Any]]:
    """The fallback: the modules in definition order, each with the output shape of its
    last call (if it ran) and its parameters; no MACs."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    shapes: dict[int, tuple[tuple[int, ...], bool, int]] = {}  # id -> (shape, packed, bytes)

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        first = out[0] if isinstance(out, tuple) and out else out
        packed = isinstance(first, PackedSequence)
        tensor = first.data if packed else first
        if isinstance(tensor, torch.Tensor):
            shapes[id(module)] = (tuple(tensor.shape), packed, tensor.numel() * tensor.element_size())

    modules = list(net.named_modules())
    handles = [m.register_forward_hook(hook) for _, m in modules]
    was_training = net.training
    try:
        with torch.no_grad():
            net.eval()(x)
    except (RuntimeError, ValueError, TypeError, IndexError):
        pass  # layers that ran before the failure keep their shapes; the others show none
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    rows, activation = [], 0
    for qualified, module in modules:
        params = list(module.parameters())
        n = sum(p.numel() for p in params)
        shape, packed, nbytes = shapes.get(id(module), ((), False, 0))
        if n and not any(True for _ in module.children()):
            activation += 2 * nbytes  # torchinfo's estimate: weighted layers' outputs, kept for backward
        rows.append(
            LayerRow(
                depth=0 if not qualified else qualified.count(".") + 1,
                name=qualified.rsplit(".", 1)[-1],
                kind=type(module).__name__,
                output_shape=shape,
                params=n,
                trainable=_trainable(n, sum(p.numel() for p in params if p.requires_grad)),
                macs=None,
                packed=packed,
            )
        )
    params = list(net.parameters())
    totals = {
        "total_params": sum(p.numel() for p in params),
        "trainable_params": sum(p.numel() for p in params if p.requires_grad),
        "macs": None,
        "param_bytes": sum(p.numel() * p.element_size() for p in params),
        "activation_bytes": activation,
    }
    return rows, totals


# --- showing it (Rich renderables: the CLI prints them, the app's Model view shows them) ---


def shape_text(row: LayerRow) -> str:
    if not row.output_shape:
        return "-"
    text = "x".join(map(str, row.output_shape))
    return f"{text} packed" if row.packed else text


def human_bytes(n: int) -> str:
    """Decimal units, as torchinfo's MB: 814 B, 3.1 kB, 0.81 MB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def human_count(n: int) -> str:
    """1.2 k, 6.05 M, 1.21 G: the size of a count at a glance."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return str(n)


def summary_table(s: ModelSummary) -> Table:
    """One row per layer, indented by depth; its natural width stays within 80 columns for
    every built-in model (long names are cut, never wrapped)."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("layer", no_wrap=True, overflow="ellipsis", max_width=40)
    table.add_column("output shape", no_wrap=True, overflow="ellipsis", max_width=18)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("trainable", no_wrap=True)
    for r in s.rows:
        params = "(reused)" if r.reused and r.params else f"{r.params:,}"
        table.add_row("  " * r.depth + r.label, shape_text(r), params, r.trainable)
    return table


def summary_totals(s: ModelSummary) -> list[str]:
    """The totals as short lines of plain text (at most 66 columns but for long notes)."""
    frozen = s.total_params - s.trainable_params
    weights, activations = human_bytes(s.param_bytes), human_bytes(s.activation_bytes)
    lines = [
        f"params   {s.total_params:,}" + (f" ({frozen:,} frozen)" if frozen else " (all trainable)"),
        f"MACs     {NO_MACS}" if s.macs is None else f"MACs     {s.macs:,} per sample ({human_count(s.macs)})",
        f"memory   weights {weights} · forward/backward {activations} per sample",
    ]
    return lines + [f"note     {n}" for n in s.notes]


def summary_title(s: ModelSummary) -> str:
    shape = "x".join(map(str, s.input_shape))
    return f"{s.model} on {s.dataset}: input {shape} ({s.input_dtype})"
