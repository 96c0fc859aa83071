"""Label Studio region values to pixel geometry and masks, and back.

Label Studio stores image regions in **percent** of the image: ``x`` of ``original_width``, ``y`` of
``original_height``, with the origin at the top-left corner of the top-left pixel. Pixels are ``percent * size / 100``
rounded to :data:`DECIMALS` decimals, which removes the float noise of the division (``x * 100 / w * w / 100`` gives
back ``x`` exactly), so a polygon written by seg rasterizes to the same pixels when read back.

* ``polygonlabels``: ``points`` ``[[x, y], ...]``, one ring (no holes, no parts), rasterized as COCO polygons.
* ``rectanglelabels``: top-left ``x``, ``y``, ``width``, ``height`` and ``rotation`` in degrees, clockwise about the
  top-left corner (the corners are rotated in pixels, as the editor does). Unrotated rectangles are box-only objects,
  clipped to the image; rotated ones are their four-corner polygon.
* ``ellipselabels``: centre ``x``, ``y``, ``radiusX``, ``radiusY`` and ``rotation`` about the centre; the mask holds
  the pixels whose centre lies inside the ellipse.
* ``brushlabels`` (and the magic wand): ``{"format": "rle", "rle": [...]}``, see :mod:`seg.dataset.ls_brush`.

The functions raise ``ValueError`` with a short reason; the reader reports it against the region.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from seg.dataset import ls_brush
from seg.dataset import rle as coco_rle
from seg.dataset.polygons import Ring
from seg.formats.coco_segmentation import check_extent, is_number

#: Decimals kept when percent values become pixels.
DECIMALS = 8

Box = tuple[float, float, float, float]


def _number(value: dict, key: str) -> float:
    number = value.get(key)
    if not is_number(number):
        raise ValueError(f"{key!r} must be a number, got {number!r}")
    return float(number)


def pixels(percent: float, size: int) -> float:
    """A percent value as pixels of an axis of ``size`` pixels."""
    return round(percent * size / 100, DECIMALS)


def percent(pixel: float, size: int) -> float:
    """A pixel value as percent of an axis of ``size`` pixels."""
    return pixel * 100 / size


def polygon_ring(value: dict, width: int, height: int) -> Ring:
    """The pixel ring of a polygon value.

    Raises:
        ValueError: ``points`` not a list of ``[x, y]`` numbers, fewer than 3 points, or points absurdly far outside.
    """
    points = value.get("points")
    if not isinstance(points, list):
        raise ValueError(f"polygon 'points' must be a list of [x, y], got {type(points).__name__}")
    ring: Ring = []
    for point in points:
        if not (isinstance(point, list | tuple) and len(point) == 2 and all(is_number(v) for v in point)):
            raise ValueError(f"polygon point must be [x, y] numbers, got {point!r}")
        ring += [pixels(point[0], width), pixels(point[1], height)]
    if len(ring) < 6:
        raise ValueError(f"polygon has {len(ring) // 2} points, expected at least 3")
    check_extent([ring], height, width)
    return ring


def _rotation(value: dict) -> float:
    rotation = value.get("rotation", 0)
    if rotation is None:
        return 0.0
    if not is_number(rotation):
        raise ValueError(f"'rotation' must be a number of degrees, got {rotation!r}")
    return float(rotation) % 360


def rectangle(value: dict, width: int, height: int) -> tuple[Box | None, Ring | None]:
    """A rectangle value as ``(box, None)`` when unrotated (clipped to the image), else ``(None, corner ring)``.

    Raises:
        ValueError: missing or non-numeric fields, a negative size, or corners absurdly far outside the image.
    """
    x, y = pixels(_number(value, "x"), width), pixels(_number(value, "y"), height)
    w, h = pixels(_number(value, "width"), width), pixels(_number(value, "height"), height)
    if w < 0 or h < 0:
        raise ValueError(f"rectangle has a negative size ({w} x {h} pixels)")
    rotation = _rotation(value)
    if rotation == 0:
        check_extent([[x, y, x + w, y + h]], height, width)
        x0, y0 = min(max(x, 0.0), width), min(max(y, 0.0), height)
        x1, y1 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
        return (x0, y0, x1 - x0, y1 - y0), None
    cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    corners = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
    ring = [round(v, DECIMALS) for cx, cy in corners for v in (x + cx * cos - cy * sin, y + cx * sin + cy * cos)]
    check_extent([ring], height, width)
    return None, ring


def ellipse_rle(value: dict, width: int, height: int) -> str:
    """The mask of an ellipse value as a compressed COCO RLE: pixels whose centre is inside.

    Raises:
        ValueError: missing or non-numeric fields, negative radii, or an ellipse absurdly far outside the image.
    """
    cx, cy = pixels(_number(value, "x"), width), pixels(_number(value, "y"), height)
    rx, ry = pixels(_number(value, "radiusX"), width), pixels(_number(value, "radiusY"), height)
    if rx < 0 or ry < 0:
        raise ValueError(f"ellipse has a negative radius ({rx} x {ry} pixels)")
    theta = math.radians(_rotation(value))
    cos, sin = math.cos(theta), math.sin(theta)
    half_w, half_h = math.hypot(rx * cos, ry * sin), math.hypot(rx * sin, ry * cos)
    check_extent([[cx - half_w, cy - half_h, cx + half_w, cy + half_h]], height, width)
    mask = np.zeros((height, width), np.uint8)
    x0, x1 = max(math.floor(cx - half_w), 0), min(math.ceil(cx + half_w) + 1, width)
    y0, y1 = max(math.floor(cy - half_h), 0), min(math.ceil(cy + half_h) + 1, height)
    if rx > 0 and ry > 0 and x0 < x1 and y0 < y1:
        dx = np.arange(x0, x1) + 0.5 - cx
        dy = (np.arange(y0, y1) + 0.5 - cy)[:, None]
        u = (dx * cos + dy * sin) / rx  # the pixel centre in the ellipse's own axes
        v = (dy * cos - dx * sin) / ry
        mask[y0:y1, x0:x1] = u * u + v * v <= 1
    return coco_rle.encode(mask)


def brush_rle(value: dict, height: int, width: int) -> str:
    """The mask of a brush (or magic wand) value of an ``height x width`` image as a compressed COCO RLE.

    Raises:
        ValueError: a format other than ``"rle"``, or a stream that does not decode to ``height x width`` pixels.
    """
    fmt = value.get("format", "rle")
    if fmt != "rle":
        raise ValueError(f"brush format {fmt!r} is not read (expected 'rle')")
    if "rle" not in value:
        raise ValueError("brush region has no 'rle'")
    return coco_rle.encode(ls_brush.decode(value["rle"], height, width))


def infer_shape(value: dict) -> str | None:
    """The shape of a generic ``labels`` value from its keys, when no tool result names it."""
    if "rle" in value:
        return "brush"
    if "points" in value:
        return "polygon"
    if "radiusX" in value or "radiusY" in value:
        return "ellipse"
    if "width" in value and "height" in value:
        return "rectangle"
    if "x" in value and "y" in value:
        return "keypoint"
    return None


def percent_points(ring: Sequence[float], width: int, height: int) -> list[list[float]]:
    """A pixel ring as Label Studio ``points`` in percent."""
    return [[percent(x, width), percent(y, height)] for x, y in zip(ring[0::2], ring[1::2], strict=True)]


def rectangle_value(box: Sequence[float], width: int, height: int) -> dict[str, Any]:
    """A pixel box ``(x, y, w, h)`` as a Label Studio rectangle value in percent."""
    x, y, w, h = (float(v) for v in box)
    return {
        "x": percent(x, width),
        "y": percent(y, height),
        "width": percent(w, width),
        "height": percent(h, height),
        "rotation": 0,
    }
