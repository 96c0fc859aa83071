"""Conformance: every Label Studio file among the real-world fixtures, and the embedded sample's export.

The editor's example files (``labelstudio_frontend_examples``) and the SDK converter's test exports
(``labelstudio_sdk_converter_fixtures``) must load with the shapes and classes they hold, coordinates as a hand
computation gives them, and brush masks equal to the SDK's ``decode_rle``. Most editor examples carry no
``original_width``/``original_height``: their images are remote, so the tests give a blank image of a chosen size under
the URL's file name. The sample's Label Studio export must hold the same objects as its COCO file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seg.dataset import ls_brush, rle
from seg.dataset.problems import Problems
from seg.errors import FormatError
from seg.formats import coco, detect_format, labelstudio
from seg.formats.labelstudio import image_file_name
from tests.shared import SHARED_FIXTURES as FIXTURES

FRONTEND = FIXTURES / "labelstudio_frontend_examples" / "examples"
SDK = FIXTURES / "labelstudio_sdk_converter_fixtures" / "data"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"real-world fixtures not present at {FIXTURES}")


def _files() -> list[Path]:
    if not FIXTURES.is_dir():
        return []
    return sorted([*FRONTEND.glob("*/tasks.json"), *FRONTEND.glob("*/annotations/*.json"), *SDK.glob("*/*.json")])


FILES = [p for p in _files() if p.name != "coco_import_input.json"]
#: Task lists holding only data (files to import, with nothing annotated).
DATA_ONLY = {"image_segmentation/tasks.json", "image_tools/tasks.json"}


def _name(path: Path) -> str:
    return (
        f"{path.parent.parent.name}/{path.parent.name}/{path.name}"
        if path.parent.name == "annotations"
        else (f"{path.parent.name}/{path.name}")
    )


def blank_images(folder: Path, tasks: list | dict, size: tuple[int, int]) -> Path:
    """A blank image of ``size`` under the file name of every task's image URL."""
    for task in tasks if isinstance(tasks, list) else [tasks]:
        url = task.get("data", {}).get("image")
        if isinstance(url, str):
            path = folder / image_file_name(url)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                Image.new("L", size).save(path, format="PNG")  # some names have no suffix (/image1)
    return folder


def sdk_mask(result: dict) -> np.ndarray:
    brush = pytest.importorskip("label_studio_sdk.converter.brush")
    h, w = result["original_height"], result["original_width"]
    return (brush.decode_rle(result["value"]["rle"]).reshape(h, w, 4)[:, :, 3] != 0).astype(np.uint8)


def test_the_fixture_lists_are_not_empty():
    assert len(FILES) == 17  # 12 from the editor (6 tasks.json, 6 annotations), 5 exports from the SDK
    assert coco.detect(SDK / "test_import_coco" / "coco_import_input.json")
    assert not labelstudio.detect(SDK / "test_import_coco" / "coco_import_input.json")


@pytest.mark.parametrize("path", FILES, ids=[_name(p) for p in FILES])
def test_every_file_is_detected_and_loads(tmp_path: Path, path: Path):
    assert labelstudio.detect(path) == (_name(path) not in DATA_ONLY)
    if _name(path) not in DATA_ONLY:
        assert detect_format(path) == "labelstudio"
    data = json.loads(path.read_text())
    images = blank_images(tmp_path, data, (2242, 2802))  # the legacy brush region's image size
    for which in ("annotations", "predictions", "both"):
        problems = Problems("skip")
        ds = labelstudio.load(path, images=images, which=which, problems=problems)
        # the only problem left: the editor's image_tools annotation, which has no task data
        if problems.skipped:
            assert _name(path) == "image_tools/annotations/1.json", problems.to_records()
            assert [e.message for e in problems.skipped] == ["task has no 'data'"]
        assert len(ds.images) <= (len(data) if isinstance(data, list) else 1)
        assert set(ds.objects["category"]) <= set(ds.category_names)


