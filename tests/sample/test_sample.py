"""The embedded sample: deterministic bytes, a real SAS.Planet cache layout, three annotation files that agree, the
planted errors where the manifest says, a courtyard building with a real hole, true XYZ tiles of Dakar."""

from __future__ import annotations

import csv
import itertools
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from seg.collector.tiles import Tile, lnglat_to_meters, meters_to_lnglat, meters_to_pixels, tile_at, tile_bounds
from seg.dataset import rle as coco_rle
from seg.dataset.polygons import mask_to_polygons, polygons_to_rle
from seg.errors import OutputExistsError
from seg.sample import SampleInfo, build_sample
from seg.sample.clip import clip_ring
from seg.sample.scene import GRID, LAT, LON, ZOOM
from seg.sample.tiles import native_cache_path

SIZE = 256
KINDS = {"shifted", "missing", "self_intersecting", "wrong_class", "duplicate"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleInfo:
    return build_sample(tmp_path_factory.mktemp("sample") / "sample")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _coco(sample: SampleInfo) -> dict:
    return json.loads(sample.coco.read_text())


def _coco_objects(sample: SampleInfo) -> dict[str, dict[int, tuple[str, list[float] | dict]]]:
    """``{file_name: {object id: (class, ring or RLE)}}`` from the COCO file."""
    doc = _coco(sample)
    names = {c["id"]: c["name"] for c in doc["categories"]}
    files = {i["id"]: i["file_name"] for i in doc["images"]}
    out: dict[str, dict] = {name: {} for name in files.values()}
    for a in doc["annotations"]:
        seg = a["segmentation"]
        if isinstance(seg, list):
            assert len(seg) == 1
            seg = [float(v) for v in seg[0]]
        out[files[a["image_id"]]][a["id"]] = (names[a["category_id"]], seg)
    return out


def _via_objects(sample: SampleInfo) -> dict[str, dict[int, tuple[str, list[float]]]]:
    doc = json.loads(sample.via.read_text())
    out: dict[str, dict] = {}
    for entry in doc["_via_img_metadata"].values():
        regions = out.setdefault(entry["filename"], {})
        for region in entry["regions"]:
            shape = region["shape_attributes"]
            assert shape["name"] == "polygon"
            ring = [float(v) for xy in zip(shape["all_points_x"], shape["all_points_y"], strict=True) for v in xy]
            regions[int(region["region_attributes"]["id"])] = (region["region_attributes"]["class"], ring)
    return out


def _ls_objects(sample: SampleInfo) -> dict[str, dict[int, tuple[str, list[float]]]]:
    tasks = json.loads(sample.labelstudio.read_text())
    out: dict[str, dict] = {}
    for task in tasks:
        name = task["data"]["image"].rsplit("/", 1)[-1]
        regions = out.setdefault(name, {})
        (annotation,) = task["annotations"]
        for r in annotation["result"]:
            w, h = r["original_width"], r["original_height"]
            ring = [v for x, y in r["value"]["points"] for v in (x * w / 100, y * h / 100)]
            (label,) = r["value"]["polygonlabels"]
            regions[int(r["id"])] = (label, ring)
    return out


def _mask(ring: list[float]) -> np.ndarray:
    return coco_rle.decode(polygons_to_rle([ring], SIZE, SIZE), SIZE, SIZE)


def _rle_mask(seg: dict) -> np.ndarray:
    return coco_rle.decode(coco_rle.from_uncompressed(seg["counts"], *seg["size"]), *seg["size"])


def _manifest(sample: SampleInfo) -> list[dict]:
    return json.loads(sample.planted_errors.read_text())["errors"]


def _truth(sample: SampleInfo) -> dict[int, dict]:
    doc = json.loads(sample.footprints.read_text())
    return {f["id"]: f for f in doc["features"]}


def _truth_ring_in_tile(feature: dict, tile: Tile) -> list[int]:
    """A true footprint's outer ring projected into a tile's pixels, rounded as the sample rounds them."""
    ring = feature["geometry"]["coordinates"][0][:-1]
    flat = []
    for lon, lat in ring:
        px, py = meters_to_pixels(*lnglat_to_meters(lon, lat), tile.z)
        flat += [round(px - tile.x * SIZE), round(py - tile.y * SIZE)]
    return flat


def _bbox(ring: list[float]) -> list[float]:
    xs, ys = ring[0::2], ring[1::2]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


# -- determinism and overwriting ---------------------------------------------------------------------------------


def test_build_is_byte_identical_and_overwrite_replaces(sample: SampleInfo, tmp_path: Path) -> None:
    again = tmp_path / "again"
    again.mkdir()
    (again / "stray.txt").write_text("from an earlier run")
    build_sample(again, overwrite=True)
    first, second = _files(sample.root), _files(again)
    assert "stray.txt" not in second
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert different == []


def test_existing_output_is_refused_and_untouched(sample: SampleInfo) -> None:
    before = _files(sample.root)
    with pytest.raises(OutputExistsError) as info:
        build_sample(sample.root)
    assert str(sample.root) in str(info.value)
    assert _files(sample.root) == before


# -- tiles and the SAS.Planet cache ------------------------------------------------------------------------------


def test_tiles_are_a_square_of_real_xyz_tiles_around_dakar(sample: SampleInfo) -> None:
    n = 2**ZOOM
    x = math.floor((LON + 180) / 360 * n)
    lat = math.radians(LAT)
    y = math.floor((1 - math.asinh(math.tan(lat)) / math.pi) / 2 * n)
    assert len(sample.tiles) == GRID * GRID
    xs, ys = sorted({t.x for t in sample.tiles}), sorted({t.y for t in sample.tiles})
    assert xs == list(range(xs[0], xs[0] + GRID)) and ys == list(range(ys[0], ys[0] + GRID))
    assert x in xs and y in ys
    assert {t.z for t in sample.tiles} == {ZOOM}


def test_cache_holds_every_tile_in_sasplanet_native_layout(sample: SampleInfo) -> None:
    assert [p.name for p in sample.map_dir.iterdir()] == [f"z{ZOOM + 1}"]
    for tile in sample.tiles:
        path = (
            sample.map_dir / f"z{tile.z + 1}" / str(tile.x >> 10) / f"x{tile.x}" / str(tile.y >> 10) / f"y{tile.y}.jpg"
        )
        data = path.read_bytes()
        assert data == (sample.images / f"{tile.z}_{tile.x}_{tile.y}.jpg").read_bytes()
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (SIZE, SIZE))
    jpgs = list(sample.map_dir.rglob("*.jpg"))
    assert len(jpgs) == len(sample.tiles)


