"""scan_folder: pairing, splits, class names, 0/255 masks, and every bad input raising a ValidationError naming the
file."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seg.errors import ValidationError
from seg.train.data import scan_folder
from tests.train.folders import write_mask_folder


def test_split_folder(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d", train=5, test=3, classes=4)
    scan = scan_folder(root)
    assert scan.classes == ["background", "class1", "class2", "class3"]
    assert [s.image.name for s in scan.train] == [f"train_{i:03d}.png" for i in range(5)]
    assert [s.mask.parent.parent.name for s in scan.test] == ["test"] * 3
    assert {s.split for s in scan.train} == {"train"} and {s.split for s in scan.test} == {"test"}
    assert (scan.bands, scan.dtype, scan.size, scan.mask_scale) == (3, "uint8", (64, 64), 1)
    assert {(s.image_reader, s.mask_reader) for s in scan.train} == {("graph", "png8")}


def test_validation_split_of_a_flat_folder_is_seeded(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d", train=10, test=0)
    flat = tmp_path / "flat"
    (root / "train").rename(flat)
    first = scan_folder(flat, validation_split=0.3, seed=1)
    again = scan_folder(flat, validation_split=0.3, seed=1)
    other = scan_folder(flat, validation_split=0.3, seed=2)
    assert len(first.train) == 7 and len(first.test) == 3
    assert first.test == again.test and {s.split for s in first.test} == {"test"}
    assert {s.image for s in first.train} | {s.image for s in first.test} == {s.image for s in scan_folder(flat).train}
    assert [s.image for s in other.test] != [s.image for s in first.test]
    assert first.classes == ["background", "1", "2"]  # no class map beside the masks: named by value
    assert any("no class map" in note for note in first.notes)


def test_validation_split_ignored_when_there_is_a_test_split(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=4, test=2), validation_split=0.5)
    assert len(scan.train) == 4 and len(scan.test) == 2
    assert any("ignored" in note for note in scan.notes)


def test_classes_option_overrides_the_class_map(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", classes=3), classes=["bg", "road", "car", "tree"])
    assert scan.classes == ["bg", "road", "car", "tree"]
    with pytest.raises(ValidationError) as error:
        scan_folder(tmp_path / "d", classes=["bg", "road"])
    assert error.value.actual == 2


def test_binary_255_masks_are_scaled(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", binary_255=True))
    assert scan.mask_scale == 255 and scan.classes == ["background", "class1"]
    assert any("0/255" in note for note in scan.notes)
    (tmp_path / "d" / "classes.json").unlink()
    assert scan_folder(tmp_path / "d").mask_scale == 255


def test_sixteen_bit_and_palette_masks_get_their_readers(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d", train=3, test=0)
    masks = sorted((root / "train" / "masks").iterdir())
    label = np.asarray(Image.open(masks[0]))
    Image.fromarray(label.astype(np.uint16)).save(masks[0])
    palette = Image.new("P", (64, 64))
    palette.putdata(np.asarray(Image.open(masks[1])).ravel().tolist())
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette.save(masks[1])
    scan = scan_folder(root)
    assert [s.mask_reader for s in scan.train] == ["png16", "python", "png8"]


def _error(root: Path) -> ValidationError:
    with pytest.raises(ValidationError) as error:
        scan_folder(root)
    return error.value


def test_image_without_mask_and_mask_without_image(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d")
    (root / "train" / "masks" / "train_002.png").unlink()
    error = _error(root)
    assert error.message == "image without a mask" and error.path.endswith("train/images/train_002.png")
    assert error.item_id == "train/train_002"
    root = write_mask_folder(tmp_path / "e")
    (root / "test" / "images" / "test_001.png").unlink()
    error = _error(root)
    assert error.message == "mask without an image" and error.path.endswith("test/masks/test_001.png")


def test_broken_image_link_is_named(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d")
    image = root / "train" / "images" / "train_001.png"
    image.unlink()
    image.symlink_to(tmp_path / "gone.png")
    error = _error(root)
    assert error.message == "image link is broken" and error.path == str(image)


def test_links_to_images_outside_the_folder_are_followed(tmp_path: Path) -> None:
    # seg convert --copy-images link writes symbolic links when it cannot hard-link
    root = write_mask_folder(tmp_path / "d")
    image = root / "train" / "images" / "train_001.png"
    outside = tmp_path / "elsewhere.png"
    image.rename(outside)
    image.symlink_to(outside)
    assert scan_folder(root).train[1].image == image


def test_mask_value_above_the_classes(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d", classes=3)
    mask = root / "test" / "masks" / "test_003.png"
    label = np.asarray(Image.open(mask)).copy()
    label[5, 7] = 3
    Image.fromarray(label).save(mask)
    error = _error(root)
    assert error.path == str(mask) and error.actual == 3 and error.item_id == "test/test_003"


def test_mask_size_differs(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d")
    mask = root / "train" / "masks" / "train_004.png"
    Image.fromarray(np.zeros((64, 63), np.uint8)).save(mask)
    error = _error(root)
    assert error.path == str(mask) and error.actual == "63x64" and error.expected.startswith("64x64")


def test_band_count_differs(tmp_path: Path) -> None:
    import rasterio

    root = write_mask_folder(tmp_path / "d", geotiff_bands=5)
    image = root / "train" / "images" / "train_003.tif"
    profile = {"driver": "GTiff", "height": 64, "width": 64, "count": 4, "dtype": "uint16"}
    with rasterio.open(image, "w", **profile) as out:
        out.write(np.zeros((4, 64, 64), np.uint16))
    error = _error(root)
    assert error.path == str(image) and error.actual == "4 bands of uint16" and "5 bands" in error.expected


def test_truncated_png(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d")
    image = root / "train" / "images" / "train_005.png"
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    error = _error(root)
    assert error.path == str(image) and "truncated" in error.message


def test_truncated_mask(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d")
    mask = root / "train" / "masks" / "train_005.png"
    mask.write_bytes(mask.read_bytes()[:-20])
    assert _error(root).path == str(mask)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_decompression_bomb_header(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d")
    image = root / "train" / "images" / "train_000.png"
    image.write_bytes(_png_header_only(100_000, 100_000))
    error = _error(root)
    assert error.path == str(image) and "decompression bomb" in error.message


def test_text_file_named_png(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d")
    image = root / "test" / "images" / "test_000.png"
    image.write_text("not an image\n")
    error = _error(root)
    assert error.path == str(image) and error.message == "not a readable image"


def test_colour_mask(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d")
    mask = root / "train" / "masks" / "train_001.png"
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[10:20, 10:20] = (255, 0, 0)
    Image.fromarray(rgb).save(mask)
    error = _error(root)
    assert error.path == str(mask) and "colour mask" in error.message


def test_jpeg_mask(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d")
    mask = root / "train" / "masks" / "train_001.png"
    mask.unlink()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(mask.with_suffix(".jpg"))
    error = _error(root)
    assert error.path == str(mask.with_suffix(".jpg")) and "JPEG mask" in error.message


def test_empty_and_incomplete_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert _error(tmp_path / "empty").message == "not a mask folder"
    assert _error(tmp_path / "missing").message == "not a mask folder"
    for kind in ("images", "masks"):
        (tmp_path / "bare" / kind).mkdir(parents=True)
    assert _error(tmp_path / "bare").message == "no training images"
    root = write_mask_folder(tmp_path / "d")
    (root / "train").rename(root / "other")
    error = _error(root)
    assert error.message == "no train/ split" and error.actual == ["other", "test"]


def test_unused_split_folders_are_noted(tmp_path: Path) -> None:
    root = write_mask_folder(tmp_path / "d", train=3, test=2)
    (root / "test").rename(root / "val")
    write_mask_folder(tmp_path / "e", train=2, test=0)
    (tmp_path / "e" / "train").rename(root / "test")
    scan = scan_folder(root)
    assert {s.split for s in scan.test} == {"val"} and len(scan.test) == 2
    assert any("not used: test" in note for note in scan.notes)


def test_mixed_sizes_give_no_common_size(tmp_path: Path) -> None:
    write_mask_folder(tmp_path / "d", train=2, test=0, size=(64, 64))
    write_mask_folder(tmp_path / "e", train=1, test=0, size=(32, 48), seed=3)
    for kind in ("images", "masks"):
        (tmp_path / "e" / "train" / kind / "train_000.png").rename(tmp_path / "d" / "train" / kind / "small.png")
    scan = scan_folder(tmp_path / "d")
    assert scan.size is None and len(scan.train) == 3
    assert json.loads((tmp_path / "d" / "classes.json").read_text())["0"] == "background"
