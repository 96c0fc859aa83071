"""Read vector footprints (GeoJSON or an ESRI shapefile) as polygons in EPSG:3857 metres.

GeoJSON (RFC 7946): a FeatureCollection of Polygon and MultiPolygon features in longitude/latitude degrees. A legacy
``crs`` member may name another CRS (``EPSG:3857``, ``EPSG:32628``, ``urn:ogc:def:crs:EPSG::2154``...); coordinates
are then projected from it with PROJ (through rasterio). Features with a null geometry are skipped; other geometry
types are refused.

Shapefile: the ``.shp`` with its ``.dbf`` (attributes) beside it and, when present, the ``.prj`` (the CRS as WKT).
Polygon, PolygonZ and PolygonM shapes are read (Z and M dropped); null shapes are skipped; other shape types are
refused. Rings are grouped into polygons with holes by the shapefile rule (outer rings clockwise, holes
counter-clockwise, each hole inside its outer ring). Without a ``.prj``, coordinates are taken as longitude/latitude
when they all lie within +-180, +-90, and refused otherwise: a projected file needs its ``.prj``.

Rings may be closed or not; repeated points are dropped and each ring needs at least 3 distinct points.
"""

from __future__ import annotations

import logging
import math
import re
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from seg.collector.tiles import MAX_LATITUDE, lnglat_to_meters
from seg.errors import FormatError
from seg.formats.json_text import dumps, read_json

logger = logging.getLogger(__name__)

EXPECTED = "a GeoJSON FeatureCollection of Polygon/MultiPolygon features, or a polygon shapefile"

_CRS_NAME = re.compile(r"(?:EPSG:+(?:[\d.]*:)?|OGC:+[\d.]*:)(\w+)$", re.IGNORECASE)

#: A polygon: its rings as (n, 2) arrays of metres, outer ring first.
Polygon = list[np.ndarray]
#: Source coordinates (n, 2) -> EPSG:3857 metres (n, 2); ValueError for points the projection cannot take.
Projection = Callable[[np.ndarray], np.ndarray]


class Footprint:
    """One feature: its parts in metres, its class, source id, properties and bounds."""

    def __init__(self, parts: list[Polygon], category: str, source_id: str, properties: object) -> None:
        self.parts = parts
        self.category = category
        self.source_id = source_id
        self.properties = properties
        points = np.concatenate([ring for part in parts for ring in part])
        self.left, self.bottom = points.min(axis=0)
        self.right, self.top = points.max(axis=0)


def _from_lnglat(points: np.ndarray) -> np.ndarray:
    return np.array([lnglat_to_meters(x, y) for x, y in points.tolist()]).reshape(-1, 2)


def _metres(points: np.ndarray) -> np.ndarray:
    return points


def projection(crs: str | None, path: Path) -> Projection:
    """How to bring coordinates in ``crs`` (a CRS name or WKT; None: longitude/latitude) to EPSG:3857 metres.

    Raises:
        FormatError: PROJ does not know the CRS.
    """
    if crs is None:
        return _from_lnglat
    from rasterio.crs import CRS
    from rasterio.errors import CRSError
    from rasterio.warp import transform

    match = _CRS_NAME.search(crs.strip())
    code = match.group(1).upper() if match else None
    if code == "CRS84":
        return _from_lnglat
    try:
        source = CRS.from_user_input(f"EPSG:{code}" if code and code.isdigit() else crs)
    except CRSError as e:
        raise FormatError("unknown CRS", path=path, expected="a CRS PROJ knows", actual=crs[:80]) from e
    epsg = source.to_epsg()
    if epsg == 4326:
        return _from_lnglat
    if epsg in (3857, 900913):
        return _metres

    def project(points: np.ndarray) -> np.ndarray:
        xs, ys = transform(source, "EPSG:3857", points[:, 0].tolist(), points[:, 1].tolist())
        out = np.column_stack([xs, ys])
        if not np.isfinite(out).all():
            raise ValueError(f"points outside what {source.to_string()} projects to Web Mercator")
        return out

    return project


def _ring(value: object, project: Projection, path: Path, item: str) -> np.ndarray:
    if not isinstance(value, (list, tuple)):
        raise FormatError("ring is not a list of positions", path=path, item_id=item)
    points: list[tuple[float, float]] = []
    for position in value:
        if (
            not isinstance(position, (list, tuple))
            or len(position) < 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in position[:2])
            or not all(math.isfinite(v) for v in position[:2])
        ):
            raise FormatError("position is not a pair of finite numbers", path=path, item_id=item, actual=position)
        point = (float(position[0]), float(position[1]))
        if not points or points[-1] != point:
            points.append(point)
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    if len(points) < 3:
        raise FormatError(f"ring has {len(points)} distinct points", path=path, item_id=item, expected="at least 3")
    try:
        return project(np.asarray(points, dtype=np.float64))
    except ValueError as e:
        raise FormatError(str(e), path=path, item_id=item) from e


def _polygon(value: object, project: Projection, path: Path, item: str) -> Polygon:
    if not isinstance(value, (list, tuple)) or not value:
        raise FormatError("polygon is not a non-empty list of rings", path=path, item_id=item)
    return [_ring(ring, project, path, item) for ring in value]


