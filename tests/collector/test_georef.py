"""Tests for reading the georeference of stitched exports (tags, world file, .prj, .aux.xml, .map, .kml)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import Affine

from seg.collector import tiles
from seg.collector.georef import read_georeference, world_file_candidates
from seg.collector.georef_sidecars import MAX_SIDECAR_BYTES, mercator_3395_y, read_kml_ground_overlay, read_world_file
from seg.errors import FormatError, ImageError, SegError

TILE = tiles.Tile(2200, 1343, 12)


def _image(path: Path, width: int = 256, height: int = 256) -> Path:
    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(path)
    return path


def _world(path: Path, a: float, b: float, d: float, e: float, centre_x: float, centre_y: float) -> Path:
    path.write_text("\n".join(f"{v:.10f}" for v in (a, d, b, e, centre_x, centre_y)) + "\n")
    return path


def _tile_export(folder: Path, suffix: str = ".png", world_suffix: str = ".pgw") -> tuple[Path, tuple]:
    """A 256x256 image of TILE with a world file; returns it and the expected corner transform."""
    image = _image(folder / f"export{suffix}")
    b = tiles.tile_bounds(TILE)
    res = (b.right - b.left) / 256
    _world(folder / f"export{world_suffix}", res, 0, 0, -res, b.left + res / 2, b.top - res / 2)
    return image, (res, 0.0, b.left, 0.0, -res, b.top)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _approx(actual, expected, rel=1e-9, abs_=1e-6):
    assert actual == pytest.approx(expected, rel=rel, abs=abs_)


def _prj(path: Path, epsg: int) -> Path:
    path.write_text(CRS.from_epsg(epsg).to_wkt())
    return path


# --- world files -------------------------------------------------------------------------------------------------


def test_world_file_on_tile_grid_with_prj(tmp_path):
    image, expected = _tile_export(tmp_path)
    _prj(tmp_path / "export.prj", 3857)
    before = _snapshot(tmp_path)
    geo = read_georeference(image)
    assert geo.crs == 3857
    _approx(geo.transform, expected)
    assert (geo.width, geo.height) == (256, 256)
    assert geo.source == tmp_path / "export.pgw"
    assert geo.warnings == ()
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("suffix", "world_suffix"),
    [
        (".jpg", ".jgw"),
        (".jpg", ".jpgw"),
        (".jpeg", ".jgw"),
        (".png", ".pgw"),
        (".png", ".pngw"),
        (".png", ".wld"),
        (".tif", ".tfw"),
        (".tif", ".tifw"),
        (".bmp", ".bpw"),
        (".gif", ".gfw"),
        (".jpg", ".JGW"),
    ],
)
def test_every_world_file_name(tmp_path, suffix, world_suffix):
    image, expected = _tile_export(tmp_path, suffix, world_suffix)
    geo = read_georeference(image)
    _approx(geo.transform, expected)
    assert geo.source.name == f"export{world_suffix}"
    assert geo.crs is None
    assert any("no CRS" in w for w in geo.warnings)


def test_world_file_candidates():
    assert world_file_candidates(Path("a/x.jpg")) == ["x.jgw", "x.jpgw", "x.wld"]
    assert world_file_candidates(Path("x.TIFF")) == ["x.tfw", "x.tiffw", "x.wld"]


def test_centre_to_corner_matches_rasterio_with_rotation(tmp_path):
    image = _image(tmp_path / "r.jpg", 40, 30)
    jgw = _world(tmp_path / "r.jgw", 0.5, 0.1, -0.2, -0.5, 1000.25, 2000.75)
    before = _snapshot(tmp_path)
    geo = read_georeference(image)
    with rasterio.open(image) as ds:
        reference = tuple(ds.transform)[:6]
    _approx(geo.transform, reference)
    # corner = centre minus half a pixel step in both image directions
    _approx(geo.transform[2], 1000.25 - 0.5 / 2 - 0.1 / 2)
    _approx(geo.transform[5], 2000.75 - (-0.2) / 2 - (-0.5) / 2)
    assert jgw.exists()
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("1\n0\n0\n-1\n5\n", "line 6", "too short"),
        ("1\n0\nzero\n-1\n5\n6\n", "line 3", "not a number"),
        ("1\n0\n0\n-1\n5\n6\n7\n", "line 7", "more than 6"),
        ("0\n0\n0\n-1\n5\n6\n", "line 1", "zero pixel size"),
        ("1\n0\n0\n0\n5\n6\n", "line 4", "zero pixel size"),
        ("1\n0\n0\n-1\nnan\n6\n", "line 5", "not finite"),
        ("", "line 1", "too short"),
    ],
)
def test_malformed_world_file(tmp_path, text, line, message):
    image = _image(tmp_path / "m.png", 8, 8)
    (tmp_path / "m.pgw").write_text(text)
    before = _snapshot(tmp_path)
    with pytest.raises(FormatError) as info:
        read_georeference(image)
    assert "m.pgw" in str(info.value) and line in str(info.value) and message in str(info.value)
    assert _snapshot(tmp_path) == before


def test_world_file_trailing_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "w.wld"
    path.write_bytes(b"2\r\n0\r\n0\r\n-2\r\n11\r\n9\r\n\r\n\r\n")
    assert read_world_file(path) == (2.0, 0.0, 10.0, 0.0, -2.0, 10.0)


def test_huge_world_file_refused(tmp_path):
    path = tmp_path / "w.wld"
    path.write_bytes(b"1\n" * (MAX_SIDECAR_BYTES // 2 + 1))
    with pytest.raises(FormatError, match="too large"):
        read_world_file(path)


# --- GeoTIFF tags ------------------------------------------------------------------------------------------------


def _geotiff(path: Path, transform: Affine, crs: CRS | None, size=(20, 10)) -> Path:
    profile = {"driver": "GTiff", "width": size[0], "height": size[1], "count": 1, "dtype": "uint8"}
    with rasterio.open(path, "w", transform=transform, crs=crs, **profile) as ds:
        ds.write(np.zeros((1, size[1], size[0]), np.uint8))
    return path


def test_geotiff_tags_win_over_world_file(tmp_path):
    b = tiles.tile_bounds(TILE)
    res = (b.right - b.left) / 256
    image = _geotiff(tmp_path / "g.tif", Affine(res, 0, b.left, 0, -res, b.top), CRS.from_epsg(3857))
    _world(tmp_path / "g.tfw", 1, 0, 0, -1, 0.5, 0.5)
    before = _snapshot(tmp_path)
    geo = read_georeference(image)
    assert _snapshot(tmp_path) == before
    assert geo.source == image and geo.crs == 3857
    _approx(geo.transform, (res, 0, b.left, 0, -res, b.top))
    assert any("g.tfw disagrees with g.tif" in w for w in geo.warnings)


def test_geotiff_without_crs_takes_prj(tmp_path):
    image = _geotiff(tmp_path / "g.tif", Affine(30, 0, 500000, 0, -30, 4000000), None)
    (tmp_path / "g.prj").write_text(CRS.from_epsg(32633).to_wkt())
    geo = read_georeference(image)
    assert geo.crs == 32633 and geo.warnings == ()
    assert geo.transform == (30, 0, 500000, 0, -30, 4000000)


def test_prj_as_epsg_string_and_bad_prj(tmp_path):
    image, _ = _tile_export(tmp_path)
    (tmp_path / "export.prj").write_text("EPSG:3857\n")
    assert read_georeference(image).crs == 3857
    (tmp_path / "export.prj").write_text("PROJCS[nonsense")
    with pytest.raises(FormatError, match=r"export\.prj"):
        read_georeference(image)


# --- .aux.xml ----------------------------------------------------------------------------------------------------


def _aux(path: Path, srs: str | None, geotransform: str | None) -> Path:
    parts = ["<PAMDataset>"]
    if srs is not None:
        parts.append(f'<SRS dataAxisToSRSAxisMapping="1,2">{srs}</SRS>')
    if geotransform is not None:
        parts.append(f"<GeoTransform>{geotransform}</GeoTransform>")
    path.write_text("".join([*parts, "</PAMDataset>"]))
    return path


def test_aux_xml_gives_srs_and_geotransform(tmp_path):
    image = _image(tmp_path / "a.png", 10, 10)
    _aux(tmp_path / "a.png.aux.xml", CRS.from_epsg(3395).to_wkt(), " 1.0e+03, 2, 0, 5.0e+03, 0, -2")
    geo = read_georeference(image)
    assert geo.crs == 3395 and geo.source.name == "a.png.aux.xml"
    assert geo.transform == (2, 0, 1000, 0, -2, 5000)


def test_aux_xml_srs_completes_world_file(tmp_path):
    image, expected = _tile_export(tmp_path)
    _aux(tmp_path / "export.png.aux.xml", CRS.from_epsg(3857).to_wkt(), None)
    geo = read_georeference(image)
    assert geo.crs == 3857 and geo.source.name == "export.pgw"
    _approx(geo.transform, expected)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><PAMDataset>&a;</PAMDataset>', "DOCTYPE"),
        ("<PAMDataset><SRS>x</SRS>", "malformed"),
        ("<Other/>", "not a GDAL"),
        ("<PAMDataset><GeoTransform>1, 2, 3</GeoTransform></PAMDataset>", "six"),
        ("<PAMDataset><GeoTransform>1, 0, 0, 1, 0, 0</GeoTransform></PAMDataset>", "zero pixel"),
    ],
)
def test_hostile_or_malformed_aux_xml(tmp_path, content, message):
    image = _image(tmp_path / "a.png", 4, 4)
    (tmp_path / "a.png.aux.xml").write_text(content)
    before = _snapshot(tmp_path)
    with pytest.raises(FormatError, match=message) as info:
        read_georeference(image)
    assert "a.png.aux.xml" in str(info.value)
    assert _snapshot(tmp_path) == before


def test_huge_aux_xml_refused(tmp_path):
    image = _image(tmp_path / "a.png", 4, 4)
    (tmp_path / "a.png.aux.xml").write_bytes(b"<PAMDataset>" + b" " * MAX_SIDECAR_BYTES + b"</PAMDataset>")
    with pytest.raises(FormatError, match="too large"):
        read_georeference(image)


# --- KML GroundOverlay -------------------------------------------------------------------------------------------


def _kml(path: Path, west, south, east, north, rotation=None, href="export.png") -> Path:
    rot = f"<rotation>{rotation}</rotation>" if rotation is not None else ""
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2"><GroundOverlay>'
        f"<name>x</name><Icon><href>{href}</href></Icon><LatLonBox><north>{north!r}</north><south>{south!r}</south>"
        f"<east>{east!r}</east><west>{west!r}</west>{rot}</LatLonBox></GroundOverlay></kml>"
    )
    return path


def test_kml_ground_overlay(tmp_path):
    image = _image(tmp_path / "export.png", 200, 100)
    _kml(tmp_path / "export.kml", 10.0, 40.0, 12.0, 41.0)
    geo = read_georeference(image)
    assert geo.crs == 4326 and geo.source.name == "export.kml"
    _approx(geo.transform, (0.01, 0, 10.0, 0, -0.01, 41.0))
    assert geo.warnings == ()


def test_kml_other_href_and_prj_mismatch_warn(tmp_path):
    image = _image(tmp_path / "export.png", 200, 100)
    _kml(tmp_path / "export.kml", 10.0, 40.0, 12.0, 41.0, href="C:\\maps\\other.jpg")
    _prj(tmp_path / "export.prj", 3857)
    geo = read_georeference(image)
    assert geo.crs == 4326
    assert any("'other.jpg'" in w for w in geo.warnings)
    assert any("export.prj (3857) differs" in w for w in geo.warnings)


def test_image_missing_or_not_an_image(tmp_path):
    with pytest.raises(ImageError):
        read_georeference(tmp_path / "absent.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageError, match=r"text\.png"):
        read_georeference(tmp_path / "text.png")


def test_kml_rotation_and_antimeridian_warn(tmp_path):
    image = _image(tmp_path / "export.png", 100, 100)
    _kml(tmp_path / "export.kml", 179.0, 0.0, -179.0, 2.0, rotation=15)
    geo = read_georeference(image)
    _approx(geo.transform, (0.02, 0, 179.0, 0, -0.02, 2.0))
    assert any("rotation 15" in w for w in geo.warnings)
    assert any("antimeridian" in w for w in geo.warnings)


def test_kml_without_ground_overlay(tmp_path):
    image = _image(tmp_path / "export.png", 10, 10)
    (tmp_path / "export.kml").write_text(
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><Polygon/></Placemark></kml>'
    )
    with pytest.raises(SegError, match="no georeference found") as info:
        read_georeference(image)
    assert "no GroundOverlay" in str(info.value) and "export.pgw" in str(info.value)
    _tile_export(tmp_path)
    geo = read_georeference(image)
    assert any("export.kml ignored" in w for w in geo.warnings)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('<!DOCTYPE kml [<!ENTITY lol "lol">]><kml>&lol;</kml>', "DOCTYPE"),
        ("<kml><GroundOverlay><LatLonBox><north>1</north></LatLonBox></GroundOverlay></kml>", "lacks edges"),
        (
            "<kml><GroundOverlay><LatLonBox><north>x</north><south>0</south><east>1</east><west>0</west>"
            "</LatLonBox></GroundOverlay></kml>",
            "not a number",
        ),
        ("<kml><GroundOverlay>", "malformed"),
    ],
)
def test_hostile_or_malformed_kml(tmp_path, content, message):
    image = _image(tmp_path / "export.png", 4, 4)
    (tmp_path / "export.kml").write_text(content)
    with pytest.raises(FormatError, match=message):
        read_georeference(image)


# --- OziExplorer .map --------------------------------------------------------------------------------------------


def _ozi(path: Path, projection: str, corners: list[tuple[float, float, float, float]], points=None) -> Path:
    lines = [
        "OziExplorer Map Data File Version 2.2",
        "export",
        "export.png",
        "1 ,Map Code,",
        "WGS 84,WGS 84,   0.0000,   0.0000,WGS 84",
        "Reserved 1",
        "Reserved 2",
        "Magnetic Variation,,,E",
        f"Map Projection,{projection},PolyCal,No,AutoCalOnly,No,BSBUseWPX,No",
    ]
    for i, (px, py, lon, lat) in enumerate(points or [], 1):
        lat_h, lon_h = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
        lat_d, lon_d = int(abs(lat)), int(abs(lon))
        lat_m, lon_m = (abs(lat) - lat_d) * 60, (abs(lon) - lon_d) * 60
        lines.append(
            f"Point{i:02d},xy,{px:5d},{py:5d},in, deg,{lat_d:4d},{lat_m:10.6f},{lat_h},"
            f"{lon_d:4d},{lon_m:10.6f},{lon_h}, grid,   ,           ,           ,N"
        )
    lines.append(f"Point{len(points or []) + 1:02d},xy,     ,     ,in, deg,    ,        ,N,    ,        ,E, grid")
    lines.append("Projection Setup,,,,,,,,,,")
    if corners:
        lines += ["MM0,Yes", f"MMPNUM,{len(corners)}"]
        lines += [f"MMPXY,{i},{c[0]},{c[1]}" for i, c in enumerate(corners, 1)]
        lines += [f"MMPLL,{i},{c[2]:.10f},{c[3]:.10f}" for i, c in enumerate(corners, 1)]
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


def _tile_corners(size=256):
    west, south, east, north = tiles.tile_lnglat_bounds(TILE)
    return [(0, 0, west, north), (size, 0, east, north), (size, size, east, south), (0, size, west, south)]


def test_ozi_map_mercator_corners(tmp_path):
    image = _image(tmp_path / "export.png")
    _ozi(tmp_path / "export.map", "Mercator", _tile_corners())
    geo = read_georeference(image)
    b = tiles.tile_bounds(TILE)
    res = (b.right - b.left) / 256
    assert geo.crs == 3857 and geo.source.name == "export.map"
    _approx(geo.transform, (res, 0, b.left, 0, -res, b.top), rel=1e-7, abs_=1e-3)
    assert geo.warnings == ()  # square pixels in 3857, not in 3395


def test_ozi_map_mercator_non_square_pixels_is_ambiguous(tmp_path):
    image = _image(tmp_path / "export.png", 256, 512)
    _ozi(tmp_path / "export.map", "Mercator", [(x, 2 * y, lon, lat) for x, y, lon, lat in _tile_corners()])
    geo = read_georeference(image)
    assert geo.crs == 3857
    assert any("cannot tell" in w for w in geo.warnings)


def test_ozi_map_mercator_points_tell_3395(tmp_path):
    # a Yandex-style export: linear in EPSG:3395 northing; interior points at several latitudes tell it apart
    res, left, top = 500.0, 3_000_000.0, 7_000_000.0
    image = _image(tmp_path / "export.png", 1000, 1000)

    def lat_of(y):  # invert the 3395 northing by bisection
        lo, hi = 0.0, 85.0
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if mercator_3395_y(mid) < y else (lo, mid)
        return lo

    lon_of = lambda x: math.degrees(x / tiles.EARTH_RADIUS)  # noqa: E731
    points = [
        (px, py, lon_of(left + px * res), lat_of(top - py * res))
        for px, py in [(0, 0), (1000, 400), (0, 1000), (700, 700)]
    ]
    _ozi(tmp_path / "export.map", "Mercator", [], points=points)
    geo = read_georeference(image)
    assert geo.crs == 3395
    _approx(geo.transform, (res, 0, left, 0, -res, top), rel=1e-6, abs_=0.5)


def test_ozi_map_latlon_points(tmp_path):
    image = _image(tmp_path / "export.png", 300, 200)
    points = [(0, 0, -3.5, 40.5), (300, 0, -0.5, 40.5), (300, 200, -0.5, 38.5), (0, 200, -3.5, 38.5)]
    _ozi(tmp_path / "export.map", "Latitude/Longitude", [], points=points)
    geo = read_georeference(image)
    assert geo.crs == 4326
    _approx(geo.transform, (0.01, 0, -3.5, 0, -0.01, 40.5), abs_=1e-9)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: "Not a map\n" + t, "not an OziExplorer"),
        (lambda t: t.replace("Map Projection,Mercator", "Map Projection,Transverse Mercator"), "unsupported .map proj"),
        (lambda t: t.replace("WGS 84,WGS 84", "Pulkovo 1942,WGS 84"), "unsupported .map datum"),
        (lambda t: t.replace("MMPLL,1,", "MMPLL,1,abc"), "malformed calibration"),
        (
            lambda t: "\r\n".join(ln for ln in t.splitlines() if not ln.startswith(("MMPXY,2", "MMPXY,3"))),
            "fewer than 3",
        ),
    ],
)
def test_malformed_ozi_map(tmp_path, mutate, message):
    image = _image(tmp_path / "export.png")
    path = _ozi(tmp_path / "export.map", "Mercator", _tile_corners())
    path.write_text(mutate(path.read_text()))
    with pytest.raises(FormatError, match=message) as info:
        read_georeference(image)
    assert "export.map" in str(info.value)


# --- heuristics --------------------------------------------------------------------------------------------------


def test_3395_label_on_web_mercator_grid_warns(tmp_path):
    image, _ = _tile_export(tmp_path)
    _prj(tmp_path / "export.prj", 3395)
    geo = read_georeference(image)
    assert geo.crs == 3395
    assert any("Web-Mercator XYZ pixel grid of zoom 12" in w and "cannot tell" in w for w in geo.warnings)


def test_no_crs_on_web_mercator_grid_warns(tmp_path):
    image, _ = _tile_export(tmp_path)
    geo = read_georeference(image)
    assert any("no CRS" in w and "zoom 12" in w for w in geo.warnings)


def test_3395_label_contradicted_by_kml(tmp_path):
    image, _ = _tile_export(tmp_path)
    _prj(tmp_path / "export.prj", 3395)
    west, south, east, north = tiles.tile_lnglat_bounds(TILE)
    _kml(tmp_path / "export.kml", west, south, east, north)
    geo = read_georeference(image)
    assert geo.crs == 3395  # reported as labelled, never silently changed
    assert any("almost certainly EPSG:3857" in w for w in geo.warnings)


def test_3857_label_contradicted_by_kml(tmp_path):
    # a genuine EPSG:3395 export (northing from the ellipsoid) mislabelled 3857
    image = _image(tmp_path / "export.png")
    west, south, east, north = tiles.tile_lnglat_bounds(TILE)
    res = (east - west) / 360 * 2 * tiles.ORIGIN_SHIFT / 256
    top = mercator_3395_y(north)
    left = math.radians(west) * tiles.EARTH_RADIUS
    _world(tmp_path / "export.pgw", res, 0, 0, -res, left + res / 2, top - res / 2)
    _prj(tmp_path / "export.prj", 3857)
    _kml(tmp_path / "export.kml", west, south, east, north)
    geo = read_georeference(image)
    assert any("almost certainly EPSG:3395" in w for w in geo.warnings)
    # and labelled correctly, no Mercator warning
    _prj(tmp_path / "export.prj", 3395)
    assert not any("EPSG:3857" in w for w in read_georeference(image).warnings)


def test_geographic_prj_with_metre_numbers_warns(tmp_path):
    image, _ = _tile_export(tmp_path)
    _prj(tmp_path / "export.prj", 4326)
    geo = read_georeference(image)
    assert any("cannot be degrees" in w for w in geo.warnings)


def test_projected_prj_with_degree_numbers_warns(tmp_path):
    image = _image(tmp_path / "d.png", 10, 10)
    _world(tmp_path / "d.pgw", 0.0001, 0, 0, -0.0001, 13.40005, 52.50005)
    _prj(tmp_path / "d.prj", 3857)
    geo = read_georeference(image)
    assert any("look like degrees" in w for w in geo.warnings)


def test_no_georeference_lists_sidecars(tmp_path):
    image = _image(tmp_path / "plain.jpg", 4, 4)
    with pytest.raises(SegError, match="no georeference found") as info:
        read_georeference(image)
    text = str(info.value)
    assert str(image) in text
    for name in ("plain.jgw", "plain.jpgw", "plain.wld", "plain.prj", "plain.jpg.aux.xml", "plain.map", "plain.kml"):
        assert name in text


# --- shared fixtures: the same transform as rasterio ---------------------------------------------------------------


def test_shared_world_files_match_rasterio(shared_fixtures):
    folder = shared_fixtures / "geoextent_worldfiles_kml" / "worldfile"
    images = sorted(p for p in folder.iterdir() if p.suffix in (".png", ".tif"))
    assert images
    for image in images:
        geo = read_georeference(image)
        with rasterio.open(image) as ds:
            assert geo.transform == pytest.approx(tuple(ds.transform)[:6], rel=1e-12, abs=1e-12), image.name
            assert (geo.width, geo.height) == (ds.width, ds.height)
        assert geo.source.suffix in (".pngw", ".tfw")


def test_shared_geotiffs_match_rasterio(shared_fixtures):
    folder = shared_fixtures / "rasterio_geotiff_testdata"
    images = sorted(folder.glob("*.tif"))
    assert len(images) >= 8
    for image in images:
        geo = read_georeference(image)
        with rasterio.open(image) as ds:
            assert geo.transform == tuple(ds.transform)[:6], image.name
            if ds.crs is None:
                assert geo.crs is None
            else:
                assert CRS.from_user_input(geo.crs) == ds.crs, image.name
        assert geo.source == image


def test_shared_kml_polygon_is_not_a_ground_overlay(shared_fixtures):
    kml = shared_fixtures / "geoextent_worldfiles_kml" / "kml" / "aasee.kml"
    with pytest.raises(FormatError, match="no GroundOverlay") as info:
        read_kml_ground_overlay(kml, 100, 100)
    assert "Polygon" in str(info.value) and "aasee.kml" in str(info.value)


def test_shared_prj_reads(shared_fixtures, tmp_path):
    image, _ = _tile_export(tmp_path)
    source = shared_fixtures / "geoextent_worldfiles_kml" / "shapefile" / "gis_osm_buildings_a_free_1.prj"
    (tmp_path / "export.prj").write_bytes(source.read_bytes())
    geo = read_georeference(image)
    assert geo.crs == 4326
    assert any("cannot be degrees" in w for w in geo.warnings)
