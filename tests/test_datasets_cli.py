"""`dltui datasets` at the width of a plain terminal, and `dltui datasets NAME`."""

from __future__ import annotations

import io

from rich.console import Console
from typer.testing import CliRunner

from dltui.cli import app
from dltui.data import DATASETS, shipped
from dltui.reporting import print_dataset, print_datasets

PLAIN_80 = {"COLUMNS": "80", "NO_COLOR": "1"}


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env or PLAIN_80)


def expected_row(spec, offline: str) -> list[str]:
    classes = str(len(spec.classes)) if spec.classes else "-"
    shape = "x".join(map(str, spec.input_shape))
    return [spec.name, spec.task, shape, classes, f"{spec.train_size:,}", f"{spec.test_size:,}", offline]


def test_table_fits_80_columns_without_wrapping_a_cell():
    out = io.StringIO()
    print_datasets("tv", Console(file=out, width=80, no_color=True, highlight=False))
    lines = out.getvalue().splitlines()
    assert max(len(ln.rstrip()) for ln in lines) <= 80
    assert "…" not in out.getvalue()  # nothing cut short either
    rows = [ln.split() for ln in lines if ln.split() and ln.split()[0] in DATASETS]
    # one line per dataset, every cell whole: a wrapped cell would split a row over lines
    assert [r[0] for r in rows] == list(DATASETS)
    for row, spec in zip(rows, DATASETS.values(), strict=True):
        assert row == expected_row(spec, "download" if spec.needs_data_dir else "yes")


def test_command_at_80_columns(tmp_path):
    result = invoke("datasets", "--data-dir", str(tmp_path / "tv"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"data dir: {tmp_path / 'tv'}" in lines
    assert max(len(ln.rstrip()) for ln in lines if not ln.startswith("data dir: ")) <= 80
    assert sum(1 for ln in lines if ln.split() and ln.split()[0] in DATASETS) == len(DATASETS)


def test_one_dataset_in_full():
    result = invoke("datasets", "names")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # rich wraps long values at 80 columns
    assert text.startswith("names: surname -> language of origin")
    assert "sequence, 17 classes" in text
    assert "Arabic, Chinese, Czech" in text and "Vietnamese" in text
    assert "15,846 train / 3,961 test (80/20, drawn by --seed)" in text
    assert "--model gru --epochs 10 --batch-size 256 --lr 0.001 --optimizer adam" in text
    assert "gru (recommended)" in text and "lstm" in text
    assert "BSD-3-Clause" in text
    assert "README.md" in text and "offline yes" in text
    where = str(shipped("names"))
    assert where in result.stdout.replace("\n", "").replace(" ", "") or where in text
    assert max(len(ln.rstrip()) for ln in result.stdout.splitlines()) <= 80


def test_torchvision_dataset_in_full(tmp_path):
    out = io.StringIO()
    print_dataset("MNIST", str(tmp_path / "tv"), Console(file=out, width=200, no_color=True))
    text = out.getvalue()
    assert "60,000 train / 10,000 test (the official split)" in text
    assert f"{tmp_path / 'tv' / 'MNIST' / 'raw'} (under --data-dir)" in text
    assert "no: the first run downloads it" in text
    assert "cnn (recommended)" in text and "gru" not in text


def test_regression_dataset_in_full():
    result = invoke("datasets", "linear", env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "regression, one output" in result.stdout
    assert "linreg (recommended), mlp, deep-mlp" in result.stdout


def test_unknown_dataset_name():
    result = invoke("datasets", "minst")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "dltui: error: unknown dataset 'minst'; did you mean 'mnist'? (choose from: " + ", ".join(DATASETS) + ")"
    ]