def _parts(geometry: object, project: Projection, path: Path, item: str) -> list[Polygon]:
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if kind == "Polygon":
        return [_polygon(coordinates, project, path, item)]
    if kind == "MultiPolygon":
        if not isinstance(coordinates, (list, tuple)) or not coordinates:
            raise FormatError("MultiPolygon is not a non-empty list of polygons", path=path, item_id=item)
        return [_polygon(polygon, project, path, item) for polygon in coordinates]
    raise FormatError(
        f"unsupported geometry type {kind!r}", path=path, item_id=item, expected="Polygon or MultiPolygon"
    )


def _class(properties: object, class_property: str | None, default_class: str) -> str:
    if class_property is None or not isinstance(properties, dict):
        return default_class
    value = properties.get(class_property)
    if value is None or value == "":
        return default_class
    return value if isinstance(value, str) else dumps(value)


def _geojson_features(path: Path) -> tuple[Iterator[tuple[str, object, object]], Projection]:
    """(source id, geometry, properties) of each feature, and the collection's projection."""
    document = read_json(path, expected=EXPECTED)
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        kind = document.get("type") if isinstance(document, dict) else type(document).__name__
        raise FormatError("not a GeoJSON FeatureCollection", path=path, expected=EXPECTED, actual=kind)
    crs = document.get("crs")
    if crs is not None:
        crs = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
        if not isinstance(crs, str):
            raise FormatError("unsupported crs member (expected a named CRS)", path=path, actual=document["crs"])
    features = document.get("features")
    if not isinstance(features, list):
        raise FormatError("'features' is not a list", path=path, expected=EXPECTED)

    def rows() -> Iterator[tuple[str, object, object]]:
        for index, feature in enumerate(features):
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise FormatError("not a GeoJSON Feature", path=path, item_id=f"feature {index}")
            fid = feature.get("id")
            source_id = str(index) if fid is None or isinstance(fid, (dict, list)) else str(fid)
            yield source_id, feature.get("geometry"), feature.get("properties")

    return rows(), projection(crs, path)


def _shapefile_features(path: Path) -> tuple[Iterator[tuple[str, object, object]], Projection]:
    import shapefile

    prj = path.with_suffix(".prj")
    wkt = prj.read_text(encoding="utf-8", errors="replace").strip() if prj.is_file() else None
    try:
        reader = shapefile.Reader(str(path))
    except (shapefile.ShapefileException, struct.error, OSError, ValueError, EOFError) as e:
        raise FormatError(f"not a readable shapefile ({e})", path=path, expected=EXPECTED) from e
    polygon_types = (shapefile.POLYGON, shapefile.POLYGONZ, shapefile.POLYGONM, shapefile.NULL)
    if reader.shapeType not in polygon_types:
        reader.close()
        raise FormatError(f"shapefile holds {reader.shapeTypeName} shapes", path=path, expected="Polygon shapes")
    if wkt is None:
        west, south, east, north = reader.bbox if len(reader) else (0, 0, 0, 0)
        if not (-180 <= west <= east <= 180 and -MAX_LATITUDE <= south <= north <= MAX_LATITUDE):
            reader.close()
            raise FormatError(
                "no .prj beside the shapefile and its coordinates are not longitude/latitude",
                path=path,
                expected=f"{prj.name} with the CRS",
                actual=f"bbox {reader.bbox}",
            )

    def rows() -> Iterator[tuple[str, object, object]]:
        with reader:
            try:
                for index, shape_record in enumerate(reader.iterShapeRecords()):
                    shape = shape_record.shape
                    geometry = None if shape.shapeType == shapefile.NULL else shape.__geo_interface__
                    yield str(index), geometry, shape_record.record.as_dict()
            except (shapefile.ShapefileException, struct.error, ValueError, EOFError, OSError) as e:
                raise FormatError(f"truncated or corrupt shapefile ({e})", path=path) from e

    return rows(), projection(wkt, path)


def read_footprints(
    path: str | Path, *, class_property: str | None = None, default_class: str = "building"
) -> list[Footprint]:
    """Read the polygon features of a GeoJSON file or a shapefile (``.shp``), in EPSG:3857 metres.

    Args:
        path: a ``.geojson``/``.json`` file or a ``.shp`` (with its ``.dbf`` and, for projected data, ``.prj``).
        class_property: the feature property holding the class; missing, null or empty values take
            ``default_class``.
        default_class: the class of features without one.

    Raises:
        FormatError: not a FeatureCollection or polygon shapefile, unknown CRS, bad geometry or coordinates.
    """
    path = Path(path)
    rows, project = (_shapefile_features if path.suffix.lower() == ".shp" else _geojson_features)(path)
    footprints = []
    for source_id, geometry, properties in rows:
        item = f"feature {source_id}"
        if geometry is None:
            logger.debug("%s: %s has no geometry, skipped", path, item)
            continue
        parts = _parts(geometry, project, path, item)
        footprints.append(Footprint(parts, _class(properties, class_property, default_class), source_id, properties))
    return footprints
