"""``seg evaluate``: scores that agree with ``seg predict``'s masks compared pixel by pixel, the split chosen, the
plot, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from seg import cli_options as opt
from seg.cli_evaluate import evaluate
from seg.errors import OutputExistsError, ValidationError
from seg.train.evaluate import evaluate_run
from seg.train.predict import predict_images
from seg.train.spec import ModelSpec
from tests.train.folders import write_mask_folder
from tests.train.runs import write_untrained_run

CLASSES = ["background", "class1", "class2"]
SPEC = ModelSpec("unet_small", None, 32, 32, 3, 3)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder with untrained but fixed weights: its predictions are arbitrary, which is all the agreement
    checks need."""
    return write_untrained_run(tmp_path_factory.mktemp("run"), SPEC, CLASSES, seed=3)


@pytest.fixture(scope="module")
def masks(tmp_path_factory) -> Path:
    # 48 x 40 images: larger than the 32 x 32 tile, so evaluation goes through the sliding window
    return write_mask_folder(tmp_path_factory.mktemp("masks") / "m", train=3, test=3, size=(48, 40), seed=4)


def confusion_from_files(predicted: Path, truth: Path, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), np.int64)
    for mask in sorted(truth.glob("*.png")):
        t = np.asarray(Image.open(mask)).astype(np.int64)
        p = np.asarray(Image.open(predicted / mask.name)).astype(np.int64)
        matrix += np.bincount((t * classes + p).ravel(), minlength=classes * classes).reshape(classes, classes)
    return matrix


def test_scores_agree_with_predicted_masks(tmp_path, run_dir, masks):
    metrics = evaluate_run(run_dir, masks, tmp_path / "eval")
    predict_images(run_dir, masks / "test" / "images", tmp_path / "pred", min_area=0)
    expected = confusion_from_files(tmp_path / "pred" / "masks", masks / "test" / "masks", 3)
    assert metrics["split"] == "test" and metrics["images"] == 3
    assert np.array_equal(np.asarray(metrics["confusion_matrix"]), expected)
    assert metrics["pixel_accuracy"] == pytest.approx(np.trace(expected) / expected.sum())
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert written["confusion_matrix"] == metrics["confusion_matrix"]
    assert set(written["per_class_iou"]) == set(CLASSES)
    with Image.open(tmp_path / "eval" / "confusion.png") as plot:
        assert plot.format == "PNG" and min(plot.size) > 200


def test_split_is_chosen_and_missing_split_refused(tmp_path, run_dir, masks):
    train = evaluate_run(run_dir, masks, tmp_path / "train", split="train")
    assert train["split"] == "train" and train["images"] == 3
    with pytest.raises(ValidationError, match="no images to evaluate"):
        evaluate_run(run_dir, masks, tmp_path / "nothing", split="val")


def test_existing_output_is_kept_unless_overwrite(tmp_path, run_dir, masks):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        evaluate_run(run_dir, masks, out)
    assert (out / "keep.txt").read_text() == "mine"
    evaluate_run(run_dir, masks, out, overwrite=True)
    assert (out / "metrics.json").is_file()


def test_band_count_mismatch_names_the_file(tmp_path, run_dir):
    geotiffs = write_mask_folder(tmp_path / "five", train=1, test=1, size=(32, 32), geotiff_bands=5)
    with pytest.raises(ValidationError, match="band count") as error:
        evaluate_run(run_dir, geotiffs, tmp_path / "eval")
    assert error.value.path.endswith(".tif")


def test_cli_prints_a_summary_and_fails_in_one_line(tmp_path, run_dir, masks):
    group = opt.SegGroup()
    group.add_command(evaluate)
    result = CliRunner().invoke(group, ["evaluate", str(run_dir), str(masks), "-o", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["images"] == 3 and 0 <= summary["mean_iou"] <= 1
    not_a_run = CliRunner().invoke(group, ["evaluate", str(masks), str(masks), "-o", str(tmp_path / "f")])
    assert not_a_run.exit_code == 1
    assert not_a_run.output.count("\n") == 1 and "not a training run" in not_a_run.output
