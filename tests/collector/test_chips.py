"""Chips from tile caches: pixels, georeferencing (GeoTIFF, world files), coverage, outputs, the CLI, the real cache."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import Affine

from seg.cli_collect import collect
from seg.collector import chips
from seg.collector.cache import open_cache
from seg.collector.chips import make_chips
from seg.collector.georef_sidecars import world_file_lines
from seg.collector.tiles import Tile
from seg.dataset.store import load_dataset
from seg.errors import OptionError, OutputExistsError, SegError
from seg.sample.tiles import write_missing_marker, write_native_tile

ZOOM = 3
XS, YS = range(2, 5), range(1, 4)
ABSENT = Tile(4, 3, ZOOM)
TNE = Tile(2, 3, ZOOM)
HALF_WORLD = math.pi * 6378137.0


def tile_pixels(tile: Tile) -> np.ndarray:
    """A gradient unique to each tile: red = column, green = row, blue = tile number."""
    col, row = np.meshgrid(np.arange(256), np.arange(256))
    blue = np.full((256, 256), 10 * tile.x + tile.y + 1)
    return np.stack([col, row, blue], axis=-1).astype(np.uint8)


def encode(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    root = tmp_path / "cache"
    for x in XS:
        for y in YS:
            tile = Tile(x, y, ZOOM)
            if tile == TNE:
                write_missing_marker(root / "sat", tile)
            elif tile != ABSENT:
                write_native_tile(root / "sat", tile, encode(tile_pixels(tile)), ".png")
    return root


def mosaic() -> np.ndarray:
    """The expected mosaic of the whole data window (tiles XS x YS), zeros where no tile is."""
    out = np.zeros((256 * len(YS), 256 * len(XS), 3), dtype=np.uint8)
    for i, y in enumerate(YS):
        for j, x in enumerate(XS):
            tile = Tile(x, y, ZOOM)
            if tile not in (ABSENT, TNE):
                out[256 * i : 256 * (i + 1), 256 * j : 256 * (j + 1)] = tile_pixels(tile)
    return out


def expected_chip(px: int, py: int, chip: int) -> tuple[np.ndarray, float]:
    """The chip at global pixel (px, py) cut from :func:`mosaic` (zero padded), and its coverage."""
    full = mosaic()
    covered = np.zeros(full.shape[:2], dtype=bool)
    for i, y in enumerate(YS):
        for j, x in enumerate(XS):
            covered[256 * i : 256 * (i + 1), 256 * j : 256 * (j + 1)] = Tile(x, y, ZOOM) not in (ABSENT, TNE)
    x0, y0 = px - XS[0] * 256, py - YS[0] * 256
    out = np.zeros((chip, chip, 3), dtype=np.uint8)
    part = full[y0 : y0 + chip, x0 : x0 + chip]
    out[: part.shape[0], : part.shape[1]] = part
    return out, covered[y0 : y0 + chip, x0 : x0 + chip].sum() / chip**2


def xyz_corner(px: float, py: float, z: int) -> tuple[float, float]:
    """Independent XYZ formula: metres of global pixel (px, py)."""
    size = 2 * HALF_WORLD / 2**z / 256
    return -HALF_WORLD + px * size, HALF_WORLD - py * size


def chip_origin(row: dict, chip: int, overlap: int, origin: tuple[int, int]) -> tuple[int, int]:
    c, r = (int(v) for v in row["image_id"].rsplit("_", 2)[1:])
    return origin[0] + c * (chip - overlap), origin[1] + r * (chip - overlap)


@pytest.mark.parametrize(("chip", "overlap"), [(256, 0), (512, 0), (256, 100), (512, 128)])
def test_tif_chips_pixels_and_transform(cache_root: Path, tmp_path: Path, chip: int, overlap: int) -> None:
    report: dict = {}
    ds = make_chips(
        open_cache(cache_root), "sat", ZOOM, tmp_path / "out", chip=chip, overlap=overlap, min_coverage=0, report=report
    )
    origin = (XS[0] * 256, YS[0] * 256)
    step = chip - overlap
    span = 256 * len(XS)
    count = math.ceil(max(span - chip, 0) / step) + 1
    assert report["columns"] == report["rows"] == count
    assert report["written"] + report["skipped"] == count * count == len(ds) + report["skipped"]
    assert len(ds) > 0
    res = 2 * HALF_WORLD / 2**ZOOM / 256
    for row in ds.images.to_dict("records"):
        px, py = chip_origin(row, chip, overlap, origin)
        pixels, coverage = expected_chip(px, py, chip)
        assert row["coverage"] == pytest.approx(coverage)
        with rasterio.open(tmp_path / "out" / row["file_name"]) as src:
            assert src.crs == CRS.from_epsg(3857)
            got = np.moveaxis(src.read(), 0, 2)
            left, top = xyz_corner(px, py, ZOOM)
            right, bottom = xyz_corner(px + chip, py + chip, ZOOM)
            assert src.transform.a == pytest.approx(res) and src.transform.e == pytest.approx(-res)
            assert abs(src.transform.c - left) < 1 and abs(src.transform.f - top) < 1
            for a, b in zip(src.bounds, (left, bottom, right, top), strict=True):
                assert abs(a - b) < 1
        np.testing.assert_array_equal(got, pixels)
        for a, b in zip(
            (row["west"], row["south"], row["east"], row["north"]), (left, bottom, right, top), strict=True
        ):
            assert abs(a - b) < 1
        assert row["crs"] == "EPSG:3857" and row["map"] == "sat" and row["zoom"] == ZOOM
        assert row["width"] == row["height"] == chip


def test_png_world_file_and_prj(cache_root: Path, tmp_path: Path) -> None:
    ds = make_chips(open_cache(cache_root), "sat", ZOOM, tmp_path / "out", chip=256, fmt="png")
    assert len(ds) == 7  # nine tiles, one absent, one .tne
    res = 2 * HALF_WORLD / 2**ZOOM / 256
    for row in ds.images.to_dict("records"):
        path = tmp_path / "out" / row["file_name"]
        px, py = chip_origin(row, 256, 0, (512, 256))
        left, top = xyz_corner(px, py, ZOOM)
        lines = [float(v) for v in path.with_suffix(".pgw").read_text().split()]
        assert lines[:4] == pytest.approx([res, 0, 0, -res])
        assert abs(lines[4] - (left + res / 2)) < 1e-6 and abs(lines[5] - (top - res / 2)) < 1e-6
        assert CRS.from_wkt(path.with_suffix(".prj").read_text()) == CRS.from_epsg(3857)
        with rasterio.open(path) as src:  # GDAL turns the world file's pixel-centre origin into the corner
            assert abs(src.transform.c - left) < 1e-6 and abs(src.transform.f - top) < 1e-6
            np.testing.assert_array_equal(np.moveaxis(src.read(), 0, 2), expected_chip(px, py, 256)[0])


def test_jpg_chips_have_jgw(cache_root: Path, tmp_path: Path) -> None:
    ds = make_chips(open_cache(cache_root), "sat", ZOOM, tmp_path / "out", chip=256, fmt="jpg")
    path = tmp_path / "out" / ds.images["file_name"].iloc[0]
    assert path.suffix == ".jpg" and path.with_suffix(".jgw").is_file() and path.with_suffix(".prj").is_file()
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (256, 256)


def test_world_file_origin_is_pixel_centre() -> None:
    assert [float(v) for v in world_file_lines(Affine(2.0, 0.0, 100.0, 0.0, -2.0, 200.0)).split()] == [
        2.0,
        0.0,
        0.0,
        -2.0,
        101.0,
        199.0,
    ]


def test_min_coverage_skips(cache_root: Path, tmp_path: Path) -> None:
    cache = open_cache(cache_root)
    report: dict = {}
    ds = make_chips(cache, "sat", ZOOM, tmp_path / "a", chip=512, min_coverage=0.5, report=report)
    # chips at (512,256) full, (1024,256) 1/2, (512,768) 1/4 (tne), (1024,768) 0
    assert sorted(ds.images["coverage"]) == [0.5, 1.0]
    assert report["written"] == 2 and report["skipped"] == 2
    ds = make_chips(cache, "sat", ZOOM, tmp_path / "b", chip=512, min_coverage=0.0)
    assert sorted(ds.images["coverage"]) == [0.25, 0.5, 1.0]  # a chip with no tile at all is never written
    assert sorted(ds.images["tiles"]) == [1, 2, 4]


def test_dataset_saved_with_provenance(cache_root: Path, tmp_path: Path) -> None:
    ds = make_chips(open_cache(cache_root), "sat", ZOOM, tmp_path / "out", chip=256)
    saved = load_dataset(tmp_path / "out" / "dataset")
    assert saved.equals(ds) and saved.objects.empty and saved.categories == []
    assert {"map", "zoom", "crs", "west", "south", "east", "north", "tiles", "coverage", "source"} <= set(
        saved.images.columns
    )
    assert set(saved.images["source"]) == {str(cache_root.resolve())}
    assert all(p is not None and p.is_file() for p in saved.image_paths())


def test_bbox_selects_chips(cache_root: Path, tmp_path: Path) -> None:
    # lon -40..-5, lat 5..40 at zoom 3 (2048 px world): x 796.4..1024, y 775.7..995.6 (Mercator)
    ds = make_chips(open_cache(cache_root), "sat", ZOOM, tmp_path / "out", bbox=(-40, 5, -5, 40), chip=256)
    px = math.floor((-40 + 180) / 360 * 2048)
    py = math.floor((1 - math.log(math.tan(math.pi / 4 + math.radians(40) / 2)) / math.pi) / 2 * 2048)
    assert (px, py) == (796, 775)
    assert list(ds.images["image_id"]) == ["sat_z3_0_0"]  # 228 x 221 px: one chip
    for row in ds.images.to_dict("records"):
        x, y = chip_origin(row, 256, 0, (px, py))
        pixels, coverage = expected_chip(x, y, 256)
        with rasterio.open(tmp_path / "out" / row["file_name"]) as src:
            np.testing.assert_array_equal(np.moveaxis(src.read(), 0, 2), pixels)
        assert row["coverage"] == pytest.approx(coverage)
        left, top = xyz_corner(x, y, ZOOM)
        assert abs(row["west"] - left) < 1 and abs(row["north"] - top) < 1


def test_existing_output_untouched(cache_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        make_chips(open_cache(cache_root), "sat", ZOOM, out, chip=256)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    make_chips(open_cache(cache_root), "sat", ZOOM, out, chip=256, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "images").is_dir()


def test_bad_arguments(cache_root: Path, tmp_path: Path) -> None:
    cache = open_cache(cache_root)
    with pytest.raises(SegError, match="no map 'nope'") as info:
        make_chips(cache, "nope", ZOOM, tmp_path / "o")
    assert "sat" in str(info.value)
    with pytest.raises(SegError, match="no tiles at zoom 5"):
        make_chips(cache, "sat", 5, tmp_path / "o")
    for kwargs in ({"overlap": 512}, {"chip": 0}, {"fmt": "gif"}, {"min_coverage": 2}, {"bbox": (10, 0, 5, 1)}):
        with pytest.raises(OptionError):
            make_chips(cache, "sat", ZOOM, tmp_path / "o", **kwargs)
    assert not (tmp_path / "o").exists()


def test_broken_tile_is_left_out(cache_root: Path, tmp_path: Path) -> None:
    write_native_tile(cache_root / "sat", Tile(4, 3, ZOOM), b"\x89PNG\r\n\x1a\nnot really", ".png")
    report: dict = {}
    ds = make_chips(open_cache(cache_root), "sat", ZOOM, tmp_path / "out", chip=256, report=report)
    assert len(ds) == 7 and report["bad_tiles"] == 1


def test_cli(cache_root: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["sasplanet", str(cache_root), "--map", "sat", "--zoom", str(ZOOM), "--chip", "256", "--out", str(out)]
    result = runner.invoke(collect, [*args, "--format", "png"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["written"] == 7 and report["skipped"] == 2 and report["out"] == str(out)
    assert runner.invoke(collect, args).exit_code == 1  # exists, no --overwrite
    assert runner.invoke(collect, [*args, "--overwrite", "--layout", "sas"]).exit_code == 0
    bad_map = runner.invoke(collect, [*args[:3], "nope", *args[4:], "--overwrite"])
    assert bad_map.exit_code == 1 and "sat" in bad_map.output
    for bbox in ("1,2,3", "a,b,c,d", "10,0,5,1", "0,0,1,100"):
        result = runner.invoke(collect, [*args, "--overwrite", "--bbox", bbox])
        assert result.exit_code == 2 and "bbox" in result.output.lower()
    assert runner.invoke(collect, [*args, "--overwrite", "--overlap", "256"]).exit_code == 2
    assert runner.invoke(collect, [*args, "--overwrite", "--layout", "weird"]).exit_code == 2
    assert "0-based" in runner.invoke(collect, ["sasplanet", "--help"]).output


def test_real_cache_bounds(shared_fixtures: Path, tmp_path: Path) -> None:
    cache = open_cache(shared_fixtures / "sasplanet_native_tile_cache" / "cache")
    ds = make_chips(cache, "sat", 2, tmp_path / "out", chip=256)
    assert len(ds) > 0
    for row in ds.images.to_dict("records"):
        c, r = (int(v) for v in row["image_id"].rsplit("_", 2)[1:])
        with rasterio.open(tmp_path / "out" / row["file_name"]) as src:
            bounds = src.bounds
        left, top = xyz_corner(256 * c, 256 * r, 2)
        right, bottom = xyz_corner(256 * (c + 1), 256 * (r + 1), 2)
        for a, b in zip(bounds, (left, bottom, right, top), strict=True):
            assert abs(a - b) < 1
    # rows 0-1 end at the equator, rows 2-3 start there
    equator = [row for row in ds.images.to_dict("records") if row["image_id"].endswith("_2")]
    assert equator and all(abs(row["north"]) < 1 for row in equator)


@pytest.mark.parametrize(("chip", "overlap"), [(256, 100), (300, 0), (512, 300)])
def test_tiles_read_once_and_one_row_held(
    cache_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chip: int, overlap: int
) -> None:
    cache = open_cache(cache_root)
    reads: list[Tile] = []
    original = cache.read

    def counting(map_name: str, tile: Tile) -> bytes | None:
        reads.append(tile)
        return original(map_name, tile)

    held: list[int] = []
    get = chips._TileRows.get

    def watching(self: chips._TileRows, x: int, y: int) -> np.ndarray | None:
        held.append(len(self.held))
        return get(self, x, y)

    monkeypatch.setattr(cache, "read", counting)
    monkeypatch.setattr(chips._TileRows, "get", watching)
    make_chips(cache, "sat", ZOOM, tmp_path / "out", chip=chip, overlap=overlap, min_coverage=0)
    assert len(reads) == len(set(reads))
    tile_rows_per_chip_row = (chip - 1) // 256 + 2
    assert max(held) <= tile_rows_per_chip_row * (len(XS) + 1)


def test_world_bbox_reads_only_near_tiles(cache_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = open_cache(cache_root)
    reads: list[Tile] = []
    original = cache.read
    monkeypatch.setattr(cache, "read", lambda m, t: reads.append(t) or original(m, t))
    report: dict = {}
    ds = make_chips(cache, "sat", ZOOM, tmp_path / "out", bbox=(-180, -90, 180, 90), chip=256, report=report)
    assert report["columns"] == report["rows"] == 8
    assert len(ds) == 7 and report["skipped"] == 64 - 7
    assert {(t.x, t.y) for t in reads} == {(x, y) for x in XS for y in YS}
    assert set(ds.images["image_id"]) == {f"sat_z3_{x}_{y}" for x in XS for y in YS} - {"sat_z3_4_3", "sat_z3_2_3"}


def test_odd_sized_tile_is_left_out(cache_root: Path, tmp_path: Path) -> None:
    write_native_tile(cache_root / "sat", ABSENT, encode(np.zeros((300, 300, 3), np.uint8)), ".png")
    report: dict = {}
    ds = make_chips(open_cache(cache_root), "sat", ZOOM, tmp_path / "out", chip=256, report=report)
    assert len(ds) == 7 and report["bad_tiles"] == 1
