"""Writers of the embedded sample's SAS.Planet native cache (the tile math lives in :mod:`seg.collector.tiles`).

SAS.Planet's native cache (``cache`` type) stores tile (z, x, y) of a map at
``<map>/z{z+1}/{x >> 10}/x{x}/{y >> 10}/y{y}.<ext>`` (note the 1-based zoom folder) and marks a tile the server
reported missing with a zero-byte ``y{y}.tne`` beside it.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from seg.collector.tiles import Tile


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
