"""A dataset reference, resolved: a registry name, or a path to the user's own data.

A path is read once (``table.py`` for CSV/TSV files, ``imagefolder.py`` for folders of
images) into an :class:`~dltui.data.own.OwnData`, which becomes a ``DatasetSpec`` and
``Data`` like any built-in dataset's. Everything the reader inferred comes back as a
schema the config carries (``data_schema``), so a resumed or evaluated run rebuilds the
same features from it instead of inferring again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltui.config import choose, suggest
from dltui.data import DATASETS, Data, DatasetSpec, Recommended
from dltui.errors import ConfigError, DataError

if TYPE_CHECKING:
    from dltui.config import TrainConfig
    from dltui.data.own import OwnData

OWN_ONLY = ("target", "text", "task", "image_size", "test")  # settings only a path reads
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")

_loaded: dict[str, tuple[DatasetSpec, Data]] = {}  # per process: the app re-validates on every keystroke


def looks_like_path(ref: str) -> bool:
    return os.sep in ref or "/" in ref or ref.startswith(("~", ".")) or ref.lower().endswith(TABLE_SUFFIXES)


def resolve(
    ref: str,
    *,
    seed: int,
    data_dir: str,
    schema: dict[str, Any] | None = None,
    target: str | None = None,
    text: str | None = None,
    task: str | None = None,
    image_size: int | None = None,
    test: str | None = None,
) -> tuple[DatasetSpec, dict[str, Any] | None]:
    """The spec ``ref`` names and, for a path, the schema of what was inferred from it."""
    ref = ref.strip()
    own = {"target": target, "text": text, "task": task, "image_size": image_size, "test": test}
    if ref.lower() in DATASETS and not Path(ref).exists():
        for key, value in own.items():
            if value is not None:
                raise ConfigError(
                    key, f"applies to your own data (a table file or an image folder); '{ref}' is built in"
                )
        return DATASETS[ref.lower()], None
    if not looks_like_path(ref) and not Path(ref).exists():
        choose("dataset", ref, tuple(DATASETS))  # raises with the close match and the choices
    path = Path(os.path.expanduser(ref)).absolute()
    spec, data = _read(path, seed=seed, schema=schema, **own)
    inferred = data.extras["schema"]
    if schema is None:  # a run (or inspect) with this config asks again with the schema: the same read
        _remember(path, seed, own, inferred, (spec, data))
    return spec, inferred


def load(cfg: TrainConfig) -> Data:
    """The Data of a config: a built-in dataset, or a path read again from its schema."""
    if cfg.data_schema is None:
        from dltui.data import load as load_builtin

        return load_builtin(cfg)
    own = {k: getattr(cfg, k) for k in OWN_ONLY}
    return _read(Path(cfg.dataset), seed=cfg.seed, schema=cfg.data_schema, **own)[1]


def _read(path: Path, *, seed: int, schema: dict[str, Any] | None, **own: Any) -> tuple[DatasetSpec, Data]:
    try:
        path.stat()
    except FileNotFoundError:
        raise ConfigError("dataset", f"'{path}': no such file or folder") from None
    except OSError as exc:
        raise ConfigError("dataset", f"'{path}': cannot be read ({exc.strerror})") from None
    key = _key(path, seed, own, schema)
    if key not in _loaded:
        if len(_loaded) >= 8:  # two keys a read: without and with its schema
            _loaded.pop(next(iter(_loaded)))
        try:
            data = _read_source(path, seed=seed, schema=schema, **own)
        except DataError as exc:
            raise ConfigError("dataset", str(exc)) from None
        spec, loaded = _as_catalogue(path, data)
        _loaded[key] = (spec, loaded)
    return _loaded[key]


def _key(path: Path, seed: int, own: dict[str, Any], schema: dict[str, Any] | None) -> str | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return json.dumps([str(path), stat.st_mtime_ns, stat.st_size, seed, own, schema], sort_keys=True, default=str)


def _remember(path: Path, seed: int, own: dict[str, Any], schema: dict[str, Any], pair: tuple) -> None:
    key = _key(path, seed, own, schema)
    if key is not None:
        _loaded[key] = pair


def _read_source(path: Path, *, seed: int, schema: dict[str, Any] | None, **own: Any) -> OwnData:
    test = Path(own["test"]) if own.get("test") else None
    if path.is_dir():
        for key in ("target", "text", "task"):
            if own.get(key) is not None:
                raise ConfigError(key, f"applies to a table file; '{path}' is an image folder")
        from dltui.data.imagefolder import open_image_folder

        return open_image_folder(path, image_size=own.get("image_size"), test=test, seed=seed, schema=schema)
    if own.get("image_size") is not None:
        raise ConfigError("image_size", f"applies to an image folder; '{path}' is a file")
    from dltui.data.table import open_table

    return open_table(
        path, target=own.get("target"), text=own.get("text"), task=own.get("task"), test=test, seed=seed, schema=schema
    )


def _recommended(data: OwnData, n_train: int) -> Recommended:
    from dltui.models import MODELS

    batch = max(1, min(64 if data.kind == "vector" else 128, n_train))
    if data.kind == "sequence":
        return Recommended("gru", 10, max(1, min(256, n_train)), 1e-3, "adam")
    if data.kind == "image":
        probe = DatasetSpec(
            "probe", data.task, data.kind, data.input_shape, data.classes, n_train, 1, "", "", None, None
        )  # type: ignore[arg-type]
        model = next(m for m in ("cnn", "mlp", "softmax") if MODELS[m].incompatibility(probe) is None)
        return Recommended(model, 10, batch, 1e-3, "adam")
    return Recommended("mlp", 30 if n_train < 5000 else 10, batch, 1e-3, "adam")


def _as_catalogue(path: Path, data: OwnData) -> tuple[DatasetSpec, Data]:
    """OwnData as the spec + Data pair every other part of dltui reads."""
    n_train, n_test = len(data.y_train), len(data.y_test)
    name = path.name.split(".")[0] or path.name
    holder: dict[str, Data] = {}
    spec = DatasetSpec(
        name=name,
        task=data.task,
        kind=data.kind,
        input_shape=tuple(data.input_shape),
        classes=tuple(data.classes),
        train_size=n_train,
        test_size=n_test,
        source=f"your {'image folder' if data.kind == 'image' else 'table'} {path}",
        description=data.split,
        recommended=_recommended(data, n_train),
        loader=lambda cfg: holder["data"],
        vocab_size=data.vocab_size,
        augmentations=("crop",) if data.kind == "image" else (),
        path=str(path),
    )
    extras: dict[str, Any] = {"schema": data.schema, "report": data.report, "notes": data.notes}
    if data.schema.get("feature_names"):  # the sampler names a table row's values
        extras["feature_names"] = list(data.schema["feature_names"])
    if data.vocab:
        extras["vocab"] = data.vocab
    holder["data"] = Data(
        spec,
        data.x_train,
        data.y_train,
        data.x_test,
        data.y_test,
        scale=data.scale,
        mean=data.mean,
        std=data.std,
        extras=extras,
    )
    return spec, holder["data"]


def inspect(cfg: TrainConfig) -> tuple[DatasetSpec, Data]:
    """What ``dltui inspect`` shows: the spec and data of a config's path, as a run sees them."""
    if cfg.data_schema is None:
        raise ConfigError("dataset", f"'{cfg.dataset}' is a built-in dataset (see `dltui datasets {cfg.dataset}`)")
    return _read(Path(cfg.dataset), seed=cfg.seed, schema=cfg.data_schema, **{k: getattr(cfg, k) for k in OWN_ONLY})


__all__ = ["OWN_ONLY", "inspect", "load", "looks_like_path", "resolve", "suggest"]
