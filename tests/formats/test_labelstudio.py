"""Label Studio JSON: reading every region type, writing pre-annotations, round trips, and bad input."""

from __future__ import annotations

import json
import logging
import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from seg.dataset import ls_brush, rle
from seg.dataset.core import Category, Dataset
from seg.dataset.polygons import polygons_to_rle
from seg.dataset.problems import Problems
from seg.errors import FormatError, ImageError, OptionError, OutputExistsError, UnsafePathError
from seg.formats import coco, detect_format, labelstudio
from seg.formats.labelstudio import (
    dataset_to_tasks,
    image_file_name,
    label_config,
    tasks_to_dataset,
)
from seg.formats.labelstudio_read import image_key
from tests.strategies import masks

# -- helpers ------------------------------------------------------------------------------------------------------

W, H = 200, 100


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def result(kind: str, value: dict, rid: str = "r1", *, size: tuple[int, int] | None = (W, H), **extra) -> dict:
    out = {"id": rid, "type": kind, "from_name": "label", "to_name": "image", "value": value, **extra}
    if size is not None:
        out["original_width"], out["original_height"] = size
    return out


def polygon(points: list, label: str = "a", rid: str = "r1", **extra) -> dict:
    return result("polygonlabels", {"points": points, "polygonlabels": [label]}, rid, **extra)


def box(x, y, w, h, label: str = "a", rid: str = "r1", rotation: float = 0, **extra) -> dict:
    value = {"x": x, "y": y, "width": w, "height": h, "rotation": rotation, "rectanglelabels": [label]}
    return result("rectanglelabels", value, rid, **extra)


def brush(mask: np.ndarray, label: str = "a", rid: str = "r1", **extra) -> dict:
    value = {"format": "rle", "rle": ls_brush.encode(mask), "brushlabels": [label]}
    extra.setdefault("size", (mask.shape[1], mask.shape[0]))
    return result("brushlabels", value, rid, **extra)


def task(*results: dict, tid: object = 1, image: str = "/data/local-files/?d=imgs/a.png", **annotation) -> dict:
    entry = {"id": 10 * tid if isinstance(tid, int) else 1, "completed_by": 1, "result": list(results), **annotation}
    out = {"data": {"image": image}, "annotations": [entry], "predictions": []}
    if tid is not None:
        out["id"] = tid
    return out


def square_points() -> list:
    return [[10, 20], [50, 20], [50, 60], [10, 60]]  # percent of 200 x 100: x 20..100, y 20..60


def one(ds: Dataset, index: int = 0) -> dict:
    return ds.objects.iloc[index].to_dict()


def save_image(path: Path, width: int, height: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (width, height)).save(path)
    return path


# -- image URLs ---------------------------------------------------------------------------------------------------

URLS = {
    "/data/local-files/?d=sub/a.png": "sub/a.png",
    "/data/local-files/?d=sub%2Fmy%20image%2B1.png": "sub/my image+1.png",
    "http://localhost:8080/data/local-files/?d=imgs/a.jpg": "imgs/a.jpg",
    "/data/upload/3/5f2a1b3c-a.png": "5f2a1b3c-a.png",
    "/data/upload/29/example.png": "example.png",
    "http://ls:8080/storage-data/uploaded/?filepath=upload/1/6b25fc23-x%201.png": "6b25fc23-x 1.png",
    "http://host/x/y/a.jpg": "a.jpg",
    "https://host/x/my%20photo.jpg?X-Amz-Signature=abc#frag": "my photo.jpg",
    "s3://bucket/k/a.png": "k/a.png",
    "gs://bucket/deep/k/a.png": "deep/k/a.png",
    "azure-blob://container/k/a.png": "k/a.png",
    "/image1": "image1",
    "C:\\Users\\me\\a.png": "a.png",
    "images/a.png": "images/a.png",
    "./images\\b.png": "images/b.png",
    "test_image1.jpg": "test_image1.jpg",
}


@pytest.mark.parametrize("url", list(URLS))
def test_image_file_name(url: str):
    assert image_file_name(url) == URLS[url]


UNSAFE_URLS = [
    "/data/local-files/?d=../etc/passwd",
    "/data/local-files/?d=%2E%2E/secret.png",
    "/data/local-files/?d=/etc/passwd",
    "/data/local-files/?d=a/../../b.png",
    "s3://bucket/../x.png",
    "http://host/x/..",
    "http://host/x/%2E%2E%5Csecret",
    "../a.png",
    "/",
    "/storage-data/uploaded/?filepath=upload/..",
]


@pytest.mark.parametrize("url", UNSAFE_URLS)
def test_unsafe_image_urls_are_refused(url: str):
    with pytest.raises(UnsafePathError):
        image_file_name(url)


@pytest.mark.parametrize("url", ["", "  ", "data:image/png;base64,iVBORw0KGgo="])
def test_urls_without_a_file_name(url: str):
    with pytest.raises(FormatError):
        image_file_name(url)