def test_missing_tile_has_a_zero_byte_tne_marker_and_no_image(sample: SampleInfo) -> None:
    (marker,) = list(sample.map_dir.rglob("*.tne"))
    t = sample.missing_tile
    assert marker == sample.map_dir / f"z{t.z + 1}" / str(t.x >> 10) / f"x{t.x}" / str(t.y >> 10) / f"y{t.y}.tne"
    assert marker.stat().st_size == 0
    assert not marker.with_suffix(".jpg").exists()
    assert t not in sample.tiles
    assert not (sample.images / f"{t.z}_{t.x}_{t.y}.jpg").exists()


def test_native_cache_path_matches_a_real_sasplanet_cache(shared_fixtures: Path) -> None:
    root = shared_fixtures / "sasplanet_native_tile_cache" / "cache" / "sat"
    if not root.is_dir():
        pytest.skip(f"no SAS.Planet cache fixture at {root}")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert files
    for path in files:
        zdir, _xdir_hi, xdir, _ydir_hi, name = path.relative_to(root).parts
        tile = Tile(int(xdir[1:]), int(name[1:].split(".")[0]), int(zdir[1:]) - 1)
        assert native_cache_path(tile, path.suffix).as_posix() == path.relative_to(root).as_posix()
    # SAS.Planet's z3 is slippy zoom 2: 4 x 4 tiles.
    assert native_cache_path(Tile(2, 1, 2)).as_posix() == "z3/0/x2/0/y1.jpg"


def test_native_cache_path_splits_large_indices_by_1024() -> None:
    assert native_cache_path(Tile(118364, 120253, 18)).as_posix() == "z19/115/x118364/117/y120253.jpg"


@given(st.integers(0, 20).flatmap(lambda z: st.tuples(st.integers(0, 2**z - 1), st.integers(0, 2**z - 1), st.just(z))))
def test_tile_of_a_tile_centre_is_that_tile(xyz: tuple[int, int, int]) -> None:
    tile = Tile(*xyz)
    b = tile_bounds(tile)
    lon, lat = meters_to_lnglat((b.left + b.right) / 2, (b.bottom + b.top) / 2)
    assert tile_at(lon, lat, tile.z) == tile


