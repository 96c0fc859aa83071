import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from seg.dataset import kaggle_rle, rle
from seg.dataset.core import Category, Dataset
from seg.dataset.problems import Problems
from seg.errors import FormatError, ImageError, OutputExistsError, UnsafePathError
from seg.formats import kaggle, masks
from tests.strategies import masks as mask_strategy

AIRBUS = "ImageId,EncodedPixels\n000.jpg,\n001.jpg,1 3 10 2\n001.jpg,20 5\n002.jpg,\n003.jpg,7 1\n"
IMATERIALIST = (
    "ImageId,EncodedPixels,Height,Width,ClassId,AttributesIds\n"
    "abc,1 3 10 2,5,6,6_1_3,115\n"
    "abc,4 2,5,6,2,\n"
    "xyz,5 5,4,4,31,7\n"
)


def write(tmp_path: Path, text: str, name: str = "train.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- detection and reading ----------------------------------------------------------------------------------------


def test_detect(tmp_path):
    assert kaggle.detect(write(tmp_path, AIRBUS))
    assert kaggle.detect(write(tmp_path, IMATERIALIST, "b.csv"))
    assert kaggle.detect(write(tmp_path, "\ufeffimageid,encodedpixels\n", "bom.csv"))
    assert not kaggle.detect(write(tmp_path, "id,rle_mask\n", "other.csv"))
    assert not kaggle.detect(write(tmp_path, AIRBUS, "train.txt"))
    assert not kaggle.detect(tmp_path)


def test_airbus_rows_images_and_objects(tmp_path):
    ds = kaggle.load(write(tmp_path, AIRBUS), image_size=(6, 5))
    assert ds.images["image_id"].tolist() == ["000", "001", "002", "003"]  # images without objects are kept
    assert ds.images["file_name"].tolist() == ["000.jpg", "001.jpg", "002.jpg", "003.jpg"]
    assert ds.category_names == ["object"] and ds.image_root is None
    objects = ds.objects
    assert objects["image_id"].tolist() == ["001", "001", "003"]
    assert objects["source_id"].tolist() == ["row 2", "row 3", "row 5"]
    assert objects["area"].tolist() == [5, 5, 1]
    for row in objects.itertuples():
        text = {"row 2": "1 3 10 2", "row 3": "20 5", "row 5": "7 1"}[row.source_id]
        assert np.array_equal(rle.decode(row.rle, 5, 6), kaggle_rle.decode(text, 5, 6))
    assert kaggle.load(write(tmp_path, AIRBUS), image_size=(6, 5), class_name="ship").category_names == ["ship"]


def test_imaterialist_sizes_class_ids_and_attributes(tmp_path):
    ds = kaggle.load(write(tmp_path, IMATERIALIST))
    assert ds.images[["image_id", "file_name", "width", "height"]].values.tolist() == [
        ["abc", "abc", 6, 5], ["xyz", "xyz", 4, 4]]  # fmt: skip
    assert ds.category_names == ["2", "6", "31"]  # numeric order
    assert [c.id for c in ds.categories] == [2, 6, 31]
    assert ds.objects["category"].tolist() == ["6", "2", "31"]
    attributes = [json.loads(a) if isinstance(a, str) else None for a in ds.objects["attributes"]]
    assert attributes == [{"ClassId": "6_1_3", "AttributesIds": "115"}, None, {"AttributesIds": "7"}]


def test_sizes_from_image_files_and_extensions_found(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (6, 5)).save(images / "abc.jpg")
    Image.new("RGB", (9, 7)).save(images / "001.png")
    ds = kaggle.load(write(tmp_path, "ImageId,EncodedPixels\nabc,1 3\n001.png,\n"), images=images)
    assert ds.images[["file_name", "width", "height"]].values.tolist() == [["abc.jpg", 6, 5], ["001.png", 9, 7]]
    assert ds.images["kaggle_image_id"].tolist()[0] == "abc"
    assert ds.image_path("abc") == (images / "abc.jpg").resolve()
    out = tmp_path / "back.csv"
    kaggle.save(ds, out, style="airbus")
    assert out.read_text() == "ImageId,EncodedPixels\nabc,1 3\n001.png,\n"


def test_size_option_fills_in_for_missing_files(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    csv_path = write(tmp_path, "ImageId,EncodedPixels\nmissing.jpg,1 2\n")
    with pytest.raises(ImageError, match=r"item missing.jpg: image file not found, and no size given"):
        kaggle.load(csv_path, images=images)
    ds = kaggle.load(csv_path, images=images, image_size=(3, 4))
    assert ds.images[["width", "height"]].values.tolist() == [[3, 4]]


def test_sizes_unknown_is_one_clear_error(tmp_path):
    with pytest.raises(FormatError, match=r"image sizes unknown.*\(expected the image folder \(--images\) or"):
        kaggle.load(write(tmp_path, AIRBUS))
    with pytest.raises(ValueError, match="image_size must be"):
        kaggle.load(write(tmp_path, AIRBUS), image_size=(0, 5))


def test_header_only_file_is_an_empty_dataset(tmp_path):
    ds = kaggle.load(write(tmp_path, "ImageId,EncodedPixels\n"))
    assert len(ds) == 0 and ds.category_names == ["object"]


# -- writing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "options"), [(AIRBUS, {"image_size": (6, 5)}), (IMATERIALIST, {})])
def test_csv_dataset_csv_is_identical(tmp_path, text, options):
    ds = kaggle.load(write(tmp_path, text), **options)
    report = kaggle.save(ds, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == text
    assert report["style"] == ("airbus" if text is AIRBUS else "imaterialist")
    assert report["rows"] == text.count("\n") - 1


def test_non_ascii_ids_and_quoted_fields_round_trip(tmp_path):
    text = 'ImageId,EncodedPixels,Height,Width,ClassId\ncafé/été.jpg,1 2,3,3,1\n"a,b.jpg",4 1,3,3,2\n'
    path = tmp_path / "u.csv"
    path.write_text(text, encoding="utf-8")
    ds = kaggle.load(path)
    assert ds.images["image_id"].tolist() == ["café/été", "a,b"]
    kaggle.save(ds, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == text


@st.composite
def kaggle_csvs(draw):
    """A canonical CSV (grouped by image, several masks, empty images) and the masks in it."""
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    rows, truth = [], {}
    for index in range(draw(st.integers(1, 4))):
        name = f"img{index}.png"
        found = draw(st.lists(mask_strategy(max_side=12), max_size=3))
        found = [m[:height, :width] for m in found if m.shape[0] >= height and m.shape[1] >= width]
        found = [m for m in found if m.any()]
        truth[name] = found
        rows += [f"{name},{kaggle_rle.encode(m)},{height},{width},{draw(st.integers(0, 3))}" for m in found] or [
            f"{name},,{height},{width},"
        ]
    return "ImageId,EncodedPixels,Height,Width,ClassId\n" + "\n".join(rows) + "\n", truth


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(kaggle_csvs())
def test_random_masks_round_trip(tmp_path, case):
    text, truth = case
    path = write(tmp_path, text)
    ds = kaggle.load(path)
    for name, group in ds.objects.groupby("file_name"):
        found = [rle.decode(counts, *group[["height", "width"]].iloc[0]) for counts in group["rle"]]
        assert len(found) == len(truth[name])
        assert all(np.array_equal(a, b) for a, b in zip(found, truth[name], strict=True))
    assert sorted(ds.images["file_name"]) == sorted(truth)
    kaggle.save(ds, tmp_path / "out.csv", style="imaterialist", overwrite=True)
    assert (tmp_path / "out.csv").read_text() == text


def test_masks_from_kaggle_equal_decoding_by_hand(tmp_path):
    text = "ImageId,EncodedPixels,Height,Width,ClassId\na.jpg,1 12,4,5,1\na.jpg,6 2 11 1,4,5,2\nb.jpg,,4,5,\n"
    ds = kaggle.load(write(tmp_path, text))
    masks.save(ds, tmp_path / "masks", images="none")
    expected = kaggle_rle.decode("1 12", 4, 5)  # class 1 (larger, painted first)
    expected[kaggle_rle.decode("6 2 11 1", 4, 5).astype(bool)] = 2
    assert np.array_equal(np.asarray(Image.open(tmp_path / "masks/masks/a.png")), expected)
    assert np.asarray(Image.open(tmp_path / "masks/masks/b.png")).max() == 0


def test_auto_style_and_box_only_objects(tmp_path):
    images = [{"image_id": "a", "file_name": "a.jpg", "width": 4, "height": 3}]
    mask = np.zeros((3, 4), np.uint8)
    mask[0, 1] = 1
    base = {"image_id": "a", "file_name": "a.jpg", "width": 4, "height": 3}
    objects = [
        {**base, "category": "ship", "rle": rle.encode(mask)},
        {**base, "category": "ship", "rle": None, "bbox_x": 2.0, "bbox_y": 1.0, "bbox_w": 2.0, "bbox_h": 2.0},
        {**base, "category": "ship", "rle": rle.encode(np.zeros((3, 4), np.uint8))},
    ]
    ds = Dataset.from_records(images, objects, [Category("ship", 1)])
    report = kaggle.save(ds, tmp_path / "skip.csv")
    assert report["style"] == "airbus" and report["box_only"] == 1 and report["empty_masks"] == 1
    assert (tmp_path / "skip.csv").read_text() == "ImageId,EncodedPixels\na.jpg,4 1\n"
    kaggle.save(ds, tmp_path / "paint.csv", boxes="paint")
    assert (tmp_path / "paint.csv").read_text() == "ImageId,EncodedPixels\na.jpg,4 1\na.jpg,8 2 11 2\n"
    two = Dataset.from_records(images, objects[:1], [Category("ship", 1), Category("boat", 2)])
    assert kaggle.save(two, tmp_path / "two.csv")["style"] == "imaterialist"
    assert (tmp_path / "two.csv").read_text().splitlines()[1] == "a.jpg,4 1,3,4,ship"
    with pytest.raises(ValueError, match="style"):
        kaggle.save(ds, tmp_path / "x.csv", style="coco")


def test_existing_output_untouched(tmp_path):
    ds = kaggle.load(write(tmp_path, AIRBUS), image_size=(6, 5))
    out = write(tmp_path, "precious", "out.csv")
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        kaggle.save(ds, out)
    assert out.read_text() == "precious"
    kaggle.save(ds, out, overwrite=True)
    assert out.read_text() == AIRBUS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "train.csv"]


# -- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "error", "message"),
    [
        ("b.jpg,1 2 3,5,6,1", FormatError, r"item row 2 \(image b.jpg\): bad EncodedPixels: .*odd number"),
        ("b.jpg,1 x,5,6,1", FormatError, r"row 2 \(image b.jpg\): bad EncodedPixels: EncodedPixels must be integers"),
        ("b.jpg,29 5,5,6,1", FormatError, r"row 2 \(image b.jpg\): bad EncodedPixels: .*beyond height x width = 30"),
        ("b.jpg,1 5 3 2,5,6,1", FormatError, r"row 2 \(image b.jpg\): bad EncodedPixels: .*overlap or are not sorted"),
        ("b.jpg,9 2 1 2,5,6,1", FormatError, r"row 2 \(image b.jpg\): bad EncodedPixels: .*overlap or are not sorted"),
        ("b.jpg,0 2,5,6,1", FormatError, r"row 2 \(image b.jpg\): bad EncodedPixels: .*starts must be >= 1"),
        ("b.jpg,1 2,5.5,6,1", FormatError, r"row 2 \(image b.jpg\): Width and Height must be positive integers"),
        ("b.jpg,1 2,-5,6,1", FormatError, r"row 2 \(image b.jpg\): Width and Height must be positive integers"),
        ("b.jpg,1 2,5,6,", FormatError, r"row 2 \(image b.jpg\): ClassId is empty"),
        ("a.jpg,1 2,5,7,1", FormatError, r"row 2 \(image a.jpg\): size differs .*\(expected 6x5, got 7x5\)"),
        ("../b.jpg,1 2,5,6,1", UnsafePathError, r"item row 2: image path '../b.jpg' leaves the image root"),
        ("/etc/b.jpg,1 2,5,6,1", UnsafePathError, r"item row 2: absolute image path"),
        ("a.png,1 2,5,6,1", FormatError, r"item row 2: two ImageIds name one image"),
    ],
)
def test_bad_rows(tmp_path, line, error, message):
    path = write(tmp_path, f"ImageId,EncodedPixels,Height,Width,ClassId\na.jpg,1 2,5,6,1\n{line}\nc.jpg,3 1,5,6,1\n")
    with pytest.raises(error, match=message) as caught:
        kaggle.load(path)
    assert str(path) in str(caught.value)
    problems = Problems("skip")
    ds = kaggle.load(path, problems=problems)
    assert len(problems.skipped) == 1
    assert {"a", "c"} <= set(ds.images["image_id"]) and "row 3" in set(ds.objects["source_id"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("ImageId,Pixels\na.jpg,1 2\n", r"not a Kaggle EncodedPixels CSV \(expected columns ImageId and EncodedPixels"),
        ('ImageId,EncodedPixels\n"a.jpg,1 2\n', "unreadable CSV"),
        ("ImageId,EncodedPixels\na.jpg,1 2,extra,fields\n", "unreadable CSV"),
    ],
)
def test_bad_files(tmp_path, text, message):
    with pytest.raises(FormatError, match=message):
        kaggle.load(write(tmp_path, text), image_size=(4, 4))


def test_binary_and_missing_files(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x01garbage\x00\xc3")
    with pytest.raises(FormatError):
        kaggle.load(path, image_size=(4, 4))
    with pytest.raises(FormatError, match="file not found"):
        kaggle.load(tmp_path / "nope.csv", image_size=(4, 4))


def test_image_bombs_and_broken_images_are_image_errors(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    with pytest.raises(ImageError, match="not a readable image"):
        kaggle.load(write(tmp_path, "ImageId,EncodedPixels\na.png,1 2\n"), images=images)
