"""Vector footprints (GeoJSON, shapefiles) onto georeferenced chips, and chip objects back to GeoJSON.

Chips are the image rows :func:`seg.collector.chips.make_chips` writes: ``crs`` ``"EPSG:3857"`` and the bounds
``west``/``south``/``east``/``north`` in metres. A point ``(mx, my)`` in metres lies at chip pixel
``x = (mx - west) / (east - west) * width``, ``y = (north - my) / (north - south) * height``, with pixel coordinates
measured from the top-left corner of the top-left pixel (COCO's convention, see :mod:`seg.dataset.polygons`).

Footprints are read by :mod:`seg.collector.footprints` (GeoJSON or a polygon shapefile, in longitude/latitude or
any projected CRS PROJ knows).

Footprints to chips: one object per feature per chip it covers (a MultiPolygon's parts are one object). The mask is
the union of the parts, each part being its outer ring minus its holes, rasterized exactly as pycocotools rasterizes
COCO polygons and clipped to the chip (footprints reaching more than a chip beyond it are cut to that window first, see
:data:`CLIP_CHIPS`); objects whose clipped mask is empty are dropped. ``source_id`` is the feature's
``id`` (or its index in the collection), ``attributes`` its properties as JSON text, and ``geometry`` its rings in
chip pixels: the outer rings only, and only for features without holes (a COCO ring list is a union and cannot hold a
hole; the mask is the truth).

Objects to GeoJSON: each mask is traced along pixel edges (:func:`seg.dataset.polygons.mask_to_polygons`) and every
corner is mapped back to metres and then degrees; a mask of one part becomes a Polygon, of several a MultiPolygon.
Exterior rings run counter-clockwise and holes clockwise (RFC 7946), and rings are closed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson

from seg.collector.footprints import Footprint, read_footprints
from seg.collector.tiles import meters_to_lnglat
from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from seg.dataset.polygons import mask_to_polygons, polygons_to_rle
from seg.errors import SegError
from seg.formats.json_text import dumps
from seg.outputs import atomic_file

logger = logging.getLogger(__name__)

CRS = "EPSG:3857"
#: Rings reaching further than this many chip sizes beyond the chip are clipped to that window before rasterizing,
#: which bounds pycocotools' work for footprints far larger than a chip (their long edges, cut short, may then
#: rasterize one pixel differently along the boundary); smaller footprints rasterize exactly as their full polygon.
CLIP_CHIPS = 1.0


def _clip(points: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Clip a ring (n, 2) to a rectangle (Sutherland-Hodgman; the rectangle is convex, so concave rings stay right)."""
    pts = [tuple(p) for p in points.tolist()]
    for axis, bound, keep_above in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if not pts:
            break

        def inside(p: tuple[float, float], axis: int = axis, bound: float = bound, above: bool = keep_above) -> bool:
            return p[axis] >= bound if above else p[axis] <= bound

        out: list[tuple[float, float]] = []
        for i, current in enumerate(pts):
            previous = pts[i - 1]
            if inside(current) != inside(previous):
                t = (bound - previous[axis]) / (current[axis] - previous[axis])
                cross = [previous[0] + t * (current[0] - previous[0]), previous[1] + t * (current[1] - previous[1])]
                cross[axis] = bound
                out.append((cross[0], cross[1]))
            if inside(current):
                out.append(current)
        pts = out
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def _chip_mask(footprint: Footprint, box: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
    """The footprint's mask on one chip (uint8, 0/1)."""
    west, south, east, north = box
    scale = np.array([width / (east - west), height / (north - south)])
    origin = np.array([west, north])
    flip = np.array([1.0, -1.0])
    limits = (-CLIP_CHIPS * width, -CLIP_CHIPS * height, (1 + CLIP_CHIPS) * width, (1 + CLIP_CHIPS) * height)
    mask = np.zeros((height, width), dtype=bool)
    for part in footprint.parts:
        rings = []
        for ring in part:
            pixels = (ring - origin) * flip * scale
            lo, hi = pixels.min(axis=0), pixels.max(axis=0)
            far = lo[0] < limits[0] or lo[1] < limits[1] or hi[0] > limits[2] or hi[1] > limits[3]
            clipped = _clip(pixels, *limits) if far else pixels
            rings.append(clipped.ravel().tolist() if len(clipped) >= 3 else None)
        if rings[0] is None:
            continue
        solid = coco_rle.decode(polygons_to_rle([rings[0]], height, width), height, width).astype(bool)
        holes = [r for r in rings[1:] if r is not None]
        if holes and solid.any():
            solid &= ~coco_rle.decode(polygons_to_rle(holes, height, width), height, width).astype(bool)
        mask |= solid
    return mask.astype(np.uint8)


def _pixel_rings(footprint: Footprint, box: tuple[float, float, float, float], width: int, height: int) -> str | None:
    """The outer rings in chip pixels as geometry JSON text; None when the feature has holes."""
    if any(len(part) > 1 for part in footprint.parts):
        return None
    west, south, east, north = box
    rings = []
    for part in footprint.parts:
        ring = part[0]
        xs = (ring[:, 0] - west) / (east - west) * width
        ys = (north - ring[:, 1]) / (north - south) * height
        rings.append(np.column_stack([xs, ys]).ravel().tolist())
    return dumps(rings)


def _chip_box(row: object, image_id: str) -> tuple[float, float, float, float]:
    crs = getattr(row, "crs", None)
    if crs != CRS:
        raise SegError("image is not a georeferenced chip", item_id=image_id, expected=f"crs {CRS}", actual=crs)
    try:
        box = tuple(float(getattr(row, k)) for k in ("west", "south", "east", "north"))
    except (AttributeError, TypeError, ValueError) as e:
        raise SegError("chip bounds missing", item_id=image_id, expected="west, south, east, north") from e
    west, south, east, north = box
    if not (math.isfinite(west + south + east + north) and west < east and south < north):
        raise SegError("chip bounds are empty", item_id=image_id, actual=box)
    return box  # type: ignore[return-value]


def footprints_to_dataset(
    geojson: Path, chips: Dataset, *, class_property: str | None = None, default_class: str = "building"
) -> Dataset:
    """Rasterize footprints (GeoJSON or shapefile) onto georeferenced chips.

    Args:
        geojson: a GeoJSON FeatureCollection or a polygon shapefile (see :func:`read_footprints`).
        chips: a Dataset whose images carry ``crs`` ``"EPSG:3857"`` and ``west``/``south``/``east``/``north`` in
            metres (as :func:`seg.collector.chips.make_chips` makes); its objects are not kept.
        class_property: the feature property holding the class; missing, null or empty values take
            ``default_class``.
        default_class: the class of features without one.

    Returns:
        Every chip (negatives included) with one object per feature per chip it covers; categories are the classes
        of all features, in order of first appearance.

    Raises:
        FormatError: bad footprints file (see :func:`read_footprints`).
        SegError: an image without the chip georeference.
    """
    footprints = read_footprints(geojson, class_property=class_property, default_class=default_class)
    classes = list(dict.fromkeys(fp.category for fp in footprints))
    if footprints:
        lefts = np.array([fp.left for fp in footprints])
        rights = np.array([fp.right for fp in footprints])
        bottoms = np.array([fp.bottom for fp in footprints])
        tops = np.array([fp.top for fp in footprints])
    objects: list[dict] = []
    for row in chips.images.itertuples(index=False):
        image_id = str(row.image_id)
        box = _chip_box(row, image_id)
        if not footprints:
            continue
        west, south, east, north = box
        width, height = int(row.width), int(row.height)
        near = np.flatnonzero((lefts < east) & (rights > west) & (bottoms < north) & (tops > south))
        for i in near:
            footprint = footprints[i]
            mask = _chip_mask(footprint, box, width, height)
            if not mask.any():
                continue
            objects.append(
                {
                    "image_id": image_id,
                    "file_name": row.file_name,
                    "width": width,
                    "height": height,
                    "category": footprint.category,
                    "rle": coco_rle.encode(mask),
                    "source_id": footprint.source_id,
                    "geometry": _pixel_rings(footprint, box, width, height),
                    "attributes": None if footprint.properties is None else dumps(footprint.properties),
                }
            )
    logger.info("%d objects from %d footprints on %d chips", len(objects), len(footprints), len(chips.images))
    categories = [Category(name, i + 1) for i, name in enumerate(classes)]
    images = chips.images.copy()
    return Dataset.from_records(
        images.to_dict("records"), objects, categories, image_root=chips.image_root, source=Path(geojson)
    )


def _signed_area(ring: Sequence[Sequence[float]]) -> float:
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, [*ring[1:], ring[0]], strict=True))


