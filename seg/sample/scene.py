"""The sample's ground truth: streets, an avenue, buildings and trees of an invented neighbourhood of Dakar.

The layout is drawn in ground metres on a local east/south frame and stored in EPSG:3857 metres, so the footprints
are geographic objects first; :func:`pixel_rings` projects them onto the tiles of zoom :data:`ZOOM`. Everything comes
from one seeded generator, so the scene is the same on every run.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from seg.collector.tiles import TILE_SIZE, Tile, meters_to_pixels, pixels_to_meters, resolution, tile_at

#: Where the sample lies (Dakar, Senegal), its zoom and how many tiles it spans on each side.
LON, LAT, ZOOM, GRID = -17.45, 14.69, 18, 6
SEED = 2024

STREET_WIDTH, AVENUE_WIDTH = 9.0, 20.0
STREET_STEP_E, STREET_STEP_S = 140.0, 110.0
LOT_W, LOT_D, SIDEWALK = 30.0, 31.0, 2.5

#: Roof colours (RGB): concrete, white, terracotta, blue tin, beige, dark grey, green tin.
ROOF_COLOURS = (
    (196, 196, 192),
    (230, 228, 222),
    (176, 94, 68),
    (100, 128, 158),
    (212, 196, 162),
    (122, 120, 116),
    (98, 132, 106),
)

Point = tuple[float, float]


@dataclass(frozen=True)
class Roof:
    """How a building's roof looks: a colour index, pitched or flat, and the ridge direction (radians, local frame)."""

    colour: int
    pitched: bool
    angle: float


@dataclass(frozen=True)
class Footprint:
    """One true object: ``rings`` in EPSG:3857 metres, the outer ring first, holes after."""

    id: int
    category: str
    shape: str
    rings: tuple[tuple[Point, ...], ...]
    roof: Roof | None = None


@dataclass(frozen=True)
class Tree:
    """A tree crown: centre in EPSG:3857 metres and radius in ground metres."""

    x: float
    y: float
    radius: float


@dataclass(frozen=True)
class Scene:
    """The sample's area (a square of tiles) and what stands on it."""

    tiles: tuple[Tile, ...]
    origin: tuple[int, int]
    size: int
    footprints: tuple[Footprint, ...]
    trees: tuple[Tree, ...]

    @property
    def zoom(self) -> int:
        return self.tiles[0].z


class _Frame:
    """Local ground metres (east, south from the area's north-west corner) to EPSG:3857 metres."""

    def __init__(self, left: float, top: float, lat: float) -> None:
        self.left, self.top = left, top
        self.k = 1.0 / math.cos(math.radians(lat))

    def __call__(self, e: float, s: float) -> Point:
        return self.left + e * self.k, self.top - s * self.k


def _rect(cx: float, cy: float, w: float, h: float, angle: float = 0.0) -> list[Point]:
    c, s = math.cos(angle), math.sin(angle)
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    return [(cx + dx * c - dy * s, cy + dx * s + dy * c) for dx, dy in corners]


def _l_shape(x0: float, y0: float, w: float, h: float, nw: float, nh: float, corner: int) -> list[Point]:
    """A ``w`` x ``h`` box at (x0, y0) with an ``nw`` x ``nh`` notch cut from corner 0..3 (clockwise from NW)."""
    x1, y1 = x0 + w, y0 + h
    if corner == 0:
        return [(x0 + nw, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0 + nh), (x0 + nw, y0 + nh)]
    if corner == 1:
        return [(x0, y0), (x1 - nw, y0), (x1 - nw, y0 + nh), (x1, y0 + nh), (x1, y1), (x0, y1)]
    if corner == 2:
        return [(x0, y0), (x1, y0), (x1, y1 - nh), (x1 - nw, y1 - nh), (x1 - nw, y1), (x0, y1)]
    return [(x0, y0), (x1, y0), (x1, y1), (x0 + nw, y1), (x0 + nw, y1 - nh), (x0, y1 - nh)]


def _avenue_distance(e: float, s: float, a: Point, b: Point) -> float:
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    return abs(dy * (e - ax) - dx * (s - ay)) / math.hypot(dx, dy)


