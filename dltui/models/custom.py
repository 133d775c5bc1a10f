"""The user's own model: ``FILE.py:NAME`` or ``package.module:NAME`` as a ModelSpec.

NAME is an ``nn.Module`` subclass or a function returning one. It is called with the
dataset's facts its signature asks for, by parameter name (or all of the first three
through ``**kwargs``):

    in_shape     tuple   (C, H, W) | (features,) | (max_len,)
    num_outputs  int     classes, or 1 for binary / regression (one logit, one value)
                         (the output must be (B, num_outputs); per-step data (B, T, num_outputs))
    vocab_size   int     sequence data only
    num_classes  int     alias of num_outputs
    in_channels  int     image data only: C
    in_features  int     image and vector data: C*H*W or the number of features

Everything that can go wrong is refused before training with one line: the exception's
last line and the line of the user's code it came from. A file is loaded by path under a
module name of its own, never pickled: checkpoints keep only the state_dict, and the
config keeps the reference, with a file's path made absolute, to rebuild it from.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import math
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dltui.errors import ConfigError
from dltui.models import ModelSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from dltui.data import DatasetSpec

KINDS = ("image", "vector", "sequence")
FACTS = ("in_shape", "num_outputs", "vocab_size")  # what **kwargs receives
ALIASES = ("num_classes", "in_channels", "in_features")
PROBE_BATCH = 2

# path -> ((mtime_ns, size), module); reference -> (key, spec): an edited file is loaded again
_modules: dict[str, tuple[tuple[int, int], ModuleType]] = {}
_specs: dict[str, tuple[Any, CustomModelSpec]] = {}


@dataclass(frozen=True)
class CustomModelSpec(ModelSpec):
    """A ModelSpec for the user's code: it fits a dataset when it builds for it and one
    batch goes through it with the right output shape."""

    # which frames of a traceback are the user's code, for the file:line of an error
    where: Callable[[str], bool] | None = field(default=None, compare=False)

    def incompatibility(self, spec: DatasetSpec) -> str | None:
        return _incompatibility(self, spec)


def is_reference(ref: str) -> bool:
    """Whether ``ref`` names the user's code rather than a registry entry."""
    return ":" in ref or ref.strip().endswith(".py")


def custom_spec(ref: str) -> CustomModelSpec:
    """The ModelSpec for ``FILE.py:NAME`` or ``package.module:NAME``; loading errors
    (missing file, syntax, import, unknown NAME) raise ConfigError("model", ...) here,
    errors that depend on the data come out of ``incompatibility`` and the builder."""
    text = ref.strip()
    source, sep, name = text.rpartition(":")
    if not sep:
        raise ConfigError("model", f"'{text}' names a file but no model in it: write {text}:NAME (a class or function)")
    if not name.isidentifier():
        what = f"'{name}' is not a Python name" if name else "nothing follows the colon"
        raise ConfigError("model", f"'{text}': {what}; write FILE.py:NAME or package.module:NAME")
    if _is_file(source):
        path = Path(os.path.abspath(os.path.expanduser(source)))
        normal, shown = f"{path}:{name}", _show(path)
        module, key = _load_file(path, text)
        where: Callable[[str], bool] = functools.partial(_same_file, str(path))
    else:  # imported once per process, like any module
        normal, shown = f"{source}:{name}", source
        module, key = _import(source, text), None
        where = _inside_package(source)
    cached = _specs.get(normal)
    if cached is not None and cached[0] == key:
        return cached[1]
    obj = _attribute(module, name, shown)
    _check_signature(obj, name)
    own = obj.__doc__ if isinstance(obj, type) or inspect.isfunction(obj) else None  # never nn.Module's
    doc = (inspect.cleandoc(own or "").splitlines() or [""])[0]
    description = doc or f"{name} from {shown}"
    builder = functools.partial(_build, obj, name, where)
    spec = CustomModelSpec(normal, description, _tasks(), KINDS, builder, where)
    _specs[normal] = (key, spec)
    return spec


def label(ref: str) -> str:
    """A short name for a reference (config.model_label)."""
    from dltui.config import model_label

    return model_label(ref)