@given(st.floats(-180, 180), st.floats(-85, 85))
def test_lnglat_meters_round_trip(lon: float, lat: float) -> None:
    back = meters_to_lnglat(*lnglat_to_meters(lon, lat))
    assert back == pytest.approx((lon, lat), abs=1e-9)


def test_lnglat_outside_web_mercator_is_refused() -> None:
    with pytest.raises(ValueError, match="latitude"):
        lnglat_to_meters(0.0, 89.0)


def test_chips_csv_georeferences_every_image(sample: SampleInfo) -> None:
    with sample.chips.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(sample.tiles)
    coco_images = {i["file_name"]: i for i in _coco(sample)["images"]}
    for row, tile in zip(rows, sample.tiles, strict=True):
        assert (int(row["tile_x"]), int(row["tile_y"]), int(row["zoom"])) == tuple(tile)
        bounds = [float(row[k]) for k in ("left", "bottom", "right", "top")]
        assert bounds == list(tile_bounds(tile))
        assert coco_images[row["file_name"]]["bounds"] == bounds
        assert row["crs"] == "EPSG:3857"
        assert (sample.root / row["cache_path"]).is_file()
        assert float(row["west"]) < LON + 0.02 and float(row["east"]) > LON - 0.02
        assert float(row["south"]) < LAT + 0.02 and float(row["north"]) > LAT - 0.02
    # Neighbouring tiles share their edges exactly.
    left_of = {(int(r["tile_x"]), int(r["tile_y"])): r for r in rows}
    for (x, y), row in left_of.items():
        if (x + 1, y) in left_of:
            assert row["right"] == left_of[(x + 1, y)]["left"]


# -- images and annotations -----------------------------------------------------------------------------------------


def test_images_are_256_pixel_rgb_tiles_with_texture(sample: SampleInfo) -> None:
    coco = _coco(sample)
    assert len(coco["images"]) == len(sample.tiles)
    for entry in coco["images"]:
        assert (entry["width"], entry["height"]) == (SIZE, SIZE)
        with Image.open(sample.images / entry["file_name"]) as image:
            assert image.size == (SIZE, SIZE) and image.mode == "RGB"
            pixels = np.asarray(image)
        assert pixels.std() > 10  # not a flat fill


def test_roofs_are_painted_where_the_annotations_say(sample: SampleInfo) -> None:
    """Inside a building's mask the colour differs from the ground just around it."""
    coco = _coco(sample)
    files = {i["id"]: i["file_name"] for i in coco["images"]}
    planted = {e["object_id"] for e in _manifest(sample)}
    checked = 0
    for a in coco["annotations"]:
        if a["category_id"] != 1 or a["id"] in planted or a["area"] < 300 or not isinstance(a["segmentation"], list):
            continue
        with Image.open(sample.images / files[a["image_id"]]) as image:
            pixels = np.asarray(image, dtype=float)
        mask = _mask(a["segmentation"][0]).astype(bool)
        x, y, w, h = (int(v) for v in a["bbox"])
        ring = np.zeros_like(mask)
        ring[max(y - 6, 0) : y + h + 6, max(x - 6, 0) : x + w + 6] = True
        ring &= ~mask
        inside, around = pixels[mask].mean(axis=0), pixels[ring].mean(axis=0)
        assert np.abs(inside - around).max() > 8, a["id"]
        checked += 1
        if checked == 20:
            break
    assert checked == 20


def test_objects_include_the_promised_shapes(sample: SampleInfo) -> None:
    truth = _truth(sample)
    shapes = {f["properties"]["shape"] for f in truth.values()}
    assert {"rectangle", "l_shape", "rotated", "courtyard", "tiny", "street", "avenue"} <= shapes
    coco = _coco(sample)
    assert {c["name"] for c in coco["categories"]} == {"building", "road"}
    areas = [a["area"] for a in coco["annotations"] if a["category_id"] == 1]
    assert min(areas) < 60  # tiny sheds
    roads = [a for a in coco["annotations"] if a["category_id"] == 2]
    long_thin = [
        a for a in roads if max(a["bbox"][2], a["bbox"][3]) >= SIZE - 1 and min(a["bbox"][2], a["bbox"][3]) < 40
    ]
    assert len(long_thin) > 10


