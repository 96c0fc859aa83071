"""A Dataset as a VIA 2 project (``_via_data_format_version`` 2.0.10), the file VIA 2's "Project > Load" opens.

Images are keyed ``"<file_name><size>"``, size being the image file's size in bytes when the file is reachable
(:meth:`Dataset.image_paths`) and -1 otherwise, as VIA does for URLs. Each object becomes one region or, for a mask of
several parts, several regions sharing an ``id``:

* a shape read from VIA (``attributes["via_shape"]``) that still rasterizes to the object's mask is written as that
  shape, unchanged (a rect stays a rect, a circle a circle);
* else polygon rings read from a polygon format (``geometry``) that still match the mask are written one polygon each;
* else the mask is traced into one polygon per part with its holes joined by zero-width bridges
  (:func:`~seg.dataset.polygons.mask_to_rings`): exact under pycocotools' rasterization, so reading the file back
  gives the same mask, though VIA's own drawing of a bridged ring may show the bridge as a seam. Every traced polygon
  is checked and the report lists objects whose polygons hold less than their mask (IoU < 1);
* box-only objects are rects (read back, a rect is a mask: VIA has no box-only regions); objects with an empty mask
  and no shape are not written (listed in the report's ``skipped``); a shape that lies outside its image (an empty
  mask) is written as read.

Region attributes: the class under ``class_attribute`` (a dropdown listing every category, in order, in
``_via_attributes``), the region attributes read from VIA (or, for objects from other formats, their scalar
``attributes``), ``id`` = ``source_id`` when it is not the reader's default ``"<image_id>:<n>"`` or the object has
several regions, and ``score`` for predictions (written as regions, i.e. pre-annotations). File attributes read from
VIA are written back. Reading the file with :func:`seg.formats.via.load` gives the same Dataset.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from seg.dataset import rle as coco_rle
from seg.dataset.core import Dataset
from seg.dataset.polygons import Ring, mask_to_rings, polygon_loss
from seg.errors import SegError
from seg.formats.coco_segmentation import same_mask
from seg.formats.via_read import shape_rings
from seg.outputs import atomic_file, check_writable
from seg.progress import Progress

logger = logging.getLogger(__name__)

FORMAT_VERSION = "2.0.10"


def save(
    dataset: Dataset,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Progress = None,
    class_attribute: str = "class",
    project_name: str | None = None,
) -> dict:
    """Write ``dataset`` as a VIA 2 project JSON file, atomically.

    Args:
        dataset: what to write.
        path: the JSON file to write.
        overwrite: replace an existing file.
        progress: wraps the loop over images.
        class_attribute: the region attribute that holds the class.
        project_name: the project's name in VIA (default: the file's stem).

    Returns:
        ``{"images", "objects", "regions", "polygon_loss": [{"image_id", "source_id", "iou"}...], "skipped":
        [{"image_id", "source_id", "reason"}...], "path"}``.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (nothing is written).
        SegError: two images with one file name and size (VIA keys images by them).

    Example:
        >>> save(ds, "project.json", class_attribute="label")  # doctest: +SKIP
    """
    path = check_writable(path, overwrite)
    if not isinstance(class_attribute, str) or not class_attribute:
        raise ValueError(f"class_attribute must be a non-empty name, got {class_attribute!r}")
    doc, report = document(dataset, class_attribute, project_name or path.stem, progress)
    try:
        text = orjson.dumps(doc)
    except TypeError:  # an integer beyond 64 bits among the attributes read from a file
        text = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    with atomic_file(path, overwrite) as handle:
        handle.write(text)
    if report["polygon_loss"]:
        logger.warning("%s: %d objects lost pixels as polygons", path, len(report["polygon_loss"]))
    if report["skipped"]:
        logger.warning("%s: %d objects with an empty mask not written", path, len(report["skipped"]))
    return {**report, "path": str(path)}


def _plain(value: float) -> int | float:
    """Integral floats as ints (VIA writes whole pixels as integers)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def polygon_shape(ring: Ring) -> dict:
    """The VIA polygon shape dict of a flat ring."""
    return {
        "name": "polygon",
        "all_points_x": [_plain(float(v)) for v in ring[0::2]],
        "all_points_y": [_plain(float(v)) for v in ring[1::2]],
    }


def _stored_shapes(kept: dict) -> list[dict] | None:
    shapes = kept.get("via_shape")
    if isinstance(shapes, dict):
        return [shapes]
    if isinstance(shapes, list) and shapes and all(isinstance(s, dict) for s in shapes):
        return shapes
    return None


def _shapes_of(row: dict, kept: dict) -> tuple[list[dict], float | None]:
    """The VIA shapes of one object with a mask (none for an empty mask without shapes), and its polygon IoU when
    traced polygons lost pixels."""
    counts, height, width = row["rle"], int(row["height"]), int(row["width"])
    stored = _stored_shapes(kept)
    if stored is not None:
        try:
            rings = [shape_rings(s) for s in stored]
        except ValueError:
            rings = []
        drawn = [r[0] for r in rings if isinstance(r, list)]
        if rings and len(drawn) == len(rings) and same_mask(drawn, counts, height, width):
            return stored, None
        logger.info("object %s: its VIA shape no longer matches its mask; writing the mask", row["source_id"])
    geometry = json.loads(row["geometry"]) if isinstance(row.get("geometry"), str) else None
    if isinstance(geometry, list) and geometry and same_mask(geometry, counts, height, width):
        return [polygon_shape(ring) for ring in geometry], None
    if row["area"] == 0:
        return [], None
    traced = mask_to_rings(coco_rle.decode(counts, height, width))
    iou = polygon_loss(counts, traced, height, width)
    return [polygon_shape(ring) for ring in traced], (iou if iou < 1.0 else None)


