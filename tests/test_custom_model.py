"""The user's own model (``FILE.py:NAME``, ``package.module:NAME``): loading, the facts its
signature is given, every refusal in one line naming the file and line, and a short run
whose checkpoint holds only tensors."""

from __future__ import annotations

import dataclasses
import os
import sys
import textwrap
import uuid
import zipfile
from pathlib import Path

import pytest
import torch

from dltui.data import DATASETS, TASKS
from dltui.errors import ConfigError
from dltui.models import MODELS, build_model, count_params, param_count, resolve_model
from dltui.models.custom import CustomModelSpec, facts, label, probe_batch, probe_custom

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "course_cnn.py"
MNIST, DIGITS, XOR, NAMES = (DATASETS[n] for n in ("mnist", "digits", "xor", "names"))
BINARY = DATASETS["breast-cancer"]

HEADER = "import torch\nfrom torch import nn\n"


def write(path: Path, body: str) -> Path:
    """A model file: the torch imports, then ``body`` dedented (line numbers count from 3)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def refusal(ref: str, spec=MNIST) -> str:
    """The one-line message a reference is refused with, at load or for ``spec``."""
    try:
        why = resolve_model(ref).incompatibility(spec)
    except ConfigError as exc:
        assert exc.field == "model"
        why = str(exc)
    assert why is not None, f"{ref} was accepted"
    assert "\n" not in why
    return why


TINY = """
class Tiny(nn.Module):
    \"\"\"Flatten and one linear layer.

    More text that is not the description.\"\"\"

    def __init__(self, in_features, num_classes):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))
"""


# --- references ------------------------------------------------------------------------


def test_file_reference_is_made_absolute_and_builds_from_elsewhere(tmp_path, monkeypatch):
    write(tmp_path / "nets.py", TINY)
    spec = resolve_model("nets.py:Tiny")
    assert isinstance(spec, CustomModelSpec)
    assert spec.name == f"{tmp_path / 'nets.py'}:Tiny"
    assert spec.description == "Flatten and one linear layer."
    assert spec.tasks == TASKS and spec.kinds == ("image", "vector", "sequence")
    assert spec.incompatibility(MNIST) is None
    # a saved config's name rebuilds it from any working directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    net = build_model(spec.name, MNIST)
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert param_count(spec.name, MNIST) == count_params(net) == 784 * 10 + 10


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path / "mine.py", TINY)
    assert resolve_model("~/mine.py:Tiny").name == f"{tmp_path / 'mine.py'}:Tiny"


def test_module_reference(tmp_path, monkeypatch):
    pkg = f"pkg_{uuid.uuid4().hex[:8]}"  # fresh per test: sys.modules outlives a test
    (tmp_path / "lib" / pkg).mkdir(parents=True)
    (tmp_path / "lib" / pkg / "__init__.py").write_text("")
    write(tmp_path / "lib" / pkg / "models.py", TINY)
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    spec = resolve_model(f" {pkg}.models:Tiny ")
    assert spec.name == f"{pkg}.models:Tiny"
    assert resolve_model(spec.name) is spec
    assert build_model(spec.name, XOR)(torch.zeros(2, 3)).shape == (2, 8)


def test_module_import_error_names_the_line(tmp_path, monkeypatch):
    pkg = f"pkg_{uuid.uuid4().hex[:8]}"
    write(tmp_path / "lib" / pkg / "__init__.py", "")
    write(tmp_path / "lib" / pkg / "broken.py", "x = 1\nraise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    msg = refusal(f"{pkg}.broken:Net")
    assert "RuntimeError: no GPU here" in msg and "broken.py:4" in msg
    assert "no module named 'nosuch_pkg_x'" in refusal("nosuch_pkg_x.models:Net")
    write(tmp_path / "mymodels_x.py", TINY)  # in the current folder, which is not on sys.path
    assert refusal("mymodels_x:Tiny").endswith("; for the file in this folder write mymodels_x.py:Tiny")


def test_registry_names_and_unknown_names():
    assert resolve_model("cnn") is MODELS["cnn"]
    assert resolve_model(" CNN ") is MODELS["cnn"]
    msg = refusal("cnnn")
    assert msg.startswith("--model: unknown value 'cnnn'; did you mean 'cnn'?")
    assert "write nets.py:NAME" in refusal("nets.py")  # a file without the model's name


def test_label_is_short_and_safe_for_a_directory(tmp_path):
    assert label(f"{tmp_path}/course_cnn.py:Net") == "course_cnn.Net"
    assert label("pkg.mod:Net") == "pkg.mod.Net"
    assert label("cnn") == "cnn"


# --- what the model is told --------------------------------------------------------------

RECORDER = """
SEEN = []