def test_cut_objects_are_clipped_to_the_tile(sample: SampleInfo) -> None:
    cut = 0
    for a in _coco(sample)["annotations"]:
        seg = a["segmentation"]
        if isinstance(seg, list):
            coords = seg[0]
            assert all(0 <= v <= SIZE for v in coords)
            cut += any(v in (0, SIZE) for v in coords)
    assert cut > 20


def test_clip_ring_keeps_inside_and_cuts_at_the_border() -> None:
    square = [10, 10, 20, 10, 20, 20, 10, 20]
    assert clip_ring(square, 0, 0, 256, 256) == [(10.0, 10.0), (20.0, 10.0), (20.0, 20.0), (10.0, 20.0)]
    across = [-10, 5, 10, 5, 10, 15, -10, 15]
    assert sorted(clip_ring(across, 0, 0, 256, 256)) == [(0.0, 5.0), (0.0, 15.0), (10.0, 5.0), (10.0, 15.0)]
    assert clip_ring([300, 300, 310, 300, 310, 310], 0, 0, 256, 256) == []


def test_three_annotation_files_describe_the_same_objects(sample: SampleInfo) -> None:
    coco, via, ls = _coco_objects(sample), _via_objects(sample), _ls_objects(sample)
    assert set(coco) == set(via) == set(ls)
    holes = 0
    for name, objects in coco.items():
        assert len(objects) == len(via[name]) == len(ls[name]), name
        assert list(objects) == list(via[name]) == list(ls[name]), name
        for oid, (label, seg) in objects.items():
            assert via[name][oid][0] == ls[name][oid][0] == label
            via_ring, ls_ring = via[name][oid][1], ls[name][oid][1]
            assert ls_ring == pytest.approx(via_ring, abs=1e-9)
            if isinstance(seg, list):
                assert seg == via_ring
            else:
                # Polygons cannot hold the hole: VIA and Label Studio carry the outer ring of the COCO mask.
                holes += 1
                ((outer, _inner),) = mask_to_polygons(_rle_mask(seg))
                assert np.array_equal(_mask(outer), _mask(via_ring))
    assert holes == 1


def test_courtyard_building_has_a_real_hole(sample: SampleInfo) -> None:
    (hole_object,) = [a for a in _coco(sample)["annotations"] if isinstance(a["segmentation"], dict)]
    assert hole_object["iscrowd"] == 0
    mask = _rle_mask(hole_object["segmentation"])
    assert mask.shape == (SIZE, SIZE)
    ((outer, holes),) = mask_to_polygons(mask)
    assert len(holes) == 1
    filled = _mask(outer)
    courtyard = filled.astype(bool) & ~mask.astype(bool)
    assert courtyard.sum() > 200
    assert hole_object["area"] == mask.sum()
    # The truth agrees: a footprint with an outer ring and one inner ring.
    truth = _truth(sample)[hole_object["footprint_id"]]
    assert truth["properties"]["shape"] == "courtyard"
    assert len(truth["geometry"]["coordinates"]) == 2


def test_footprints_geojson_follows_rfc7946(sample: SampleInfo) -> None:
    doc = json.loads(sample.footprints.read_text())
    assert doc["type"] == "FeatureCollection"
    for feature in doc["features"]:
        for k, ring in enumerate(feature["geometry"]["coordinates"]):
            assert ring[0] == ring[-1]
            twice = sum(a[0] * b[1] - b[0] * a[1] for a, b in itertools.pairwise(ring))
            assert (twice > 0) == (k == 0)  # exterior counter-clockwise, holes clockwise


def test_via_project_has_via2_structure(sample: SampleInfo) -> None:
    doc = json.loads(sample.via.read_text())
    assert set(doc) >= {"_via_settings", "_via_img_metadata", "_via_attributes", "_via_image_id_list"}
    assert doc["_via_image_id_list"] == list(doc["_via_img_metadata"])
    for key, entry in doc["_via_img_metadata"].items():
        size = (sample.images / entry["filename"]).stat().st_size
        assert entry["size"] == size and key == f"{entry['filename']}{size}"
    assert set(doc["_via_attributes"]["region"]["class"]["options"]) == {"building", "road"}


