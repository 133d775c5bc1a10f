"""Datasets generated here, shipped inside the package (digits) or by scikit-learn
(breast-cancer): they work on any machine, offline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dltui.data import Data, DatasetSpec, Recommended, shipped, split_indices, standardise
from dltui.errors import DataError

if TYPE_CHECKING:
    from dltui.config import TrainConfig

DATA_SEED = 20240601  # synthetic data is one fixed set; only the split follows --seed
TRUE_W = (2.0, -3.4)
TRUE_B = 4.2


def _split(spec: DatasetSpec, x, y, seed: int, standardize: bool, **kw) -> Data:
    tr, te = split_indices(len(x), seed)
    x_tr, x_te = x[tr], x[te]
    if standardize:
        x_tr, x_te = standardise(x_tr, x_te)
    return Data(spec, x_tr.contiguous(), y[tr].contiguous(), x_te.contiguous(), y[te].contiguous(), **kw)


def _digits(cfg: TrainConfig) -> Data:
    import gzip

    import numpy as np
    import torch

    # scikit-learn's copy, shipped in the package (see its README): no scikit-learn import
    path = shipped("digits") / "digits.csv.gz"
    try:
        with path.open("rb") as raw, gzip.open(raw, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.uint8)  # 64 pixels (0..16), label
    except (OSError, ValueError) as exc:  # a damaged install
        raise DataError(f"digits: cannot read {path} ({exc.__class__.__name__})") from None
    x = torch.from_numpy(table[:, :64].reshape(-1, 1, 8, 8).copy())  # (N, 1, 8, 8)
    y = torch.from_numpy(table[:, 64].astype(np.int64))
    # mean/std of the 0..1-scaled pixels over the whole set (a fixed constant, like MNIST's)
    return _split(DIGITS, x, y, cfg.seed, False, scale=1 / 16, mean=(0.3054,), std=(0.3820,))


def _breast_cancer(cfg: TrainConfig) -> Data:
    import torch
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    x = torch.from_numpy(d.data).float()
    y = torch.from_numpy(d.target).float()
    return _split(BREAST_CANCER, x, y, cfg.seed, True)


def _linear(cfg: TrainConfig) -> Data:
    import torch

    g = torch.Generator().manual_seed(DATA_SEED)
    w = torch.tensor(TRUE_W)
    x = torch.normal(0.0, 1.0, (1000, 2), generator=g)
    y = x @ w + TRUE_B + torch.normal(0.0, 0.01, (1000,), generator=g)
    # not standardised: X is already N(0, 1) and the learned w, b must be comparable to the truth
    return _split(LINEAR, x, y, cfg.seed, False, extras={"true_w": list(TRUE_W), "true_b": TRUE_B})


def gaussian_clusters(n_clusters: int, seed: int):
    """Clusters in 3-D: centres uniform in a 30-unit cube, points at a N(0, 3) radius in a
    uniformly random direction, 600-700 points per cluster. Returns (x, cluster_id)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n_clusters, 3, generator=g) * 30
    xs, ids = [], []
    for c in range(n_clusters):
        n = int(torch.randint(600, 701, (1,), generator=g))
        direction = torch.randn(n, 3, generator=g)
        direction /= direction.norm(dim=1, keepdim=True)
        radius = torch.randn(n, 1, generator=g) * 3
        xs.append(centres[c] + direction * radius)
        ids.append(torch.full((n,), c))
    return torch.cat(xs), torch.cat(ids).long()


def _clusters(cfg: TrainConfig) -> Data:
    x, y = gaussian_clusters(10, DATA_SEED)
    return _split(CLUSTERS, x, y, cfg.seed, True)


def _xor(cfg: TrainConfig) -> Data:
    import torch

    x, cluster = gaussian_clusters(16, DATA_SEED + 1)
    # merge the 16 clusters pairwise (a fixed random pairing) into 8 labels
    pairing = torch.randperm(16, generator=torch.Generator().manual_seed(DATA_SEED)) % 8
    return _split(XOR, x, pairing[cluster], cfg.seed, True)


DIGITS = DatasetSpec(
    name="digits",
    task="classification",
    kind="image",
    input_shape=(1, 8, 8),
    classes=tuple(str(i) for i in range(10)),
    train_size=1438,
    test_size=359,
    source="UCI optical digits, scikit-learn's copy (CC BY 4.0)",
    description="8x8 handwritten digits, 1,797 images: the offline default",
    recommended=Recommended("mlp", 30, 32, 1e-3, "adam"),
    loader=_digits,
    assets="digits",
)
LINEAR = DatasetSpec(
    name="linear",
    task="regression",
    kind="vector",
    input_shape=(2,),
    classes=(),
    train_size=800,
    test_size=200,
    source="generated: y = Xw + b + N(0, 0.01^2), w = [2, -3.4], b = 4.2",
    description="synthetic linear regression, 1,000 samples",
    recommended=Recommended("linreg", 5, 10, 0.03, "sgd"),
    loader=_linear,
)
CLUSTERS = DatasetSpec(
    name="clusters",
    task="classification",
    kind="vector",
    input_shape=(3,),
    classes=tuple(f"c{i}" for i in range(10)),
    train_size=5162,  # fixed: the data comes from DATA_SEED, the split is 80/20
    test_size=1291,
    source="generated: 10 Gaussian clusters in 3-D",
    description="10 Gaussian clusters in 3-D, one class per cluster",
    recommended=Recommended("softmax", 20, 64, 0.01, "adam"),
    loader=_clusters,
)
XOR = DatasetSpec(
    name="xor",
    task="classification",
    kind="vector",
    input_shape=(3,),
    classes=tuple(f"c{i}" for i in range(8)),
    train_size=8319,
    test_size=2080,
    source="generated: 16 Gaussian clusters in 3-D, merged pairwise",
    description="16 clusters merged into 8 labels: not linearly separable",
    recommended=Recommended("mlp", 30, 64, 0.01, "adam"),
    loader=_xor,
)
BREAST_CANCER = DatasetSpec(
    name="breast-cancer",
    task="binary",
    kind="vector",
    input_shape=(30,),
    classes=("malignant", "benign"),
    train_size=455,
    test_size=114,
    source="UCI Wisconsin diagnostic set, scikit-learn's copy",
    description="Wisconsin breast cancer, 30 features: logistic regression",
    recommended=Recommended("logreg", 30, 32, 0.01, "sgd"),
    loader=_breast_cancer,
)

SPECS = [DIGITS, LINEAR, CLUSTERS, XOR, BREAST_CANCER]
