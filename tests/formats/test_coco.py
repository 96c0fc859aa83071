"""COCO instances and results: reading, writing, round trips, and every kind of bad input."""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from pycocotools import mask as cocomask
from pycocotools.coco import COCO

from seg.dataset import rle
from seg.dataset.core import Category, Dataset
from seg.dataset.images import MAX_PIXELS
from seg.dataset.problems import Problems
from seg.errors import FormatError, OutputExistsError, SegError, UnsafePathError
from seg.formats import coco, detect_format

# -- helpers ------------------------------------------------------------------------------------------------------


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def mask_of(shape: tuple[int, int], *boxes: tuple[int, int, int, int]) -> np.ndarray:
    """A 0/1 mask with the given (y0, x0, y1, x1) rectangles set."""
    mask = np.zeros(shape, np.uint8)
    for y0, x0, y1, x1 in boxes:
        mask[y0:y1, x0:x1] = 1
    return mask


def compressed(mask: np.ndarray) -> dict:
    return {"size": list(mask.shape), "counts": rle.encode(mask)}


def uncompressed(mask: np.ndarray) -> dict:
    return {"size": list(mask.shape), "counts": rle.runs_from_flat(mask.ravel(order="F"))}


def reference_masks(data: dict) -> dict[str, np.ndarray]:
    """``{str(annotation id): mask}`` from pycocotools' COCO.annToMask (flat polygons nested first: annToMask cannot
    read the flat form), for annotations that have a segmentation."""
    data = copy.deepcopy(data)
    for ann in data["annotations"]:
        segm = ann.get("segmentation")
        if isinstance(segm, list) and segm and not isinstance(segm[0], list):
            ann["segmentation"] = [segm]
    api = COCO()
    api.dataset = data
    api.createIndex()
    return {str(a["id"]): api.annToMask(a) for a in data["annotations"] if a.get("segmentation")}


def assert_masks_match(ds: Dataset, data: dict) -> None:
    reference = reference_masks(data)
    with_masks = ds.objects.index[ds.objects["rle"].notna()]
    assert sorted(ds.objects.loc[with_masks, "source_id"]) == sorted(reference)
    for index in with_masks:
        expected = reference[ds.objects.at[index, "source_id"]]
        assert np.array_equal(ds.object_mask(index), expected), ds.objects.at[index, "source_id"]


def round_trip(ds: Dataset, tmp: Path, **options) -> tuple[Dataset, dict, dict]:
    report = coco.save(ds, tmp / "out.json", overwrite=True, **options)
    back = coco.load(tmp / "out.json")
    return back, report, json.loads((tmp / "out.json").read_text())


MULTI_PART = [[1, 1, 6, 1, 6, 4, 1, 4], [10.5, 2.5, 14, 2.5, 12, 7.5]]
FLAT = [2, 5, 8, 5, 8, 9, 2, 9]
OUTSIDE = [[-5, -5, 4, -5, 4, 3, -5, 3]]
CRS_MASK = mask_of((6, 8), (1, 1, 4, 5), (4, 6, 6, 8))


def sample() -> dict:
    """A COCO instances document exercising every kind of object seg reads."""
    return {
        "info": {"description": "handmade"},
        "categories": [
            {"id": 7, "name": "car", "supercategory": "vehicle"},
            {"id": 3, "name": "person", "supercategory": "human"},
            {"id": 9, "name": "tree"},
        ],
        "images": [
            {"id": 1, "file_name": "sub\\dir\\a.png", "width": 16, "height": 10},
            {"id": 2, "file_name": "neg/b.png", "width": 5, "height": 4},
            {"id": 3, "file_name": "./c.png", "width": 8, "height": 6},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 3, "segmentation": MULTI_PART, "bbox": [0, 0, 1, 1], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 7, "segmentation": FLAT, "iscrowd": 0},
            {"id": 12, "image_id": 3, "category_id": 7, "segmentation": compressed(CRS_MASK), "area": 1},
            {
                "id": 13,
                "image_id": 3,
                "category_id": 3,
                "segmentation": uncompressed(np.flipud(CRS_MASK)),
                "iscrowd": 1,
            },
            {"id": 14, "image_id": 1, "category_id": 9, "segmentation": [], "bbox": [2, 3, 4.5, 2], "iscrowd": 0},
            {"id": 15, "image_id": 3, "category_id": 9, "bbox": [1, 1, 2, 2]},
            {"id": 16, "image_id": 1, "category_id": 3, "segmentation": OUTSIDE, "attributes": {"occluded": True}},
            {"id": 17, "image_id": 1, "category_id": 7, "segmentation": [[3, 3, 9, 3, 9, 8]], "score": 0.25},
        ],
    }


@pytest.fixture
def sample_file(tmp_path: Path) -> Path:
    return write(tmp_path / "instances.json", sample())


# -- reading ------------------------------------------------------------------------------------------------------


def test_load_reads_every_kind_of_object(sample_file: Path):
    ds = coco.load(sample_file)
    assert ds.categories == [Category("car", 7, "vehicle"), Category("person", 3, "human"), Category("tree", 9, "")]
    assert list(ds.images["image_id"]) == ["1", "2", "3"]
    assert list(ds.images["file_name"]) == ["sub/dir/a.png", "neg/b.png", "c.png"]
    assert ds.image_root == sample_file.parent
    objects = ds.objects.set_index("source_id")
    # objects are grouped by image in image order, reading order inside an image
    assert list(ds.objects["source_id"]) == ["10", "11", "14", "16", "17", "12", "13", "15"]
    assert objects.loc["10", "category"] == "person"
    assert json.loads(objects.loc["10", "geometry"]) == MULTI_PART
    assert json.loads(objects.loc["11", "geometry"]) == [FLAT]
    # polygon box = clipped ring extents, not the file's bbox
    assert tuple(objects.loc["10", ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]]) == (1, 1, 13, 6.5)
    assert tuple(objects.loc["16", ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]]) == (0, 0, 4, 3)
    # RLE objects: box and area of the mask
    assert tuple(objects.loc["12", ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]]) == rle.bbox(rle.encode(CRS_MASK), 6, 8)
    assert objects.loc["12", "area"] == CRS_MASK.sum()
    assert pd_isna(objects.loc["12", "geometry"])
    assert objects.loc["13", "iscrowd"] and not objects.loc["12", "iscrowd"]
    # box-only: no mask, the file's box, area from the box
    assert pd_isna(objects.loc["14", "rle"]) and pd_isna(objects.loc["15", "rle"])
    assert tuple(objects.loc["14", ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]]) == (2, 3, 4.5, 2)
    assert objects.loc["14", "area"] == 9
    assert json.loads(objects.loc["16", "attributes"]) == {"occluded": True}
    assert pd_isna(objects.loc["10", "attributes"])
    assert objects.loc["17", "score"] == 0.25 and math.isnan(objects.loc["10", "score"])
    # every mask is pycocotools' own
    assert_masks_match(ds, sample())


