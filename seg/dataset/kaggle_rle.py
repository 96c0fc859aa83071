"""Kaggle ``EncodedPixels``.

Encoding contract: the mask of shape (H, W) is flattened in **column-major** order (top to bottom, then left to right),
pixels are numbered from **1**, and the string is space-separated ``start length`` pairs of runs of ones
(``"1 3 10 2"`` = pixels 1-3 and 10-11). An empty string is an empty mask. Both directions are vectorised with numpy:
no Python loop per run.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def encode(mask: npt.NDArray) -> str:
    """Encode an (H, W) mask (nonzero = object) to an ``EncodedPixels`` string."""
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape} {mask.dtype}")
    flat = np.zeros(mask.size + 2, dtype=np.int8)
    flat[1:-1] = mask.ravel(order="F") != 0
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    if edges.size == 0:
        return ""
    pairs = edges.reshape(-1, 2)
    pairs[:, 1] -= pairs[:, 0]
    pairs[:, 0] += 1
    return " ".join(pairs.ravel().astype(str).tolist())


def parse(text: str, height: int, width: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Parse and check an ``EncodedPixels`` string; return 0-based run starts and lengths.

    Raises:
        ValueError: odd number of values, non-integers, runs outside the image, overlapping or unsorted runs.
    """
    text = (text or "").strip()
    if not text:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    try:
        values = np.array(text.split(), dtype=np.int64)
    except ValueError as e:
        raise ValueError(f"EncodedPixels must be integers: {e}") from None
    if values.size % 2:
        raise ValueError("EncodedPixels must hold start/length pairs (odd number of values)")
    starts = values[0::2] - 1
    lengths = values[1::2]
    ends = starts + lengths
    if (starts < 0).any() or (lengths <= 0).any():
        raise ValueError("EncodedPixels starts must be >= 1 and lengths > 0")
    if ends[-1] > height * width or (ends > height * width).any():
        raise ValueError(f"EncodedPixels run ends at pixel {int(ends.max())}, beyond height x width = {height * width}")
    if (starts[1:] < ends[:-1]).any():
        raise ValueError("EncodedPixels runs overlap or are not sorted")
    return starts, lengths


def decode(text: str, height: int, width: int) -> npt.NDArray[np.uint8]:
    """Decode an ``EncodedPixels`` string to an (H, W) uint8 mask of 0 and 1."""
    starts, lengths = parse(text, height, width)
    marks = np.zeros(height * width + 1, dtype=np.int8)
    np.add.at(marks, starts, 1)
    np.add.at(marks, starts + lengths, -1)
    flat = np.cumsum(marks[:-1], dtype=np.int8).astype(np.uint8)
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
    pairs = np.stack([starts[keep] + 1, lengths[keep]], axis=1)
    return " ".join(pairs.ravel().astype(str).tolist())
