"""VIA 1, 2 and 3: every shape and flavour, finding the class, writing VIA 2 projects, round trips, bad input."""

from __future__ import annotations

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
from seg.dataset.polygons import polygons_to_rle
from seg.dataset.problems import Problems
from seg.errors import FormatError, ImageError, OutputExistsError, SegError, UnsafePathError
from seg.formats import detect_format, read, via
from seg.formats.via_read import (
    CHORD_ERROR,
    MAX_VERTICES,
    MIN_VERTICES,
    circle_through,
    ellipse_ring,
    vertex_count,
    via3_shape,
)
from tests.strategies import masks

W, H = 64, 48

# -- helpers ------------------------------------------------------------------------------------------------------


def image(path: Path, width: int = W, height: int = H) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (40, 80, 120)).save(path)
    return path


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A tiny PNG whose header claims ``side x side`` pixels (a decompression bomb)."""
    Image.new("1", (1, 1)).save(path, "PNG")
    data = bytearray(path.read_bytes())
    data[16:24] = side.to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return path


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def polygon(xs: list, ys: list) -> dict:
    return {"name": "polygon", "all_points_x": xs, "all_points_y": ys}


def region(shape: dict, **attributes) -> dict:
    return {"shape_attributes": shape, "region_attributes": attributes}


def entry(filename: str, *regions: dict, size: int = -1, **file_attributes) -> dict:
    return {"filename": filename, "size": size, "regions": list(regions), "file_attributes": file_attributes}


def export(*entries: dict) -> dict:
    """A VIA 2 region-data export: entries keyed '<filename><size>'."""
    return {f"{e['filename']}{e['size']}": e for e in entries}


def project(*entries: dict, region_attributes: dict | None = None) -> dict:
    """A VIA 2 project around the entries."""
    metadata = export(*entries)
    return {
        "_via_settings": {"ui": {}, "core": {}, "project": {"name": "t"}},
        "_via_img_metadata": metadata,
        "_via_attributes": {"region": region_attributes or {}, "file": {}},
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": list(metadata),
    }


def dropdown(*options: str) -> dict:
    return {"type": "dropdown", "description": "", "options": {o: o.title() for o in options}, "default_options": {}}


def ring_mask(ring: list[float], height: int = H, width: int = W) -> np.ndarray:
    return rle.decode(polygons_to_rle([ring], height, width), height, width)


SHAPES = {
    "polygon": polygon([2, 20, 20, 2], [2, 2, 14, 14]),
    "rect": {"name": "rect", "x": 30, "y": 4, "width": 10, "height": 6},
    "circle": {"name": "circle", "cx": 12, "cy": 30, "r": 8},
    "ellipse": {"name": "ellipse", "cx": 45, "cy": 30, "rx": 12, "ry": 6, "theta": 0.5},
    "point": {"name": "point", "cx": 5, "cy": 5},
    "polyline": {"name": "polyline", "all_points_x": [1, 10, 20], "all_points_y": [40, 44, 40]},
    "zero rect": {"name": "rect", "x": 5, "y": 5, "width": 0, "height": 3},
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    image(tmp_path / "a.jpg")
    image(tmp_path / "b.png", 32, 24)
    return tmp_path


# -- shapes -------------------------------------------------------------------------------------------------------


def test_every_shape_becomes_a_mask_or_a_logged_note(folder: Path, caplog: pytest.LogCaptureFixture):
    regions = [region(shape, kind=name) for name, shape in SHAPES.items()]
    path = write(folder / "via.json", export(entry("a.jpg", *regions)))
    with caplog.at_level(logging.WARNING):
        ds = via.load(path, class_attribute="kind")
    assert list(ds.objects["category"]) == ["polygon", "rect", "circle", "ellipse"]
    assert "1 point" in caplog.text and "1 polyline" in caplog.text and "1 zero-size shape" in caplog.text
    polygon_mask = ds.object_mask(0)
    assert polygon_mask.sum() == 18 * 12 and polygon_mask[2:14, 2:20].all()
    rect = ds.object_mask(1)
    assert rect.sum() == 60 and rect[4:10, 30:40].all()
    assert ds.objects.loc[1, ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]].tolist() == [30, 4, 10, 6]
    assert abs(ds.objects.at[2, "area"] - math.pi * 64) < 0.05 * math.pi * 64
    assert abs(ds.objects.at[3, "area"] - math.pi * 72) < 0.06 * math.pi * 72
    kept = json.loads(ds.objects.at[1, "attributes"])
    assert kept == {"via_shape": SHAPES["rect"]}
    assert json.loads(ds.objects.at[1, "geometry"]) == [[30.0, 4.0, 40.0, 4.0, 40.0, 10.0, 30.0, 10.0]]


def test_ellipse_rotation_turns_the_mask():
    flat = ring_mask(ellipse_ring(32, 24, 16, 6))
    turned = ring_mask(ellipse_ring(32, 24, 6, 16, math.pi / 2))
    upright = ring_mask(ellipse_ring(32, 24, 6, 16))
    assert rle.iou(rle.encode(turned), rle.encode(flat), H, W) > 0.95
    assert rle.iou(rle.encode(turned), rle.encode(upright), H, W) < 0.5
    # theta is clockwise on screen (y down), as VIA's canvas draws it: a quarter turn of a wide ellipse is tall
    ys, xs = np.nonzero(ring_mask(ellipse_ring(32, 24, 16, 4, math.pi / 2)))
    assert np.ptp(ys) > np.ptp(xs)


@pytest.mark.parametrize("radius", [0.1, 1, 5, 20, 100, 1000, 10**6])
def test_circle_polygons_stay_within_a_quarter_pixel(radius: float):
    n = vertex_count(radius)
    assert MIN_VERTICES <= n <= MAX_VERTICES
    if n < MAX_VERTICES:
        assert radius * (1 - math.cos(math.pi / n)) <= CHORD_ERROR + 1e-9
    ring = ellipse_ring(0, 0, radius, radius)
    assert len(ring) == 2 * n
    assert all(
        abs(math.hypot(x, y) - radius) < 1e-3 + 1e-9 * radius for x, y in zip(ring[0::2], ring[1::2], strict=True)
    )


def test_via3_shapes_become_via2_shapes():
    assert via3_shape([2, 1, 2, 3, 4]) == {"name": "rect", "x": 1, "y": 2, "width": 3, "height": 4}
    assert via3_shape([3, 5, 6, 7]) == {"name": "circle", "cx": 5, "cy": 6, "r": 7}
    assert via3_shape([4, 5, 6, 7, 8]) == {"name": "ellipse", "cx": 5, "cy": 6, "rx": 7, "ry": 8}
    assert via3_shape([7, 1, 2, 3, 4, 5, 6]) == polygon([1, 3, 5], [2, 4, 6])
    assert via3_shape([8, 10, 5, 20, 1, 30, 6, 21, 9]) == {"name": "rect", "x": 10, "y": 1, "width": 20, "height": 8}
    circle = via3_shape([9, 10, 0, 0, 10, -10, 0])
    assert circle["name"] == "circle" and circle["cx"] == pytest.approx(0) and circle["r"] == pytest.approx(10)
    assert via3_shape([1, 4, 5])["name"] == "point"
    assert via3_shape([5, 1, 2, 3, 4])["name"] == "polyline"
    for bad in ([11, 1, 2], [2, 1, 2, 3], [7, 1, 2, 3], [2, "1", 2, 3, 4], [True, 1, 2]):
        with pytest.raises(ValueError):
            via3_shape(bad)
    with pytest.raises(ValueError, match="one line"):
        circle_through([(0, 0), (1, 1), (2, 2)])


# -- flavours -----------------------------------------------------------------------------------------------------


def test_via1_dict_regions_via2_lists_projects_and_csv_give_one_dataset(folder: Path):
    regions = [region(SHAPES["rect"], label="car"), region(SHAPES["polygon"], label="tree")]
    via2 = export(entry("a.jpg", *regions, caption="x"), entry("b.png"))
    via1 = {k: {**v, "regions": {str(i): r for i, r in enumerate(v["regions"])}} for k, v in via2.items()}
    csv_lines = [",".join(via.CSV_COLUMNS)]
    for e in via2.values():
        cells = [json.dumps(e["file_attributes"]), str(len(e["regions"]))]
        for i, r in enumerate(e["regions"] or [{"shape_attributes": {}, "region_attributes": {}}]):
            quoted = [json.dumps(v).replace('"', '""') for v in (r["shape_attributes"], r["region_attributes"])]
            row = [e["filename"], str(e["size"]), f'"{cells[0].replace(chr(34), chr(34) * 2)}"', cells[1], str(i)]
            csv_lines.append(",".join(row + [f'"{q}"' for q in quoted]))
    (folder / "via.csv").write_text("\n".join(csv_lines) + "\n")
    loaded = [
        via.load(write(folder / "via2.json", via2)),
        via.load(write(folder / "via1.json", via1)),
        via.load(write(folder / "project.json", project(*via2.values()))),
        via.load(folder / "via.csv"),
    ]
    for other in loaded[1:]:
        assert other.equals(loaded[0])
    ds = loaded[0]
    assert list(ds.images["image_id"]) == ["a", "b"] and list(ds.images["width"]) == [W, 32]
    assert json.loads(ds.images.at[0, "attributes"]) == {"via_file_attributes": {"caption": "x"}}
    assert list(ds.objects["source_id"]) == ["a:0", "a:1"] and ds.category_names == ["car", "tree"]


def test_via1_csv_header_with_hash_and_images_without_regions(folder: Path):
    text = (
        "#filename,file_size,file_attributes,region_count,region_id,region_shape_attributes,region_attributes\n"
        'a.jpg,1,"{}",1,0,"{""name"":""rect"",""x"":1,""y"":2,""width"":3,""height"":4}","{""c"":""x""}"\n'
        'b.png,2,"{}",0,0,"{}","{}"\n'
    )
    path = folder / "v1.csv"
    path.write_text(text)
    assert via.detect(path)
    ds = via.load(path)
    assert len(ds.images) == 2 and len(ds.objects) == 1 and ds.category_names == ["x"]


def via3_project(**extra) -> dict:
    return {
        "project": {"pid": "__VIA_PROJECT_ID__", "pname": "t", "vid_list": ["1", "2", "3"], **extra},
        "config": {"file": {"loc_prefix": {"1": "", "2": "", "3": "", "4": ""}}, "ui": {}},
        "attribute": {
            "1": {"aname": "kind", "anchor_id": "FILE1_Z0_XY1", "type": 4, "options": {"0": "car", "1": "tree"}},
            "2": {"aname": "tags", "anchor_id": "FILE1_Z0_XY1", "type": 2, "options": {"0": "old", "1": "new"}},
            "3": {"aname": "caption", "anchor_id": "FILE1_Z0_XY0", "type": 1, "options": {}},
        },
        "file": {
            "1": {"fid": 1, "fname": "a.jpg", "type": 2, "loc": 1, "src": ""},
            "2": {"fid": 2, "fname": "http://example.org/imgs/b.png?x=1", "type": 2, "loc": 2, "src": ""},
            "3": {"fid": 3, "fname": "clip.mp4", "type": 4, "loc": 1, "src": ""},
        },
        "view": {"1": {"fid_list": [1]}, "2": {"fid_list": [2]}, "3": {"fid_list": [3]}},
        "metadata": {
            "1_a": {"vid": "1", "flg": 0, "z": [], "xy": [2, 30, 4, 10, 6], "av": {"1": "0", "2": "0,1"}},
            "1_b": {"vid": "1", "flg": 0, "z": [], "xy": [7, 2, 2, 20, 2, 20, 14, 2, 14], "av": {"1": "1"}},
            "1_c": {"vid": "1", "flg": 0, "z": [], "xy": [9, 12, 22, 20, 30, 12, 38], "av": {"1": "1"}},
            "1_d": {"vid": "1", "flg": 0, "z": [], "xy": [1, 5, 5], "av": {}},
            "1_e": {"vid": "1", "flg": 0, "z": [], "xy": [], "av": {"3": "a caption"}},
            "1_f": {"vid": "1", "flg": 0, "z": [1.5, 3.0], "xy": [], "av": {"1": "0"}},
            "2_a": {"vid": "2", "flg": 0, "z": [], "xy": [8, 4, 8, 10, 2, 16, 8, 10, 12], "av": {"1": "0"}},
            "3_a": {"vid": "3", "flg": 0, "z": [2.0], "xy": [2, 1, 1, 5, 5], "av": {"1": "0"}},
        },
    }


def test_via3_project(folder: Path, caplog: pytest.LogCaptureFixture):
    path = write(folder / "via3.json", via3_project())
    assert via.detect(path)
    with caplog.at_level(logging.WARNING):
        ds = via.load(path)
    assert "1 temporal segment" in caplog.text and "1 video or audio file" in caplog.text and "1 point" in caplog.text
    assert list(ds.images["file_name"]) == ["a.jpg", "b.png"]
    assert json.loads(ds.images.at[0, "attributes"]) == {"via_file_attributes": {"caption": "a caption"}}
    assert ds.category_names == ["car", "tree"]  # the select's options, in order
    assert list(ds.objects["category"]) == ["car", "tree", "tree", "car"]
    first = json.loads(ds.objects.at[0, "attributes"])
    assert first["region_attributes"] == {"tags": {"old": True, "new": True}}
    assert ds.object_mask(0).sum() == 60
    circle = json.loads(ds.objects.at[2, "attributes"])["via_shape"]
    assert (circle["cx"], circle["cy"], circle["r"]) == pytest.approx((12, 30, 8))
    assert ds.objects.loc[3, ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]].tolist() == [4, 2, 12, 10]


# -- classes ------------------------------------------------------------------------------------------------------


def test_a_declared_dropdown_is_the_class_and_orders_the_categories(folder: Path):
    data = project(
        entry("a.jpg", region(SHAPES["rect"], type="tree", name="Oak"), region(SHAPES["polygon"], type="car")),
        region_attributes={"type": dropdown("car", "bus", "tree"), "name": {"type": "text"}},
    )
    ds = via.load(write(folder / "p.json", data))
    assert ds.category_names == ["car", "bus", "tree"]
    assert list(ds.objects["category"]) == ["tree", "car"]
    assert json.loads(ds.objects.at[0, "attributes"])["region_attributes"] == {"name": "Oak"}


def test_a_declared_dropdown_that_no_region_uses_is_not_the_class(folder: Path):
    data = project(
        entry("a.jpg", region(SHAPES["rect"], kind="x"), region(SHAPES["polygon"], kind="y")),
        region_attributes={"quality": dropdown("good", "bad"), "kind": {"type": "text"}},
    )
    assert via.load(write(folder / "p.json", data)).category_names == ["x", "y"]
    data["_via_attributes"]["region"]["label"] = dropdown("x", "z", "y")
    data["_via_img_metadata"]["a.jpg-1"]["regions"][0]["region_attributes"]["label"] = "z"
    data["_via_img_metadata"]["a.jpg-1"]["regions"][0]["region_attributes"]["quality"] = "bad"
    ds = via.load(write(folder / "p.json", data))
    assert ds.category_names == ["x", "z", "y", via.UNLABELED]  # two dropdowns in use: "label" is preferred
    regions = [region(SHAPES["rect"], note="a", q="b"), region(SHAPES["circle"], note="c", q="d")]
    data = project(entry("a.jpg", *regions), region_attributes={"kind": dropdown("cat", "dog")})
    ds = via.load(write(folder / "p.json", data))  # the values cannot tell: the declared dropdown, still empty
    assert ds.category_names == ["cat", "dog", via.UNLABELED]


def test_class_found_by_name_or_by_being_the_only_label_like_attribute(folder: Path):
    regions = [region(SHAPES["rect"], name=n, kind=k) for n, k in [("a", "x"), ("b", "x"), ("c", "y"), ("d", "x")]]
    ds = via.load(write(folder / "v.json", export(entry("a.jpg", *regions))))
    assert ds.category_names == ["x", "y"]  # "name" holds a different value on every region: an identifier
    regions = [region(SHAPES["rect"], species=s, note="long " * 30, track=7) for s in "xyx"]
    ds = via.load(write(folder / "v.json", export(entry("a.jpg", *regions))))
    assert ds.category_names == ["x", "y"]
    regions = [region(SHAPES["rect"], label=s, colour=c) for s, c in [("x", "red"), ("y", "red"), ("x", "blue")]]
    ds = via.load(write(folder / "v.json", export(entry("a.jpg", *regions))))
    assert ds.category_names == ["x", "y"]


def test_an_ambiguous_class_names_the_candidates(folder: Path):
    regions = [region(SHAPES["rect"], colour=c, form=f) for c, f in [("red", "round"), ("red", "flat")]]
    path = write(folder / "v.json", export(entry("a.jpg", *regions)))
    with pytest.raises(SegError, match="cannot tell which region attribute holds the class") as info:
        via.load(path)
    assert "colour" in str(info.value) and "form" in str(info.value) and "class_attribute" in str(info.value)
    assert via.load(path, class_attribute="form").category_names == ["round", "flat"]
    with pytest.raises(SegError, match="'nope' is not a region attribute"):
        via.load(path, class_attribute="nope")


def test_regions_without_a_class_are_unlabeled_and_listed_last(folder: Path, caplog: pytest.LogCaptureFixture):
    regions = [region(SHAPES["rect"], c="x"), region(SHAPES["circle"]), region(SHAPES["polygon"], c="y")]
    with caplog.at_level(logging.WARNING):
        ds = via.load(write(folder / "v.json", export(entry("a.jpg", *regions))))
    assert ds.category_names == ["x", "y", via.UNLABELED]
    assert list(ds.objects["category"]) == ["x", via.UNLABELED, "y"]
    assert "1 objects have no class value" in caplog.text
    numbers = [region(SHAPES["rect"], track=320)]
    ds = via.load(write(folder / "n.json", export(entry("a.jpg", *numbers))))
    assert ds.category_names == [via.UNLABELED]
    assert via.load(folder / "n.json", class_attribute="track").category_names == ["320"]


def test_a_sparse_class_is_named_in_the_warning(folder: Path, caplog: pytest.LogCaptureFixture):
    regions = [region(SHAPES["rect"], species="x"), region(SHAPES["circle"]), region(SHAPES["polygon"])]
    path = write(folder / "v.json", export(entry("a.jpg", *regions)))
    with caplog.at_level(logging.WARNING):
        assert via.load(path).category_names == [via.UNLABELED]
    assert "species hold text on fewer than half" in caplog.text
    assert via.load(path, class_attribute="species").category_names == ["x", via.UNLABELED]


def test_checkbox_classes(folder: Path):
    regions = [region(SHAPES["rect"], kind={"car": True}), region(SHAPES["polygon"], kind={"car": True, "bus": True})]
    path = write(folder / "v.json", export(entry("a.jpg", *regions)))
    with pytest.raises(FormatError, match="several classes checked"):
        via.load(path, class_attribute="kind")
    problems = Problems("skip")
    ds = via.load(path, class_attribute="kind", problems=problems)
    assert ds.category_names == ["car"] and len(problems.skipped) == 1
    assert "region 1" in str(problems.skipped[0])


def test_regions_sharing_an_id_form_one_object_and_scores_make_predictions(folder: Path):
    regions = [
        region(SHAPES["rect"], c="x", id="17"),
        region(SHAPES["circle"], c="y", id=5, score=0.25),
        region(SHAPES["polygon"], c="x", id="17"),
    ]
    ds = via.load(write(folder / "v.json", export(entry("a.jpg", *regions))))
    assert list(ds.objects["source_id"]) == ["17", "5"]
    assert ds.objects.at[0, "area"] == 60 + 18 * 12
    assert len(json.loads(ds.objects.at[0, "geometry"])) == 2
    assert math.isnan(ds.objects.at[0, "score"]) and ds.objects.at[1, "score"] == 0.25


# -- images -------------------------------------------------------------------------------------------------------


def test_file_names_urls_and_image_sizes(tmp_path: Path):
    image(tmp_path / "imgs" / "swan.jpg", 30, 20)
    image(tmp_path / "imgs" / "sub" / "c.png", 10, 12)
    data = export(entry("http://example.org/a/swan.jpg"), entry(".\\sub\\c.png"), entry("./sub/missing.jpg"))
    path = write(tmp_path / "v.json", data)
    with pytest.raises(ImageError, match=r"missing\.jpg") as info:
        via.load(path, images=tmp_path / "imgs")
    assert "--images" in str(info.value) and "missing" in info.value.item_id
    ds = via.load(path, images=tmp_path / "imgs", image_size=(7, 9))
    assert list(ds.images["file_name"]) == ["swan.jpg", "sub/c.png", "sub/missing.jpg"]
    assert list(ds.images["image_id"]) == ["swan", "c", "missing"]
    assert list(zip(ds.images["width"], ds.images["height"], strict=True)) == [(30, 20), (10, 12), (7, 9)]
    assert ds.image_root == tmp_path / "imgs"
    with pytest.raises(ValueError, match="image_size"):
        via.load(path, image_size=(0, 5))


def test_default_image_folder_beside_an_annotations_folder(tmp_path: Path):
    image(tmp_path / "images" / "a.jpg")
    path = write(tmp_path / "annotations" / "project.json", export(entry("a.jpg", region(SHAPES["rect"], c="x"))))
    ds = via.load(path)
    assert ds.image_root == tmp_path / "images" and ds.images.at[0, "width"] == W


@pytest.mark.parametrize("name", ["/etc/passwd", "../a.jpg", "C:\\x\\a.jpg", "a/../../b.jpg"])
def test_unsafe_file_names_are_refused(folder: Path, name: str):
    path = write(folder / "v.json", export(entry(name), entry("a.jpg")))
    with pytest.raises(UnsafePathError):
        via.load(path)
    problems = Problems("skip")
    ds = via.load(path, problems=problems)
    assert list(ds.images["image_id"]) == ["a"] and isinstance(problems.skipped[0], UnsafePathError)


def test_two_images_with_one_stem_and_bombs(folder: Path):
    image(folder / "x" / "a.png")
    path = write(folder / "v.json", export(entry("a.jpg"), entry("x/a.png")))
    with pytest.raises(FormatError, match="stem 'a'"):
        via.load(path)
    bomb_png(folder / "bomb.png")
    with pytest.raises(ImageError, match="too large"):
        via.load(write(folder / "b.json", export(entry("bomb.png"))))


# -- bad input ----------------------------------------------------------------------------------------------------

BAD_REGIONS = {
    "shape not an object": ([1, 2], "shape_attributes is not an object"),
    "unknown shape": ({"name": "blob"}, "unknown shape 'blob'"),
    "uneven polygon": (polygon([1, 2, 3], [1, 2]), "3 x and 2 y"),
    "two-point polygon": (polygon([1, 2], [1, 2]), "2 points"),
    "text coordinate": (polygon([1, "2", 3], [1, 2, 3]), "non-numeric"),
    "nan coordinate": ({"name": "rect", "x": float("nan"), "y": 1, "width": 2, "height": 2}, "number 'x'"),
    "negative rect": ({"name": "rect", "x": 1, "y": 1, "width": -2, "height": 2}, "negative size"),
    "negative radius": ({"name": "circle", "cx": 1, "cy": 1, "r": -2}, "negative radius"),
    "text theta": ({"name": "ellipse", "cx": 1, "cy": 1, "rx": 2, "ry": 2, "theta": "x"}, "theta"),
    "far away": ({"name": "circle", "cx": 1e12, "cy": 1, "r": 5}, "outside"),
    "huge rect": ({"name": "rect", "x": 0, "y": 0, "width": 1e308, "height": 1e308}, "outside"),
}


@pytest.mark.parametrize("case", BAD_REGIONS)
def test_bad_regions_raise_with_file_and_region_or_are_skipped(folder: Path, case: str):
    shape, message = BAD_REGIONS[case]
    path = write(folder / "v.json", export(entry("a.jpg", region(SHAPES["rect"], c="x"), region(shape, c="y"))))
    with pytest.raises(FormatError, match=message) as info:
        via.load(path)
    assert str(path) in str(info.value) and "region 1" in str(info.value)
    problems = Problems("skip")
    ds = via.load(path, problems=problems)
    assert len(ds.objects) == 1 and len(problems.skipped) == 1


BAD_FILES = {
    "malformed": ('{"a.jpg-1": {"filename": "a.jpg", "regions": [}', "malformed JSON at line 1 column"),
    "truncated": ('{"a.jpg-1": {"filename": "a.jpg", "regi', "malformed JSON"),
    "list": ("[1, 2]", "top level is not an object"),
    "other json": ('{"images": [], "annotations": []}', "not a VIA file"),
    "metadata not an object": ('{"_via_img_metadata": []}', "'_via_img_metadata' is not an object"),
    "via3 tables": ('{"project": {}, "metadata": [], "file": {}}', "VIA 3 'metadata' is not an object"),
    "not utf-8": (b'{"\xff": 1}', "not UTF-8"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_are_refused_clearly(tmp_path: Path, case: str):
    content, message = BAD_FILES[case]
    path = tmp_path / "v.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(FormatError, match=message) as info:
        via.load(path)
    assert str(path) in str(info.value)


BAD_ENTRIES = {
    "entry not an object": ("x", "image entry is not an object"),
    "regions not a list": ({"filename": "a.jpg", "regions": 3}, "'regions' is neither"),
    "region not an object": ({"filename": "a.jpg", "regions": [5]}, "region is not an object"),
    "no filename": ({"regions": []}, "no 'filename'"),
    "data uri": ({"filename": "data:image/png;base64,AAAA", "regions": []}, "data: URI"),
    "file attributes": ({"filename": "a.jpg", "regions": [], "file_attributes": [1]}, "'file_attributes'"),
    "region attributes": (
        {"filename": "a.jpg", "regions": [{"shape_attributes": SHAPES["rect"], "region_attributes": 3}]},
        "'region_attributes' is not an object",
    ),
}


@pytest.mark.parametrize("case", BAD_ENTRIES)
def test_bad_image_entries(folder: Path, case: str):
    value, message = BAD_ENTRIES[case]
    path = write(folder / "v.json", {"b.png-1": entry("b.png"), "x": value})
    with pytest.raises(FormatError, match=message):
        via.load(path)
    problems = Problems("skip")
    assert len(via.load(path, problems=problems).images) >= 1 and len(problems.skipped) == 1


def test_bad_csv(folder: Path):
    header = ",".join(via.CSV_COLUMNS)
    path = folder / "v.csv"
    path.write_text("filename,size\na.jpg,1\n")
    with pytest.raises(FormatError, match="not a VIA CSV export"):
        via.load(path)
    path.write_text(f'{header}\na.jpg,1,"{{}}",1,0,"{{""name"":""rect"",""x"":1","{{}}"\nb.png,1,"{{}}",0,0\n')
    with pytest.raises(FormatError, match="line 2") as info:
        via.load(path)
    assert "malformed JSON in the shape column" in str(info.value)
    problems = Problems("skip")
    ds = via.load(path, problems=problems)
    assert len(ds.images) == 0 and [e.item_id for e in problems.skipped] == ["line 2", "line 3"]
    path.write_bytes(header.encode() + b'\na.jpg,1,"{}",1,0,"{}\0","{}"\n')
    with pytest.raises(FormatError):
        via.load(path)


def test_bad_input_leaves_existing_outputs_untouched(folder: Path):
    out = folder / "out.json"
    out.write_text("old")
    bad = folder / "bad.json"
    bad.write_text("{")
    with pytest.raises(FormatError):
        via.save(via.load(bad), out, overwrite=True)
    assert out.read_text() == "old"


# -- detection ----------------------------------------------------------------------------------------------------


def test_detect(folder: Path):
    yes = [
        write(folder / "e.json", export(entry("a.jpg"))),
        write(folder / "p.json", project(entry("a.jpg"))),
        write(folder / "v3.json", via3_project()),
    ]
    (folder / "v.csv").write_text(",".join(via.CSV_COLUMNS) + "\n")
    no = [
        write(folder / "coco.json", {"images": [], "annotations": []}),
        write(folder / "list.json", [1]),
        write(folder / "empty.json", {}),
        folder / "a.jpg",
        folder / "missing.json",
        folder,
    ]
    (folder / "broken.json").write_text("{")
    (folder / "k.csv").write_text("ImageId,EncodedPixels\n")
    assert all(via.detect(p) for p in [*yes, folder / "v.csv"])
    assert {detect_format(p) for p in [*yes, folder / "v.csv"]} == {"via"}
    assert not any(via.detect(p) for p in [*no, folder / "broken.json", folder / "k.csv"])
    big = folder / "big.json"
    big.write_text(json.dumps(project(entry("a.jpg"))) + " " * (9 * 2**20))
    assert via.detect(big)


# -- writing ------------------------------------------------------------------------------------------------------


def rich_project() -> dict:
    regions = [region(shape, c="tree", note="n") for shape in SHAPES.values() if shape["name"] != "polygon"]
    regions += [
        region(SHAPES["polygon"], c="car", q={"good": True}),
        region({"name": "ellipse", "cx": 20.5, "cy": 30.25, "rx": 3, "ry": 2}, id="e1"),
        region({"name": "rect", "x": 1.5, "y": 2, "width": 4, "height": 4}, c="car", score=0.75),
        region(polygon([40, 60, 60], [20, 20, 40]), c="car", id="9"),
        region(polygon([5, 10, 10], [40, 40, 46]), c="car", id="9"),
        region({"name": "rect", "x": 100, "y": 5, "width": 4, "height": 4}, c="boat"),  # outside: an empty mask
    ]
    return project(
        entry("a.jpg", *regions, caption="c", flags={"x": True}),
        entry("b.png"),
        region_attributes={"c": dropdown("tree", "car", "boat")},
    )


def test_round_trip_is_identical_and_keeps_shapes(folder: Path):
    ds = via.load(write(folder / "in.json", rich_project()))
    assert ds.category_names == ["tree", "car", "boat", via.UNLABELED]
    report = via.save(ds, folder / "out" / "p.json", class_attribute="class")
    assert report["images"] == 2 and report["objects"] == len(ds.objects) and report["polygon_loss"] == []
    assert report["regions"] == len(ds.objects) + 1  # the object with id 9 has two regions
    back = via.load(folder / "out" / "p.json", images=folder)
    assert back.equals(ds)
    doc = json.loads((folder / "out" / "p.json").read_text())
    regions = doc["_via_img_metadata"][f"a.jpg{(folder / 'a.jpg').stat().st_size}"]["regions"]
    shapes = [r["shape_attributes"]["name"] for r in regions]
    assert shapes == ["rect", "circle", "ellipse", "polygon", "ellipse", "rect", "polygon", "polygon", "rect"]
    assert ds.objects["area"].iloc[-1] == 0
    assert regions[0]["shape_attributes"] == SHAPES["rect"]
    assert regions[0]["region_attributes"] == {"class": "tree", "note": "n"}
    assert regions[4]["region_attributes"] == {"class": via.UNLABELED, "id": "e1"}
    assert regions[5]["region_attributes"]["score"] == 0.75
    assert doc["_via_attributes"]["region"]["class"]["options"] == {n: n for n in ds.category_names}
    assert doc["_via_attributes"]["region"]["q"]["type"] == "checkbox"
    assert doc["_via_attributes"]["file"]["caption"]["type"] == "text"
    assert doc["_via_data_format_version"] == "2.0.10" and doc["_via_image_id_list"] == list(doc["_via_img_metadata"])
    assert doc["_via_settings"]["project"]["name"] == "p"
    assert doc["_via_settings"]["ui"]["image"]["region_label"] == "class"


def dataset(*objects: dict, image_root: Path | None = None, categories=("a", "b")) -> Dataset:
    rows = [{"image_id": "1", "file_name": "x/one.png", "width": 24, "height": 20}]
    full = []
    for i, obj in enumerate(objects):
        row = {"image_id": "1", "file_name": "x/one.png", "width": 24, "height": 20, "source_id": str(i + 1)}
        full.append({**row, **obj})
    cats = [Category(n, i + 1) for i, n in enumerate(categories)]
    return Dataset.from_records(rows, full, cats, image_root=image_root)


def test_masks_holes_parts_boxes_and_empties(tmp_path: Path):
    holed = np.zeros((20, 24), np.uint8)
    holed[2:12, 2:12] = 1
    holed[5:8, 5:8] = 0
    parts = np.zeros((20, 24), np.uint8)
    parts[14:18, 2:6] = parts[2:5, 15:22] = 1
    ds = dataset(
        {"category": "a", "rle": rle.encode(holed)},
        {"category": "b", "rle": rle.encode(parts), "score": 0.5},
        {"category": "a", "rle": None, "bbox_x": 3.0, "bbox_y": 4.0, "bbox_w": 5.5, "bbox_h": 2.0, "area": 11},
        {"category": "a", "rle": rle.encode(np.zeros((20, 24), np.uint8))},
    )
    report = via.save(ds, tmp_path / "v.json")
    assert report["polygon_loss"] == [] and report["skipped"] == [
        {"image_id": "1", "source_id": "4", "reason": "empty mask"}
    ]
    doc = json.loads((tmp_path / "v.json").read_text())
    assert list(doc["_via_img_metadata"]) == ["x/one.png-1"]
    regions = doc["_via_img_metadata"]["x/one.png-1"]["regions"]
    assert [r["shape_attributes"]["name"] for r in regions] == ["polygon", "polygon", "polygon", "rect"]
    assert regions[3]["shape_attributes"] == {"name": "rect", "x": 3, "y": 4, "width": 5.5, "height": 2}
    assert [r["region_attributes"].get("id") for r in regions] == ["1", "2", "2", "3"]
    back = via.load(tmp_path / "v.json", image_size=(24, 20))
    assert len(back.objects) == 3 and list(back.objects["source_id"]) == ["1", "2", "3"]
    assert np.array_equal(back.object_mask(0), holed) and np.array_equal(back.object_mask(1), parts)
    assert back.objects.at[1, "score"] == 0.5 and isinstance(back.objects.at[2, "rle"], str)  # a rect is a mask
    assert back.objects.loc[2, ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]].tolist() == [3, 4, 5.5, 2]


def test_huge_integers_among_attributes_are_written(folder: Path):
    path = write(folder / "in.json", export(entry("a.jpg", region(SHAPES["rect"], c="x", big=2**70))))
    via.save(via.load(path), folder / "out.json")
    (only,) = json.loads((folder / "out.json").read_text())["_via_img_metadata"].values()
    assert only["regions"][0]["region_attributes"]["big"] == 2**70


def test_stale_shapes_are_not_written(folder: Path):
    ds = via.load(write(folder / "in.json", export(entry("a.jpg", region(SHAPES["circle"], c="x")))))
    mask = ds.object_mask(0)
    mask[0:3, 0:3] = 1
    objects = ds.objects.copy()
    objects.loc[0, "rle"] = rle.encode(mask)
    via.save(ds.replace(objects=objects), folder / "out.json")
    regions = json.loads((folder / "out.json").read_text())["_via_img_metadata"]
    (only,) = regions.values()
    assert [r["shape_attributes"]["name"] for r in only["regions"]] == ["polygon", "polygon"]
    back = via.load(folder / "out.json")
    assert np.array_equal(back.object_mask(0), mask)


def test_save_never_overwrites_without_overwrite_and_leaves_no_partial_file(
    folder: Path, monkeypatch: pytest.MonkeyPatch
):
    ds = via.load(write(folder / "in.json", rich_project()))
    out = folder / "out.json"
    out.write_text("old")
    with pytest.raises(OutputExistsError):
        via.save(ds, out)
    assert out.read_text() == "old"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("seg.formats.via_write.orjson.dumps", boom)
    with pytest.raises(RuntimeError):
        via.save(ds, out, overwrite=True)
    assert out.read_text() == "old" and [p.name for p in folder.glob(".out.json*")] == []


def test_the_registry_passes_the_options(folder: Path):
    regions = [region(SHAPES["rect"], colour="red", form="round")]
    path = write(folder / "v.json", export(entry("a.jpg", *regions)))
    ds = read(path, class_attribute="form", images=folder)
    assert ds.category_names == ["round"]


def test_progress_wraps_the_image_loops(folder: Path):
    seen = []

    def progress(items):
        items = list(items)
        seen.append(len(items))
        return items

    ds = via.load(write(folder / "in.json", rich_project()), progress=progress)
    via.save(ds, folder / "out.json", progress=progress)
    assert seen == [2, 2]


# -- round trips of random data -----------------------------------------------------------------------------------

coordinate = st.integers(-5, 70) | st.floats(-5, 70, allow_nan=False).map(lambda v: round(v, 2))
size = st.integers(1, 30) | st.floats(0.5, 30).map(lambda v: round(v, 2))
random_shape = st.one_of(
    st.builds(
        lambda x, y, w, h: {"name": "rect", "x": x, "y": y, "width": w, "height": h}, coordinate, coordinate, size, size
    ),
    st.builds(lambda x, y, r: {"name": "circle", "cx": x, "cy": y, "r": r}, coordinate, coordinate, size),
    st.builds(
        lambda x, y, a, b, t: {"name": "ellipse", "cx": x, "cy": y, "rx": a, "ry": b, "theta": t},
        coordinate,
        coordinate,
        size,
        size,
        st.floats(-3.2, 3.2).map(lambda v: round(v, 3)),
    ),
    st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=8).map(
        lambda p: polygon([x for x, _ in p], [y for _, y in p])
    ),
)
random_region = st.builds(
    lambda shape, cls, extra: region(shape, **({"kind": cls} if cls else {}), **extra),
    random_shape,
    st.sampled_from(["", "cat", "dog", "bird"]),
    st.dictionaries(st.sampled_from(["note", "q"]), st.sampled_from(["x", "y z", "ü"]), max_size=2),
)


@settings(max_examples=40)
@given(regions=st.lists(random_region, max_size=6), other=st.lists(random_region, max_size=3))
def test_random_projects_round_trip_identically(tmp_path_factory: pytest.TempPathFactory, regions, other):
    folder = tmp_path_factory.mktemp("via")
    image(folder / "a.jpg")
    image(folder / "b.png", 32, 24)
    data = project(entry("a.jpg", *regions), entry("b.png", *other), region_attributes={"kind": dropdown("cat")})
    ds = via.load(write(folder / "in.json", data))
    report = via.save(ds, folder / "out.json")
    back = via.load(folder / "out.json")
    assert back.equals(ds), report
    assert report["polygon_loss"] == []


@settings(max_examples=40)
@given(mask=masks(max_side=20))
def test_random_masks_come_back_exactly(tmp_path_factory: pytest.TempPathFactory, mask: np.ndarray):
    folder = tmp_path_factory.mktemp("viam")
    height, width = mask.shape
    ds = Dataset.from_records(
        [{"image_id": "i", "file_name": "i.png", "width": width, "height": height}],
        [
            {
                "image_id": "i",
                "file_name": "i.png",
                "width": width,
                "height": height,
                "category": "a",
                "rle": rle.encode(mask),
                "source_id": "7",
            }
        ],
        [Category("a", 1)],
    )
    report = via.save(ds, folder / "v.json")
    back = via.load(folder / "v.json", image_size=(width, height))
    if mask.any():
        assert report["polygon_loss"] == [] and len(back.objects) == 1
        assert np.array_equal(back.object_mask(0), mask) and back.objects.at[0, "source_id"] == "7"
    else:
        assert len(back.objects) == 0 and len(report["skipped"]) == 1
