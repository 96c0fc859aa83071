"""Cutting the scene's footprints into per-tile polygons (Sutherland-Hodgman clipping to the tile square).

Clipping a ring against the convex tile square with Sutherland-Hodgman keeps concave rings correct; where a ring leaves
and re-enters the square the result may run along the border with zero width, which rasterizes to nothing. Clipped
vertices are rounded to whole pixels, as an annotator's clicks would be.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from seg.collector.tiles import TILE_SIZE
from seg.dataset import rle as coco_rle
from seg.dataset.polygons import polygons_to_rle
from seg.sample.scene import Footprint, Scene, pixel_rings

#: Pieces smaller than this (pixels) are slivers no annotator would draw; they are left out.
MIN_AREA = 6

Point = tuple[float, float]


@dataclass(frozen=True)
class Piece:
    """The part of one footprint inside one tile, in the tile's pixels (integer vertices, holes after the outer).

    ``cut`` is true when the tile border cut the footprint; ``area`` is the piece's pixel count.
    """

    footprint: Footprint
    rings: tuple[tuple[int, ...], ...]
    area: int
    cut: bool


def _clip_edge(
    points: list[Point], keep: Callable[[Point], bool], cross: Callable[[Point, Point], Point]
) -> list[Point]:
    out: list[Point] = []
    for i, current in enumerate(points):
        previous = points[i - 1]
        if keep(current):
            if not keep(previous):
                out.append(cross(previous, current))
            out.append(current)
        elif keep(previous):
            out.append(cross(previous, current))
    return out


def clip_ring(ring: Sequence[float], x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    """Clip a flat ring ``[x1, y1, ...]`` to the rectangle ``[x0, x1] x [y0, y1]`` (Sutherland-Hodgman)."""
    points: list[Point] = [(float(ring[i]), float(ring[i + 1])) for i in range(0, len(ring), 2)]

    def at_x(x: float) -> Callable[[Point, Point], Point]:
        return lambda a, b: (x, a[1] + (b[1] - a[1]) * (x - a[0]) / (b[0] - a[0]))

    def at_y(y: float) -> Callable[[Point, Point], Point]:
        return lambda a, b: (a[0] + (b[0] - a[0]) * (y - a[1]) / (b[1] - a[1]), y)

    for keep, cross in (
        (lambda p: p[0] >= x0, at_x(x0)),
        (lambda p: p[0] <= x1, at_x(x1)),
        (lambda p: p[1] >= y0, at_y(y0)),
        (lambda p: p[1] <= y1, at_y(y1)),
    ):
        if not points:
            break
        points = _clip_edge(points, keep, cross)
    return points


def _whole_pixels(points: list[Point]) -> tuple[int, ...] | None:
    """Round to integers, drop repeated vertices; None when fewer than 3 distinct vertices remain."""
    out: list[tuple[int, int]] = []
    for x, y in points:
        p = (round(x), round(y))
        if not out or out[-1] != p:
            out.append(p)
    while len(out) > 1 and out[0] == out[-1]:
        out.pop()
    if len(set(out)) < 3:
        return None
    return tuple(v for p in out for v in p)


def rings_rle(rings: Sequence[Sequence[int]], size: int = TILE_SIZE) -> str:
    """Compressed COCO RLE of an outer ring minus its holes, on a ``size`` x ``size`` image."""
    outer = polygons_to_rle([list(rings[0])], size, size)
    if len(rings) == 1:
        return outer
    mask = coco_rle.decode(outer, size, size)
    for hole in rings[1:]:
        mask &= 1 - coco_rle.decode(polygons_to_rle([list(hole)], size, size), size, size)
    return coco_rle.encode(mask)


def tile_pieces(scene: Scene, column: int, row: int, rings_px: Sequence[list[list[int]]] | None = None) -> list[Piece]:
    """The footprints' pieces inside tile (``column``, ``row``) of the scene's grid, in footprint order.

    Args:
        scene: the scene.
        column, row: the tile's place in the scene's grid (0-based, from the north-west).
        rings_px: every footprint's :func:`~seg.sample.scene.pixel_rings`, when already computed.
    """
    if rings_px is None:
        rings_px = [pixel_rings(fp, scene) for fp in scene.footprints]
    ox, oy = column * TILE_SIZE, row * TILE_SIZE
    pieces = []
    for footprint, rings in zip(scene.footprints, rings_px, strict=True):
        xs, ys = rings[0][0::2], rings[0][1::2]
        if max(xs) <= ox or min(xs) >= ox + TILE_SIZE or max(ys) <= oy or min(ys) >= oy + TILE_SIZE:
            continue
        local = [tuple(v - (ox if k % 2 == 0 else oy) for k, v in enumerate(ring)) for ring in rings]
        clipped = []
        for i, ring in enumerate(local):
            flat = _whole_pixels(clip_ring(ring, 0, 0, TILE_SIZE, TILE_SIZE))
            if flat is None and i == 0:
                break
            if flat is not None:
                clipped.append(flat)
        if not clipped:
            continue
        area = coco_rle.area(rings_rle(clipped), TILE_SIZE, TILE_SIZE)
        if area >= MIN_AREA:
            pieces.append(Piece(footprint, tuple(clipped), area, cut=tuple(clipped) != tuple(local)))
    return pieces
