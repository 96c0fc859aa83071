"""A Dataset as Label Studio tasks with pre-annotations, and the labeling config that shows them.

See :mod:`seg.formats.labelstudio` for the conventions. Masks become polygons (``tool="polygon"``) or brush regions
(``tool="brush"``); box-only objects become ``rectanglelabels`` of a companion control named ``<from_name>_box``
(add it with ``label_config(..., boxes=True)``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import Any, Literal

from seg.dataset import ls_brush
from seg.dataset import rle as coco_rle
from seg.dataset.core import Dataset
from seg.dataset.polygons import mask_to_rings, polygon_loss
from seg.formats.coco_segmentation import same_mask
from seg.formats.labelstudio_shapes import percent_points, rectangle_value
from seg.progress import Progress

Tool = Literal["polygon", "brush"]
TOOLS = ("polygon", "brush")
#: The control tag of each tool, and the result type it writes.
CONTROL_TAGS = {"polygon": "PolygonLabels", "brush": "BrushLabels"}
RESULT_TYPES = {"polygon": "polygonlabels", "brush": "brushlabels"}
#: Name suffix of the ``RectangleLabels`` control that holds box-only objects.
BOX_SUFFIX = "_box"
#: Label colours in the config, in class order (cycled).
PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
#: ``source_id`` of objects read from Label Studio: ``ann 17/reg <result id>[/<label>]``.
REGION_SOURCE = re.compile(r"(?:^|/)reg ([^/#][^/]*)")


def _check_names(tool: str, from_name: str, to_name: str) -> None:
    if tool not in TOOLS:
        raise ValueError(f"tool must be one of {TOOLS}, got {tool!r}")
    for what, name in (("from_name", from_name), ("to_name", to_name)):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{what} must be a non-empty name, got {name!r}")


def label_config(
    classes: Sequence[str],
    tool: Tool = "polygon",
    from_name: str = "label",
    to_name: str = "image",
    *,
    boxes: bool = False,
) -> str:
    """A labeling config for ``classes``: an ``Image`` showing ``$image`` and a ``PolygonLabels`` or ``BrushLabels``
    control (plus a ``RectangleLabels`` control ``<from_name>_box`` with ``boxes``). Names are XML-escaped.

    Raises:
        ValueError: an unknown tool, empty names, duplicate classes, or a name XML cannot hold (control characters).
    """
    _check_names(tool, from_name, to_name)
    names = list(classes)
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate class names in {names}")
    for name in names:
        if not isinstance(name, str) or not name or re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", name):
            raise ValueError(f"class name {name!r} cannot be a Label Studio label")
    root = ET.Element("View")
    ET.SubElement(root, "Image", {"name": to_name, "value": "$image", "zoom": "true"})
    controls = [(CONTROL_TAGS[tool], from_name)] + ([("RectangleLabels", from_name + BOX_SUFFIX)] if boxes else [])
    for tag, name in controls:
        control = ET.SubElement(root, tag, {"name": name, "toName": to_name})
        for number, label in enumerate(names):
            ET.SubElement(control, "Label", {"value": label, "background": PALETTE[number % len(PALETTE)]})
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _region_id(source_id: str, image_id: str, index: int, used: set[str]) -> str:
    """A result id for an object: its Label Studio id when it came from there, else its source id, else a hash;
    unique within the task."""
    found = REGION_SOURCE.search(source_id)
    if found:
        candidate = found.group(1)
    elif source_id and len(source_id) <= 64 and "/" not in source_id:
        candidate = source_id
    else:
        candidate = ""
    if not candidate or candidate in used:
        digest = hashlib.sha1(f"{image_id}\0{source_id}\0{index}".encode()).hexdigest()
        candidate = digest[:10]
    used.add(candidate)
    return candidate


def build_tasks(
    dataset: Dataset,
    *,
    image_url: Callable[[str], str],
    tool: Tool = "polygon",
    as_predictions: bool = True,
    model_version: str = "seg",
    from_name: str = "label",
    to_name: str = "image",
    progress: Progress = None,
) -> tuple[list[dict], dict]:
    """The tasks of :func:`dataset_to_tasks` and a report: ``regions`` written, ``polygon_loss`` (objects whose
    polygons hold less than their mask), ``split`` (objects written as several polygons), ``empty`` (empty masks,
    not written) and ``boxes`` (box-only objects)."""
    _check_names(tool, from_name, to_name)
    objects = dataset.objects.to_dict("records")
    by_image: dict[str, list[dict]] = {}
    for row in objects:
        by_image.setdefault(row["image_id"], []).append(row)
    report: dict[str, Any] = {"regions": 0, "polygon_loss": [], "split": 0, "empty": 0, "boxes": 0}
    tasks = []
    rows = dataset.images[["image_id", "file_name", "width", "height"]].to_dict("records")
    for image in progress(rows) if progress else rows:
        width, height = int(image["width"]), int(image["height"])
        used: set[str] = set()
        results: list[dict] = []
        scores = []
        for index, row in enumerate(by_image.get(image["image_id"], [])):
            score = row["score"]
            regions = _regions(row, tool, width, height, report)
            common = {"from_name": from_name, "to_name": to_name, "original_width": width, "original_height": height}
            for number, (kind, value) in enumerate(regions):
                rid = _region_id(
                    row["source_id"] + (f"/part {number}" if number else ""), image["image_id"], index, used
                )
                result = {"id": rid, "type": kind, **common, "image_rotation": 0, "value": value}
                if kind == "rectanglelabels":
                    result["from_name"] = from_name + BOX_SUFFIX
                if as_predictions and not math.isnan(score):
                    result["score"] = float(score)
                results.append(result)
            if regions and not math.isnan(score):
                scores.append(float(score))
        report["regions"] += len(results)
        data = {"image": image_url(image["file_name"]), "seg_image_id": image["image_id"]}
        data.update(seg_width=width, seg_height=height)  # images without regions keep their size
        if as_predictions:
            entry = {"model_version": model_version, "score": sum(scores) / len(scores) if scores else None}
            tasks.append({"data": data, "predictions": [{**entry, "result": results}]})
        else:
            tasks.append({"data": data, "annotations": [{"result": results}]})
    return tasks, report


def _regions(row: dict, tool: str, width: int, height: int, report: dict) -> list[tuple[str, dict]]:
    """``(result type, value)`` of each region standing for one object."""
    label = row["category"]
    counts = row["rle"]
    if not isinstance(counts, str):
        report["boxes"] += 1
        box = (row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"])
        return [("rectanglelabels", {**rectangle_value(box, width, height), "rectanglelabels": [label]})]
    if int(row["area"]) == 0:
        report["empty"] += 1
        return []
    if tool == "brush":
        rle = ls_brush.encode(coco_rle.decode(counts, height, width))
        return [("brushlabels", {"format": "rle", "rle": rle, "brushlabels": [label]})]
    geometry = row.get("geometry")
    rings = json.loads(geometry) if isinstance(geometry, str) else None
    if rings is None or not same_mask(rings, counts, height, width):
        rings = mask_to_rings(coco_rle.decode(counts, height, width))
    iou = polygon_loss(counts, rings, height, width)
    if iou < 1.0:
        report["polygon_loss"].append({"image_id": row["image_id"], "source_id": row["source_id"], "iou": iou})
    if len(rings) > 1:
        report["split"] += 1
    return [
        ("polygonlabels", {"points": percent_points(ring, width, height), "closed": True, "polygonlabels": [label]})
        for ring in rings
    ]


def dataset_to_tasks(
    dataset: Dataset,
    *,
    image_url: Callable[[str], str],
    tool: Tool = "polygon",
    as_predictions: bool = True,
    model_version: str = "seg",
    from_name: str = "label",
    to_name: str = "image",
) -> list[dict]:
    """Label Studio tasks holding ``dataset``'s objects as pre-annotations, one task per image.

    Each task is ``{"data": {"image": image_url(file_name), "seg_image_id", "seg_width", "seg_height"}, "predictions":
    [{"model_version", "score", "result"}]}`` (``"annotations": [{"result"}]`` when ``as_predictions`` is false); images
    without objects get an empty result (their size stays in the data). Results carry
    ``original_width``/``original_height``, coordinates in percent and stable ids (the region id an object read from
    Label Studio had, else its ``source_id``, else a hash). Masks are polygons traced with their holes bridged (exact;
    an object of several parts becomes several polygon regions) or brush RLE; box-only objects are ``rectanglelabels``
    of ``<from_name>_box``.

    Raises:
        ValueError: an unknown tool or empty control names.
    """
    tasks, _ = build_tasks(
        dataset,
        image_url=image_url,
        tool=tool,
        as_predictions=as_predictions,
        model_version=model_version,
        from_name=from_name,
        to_name=to_name,
    )
    return tasks