def test_labelstudio_export_matches_its_config(sample: SampleInfo) -> None:
    config = ET.fromstring((sample.label_config).read_text())
    image = config.find("Image")
    polygons = config.find("PolygonLabels")
    assert image is not None and polygons is not None
    labels = {label.get("value") for label in polygons.findall("Label")}
    for task in json.loads(sample.labelstudio.read_text()):
        path = task["data"]["image"]
        assert path.startswith("/data/local-files/?d=")
        assert (sample.root / path.split("?d=", 1)[1]).is_file()
        for r in task["annotations"][0]["result"]:
            assert r["from_name"] == polygons.get("name") and r["to_name"] == image.get("name")
            assert r["type"] == "polygonlabels"
            assert set(r["value"]["polygonlabels"]) <= labels
            assert all(0 <= v <= 100 for point in r["value"]["points"] for v in point)


# -- planted errors ----------------------------------------------------------------------------------------------


def test_planted_errors_are_where_the_manifest_says(sample: SampleInfo) -> None:
    manifest = _manifest(sample)
    assert {e["kind"] for e in manifest} == KINDS
    assert len({e["file_name"] for e in manifest}) == len(manifest)
    coco = _coco_objects(sample)
    truth = _truth(sample)
    tiles = {f"{t.z}_{t.x}_{t.y}.jpg": t for t in sample.tiles}
    for e in manifest:
        objects = coco[e["file_name"]]
        tile = tiles[e["file_name"]]
        true_ring = _truth_ring_in_tile(truth[e["footprint_id"]], tile)
        assert truth[e["footprint_id"]]["properties"]["class"] == e["category"] == "building"
        assert _bbox(true_ring) == e["bbox"]
        if e["kind"] == "missing":
            assert all(e["object_id"] not in objs for objs in coco.values())
            # Nothing annotated overlaps the building that is on the image.
            true_mask = _mask(true_ring).astype(bool)
            for _label, seg in objects.values():
                if isinstance(seg, list):
                    assert not (true_mask & _mask(seg).astype(bool)).any()
            continue
        label, ring = objects[e["object_id"]]
        if e["kind"] == "shifted":
            dx, dy = e["shift"]
            assert _points(ring) == _points([v + (dx if k % 2 == 0 else dy) for k, v in enumerate(true_ring)])
            iou = coco_rle.iou(
                polygons_to_rle([ring], SIZE, SIZE), polygons_to_rle([true_ring], SIZE, SIZE), SIZE, SIZE
            )
            assert iou < 0.8
        elif e["kind"] == "self_intersecting":
            assert _points(ring) == _points(true_ring)
            assert _self_intersects(ring)
            assert not _self_intersects(true_ring)
        elif e["kind"] == "wrong_class":
            assert label == e["annotated_category"] == "road"
            assert _points(ring) == _points(true_ring)
        elif e["kind"] == "duplicate":
            assert objects[e["duplicate_of"]] == (label, ring)
            assert _points(ring) == _points(true_ring) and e["duplicate_of"] != e["object_id"]
    assert len({e["object_id"] for e in manifest}) == len(manifest)


def _points(ring: list[float]) -> list[tuple[float, float]]:
    """The vertices of a ring, whatever its start and direction."""
    return sorted(zip(ring[0::2], ring[1::2], strict=True))


def _self_intersects(ring: list[float]) -> bool:
    points = list(zip(ring[0::2], ring[1::2], strict=True))
    edges = [(points[i], points[(i + 1) % len(points)]) for i in range(len(points))]

    def cross(o, a, b) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    for i in range(len(edges)):
        for j in range(i + 2, len(edges)):
            if i == 0 and j == len(edges) - 1:
                continue
            (p, q), (r, s) = edges[i], edges[j]
            if cross(p, q, r) * cross(p, q, s) < 0 and cross(r, s, p) * cross(r, s, q) < 0:
                return True
    return False


def test_sample_info_counts_match_the_files(sample: SampleInfo) -> None:
    coco = _coco(sample)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    counts: dict[str, int] = {}
    for a in coco["annotations"]:
        counts[names[a["category_id"]]] = counts.get(names[a["category_id"]], 0) + 1
    assert counts == sample.objects
    assert list(sample.planted) == _manifest(sample)
    assert "planted_errors.json" in (sample.root / "README.txt").read_text()
