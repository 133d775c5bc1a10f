"""The command line: `dltui` opens the app; `dltui run` trains headless; `eval`,
`datasets`, `models` and `summary` inspect. Torch is imported only by commands that
need it, so `dltui --help` answers at once."""

from __future__ import annotations

import contextlib
import importlib
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from dltui.errors import EXIT_BELOW_BAR, EXIT_INTERRUPTED, EXIT_USAGE, DltuiError
from dltui.words import plural

# the click that typer runs on: its own copy in recent typer, the click package before
_clicks = importlib.import_module(TyperGroup.__mro__[1].__module__.rsplit(".", 1)[0] + ".exceptions")


def say(text: str, err: bool = True) -> None:
    """Write a line the user should see; a closed or broken terminal never stops the work."""
    with contextlib.suppress(OSError, ValueError):  # EIO after the terminal went, EPIPE, ENOSPC, closed
        typer.echo(text, err=err)


class _Commands(TyperGroup):
    """Click's usage errors ("Usage: ...", a blank line, "Error: ...") as the one line every
    other error is: `dltui: error: ...`, exit 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _clicks.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "dltui"
            say(f"dltui: error: {exc.format_message()} (see `{command} --help`)")
            code = EXIT_USAGE
        except _clicks.ClickException as exc:
            say(f"dltui: error: {exc.format_message()}")
            code = exc.exit_code
        except typer.Abort:
            code = EXIT_INTERRUPTED
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="A deep-learning trainer that lives in the terminal. Without a command, opens the app.",
)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one line to stderr and exit: the shape of every user-facing error."""
    say(f"dltui: error: {message}")
    raise typer.Exit(code)


# Options shared by the app and `run`. Typed as text: make_config parses and validates them,
# so the CLI and the app report bad values the same way.
DATASET = typer.Option(
    None,
    "--dataset",
    "-d",
    metavar="NAME|PATH",
    help="dataset name (see `dltui datasets`), or your CSV/TSV file or image folder [default: digits]",
)
MODEL = typer.Option(
    None,
    "--model",
    "-m",
    metavar="NAME|FILE.py:NAME",
    help="model name (see `dltui models`), or your nn.Module: FILE.py:NAME, package.module:NAME "
    "[default: the dataset's]",
)
EPOCHS = typer.Option(None, "--epochs", "-e", metavar="INT", help="total epochs [default: the dataset's]")
BATCH = typer.Option(None, "--batch-size", "-b", metavar="INT", help="batch size [default: the dataset's]")
LR = typer.Option(None, "--lr", metavar="FLOAT", help="learning rate [default: the dataset's]")
OPT = typer.Option(
    None, "--optimizer", metavar="NAME", help="sgd | momentum | adam | adamw | scratch-sgd (the lessons' own update)"
)
MOMENTUM = typer.Option(None, "--momentum", metavar="FLOAT", help="SGD momentum in [0, 1)")
WD = typer.Option(None, "--weight-decay", metavar="FLOAT", help="weight decay in [0, 1)")
INIT = typer.Option(None, "--init", metavar="NAME", help="default | normal (N(0, 0.01) weights, zero biases)")
DEVICE = typer.Option(None, "--device", metavar="NAME", help="auto | cpu | cuda [default: auto]")
SEED = typer.Option(None, "--seed", metavar="INT", help="random seed [default: 0]")
DATA_DIR = typer.Option(
    None,
    "--data-dir",
    metavar="DIR",
    help="where torchvision datasets live [env DLTUI_DATA_DIR, else the user cache dir: see `dltui datasets`]",
)
OUT = typer.Option(None, "--out", "-o", metavar="DIR", help="run directory [default: runs/<time>-<dataset>-<model>]")
RUNS_DIR = typer.Option(
    None, "--runs-dir", metavar="DIR", help="where runs are listed from and started in [env DLTUI_RUNS_DIR, else runs/]"
)
AMP = typer.Option(False, "--amp", help="bf16 autocast (CUDA, and CPUs with AMX where it is faster)")
COMPILE = typer.Option(False, "--compile", help="torch.compile the model (CUDA only)")
# your own data and how training runs: `run` and `sweep` share them
TARGET = typer.Option(None, "--target", metavar="COL", help="table: the label column [default: last]")
TEXT = typer.Option(None, "--text", metavar="COL", help="table: a text column read as characters")
TASK = typer.Option(None, "--task", metavar="NAME", help="table: classification | binary | regression")
IMAGE_SIZE = typer.Option(None, "--image-size", metavar="INT", help="image folder: resize to INT x INT")
TEST = typer.Option(None, "--test", metavar="PATH", help="a file or folder holding the test split")
SCHEDULE = typer.Option(None, "--schedule", metavar="NAME", help="constant | step | cosine | onecycle")
WARMUP = typer.Option(None, "--warmup", metavar="EPOCHS", help="linear lr warm-up epochs [default: 0]")
STEP_SIZE = typer.Option(None, "--step-size", metavar="EPOCHS", help="step: epochs between decays")
GAMMA = typer.Option(None, "--gamma", metavar="FLOAT", help="step: decay factor [default: 0.1]")
MIN_DELTA = typer.Option(None, "--min-delta", metavar="FLOAT", help="the least change that counts")
CLIP_GRAD = typer.Option(None, "--clip-grad", metavar="NORM", help="clip the gradient norm to NORM")
LABEL_SMOOTHING = typer.Option(None, "--label-smoothing", metavar="X", help="classification: smoothing in [0, 1)")
DROPOUT = typer.Option(None, "--dropout", metavar="P", help="dropout before the classifier head")
AUGMENT = typer.Option(
    None,
    "--augment/--no-augment",
    help="random crop (+ flip where labels allow) on training images [default: the dataset's]",
)
ON_DIVERGE = typer.Option(
    None, "--on-diverge", metavar="WHAT", help="stop | rollback (last good epoch, lr halved, up to 3 times)"
)