def pd_isna(value) -> bool:
    return not isinstance(value, str) and (value is None or math.isnan(value))


def test_polygon_outside_the_image_is_clipped(sample_file: Path):
    ds = coco.load(sample_file)
    index = int(np.flatnonzero(ds.objects["source_id"] == "16")[0])
    assert np.array_equal(ds.object_mask(index)[:3, :4], np.ones((3, 4), np.uint8))
    assert ds.object_mask(index).sum() == 12


def test_compressed_rle_is_stored_canonically(tmp_path: Path):
    # "0004" is a valid but non-canonical RLE of a full 2x2 mask (zero-length runs)
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": 2, "height": 2}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"size": [2, 2], "counts": "0004"}}],
        "categories": [{"id": 1, "name": "x"}],
    }
    ds = coco.load(write(tmp_path / "a.json", data))
    assert ds.objects.at[0, "rle"] == rle.encode(np.ones((2, 2), np.uint8))
    assert_masks_match(ds, data)


def test_image_ids_can_be_strings_and_annotations_match_them_as_text(tmp_path: Path):
    data = {
        "images": [
            {"id": "img-a", "file_name": "a.png", "width": 4, "height": 4},
            {"id": 5, "file_name": "b.png", "width": 4, "height": 4},
        ],
        "annotations": [
            {"id": 1, "image_id": "5", "category_id": 1, "bbox": [0, 0, 1, 1]},
            {"id": "x", "image_id": "img-a", "category_id": 1, "bbox": [0, 0, 2, 1]},
        ],
        "categories": [{"id": 1, "name": "x"}],
    }
    ds = coco.load(write(tmp_path / "a.json", data))
    assert list(ds.images["image_id"]) == ["img-a", "5"]
    assert list(ds.objects["source_id"]) == ["x", "1"]


def test_missing_size_is_read_from_the_image_header(tmp_path: Path):
    Image.new("RGB", (7, 3)).save(tmp_path / "a.png")
    data = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [], "categories": []}
    ds = coco.load(write(tmp_path / "a.json", data))
    assert ds.images[["width", "height"]].values.tolist() == [[7, 3]]


def test_default_image_root_follows_the_coco_layout(tmp_path: Path):
    data = {"images": [{"id": 1, "file_name": "x.png", "width": 2, "height": 2}], "annotations": [], "categories": []}
    ann = write(tmp_path / "coco" / "annotations" / "instances_val.json", data)
    assert coco.load(ann).image_root == ann.parent  # nothing found anywhere: the JSON's folder
    (tmp_path / "coco" / "images" / "val").mkdir(parents=True)
    (tmp_path / "coco" / "images" / "val" / "x.png").write_bytes(b"")
    assert coco.load(ann).image_root == tmp_path / "coco" / "images" / "val"
    assert coco.load(ann, images=tmp_path).image_root == tmp_path
    (ann.parent / "x.png").write_bytes(b"")
    assert coco.load(ann).image_root == ann.parent


def test_image_info_with_empty_annotations_loads_images_only(tmp_path: Path):
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 3, "height": 2}], "annotations": [], "categories": []}
    ds = coco.load(write(tmp_path / "a.json", data))
    assert len(ds.images) == 1 and ds.objects.empty


def test_person_keypoints_load_as_instances(tmp_path: Path):
    data = sample()
    for ann in data["annotations"]:
        ann["keypoints"] = [1, 1, 2]
        ann["num_keypoints"] = 1
    ds = coco.load(write(tmp_path / "a.json", data))
    assert len(ds.objects) == len(data["annotations"])
    assert_masks_match(ds, data)


def test_progress_wraps_the_annotation_loop(sample_file: Path):
    seen = []

    def progress(items):
        for item in items:
            seen.append(item)
            yield item

    coco.load(sample_file, progress=progress)
    assert len(seen) == len(sample()["annotations"])


# -- detection ----------------------------------------------------------------------------------------------------


def test_detect(tmp_path: Path, sample_file: Path, monkeypatch: pytest.MonkeyPatch):
    assert coco.detect(sample_file)
    assert detect_format(sample_file) == "coco"
    results = write(tmp_path / "res.json", [{"image_id": 1, "category_id": 2, "bbox": [0, 0, 1, 1], "score": 1}])
    assert coco.detect(results)
    assert not coco.detect(write(tmp_path / "other.json", {"images": []}))
    assert not coco.detect(write(tmp_path / "ls.json", [{"data": {}, "annotations": []}]))
    assert not coco.detect(write(tmp_path / "empty.json", []))
    (tmp_path / "broken.json").write_text('{"images": [')
    assert not coco.detect(tmp_path / "broken.json")
    (tmp_path / "a.csv").write_text("images,annotations\n")
    assert not coco.detect(tmp_path / "a.csv")
    assert not coco.detect(tmp_path)
    # large files are scanned as text, not parsed
    monkeypatch.setattr(coco, "_DETECT_PARSE_LIMIT", 10)
    assert coco.detect(sample_file) and coco.detect(results)
    assert not coco.detect(tmp_path / "other.json")
    assert not coco.detect(tmp_path / "ls.json")


# -- writing ------------------------------------------------------------------------------------------------------