def _region_attributes(kept: dict) -> dict:
    """Region attributes to write back: those read from VIA, or the scalar attributes of another format's object."""
    stored = kept.get("region_attributes")
    if isinstance(stored, dict):
        return stored
    if "via_shape" in kept:
        return {}
    return {
        k: v
        for k, v in kept.items()
        if isinstance(v, str | int | float | bool) and not k.startswith(("via_", "labelme_"))
    }


def _declare(values: dict[str, list]) -> dict:
    """``_via_attributes`` entries for attributes seen with these values: checkboxes for dicts, else text."""
    declared = {}
    for name, seen in values.items():
        if seen and all(isinstance(v, dict) for v in seen):
            options = {str(k): str(k) for v in seen for k in v}
            declared[name] = {"type": "checkbox", "description": "", "options": options, "default_options": {}}
        else:
            declared[name] = {"type": "text", "description": "", "default_value": ""}
    return declared


def project_settings(class_attribute: str, name: str) -> dict:
    """The ``_via_settings`` of a VIA 2 project that labels and colours regions by ``class_attribute``."""
    return {
        "ui": {
            "annotation_editor_height": 25,
            "annotation_editor_fontsize": 0.8,
            "leftsidebar_width": 18,
            "image_grid": {
                "img_height": 80,
                "rshape_fill": "none",
                "rshape_fill_opacity": 0.3,
                "rshape_stroke": "yellow",
                "rshape_stroke_width": 2,
                "show_region_shape": True,
                "show_image_policy": "all",
            },
            "image": {
                "region_label": class_attribute,
                "region_color": class_attribute,
                "region_label_font": "10px Sans",
                "on_image_annotation_editor_placement": "NEAR_REGION",
            },
        },
        "core": {"buffer_size": 18, "filepath": {}, "default_filepath": ""},
        "project": {"name": name},
    }


def _file_size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path is not None and path.is_file() else -1
    except OSError:
        return -1


def document(
    dataset: Dataset, class_attribute: str, name: str, progress: Progress = None
) -> tuple[dict, dict[str, Any]]:
    """The VIA 2 project dict of ``dataset`` and the report (counts, polygon losses, skipped objects)."""
    by_image: dict[str, list[dict]] = {}
    for row in dataset.objects.to_dict("records"):
        by_image.setdefault(row["image_id"], []).append(row)
    images = dataset.images.to_dict("records")
    paths = dataset.image_paths()
    metadata: dict[str, dict] = {}
    region_values: dict[str, list] = {}
    file_values: dict[str, list] = {}
    losses: list[dict] = []
    skipped: list[dict] = []
    regions_written = 0
    pairs: Iterable = list(zip(images, paths, strict=True))
    for image, image_path in progress(pairs) if progress else pairs:
        size = _file_size(image_path)
        key = f"{image['file_name']}{size}"
        if key in metadata:
            raise SegError(
                "two images have one file name and size: VIA cannot tell them apart",
                item_id=image["image_id"],
                expected="unique image file names",
                actual=image["file_name"],
            )
        regions = []
        for number, row in enumerate(by_image.get(image["image_id"], [])):
            kept = json.loads(row["attributes"]) if isinstance(row.get("attributes"), str) else {}
            kept = kept if isinstance(kept, dict) else {}
            if not isinstance(row["rle"], str):
                box = (row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"])
                shape = dict(zip(("x", "y", "width", "height"), (_plain(float(v)) for v in box), strict=True))
                shapes = [{"name": "rect", **shape}]
            else:
                shapes, iou = _shapes_of(row, kept)
                if not shapes:
                    skipped.append({"image_id": row["image_id"], "source_id": row["source_id"], "reason": "empty mask"})
                    continue
                if iou is not None:
                    losses.append({"image_id": row["image_id"], "source_id": row["source_id"], "iou": iou})
            attributes = {class_attribute: row["category"]}
            for k, v in _region_attributes(kept).items():
                if k != class_attribute:
                    attributes[k] = v
                    region_values.setdefault(k, []).append(v)
            default = f"{image['image_id']}:{number}"
            ident = row["source_id"] or (default if len(shapes) > 1 else "")
            if ident and (len(shapes) > 1 or ident != default):
                attributes["id"] = ident
                region_values.setdefault("id", []).append(ident)
            if not math.isnan(row["score"]):
                attributes["score"] = float(row["score"])
                region_values.setdefault("score", []).append(row["score"])
            regions += [{"shape_attributes": shape, "region_attributes": attributes} for shape in shapes]
        regions_written += len(regions)
        kept_image = json.loads(image["attributes"]) if isinstance(image.get("attributes"), str) else {}
        file_attributes = kept_image.get("via_file_attributes") if isinstance(kept_image, dict) else None
        file_attributes = file_attributes if isinstance(file_attributes, dict) else {}
        for k, v in file_attributes.items():
            file_values.setdefault(k, []).append(v)
        metadata[key] = {
            "filename": image["file_name"],
            "size": size,
            "regions": regions,
            "file_attributes": file_attributes,
        }
    class_spec = {
        "type": "dropdown",
        "description": "object class",
        "options": {c.name: c.name for c in dataset.categories},
        "default_options": {},
    }
    region_values.pop(class_attribute, None)
    doc = {
        "_via_settings": project_settings(class_attribute, name),
        "_via_img_metadata": metadata,
        "_via_attributes": {
            "region": {class_attribute: class_spec, **_declare(region_values)},
            "file": _declare(file_values),
        },
        "_via_data_format_version": FORMAT_VERSION,
        "_via_image_id_list": list(metadata),
    }
    report = {
        "images": len(metadata),
        "objects": len(dataset.objects) - len(skipped),
        "regions": regions_written,
        "polygon_loss": losses,
        "skipped": skipped,
    }
    return doc, report