CONFIG_FLAGS = (
    "dataset", "model", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay",
    "init", "device", "seed", "data_dir", "out", "amp", "compile",
)  # fmt: skip


def _config_flags(params: dict[str, Any]) -> dict[str, Any]:
    """The config fields a command was given (unset flags and off switches left out). An
    explicitly empty value (`--dataset ''`) is refused: only the app's blank text field
    means "the default"."""
    given = {k: params[k] for k in CONFIG_FLAGS if params.get(k) not in (None, False)}
    for key, value in given.items():
        if isinstance(value, str) and not value.strip():
            fail(f"--{key.replace('_', '-')}: an empty value (leave the flag out for the default)")
    return given


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
    images: str | None = typer.Option(
        None, "--images", metavar="MODE", help="auto | halfblock [default: auto: real pixels where Kitty/Sixel work]"
    ),
    runs_dir: str | None = RUNS_DIR,
    version: bool = typer.Option(False, "--version", help="print the version and exit"),
) -> None:
    """Open the app: the runs under the runs directory, and a form for new ones (the same
    flags as `dltui run` preselect it; --start launches that run at once and attaches)."""
    if version:
        from dltui import __version__

        typer.echo(f"dltui {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is not None:
        # `dltui --dataset linear run` means `dltui run --dataset linear`; other commands refuse
        options = _config_flags(locals())
        if start:
            fail(f"--start opens the app (dltui --start); it does not apply to '{ctx.invoked_subcommand}'")
        if images:
            fail(f"--images is for the app (dltui --images {images}); it does not apply to '{ctx.invoked_subcommand}'")
        if runs_dir:
            fail(f"--runs-dir goes after the command: dltui {ctx.invoked_subcommand} --runs-dir ...")
        if options and ctx.invoked_subcommand != "run":
            flag = "--" + next(iter(options)).replace("_", "-")
            takes = {"sweep", "serve"} | ({"summary", "eval"} if flag in ("--dataset", "--model") else set())
            if ctx.invoked_subcommand in takes | ({"eval"} if flag in ("--device", "--data-dir") else set()):
                fail(f"{flag} goes after the command: dltui {ctx.invoked_subcommand} {flag} ...")
            fail(f"{flag} is a training setting: dltui run {flag} ... (or the app: dltui {flag} ...)")
        ctx.obj = options
        return
    if images not in (None, "auto", "halfblock"):
        fail(f"--images: {images!r} is not one of auto, halfblock")
    options = _config_flags(locals())
    from dltui.tui.app import run_app

    raise typer.Exit(run_app(options, start, images or "auto", runs_dir=_runs_dir(runs_dir)))


def _runs_dir(raw: str | None) -> str:
    """--runs-dir, else $DLTUI_RUNS_DIR, else runs/, checked as a path whichever it came from."""
    from dltui.config import user_path
    from dltui.runs import default_runs_dir

    field = "runs_dir" if raw or not os.environ.get("DLTUI_RUNS_DIR") else "DLTUI_RUNS_DIR"
    try:
        return str(user_path(field, raw or str(default_runs_dir())))
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)


