"""Training into a run folder: the files, run.json, the CSV log, the best weights, and the errors found up front."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from seg.errors import OptionError, OutputExistsError, ValidationError
from seg.train.checkpoints import read_log
from seg.train.fit import TrainConfig, summary, train
from seg.train.keras_env import import_keras
from seg.train.run import load_run, read_run_info
from tests.train.folders import write_mask_folder

keras = import_keras()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch unet_small run on a 32x32 folder (8 training, 4 test images), with what it reported."""
    root = tmp_path_factory.mktemp("fit")
    data = write_mask_folder(root / "data", train=8, test=4, size=(32, 32))
    notes, epochs = [], []
    config = TrainConfig(data, root / "run", "unet_small", epochs=2, batch_size=4, learning_rate=0.01)
    info = train(config, notes=notes.append, progress=lambda e, n, logs: epochs.append((e, n, dict(logs))))
    return config, info, notes, epochs


def test_the_run_folder_holds_every_file_and_nothing_else(trained):
    config, *_ = trained
    run = config.out
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "log.csv", "run.json"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "best.weights.h5",
        "epoch-0001.weights.h5",
        "epoch-0002.weights.h5",
        "last.keras",
    ]


def test_run_json_describes_the_model_data_and_training(trained):
    config, info, *_ = trained
    saved = json.loads((config.out / "run.json").read_text())
    assert saved["epochs_done"] == 2 and info.epochs_done == 2
    assert saved["model"] == {
        "architecture": "unet_small",
        "encoder": None,
        "height": 32,
        "width": 32,
        "bands": 3,
        "classes": 3,
        "encoder_weights": "imagenet",
    }
    assert saved["classes"] == ["background", "class1", "class2"]
    assert saved["data"]["train"] == 8 and saved["data"]["test"] == 4 and saved["data"]["mask_scale"] == 1
    assert saved["data"]["root"] == str(config.data.resolve())
    training = saved["training"]
    assert (training["epochs"], training["batch_size"], training["learning_rate"], training["loss"]) == (
        2,
        4,
        0.01,
        "ce",
    )
    assert training["seed"] == 0 and training["augment"] is True and training["precision_policy"] == "float32"
    assert saved["backend"] == "tensorflow" and saved["normalization"]["scale"] == 255.0
    assert any("random initialisation" in note for note in saved["notes"])
    assert read_run_info(config.out).to_dict() == info.to_dict()


def test_log_has_one_row_per_epoch_and_best_is_the_best_logged_epoch(trained):
    config, info, _, epochs = trained
    header, rows = read_log(config.out / "log.csv")
    assert header[0] == "epoch" and {"loss", "mean_iou", "val_loss", "val_mean_iou", "iou_class1"} <= set(header)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    values = [float(r["val_mean_iou"]) for r in rows]
    best = int(np.argmax(values)) + 1
    assert info.best == {"epoch": best, "monitor": "val_mean_iou", "value": values[best - 1]}
    assert [(e, n) for e, n, _ in epochs] == [(1, 2), (2, 2)]
    assert [logs["val_mean_iou"] for *_, logs in epochs] == values
    assert (
        summary(info, config.out) == f"best epoch {best} of 2: val_mean_iou {values[best - 1]:.4f}; run: {config.out}"
    )


def test_best_weights_are_those_of_the_best_epoch(trained):
    config, info, *_ = trained
    best = load_run(config.out).model
    epoch = load_run(config.out, which="last").model
    epoch.load_weights(config.out / "checkpoints" / f"epoch-{info.best['epoch']:04d}.weights.h5")
    other = keras.models.clone_model(epoch)
    other.load_weights(config.out / "checkpoints" / f"epoch-{3 - info.best['epoch']:04d}.weights.h5")
    for got, want in zip(best.get_weights(), epoch.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(a, b) for a, b in zip(best.get_weights(), other.get_weights(), strict=True))


