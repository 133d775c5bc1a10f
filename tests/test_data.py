"""Dataset registry and loaders: the offline sets, and the torchvision path on tiny IDX files
written here (no network)."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
import torch
from helpers import of_type, run_events, write_cifar_like, write_mnist_like

from dltui import data as datasets
from dltui.data import DATASETS, TASKS, names
from dltui.data.tabular import DATA_SEED, gaussian_clusters
from dltui.engine import EpochEnded, EvaluationReady, RunFinished, RunStarted
from dltui.errors import DataError
from dltui.resolve import make_config

ALL_NAMES = (
    "digits",
    "fashion-mnist",
    "mnist",
    "kmnist",
    "cifar10",
    "linear",
    "clusters",
    "xor",
    "breast-cancer",
    "names",
    "hello",
    "regression-1d",
    "toy-linear",
    "toy-logistic",
)


def load(**kw):
    return datasets.load(make_config(device="cpu", **kw))


# --- registry --------------------------------------------------------------------------


def test_registry_names():
    assert set(DATASETS) == set(ALL_NAMES)
    assert len(DATASETS) == 14


@pytest.mark.parametrize("name", ALL_NAMES)
def test_registry_entry(name):
    spec = DATASETS[name]
    assert spec.name == name
    assert spec.task in TASKS
    assert spec.kind in ("image", "vector", "sequence")
    assert spec.input_shape and all(isinstance(d, int) and d > 0 for d in spec.input_shape)
    assert (len(spec.input_shape) == 3) == (spec.kind == "image")
    if spec.task == "regression":
        assert spec.classes == ()
    else:
        assert len(spec.classes) >= 2 and len(set(spec.classes)) == len(spec.classes)
        assert all(isinstance(c, str) and c for c in spec.classes)
    assert spec.train_size > spec.test_size > 0 or (spec.test_is_train and spec.train_size == spec.test_size > 0)
    assert spec.source.strip() and spec.description.strip()
    assert spec.needs_data_dir == (name in ("fashion-mnist", "mnist", "kmnist", "cifar10"))


def test_registry_shapes_and_classes():
    expect = {
        "digits": ("classification", (1, 8, 8), 10),
        "mnist": ("classification", (1, 28, 28), 10),
        "fashion-mnist": ("classification", (1, 28, 28), 10),
        "kmnist": ("classification", (1, 28, 28), 10),
        "cifar10": ("classification", (3, 32, 32), 10),
        "linear": ("regression", (2,), 0),
        "clusters": ("classification", (3,), 10),
        "xor": ("classification", (3,), 8),
        "breast-cancer": ("binary", (30,), 2),
        "names": ("sequence", (20,), 17),
    }
    for name, (task, shape, n_classes) in expect.items():
        spec = DATASETS[name]
        assert (spec.task, spec.input_shape, len(spec.classes)) == (task, shape, n_classes), name
    assert (DATASETS["mnist"].train_size, DATASETS["mnist"].test_size) == (60000, 10000)
    assert (DATASETS["cifar10"].train_size, DATASETS["cifar10"].test_size) == (50000, 10000)


def test_text_labels():
    fashion = DATASETS["fashion-mnist"].classes
    assert fashion[0] == "t-shirt" and fashion[9] == "ankle boot" and "sneaker" in fashion
    cifar = DATASETS["cifar10"].classes
    assert cifar == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert DATASETS["mnist"].classes == tuple("0123456789")
    assert DATASETS["breast-cancer"].classes == ("malignant", "benign")


def test_offline_sets_are_available_offline(tmp_path):
    for name in ("digits", "linear", "clusters", "xor", "breast-cancer", "names"):
        assert DATASETS[name].available_offline(str(tmp_path / "empty")), name


# --- digits ----------------------------------------------------------------------------


def test_digits_split():
    d = load(dataset="digits", seed=0)
    assert len(d.x_train) + len(d.x_test) == 1797
    assert (len(d.x_train), len(d.x_test)) == (1438, 359)  # 80 / 20
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape[1:] == (1, 8, 8)
    assert int(d.x_train.max()) == 16 and int(d.x_train.min()) == 0
    assert d.y_train.dtype == torch.int64 and set(d.y_train.tolist()) == set(range(10))
    assert len(d.x_train) == DATASETS["digits"].train_size and len(d.x_test) == DATASETS["digits"].test_size


def test_digits_split_deterministic_by_seed():
    from dltui.data.tabular import _digits

    a = _digits(make_config(dataset="digits", seed=1))
    b = _digits(make_config(dataset="digits", seed=1))
    c = _digits(make_config(dataset="digits", seed=2))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_test, c.y_test)
    # a different split of the same 1,797 images
    for d in (a, c):
        x = torch.cat([d.x_train, d.x_test]).view(1797, -1).long()
        y = torch.cat([d.y_train, d.y_test])
        assert int(x.sum()) == int(a.x_train.long().sum() + a.x_test.long().sum())
        assert torch.bincount(y).tolist() == torch.bincount(torch.cat([a.y_train, a.y_test])).tolist()


def test_digits_batch_transform_normalises():
    d = load(dataset="digits")
    x = d.batch_transform(torch.device("cpu"))(d.x_train.clone())
    assert x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05


# --- synthetic and tabular -------------------------------------------------------------


def test_linear():
    d = load(dataset="linear")
    assert len(d.x_train) + len(d.x_test) == 1000
    assert d.extras["true_w"] == [2.0, -3.4] and d.extras["true_b"] == 4.2
    assert d.y_train.dtype == torch.float32 and d.x_train.shape == (800, 2)
    # least squares over all samples recovers the truth (noise is N(0, 0.01^2))
    x = torch.cat([d.x_train, d.x_test]).double()
    y = torch.cat([d.y_train, d.y_test]).double()
    a = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    sol = torch.linalg.lstsq(a, y.unsqueeze(1)).solution.view(-1)
    torch.testing.assert_close(sol, torch.tensor([2.0, -3.4, 4.2], dtype=torch.float64), atol=2e-3, rtol=0)
    resid = y - a @ sol
    assert 0.005 < float(resid.std()) < 0.02


def test_clusters_sizes():
    _, ids = gaussian_clusters(10, DATA_SEED)
    counts = torch.bincount(ids).tolist()
    assert len(counts) == 10 and all(600 <= c <= 700 for c in counts)
    d = load(dataset="clusters")
    assert set(d.y_train.tolist()) == set(range(10))
    assert len(d.y_train) + len(d.y_test) == sum(counts)
    assert d.x_train.shape[1] == 3 and d.x_train.dtype == torch.float32


def test_xor_eight_classes_of_two_clusters():
    _, ids = gaussian_clusters(16, DATA_SEED + 1)
    counts = torch.bincount(ids).tolist()
    assert len(counts) == 16 and all(600 <= c <= 700 for c in counts)
    d = load(dataset="xor")
    y = torch.cat([d.y_train, d.y_test])
    per_label = torch.bincount(y).tolist()
    assert len(per_label) == 8
    assert all(1200 <= c <= 1400 for c in per_label)
    assert len(y) == sum(counts)


@pytest.mark.parametrize("name", ["clusters", "xor", "breast-cancer"])
def test_standardised_on_train(name):
    d = load(dataset=name)
    mean, std = d.x_train.mean(0), d.x_train.std(0)
    assert float(mean.abs().max()) < 1e-4
    assert float((std - 1).abs().max()) < 1e-4
    # test features use the train statistics: close to, but not exactly, standard
    assert float(d.x_test.mean(0).abs().max()) > 1e-4


def test_breast_cancer_binary():
    d = load(dataset="breast-cancer")
    assert d.task == "binary"
    assert len(d.x_train) + len(d.x_test) == 569
    assert d.x_train.shape[1] == 30
    assert d.y_train.dtype == torch.float32
    assert set(d.y_train.unique().tolist()) == {0.0, 1.0}


# --- names -----------------------------------------------------------------------------


def test_names():
    d = load(dataset="names")
    spec = DATASETS["names"]
    assert len(spec.classes) == 17 and spec.classes[0] == "Arabic" and "Vietnamese" in spec.classes
    assert len(d.x_train) + len(d.x_test) == 19807  # every non-empty line of the shipped names/*.txt
    assert len(d.x_test) == round(0.2 * 19807)
    assert d.x_train.dtype == torch.int64 and d.x_train.shape[1] == 20
    x = torch.cat([d.x_train, d.x_test])
    assert int(x.min()) == 0 and int(x.max()) < spec.vocab_size == names.VOCAB == 128 + len(names.LETTERS)
    # left-aligned: no token after the first padding 0, and every name has a first character
    nonzero = x != 0
    assert bool(nonzero[:, 0].all())
    assert torch.equal(nonzero.long().cumprod(1), nonzero.long())
    assert set(torch.cat([d.y_train, d.y_test]).tolist()) == set(range(17))


@pytest.mark.parametrize("name", ["digits", "breast-cancer", "names", "clusters", "xor", "linear"])
def test_spec_sizes_match_loaded_data(name):
    d = load(dataset=name)
    spec = DATASETS[name]
    assert (len(d.x_train), len(d.x_test)) == (spec.train_size, spec.test_size)


def test_names_decode_and_accents():
    assert names.decode(names.encode("Ślusarczyk")) == "Ślusarczyk"
    assert names.decode(names.encode("Groß")) == "Groß"
    assert names.encode("Abbà")[:5] == [ord("A"), ord("b"), ord("b"), 128 + names.LETTERS.index("à"), 0]
    assert names.encode("Abbà") == names.encode(unicodedata.normalize("NFD", "Abbà"))  # decomposed input
    assert names.decode(names.encode("Dvořák")) == "Dvorák"  # ř is in no shipped name: its base letter
    assert len(names.encode("x" * 30)) == 20
    d = load(dataset="names")
    x, y = torch.cat([d.x_train, d.x_test]), torch.cat([d.y_train, d.y_test])
    rows = {(names.decode(r), int(label)) for r, label in zip(x, y, strict=True)}
    french = DATASETS["names"].classes.index("French")
    german = DATASETS["names"].classes.index("German")
    assert ("Bélanger", french) in rows
    assert ("Bäcker", german) in rows


def _shipped_names() -> dict[str, list[str]]:
    """Each language's surnames: the non-empty lines of its file, as the loader reads them."""
    folder = datasets.shipped("names")
    out = {}
    for lang in names.LANGUAGES:
        lines = (folder / f"{lang}.txt").read_text(encoding="utf-8").split("\n")
        out[lang] = [w.strip() for w in lines if w.strip()]
    return out