class _Interrupts:
    """First Ctrl+C, SIGTERM or SIGHUP: stop after the current batch. A second Ctrl+C aborts
    at once; repeated SIGTERM/SIGHUP do not (a closing terminal sends SIGHUP twice: the
    hang-up, then the shell's). A SIGHUP that is ignored already (`nohup`) stays ignored."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> _Interrupts:
        signals = [signal.SIGINT, signal.SIGTERM]
        if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            signals.append(signal.SIGHUP)
        self._old = {s: signal.signal(s, self._handle) for s in signals}
        return self

    def __exit__(self, *exc: object) -> None:
        if self.requested:
            return  # keep "second signal aborts at once" until the process exits
        for s, h in self._old.items():
            signal.signal(s, h)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested and signum != signal.SIGINT:
            return  # already stopping
        if self.requested:
            say("\ndltui: aborted; files on disk hold the epochs written so far")
            os._exit(EXIT_INTERRUPTED)
        self.requested = True
        name = "Ctrl+C" if signum == signal.SIGINT else signal.Signals(signum).name
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one rank speaks for all
            say(f"\ndltui: {name}: stopping after this batch (press Ctrl+C again to abort)")

    def __call__(self) -> bool:
        return self.requested


@app.command()
def run(
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
    amp: bool = AMP,
    compile: bool = COMPILE,
    resume: str | None = typer.Option(
        None, "--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint (up to --epochs total)"
    ),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per epoch and a summary on stdout"),
    min_test_acc: str | None = typer.Option(
        None, "--min-test-acc", metavar="FLOAT", help="exit 4 when the final test accuracy is below this"
    ),
    threads: str | None = typer.Option(
        None,
        "--threads",
        metavar="INT",
        help="CPU threads for torch, 1 to the usable cores [default: the cores the load leaves idle]",
    ),
    target: str | None = TARGET,
    text: str | None = TEXT,
    task: str | None = TASK,
    image_size: str | None = IMAGE_SIZE,
    test: str | None = TEST,
    val_fraction: str | None = typer.Option(
        None,
        "--val-fraction",
        metavar="F",
        help="hold out F of the training split to choose by [default: 0; 0.1 when choosing]",
    ),
    schedule: str | None = SCHEDULE,
    warmup: str | None = WARMUP,
    step_size: str | None = STEP_SIZE,
    gamma: str | None = GAMMA,
    early_stop: str | None = typer.Option(
        None, "--early-stop", metavar="PATIENCE", help="stop when --monitor has not improved for PATIENCE epochs"
    ),
    monitor: str | None = typer.Option(
        None, "--monitor", metavar="NAME", help="val_acc | val_loss: what best.pt and stopping use"
    ),
    min_delta: str | None = MIN_DELTA,
    clip_grad: str | None = CLIP_GRAD,
    label_smoothing: str | None = typer.Option(
        None, "--label-smoothing", metavar="X", help="classification: smoothing in [0, 1)"
    ),
    dropout: str | None = DROPOUT,
    augment: bool | None = AUGMENT,
    on_diverge: str | None = ON_DIVERGE,
    nproc: str | None = typer.Option(
        None, "--nproc", metavar="N", help="data-parallel on N processes of this machine (starts torchrun)"
    ),
    graph: bool | None = typer.Option(
        None, "--graph/--no-graph", help="CUDA: capture the training step as one CUDA graph [default: where it can]"
    ),
) -> None:
    """Train headless: live progress on a terminal, one line per epoch otherwise."""
    from dltui.resolve import make_config

    if nproc is not None:
        if not resume:  # bad input is said once, here, not by every rank under torchrun
            try:
                cfg = make_config(**{**(ctx.obj or {}), **_config_flags(locals()), **_run_flags(locals())})
            except DltuiError as exc:
                fail(str(exc), exc.exit_code)
            if nproc.strip().isdigit() and int(nproc) > 1 and cfg.batch_size % int(nproc):
                fail(f"--batch-size: {cfg.batch_size} does not split over {nproc} ranks (use a multiple of {nproc})")
        raise typer.Exit(_torchrun(nproc))

    given = {**(ctx.obj or {}), **_config_flags(locals()), **_run_flags(locals())}
    _threads_first(given.get("threads"))
    threshold = _threshold(min_test_acc)
    try:
        if resume:
            cfg, checkpoint, run_dir = _resume(resume, given)
        else:
            cfg, checkpoint, run_dir = make_config(**given), None, None
        if threshold is not None and _is_regression(cfg):
            fail(f"--min-test-acc: {cfg.dataset} is a regression dataset and has no accuracy")
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)

    from dltui.engine import RunFailed, RunFinished, RunStopped, train
    from dltui.reporting import Reporter

    reporter = Reporter(json_out=json_out)
    code = 0
    with _Interrupts() as interrupted, reporter:
        result = train(cfg, reporter, interrupted, run_dir=run_dir, checkpoint=checkpoint)
        final = result.summary.final if isinstance(result, RunFinished) else None
        if threshold is not None and final is not None and (final.test_acc or 0.0) < threshold:
            reporter.note(f"dltui: test accuracy {final.test_acc:.4f} is below --min-test-acc {threshold:g}")
            code = EXIT_BELOW_BAR
    if isinstance(result, RunFailed):
        code = result.exit_code
    if isinstance(result, RunStopped):
        code = EXIT_INTERRUPTED
    _report_exit(code)
    raise typer.Exit(code)


def _threads_first(raw: Any) -> None:
    """The run's thread count before anything runs on the CPU: validating the settings builds
    and probes the model (measured 0.2-1.3 s slower with a thread team on a loaded machine)."""
    import torch

    from dltui.sysinfo import choose_threads

    try:
        n = int(raw) if raw is not None else choose_threads()[0]
    except (TypeError, ValueError):
        return  # make_config says what is wrong with it
    if n >= 1:
        torch.set_num_threads(n)


def _report_exit(code: int) -> None:
    """Under `dltui run --nproc`, rank 0 leaves its exit code for the wrapper: torchrun's
    own is 1 for any ending but success."""
    where = os.environ.get("DLTUI_EXIT_FILE")
    if where and os.environ.get("RANK", "0") == "0":
        with contextlib.suppress(OSError):
            Path(where).write_text(str(code))


def _torchrun(raw: str) -> int:
    """`dltui run --nproc N ...`: the same command under the real torchrun, N processes on
    this machine; the exit code is rank 0's (0, 3, 130, ...), not torchrun's."""
    import subprocess
    import tempfile

    try:
        n = int(raw)
    except ValueError:
        fail(f"--nproc: {raw!r} is not a whole number")
    if not 1 <= n <= 256:
        fail(f"--nproc: {n} is out of range (1 to 256 processes)")
    if os.environ.get("WORLD_SIZE"):
        fail("--nproc: already running under torchrun (WORLD_SIZE is set); leave --nproc out")
    args, skip = [], False
    for a in sys.argv[1:]:  # the command as given, less --nproc
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            args.append(a)
    with tempfile.TemporaryDirectory(prefix="dltui-nproc-") as tmp:
        exit_file = Path(tmp) / "exit"
        env = {**os.environ, "DLTUI_EXIT_FILE": str(exit_file)}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
               "-m", "dltui", *args]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env)
        forward = lambda signum, frame: proc.send_signal(signum)  # noqa: E731
        old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP)}
        try:
            while True:
                try:
                    code = proc.wait()
                    break
                except KeyboardInterrupt:  # the terminal's Ctrl+C reached torchrun and every rank too
                    continue
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        try:
            return int(exit_file.read_text())
        except (OSError, ValueError):
            say(f"dltui: error: torchrun ended with exit code {code} before rank 0 finished; see its lines above")
            return code or 1


RUN_FLAGS = (
    "threads", "target", "text", "task", "image_size", "test", "val_fraction", "schedule", "warmup", "step_size",
    "gamma", "early_stop", "monitor", "min_delta", "clip_grad", "label_smoothing", "dropout", "augment", "on_diverge",
    "graph",
)  # fmt: skip


def _run_flags(params: dict[str, Any]) -> dict[str, Any]:
    """The flags only `run` takes, as given (None: not given; --no-augment is False)."""
    given = {k: params[k] for k in RUN_FLAGS if params.get(k) is not None}
    for key, value in given.items():
        if isinstance(value, str) and not value.strip():
            fail(f"--{key.replace('_', '-')}: an empty value (leave the flag out for the default)")
    return given


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


def _is_regression(cfg: Any) -> bool:
    from dltui.data import sources

    return sources.load(cfg).task == "regression"


def _resume(path: str, given: dict[str, Any]):
    """Config, checkpoint and run directory to continue ``path``. Only --epochs, --lr (a
    rolled-back run continues slower), --device, --data-dir and --threads may change;
    other flags must agree with the saved run."""
    from dltui.config import user_path
    from dltui.engine.checkpoint import config_from_checkpoint, load_checkpoint
    from dltui.errors import CheckpointError, ConfigError
    from dltui.resolve import with_overrides

    run_dir = user_path("resume", path)
    if not run_dir.is_dir():
        raise CheckpointError(f"--resume: '{path}' is not a run directory")
    state = load_checkpoint(run_dir)
    saved = config_from_checkpoint(state, run_dir, device=given.get("device"), data_dir=given.get("data_dir"))
    for key in sorted(given.keys() - {"epochs", "lr", "device", "data_dir", "threads", "out"}):
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
    cfg = with_overrides(
        saved,
        epochs=given.get("epochs", saved.epochs),
        lr=given.get("lr", saved.lr),
        out=str(run_dir),
        threads=given.get("threads", saved.threads),
    )
    if state["epoch"] >= cfg.epochs:
        raise ConfigError(
            "epochs",
            f"the run in '{path}' already completed {plural(state['epoch'], 'epoch')}; "
            "pass --epochs above that to continue",
        )
    return cfg, state, run_dir


@app.command()
def sweep(
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
    amp: bool = AMP,
    compile: bool = COMPILE,
    threads: str | None = typer.Option(
        None, "--threads", metavar="INT", help="CPU threads per trial [default: the cores shared among --parallel]"
    ),
    target: str | None = TARGET,
    text: str | None = TEXT,
    task: str | None = TASK,
    image_size: str | None = IMAGE_SIZE,
    test: str | None = TEST,
    val_fraction: str | None = typer.Option(
        None, "--val-fraction", metavar="F", help="held out of the training split to judge trials by [default: 0.1]"
    ),
    schedule: str | None = SCHEDULE,
    warmup: str | None = WARMUP,
    step_size: str | None = STEP_SIZE,
    gamma: str | None = GAMMA,
    early_stop: str | None = typer.Option(
        None, "--early-stop", metavar="PATIENCE", help="stop a trial when --metric has not improved for PATIENCE"
    ),
    min_delta: str | None = MIN_DELTA,
    clip_grad: str | None = CLIP_GRAD,
    label_smoothing: str | None = typer.Option(
        None, "--label-smoothing", metavar="X", help="classification: smoothing in [0, 1)"
    ),
    dropout: str | None = DROPOUT,
    augment: bool | None = AUGMENT,
    on_diverge: str | None = ON_DIVERGE,
    trials: str | None = typer.Option(
        None,
        "--trials",
        "-n",
        metavar="N",
        help="trials in all [default: the grid's size when every flag is a list, else 20]",
    ),
    metric: str | None = typer.Option(
        None,
        "--metric",
        metavar="NAME",
        help="val_acc | val_loss: what trials are ranked and pruned by [default: val_acc; val_loss for regression]",
    ),
    timeout: str | None = typer.Option(None, "--timeout", metavar="MIN", help="start no trial after MIN minutes"),
    parallel: str | None = typer.Option(
        None, "--parallel", "-j", metavar="K", help="K trials at once on this machine (K processes)"
    ),
    storage: str | None = typer.Option(
        None,
        "--storage",
        metavar="URL",
        help="postgresql://… or mysql://…: a database many machines share "
        "[default: SQLite sweep.db in the sweep directory]",
    ),
    name: str | None = typer.Option(None, "--name", metavar="NAME", help="the sweep's name (in a shared --storage)"),
    join: str | None = typer.Option(
        None, "--join", metavar="SWEEP_DIR|URL", help="work on an existing sweep (its settings come from it)"
    ),
    resume: str | None = typer.Option(
        None, "--resume", metavar="SWEEP_DIR", help="continue a stopped sweep up to its trials (or a new --trials)"
    ),
    out: str | None = typer.Option(
        None, "--out", "-o", metavar="DIR", help="the sweep directory [default: runs/sweep-<time>]"
    ),
    prune: bool = typer.Option(True, "--prune/--no-prune", help="stop trials below the median early"),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per ended trial and a last one on stdout"),
    worker: bool = typer.Option(False, "--worker", hidden=True),
    sampler_seed: int | None = typer.Option(None, "--sampler-seed", hidden=True),
) -> None:
    """Search settings with Optuna: every config flag may take a list (--model softmax,mlp)
    or a range (--lr 1e-4..1e-1:log, --epochs 2..8); every trial is an ordinary run under
    runs/sweep-<time>/, judged by a validation metric, pruned when hopeless; a leaderboard
    shows live and is written to leaderboard.csv. Exit 0 when a trial finished, 130 on Ctrl+C."""
    from dltui import sweep as sweeps
    from dltui.config import number, usable_cores
    from dltui.sweep_trial import worker_threads

    given = {**_config_flags(locals()), **_run_flags(locals())}
    given.pop("out", None)
    raw_threads = given.pop("threads", None)
    try:
        cores = usable_cores()
        n_threads = number("threads", raw_threads, int, f"1 to {cores}") if raw_threads else None
        if n_threads is not None and not 1 <= n_threads <= cores:
            fail(f"--threads: {n_threads} is out of range (a whole number from 1 to {cores})")
        k = number("parallel", parallel, int, "a whole number >= 1") if parallel else 1
        if k < 1:
            fail(f"--parallel: {k} is out of range (a whole number >= 1)")
        timeout_s = number("timeout", timeout, float, "minutes, such as 30") * 60 if timeout else None
        if timeout_s is not None and timeout_s <= 0:
            fail(f"--timeout: {timeout} is out of range (a positive number of minutes)")
        target = join or resume
        if join and resume:
            fail("--join and --resume: give one (both continue a sweep from where it stands)")
        if target:
            overrides = {key: given.pop(key) for key in ("dataset", "data_dir", "device") if key in given}
            if given or metric or not prune:
                extra = [*given, *(["metric"] if metric else []), *([] if prune else ["prune"])]
                fail(
                    f"--{'join' if join else 'resume'}: a sweep keeps its settings; {_flag_list(extra)} cannot "
                    "change (only --trials, --timeout, --parallel, --threads, --device, --data-dir, --dataset)"
                )
            if worker:  # started by --parallel: the storage's URL comes by the environment
                from dltui.sweep_trial import WORKER_STORAGE

                storage = storage or os.environ.get(WORKER_STORAGE)
            swept = sweeps.attach(
                target, storage=storage, name=name, out=out, trials=trials, overrides=overrides,
                sampler_seed=sampler_seed,
            )  # fmt: skip
            notes: list[str] = []
            fresh = False
        else:
            swept, notes = sweeps.create(
                given, trials=trials, metric=metric, storage=storage, name=name, out=out, prune=prune,
                command=_sweep_command(given, trials, metric, storage, name), sampler_seed=sampler_seed,
            )  # fmt: skip
            fresh = True
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)
    _run_sweep(swept, notes, fresh, k, worker_threads(k, n_threads), timeout, timeout_s, json_out, worker)


def _flag_list(keys: list[str]) -> str:
    return ", ".join("--" + k.replace("_", "-") for k in keys)


def _sweep_command(given: dict[str, Any], trials: Any, metric: Any, storage: Any, name: Any) -> str:
    """The command that made a sweep, for sweep.json (a database password left out)."""
    from dltui.sweep import shown_url

    parts = ["dltui", "sweep"]
    for key, value in given.items():
        if value is True:
            parts.append("--" + key.replace("_", "-"))
        elif value is False:
            parts.append("--no-" + key.replace("_", "-"))
        else:
            parts += ["--" + key.replace("_", "-"), shlex.quote(str(value))]
    for key, value in (("trials", trials), ("metric", metric), ("name", name)):
        if value:
            parts += [f"--{key}", shlex.quote(str(value))]
    if storage:
        parts += ["--storage", shlex.quote(shown_url(storage))]
    return " ".join(parts)


def _run_sweep(swept, notes, fresh, k, threads, timeout, timeout_s, json_out, worker) -> None:
    """Trials in this process (and K-1 more), the live leaderboard, the ending and its code."""
    import time

    from dltui.reporting import SweepReporter
    from dltui.sweep_trial import spawn_workers

    spec = swept.spec
    reporter = SweepReporter(swept, json_out=json_out, own_only=worker)
    if not worker:
        space = " × ".join(f"{d.field} {d.describe()}" for d in spec.space.dims)
        how = f"grid of {spec.space.grid_size}" if spec.sampler == "grid" else "TPE"
        reporter.info(
            f"dltui: sweep {spec.name}: {spec.trials} trials ({how}: {space}), ranked by {spec.metric} on "
            f"{float(spec.fixed.get('val_fraction', 0.1)):.0%} of the training split held out | {swept.dir}"
        )
        for line in notes:
            reporter.info(f"dltui: note: {line}")
    procs: list[Any] = []
    failure = 0
    with _Interrupts() as interrupted, reporter:
        if k > 1:
            args = ["--threads", str(threads)] + (["--timeout", timeout] if timeout else [])
            for key in ("device", "data_dir", "dataset"):
                if key in spec.fixed and not fresh:
                    args += ["--" + key.replace("_", "-"), str(spec.fixed[key])]
            seeds = [spec.seed + i if fresh else None for i in range(1, k)]
            procs = spawn_workers(swept, k - 1, args, seeds)
            reporter.info(f"dltui: {k} workers ({threads} thread{'s' if threads != 1 else ''} each); the others log "
                          f"to {swept.dir}/worker-*.log")  # fmt: skip
        try:
            outcome = swept.work(
                threads=threads, should_stop=interrupted, timeout_s=timeout_s, on_event=reporter.event,
                on_trial=reporter.trial,
            )  # fmt: skip
        except DltuiError as exc:  # the storage went away mid-sweep
            outcome, failure = "failed", exc.exit_code
            reporter.info(f"dltui: error: {exc}")
        forwarded = False
        while procs and any(p.poll() is None for p in procs):
            if interrupted() and not forwarded:
                for p in procs:
                    with contextlib.suppress(OSError):
                        p.send_signal(signal.SIGTERM)  # a second SIGTERM is ignored: they stop once
                forwarded = True
            time.sleep(0.2)
    for i, p in enumerate(procs, 1):
        if p.returncode not in (0, EXIT_INTERRUPTED):
            reporter.info(f"dltui: worker {i} exited with {p.returncode}; see {swept.dir}/worker-{i}.log")
    if interrupted():
        outcome = "stopped"
    reporter.finish(outcome)
    if outcome == "stopped":
        raise typer.Exit(EXIT_INTERRUPTED)
    if failure:
        raise typer.Exit(failure)
    rows = reporter.rows
    if not worker and not any(r.status == "finished" for r in rows):
        codes = [r.exit_code for r in rows if r.exit_code]
        raise typer.Exit(codes[0] if codes else 1)


@app.command("eval")
def eval_cmd(
    path: str = typer.Argument(..., metavar="RUN_DIR|MODEL.PT", help="a run directory or its model.pt"),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="refuse if the checkpoint is for another dataset"),
    model: str | None = typer.Option(None, "--model", "-m", help="refuse if the checkpoint is another model"),
    device: str | None = DEVICE,
    data_dir: str | None = DATA_DIR,
    json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object"),
    which: str | None = typer.Option(
        None,
        "--which",
        metavar="best|last",
        help="a run directory's best.pt (chosen by validation) or model.pt [default: best]",
    ),
) -> None:
    """Rebuild a saved model and evaluate it on the test split."""
    from dltui.evaluation import evaluate_checkpoint

    if which not in (None, "best", "last"):
        fail(f"--which: {which!r} is not one of best, last")
    where, note = Path(os.path.expanduser(path)), None
    if where.is_dir() and which != "last" and not (where / "best.pt").is_file():
        note = f"dltui: note: no best.pt in {path} (the run held no validation out): evaluating its model.pt"
    elif where.is_file() and which is not None:
        note = f"dltui: note: --which chooses a file in a run directory; evaluating {path} as given"
    which = which or "best"
    try:
        result = evaluate_checkpoint(path, dataset=dataset, model=model, device=device, data_dir=data_dir, which=which)
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)
    if note:
        say(note)
    from dltui.reporting import print_evaluation

    print_evaluation(result, json_out)


@app.command()
def datasets(
    name: str | None = typer.Argument(None, metavar="NAME", help="show one dataset in full"),
    data_dir: str | None = DATA_DIR,
) -> None:
    """List the datasets (task, input, classes, sizes, offline), or show one in full."""
    from dltui.config import resolve_data_dir
    from dltui.reporting import print_dataset, print_datasets

    try:
        data_dir = resolve_data_dir(data_dir)
        if name:
            print_dataset(name, data_dir)
        else:
            print_datasets(data_dir)
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)


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


@app.command()
def summary(
    model: str = typer.Argument(
        ..., metavar="MODEL", help="model name (see `dltui models`) or your FILE.py:NAME / package.module:NAME"
    ),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        "-d",
        metavar="NAME|PATH",
        help="the dataset to shape it for, or your data file/folder [default: the one it is made for]",
    ),
    json_out: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
) -> None:
    """Show a model's layers (output shape, parameters, trainable) and its totals: parameters,
    multiply-accumulates and memory per sample, for one dataset."""
    from dltui.config import suggest
    from dltui.models import MODELS

    key = model.strip().lower()
    from dltui.data.sources import looks_like_path

    own = ":" in model or model.strip().endswith(".py")
    own = own or (dataset is not None and (looks_like_path(dataset) or Path(dataset).expanduser().exists()))
    if key not in MODELS and not own:  # said here: the library's error would name a --model flag it lacks
        fail(f"unknown model '{model}'{suggest(key, tuple(MODELS))} (choose from: {', '.join(MODELS)})")
    from dltui.models.summary import summarize, summarize_module
    from dltui.reporting import print_summary

    try:
        if own:  # a user's model or data: shaped through the same resolution a run uses
            from dltui.data import DATASETS, sources
            from dltui.models import build_model
            from dltui.resolve import make_config

            cfg = make_config(model=model, **({"dataset": dataset} if dataset else {}))
            spec = DATASETS[cfg.dataset] if cfg.data_schema is None else sources.load(cfg).spec
            print_summary(summarize_module(build_model(cfg.model, spec), spec, cfg.model_label), json_out)
        else:
            print_summary(summarize(key, dataset), json_out)
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)


@app.command()
def inspect(
    path: str = typer.Argument(..., metavar="PATH", help="a CSV/TSV file or an image folder"),
    target: str | None = TARGET,
    text: str | None = TEXT,
    task: str | None = TASK,
    image_size: str | None = IMAGE_SIZE,
    test: str | None = TEST,
    seed: str | None = SEED,
) -> None:
    """Show what dltui infers from your data: columns and their types, what is dropped and
    why, the target and its classes, split sizes, input shape and the models that fit."""
    from dltui.data.sources import inspect as inspect_data
    from dltui.reporting import print_inspection
    from dltui.resolve import make_config

    settings = {"target": target, "text": text, "task": task, "image_size": image_size, "test": test, "seed": seed}
    try:
        cfg = make_config(dataset=path, **{k: v for k, v in settings.items() if v is not None})
        spec, data = inspect_data(cfg)
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)
    flags = "".join(f" --{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in settings.items() if v is not None)
    print_inspection(spec, data, flags)


@app.command()
def control(
    path: str = typer.Argument(..., metavar="RUN_DIR", help="the directory of a live run"),
    lr: str | None = typer.Option(None, "--lr", metavar="FLOAT", help="set the learning rate from now on"),
    checkpoint: bool = typer.Option(False, "--checkpoint", help="save a checkpoint now (checkpoint-e<E>-s<S>.pt)"),
    stop_after_epoch: bool = typer.Option(False, "--stop-after-epoch", help="stop once this epoch is written"),
) -> None:
    """Steer a live run from another terminal: the same requests the app's keys send."""
    from dltui.config import user_path
    from dltui.engine.callbacks import send
    from dltui.runs import is_run_dir, lock_held

    requests: list[tuple[str, float | None]] = []
    if lr is not None:
        try:
            requests.append(("lr", float(lr)))
        except ValueError:
            fail(f"--lr: {lr!r} is not a number")
    if checkpoint:
        requests.append(("checkpoint", None))
    if stop_after_epoch:
        requests.append(("stop-after-epoch", None))
    if not requests:
        fail("nothing to send: give --lr, --checkpoint or --stop-after-epoch")
    try:
        where = user_path("path", path)
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)
    if not where.is_dir() or not is_run_dir(where):
        fail(f"'{path}' is not a run directory (no config.json or metrics.csv in it)")
    if not lock_held(where):
        fail(f"'{path}' is not running: requests go to a live run")
    for kind, value in requests:
        try:
            send(where, kind, value)
        except ValueError as exc:
            fail(f"--{kind}: {exc}")
        except OSError as exc:
            fail(f"cannot write to '{where}' ({exc.strerror})", 5)
    say(f"sent to {where}: " + ", ".join(k if v is None else f"{k} {v:g}" for k, v in requests), err=False)


