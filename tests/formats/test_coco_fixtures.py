"""Conformance: every COCO file among the real-world fixtures (Datumaro's test assets, cocoapi's result files).

Every mask must be pixel-identical to pycocotools' ``annToMask`` and COCO -> Dataset -> COCO -> Dataset must be
lossless. The other COCO task files are either refused with a message naming what they are, or load sanely.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from seg.dataset.problems import Problems
from seg.errors import FormatError
from seg.formats import coco, detect_format
from tests.shared import SHARED_FIXTURES as FIXTURES

DATUMARO = FIXTURES / "datumaro_test_assets"
RESULTS = FIXTURES / "cocoapi_results" / "results"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"real-world fixtures not present at {FIXTURES}")


def _files(folder: Path, *patterns: str) -> list[Path]:
    return sorted(p for pattern in patterns for p in folder.glob(pattern)) if folder.is_dir() else []


INSTANCES = _files(
    DATUMARO,
    "coco_dataset/coco/annotations/instances_*.json",
    "coco_dataset/coco/annotations/stuff_*.json",
    "coco_dataset/coco/annotations/person_keypoints_*.json",
    "coco_dataset/coco_roboflow/*/_annotations.coco.json",
    "roboflow_dataset/coco/*/_annotations.coco.json",
    "kaggle_dataset/relaxed_coco/annotations.json",
)
REFUSED = {
    "captions": "COCO captions file",
    "labels": "a COCO image-labels file",
    "panoptic": "COCO panoptic file",
}
OTHER_TASKS = _files(DATUMARO, *(f"coco_dataset/coco/annotations/{kind}_*.json" for kind in REFUSED))
IMAGE_INFO = _files(DATUMARO, "coco_dataset/coco/annotations/image_info_*.json")
SEGM_RESULTS = RESULTS / "instances_val2014_fakesegm100_results.json"
BBOX_RESULTS = RESULTS / "instances_val2014_fakebbox100_results.json"


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(FIXTURES)) for p in paths]


def test_the_fixture_lists_are_not_empty():
    assert len(INSTANCES) == 11 and len(OTHER_TASKS) == 6 and len(IMAGE_INFO) == 2
    assert SEGM_RESULTS.is_file() and BBOX_RESULTS.is_file()


@pytest.mark.parametrize("path", INSTANCES, ids=_ids(INSTANCES))
def test_instances_match_pycocotools_and_round_trip(tmp_path: Path, path: Path):
    assert coco.detect(path) and detect_format(path) == "coco"
    ds = coco.load(path)
    data = json.loads(path.read_text())
    assert len(ds.images) == len(data["images"]) and len(ds.objects) == len(data["annotations"])
    api = COCO(str(path))
    for index, row in ds.objects.iterrows():
        ann = api.anns[int(row["source_id"])]
        assert row["category"] == api.cats[ann["category_id"]]["name"]
        assert row["iscrowd"] == bool(ann["iscrowd"])
        if ann.get("segmentation"):
            assert np.array_equal(ds.object_mask(index), api.annToMask(ann)), row["source_id"]
        else:
            assert not isinstance(row["rle"], str)
            assert [row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"]] == ann["bbox"]
    # the images are found where the layout puts them
    assert all(ds.image_path(i).is_file() for i in ds.images["image_id"])
    coco.save(ds, tmp_path / "out.json")
    assert coco.load(tmp_path / "out.json").equals(ds)


def test_datumaro_instances_details():
    ds = coco.load(DATUMARO / "coco_dataset/coco/annotations/instances_val.json")
    assert [(c.name, c.id) for c in ds.categories] == [("a", 1), ("b", 2), ("c", 4)]
    polygon, crowd = ds.objects.iloc[0], ds.objects.iloc[1]
    assert json.loads(polygon["geometry"]) == [[0.0, 0.0, 1.0, 0.0, 1.0, 2.0, 0.0, 2.0]]
    assert json.loads(polygon["attributes"]) == {"x": 1, "y": "hello"}
    assert crowd["iscrowd"] and crowd["area"] == 20  # the uncompressed RLE [0, 20, 30] on a 5x10 image


@pytest.mark.parametrize("path", OTHER_TASKS, ids=_ids(OTHER_TASKS))
def test_other_coco_tasks_are_refused_with_what_they_are(path: Path):
    kind = path.name.split("_")[0]
    with pytest.raises(FormatError) as info:
        coco.load(path)
    assert str(path) in str(info.value) and REFUSED[kind] in str(info.value)
    with pytest.raises(FormatError):
        coco.load(path, problems=Problems("skip"))


@pytest.mark.parametrize("path", IMAGE_INFO, ids=_ids(IMAGE_INFO))
def test_image_info_files_load_as_images_without_objects(tmp_path: Path, path: Path):
    ds = coco.load(path)
    data = json.loads(path.read_text())
    assert list(ds.images["image_id"]) == [str(i["id"]) for i in data["images"]]
    assert ds.objects.empty
    # without its (empty) 'annotations' list the same file is refused, saying what it is
    data.pop("annotations")
    (tmp_path / path.name).write_text(json.dumps(data))
    assert not coco.detect(tmp_path / path.name)
    with pytest.raises(FormatError, match="image_info file"):
        coco.load(tmp_path / path.name)


def test_segmentation_results_match_pycocotools(tmp_path: Path):
    assert coco.detect(SEGM_RESULTS)
    rows = json.loads(SEGM_RESULTS.read_text())
    ds = coco.load(SEGM_RESULTS)
    assert len(ds.objects) == len(rows)
    sizes = {r["image_id"]: r["segmentation"]["size"] for r in rows}
    assert ds.images.set_index("image_id")[["height", "width"]].T.to_dict("list") == {
        str(k): v for k, v in sizes.items()
    }
    # pycocotools' own reading, against a ground truth made of those sizes
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i, "height": h, "width": w} for i, (h, w) in sizes.items()],
        "categories": [{"id": c, "name": str(c)} for c in sorted({r["category_id"] for r in rows})],
        "annotations": [],
    }
    gt.createIndex()
    res = gt.loadRes(json.loads(SEGM_RESULTS.read_text()))
    for index, row in ds.objects.iterrows():
        ann = res.anns[int(row["source_id"]) + 1]  # loadRes numbers rows from 1
        assert row["score"] == ann["score"] and row["category"] == str(ann["category_id"])
        assert np.array_equal(ds.object_mask(index), res.annToMask(ann))
        assert row["area"] == ann["area"]
    coco.save(ds, tmp_path / "out.json")
    assert coco.load(tmp_path / "out.json").equals(ds)


def test_bbox_results_need_sizes_and_load_when_given(tmp_path: Path):
    assert coco.detect(BBOX_RESULTS)
    with pytest.raises(FormatError) as info:
        coco.load(BBOX_RESULTS)
    message = str(info.value)
    assert str(BBOX_RESULTS) in message and "image 42" in message and "image_size=" in message
    rows = json.loads(BBOX_RESULTS.read_text())
    ds = coco.load(BBOX_RESULTS, image_size=(640, 480))
    assert len(ds.objects) == len(rows) and ds.objects["rle"].isna().all()
    boxes = ds.objects[["bbox_x", "bbox_y", "bbox_w", "bbox_h"]].to_numpy().tolist()
    assert boxes == [r["bbox"] for r in rows]
    # sizes and names from a ground-truth file
    segm = json.loads(SEGM_RESULTS.read_text())
    sizes = {r["image_id"]: r["segmentation"]["size"] for r in segm}
    gt = {
        "images": [
            {"id": i, "file_name": f"COCO_val2014_{i:012d}.jpg", "height": h, "width": w} for i, (h, w) in sizes.items()
        ],
        "annotations": [],
        "categories": [{"id": c, "name": f"class{c}"} for c in range(1, 91)],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    assert {r["image_id"] for r in rows} <= set(sizes)  # both files score the same 99 val2014 images
    ds = coco.load(BBOX_RESULTS, annotations=tmp_path / "gt.json")
    assert len(ds.objects) == len(rows)
    assert ds.objects.at[0, "category"] == f"class{rows[0]['category_id']}"
    assert ds.objects.at[0, "file_name"] == f"COCO_val2014_{rows[0]['image_id']:012d}.jpg"
    assert ds.objects.at[0, "width"] == sizes[rows[0]["image_id"]][1]
    coco.save(ds, tmp_path / "out.json")
    assert coco.load(tmp_path / "out.json").equals(ds)
