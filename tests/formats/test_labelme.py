"""Labelme: every shape type, groups, folders and image paths, writing, round trips, and bad input."""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from seg.dataset import rle
from seg.dataset.core import Category, Dataset
from seg.dataset.problems import Problems
from seg.errors import FormatError, ImageError, OutputExistsError, UnsafePathError
from seg.formats import detect_format, labelme
from tests.strategies import masks

W, H = 40, 30

# -- helpers ------------------------------------------------------------------------------------------------------


def image(path: Path, width: int = W, height: int = H) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (10, 20, 30)).save(path)
    return path


def png64(mask: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(bool)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def shape(label: str, points: list, kind: str = "polygon", group: int | None = None, **extra) -> dict:
    return {
        "label": label,
        "points": points,
        "group_id": group,
        "description": "",
        "shape_type": kind,
        "flags": {},
        **extra,
    }


def document(*shapes: dict, image_path: str = "a.png", **extra) -> dict:
    return {
        "version": "5.4.1",
        "flags": {},
        "shapes": list(shapes),
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": H,
        "imageWidth": W,
        **extra,
    }


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


PATCH = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1]], bool)
SHAPES = [
    shape("cat", [[2, 2], [12, 2], [12, 8]]),
    shape("box", [[20, 9], [14, 3]], "rectangle"),
    shape("ball", [[30, 20], [30, 26]], "circle"),
    shape("tilt", [[5, 20], [10, 15], [15, 20], [10, 25]], "oriented_rectangle"),
    shape("blob", [[33.4, 2.6], [35.4, 5.6]], "mask", mask=png64(PATCH)),
    shape("dot", [[1, 1]], "point"),
    shape("stroke", [[1, 1], [5, 5], [9, 1]], "linestrip"),
    shape("edge", [[1, 1], [5, 5]], "line"),
]


# -- reading ------------------------------------------------------------------------------------------------------