def test_names_vocabulary_covers_every_character():
    """Every character of every shipped surname has its own id, and decodes back to itself."""
    shipped = _shipped_names()
    chars = {c for words in shipped.values() for w in words for c in w}
    beyond = {c for c in chars if ord(c) >= 128}
    assert beyond == set(names.LETTERS), "LETTERS must list exactly the non-ASCII letters of the files"
    assert len(set(names.LETTERS)) == len(names.LETTERS)
    for words in shipped.values():
        for w in words:
            assert len(w) <= names.MAX_LEN, w
            codes = names.encode(w)
            assert 0 not in codes[: len(w)] and max(codes) < names.VOCAB, w
            assert names.decode(codes) == w


def test_names_readme_is_true():
    """The data's README: its counts of files, surnames, distinct surnames and surnames beyond
    ASCII (per language and in all), and the train/test overlap it quotes, match the files."""
    import re

    text = (datasets.shipped("names") / "README.md").read_text(encoding="utf-8")
    shipped = _shipped_names()
    table = {}
    for m in re.finditer(r"^\| (\w[\w ]*?) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|$", text, re.M):
        table[m[1]] = tuple(int(v.replace(",", "")) for v in m.groups()[1:])
    totals = [0, 0, 0]
    for lang, words in shipped.items():
        counts = (len(words), len(set(words)), sum(not w.isascii() for w in words))
        assert table.pop(lang) == counts, lang
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
    assert table == {f"all {len(shipped)}": tuple(totals)}
    n_langs = sum(any(not w.isascii() for w in words) for words in shipped.values())
    files = sum(1 for f in datasets.shipped("names").iterdir() if f.name.endswith(".txt"))
    assert files == len(shipped) == 17
    assert f"{files} files, one per language" in text
    assert f"{totals[0]:,} surnames, one per\nline, in UTF-8. {totals[2]} of them, in {n_langs} languages" in text
    d = load(dataset="names", seed=0)
    train = {(tuple(r), int(c)) for r, c in zip(d.x_train.tolist(), d.y_train.tolist(), strict=True)}
    overlap = sum((tuple(r), int(c)) in train for r, c in zip(d.x_test.tolist(), d.y_test.tolist(), strict=True))
    assert f"with\n`--seed 0`, {overlap} of the {len(d.x_test):,} test items also appear" in text


