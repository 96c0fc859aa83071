"""Parsers for the sidecar files of a stitched export: world file, ``.prj``, GDAL ``.aux.xml``, OziExplorer ``.map``
and KML GroundOverlay.

Every parser returns plain numbers in the pixel-CORNER convention of rasterio's ``Affine``: an affine 6-tuple
``(a, b, c, d, e, f)`` with ``x = a * col + b * row + c`` and ``y = d * col + e * row + f``, where
``(col, row) = (0, 0)`` is the north-west corner of the top-left pixel. Sidecars are user input: they are read with
a size cap, XML with a DOCTYPE or ENTITY declaration is refused before parsing, and nothing is ever opened for
writing.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from seg.collector import tiles
from seg.errors import FormatError

Transform = tuple[float, float, float, float, float, float]

#: Largest sidecar read, in bytes (world files and .prj are tiny; an .aux.xml may carry histograms).
MAX_SIDECAR_BYTES = 4 * 2**20
_XML_DECLARATIONS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
#: First eccentricity of the WGS 84 ellipsoid (EPSG:3395 World Mercator).
WGS84_E = 0.0818191908426215


def read_text(path: Path, what: str) -> str:
    """The text of a sidecar, refusing files over :data:`MAX_SIDECAR_BYTES`.

    Raises:
        FormatError: too large or unreadable.
    """
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SIDECAR_BYTES + 1)
    except OSError as e:
        raise FormatError(f"cannot read {what}: {e.strerror}", path=path) from e
    if len(data) > MAX_SIDECAR_BYTES:
        raise FormatError(f"{what} too large", path=path, expected=f"<= {MAX_SIDECAR_BYTES} bytes")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_xml(path: Path, what: str) -> ET.Element:
    """Parse a small XML sidecar, refusing DOCTYPE/ENTITY declarations (entity expansion attacks).

    Raises:
        FormatError: too large, hostile or malformed.
    """
    text = read_text(path, what)
    if _XML_DECLARATIONS.search(text.encode("utf-8", "replace")):
        raise FormatError(f"{what} has a DOCTYPE or ENTITY declaration (refused)", path=path)
    try:
        return ET.fromstring(text)
    except ET.ParseError as e:
        line, column = e.position
        raise FormatError(f"malformed {what}: {e}", path=path, item_id=f"line {line}, column {column}") from e


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# --- world file --------------------------------------------------------------------------------------------------


def read_world_file(path: Path) -> Transform:
    """A world file's six lines ``A, D, B, E, C, F`` as a corner-convention affine.

    ``C, F`` are the centre of the top-left pixel; the corner is ``c = C - A/2 - B/2``, ``f = F - D/2 - E/2``.

    Raises:
        FormatError: not six numbers, a non-finite number, or a zero pixel size (singular transform); the message
            names the line.
    """
    lines = read_text(path, "world file").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    values = []
    for number, line in enumerate(lines, 1):
        if number > 6:
            raise FormatError(
                "world file has more than 6 lines", path=path, item_id=f"line {number}", expected="6 numbers"
            )
        try:
            value = float(line.strip())
        except ValueError:
            raise FormatError(
                "world file line is not a number", path=path, item_id=f"line {number}", actual=repr(line.strip()[:40])
            ) from None
        if not math.isfinite(value):
            raise FormatError("world file number is not finite", path=path, item_id=f"line {number}")
        values.append(value)
    if len(values) != 6:
        raise FormatError(
            "world file too short",
            path=path,
            item_id=f"line {len(values) + 1}",
            expected="6 numbers",
            actual=len(values),
        )
    a, d, b, e, c_centre, f_centre = values
    if a * e - b * d == 0:
        zero_line = 1 if a == 0 else 4
        raise FormatError("world file has a zero pixel size", path=path, item_id=f"line {zero_line}")
    return (a, b, c_centre - a / 2 - b / 2, d, e, f_centre - d / 2 - e / 2)


# --- GDAL PAM .aux.xml -------------------------------------------------------------------------------------------


def read_aux_xml(path: Path) -> tuple[str | None, Transform | None]:
    """The ``SRS`` (WKT or other text rasterio's CRS accepts) and ``GeoTransform`` of a GDAL PAM ``.aux.xml``.

    GDAL's GeoTransform order is ``c, a, b, f, d, e`` (already the corner convention).

    Raises:
        FormatError: hostile/malformed XML or a GeoTransform that is not six numbers.
    """
    root = parse_xml(path, ".aux.xml")
    if _local(root.tag) != "PAMDataset":
        raise FormatError("not a GDAL .aux.xml", path=path, expected="<PAMDataset>", actual=f"<{_local(root.tag)}>")
    srs = geo = None
    for child in root:
        if _local(child.tag) == "SRS" and child.text and child.text.strip():
            srs = child.text.strip()
        elif _local(child.tag) == "GeoTransform" and child.text:
            try:
                numbers = [float(v) for v in child.text.replace(",", " ").split()]
            except ValueError:
                raise FormatError("GeoTransform is not numbers", path=path, actual=child.text.strip()[:80]) from None
            if len(numbers) != 6 or not all(map(math.isfinite, numbers)):
                raise FormatError("GeoTransform is not six finite numbers", path=path, actual=child.text.strip()[:80])
            c, a, b, f, d, e = numbers
            if a * e - b * d == 0:
                raise FormatError("GeoTransform has a zero pixel size", path=path)
            geo = (a, b, c, d, e, f)
    return srs, geo


# --- KML GroundOverlay -------------------------------------------------------------------------------------------


def read_kml_ground_overlay(
    path: Path, width: int, height: int, image_name: str | None = None
) -> tuple[Transform, list[str]]:
    """The EPSG:4326 transform of a KML ``GroundOverlay``'s ``LatLonBox`` over an image of ``width`` x ``height``.

    A ``rotation`` is not supported: it is ignored with a warning. A box whose ``east < west`` crosses the
    antimeridian: ``east`` is shifted by 360 degrees, with a warning. When ``image_name`` is given and the overlay's
    ``Icon/href`` names another file, a warning says so.

    Returns:
        The transform and the warnings.

    Raises:
        FormatError: hostile/malformed XML, no GroundOverlay with a LatLonBox (e.g. a KML of placemarks or
            polygons), or a missing/non-numeric edge.
    """
    root = parse_xml(path, "KML")
    box = href = None
    kinds = set()
    for element in root.iter():
        name = _local(element.tag)
        if name == "GroundOverlay":
            box = next((c for c in element.iter() if _local(c.tag) == "LatLonBox"), None)
            href = next((c.text for c in element.iter() if _local(c.tag) == "href" and c.text), None)
            if box is not None:
                break
            kinds.add("GroundOverlay without LatLonBox (gx:LatLonQuad is not supported)")
        elif name in ("Polygon", "Point", "LineString", "Placemark"):
            kinds.add(name)
    if box is None:
        found = ", ".join(sorted(kinds)) or "nothing usable"
        raise FormatError(
            "KML holds no GroundOverlay with a LatLonBox", path=path, expected="GroundOverlay", actual=found
        )
    edges: dict[str, float] = {}
    for child in box:
        name = _local(child.tag)
        if name in ("north", "south", "east", "west", "rotation"):
            try:
                edges[name] = float((child.text or "").strip())
            except ValueError:
                raise FormatError(
                    f"LatLonBox {name} is not a number", path=path, actual=(child.text or "")[:40]
                ) from None
    missing = [k for k in ("north", "south", "east", "west") if k not in edges]
    if missing:
        raise FormatError(
            "LatLonBox lacks edges",
            path=path,
            expected="north, south, east, west",
            actual=f"missing {', '.join(missing)}",
        )
    warnings = []
    if image_name is not None and href is not None:
        href_name = href.strip().replace("\\", "/").rsplit("/", 1)[-1]
        if href_name.lower() != image_name.lower():
            warnings.append(f"{path.name}: GroundOverlay shows {href_name!r}, not {image_name!r}")
    north, south, east, west = edges["north"], edges["south"], edges["east"], edges["west"]
    if edges.get("rotation", 0.0) != 0.0:
        warnings.append(f"{path.name}: LatLonBox rotation {edges['rotation']} deg is not supported and was ignored")
    if east < west:
        east += 360.0
        warnings.append(f"{path.name}: LatLonBox crosses the antimeridian; east shifted by 360 deg")
    if not north > south or east == west:
        raise FormatError("LatLonBox is empty", path=path, actual=f"N {north} S {south} E {east} W {west}")
    return ((east - west) / width, 0.0, west, 0.0, -(north - south) / height, north), warnings


# --- OziExplorer .map --------------------------------------------------------------------------------------------


def mercator_3395_y(lat: float) -> float:
    """EPSG:3395 (ellipsoidal World Mercator, WGS 84) northing of a latitude."""
    phi = math.radians(lat)
    con = WGS84_E * math.sin(phi)
    return tiles.EARTH_RADIUS * math.log(math.tan(math.pi / 4 + phi / 2) * ((1 - con) / (1 + con)) ** (WGS84_E / 2))


def _ozi_points(lines: list[str], path: Path) -> list[tuple[float, float, float, float]]:
    """``(px, py, lon, lat)`` from MMPXY/MMPLL pairs, else from the Point01..30 lines."""
    pxy: dict[int, tuple[float, float]] = {}
    pll: dict[int, tuple[float, float]] = {}
    points = []
    for number, line in enumerate(lines, 1):
        fields = [f.strip() for f in line.split(",")]
        try:
            if fields[0] == "MMPXY" and len(fields) >= 4:
                pxy[int(fields[1])] = (float(fields[2]), float(fields[3]))
            elif fields[0] == "MMPLL" and len(fields) >= 4:
                pll[int(fields[1])] = (float(fields[2]), float(fields[3]))
            elif re.fullmatch(r"Point\d\d", fields[0]) and len(fields) >= 12 and fields[2] and fields[6]:
                lat = float(fields[6]) + float(fields[7] or 0) / 60
                lon = float(fields[9]) + float(fields[10] or 0) / 60
                lat = -lat if fields[8].upper() == "S" else lat
                lon = -lon if fields[11].upper() == "W" else lon
                points.append((float(fields[2]), float(fields[3]), lon, lat))
        except ValueError:
            raise FormatError(
                "malformed calibration line in .map", path=path, item_id=f"line {number}", actual=line[:60]
            ) from None
    corners = [(*pxy[k], *pll[k]) for k in sorted(pxy) if k in pll]
    return corners if len(corners) >= 3 else points


def _fit(points: list[tuple[float, float, float, float]], project) -> tuple[Transform, float]:
    """Least-squares affine from pixel to projected coordinates; returns it and the largest residual in pixels."""
    pix = np.array([[p[0], p[1], 1.0] for p in points])
    world = np.array([project(p[2], p[3]) for p in points])
    coef_x, *_ = np.linalg.lstsq(pix, world[:, 0], rcond=None)
    coef_y, *_ = np.linalg.lstsq(pix, world[:, 1], rcond=None)
    transform = (
        float(coef_x[0]),
        float(coef_x[1]),
        float(coef_x[2]),
        float(coef_y[0]),
        float(coef_y[1]),
        float(coef_y[2]),
    )
    residual = np.abs(np.column_stack([pix @ coef_x, pix @ coef_y]) - world).max()
    size = max(abs(transform[0]), abs(transform[4]), 1e-300)
    return transform, float(residual / size)


def _squareness(t: Transform) -> float:
    """How far a fitted pixel is from square: ``| |height| / |width| - 1 |``."""
    return abs(math.hypot(t[1], t[4]) / math.hypot(t[0], t[3]) - 1)


def read_ozi_map(path: Path) -> tuple[int, Transform, list[str]]:
    """CRS (EPSG code) and transform from an OziExplorer ``.map``.

    Supported: ``Map Projection,Latitude/Longitude`` (EPSG:4326) and ``Map Projection,Mercator`` on the WGS 84 datum.
    Calibration comes from the ``MMPXY``/``MMPLL`` corner pairs (``MMPLL`` is longitude, latitude), else from the
    ``Point01..30`` lines (degrees, minutes, hemisphere); pixel coordinates are taken in the corner convention
    (``0, 0`` is the north-west corner of the image). The affine is a least-squares fit over at least 3 points.
    "Mercator" does not say spherical (EPSG:3857, Google/OSM/Bing) or ellipsoidal (EPSG:3395, Yandex). Both are
    fitted; tile-cache exports have square pixels in their own CRS, so the "square pixels" heuristic picks the CRS
    in which the fitted pixel is square (height/width within 1e-4) while it is not in the other (off by more than
    1e-3: the two northings scale apart by 0.1-0.7% below about 70 degrees of latitude). Otherwise (non-square
    pixels, polar latitudes) EPSG:3857 is chosen with a warning.

    Returns:
        EPSG code, transform, warnings.

    Raises:
        FormatError: not an OziExplorer map, an unsupported projection or datum, or fewer than 3 calibration points.
    """
    lines = read_text(path, "OziExplorer .map").splitlines()
    if not lines or not lines[0].startswith("OziExplorer Map Data File"):
        raise FormatError("not an OziExplorer .map", path=path, item_id="line 1", expected="OziExplorer Map Data File")
    projection = next((ln.split(",")[1].strip() for ln in lines if ln.startswith("Map Projection,")), "")
    datum = lines[4].split(",")[0].strip() if len(lines) > 4 else ""
    if datum.upper() not in ("WGS 84", "WGS84"):
        raise FormatError("unsupported .map datum", path=path, item_id="line 5", expected="WGS 84", actual=datum)
    points = _ozi_points(lines, path)
    if len({(p[0], p[1]) for p in points}) < 3:
        raise FormatError(
            ".map has fewer than 3 calibration points", path=path, expected=">= 3 points", actual=len(points)
        )
    warnings: list[str] = []
    if projection == "Latitude/Longitude":
        transform, residual = _fit(points, lambda lon, lat: (lon, lat))
        epsg = 4326
    elif projection == "Mercator":
        t3857, r3857 = _fit(points, tiles.lnglat_to_meters)
        t3395, r3395 = _fit(points, lambda lon, lat: (math.radians(lon) * tiles.EARTH_RADIUS, mercator_3395_y(lat)))
        off3857, off3395 = _squareness(t3857), _squareness(t3395)
        if min(off3857, off3395) < 1e-4 and max(off3857, off3395) > 1e-3:
            epsg, transform, residual = (3857, t3857, r3857) if off3857 < off3395 else (3395, t3395, r3395)
        else:
            epsg, transform, residual = 3857, t3857, r3857
            warnings.append(
                f"{path.name}: 'Mercator' does not say spherical or ellipsoidal and the calibration points cannot"
                " tell (pixels are square in neither or in both); assumed EPSG:3857 (Google/OSM/Bing), EPSG:3395 if"
                " the source was Yandex"
            )
    else:
        raise FormatError(
            "unsupported .map projection", path=path, expected="Mercator or Latitude/Longitude", actual=projection
        )
    if residual > 1.0:
        warnings.append(f"{path.name}: calibration points fit an affine only to {residual:.1f} pixels")
    return epsg, transform, warnings


def world_file_lines(transform: Any) -> str:
    """A world file's six lines ``A, D, B, E, C, F`` for a corner-convention affine (rotation terms kept).

    ``C, F`` are the centre of the top-left pixel: ``transform @ (0.5, 0.5)``.
    """
    centre_x, centre_y = transform @ (0.5, 0.5)
    values = (transform.a, transform.d, transform.b, transform.e, centre_x, centre_y)
    return "".join(f"{v!r}\n" for v in values)
