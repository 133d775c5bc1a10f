"""Settings checked against the catalogue: the one place a run's configuration is validated.

``config.py`` is the plain record at the ground floor; this module sits above it and the
data and model catalogues. A dataset reference (a registry name or a path) becomes a
``DatasetSpec`` through ``data.sources``, a model reference (a name or ``FILE.py:NAME``)
a ``ModelSpec`` through ``models.resolve_model``; every ``None`` is resolved, so a saved
config always says exactly what ran.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from dltui.config import (
    DEVICES,
    INITS,
    MONITORS,
    ON_DIVERGE,
    OPTIMIZERS,
    OWN_TASKS,
    SCHEDULES,
    TrainConfig,
    boolean,
    check_batch_size,
    check_writable_dir,
    choose,
    cuda_available,
    number,
    resolve_data_dir,
    usable_cores,
    user_path,
)
from dltui.errors import ConfigError

_FIELDS = {f.name for f in fields(TrainConfig)}


def make_config(**raw: Any) -> TrainConfig:
    """Parse, resolve and validate settings given as Python values or strings (from a flag
    or a text field). Raises ConfigError naming the field, the value and what is allowed."""
    from dltui.data import sources
    from dltui.models import compatible_models, resolve_model

    unknown = set(raw) - _FIELDS
    if unknown:
        raise TypeError(f"unknown config fields: {sorted(unknown)}")
    # an empty text field means "not given", like an absent flag
    given = {k: v for k, v in raw.items() if v is not None and not (isinstance(v, str) and not v.strip())}

    seed = number("seed", given.get("seed", 0), int, "a whole number")
    if not 0 <= seed < 2**63:
        raise ConfigError("seed", f"{seed} is out of range (a whole number from 0 to 2**63-1)")
    data_dir = resolve_data_dir(given.get("data_dir"))
    own = _own_data_settings(given)
    spec, schema = sources.resolve(
        str(given.get("dataset", TrainConfig.dataset)),
        seed=seed,
        data_dir=data_dir,
        schema=given.get("data_schema"),
        **own,
    )
    dataset = spec.ref
    rec = spec.recommended

    model_spec = resolve_model(str(given.get("model", rec.model)).strip())
    model_name = model_spec.name
    why = model_spec.incompatibility(spec)
    if why is not None and ":" in model_name:  # your code failed on this data: say where, not what else fits
        raise ConfigError("model", f"'{model_name}' on {spec.name}: {why}")
    if why is not None:
        fitting = compatible_models(spec)
        raise ConfigError(
            "model",
            f"'{model_name}' does not fit dataset '{spec.name}' ({why}); "
            f"models that fit: {', '.join(fitting) or 'none'}",
        )

    epochs = number("epochs", given.get("epochs", rec.epochs), int, "a whole number >= 1")
    if not 1 <= epochs <= 100_000:
        raise ConfigError("epochs", f"{epochs} is out of range (a whole number from 1 to 100000)")

    lr = number("lr", given.get("lr", rec.lr), float, "a positive number such as 0.01")
    if not 0 < lr <= 100:
        raise ConfigError("lr", f"{lr:g} is out of range (a positive number up to 100, such as 0.01)")

    optimizer = choose("optimizer", given.get("optimizer", rec.optimizer), OPTIMIZERS)
    default_momentum = 0.9 if optimizer == "momentum" else 0.0
    momentum = number("momentum", given.get("momentum", default_momentum), float, "a number in [0, 1)")
    if not 0 <= momentum < 1:
        raise ConfigError("momentum", f"{momentum:g} is out of range (a number in [0, 1), such as 0.9)")
    if momentum and optimizer not in ("sgd", "momentum"):
        raise ConfigError("momentum", f"{momentum:g} has no meaning for {optimizer} (use sgd or momentum)")

    weight_decay = _fraction("weight_decay", given.get("weight_decay", 0.0), "such as 1e-4")
    init = choose("init", given.get("init", "default"), INITS)
    device = choose("device", given.get("device", "auto"), DEVICES)
    if device == "cuda" and not cuda_available():
        raise ConfigError("device", "'cuda' was asked for but no CUDA device is available (use cpu or auto)")
    if spec.needs_data_dir:
        check_writable_dir("data_dir", Path(data_dir))

    out = given.get("out")
    out = str(user_path("out", str(out))) if out else None

    threads = given.get("threads")
    if threads is not None:
        cores = usable_cores()
        threads = number("threads", threads, int, f"a whole number from 1 to {cores}")
        if not 1 <= threads <= cores:
            raise ConfigError(
                "threads", f"{threads} is out of range (a whole number from 1 to {cores}: the cores this process has)"
            )

    training = _training_settings(given, spec, epochs)
    val_fraction = training["val_fraction"]
    train_rows = spec.train_size - round(spec.train_size * val_fraction)
    batch_size = number("batch_size", given.get("batch_size", min(rec.batch_size, train_rows)), int, "a whole number")
    check_batch_size(batch_size, train_rows, spec.name)

    return TrainConfig(
        dataset=dataset,
        model=model_name,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        momentum=momentum,
        weight_decay=weight_decay,
        init=init,
        device=device,
        seed=seed,
        data_dir=data_dir,
        out=out,
        amp=boolean("amp", given.get("amp", False)),
        compile=boolean("compile", given.get("compile", False)),
        graph=boolean("graph", given.get("graph", True)),
        threads=threads,
        data_schema=schema,
        **({k: v for k, v in own.items() if v is not None} if schema is not None else {}),
        **training,
    )


def _fraction(field: str, raw: Any, example: str) -> float:
    value = number(field, raw, float, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise ConfigError(field, f"{value:g} is out of range (a number in [0, 1), {example})")
    return value


def _own_data_settings(given: dict[str, Any]) -> dict[str, Any]:
    """The settings that only a path in --dataset reads (sources refuses them for a name)."""
    own: dict[str, Any] = {k: given.get(k) for k in ("target", "text", "test")}
    for key in ("target", "text"):
        if own[key] is not None:
            own[key] = str(own[key]).strip()
    if own["test"] is not None:
        own["test"] = str(user_path("test", str(own["test"])))
    task = given.get("task")
    own["task"] = choose("task", task, OWN_TASKS) if task is not None else None
    size = given.get("image_size")
    if size is not None:
        size = number("image_size", size, int, "a whole number of pixels from 4 to 1024")
        if not 4 <= size <= 1024:
            raise ConfigError("image_size", f"{size} is out of range (a whole number of pixels from 4 to 1024)")
    own["image_size"] = size
    return own


def _training_settings(given: dict[str, Any], spec: Any, epochs: int) -> dict[str, Any]:
    """Validation split, schedule, stopping, regularisation and divergence handling."""
    early_stop = number("early_stop", given.get("early_stop", 0), int, "a whole number of epochs, 0 for off")
    if not 0 <= early_stop <= 100_000:
        raise ConfigError("early_stop", f"{early_stop} is out of range (a whole number of epochs, 0 for off)")
    val_fraction = given.get("val_fraction")
    if val_fraction is None:
        val_fraction = 0.1 if early_stop else 0.0  # anything that chooses needs held-out data
    else:
        val_fraction = number("val_fraction", val_fraction, float, "a fraction in [0, 0.5]")
        if not 0 <= val_fraction <= 0.5:
            raise ConfigError("val_fraction", f"{val_fraction:g} is out of range (a fraction in [0, 0.5], such as 0.1)")
        if early_stop and val_fraction == 0:
            raise ConfigError("val_fraction", "0 leaves nothing to stop on; --early-stop needs a validation split")
    if val_fraction and getattr(spec, "test_is_train", False):
        raise ConfigError("val_fraction", f"{spec.name} is fitted whole (test = train): there is nothing to hold out")
    if val_fraction and round(spec.train_size * val_fraction) < 1:
        why = "; --early-stop needs a validation split" if early_stop and given.get("val_fraction") is None else ""
        raise ConfigError("val_fraction", f"{val_fraction:g} of {spec.train_size} rows holds out no row{why}")
    has_accuracy = spec.task != "regression"
    monitor = given.get("monitor")
    monitor = (
        choose("monitor", monitor, MONITORS) if monitor is not None else ("val_acc" if has_accuracy else "val_loss")
    )
    if monitor == "val_acc" and not has_accuracy:
        raise ConfigError("monitor", f"val_acc: {spec.name} is a regression dataset and has no accuracy (use val_loss)")
    min_delta = number("min_delta", given.get("min_delta", 0.0), float, "a number >= 0")
    if min_delta < 0:
        raise ConfigError("min_delta", f"{min_delta:g} is negative (a number >= 0, such as 0.001)")

    schedule = choose("schedule", given.get("schedule", "constant"), SCHEDULES)
    warmup = number("warmup", given.get("warmup", 0), int, "a whole number of epochs")
    if not 0 <= warmup < epochs:
        raise ConfigError("warmup", f"{warmup} is out of range (a whole number of epochs from 0 to {epochs - 1})")
    step_size = given.get("step_size")
    if step_size is not None or schedule == "step":
        step_size = number("step_size", step_size or max(1, (epochs - warmup) // 3), int, "a whole number of epochs")
        if step_size < 1:
            raise ConfigError("step_size", f"{step_size} is out of range (a whole number of epochs >= 1)")
    gamma = number("gamma", given.get("gamma", 0.1), float, "a factor in (0, 1]")
    if not 0 < gamma <= 1:
        raise ConfigError("gamma", f"{gamma:g} is out of range (a factor in (0, 1], such as 0.1)")

    clip = given.get("clip_grad")
    if clip is not None:
        clip = number("clip_grad", clip, float, "a positive number such as 1.0")
        if clip <= 0:
            raise ConfigError("clip_grad", f"{clip:g} is out of range (a positive gradient norm, such as 1.0)")
    smoothing = _fraction("label_smoothing", given.get("label_smoothing", 0.0), "such as 0.1")
    if smoothing and spec.task not in ("classification", "sequence"):
        raise ConfigError("label_smoothing", f"applies to classes; {spec.name} is {spec.task}")
    dropout = given.get("dropout")
    if dropout is not None:
        dropout = _fraction("dropout", dropout, "such as 0.5")
    augment = given.get("augment")
    if augment is not None:
        augment = boolean("augment", augment)
        if augment and not spec.augmentations:
            raise ConfigError("augment", f"{spec.name} has no augmentation that keeps its labels true")
    else:
        augment = spec.augment_default
    return {
        "val_fraction": val_fraction,
        "schedule": schedule,
        "warmup": warmup,
        "step_size": step_size,
        "gamma": gamma,
        "early_stop": early_stop,
        "monitor": monitor,
        "min_delta": min_delta,
        "clip_grad": clip,
        "label_smoothing": smoothing,
        "dropout": dropout,
        "augment": augment,
        "on_diverge": choose("on_diverge", given.get("on_diverge", "stop"), ON_DIVERGE),
    }


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild from a saved dict; unknown keys (from a newer version) are ignored."""
    return make_config(**{k: v for k, v in data.items() if k in _FIELDS})


def with_overrides(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """A validated copy of ``cfg`` with some fields changed."""
    return make_config(**{**cfg.to_dict(), **changes}) if changes else replace(cfg)
