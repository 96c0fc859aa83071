"""``seg train --resume``: a run killed after an epoch ends with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from seg.cli import cli
from seg.train.checkpoints import read_log
from seg.train.fit import TrainConfig, train
from tests.train.folders import write_mask_folder
from tests.train.runs import stored

SEG = str(Path(sys.executable).with_name("seg"))
OPTIONS = ["--model", "unet_small", "--epochs", "2", "--batch-size", "4", "--lr", "0.01", "--seed", "3"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The data folder and an uninterrupted 2-epoch run with the options of :data:`OPTIONS`."""
    root = tmp_path_factory.mktemp("resume")
    data = write_mask_folder(root / "data", train=8, test=4, size=(32, 32))
    config = TrainConfig(data, root / "reference", "unet_small", epochs=2, batch_size=4, learning_rate=0.01, seed=3)
    train(config)
    return data, config.out


def epochs_done(run: Path) -> int:
    try:
        return json.loads((run / "run.json").read_text())["epochs_done"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def invoke(*args):
    return CliRunner().invoke(cli, ["train", *map(str, args)])


def test_a_run_killed_after_an_epoch_resumes_to_the_same_weights(reference, tmp_path):
    data, uninterrupted = reference
    run = tmp_path / "run"
    process = subprocess.Popen(
        [SEG, "train", str(data), *OPTIONS, "-o", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600
    while epochs_done(run) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert epochs_done(run) == 1, "the training process was to be killed after its first epoch"

    result = invoke("--resume", "-o", run)
    assert result.exit_code == 0, result.output
    assert "resuming after epoch 1 of 2" in result.stderr and "seg: epoch 2/2" in result.stderr
    assert result.stdout.startswith("best epoch ")

    expected, got = (
        stored(uninterrupted / "checkpoints" / "epoch-0002.weights.h5"),
        stored(run / "checkpoints" / "epoch-0002.weights.h5"),
    )
    assert len(expected) > 100 and expected.keys() == got.keys() and any(k.startswith("optimizer") for k in got)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    assert read_log(run / "log.csv") == read_log(uninterrupted / "log.csv")
    resumed, whole = (json.loads((r / "run.json").read_text()) for r in (run, uninterrupted))
    assert (resumed["epochs_done"], resumed["best"]) == (whole["epochs_done"], whole["best"])


def test_resuming_a_finished_run_changes_nothing(reference):
    _, run = reference
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = invoke("--resume", "-o", run)
    assert result.exit_code == 0, result.output
    assert "already trained 2 of 2 epochs: nothing to do" in result.stderr
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_resume_with_more_epochs_trains_on(reference, tmp_path):
    _, finished = reference
    run = shutil.copytree(finished, tmp_path / "run")
    result = invoke("--resume", "--epochs", "3", "-o", run)
    assert result.exit_code == 0, result.output
    _, rows = read_log(run / "log.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    info = json.loads((run / "run.json").read_text())
    assert info["epochs_done"] == 3 and info["training"]["epochs"] == 3
    assert (run / "checkpoints" / "epoch-0003.weights.h5").is_file()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--lr", "0.5"], "--lr (run: 0.01, given: 0.5)"),
        (["--model", "unet"], "--model (run: unet_small, given: unet)"),
        (["--no-augment"], "--no-augment (run: on, given: off)"),
        (["--size", "64x64"], "--size (run: 32x32, given: 64x64)"),
    ],
)
def test_resume_with_other_options_is_refused_naming_them(reference, args, words):
    _, run = reference
    before = (run / "run.json").read_bytes()
    result = invoke("--resume", *args, "-o", run)
    assert result.exit_code == 2, result.output
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (run / "run.json").read_bytes() == before


def test_resume_with_the_same_options_given_again_is_accepted(reference):
    data, run = reference
    result = invoke(data, *OPTIONS, "--resume", "-o", run)
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.stderr


def test_resume_of_a_folder_that_is_not_a_run_is_an_error(tmp_path):
    result = invoke("--resume", "-o", tmp_path)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"seg: error: {tmp_path}: not a training run")
