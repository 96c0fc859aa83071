"""normalization_for / band_statistics: ImageNet for 8-bit RGB, measured per-band statistics otherwise."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from seg.errors import ValidationError
from seg.train.data import band_statistics, normalization_for, scan_folder
from seg.train.rasters import read_input
from seg.train.spec import Normalization
from tests.train.folders import write_mask_folder


def test_rgb_uint8_uses_imagenet(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=2, test=1))
    assert normalization_for(scan) == Normalization.imagenet()


def test_multiband_statistics_match_numpy_over_all_training_pixels(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=5, test=2, geotiff_bands=5))
    normalization = normalization_for(scan)
    pixels = np.concatenate([read_input(s.image).reshape(-1, 5) for s in scan.train]).astype(np.float64)
    assert normalization.scale == 1.0
    np.testing.assert_allclose(normalization.mean, pixels.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(normalization.std, pixels.std(axis=0), rtol=1e-10)
    test_pixels = np.concatenate([read_input(s.image).reshape(-1, 5) for s in scan.test]).astype(np.float64)
    assert not np.allclose(normalization.mean, test_pixels.mean(axis=0), rtol=1e-6)  # training images only


def test_constant_band_gets_unit_std(tmp_path: Path) -> None:
    import rasterio

    root = tmp_path / "d"
    write_mask_folder(root, train=2, test=0, geotiff_bands=4)
    for sample in scan_folder(root).train:
        with rasterio.open(sample.image, "r+") as raster:
            raster.write(np.full((64, 64), 7, np.uint16), 4)
    normalization = band_statistics(scan_folder(root).train, 4)
    assert normalization.mean[3] == 7.0 and normalization.std[3] == 1.0
    assert min(normalization.std[:3]) > 10


def test_wrong_band_count_and_no_samples(tmp_path: Path) -> None:
    scan = scan_folder(write_mask_folder(tmp_path / "d", train=2, test=0, geotiff_bands=5))
    with pytest.raises(ValidationError) as error:
        band_statistics(scan.train, 4)
    assert error.value.path == str(scan.train[0].image)
    with pytest.raises(ValidationError):
        band_statistics([], 3)
    assert normalization_for(replace(scan, dtype="uint8", bands=5)).scale == 1.0