def test_round_trip_is_lossless_and_keeps_polygons(tmp_path: Path, sample_file: Path):
    ds = coco.load(sample_file)
    back, report, written = round_trip(ds, tmp_path)
    assert back.equals(ds)
    assert report == {"images": 3, "objects": 8, "polygon_loss": [], "path": str(tmp_path / "out.json")}
    anns = {a["id"]: a for a in written["annotations"]}
    assert anns[10]["segmentation"] == MULTI_PART
    assert anns[11]["segmentation"] == [FLAT]
    assert anns[12]["segmentation"] == {"size": [6, 8], "counts": rle.encode(CRS_MASK)}
    assert anns[13]["segmentation"]["counts"] == rle.encode(np.flipud(CRS_MASK)) and anns[13]["iscrowd"] == 1
    assert anns[14]["segmentation"] == [] and anns[14]["area"] == 9.0 and anns[14]["bbox"] == [2, 3, 4.5, 2]
    assert anns[16]["attributes"] == {"occluded": True}
    assert anns[17]["score"] == 0.25 and "score" not in anns[10]
    assert [c["id"] for c in written["categories"]] == [7, 3, 9]
    assert written["categories"][0]["supercategory"] == "vehicle"
    assert [i["id"] for i in written["images"]] == [1, 2, 3]
    assert "seg_image_id" not in written["images"][0]
    # pycocotools reads what seg wrote, with the same masks
    assert_masks_match(back, written)


def test_non_integer_ids_survive_a_round_trip(tmp_path: Path):
    mask = mask_of((5, 6), (1, 1, 3, 4))
    ds = Dataset.from_records(
        [
            {"image_id": "photo_a", "file_name": "photo_a.jpg", "width": 6, "height": 5},
            {"image_id": "007", "file_name": "7.jpg", "width": 6, "height": 5},
        ],
        [
            {
                "image_id": "photo_a",
                "file_name": "photo_a.jpg",
                "width": 6,
                "height": 5,
                "category": "b",
                "rle": rle.encode(mask),
                "source_id": "region-1",
                "annotator": "ann",
                "origin": "via",
            },
            {
                "image_id": "007",
                "file_name": "7.jpg",
                "width": 6,
                "height": 5,
                "category": "a",
                "rle": rle.encode(mask),
                "source_id": "",
            },
        ],
        [Category("a", 5), Category("b", 5, "x")],
    )
    back, _, written = round_trip(ds, tmp_path)
    assert [(i["id"], i["seg_image_id"]) for i in written["images"]] == [(1, "photo_a"), (2, "007")]
    assert [(a["id"], a.get("seg_source_id")) for a in written["annotations"]] == [(1, "region-1"), (2, "")]
    # colliding category ids cannot be kept: they are renumbered, the rest comes back as it was
    assert [c["id"] for c in written["categories"]] == [1, 2]
    assert back.categories == [Category("a", 1), Category("b", 2, "x")]
    assert back.replace(categories=ds.categories).equals(ds)


def test_box_only_objects_stay_box_only(tmp_path: Path):
    ds = Dataset.from_records(
        [{"image_id": "1", "file_name": "a.png", "width": 10, "height": 10}],
        [
            {
                "image_id": "1",
                "file_name": "a.png",
                "width": 10,
                "height": 10,
                "category": "a",
                "rle": None,
                "bbox_x": 1.5,
                "bbox_y": 2.0,
                "bbox_w": 3.0,
                "bbox_h": 4.0,
                "area": 12,
                "source_id": "4",
            }
        ],
        [Category("a", 1)],
    )
    back, _, written = round_trip(ds, tmp_path)
    assert back.equals(ds)
    assert written["annotations"][0]["segmentation"] == [] and written["annotations"][0]["area"] == 12.0


def test_auto_writes_holes_as_rle_and_polygon_mode_keeps_them_in_bridged_rings(tmp_path: Path):
    ring = mask_of((12, 12), (2, 2, 10, 10))
    ring[4:8, 4:8] = 0  # a hole
    solid = mask_of((12, 12), (1, 1, 3, 5), (6, 7, 11, 11))
    ds = Dataset.from_records(
        [{"image_id": "1", "file_name": "a.png", "width": 12, "height": 12}],
        [
            {
                "image_id": "1",
                "file_name": "a.png",
                "width": 12,
                "height": 12,
                "category": "a",
                "rle": rle.encode(m),
                "source_id": str(i),
            }
            for i, m in enumerate([ring, solid, np.zeros((12, 12), np.uint8)], start=1)
        ],
        [Category("a", 1)],
    )
    back, report, written = round_trip(ds, tmp_path)
    assert back.equals(ds) and report["polygon_loss"] == []
    assert all(isinstance(a["segmentation"], dict) for a in written["annotations"])

    back, report, written = round_trip(ds, tmp_path, segmentation="polygon")
    assert report["polygon_loss"] == []
    segs = [a["segmentation"] for a in written["annotations"]]
    assert isinstance(segs[0], list) and len(segs[0]) == 1  # one ring, the hole bridged into it
    assert isinstance(segs[1], list) and len(segs[1]) == 2
    assert isinstance(segs[2], dict)  # an empty mask cannot be a polygon
    assert np.array_equal(back.object_mask(0), ring)  # the hole is kept
    gt = COCO()
    gt.dataset = written
    gt.createIndex()
    assert np.array_equal(gt.annToMask(gt.loadAnns(1)[0]), ring)  # and pycocotools agrees
    assert np.array_equal(back.object_mask(1), solid)  # solid parts come back exactly
    assert_masks_match(back, written)

    _, report, written = round_trip(ds, tmp_path, segmentation="rle")
    assert all(isinstance(a["segmentation"], dict) for a in written["annotations"])


def test_rle_mode_writes_polygon_objects_as_rle_and_polygon_mode_keeps_them(tmp_path: Path, sample_file: Path):
    ds = coco.load(sample_file)
    back, report, written = round_trip(ds, tmp_path, segmentation="rle")
    anns = {a["id"]: a for a in written["annotations"]}
    assert isinstance(anns[10]["segmentation"], dict)
    assert "geometry" not in back.objects.columns
    assert list(back.objects["rle"].fillna("")) == list(ds.objects["rle"].fillna(""))
    _, report, written = round_trip(ds, tmp_path, segmentation="polygon")
    anns = {a["id"]: a for a in written["annotations"]}
    assert anns[10]["segmentation"] == MULTI_PART and report["polygon_loss"] == []


