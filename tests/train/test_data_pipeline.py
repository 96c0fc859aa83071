"""make_dataset: shapes and dtypes, the resume property, image/mask alignment under augmentation, normalisation of
multi-band rasters, 0/255 masks, evaluation windows, and graph decoding agreeing with seg's Python readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seg.errors import OptionError
from seg.train.data import (
    Augment,
    Sample,
    epoch_order,
    make_dataset,
    normalization_for,
    read_label,
    scan_folder,
    steps_per_epoch,
)
from seg.train.rasters import read_input
from seg.train.spec import Normalization
from tests.train.folders import write_encoded_folder, write_mask_folder

RAW = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 1.0)


def _batches(dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(x), np.asarray(y)) for x, y in dataset]


def test_shapes_and_dtypes(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=5, test=3))
    dataset = make_dataset(
        scan.train, size=(32, 32), normalization=normalization_for(scan), batch_size=2, training=True,
        augment=Augment(), epochs=3,
    )  # fmt: skip
    batches = list(dataset)
    assert len(batches) == 3 * steps_per_epoch(5, 2) == 6
    images, labels = batches[0]
    assert images.shape == (2, 32, 32, 3) and images.dtype.name == "float32"
    assert labels.shape == (2, 32, 32) and labels.dtype.name == "int32"
    assert -3 < float(np.mean(images)) < 3 and set(np.unique(labels)) <= {0, 1, 2}


def test_steps_and_epoch_order() -> None:
    assert steps_per_epoch(10, 3) == 3
    with pytest.raises(OptionError):
        steps_per_epoch(2, 3)
    order, seeds = epoch_order(10, 3, seed=4, epoch=2)
    again, _ = epoch_order(10, 3, seed=4, epoch=2)
    other, _ = epoch_order(10, 3, seed=4, epoch=3)
    assert len(order) == 9 and len(set(order.tolist())) == 9 and seeds.shape == (9, 2)
    assert (order == again).all() and not (order == other).all()


def test_resumed_stream_repeats_the_uninterrupted_one(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=6, test=0))
    options = {
        "size": (32, 32), "normalization": normalization_for(scan), "batch_size": 3, "training": True, "seed": 7,
        "augment": Augment(), "epochs": 3,
    }  # fmt: skip
    whole = _batches(make_dataset(scan.train, **options))
    resumed = _batches(make_dataset(scan.train, start_epoch=2, **options))
    assert len(whole) == 6 and len(resumed) == 2
    for (x, y), (x2, y2) in zip(whole[4:], resumed, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(whole[0][0], whole[2][0])  # epochs differ
    reseeded = _batches(make_dataset(scan.train, **{**options, "seed": 8}))
    assert not np.array_equal(whole[0][0], reseeded[0][0])


@pytest.mark.parametrize("pipeline", ["tf", "numpy"])
@pytest.mark.parametrize("scale", [None, (0.6, 1.4)])
def test_augmentation_keeps_image_and_mask_aligned(tmp_path: Path, scale, pipeline) -> None:
    scan = scan_folder(write_encoded_folder(tmp_path / "d"))
    augment = Augment(scale=scale, brightness=0, contrast=0)
    dataset = make_dataset(
        scan.train,
        size=(32, 32),
        normalization=RAW,
        batch_size=4,
        training=True,
        augment=augment,
        epochs=4,
        pipeline=pipeline,
    )
    pure = 0
    for images, labels in _batches(dataset):
        value = images[..., 0]
        np.testing.assert_array_equal(images[..., 0], images[..., 2])
        assert (labels[value < 0.5] == 0).all() and (labels[value > 249.5] == 1).all()
        pure += int(((value < 0.5) | (value > 249.5)).sum())
        if scale is None:  # pure crops, flips and rotations: every pixel agrees
            np.testing.assert_array_equal(value, labels * 250.0)
    assert pure > 0.8 * 4 * 4 * 32 * 32


def test_augmentation_changes_the_geometry(tmp_path: Path) -> None:
    scan = scan_folder(write_encoded_folder(tmp_path / "d", count=1))
    plain = Augment(flips=False, rot90=False, scale=None, brightness=0, contrast=0)
    options = {"size": (48, 48), "normalization": RAW, "batch_size": 1, "training": True, "epochs": 12}
    fixed = {y.tobytes() for _, y in _batches(make_dataset(scan.train, augment=plain, **options))}
    turned = {y.tobytes() for _, y in _batches(make_dataset(scan.train, augment=Augment(scale=None), **options))}
    assert len(turned) > len(fixed)


def test_brightness_and_contrast_change_the_image_only(tmp_path: Path) -> None:
    scan = scan_folder(write_encoded_folder(tmp_path / "d", count=2))
    options = {"size": (48, 48), "normalization": RAW, "batch_size": 2, "training": True, "epochs": 1}
    geometry = {"flips": False, "rot90": False, "scale": None}
    plain = _batches(make_dataset(scan.train, augment=Augment(**geometry, brightness=0, contrast=0), **options))
    lit = _batches(make_dataset(scan.train, augment=Augment(**geometry, brightness=5, contrast=0.5), **options))
    np.testing.assert_array_equal(plain[0][1], lit[0][1])
    assert not np.allclose(plain[0][0], lit[0][0])


def test_multiband_geotiff_is_normalised(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=3, test=2, geotiff_bands=5))
    normalization = normalization_for(scan)
    dataset = make_dataset(scan.test, size=(64, 64), normalization=normalization, batch_size=2, training=False, bands=5)
    (images, labels), *_ = _batches(dataset)
    raw = read_input(scan.test[0].image).astype(np.float64)
    expected = (raw - np.array(normalization.mean)) / np.array(normalization.std)
    np.testing.assert_allclose(images[0], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels[0], read_label(scan.test[0].mask))
    training = make_dataset(
        scan.train, size=(32, 32), normalization=normalization, batch_size=3, training=True, bands=5, epochs=2
    )
    stacked = np.concatenate([x for x, _ in _batches(training)]).reshape(-1, 5)
    assert np.abs(stacked.mean(axis=0)).max() < 0.5 and 0.5 < stacked.std(axis=0).min() < 1.5


def test_binary_255_masks_become_0_and_1(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=4, test=2, binary_255=True))
    for training in (True, False):
        dataset = make_dataset(
            scan.train, size=(32, 32), normalization=normalization_for(scan), batch_size=2, training=training,
            mask_scale=scan.mask_scale,
        )  # fmt: skip
        labels = np.concatenate([y for _, y in _batches(dataset)])
        assert set(np.unique(labels)) == {0, 1}


def test_evaluation_modes(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=2, test=3, size=(64, 96)))
    options = {"normalization": RAW, "batch_size": 4, "training": False}
    tiles = _batches(make_dataset(scan.test, size=(32, 64), **options))
    assert [len(x) for x, _ in tiles] == [4, 4, 4]  # 2 x 2 windows per image: the last two overlap by 32 columns
    image, label = read_input(scan.test[0].image), read_label(scan.test[0].mask)
    np.testing.assert_array_equal(tiles[0][0][1], image[:32, 32:96])
    np.testing.assert_array_equal(tiles[0][1][2], label[32:, :64])
    (center, center_labels), *_ = _batches(make_dataset(scan.test, size=(32, 32), eval_mode="center", **options))
    np.testing.assert_array_equal(center[0], image[16:48, 32:64])
    np.testing.assert_array_equal(center_labels[0], label[16:48, 32:64])
    (small, small_labels), *_ = _batches(make_dataset(scan.test, size=(32, 48), eval_mode="resize", **options))
    assert small.shape == (3, 32, 48, 3) and set(np.unique(small_labels)) <= set(np.unique(label)) | {0}
    (big, _), *_ = _batches(make_dataset(scan.test, size=(128, 128), eval_mode="center", **options))
    assert big.shape == (3, 128, 128, 3)  # resized up to cover 128 x 128, then cropped
    with pytest.raises(OptionError):
        make_dataset(scan.test, size=(32, 32), eval_mode="zoom", **options)


def _write_rgb_variants(folder: Path, rgb: np.ndarray) -> list[Path]:
    folder.mkdir(parents=True)
    grey = rgb.mean(axis=2).astype(np.uint8)
    alpha = np.full(grey.shape, 128, np.uint8)
    files = {
        "rgb.png": Image.fromarray(rgb),
        "rgba.png": Image.fromarray(np.dstack([rgb, alpha])),
        "grey.png": Image.fromarray(grey),
        "grey_alpha.png": Image.fromarray(np.dstack([grey, alpha])).convert("LA"),
        "palette.png": Image.fromarray(rgb).quantize(16),
        "photo.jpg": Image.fromarray(rgb),
        "grey.jpg": Image.fromarray(grey),
    }
    for name, image in files.items():
        image.save(folder / name)
    return [folder / name for name in files]


def test_graph_decoding_agrees_with_the_python_reader(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    files = _write_rgb_variants(tmp_path / "images", rgb)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(mask)
    graph = [Sample(f, mask, "test") for f in files]
    python = [Sample(f, mask, "test", image_reader="python") for f in files]
    options = {"size": (32, 32), "normalization": RAW, "batch_size": len(files), "training": False}
    (from_graph, _), *_ = _batches(make_dataset(graph, **options))
    (from_python, _), *_ = _batches(make_dataset(python, **options))
    for index, file in enumerate(files):
        truth = np.asarray(Image.open(file).convert("RGB"), np.float32)
        np.testing.assert_array_equal(from_python[index], read_input(file).astype(np.float32))
        if file.suffix == ".jpg":  # libjpeg builds differ slightly in chroma upsampling (worst on pure noise)
            assert np.abs(from_graph[index] - truth).mean() < 1.0 and np.abs(from_graph[index] - truth).max() <= 6
            continue
        np.testing.assert_array_equal(from_graph[index], truth, err_msg=file.name)
        np.testing.assert_array_equal(from_graph[index], from_python[index], err_msg=file.name)


def test_mixed_mask_readers_in_one_dataset(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d", train=4, test=0, classes=3)
    masks = sorted((root / "train" / "masks").iterdir())
    labels = [np.asarray(Image.open(m)) for m in masks]
    Image.fromarray(labels[1].astype(np.uint16)).save(masks[1])
    palette = Image.new("P", (64, 64))
    palette.putdata(labels[2].ravel().tolist())
    palette.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0] + [0] * 759)
    palette.save(masks[2])
    scan = scan_folder(root)
    assert sorted({s.mask_reader for s in scan.train}) == ["png16", "png8", "python"]
    dataset = make_dataset(scan.train, size=(64, 64), normalization=RAW, batch_size=4, training=False, classes=3)
    (_, decoded), *_ = _batches(dataset)
    np.testing.assert_array_equal(decoded, np.stack(labels).astype(np.int32))


def test_option_errors(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=3, test=0))
    options = {"size": (32, 32), "normalization": RAW, "training": True}
    with pytest.raises(OptionError):
        make_dataset(scan.train, batch_size=4, **options)
    with pytest.raises(OptionError):
        make_dataset(scan.train, batch_size=2, epochs=2, start_epoch=2, **options)
    with pytest.raises(OptionError):
        make_dataset([], batch_size=2, **options)
    with pytest.raises(OptionError):
        Augment(scale=(1.2, 0.8))
    assert Augment.from_dict(Augment(scale=None, brightness=0.2).to_dict()) == Augment(scale=None, brightness=0.2)


def _rgb_and_geotiff(tmp_path: Path, kind: str):
    if kind == "rgb":
        return scan_folder(write_mask_folder(tmp_path / "d", train=5, test=3, size=(64, 80)))
    return scan_folder(write_mask_folder(tmp_path / "d", train=5, test=3, size=(64, 80), geotiff_bands=5))


@pytest.mark.parametrize("kind", ["rgb", "geotiff"])
def test_memory_and_files_give_identical_batches(tmp_path: Path, kind: str) -> None:
    scan = _rgb_and_geotiff(tmp_path, kind)
    common = {"size": (32, 32), "normalization": normalization_for(scan), "bands": scan.bands, "classes": 3}
    train = {**common, "batch_size": 2, "training": True, "seed": 3, "augment": Augment(), "epochs": 3}
    from_files = _batches(make_dataset(scan.train, cache=False, **train))
    in_memory = _batches(make_dataset(scan.train, cache=True, **train))
    resumed = _batches(make_dataset(scan.train, cache=True, start_epoch=2, **train))
    assert len(from_files) == len(in_memory) == 3 * 2 and len(resumed) == 2
    for (x, y), (x2, y2) in zip(from_files, in_memory, strict=True):
        np.testing.assert_array_equal(x, x2)  # bit for bit
        np.testing.assert_array_equal(y, y2)
    for (x, y), (x2, y2) in zip(from_files[4:], resumed, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    for mode in ("tiles", "resize"):
        evaluation = {**common, "batch_size": 4, "training": False, "eval_mode": mode}
        files = _batches(make_dataset(scan.test, cache=False, **evaluation))
        memory = _batches(make_dataset(scan.test, cache=True, **evaluation))
        assert len(files) == len(memory) > 0
        for (x, y), (x2, y2) in zip(files, memory, strict=True):
            np.testing.assert_array_equal(x, x2)
            np.testing.assert_array_equal(y, y2)


def test_memory_keeps_the_stored_dtype(tmp_path: Path) -> None:
    from seg.train.data.decode import image_dtype
    from seg.train.data.memory import decoded_bytes, mask_dtype, stored_images

    rgb = scan_folder(write_mask_folder(tmp_path / "rgb", train=3, test=0, size=(64, 80)))
    tif = scan_folder(write_mask_folder(tmp_path / "tif", train=3, test=0, size=(64, 80), geotiff_bands=5))
    for scan, dtype, itemsize in ((rgb, "uint8", 1), (tif, "uint16", 2)):
        images = stored_images(scan.train)
        assert {(i.height, i.width, i.bands, i.dtype) for i in images} == {(64, 80, scan.bands, dtype)}
        assert image_dtype(i.dtype for i in images) == dtype
        assert decoded_bytes(images, dtype, mask_dtype(3, ["png8"])) == 3 * 64 * 80 * (scan.bands * itemsize + 1)
    assert image_dtype(["uint8", "uint16"]) == "uint16" and image_dtype(["uint32"]) == "float32"
    assert mask_dtype(3, ["python"]) == "uint8" and mask_dtype(None, ["png8", "png16"]) == "uint16"
    assert mask_dtype(None, ["python"]) == "int32" and mask_dtype(300, ["png16"]) == "uint16"


def test_memory_holds_the_pixels(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=4, test=0))
    options = {"size": (32, 32), "normalization": RAW, "batch_size": 2, "training": True, "augment": Augment()}
    before = _batches(make_dataset(scan.train, cache=True, **options))
    in_memory = make_dataset(scan.train, cache=True, **options)
    from_files = make_dataset(scan.train, cache=False, **options)
    for sample in scan.train:
        sample.image.unlink()
    after = _batches(in_memory)
    for (x, y), (x2, y2) in zip(before, after, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    import tensorflow as tf

    with pytest.raises(tf.errors.NotFoundError):
        _batches(from_files)


def test_cache_choice(tmp_path: Path) -> None:
    from seg.train.data.memory import MAX_MEMORY, hold_in_memory, memory_budget

    assert 0 < memory_budget() <= MAX_MEMORY
    assert hold_in_memory("auto", 99, budget=100) and not hold_in_memory("auto", 100, budget=100)
    assert hold_in_memory(True, 10**15) and not hold_in_memory(False, 1)
    assert hold_in_memory("auto", 1) and not hold_in_memory("auto", MAX_MEMORY)
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=2, test=0))
    for bad in ("yes", 1, None):
        with pytest.raises(OptionError):
            make_dataset(scan.train, size=(32, 32), normalization=RAW, batch_size=2, training=False, cache=bad)


def test_images_of_different_sizes(tmp_path: Path) -> None:
    small = scan_folder(write_mask_folder(tmp_path / "a", train=3, test=0, size=(48, 40), seed=1))
    large = scan_folder(write_mask_folder(tmp_path / "b", train=3, test=0, size=(64, 96), seed=2))
    samples = [s for pair in zip(small.train, large.train, strict=True) for s in pair]
    train = {
        "size": (32, 32),
        "normalization": RAW,
        "batch_size": 3,
        "training": True,
        "augment": Augment(),
        "epochs": 2,
    }
    files, memory = (_batches(make_dataset(samples, cache=c, **train)) for c in (False, True))
    for (x, y), (x2, y2) in zip(files, memory, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    evaluation = {"size": (32, 32), "normalization": RAW, "batch_size": 50, "training": False}
    (tiles, labels), *_ = _batches(make_dataset(samples, cache=True, **evaluation))
    assert len(tiles) == 3 * (2 * 2) + 3 * (2 * 3)  # 48x40 -> 2 x 2 windows, 64x96 -> 2 x 3
    np.testing.assert_array_equal(tiles[0], read_input(samples[0].image)[:32, :32])
    np.testing.assert_array_equal(tiles[4 + 4], read_input(samples[1].image)[32:, 32:64])
    np.testing.assert_array_equal(labels[4 + 4], read_label(samples[1].mask)[32:, 32:64])


def test_resized_labels_are_nearest_neighbours(tmp_path: Path) -> None:
    import tensorflow as tf

    scan = scan_folder(write_mask_folder(tmp_path / "d", train=2, test=2, size=(64, 96), classes=4))
    for size in ((40, 56), (100, 130), (64, 96)):
        dataset = make_dataset(
            scan.test, size=size, normalization=RAW, batch_size=2, training=False, eval_mode="resize"
        )
        (_, labels), *_ = _batches(dataset)
        for index, sample in enumerate(scan.test):
            expected = tf.image.resize(read_label(sample.mask)[..., None], size, method="nearest")[..., 0]
            np.testing.assert_array_equal(labels[index], expected.numpy())


def test_mask_value_not_a_class(tmp_path: Path) -> None:
    import tensorflow as tf

    from seg.errors import ValidationError

    root = write_mask_folder(tmp_path / "d", train=3, test=0, classes=3)
    samples = scan_folder(root).train
    Image.fromarray(np.full((64, 64), 7, np.uint8)).save(samples[1].mask)
    options = {"size": (32, 32), "normalization": RAW, "batch_size": 3, "training": False, "classes": 3}
    with pytest.raises(ValidationError) as error:
        make_dataset(samples, cache=True, **options)
    assert error.value.path == str(samples[1].mask) and error.value.actual == 7
    with pytest.raises(tf.errors.InvalidArgumentError):
        _batches(make_dataset(samples, cache=False, **options))