# -- the editor's examples ---------------------------------------------------------------------------------------


def test_bbox_annotation_and_predictions(tmp_path: Path):
    path = FRONTEND / "image_bbox" / "annotations" / "1.json"
    with pytest.raises(FormatError, match="item task 1: image size unknown"):
        labelstudio.load(path)
    images = blank_images(tmp_path, json.loads(path.read_text()), (1000, 500))
    ds = labelstudio.load(path, images=images, which="both")
    assert list(ds.images["file_name"]) == ["nick-owuor-astro-nic-visuals-wDifg5xc9Z4-unsplash.jpg"]
    assert list(ds.objects["source_id"]) == [
        "ann 1001/reg Dx_aB91ISN",
        "pred #0/reg t5sp3TyXPo",
        "pred #1/reg t5sp3TyXPo",
    ]
    assert list(ds.objects["annotator"].fillna("-")) == ["-", "model:model 1", "model:model 2"]
    assert ds.category_names == ["Moonwalker"] and not ds.objects["rle"].map(lambda v: isinstance(v, str)).any()
    first = ds.objects.iloc[0]
    # x 50.8 %, y 5.8698 %, w 12.4 %, h 10.4589 % of 1000 x 500
    assert (first["bbox_x"], first["bbox_w"]) == (508.0, 124.0)
    assert first["bbox_y"] == pytest.approx(29.3489861, abs=1e-6)
    assert first["bbox_h"] == pytest.approx(52.2945571, abs=1e-6)
    tasks = FRONTEND / "image_bbox" / "tasks.json"
    predicted = labelstudio.load(tasks, images=images, which="predictions")
    assert list(predicted.images["image_id"]) == ["0"] and len(predicted.objects) == 2


def test_ellipse_annotation(tmp_path: Path):
    path = FRONTEND / "image_ellipses" / "annotations" / "1.json"
    images = blank_images(tmp_path, json.loads(path.read_text()), (750, 500))
    ds = labelstudio.load(path, images=images)
    assert ds.category_names == ["Planet"] and len(ds.objects) == 1  # and a "choices" result, left out
    row = ds.objects.iloc[0]
    rx, ry = 13.333333333333334 * 7.5, 10.672358591248665 * 5.0  # 100 x 53.36 pixels
    assert row["area"] == pytest.approx(math.pi * rx * ry, rel=0.01)
    assert row["bbox_x"] == pytest.approx(50.4 * 7.5 - rx, abs=1) and row["bbox_w"] == pytest.approx(2 * rx, abs=1)


def test_polygon_annotation_of_task_zero(tmp_path: Path):
    path = FRONTEND / "image_polygons" / "annotations" / "0.json"
    images = blank_images(tmp_path, json.loads(path.read_text()), (800, 501))  # spacexmoon-800x501.jpg
    ds = labelstudio.load(path, images=images)
    assert list(ds.images["image_id"]) == ["0"] and ds.category_names == ["Hello"]
    ring = ds.geometry(0)[0]
    assert len(ring) == 8
    assert ring[:2] == [217.6, pytest.approx(41.24629080118694 * 5.01)]  # 27.2 % of 800, 41.25 % of 501


def test_magic_wand_masks_equal_the_sdk_decode():
    path = FRONTEND / "image_magic_wand" / "annotations" / "1.json"
    ds = labelstudio.load(path)
    assert ds.category_names == ["Cloud", "Cloud Shadow"]
    assert (ds.images["width"][0], ds.images["height"][0]) == (3000, 2860)
    results = {r["id"]: r for r in json.loads(path.read_text())["annotations"][0]["result"] if r["type"] == "labels"}
    assert list(ds.objects["source_id"]) == [f"ann 2/reg {rid}" for rid in results]
    for index, result in enumerate(results.values()):
        assert np.array_equal(ds.object_mask(index), sdk_mask(result))
    assert list(ds.objects["area"]) == [381431, 261525]