# --- torchvision path on tiny IDX files -------------------------------------------------


def test_available_offline(tmp_path):
    data_dir = tmp_path / "tv"
    assert not DATASETS["mnist"].available_offline(str(data_dir))
    write_mnist_like(data_dir, "MNIST")
    assert DATASETS["mnist"].available_offline(str(data_dir))
    assert not DATASETS["fashion-mnist"].available_offline(str(data_dir))
    assert not DATASETS["cifar10"].available_offline(str(data_dir))
    (data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    assert not DATASETS["mnist"].available_offline(str(data_dir))


@pytest.mark.parametrize(("name", "cls_name"), [("fashion-mnist", "FashionMNIST"), ("mnist", "MNIST")])
def test_torchvision_idx_files_load(tmp_path, name, cls_name):
    written = write_mnist_like(tmp_path / "tv", cls_name, n_train=64, n_test=32, seed=5)
    d = load(dataset=name, data_dir=str(tmp_path / "tv"))
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape == (64, 1, 28, 28)
    assert d.x_test.shape == (32, 1, 28, 28)
    assert np.array_equal(d.x_train[:, 0].numpy(), written["train_images"])
    assert np.array_equal(d.y_train.numpy(), written["train_labels"].astype(np.int64))
    assert np.array_equal(d.y_test.numpy(), written["t10k_labels"].astype(np.int64))
    assert d.y_train.dtype == torch.int64
    assert d.classes == DATASETS[name].classes
    if name == "fashion-mnist":
        assert d.classes[int(d.y_train[0])] == datasets.vision.FASHION_CLASSES[written["train_labels"][0]]
        assert "ankle boot" in d.classes
    x = d.batch_transform(torch.device("cpu"))(d.x_train[:4].clone())
    assert x.dtype == torch.float32 and x.shape == (4, 1, 28, 28)


def test_mnist_reads_like_torchvision(tmp_path):
    """The IDX reader gives exactly what torchvision.datasets.MNIST gives for the same files."""
    from torchvision.datasets import MNIST

    write_mnist_like(tmp_path / "tv", "MNIST", n_train=50, n_test=20, seed=2)
    d = load(dataset="mnist", data_dir=str(tmp_path / "tv"))
    for train, x, y in ((True, d.x_train, d.y_train), (False, d.x_test, d.y_test)):
        ref = MNIST(str(tmp_path / "tv"), train=train, download=False)
        assert torch.equal(x, ref.data.unsqueeze(1)) and torch.equal(y, ref.targets)


def test_reading_images_needs_neither_torchvision_nor_sklearn_nor_sympy(tmp_path):
    """Files present: no torchvision import (~170 MB RSS); digits come from the package, not
    through scikit-learn (~80 MB, ~0.8 s); checking the model fits the data does not pull in
    sympy through meta-device shape probes (~155 MB, ~1 s)."""
    import subprocess
    import sys

    write_mnist_like(tmp_path / "tv", "MNIST")
    code = (
        "import sys\n"
        "from dltui import data\n"
        "from dltui.resolve import make_config\n"
        f"data.load(make_config(dataset='mnist', model='cnn', data_dir={str(tmp_path / 'tv')!r}))\n"
        "data.load(make_config(dataset='digits', model='mlp'))\n"
        "print('LOADED', sorted(m for m in ('torchvision', 'sklearn', 'sympy') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr


def test_shipped_digits_are_scikit_learns():
    from sklearn.datasets import load_digits

    ref = load_digits()
    d = load(dataset="digits", seed=0)
    x, y = torch.cat([d.x_train, d.x_test]), torch.cat([d.y_train, d.y_test])
    tr, te = datasets.split_indices(len(ref.target), 0)
    order = torch.cat([tr, te])
    assert torch.equal(x, torch.from_numpy(ref.images).to(torch.uint8)[order].unsqueeze(1))
    assert torch.equal(y, torch.from_numpy(ref.target).long()[order])


def test_cifar_batches_load(tmp_path):
    written = write_cifar_like(tmp_path / "tv", per_batch=4, n_test=6)
    d = load(dataset="cifar10", data_dir=str(tmp_path / "tv"))
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape == (20, 3, 32, 32)
    assert d.x_test.shape == (6, 3, 32, 32)
    # CIFAR rows are 1024 red, then 1024 green, then 1024 blue values: channel-first already
    assert np.array_equal(d.x_train.reshape(20, -1).numpy(), written["train_images"])
    assert np.array_equal(d.y_train.numpy(), written["train_labels"])
    assert np.array_equal(d.x_test.reshape(6, -1).numpy(), written["test_images"])
    assert d.y_test.dtype == torch.int64


def test_tampered_cifar_batch_never_runs_code(tmp_path):
    import pickle

    class Exploit:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    write_cifar_like(tmp_path / "tv")
    batch = tmp_path / "tv" / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(pickle.dumps({"data": Exploit(), "labels": []}, protocol=2))
    with pytest.raises(DataError, match=r"damaged or incomplete.*refusing to load (io|builtins)\.open"):
        load(dataset="cifar10", data_dir=str(tmp_path / "tv"))
    assert not (tmp_path / "pwned").exists()


def test_torchvision_idx_short_train(tmp_path):
    write_mnist_like(tmp_path / "tv", "FashionMNIST", n_train=64, n_test=32)
    cfg = make_config(
        dataset="fashion-mnist",
        model="mlp",
        epochs=2,
        batch_size=16,
        lr=1e-3,
        optimizer="adam",
        device="cpu",
        data_dir=str(tmp_path / "tv"),
        out=str(tmp_path / "run"),
    )
    result, events = run_events(cfg)
    assert isinstance(result, RunFinished), result
    started = of_type(events, RunStarted)[0]
    assert started.steps_per_epoch == 4
    assert [e.epoch for e in of_type(events, EpochEnded)] == [1, 2]
    ev = of_type(events, EvaluationReady)[-1]
    assert sum(map(sum, ev.confusion)) == 32 and len(ev.confusion) == 10
    # the toy classes are separable: an MLP gets most of them after two epochs
    assert of_type(events, EpochEnded)[-1].test_acc >= 0.5
    header = (tmp_path / "run" / "confusion.csv").read_text().splitlines()[0]
    assert header == "true\\pred," + ",".join(datasets.vision.FASHION_CLASSES)


def test_offline_missing_files_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("DLTUI_OFFLINE", "1")
    data_dir = tmp_path / "empty"
    cfg = make_config(dataset="kmnist", data_dir=str(data_dir))
    with pytest.raises(DataError) as info:
        datasets.load(cfg)
    msg = str(info.value)
    assert str(data_dir / "KMNIST" / "raw") in msg
    assert "--dataset digits" in msg
    assert "train-images-idx3-ubyte" in msg
    assert "\n" not in msg
    assert not (data_dir / "KMNIST").exists()  # nothing half-written is left behind


def test_offline_missing_cifar_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("DLTUI_OFFLINE", "1")
    cfg = make_config(dataset="cifar10", data_dir=str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"cifar-10-batches-py.*digits"):
        datasets.load(cfg)
