"""Model summaries: layers, shapes and parameters as the modules hold them, MACs against
hand counts, the fallback without torchinfo, and `dltui summary`."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from helpers import cli, one_line_error
from torch import nn

from dltui.data import DATASETS
from dltui.errors import ConfigError
from dltui.models import MODELS, build_model, param_count
from dltui.models.summary import NO_MACS, default_dataset, summarize, summarize_module


def test_mlp_on_mnist_matches_the_module_and_a_hand_count():
    s = summarize("mlp", "mnist")
    net = build_model("mlp", DATASETS["mnist"])
    assert s.total_params == s.trainable_params == sum(p.numel() for p in net.parameters()) == 203_530
    # each weight one multiply-accumulate per sample, each bias add one (torchinfo's convention)
    assert s.macs == (784 * 256 + 256) + (256 * 10 + 10)
    assert [(r.depth, r.label, r.output_shape, r.params, r.trainable) for r in s.rows] == [
        (0, "Sequential", (1, 10), 203_530, "yes"),
        (1, "0 (Flatten)", (1, 784), 0, "-"),
        (1, "1 (Linear)", (1, 256), 784 * 256 + 256, "yes"),
        (1, "2 (ReLU)", (1, 256), 0, "-"),
        (1, "3 (Linear)", (1, 10), 256 * 10 + 10, "yes"),
    ]
    assert s.rows[0].macs == s.macs  # the model row holds its layers' work
    assert s.param_bytes == 4 * 203_530
    assert s.activation_bytes == 2 * 4 * (256 + 10)  # the weighted layers' outputs, kept for backward
    assert (s.input_shape, s.input_dtype, s.counted_by, s.notes) == ((1, 28, 28), "float32", "torchinfo", ())


def test_cnn_fits_mnist_and_not_the_8x8_digits():
    s = summarize("cnn", "mnist")
    assert s.total_params == count(build_model("cnn", DATASETS["mnist"]))
    shapes = {r.label: r.output_shape for r in s.rows}
    assert shapes["conv1 (Conv2d)"] == (1, 10, 24, 24) and shapes["conv2 (Conv2d)"] == (1, 20, 8, 8)
    conv1 = 10 * 24 * 24 * (5 * 5 * 1 + 1)  # per output value: a 5x5 window over 1 channel, and a bias
    conv2 = 20 * 8 * 8 * (5 * 5 * 10 + 1)
    fc = 20 * 4 * 4 * 10 + 10
    assert s.macs == conv1 + conv2 + fc
    assert [r.label for r in s.rows].count("pooling (MaxPool2d)") == 2  # one module, called twice
    with pytest.raises(ConfigError) as err:
        summarize("cnn", "digits")
    message = str(err.value)
    assert message.startswith("--dataset: cnn does not fit digits (cnn needs larger images than 8x8)")
    fits = message.split("cnn fits: ")[1].split(", ")
    assert "mnist" in fits and "digits" not in fits and "names" not in fits


def test_gru_on_names_takes_int64_tokens_and_counts_per_token():
    s = summarize("gru", "names")
    assert s.input_dtype == "int64" and s.input_shape == (20,)
    rows = {r.label: r for r in s.rows}
    rnn = rows["rnn (GRU)"]
    assert rnn.packed and rnn.output_shape == (20, 200)  # 20 tokens x (100 hidden, both directions)
    # per direction: 3 gates x (input x hidden + hidden x hidden + two biases)
    assert rnn.params == 2 * (3 * (100 * 100 + 100 * 100 + 200) + 3 * (200 * 100 + 100 * 100 + 200))
    assert rnn.macs == 20 * rnn.params  # every weight once per token
    assert rows["embedding (Embedding)"].macs == 0  # a lookup
    assert s.macs == 20 * rnn.params + (200 * 17 + 17)
    assert s.total_params == param_count("gru", DATASETS["names"])
    assert any("20 tokens" in n for n in s.notes)


def test_every_built_in_model_is_summarised_on_its_own_dataset():
    for model in MODELS:
        dataset = default_dataset(model)
        s = summarize(model)
        assert (s.model, s.dataset, s.counted_by) == (model, dataset, "torchinfo")
        assert s.total_params == param_count(model, DATASETS[dataset]), model
        assert s.rows[0].depth == 0 and s.rows[0].output_shape[-1] == DATASETS[dataset].num_outputs
        # a weight is used at least once per sample (bias adds aside), and not thousands of times here
        assert s.macs is not None and s.total_params / 2 <= s.macs <= 2000 * s.total_params, model


def test_summarising_leaves_the_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    summarize("resnet", "cifar10")
    assert torch.equal(torch.rand(3), expected)


def test_without_torchinfo_the_walk_still_shows_the_model(monkeypatch):
    counted = summarize("cnn", "mnist")
    monkeypatch.setitem(sys.modules, "torchinfo", None)  # `import torchinfo` raises ImportError
    walked = summarize("cnn", "mnist")
    assert walked.counted_by == "hooks" and walked.macs is None
    assert walked.notes == (f"{NO_MACS}: torchinfo is not installed",)
    assert walked.total_params == counted.total_params and walked.param_bytes == counted.param_bytes
    assert walked.activation_bytes == counted.activation_bytes
    # definition order, each module once (torchinfo lists the pooling per call)
    assert [r.label for r in walked.rows] == [
        "ConvNet",
        "conv1 (Conv2d)",
        "conv2 (Conv2d)",
        "pooling (MaxPool2d)",
        "fc (Linear)",
    ]
    assert {r.label: (r.output_shape, r.params) for r in walked.rows}["conv2 (Conv2d)"] == ((1, 20, 8, 8), 5020)


def test_a_failing_torchinfo_falls_back_and_says_why(monkeypatch):
    import torchinfo

    def broken(*args, **kwargs):
        raise RuntimeError("Failed to run torchinfo") from ValueError("no hooks today")

    monkeypatch.setattr(torchinfo, "summary", broken)
    s = summarize("gru", "names")
    assert s.counted_by == "hooks" and s.macs is None
    assert f"{NO_MACS}: torchinfo failed: no hooks today" in s.notes
    assert {r.label: (r.output_shape, r.packed) for r in s.rows}["rnn (GRU)"] == ((20, 200), True)


class RawMLP(nn.Module):
    """A from-scratch model: raw parameters, no layers for torchinfo to see."""

    def __init__(self):
        super().__init__()
        self.W1 = nn.Parameter(torch.zeros(64, 32))
        self.W2 = nn.Parameter(torch.zeros(32, 10))

    def forward(self, x):
        return torch.relu(x.flatten(1) @ self.W1) @ self.W2


def test_raw_parameters_are_counted_by_their_matrix_products():
    s = summarize_module(RawMLP(), DATASETS["digits"], name="raw")
    assert s.total_params == 64 * 32 + 32 * 10
    assert s.macs == 64 * 32 + 32 * 10 and s.rows[0].macs == s.macs
    assert any(n.startswith("matrix products only") for n in s.notes)


def test_a_linear_over_a_sequence_counts_every_position():
    net = nn.Sequential(nn.Embedding(157, 8), nn.Linear(8, 4))
    net.train()
    s = summarize_module(net, DATASETS["names"])
    assert s.model == "Sequential"
    assert {r.label: r.macs for r in s.rows}["1 (Linear)"] == 20 * (8 * 4 + 4)  # torchinfo alone: 36
    assert net.training  # the module's mode is restored


def test_frozen_parameters_show_as_partial_or_no():
    net = build_model("mlp", DATASETS["digits"])
    net[1].bias.requires_grad_(False)
    net[3].requires_grad_(False)
    s = summarize_module(net, DATASETS["digits"], name="mlp")
    trainable = {r.label: r.trainable for r in s.rows}
    assert trainable == {"Sequential": "partial", "0 (Flatten)": "-", "1 (Linear)": "partial", "2 (ReLU)": "-",
                         "3 (Linear)": "no"}  # fmt: skip
    assert s.trainable_params == 64 * 256
    assert s.total_params - s.trainable_params == 256 + 2570


def test_the_default_dataset_is_the_one_the_model_is_made_for():
    assert default_dataset("gru") == "names"
    assert DATASETS[default_dataset("cnn")].recommended.model == "cnn"
    first_for_cnn = next(d for d, spec in DATASETS.items() if spec.recommended.model == "cnn")
    assert default_dataset("cnn") == first_for_cnn
    # a model no dataset recommends: the first it fits
    no_one_recommends = next(m for m in MODELS if all(s.recommended.model != m for s in DATASETS.values()))
    first_fit = next(d for d, spec in DATASETS.items() if MODELS[no_one_recommends].incompatibility(spec) is None)
    assert default_dataset(no_one_recommends) == first_fit


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --- dltui summary ---


def test_cli_prints_an_80_column_table_and_the_totals():
    result = cli("summary", "mlp", "--dataset", "mnist")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("mlp on mnist: input 1x28x28 (float32)")
    assert "1 (Linear)" in out and "1x256" in out and "200,960" in out
    assert "params   203,530 (all trainable)" in out
    assert "MACs     203,530 per sample (204 k)" in out
    assert "weights 814 kB" in out
    for model in ("inception", "resnet", "gru"):  # the widest tables
        wide = cli("summary", model)
        assert wide.exit_code == 0, wide.output
        assert max(map(len, wide.output.splitlines())) <= 80, wide.output


def test_cli_defaults_to_the_models_own_dataset_and_speaks_json():
    result = cli("summary", "gru", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["model"], data["dataset"], data["input_dtype"]) == ("gru", "names", "int64")
    assert data["total_params"] == sum(r["params"] for r in data["rows"] if r["depth"] == 1)
    assert [r["label"] for r in data["rows"]][1:] == ["embedding (Embedding)", "rnn (GRU)", "fc (Linear)"]


def test_cli_bad_input_is_one_line():
    result = cli("summary", "mlpp")
    assert result.exit_code == 2
    line = one_line_error(result)
    assert line.startswith("dltui: error: unknown model 'mlpp'; did you mean 'mlp'? (choose from: ")

    result = cli("summary", "cnn", "--dataset", "digits")
    assert result.exit_code == 2
    line = one_line_error(result)
    assert line.startswith("dltui: error: --dataset: cnn does not fit digits (cnn needs larger images than 8x8)")
    assert "cnn fits: " in line and "mnist" in line

    result = cli("summary", "mlp", "-d", "mnst")
    assert result.exit_code == 2
    assert "did you mean 'mnist'?" in one_line_error(result)