def _roads(extent: float) -> tuple[list[tuple[str, list[Point]]], list[float], list[float], tuple[Point, Point]]:
    """Streets (vertical and horizontal, reaching past the area), the avenue, and where they run."""
    roads: list[tuple[str, list[Point]]] = []
    streets_e = [25.0 + i * STREET_STEP_E for i in range(-1, int(extent / STREET_STEP_E) + 2)]
    streets_s = [40.0 + j * STREET_STEP_S for j in range(-1, int(extent / STREET_STEP_S) + 2)]
    roads += [("street", _rect(e, extent / 2, STREET_WIDTH, extent + 40)) for e in streets_e if 0 <= e <= extent]
    roads += [("street", _rect(extent / 2, s, extent + 40, STREET_WIDTH)) for s in streets_s if 0 <= s <= extent]
    a, b = (-20.0, 0.80 * extent), (extent + 20.0, 0.22 * extent)
    angle = math.atan2(b[1] - a[1], b[0] - a[0])
    roads.append(("avenue", _rect((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, math.dist(a, b), AVENUE_WIDTH, angle)))
    return roads, streets_e, streets_s, (a, b)


def _courtyard_site(
    blocks: list[tuple[float, float, float, float]],
    extent: float,
    res: float,
    clear: Callable[[float, float, float], bool],
) -> Point:
    """Centre of the block nearest the middle where a 60 m square sits wholly inside one tile, clear of the avenue."""

    def centre_of(block: tuple[float, float, float, float]) -> Point:
        return (block[0] + block[2]) / 2, (block[1] + block[3]) / 2

    def in_one_tile(v: float, half: float) -> bool:
        return (v - half) // TILE_SIZE == (v + half) // TILE_SIZE and 8 <= (
            v - half
        ) % TILE_SIZE <= TILE_SIZE - 8 - 2 * half

    half = 30.0 / res
    for block in sorted(blocks, key=lambda b: math.dist(centre_of(b), (extent / 2, extent / 2))):
        ce, cs = centre_of(block)
        if in_one_tile(ce / res, half) and in_one_tile(cs / res, half) and clear(ce, cs, 32.0):
            return ce, cs
    raise RuntimeError("no block can hold the courtyard building")


