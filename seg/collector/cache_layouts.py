"""File layouts of SAS.Planet tile caches: where tile (z, x, y) of one map lives, relative to the map's folder.

``z`` is the 0-based XYZ zoom, ``x``/``y`` the XYZ column/row (see :mod:`seg.collector.tiles`). Paths are POSIX
relative paths; ``ext`` includes the dot (``.jpg``; OsmAnd's ``.png.tile``). Every layout both builds a path and
parses one back; :func:`parse` only accepts a path that the layout would build itself for the tile it names (so
``x007``, stray files and other layouts' paths are rejected) and only tiles on the grid of their zoom.

==============  ==========================================================================================
name            path of tile (z, x, y)
==============  ==========================================================================================
``sas``         ``z{z+1}/{x>>10}/x{x}/{y>>10}/y{y}.ext`` (SAS.Planet native ``cache``; note ``z+1``)
``googlemv``    ``{z+1:02d}/t{quadkey}.ext``, one letter per level, most significant first: q = (x0, y0),
                r = (x1, y0), t = (x0, y1), s = (x1, y1) (``cache_old``)
``earthslicer`` ``[10-{X9}-{Y9}/]{z+1:02d}/[{chr(60+z)}{X5}{Y5}/]{z+1:02d}-{X}-{Y}.ext`` (``cache_es``): X/Y
                zero-padded to a zoom-dependent width (none below z4, 2 below z7, 3 below z10, 4 below z14,
                5 below z17, 6 below z20, else 7); the ``chr(60+z)`` folder (tile indices ``>> 5``) from z6,
                the ``10-..`` folder (indices at zoom 9) from z10, as in SAS.Planet's ``u_TileFileNameES``
``gmt``         ``z{z}/{y}/{x}.ext`` (GlobalMapper, ``cache_gmt``; y first)
``gmt_flat``    ``z{z}/{y}_{x}.ext`` (GlobalMapper variant)
``gmt_plain``   ``{z}/{y}/{x}.ext`` (GlobalMapper variant without the ``z``: same shape as ``mobac``)
``mobac``       ``{z}/{x}/{y}.ext`` (Mobile Atlas Creator, ``cache_ma``: standard XYZ)
``osmand``      ``{z}/{x}/{y}.png.tile`` (OsmAnd: image extension followed by ``.tile``)
``tms``         ``{z}/{x}/{2**z-1-y}.ext`` (``cache_tms``: rows counted from the south)
==============  ==========================================================================================

A zero-byte ``.tne`` file at a tile's path (with ``.tne`` as its extension) marks a tile known to be missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import NamedTuple

from seg.collector.tiles import MAX_ZOOM, Tile, is_valid

#: Extensions a tile file may have (lower case); ``.tne`` marks a known-missing tile.
TILE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".kmz", ".tne"})
MISSING_EXT = ".tne"

_INT = re.compile(r"\d{1,10}")


class Layout(NamedTuple):
    """One cache layout.

    Attributes:
        name: registry key.
        path: ``(tile, ext) -> relative path``.
        candidate: ``relative path -> tile`` read from the path's parts, or None; :func:`parse` checks it.
        description: one line for help texts.
    """

    name: str
    path: Callable[[Tile, str], PurePosixPath]
    candidate: Callable[[tuple[str, ...]], Tile | None]
    description: str


def split_ext(name: str) -> tuple[str, str]:
    """``"y12.png.tile"`` -> ``("y12", ".png.tile")``: the extension starts at the first dot."""
    stem, dot, rest = name.partition(".")
    return stem, dot + rest


def _int(text: str, prefix: str = "") -> int | None:
    if not text.startswith(prefix):
        return None
    digits = text[len(prefix) :]
    return int(digits) if _INT.fullmatch(digits) else None


def _ints(*values: int | None) -> bool:
    return all(v is not None for v in values)


# --- SAS.Planet native ---------------------------------------------------------------------------------------------


def _sas_path(tile: Tile, ext: str) -> PurePosixPath:
    x, y, z = tile
    return PurePosixPath(f"z{z + 1}", str(x >> 10), f"x{x}", str(y >> 10), f"y{y}{ext}")


def _sas_candidate(parts: tuple[str, ...]) -> Tile | None:
    if len(parts) != 5:
        return None
    z, x, y = _int(parts[0], "z"), _int(parts[2], "x"), _int(parts[4], "y")
    return Tile(x, y, z - 1) if _ints(x, y, z) else None  # type: ignore[operator, arg-type]


# --- GoogleMV quadtree ---------------------------------------------------------------------------------------------

_QUAD = {(0, 0): "q", (1, 0): "r", (0, 1): "t", (1, 1): "s"}
_QUAD_BACK = {v: k for k, v in _QUAD.items()}


def _googlemv_path(tile: Tile, ext: str) -> PurePosixPath:
    x, y, z = tile
    letters = "".join(_QUAD[(x >> bit) & 1, (y >> bit) & 1] for bit in range(z - 1, -1, -1))
    return PurePosixPath(f"{z + 1:02d}", f"t{letters}{ext}")


def _googlemv_candidate(parts: tuple[str, ...]) -> Tile | None:
    if len(parts) != 2 or not parts[1].startswith("t") or _int(parts[0]) is None:
        return None
    x = y = 0
    for letter in parts[1][1:]:
        if letter not in _QUAD_BACK:
            return None
        dx, dy = _QUAD_BACK[letter]
        x, y = 2 * x + dx, 2 * y + dy
    return Tile(x, y, len(parts[1]) - 1)


# --- EarthSlicer ---------------------------------------------------------------------------------------------------


def _es_int(value: int, z: int) -> str:
    width = 0 if z < 4 else 2 if z < 7 else 3 if z < 10 else 4 if z < 14 else 5 if z < 17 else 6 if z < 20 else 7
    return str(value).zfill(width)


def _earthslicer_path(tile: Tile, ext: str) -> PurePosixPath:
    x, y, z = tile
    zoom = f"{z + 1:02d}"
    name = f"{zoom}-{_es_int(x, z)}-{_es_int(y, z)}{ext}"
    if z < 6:
        return PurePosixPath(zoom, name)
    block = f"{chr(60 + z)}{_es_int(x >> 5, z - 5)}{_es_int(y >> 5, z - 5)}"
    if z < 10:
        return PurePosixPath(zoom, block, name)
    top = f"10-{_es_int(x >> (z - 9), 9)}-{_es_int(y >> (z - 9), 9)}"
    return PurePosixPath(top, zoom, block, name)


def _earthslicer_candidate(parts: tuple[str, ...]) -> Tile | None:
    fields = parts[-1].split("-")
    if len(fields) != 3:
        return None
    z, x, y = (_int(f) for f in fields)
    return Tile(x, y, z - 1) if _ints(x, y, z) else None  # type: ignore[operator, arg-type]


# --- GlobalMapper, Mobile Atlas Creator, OsmAnd, TMS ---------------------------------------------------------------


def _three(parts: tuple[str, ...], zprefix: str = "") -> tuple[int, int, int] | None:
    if len(parts) != 3:
        return None
    z, a, b = _int(parts[0], zprefix), _int(parts[1]), _int(parts[2])
    return (z, a, b) if _ints(z, a, b) else None  # type: ignore[return-value]


def _gmt_candidate(parts: tuple[str, ...]) -> Tile | None:
    found = _three(parts, "z")
    return Tile(found[2], found[1], found[0]) if found else None


def _gmt_flat_candidate(parts: tuple[str, ...]) -> Tile | None:
    if len(parts) != 2:
        return None
    fields = parts[1].split("_")
    if len(fields) != 2:
        return None
    z, y, x = _int(parts[0], "z"), _int(fields[0]), _int(fields[1])
    return Tile(x, y, z) if _ints(x, y, z) else None  # type: ignore[arg-type]


def _gmt_plain_candidate(parts: tuple[str, ...]) -> Tile | None:
    found = _three(parts)
    return Tile(found[2], found[1], found[0]) if found else None


def _xyz_candidate(parts: tuple[str, ...]) -> Tile | None:
    found = _three(parts)
    return Tile(found[1], found[2], found[0]) if found else None


def _tms_candidate(parts: tuple[str, ...]) -> Tile | None:
    found = _three(parts)
    if not found:
        return None
    z, x, row = found
    return Tile(x, 2**z - 1 - row, z) if z <= 30 else None


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("sas", _sas_path, _sas_candidate, "SAS.Planet native: z{z+1}/{x>>10}/x{x}/{y>>10}/y{y}"),
        Layout("googlemv", _googlemv_path, _googlemv_candidate, "GoogleMV quadtree: {z+1:02d}/t{qrts...}"),
        Layout("earthslicer", _earthslicer_path, _earthslicer_candidate, "EarthSlicer: .../{z+1:02d}-{X}-{Y}"),
        Layout("gmt", lambda t, e: PurePosixPath(f"z{t.z}", str(t.y), f"{t.x}{e}"), _gmt_candidate, "z{z}/{y}/{x}"),
        Layout(
            "gmt_flat", lambda t, e: PurePosixPath(f"z{t.z}", f"{t.y}_{t.x}{e}"), _gmt_flat_candidate, "z{z}/{y}_{x}"
        ),
        Layout(
            "gmt_plain",
            lambda t, e: PurePosixPath(str(t.z), str(t.y), f"{t.x}{e}"),
            _gmt_plain_candidate,
            "{z}/{y}/{x}",
        ),
        Layout("mobac", lambda t, e: PurePosixPath(str(t.z), str(t.x), f"{t.y}{e}"), _xyz_candidate, "{z}/{x}/{y}"),
        Layout(
            "osmand",
            lambda t, e: PurePosixPath(str(t.z), str(t.x), f"{t.y}{e}"),
            _xyz_candidate,
            "{z}/{x}/{y}.png.tile",
        ),
        Layout(
            "tms",
            lambda t, e: PurePosixPath(str(t.z), str(t.x), f"{2**t.z - 1 - t.y}{e}"),
            _tms_candidate,
            "{z}/{x}/{2^z-1-y}",
        ),
    )
}


def _ext_ok(layout: str, ext: str) -> bool:
    lowered = ext.lower()
    if layout == "osmand":
        return lowered.endswith(".tile") and lowered[: -len(".tile")] in TILE_EXTS
    return lowered in TILE_EXTS


def parse(layout: str, rel: PurePosixPath, *, on_grid: bool = True) -> tuple[Tile, str] | None:
    """The tile and extension a relative path names in ``layout``, or None for anything else.

    The path must be exactly what :func:`tile_path` builds for that tile (canonical: no leading zeros where the
    layout has none) and the extension a tile extension (``TILE_EXTS``; OsmAnd's with ``.tile`` appended). With
    ``on_grid`` (the default) the tile must also lie on its zoom's grid; without it, a path like SAS.Planet's
    ``z3/0/x0/0/y4.jpg`` (row 4 of a 4-row zoom) parses to the off-grid tile.
    """
    entry = LAYOUTS[layout]
    if not rel.parts:
        return None
    stem, ext = split_ext(rel.parts[-1])
    if not _ext_ok(layout, ext):
        return None
    tile = entry.candidate((*rel.parts[:-1], stem))
    if tile is None or min(tile) < 0 or tile.z > MAX_ZOOM or (on_grid and not is_valid(tile)):
        return None
    if entry.path(tile, ext) != rel:
        return None
    return tile, ext


def tile_path(layout: str, tile: Tile, ext: str) -> PurePosixPath:
    """Where ``layout`` keeps ``tile`` with extension ``ext`` (``".jpg"``), relative to the map's folder."""
    return LAYOUTS[layout].path(tile, ext)