def test_stale_geometry_is_not_written(tmp_path: Path, sample_file: Path):
    ds = coco.load(sample_file)
    objects = ds.objects.copy()
    objects.loc[0, "rle"] = rle.encode(mask_of((10, 16), (0, 0, 2, 2)))  # mask edited, geometry left behind
    edited = ds.replace(objects=objects)
    _, _, written = round_trip(edited, tmp_path)
    assert written["annotations"][0]["segmentation"] == {"size": [10, 16], "counts": objects.loc[0, "rle"]}


def test_save_rejects_an_unknown_mode(tmp_path: Path, sample_file: Path):
    with pytest.raises(ValueError, match="segmentation must be one of"):
        coco.save(coco.load(sample_file), tmp_path / "x.json", segmentation="mesh")
    assert not (tmp_path / "x.json").exists()


def test_save_never_overwrites_without_overwrite(tmp_path: Path, sample_file: Path):
    out = tmp_path / "out.json"
    out.write_text("keep me")
    with pytest.raises(OutputExistsError, match=r"out\.json"):
        coco.save(coco.load(sample_file), out)
    assert out.read_text() == "keep me"
    coco.save(coco.load(sample_file), out, overwrite=True)
    assert json.loads(out.read_text())["images"]


def test_a_failing_save_leaves_no_partial_file(tmp_path: Path, sample_file: Path, monkeypatch: pytest.MonkeyPatch):
    def broken_dump(obj, handle, **kwargs):
        handle.write('{"images": [')
        raise OSError("disk full")

    monkeypatch.setattr(coco.json, "dump", broken_dump)
    ds = coco.load(sample_file)
    with pytest.raises(OSError, match="disk full"):
        coco.save(ds, tmp_path / "new.json")
    assert not (tmp_path / "new.json").exists()
    (tmp_path / "old.json").write_text("old")
    with pytest.raises(OSError):
        coco.save(ds, tmp_path / "old.json", overwrite=True)
    assert (tmp_path / "old.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instances.json", "old.json"]


# -- round trips over random masks and polygons -------------------------------------------------------------------


@st.composite
def mask_datasets(draw) -> Dataset:
    """A Dataset of 1-3 images with random masks, boxes, crowd flags and scores."""
    images, objects = [], []
    numeric = draw(st.booleans())
    for i in range(draw(st.integers(1, 3))):
        h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        image_id = str(i * 7) if numeric else f"img{i}"
        images.append({"image_id": image_id, "file_name": f"{image_id}.png", "width": w, "height": h})
        for _ in range(draw(st.integers(0, 3))):
            row = {
                "image_id": image_id,
                "file_name": f"{image_id}.png",
                "width": w,
                "height": h,
                "category": draw(st.sampled_from(["a", "b"])),
                "iscrowd": draw(st.booleans()),
                "score": draw(st.one_of(st.just(math.nan), st.floats(0, 1))),
                "source_id": str(len(objects)) if numeric else f"o{len(objects)}",
            }
            if draw(st.integers(0, 4)) == 0:
                x, y = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
                row.update(
                    rle=None,
                    bbox_x=float(x),
                    bbox_y=float(y),
                    bbox_w=float(draw(st.integers(0, w - x))),
                    bbox_h=float(draw(st.integers(0, h - y))),
                )
                row["area"] = round(row["bbox_w"] * row["bbox_h"])
            else:
                mask = draw(hnp.arrays(np.uint8, (h, w), elements=st.integers(0, 1)))
                row["rle"] = rle.encode(mask)
            objects.append(row)
    return Dataset.from_records(images, objects, [Category("a", 1), Category("b", 2, "s")])


@settings(max_examples=30, deadline=None)
@given(ds=mask_datasets(), mode=st.sampled_from(["auto", "rle"]))
def test_random_masks_round_trip(tmp_path_factory: pytest.TempPathFactory, ds: Dataset, mode: str):
    back, report, _ = round_trip(ds, tmp_path_factory.mktemp("rt"), segmentation=mode)
    assert back.equals(ds)
    assert report["polygon_loss"] == []


@settings(max_examples=30, deadline=None)
@given(mask=hnp.arrays(np.uint8, st.tuples(st.integers(1, 10), st.integers(1, 10)), elements=st.integers(0, 1)))
def test_polygon_mode_is_exact_unless_holes(tmp_path_factory: pytest.TempPathFactory, mask: np.ndarray):
    h, w = mask.shape
    ds = Dataset.from_records(
        [{"image_id": "1", "file_name": "a.png", "width": w, "height": h}],
        [
            {
                "image_id": "1",
                "file_name": "a.png",
                "width": w,
                "height": h,
                "category": "a",
                "rle": rle.encode(mask),
                "source_id": "1",
            }
        ],
        [Category("a", 1)],
    )
    back, report, _ = round_trip(ds, tmp_path_factory.mktemp("poly"), segmentation="polygon")
    got = back.object_mask(0)
    # polygons hold every part; only pixels inside holes can be added, never removed
    assert np.all(got >= mask)
    iou = rle.iou(rle.encode(got), rle.encode(mask), h, w)
    if iou < 1:
        assert report["polygon_loss"] == [{"image_id": "1", "source_id": "1", "iou": pytest.approx(iou)}]
    else:
        assert report["polygon_loss"] == []
        assert np.array_equal(got, mask)


