"""``run.json``: it round-trips, and a missing, malformed or mismatched run is a one-line error naming the file."""

from __future__ import annotations

import json

import pytest

from seg.errors import ValidationError
from seg.train.run import BEST_WEIGHTS, CHECKPOINTS, RunInfo, load_run, read_run_info, write_run_info
from seg.train.spec import ModelSpec, Normalization
from tests.train.runs import write_untrained_run

SPEC = ModelSpec("unet_small", None, 32, 32, 3, 3)
CLASSES = ["background", "a", "b"]


def test_run_info_round_trips(tmp_path):
    info = RunInfo(
        SPEC,
        CLASSES,
        Normalization((1.0, 2.0, 3.0), (4.0, 5.0, 6.0), 1.0),
        data={"train": 3},
        training={"loss": "ce", "class_weights": [1.0, 2.0, 3.0]},
        epochs_done=2,
        best={"epoch": 1, "monitor": "val_mean_iou", "value": 0.5},
        seg_version="9",
        backend="tensorflow",
        notes=["n"],
    )
    write_run_info(tmp_path, info)
    assert read_run_info(tmp_path) == info
    assert not [p for p in tmp_path.iterdir() if p.name != "run.json"]  # no temporary file left


@pytest.mark.parametrize(
    "text",
    [
        "{",  # truncated
        "[]",  # wrong type
        json.dumps({"model": {"architecture": "unet"}}),  # fields missing
        json.dumps({"model": [], "classes": [], "normalization": {}}),
    ],
)
def test_malformed_run_files_are_refused_by_name(tmp_path, text):
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(ValidationError, match="malformed run file") as error:
        read_run_info(tmp_path)
    assert error.value.path == str(tmp_path / "run.json")


def test_a_folder_without_run_json_is_not_a_run(tmp_path):
    with pytest.raises(ValidationError, match="not a training run"):
        read_run_info(tmp_path)


def test_missing_or_foreign_weights_are_refused(tmp_path):
    run = write_untrained_run(tmp_path / "run", SPEC, CLASSES)
    assert load_run(run).model.output_shape == (None, 32, 32, 3)
    with pytest.raises(ValueError):
        load_run(run, which="middle")
    (run / CHECKPOINTS / BEST_WEIGHTS).write_bytes(b"not hdf5")
    with pytest.raises(ValidationError, match="weights do not fit"):
        load_run(run)
    (run / CHECKPOINTS / BEST_WEIGHTS).unlink()
    with pytest.raises(ValidationError, match="no trained weights"):
        load_run(run)
    other = write_untrained_run(tmp_path / "other", ModelSpec("unet_small", None, 32, 32, 3, 5), [*CLASSES, "c", "d"])
    (run / CHECKPOINTS / BEST_WEIGHTS).write_bytes((other / CHECKPOINTS / BEST_WEIGHTS).read_bytes())
    with pytest.raises(ValidationError, match="weights do not fit"):
        load_run(run)
