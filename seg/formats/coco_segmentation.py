"""COCO ``segmentation`` values to Dataset masks and back.

A COCO annotation's ``segmentation`` is one of:

* a list of polygon rings ``[[x1, y1, x2, y2, ...], ...]`` (several parts of one object, unioned), or the flat form
  ``[x1, y1, x2, y2, ...]`` some tools write for a single ring;
* a compressed RLE ``{"size": [h, w], "counts": "<string>"}`` or an uncompressed one (``counts`` a list of ints);
* an empty list, ``null`` or nothing: a box-only object.

Masks are rasterized exactly as pycocotools' ``COCO.annToMask`` does, and every RLE is stored in its canonical
compressed form (the string ``rle.encode`` writes: no zero-length runs but the first) so that equal masks have equal
strings. Polygon points absurdly far outside the image are refused (see :data:`FAR_OUTSIDE`).

The functions here raise ``ValueError`` with a short reason; the loader turns that into a
:class:`~seg.errors.FormatError` naming the file and the annotation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from seg.dataset import rle as coco_rle
from seg.dataset.polygons import Ring, polygons_to_rle, rings_bbox

Box = tuple[float, float, float, float]


def is_number(value: Any) -> bool:
    """True for a finite JSON number (booleans are not numbers here)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _all_numbers(values: list) -> bool:
    # the fast path of all(map(is_number, values)) for long rings
    if not {type(v) for v in values} <= {int, float}:
        return False
    try:
        return math.isfinite(sum(values))
    except OverflowError:
        return False


def read_rings(segmentation: list) -> list[list]:
    """Polygon rings of a non-empty COCO polygon list, values kept as read (the flat form becomes one ring).

    Raises:
        ValueError: non-numeric coordinates, an odd count, fewer than 3 points, or rings mixed with numbers.
    """
    if all(isinstance(part, list) for part in segmentation):
        rings = segmentation
    elif all(not isinstance(part, list | dict) for part in segmentation):
        rings = [segmentation]
    elif any(isinstance(part, dict) for part in segmentation):
        raise ValueError("a list of RLE objects is not a COCO segmentation (expected polygons or one RLE object)")
    else:
        raise ValueError("polygon list mixes rings and bare numbers")
    for number, ring in enumerate(rings):
        if not _all_numbers(ring):
            bad = [v for v in ring if not is_number(v)]
            if not bad:
                raise ValueError(f"polygon ring {number} has coordinates too large to add up")
            raise ValueError(f"polygon ring {number} has a non-numeric coordinate {bad[0]!r}")
        if len(ring) % 2:
            raise ValueError(f"polygon ring {number} has an odd number of coordinates ({len(ring)})")
        if len(ring) < 6:
            raise ValueError(f"polygon ring {number} has {len(ring) // 2} points, expected at least 3")
    return rings


#: How far outside the image polygon points may lie, in multiples of the image's larger side (plus a fixed margin).
#: pycocotools rasterizes the whole outline before clipping it, so a point a billion pixels away costs gigabytes.
FAR_OUTSIDE = 8
FAR_MARGIN = 1024


def check_extent(rings: Sequence[Sequence[float]], height: int, width: int) -> None:
    """Refuse polygons reaching absurdly far outside the image (a memory bomb for the rasterizer).

    Raises:
        ValueError: a coordinate beyond ``FAR_OUTSIDE`` times the larger side (+ ``FAR_MARGIN``) from the image.
    """
    margin = FAR_OUTSIDE * max(height, width) + FAR_MARGIN
    low = min(min(ring) for ring in rings)
    high = max(max(ring) for ring in rings)
    if low < -margin or high > max(height, width) + margin:
        raise ValueError(
            f"polygon reaches {low if low < -margin else high}, more than {margin} pixels outside the "
            f"{width}x{height} image"
        )