coordinate = st.floats(-4, 16, allow_nan=False).map(lambda v: round(v, 2))
rings = st.lists(
    st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=7).map(
        lambda points: [v for p in points for v in p]
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=40, deadline=None)
@given(polygons=st.lists(rings, min_size=1, max_size=3), h=st.integers(1, 12), w=st.integers(1, 12))
def test_random_polygons_match_pycocotools_and_round_trip(tmp_path_factory: pytest.TempPathFactory, polygons, h, w):
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": w, "height": h}],
        "annotations": [{"id": i, "image_id": 1, "category_id": 1, "segmentation": p} for i, p in enumerate(polygons)],
        "categories": [{"id": 1, "name": "a"}],
    }
    tmp = tmp_path_factory.mktemp("poly")
    ds = coco.load(write(tmp / "in.json", data))
    assert_masks_match(ds, data)
    back, report, written = round_trip(ds, tmp)
    assert back.equals(ds) and report["polygon_loss"] == []
    assert [a["segmentation"] for a in written["annotations"]] == polygons


# -- results lists ------------------------------------------------------------------------------------------------

RES_MASK = mask_of((6, 8), (0, 2, 3, 7))


def results() -> list[dict]:
    return [
        {"image_id": 42, "category_id": 18, "segmentation": compressed(RES_MASK), "score": 0.9},
        {"image_id": 42, "category_id": 3, "bbox": [1, 1, 2, 2], "score": 0.4},
        {"image_id": 7, "category_id": 18, "segmentation": compressed(np.ones((4, 5), np.uint8)), "score": 0.1},
    ]


def test_results_take_sizes_from_their_rle(tmp_path: Path):
    path = write(tmp_path / "res.json", results())
    ds = coco.load(path)
    assert list(ds.images["image_id"]) == ["42", "7"]
    assert ds.images[["width", "height"]].values.tolist() == [[8, 6], [5, 4]]
    assert ds.categories == [Category("3", 3), Category("18", 18)]
    assert list(ds.objects["source_id"]) == ["0", "1", "2"]
    assert list(ds.objects["score"]) == [0.9, 0.4, 0.1]
    assert np.array_equal(ds.object_mask(0), RES_MASK)
    assert pd_isna(ds.objects.at[1, "rle"]) and ds.objects.at[1, "bbox_w"] == 2
    back, _, written = round_trip(ds, tmp_path)
    assert back.equals(ds)
    assert written["annotations"][0]["score"] == 0.9


def test_results_without_any_size_name_what_to_pass(tmp_path: Path):
    path = write(tmp_path / "res.json", [{"image_id": 3, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])
    with pytest.raises(FormatError) as info:
        coco.load(path)
    message = str(info.value)
    assert str(path) in message and "image 3" in message
    for hint in ("annotations=", "images=", "image_size="):
        assert hint in message
    ds = coco.load(path, image_size=(20, 10))
    assert ds.images[["width", "height"]].values.tolist() == [[20, 10]]
    with pytest.raises(SegError, match="image_size"):
        coco.load(path, image_size=(0, 10))


def test_results_with_ground_truth(tmp_path: Path):
    gt = {
        "images": [
            {"id": 7, "file_name": "x/seven.jpg", "width": 5, "height": 4},
            {"id": 8, "file_name": "eight.jpg", "width": 3, "height": 3},
            {"id": 42, "file_name": "answer.jpg", "width": 8, "height": 6},
        ],
        "annotations": [],
        "categories": [{"id": 18, "name": "dog", "supercategory": "animal"}, {"id": 3, "name": "car"}],
    }
    gt_path = write(tmp_path / "gt" / "instances.json", gt)
    ds = coco.load(write(tmp_path / "res.json", results()), annotations=gt_path)
    assert list(ds.images["image_id"]) == ["7", "8", "42"]  # every ground-truth image, negatives included
    assert list(ds.images["file_name"]) == ["x/seven.jpg", "eight.jpg", "answer.jpg"]
    assert ds.categories == [Category("dog", 18, "animal"), Category("car", 3)]
    assert list(ds.objects["category"]) == ["dog", "dog", "car"]
    assert ds.image_root == gt_path.parent
    # pycocotools' own loadRes on the same ground truth gives the same masks
    api = COCO()
    api.dataset = copy.deepcopy(gt)
    api.createIndex()
    # (loadRes cannot take segmentation and bbox-only rows in one list: give it the segmentation rows)
    rows = [(str(i), r) for i, r in enumerate(copy.deepcopy(results())) if "segmentation" in r]
    res = api.loadRes([r for _, r in rows])
    for (source_id, _), ann in zip(rows, sorted(res.dataset["annotations"], key=lambda a: a["id"]), strict=True):
        index = int(np.flatnonzero(ds.objects["source_id"] == source_id)[0])
        assert np.array_equal(ds.object_mask(index), res.annToMask(ann))


def test_results_against_ground_truth_report_unknown_images_and_categories(tmp_path: Path):
    gt = {
        "images": [{"id": 42, "file_name": "a.jpg", "width": 8, "height": 6}],
        "annotations": [],
        "categories": [{"id": 18, "name": "dog"}],
    }
    gt_path = write(tmp_path / "gt.json", gt)
    path = write(tmp_path / "res.json", results())
    with pytest.raises(FormatError, match=r"result 1: result refers to unknown category 3"):
        coco.load(path, annotations=gt_path)
    problems = Problems("skip")
    ds = coco.load(path, annotations=gt_path, problems=problems)
    assert list(ds.objects["source_id"]) == ["0"]
    assert [r["item"] for r in problems.to_records()] == ["result 1", "result 2"]
    assert "not in the ground truth" in problems.to_records()[1]["message"]
    # an RLE size that disagrees with the ground truth is an error
    gt["images"][0]["width"] = 9
    with pytest.raises(FormatError, match=r"result 0: RLE size \[6, 8\] differs"):
        coco.load(path, annotations=write(tmp_path / "gt2.json", gt))


def test_results_with_an_image_folder(tmp_path: Path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (8, 6)).save(folder / "COCO_val2014_000000000042.jpg")
    Image.new("L", (5, 4)).save(folder / "7.png")
    rows = [
        {"image_id": 42, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1},
        {"image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1},
    ]
    path = write(tmp_path / "res.json", rows)
    ds = coco.load(path, images=folder)
    assert list(ds.images["file_name"]) == ["COCO_val2014_000000000042.jpg", "7.png"]
    assert ds.images[["width", "height"]].values.tolist() == [[8, 6], [5, 4]]
    assert ds.image_root == folder
    with pytest.raises(FormatError, match="image folder not found"):
        coco.load(path, images=tmp_path / "nowhere")
    rows.append({"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1})
    with pytest.raises(FormatError, match="no image file for image id 9"):
        coco.load(write(tmp_path / "res.json", rows), images=folder)


def test_bad_result_rows(tmp_path: Path):
    rows = [
        {"image_id": 1, "bbox": [0, 0, 1, 1]},
        "junk",
        {"image_id": 1, "category_id": 2, "segmentation": 5, "score": 1},
    ]
    path = write(tmp_path / "res.json", rows)
    with pytest.raises(FormatError, match=r"result 0: result lacks 'category_id'"):
        coco.load(path, image_size=(4, 4))
    problems = Problems("skip")
    ds = coco.load(path, image_size=(4, 4), problems=problems)
    assert ds.objects.empty
    assert [r["item"] for r in problems.to_records()] == ["result 0", "result 1", "result 2"]
    bomb = [{"image_id": 1, "category_id": 1, "segmentation": {"size": [2**16, 2**16], "counts": "0"}, "score": 1}]
    with pytest.raises(FormatError, match=r"item image 1: image too large"):
        coco.load(write(tmp_path / "bomb.json", bomb))
    keypoints = write(tmp_path / "kp.json", [{"image_id": 1, "category_id": 1, "keypoints": [1, 2, 2], "score": 1}])
    with pytest.raises(FormatError, match="keypoint results"):
        coco.load(keypoints)


# -- bad input ----------------------------------------------------------------------------------------------------


def base() -> dict:
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 6, "height": 5},
            {"id": 2, "file_name": "b.png", "width": 6, "height": 5},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 4, 0, 4, 4]]},
            {"id": 2, "image_id": 2, "category_id": 1, "segmentation": [[1, 1, 5, 1, 5, 4]]},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 2, 2]},
        ],
        "categories": [{"id": 1, "name": "a"}],
    }


