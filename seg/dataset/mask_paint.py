"""Painting many objects into one class or instance image, straight from their compressed COCO RLE strings.

A mask export paints every object of an image into one label image. Decoding each object to a full (H, W) mask and
assigning through it costs H x W per object; here the compressed strings of all objects of an image are parsed
together with numpy (no Python loop per character) into runs of ones, and the label image is resolved as runs too
(:class:`LabelRuns`, in COCO's column-major pixel order), so the cost follows the number of runs, not the image size.

Later objects are painted over earlier ones: callers choose the order (see :func:`paint_order`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seg.dataset import rle as coco_rle


@dataclass(frozen=True)
class Runs:
    """The runs of ones of several RLE strings, in the strings' order.

    Attributes:
        starts: 0-based flat (column-major) index of each run's first pixel.
        ends: flat index one past each run's last pixel.
        owner: index of the string each run belongs to.
        totals: pixel count each string covers (its zero and one runs summed).
    """

    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    owner: npt.NDArray[np.int64]
    totals: npt.NDArray[np.int64]

    def bounds(self, count: int) -> npt.NDArray[np.int64]:
        """``b`` such that the runs of string ``i`` are ``starts[b[i]:b[i + 1]]``."""
        return np.searchsorted(self.owner, np.arange(count + 1))


def parse_runs(strings: Sequence[str]) -> Runs:
    """Parse compressed COCO RLE strings (pycocotools ``rleFrString``) into runs of ones, all at once.

    Raises:
        ValueError: on a character outside the RLE alphabet, a string ending inside a number, a number too long to be
            a run length, or a negative run.
    """
    parsed = coco_rle.parse_strings(strings)
    runs, owner, position = parsed.runs, parsed.owner, parsed.position
    offsets, _ = coco_rle.segmented_cumsum(runs, owner, parsed.first)
    totals = np.bincount(owner, weights=runs, minlength=len(strings)).astype(np.int64)
    ones = np.flatnonzero(position & 1)
    return Runs(starts=offsets[ones - 1], ends=offsets[ones], owner=owner[ones], totals=totals)


def paint_order(areas: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Indices that paint objects largest first (ties in object order), so small objects stay visible on top."""
    return np.argsort(-np.asarray(areas, dtype=np.int64), kind="stable")


@dataclass(frozen=True)
class LabelRuns:
    """A label image as runs in column-major pixel order: pixels ``bounds[i]`` to ``bounds[i + 1] - 1`` hold
    ``labels[i]``; neighbouring runs differ. Far smaller than the image, and what :mod:`seg.formats.masks_png`
    encodes from."""

    height: int
    width: int
    bounds: npt.NDArray[np.int64]
    labels: npt.NDArray[np.int64]
    dtype: np.dtype

    def to_array(self) -> npt.NDArray:
        """The (H, W) label image (a transposed view of the column-major buffer)."""
        flat = np.repeat(self.labels.astype(self.dtype), np.diff(self.bounds))
        return flat.reshape(self.width, self.height).T


def label_runs(
    height: int,
    width: int,
    rles: Sequence[str | None],
    values: npt.ArrayLike,
    boxes: npt.ArrayLike | None = None,
    dtype: npt.DTypeLike = np.uint8,
) -> LabelRuns:
    """Paint objects in the given order (later objects over earlier ones) into a run-length label image.

    Every pixel run between two consecutive run ends of any object is covered by the same objects; each such piece
    takes the label of the last object covering it, found with one binary search per object. No image is built.

    Args:
        height: image height.
        width: image width.
        rles: compressed COCO RLE string of each object, or None for a box-only object.
        values: the label painted for each object (class index or instance id).
        boxes: ``(n, 4)`` ``x, y, w, h`` of each object; needed only for the None entries of ``rles``.
        dtype: the label image's dtype (``uint8`` or ``uint16``).

    Raises:
        ValueError: when an RLE string is malformed or does not cover ``height x width`` pixels.
    """
    masked = [r for r in rles if r is not None]
    return _resolve(height, width, rles, values, boxes, parse_runs(masked), np.dtype(dtype))