def probe_custom(spec: DatasetSpec, model_spec: ModelSpec, batch: torch.Tensor) -> None:
    """Build ``model_spec`` for ``spec`` and run ``batch`` through it (eval mode, no
    gradients, the global RNG untouched); raise ConfigError("model", ...) in one line when
    it cannot be built, the forward pass fails or the output does not fit the task."""
    where = getattr(model_spec, "where", None) or (lambda filename: False)
    with torch.random.fork_rng(devices=[]):
        try:
            net = model_spec.builder(spec)
        except ConfigError:
            raise
        except (Exception, SystemExit) as exc:  # a registry builder's own error
            raise ConfigError("model", f"{model_spec.name} cannot be built: {_describe(exc, where, spec)}") from None
        why = _forward_problem(net, model_spec.name, where, spec, batch)
    if why:
        raise ConfigError("model", why)


def probe_batch(spec: DatasetSpec) -> torch.Tensor:
    """A stand-in batch: zeros for features and pixels; for token sequences ones, since
    zeros are all padding and would give a model that packs sequences empty ones."""
    if spec.kind == "sequence":
        return torch.ones(PROBE_BATCH, *spec.input_shape, dtype=torch.long)
    return torch.zeros(PROBE_BATCH, *spec.input_shape)


@functools.lru_cache(maxsize=128)  # the app asks on every keystroke; specs are frozen
def _incompatibility(model_spec: CustomModelSpec, spec: DatasetSpec) -> str | None:
    try:
        probe_custom(spec, model_spec, probe_batch(spec))
    except ConfigError as exc:
        return str(exc).removeprefix(exc.flag + ": ")  # make_config words the refusal around it
    return None


def _tasks() -> tuple[str, ...]:
    from dltui.data import TASKS

    return TASKS


# --- finding the code ------------------------------------------------------------------


def _is_file(source: str) -> bool:
    """A path rather than a dotted module name: ends in .py, has a separator, starts with
    ~, or is a file that exists (a dotted name never needs to)."""
    if source.endswith(".py") or "/" in source or os.sep in source or source.startswith("~"):
        return True
    if os.path.exists(source):
        return True
    return not all(part.isidentifier() for part in source.split("."))


