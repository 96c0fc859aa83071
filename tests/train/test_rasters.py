"""``read_input``: every image as (H, W, bands), GeoTIFFs with all their bands, and refusals of broken and hostile
files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from seg.errors import ImageError
from seg.train.rasters import read_input


def geotiff(path: Path, bands: np.ndarray) -> Path:
    height, width, count = bands.shape
    profile = {"driver": "GTiff", "height": height, "width": width, "count": count, "dtype": bands.dtype.name}
    profile.update(crs="EPSG:3857", transform=from_origin(-1_900_000, 1_600_000, 0.6, 0.6))
    with rasterio.open(path, "w", **profile) as out:
        out.write(np.moveaxis(bands, -1, 0))
    return path


def test_geotiff_keeps_every_band_and_its_dtype(tmp_path):
    bands = np.random.default_rng(0).integers(0, 60000, (20, 30, 7)).astype(np.uint16)
    pixels = read_input(geotiff(tmp_path / "a.tif", bands))
    assert pixels.dtype == np.uint16 and pixels.shape == (20, 30, 7)
    np.testing.assert_array_equal(pixels, bands)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "RGB"])
def test_every_pillow_mode_becomes_its_rgb_colours(tmp_path, mode):
    rgb = np.random.default_rng(1).integers(0, 255, (8, 12, 3)).astype(np.uint8)
    source = Image.fromarray(rgb)
    image = source.quantize(16) if mode == "P" else source.convert(mode)
    image.save(tmp_path / "x.png")
    pixels = read_input(tmp_path / "x.png")
    assert pixels.shape == (8, 12, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, np.asarray(image.convert("RGB")))


def test_truncated_and_fake_images_are_refused_by_name(tmp_path):
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "text.tif").write_text("not a raster")
    for name in ("cut.png", "text.png", "text.tif"):
        with pytest.raises(ImageError) as error:
            read_input(tmp_path / name)
        assert error.value.path == str(tmp_path / name)


def test_bombs_are_refused_before_decoding(tmp_path):
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "a.png")
    path = geotiff(tmp_path / "a.tif", np.zeros((40, 40, 2), np.uint8))
    for file in (tmp_path / "a.png", path):
        with pytest.raises(ImageError, match="decompression bomb"):
            read_input(file, max_pixels=1000)
