"""``seg train`` options: usage errors exit 2, bad data and existing outputs exit 1, and ``--help`` imports no Keras."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from seg.cli import cli
from seg.cli_train import LOSSES, parse_class_weights, parse_hw
from tests.train.folders import write_mask_folder


def invoke(*args):
    return CliRunner().invoke(cli, ["train", *map(str, args)])


@pytest.fixture
def data(tmp_path):
    return write_mask_folder(tmp_path / "data", train=4, test=0, size=(32, 32))


def test_help_imports_neither_keras_nor_tensorflow():
    code = (
        "import sys; from click.testing import CliRunner; from seg.cli import cli; "
        "result = CliRunner().invoke(cli, ['train', '--help']); "
        "assert result.exit_code == 0 and '--resume' in result.output, result.output; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_loss_choices_are_the_library_s():
    from seg.train.losses import LOSSES as LIBRARY_LOSSES

    assert LOSSES == LIBRARY_LOSSES


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--epochs", "1"], "missing --model"),
        (["--model", "unet_small"], "missing --epochs"),
        (["--model", "nope", "--epochs", "1"], "'nope' is not one of"),
        (["--model", "unet_small", "--epochs", "0"], "--epochs"),
        (["--model", "unet_small", "--epochs", "1", "--size", "30x30"], "multiples of 32"),
        (["--model", "unet_small", "--epochs", "1", "--size", "big"], "WIDTHxHEIGHT"),
        (["--model", "unet_small", "--epochs", "1", "--class-weights", "1,x"], "auto, none or weights"),
        (["--model", "unet_small", "--epochs", "1", "--validation-split", "1"], "--validation-split"),
        (["--model", "unet_small", "--epochs", "1", "--resume", "--overwrite"], "give one"),
        (["--model", "fcn8", "--encoder", "none", "--epochs", "1", "--batch-size", "2"], "does not take encoder"),
        (["--model", "unet_small", "--epochs", "1"], "batch size larger than the training set"),
    ],
)
def test_usage_errors_exit_2(data, tmp_path, args, words):
    result = invoke(data, *args, "-o", tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert not (tmp_path / "run").exists()


def test_data_is_needed_unless_resuming(tmp_path):
    result = invoke("--model", "unet_small", "--epochs", "1", "-o", tmp_path / "run")
    assert result.exit_code == 2 and "missing DATA" in result.output


def test_an_existing_run_folder_is_refused_in_one_line(data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    result = invoke(data, "--model", "unet_small", "--epochs", "1", "-o", run)
    assert result.exit_code == 1
    assert result.stderr == f"seg: error: {run}: output exists; pass --overwrite to replace it\n"
    assert (run / "run.json").read_text() == "{}"


def test_bad_data_exits_1_in_one_line(data, tmp_path):
    (data / "train" / "images" / "train_002.png").write_bytes(b"not a png")
    result = invoke(data, "--model", "unet_small", "--epochs", "1", "-o", tmp_path / "run")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seg: error: ") and "train_002.png" in lines[0]


def test_size_is_width_first_like_image_size_and_becomes_the_model_shape():
    assert parse_hw(None, None, "64x32") == (32, 64)  # 64 wide, 32 high: the model's (height, width)
    assert parse_hw(None, None, None) is None
    with pytest.raises(click.BadParameter):
        parse_hw(None, None, "64x0")


def test_class_weights_option():
    assert parse_class_weights(None, None, "auto") == "auto"
    assert parse_class_weights(None, None, "None") == "none"
    assert parse_class_weights(None, None, "0.5,1,2") == (0.5, 1.0, 2.0)
    with pytest.raises(click.BadParameter):
        parse_class_weights(None, None, "1,-1")


def test_overwrite_replaces_an_earlier_run_and_keeps_other_files(data, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "epoch-0007.weights.h5").write_bytes(b"old run")
    (run / "notes.txt").write_text("mine")
    result = invoke(data, "--model", "unet_small", "--epochs", "1", "--batch-size", "2", "-o", run, "--overwrite")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"best epoch 1 of 1: mean_iou {_best(run):.4f}; run: {run}\n"
    assert "seg: epoch 1/1: loss " in result.stderr and "seg: note: no validation images" in result.stderr
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "best.weights.h5",
        "epoch-0001.weights.h5",
        "last.keras",
    ]
    assert (run / "notes.txt").read_text() == "mine"


def _best(run):
    import json

    return json.loads((run / "run.json").read_text())["best"]["value"]
