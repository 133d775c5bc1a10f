"""The command line: `dltui` opens the app; `dltui run` trains headless; `eval`,
`datasets` and `models` inspect. Torch is imported only by commands that need it, so
`dltui --help` answers at once."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import typer

from dltui.errors import DltuiError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="A deep-learning trainer that lives in the terminal. Without a command, opens the app.",
)

EXIT_INTERRUPTED = 130


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit: the shape of every user-facing error."""
    typer.echo(f"dltui: error: {message}", err=True)
    raise typer.Exit(code)


# Options shared by the app and `run`. Typed as text: make_config parses and validates them,
# so the CLI and the app report bad values the same way.
DATASET = typer.Option(
    None, "--dataset", "-d", metavar="NAME", help="dataset name (see `dltui datasets`) [default: digits]"
)
MODEL = typer.Option(
    None, "--model", "-m", metavar="NAME", help="model name (see `dltui models`) [default: the dataset's]"
)
EPOCHS = typer.Option(None, "--epochs", "-e", metavar="INT", help="total epochs [default: the dataset's]")
BATCH = typer.Option(None, "--batch-size", "-b", metavar="INT", help="batch size [default: the dataset's]")
LR = typer.Option(None, "--lr", metavar="FLOAT", help="learning rate [default: the dataset's]")
OPT = typer.Option(None, "--optimizer", metavar="NAME", help="sgd | momentum | adam | adamw")
MOMENTUM = typer.Option(None, "--momentum", metavar="FLOAT", help="SGD momentum in [0, 1)")
WD = typer.Option(None, "--weight-decay", metavar="FLOAT", help="weight decay in [0, 1)")
INIT = typer.Option(None, "--init", metavar="NAME", help="default | normal (N(0, 0.01) weights, zero biases)")
DEVICE = typer.Option(None, "--device", metavar="NAME", help="auto | cpu | cuda [default: auto]")
SEED = typer.Option(None, "--seed", metavar="INT", help="random seed [default: 0]")
DATA_DIR = typer.Option(
    None,
    "--data-dir",
    metavar="DIR",
    help="where torchvision datasets live [env DLTUI_DATA_DIR, else ~/.cache/dltui/data]",
)
OUT = typer.Option(None, "--out", "-o", metavar="DIR", help="run directory [default: runs/<time>-<dataset>-<model>]")
AMP = typer.Option(False, "--amp", help="bf16 autocast (CUDA only)")
COMPILE = typer.Option(False, "--compile", help="torch.compile the model (CUDA only)")


CONFIG_FLAGS = (
    "dataset", "model", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay",
    "init", "device", "seed", "data_dir", "out", "amp", "compile",
)  # fmt: skip


def _config_flags(params: dict[str, Any]) -> dict[str, Any]:
    """The config fields a command was given (unset flags and off switches left out)."""
    return {k: params[k] for k in CONFIG_FLAGS if params.get(k) not in (None, False)}