def label_runs_many(
    images: Sequence[tuple[int, int, Sequence[str | None], npt.ArrayLike, npt.ArrayLike | None]],
    dtype: npt.DTypeLike = np.uint8,
) -> list[LabelRuns | ValueError]:
    """:func:`label_runs` for several images ``(height, width, rles, values, boxes)``, parsing all their RLE strings
    in one pass; an image that cannot be painted gets its ValueError in place of its LabelRuns."""
    strings = [r for image in images for r in image[2] if r is not None]
    try:
        runs = parse_runs(strings)
    except ValueError:  # find the culprit(s) one image at a time
        return [_attempt(label_runs, *image, dtype=dtype) for image in images]
    bounds = runs.bounds(len(strings)).tolist()
    done: list[LabelRuns | ValueError] = []
    first = 0
    for height, width, rles, values, boxes in images:
        count = sum(r is not None for r in rles)
        lo, hi = bounds[first], bounds[first + count]
        part = Runs(runs.starts[lo:hi], runs.ends[lo:hi], runs.owner[lo:hi] - first, runs.totals[first : first + count])
        done.append(_attempt(_resolve, height, width, rles, values, boxes, part, np.dtype(dtype)))
        first += count
    return done


def _attempt(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except ValueError as error:
        return error


def _resolve(
    height: int,
    width: int,
    rles: Sequence[str | None],
    values: npt.ArrayLike,
    boxes: npt.ArrayLike | None,
    runs: Runs,
    dtype: np.dtype,
) -> LabelRuns:
    total = height * width
    masked = [i for i, r in enumerate(rles) if r is not None]
    wrong = np.flatnonzero(runs.totals != total)
    if wrong.size:
        i = int(wrong[0])
        raise ValueError(
            f"RLE of object {masked[i]} covers {int(runs.totals[i])} pixels, expected height x width = {total}"
        )
    pieces = _object_runs(height, width, masked, runs, len(rles), boxes)
    points = np.sort(np.concatenate([[0, total], *(s for s, _ in pieces), *(e for _, e in pieces)]))
    points = points[np.concatenate(([True], points[1:] != points[:-1]))]  # (np.unique hashes: slower here)
    left = points[:-1]
    top = np.zeros(left.size, np.int64)  # 1 + index of the last object covering each piece, 0 for none
    for k, (starts, ends) in enumerate(pieces):
        if starts.size == 0:
            continue
        lo, hi = np.searchsorted(left, [starts[0], ends[-1]])
        span = left[lo:hi]
        run = np.searchsorted(ends, span, side="right")
        covered = run < starts.size
        covered[covered] = starts[run[covered]] <= span[covered]
        top[lo:hi][covered] = k + 1
    labels = np.concatenate(([0], np.asarray(values, dtype=np.int64)))[top]
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    keep = np.concatenate(([0], change))
    return LabelRuns(height, width, np.concatenate((left[keep], [total])), labels[keep], dtype)


def _object_runs(height: int, width: int, masked: list[int], runs: Runs, count: int, boxes: npt.ArrayLike | None):
    """``(starts, ends)`` of the non-empty runs of each object, box-only objects as one run per column."""
    bounds = runs.bounds(len(masked)).tolist()
    slot = {index: n for n, index in enumerate(masked)}
    pieces = []
    for i in range(count):
        n = slot.get(i)
        if n is None:
            x0, y0, x1, y1 = _box_pixels(np.asarray(boxes, dtype=np.float64)[i], height, width)
            columns = np.arange(x0, x1, dtype=np.int64) * height if y1 > y0 else np.zeros(0, np.int64)
            pieces.append((columns + y0, columns + y1))
            continue
        starts, ends = runs.starts[bounds[n] : bounds[n + 1]], runs.ends[bounds[n] : bounds[n + 1]]
        full = ends > starts
        pieces.append((starts, ends) if full.all() else (starts[full], ends[full]))
    return pieces


def paint(
    height: int,
    width: int,
    rles: Sequence[str | None],
    values: npt.ArrayLike,
    boxes: npt.ArrayLike | None = None,
    dtype: npt.DTypeLike = np.uint8,
) -> npt.NDArray:
    """:func:`label_runs` as an (H, W) array (a transposed view of the column-major buffer)."""
    return label_runs(height, width, rles, values, boxes, dtype).to_array()


def _box_pixels(box: npt.NDArray[np.float64], height: int, width: int) -> tuple[int, int, int, int]:
    """Pixel ranges a float ``x, y, w, h`` box covers, as :meth:`Dataset.object_mask` paints it."""
    x, y, w, h = box.tolist()
    x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
    x1, y1 = min(int(np.ceil(x + w)), width), min(int(np.ceil(y + h)), height)
    return x0, y0, max(x1, x0), max(y1, y0)