def _to_lnglat(
    ring: Sequence[float], box: tuple[float, float, float, float], width: int, height: int, exterior: bool
) -> list[list[float]]:
    west, south, east, north = box
    points = []
    for x, y in zip(ring[0::2], ring[1::2], strict=True):
        mx = west + x / width * (east - west)
        my = north - y / height * (north - south)
        points.append(list(meters_to_lnglat(mx, my)))
    if (_signed_area(points) > 0) != exterior:
        points.reverse()
    return [*points, points[0]]


def dataset_to_geojson(dataset: Dataset, out: Path | None = None, *, overwrite: bool = False) -> dict:
    """The objects of georeferenced chips as a GeoJSON FeatureCollection in longitude/latitude.

    Args:
        dataset: images carry ``crs`` ``"EPSG:3857"`` and ``west``/``south``/``east``/``north`` in metres.
        out: when given, the collection is also written there (atomically).
        overwrite: replace an existing ``out``.

    Returns:
        The FeatureCollection: one Polygon or MultiPolygon feature per object with a non-empty mask, with properties
        ``class``, ``score`` (when the object has one), ``image_id`` and ``source_id``. Box-only objects are left out.

    Raises:
        SegError: an image without the chip georeference.
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
    """
    boxes = {str(row.image_id): _chip_box(row, str(row.image_id)) for row in dataset.images.itertuples(index=False)}
    features = []
    skipped = 0
    for obj in dataset.objects.itertuples(index=False):
        if obj.rle is None or (isinstance(obj.rle, float) and math.isnan(obj.rle)):
            skipped += 1
            continue
        width, height = int(obj.width), int(obj.height)
        box = boxes[str(obj.image_id)]
        mask = coco_rle.decode(obj.rle, height, width)
        polygons = [
            [_to_lnglat(outer, box, width, height, True)] + [_to_lnglat(h, box, width, height, False) for h in holes]
            for outer, holes in mask_to_polygons(mask)
        ]
        if not polygons:
            continue
        geometry = (
            {"type": "Polygon", "coordinates": polygons[0]}
            if len(polygons) == 1
            else {"type": "MultiPolygon", "coordinates": polygons}
        )
        properties: dict[str, object] = {"class": obj.category}
        score = obj.score
        if score is not None and not (isinstance(score, float) and math.isnan(score)):
            properties["score"] = float(score)
        properties["image_id"] = str(obj.image_id)
        properties["source_id"] = str(obj.source_id)
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    if skipped:
        logger.info("%d box-only objects left out of the GeoJSON", skipped)
    collection = {"type": "FeatureCollection", "features": features}
    if out is not None:
        with atomic_file(out, overwrite) as handle:
            handle.write(orjson.dumps(collection))
    return collection
