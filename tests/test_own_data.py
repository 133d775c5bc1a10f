"""Your own data and model through the whole product: `--dataset PATH`, `--model FILE:NAME`,
`dltui inspect`, runs that resume and evaluate from the saved schema, the course's layouts."""

from __future__ import annotations

import ast
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli, one_line_error
from PIL import Image

from dltui.data import shipped, sources
from dltui.engine.checkpoint import config_from_checkpoint, load_checkpoint
from dltui.resolve import make_config

ROOT = Path(__file__).resolve().parents[1]


def titanic_like(path: Path, n: int = 300, seed: int = 0) -> Path:
    rnd = random.Random(seed)
    rows = ["PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked"]
    for i in range(n):
        sex, pclass = rnd.choice(["male", "female"]), rnd.choice([1, 2, 3])
        survived = int((sex == "female") ^ (rnd.random() < 0.15))
        age = "" if rnd.random() < 0.2 else str(rnd.randint(1, 70))
        cabin = f"C{rnd.randint(1, 120)}" if rnd.random() < 0.2 else ""
        rows.append(
            f'{i + 1},{survived},{pclass},"Surname{i}, Mr. Given{i}",{sex},{age},{rnd.randint(0, 3)},'
            f"{rnd.randint(0, 2)},T{rnd.randint(10000, 99999)}{i},{rnd.uniform(5, 200):.2f},{cabin},{rnd.choice('SCQ')}"
        )
    path.write_text("\n".join(rows) + "\n")
    return path


