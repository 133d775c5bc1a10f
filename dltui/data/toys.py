"""The classic lessons' own tiny systems: every point trains and is evaluated (test = train,
``DatasetSpec.test_is_train``), since the lessons fit them whole and a split of three
points would say nothing.

- ``hello``: "hello" -> "ohlol", one character per step (the course's first RNN), and seven
  more words under the same rule; task ``per-step``.
- ``regression-1d``: scikit-learn's make_regression, one feature, in the data's own units.
- ``toy-linear`` / ``toy-logistic``: x = 1, 2, 3 -> y = 2, 4, 6 / classes 0, 0, 1; the run
  reports the prediction at x = 4 (``extras["predict_at"]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dltui.data import Data, DatasetSpec, Recommended

if TYPE_CHECKING:
    from dltui.config import TrainConfig

# --- hello: one character per step ------------------------------------------------------

ALPHABET = ("e", "h", "l", "o")  # the lesson's idx2char: "hello" is [1, 0, 2, 2, 3]
# The lesson's one pair, "hello" -> "ohlol", read as a rule: h -> o, e -> h, o -> l, and l
# stays l unless it follows an l (then o). That last clause is why it takes a recurrent
# model: the same input letter needs two answers, told apart only by the step before.
SUBSTITUTE = {"h": "o", "e": "h", "o": "l", "l": "l"}
WORDS = ("hello", "holle", "olleh", "hollo", "lohel", "ohell", "elloh", "lleho")


def hello_target(word: str) -> str:
    """The rule of the lesson's pair: hello_target("hello") == "ohlol"."""
    return "".join("o" if c == "l" and i and word[i - 1] == "l" else SUBSTITUTE[c] for i, c in enumerate(word))


def to_ids(text: str) -> list[int]:
    return [ALPHABET.index(c) for c in text]


def to_text(ids) -> str:
    return "".join(ALPHABET[int(i)] for i in ids)


def _hello(cfg: TrainConfig) -> Data:
    import torch

    x = torch.tensor([to_ids(w) for w in WORDS], dtype=torch.long)
    y = torch.tensor([to_ids(hello_target(w)) for w in WORDS], dtype=torch.long)
    return Data(HELLO, x, y, x, y)


# --- one feature, one line -------------------------------------------------------------------

TRUE_B_1D = 14.5


def _regression_1d(cfg: TrainConfig) -> Data:
    import numpy as np
    import torch
    from sklearn.datasets import make_regression

    x, y, coef = make_regression(n_samples=100, n_features=1, noise=10, bias=TRUE_B_1D, random_state=0, coef=True)
    # the line the data itself supports (what gradient descent on all 100 points converges to)
    (lw, lb), *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).float()
    extras = {
        "true_w": [round(float(coef), 4)],
        "true_b": TRUE_B_1D,
        "lstsq_w": [round(float(lw), 4)],
        "lstsq_b": round(float(lb), 4),
    }
    # not standardised: w must be read in the data's units, beside the truth and least squares
    return Data(REGRESSION_1D, xt, yt, xt, yt, extras=extras)


def _points(spec: DatasetSpec, ys: tuple[float, ...], extras: dict[str, Any]) -> Data:
    import torch

    x = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.tensor(ys)
    return Data(spec, x, y, x, y, extras={**extras, "predict_at": 4.0})


def _toy_linear(cfg: TrainConfig) -> Data:
    return _points(TOY_LINEAR, (2.0, 4.0, 6.0), {"true_w": [2.0], "true_b": 0.0})


def _toy_logistic(cfg: TrainConfig) -> Data:
    # separable: no finite w is best (the likelihood keeps rising as w grows), so no "true" w
    return _points(TOY_LOGISTIC, (0.0, 0.0, 1.0), {})


def predict_at(data: Data, w: list[float], b: float) -> dict[str, float]:
    """The learned line's answer at ``extras["predict_at"]`` (x = 4 for the toys): the value
    for regression, P(class 1) for binary; {} where the data names no such point."""
    import math

    if "predict_at" not in data.extras or len(w) != 1:
        return {}
    x = float(data.extras["predict_at"])
    z = w[0] * x + b
    if data.task == "binary":
        return {"at_x": x, "at_p": round(1 / (1 + math.exp(-z)) if z > -700 else 0.0, 5)}
    return {"at_x": x, "at_y": round(z, 5)}


HELLO = DatasetSpec(
    name="hello",
    task="per-step",
    kind="sequence",
    input_shape=(5,),
    classes=ALPHABET,
    train_size=len(WORDS),
    test_size=len(WORDS),
    source="the RNN lesson's 'hello' -> 'ohlol', and 7 words under its rule",
    description="a character per step: hello -> ohlol (an l after an l becomes o)",
    recommended=Recommended("rnn-emb", 50, 1, 0.05, "adam"),  # the lesson feeds one word at a time
    loader=_hello,
    vocab_size=len(ALPHABET),
    test_is_train=True,
)
REGRESSION_1D = DatasetSpec(
    name="regression-1d",
    task="regression",
    kind="vector",
    input_shape=(1,),
    classes=(),
    train_size=100,
    test_size=100,
    source="scikit-learn make_regression(100, 1 feature, noise 10, bias 14.5, random_state 0)",
    description="one feature, 100 noisy points: w, b against least squares",
    recommended=Recommended("linreg", 50, 100, 0.1, "sgd"),
    loader=_regression_1d,
    test_is_train=True,
)
TOY_LINEAR = DatasetSpec(
    name="toy-linear",
    task="regression",
    kind="vector",
    input_shape=(1,),
    classes=(),
    train_size=3,
    test_size=3,
    source="the lessons' x = 1, 2, 3 -> y = 2, 4, 6",
    description="three points on y = 2x: the prediction at x = 4",
    recommended=Recommended("linreg", 100, 1, 0.05, "sgd"),
    loader=_toy_linear,
    test_is_train=True,
)
TOY_LOGISTIC = DatasetSpec(
    name="toy-logistic",
    task="binary",
    kind="vector",
    input_shape=(1,),
    classes=("0", "1"),
    train_size=3,
    test_size=3,
    source="the lessons' x = 1, 2, 3 -> class 0, 0, 1",
    description="three points, two classes: P(class 1) at x = 4",
    recommended=Recommended("logreg", 100, 1, 0.1, "sgd"),
    loader=_toy_logistic,
    test_is_train=True,
)

SPECS = [HELLO, REGRESSION_1D, TOY_LINEAR, TOY_LOGISTIC]
