"""``seg predict`` and :func:`seg.train.predict.predict_images`: outputs that line up with the images, a Dataset that
curate reads, resuming, and the refusals (foreign output folders, other settings, band counts, unreadable images)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from seg import cli_options as opt
from seg.cli_predict import predict
from seg.dataset import rle as coco_rle
from seg.dataset.store import load_dataset
from seg.errors import ImageError, OptionError, OutputExistsError, ValidationError
from seg.train.keras_env import import_keras
from seg.train.predict import predict_images
from seg.train.run import LoadedRun, RunInfo, load_run
from seg.train.sliding import predict_probabilities
from seg.train.spec import ModelSpec, Normalization
from tests.train.folders import scene, write_mask_folder
from tests.train.runs import write_untrained_run

CLASSES = ["background", "class1", "class2"]
SPEC = ModelSpec("unet_small", None, 32, 32, 3, 3)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder as ``seg train`` leaves it, with untrained but fixed weights."""
    return write_untrained_run(tmp_path_factory.mktemp("run"), SPEC, CLASSES, seed=0)


@pytest.fixture(scope="module")
def loaded(run_dir) -> LoadedRun:
    return load_run(run_dir)


def write_images(folder: Path) -> Path:
    """Two tile-sized images, one larger and non-square (several windows), one smaller in a subfolder, and a text
    file that is not an input."""
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in (("a.png", (32, 32)), ("b.jpg", (32, 32)), ("big.png", (50, 80)), ("sub/small.png", (20, 24))):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene(rng, size, 3)[0]).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    return folder


def masks_of(out: Path) -> dict[str, Path]:
    return {p.relative_to(out / "masks").as_posix(): p for p in sorted((out / "masks").rglob("*.png"))}


def test_a_folder_gets_masks_overlays_and_a_dataset_that_line_up(tmp_path, run_dir, loaded):
    images = write_images(tmp_path / "images")
    out = tmp_path / "pred"
    summary = predict_images(run_dir, images, out, min_area=0)
    assert set(masks_of(out)) == {"a.png", "b.png", "big.png", "sub/small.png"}
    assert summary["images"] == summary["predicted"] == 4 and summary["resumed"] == 0
    assert summary["ignored_files"] == 1 and summary["skipped"] == []
    assert json.loads((out / "summary.json").read_text())["objects"] == summary["objects"]
    assert json.loads((out / "classes.json").read_text()) == {"0": "background", "1": "class1", "2": "class2"}
    dataset = load_dataset(out / "dataset")
    assert dataset.category_names == ["class1", "class2"]
    assert dataset.images["file_name"].tolist() == ["a.png", "b.jpg", "big.png", "sub/small.png"]
    assert dataset.images["image_id"].tolist() == ["a", "b", "big", "sub/small"]
    assert summary["objects"] == len(dataset.objects) > 0
    objects = dataset.objects
    assert objects["score"].between(0, 1).all() and set(objects["origin"]) == {"prediction"}
    for row in dataset.images.itertuples():
        image = Image.open(dataset.image_path(row.image_id))
        mask = Image.open(out / "masks" / f"{row.image_id}.png")
        assert mask.mode == "L" and mask.size == image.size == (row.width, row.height)
        assert Image.open(out / "overlays" / f"{row.image_id}.jpg").size == image.size
        labels = np.asarray(mask)
        assert labels.max() < 3
        # with min_area 0 the objects of a class tile exactly that class's pixels
        mine = objects[objects["image_id"] == row.image_id]
        for index, name in enumerate(CLASSES[1:], start=1):
            union = np.zeros(labels.shape, np.uint8)
            for rle in mine.loc[mine["category"] == name, "rle"]:
                union += coco_rle.decode(rle, row.height, row.width)
            assert np.array_equal(union, labels == index), (row.image_id, name)
    # the large image's mask is the argmax of the sliding window, not a resized single pass
    pixels = np.asarray(Image.open(images / "big.png"))
    expected = predict_probabilities(loaded.model, Normalization.imagenet().apply(pixels), (32, 32)).argmax(-1)
    assert np.array_equal(np.asarray(Image.open(out / "masks" / "big.png")), expected)
    page = (out / "index.html").read_text()
    assert "sub/small.png" in page and page.count("data:image/jpeg;base64,") == 4


