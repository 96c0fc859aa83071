"""Is a downloaded body a real, whole image? Decode it with Pillow and describe it.

Only JPEG, PNG, GIF, WebP, BMP and TIFF are opened (other Pillow plugins are never tried on downloaded bytes), the
declared size is checked against :data:`seg.dataset.images.MAX_PIXELS` before decoding (and Pillow's own bomb guard
applies), PNG checksums are verified, and the whole image is decoded so that a truncated file is caught (JPEGs at 1/8
scale or less, which still reads every byte of their scans). What the server said the content type was does not matter.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from seg.collector.download import DownloadError
from seg.collector.image_hash import phash
from seg.dataset.images import MAX_PIXELS

#: Pillow format -> file extension of the kept file. MPO is the multi-picture JPEG that many cameras write.
EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")


@dataclass(frozen=True)
class ImageInfo:
    """What a verified image is: its format (``jpg``...), size, SHA-256 (hex) and perceptual hash."""

    format: str
    width: int
    height: int
    sha256: str
    phash: int


def inspect_image(data: bytes, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Verify that ``data`` is a whole image of a kept format and describe it.

    Raises:
        DownloadError: ``not_image`` (not a JPEG, PNG, GIF, WebP, BMP or TIFF), ``too_large`` (more than
            ``max_pixels`` pixels declared: a possible decompression bomb), ``corrupt`` (truncated or damaged).
    """
    from PIL import Image

    image = _open(data, max_pixels)
    if image.format == "PNG":
        try:
            image.verify()  # chunk checksums (the other formats' verify checks nothing more than load does)
        except Exception as e:  # Pillow raises many types for damaged files
            raise DownloadError("corrupt", f"image is damaged: {_describe(e)}") from e
        image = _open(data, max_pixels)
    with image:
        width, height = image.size
        if image.format in ("JPEG", "MPO"):
            # Decode at 1/2 to 1/8 scale, at least 64 pixels a side (libjpeg's DCT scaling): every byte of the scans
            # is still entropy-decoded, so truncated and corrupt data are still caught, at about half the cost, and
            # the hash needs only 32 x 32.
            image.draft(None, (64, 64))
        try:
            image.load()
        except Image.DecompressionBombError as e:
            raise _bomb(image.size, max_pixels) from e
        except Exception as e:
            raise DownloadError("corrupt", f"image is truncated or corrupt: {_describe(e)}") from e
        return ImageInfo(
            format=EXTENSIONS[image.format or ""],
            width=width,
            height=height,
            sha256=hashlib.sha256(data).hexdigest(),
            phash=phash(image),
        )


def _open(data: bytes, max_pixels: int):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as e:
        raise _bomb(None, max_pixels) from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        start = data[:200].lstrip().lower()
        what = "an HTML page" if start.startswith((b"<!doctype html", b"<html")) else "not an image"
        raise DownloadError("not_image", f"{what} (expected JPEG, PNG, GIF, WebP, BMP or TIFF)") from e
    if image.format not in EXTENSIONS:
        image.close()
        raise DownloadError("not_image", f"unsupported image format {image.format}")
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise _bomb((width, height), max_pixels)
    if width < 1 or height < 1:
        image.close()
        raise DownloadError("corrupt", f"image has no pixels ({width}x{height})")
    return image


def _bomb(size: tuple[int, int] | None, max_pixels: int) -> DownloadError:
    declared = f" ({size[0]}x{size[1]})" if size else ""
    return DownloadError(
        "too_large", f"image declares too many pixels{declared}: possible decompression bomb (at most {max_pixels})"
    )


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:200]