def test_image_key_prefers_image_then_to_name_then_the_only_image_url():
    assert image_key({"text": "x", "image": "/image1", "audio": "http://h/a.wav"}, set()) == "image"
    assert image_key({"img": "a.jpg", "thumb": "t.jpg"}, {"img"}) == "img"
    assert image_key({"photo": "http://h/a.jpg", "caption": "a dog", "seg_image_id": "3"}, set()) == "photo"
    assert image_key({"url": "http://h/get?id=3"}, set()) == "url"
    assert image_key({"a": "x.jpg", "b": "y.jpg"}, set()) is None
    assert image_key({"n": 3}, set()) is None


# -- reading each region type ----------------------------------------------------------------------------------------


def test_polygons_are_read_in_percent_of_the_original_size():
    ds = tasks_to_dataset([task(polygon(square_points()))])
    row = one(ds)
    assert (row["width"], row["height"]) == (W, H)
    assert json.loads(row["geometry"]) == [[20.0, 20.0, 100.0, 20.0, 100.0, 60.0, 20.0, 60.0]]
    assert row["rle"] == polygons_to_rle([[20, 20, 100, 20, 100, 60, 20, 60]], H, W)
    assert (row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"]) == (20, 20, 80, 40)
    assert row["area"] == 80 * 40
    assert row["image_id"] == "1" and row["file_name"] == "imgs/a.png" and row["category"] == "a"
    assert row["source_id"] == "ann 10/reg r1" and row["annotator"] == "1" and math.isnan(row["score"])
    assert ds.categories == [Category("a", 1)]


def test_polygons_slightly_outside_are_clipped_and_absurd_ones_refused():
    ds = tasks_to_dataset([task(polygon([[-5, -5], [105, -5], [105, 105], [-5, 105]]))])
    assert one(ds)["area"] == W * H
    assert json.loads(one(ds)["geometry"])[0][:2] == [-10.0, -5.0]  # kept as read, in pixels
    with pytest.raises(FormatError, match="outside the 200x100 image"):
        tasks_to_dataset([task(polygon([[0, 0], [1e9, 0], [0, 50]]))])


def test_unrotated_rectangles_are_box_only_and_clipped():
    ds = tasks_to_dataset([task(box(10, 20, 50, 30), box(90, 90, 20, 20, rid="r2"))])
    first, second = one(ds, 0), one(ds, 1)
    assert not isinstance(first["rle"], str)
    assert (first["bbox_x"], first["bbox_y"], first["bbox_w"], first["bbox_h"]) == (20, 20, 100, 30)
    assert first["area"] == 3000
    assert (second["bbox_x"], second["bbox_y"], second["bbox_w"], second["bbox_h"]) == (180, 90, 20, 10)


def test_rotated_rectangles_turn_clockwise_about_their_top_left_corner():
    # 100 x 100 image: a 20 x 10 box at (10, 10), turned 90 degrees clockwise, covers x 0..10, y 10..30
    ds = tasks_to_dataset([task(box(10, 10, 20, 10, rotation=90, size=(100, 100)))])
    row = one(ds)
    expected = np.zeros((100, 100), np.uint8)
    expected[10:30, 0:10] = 1
    assert np.array_equal(ds.object_mask(0), expected)
    ring = json.loads(row["geometry"])[0]
    assert np.allclose(ring, [10, 10, 10, 30, 0, 30, 0, 10], atol=1e-6)
    assert (row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"]) == (0, 10, 10, 20)


def test_ellipses_hold_the_pixels_whose_centre_is_inside():
    value = {"x": 50, "y": 50, "radiusX": 10, "radiusY": 5, "rotation": 0, "ellipselabels": ["e"]}
    ds = tasks_to_dataset([task(result("ellipselabels", value, size=(100, 100)))])
    yy, xx = np.mgrid[0:100, 0:100] + 0.5
    expected = ((xx - 50) / 10) ** 2 + ((yy - 50) / 5) ** 2 <= 1
    assert np.array_equal(ds.object_mask(0), expected)
    assert abs(one(ds)["area"] - math.pi * 50) < 10
    turned = tasks_to_dataset([task(result("ellipselabels", {**value, "rotation": 90}, size=(100, 100)))])
    assert np.array_equal(turned.object_mask(0), expected.T)
    assert "geometry" not in ds.objects or not isinstance(one(ds).get("geometry"), str)


def test_brush_regions_are_decoded():
    mask = np.zeros((H, W), np.uint8)
    mask[10:40, 30:90] = 1
    mask[20:30, 50:60] = 0  # a hole
    ds = tasks_to_dataset([task(brush(mask))])
    assert np.array_equal(ds.object_mask(0), mask)
    assert (one(ds)["bbox_x"], one(ds)["bbox_w"]) == (30, 60)


def test_brush_without_original_size_takes_the_image_file(tmp_path: Path):
    mask = np.zeros((H, W), np.uint8)
    mask[5:9, 7:11] = 1
    tasks = [task(brush(mask, size=None))]
    with pytest.raises(FormatError, match=r"item task 1: image size unknown.*imgs/a.png"):
        tasks_to_dataset(tasks, source="export.json")
    save_image(tmp_path / "imgs" / "a.png", W, H)
    ds = tasks_to_dataset(tasks, image_root=tmp_path)
    assert np.array_equal(ds.object_mask(0), mask)
    assert ds.image_path("1") == tmp_path / "imgs" / "a.png"
    save_image(tmp_path / "imgs" / "b.png", W + 1, H)  # the wrong image
    with pytest.raises(FormatError, match=r"task 1/ann 10/reg r1: brush RLE holds 80000 values.*= 80400"):
        tasks_to_dataset([task(brush(mask, size=None), image="/data/local-files/?d=imgs/b.png")], image_root=tmp_path)


def test_brush_size_must_match_the_image():
    mask = np.ones((H, W), np.uint8)
    tasks = [task(polygon(square_points(), size=(H, W)), brush(mask, rid="r2"))]
    with pytest.raises(FormatError, match="brush region is 200x100 but its image is 100x200"):
        tasks_to_dataset(tasks)


def test_the_editors_split_form_pairs_tools_with_labels(caplog: pytest.LogCaptureFixture):
    mask = np.zeros((H, W), np.uint8)
    mask[1:3, 1:4] = 1
    tool = result("brush", {"format": "rle", "rle": ls_brush.encode(mask)}, "b1")
    labels = result("labels", {"format": "rle", "rle": ls_brush.encode(mask), "labels": ["Planet"]}, "b1")
    wand = result("magicwand", {"format": "rle", "rle": ls_brush.encode(1 - mask)}, "m1")
    wand_labels = result("labels", {"format": "rle", "rle": ls_brush.encode(1 - mask), "labels": ["Sky"]}, "m1")
    poly_tool = result("polygon", {"points": square_points()}, "p1")
    poly_labels = result("labels", {"points": square_points(), "labels": ["Planet"]}, "p1")
    lonely = result("rectangle", {"x": 1, "y": 1, "width": 2, "height": 2}, "lonely")
    point = result("keypoint", {"x": 1, "y": 1, "width": 0.3}, "k1")
    point_labels = result("labels", {"x": 1, "y": 1, "width": 0.3, "labels": ["Planet"]}, "k1")
    relation = {"from_id": "b1", "to_id": "p1", "type": "relation", "direction": "right"}
    results = [tool, labels, wand, wand_labels, poly_tool, poly_labels, lonely, point, point_labels, relation]
    with caplog.at_level(logging.INFO, logger="seg.formats.labelstudio_read"):
        ds = tasks_to_dataset([task(*results)], source="x.json")
    assert list(ds.objects["category"]) == ["Planet", "Sky", "Planet"]
    assert list(ds.objects["source_id"]) == ["ann 10/reg b1", "ann 10/reg m1", "ann 10/reg p1"]
    assert np.array_equal(ds.object_mask(0), mask) and np.array_equal(ds.object_mask(1), 1 - mask)
    assert isinstance(one(ds, 2)["geometry"], str)
    text = caplog.text
    assert "left out 1 keypoints" in text and "left out 1 regions without a label" in text
    assert "left out 1 relation results" in text


def test_every_annotation_is_kept_with_its_annotator_and_metadata(caplog: pytest.LogCaptureFixture):
    first = {
        "id": 5,
        "completed_by": {"id": 3, "email": "ann@example.org", "first_name": ""},
        "result": [polygon(square_points(), rid="x")],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-02T00:00:00Z",
        "lead_time": 12.5,
        "ground_truth": True,
        "was_cancelled": False,
    }
    second = {"id": 6, "completed_by": 4, "result": [polygon(square_points(), rid="x", origin="prediction-changed")]}
    third = {"id": 7, "completed_by": {"id": 9}, "result": [box(1, 1, 2, 2, rid="y")]}
    cancelled = {"id": 8, "completed_by": 4, "was_cancelled": True, "result": [polygon(square_points())]}
    data = {"id": 3, "data": {"image": "a.png"}, "annotations": [first, second, third, cancelled]}
    with caplog.at_level(logging.INFO):
        ds = tasks_to_dataset([data])
    assert list(ds.objects["annotator"]) == ["ann@example.org", "4", "9"]
    assert list(ds.objects["source_id"]) == ["ann 5/reg x", "ann 6/reg x", "ann 7/reg y"]
    assert json.loads(one(ds)["attributes"]) == {
        "annotation_id": 5,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-02T00:00:00Z",
        "lead_time": 12.5,
        "ground_truth": True,
        "was_cancelled": False,
    }
    assert json.loads(one(ds, 1)["attributes"]) == {"annotation_id": 6, "origin": "prediction-changed"}
    assert "left out 1 cancelled annotations" in caplog.text
    assert ds.objects["score"].isna().all()


def test_predictions_and_both():
    prediction = {
        "id": 2,
        "model_version": "v1",
        "score": 0.5,
        "result": [polygon(square_points(), rid="p"), polygon(square_points(), rid="q", score=0.9)],
    }
    data = task(polygon(square_points(), rid="h"))
    data["predictions"] = [prediction]
    only = tasks_to_dataset([data], which="predictions")
    assert list(only.objects["score"]) == [0.5, 0.9]
    assert list(only.objects["annotator"]) == ["model:v1", "model:v1"]
    assert list(only.objects["source_id"]) == ["pred 2/reg p", "pred 2/reg q"]
    assert json.loads(one(only)["attributes"]) == {"prediction_id": 2, "model_version": "v1"}
    both = tasks_to_dataset([data], which="both")
    assert list(both.objects["source_id"]) == ["ann 10/reg h", "pred 2/reg p", "pred 2/reg q"]
    assert len(tasks_to_dataset([data]).objects) == 1
    with pytest.raises(OptionError, match="which must be one of"):
        tasks_to_dataset([data], which="all")


def test_from_name_reads_one_control():
    other = {**polygon(square_points(), rid="o"), "from_name": "other"}
    ds = tasks_to_dataset([task(polygon(square_points()), other)], from_name="other")
    assert list(ds.objects["source_id"]) == ["ann 10/reg o"]


def test_a_region_with_several_labels_gives_one_object_per_label():
    value = {"points": square_points(), "polygonlabels": ["a", "b", "a"]}
    ds = tasks_to_dataset([task(result("polygonlabels", value, "m"))])
    assert list(ds.objects["category"]) == ["a", "b"]
    assert list(ds.objects["source_id"]) == ["ann 10/reg m/a", "ann 10/reg m/b"]


def test_negatives_stay_and_tasks_with_nothing_to_read_are_left_out(tmp_path: Path):
    save_image(tmp_path / "neg.png", 8, 6)
    unlabelled = {"id": 2, "data": {"image": "other.png"}, "annotations": [], "predictions": []}
    negative = task(tid=3, image="neg.png")
    ds = tasks_to_dataset([unlabelled, negative, task(polygon(square_points()), tid=4)], image_root=tmp_path)
    assert list(ds.images["image_id"]) == ["3", "4"]
    assert (ds.images["width"][0], ds.images["height"][0]) == (8, 6)
    assert list(ds.objects["image_id"]) == ["4"]


def test_image_ids_fall_back_to_seg_image_id_then_the_index():
    without = [task(polygon(square_points()), tid=None), task(polygon(square_points()), tid=None)]
    without[1]["data"]["seg_image_id"] = "tile_7"
    assert list(tasks_to_dataset(without).images["image_id"]) == ["0", "tile_7"]


def test_uploads_fall_back_to_the_name_without_the_hash(tmp_path: Path):
    save_image(tmp_path / "a.png", W, H)
    data = [task(polygon(square_points()), image="/data/upload/3/5f2a1b3c-a.png")]
    assert tasks_to_dataset(data, image_root=tmp_path).images["file_name"][0] == "a.png"
    save_image(tmp_path / "5f2a1b3c-a.png", W, H)
    assert tasks_to_dataset(data, image_root=tmp_path).images["file_name"][0] == "5f2a1b3c-a.png"
    assert tasks_to_dataset(data).images["file_name"][0] == "5f2a1b3c-a.png"


def test_results_that_are_not_regions_are_counted(caplog: pytest.LogCaptureFixture):
    choice = {"id": "c", "type": "choices", "from_name": "c", "to_name": "image", "value": {"choices": ["x"]}}
    text = {"id": "t", "type": "textarea", "from_name": "t", "to_name": "image", "value": {"text": ["x"]}}
    weird = {"id": "w", "type": "bitmasklabels", "value": {}}
    with caplog.at_level(logging.INFO):
        ds = tasks_to_dataset([task(polygon(square_points()), choice, choice, text, weird)])
    assert len(ds.objects) == 1
    assert "left out 2 choices results" in caplog.text and "left out 1 textarea results" in caplog.text
    assert "left out 1 bitmasklabels results" in caplog.text


# -- files: detect, load ----------------------------------------------------------------------------------------------


def test_load_a_file_and_find_its_images(tmp_path: Path):
    save_image(tmp_path / "imgs" / "a.png", W, H)
    path = write(tmp_path / "annotations" / "export.json", [task(polygon(square_points()))])
    ds = labelstudio.load(path)
    assert ds.image_root == tmp_path and ds.image_path("1").is_file()
    assert labelstudio.load(path, images=tmp_path / "elsewhere").image_root == tmp_path / "elsewhere"
    single = write(tmp_path / "one.json", task(polygon(square_points())))
    assert len(labelstudio.load(single).objects) == 1


def test_detect(tmp_path: Path):
    assert labelstudio.detect(write(tmp_path / "a.json", [task(polygon(square_points()))]))
    assert labelstudio.detect(write(tmp_path / "b.json", task()))
    assert labelstudio.detect(write(tmp_path / "c.json", [{"id": 1, "data": {"image": "a.png"}}]))
    editor = {"id": 1, "annotations": [{"id": 1, "result": []}]}  # the editor's own files may lack data
    assert labelstudio.detect(write(tmp_path / "d.json", editor))
    for name, data in {
        "coco.json": {"images": [], "annotations": [{"id": 1, "result": []}]},
        "data_only.json": [{"data": {"image": "a.png"}}],
        "empty.json": [],
        "results.json": [{"image_id": 1, "category_id": 1}],
        "number.json": 3,
    }.items():
        assert not labelstudio.detect(write(tmp_path / name, data)), name
    (tmp_path / "bad.json").write_text("[{")
    (tmp_path / "task.txt").write_text(json.dumps([task()]))
    assert not labelstudio.detect(tmp_path / "bad.json")
    assert not labelstudio.detect(tmp_path / "task.txt")
    assert not labelstudio.detect(tmp_path / "missing.json")
    assert not labelstudio.detect(tmp_path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.sampled_from(["data", "result", "images"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["data", "annotations", "predictions", "id", "result", "images", "image"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(value=json_values)
def test_detect_never_raises(tmp_path_factory: pytest.TempPathFactory, value):
    path = tmp_path_factory.mktemp("detect") / "x.json"
    path.write_text(json.dumps(value))
    assert labelstudio.detect(path) in (True, False)


def test_detect_large_files_from_their_first_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(labelstudio, "_DETECT_PARSE_LIMIT", 10)
    assert labelstudio.detect(write(tmp_path / "a.json", [task(polygon(square_points()))]))
    assert labelstudio.detect(write(tmp_path / "b.json", task()))
    assert not labelstudio.detect(write(tmp_path / "c.json", {"images": [], "annotations": [{"result": 1}]}))
    assert not labelstudio.detect(write(tmp_path / "d.json", [{"image_id": 1, "category_id": 1}]))


# -- bad input ---------------------------------------------------------------------------------------------------------


def changed(change) -> list:
    tasks = [task(polygon(square_points()), tid=1), task(polygon(square_points()), box(1, 1, 5, 5, rid="r2"), tid=2)]
    change(tasks)
    return tasks


def at(path: tuple, value: object):
    def change(tasks: list) -> None:
        target = tasks
        for key in path[:-1]:
            target = target[key]
        if value is ...:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


RESULT = (1, "annotations", 0, "result", 0)
VALUE = (*RESULT, "value")
BOX = (1, "annotations", 0, "result", 1, "value")
R1, R2 = "task 2/ann 20/reg r1", "task 2/ann 20/reg r2"

# case: (change, error, item, words, objects left under skip)
BAD_ITEMS = {
    "task not an object": (at((1,), "oops"), FormatError, "task at index 1", "task is not an object", 1),
    "no data": (at((1, "data"), ...), FormatError, "task 2", "task has no 'data'", 1),
    "data not an object": (at((1, "data"), "a.png"), FormatError, "task 2", "task has no 'data'", 1),
    "no image field": (at((1, "data"), {"x": 1, "y": 2}), FormatError, "task 2", "which task data field", 1),
    "image list": (at((1, "data", "image"), ["a.png", "b.png"]), FormatError, "task 2", "list of images", 1),
    "data URI": (at((1, "data", "image"), "data:image/png;base64,AA=="), FormatError, "task 2", "data: URI", 1),
    "unsafe path": (at((1, "data", "image"), "/data/local-files/?d=../x.png"), UnsafePathError, "task 2", "leaves", 1),
    "duplicate task id": (at((1, "id"), 1), FormatError, "task 1", "duplicate task id '1'", 1),
    "annotations not a list": (at((1, "annotations"), {"a": 1}), FormatError, "task 2", "not a list", 1),
    "annotation not an object": (at((1, "annotations", 0), 3), FormatError, "task 2", "ann #0 is not an object", 1),
    "result not a list": (at((1, "annotations", 0, "result"), "x"), FormatError, "task 2", "no 'result' list", 1),
    "result not an object": (at(RESULT, 5), FormatError, "task 2/ann 20/reg #0", "result is not an object", 2),
    "no value": (at((*RESULT, "value"), None), FormatError, R1, "no 'value'", 2),
    "labels not a list": (at((*VALUE, "polygonlabels"), "a"), FormatError, R1, "list of names", 2),
    "label not a string": (at((*VALUE, "polygonlabels"), [3]), FormatError, R1, "list of names", 2),
    "two points": (at((*VALUE, "points"), [[1, 1], [2, 2]]), FormatError, R1, "2 points, expected at least 3", 2),
    "bad point": (at((*VALUE, "points"), [[1, 1], [2, "x"], [3, 3]]), FormatError, R1, "[x, y] numbers", 2),
    "points not a list": (at((*VALUE, "points"), {"x": 1}), FormatError, R1, "must be a list", 2),
    "nan point": (at((*VALUE, "points"), [[1, 1], [2, math.nan], [3, 3]]), FormatError, R1, "[x, y]", 2),
    "absurd percent": (at((*VALUE, "points"), [[1, 1], [2, 1e12], [3, 3]]), FormatError, R1, "outside", 2),
    "box negative": (at((*BOX, "width"), -5), FormatError, R2, "negative", 2),
    "box no x": (at((*BOX, "x"), ...), FormatError, R2, "'x' must be", 2),
    "box rotation": (at((*BOX, "rotation"), "up"), FormatError, R2, "rot", 2),
    "score": (at((*RESULT, "score"), "high"), None, None, None, 3),  # annotations have no score: ignored
    "size not integer": (at((*RESULT, "original_width"), 2.5), None, None, None, 3),  # the other result gives it
    "size too large": (
        lambda t: [r.update(original_width=2**16, original_height=2**16) for r in t[1]["annotations"][0]["result"]],
        FormatError,
        "task 2",
        "too large",
        1,
    ),
}


@pytest.mark.parametrize("case", list(BAD_ITEMS))
def test_bad_items_raise_with_file_and_item_or_are_skipped(tmp_path: Path, case: str):
    change, error, item, words, left = BAD_ITEMS[case]
    path = write(tmp_path / "bad.json", changed(change))
    if error is None:
        assert len(labelstudio.load(path).objects) == left
        return
    with pytest.raises(error) as info:
        labelstudio.load(path)
    message = str(info.value)
    assert str(path) in message and f"item {item}" in message and words in message, message
    problems = Problems("skip")
    ds = labelstudio.load(path, problems=problems)
    assert len(problems.skipped) == 1 and item in str(problems.skipped[0].item_id)
    assert len(ds.objects) == left


def test_broken_brush_streams_are_problems(tmp_path: Path):
    mask = np.ones((H, W), np.uint8)
    good = brush(mask)
    cases = {
        "truncated": {**good["value"], "rle": good["value"]["rle"][:5]},
        "garbage": {**good["value"], "rle": "abc"},
        "missing": {"format": "rle", "brushlabels": ["a"]},
        "png": {**good["value"], "format": "png"},
    }
    for name, value in cases.items():
        path = write(tmp_path / f"{name}.json", [task({**good, "value": value})])
        with pytest.raises(FormatError, match=r"item task 1/ann 10/reg r1: (brush|.*rle)"):
            labelstudio.load(path)
        assert len(labelstudio.load(path, problems=Problems("skip")).images) == 1


def test_prediction_scores_must_be_numbers():
    data = task()
    data["predictions"] = [{"id": 1, "model_version": "m", "result": [polygon(square_points(), score="high")]}]
    with pytest.raises(FormatError, match="score is not a number"):
        tasks_to_dataset([data], which="predictions")


def test_unreadable_image_files_are_problems(tmp_path: Path):
    (tmp_path / "a.png").write_text("not an image")
    with pytest.raises(ImageError, match="item task 1: not a readable image"):
        tasks_to_dataset([task(brush(np.ones((2, 2)), size=None), image="a.png")], image_root=tmp_path, source="x")


FILE_ERRORS = {
    "truncated": ('[{"data": {"image": "a', "malformed JSON at line 1"),
    "empty": ("", "malformed JSON"),
    "string": ('"hello"', "not a Label Studio export"),
    "object": ('{"foo": 1}', "not a Label Studio export"),
    "deep": ("[" * 100000 + "]" * 100000, "nested too deeply"),
}


@pytest.mark.parametrize("case", list(FILE_ERRORS))
def test_files_that_are_not_exports_are_refused(tmp_path: Path, case: str):
    text, words = FILE_ERRORS[case]
    path = tmp_path / "bad.json"
    path.write_text(text)
    for problems in (None, Problems("skip")):
        with pytest.raises(FormatError) as info:
            labelstudio.load(path, problems=problems)
        assert str(path) in str(info.value) and words in str(info.value), str(info.value)


def test_tasks_must_be_a_list():
    with pytest.raises(FormatError, match="not a Label Studio task list"):
        tasks_to_dataset({"data": {}}, source="server")


def test_bad_input_leaves_existing_outputs_untouched(tmp_path: Path):
    out = tmp_path / "out.json"
    out.write_text("previous")
    bad = write(tmp_path / "bad.json", [task(polygon([[1, 1]]))])
    with pytest.raises(FormatError):
        labelstudio.save(labelstudio.load(bad), out, overwrite=True)
    assert out.read_text() == "previous"
    assert sorted(os.listdir(tmp_path)) == ["bad.json", "out.json"]


# -- writing ---------------------------------------------------------------------------------------------------------


def dataset_of(*objects: dict, size: tuple[int, int] = (W, H), images: int = 1) -> Dataset:
    width, height = size
    rows = [
        {"image_id": str(i), "file_name": f"dir/img {i}.png", "width": width, "height": height} for i in range(images)
    ]
    full = [
        {"image_id": "0", "file_name": "dir/img 0.png", "width": width, "height": height, "category": "a", **o}
        for o in objects
    ]
    names = dict.fromkeys(o["category"] for o in full)
    return Dataset.from_records(rows, full, [Category(n, i) for i, n in enumerate(names or ["a"], 1)])


def test_dataset_to_tasks_writes_polygons_in_percent_with_stable_ids():
    ring = [20.0, 20.0, 100.0, 20.0, 100.0, 60.0, 20.0, 60.0]
    ds = dataset_of(
        {"rle": polygons_to_rle([ring], H, W), "geometry": json.dumps([ring]), "source_id": "ann 3/reg abc"},
        {"rle": None, "bbox_x": 1.0, "bbox_y": 2.0, "bbox_w": 10.0, "bbox_h": 5.0, "source_id": "17", "score": 0.25},
        images=2,
    )
    tasks = dataset_to_tasks(ds, image_url=lambda name: f"/data/local-files/?d={name}", model_version="m1")
    assert len(tasks) == 2
    first, negative = tasks
    assert first["data"] == {
        "image": "/data/local-files/?d=dir/img 0.png",
        "seg_image_id": "0",
        "seg_width": W,
        "seg_height": H,
    }
    prediction = first["predictions"][0]
    assert prediction["model_version"] == "m1" and prediction["score"] == 0.25
    poly, rect = prediction["result"]
    assert poly["id"] == "abc" and poly["type"] == "polygonlabels" and poly["from_name"] == "label"
    assert poly["value"] == {
        "points": [[10.0, 20.0], [50.0, 20.0], [50.0, 60.0], [10.0, 60.0]],
        "closed": True,
        "polygonlabels": ["a"],
    }
    assert (poly["original_width"], poly["original_height"], poly["to_name"]) == (W, H, "image")
    assert "score" not in poly
    assert rect["id"] == "17" and rect["type"] == "rectanglelabels" and rect["from_name"] == "label_box"
    assert rect["value"] == {"x": 0.5, "y": 2.0, "width": 5.0, "height": 5.0, "rotation": 0, "rectanglelabels": ["a"]}
    assert rect["score"] == 0.25
    assert negative["predictions"] == [{"model_version": "m1", "score": None, "result": []}]
    again = dataset_to_tasks(ds, image_url=lambda name: f"/data/local-files/?d={name}", model_version="m1")
    assert again == tasks
    annotations = dataset_to_tasks(ds, image_url=str, as_predictions=False, from_name="tag", to_name="img")
    assert "predictions" not in annotations[0] and annotations[0]["annotations"][0]["result"][0]["from_name"] == "tag"
    assert "score" not in annotations[0]["annotations"][0]["result"][1]


def test_result_ids_stay_unique_within_a_task():
    mask = np.zeros((H, W), np.uint8)
    mask[0:5, 0:5] = 1
    counts = rle.encode(mask)
    ds = dataset_of(
        {"rle": counts, "source_id": "ann 1/reg x"}, {"rle": counts, "source_id": "ann 2/reg x"}, {"rle": counts}
    )
    ids = [r["id"] for r in dataset_to_tasks(ds, image_url=str)[0]["predictions"][0]["result"]]
    assert ids[0] == "x" and len(set(ids)) == 3 and all(ids)


def test_written_tasks_validate_against_the_written_config():
    interface = pytest.importorskip("label_studio_sdk.label_interface")
    mask = np.zeros((H, W), np.uint8)
    mask[3:30, 5:50] = 1
    ds = dataset_of(
        {"rle": rle.encode(mask), "category": 'odd "name" <&>'},
        {"rle": None, "bbox_x": 1.0, "bbox_y": 2.0, "bbox_w": 10.0, "bbox_h": 5.0, "category": "b"},
    )
    for tool in ("polygon", "brush"):
        config = label_config(ds.category_names, tool=tool, boxes=True)
        checker = interface.LabelInterface(config)
        for data in dataset_to_tasks(ds, image_url=str, tool=tool):
            assert checker.validate_prediction(data["predictions"][0], return_errors=True) == []


def test_label_config_escapes_names():
    names = ['a "quoted" <b> & c', "d'e", "ünïcode"]
    config = label_config(names, tool="brush", from_name="tag", to_name="img")
    root = ET.fromstring(config)
    image = root.find("Image")
    assert image.get("name") == "img" and image.get("value") == "$image"
    control = root.find("BrushLabels")
    assert control.get("name") == "tag" and control.get("toName") == "img"
    assert [label.get("value") for label in control] == names
    assert root.find("RectangleLabels") is None
    assert ET.fromstring(label_config(["a"], boxes=True)).find("RectangleLabels").get("name") == "label_box"
    for bad in (["a", "a"], ["\x01"], [""]):
        with pytest.raises(ValueError):
            label_config(bad)
    with pytest.raises(ValueError, match="tool"):
        label_config(["a"], tool="ellipse")
    with pytest.raises(ValueError, match="from_name"):
        label_config(["a"], from_name="")


def test_save_writes_an_importable_file_and_reports(tmp_path: Path):
    mask = np.zeros((H, W), np.uint8)
    mask[10:30, 10:30] = 1
    mask[60:70, 100:150] = 1  # a second part: two polygon regions
    ds = dataset_of(
        {"rle": rle.encode(mask), "source_id": "1"},
        {"rle": None, "bbox_x": 0.0, "bbox_y": 0.0, "bbox_w": 1.0, "bbox_h": 1.0},
    )
    path = tmp_path / "tasks.json"
    report = labelstudio.save(ds, path)
    assert report == {
        "images": 1,
        "objects": 2,
        "regions": 3,
        "polygon_loss": [],
        "split": 1,
        "empty": 0,
        "boxes": 1,
        "path": str(path),
    }
    tasks = json.loads(path.read_text())
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=dir/img%200.png"
    assert labelstudio.detect(path) and detect_format(path) == "labelstudio"
    back = labelstudio.load(path, which="predictions")
    assert list(back.images["file_name"]) == ["dir/img 0.png"] and list(back.images["image_id"]) == ["0"]
    union = np.maximum(back.object_mask(0), back.object_mask(1))
    assert np.array_equal(union, mask)
    assert back.objects["annotator"].tolist() == ["model:seg"] * 3
    with pytest.raises(OutputExistsError):
        labelstudio.save(ds, path)
    plain = labelstudio.save(ds, tmp_path / "plain.json", image_url_prefix="", as_predictions=False, tool="brush")
    assert plain["regions"] == 2 and plain["split"] == 0
    written = json.loads((tmp_path / "plain.json").read_text())
    assert written[0]["data"]["image"] == "dir/img 0.png" and "annotations" in written[0]


def test_save_refuses_an_unknown_tool(tmp_path: Path):
    with pytest.raises(OptionError, match="unknown Label Studio tool 'ellipse'"):
        labelstudio.save(dataset_of(), tmp_path / "x.json", tool="ellipse")
    assert not (tmp_path / "x.json").exists()


def test_a_failing_save_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ds = dataset_of({"rle": rle.encode(np.ones((H, W), np.uint8))})

    def broken_dump(obj, handle, **kwargs):
        handle.write("[{")
        raise OSError("disk full")

    monkeypatch.setattr(labelstudio.json, "dump", broken_dump)
    (tmp_path / "old.json").write_text("old")
    with pytest.raises(OSError, match="disk full"):
        labelstudio.save(ds, tmp_path / "old.json", overwrite=True)
    assert (tmp_path / "old.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]


# -- round trips ---------------------------------------------------------------------------------------------------


def reread(ds: Dataset, **options) -> Dataset:
    tasks = dataset_to_tasks(ds, image_url=lambda n: "/data/local-files/?d=" + n, **options)
    return tasks_to_dataset(tasks, which="predictions" if options.get("as_predictions", True) else "annotations")


@settings(max_examples=40, deadline=None)
@given(mask=masks(max_side=16))
def test_brush_round_trips_any_mask(mask: np.ndarray):
    h, w = mask.shape
    ds = dataset_of({"rle": rle.encode(mask), "source_id": "ann 1/reg q"}, size=(w, h))
    back = reread(ds, tool="brush", as_predictions=False)
    if mask.any():
        assert np.array_equal(back.object_mask(0), mask)
        assert back.objects["source_id"].tolist() == ["ann #0/reg q"]
    else:
        assert len(back.objects) == 0 and len(back.images) == 1  # an empty mask has no region; the image stays


@settings(max_examples=40, deadline=None)
@given(mask=masks(max_side=16))
def test_polygon_round_trip_keeps_every_pixel_it_reports(mask: np.ndarray):
    h, w = mask.shape
    counts = rle.encode(mask)
    ds = dataset_of({"rle": counts, "source_id": "s"}, size=(w, h))
    tasks, report = labelstudio.build_tasks(ds, image_url=str)
    back = tasks_to_dataset(tasks, which="predictions")
    union = np.zeros_like(mask)
    for index in range(len(back.objects)):
        union |= back.object_mask(index)
    iou = rle.iou(rle.encode(union), counts, h, w)
    assert np.all(union >= mask)  # only bridged holes can gain pixels
    if iou < 1:
        assert report["polygon_loss"] == [{"image_id": "0", "source_id": "s", "iou": pytest.approx(iou)}]
    else:
        assert report["polygon_loss"] == []
    assert report["split"] == (len(back.objects) > 1)


coordinate = st.integers(-20, 140).map(lambda v: v / 10)  # tenths: where pycocotools rounding is most fragile


@settings(max_examples=60, deadline=None)
@given(
    points=st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=8),
    w=st.integers(1, 13),
    h=st.integers(1, 13),
)
def test_polygons_round_trip_exactly_through_percent(points, w, h):
    ring = [v for p in points for v in p]
    ds = dataset_of({"rle": polygons_to_rle([ring], h, w), "geometry": json.dumps([ring])}, size=(w, h))
    assume(ds.objects["area"][0] > 0)  # an empty mask has no region to write
    back = reread(ds)
    assert json.loads(back.objects["geometry"][0]) == [ring]
    assert back.objects["rle"][0] == ds.objects["rle"][0]


def test_label_studio_brush_to_dataset_to_brush_is_identical():
    first = np.zeros((H, W), np.uint8)
    first[10:50, 20:80] = 1
    first[20:30, 30:40] = 0
    second = np.zeros((H, W), np.uint8)
    second[60:, 150:] = 1
    tasks = [task(brush(first, label="house", rid="h"), brush(second, label="tree", rid="t"))]
    ds = tasks_to_dataset(tasks)
    again = reread(ds, tool="brush")
    assert again.category_names == ds.category_names == ["house", "tree"]
    assert list(again.objects["rle"]) == list(ds.objects["rle"])
    assert np.array_equal(again.object_mask(0), first)


def test_holes_survive_label_studio_to_coco_and_back(tmp_path: Path):
    mask = np.zeros((H, W), np.uint8)
    mask[10:60, 10:90] = 1
    mask[25:40, 30:50] = 0
    ds = tasks_to_dataset([task(brush(mask))])
    coco.save(ds, tmp_path / "coco.json")
    back = coco.load(tmp_path / "coco.json")
    assert np.array_equal(back.object_mask(0), mask)
    written = json.loads((tmp_path / "coco.json").read_text())
    assert isinstance(written["annotations"][0]["segmentation"], dict)  # RLE: the hole is held
    # and the polygon tool bridges the hole: it reads back exactly
    polygons = reread(ds)
    assert len(polygons.objects) == 1 and np.array_equal(polygons.object_mask(0), mask)


def test_file_names_survive_url_quoting(tmp_path: Path):
    ds = dataset_of({"rle": rle.encode(np.ones((H, W), np.uint8))})
    images = ds.images.assign(file_name="sub dir/a+b #1&x=é.png")
    objects = ds.objects.assign(file_name="sub dir/a+b #1&x=é.png")
    ds = ds.replace(images=images, objects=objects)
    labelstudio.save(ds, tmp_path / "t.json")
    back = labelstudio.load(tmp_path / "t.json", which="predictions")
    assert back.images["file_name"][0] == "sub dir/a+b #1&x=é.png"