def _show(path: Path) -> str:
    """A path as the user would write it: relative when below the current directory."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _load_file(path: Path, ref: str) -> tuple[ModuleType, tuple[int, int]]:
    """Import the file at ``path`` (absolute) once per version of it. Its own folder is on
    sys.path while it runs, so ``import layers`` finds a sibling layers.py; an import inside
    a function, run later, does not see it."""
    shown = _show(path)
    if path.is_dir():
        raise ConfigError("model", f"'{shown}' is a folder; write FILE.py:NAME")
    if not path.is_file():
        raise ConfigError("model", f"cannot load '{ref}': {shown} does not exist")
    if path.suffix != ".py":
        raise ConfigError("model", f"cannot load '{ref}': {shown} is not a Python file (.py)")
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _modules.get(str(path))
    if cached is not None and cached[0] == key:
        return cached[1], key
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise ConfigError("model", f"cannot read '{shown}' ({exc.strerror or exc})") from None
    # a module name of its own per file: two files both called model.py do not collide
    modname = "_dltui_user_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    importlib.invalidate_caches()  # a sibling written a moment ago is found
    sys.modules[modname] = module  # dataclasses and typing look the module up while it runs
    try:
        # compiled here rather than by exec_module: no __pycache__ in the user's folder, and
        # no stale bytecode when a file is saved twice within a second at the same size
        code = spec.loader.source_to_code(source, str(path))
        exec(code, module.__dict__)
    except SyntaxError as exc:
        sys.modules.pop(modname, None)
        raise ConfigError("model", f"cannot load '{ref}': {_syntax(exc)}") from None
    except (Exception, SystemExit) as exc:  # a script's sys.exit() or argparse at import time
        sys.modules.pop(modname, None)
        where = functools.partial(_same_file, str(path))
        raise ConfigError("model", f"cannot load '{ref}': {_describe(exc, where)}") from None
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    _modules[str(path)] = (key, module)
    return module, key


def _import(source: str, ref: str) -> ModuleType:
    try:
        return importlib.import_module(source)
    except SyntaxError as exc:
        raise ConfigError("model", f"cannot load '{ref}': {_syntax(exc)}") from None
    except ModuleNotFoundError as exc:
        if exc.name and (source == exc.name or source.startswith(exc.name + ".")):
            hint = ""
            as_file = source.replace(".", os.sep) + ".py"
            if os.path.isfile(as_file):
                hint = f"; for the file in this folder write {as_file}:{ref.rpartition(':')[2]}"
            raise ConfigError("model", f"cannot load '{ref}': no module named '{exc.name}'{hint}") from None
        raise ConfigError("model", f"cannot load '{ref}': {_describe(exc, _inside_package(source))}") from None
    except (Exception, SystemExit) as exc:
        raise ConfigError("model", f"cannot load '{ref}': {_describe(exc, _inside_package(source))}") from None


def _inside_package(source: str) -> Callable[[str], bool]:
    """Whether a file belongs to the top-level package (or module) of ``source``."""
    top = source.split(".")[0]
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.origin:
        return lambda filename: False
    if found.submodule_search_locations:
        roots = tuple(os.path.join(os.path.abspath(d), "") for d in found.submodule_search_locations)
        return lambda filename: os.path.abspath(filename).startswith(roots)
    return functools.partial(_same_file, os.path.abspath(found.origin))


def _same_file(path: str, filename: str) -> bool:
    return os.path.normcase(os.path.abspath(filename)) == os.path.normcase(os.path.abspath(path))


def _attribute(module: ModuleType, name: str, shown: str) -> Any:
    """``module.name``, checked to be an nn.Module class or a function (any callable that
    is not a class, e.g. a functools.partial)."""
    if not hasattr(module, name):
        mine = sorted(
            k
            for k, v in vars(module).items()
            if not k.startswith("_")
            and getattr(v, "__module__", None) == module.__name__
            and (inspect.isfunction(v) or isinstance(v, type) and issubclass(v, nn.Module))
        )
        has = f"it defines {', '.join(mine)}" if mine else "it defines no nn.Module class or function"
        raise ConfigError("model", f"'{shown}' has no '{name}'{_suggest(name, mine)} ({has})")
    obj = getattr(module, name)
    if isinstance(obj, type):
        if not issubclass(obj, nn.Module):
            raise ConfigError("model", f"'{shown}:{name}' is a class but not an nn.Module subclass")
    elif isinstance(obj, nn.Module):
        raise ConfigError(
            "model",
            f"'{shown}:{name}' is a model instance; name its class or a function that builds it (runs start fresh)",
        )
    elif not callable(obj):
        raise ConfigError(
            "model", f"'{shown}:{name}' is {_a(type(obj).__name__)}, not an nn.Module class or a function returning one"
        )
    return obj


def _suggest(word: str, names: list[str]) -> str:
    """config.suggest for Python names: compared without case, shown with theirs."""
    from dltui.config import suggest

    by_lower = {n.lower(): n for n in names}
    hint = suggest(word, list(by_lower))
    close = hint.split("'")[1] if hint else ""
    return hint.replace(f"'{close}'", f"'{by_lower[close]}'") if close else ""


# --- building it -----------------------------------------------------------------------


def _parameters(obj: Any) -> list[inspect.Parameter]:
    """The parameters ``obj(...)`` takes; none for a class that keeps nn.Module's own
    ``__init__(*args, **kwargs)``, which would refuse every keyword."""
    if isinstance(obj, type) and obj.__init__ is nn.Module.__init__:
        return []
    try:
        return list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: call it bare
        return []


def _required(p: inspect.Parameter) -> bool:
    return p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)


def _check_signature(obj: Any, name: str) -> None:
    """Refuse at once a required parameter no dataset could fill."""
    for p in _parameters(obj):
        if _required(p) and (p.kind is p.POSITIONAL_ONLY or p.name not in FACTS + ALIASES):
            raise ConfigError(
                "model",
                f"{name} needs '{p.name}', which dltui cannot give (it passes {', '.join(FACTS + ALIASES)} "
                "by name); give it a default",
            )


def facts(spec: DatasetSpec) -> dict[str, Any]:
    """What a model may be told about ``spec``, aliases included; a fact the data lacks
    (channels of vectors, the vocabulary of images) is absent."""
    shape = tuple(int(n) for n in spec.input_shape)
    out: dict[str, Any] = {"in_shape": shape, "num_outputs": spec.num_outputs, "num_classes": spec.num_outputs}
    if spec.vocab_size:
        out["vocab_size"] = spec.vocab_size
    if spec.kind == "image":
        out["in_channels"] = shape[0]
    if spec.kind != "sequence":  # token ids are not features
        out["in_features"] = math.prod(shape)
    return out


def _arguments(obj: Any, name: str, spec: DatasetSpec) -> dict[str, Any]:
    known = facts(spec)
    kwargs: dict[str, Any] = {}
    for p in _parameters(obj):
        if p.kind is p.VAR_KEYWORD:
            kwargs.update({k: v for k, v in known.items() if k in FACTS and k not in kwargs})
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name in known:
            kwargs[p.name] = known[p.name]
        elif _required(p):
            raise ConfigError("model", f"{name} needs '{p.name}', which {spec.kind} data does not have")
    return kwargs


def _build(obj: Any, name: str, where: Callable[[str], bool], spec: DatasetSpec) -> nn.Module:
    """``obj(**facts it asks for)``, checked to be an nn.Module; ConfigError otherwise."""
    kwargs = _arguments(obj, name, spec)
    try:
        net = obj(**kwargs)
    except (Exception, SystemExit) as exc:
        raise ConfigError("model", f"{name}(...) raised {_describe(exc, where, spec)}") from None
    if not isinstance(net, nn.Module):
        raise ConfigError("model", f"{name}(...) returned {_a(type(net).__name__)}, not an nn.Module")
    return net


def _forward_problem(
    net: nn.Module, ref: str, where: Callable[[str], bool], spec: DatasetSpec, batch: torch.Tensor
) -> str | None:
    """Why one forward pass of ``batch`` does not give what the task's loss needs, or None."""
    name = ref.rpartition(":")[2]
    try:
        with torch.no_grad():
            out = net.eval()(batch)
    except (Exception, SystemExit) as exc:
        return f"{name}'s forward pass on a {_shape(batch.shape)} batch failed: {_describe(exc, where, spec)}"
    if not isinstance(out, torch.Tensor):
        return f"{name} returns {_a(type(out).__name__)}, not a tensor of outputs"
    if not out.is_floating_point():
        return f"{name} returns {out.dtype} values; the loss needs floating-point outputs"
    b, n = batch.shape[0], spec.num_outputs
    expected = (b, batch.shape[1], n) if spec.task == "per-step" else (b, n)  # per-step: scores at every step
    if tuple(out.shape) == expected:
        return None
    if spec.task == "per-step":
        need = f"the data wants scores for {n} classes at each of {batch.shape[1]} steps"
    elif spec.task in ("classification", "sequence"):
        need = f"the data has {n} classes"
    elif spec.task == "binary":
        need = "binary data needs one logit per sample"
    else:
        need = "regression needs one value per sample"
    return f"{name} returns {_shape(out.shape)}, {need}: {_shape(expected)} expected"


# --- describing what went wrong ------------------------------------------------------


def _shape(shape: Any) -> str:
    return str(tuple(shape))


def _a(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def _syntax(exc: SyntaxError) -> str:
    where = f" ({_show(Path(exc.filename))}:{exc.lineno})" if exc.filename and exc.lineno else ""
    return f"{type(exc).__name__}: {exc.msg}{where}"


def _describe(exc: BaseException, where: Callable[[str], bool], spec: DatasetSpec | None = None) -> str:
    """``Type: first line of the message (file:line)``, the line the innermost frame of the
    user's code that the exception passed through."""
    if isinstance(exc, SyntaxError):  # a sibling module with a syntax error
        return _syntax(exc)
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
    if spec is not None and spec.kind == "image" and _too_small(text):
        h, w = spec.input_shape[1:]
        text = f"the {h}x{w} images are too small ({text})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if where(f.filename)]
    if frames:
        text += f" ({_show(Path(frames[-1].filename))}:{frames[-1].lineno})"
    return text


def _too_small(text: str) -> bool:
    return any(
        s in text
        for s in ("Kernel size can't be greater than actual input size", "Output size is too small", "input too small")
    )
