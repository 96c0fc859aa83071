"""Read SAS.Planet tile caches: detect the layout and the maps, list zooms and tiles, read tile bytes.

A cache root holds one folder per map (``<root>/<map>/...``, SAS.Planet's ``cache`` folder); :func:`open_cache` also
accepts one map folder or one ``.mbtiles`` file, and ``<root>/<name>.mbtiles`` files count as maps named ``<name>``.

Detection: a map folder holding ``*.sqlitedb`` files is a SAS SQLite cache, one holding ``*.sdb`` files a BerkeleyDB
cache (reported as unreadable, never opened). Otherwise the first files found (up to ``DETECT_FILES``) are parsed
with each file layout of :mod:`seg.collector.cache_layouts` and the layout naming most of them wins, ties going to
the order ``sas, googlemv, earthslicer, gmt, gmt_flat, osmand, mobac``. ``{z}/{a}/{b}`` files are ambiguous:
they are read as Mobile Atlas Creator's ``{z}/{x}/{y}``; pass ``layout="tms"`` or ``layout="gmt_plain"`` (or any
other layout name) to override detection.

Database layouts:

- SAS SQLite: one DB per 256 x 256-tile block at ``z{z+1}/{x>>10}/{y>>10}/{x>>8}.{y>>8}.sqlitedb``, table
  ``t(x, y, v, c, s, h, d, b)`` with the absolute tile column/row in ``x``/``y``, the version in ``v``, the download
  time in ``d`` and the image in ``b``. Several versions of one tile: the highest ``v`` wins (then the latest ``d``);
  an empty or NULL ``b`` is a known-missing tile.
- MBTiles: ``tiles(zoom_level, tile_column, tile_row, tile_data)`` with rows counted from the south unless
  ``metadata`` has ``scheme = xyz``.

Hostile input: files and folders whose real path leaves the cache root (symlinks out) are skipped and reading them
raises :class:`~seg.errors.UnsafePathError`; names no layout produces are skipped (see :meth:`Cache.skipped`);
tiles outside their zoom's grid (SAS.Planet's sample cache has row 4 at a 4-row zoom) are skipped and listed in
:meth:`Cache.skipped` with a logged warning; a corrupt or foreign SQLite file raises :class:`~seg.errors.SegError`
naming the file. Zero-byte ``.tne`` files mark known-missing tiles: :meth:`Cache.read` returns None for them.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from seg.collector.cache_layouts import LAYOUTS, MISSING_EXT, parse
from seg.collector.tiles import Tile, is_valid
from seg.errors import OptionError, SegError, UnsafePathError

logger = logging.getLogger(__name__)

#: How many files detection looks at per map folder.
DETECT_FILES = 500
#: File layouts detection may pick, in order of preference on ties.
AUTO_LAYOUTS = ("sas", "googlemv", "earthslicer", "gmt", "gmt_flat", "osmand", "mobac")
SQLITE = "sqlite"
MBTILES = "mbtiles"
BERKELEYDB = "berkeleydb"
#: Every value ``layout=`` accepts.
LAYOUT_NAMES = (*LAYOUTS, SQLITE, MBTILES)


def sqlite_path(tile: Tile) -> PurePosixPath:
    """Where SAS SQLite keeps the DB holding ``tile``, relative to the map folder."""
    x, y, z = tile
    return PurePosixPath(f"z{z + 1}", str(x >> 10), str(y >> 10), f"{x >> 8}.{y >> 8}.sqlitedb")


@dataclass
class _Index:
    """What a scan of one file-layout map folder found."""

    images: dict[Tile, PurePosixPath] = field(default_factory=dict)
    missing: set[Tile] = field(default_factory=set)
    skipped: list[PurePosixPath] = field(default_factory=list)


@dataclass(frozen=True)
class MapSource:
    """One map of a cache: its name, its layout (a file layout name, ``sqlite``, ``mbtiles`` or ``berkeleydb``)
    and its folder (or ``.mbtiles`` file)."""

    name: str
    layout: str
    path: Path


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError):
        return False
    return True


def _walk(top: Path, root: Path, limit: int | None = None) -> Iterator[Path]:
    """Files under ``top`` whose real path stays inside ``root``, following symlinks only inside it."""
    seen: set[Path] = set()
    count = 0
    for folder, dirs, files in os.walk(top, followlinks=True):
        real = Path(folder).resolve()
        if real in seen or not _inside(root, real):
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            if not _inside(root, path):
                logger.warning("skipping %s: it leads outside the cache %s", path, root)
                continue
            yield path
            count += 1
            if limit is not None and count >= limit:
                return


def _is_db(rel: PurePosixPath, suffix: str) -> bool:
    """Whether ``rel`` looks like ``z{z+1}/{x>>10}/{y>>10}/{x>>8}.{y>>8}<suffix>``."""
    parts = rel.parts
    return (
        len(parts) == 4
        and rel.name.lower().endswith(suffix)
        and parts[0][:1] == "z"
        and parts[0][1:].isdigit()
        and parts[1].isdigit()
        and parts[2].isdigit()
    )


def detect_layout(folder: Path, root: Path | None = None) -> str | None:
    """The layout of one map folder (see the module docstring), or None when nothing in it looks like tiles."""
    root = (root or folder).resolve()
    rels = [PurePosixPath(p.relative_to(folder).as_posix()) for p in _walk(folder, root, DETECT_FILES)]
    if any(_is_db(rel, ".sqlitedb") for rel in rels):
        return SQLITE
    if any(_is_db(rel, ".sdb") for rel in rels):
        return BERKELEYDB
    hits = {name: sum(parse(name, rel, on_grid=False) is not None for rel in rels) for name in AUTO_LAYOUTS}
    best = max(AUTO_LAYOUTS, key=lambda name: hits[name])  # max keeps the first of equal counts
    return best if hits[best] else None


def _count(folder: Path, root: Path, layout: str) -> int:
    rels = [PurePosixPath(p.relative_to(folder).as_posix()) for p in _walk(folder, root, DETECT_FILES)]
    if layout == SQLITE:
        return sum(_is_db(rel, ".sqlitedb") for rel in rels)
    return sum(parse(layout, rel, on_grid=False) is not None for rel in rels)


def open_cache(root: str | os.PathLike[str], *, layout: str | None = None) -> Cache:
    """Open a tile cache folder, one map folder or one ``.mbtiles`` file.

    Args:
        root: the cache root (one folder per map), a map folder or an ``.mbtiles`` file.
        layout: a name from ``LAYOUT_NAMES`` to use instead of detection (file layouts and ``sqlite``).

    Raises:
        OptionError: unknown ``layout``.
        SegError: no tiles found, or only BerkeleyDB maps.
    """
    if layout is not None and layout not in LAYOUT_NAMES:
        raise OptionError(f"unknown cache layout {layout!r}", expected=", ".join(LAYOUT_NAMES), actual=layout)
    path = Path(root)
    if path.is_file():
        if path.suffix.lower() != ".mbtiles":
            raise SegError("not a tile cache: expected a folder or an .mbtiles file", path=path)
        return Cache(path.parent.resolve(), {path.stem: MapSource(path.stem, MBTILES, path)})
    if not path.is_dir():
        raise SegError("tile cache not found", path=path)
    real = path.resolve()

    def layout_of(folder: Path) -> str | None:
        if layout is None:
            return detect_layout(folder, real)
        return layout if _count(folder, real, layout) else None

    found = layout_of(path)
    if found is not None and found != MBTILES:
        return Cache(real, {path.name: MapSource(path.name, found, path)})
    sources: dict[str, MapSource] = {}
    for child in sorted(path.iterdir()):
        if not _inside(real, child):
            logger.warning("skipping %s: it leads outside the cache %s", child, path)
        elif child.is_file() and child.suffix.lower() == ".mbtiles":
            sources[child.stem] = MapSource(child.stem, MBTILES, child)
        elif child.is_dir() and (kind := layout_of(child)) is not None:
            sources[child.name] = MapSource(child.name, kind, child)
    if not sources:
        raise SegError("no tile cache found (no map folder holds tiles of a known layout)", path=path)
    if all(s.layout == BERKELEYDB for s in sources.values()):
        raise _berkeleydb_error(next(iter(sources.values())))
    return Cache(real, sources)


def _berkeleydb_error(source: MapSource) -> SegError:
    return SegError(
        f"BerkeleyDB cache (.sdb) of map {source.name!r} not readable: export it from SAS.Planet as a SQLite or "
        "native (cache) tile cache first",
        path=source.path,
    )


def _connect(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise SegError(f"cannot open SQLite tile database: {e}", path=path) from e


def _query(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
    with closing(_connect(path)) as db:
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise SegError(f"corrupt or foreign SQLite tile database: {e}", path=path) from e


class Cache:
    """An opened tile cache. Build it with :func:`open_cache`.

    Attributes:
        root: the real path of the cache root; nothing outside it is read.
        sources: map name -> :class:`MapSource`.
    """

    def __init__(self, root: Path, sources: dict[str, MapSource]) -> None:
        self.root = root
        self.sources = sources
        self._indexes: dict[str, _Index] = {}

    @property
    def maps(self) -> list[str]:
        """Map names, sorted."""
        return sorted(self.sources)

    @property
    def layout(self) -> str:
        """The layout shared by all maps, or ``"mixed"``."""
        kinds = {s.layout for s in self.sources.values()}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def _source(self, map_name: str) -> MapSource:
        try:
            source = self.sources[map_name]
        except KeyError:
            raise SegError(f"no map {map_name!r} in the cache", path=self.root, expected=", ".join(self.maps)) from None
        if source.layout == BERKELEYDB:
            raise _berkeleydb_error(source)
        return source

    def _index(self, source: MapSource) -> _Index:
        index = self._indexes.get(source.name)
        if index is not None:
            return index
        index = _Index()
        for path in _walk(source.path, self.root):
            rel = PurePosixPath(path.relative_to(source.path).as_posix())
            parsed = parse(source.layout, rel, on_grid=False)
            if parsed is None or not is_valid(parsed[0]):
                index.skipped.append(rel)
                continue
            tile, ext = parsed
            if ext.lower() == MISSING_EXT:
                index.missing.add(tile)
            elif tile in index.images:
                logger.warning("map %s: %s duplicates %s; keeping the first", source.name, rel, index.images[tile])
            else:
                index.images[tile] = rel
        off_grid = [rel for rel in index.skipped if parse(source.layout, rel, on_grid=False) is not None]
        if off_grid:
            logger.warning(
                "map %s: skipping %d tiles outside their zoom's grid: %s",
                source.name,
                len(off_grid),
                ", ".join(map(str, off_grid[:5])),
            )
        self._indexes[source.name] = index
        return index

    def _sqlite_files(self, source: MapSource) -> Iterator[tuple[int, Path]]:
        for path in _walk(source.path, self.root):
            rel = PurePosixPath(path.relative_to(source.path).as_posix())
            if _is_db(rel, ".sqlitedb"):
                yield int(rel.parts[0][1:]) - 1, path

    def _mbtiles_scheme(self, source: MapSource) -> str:
        tables = {row[0] for row in _query(source.path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "metadata" not in tables:
            return "tms"
        rows = _query(source.path, "SELECT value FROM metadata WHERE name = 'scheme'")
        return "xyz" if rows and str(rows[0][0]).strip().lower() == "xyz" else "tms"

    def zooms(self, map_name: str) -> list[int]:
        """The zooms (0-based XYZ) at which a map has at least one tile image, ascending."""
        source = self._source(map_name)
        if source.layout == MBTILES:
            return sorted(row[0] for row in _query(source.path, "SELECT DISTINCT zoom_level FROM tiles"))
        if source.layout == SQLITE:
            return sorted({z for z, path in self._sqlite_files(source) if any(True for _ in self._db_tiles(path, z))})
        return sorted({tile.z for tile in self._index(source).images})

    def _db_tiles(self, path: Path, z: int) -> Iterator[Tile]:
        rows = _query(path, "SELECT x, y, b IS NOT NULL AND length(b) > 0 FROM t ORDER BY x, y, v DESC, d DESC")
        last = None
        for x, y, has_image in rows:
            if (x, y) == last:
                continue
            last = (x, y)
            tile = Tile(int(x), int(y), z)
            if has_image and is_valid(tile) and self._source_relpath_ok(path, tile):
                yield tile

    @staticmethod
    def _source_relpath_ok(path: Path, tile: Tile) -> bool:
        return path.as_posix().endswith(sqlite_path(tile).as_posix())

    def tiles(self, map_name: str, z: int) -> Iterator[Tile]:
        """The tiles of zoom ``z`` that a map has an image for, sorted by (x, y); known-missing tiles excluded."""
        source = self._source(map_name)
        if source.layout == MBTILES:
            flip = self._mbtiles_scheme(source) == "tms"
            rows = _query(
                source.path,
                "SELECT tile_column, tile_row FROM tiles WHERE zoom_level = ? AND length(tile_data) > 0",
                (z,),
            )
            found = {Tile(int(c), (2**z - 1 - int(r)) if flip else int(r), z) for c, r in rows}
        elif source.layout == SQLITE:
            found = {t for zoom, path in self._sqlite_files(source) if zoom == z for t in self._db_tiles(path, z)}
        else:
            found = {t for t in self._index(source).images if t.z == z}
        yield from sorted(t for t in found if is_valid(t))

    def path_of(self, map_name: str, tile: Tile) -> Path | None:
        """The file holding ``tile`` (image file, SQLite DB or ``.mbtiles``), or None when there is none."""
        source = self._source(map_name)
        if source.layout == MBTILES:
            return source.path
        if source.layout == SQLITE:
            path = source.path / sqlite_path(tile)
            return path if path.is_file() else None
        rel = self._index(source).images.get(tile)
        return None if rel is None else source.path / rel

    def is_known_missing(self, map_name: str, tile: Tile) -> bool:
        """Whether a file-layout map marks ``tile`` with a ``.tne`` file and has no image for it."""
        source = self._source(map_name)
        if source.layout in (MBTILES, SQLITE):
            return False
        index = self._index(source)
        return tile in index.missing and tile not in index.images

    def skipped(self, map_name: str) -> list[PurePosixPath]:
        """Files of a file-layout map that are not tiles on the grid (garbage names, off-grid rows), sorted."""
        source = self._source(map_name)
        if source.layout in (MBTILES, SQLITE):
            return []
        return sorted(self._index(source).skipped)

    def read(self, map_name: str, tile: Tile) -> bytes | None:
        """The encoded image of ``tile`` as stored, or None when the map has none (missing or known missing).

        Raises:
            UnsafePathError: the tile's file leads outside the cache root.
            SegError: unreadable file or corrupt database.
        """
        source = self._source(map_name)
        if not is_valid(tile):
            return None
        if source.layout == MBTILES:
            row = (2**tile.z - 1 - tile.y) if self._mbtiles_scheme(source) == "tms" else tile.y
            rows = _query(
                source.path,
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ? LIMIT 1",
                (tile.z, tile.x, row),
            )
            return bytes(rows[0][0]) if rows and rows[0][0] else None
        path = self.path_of(map_name, tile)
        if path is None:
            return None
        if not _inside(self.root, path):
            raise UnsafePathError("tile file leads outside the cache", path=path)
        if source.layout == SQLITE:
            rows = _query(path, "SELECT b FROM t WHERE x = ? AND y = ? ORDER BY v DESC, d DESC LIMIT 1", tile[:2])
            return bytes(rows[0][0]) if rows and rows[0][0] else None
        try:
            data = path.read_bytes()
        except OSError as e:
            raise SegError(f"cannot read tile: {e}", path=path) from e
        return data or None
