"""Verifying downloaded bytes (seg.collector.image_check) and perceptual hashes (seg.collector.image_hash)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from seg.collector.download import DownloadError
from seg.collector.image_check import inspect_image
from seg.collector.image_hash import hamming, nearest, phash


def picture(seed: int, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A smooth random colour field: distinct seeds give unrelated pictures."""
    coarse = np.random.default_rng(seed).uniform(0, 255, (5, 6, 3)).astype(np.uint8)
    return Image.fromarray(coarse, "RGB").resize(size, Image.Resampling.BICUBIC)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb's signature)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\0" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(idat) - 4)
        + idat
        + struct.pack(">I", zlib.crc32(idat))
        + b"\0\0\0\0IEND\xaeB`\x82"
    )


def status_of(data: bytes, **kwargs) -> DownloadError:
    with pytest.raises(DownloadError) as caught:
        inspect_image(data, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("fmt", "ext"),
    [("JPEG", "jpg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tiff")],
)
def test_kept_formats_are_described(fmt, ext):
    data = encode(picture(1), fmt)
    info = inspect_image(data)
    assert (info.format, info.width, info.height) == (ext, 160, 120)
    assert len(info.sha256) == 64 and 0 <= info.phash < 2**64


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"<!DOCTYPE html><html><body>Forbidden</body></html>", "HTML page"),
        (b"  <html>hotlinking is not allowed</html>", "HTML page"),
        (b"", "not an image"),
        (b"GIF89a", "not an image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "not an image"),
        (b"%PDF-1.4 fake", "not an image"),
    ],
)
def test_non_images_are_refused(data, words):
    error = status_of(data)
    assert error.status == "not_image" and words in str(error)


def test_other_pillow_formats_are_not_opened():
    error = status_of(encode(picture(2), "PPM"))
    assert error.status == "not_image"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_images_are_refused(fmt, keep):
    data = encode(picture(3, (320, 240)), fmt)
    assert status_of(data[: int(len(data) * keep)]).status == "corrupt"


def test_png_with_a_damaged_checksum_is_corrupt():
    data = bytearray(encode(picture(4), "PNG"))
    data[-20] ^= 0xFF  # inside the last IDAT chunk
    assert status_of(bytes(data)).status == "corrupt"


def test_decompression_bombs_are_refused_before_decoding():
    error = status_of(png_declaring(100_000, 100_000))
    assert error.status == "too_large" and "decompression bomb" in str(error)
    error = status_of(encode(picture(5), "PNG"), max_pixels=1000)
    assert error.status == "too_large" and "160x120" in str(error)


def test_phash_survives_re_encoding_and_resizing_but_tells_pictures_apart():
    original = picture(6, (320, 240))
    again = Image.open(io.BytesIO(encode(original.resize((300, 225)), "JPEG", quality=70)))
    assert hamming(phash(original), phash(again)) <= 4
    others = [phash(picture(seed, (320, 240))) for seed in range(10, 20)]
    assert min(hamming(phash(original), h) for h in others) > 8


def test_hamming_and_nearest():
    assert hamming(0, 2**64 - 1) == 64 and hamming(0b1011, 0b0001) == 2
    assert nearest([], 5) == (-1, 65)
    assert nearest([0xFF, 0x0F, 2**63], 0x0E) == (1, 1)
