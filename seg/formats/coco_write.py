"""A Dataset as a COCO instances document.

Ids: image ids are the Dataset's when all of them are integers written plainly (``"42"``), else ``1..N`` in image order
with the Dataset id kept in the image record as ``seg_image_id``. Annotation ids likewise come from ``source_id``, else
``1..N`` with the original kept as ``seg_source_id``. Category ids are the categories' own when unique, else ``1..N``.
Reading the document back with :func:`seg.formats.coco.load` gives the same Dataset.

Segmentation modes:

* ``"auto"``: objects read from polygons (a ``geometry`` that still rasterizes to their mask) are written as those
  rings, unchanged; every other mask as compressed RLE.
* ``"rle"``: every mask as compressed RLE.
* ``"polygon"``: every mask as polygons: one ring per part, with its holes joined by zero-width bridges
  (:func:`~seg.dataset.polygons.mask_to_rings`), which pycocotools rasterizes back to the mask exactly. The IoU of
  every written polygon is still checked, and the report lists any object below 1.

Box-only objects get their ``bbox``, ``"segmentation": []`` and the box area. Empty masks are always written as RLE
(an empty polygon list would read back as a box-only object).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from seg import __version__
from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from seg.dataset.polygons import mask_to_rings, polygon_loss
from seg.formats.coco_read import IMAGE_KEYS, TEXT_COLUMNS, Progress
from seg.formats.coco_segmentation import rle_object, same_mask

logger = logging.getLogger(__name__)

Mode = Literal["auto", "rle", "polygon"]
MODES = ("auto", "rle", "polygon")


def integer_ids(values: Sequence[Any]) -> list[int] | None:
    """``[int(v), ...]`` when every value is a plainly written, unique integer string; else None."""
    numbers = []
    for value in values:
        if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]+", value) or str(int(value)) != value:
            return None
        numbers.append(int(value))
    return numbers if len(set(numbers)) == len(numbers) else None


def category_ids(categories: Sequence[Category]) -> list[int]:
    """The categories' own ids when they are unique integers, else ``1..N``."""
    ids = [c.id for c in categories]
    valid = all(isinstance(i, int) and not isinstance(i, bool) for i in ids) and len(set(ids)) == len(ids)
    return [int(i) for i in ids] if valid else list(range(1, len(ids) + 1))


def _segmentation(row: dict, mode: Mode, geometry: Any) -> tuple[Any, float | None]:
    """The COCO segmentation of one object with a mask, and its polygon IoU when polygons lost pixels."""
    counts, height, width = row["rle"], int(row["height"]), int(row["width"])
    rings = json.loads(geometry) if isinstance(geometry, str) else None
    if rings is not None and mode != "rle" and same_mask(rings, counts, height, width):
        return rings, None
    if rings is not None and mode != "rle":
        logger.info("object %s: geometry no longer matches its mask; writing the mask", row["source_id"])
    if mode != "polygon" or row["area"] == 0:
        return rle_object(counts, height, width), None
    traced = mask_to_rings(coco_rle.decode(counts, height, width))
    iou = polygon_loss(counts, traced, height, width)
    return traced, (iou if iou < 1.0 else None)


def document(dataset: Dataset, segmentation: Mode = "auto", progress: Progress = None) -> tuple[dict, list[dict]]:
    """The COCO instances dict of ``dataset``, and the per-object polygon losses (see the module docstring)."""
    if segmentation not in MODES:
        raise ValueError(f"segmentation must be one of {MODES}, got {segmentation!r}")
    image_ids = list(dataset.images["image_id"])
    numeric = integer_ids(image_ids)
    coco_image = dict(zip(image_ids, numeric or range(1, len(image_ids) + 1), strict=True))
    images = []
    columns = ["image_id", "file_name", "width", "height", *(["attributes"] if "attributes" in dataset.images else [])]
    for row in dataset.images[columns].to_dict("records"):
        extra = json.loads(row["attributes"]) if isinstance(row.get("attributes"), str) else {}
        record = {
            **{k: v for k, v in extra.items() if k not in IMAGE_KEYS},
            "id": coco_image[row["image_id"]],
            "file_name": row["file_name"],
            "width": int(row["width"]),
            "height": int(row["height"]),
        }
        if numeric is None:
            record["seg_image_id"] = row["image_id"]
        images.append(record)
    cat_ids = category_ids(dataset.categories)
    coco_category = {c.name: i for c, i in zip(dataset.categories, cat_ids, strict=True)}
    categories = [
        {"id": i, "name": c.name, "supercategory": c.supercategory}
        for c, i in zip(dataset.categories, cat_ids, strict=True)
    ]
    rows = dataset.objects.to_dict("records")
    source_ids = integer_ids([r["source_id"] for r in rows])
    annotations, losses = [], []
    for index, row in enumerate(progress(rows) if progress else rows):
        ann_id = source_ids[index] if source_ids is not None else index + 1
        ann: dict[str, Any] = {
            "id": ann_id,
            "image_id": coco_image[row["image_id"]],
            "category_id": coco_category[row["category"]],
        }
        box = [float(row["bbox_x"]), float(row["bbox_y"]), float(row["bbox_w"]), float(row["bbox_h"])]
        if isinstance(row["rle"], str):
            ann["segmentation"], iou = _segmentation(row, segmentation, row.get("geometry"))
            ann["area"] = int(row["area"])
            if iou is not None:
                losses.append({"image_id": row["image_id"], "source_id": row["source_id"], "iou": iou})
        else:
            ann["segmentation"], ann["area"] = [], box[2] * box[3]
        ann["bbox"] = box
        ann["iscrowd"] = int(bool(row["iscrowd"]))
        if not math.isnan(row["score"]):
            ann["score"] = float(row["score"])
        if isinstance(row.get("attributes"), str):
            ann["attributes"] = json.loads(row["attributes"])
        for key in TEXT_COLUMNS:
            if isinstance(row.get(key), str):
                ann[key] = row[key]
        if source_ids is None and row["source_id"] != str(ann_id):
            ann["seg_source_id"] = row["source_id"]
        annotations.append(ann)
    doc = {
        "info": {"description": "written by seg", "version": __version__},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    return doc, losses
