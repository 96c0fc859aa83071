"""Footprints from shapefiles and projected CRSs land on the same chip pixels as the same shapes in lon/lat GeoJSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapefile
from rasterio.crs import CRS
from rasterio.warp import transform

from seg.collector.footprints import read_footprints
from seg.collector.vectors import footprints_to_dataset
from seg.errors import FormatError
from tests.collector.test_vectors import NORTH, RES, SIZE, WEST, chips, feature, lnglat, mask_of, rect, ring, write

UTM28 = CRS.from_epsg(32628)  # Dakar's UTM zone


def clockwise(points: list[list[float]]) -> list[list[float]]:
    """Shapefile outer rings run clockwise (negative signed area in x-right/y-up coordinates)."""
    area = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(points, points[1:] + points[:1], strict=True))
    return points if area < 0 else points[::-1]


def to_utm(points: list[list[float]]) -> list[list[float]]:
    xs, ys = transform("EPSG:4326", UTM28, [p[0] for p in points], [p[1] for p in points])
    return [[x, y] for x, y in zip(xs, ys, strict=True)]


def write_shapefile(path: Path, shapes: list[list[list[list[float]]] | None], prj: str | None = None) -> Path:
    """One record per shape: a list of rings (each a closed list of points), or None for a null shape."""
    with shapefile.Writer(str(path), shapeType=shapefile.POLYGON) as writer:
        writer.field("kind", "C")
        writer.field("levels", "N")
        for i, rings in enumerate(shapes):
            if rings is None:
                writer.null()
            else:
                writer.poly(rings)
            writer.record("house" if i % 2 else "shop", i + 1)
    if prj is not None:
        path.with_suffix(".prj").write_text(prj)
    return path.with_suffix(".shp")


def outer_and_hole() -> list[list[list[float]]]:
    outer = clockwise(ring(rect(10, 10, 60, 50)))
    hole = clockwise(ring(rect(20, 20, 30, 30)))[::-1]
    return [outer, hole]


def test_shapefile_in_lnglat_matches_geojson(tmp_path: Path) -> None:
    rings = outer_and_hole()
    shp = write_shapefile(tmp_path / "lnglat", [rings, None, [clockwise(ring(rect(70, 5, 90, 15)))]])
    from_shp = footprints_to_dataset(shp, chips(1), class_property="kind")
    geojson = write(tmp_path, [feature([ring(rect(10, 10, 60, 50)), ring(rect(20, 20, 30, 30))], fid=0)])
    from_geojson = footprints_to_dataset(geojson, chips(1))
    assert list(from_shp.objects.source_id) == ["0", "2"]  # the null shape is skipped
    assert list(from_shp.objects.category) == ["shop", "shop"]
    assert np.array_equal(mask_of(from_shp, "c0", "0"), mask_of(from_geojson, "c0", "0"))
    hole = mask_of(from_shp, "c0", "0")
    assert hole[10:50, 10:60].sum() == 50 * 40 - 100 and not hole[20:30, 20:30].any()
    assert json.loads(from_shp.objects.attributes.iloc[1]) == {"kind": "shop", "levels": 3}


def test_projected_shapefile_with_prj_lands_on_the_same_pixels(tmp_path: Path) -> None:
    rings = [to_utm(r) for r in outer_and_hole()]
    shp = write_shapefile(tmp_path / "utm", [rings], prj=UTM28.to_wkt(version="WKT1_ESRI"))
    lnglat_shp = write_shapefile(tmp_path / "lnglat", [outer_and_hole()])
    projected = footprints_to_dataset(shp, chips(1))
    geographic = footprints_to_dataset(lnglat_shp, chips(1))
    a, b = mask_of(projected, "c0", "0"), mask_of(geographic, "c0", "0")
    assert (a != b).sum() <= 2  # PROJ's round trip through UTM moves corners by far less than a pixel


def test_projected_geojson_crs_member(tmp_path: Path) -> None:
    metres = [to_utm(ring(rect(10, 10, 20, 30)))]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32628"}}
    ds = footprints_to_dataset(write(tmp_path, [feature(metres, fid=1)], crs=crs), chips(1))
    assert mask_of(ds, "c0", "1")[10:30, 10:20].all() and ds.objects.area.iloc[0] == 200


def test_footprint_bounds_are_web_mercator_metres(tmp_path: Path) -> None:
    shp = write_shapefile(tmp_path / "a", [[clockwise(ring(rect(0, 0, SIZE, SIZE)))]])
    (footprint,) = read_footprints(shp)
    assert footprint.left == pytest.approx(WEST, abs=1e-6) and footprint.top == pytest.approx(NORTH, abs=1e-6)
    assert footprint.right - footprint.left == pytest.approx(SIZE * RES, abs=1e-6)


def test_projected_shapefile_without_prj_is_refused(tmp_path: Path) -> None:
    shp = write_shapefile(tmp_path / "utm", [[to_utm(clockwise(ring(rect(10, 10, 20, 20))))]])
    with pytest.raises(FormatError, match=r"utm\.shp: no \.prj beside the shapefile .*utm\.prj"):
        read_footprints(shp)


def test_point_shapefile_is_refused(tmp_path: Path) -> None:
    with shapefile.Writer(str(tmp_path / "points"), shapeType=shapefile.POINT) as writer:
        writer.field("name", "C")
        writer.point(*lnglat(1, 1))
        writer.record("p")
    with pytest.raises(FormatError, match=r"points\.shp: shapefile holds POINT shapes \(expected Polygon shapes\)"):
        read_footprints(tmp_path / "points.shp")


@pytest.mark.parametrize("cut", [0, 50, 120, -8])
@pytest.mark.filterwarnings("ignore:Declared file size")  # pyshp warns of the size mismatch before failing
def test_truncated_shapefile_gives_one_line_error(tmp_path: Path, cut: int) -> None:
    shp = write_shapefile(tmp_path / "a", [outer_and_hole(), outer_and_hole()])
    data = shp.read_bytes()
    shp.write_bytes(data[:cut])
    shp.with_suffix(".shx").unlink()  # without the index the reader walks the records and meets the cut
    with pytest.raises(FormatError) as info:
        read_footprints(shp)
    assert str(info.value).startswith(str(shp)) and "\n" not in str(info.value)


def test_unknown_prj_and_missing_dbf(tmp_path: Path) -> None:
    shp = write_shapefile(tmp_path / "a", [outer_and_hole()], prj="PROJCS[nonsense")
    with pytest.raises(FormatError, match=r"a\.shp: unknown CRS"):
        read_footprints(shp)
    shp.with_suffix(".prj").unlink()
    shp.with_suffix(".dbf").unlink()
    with pytest.raises(FormatError, match=r"a\.shp: "):
        read_footprints(shp)


def test_not_a_shapefile(tmp_path: Path) -> None:
    path = tmp_path / "fake.shp"
    path.write_text("<html>not a shapefile</html>")
    with pytest.raises(FormatError, match=r"fake\.shp: not a readable shapefile"):
        read_footprints(path)
