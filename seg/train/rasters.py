"""Reading training and prediction inputs as (H, W, bands) arrays: RGB through Pillow, GeoTIFF through rasterio.

Both refuse decompression bombs (:data:`seg.dataset.images.MAX_PIXELS`) before decoding a pixel.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from seg.dataset.images import MAX_PIXELS, read_image
from seg.errors import ImageError

RASTER_SUFFIXES = (".tif", ".tiff")


def read_raster(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> npt.NDArray:
    """All bands of a GeoTIFF as (H, W, bands) in their stored dtype."""
    import rasterio
    from rasterio.errors import RasterioIOError

    path = Path(path)
    try:
        with rasterio.open(path) as source:
            if source.width * source.height > max_pixels:
                raise ImageError(
                    "image too large to decode safely (possible decompression bomb)",
                    path=path,
                    expected=f"at most {max_pixels} pixels",
                    actual=f"{source.width}x{source.height}",
                )
            data = source.read()
    except RasterioIOError as e:
        raise ImageError("not a readable raster", path=path, expected="a GeoTIFF") from e
    return np.moveaxis(data, 0, -1)


def read_input(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> npt.NDArray:
    """An image as (H, W, bands): TIFFs with rasterio (any band count and dtype), the rest as 8-bit RGB.

    Greyscale and palette images become their RGB colours and alpha is dropped, so that photographs of any mode feed
    one RGB model.
    """
    path = Path(path)
    if path.suffix.lower() in RASTER_SUFFIXES:
        return read_raster(path, max_pixels)
    return read_image(path, max_pixels, mode="RGB")
