"""Cut one georeferenced image (a stitched export, e.g. SAS.Planet's "Combine") into georeferenced chips.

The georeference comes from :func:`seg.collector.georef.read_georeference` (GeoTIFF tags or sidecars); its warnings
are logged and kept in the report. The chip grid starts at the image's top-left pixel with a step of
``chip - overlap`` pixels; the last column and row may reach past the image. Every chip is ``chip x chip`` pixels:
the part outside the image is zeros (and alpha 0 when the source has an alpha band).

A chip's coverage is the fraction of its pixels that lie inside the image and are valid: not transparent (alpha 0)
and not nodata, as GDAL's dataset mask says. Chips with no valid pixel or a coverage under ``min_coverage`` are
skipped.

Chips are written as ``images/<stem>_<col>_<row>.<ext>`` (``col``/``row`` count chips from the top-left) with the
transform of their window (``source @ Affine.translation(col_off, row_off)``, rotation terms kept) in the source CRS:
GeoTIFF (all bands, dtype, nodata and colour map kept), or PNG/JPEG (8-bit; JPEG drops an alpha band) with a world
file (origin at the centre of the top-left pixel) and a ``.prj`` holding the source CRS's WKT when the CRS is known.

The source is opened read-only with GDAL's PAM sidecars off (no ``.aux.xml`` is ever written beside it) and read one
strip of ``chip`` rows at a time, so memory is bounded by ``width x chip`` pixels whatever the image size.
"""

from __future__ import annotations

import logging
import math
import re
import warnings as py_warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.transform import Affine
from rasterio.windows import Window

from seg.collector.chips import DEFLATE_LEVEL, FORMATS, JPEG_QUALITY, check_chip_options
from seg.collector.georef import Georeference, read_georeference
from seg.collector.georef_sidecars import world_file_lines
from seg.collector.write_pool import WritePool
from seg.dataset.core import Dataset
from seg.dataset.images import MAX_PIXELS
from seg.dataset.store import save_dataset
from seg.errors import ImageError, OptionError
from seg.outputs import atomic_dir
from seg.progress import Progress

logger = logging.getLogger(__name__)

__all__ = ["chip_transform", "make_stitched_chips"]

_PIL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
#: Largest stitched image cut into chips: 2**34 pixels is 131072 x 131072, a city at zoom 19. Chips are read in strips
#: of full width, so a strip (width x chip) must also stay under MAX_PIXELS.
MAX_STITCHED_PIXELS = 2**34


def chip_transform(transform: Affine, col_off: int, row_off: int) -> Affine:
    """The transform of the window whose top-left pixel is ``(col_off, row_off)`` of an image with ``transform``."""
    return transform @ Affine.translation(col_off, row_off)


def _starts(size: int, chip: int, step: int) -> list[int]:
    """Chip starts from 0 covering ``[0, size)``; the last chip may reach past ``size``."""
    count = math.ceil(max(size - chip, 0) / step) + 1
    return [i * step for i in range(count)]


def _safe_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "image"


def _crs_text(crs: int | str | None) -> str | None:
    if crs is None:
        return None
    return f"EPSG:{crs}" if isinstance(crs, int) else crs