def annotation(index: int, **changes):
    def change(data: dict) -> None:
        data["annotations"][index].update(changes)
        for key, value in changes.items():
            if value is ...:
                del data["annotations"][index][key]

    return change


def image(index: int, **changes):
    def change(data: dict) -> None:
        data["images"][index].update(changes)
        for key, value in changes.items():
            if value is ...:
                del data["images"][index][key]

    return change


def appended(key: str, value: dict):
    return lambda data: data[key].append(value)


# (change, error class, item named in the message, words of the message, objects left under skip)
BAD_ITEMS = {
    "missing id": (annotation(1, id=...), FormatError, "annotation at index 1", "lacks 'id'", 2),
    "missing image_id": (annotation(1, image_id=...), FormatError, "annotation 2", "lacks 'image_id'", 2),
    "missing category_id": (annotation(1, category_id=...), FormatError, "annotation 2", "lacks 'category_id'", 2),
    "unknown image": (annotation(1, image_id=99), FormatError, "annotation 2", "unknown image 99", 2),
    "unknown category": (annotation(1, category_id=5), FormatError, "annotation 2", "unknown category 5", 2),
    "two points": (annotation(1, segmentation=[[0, 0, 3, 3]]), FormatError, "annotation 2", "2 points", 2),
    "odd coordinates": (
        annotation(1, segmentation=[[0, 0, 3, 3, 4, 4, 5]]),
        FormatError,
        "annotation 2",
        "odd number of coordinates",
        2,
    ),
    "non-numeric": (
        annotation(1, segmentation=[[0, 0, "3", 3, 4, 4]]),
        FormatError,
        "annotation 2",
        "non-numeric coordinate '3'",
        2,
    ),
    "null coordinate": (
        annotation(1, segmentation=[0, 0, None, 3, 4, 4]),
        FormatError,
        "annotation 2",
        "non-numeric coordinate None",
        2,
    ),
    "infinite": (
        annotation(1, segmentation=[[0, 0, 1e400, 3, 4, 4]]),
        FormatError,
        "annotation 2",
        "non-numeric coordinate inf",
        2,
    ),
    "huge integer": (
        annotation(1, segmentation=[[0, 0, 10**400, 3, 4, 4]]),
        FormatError,
        "annotation 2",
        "non-numeric coordinate",
        2,
    ),
    "sum overflows": (
        annotation(1, segmentation=[[0, 0, 1e308, 1e308, 4, 4]]),
        FormatError,
        "annotation 2",
        "too large",
        2,
    ),
    "polygon bomb": (
        annotation(1, segmentation=[[0, 0, 3e8, 0, 0, 3e8]]),
        FormatError,
        "annotation 2",
        "pixels outside the 6x5 image",
        2,
    ),
    "mixed rings": (annotation(1, segmentation=[[0, 0, 3, 3, 4, 4], 5]), FormatError, "annotation 2", "mixes", 2),
    "rle list": (
        annotation(1, segmentation=[{"size": [5, 6], "counts": "0"}]),
        FormatError,
        "annotation 2",
        "list of RLE objects",
        2,
    ),
    "bad segmentation type": (annotation(1, segmentation="abc"), FormatError, "annotation 2", "got str", 2),
    "rle sum": (
        annotation(1, segmentation={"size": [5, 6], "counts": [3, 4]}),
        FormatError,
        "annotation 2",
        "sum to 7, expected height x width = 30",
        2,
    ),
    "compressed rle sum": (
        annotation(1, segmentation={"size": [5, 6], "counts": rle.encode(np.ones((2, 2)))}),
        FormatError,
        "annotation 2",
        "sum to 4",
        2,
    ),
    "rle non-ascii": (
        annotation(1, segmentation={"size": [5, 6], "counts": "é"}),
        FormatError,
        "annotation 2",
        "invalid character 'é'",
        2,
    ),
    "rle bad character": (
        annotation(1, segmentation={"size": [5, 6], "counts": "0 "}),
        FormatError,
        "annotation 2",
        "invalid character ' '",
        2,
    ),
    "rle truncated": (
        annotation(1, segmentation={"size": [5, 6], "counts": "0o"}),
        FormatError,
        "annotation 2",
        "ends inside a number",
        2,
    ),
    "rle size": (
        annotation(1, segmentation={"size": [6, 5], "counts": [30]}),
        FormatError,
        "annotation 2",
        "differs from the image's",
        2,
    ),
    "rle without size": (annotation(1, segmentation={"counts": [30]}), FormatError, "annotation 2", "'size'", 2),
    "rle huge counts": (
        annotation(1, segmentation={"size": [5, 6], "counts": [2**70, 30]}),
        FormatError,
        "annotation 2",
        "counts must be integers",  # integers beyond 64 bits parse as floats
        2,
    ),
    "rle negative counts": (
        annotation(1, segmentation={"size": [5, 6], "counts": [40, -10]}),
        FormatError,
        "annotation 2",
        "negative length",
        2,
    ),
    "rle float counts": (
        annotation(1, segmentation={"size": [5, 6], "counts": [10.5, 19.5]}),
        FormatError,
        "annotation 2",
        "integers",
        2,
    ),
    "no segmentation no bbox": (annotation(2, bbox=...), FormatError, "annotation 3", "no segmentation and no bbox", 2),
    "bad bbox": (annotation(2, bbox=[0, 0, "x", 1]), FormatError, "annotation 3", "bbox must be", 2),
    "negative bbox": (annotation(2, bbox=[0, 0, -1, 1]), FormatError, "annotation 3", "negative size", 2),
    "bad iscrowd": (annotation(1, iscrowd=2), FormatError, "annotation 2", "iscrowd must be 0 or 1", 2),
    "bad score": (annotation(1, score="high"), FormatError, "annotation 2", "score is not a number", 2),
    "duplicate annotation id": (annotation(2, id=2), FormatError, "annotation 2", "duplicate annotation id", 2),
    "annotation not an object": (
        lambda d: d["annotations"].insert(1, [1]),
        FormatError,
        "annotation at index 1",
        "not an object",
        3,
    ),
    "duplicate image id": (
        appended("images", {"id": 2, "file_name": "c.png", "width": 3, "height": 3}),
        FormatError,
        "image 2",
        "duplicate image id",
        3,
    ),
    "missing file_name": (image(1, file_name=...), FormatError, "image 2", "no 'file_name'", 1),
    "missing width": (image(1, width=...), FormatError, "image 2", "no 'width'/'height'", 1),
    "bad height": (image(1, height=-3), FormatError, "image 2", "two positive integers", 1),
    "float height": (image(1, height=2.5), FormatError, "image 2", "two positive integers", 1),
    "bomb": (image(1, width=2**15, height=2**15), FormatError, "image 2", f"at most {MAX_PIXELS} pixels", 1),
    "absolute path": (image(1, file_name="/etc/passwd"), UnsafePathError, "image 2", "absolute image path", 1),
    "windows absolute path": (image(1, file_name="C:\\x\\a.png"), UnsafePathError, "image 2", "absolute", 1),
    "climbing path": (image(1, file_name="imgs/../../secret.png"), UnsafePathError, "image 2", "leaves", 1),
    "duplicate category id": (
        appended("categories", {"id": 1, "name": "b"}),
        FormatError,
        "category 1",
        "duplicate category id",
        3,
    ),
    "duplicate category name": (
        appended("categories", {"id": 4, "name": "a"}),
        FormatError,
        "category 4",
        "duplicate category name 'a'",
        3,
    ),
    "category without name": (appended("categories", {"id": 4}), FormatError, "category 4", "no 'name'", 3),
    "category without id": (
        appended("categories", {"name": "b"}),
        FormatError,
        "category at index 1",
        "no integer 'id'",
        3,
    ),
}