def build_scene(seed: int = SEED) -> Scene:
    """Lay out the sample's neighbourhood: a street grid, a diagonal avenue, lots with buildings, trees."""
    rng = np.random.default_rng(seed)
    centre = tile_at(LON, LAT, ZOOM)
    x0, y0 = centre.x - GRID // 2, centre.y - GRID // 2
    tiles = tuple(Tile(x0 + i, y0 + j, ZOOM) for j in range(GRID) for i in range(GRID))
    size = GRID * TILE_SIZE
    frame = _Frame(*pixels_to_meters(x0 * TILE_SIZE, y0 * TILE_SIZE, ZOOM), LAT)
    extent = size * resolution(ZOOM) / frame.k

    roads, streets_e, streets_s, avenue = _roads(extent)
    pad = STREET_WIDTH / 2 + SIDEWALK
    blocks = [
        (e0 + pad, s0 + pad, e1 - pad, s1 - pad)
        for e0, e1 in itertools.pairwise(streets_e)
        for s0, s1 in itertools.pairwise(streets_s)
    ]

    def clear_of_avenue(e: float, s: float, radius: float) -> bool:
        return _avenue_distance(e, s, *avenue) > AVENUE_WIDTH / 2 + SIDEWALK + radius

    ce, cs = _courtyard_site(blocks, extent, resolution(ZOOM) / frame.k, clear_of_avenue)
    shapes: list[tuple[str, list[list[Point]], Roof]] = [
        ("courtyard", [_rect(ce, cs, 46.0, 40.0), _rect(ce, cs, 20.0, 16.0)], Roof(0, False, 0.0))
    ]
    trees: list[tuple[float, float, float]] = [(ce + 3.0, cs - 2.0, 4.0)]
    for be0, bs0, be1, bs1 in blocks:
        cols, rows = max(int((be1 - be0) // LOT_W), 1), max(int((bs1 - bs0) // LOT_D), 1)
        lw, ld = (be1 - be0) / cols, (bs1 - bs0) / rows
        for r in range(rows):
            for c in range(cols):
                le, ls = be0 + c * lw, bs0 + r * ld
                lc = (le + lw / 2, ls + ld / 2)
                outside = lc[0] < -lw or lc[1] < -ld or lc[0] > extent + lw or lc[1] > extent + ld
                on_court = abs(lc[0] - ce) < 23.0 + lw / 2 + 1 and abs(lc[1] - cs) < 20.0 + ld / 2 + 1
                if outside or on_court or not clear_of_avenue(*lc, math.hypot(lw, ld) / 2):
                    continue
                _fill_lot(rng, le, ls, lw, ld, shapes, trees)

    footprints: list[Footprint] = []
    for shape, rings, roof in shapes:
        metres = tuple(tuple(frame(*p) for p in ring) for ring in rings)
        footprints.append(Footprint(len(footprints) + 1, "building", shape, metres, roof))
    for shape, ring in roads:
        footprints.append(Footprint(len(footprints) + 1, "road", shape, (tuple(frame(*p) for p in ring),)))
    tree_list = tuple(Tree(*frame(e, s), radius) for e, s, radius in trees)
    return Scene(tiles, (x0 * TILE_SIZE, y0 * TILE_SIZE), size, tuple(footprints), tree_list)


def _fill_lot(rng: np.random.Generator, le: float, ls: float, lw: float, ld: float, shapes: list, trees: list) -> None:
    """Put one building (or nothing but trees) on a lot."""
    margin = 2.0
    roll = rng.random()
    colour = int(rng.integers(len(ROOF_COLOURS)))
    if roll < 0.14:
        for _ in range(int(rng.integers(1, 4))):
            radius = float(rng.uniform(2.5, 5.0))
            trees.append(
                (le + float(rng.uniform(radius, lw - radius)), ls + float(rng.uniform(radius, ld - radius)), radius)
            )
        return
    if roll < 0.56:
        w, h = float(rng.uniform(10, lw - 2 * margin)), float(rng.uniform(10, ld - 2 * margin))
        x, y = (
            le + margin + float(rng.uniform(0, lw - 2 * margin - w)),
            ls + margin + float(rng.uniform(0, ld - 2 * margin - h)),
        )
        pitched = bool(rng.random() < 0.35)
        angle = 0.0 if w >= h else math.pi / 2
        shapes.append(("rectangle", [_rect(x + w / 2, y + h / 2, w, h)], Roof(colour, pitched, angle)))
    elif roll < 0.74:
        w, h = float(rng.uniform(14, lw - 2 * margin)), float(rng.uniform(14, ld - 2 * margin))
        nw, nh = w * float(rng.uniform(0.35, 0.6)), h * float(rng.uniform(0.35, 0.6))
        x, y = (
            le + margin + float(rng.uniform(0, lw - 2 * margin - w)),
            ls + margin + float(rng.uniform(0, ld - 2 * margin - h)),
        )
        shapes.append(("l_shape", [_l_shape(x, y, w, h, nw, nh, int(rng.integers(4)))], Roof(colour, False, 0.0)))
    elif roll < 0.93:
        w, h = float(rng.uniform(8, 14)), float(rng.uniform(6, 11))
        angle = float(rng.uniform(0.25, 1.1)) * (1 if rng.random() < 0.5 else -1)
        room = min(lw, ld) / 2 - margin - math.hypot(w, h) / 2
        cx = le + lw / 2 + float(rng.uniform(-1, 1)) * max(room, 0)
        cy = ls + ld / 2 + float(rng.uniform(-1, 1)) * max(room, 0)
        shapes.append(("rotated", [_rect(cx, cy, w, h, angle)], Roof(colour, bool(rng.random() < 0.5), angle)))
    else:
        spots = [(0.3, 0.3), (0.7, 0.35)][: int(rng.integers(1, 3))]
        for fe, fs in spots:
            w, h = float(rng.uniform(2.5, 4.5)), float(rng.uniform(2.5, 4.5))
            cx, cy = le + lw * fe + float(rng.uniform(-2, 2)), ls + ld * fs + float(rng.uniform(-2, 2))
            shapes.append(("tiny", [_rect(cx, cy, w, h)], Roof(colour, False, 0.0)))
        trees.append((le + lw * 0.7, ls + ld * 0.75, float(rng.uniform(2.5, 4.0))))


def pixel_rings(footprint: Footprint, scene: Scene) -> list[list[int]]:
    """The footprint's rings in the scene's mosaic pixels (integer vertices, flat ``[x1, y1, ...]`` lists)."""
    ox, oy = scene.origin
    rings = []
    for ring in footprint.rings:
        flat: list[int] = []
        for mx, my in ring:
            px, py = meters_to_pixels(mx, my, scene.zoom)
            flat += [round(px - ox), round(py - oy)]
        rings.append(flat)
    return rings
