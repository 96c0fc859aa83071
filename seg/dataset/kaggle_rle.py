"""Kaggle ``EncodedPixels``.

Encoding contract: the mask of shape (H, W) is flattened in **column-major** order (top to bottom, then left to right),
pixels are numbered from **1**, and the string is space-separated ``start length`` pairs of runs of ones
(``"1 3 10 2"`` = pixels 1-3 and 10-11). An empty string is an empty mask. Both directions are vectorised with numpy:
no Python loop per run or per pixel, and no pass over the mask that a run-length codec does not need (no column-major
copy of the mask, no cumulative sum over every pixel, no ``str`` per number).
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

_POW10 = 10 ** np.arange(19, dtype=np.int64)


def encode(mask: npt.NDArray) -> str:
    """Encode an (H, W) mask (nonzero = object) to an ``EncodedPixels`` string."""
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape} {mask.dtype}")
    height, width = mask.shape
    if mask.size == 0:
        return ""
    on = np.ascontiguousarray(mask if mask.dtype == np.bool_ else mask != 0)
    # Column-major run edges, found in the C-order mask (no transposed copy): changes down each column...
    below = _row_changes(on)  # C-order index y * W + x into on[1:], i.e. pixel (y + 1, x) differs from (y, x)
    row = below // width
    inner = (below - row * width) * height + row + 1
    # ...and from the bottom of one column to the top of the next (column 0 starts after an implicit zero).
    top = on[0].copy()
    top[1:] ^= on[-1, :-1]
    edges = np.concatenate([inner, np.flatnonzero(top) * height])
    edges.sort()
    if on[-1, -1]:
        edges = np.append(edges, height * width)
    if edges.size == 0:
        return ""
    pairs = edges.reshape(-1, 2)
    pairs[:, 1] -= pairs[:, 0]
    pairs[:, 0] += 1
    return _text(pairs.ravel())


def _row_changes(on: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Flat indices into ``on[1:]`` where a pixel differs from the one above it."""
    if on.shape[1] % 8 == 0:
        # Compare eight pixels at a time, then look only inside the words that changed.
        words = on.view(np.uint64)
        changed = words[1:] ^ words[:-1]
        hits = np.flatnonzero(changed != 0)
        if hits.size * 8 < changed.size:
            inside = np.flatnonzero(changed.ravel()[hits].view(np.uint8))
            return (hits[inside >> 3] << 3) + (inside & 7)
    return np.flatnonzero(on[1:] != on[:-1])


def _text(values: npt.NDArray[np.int64]) -> str:
    """Space-separated decimal text of non-negative integers, written digit by digit into one byte buffer."""
    digits = np.searchsorted(_POW10[1:], values, side="right") + 1
    ends = np.cumsum(digits + 1) - 1  # where the space after each value goes
    out = np.full(int(ends[-1]), ord(" "), np.uint8)
    last = ends - 1
    rest = values
    for k in range(int(digits.max())):
        quotient = rest // 10  # division by a scalar is vectorised; `%` on int64 is not
        digit = (rest - quotient * 10).astype(np.uint8) + np.uint8(48)
        if k == 0:
            out[last] = digit
        else:
            live = digits > k
            out[last[live] - k] = digit[live]
        rest = quotient
    return out.tobytes().decode("ascii")


def parse(text: str, height: int, width: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Parse and check an ``EncodedPixels`` string; return 0-based run starts and lengths.

    Raises:
        ValueError: odd number of values, non-integers, runs outside the image, overlapping or unsorted runs.
    """
    if not text or text.isspace():  # np.fromstring reads whitespace alone as [0]
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    try:
        with warnings.catch_warnings():  # numpy 1.x only warned about trailing garbage
            warnings.simplefilter("error", DeprecationWarning)
            values = np.fromstring(text, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        raise ValueError(f"EncodedPixels must be integers: {text[:40]!r}") from None
    if values.size % 2:
        raise ValueError("EncodedPixels must hold start/length pairs (odd number of values)")
    if values.min() < 1:
        raise ValueError("EncodedPixels starts must be >= 1 and lengths > 0")
    if values.max() > height * width:  # also keeps start + length from overflowing
        raise ValueError(f"EncodedPixels value {int(values.max())} is beyond height x width = {height * width}")
    starts = values[0::2] - 1
    lengths = values[1::2]
    ends = starts + lengths
    if (starts[1:] < ends[:-1]).any():
        raise ValueError("EncodedPixels runs overlap or are not sorted")
    if ends[-1] > height * width:
        raise ValueError(f"EncodedPixels run ends at pixel {int(ends[-1])}, beyond height x width = {height * width}")
    return starts, lengths


def decode(text: str, height: int, width: int) -> npt.NDArray[np.uint8]:
    """Decode an ``EncodedPixels`` string to an (H, W) uint8 mask of 0 and 1."""
    starts, lengths = parse(text, height, width)
    size = height * width
    ones = int(lengths.sum())
    if ones * 8 <= size:
        # Few object pixels (a ship in a sea): set them by index, never touching the rest of the (lazily zeroed) mask.
        flat = np.zeros(size, dtype=np.uint8)
        if ones:
            shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
            flat[shift + np.arange(ones)] = 1
    else:
        # Many: write the alternating zero/one runs in one pass.
        bounds = np.empty(2 * starts.size + 2, np.int64)
        bounds[0], bounds[-1] = 0, size
        bounds[1:-1:2] = starts
        bounds[2:-1:2] = starts + lengths
        values = np.zeros(2 * starts.size + 1, np.uint8)
        values[1::2] = 1
        flat = np.repeat(values, np.diff(bounds))
    return flat.reshape((height, width), order="F")


def to_coco_counts(text: str, height: int, width: int) -> list[int]:
    """Convert ``EncodedPixels`` to uncompressed COCO run lengths (zeros first, no trailing empty run) without building
    the mask."""
    starts, lengths = parse(text, height, width)
    if starts.size == 0:
        return [height * width]
    bounds = np.empty(starts.size * 2 + 2, dtype=np.int64)
    bounds[0] = 0
    bounds[1:-1:2] = starts
    bounds[2:-1:2] = starts + lengths
    bounds[-1] = height * width
    counts = np.diff(bounds).tolist()
    return counts[:-1] if counts[-1] == 0 else counts  # canonical, as pycocotools writes it


def from_coco_counts(counts: list[int]) -> str:
    """Convert uncompressed COCO run lengths (zeros first) to ``EncodedPixels`` without building the mask."""
    bounds = np.cumsum(np.asarray(counts, dtype=np.int64))
    starts = bounds[0:-1:2]
    lengths = np.asarray(counts[1::2], dtype=np.int64)
    keep = lengths > 0
    if not keep.any():
        return ""
    pairs = np.stack([starts[keep] + 1, lengths[keep]], axis=1)
    return _text(pairs.ravel())