@app.command()
def watch(
    path: str = typer.Argument(..., metavar="RUN_DIR", help="the run directory to follow"),
    images: str = typer.Option("auto", "--images", metavar="MODE", help="auto | halfblock"),
    runs_dir: str | None = RUNS_DIR,
) -> None:
    """Open the app attached to one run: live while it trains, its final state after."""
    from dltui.config import user_path
    from dltui.runs import is_run_dir

    try:
        where = user_path("path", path)
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)
    if not where.is_dir() or not is_run_dir(where):
        fail(f"'{path}' is not a run directory (no config.json or metrics.csv in it)")
    if images not in ("auto", "halfblock"):
        fail(f"--images: {images!r} is not one of auto, halfblock")
    from dltui.tui.app import run_app

    raise typer.Exit(run_app({}, False, images, runs_dir=_runs_dir(runs_dir), watch=str(where)))


@app.command()
def runs(
    runs_dir: str | None = RUNS_DIR,
    json_out: bool = typer.Option(False, "--json", help="one JSON array of runs on stdout"),
) -> None:
    """List the runs under the runs directory, newest first, with their status (running,
    finished, stopped, failed, crashed)."""
    from dltui.reporting import print_runs
    from dltui.runs import scan

    print_runs(scan(Path(_runs_dir(runs_dir))), json_out)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", metavar="ADDR", help="address to listen on (the default: local)"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, metavar="INT", help="port to listen on"),
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
    start: bool = typer.Option(False, "--start", help="each new tab begins training at once"),
    runs_dir: str | None = RUNS_DIR,
) -> None:
    """Serve the app in a browser (textual-serve); the app's flags pass through to each tab."""
    from dltui.serve import serve as serve_app

    options = {**_config_flags(locals()), **({"runs_dir": runs_dir} if runs_dir else {})}
    try:
        serve_app(host, port, options, start)
    except DltuiError as exc:
        fail(str(exc), exc.exit_code)


def _quiet_streams() -> None:
    """Point stdout and stderr at /dev/null once they fail (a closed pipe, a gone terminal,
    a full disk), so neither a flush at exit nor a late write turns into an error."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)


def main() -> None:
    """The console entry point. Output that cannot be encoded (`PYTHONIOENCODING=ascii`
    and a non-ASCII path) is escaped, not fatal; output that cannot be written is dropped:
    the exit code says what happened to the work, not to stdout (see the README's table).

    Once torch is loaded, and when no other thread still has work to finish, it leaves
    without interpreter teardown: the CUDA build's native libraries touch ~100 MB of fresh
    pages in their exit-time destructors, which made that the peak of a whole 60k cnn run
    (measured 943 MB with teardown, 839 MB without). Every file a command writes is closed
    (and fsynced) before it returns."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    try:
        app(prog_name="dltui")
        code: int | str | None = 0
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # Ctrl+C before a run installed its own handler (importing torch)
        say("dltui: interrupted")
        code = EXIT_INTERRUPTED
    _quiet_streams()
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if "torch" not in sys.modules or busy or not isinstance(code, int | None):
        sys.exit(code)
    os._exit(code or 0)


if __name__ == "__main__":
    main()