def test_a_second_run_resumes_without_predicting_again(tmp_path, loaded):
    images = write_images(tmp_path / "images")
    out = tmp_path / "pred"
    first = predict_images(loaded, images, out)
    stamps = {k: p.stat().st_mtime_ns for k, p in masks_of(out).items()}
    objects = load_dataset(out / "dataset").objects
    second = predict_images(loaded, images, out)
    assert second["predicted"] == 0 and second["resumed"] == 4
    assert {k: p.stat().st_mtime_ns for k, p in masks_of(out).items()} == stamps
    assert load_dataset(out / "dataset").objects.equals(objects)
    assert second["objects"] == first["objects"]
    (out / "masks" / "big.png").unlink()  # an interrupted run: this image was not finished
    third = predict_images(loaded, images, out)
    assert third["predicted"] == 1 and third["resumed"] == 3
    assert load_dataset(out / "dataset").objects.equals(objects)


def test_other_settings_or_foreign_folders_are_refused(tmp_path, loaded):
    images = write_images(tmp_path / "images")
    out = tmp_path / "pred"
    predict_images(loaded, images, out)
    with pytest.raises(OutputExistsError, match="other settings") as error:
        predict_images(loaded, images, out, overlap=0.5)
    assert "overlap=0.25" in str(error.value.expected)
    assert predict_images(loaded, images, out, overlap=0.5, overwrite=True)["predicted"] == 4
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not a seg predict folder"):
        predict_images(loaded, images, foreign)
    assert (foreign / "keep.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError):
        predict_images(loaded, images, tmp_path / "file")
    with pytest.raises(OptionError, match="hold the inputs"):
        predict_images(loaded, images, images, overwrite=True)
    with pytest.raises(OptionError, match="hold the inputs"):
        predict_images(loaded, images, tmp_path, overwrite=True)
    assert (images / "a.png").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert predict_images(loaded, images, empty)["predicted"] == 4


def test_an_output_inside_the_image_folder_is_not_read_as_input(tmp_path, loaded):
    images = write_images(tmp_path / "images")
    predict_images(loaded, images, images / "pred")
    again = predict_images(loaded, images, images / "pred")
    assert again["images"] == 4 and again["resumed"] == 4


def test_another_band_count_stops_the_run_naming_the_file(tmp_path, loaded):
    import rasterio
    from rasterio.transform import Affine

    images = write_images(tmp_path / "images")
    profile = {"driver": "GTiff", "height": 32, "width": 32, "count": 4, "dtype": "uint16", "crs": "EPSG:3857"}
    profile["transform"] = Affine(10, 0, 500, 0, -10, 900)
    with rasterio.open(images / "four.tif", "w", **profile) as raster:
        raster.write(np.ones((4, 32, 32), np.uint16))
    with pytest.raises(ValidationError, match="band count") as error:
        predict_images(loaded, images, tmp_path / "pred")
    assert error.value.path == str(images / "four.tif")
    assert (error.value.expected, error.value.actual) == (3, 4)


def test_unreadable_images_are_skipped_with_a_note_or_stop_the_run(tmp_path, loaded):
    images = write_images(tmp_path / "images")
    data = (images / "a.png").read_bytes()
    (images / "truncated.png").write_bytes(data[: len(data) // 2])
    (images / "fake.jpg").write_text("not a jpeg")
    (images / "a.jpeg").write_bytes((images / "b.jpg").read_bytes())  # same name without suffix as a.png
    summary = predict_images(loaded, images, tmp_path / "pred")
    assert summary["images"] == summary["predicted"] == 4
    assert sorted(Path(s["path"]).name for s in summary["skipped"]) == ["a.png", "fake.jpg", "truncated.png"]
    assert "fake.jpg" in (tmp_path / "pred" / "index.html").read_text()
    assert len(load_dataset(tmp_path / "pred" / "dataset").images) == 4
    with pytest.raises(ValidationError, match="same name without suffix"):
        predict_images(loaded, images, tmp_path / "strict", on_error="raise")
    (images / "a.jpeg").unlink()
    with pytest.raises(ImageError) as error:
        predict_images(loaded, images, tmp_path / "strict", on_error="raise")
    assert Path(error.value.path).name in {"fake.jpg", "truncated.png"}


def test_a_split_mask_folder_is_predicted_per_split_and_curate_pairs_its_images(tmp_path, loaded):
    from seg.curate.agreement import agreement_signals
    from seg.formats import read

    folder = write_mask_folder(tmp_path / "masks", train=2, test=2, size=(32, 32))
    out = tmp_path / "pred"
    summary = predict_images(loaded, folder, out)
    assert set(masks_of(out)) == {
        "train/train_000.png",
        "train/train_001.png",
        "test/test_000.png",
        "test/test_001.png",
    }
    assert summary["images"] == 4
    predictions = read(out / "dataset")  # as `seg curate --predictions DIR/dataset` reads it
    assert set(predictions.images["split"]) == {"train", "test"}
    assert predictions.image_path("test_001") == folder / "test" / "images" / "test_001.png"
    annotated = read(folder, "masks")
    _, images = agreement_signals(annotated, predictions=predictions)
    assert images["prediction_disagreement"].notna().all()  # every image paired with its prediction


def test_one_file_and_many_classes(tmp_path):
    """A single image file; a model of 300 classes writes 16-bit masks."""
    keras = import_keras()
    inputs = keras.Input((32, 32, 3))
    layer = keras.layers.Conv2D(300, 1)
    model = keras.Model(inputs, layer(inputs))
    bias = np.zeros(300, np.float32)
    bias[280] = 5.0
    layer.set_weights([np.zeros((1, 1, 3, 300), np.float32), bias])
    weights = tmp_path / "w.weights.h5"
    model.save_weights(weights)
    classes = ["background", *(f"c{i}" for i in range(1, 300))]
    info = RunInfo(ModelSpec("unet_small", None, 32, 32, 3, 300), classes, Normalization.imagenet())
    image = write_images(tmp_path / "images") / "big.png"
    summary = predict_images(LoadedRun(tmp_path, info, model, weights), image, tmp_path / "pred")
    assert summary["images"] == 1 and summary["objects"] == 1
    mask = Image.open(tmp_path / "pred" / "masks" / "big.png")
    assert mask.mode == "I;16" and (np.asarray(mask) == 280).all()
    assert load_dataset(tmp_path / "pred" / "dataset").objects["category"].tolist() == ["c280"]


def cli():
    return opt.SegGroup(commands={"predict": predict})


def test_the_command_writes_and_reports(tmp_path, run_dir):
    images = write_images(tmp_path / "images")
    out = tmp_path / "pred"
    result = CliRunner().invoke(cli(), ["predict", str(run_dir), str(images), "-o", str(out), "--min-area", "2"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["images"] == 4 and printed["skipped"] == 0 and printed["min_area"] == 2
    assert (out / "index.html").is_file() and len(masks_of(out)) == 4


def test_the_command_reports_errors_in_one_line(tmp_path, run_dir):
    images = write_images(tmp_path / "images")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    result = CliRunner().invoke(cli(), ["predict", str(run_dir), str(images), "-o", str(tmp_path / "taken")])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "--overwrite" in result.stderr
    result = CliRunner().invoke(cli(), ["predict", str(images), str(images), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "not a training run" in result.stderr
    result = CliRunner().invoke(cli(), ["predict", str(run_dir), str(images), "-o", "o", "--overlap", "1.5"])
    assert result.exit_code == 2


def test_help_imports_no_keras():
    code = (
        "import sys; from click.testing import CliRunner; from seg.cli_predict import predict; "
        "r = CliRunner().invoke(predict, ['--help']); assert r.exit_code == 0 and 'IMAGES' in r.output; "
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'imported'"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
