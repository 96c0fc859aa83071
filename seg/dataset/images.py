"""Reading image sizes and pixels with a decompression-bomb guard."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from seg.errors import ImageError

#: Largest image (in pixels) seg decodes: 2**28 is a 16k x 16k chip, far above any annotation tool's images.
MAX_PIXELS = 2**28

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")


def _open(path: Path, max_pixels: int):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
    except FileNotFoundError as e:
        raise ImageError("image file not found", path=path) from e
    except Image.DecompressionBombError as e:  # Pillow's own guard, above about 179 million pixels
        raise ImageError(
            "image too large to decode safely (possible decompression bomb)",
            path=path,
            expected=f"at most {max_pixels} pixels",
        ) from e
    except (UnidentifiedImageError, OSError) as e:
        raise ImageError("not a readable image", path=path, expected="PNG, JPEG, TIFF, BMP or WebP") from e
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageError(
            "image too large to decode safely (possible decompression bomb)",
            path=path,
            expected=f"at most {max_pixels} pixels",
            actual=f"{width}x{height}",
        )
    return image


def image_size(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Return ``(width, height)`` from the image header without decoding the pixels."""
    with _open(Path(path), max_pixels) as image:
        return image.size


def read_image(
    path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS, mode: str | None = None
) -> npt.NDArray[np.uint8]:
    """Decode an image to an (H, W) or (H, W, C) uint8 array, refusing bombs and truncated files.

    ``mode`` (e.g. ``"RGB"``) converts the pixels (palette indices become their colours); without it, greyscale,
    palette-index and 16-bit images keep their stored values.
    """
    path = Path(path)
    with _open(path, max_pixels) as image:
        try:
            image.load()
        except (OSError, SyntaxError) as e:
            raise ImageError("image is truncated or corrupt", path=path) from e
        if mode is not None and image.mode != mode:
            image = image.convert(mode)
        elif image.mode not in ("L", "RGB", "RGBA", "P", "I;16", "I", "LA"):
            image = image.convert("RGB")
        return np.asarray(image)