def _bounds(transform: Affine, width: int, height: int) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of the four corners of a window (any rotation)."""
    xs, ys = zip(*(transform @ corner for corner in ((0, 0), (width, 0), (0, height), (width, height))), strict=True)
    return min(xs), min(ys), max(xs), max(ys)


class _Source:
    """The open source image: its bands, their layout and a strip reader."""

    def __init__(self, ds: rasterio.DatasetReader, fmt: str) -> None:
        self.ds = ds
        interp = list(ds.colorinterp)
        self.alpha = interp.index(ColorInterp.alpha) if ColorInterp.alpha in interp else None
        self.masked = self.alpha is not None or any(v is not None for v in ds.nodatavals)
        self.palette = ds.count == 1 and interp[0] == ColorInterp.palette
        self.colormap = ds.colormap(1) if self.palette else None
        self.dtype = ds.dtypes[0]
        self.nodata = ds.nodata
        self.bands = list(range(1, ds.count + 1))
        if fmt == "jpg" and self.alpha is not None:
            self.bands.remove(self.alpha + 1)
        # what the writer threads need, read here once: a rasterio dataset is not shared across threads
        self.band_interp = [interp[b - 1] for b in self.bands]
        if fmt != "tif" and (self.dtype != "uint8" or len(self.bands) not in _PIL_MODES or len(set(ds.dtypes)) > 1):
            raise OptionError(
                f"{FORMATS[fmt][0]} chips hold 8-bit images of 1 to 4 bands: use --format tif",
                path=Path(ds.name),
                expected="uint8, 1-4 bands",
                actual=f"{ds.dtypes[0]}, {ds.count} bands",
            )

    def check_size(self, chip: int) -> None:
        """Refuse images whose size would make a decompression bomb: too many pixels, or strips too large to hold."""
        width, height = self.ds.width, self.ds.height
        if width * height > MAX_STITCHED_PIXELS or width * chip > MAX_PIXELS:
            raise ImageError(
                "image too large to cut safely (possible decompression bomb)",
                path=Path(self.ds.name),
                expected=f"at most {MAX_STITCHED_PIXELS} pixels and {MAX_PIXELS // chip} pixels wide at --chip {chip}",
                actual=f"{width}x{height}",
            )

    def strip(self, row: int, chip: int) -> tuple[npt.NDArray, npt.NDArray[np.bool_]]:
        """Rows ``[row, row + chip)`` of the written bands (zero-padded to ``chip`` rows) and their validity."""
        height = min(chip, self.ds.height - row)
        window = Window(0, row, self.ds.width, height)
        pixels = np.zeros((len(self.bands), chip, self.ds.width), dtype=self.dtype)
        valid = np.zeros((chip, self.ds.width), dtype=bool)
        pixels[:, :height] = self.ds.read(self.bands, window=window)
        valid[:height] = self.ds.dataset_mask(window=window) != 0 if self.masked else True
        return pixels, valid


def _chip(pixels: npt.NDArray, col: int, chip: int) -> npt.NDArray:
    """Columns ``[col, col + chip)`` of a strip, zero-padded to ``chip`` columns."""
    out = np.zeros((*pixels.shape[:-1], chip), dtype=pixels.dtype)
    part = pixels[..., col : col + chip]
    out[..., : part.shape[-1]] = part
    return out


def _write(path: Path, pixels: npt.NDArray, fmt: str, transform: Affine, crs: CRS | None, src: _Source) -> None:
    if fmt == "tif":
        profile = {
            "driver": "GTiff",
            "width": pixels.shape[2],
            "height": pixels.shape[1],
            "count": pixels.shape[0],
            "dtype": src.dtype,
            "crs": crs,
            "transform": transform,
            "nodata": src.nodata,
            "compress": "deflate",
            "zlevel": DEFLATE_LEVEL,
        }
        with py_warnings.catch_warnings():
            py_warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **profile) as dst:
                dst.write(pixels)
                dst.colorinterp = src.band_interp
                if src.colormap is not None:
                    dst.write_colormap(1, src.colormap)
        return
    array = pixels[0] if pixels.shape[0] == 1 else np.moveaxis(pixels, 0, 2)
    if src.colormap is not None and fmt == "png":
        image = Image.fromarray(array, "L").convert("P")
        flat = [v for i in range(256) for v in src.colormap.get(i, (0, 0, 0, 255))[:3]]
        image.putpalette(flat)
    else:
        image = Image.fromarray(np.ascontiguousarray(array), _PIL_MODES[pixels.shape[0]])
    if fmt == "jpg":
        image.save(path, "JPEG", quality=JPEG_QUALITY)
    else:
        image.save(path, "PNG", compress_level=DEFLATE_LEVEL)
    path.with_suffix(FORMATS[fmt][1]).write_text(world_file_lines(transform))
    if crs is not None:
        path.with_suffix(".prj").write_text(crs.to_wkt())


def _open(image: Path) -> rasterio.DatasetReader:
    try:
        return rasterio.open(image)
    except RasterioIOError as e:
        raise ImageError(f"cannot open image: {e}", path=image) from e


def make_stitched_chips(
    image: str | Path,
    out: str | Path,
    *,
    chip: int = 512,
    overlap: int = 0,
    fmt: str = "tif",
    min_coverage: float = 0.5,
    overwrite: bool = False,
    progress: Progress = None,
    report: dict | None = None,
) -> Dataset:
    """Cut one georeferenced image into georeferenced square chips.

    Args:
        image: the stitched image (GeoTIFF, or any raster with a world file / ``.aux.xml`` / ``.map`` / ``.kml``).
        out: the output folder (written atomically): ``images/`` and the Dataset in ``dataset/``.
        chip: chip side in pixels.
        overlap: pixels shared by neighbouring chips (``0 <= overlap < chip``).
        fmt: ``tif`` (GeoTIFF), ``png`` or ``jpg`` (with world file and ``.prj``).
        min_coverage: chips with a smaller fraction of valid pixels inside the image are skipped.
        overwrite: replace an existing ``out``.
        progress: wraps the loop over rows of chips (e.g. ``tqdm``).
        report: when given, filled with ``written``, ``skipped``, ``columns``, ``rows``, ``crs``, ``georeference``
            (the file that gave the transform), ``warnings`` and ``out``.

    Returns:
        One image row per chip (no objects) with provenance columns ``crs`` (``EPSG:n``, WKT, or None), ``west``,
        ``south``, ``east``, ``north`` (source CRS units), ``col_off``, ``row_off`` (the window in the source),
        ``coverage`` and ``source`` (the image's path).

    Raises:
        OptionError: bad chip, overlap, format or coverage, or a PNG/JPEG chip format for a non 8-bit image.
        ImageError: the image cannot be opened.
        FormatError: a sidecar is malformed.
        SegError: no georeference found.
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
    """
    check_chip_options(chip, overlap, fmt, min_coverage)
    image, out = Path(image), Path(out)
    georef: Georeference = read_georeference(image)
    transform = Affine(*georef.transform)
    crs = CRS.from_user_input(georef.crs) if georef.crs is not None else None
    crs_text = _crs_text(georef.crs)
    step = chip - overlap
    columns = _starts(georef.width, chip, step)
    rows = _starts(georef.height, chip, step)
    ext = FORMATS[fmt][0]
    prefix = _safe_stem(image.stem)
    records: list[dict] = []
    skipped = 0
    with py_warnings.catch_warnings():
        py_warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.Env(GDAL_PAM_ENABLED="NO", GDAL_GEOREF_SOURCES="INTERNAL"), _open(image) as ds:
            source = _Source(ds, fmt)
            source.check_size(chip)
            with atomic_dir(out, overwrite) as tmp, WritePool() as pool:
                (tmp / "images").mkdir()
                row_iter: Iterator[tuple[int, int]] = iter(enumerate(rows))
                wrapped = row_iter if progress is None else progress(row_iter, total=len(rows))  # type: ignore[call-arg]
                for r, row_off in wrapped:
                    strip, valid = source.strip(row_off, chip)
                    for c, col_off in enumerate(columns):
                        covered = int(np.count_nonzero(valid[:, col_off : col_off + chip]))
                        coverage = covered / (chip * chip)
                        if covered == 0 or coverage < min_coverage:
                            skipped += 1
                            continue
                        name = f"images/{prefix}_{c}_{r}{ext}"
                        window_transform = chip_transform(transform, col_off, row_off)
                        pool.submit(_write, tmp / name, _chip(strip, col_off, chip), fmt, window_transform, crs, source)
                        west, south, east, north = _bounds(window_transform, chip, chip)
                        records.append(
                            {
                                "image_id": f"{prefix}_{c}_{r}",
                                "file_name": name,
                                "width": chip,
                                "height": chip,
                                "crs": crs_text,
                                "west": west,
                                "south": south,
                                "east": east,
                                "north": north,
                                "col_off": col_off,
                                "row_off": row_off,
                                "coverage": coverage,
                                "source": str(image),
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
            columns=len(columns),
            rows=len(rows),
            crs=crs_text if isinstance(georef.crs, int) or georef.crs is None else "WKT",
            georeference=str(georef.source),
            warnings=list(georef.warnings),
            out=str(out),
        )
    return dataset
