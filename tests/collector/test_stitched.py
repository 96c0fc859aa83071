"""Chips from one stitched, georeferenced image: pixels, transforms, world files, coverage, outputs, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import Affine

from seg.cli_collect import collect
from seg.collector.georef_sidecars import read_world_file, world_file_lines
from seg.collector.stitched import make_stitched_chips
from seg.dataset.store import load_dataset
from seg.errors import ImageError, OptionError, OutputExistsError, SegError

WIDTH, HEIGHT = 70, 45  # not multiples of the chip
CHIP = 32
# a rotated transform, so that rotation terms are checked too
PNG_TRANSFORM = (2.0, 0.5, 500000.0, 0.25, -2.0, 6600000.0)
TIF_TRANSFORM = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0)


def source_pixels(bands: int) -> np.ndarray:
    """(bands, HEIGHT, WIDTH) uint8, unique-ish per pixel; the last band (alpha) is 0 on the right 10 columns."""
    row, col = np.meshgrid(np.arange(HEIGHT), np.arange(WIDTH), indexing="ij")
    layers = [col * 3 % 256, row * 5 % 256, (row * WIDTH + col) % 251]
    alpha = np.full((HEIGHT, WIDTH), 255)
    alpha[:, WIDTH - 10 :] = 0
    return np.stack([*layers, alpha][:bands]).astype(np.uint8)


def world_file(t: tuple[float, ...]) -> str:
    """Written independently of the code under test: A, D, B, E and the centre of the top-left pixel."""
    a, b, c, d, e, f = t
    return f"{a}\n{d}\n{b}\n{e}\n{c + a / 2 + b / 2}\n{f + d / 2 + e / 2}\n"


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "combined.png"
    path.parent.mkdir()
    Image.fromarray(np.moveaxis(source_pixels(4), 0, 2), "RGBA").save(path)
    path.with_suffix(".pgw").write_text(world_file(PNG_TRANSFORM))
    path.with_suffix(".prj").write_text(CRS.from_epsg(32635).to_wkt())
    return path


@pytest.fixture
def tif(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "combined.tif"
    path.parent.mkdir(exist_ok=True)
    profile = {
        "driver": "GTiff",
        "width": WIDTH,
        "height": HEIGHT,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": TIF_TRANSFORM,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(source_pixels(3))
    return path


def padded_window(pixels: np.ndarray, col: int, row: int) -> np.ndarray:
    out = np.zeros((pixels.shape[0], CHIP, CHIP), dtype=pixels.dtype)
    part = pixels[:, row : row + CHIP, col : col + CHIP]
    out[:, : part.shape[1], : part.shape[2]] = part
    return out


def shifted(t: tuple[float, ...], col: int, row: int) -> tuple[float, ...]:
    """The transform of a window, computed by hand: the corner moves by col * (a, d) + row * (b, e)."""
    a, b, c, d, e, f = t
    return (a, b, c + a * col + b * row, d, e, f + d * col + e * row)


def test_png_chips_pixels_world_files_and_coverage(png: Path, tmp_path: Path) -> None:
    out = tmp_path / "chips"
    report: dict = {}
    ds = make_stitched_chips(png, out, chip=CHIP, overlap=8, fmt="png", min_coverage=0.0, report=report)
    pixels = source_pixels(4)
    starts_x, starts_y = [0, 24, 48], [0, 24]
    assert report["columns"] == 3 and report["rows"] == 2 and report["crs"] == "EPSG:32635"
    assert report["written"] + report["skipped"] == 6
    assert set(ds.images.image_id) == {f"combined_{c}_{r}" for c in range(3) for r in range(2)}
    for c, col in enumerate(starts_x):
        for r, row in enumerate(starts_y):
            path = out / "images" / f"combined_{c}_{r}.png"
            with Image.open(path) as image:
                assert image.mode == "RGBA"
                np.testing.assert_array_equal(np.moveaxis(np.asarray(image), 2, 0), padded_window(pixels, col, row))
            expected = shifted(PNG_TRANSFORM, col, row)
            np.testing.assert_allclose(read_world_file(path.with_suffix(".pgw")), expected, rtol=0, atol=1e-6)
            lines = [float(v) for v in path.with_suffix(".pgw").read_text().split()]
            a, b, c0, d, e, f0 = expected
            assert lines[4] == pytest.approx(c0 + a / 2 + b / 2) and lines[5] == pytest.approx(f0 + d / 2 + e / 2)
            assert CRS.from_wkt(path.with_suffix(".prj").read_text()) == CRS.from_epsg(32635)
            valid = padded_window(pixels, col, row)[3] != 0
            row_data = ds.images.set_index("image_id").loc[f"combined_{c}_{r}"]
            assert row_data.coverage == pytest.approx(valid.sum() / CHIP**2)
            assert (row_data.col_off, row_data.row_off) == (col, row)
            assert row_data.crs == "EPSG:32635" and row_data.source == str(png)
            corners = [Affine(*expected) @ p for p in ((0, 0), (CHIP, 0), (0, CHIP), (CHIP, CHIP))]
            assert row_data.west == pytest.approx(min(x for x, _ in corners))
            assert row_data.north == pytest.approx(max(y for _, y in corners))
    # edge chip: columns 48..69 inside, of which 60..69 transparent; rows 24..44 inside
    edge = ds.images.set_index("image_id").loc["combined_2_1"]
    assert edge.coverage == pytest.approx((60 - 48) * (45 - 24) / CHIP**2)
    assert load_dataset(out / "dataset").equals(ds)
    assert not list(png.parent.glob("*.aux.xml"))


def test_tif_chips_pixels_and_transforms(tif: Path, tmp_path: Path) -> None:
    out = tmp_path / "chips"
    ds = make_stitched_chips(tif, out, chip=CHIP, min_coverage=0.0)
    pixels = source_pixels(3)
    assert len(ds.images) == 3 * 2
    for c, col in enumerate([0, 32, 64]):
        for r, row in enumerate([0, 32]):
            with rasterio.open(out / "images" / f"combined_{c}_{r}.tif") as chip:
                np.testing.assert_array_equal(chip.read(), padded_window(pixels, col, row))
                assert tuple(chip.transform)[:6] == pytest.approx(shifted(tuple(TIF_TRANSFORM)[:6], col, row))
                assert chip.crs == CRS.from_epsg(32633)
    corner = ds.images.set_index("image_id").loc["combined_2_1"]
    assert corner.coverage == pytest.approx((70 - 64) * (45 - 32) / CHIP**2)
    assert (corner.west, corner.north) == pytest.approx((300000 + 640, 5000000 - 320))


def test_min_coverage_skips_edge_chips(png: Path, tmp_path: Path) -> None:
    report: dict = {}
    ds = make_stitched_chips(png, tmp_path / "chips", chip=CHIP, fmt="png", min_coverage=0.5, report=report)
    assert all(ds.images.coverage >= 0.5)
    # columns 0, 32 (64 is transparent or outside) x row 0 (row 32 has 13 rows inside: < 0.5)
    assert set(ds.images.image_id) == {"combined_0_0", "combined_1_0"}
    assert report["skipped"] == 4
    assert sorted(p.name for p in (tmp_path / "chips" / "images").iterdir()) == sorted(
        f"combined_{c}_0{ext}" for c in (0, 1) for ext in (".png", ".pgw", ".prj")
    )


def test_jpg_drops_alpha(png: Path, tmp_path: Path) -> None:
    make_stitched_chips(png, tmp_path / "chips", chip=CHIP, fmt="jpg", min_coverage=0.0)
    with Image.open(tmp_path / "chips" / "images" / "combined_0_0.jpg") as image:
        assert image.mode == "RGB" and image.size == (CHIP, CHIP)
    assert (tmp_path / "chips" / "images" / "combined_0_0.jgw").exists()


def test_existing_output_untouched(tif: Path, tmp_path: Path) -> None:
    out = tmp_path / "chips"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        make_stitched_chips(tif, out, chip=CHIP)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    make_stitched_chips(tif, out, chip=CHIP, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "dataset").is_dir()


def test_bad_options_and_no_georeference(tif: Path, tmp_path: Path) -> None:
    for kwargs in ({"chip": 0}, {"chip": CHIP, "overlap": CHIP}, {"fmt": "bmp"}, {"min_coverage": 1.5}):
        with pytest.raises(OptionError):
            make_stitched_chips(tif, tmp_path / "x", **kwargs)
    bare = tmp_path / "bare.png"
    Image.new("RGB", (10, 10)).save(bare)
    with pytest.raises(SegError, match="no georeference"):
        make_stitched_chips(bare, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_world_file_lines_rotation() -> None:
    t = Affine(*PNG_TRANSFORM)
    values = [float(v) for v in world_file_lines(t).split()]
    assert values == pytest.approx([2.0, 0.25, 0.5, -2.0, 500000.0 + 1.0 + 0.25, 6600000.0 + 0.125 - 1.0])


def test_cli(png: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "chips"
    args = ["stitched", str(png), "--chip", str(CHIP), "--format", "png", "-o", str(out)]
    result = runner.invoke(collect, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == 2
    assert runner.invoke(collect, args).exit_code == 1  # exists, no --overwrite
    assert runner.invoke(collect, [*args, "--overwrite", "--overlap", str(CHIP)]).exit_code == 2
    assert runner.invoke(collect, [*args, "--overwrite", "--format", "bmp"]).exit_code == 2
    assert runner.invoke(collect, [*args, "--overwrite", "--min-coverage", "2"]).exit_code == 2
    bare = tmp_path / "bare.png"
    Image.new("RGB", (10, 10)).save(bare)
    result = runner.invoke(collect, ["stitched", str(bare), "-o", str(tmp_path / "y")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seg: error:") and "no georeference" in lines[0]


def test_conformance_world_file_png(shared_fixtures: Path, tmp_path: Path) -> None:
    folder = shared_fixtures / "geoextent_worldfiles_kml" / "worldfile"
    if not folder.is_dir():
        pytest.skip("geoextent_worldfiles_kml fixture absent")
    image = folder / "test_with_world.png"
    with rasterio.open(image) as src:  # rasterio's own reading of the world file
        reference, width, height = src.transform, src.width, src.height
        pixels = src.read()
    out = tmp_path / "chips"
    ds = make_stitched_chips(image, out, chip=512, overlap=64, fmt="tif", min_coverage=0.0)
    assert len(ds.images) == 4 * 2 and (width, height) == (1477, 768)  # starts 0, 448, 896, 1344 x 0, 448
    for _, row in ds.images.iterrows():
        with rasterio.open(out / row.file_name) as chip:
            expected = reference @ Affine.translation(row.col_off, row.row_off)
            assert tuple(chip.transform)[:6] == pytest.approx(tuple(expected)[:6], rel=1e-12)
            part = pixels[:, row.row_off : row.row_off + 512, row.col_off : row.col_off + 512]
            np.testing.assert_array_equal(chip.read()[:, : part.shape[1], : part.shape[2]], part)
    assert not list(folder.glob("*.aux.xml"))


def test_nodata_lowers_coverage_and_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "dem.tif"
    values = np.arange(WIDTH * HEIGHT, dtype=np.float32).reshape(1, HEIGHT, WIDTH)
    values[:, :, :16] = -9999
    profile = {"driver": "GTiff", "width": WIDTH, "height": HEIGHT, "count": 1, "dtype": "float32"}
    with rasterio.open(
        path, "w", **profile, crs="EPSG:4326", transform=Affine(0.1, 0, 10, 0, -0.1, 50), nodata=-9999
    ) as d:
        d.write(values)
    report: dict = {}
    ds = make_stitched_chips(path, tmp_path / "chips", chip=CHIP, min_coverage=0.0, report=report)
    first = ds.images.set_index("image_id").loc["dem_0_0"]
    assert first.coverage == pytest.approx((CHIP - 16) / CHIP) and report["warnings"] == []
    with rasterio.open(tmp_path / "chips" / "images" / "dem_0_0.tif") as chip:
        assert chip.nodata == -9999 and chip.dtypes[0] == "float32"
        np.testing.assert_array_equal(chip.read(), values[:, :CHIP, :CHIP])
    with pytest.raises(OptionError, match="8-bit"):
        make_stitched_chips(path, tmp_path / "png", chip=CHIP, fmt="png")
    assert not (tmp_path / "png").exists()


def test_report_keeps_georeference_warnings(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(path)
    path.with_suffix(".pgw").write_text(world_file((1.0, 0.0, 0.0, 0.0, -1.0, 20.0)))
    report: dict = {}
    ds = make_stitched_chips(path, tmp_path / "chips", chip=CHIP, fmt="png", min_coverage=0.0, report=report)
    assert report["crs"] is None and any("no CRS" in w for w in report["warnings"])
    assert ds.images.crs.isna().all()
    assert not (tmp_path / "chips" / "images" / "plain_0_0.prj").exists()


@pytest.mark.parametrize("width, height", [(600_000, 16), (140_000, 140_000)])
def test_bomb_sized_image_is_refused_before_reading(tmp_path: Path, width: int, height: int) -> None:
    path = tmp_path / "bomb.tif"
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint8", "crs": "EPSG:3857"}
    profile |= {"transform": Affine(0.5, 0, 0, 0, -0.5, 0), "tiled": True, "compress": "deflate", "sparse_ok": True}
    with rasterio.open(path, "w", **profile):
        pass  # no block written: a tile index of a few megabytes that declares billions of pixels
    assert path.stat().st_size < 2**22
    with pytest.raises(ImageError, match=r"bomb\.tif: image too large to cut safely .*got \d+x\d+\)$"):
        make_stitched_chips(path, tmp_path / "out", chip=512)
    assert not (tmp_path / "out").exists()
