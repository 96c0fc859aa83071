"""COCO RLE, through pycocotools.

Encoding contract (COCO's, written once here): a mask of shape (H, W) is flattened in **column-major** (Fortran) order;
``counts`` are alternating run lengths starting with a run of **zeros** (possibly of length 0). The *compressed* form
packs the counts as a LEB128-like ASCII string (pycocotools ``rleToString``); the *uncompressed* form is the list of
integers. In a Dataset, ``rle`` holds the compressed string decoded to ``str`` and the size comes from the image's
``height``/``width``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def from_uncompressed_many(runs: Sequence[Sequence[int]], height: int, width: int) -> list[str]:
    """Compress many uncompressed COCO RLEs of one image size in one pycocotools call (no checks: the caller's runs
    must each sum to ``height * width``); microseconds per mask where :func:`from_uncompressed` costs several times
    that."""
    if not runs:
        return []
    objects = [{"size": [int(height), int(width)], "counts": list(counts)} for counts in runs]
    return [rle["counts"].decode("ascii") for rle in cocomask.frPyObjects(objects, height, width)]


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


@dataclass(frozen=True)
class ParsedStrings:
    """Run lengths of several compressed RLE strings, concatenated in the strings' order.

    Attributes:
        runs: every run length, each string's starting with its zeros run.
        owner: index of the string each run belongs to.
        position: index of each run inside its string (even = zeros, odd = ones).
        first: index into ``runs`` of each string's first run.
    """

    runs: npt.NDArray[np.int64]
    owner: npt.NDArray[np.int64]
    position: npt.NDArray[np.int64]
    first: npt.NDArray[np.int64]


#: Longest number a compressed RLE string may spell (12 characters of 5 bits = 60 bits).
_MAX_DIGITS = 12


def parse_strings(strings: Sequence[str]) -> ParsedStrings:
    """Parse compressed RLE strings (the inverse of pycocotools ``rleToString``), all at once, without their sizes.

    Each run is a little-endian group of 5-bit digits (character - 48; bit 0x20 = more digits follow; bit 0x10 of the
    last digit = negative); from the fourth run of a string on, the value is a difference to the run two places
    before. Vectorised over all characters of all strings: no Python loop per character or per string.

    Raises:
        ValueError: a character outside the alphabet, a string that ends inside a number, a number too long to be a
            run length, or negative runs.
    """
    count = len(strings)
    lengths = np.fromiter((len(s) for s in strings), np.int64, count)
    joined = "".join(strings)
    try:
        raw = joined.encode("ascii")
    except UnicodeEncodeError as e:
        raise ValueError(f"invalid character {joined[e.start]!r} in RLE string") from None
    data = np.frombuffer(raw, np.uint8).astype(np.int64) - 48
    if data.size and (data.min() < 0 or data.max() > 63):
        bad = raw[int(np.flatnonzero((data < 0) | (data > 63))[0])]
        raise ValueError(f"invalid character {chr(bad)!r} in RLE string")
    string_ends = np.cumsum(lengths)
    if ((data[string_ends[lengths > 0] - 1] & 0x20) != 0).any():
        raise ValueError("RLE string ends inside a number")
    last = np.flatnonzero((data & 0x20) == 0)  # the last character of each number
    first_char = np.empty_like(last)
    first_char[:1] = 0
    first_char[1:] = last[:-1] + 1
    digits = last - first_char + 1
    longest = int(digits.max()) if digits.size else 0
    if longest > _MAX_DIGITS:
        raise ValueError("RLE string holds a number too long to be a run length")
    values = data[first_char] & 0x1F
    for k in range(1, longest):
        longer = np.flatnonzero(digits > k)
        values[longer] |= (data[first_char[longer] + k] & 0x1F) << (5 * k)
    negative = (data[last] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * digits[negative])
    owner = np.searchsorted(string_ends, last, side="right")
    first = np.searchsorted(owner, np.arange(count))
    position = np.arange(values.size) - first[owner]
    # undo the delta coding: runs at odd positions, and at even positions from 2 on, are running sums per string
    odd = (position & 1) == 1
    runs = values.copy()
    for chain in (odd, ~odd & (position >= 2)):
        sums, _ = segmented_cumsum(np.where(chain, values, 0), owner, first)
        runs[chain] = sums[chain]
    if (runs < 0).any():
        raise ValueError("RLE string has negative run lengths")
    return ParsedStrings(runs=runs, owner=owner, position=position, first=first)


def segmented_cumsum(
    values: npt.NDArray[np.int64], owner: npt.NDArray[np.int64], first: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Cumulative sums restarting at each segment (``owner`` = segment of each value, ``first`` = index of each
    segment's first value), and the global sum before each segment."""
    total = np.cumsum(values)
    before = np.concatenate(([0], total))[first]
    return total - before[owner], before


def to_uncompressed_raw(counts: str) -> list[int]:
    """Parse one compressed RLE string into run lengths without knowing the size (see :func:`parse_strings`)."""
    return parse_strings([counts]).runs.tolist()


def merge(counts: Sequence[str], height: int, width: int) -> str:
    """Union of several compressed RLEs of one image."""
    if not counts:
        return encode(np.zeros((height, width), np.uint8))
    merged = cocomask.merge([_rle(c, height, width) for c in counts], intersect=False)
    return merged["counts"].decode("ascii")