def test_legacy_brush_without_size_takes_it_from_the_image(tmp_path: Path):
    path = FRONTEND / "image_segmentation" / "annotations" / "1.json"
    data = json.loads(path.read_text())
    with pytest.raises(FormatError, match="item task 1: image size unknown"):
        labelstudio.load(path)
    wrong = blank_images(tmp_path / "wrong", data, (2242, 2801))
    with pytest.raises(FormatError, match=r"reg lOA7F7sUZJ: brush RLE holds 25128336 values"):
        labelstudio.load(path, images=wrong)
    ds = labelstudio.load(path, images=blank_images(tmp_path / "right", data, (2242, 2802)))
    assert ds.category_names == ["Planet"]
    # test_ls_brush checks this stream against the SDK's decode_rle (6 s): here, its pixel count
    mask = ds.object_mask(0)
    assert mask.sum() == 260411
    assert np.array_equal(mask, ls_brush.decode(data["annotations"][0]["result"][0]["value"]["rle"], 2802, 2242))


def test_every_tool_of_the_editor(tmp_path: Path):
    folder = FRONTEND / "image_tools"
    task = json.loads((folder / "annotations" / "1.json").read_text())
    task["data"] = json.loads((folder / "tasks.json").read_text())[0]["data"]  # the editor keeps them apart
    ds = labelstudio.tasks_to_dataset([task])
    kinds = {r["id"]: r["type"] for r in task["annotations"][0]["result"] if "id" in r and r["type"] != "labels"}
    got = {sid.split("reg ")[1]: cat for sid, cat in zip(ds.objects["source_id"], ds.objects["category"], strict=True)}
    assert got == {
        "kuZf2E5DRQ": "Moonwalker",  # rectangle + labels
        "wkl8d6uPq5": "Moonwalker",  # rectangle + labels
        "YnhRme7NvX": "Moonwalker",  # ellipse + labels
        "3-21_8nfMb": "Planet",  # polygon + labels
        "wZ0I2XlKw1": "Planet",  # brush + labels
        "dYjaasY56i": "Moonwalker",  # rectanglelabels
        "tFnfajSEZh": "Planet",  # rectanglelabels
    }
    assert sum(kind == "keypoint" for kind in kinds.values()) == 3  # left out, with two relations
    by_id = ds.objects.set_index(ds.objects["source_id"].str.split("reg ").str[1])
    assert not isinstance(by_id.loc["kuZf2E5DRQ", "rle"], str)
    # 48.26667 % of 2242 wide, 14.9413 % of 2802 high
    assert by_id.loc["kuZf2E5DRQ", "bbox_x"] == pytest.approx(1082.13867, abs=1e-4)
    assert by_id.loc["kuZf2E5DRQ", "bbox_y"] == pytest.approx(418.65529, abs=1e-4)
    brush = next(r for r in task["annotations"][0]["result"] if r["type"] == "brush")
    index = list(by_id.index).index("wZ0I2XlKw1")
    assert np.array_equal(ds.object_mask(index), sdk_mask(brush))
    assert isinstance(by_id.loc["3-21_8nfMb", "geometry"], str)


# -- the SDK converter's exports --------------------------------------------------------------------------------------


def test_export_with_polygon_rectangle_and_keypoints():
    ds = labelstudio.load(SDK / "test_export_coco" / "data.json")
    assert list(ds.images["image_id"]) == ["175210175"] and list(ds.images["file_name"]) == ["test_image1.jpg"]
    assert (ds.images["width"][0], ds.images["height"][0]) == (500, 320)
    assert ds.category_names == ["rectangle_label", "polygon_label"]  # keypoint_label1/2 left out
    box = ds.objects.iloc[0]
    assert not isinstance(box["rle"], str)
    assert box["bbox_x"] == pytest.approx(31.941923774954628 * 5) and box["bbox_h"] == pytest.approx(9.929078 * 3.2)
    ring = ds.geometry(1)[0]
    assert ring[:2] == [pytest.approx(41.74228675136116 * 5), pytest.approx(3.546099290780142 * 3.2)]
    assert json.loads(ds.objects["attributes"][0])["lead_time"] == 18.158