def test_every_shape_type(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = write(tmp_path / "a.json", document(*SHAPES, flags={"checked": True}))
    with caplog.at_level(logging.WARNING):
        ds = labelme.load(path)
    assert "1 point shape" in caplog.text and "1 linestrip shape" in caplog.text and "1 line shape" in caplog.text
    assert list(ds.objects["category"]) == ["cat", "box", "ball", "tilt", "blob"]
    assert ds.category_names == ["cat", "box", "ball", "tilt", "blob"]
    assert list(ds.objects["source_id"]) == ["a:0", "a:1", "a:2", "a:3", "a:4"]
    box = ds.object_mask(1)
    assert box.sum() == 36 and box[3:9, 14:20].all()
    assert abs(ds.objects.at[2, "area"] - math.pi * 36) < 0.06 * math.pi * 36
    expected = np.zeros((H, W), np.uint8)
    expected[3:7, 33:36] = PATCH  # the patch's origin (33.4, 2.6) rounds to (33, 3)
    assert np.array_equal(ds.object_mask(4), expected) and not isinstance(ds.objects.at[4, "geometry"], str)
    assert json.loads(ds.objects.at[1, "geometry"]) == [[14.0, 3.0, 20.0, 3.0, 20.0, 9.0, 14.0, 9.0]]
    kept = json.loads(ds.objects.at[1, "attributes"])["labelme_shapes"]
    assert kept == [{k: v for k, v in SHAPES[1].items() if k != "label"}]
    assert json.loads(ds.images.at[0, "attributes"]) == {"labelme_flags": {"checked": True}}
    assert (ds.images.at[0, "file_name"], ds.images.at[0, "image_id"]) == ("a.png", "a")


def test_shapes_with_one_label_and_group_are_one_object(tmp_path: Path):
    shapes = [
        shape("car", [[0, 0], [5, 0], [5, 5]], group=1),
        shape("car", [[10, 10], [15, 10], [15, 15]]),
        shape("wheel", [[20, 20], [25, 20], [25, 25]], group=1),
        shape("car", [[30, 0], [35, 0], [35, 5]], group=1),
        shape("car", [[0, 20], [5, 20], [5, 25]]),
    ]
    ds = labelme.load(write(tmp_path / "a.json", document(*shapes)))
    assert list(ds.objects["category"]) == ["car", "car", "wheel", "car"]
    assert len(json.loads(ds.objects.at[0, "geometry"])) == 2
    assert ds.objects.at[0, "area"] == ds.objects.at[1, "area"] * 2


def test_a_folder_of_files(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    image(tmp_path / "images" / "a.png")
    image(tmp_path / "images" / "sub" / "b.png", 20, 10)
    folder = tmp_path / "labels"
    write(folder / "z.json", document(shape("dog", [[0, 0], [5, 0], [5, 5]]), image_path="..\\images\\a.png"))
    write(
        folder / "sub" / "b.json",
        {**document(shape("cat", [[0, 0], [5, 0], [5, 5]]), image_path="../../images/sub/b.png"), "imageWidth": 20},
    )
    write(folder / "other.json", {"not": "labelme"})
    write(folder / ".hidden" / "c.json", document())
    with caplog.at_level(logging.WARNING):
        ds = labelme.load(folder, images=tmp_path)
    assert "1 JSON file that is not Labelme's" in caplog.text
    assert list(ds.images["image_id"]) == ["sub/b", "z"]
    assert list(ds.images["file_name"]) == ["images/sub/b.png", "images/a.png"]
    assert ds.category_names == ["cat", "dog"] and ds.image_root == tmp_path
    assert ds.image_path("z") == tmp_path / "images" / "a.png"
    with pytest.raises(UnsafePathError, match="--images"):
        labelme.load(folder)
    assert labelme.detect(folder) and labelme.detect(folder / "z.json")
    assert detect_format(folder) == detect_format(folder / "z.json") == "labelme"
    assert not labelme.detect(folder / "other.json") and not labelme.detect(tmp_path / "images")


def test_sizes_from_the_image_and_image_data_is_never_decoded(tmp_path: Path):
    image(tmp_path / "a.png", 17, 13)
    data = document(shape("x", [[0, 0], [5, 0], [5, 5]]), imageData="not base64 at all!")
    del data["imageHeight"], data["imageWidth"]
    ds = labelme.load(write(tmp_path / "a.json", data))
    assert (ds.images.at[0, "width"], ds.images.at[0, "height"]) == (17, 13)
    write(tmp_path / "b.json", {**data, "imagePath": "b.png"})
    with pytest.raises(ImageError, match="--images"):
        labelme.load(tmp_path / "b.json")


# -- bad input ----------------------------------------------------------------------------------------------------


def bomb_png(side: int = 100_000) -> str:
    """A base64 PNG whose header claims ``side x side`` pixels."""
    buffer = io.BytesIO()
    Image.new("1", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = side.to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return base64.b64encode(bytes(data)).decode()


BAD_SHAPES = {
    "not an object": ("x", "shape is not an object"),
    "no label": ({"points": [[0, 0], [1, 0], [1, 1]], "shape_type": "polygon"}, "no 'label'"),
    "bad points": (shape("x", [[0, 0], [1], [1, 1]]), "list of \\[x, y\\]"),
    "text points": (shape("x", [[0, 0], ["1", 0], [1, 1]]), "list of \\[x, y\\]"),
    "two-point polygon": (shape("x", [[0, 0], [1, 1]]), "polygon has 2 points"),
    "one-point rectangle": (shape("x", [[0, 0]], "rectangle"), "rectangle has 1 points"),
    "unknown type": (shape("x", [[0, 0], [1, 1]], "spline"), "unknown shape_type 'spline'"),
    "group not int": (shape("x", [[0, 0], [1, 0], [1, 1]], group="a"), "'group_id' is not an integer"),
    "mask not base64": (shape("x", [[0, 0], [2, 2]], "mask", mask="@@@"), "not base64"),
    "mask not png": (shape("x", [[0, 0], [2, 2]], "mask", mask=base64.b64encode(b"GIF").decode()), "not a readable"),
    "mask too large": (shape("x", [[0, 0], [2, 2]], "mask", mask=bomb_png(1000)), "larger than its 40x30 image"),
    "mask bomb": (shape("x", [[0, 0], [2, 2]], "mask", mask=bomb_png()), "decompression bomb"),
    "far away": (shape("x", [[0, 0], [1e12, 0], [1, 1]]), "outside"),
}


@pytest.mark.parametrize("case", BAD_SHAPES)
def test_bad_shapes_raise_with_file_and_shape_or_are_skipped(tmp_path: Path, case: str):
    bad, message = BAD_SHAPES[case]
    path = write(tmp_path / "a.json", document(shape("ok", [[0, 0], [5, 0], [5, 5]]), bad))
    with pytest.raises(FormatError, match=message) as info:
        labelme.load(path)
    assert str(path) in str(info.value) and "shape 1" in str(info.value)
    problems = Problems("skip")
    ds = labelme.load(path, problems=problems)
    assert list(ds.objects["category"]) == ["ok"] and len(problems.skipped) == 1


BAD_FILES = {
    "malformed": ('{"shapes": [', FormatError, "malformed JSON"),
    "shapes not a list": (json.dumps(document() | {"shapes": {}}), FormatError, "'shapes' is not a list"),
    "bad size": (json.dumps(document() | {"imageWidth": -3}), FormatError, "not two positive integers"),
    "bad flags": (json.dumps(document() | {"flags": [1]}), FormatError, "'flags' is not an object"),
    "no image path": (json.dumps(document() | {"imagePath": None}), FormatError, "'imagePath'"),
    "absolute": (json.dumps(document(image_path="/etc/a.png")), UnsafePathError, "absolute"),
    "windows absolute": (json.dumps(document(image_path="C:\\x\\a.png")), UnsafePathError, "absolute"),
    "escaping": (json.dumps(document(image_path="../../a.png")), UnsafePathError, "leaves the image folder"),
    "huge": (json.dumps(document() | {"imageWidth": 10**6, "imageHeight": 10**6}), FormatError, "too large"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_in_a_folder_raise_or_are_skipped(tmp_path: Path, case: str):
    text, error, message = BAD_FILES[case]
    folder = tmp_path / "labels"
    write(folder / "a.json", document(shape("ok", [[0, 0], [5, 0], [5, 5]])))
    (folder / "b.json").write_text(text)
    with pytest.raises(error, match=message) as info:
        labelme.load(folder)
    assert "b.json" in str(info.value)
    problems = Problems("skip")
    ds = labelme.load(folder, problems=problems)
    assert list(ds.images["image_id"]) == ["a"] and len(problems.skipped) == 1


def test_a_single_file_that_is_not_labelme(tmp_path: Path):
    with pytest.raises(FormatError, match="not a Labelme file"):
        labelme.load(write(tmp_path / "x.json", {"images": []}))
    with pytest.raises(FormatError, match="not found"):
        labelme.load(tmp_path / "missing.json")


# -- writing ------------------------------------------------------------------------------------------------------


def test_round_trip_is_identical_and_points_at_the_images(tmp_path: Path):
    image(tmp_path / "data" / "a.png")
    shapes = [
        *SHAPES,
        shape("car", [[0, 20], [5, 20], [5, 25]], group=4),
        shape("car", [[9, 0], [9, 5], [4, 5]], group=4),
    ]
    shapes.append({"label": "old", "points": [[1, 1], [4, 1], [4, 4]]})  # Labelme 3: no shape_type, no group_id
    write(tmp_path / "data" / "a.json", document(*shapes, flags={"f": False}))
    ds = labelme.load(tmp_path / "data")
    report = labelme.save(ds, tmp_path / "out" / "labels")
    assert report == {
        "images": 1,
        "objects": len(ds.objects),
        "shapes": len(ds.objects) + 1,
        "polygon_loss": [],
        "skipped": [],
        "path": str(tmp_path / "out" / "labels"),
    }
    written = json.loads((tmp_path / "out" / "labels" / "a.json").read_text())
    assert written["imagePath"] == "../../data/a.png" and written["imageData"] is None
    assert (written["imageWidth"], written["imageHeight"]) == (W, H) and written["flags"] == {"f": False}
    assert written["shapes"][1] == SHAPES[1] and written["shapes"][-1] == shapes[-1]
    back = labelme.load(tmp_path / "out" / "labels", images=tmp_path / "data")
    assert back.equals(ds)


def test_masks_holes_parts_boxes_and_empties(tmp_path: Path):
    holed = np.zeros((20, 24), np.uint8)
    holed[2:12, 2:12] = 1
    holed[5:8, 5:8] = 0
    parts = np.zeros((20, 24), np.uint8)
    parts[14:18, 2:6] = parts[2:5, 15:22] = 1
    base = {"image_id": "x/1", "file_name": "one.png", "width": 24, "height": 20}
    ds = Dataset.from_records(
        [{"image_id": "x/1", "file_name": "one.png", "width": 24, "height": 20}],
        [
            {**base, "category": "a", "rle": rle.encode(holed), "source_id": "7"},
            {**base, "category": "a", "rle": rle.encode(parts), "source_id": "8"},
            {**base, "category": "b", "rle": None, "bbox_x": 3.0, "bbox_y": 4.0, "bbox_w": 5.5, "bbox_h": 2.0},
            {**base, "category": "b", "rle": rle.encode(np.zeros((20, 24), np.uint8)), "source_id": "9"},
        ],
        [Category("a", 1), Category("b", 2)],
    )
    report = labelme.save(ds, tmp_path / "out")
    assert report["skipped"] == [{"image_id": "x/1", "source_id": "9", "reason": "empty mask"}]
    written = json.loads((tmp_path / "out" / "x" / "1.json").read_text())
    assert written["imagePath"] == "../one.png"  # the image is not reachable: its file_name inside the folder
    kinds = [(s["label"], s["shape_type"], s["group_id"]) for s in written["shapes"]]
    assert kinds == [("a", "polygon", None), ("a", "polygon", 1), ("a", "polygon", 1), ("b", "rectangle", None)]
    assert written["shapes"][3]["points"] == [[3, 4], [8.5, 6]]
    back = labelme.load(tmp_path / "out")
    assert list(back.images["image_id"]) == ["x/1"] and list(back.images["file_name"]) == ["one.png"]
    assert len(back.objects) == 3
    assert np.array_equal(back.object_mask(0), holed) and np.array_equal(back.object_mask(1), parts)


def test_stale_shapes_are_not_written_and_outputs_are_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ds = labelme.load(write(tmp_path / "in" / "a.json", document(SHAPES[2])))
    mask = ds.object_mask(0)
    mask[0:2, 0:2] = 1
    objects = ds.objects.copy()
    objects.loc[0, "rle"] = rle.encode(mask)
    labelme.save(ds.replace(objects=objects), tmp_path / "out")
    shapes = json.loads((tmp_path / "out" / "a.json").read_text())["shapes"]
    assert [s["shape_type"] for s in shapes] == ["polygon", "polygon"]
    assert np.array_equal(labelme.load(tmp_path / "out").object_mask(0), mask)
    with pytest.raises(OutputExistsError):
        labelme.save(ds, tmp_path / "out")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("seg.formats.labelme.json.dumps", boom)
    with pytest.raises(RuntimeError):
        labelme.save(ds, tmp_path / "out", overwrite=True)
    assert [s["shape_type"] for s in json.loads((tmp_path / "out" / "a.json").read_text())["shapes"]] == [
        "polygon",
        "polygon",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


def test_an_image_id_that_leaves_the_folder_is_refused(tmp_path: Path):
    ds = Dataset.from_records([{"image_id": "../x", "file_name": "x.png", "width": 4, "height": 4}], [], [])
    with pytest.raises(Exception, match="cannot name a file"):
        labelme.save(ds, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.json").exists()


# -- round trips of random data -----------------------------------------------------------------------------------

coordinate = st.integers(-3, 45) | st.floats(-3, 45, allow_nan=False).map(lambda v: round(v, 2))
point = st.lists(coordinate, min_size=2, max_size=2)
random_shape = st.one_of(
    st.builds(lambda p: shape("poly", p), st.lists(point, min_size=3, max_size=7)),
    st.builds(lambda p: shape("rect", p, "rectangle"), st.lists(point, min_size=2, max_size=2)),
    st.builds(lambda p: shape("circle", p, "circle"), st.lists(point, min_size=2, max_size=2)),
    st.builds(
        lambda p, g: shape("grouped", p, group=g), st.lists(point, min_size=3, max_size=5), st.sampled_from([1, 2])
    ),
)


@settings(max_examples=40)
@given(shapes=st.lists(random_shape, max_size=6))
def test_random_files_round_trip_identically(tmp_path_factory: pytest.TempPathFactory, shapes):
    folder = tmp_path_factory.mktemp("labelme")
    ds = labelme.load(write(folder / "in" / "a.json", document(*shapes)))
    report = labelme.save(ds, folder / "out")
    assert report["polygon_loss"] == []
    assert labelme.load(folder / "out").equals(ds)


@settings(max_examples=40)
@given(mask=masks(max_side=20))
def test_random_masks_come_back_exactly(tmp_path_factory: pytest.TempPathFactory, mask: np.ndarray):
    folder = tmp_path_factory.mktemp("labelmem")
    height, width = mask.shape
    base = {"image_id": "i", "file_name": "i.png", "width": width, "height": height}
    ds = Dataset.from_records(
        [base], [{**base, "category": "a", "rle": rle.encode(mask), "source_id": "7"}], [Category("a", 1)]
    )
    report = labelme.save(ds, folder / "out")
    back = labelme.load(folder / "out")
    if mask.any():
        assert report["polygon_loss"] == [] and len(back.objects) == 1
        assert np.array_equal(back.object_mask(0), mask)
    else:
        assert len(back.objects) == 0 and len(report["skipped"]) == 1
