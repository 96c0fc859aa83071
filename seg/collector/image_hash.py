"""A 64-bit perceptual hash (pHash) to find near-duplicate images, and Hamming distances between hashes.

The hash: the image in greyscale, resized to 32 x 32 (Lanczos), its 2-D DCT-II (orthonormal), the 8 x 8 block of
lowest frequencies, one bit per coefficient: 1 where it is above the block's median. Bit ``8 * row + col`` is
coefficient ``(row, col)``, the most significant bit is ``(0, 0)``. Re-encoding, mild resizing and small colour
changes move few bits; a different picture moves about half of them. Flat images (one colour) all hash alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import numpy.typing as npt

SIDE = 32
BLOCK = 8


@cache
def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    matrix = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * x + 1) * k / (2 * n))
    matrix[0] /= np.sqrt(2.0)
    return matrix


def phash(image) -> int:
    """The 64-bit perceptual hash of a loaded PIL image."""
    from PIL import Image

    grey = image.convert("L") if image.mode != "L" else image
    small = np.asarray(grey.resize((SIDE, SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0), dtype=np.float64)
    dct = _dct_matrix(SIDE)
    block = (dct @ small @ dct.T)[:BLOCK, :BLOCK].ravel()
    bits = block > np.median(block)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two hashes."""
    return (a ^ b).bit_count()


def nearest(hashes: Sequence[int] | npt.NDArray[np.uint64], value: int) -> tuple[int, int]:
    """Index and distance of the hash closest to ``value`` (``(-1, 65)`` for no hashes)."""
    if len(hashes) == 0:
        return -1, 65
    distances = np.bitwise_count(np.asarray(hashes, dtype=np.uint64) ^ np.uint64(value))
    index = int(np.argmin(distances))
    return index, int(distances[index])
