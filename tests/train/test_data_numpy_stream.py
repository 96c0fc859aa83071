"""The numpy input pipeline (Keras PyDataset, for backends without TensorFlow): shapes and dtypes, the tf.data path's
epoch order and evaluation windows, image/mask alignment under augmentation, epochs that are pure functions of (seed,
epoch) whatever the threads or the order of access, resuming, errors, and a short training run through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seg.errors import ImageError, OptionError, ValidationError
from seg.train.data import (
    Augment,
    Sample,
    epoch_order,
    make_dataset,
    normalization_for,
    numpy_stream,
    read_label,
    scan_folder,
)
from seg.train.data.numpy_stream import make_numpy_dataset, resize_bilinear, resize_nearest, window_starts
from seg.train.data.pipeline import INPUT_VARIABLE, input_pipeline
from seg.train.keras_env import import_keras
from seg.train.rasters import read_input
from seg.train.spec import Normalization
from tests.train.folders import write_encoded_folder, write_mask_folder
from tests.train.runs import stored

keras = import_keras()
RAW = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 1.0)
PLAIN = Augment(flips=False, rot90=False, scale=None, brightness=0, contrast=0)


def _batches(dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(x), np.asarray(y)) for x, y in dataset]


def test_the_pipeline_choice(monkeypatch) -> None:
    monkeypatch.delenv(INPUT_VARIABLE, raising=False)
    assert input_pipeline() == "tf"  # TensorFlow is installed for the tests
    assert input_pipeline("numpy") == "numpy"
    monkeypatch.setenv(INPUT_VARIABLE, "numpy")
    assert input_pipeline() == "numpy" and input_pipeline("tf") == "tf"
    monkeypatch.setenv(INPUT_VARIABLE, "torch")
    with pytest.raises(OptionError):
        input_pipeline()


def test_shapes_dtypes_and_lengths(tmp_path: Path, monkeypatch) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=5, test=3))
    options = {"size": (32, 32), "normalization": normalization_for(scan), "batch_size": 2}
    monkeypatch.setenv(INPUT_VARIABLE, "numpy")  # make_dataset dispatches on it
    train = make_dataset(scan.train, training=True, augment=Augment(), epochs=3, **options)
    assert isinstance(train, keras.utils.PyDataset) and train.steps == 2 and len(train) == 3 * 2
    batches = _batches(train)
    assert len(batches) == 6
    images, labels = batches[0]
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.float32
    assert labels.shape == (2, 32, 32) and labels.dtype == np.int32
    assert -3 < float(np.mean(images)) < 3 and set(np.unique(labels)) <= {0, 1, 2}
    test = _batches(make_dataset(scan.test, training=False, **options))  # 4 windows per 64x64 image
    assert [len(x) for x, _ in test] == [2] * 6 and test[0][0].dtype == np.float32 and test[0][1].dtype == np.int32


def test_epochs_follow_epoch_order_as_the_tf_data_path(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=7, test=0, size=(32, 32)))
    options = {"size": (32, 32), "normalization": RAW, "batch_size": 3, "training": True, "seed": 5, "epochs": 2}
    stream = _batches(make_numpy_dataset(scan.train, augment=None, **options))
    reference = _batches(make_dataset(scan.train, augment=None, pipeline="tf", **options))
    assert len(stream) == len(reference) == 2 * 2  # full batches only: one image left out per epoch
    for (x, y), (x2, y2) in zip(stream, reference, strict=True):  # whole images: no crop, resize or turn to differ
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    order, _ = epoch_order(7, 3, seed=5, epoch=1)
    np.testing.assert_array_equal(stream[3][0][0], read_input(scan.train[order[3]].image))


def test_augmentation_turns_and_flips(tmp_path: Path) -> None:
    scan = scan_folder(write_encoded_folder(tmp_path / "d", count=1))
    options = {"size": (48, 48), "normalization": RAW, "batch_size": 1, "training": True, "epochs": 16}
    fixed = {y.tobytes() for _, y in _batches(make_numpy_dataset(scan.train, augment=PLAIN, **options))}
    turned = {y.tobytes() for _, y in _batches(make_numpy_dataset(scan.train, augment=Augment(scale=None), **options))}
    assert len(turned) > len(fixed)
    label = read_label(scan.train[0].mask)  # 48x64: a 48x48 crop at one of 17 columns, then turned or flipped
    crops = [label[:, left : left + 48] for left in range(17)]
    dihedral = {np.ascontiguousarray(np.rot90(m, k)).tobytes() for c in crops for m in (c, c.T) for k in range(4)}
    assert fixed <= {c.tobytes() for c in crops} and turned <= dihedral


def test_brightness_and_contrast_change_the_image_only(tmp_path: Path) -> None:
    scan = scan_folder(write_encoded_folder(tmp_path / "d", count=2))
    options = {"size": (48, 48), "normalization": RAW, "batch_size": 2, "training": True, "epochs": 1}
    geometry = {"flips": False, "rot90": False, "scale": None}
    plain = _batches(make_numpy_dataset(scan.train, augment=Augment(**geometry, brightness=0, contrast=0), **options))
    lit = _batches(make_numpy_dataset(scan.train, augment=Augment(**geometry, brightness=5, contrast=0.5), **options))
    np.testing.assert_array_equal(plain[0][1], lit[0][1])
    assert not np.allclose(plain[0][0], lit[0][0])


def test_epochs_are_pure_functions_of_seed_and_epoch(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=6, test=0))
    options = {
        "size": (32, 32), "normalization": normalization_for(scan), "batch_size": 3, "training": True, "seed": 7,
        "augment": Augment(), "epochs": 3,
    }  # fmt: skip
    whole = _batches(make_numpy_dataset(scan.train, **options))
    resumed = _batches(make_numpy_dataset(scan.train, start_epoch=2, **options))
    one_thread = _batches(make_numpy_dataset(scan.train, threads=0, cache=False, **options))
    stream = make_numpy_dataset(scan.train, threads=3, **options)
    backwards = [stream[i] for i in reversed(range(len(stream)))][::-1]  # another order, batches built ahead
    assert len(whole) == 6 and len(resumed) == 2
    for (x, y), (x2, y2) in zip(whole[4:], resumed, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    for (x, y), (x2, y2), (x3, y3) in zip(whole, one_thread, backwards, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(x, x3)
        np.testing.assert_array_equal(y, y2)
        np.testing.assert_array_equal(y, y3)
    assert not np.array_equal(whole[0][0], whole[2][0])  # epochs differ
    reseeded = _batches(make_numpy_dataset(scan.train, **{**options, "seed": 8}))
    assert not np.array_equal(whole[0][0], reseeded[0][0])


@pytest.mark.parametrize(("shape", "size"), [((64, 96), (32, 64)), ((50, 70), (32, 32)), ((20, 40), (32, 32))])
def test_evaluation_windows_cover_every_pixel(tmp_path: Path, shape, size) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=1, test=3, size=shape))
    stream = make_numpy_dataset(scan.test, size=size, normalization=RAW, batch_size=3, training=False)
    images = np.concatenate([x for x, _ in _batches(stream)])
    labels = np.concatenate([y for _, y in _batches(stream)])
    reference = _batches(make_dataset(scan.test, size=size, normalization=RAW, batch_size=3, training=False))
    np.testing.assert_allclose(images, np.concatenate([x for x, _ in reference]), atol=1e-3)
    np.testing.assert_array_equal(labels, np.concatenate([y for _, y in reference]))
    at = 0
    for sample in scan.test:
        image, label = read_input(sample.image).astype(np.float32), read_label(sample.mask)
        if shape[0] < size[0] or shape[1] < size[1]:  # resized up to cover the window first
            image, label = resize_bilinear(image, (32, 64)), resize_nearest(label, (32, 64))
        seen = np.zeros(label.shape, bool)
        for top, left in window_starts(shape, size, "tiles"):
            window = np.s_[top : top + size[0], left : left + size[1]]
            np.testing.assert_allclose(images[at], image[window], atol=1e-3)
            np.testing.assert_array_equal(labels[at], label[window])
            seen[window] = True
            at += 1
        assert seen.all()
    assert at == len(images)


def test_evaluation_center_and_resize_modes(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=1, test=2, size=(64, 96)))
    options = {"normalization": RAW, "batch_size": 4, "training": False}
    for mode, size in (("center", (32, 32)), ("resize", (32, 48)), ("center", (128, 128))):
        (x, y), *_ = _batches(make_numpy_dataset(scan.test, size=size, eval_mode=mode, **options))
        (x2, y2), *_ = _batches(make_dataset(scan.test, size=size, eval_mode=mode, pipeline="tf", **options))
        assert x.shape == (2, *size, 3) and y.shape == (2, *size)
        np.testing.assert_allclose(x, x2, atol=1e-3)
        np.testing.assert_array_equal(y, y2)


def test_resizing_agrees_with_tensorflow() -> None:
    import tensorflow as tf

    rng = np.random.default_rng(3)
    image = rng.integers(0, 65535, (37, 53, 4)).astype(np.uint16)
    labels = rng.integers(0, 5, (37, 53)).astype(np.uint8)
    for size in ((32, 32), (64, 96), (37, 20)):
        expected = tf.image.resize(image, size, method="bilinear").numpy()
        np.testing.assert_allclose(resize_bilinear(image, size), expected, rtol=1e-5, atol=0.05)
        nearest = tf.image.resize(labels[..., None], size, method="nearest").numpy()[..., 0]
        np.testing.assert_array_equal(resize_nearest(labels, size), nearest)


def test_errors(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=4, test=0, size=(32, 32), classes=3))
    options = {"size": (32, 32), "normalization": RAW, "batch_size": 2, "training": True}
    with pytest.raises(OptionError):
        make_numpy_dataset(scan.train, **{**options, "batch_size": 5})
    with pytest.raises(OptionError):
        make_numpy_dataset(scan.train, epochs=2, start_epoch=2, **options)
    with pytest.raises(OptionError):
        make_numpy_dataset(scan.train, **{**options, "training": False}, eval_mode="zoom")
    with pytest.raises(ValidationError) as error:
        make_numpy_dataset(scan.train, bands=4, **options)
    assert error.value.path == str(scan.train[0].image)
    bad = next(s for s in scan.train if read_label(s.mask).max() == 2)
    with pytest.raises(ValidationError) as error:  # decoded into memory: raised at once
        make_numpy_dataset(scan.train, classes=2, **options)
    assert error.value.path == str(bad.mask)
    lazy = make_numpy_dataset(scan.train, classes=2, cache=False, epochs=4, **options)
    with pytest.raises(ValidationError):  # from the files: raised when a batch holding it is built
        _batches(lazy)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(small)
    with pytest.raises(ImageError):
        make_numpy_dataset([Sample(scan.train[0].image, small, "train")], **{**options, "batch_size": 1})


def test_training_and_resuming_through_the_numpy_stream(tmp_path: Path, monkeypatch) -> None:
    from seg.train.checkpoints import read_log
    from seg.train.fit import TrainConfig, train

    monkeypatch.setenv(INPUT_VARIABLE, "numpy")
    built = []
    original = numpy_stream.TrainingStream.build
    monkeypatch.setattr(numpy_stream.TrainingStream, "build", lambda self, i: built.append(i) or original(self, i))
    data = write_mask_folder(tmp_path / "data", train=8, test=4, size=(32, 32))
    options = {"architecture": "unet_small", "batch_size": 4, "learning_rate": 0.01, "seed": 3}
    whole = train(TrainConfig(data, tmp_path / "whole", epochs=2, **options))
    assert sorted(set(built)) == list(range(4))  # 2 epochs of 2 steps, from the numpy stream
    _, rows = read_log(tmp_path / "whole" / "log.csv")
    assert whole.epochs_done == 2 and [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(np.isfinite(float(r["loss"])) and "val_mean_iou" in r for r in rows)
    train(TrainConfig(data, tmp_path / "split", epochs=1, **options))
    resumed = train(TrainConfig(data, tmp_path / "split", epochs=2, **options), resume=True)
    assert resumed.epochs_done == 2
    expected = stored(tmp_path / "whole" / "checkpoints" / "epoch-0002.weights.h5")
    found = stored(tmp_path / "split" / "checkpoints" / "epoch-0002.weights.h5")
    assert expected.keys() == found.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(found[name], value, err_msg=name)