@app.callback(invoke_without_command=True)
def main_app(
    ctx: typer.Context,
    dataset: str | None = DATASET,
    model: str | None = MODEL,
    epochs: str | None = EPOCHS,
    batch_size: str | None = BATCH,
    lr: str | None = LR,
    optimizer: str | None = OPT,
    momentum: str | None = MOMENTUM,
    weight_decay: str | None = WD,
    init: str | None = INIT,
    device: str | None = DEVICE,
    seed: str | None = SEED,
    data_dir: str | None = DATA_DIR,
    out: str | None = OUT,
    start: bool = typer.Option(False, "--start", help="begin training as soon as the app opens"),
    version: bool = typer.Option(False, "--version", help="print the version and exit"),
) -> None:
    """Open the app (the same flags as `dltui run` preselect the form)."""
    if version:
        from dltui import __version__

        typer.echo(f"dltui {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is not None:
        return
    options = _config_flags(locals())
    from dltui.tui.app import run_app

    raise typer.Exit(run_app(options, start))


class _Interrupts:
    """First Ctrl+C / SIGTERM: stop after the current batch. Second: abort at once."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> _Interrupts:
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        if self.requested:
            return  # keep "second signal aborts at once" until the process exits
        for s, h in self._old.items():
            signal.signal(s, h)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            sys.stderr.write("\ndltui: aborted; files on disk hold the epochs written so far\n")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        self.requested = True
        name = "Ctrl+C" if signum == signal.SIGINT else signal.Signals(signum).name
        sys.stderr.write(f"\ndltui: {name}: stopping after this batch (press Ctrl+C again to abort)\n")
        sys.stderr.flush()

    def __call__(self) -> bool:
        return self.requested


@app.command()
def run(
    dataset: str | None = DATASET,
    model: str | None = MODEL,
    epochs: str | None = EPOCHS,
    batch_size: str | None = BATCH,
    lr: str | None = LR,
    optimizer: str | None = OPT,
    momentum: str | None = MOMENTUM,
    weight_decay: str | None = WD,
    init: str | None = INIT,
    device: str | None = DEVICE,
    seed: str | None = SEED,
    data_dir: str | None = DATA_DIR,
    out: str | None = OUT,
    amp: bool = AMP,
    compile: bool = COMPILE,
    resume: str | None = typer.Option(
        None, "--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint (up to --epochs total)"
    ),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per epoch and a summary on stdout"),
    min_test_acc: str | None = typer.Option(
        None, "--min-test-acc", metavar="FLOAT", help="exit 1 when the final test accuracy is below this"
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, metavar="INT", help="CPU threads for torch [default: torch's, all cores]"
    ),
) -> None:
    """Train headless: live progress on a terminal, one line per epoch otherwise."""
    from dltui.config import make_config

    given = _config_flags(locals())
    threshold = _threshold(min_test_acc)
    try:
        if resume:
            cfg, checkpoint, run_dir = _resume(resume, given)
        else:
            cfg, checkpoint, run_dir = make_config(**given), None, None
        if threshold is not None and cfg.dataset and _is_regression(cfg.dataset):
            fail(f"--min-test-acc: {cfg.dataset} is a regression dataset and has no accuracy")
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)

    from dltui.engine import RunFailed, RunStopped, train
    from dltui.reporting import Reporter

    reporter = Reporter(json_out=json_out)
    with _Interrupts() as interrupted, reporter:
        result = train(cfg, reporter, interrupted, run_dir=run_dir, checkpoint=checkpoint, threads=threads)
    if isinstance(result, RunFailed):
        raise typer.Exit(result.exit_code)
    if isinstance(result, RunStopped):
        raise typer.Exit(EXIT_INTERRUPTED)
    final = result.summary.final
    if threshold is not None and final is not None and (final.test_acc or 0.0) < threshold:
        typer.echo(f"dltui: test accuracy {final.test_acc:.4f} is below --min-test-acc {threshold:g}", err=True)
        raise typer.Exit(1)


def _threshold(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        fail(f"--min-test-acc: {raw!r} is not a number (a fraction in [0, 1], such as 0.95)")
    if not 0 <= value <= 1:
        fail(f"--min-test-acc: {raw} is out of range (a fraction in [0, 1], such as 0.95)")
    return value


def _is_regression(dataset: str) -> bool:
    from dltui.data import DATASETS

    return DATASETS[dataset].task == "regression"


def _resume(path: str, given: dict[str, Any]):
    """Config, checkpoint and run directory to continue ``path``. Only --epochs (and
    --device, --data-dir) may change; other flags must agree with the saved run."""
    from dltui.config import with_overrides
    from dltui.engine.rundir import config_from_checkpoint, load_checkpoint
    from dltui.errors import CheckpointError, ConfigError

    run_dir = Path(path)
    if not run_dir.is_dir():
        raise CheckpointError(f"--resume: '{path}' is not a run directory")
    state = load_checkpoint(run_dir)
    saved = config_from_checkpoint(state, run_dir, device=given.get("device"), data_dir=given.get("data_dir"))
    for key in ("dataset", "model", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "init", "seed"):
        if key in given and str(given[key]).strip().lower() != str(getattr(saved, key)).lower():
            try:
                wanted = getattr(with_overrides(saved, **{key: given[key]}), key)
            except ConfigError:
                wanted = given[key]
            if wanted != getattr(saved, key):
                flag = "--" + key.replace("_", "-")
                raise CheckpointError(
                    f"--resume: the run in '{path}' used {flag} {getattr(saved, key)}, not {given[key]}; "
                    "a resumed run keeps its settings (start a new run instead)"
                )
    cfg = with_overrides(saved, epochs=given.get("epochs", saved.epochs), out=str(run_dir))
    if state["epoch"] >= cfg.epochs:
        raise ConfigError(
            "epochs",
            f"the run in '{path}' already completed {state['epoch']} epochs; pass --epochs above that to continue",
        )
    return cfg, state, run_dir


@app.command("eval")
def eval_cmd(
    path: str = typer.Argument(..., metavar="RUN_DIR|MODEL.PT", help="a run directory or its model.pt"),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="refuse if the checkpoint is for another dataset"),
    model: str | None = typer.Option(None, "--model", "-m", help="refuse if the checkpoint is another model"),
    device: str | None = DEVICE,
    data_dir: str | None = DATA_DIR,
    json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object"),
) -> None:
    """Rebuild a saved model and evaluate it on the test split."""
    from dltui.evaluation import evaluate_checkpoint

    try:
        result = evaluate_checkpoint(path, dataset=dataset, model=model, device=device, data_dir=data_dir)
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)
    from dltui.reporting import print_evaluation

    print_evaluation(result, json_out)


@app.command()
def datasets(data_dir: str | None = DATA_DIR) -> None:
    """List the datasets: task, input shape, classes, sizes, source, offline availability."""
    from dltui.reporting import print_datasets

    print_datasets(data_dir)


@app.command()
def models(
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="only models that fit this dataset"),
) -> None:
    """List the models with the tasks they fit and their parameter counts."""
    from dltui.reporting import print_models

    try:
        print_models(dataset)
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)


def main() -> None:
    """The console entry point. Once torch is loaded, and when no other thread still has
    work to finish, it leaves without interpreter teardown: the CUDA build's native
    libraries touch ~100 MB of fresh pages in their exit-time destructors, which made that
    the peak of a whole 60k cnn run (measured 943 MB with teardown, 839 MB without).
    Every file a command writes is closed (and fsynced) before it returns; the streams are
    flushed here, and a failed flush exits 120 as Python itself would."""
    try:
        app(prog_name="dltui")
        code: int | str | None = 0
    except SystemExit as exc:
        code = exc.code
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if "torch" not in sys.modules or busy or not isinstance(code, int | None):
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # a full disk or a closed pipe behind stdout
        code = code or 120
    os._exit(code or 0)


if __name__ == "__main__":
    main()
