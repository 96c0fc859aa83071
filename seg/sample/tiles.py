"""Web-Mercator tile math and the SAS.Planet native cache layout, for the embedded sample.

Tiles are XYZ ("slippy map") tiles of EPSG:3857: ``z`` is the 0-based zoom, ``x`` counts columns from the
antimeridian eastwards, ``y`` counts rows from the north edge southwards; every tile is 256 x 256 pixels. Global pixel
coordinates at zoom ``z`` have their origin at the north-west corner of tile (0, 0).

SAS.Planet's native cache (``cache`` type) stores tile (z, x, y) of a map at
``<map>/z{z+1}/{x >> 10}/x{x}/{y >> 10}/y{y}.<ext>`` (note the 1-based zoom folder) and marks a tile the server
reported missing with a zero-byte ``y{y}.tne`` beside it.
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath
from typing import NamedTuple

EARTH_RADIUS = 6378137.0
#: Half the extent of the EPSG:3857 square, in metres.
ORIGIN_SHIFT = math.pi * EARTH_RADIUS
TILE_SIZE = 256
#: Largest latitude EPSG:3857 covers.
MAX_LATITUDE = 85.0511287798066


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
    """The tile of zoom ``z`` holding a longitude/latitude."""
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


def native_cache_path(tile: Tile, ext: str = ".jpg") -> PurePosixPath:
    """Where SAS.Planet's native cache keeps ``tile``, relative to the map's folder (``z`` folder is ``z + 1``)."""
    x, y, z = tile
    return PurePosixPath(f"z{z + 1}", str(x >> 10), f"x{x}", str(y >> 10), f"y{y}{ext}")


def write_native_tile(map_dir: Path, tile: Tile, data: bytes, ext: str = ".jpg") -> Path:
    """Store encoded tile bytes in a SAS.Planet native cache map folder; returns the file written."""
    path = map_dir / native_cache_path(tile, ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_missing_marker(map_dir: Path, tile: Tile) -> Path:
    """Write SAS.Planet's zero-byte ``.tne`` marker of a tile known to be missing; returns the file written."""
    return write_native_tile(map_dir, tile, b"", ext=".tne")
