"""What the scan learns about one image or mask file, reading as little of it as it can.

Images: the header only (size, band count, dtype), plus a look at the last bytes of PNG and JPEG files so that a
truncated file is caught before training (a file whose ending looks wrong is decoded in full to be sure). Masks: decoded
in full, since their values must be checked.

Each file also gets the reader the input pipeline will use for it: PNG and JPEG files that TensorFlow decodes the way
:func:`seg.train.rasters.read_input` does are decoded inside the ``tf.data`` graph (fast, in parallel); everything else
(GeoTIFFs, WebP, 16-bit or CMYK images, palette or colour-coded masks) is read by seg's Python readers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from seg.dataset.images import MAX_PIXELS, image_size
from seg.errors import ImageError
from seg.formats.masks_read import ClassMap, label_image
from seg.train.rasters import RASTER_SUFFIXES, read_input

#: Image readers: ``graph`` (``tf.io.decode_image`` in the pipeline) or ``python`` (:func:`read_input`).
IMAGE_READERS = ("graph", "python")
#: Mask readers: ``png8`` / ``png16`` (``tf.io.decode_png`` in the pipeline) or ``python`` (:func:`read_label`).
MASK_READERS = ("png8", "png16", "python")

_GRAPH_MODES = {"PNG": {"L", "LA", "RGB", "RGBA", "P"}, "JPEG": {"L", "RGB"}}
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_END = b"\xff\xd9"
#: No colour map: colour masks are refused instead of being mapped (the pipeline reads masks without one).
_NO_COLOURS = ClassMap()


@dataclass(frozen=True)
class ImageHeader:
    """Size, bands and dtype of an image as :func:`read_input` returns it, and the pipeline's reader for it."""

    height: int
    width: int
    bands: int
    dtype: str
    reader: str


def image_header(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> ImageHeader:
    """Read an image's header (and check that PNG and JPEG files are whole).

    Raises:
        ImageError: unreadable, not an image, too large, truncated.
    """
    path = Path(path)
    if path.suffix.lower() in RASTER_SUFFIXES:
        return _raster_header(path, max_pixels)
    from PIL import Image

    width, height = image_size(path, max_pixels)  # the bomb guard and "not an image"
    with Image.open(path) as image:
        mode, kind = image.mode, image.format
    reader = "graph" if mode in _GRAPH_MODES.get(kind or "", ()) else "python"
    if not _looks_whole(path, kind):
        read_input(path, max_pixels)  # decodes it: raises ImageError when it is truncated
        reader = "python"  # Pillow reads it; leave the odd ending out of TensorFlow's way
    return ImageHeader(height, width, 3, "uint8", reader)


def _raster_header(path: Path, max_pixels: int) -> ImageHeader:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as source:
            height, width, dtypes = source.height, source.width, set(source.dtypes)
    except RasterioIOError as e:
        raise ImageError("not a readable raster", path=path, expected="a GeoTIFF") from e
    if width * height > max_pixels:
        raise ImageError(
            "image too large to decode safely (possible decompression bomb)",
            path=path,
            expected=f"at most {max_pixels} pixels",
            actual=f"{width}x{height}",
        )
    if len(dtypes) != 1:
        raise ImageError("bands of different dtypes", path=path, expected="one dtype", actual=sorted(dtypes))
    return ImageHeader(height, width, len(source.dtypes), dtypes.pop(), "python")


def _looks_whole(path: Path, kind: str | None) -> bool:
    """False when a PNG does not end with its IEND chunk or a JPEG has no end-of-image marker near its end."""
    if kind not in ("PNG", "JPEG"):
        return True
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 256))
        tail = handle.read()
    if kind == "PNG":
        return tail.endswith(_PNG_END)
    return _JPEG_END in tail


@dataclass(frozen=True)
class MaskContent:
    """A mask's size, the values present in it (sorted) and the pipeline's reader for it."""

    height: int
    width: int
    values: tuple[int, ...]
    reader: str


def read_mask(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> MaskContent:
    """Decode a mask and list its values.

    Raises:
        ImageError: unreadable, truncated, too large, a JPEG (lossy: its values are not classes), or a colour mask.
    """
    from PIL import Image

    path = Path(path)
    width, height = image_size(path, max_pixels)
    with Image.open(path) as image:
        mode, kind = image.mode, image.format
    if kind == "JPEG":
        raise ImageError("JPEG mask: lossy compression changes class values", path=path, expected="a PNG mask")
    label = label_image(path, _NO_COLOURS)
    found = np.flatnonzero(np.bincount(label.ravel())) if label.dtype.kind == "u" else np.unique(label)
    return MaskContent(height, width, tuple(int(v) for v in found), _mask_reader(kind, mode))


def mask_reader(path: str | os.PathLike[str]) -> str:
    """The pipeline's reader for a mask, from its header."""
    from PIL import Image

    image_size(path)
    with Image.open(path) as image:
        return _mask_reader(image.format, image.mode)


def _mask_reader(kind: str | None, mode: str) -> str:
    if kind == "PNG" and mode == "L":
        return "png8"
    if kind == "PNG" and mode in ("I;16", "I;16B", "I"):
        return "png16"
    return "python"


def read_label(path: str | os.PathLike[str], mask_scale: int = 1) -> npt.NDArray[np.int32]:
    """A mask as (H, W) int32 class indices: greyscale, 16-bit, palette (index = class) or grey saved as RGB, divided
    by ``mask_scale`` (255 for 0/255 binary masks)."""
    label = label_image(Path(path), _NO_COLOURS).astype(np.int32)
    return label // mask_scale if mask_scale != 1 else label