def test_export_with_reviews_predictions_and_emails():
    ds = labelstudio.load(SDK / "test_export_csv" / "csv_test.json", which="both")
    assert list(ds.images["file_name"]) == ["0030019819f25b28.jpg", "00155094b7acc33b.jpg"]
    assert list(ds.objects["annotator"]) == ["hakan@heartex.com", "model:model 0"] + ["hakan@heartex.com"] * 2 + [
        "model:model 0"
    ]
    assert list(ds.objects["score"].fillna(-1)) == [-1, pytest.approx(0.2305380413), -1, -1, pytest.approx(0.29624646)]
    clipped = ds.objects.iloc[2]  # x 92.93 % + 7.5 % and y 57.39 % + 44.18 % run past the 768 x 510 image
    assert clipped["bbox_x"] + clipped["bbox_w"] == 768 and clipped["bbox_y"] + clipped["bbox_h"] == 510
    assert json.loads(ds.objects["attributes"][2])["origin"] == "prediction"


def test_exports_with_several_annotators():
    ds = labelstudio.load(SDK / "test_export_yolo" / "data.json")
    assert list(ds.objects["annotator"]) == ["2", "2", "1", "1", "1", "1"]
    assert ds.category_names == ["parasites", "white"]
    assert list(ds.images["file_name"]) == ["image1", "image2"]  # data.image is "/image1"
    first = ds.objects.iloc[0]
    assert first["bbox_x"] == pytest.approx(37.15846994535519 * 28)


def test_exports_with_polygons():
    small = labelstudio.load(SDK / "test_export_json_min" / "data.json")
    assert list(small.images["file_name"]) == ["example.png"]  # /data/upload/29/example.png
    assert small.geometry(0) == [[56.88888889, 61.76507937, 54.45079365, 77.20634921, 71.92380952, 65.01587302]]
    airplane = labelstudio.load(SDK / "test_export_yolo" / "data_polygons.json")
    assert len(airplane.geometry(0)[0]) == 2 * 37 and airplane.geometry(0)[0][:2] == [384.0, 83.32231405]


# -- the embedded sample -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    from seg.sample.build import build_sample

    return build_sample(tmp_path_factory.mktemp("sample") / "sample")


def test_sample_export_holds_the_same_objects_as_its_coco(sample):
    assert detect_format(sample.labelstudio) == "labelstudio"
    ds = labelstudio.load(sample.labelstudio)
    truth = coco.load(sample.coco)
    assert list(ds.images["image_id"]) == list(truth.images["image_id"])
    assert list(ds.images["file_name"]) == ["images/" + n for n in truth.images["file_name"]]
    assert all(ds.image_path(i).is_file() for i in ds.images["image_id"])
    assert ds.category_names == truth.category_names
    assert list(ds.objects["source_id"]) == [
        f"ann {i}/reg {s}" for i, s in zip(truth.objects["image_id"], truth.objects["source_id"], strict=True)
    ]
    assert list(ds.objects["category"]) == list(truth.objects["category"])
    holes = 0
    for index, (ours, theirs) in enumerate(
        zip(ds.objects.to_dict("records"), truth.objects.to_dict("records"), strict=True)
    ):
        iou = rle.iou(ours["rle"], theirs["rle"], ours["height"], ours["width"])
        if isinstance(theirs.get("geometry"), str):
            assert iou == 1.0 and json.loads(ours["geometry"]) == json.loads(theirs["geometry"]), index
        else:  # the building with a courtyard: an RLE with a hole in COCO, its outer ring in Label Studio
            holes += 1
            assert iou < 1 and np.all(ds.object_mask(index) >= truth.object_mask(index))
    assert holes == 1