def diabetes_like(path: Path, n: int = 300, seed: int = 0) -> Path:
    """The course's data-diabetes.csv layout: no header, 8 floats in [-1, 1], a 0/1 label last."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 8))
    y = (x[:, 1] + 0.5 * x[:, 5] + rng.normal(0, 0.3, n) > 0).astype(int)
    rows = (",".join(f"{v:.6f}" for v in row) + f",{label}" for row, label in zip(x, y, strict=True))
    path.write_text("\n".join(rows) + "\n")
    return path


def names_csv(path: Path, per_language: int = 60) -> Path:
    """The course's names_train.csv layout (`name,country`, no header), from the shipped names."""
    lines = []
    for f in sorted(shipped("names").iterdir(), key=lambda t: t.name):
        if f.name.endswith(".txt"):
            names = [n for n in f.read_text(encoding="utf-8").splitlines() if n.strip()][:per_language]
            lines += [f'"{n}",{f.name[:-4]}' for n in names]
    random.Random(0).shuffle(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def image_folder(root: Path, size: int = 28, per_class: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for k, name in enumerate(["circle", "square", "cross"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            a = rng.integers(0, 60, (size, size), dtype=np.uint8)
            a[k * 8 : k * 8 + 8, :] = 255  # a class-specific band: learnable
            Image.fromarray(a).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_titanic_like_table_trains_resumes_and_evaluates_from_its_schema(tmp_path):
    csv = titanic_like(tmp_path / "train.csv")
    out = tmp_path / "run"
    result = cli("run", "--dataset", str(csv), "--target", "Survived", "--epochs", "3", "--out", str(out),
                 "--threads", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "dropped columns" in result.output and "PassengerId" in result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["dataset"] == str(csv.resolve()) and saved["target"] == "Survived"
    schema = saved["data_schema"]
    assert schema and json.dumps(schema)
    assert out.name == "run" and load_checkpoint(out)["config"]["data_schema"] == schema

    # the file changes afterwards: new rows with a category never seen. The run keeps its encoders.
    with open(csv, "a") as f:
        f.write('9999,1,1,"New, Mrs. X",female,30,0,0,T1,5000.0,,Z\n')
    cfg = config_from_checkpoint(load_checkpoint(out), out)
    assert cfg.data_schema == schema
    # the same feature width as trained, although a fresh inference would see a new level
    assert sources.load(cfg).x_train.shape[1] == load_checkpoint(out)["model"]["1.weight"].shape[1]
    again = cli("eval", str(out), "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["n_test"] > 0
    resumed = cli("run", "--resume", str(out), "--epochs", "4")
    assert resumed.exit_code == 0, resumed.output


def test_the_run_rebuilds_the_same_features_as_it_trained_on(tmp_path):
    csv = titanic_like(tmp_path / "t.csv")
    cfg = make_config(dataset=str(csv), target="Survived")
    first = sources.load(cfg)
    rebuilt = sources.load(make_config(**{**cfg.to_dict()}))
    assert torch.equal(first.x_train, rebuilt.x_train) and torch.equal(first.y_test, rebuilt.y_test)
    assert first.task == "binary" and first.spec.path == str(csv.resolve())


def test_course_diabetes_layout_needs_no_flags(tmp_path):
    csv = diabetes_like(tmp_path / "data-diabetes.csv")
    cfg = make_config(dataset=str(csv))
    data = sources.load(cfg)
    assert data.task == "binary" and data.spec.input_shape == (8,) and cfg.model == "mlp"
    result = cli("run", "--dataset", str(csv), "--model", "logreg", "--epochs", "20", "--lr", "0.05",
                 "--out", str(tmp_path / "r"), "--json", "--threads", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    final = [json.loads(line) for line in result.stdout.splitlines()][-1]
    assert final["final_test_acc"] > 0.75


def test_course_names_layout_trains_a_gru_on_characters(tmp_path):
    csv = names_csv(tmp_path / "names_train.csv")
    cfg = make_config(dataset=str(csv), text="0", epochs=4)
    data = sources.load(cfg)
    assert data.spec.kind == "sequence" and cfg.model == "gru" and len(data.classes) == 17
    vocab = data.extras["vocab"]
    word = "".join(vocab[c - 1] for c in data.x_train[0].tolist() if c)
    assert word and word[0].isupper()  # ids decode back to a surname
    result = cli("run", "--dataset", str(csv), "--text", "0", "--epochs", "4", "--out", str(tmp_path / "r"),
                 "--json", "--threads", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    final = [json.loads(line) for line in result.stdout.splitlines()][-1]
    assert final["final_test_acc"] > 3 / 17  # well above chance


def test_image_folder_with_the_course_model_file(tmp_path):
    root = image_folder(tmp_path / "shapes")
    model = f"{ROOT / 'examples' / 'course_cnn.py'}:Net"
    out = tmp_path / "r"
    result = cli("run", "--dataset", str(root), "--model", model, "--epochs", "3", "--out", str(out),
                 "--json", "--threads", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"].endswith("course_cnn.py:Net")
    assert saved["data_schema"]["classes"] == ["circle", "cross", "square"]
    assert (out / "confusion.csv").read_text().splitlines()[0] == "true\\pred,circle,cross,square"
    again = cli("eval", str(out), "--json")
    assert again.exit_code == 0, again.output


def test_inspect_prints_what_was_inferred(tmp_path):
    csv = titanic_like(tmp_path / "train.csv")
    result = cli("inspect", str(csv), "--target", "Survived")
    assert result.exit_code == 0, result.output
    for text in ("PassengerId", "dropped", "Age_missing", "binary", "models that fit", "--target Survived"):
        assert text in result.output, text
    built_in = cli("inspect", "digits")
    assert built_in.exit_code == 2 and "built-in" in one_line_error(built_in)


@pytest.mark.parametrize(
    ("name", "content", "args", "says"),
    [
        ("missing.csv", None, (), "no such file"),
        ("empty.csv", "", (), "empty"),
        ("t.csv", "a,b,c\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n", ("--target", "nope"), "nope"),
        ("bin.csv", b"\x00\x01\x02PK\x03\x04" * 200, (), "bin.csv"),
        ("t.csv", "a,b\n1,2\n", ("--image-size", "28"), "image folder"),
    ],
)
def test_bad_own_data_is_one_line_exit_2(tmp_path, name, content, args, says):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = cli("run", "--dataset", str(path), *args, "--epochs", "1", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2, result.output
    assert says in one_line_error(result)
    assert not (tmp_path / "r").exists()  # nothing written for a refused run


def test_own_data_flags_are_refused_for_a_built_in_dataset():
    result = cli("run", "--dataset", "digits", "--target", "x", "--epochs", "1")
    assert result.exit_code == 2 and "built in" in one_line_error(result)


def test_a_model_without_trainable_parameters_is_refused_before_any_file(tmp_path):
    frozen = tmp_path / "frozen.py"
    frozen.write_text(
        "import torch\n"
        "def Net(in_shape, num_outputs):\n"
        "    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(num_outputs))\n"
        "    net(torch.zeros(1, *in_shape))\n"
        "    net.requires_grad_(False)\n"
        "    return net\n"
    )
    result = cli("run", "--model", f"{frozen}:Net", "--epochs", "1", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "no trainable parameters" in one_line_error(result)
    assert not (tmp_path / "r").exists()


def test_model_file_errors_are_one_line_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__(\n")
    result = cli("run", "--model", f"{bad}:Net", "--epochs", "1")
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "bad.py" in line and ":4" in line


def test_config_is_the_ground_floor():
    """config.py imports nothing of dltui but errors; data and models never import the
    layers above them (resolve, engine, cli, tui): no circle between settings and catalogues."""
    pkg = ROOT / "dltui"

    def imports(path: Path) -> set[str]:
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dltui"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("dltui")}
        return found

    assert imports(pkg / "config.py") <= {"dltui.errors"}
    for folder in ("data", "models"):
        for path in (pkg / folder).glob("*.py"):
            above = {m for m in imports(path) if m.split(".")[1] in ("resolve", "engine", "cli", "tui", "reporting")}
            assert not above, f"{path.name} imports {above}"


def test_summary_takes_a_model_file_and_a_data_path(tmp_path):
    model = f"{ROOT / 'examples' / 'course_cnn.py'}:Net"
    result = cli("summary", model, "--dataset", "mnist")
    assert result.exit_code == 0, result.output
    assert "conv1 (Conv2d)" in result.output and "8,490" in result.output
    csv = diabetes_like(tmp_path / "d.csv")
    table = cli("summary", "mlp", "--dataset", str(csv))
    assert table.exit_code == 0, table.output
    assert "2,561" in table.output  # 8*256+256 + 256*1+1


def test_newcomer_refusals_are_one_line(tmp_path):
    floats = tmp_path / "floats.csv"
    rng = np.random.default_rng(0)
    floats.write_text("x,y\n" + "\n".join(f"{a:.4f},{b:.6f}" for a, b in rng.normal(size=(300, 2))) + "\n")
    forced = cli("inspect", str(floats), "--task", "classification")
    assert forced.exit_code == 2 and "too many to be classes" in one_line_error(forced)
    swept = cli("sweep", "--dataset", "digits,xor", "--epochs", "1", "--out", str(tmp_path / "s"))
    assert swept.exit_code == 2 and "one dataset" in one_line_error(swept)
    split = cli("run", "--nproc", "3", "--batch-size", "32", "--epochs", "1", "--out", str(tmp_path / "r"))
    assert split.exit_code == 2 and "does not split over 3 ranks" in one_line_error(split)
    hint = cli("--lr", "0.1", "runs")
    assert hint.exit_code == 2 and "dltui run --lr" in one_line_error(hint)
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


def test_eval_says_which_file_it_evaluates(tmp_path):
    run = tmp_path / "r"
    assert cli("run", "--epochs", "1", "--out", str(run), "--threads", "1").exit_code == 0
    result = cli("eval", str(run))
    assert result.exit_code == 0 and "no best.pt" in result.output
    as_given = cli("eval", str(run / "model.pt"), "--which", "best")
    assert as_given.exit_code == 0 and "evaluating" in as_given.output
