"""Model registry: forward shapes for every fitting dataset x model pair, refusals of the
pairs that do not fit, and layer structures that match the lessons' own definitions."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import run_events, write_mnist_like
from torch import nn

from dltui.data import DATASETS
from dltui.engine import RunFinished
from dltui.errors import ConfigError
from dltui.models import MODELS, build_model, compatible_models, count_params, param_count
from dltui.resolve import make_config

PAIRS = [(d, m) for d, spec in DATASETS.items() for m in compatible_models(spec)]
MISFITS = [(d, m) for d, spec in DATASETS.items() for m in MODELS if m not in compatible_models(spec)]


def random_input(spec, n: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if spec.kind == "sequence":
        # left-aligned int64 tokens of varying length, 0 as padding
        (max_len,) = spec.input_shape
        x = torch.zeros(n, max_len, dtype=torch.long)
        for i, length in enumerate([max_len, 1, max_len // 2][:n]):
            x[i, :length] = torch.randint(1, spec.vocab_size, (length,), generator=g)
        return x
    return torch.randn(n, *spec.input_shape, generator=g)


def test_every_dataset_has_fitting_models():
    assert len(PAIRS) >= 30
    for name, spec in DATASETS.items():
        assert compatible_models(spec), name
        assert spec.recommended.model in compatible_models(spec), name


@pytest.mark.parametrize(("dataset", "model"), PAIRS, ids=[f"{d}-{m}" for d, m in PAIRS])
def test_forward_shape(dataset, model):
    spec = DATASETS[dataset]
    torch.manual_seed(0)
    net = build_model(model, spec)
    net.eval()
    with torch.no_grad():
        out = net(random_input(spec))
    per_step = spec.task == "per-step"  # one prediction per input step
    assert out.shape == ((3, *spec.input_shape, spec.num_outputs) if per_step else (3, spec.num_outputs))
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    # the count the CLI and the app show is the real model's count
    assert param_count(model, spec) == count_params(net) > 0


def test_num_outputs_per_task():
    assert DATASETS["digits"].num_outputs == 10
    assert DATASETS["names"].num_outputs == 17
    assert DATASETS["xor"].num_outputs == 8
    assert DATASETS["breast-cancer"].num_outputs == 1  # one logit, BCE
    assert DATASETS["linear"].num_outputs == 1


def test_misfits_exist_for_every_model_family():
    misfit_models = {m for _, m in MISFITS}
    assert {"cnn", "resnet", "lenet", "inception", "linreg", "logreg", "rnn", "softmax"} <= misfit_models


@pytest.mark.parametrize(("dataset", "model"), MISFITS, ids=[f"{d}-{m}" for d, m in MISFITS])
def test_misfit_refused_naming_fitting_models(dataset, model):
    with pytest.raises(ConfigError) as info:
        make_config(dataset=dataset, model=model)
    err = info.value
    assert err.field == "model"
    msg = str(err)
    assert msg.startswith("--model: ")
    assert "\n" not in msg
    assert f"'{model}'" in msg and dataset in msg
    assert "models that fit: " + ", ".join(compatible_models(DATASETS[dataset])) in msg


def test_cnn_on_linear_and_digits_messages():
    with pytest.raises(ConfigError, match=r"cnn is for classification.*models that fit: linreg, mlp, deep-mlp"):
        make_config(dataset="linear", model="cnn")
    with pytest.raises(ConfigError, match=r"larger images than 8x8.*models that fit: softmax, mlp, deep-mlp"):
        make_config(dataset="digits", model="cnn")


def test_unknown_model_suggests():
    with pytest.raises(ConfigError, match=r"did you mean 'resnet'"):
        make_config(dataset="mnist", model="resnt")


# --- layer structure ------------------------------------------------------------------


def lesson_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def lesson_softmax() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


@pytest.mark.parametrize(("model", "lesson"), [("mlp", lesson_mlp), ("softmax", lesson_softmax)])
def test_state_dict_loads_into_lesson_definition(model, lesson):
    net = build_model(model, DATASETS["mnist"])
    target = lesson()
    target.load_state_dict(net.state_dict(), strict=True)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(net(x), target(x))


@pytest.mark.parametrize(("model", "lesson"), [("mlp", lesson_mlp), ("softmax", lesson_softmax)])
def test_checkpoint_loads_into_lesson_definition(tmp_path, model, lesson):
    """Train 1 epoch on tiny MNIST files; model.pt loads with weights_only=True and strict=True."""
    write_mnist_like(tmp_path / "data", "MNIST", n_train=64, n_test=32)
    cfg = make_config(
        dataset="mnist",
        model=model,
        epochs=1,
        batch_size=16,
        lr=0.01,
        optimizer="sgd",
        device="cpu",
        data_dir=str(tmp_path / "data"),
        out=str(tmp_path / "run"),
    )
    result, _ = run_events(cfg)
    assert isinstance(result, RunFinished), result
    state = torch.load(tmp_path / "run" / "model.pt", map_location="cpu", weights_only=True)
    target = lesson()
    target.load_state_dict(state["model"], strict=True)
    # the weights are the trained ones, not a fresh init
    fresh = lesson()
    assert not torch.equal(target[1].weight, fresh[1].weight)
    assert state["epoch"] == 1 and state["config"]["model"] == model


def _with_shape(name: str, shape: tuple[int, ...]):
    return dataclasses.replace(DATASETS[name], input_shape=shape)


def test_cnn_fc_input_is_computed():
    assert build_model("cnn", DATASETS["mnist"]).fc.in_features == 320  # 20 x 4 x 4
    assert build_model("cnn", DATASETS["cifar10"]).fc.in_features == 500  # 20 x 5 x 5
    assert build_model("cnn", DATASETS["cifar10"]).conv1.in_channels == 3
    # an image size no lesson uses: 40 -> 36 -> 18 -> 14 -> 7, so 20 x 7 x 7
    assert build_model("cnn", _with_shape("mnist", (1, 40, 40))).fc.in_features == 980


def test_inception_and_resnet_fc_inputs():
    assert build_model("inception", DATASETS["mnist"]).fc.in_features == 1408  # 88 x 4 x 4
    assert build_model("resnet", DATASETS["mnist"]).fc.in_features == 512  # 32 x 4 x 4
    assert build_model("inception", DATASETS["cifar10"]).fc.in_features == 88 * 5 * 5
    assert build_model("resnet", DATASETS["cifar10"]).fc.in_features == 32 * 5 * 5


def test_lenet_matches_d2l():
    net = build_model("lenet", DATASETS["mnist"])
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(400, 120), (120, 84), (84, 10)]
    assert sum(isinstance(m, nn.Sigmoid) for m in net) == 4
    assert sum(isinstance(m, nn.AvgPool2d) for m in net) == 2


def test_deep_mlp_widths():
    net = build_model("deep-mlp", DATASETS["mnist"])
    widths = [(m.in_features, m.out_features) for m in net if isinstance(m, nn.Linear)]
    assert widths == [(784, 512), (512, 256), (256, 128), (128, 64), (64, 32), (32, 10)]


def test_linreg_and_logreg_are_one_linear():
    for model, dataset, features in (("linreg", "linear", 2), ("logreg", "breast-cancer", 30)):
        net = build_model(model, DATASETS[dataset])
        assert isinstance(net, nn.Sequential) and len(net) == 1
        assert (net[0].in_features, net[0].out_features) == (features, 1)


def test_recurrent_models_ignore_padding():
    """Packed sequences: the same name with more trailing padding gives the same output."""
    spec = DATASETS["names"]
    short = dataclasses.replace(spec, input_shape=(8,))
    for model in ("rnn", "lstm", "gru"):
        torch.manual_seed(0)
        net = build_model(model, spec).eval()
        tokens = [ord(c) for c in "Nakamura"]
        x20 = torch.zeros(1, 20, dtype=torch.long)
        x20[0, : len(tokens)] = torch.tensor(tokens)
        x8 = x20[:, :8]
        with torch.no_grad():
            torch.testing.assert_close(net(x20), net(x8))
        assert build_model(model, short)(x8).shape == (1, 17)
