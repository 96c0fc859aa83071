"""Conformance: VIA's own test and demo files (VIA 1 JSON and CSV, VIA 2 exports and attribute files), and the
embedded sample's VIA project against its COCO file.

Shapes, coordinates and classes are checked against what the files say (counted and read by hand from the files);
the CSV and JSON forms of one project must give the same Dataset, and every file must survive VIA -> Dataset -> VIA ->
Dataset unchanged.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seg.dataset import rle
from seg.dataset.core import Dataset
from seg.errors import FormatError, ImageError
from seg.formats import coco, via
from seg.sample import build_sample

VIA = "via_official_ox-vgg"
VIA1 = f"{VIA}/via-1.x.y/tests/data"
DEMO = f"{VIA}/extracted_from_via-2.x.y_src_demo__via_basic_demo.js"
DEMO_IMAGES = f"{VIA}/via-2.x.y/data/basic"
SHERLOCK = f"{VIA}/via-2.x.y/data/face_track_annotation"
#: The VIA 1 files name their images by their original names (SOURCE.md maps them by file size).
VIA1_IMAGES = {
    "unit_test_img1.jpg": "test_pattern_qbist.jpg",
    "unit_test_img2.jpg": "sinus_test_pattern.jpg",
    "unit_test_img3.jpg": "a_swan_swimming_in_geneve_lake.jpg",
}
#: The Sherlock frames are not among the fixtures: one size for all (the numbers only need to hold the boxes).
SHERLOCK_SIZE = (1024, 576)


@pytest.fixture
def via1_images(shared_fixtures: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "via1_images"
    folder.mkdir()
    for fixture, name in VIA1_IMAGES.items():
        shutil.copy(shared_fixtures / VIA1 / fixture, folder / name)
    return folder


def shapes(ds: Dataset) -> Counter:
    return Counter(json.loads(a)["via_shape"]["name"] for a in ds.objects["attributes"])


def by_source(ds: Dataset) -> dict[str, dict]:
    return {row["source_id"]: row for row in ds.objects.to_dict("records")}


def round_trips(ds: Dataset, tmp_path: Path, **options) -> None:
    report = via.save(ds, tmp_path / "again.json", overwrite=True)
    assert report["polygon_loss"] == [] and report["skipped"] == []
    assert via.load(tmp_path / "again.json", **options).equals(ds)


# -- VIA 1 --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["unit_test_annotation1.csv", "unit_test_annotation2.json"])
def test_via1_files(shared_fixtures: Path, via1_images: Path, tmp_path: Path, name: str):
    path = shared_fixtures / VIA1 / name
    assert via.detect(path)
    ds = via.load(path, images=via1_images)
    # 12 regions: 5 points (no area) and 7 shapes
    assert list(ds.images["image_id"]) == ["test_pattern_qbist", "sinus_test_pattern", "a_swan_swimming_in_geneve_lake"]
    for row in ds.images.to_dict("records"):
        with Image.open(via1_images / row["file_name"]) as img:
            assert (row["width"], row["height"]) == img.size
    assert shapes(ds) == Counter({"ellipse": 3, "rect": 2, "circle": 1, "polygon": 1})
    assert Counter(ds.objects["image_id"]) == Counter(
        {"test_pattern_qbist": 4, "sinus_test_pattern": 1, "a_swan_swimming_in_geneve_lake": 2}
    )
    # the only region attribute is free text "name": it is the class; two regions have none
    assert ds.category_names == [
        'ellipse "red"',
        "rectangle 'black'",
        'a "white" swan, good fortune',
        'ellipse on "yellow"; background',
        "a 'rect' in \"blue\", background",
        via.UNLABELED,
    ]
    objects = by_source(ds)
    rect = objects["test_pattern_qbist:1"]  # {"name":"rect","x":290,"y":208,"width":127,"height":113}
    assert (rect["bbox_x"], rect["bbox_y"], rect["bbox_w"], rect["bbox_h"]) == (290, 208, 127, 113)
    assert rect["area"] == 127 * 113 and rect["category"] == "rectangle 'black'"
    circle = objects["test_pattern_qbist:2"]  # {"name":"circle","cx":148,"cy":268,"r":43}, no attributes
    assert circle["category"] == via.UNLABELED and abs(circle["area"] - math.pi * 43**2) < 0.02 * math.pi * 43**2
    assert (circle["bbox_x"], circle["bbox_y"]) == pytest.approx((105, 225), abs=0.25)  # vertices on the circle
    swan = objects["sinus_test_pattern:0"]  # a 12-point polygon, closed by repeating its first point
    ring = json.loads(swan["geometry"])[0]
    assert len(ring) == 24 and ring[:2] == [121, 172] and ring[-2:] == [121, 172] and ring[6:8] == [405, 299]
    assert (swan["bbox_x"], swan["bbox_y"], swan["bbox_w"], swan["bbox_h"]) == (105, 135, 323, 164)
    ellipse = objects["a_swan_swimming_in_geneve_lake:0"]  # cx 300, cy 223, rx 93, ry 56, no theta (VIA 1)
    assert abs(ellipse["area"] - math.pi * 93 * 56) < 0.01 * math.pi * 93 * 56
    assert (ellipse["bbox_x"], ellipse["bbox_w"]) == pytest.approx((207, 186), abs=0.25)
    captions = [json.loads(a)["via_file_attributes"]["caption"] for a in ds.images["attributes"]]
    assert captions == ["+-08374*&$£*", 'a swan in geneve lake"', "  "]
    round_trips(ds, tmp_path, images=via1_images)


def test_via1_csv_and_json_give_one_dataset(shared_fixtures: Path, via1_images: Path):
    csv = via.load(shared_fixtures / VIA1 / "unit_test_annotation1.csv", images=via1_images)
    assert csv.equals(via.load(shared_fixtures / VIA1 / "unit_test_annotation2.json", images=via1_images))


# -- VIA 2 --------------------------------------------------------------------------------------------------------


def test_via2_demo_annotations(shared_fixtures: Path, tmp_path: Path):
    images = shared_fixtures / DEMO_IMAGES
    path = shared_fixtures / DEMO / "via2_basic_demo_img_metadata.json"
    ds = via.load(path, images=images)
    assert list(zip(ds.images["width"], ds.images["height"], strict=True)) == [(600, 400), (600, 394)]
    assert shapes(ds) == Counter({"rect": 2, "polygon": 1, "ellipse": 1})
    # "name" is different on every region (Swan, Plato...): "type" is the class
    assert ds.category_names == ["bird", "human", "cup"]
    assert list(ds.objects["category"]) == ["bird", "human", "human", "cup"]
    swan = by_source(ds)["adutta_swan:0"]
    assert json.loads(swan["attributes"])["region_attributes"] == {
        "name": "Swan",
        "image_quality": {"good_illumination": True},
    }
    assert len(json.loads(swan["geometry"])[0]) == 30
    hemlock = by_source(ds)["wikimedia_death_of_socrates:2"]  # ellipse cx 316, cy 180, rx 17, ry 12
    assert abs(hemlock["area"] - math.pi * 17 * 12) < 0.03 * math.pi * 17 * 12
    round_trips(ds, tmp_path, images=images)

    csv = via.load(shared_fixtures / DEMO / "via2_basic_demo_annotations.csv", images=images)
    assert csv.images[["image_id", "file_name", "width", "height"]].equals(ds.images[list(csv.images.columns)])
    columns = ["image_id", "source_id", "rle", "geometry", "bbox_x", "bbox_y", "bbox_w", "bbox_h"]
    assert csv.objects[columns].equals(ds.objects[columns])  # the CSV holds the same shapes, without attributes
    assert csv.category_names == [via.UNLABELED]


def test_via2_demo_as_a_project_takes_the_declared_dropdown(shared_fixtures: Path, tmp_path: Path):
    data = {
        "_via_settings": {"ui": {}, "core": {}, "project": {"name": "demo"}},
        "_via_img_metadata": json.loads((shared_fixtures / DEMO / "via2_basic_demo_img_metadata.json").read_text()),
        "_via_attributes": json.loads((shared_fixtures / DEMO / "via2_basic_demo_attributes.json").read_text()),
    }
    path = tmp_path / "demo_project.json"
    path.write_text(json.dumps(data))
    ds = via.load(path, images=shared_fixtures / DEMO_IMAGES)
    assert ds.category_names == ["bird", "human", "cup", "unknown"]  # the dropdown's options, in order
    assert list(ds.objects["category"]) == ["bird", "human", "human", "cup"]


def test_sherlock_face_tracks(shared_fixtures: Path, tmp_path: Path):
    json_path = shared_fixtures / SHERLOCK / "sherlock_ep01_tracks_FRCNN.json"
    csv_path = shared_fixtures / SHERLOCK / "sherlock_ep01_tracks_FRCNN.csv"
    with pytest.raises(ImageError, match="--images"):
        via.load(json_path)
    ds = via.load(json_path, image_size=SHERLOCK_SIZE)
    assert len(ds.images) == 266 and len(ds.objects) == 427 and shapes(ds) == Counter({"rect": 427})
    assert ds.images.at[0, "file_name"] == "images/00011384.jpg" and ds.images.at[0, "image_id"] == "00011384"
    first = ds.objects.iloc[0]  # {"name":"rect","x":325,"y":113,"width":103,"height":132}, track 320
    assert (first["bbox_x"], first["bbox_y"], first["bbox_w"], first["bbox_h"], first["area"]) == (
        325,
        113,
        103,
        132,
        103 * 132,
    )
    # the one region attribute is a number (a track id), not a class, unless asked for
    assert ds.category_names == [via.UNLABELED]
    assert json.loads(first["attributes"])["region_attributes"] == {"track": 320}
    tracks = via.load(json_path, image_size=SHERLOCK_SIZE, class_attribute="track")
    raw = json.loads(json_path.read_text())
    expected = Counter(str(r["region_attributes"]["track"]) for e in raw.values() for r in e["regions"])
    assert Counter(tracks.objects["category"]) == expected and len(expected) == 4
    assert via.load(csv_path, image_size=SHERLOCK_SIZE).equals(ds)
    round_trips(ds, tmp_path, image_size=SHERLOCK_SIZE)


@pytest.mark.parametrize(
    "name",
    [f"{DEMO}/via2_basic_demo_attributes.json", f"{SHERLOCK}/sherlock_attributes.json"],
    ids=["demo", "sherlock"],
)
def test_attribute_definition_files_are_not_annotations(shared_fixtures: Path, name: str):
    assert not via.detect(shared_fixtures / name)
    with pytest.raises(FormatError, match="not a VIA file"):
        via.load(shared_fixtures / name)


def test_via3_sample_images_with_a_via3_project(shared_fixtures: Path, tmp_path: Path):
    # VIA 3's demo project (via-3.x.y/src/js/_via_demo_image_annotator.js, written out as VIA 3 saves it)
    images = shared_fixtures / f"{VIA}/via-3.x.y/data/sample_img"
    data = {
        "project": {
            "pid": "__VIA_PROJECT_ID__",
            "pname": "Demo",
            "data_format_version": "3.1.1",
            "vid_list": ["1", "2"],
        },
        "config": {"file": {"loc_prefix": {"1": "", "2": "", "3": "", "4": ""}}, "ui": {}},
        "attribute": {"1": {"aname": "Name", "anchor_id": "FILE1_Z0_XY1", "type": 1, "desc": "", "options": {}}},
        "file": {
            "1": {"fid": 1, "fname": "adutta_swan.jpg", "type": 2, "loc": 1, "src": ""},
            "2": {"fid": 2, "fname": "wikimedia_death_of_socrates.jpg", "type": 2, "loc": 1, "src": ""},
        },
        "view": {"1": {"fid_list": [1]}, "2": {"fid_list": [2]}},
        "metadata": {
            "1-glfwaaX": {"vid": "1", "flg": 0, "z": [], "xy": [2, 101, 125, 286, 146], "av": {"1": "Swan"}},
            "2_WIpRNLvX": {
                "vid": "2",
                "flg": 0,
                "z": [],
                "xy": [2, 378.921, 121.113, 84.991, 234.435],
                "av": {"1": "Socrates"},
            },
            "2_eA5CqEPf": {
                "vid": "2",
                "flg": 0,
                "z": [],
                "xy": [2, 198.314, 150.152, 109.072, 238.684],
                "av": {"1": "Plato"},
            },
        },
    }
    path = tmp_path / "via3.json"
    path.write_text(json.dumps(data))
    ds = via.load(path, images=images)
    assert ds.category_names == ["Swan", "Socrates", "Plato"] and shapes(ds) == Counter({"rect": 3})
    assert ds.objects.loc[1, ["bbox_x", "bbox_w"]].tolist() == pytest.approx([378.921, 84.991])
    round_trips(ds, tmp_path, images=images)


# -- the embedded sample ------------------------------------------------------------------------------------------


def test_sample_via_project_matches_its_coco_file(tmp_path: Path):
    sample = build_sample(tmp_path / "sample")
    from_via = via.load(sample.via)
    from_coco = coco.load(sample.coco)
    assert from_via.image_root == from_coco.image_root
    assert list(from_via.images["file_name"]) == list(from_coco.images["file_name"])
    assert list(from_via.images["width"]) == list(from_coco.images["width"])
    assert from_via.category_names == from_coco.category_names
    via_objects = by_source(from_via)
    assert sorted(via_objects) == sorted(from_coco.objects["source_id"])
    holes = 0
    for row in from_coco.objects.to_dict("records"):
        other = via_objects[row["source_id"]]
        assert other["category"] == row["category"]
        iou = rle.iou(other["rle"], row["rle"], row["height"], row["width"])
        if isinstance(row["geometry"], str):  # polygons in COCO: the same polygon in VIA
            assert iou == 1.0 and json.loads(other["geometry"]) == json.loads(row["geometry"])
        else:  # a courtyard: RLE with a hole in COCO, its outer ring in VIA
            holes += 1
            inner = rle.decode(row["rle"], row["height"], row["width"])
            outer = rle.decode(other["rle"], row["height"], row["width"])
            assert 0 < iou < 1 and np.all(outer >= inner)
    assert holes >= 1
    round_trips(from_via, tmp_path, images=sample.images)