def read_rle(segmentation: dict, height: int, width: int) -> str:
    """Canonical compressed counts of a COCO RLE object (compressed or uncompressed) of an image of ``height x width``.

    Raises:
        ValueError: missing keys, a ``size`` other than ``[height, width]``, or counts that do not cover the image.
    """
    if "counts" not in segmentation or "size" not in segmentation:
        raise ValueError("RLE segmentation lacks 'counts' or 'size'")
    size = segmentation["size"]
    if not (
        isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
    ):
        raise ValueError(f"RLE size must be [height, width], got {size!r}")
    if size != [height, width]:
        raise ValueError(f"RLE size {size} differs from the image's [height, width] = [{height}, {width}]")
    counts = segmentation["counts"]
    if isinstance(counts, str):
        try:
            runs = coco_rle.to_uncompressed_raw(counts)
        except UnicodeEncodeError as e:
            raise ValueError("compressed RLE counts hold non-ASCII characters") from e
    elif isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
            raise ValueError("uncompressed RLE counts must be integers")
        runs = counts
    else:
        raise ValueError(f"RLE counts must be a string or a list of integers, got {type(counts).__name__}")
    total = sum(runs)
    if total != height * width:
        raise ValueError(f"RLE counts sum to {total}, expected height x width = {height * width}")
    return coco_rle.from_uncompressed(canonical_runs(runs), height, width)


def canonical_runs(runs: Sequence[int]) -> list[int]:
    """The same mask's runs without zero-length runs (but the leading zeros run): what ``rle.encode`` writes.

    Raises:
        ValueError: a negative run length.
    """
    out, last = [0], 0  # last: the value (0 or 1) of the run out[-1] stands for
    for index, length in enumerate(runs):
        if length < 0:
            raise ValueError(f"RLE run {index} has a negative length ({length})")
        if length == 0:
            continue
        if index % 2 == last:
            out[-1] += length
        else:
            out.append(length)
            last = index % 2
    return out


def rle_size(segmentation: Any) -> tuple[int, int] | None:
    """``(width, height)`` from an RLE object's ``size`` when it has a valid one, else None."""
    size = segmentation.get("size") if isinstance(segmentation, dict) else None
    valid = isinstance(size, list) and len(size) == 2
    if valid and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        return size[1], size[0]
    return None


def read_box(value: Any) -> Box:
    """A COCO ``bbox`` ``[x, y, w, h]`` as floats.

    Raises:
        ValueError: not four finite numbers, or a negative width or height.
    """
    if not (isinstance(value, list) and len(value) == 4 and all(is_number(v) for v in value)):
        raise ValueError(f"bbox must be [x, y, width, height] numbers, got {value!r}")
    x, y, w, h = (float(v) for v in value)
    if w < 0 or h < 0:
        raise ValueError(f"bbox has a negative size {value!r}")
    return x, y, w, h


def read_segmentation(segmentation: Any, height: int, width: int) -> tuple[str | None, list[list] | None, Box | None]:
    """Mask, polygon rings and box of a COCO ``segmentation`` value.

    Returns:
        ``(rle, rings, box)``: the canonical compressed RLE, the rings as read (polygons only) and the tight box
        (clipped polygon extents for polygons, the mask's box for RLE). All None for a box-only object.

    Raises:
        ValueError: the value is malformed (see :func:`read_rings` and :func:`read_rle`).
    """
    if segmentation is None or (isinstance(segmentation, list) and not segmentation):
        return None, None, None
    if isinstance(segmentation, list):
        rings = read_rings(segmentation)
        check_extent(rings, height, width)
        return polygons_to_rle(rings, height, width), rings, rings_bbox(rings, height, width)
    if isinstance(segmentation, dict):
        counts = read_rle(segmentation, height, width)
        return counts, None, coco_rle.bbox(counts, height, width)
    raise ValueError(f"segmentation must be a polygon list or an RLE object, got {type(segmentation).__name__}")


def rle_object(counts: str, height: int, width: int) -> dict:
    """The COCO compressed RLE object of a Dataset ``rle`` value."""
    return {"size": [int(height), int(width)], "counts": counts}


def same_mask(rings: Sequence[Ring], counts: str, height: int, width: int) -> bool:
    """True when ``rings`` rasterize to exactly the mask ``counts`` (used to trust a stored ``geometry``)."""
    try:
        drawn = polygons_to_rle(rings, height, width)
    except (ValueError, TypeError):
        return False
    return drawn == counts or coco_rle.iou(drawn, counts, height, width) == 1.0