@pytest.mark.parametrize("case", list(BAD_ITEMS))
def test_bad_items_raise_with_file_and_item_or_are_skipped(tmp_path: Path, case: str):
    change, error, item, words, left = BAD_ITEMS[case]
    data = base()
    change(data)
    path = write(tmp_path / "bad.json", data)
    with pytest.raises(error) as info:
        coco.load(path)
    message = str(info.value)
    assert str(path) in message and f"item {item}:" in message and words in message, message
    problems = Problems("skip")
    ds = coco.load(path, problems=problems)
    assert len(problems.skipped) == 1 and problems.skipped[0].item_id == item
    assert len(ds.objects) == left


FILE_ERRORS = {
    "top level string": ('"hello"', "neither an object nor a list"),
    "top level number": ("3", "neither an object nor a list"),
    "no annotations": (json.dumps({"images": [], "categories": []}), "image_info file"),
    "no images": (json.dumps({"annotations": []}), "no 'images' list"),
    "no keys": (json.dumps({"foo": 1}), "not a COCO file"),
    "images not a list": (json.dumps({"images": {}, "annotations": []}), "'images' is not a list"),
    "annotations not a list": (json.dumps({"images": [], "annotations": 5}), "'annotations' is not a list"),
    "categories not a list": (
        json.dumps({"images": [], "annotations": [], "categories": {}}),
        "'categories' is not a list",
    ),
    "captions": (json.dumps({"images": [], "annotations": [{"id": 1, "image_id": 1, "caption": "a dog"}]}), "captions"),
    "labels": (json.dumps({"images": [], "annotations": [{"id": 1, "image_id": 1, "category_id": 1}]}), "image-labels"),
    "keypoints only": (
        json.dumps({"images": [], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": [1, 1, 2]}]}),
        "keypoints-only",
    ),
    "panoptic": (
        json.dumps({"images": [], "annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": []}]}),
        "panoptic",
    ),
    "truncated": ('{"images": [{"id": 1,\n "file_name": "a', "malformed JSON at line 2 column"),
    "trailing comma": ('{"images": [],\n"annotations": [],\n}', "malformed JSON at line 3 column 1"),
    "empty file": ("", "malformed JSON at line 1 column 1"),
    "deep nesting": ("[" * 100000 + "]" * 100000, "nested too deeply"),
}


