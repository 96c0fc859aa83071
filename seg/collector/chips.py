"""Mosaic the tiles of one map and zoom of a tile cache into georeferenced chips.

The chip grid is laid in global pixel coordinates of the zoom (``pixel = tile * 256 + offset``, see
:mod:`seg.collector.tiles`), starting at the north-west pixel of the requested box (or of the tiles the map has),
with a step of ``chip - overlap`` pixels; the last column and row may reach past the box. Each chip is assembled from
the tiles it overlaps; missing and known-missing (``.tne``) tiles, tiles that do not decode and tiles that are not
256 x 256 leave black pixels and lower the chip's coverage (the fraction of its pixels that came from tiles).

Chips are written as ``images/<map>_z<zoom>_<col>_<row>.<ext>`` (``col``/``row`` count chips from the grid's
north-west corner): GeoTIFF in EPSG:3857 with the exact transform, or PNG/JPEG with a world file (``.pgw``/``.jgw``,
origin at the centre of the top-left pixel) and a ``.prj`` holding EPSG:3857's WKT. Tiles are decoded once and only
the tiles of one row of chips are held in memory; chips are encoded on a few background threads
(:class:`seg.collector.write_pool.WritePool`) while the next ones are assembled.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from seg.collector.cache import Cache
from seg.collector.georef_sidecars import world_file_lines
from seg.collector.tiles import MAX_LATITUDE, TILE_SIZE, Tile, lnglat_to_meters, meters_to_pixels, pixels_to_meters
from seg.collector.tiles import resolution as pixel_size
from seg.collector.write_pool import WritePool
from seg.dataset.core import Dataset
from seg.dataset.store import save_dataset
from seg.errors import OptionError, SegError
from seg.outputs import atomic_dir
from seg.progress import Progress

logger = logging.getLogger(__name__)

CRS = "EPSG:3857"
#: Chip formats: extension and world-file extension.
FORMATS = {"tif": (".tif", None), "png": (".png", ".pgw"), "jpg": (".jpg", ".jgw")}
JPEG_QUALITY = 95
#: zlib level of GeoTIFF (deflate) and PNG chips: aerial imagery barely compresses, and level 1 encodes about twice as
#: fast as the default 6 for files a few percent larger (benchmarks/README.md).
DEFLATE_LEVEL = 1

Box = tuple[float, float, float, float]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "map"


def _data_window(cache: Cache, map_name: str, zoom: int) -> tuple[int, int, int, int]:
    """Pixel window ``(x0, y0, x1, y1)`` (end exclusive) of the tiles a map has at ``zoom``."""
    x0 = y0 = math.inf
    x1 = y1 = -math.inf
    for tile in cache.tiles(map_name, zoom):
        x0, y0, x1, y1 = min(x0, tile.x), min(y0, tile.y), max(x1, tile.x), max(y1, tile.y)
    if x0 == math.inf:
        raise SegError(
            f"map {map_name!r} has no tiles at zoom {zoom}",
            path=cache.root,
            expected=", ".join(map(str, cache.zooms(map_name))) or "a zoom with tiles",
        )
    return int(x0) * TILE_SIZE, int(y0) * TILE_SIZE, (int(x1) + 1) * TILE_SIZE, (int(y1) + 1) * TILE_SIZE


def _bbox_window(bbox: Box, zoom: int) -> tuple[int, int, int, int]:
    """Pixel window of a longitude/latitude box (latitudes clamped to Web Mercator, the window to the world)."""
    west, south, east, north = bbox
    if not (west < east and south < north):
        raise OptionError("empty bbox: expected west < east and south < north", actual=bbox)
    world = TILE_SIZE * 2**zoom
    left, top = meters_to_pixels(*lnglat_to_meters(max(west, -180.0), min(north, MAX_LATITUDE)), zoom)
    right, bottom = meters_to_pixels(*lnglat_to_meters(min(east, 180.0), max(south, -MAX_LATITUDE)), zoom)
    x0, y0 = max(math.floor(left), 0), max(math.floor(top), 0)
    x1, y1 = min(math.ceil(right), world), min(math.ceil(bottom), world)
    if x1 <= x0 or y1 <= y0:
        raise OptionError("bbox lies outside the Web Mercator world", actual=bbox)
    return x0, y0, x1, y1


def _starts(begin: int, end: int, chip: int, step: int) -> list[int]:
    """Chip starts from ``begin`` covering ``[begin, end)``; the last chip may reach past ``end``."""
    count = math.ceil(max(end - begin - chip, 0) / step) + 1
    return [begin + i * step for i in range(count)]


def _decode(data: bytes, where: str) -> npt.NDArray[np.uint8] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.size != (TILE_SIZE, TILE_SIZE):
                logger.warning("tile %s is %dx%d, not %d px square: left out", where, *image.size, TILE_SIZE)
                return None
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        logger.warning("tile %s does not decode (%s): left out", where, e)
        return None


class _TileRows:
    """Decoded tiles of the current row of chips, each decoded once."""

    def __init__(self, cache: Cache, map_name: str, zoom: int) -> None:
        self.cache, self.map, self.zoom = cache, map_name, zoom
        self.held: dict[tuple[int, int], npt.NDArray[np.uint8] | None] = {}
        self.bad = 0

    def get(self, x: int, y: int) -> npt.NDArray[np.uint8] | None:
        key = (x, y)
        if key not in self.held:
            data = self.cache.read(self.map, Tile(x, y, self.zoom))
            pixels = None if data is None else _decode(data, f"{self.map} z{self.zoom} x{x} y{y}")
            self.bad += data is not None and pixels is None
            self.held[key] = pixels
        return self.held[key]

    def drop_above(self, y: int) -> None:
        """Forget tiles of rows north of tile row ``y``."""
        self.held = {k: v for k, v in self.held.items() if k[1] >= y}


def _assemble(tiles: _TileRows, px: int, py: int, chip: int) -> tuple[npt.NDArray[np.uint8], int, int]:
    """The chip at global pixel ``(px, py)``, the number of tiles it used and the pixels they covered."""
    out = np.zeros((chip, chip, 3), dtype=np.uint8)
    used = covered = 0
    for ty in range(py // TILE_SIZE, (py + chip - 1) // TILE_SIZE + 1):
        for tx in range(px // TILE_SIZE, (px + chip - 1) // TILE_SIZE + 1):
            pixels = tiles.get(tx, ty)
            if pixels is None:
                continue
            x0, y0 = max(px, tx * TILE_SIZE), max(py, ty * TILE_SIZE)
            x1, y1 = min(px + chip, (tx + 1) * TILE_SIZE), min(py + chip, (ty + 1) * TILE_SIZE)
            out[y0 - py : y1 - py, x0 - px : x1 - px] = pixels[
                y0 - ty * TILE_SIZE : y1 - ty * TILE_SIZE, x0 - tx * TILE_SIZE : x1 - tx * TILE_SIZE
            ]
            used += 1
            covered += (x1 - x0) * (y1 - y0)
    return out, used, covered


def _write(path: Path, pixels: npt.NDArray[np.uint8], fmt: str, left: float, top: float, res: float) -> None:
    from rasterio.transform import Affine

    if fmt == "tif":
        import rasterio

        profile = {
            "driver": "GTiff",
            "width": pixels.shape[1],
            "height": pixels.shape[0],
            "count": 3,
            "dtype": "uint8",
            "crs": CRS,
            "transform": Affine(res, 0.0, left, 0.0, -res, top),
            "compress": "deflate",
            "zlevel": DEFLATE_LEVEL,
            "photometric": "RGB",
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.moveaxis(pixels, 2, 0))
        return
    image = Image.fromarray(pixels, "RGB")
    if fmt == "jpg":
        image.save(path, "JPEG", quality=JPEG_QUALITY)
    else:
        image.save(path, "PNG", compress_level=DEFLATE_LEVEL)
    path.with_suffix(FORMATS[fmt][1]).write_text(world_file_lines(Affine(res, 0.0, left, 0.0, -res, top)))
    path.with_suffix(".prj").write_text(_wkt())


def _wkt() -> str:
    from rasterio.crs import CRS as RasterioCRS

    return RasterioCRS.from_epsg(3857).to_wkt()


def check_chip_options(chip: int, overlap: int, fmt: str, min_coverage: float) -> None:
    """Raise OptionError unless the chip size, overlap, format and minimum coverage make sense together."""
    if chip < 1:
        raise OptionError("chip size must be at least 1 pixel", actual=chip)
    if not 0 <= overlap < chip:
        raise OptionError(
            "overlap must be at least 0 and smaller than the chip", expected=f"0..{chip - 1}", actual=overlap
        )
    if fmt not in FORMATS:
        raise OptionError(f"unknown chip format {fmt!r}", expected=", ".join(FORMATS), actual=fmt)
    if not 0 <= min_coverage <= 1:
        raise OptionError("min_coverage must lie in [0, 1]", actual=min_coverage)


def make_chips(
    cache: Cache,
    map: str,
    zoom: int,
    out: str | Path,
    *,
    bbox: Box | None = None,
    chip: int = 512,
    overlap: int = 0,
    fmt: str = "tif",
    min_coverage: float = 0.5,
    overwrite: bool = False,
    progress: Progress = None,
    report: dict | None = None,
) -> Dataset:
    """Cut one map and zoom of a tile cache into georeferenced square chips.

    Args:
        cache: an opened cache (:func:`seg.collector.cache.open_cache`).
        map: the map's name.
        zoom: the 0-based XYZ zoom (SAS.Planet's folder ``z{zoom + 1}``).
        out: the output folder (written atomically): ``images/`` and the Dataset in ``dataset/``.
        bbox: ``(west, south, east, north)`` in degrees; default: every tile the map has at ``zoom``.
        chip: chip side in pixels.
        overlap: pixels shared by neighbouring chips (``0 <= overlap < chip``).
        fmt: ``tif`` (GeoTIFF), ``png`` or ``jpg`` (with world file and ``.prj``).
        min_coverage: chips with a smaller fraction of pixels from tiles are skipped.
        overwrite: replace an existing ``out``.
        progress: wraps the loop over rows of chips (e.g. ``tqdm``).
        report: when given, filled with ``written``, ``skipped``, ``bad_tiles``, ``columns``, ``rows`` and ``out``.

    Returns:
        One image row per chip (no objects) with provenance columns ``map``, ``zoom``, ``crs``, ``west``,
        ``south``, ``east``, ``north`` (EPSG:3857 metres), ``tiles``, ``coverage`` and ``source``.

    Raises:
        OptionError: bad chip, overlap, format, coverage or bbox.
        SegError: unknown map, no tiles at ``zoom``, unreadable cache.
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
    """
    check_chip_options(chip, overlap, fmt, min_coverage)
    if map not in cache.sources:
        raise SegError(f"no map {map!r} in the cache", path=cache.root, expected=", ".join(cache.maps))
    out = Path(out)
    data = _data_window(cache, map, zoom)
    window = data if bbox is None else _bbox_window(bbox, zoom)
    step = chip - overlap
    columns = _starts(window[0], window[2], chip, step)
    rows = _starts(window[1], window[3], chip, step)
    # chips wholly outside the tiles' window hold no tile: count them as skipped without reading anything
    near_columns = [(c, px) for c, px in enumerate(columns) if px < data[2] and px + chip > data[0]]
    near_rows = [(r, py) for r, py in enumerate(rows) if py < data[3] and py + chip > data[1]]
    res = pixel_size(zoom)
    ext = FORMATS[fmt][0]
    prefix = f"{_safe_name(map)}_z{zoom}"
    tiles = _TileRows(cache, map, zoom)
    records: list[dict] = []
    skipped = len(columns) * len(rows) - len(near_columns) * len(near_rows)
    with atomic_dir(out, overwrite) as tmp, WritePool() as pool:
        (tmp / "images").mkdir()
        row_iter: Iterator[tuple[int, int]] = iter(near_rows)
        wrapped = row_iter if progress is None else progress(row_iter, total=len(near_rows))  # type: ignore[call-arg]
        for r, py in wrapped:
            tiles.drop_above(py // TILE_SIZE)
            for c, px in near_columns:
                pixels, used, covered = _assemble(tiles, px, py, chip)
                coverage = covered / (chip * chip)
                if coverage < min_coverage or used == 0:
                    skipped += 1
                    continue
                name = f"images/{prefix}_{c}_{r}{ext}"
                left, top = pixels_to_meters(px, py, zoom)
                right, bottom = pixels_to_meters(px + chip, py + chip, zoom)
                pool.submit(_write, tmp / name, pixels, fmt, left, top, res)
                records.append(
                    {
                        "image_id": f"{prefix}_{c}_{r}",
                        "file_name": name,
                        "width": chip,
                        "height": chip,
                        "map": map,
                        "zoom": zoom,
                        "crs": CRS,
                        "west": left,
                        "south": bottom,
                        "east": right,
                        "north": top,
                        "tiles": used,
                        "coverage": coverage,
                        "source": str(cache.root),
                    }
                )
        pool.drain()
        dataset = Dataset.from_records(records, [], [], image_root=out.absolute(), source=out)
        save_dataset(dataset, tmp / "dataset", overwrite=True)
    logger.info("%d chips written to %s, %d skipped (coverage < %s)", len(records), out, skipped, min_coverage)
    if report is not None:
        report.update(
            written=len(records),
            skipped=skipped,
            bad_tiles=tiles.bad,
            columns=len(columns),
            rows=len(rows),
            out=str(out),
        )
    return dataset
