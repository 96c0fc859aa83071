"""Reading the georeference of a stitched export (one image with sidecars, as SAS.Planet's "Combine" writes).

:func:`read_georeference` looks, in this order of trust, at:

1. the image's own tags (a GeoTIFF, read with rasterio with GDAL's sidecar lookup switched off);
2. a world file: ``<stem>.<e0><eN>w`` (``.jgw``, ``.pgw``, ``.tfw``, ``.bpw``, ``.gfw``), ``<stem>.<ext>w``
   (``.jpgw``, ``.pngw``, ``.tifw``) or ``<stem>.wld``, any letter case. Its origin is the CENTRE of the top-left
   pixel and is converted to the corner;
3. ``<stem>.prj`` (WKT, or anything ``rasterio.crs.CRS.from_string`` takes): the CRS of a world file or tags;
4. ``<image>.aux.xml`` (GDAL PAM): ``SRS`` and ``GeoTransform``;
5. ``<stem>.map`` (OziExplorer; "Mercator" and "Latitude/Longitude" on WGS 84, see
   :func:`~seg.collector.georef_sidecars.read_ozi_map`);
6. ``<stem>.kml`` with a ``GroundOverlay``'s ``LatLonBox`` (EPSG:4326; rotation ignored with a warning).

The transform comes from the most trusted source that has one; the CRS from that same source, else (for tags, world
file and aux.xml, which are in the same units) from the ``.prj`` then the aux.xml ``SRS``. Every other source present
is still parsed: a malformed one raises, and one that disagrees with the chosen transform gives a warning.

Heuristics (each gives a warning, never a silent fix):

- **units contradiction**: a geographic CRS with numbers that cannot be degrees (an origin beyond +-360/+-90 or pixels
  larger than 10 deg), or a projected CRS with numbers that look like degrees (pixels under 1e-3 unit and an origin
  within +-180/+-90).
- **3395 vs 3857**: when a lat/lon sidecar (.kml or .map) is present beside a metre transform in EPSG:3857 or 3395,
  its corners are projected both ways and the CRS whose projection matches is named (sure: the two differ by
  kilometres away from the equator). Without one, a transform exactly on the Web-Mercator XYZ pixel grid of some zoom
  (pixel size = ``tiles.resolution(z)``, origin on a pixel boundary) labelled EPSG:3395 or without a CRS gets a
  warning saying it looks like tile-cache output (3857 for Google/OSM/Bing, 3395 for Yandex, which shares that grid),
  and that the numbers alone cannot settle it.
"""

from __future__ import annotations

import logging
import math
import warnings as py_warnings
from dataclasses import dataclass, field
from pathlib import Path

import rasterio
from rasterio.crs import CRS
from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioIOError

from seg.collector import tiles
from seg.collector.georef_sidecars import (
    Transform,
    mercator_3395_y,
    read_aux_xml,
    read_kml_ground_overlay,
    read_ozi_map,
    read_text,
    read_world_file,
)
from seg.errors import FormatError, ImageError, SegError

logger = logging.getLogger(__name__)

__all__ = ["Georeference", "read_georeference", "read_world_file", "world_file_candidates"]


@dataclass(frozen=True)
class Georeference:
    """Where an image lies.

    Attributes:
        crs: EPSG code, WKT text when the CRS has no EPSG code, or None when no source gave one.
        transform: ``(a, b, c, d, e, f)`` as rasterio's ``Affine``, pixel-corner convention.
        width: image width in pixels.
        height: image height in pixels.
        source: the file that gave the transform (the image itself for tags).
        warnings: heuristic findings and ignored information, one sentence each.
    """

    crs: int | str | None
    transform: Transform
    width: int
    height: int
    source: Path
    warnings: tuple[str, ...] = field(default=())


def world_file_candidates(image: Path) -> list[str]:
    """World-file names looked for beside ``image``, most usual first (matched case-insensitively)."""
    ext = image.suffix.lower().lstrip(".")
    names = []
    if len(ext) >= 2:
        names.append(f"{image.stem}.{ext[0]}{ext[-1]}w")
    if ext:
        names.append(f"{image.stem}.{ext}w")
    names.append(f"{image.stem}.wld")
    return list(dict.fromkeys(names))


def _find(folder_index: dict[str, Path], names: list[str]) -> Path | None:
    for name in names:
        found = folder_index.get(name.lower())
        if found is not None:
            return found
    return None


def _crs_value(crs: CRS) -> int | str:
    epsg = crs.to_epsg()
    return epsg if epsg is not None else crs.to_wkt()