@pytest.mark.parametrize("case", list(FILE_ERRORS))
def test_files_that_are_not_coco_instances_are_refused_clearly(tmp_path: Path, case: str):
    text, words = FILE_ERRORS[case]
    path = tmp_path / "bad.json"
    path.write_text(text)
    for problems in (None, Problems("skip")):
        with pytest.raises(FormatError) as info:
            coco.load(path, problems=problems)
        assert str(path) in str(info.value) and words in str(info.value), str(info.value)


def test_unreadable_files(tmp_path: Path):
    with pytest.raises(FormatError, match="cannot read file"):
        coco.load(tmp_path / "missing.json")
    (tmp_path / "latin1.json").write_bytes(b'{"images": "\xe9"}')
    with pytest.raises(FormatError, match="not UTF-8"):
        coco.load(tmp_path / "latin1.json")
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(base()).encode())
    assert len(coco.load(tmp_path / "bom.json").objects) == 3


def test_options_for_results_are_refused_on_instances(tmp_path: Path, sample_file: Path):
    with pytest.raises(SegError, match="results lists only"):
        coco.load(sample_file, annotations=sample_file)
    with pytest.raises(SegError, match="results lists only"):
        coco.load(sample_file, image_size=(3, 3))


def test_skipping_an_unsafe_image_drops_its_annotations_once(tmp_path: Path):
    data = base()
    data["images"][1]["file_name"] = "../outside.png"
    problems = Problems("skip")
    ds = coco.load(write(tmp_path / "a.json", data), problems=problems)
    assert list(ds.images["image_id"]) == ["1"] and list(ds.objects["source_id"]) == ["1"]
    assert [r["error"] for r in problems.to_records()] == ["UnsafePathError"]


def test_an_image_without_id_leaves_its_annotations_unknown(tmp_path: Path):
    data = base()
    del data["images"][1]["id"]
    path = write(tmp_path / "a.json", data)
    with pytest.raises(FormatError, match=r"item image at index 1: image has no 'id'"):
        coco.load(path)
    problems = Problems("skip")
    ds = coco.load(path, problems=problems)
    assert list(ds.objects["source_id"]) == ["1"]
    assert [r["item"] for r in problems.to_records()] == ["image at index 1", "annotation 2", "annotation 3"]


def test_seg_image_ids_that_collide_are_reported(tmp_path: Path):
    data = base()
    data["images"][1]["seg_image_id"] = "1"
    with pytest.raises(FormatError, match=r"item image 2: duplicate image id '1'"):
        coco.load(write(tmp_path / "a.json", data))


def test_bad_input_leaves_existing_outputs_untouched(tmp_path: Path):
    out = tmp_path / "out.json"
    out.write_text("previous")
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(FormatError):
        coco.save(coco.load(bad), out, overwrite=True)
    assert out.read_text() == "previous"
    assert sorted(os.listdir(tmp_path)) == ["bad.json", "out.json"]


def test_pycocotools_reference_is_not_vacuous():
    # the comparison helper really compares: a wrong mask is caught
    data = {
        "images": [{"id": 1, "file_name": "a", "width": 4, "height": 4}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 2, 0, 2, 2]]}],
        "categories": [{"id": 1, "name": "a"}],
    }
    ds = Dataset.from_records(
        [{"image_id": "1", "file_name": "a", "width": 4, "height": 4}],
        [
            {
                "image_id": "1",
                "file_name": "a",
                "width": 4,
                "height": 4,
                "category": "a",
                "rle": rle.encode(np.ones((4, 4), np.uint8)),
                "source_id": "1",
            }
        ],
        [Category("a", 1)],
    )
    with pytest.raises(AssertionError):
        assert_masks_match(ds, data)
    assert cocomask.area(cocomask.frPyObjects([[0, 0, 2, 0, 2, 2]], 4, 4)[0]) > 0


def test_image_provenance_keys_survive_the_round_trip(tmp_path):
    doc = {
        "images": [
            {
                "id": 3,
                "file_name": "t.jpg",
                "width": 4,
                "height": 4,
                "coco_url": "http://x/t.jpg",
                "georeference": {"crs": "EPSG:3857", "bounds": [0.5, 1, 2, 3]},
            }
        ],
        "annotations": [],
        "categories": [{"id": 1, "name": "building"}],
    }
    src = tmp_path / "in.json"
    src.write_text(json.dumps(doc))
    ds = coco.load(src)
    assert json.loads(ds.images["attributes"].iloc[0])["georeference"]["crs"] == "EPSG:3857"
    coco.save(ds, tmp_path / "out.json")
    written = json.loads((tmp_path / "out.json").read_text())["images"][0]
    assert written["coco_url"] == "http://x/t.jpg" and written["georeference"]["bounds"] == [0.5, 1, 2, 3]
    assert coco.load(tmp_path / "out.json").equals(ds)


def test_worker_processes_give_the_same_rows_and_problems_in_file_order(tmp_path: Path):
    rng = np.random.default_rng(5)
    anns = []
    for i in range(1, 4501):
        x, y = rng.uniform(0, 20, 2)
        ring = [x, y, x + 9, y, x + 4, y + 7]
        anns.append(
            {
                "id": i,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [ring],
                "bbox": [0, 0, 1, 1],
                "area": 1,
                "iscrowd": 0,
            }
        )
    anns[10]["segmentation"] = [[0, 0, 1, 1]]  # too few points: a problem found in a worker
    anns[3000]["image_id"] = 999  # unknown image: a problem found before the workers
    anns[4000]["segmentation"] = [[0, 0, 1, 1]]
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 32}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "a"}],
    }
    path = tmp_path / "many.json"
    path.write_text(json.dumps(doc))
    serial, pooled = Problems("skip"), Problems("skip")
    one = coco.load(path, problems=serial, workers=1)
    two = coco.load(path, problems=pooled, workers=2)
    assert two.equals(one) and len(one.objects) == 4497
    assert [str(e) for e in pooled.skipped] == [str(e) for e in serial.skipped]
    assert [e.item_id for e in serial.skipped] == ["annotation 11", "annotation 3001", "annotation 4001"]
    with pytest.raises(FormatError, match="annotation 11"):
        coco.load(path, workers=2)
