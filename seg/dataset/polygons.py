"""Polygons to masks and back.

Polygon coordinates are in pixels with the origin at the **top-left corner** of the top-left pixel (COCO's
convention). ``polygons_to_rle`` rasterizes exactly as pycocotools does for COCO polygons (``frPyObjects`` then
``merge``), so a mask built here is pixel-identical to ``COCO.annToMask``. ``mask_to_polygons`` traces the pixel
edges of every connected part with its holes (the full ring hierarchy); outer rings of solid parts rasterize back to the
exact mask, and ``polygon_loss`` reports the IoU of whatever a polygon format can hold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pycocotools import mask as cocomask

from seg.dataset import rle as coco_rle

#: A ring is a flat list ``[x1, y1, x2, y2, ...]`` (COCO's layout).
Ring = list[float]


def polygons_to_rle(rings: Sequence[Ring], height: int, width: int) -> str:
    """Rasterize COCO polygon rings (union of all parts, clipped to the image) to a compressed RLE string.

    Raises:
        ValueError: a ring with fewer than 3 points, an odd number of coordinates, or non-numeric values.
    """
    for ring in rings:
        if len(ring) % 2:
            raise ValueError(f"polygon has an odd number of coordinates ({len(ring)})")
        if len(ring) < 6:
            raise ValueError(f"polygon has {len(ring) // 2} points, expected at least 3")
    if not rings:
        return coco_rle.encode(np.zeros((height, width), np.uint8))
    try:
        rles = cocomask.frPyObjects([np.asarray(ring, dtype=np.float64) for ring in rings], int(height), int(width))
    except (TypeError, ValueError) as e:
        raise ValueError(f"polygon coordinates must be numbers: {e}") from None
    rle = rles[0] if len(rles) == 1 else cocomask.merge(rles)
    return rle["counts"].decode("ascii")


def mask_to_polygons(mask: npt.NDArray) -> list[tuple[Ring, list[Ring]]]:
    """Trace a mask into ``[(outer_ring, [hole_ring, ...]), ...]``, one entry per 8-connected part.

    Rings follow pixel edges (integer corner coordinates) and are closed implicitly (the first point is not repeated).
    """
    from rasterio.features import shapes

    mask = np.ascontiguousarray(mask != 0, dtype=np.uint8)
    result = []
    for geometry, _ in shapes(mask, mask=mask.astype(bool), connectivity=8):
        rings = [_flat(ring) for ring in geometry["coordinates"]]
        result.append((rings[0], rings[1:]))
    return result


def _flat(ring: Sequence[Sequence[float]]) -> Ring:
    points = list(ring)
    if len(points) > 1 and tuple(points[0]) == tuple(points[-1]):
        points = points[:-1]
    return [float(v) for point in points for v in point]


def outer_rings(parts: list[tuple[Ring, list[Ring]]]) -> list[Ring]:
    """The outer rings of traced parts, holes dropped (for formats whose polygons cannot hold a hole)."""
    return [outer for outer, _ in parts]


def bridge_holes(outer: Ring, holes: Sequence[Ring]) -> Ring:
    """One ring that holds ``outer`` minus ``holes``: each hole is joined to the ring by a zero-width bridge.

    Holes are taken from left to right; each is bridged from its leftmost vertex, horizontally to the left, to the
    nearest vertical edge of the ring built so far (traced rings are rectilinear, so there always is one). The bridge
    is walked once in each direction, so it adds no area, and pycocotools' rasterization of the resulting ring is the
    traced mask exactly: a COCO polygon list (a union of rings) can then hold masks with holes.
    """
    ring = list(zip(outer[0::2], outer[1::2], strict=True))
    points = [list(zip(h[0::2], h[1::2], strict=True)) for h in holes]
    for hole in sorted(points, key=lambda h: min(x for x, _ in h)):
        k = min(range(len(hole)), key=lambda i: hole[i])
        hx, hy = hole[k]
        best = None
        for i, ((x0, y0), (x1, y1)) in enumerate(zip(ring, ring[1:] + ring[:1], strict=True)):
            if x0 == x1 and x0 < hx and min(y0, y1) <= hy <= max(y0, y1) and (best is None or x0 > best[0]):
                best = (x0, i)
        if best is None:
            raise ValueError(f"hole at ({hx}, {hy}) lies outside its outer ring")
        x, i = best
        landing = (x, hy)
        loop = [*hole[k:], *hole[:k], hole[k], landing]
        ring = [*ring[: i + 1], *([landing] if landing != ring[i] else []), *loop, *ring[i + 1 :]]
    return [float(v) for point in ring for v in point]


def mask_to_rings(mask: npt.NDArray) -> list[Ring]:
    """Polygon rings that rasterize back (pycocotools) to exactly ``mask``: one ring per part, holes bridged."""
    return [bridge_holes(outer, holes) for outer, holes in mask_to_polygons(mask)]


def polygon_loss(counts: str, rings: Sequence[Ring], height: int, width: int) -> float:
    """IoU between a mask (compressed RLE) and the polygon rings meant to stand for it (1.0 = nothing lost)."""
    return coco_rle.iou(counts, polygons_to_rle(rings, height, width), height, width)


def rings_bbox(rings: Sequence[Ring], height: int, width: int) -> tuple[float, float, float, float]:
    """Extent ``(x, y, w, h)`` of polygon rings clipped to the image (COCO's bbox for polygon objects)."""
    xs = [v for ring in rings for v in ring[0::2]]
    ys = [v for ring in rings for v in ring[1::2]]
    if not xs:
        return 0.0, 0.0, 0.0, 0.0
    x0, x1 = min(max(min(xs), 0.0), width), min(max(max(xs), 0.0), width)
    y0, y1 = min(max(min(ys), 0.0), height), min(max(max(ys), 0.0), height)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)