def _parse_crs(text: str, path: Path, what: str) -> CRS:
    text = text.strip()
    try:
        return CRS.from_wkt(text) if text[:1].isalpha() and "[" in text else CRS.from_string(text)
    except CRSError as e:
        raise FormatError(f"{what} is not a CRS rasterio understands: {e}", path=path) from e


def _read_tags(image: Path) -> tuple[int, int, Transform | None, CRS | None]:
    """Size, and the transform/CRS held in the image itself (GeoTIFF only; sidecars switched off)."""
    try:
        with py_warnings.catch_warnings():
            py_warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.Env(GDAL_GEOREF_SOURCES="INTERNAL", GDAL_PAM_ENABLED="NO"), rasterio.open(image) as ds:
                width, height, driver = ds.width, ds.height, ds.driver
                transform, crs = tuple(ds.transform)[:6], ds.crs
    except RasterioIOError as e:
        raise ImageError(f"cannot open image: {e}", path=image) from e
    if driver != "GTiff":
        return width, height, None, None
    has_transform = transform != (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    return width, height, (transform if has_transform else None), crs


def _close(t1: Transform, t2: Transform, tolerance: float = 1e-3) -> bool:
    """Whether two transforms agree to ``tolerance`` pixels over the image corner and one pixel step."""
    size = max(abs(t1[0]), abs(t1[1]), abs(t1[3]), abs(t1[4]))
    return all(abs(p - q) <= tolerance * size for p, q in zip(t1, t2, strict=True))


def _units_warnings(crs: CRS, t: Transform, source: str) -> list[str]:
    pixel = max(math.hypot(t[0], t[3]), math.hypot(t[1], t[4]))
    if crs.is_geographic and (abs(t[2]) > 360 or abs(t[5]) > 90 or pixel > 10):
        return [
            f"{source} numbers (origin {t[2]:.6g}, {t[5]:.6g}, pixel {pixel:.6g}) cannot be degrees but the CRS is"
            " geographic: the .prj probably belongs to another export"
        ]
    if crs.is_projected and pixel < 1e-3 and abs(t[2]) <= 180 and abs(t[5]) <= 90:
        return [
            f"{source} numbers (origin {t[2]:.6g}, {t[5]:.6g}, pixel {pixel:.6g}) look like degrees but the CRS is"
            " projected: the transform is probably EPSG:4326"
        ]
    return []


def web_mercator_zoom(t: Transform) -> int | None:
    """The zoom whose Web-Mercator XYZ pixel grid ``t`` lies on exactly (north-up, pixel edges on the grid), or None."""
    if t[1] != 0 or t[3] != 0 or t[0] <= 0 or not math.isclose(t[4], -t[0], rel_tol=1e-9):
        return None
    z = round(math.log2(tiles.resolution(0) / t[0]))
    if not 0 <= z <= tiles.MAX_ZOOM or not math.isclose(t[0], tiles.resolution(z), rel_tol=1e-7):
        return None
    px, py = tiles.meters_to_pixels(t[2], t[5], z)
    if abs(px - round(px)) > 1e-3 or abs(py - round(py)) > 1e-3:
        return None
    return z


def _mercator_warnings(epsg: int | None, t: Transform, latlon: tuple[Path, Transform] | None, source: str) -> list[str]:
    if latlon is not None and epsg in (3857, 3395, None):
        path, g = latlon
        west, north = g[2], g[5]
        if not -tiles.MAX_LATITUDE <= north <= tiles.MAX_LATITUDE:
            return []
        x = math.radians(west) * tiles.EARTH_RADIUS
        y3857, y3395 = tiles.lnglat_to_meters(west, north)[1], mercator_3395_y(north)
        pixel = abs(t[4]) or 1.0
        if abs(t[2] - x) > 2 * abs(t[0]):
            return []
        off3857, off3395 = abs(t[5] - y3857) / pixel, abs(t[5] - y3395) / pixel
        best = 3857 if off3857 < off3395 else 3395
        if min(off3857, off3395) <= 2 and best != epsg and abs(y3857 - y3395) > 2 * pixel:
            said = f"EPSG:{epsg}" if epsg else "no CRS"
            return [
                f"{source} says {said} but its origin matches {path.name}'s north-west corner projected to EPSG:{best}"
                f" ({min(off3857, off3395):.2f} px off, {max(off3857, off3395):.0f} px for the other): almost"
                f" certainly EPSG:{best}"
            ]
        return []
    if epsg in (3395, None):
        z = web_mercator_zoom(t)
        if z is not None:
            said = "EPSG:3395" if epsg else "no CRS"
            return [
                f"{source} has {said} and lies exactly on the Web-Mercator XYZ pixel grid of zoom {z}:"
                " tile-cache output, EPSG:3857 if from Google/OSM/Bing tiles, EPSG:3395 if from Yandex"
                " (same grid); the numbers alone cannot tell, check a known point"
            ]
    return []


def read_georeference(image: str | Path) -> Georeference:
    """Read where a stitched export lies from its tags or sidecars (see the module docstring for the order).

    Nothing is opened for writing.

    Raises:
        ImageError: the image cannot be opened.
        FormatError: a sidecar present is malformed or hostile (the message names the file and line).
        SegError: no source gives a transform (the message lists the sidecars looked for).
    """
    image = Path(image)
    width, height, tag_transform, tag_crs = _read_tags(image)
    folder = {p.name.lower(): p for p in image.parent.iterdir() if p.is_file()} if image.parent.is_dir() else {}
    world_names = world_file_candidates(image)
    prj_names = [f"{image.stem}.prj", f"{image.name}.prj"]
    aux_names = [f"{image.name}.aux.xml", f"{image.stem}.aux.xml"]
    map_names = [f"{image.stem}.map", f"{image.name}.map"]
    kml_names = [f"{image.stem}.kml", f"{image.name}.kml"]
    warnings: list[str] = []

    world = _find(folder, world_names)
    world_t = read_world_file(world) if world else None
    prj = _find(folder, prj_names)
    prj_crs = _parse_crs(read_text(prj, ".prj"), prj, ".prj") if prj else None
    aux = _find(folder, aux_names)
    aux_srs, aux_t = read_aux_xml(aux) if aux else (None, None)
    aux_crs = _parse_crs(aux_srs, aux, ".aux.xml SRS") if aux and aux_srs else None
    ozi = _find(folder, map_names)
    ozi_epsg, ozi_t, ozi_warnings = read_ozi_map(ozi) if ozi else (None, None, [])
    kml = _find(folder, kml_names)
    kml_t = None
    if kml:
        try:
            kml_t, kml_warnings = read_kml_ground_overlay(kml, width, height, image.name)
            warnings += kml_warnings
        except FormatError as e:
            if e.expected != "GroundOverlay":
                raise
            warnings.append(f"{kml.name} ignored: {e.message} (found {e.actual})")

    # candidates: (source path, transform, CRS or None, same-units CRS fallback allowed)
    candidates: list[tuple[Path, Transform, CRS | int | None, bool]] = []
    if tag_transform:
        candidates.append((image, tag_transform, tag_crs, True))
    if world_t:
        candidates.append((world, world_t, None, True))
    if aux_t:
        candidates.append((aux, aux_t, aux_crs, True))
    if ozi_t:
        candidates.append((ozi, ozi_t, ozi_epsg, False))
        warnings += ozi_warnings
    if kml_t:
        candidates.append((kml, kml_t, 4326, False))
    if not candidates:
        looked = [*world_names, *prj_names, *aux_names, *map_names, *kml_names]
        extra = f"; {'; '.join(warnings)}" if warnings else ""
        raise SegError(f"no georeference found (GeoTIFF tags or sidecars: {', '.join(looked)}){extra}", path=image)

    source, transform, crs, same_units = candidates[0]
    if crs is None and same_units:
        crs = prj_crs or aux_crs
    elif crs is not None and prj_crs is not None and CRS.from_user_input(crs) != prj_crs:
        warnings.append(
            f"{prj.name} ({_crs_value(prj_crs)}) differs from {source.name}'s CRS"
            f" ({_crs_value(CRS.from_user_input(crs))}); kept the latter"
        )
    crs_obj = CRS.from_epsg(crs) if isinstance(crs, int) else crs
    crs_value = _crs_value(crs_obj) if crs_obj is not None else None
    if crs_obj is None:
        warnings.append(f"{source.name} gives no CRS and no .prj or .aux.xml SRS was found")

    for other, other_t, other_crs, other_same_units in candidates[1:]:
        if other_crs is None:
            comparable = same_units and other_same_units
        else:
            comparable = crs_obj is not None and CRS.from_user_input(other_crs) == crs_obj
        if comparable and not _close(transform, other_t):
            warnings.append(f"{other.name} disagrees with {source.name} (kept {source.name})")
    if crs_obj is not None:
        warnings += _units_warnings(crs_obj, transform, source.name)
    latlon = next(((p, t) for p, t, c, _ in candidates if c == 4326 and p != source), None)
    epsg = crs_value if isinstance(crs_value, int) else None
    if crs_obj is None or epsg in (3857, 3395):
        warnings += _mercator_warnings(epsg, transform, latlon, source.name)
    for text in warnings:
        logger.warning("%s: %s", image, text)
    return Georeference(crs_value, transform, width, height, source, tuple(warnings))