def test_last_keras_is_the_compiled_model_after_the_last_epoch(trained):
    config, *_ = trained
    from seg.train import losses, metrics  # noqa: F401  (register seg's losses and metrics with Keras)

    model = keras.saving.load_model(config.out / "checkpoints" / "last.keras")
    last = load_run(config.out, which="last").model
    assert int(model.optimizer.iterations) == 4  # 2 epochs of 8 images in batches of 4
    for got, want in zip(model.get_weights(), last.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_notes_reach_the_caller(trained):
    _, _, notes, _ = trained
    assert any("random initialisation" in note for note in notes)


def test_a_folder_without_test_split_holds_out_images_and_auto_weights_classes(tmp_path):
    data = write_mask_folder(tmp_path / "data", train=8, test=0, size=(32, 32))
    config = TrainConfig(
        data, tmp_path / "run", "unet_small", epochs=1, batch_size=2, class_weights="auto", validation_split=0.25
    )
    notes: list[str] = []
    info = train(config, notes=notes.append)
    assert (info.data["train"], info.data["test"]) == (6, 2)
    weights = info.training["class_weight_values"]
    assert len(weights) == 3 and info.training["class_weights"] == "auto"
    assert weights[0] < 1 < max(weights[1:])  # background is the most frequent class: it weighs least
    assert any(note.startswith("class weights (auto)") for note in notes)
    assert info.best["monitor"] == "val_mean_iou" and math.isfinite(info.best["value"])


def test_an_existing_run_folder_is_refused_before_anything_else(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    config = TrainConfig(tmp_path / "no-data", out, "unet_small", epochs=1)
    with pytest.raises(OutputExistsError):
        train(config)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_bad_data_is_a_validation_error_naming_the_file(tmp_path):
    data = write_mask_folder(tmp_path / "data", train=4, test=0, size=(32, 32))
    missing = data / "train" / "masks" / "train_001.png"
    missing.unlink()
    with pytest.raises(ValidationError) as error:
        train(TrainConfig(data, tmp_path / "run", "unet_small", epochs=1))
    assert "train_001" in str(error.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("size", "options", "words"),
    [
        ((40, 40), {}, "not multiples of 32"),
        ((32, 32), {"class_weights": (1.0, 2.0)}, "one class weight per class"),
        ((32, 32), {"architecture": "fcn8", "encoder": None}, "does not take encoder"),
        ((32, 32), {"batch_size": 16}, "batch size larger than the training set"),
    ],
)
def test_options_the_data_or_model_cannot_take_are_option_errors(tmp_path, size, options, words):
    data = write_mask_folder(tmp_path / "data", train=4, test=0, size=size)
    config = TrainConfig(
        **{"data": data, "out": tmp_path / "run", "architecture": "unet_small", "epochs": 1, "batch_size": 2, **options}
    )
    with pytest.raises(OptionError) as error:
        train(config)
    assert words in str(error.value)
    assert not (tmp_path / "run").exists()


def test_images_of_different_sizes_need_a_size(tmp_path):
    data = write_mask_folder(tmp_path / "data", train=2, test=0, size=(32, 32))
    write_mask_folder(tmp_path / "more", train=2, test=0, size=(64, 64), seed=1)
    for kind in ("images", "masks"):
        for path in (tmp_path / "more" / "train" / kind).iterdir():
            path.rename(data / "train" / kind / f"big_{path.name}")
    with pytest.raises(OptionError) as error:
        train(TrainConfig(data, tmp_path / "run", "unet_small", epochs=1))
    assert "differ in size" in str(error.value) and "--size" in str(error.value)


@pytest.mark.parametrize(
    "options",
    [{"epochs": 0}, {"batch_size": 0}, {"learning_rate": 0.0}, {"mixed_precision": "maybe"}, {"validation_split": 1.0}],
)
def test_config_rejects_impossible_values(tmp_path, options):
    with pytest.raises(OptionError):
        TrainConfig(tmp_path, tmp_path / "run", "unet_small", **options)


def test_config_resolves_the_default_encoder(tmp_path):
    assert TrainConfig(tmp_path, tmp_path / "run", "fcn8").encoder == "vgg16"
    assert TrainConfig(tmp_path, tmp_path / "run", "unet").encoder is None
    assert TrainConfig(tmp_path, tmp_path / "run", "unet", encoder="resnet50").encoder == "resnet50"
