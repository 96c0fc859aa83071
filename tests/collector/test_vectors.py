"""Tests for seg.collector.vectors: GeoJSON footprints onto chips and back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seg.collector.cache import open_cache
from seg.collector.chips import make_chips
from seg.collector.tiles import lnglat_to_meters, meters_to_lnglat
from seg.collector.vectors import dataset_to_geojson, footprints_to_dataset
from seg.dataset import rle as coco_rle
from seg.dataset.core import Dataset
from seg.dataset.polygons import polygons_to_rle
from seg.errors import FormatError, OutputExistsError, SegError

#: Metres per pixel of the hand-made chips, and the north-west corner of chip 0 (near Dakar).
RES = 0.5
WEST, NORTH = lnglat_to_meters(-17.45, 14.69)
SIZE = 100


def chips(count: int = 2) -> Dataset:
    """``count`` chips of SIZE x SIZE pixels side by side, west to east."""
    rows = []
    for i in range(count):
        west = WEST + i * SIZE * RES
        rows.append(
            {
                "image_id": f"c{i}",
                "file_name": f"images/c{i}.png",
                "width": SIZE,
                "height": SIZE,
                "crs": "EPSG:3857",
                "west": west,
                "south": NORTH - SIZE * RES,
                "east": west + SIZE * RES,
                "north": NORTH,
            }
        )
    return Dataset.from_records(rows, [], [])


def lnglat(x: float, y: float) -> list[float]:
    """Pixel ``(x, y)`` of chip 0 to longitude/latitude."""
    return list(meters_to_lnglat(WEST + x * RES, NORTH - y * RES))


def ring(points: list[tuple[float, float]]) -> list[list[float]]:
    out = [lnglat(x, y) for x, y in points]
    return [*out, out[0]]


def rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def feature(coordinates: list, kind: str = "Polygon", fid: object = None, **properties: object) -> dict:
    out: dict = {"type": "Feature", "properties": properties, "geometry": {"type": kind, "coordinates": coordinates}}
    if fid is not None:
        out["id"] = fid
    return out


def write(tmp_path: Path, features: list[dict], **extra: object) -> Path:
    path = tmp_path / "footprints.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features, **extra}))
    return path


def mask_of(ds: Dataset, image_id: str, source_id: str) -> np.ndarray:
    objects = ds.objects[(ds.objects.image_id == image_id) & (ds.objects.source_id == source_id)]
    assert len(objects) == 1
    return coco_rle.decode(objects.rle.iloc[0], SIZE, SIZE).astype(bool)


def pixel_points(coordinates: list[list[float]]) -> list[tuple[float, float]]:
    """Closed lon/lat ring back to chip-0 pixels (closing point dropped)."""
    out = []
    for lon, lat in coordinates[:-1]:
        mx, my = lnglat_to_meters(lon, lat)
        out.append(((mx - WEST) / RES, (NORTH - my) / RES))
    return out


def signed_area(coordinates: list[list[float]]) -> float:
    pts = coordinates[:-1]
    return 0.5 * sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(pts, pts[1:] + pts[:1], strict=True))


def test_axis_aligned_footprint_comes_back_exactly(tmp_path: Path) -> None:
    path = write(tmp_path, [feature([ring(rect(10, 20, 40, 35))], fid=7, name="a")])
    ds = footprints_to_dataset(path, chips())
    assert len(ds.images) == 2 and len(ds.objects) == 1
    expected = np.zeros((SIZE, SIZE), bool)
    expected[20:35, 10:40] = True
    np.testing.assert_array_equal(mask_of(ds, "c0", "7"), expected)
    obj = ds.objects.iloc[0]
    assert obj.category == "building" and json.loads(obj.attributes) == {"name": "a"}
    assert json.loads(obj.geometry) == [pytest.approx([10, 20, 40, 20, 40, 35, 10, 35], abs=1e-6)]
    collection = dataset_to_geojson(ds)
    (out,) = collection["features"]
    assert out["properties"] == {"class": "building", "image_id": "c0", "source_id": "7"}
    assert out["geometry"]["type"] == "Polygon"
    (exterior,) = out["geometry"]["coordinates"]
    assert exterior[0] == exterior[-1] and signed_area(exterior) > 0  # closed, counter-clockwise
    back = sorted(pixel_points(exterior))
    assert back == [pytest.approx(p, abs=1e-6) for p in sorted(rect(10, 20, 40, 35))]


def test_hole_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path, [feature([ring(rect(10, 10, 50, 50)), ring(rect(20, 20, 30, 30))], fid="h")])
    ds = footprints_to_dataset(path, chips(1))
    mask = mask_of(ds, "c0", "h")
    assert not mask[25, 25] and mask[15, 15] and mask.sum() == 40 * 40 - 10 * 10
    assert pd.isna(ds.objects.geometry.iloc[0])  # a union of rings cannot hold the hole
    (out,) = dataset_to_geojson(ds)["features"]
    exterior, hole = out["geometry"]["coordinates"]
    assert signed_area(exterior) > 0 and signed_area(hole) < 0
    assert sorted(pixel_points(hole)) == [pytest.approx(p, abs=1e-6) for p in sorted(rect(20, 20, 30, 30))]


def test_footprint_across_a_chip_border_is_clipped_into_both(tmp_path: Path) -> None:
    path = write(tmp_path, [feature([ring(rect(80, 10, 130, 20))], fid=1)])
    ds = footprints_to_dataset(path, chips())
    left, right = mask_of(ds, "c0", "1"), mask_of(ds, "c1", "1")
    assert left.sum() == 20 * 10 and left[10:20, 80:100].all()
    assert right.sum() == 30 * 10 and right[10:20, 0:30].all()
    features = dataset_to_geojson(ds)["features"]
    assert sorted(f["properties"]["image_id"] for f in features) == ["c0", "c1"]


def test_multipolygon_is_one_object(tmp_path: Path) -> None:
    coordinates = [[ring(rect(5, 5, 15, 15))], [ring(rect(60, 60, 70, 80))]]
    path = write(tmp_path, [feature(coordinates, kind="MultiPolygon", kind_of="m")])
    ds = footprints_to_dataset(path, chips(1))
    assert len(ds.objects) == 1 and ds.objects.source_id.iloc[0] == "0"  # no id: index in the collection
    assert mask_of(ds, "c0", "0").sum() == 100 + 200
    (out,) = dataset_to_geojson(ds)["features"]
    assert out["geometry"]["type"] == "MultiPolygon" and len(out["geometry"]["coordinates"]) == 2


def test_features_outside_every_chip_are_ignored_and_negatives_kept(tmp_path: Path) -> None:
    path = write(tmp_path, [feature([ring(rect(500, 500, 520, 520))]), {"type": "Feature", "geometry": None}])
    ds = footprints_to_dataset(path, chips())
    assert len(ds.objects) == 0 and list(ds.images.image_id) == ["c0", "c1"]
    assert ds.category_names == ["building"]
    assert dataset_to_geojson(ds)["features"] == []


def test_touching_the_border_only_gives_no_object(tmp_path: Path) -> None:
    path = write(tmp_path, [feature([ring(rect(100, 10, 120, 20))], fid=1)])
    ds = footprints_to_dataset(path, chips())
    assert list(ds.objects.image_id) == ["c1"]


def test_footprint_within_a_chip_around_rasterizes_as_its_full_polygon(tmp_path: Path) -> None:
    points = [(-80.37, -20.71), (150.23, 40.13), (60.61, 190.97), (-20.29, 70.33)]
    path = write(tmp_path, [feature([ring(points)], fid=1)])
    ds = footprints_to_dataset(path, chips(1))
    flat = [v for p in points for v in p]
    expected = coco_rle.decode(polygons_to_rle([flat], SIZE, SIZE), SIZE, SIZE).astype(bool)
    np.testing.assert_array_equal(mask_of(ds, "c0", "1"), expected)


def test_far_larger_footprint_is_clipped_within_one_pixel(tmp_path: Path) -> None:
    points = [(-730.3, -20.7), (950.2, 40.1), (60.6, 1200.9), (-20.2, 70.3)]
    path = write(tmp_path, [feature([ring(points)], fid=1)])
    ds = footprints_to_dataset(path, chips(1))
    flat = [v for p in points for v in p]
    expected = coco_rle.decode(polygons_to_rle([flat], SIZE, SIZE), SIZE, SIZE).astype(bool)
    got = mask_of(ds, "c0", "1")
    assert not (got & ~_dilate(expected)).any() and not (expected & ~_dilate(got)).any()
    assert (got != expected).sum() < 0.01 * expected.sum()


def _dilate(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1)
    out = np.zeros_like(mask)
    h, w = mask.shape
    for dy in range(3):
        for dx in range(3):
            out |= padded[dy : dy + h, dx : dx + w]
    return out


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-12), 0, 1)
    return float(np.linalg.norm(p - (a + t * ab)))


def _boundary_distance(p: np.ndarray, points: list[tuple[float, float]]) -> float:
    pts = np.asarray(points)
    return min(_segment_distance(p, pts[i - 1], pts[i]) for i in range(len(pts)))


@pytest.mark.parametrize("seed", range(8))
def test_arbitrary_polygons_come_back_within_one_pixel(tmp_path: Path, seed: int) -> None:
    """Every traced corner lies within one pixel of the footprint's outline (polygons with sharp corners lose their
    tips, so the other direction is checked on rotated rectangles below)."""
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(30, 70, 2)
    angles = np.sort(rng.uniform(0, 2 * math.pi, 6))
    radii = rng.uniform(12, 25, 6)
    points = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a, r in zip(angles, radii, strict=True)]
    path = write(tmp_path, [feature([ring(points)], fid=1)])
    ds = footprints_to_dataset(path, chips(1))
    (out,) = dataset_to_geojson(ds)["features"]
    assert out["geometry"]["type"] == "Polygon"
    traced = pixel_points(out["geometry"]["coordinates"][0])
    assert max(_boundary_distance(np.asarray(p), points) for p in traced) <= 1.0


@pytest.mark.parametrize("seed", range(8))
def test_rotated_rectangles_come_back_within_one_pixel(tmp_path: Path, seed: int) -> None:
    """Traced corners within one pixel of the outline; the rectangle's corners within a pixel's diagonal of the
    traced outline (the trace follows pixel edges, so a cut corner can lie up to a diagonal away)."""
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(30, 70, 2)
    w, h = rng.uniform(8, 40, 2)
    c, s = math.cos(a := rng.uniform(0, math.pi)), math.sin(a)
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    points = [(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners]
    ds = footprints_to_dataset(write(tmp_path, [feature([ring(points)], fid=1)]), chips(1))
    (out,) = dataset_to_geojson(ds)["features"]
    traced = pixel_points(out["geometry"]["coordinates"][0])
    assert max(_boundary_distance(np.asarray(p), points) for p in traced) <= 1.0
    assert max(_boundary_distance(np.asarray(p), traced) for p in points) <= math.sqrt(2)


def test_crs_member_and_class_property(tmp_path: Path) -> None:
    metres = [[[WEST + x * RES, NORTH - y * RES] for x, y in [*rect(10, 10, 20, 30), (10, 10)]]]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    path = write(tmp_path, [feature(metres, fid=1, kind_="x", cls="road"), feature(metres, fid=2)], crs=crs)
    ds = footprints_to_dataset(path, chips(1), class_property="cls", default_class="house")
    assert ds.category_names == ["road", "house"]
    assert list(ds.objects.category) == ["road", "house"]
    assert mask_of(ds, "c0", "1")[10:30, 10:20].all() and mask_of(ds, "c0", "1").sum() == 200
    crs84 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    path = write(tmp_path, [feature([ring(rect(10, 10, 20, 30))], fid=1)], crs=crs84)
    assert footprints_to_dataset(path, chips(1)).objects.area.iloc[0] == 200


def test_geojson_written_atomically_with_scores(tmp_path: Path) -> None:
    ds = footprints_to_dataset(write(tmp_path, [feature([ring(rect(10, 10, 20, 20))], fid=1)]), chips(1))
    ds = ds.replace(objects=ds.objects.assign(score=0.75))
    out = tmp_path / "out.geojson"
    collection = dataset_to_geojson(ds, out)
    assert json.loads(out.read_text()) == collection
    assert collection["features"][0]["properties"]["score"] == 0.75
    out.write_text("keep")
    with pytest.raises(OutputExistsError):
        dataset_to_geojson(ds, out)
    assert out.read_text() == "keep"
    dataset_to_geojson(ds, out, overwrite=True)
    assert json.loads(out.read_text()) == collection


def test_chips_without_georeference_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, [feature([ring(rect(10, 10, 20, 20))])])
    plain = Dataset.from_records([{"image_id": "a", "file_name": "a.png", "width": 10, "height": 10}], [], [])
    with pytest.raises(SegError, match="not a georeferenced chip"):
        footprints_to_dataset(path, plain)
    with pytest.raises(SegError, match="not a georeferenced chip"):
        dataset_to_geojson(plain)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"type": "FeatureCollection", "features": [', "malformed JSON"),
        ('{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
        ("[1, 2]", "not a GeoJSON FeatureCollection"),
        ('{"type": "FeatureCollection", "features": {}}', "'features' is not a list"),
        ('{"type": "FeatureCollection", "features": [1]}', "not a GeoJSON Feature"),
        (
            '{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:999999"}},'
            ' "features": []}',
            "unknown CRS",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '
            '{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}}]}',
            "ring has 2 distinct points",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '
            '{"type": "Point", "coordinates": [0, 0]}}]}',
            "unsupported geometry type 'Point'",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '
            '{"type": "Polygon", "coordinates": [[[0, 0], [1, "a"], [0, 1]]]}}]}',
            "position is not a pair of finite numbers",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '
            '{"type": "Polygon", "coordinates": [[[0, 89], [1, 89], [0, 88]]]}}]}',
            "latitude 89",
        ),
    ],
)
def test_bad_geojson_gives_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(text)
    with pytest.raises(FormatError, match=message) as info:
        footprints_to_dataset(path, chips(1))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seg.sample.build import build_sample

    root = tmp_path_factory.mktemp("sample") / "sample"
    build_sample(root)
    return root


def test_sample_footprints_match_the_sample_annotations(sample: Path, tmp_path: Path) -> None:
    """The sample's COCO objects round the footprints' vertices to whole pixels (as an annotator's clicks) while
    footprints.geojson keeps them exact, so masks are not identical: every non-planted object is found with its class,
    each mask lies within one pixel of the other (inside the other's 3x3 dilation), and the mean IoU is above 0.98."""
    cache = open_cache(sample / "cache")
    made = make_chips(cache, "Sample.Satellite", 18, tmp_path / "chips", chip=256, fmt="tif")
    ds = footprints_to_dataset(sample / "footprints.geojson", made, class_property="class")
    assert len(ds.images) == 36 and ds.category_names == ["building", "road"]
    coco = json.loads((sample / "annotations" / "coco.json").read_text())
    planted = {
        e["object_id"] for e in json.loads((sample / "annotations" / "planted_errors.json").read_text())["errors"]
    }
    names = {c["id"]: c["name"] for c in coco["categories"]}
    by_corner = {(round(r.west, 3), round(r.north, 3)): r.image_id for r in ds.images.itertuples()}
    chip_of = {i["id"]: by_corner[(round(i["bounds"][0], 3), round(i["bounds"][3], 3))] for i in coco["images"]}
    found = {(o.image_id, o.source_id): o for o in ds.objects.itertuples()}
    ious = []
    for ann in coco["annotations"]:
        if ann["id"] in planted:
            continue
        obj = found[(chip_of[ann["image_id"]], str(ann["footprint_id"]))]
        assert obj.category == names[ann["category_id"]]
        segmentation = ann["segmentation"]
        if isinstance(segmentation, dict):
            counts = coco_rle.from_uncompressed(segmentation["counts"], 256, 256)
            theirs = coco_rle.decode(counts, 256, 256).astype(bool)
        else:
            theirs = coco_rle.decode(polygons_to_rle(segmentation, 256, 256), 256, 256).astype(bool)
        ours = coco_rle.decode(obj.rle, 256, 256).astype(bool)
        assert not (ours & ~_dilate(theirs)).any() and not (theirs & ~_dilate(ours)).any()
        ious.append(coco_rle.iou(obj.rle, coco_rle.encode(theirs), 256, 256))
    assert len(ious) == sum(ann["id"] not in planted for ann in coco["annotations"]) > 600
    assert np.mean(ious) > 0.98
    features = dataset_to_geojson(ds)["features"]
    assert len(features) == len(ds.objects)