class Shaped(nn.Module):
    def __init__(self, in_shape, num_outputs, hidden=7):
        super().__init__()
        SEEN.append(("Shaped", in_shape, num_outputs, hidden))
        self.fc = nn.Linear(in_shape[-1], num_outputs)

    def forward(self, x):
        return self.fc(x.flatten(1))

def anything(**kwargs):
    SEEN.append(("anything", kwargs))
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(kwargs["num_outputs"]))

class Bare(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 8)

    def forward(self, x):
        return self.fc(x)

class NoInit(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10] * 2

def aliases(num_classes, in_features, in_channels=None, vocab_size=None):
    SEEN.append(("aliases", num_classes, in_features, in_channels, vocab_size))
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))

def needs_channels(in_channels):
    return nn.Conv2d(in_channels, 1, 1)
"""


@pytest.fixture
def recorder(tmp_path):
    write(tmp_path / "rec.py", RECORDER)
    seen = sys.modules[resolve_model("rec.py:Bare").builder.args[0].__module__].SEEN
    seen.clear()
    return seen


def test_class_gets_in_shape_and_num_outputs(recorder):
    build_model("rec.py:Shaped", MNIST)
    assert recorder == [("Shaped", (1, 28, 28), 10, 7)]


def test_kwargs_get_the_three_facts(recorder):
    build_model("rec.py:anything", MNIST)
    build_model("rec.py:anything", NAMES)
    assert recorder == [
        ("anything", {"in_shape": (1, 28, 28), "num_outputs": 10}),
        ("anything", {"in_shape": (20,), "num_outputs": 17, "vocab_size": NAMES.vocab_size}),
    ]


def test_aliases(recorder):
    build_model("rec.py:aliases", MNIST)
    build_model("rec.py:aliases", BINARY)
    assert recorder == [("aliases", 10, 784, 1, None), ("aliases", 1, 30, None, None)]
    assert facts(NAMES) == {"in_shape": (20,), "num_outputs": 17, "num_classes": 17, "vocab_size": NAMES.vocab_size}


def test_classes_without_arguments(recorder):
    assert resolve_model("rec.py:Bare").incompatibility(XOR) is None
    assert resolve_model("rec.py:NoInit").incompatibility(MNIST) is None  # nn.Module's own __init__: no kwargs


def test_a_fact_the_data_lacks_is_a_misfit(recorder):
    assert (
        refusal("rec.py:needs_channels", XOR) == "needs_channels needs 'in_channels', which vector data does not have"
    )


def test_unfillable_parameter_refused_at_once(tmp_path):
    write(tmp_path / "hid.py", "def mlp(in_shape, hidden):\n    return nn.Identity()\n")
    msg = refusal("hid.py:mlp")
    assert "mlp needs 'hidden'" in msg and "give it a default" in msg


def test_sequence_probe_feeds_tokens_not_padding(tmp_path):
    # packing refuses empty sequences: an all-zeros (all-padding) probe would fail this model
    write(
        tmp_path / "seq.py",
        """
        from torch.nn.utils.rnn import pack_padded_sequence

        class Packed(nn.Module):
            def __init__(self, vocab_size, num_outputs):
                super().__init__()
                self.emb = nn.Embedding(vocab_size, 8, padding_idx=0)
                self.rnn = nn.GRU(8, 8, batch_first=True)
                self.fc = nn.Linear(8, num_outputs)

            def forward(self, x):
                lengths = (x != 0).sum(1).cpu()
                packed = pack_padded_sequence(self.emb(x), lengths, batch_first=True, enforce_sorted=False)
                return self.fc(self.rnn(packed)[1][-1])
        """,
    )
    spec = resolve_model("seq.py:Packed")
    assert probe_batch(NAMES).dtype == torch.long and bool((probe_batch(NAMES) != 0).all())
    assert spec.incompatibility(NAMES) is None
    with pytest.raises(ConfigError, match=r"forward pass on a \(2, 20\) batch failed: .*seq\.py:15"):
        probe_custom(NAMES, spec, torch.zeros(2, 20, dtype=torch.long))


def test_probe_leaves_the_random_state_alone(tmp_path):
    write(tmp_path / "nets.py", TINY)
    spec = resolve_model("nets.py:Tiny")
    torch.manual_seed(0)
    spec.incompatibility(DIGITS)
    param_count(spec.name, XOR)
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3))


def test_normal_init_applies(tmp_path):
    write(tmp_path / "nets.py", TINY)
    net = build_model("nets.py:Tiny", MNIST, init="normal")
    assert float(net.fc.bias.detach().abs().max()) == 0.0
    assert 0.005 < float(net.fc.weight.detach().std()) < 0.02


def test_edited_file_is_loaded_again_and_siblings_import(tmp_path):
    write(tmp_path / "layers.py", "WIDTH = 10\n")
    path = write(tmp_path / "net.py", "import layers\ndef make():\n    return nn.Linear(3, layers.WIDTH)\n")
    before = list(sys.path)
    first = resolve_model("net.py:make")
    assert sys.path == before  # the file's folder was on it only while importing
    assert resolve_model("net.py:make") is first  # cached: one probe per version of the file
    assert "returns (2, 10), the data has 8 classes" in first.incompatibility(XOR)
    path.write_text(HEADER + "def make():\n    return nn.Linear(3, 8)\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = resolve_model("net.py:make")
    assert second is not first and second.incompatibility(XOR) is None
    assert not (tmp_path / "__pycache__" / "net.cpython").exists()


# --- refusals: one line, the file and the line ----------------------------------------------


def test_missing_file_directory_and_not_python(tmp_path):
    assert "nope.py does not exist" in refusal("nope.py:Net")
    (tmp_path / "notes.txt").write_text("hello")
    assert "notes.txt is not a Python file (.py)" in refusal("notes.txt:Net")
    (tmp_path / "models.py").mkdir()
    assert "'models.py' is a folder" in refusal("models.py:Net")
    assert "nothing follows the colon" in refusal("x.py:")
    assert "'1x' is not a Python name" in refusal("x.py:1x")


def test_syntax_error(tmp_path):
    write(tmp_path / "bad.py", "class Net(nn.Module)\n    pass\n")
    msg = refusal("bad.py:Net")
    assert msg.startswith("--model: cannot load 'bad.py:Net': SyntaxError: ")
    assert msg.endswith("(bad.py:3)")


def test_import_error_inside_the_file(tmp_path):
    write(tmp_path / "imp.py", "\nimport torchvisionn\n")
    msg = refusal("imp.py:Net")
    assert "ModuleNotFoundError: No module named 'torchvisionn' (imp.py:4)" in msg


def test_exit_at_import_is_refused(tmp_path):
    write(tmp_path / "script.py", "import sys\nsys.exit(2)\n")
    assert "SystemExit: 2 (script.py:4)" in refusal("script.py:Net")


def test_name_missing_suggests_close_names(tmp_path):
    write(tmp_path / "course.py", TINY + "\ndef helper():\n    pass\n")
    msg = refusal("course.py:tiny")
    assert msg == "--model: 'course.py' has no 'tiny'; did you mean 'Tiny'? (it defines Tiny, helper)"
    assert "did you mean 'Tiny'?" in refusal("course.py:Tni")
    assert "did you mean" not in refusal("course.py:Classifier")


def test_name_of_the_wrong_kind(tmp_path):
    write(tmp_path / "kinds.py", "SIZE = 3\nclass Config:\n    pass\nmodel = nn.Linear(2, 2)\n")
    assert "'kinds.py:SIZE' is an int, not an nn.Module class" in refusal("kinds.py:SIZE")
    assert "'kinds.py:Config' is a class but not an nn.Module subclass" in refusal("kinds.py:Config")
    assert "'kinds.py:model' is a model instance" in refusal("kinds.py:model")


def test_constructor_raising(tmp_path):
    write(
        tmp_path / "ctor.py",
        """
        def width(in_shape):
            return in_shape[3]  # the innermost line of the user's file is the one named

        class Net(nn.Module):
            def __init__(self, in_shape):
                super().__init__()
                self.fc = nn.Linear(width(in_shape), 10)
        """,
    )
    msg = refusal("ctor.py:Net")
    assert msg == "Net(...) raised IndexError: tuple index out of range (ctor.py:5)"
    with pytest.raises(ConfigError, match=r"^--model: Net\(\.\.\.\) raised IndexError: .* \(ctor\.py:5\)$"):
        build_model("ctor.py:Net", MNIST)  # what the engine and eval call


def test_result_not_a_module(tmp_path):
    write(tmp_path / "fn.py", "def layers(in_shape):\n    return [nn.Linear(in_shape[0], 8)]\n")
    assert refusal("fn.py:layers", XOR) == "layers(...) returned a list, not an nn.Module"


def test_forward_failing(tmp_path):
    write(
        tmp_path / "fwd.py",
        """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(500, 10)

            def forward(self, x):
                x = x.flatten(1)
                return self.fc(x)
        """,
    )
    msg = refusal("fwd.py:Net")
    assert msg.startswith("Net's forward pass on a (2, 1, 28, 28) batch failed: RuntimeError: mat1 and mat2")
    assert msg.endswith("(fwd.py:11)")


def test_too_small_images_are_named(tmp_path):
    write(
        tmp_path / "conv.py",
        "def net():\n    return nn.Sequential(nn.Conv2d(1, 4, 9), nn.Flatten(), nn.LazyLinear(10))\n",
    )
    assert refusal("conv.py:net", DIGITS).startswith(
        "net's forward pass on a (2, 1, 8, 8) batch failed: the 8x8 images"
    )


def test_output_shape_for_each_task(tmp_path):
    write(tmp_path / "out.py", "def five():\n    return nn.Sequential(nn.Flatten(), nn.LazyLinear(5))\n")
    assert refusal("out.py:five") == "five returns (2, 5), the data has 10 classes: (2, 10) expected"
    write(tmp_path / "flat.py", "def flat():\n    return nn.Sequential(nn.Linear(30, 1), nn.Flatten(0))\n")
    assert refusal("flat.py:flat", BINARY) == (
        "flat returns (2,), binary data needs one logit per sample: (2, 1) expected"
    )
    write(tmp_path / "ids.py", "class Ids(nn.Module):\n    def forward(self, x):\n        return x.flatten(1).long()\n")
    assert "returns torch.int64 values" in refusal("ids.py:Ids", XOR)
    write(tmp_path / "pair.py", "class Pair(nn.Module):\n    def forward(self, x):\n        return x, x\n")
    assert refusal("pair.py:Pair", XOR) == "Pair returns a tuple, not a tensor of outputs"


# --- the example ---------------------------------------------------------------------------


def test_example_net_is_the_course_cnn():
    ref = f"{EXAMPLE}:Net"
    assert resolve_model(ref).incompatibility(MNIST) is None
    net = build_model(ref, MNIST)
    assert [type(m).__name__ for m in net.children()] == ["Conv2d", "Conv2d", "MaxPool2d", "Linear"]
    assert (net.conv1.in_channels, net.conv1.out_channels, net.conv1.kernel_size) == (1, 10, (5, 5))
    assert (net.conv2.in_channels, net.conv2.out_channels) == (10, 20)
    assert (net.fc.in_features, net.fc.out_features) == (320, 10)
    assert net(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert build_model(ref, DATASETS["cifar10"]).fc.in_features == 500  # 3x32x32: 20 x 5 x 5
    msg = refusal(ref, DIGITS)
    assert "Net needs images of at least 16x16 pixels, these are 8x8" in msg
    assert "course_cnn.py:" in msg


def test_example_function_returns_a_model():
    ref = f"{EXAMPLE}:wide_mlp"
    for spec in (DIGITS, XOR, BINARY):
        assert resolve_model(ref).incompatibility(spec) is None, spec.name
    assert build_model(ref, DIGITS)[1].out_features == 512


# --- a run ------------------------------------------------------------------------------


def test_a_run_trains_and_its_checkpoint_holds_no_code(tmp_path, monkeypatch):
    from helpers import run_events

    from dltui.engine import RunFinished
    from dltui.engine.checkpoint import load_checkpoint
    from dltui.resolve import make_config

    write(tmp_path / "tiny.py", TINY)
    cfg = make_config(dataset="digits", model="tiny.py:Tiny", epochs=1, out=str(tmp_path / "run"))
    assert cfg.model == f"{tmp_path / 'tiny.py'}:Tiny"
    result, _ = run_events(cfg)
    assert isinstance(result, RunFinished)
    state = load_checkpoint(tmp_path / "run")  # weights_only: a pickled class would be refused
    assert set(state["model"]) == {"fc.weight", "fc.bias"}
    with zipfile.ZipFile(tmp_path / "run" / "model.pt") as z:
        pickled = b"".join(z.read(n) for n in z.namelist() if n.endswith(".pkl"))
    assert b"_dltui_user" not in pickled and b"Tiny" not in pickled.replace(cfg.model.encode(), b"")
    # another working directory: the config's absolute path rebuilds the model
    monkeypatch.chdir(tmp_path / "run")
    again = make_config(**dataclasses.asdict(cfg))
    assert again.model == cfg.model
    build_model(again.model, DIGITS).load_state_dict(state["model"])


def test_a_misfit_is_refused_by_the_config(tmp_path):
    from dltui.resolve import make_config

    with pytest.raises(ConfigError) as info:
        make_config(dataset="digits", model=f"{EXAMPLE}:Net")
    msg = str(info.value)
    assert "\n" not in msg and "16x16" in msg and "course_cnn.py:" in msg
