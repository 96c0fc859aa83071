"""Web-Mercator (EPSG:3857) XYZ tile math.

Tiles are XYZ ("slippy map") tiles: ``z`` is the 0-based zoom, ``x`` counts columns from the antimeridian eastwards,
``y`` counts rows from the north edge southwards; every tile is 256 x 256 pixels and zoom ``z`` has ``2**z`` columns
and rows. Global pixel coordinates at zoom ``z`` have their origin at the north-west corner of tile (0, 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

EARTH_RADIUS = 6378137.0
#: Half the extent of the EPSG:3857 square, in metres.
ORIGIN_SHIFT = math.pi * EARTH_RADIUS
TILE_SIZE = 256
#: Largest latitude EPSG:3857 covers.
MAX_LATITUDE = 85.0511287798066
#: Deepest zoom the tile math accepts (SAS.Planet stops at 23; 2**30 keeps indices in 32 bits).
MAX_ZOOM = 30


class Tile(NamedTuple):
    """An XYZ tile."""

    x: int
    y: int
    z: int


class Bounds(NamedTuple):
    """A rectangle in EPSG:3857 metres."""

    left: float
    bottom: float
    right: float
    top: float


def is_valid(tile: Tile) -> bool:
    """Whether ``tile`` lies on the grid of its zoom (``0 <= x, y < 2**z``, ``0 <= z <= MAX_ZOOM``)."""
    x, y, z = tile
    return 0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z


def lnglat_to_meters(lon: float, lat: float) -> tuple[float, float]:
    """Longitude/latitude (EPSG:4326 degrees) to EPSG:3857 metres.

    Raises:
        ValueError: latitude outside what Web Mercator covers.
    """
    if not -MAX_LATITUDE <= lat <= MAX_LATITUDE:
        raise ValueError(f"latitude {lat} outside Web Mercator's +-{MAX_LATITUDE}")
    mx = math.radians(lon) * EARTH_RADIUS
    my = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * EARTH_RADIUS
    return mx, my


def meters_to_lnglat(mx: float, my: float) -> tuple[float, float]:
    """EPSG:3857 metres to longitude/latitude degrees."""
    lon = math.degrees(mx / EARTH_RADIUS)
    lat = math.degrees(2 * math.atan(math.exp(my / EARTH_RADIUS)) - math.pi / 2)
    return lon, lat


def resolution(z: int) -> float:
    """EPSG:3857 metres per pixel at zoom ``z``."""
    return 2 * ORIGIN_SHIFT / (TILE_SIZE * 2**z)


def meters_to_pixels(mx: float, my: float, z: int) -> tuple[float, float]:
    """EPSG:3857 metres to global pixel coordinates at zoom ``z`` (origin at the north-west corner of the world)."""
    res = resolution(z)
    return (mx + ORIGIN_SHIFT) / res, (ORIGIN_SHIFT - my) / res


def pixels_to_meters(px: float, py: float, z: int) -> tuple[float, float]:
    """Global pixel coordinates at zoom ``z`` to EPSG:3857 metres."""
    res = resolution(z)
    return px * res - ORIGIN_SHIFT, ORIGIN_SHIFT - py * res


def tile_at(lon: float, lat: float, z: int) -> Tile:
    """The tile of zoom ``z`` holding a longitude/latitude (points on the world's edge go to the edge tiles)."""
    px, py = meters_to_pixels(*lnglat_to_meters(lon, lat), z)
    top = 2**z - 1
    return Tile(min(max(int(px // TILE_SIZE), 0), top), min(max(int(py // TILE_SIZE), 0), top), z)


def tile_bounds(tile: Tile) -> Bounds:
    """The EPSG:3857 extent of a tile."""
    left, top = pixels_to_meters(tile.x * TILE_SIZE, tile.y * TILE_SIZE, tile.z)
    right, bottom = pixels_to_meters((tile.x + 1) * TILE_SIZE, (tile.y + 1) * TILE_SIZE, tile.z)
    return Bounds(left, bottom, right, top)


def tile_lnglat_bounds(tile: Tile) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a tile in degrees."""
    b = tile_bounds(tile)
    west, south = meters_to_lnglat(b.left, b.bottom)
    east, north = meters_to_lnglat(b.right, b.top)
    return west, south, east, north


def tiles_covering(west: float, south: float, east: float, north: float, z: int) -> Iterator[Tile]:
    """The tiles of zoom ``z`` that intersect a longitude/latitude box, row by row from the north-west.

    Latitudes are clamped to what Web Mercator covers; a box crossing the antimeridian (``west > east``) is not
    supported.

    Raises:
        ValueError: ``west > east`` or ``south > north``.
    """
    if west > east or south > north:
        raise ValueError(f"empty or antimeridian-crossing box ({west}, {south}, {east}, {north})")
    south = max(south, -MAX_LATITUDE)
    north = min(north, MAX_LATITUDE)
    west = max(west, -180.0)
    east = min(east, 180.0)
    x0, y0, _ = tile_at(west, north, z)
    x1, y1, _ = tile_at(east, south, z)
    for y in range(y0, y1 + 1):
        for x in range(x0, x1 + 1):
            yield Tile(x, y, z)


def parent(tile: Tile) -> Tile:
    """The tile one zoom up that contains ``tile``.

    Raises:
        ValueError: ``tile`` is at zoom 0.
    """
    if tile.z == 0:
        raise ValueError("tile at zoom 0 has no parent")
    return Tile(tile.x >> 1, tile.y >> 1, tile.z - 1)


def children(tile: Tile) -> list[Tile]:
    """The four tiles one zoom down, north-west, north-east, south-west, south-east."""
    x, y, z = 2 * tile.x, 2 * tile.y, tile.z + 1
    return [Tile(x, y, z), Tile(x + 1, y, z), Tile(x, y + 1, z), Tile(x + 1, y + 1, z)]
