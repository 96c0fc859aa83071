"""COCO RLE, through pycocotools.

Encoding contract (COCO's, written once here): a mask of shape (H, W) is flattened in **column-major** (Fortran) order;
``counts`` are alternating run lengths starting with a run of **zeros** (possibly of length 0). The *compressed* form
packs the counts as a LEB128-like ASCII string (pycocotools ``rleToString``); the *uncompressed* form is the list of
integers. In a Dataset, ``rle`` holds the compressed string decoded to ``str`` and the size comes from the image's
``height``/``width``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pycocotools import mask as cocomask


def _rle(counts: str, height: int, width: int) -> dict:
    return {"size": [int(height), int(width)], "counts": counts.encode("ascii")}


def encode(mask: npt.NDArray) -> str:
    """Encode an (H, W) mask (any dtype; nonzero = object) to a compressed COCO RLE string."""
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape} {mask.dtype}")
    rle = cocomask.encode(np.asfortranarray(mask, dtype=np.uint8))
    return rle["counts"].decode("ascii")


def decode(counts: str, height: int, width: int) -> npt.NDArray[np.uint8]:
    """Decode a compressed COCO RLE string to an (H, W) uint8 mask of 0 and 1."""
    return cocomask.decode(_rle(counts, height, width))


def area(counts: str, height: int, width: int) -> int:
    """Pixel count of a compressed RLE."""
    return int(cocomask.area(_rle(counts, height, width)))


def bbox(counts: str, height: int, width: int) -> tuple[float, float, float, float]:
    """Tight ``(x, y, w, h)`` box of a compressed RLE (zeros for an empty mask)."""
    x, y, w, h = cocomask.toBbox(_rle(counts, height, width)).tolist()
    return float(x), float(y), float(w), float(h)


def iou(a: str, b: str, height: int, width: int) -> float:
    """Intersection over union of two compressed RLEs of one image (1.0 when both are empty)."""
    ra, rb = _rle(a, height, width), _rle(b, height, width)
    union = int(cocomask.area(cocomask.merge([ra, rb], intersect=False)))
    if union == 0:
        return 1.0
    inter = int(cocomask.area(cocomask.merge([ra, rb], intersect=True)))
    return inter / union


def from_uncompressed(counts: Sequence[int], height: int, width: int) -> str:
    """Compress an uncompressed COCO RLE (``counts`` as a list of ints).

    Raises:
        ValueError: if the counts do not sum to ``height * width`` or are negative.
    """
    total = int(np.sum(np.asarray(counts, dtype=np.int64))) if len(counts) else 0
    if total != height * width or any(int(c) < 0 for c in counts):
        raise ValueError(f"RLE counts sum to {total}, expected height x width = {height * width}")
    rle = cocomask.frPyObjects({"size": [int(height), int(width)], "counts": [int(c) for c in counts]}, height, width)
    return rle["counts"].decode("ascii")


def to_uncompressed(counts: str, height: int, width: int) -> list[int]:
    """Expand a compressed RLE string to its list of run lengths (zeros first)."""
    flat = decode(counts, height, width).ravel(order="F")
    return runs_from_flat(flat)


def runs_from_flat(flat: npt.NDArray) -> list[int]:
    """Alternating zero/one run lengths (zeros first) of a flat 0/1 array."""
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return runs


def check_compressed(counts: str, height: int, width: int) -> None:
    """Raise ValueError unless a compressed RLE string decodes to exactly ``height * width`` pixels."""
    total = sum(to_uncompressed_raw(counts))
    if total != height * width:
        raise ValueError(f"RLE counts sum to {total}, expected height x width = {height * width}")


def to_uncompressed_raw(counts: str) -> list[int]:
    """Parse a compressed RLE string into run lengths without knowing the size (the inverse of ``rleToString``).

    Each run is a little-endian group of 5-bit digits (character - 48; bit 0x20 = more digits follow; bit 0x10 of the
    last digit = negative); from the fourth run on, the value is a difference to the run two places before.
    Vectorised: no Python loop per character.

    Raises:
        ValueError: a character outside the alphabet, a string that ends inside a number, or negative runs.
    """
    try:
        data = counts.encode("ascii")
    except UnicodeEncodeError as e:
        raise ValueError(f"invalid character {counts[e.start]!r} in RLE string") from None
    codes = np.frombuffer(data, dtype=np.uint8).astype(np.int64) - 48
    if codes.size == 0:
        return []
    if ((codes < 0) | (codes > 63)).any():
        bad = counts[int(np.flatnonzero((codes < 0) | (codes > 63))[0])]
        raise ValueError(f"invalid character {bad!r} in RLE string")
    last = (codes & 0x20) == 0
    if not last[-1]:
        raise ValueError("RLE string ends inside a number")
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    digit = np.arange(codes.size) - np.repeat(starts, ends - starts + 1)
    if digit.max() > 11:
        raise ValueError("RLE string holds a number too large for a run length")
    values = np.add.reduceat((codes & 0x1F) << (5 * digit), starts)
    negative = (codes[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (digit[ends[negative]] + 1))
    runs = values.copy()
    # runs[i] = values[i] + runs[i - 2] for i > 2: running sums over odd indices from 1 and even indices from 2
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    if (runs < 0).any():
        raise ValueError("RLE string has negative run lengths")
    return runs.tolist()


def merge(counts: Sequence[str], height: int, width: int) -> str:
    """Union of several compressed RLEs of one image."""
    if not counts:
        return encode(np.zeros((height, width), np.uint8))
    merged = cocomask.merge([_rle(c, height, width) for c in counts], intersect=False)
    return merged["counts"].decode("ascii")
