"""Writing a Dataset as a Kaggle ``EncodedPixels`` CSV (see :mod:`seg.formats.kaggle` for the layouts)."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from typing import Literal

import numpy as np
import pandas as pd

from seg.dataset.core import Dataset
from seg.dataset.mask_paint import parse_runs
from seg.outputs import atomic_file, check_writable
from seg.progress import Progress

logger = logging.getLogger(__name__)

Style = Literal["auto", "airbus", "imaterialist"]

#: Extra columns written back (from ``attributes``) in the iMaterialist layout.
ATTRIBUTE_COLUMNS = ("AttributesIds",)
#: Objects converted to ``EncodedPixels`` per batch.
_BATCH = 4096


def save(
    dataset: Dataset,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Progress = None,
    style: Style = "auto",
    boxes: Literal["skip", "paint"] = "skip",
) -> dict:
    """Write ``dataset`` as a Kaggle ``EncodedPixels`` CSV, atomically.

    Args:
        dataset: what to write.
        path: the CSV file.
        overwrite: replace an existing file.
        progress: wraps the loop over batches of objects.
        style: ``"airbus"`` (``ImageId,EncodedPixels``), ``"imaterialist"``
            (``ImageId,EncodedPixels,Height,Width,ClassId``), or ``"auto"`` (see :mod:`seg.formats.kaggle`).
        boxes: box-only objects are ``"skip"``-ped (counted) or written as their box mask (``"paint"``).

    Returns:
        ``{"path", "style", "rows", "images", "objects", "empty_masks", "box_only", "boxes"}``.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (nothing is written).
    """
    if style not in ("auto", "airbus", "imaterialist"):
        raise ValueError(f"style must be 'auto', 'airbus' or 'imaterialist', got {style!r}")
    if boxes not in ("skip", "paint"):
        raise ValueError(f"boxes must be 'skip' or 'paint', got {boxes!r}")
    path = check_writable(path, overwrite)
    chosen = _style(dataset) if style == "auto" else style
    objects = dataset.objects
    encoded = _encoded_pixels(objects, boxes, progress)
    attributes = _attributes(objects)
    extra = [c for c in ATTRIBUTE_COLUMNS if any(c in a for a in attributes if a)] if chosen == "imaterialist" else []
    header = ["ImageId", "EncodedPixels"] + (["Height", "Width", "ClassId", *extra] if chosen == "imaterialist" else [])
    image_keys = _image_keys(dataset.images)
    owner = objects["image_id"].map(pd.Series(np.arange(len(dataset.images)), index=dataset.images["image_id"]))
    bounds = np.searchsorted(owner.to_numpy(np.int64), np.arange(len(dataset.images) + 1)).tolist()
    categories, heights, widths = objects["category"].tolist(), objects["height"].tolist(), objects["width"].tolist()
    rows = written = 0
    with atomic_file(path, overwrite, mode="wb") as raw:
        handle = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(header)
        for index, image in enumerate(dataset.images[["width", "height"]].itertuples(index=False)):
            key = image_keys[index]
            lines = []
            for i in range(bounds[index], bounds[index + 1]):
                if not encoded[i]:
                    continue
                line = [key, encoded[i]]
                if chosen == "imaterialist":
                    line += [heights[i], widths[i], _class_id(categories[i], attributes[i])]
                    line += [(attributes[i] or {}).get(c, "") for c in extra]
                lines.append(line)
            if not lines:
                lines = [
                    [key, ""]
                    + ([image.height, image.width, ""] + [""] * len(extra) if chosen == "imaterialist" else [])
                ]
            out.writerows(lines)
            rows += len(lines)
            written += sum(1 for line in lines if line[1])
        handle.flush()
        handle.detach()  # the atomic file closes the underlying file
    box_only = int(objects["rle"].isna().sum())
    empty = sum(1 for e, r in zip(encoded, objects["rle"].tolist(), strict=True) if not e and isinstance(r, str))
    if box_only:
        logger.warning(
            "%s: %d box-only objects %s",
            path,
            box_only,
            "written as box masks" if boxes == "paint" else "skipped (no mask)",
        )
    return {
        "path": str(path),
        "style": chosen,
        "rows": rows,
        "images": len(dataset.images),
        "objects": written,
        "empty_masks": empty,
        "box_only": box_only,
        "boxes": boxes,
    }


def _style(dataset: Dataset) -> str:
    names = dataset.category_names
    sizes = dataset.images[["width", "height"]].drop_duplicates()
    if len(names) > 1 or (names and all(n.isdigit() for n in names)) or len(sizes) > 1:
        return "imaterialist"
    return "airbus"


def _image_keys(images: pd.DataFrame) -> list[str]:
    """The ``ImageId`` of each image: the one read from a Kaggle CSV when kept, else its ``file_name``."""
    names = images["file_name"].tolist()
    if "kaggle_image_id" not in images.columns:
        return names
    return [
        k if isinstance(k, str) and k else n for k, n in zip(images["kaggle_image_id"].tolist(), names, strict=True)
    ]


def _attributes(objects: pd.DataFrame) -> list[dict | None]:
    if "attributes" not in objects.columns:
        return [None] * len(objects)
    parsed = []
    for text in objects["attributes"].tolist():
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            value = None
        parsed.append(value if isinstance(value, dict) else None)
    return parsed


def _class_id(category: str, attributes: dict | None) -> str:
    """The ``ClassId`` read (``"6_1_3"``) when it still names this category, else the category name."""
    read = (attributes or {}).get("ClassId")
    return read if isinstance(read, str) and read.split("_", 1)[0] == category else category


def _encoded_pixels(objects: pd.DataFrame, boxes: str, progress: Progress) -> list[str]:
    """``EncodedPixels`` of every object ("" for empty masks and skipped box-only objects), from the RLE runs."""
    rles = [r if isinstance(r, str) else None for r in objects["rle"].tolist()]
    heights = objects["height"].to_numpy(np.int64)
    encoded = [""] * len(rles)
    batches = range(0, len(rles), _BATCH)
    for lo in progress(batches) if progress is not None else batches:
        hi = min(lo + _BATCH, len(rles))
        masked = [i for i in range(lo, hi) if rles[i] is not None]
        runs = parse_runs([rles[i] for i in masked])
        keep = runs.ends > runs.starts
        starts, lengths, owner = runs.starts[keep], (runs.ends - runs.starts)[keep], runs.owner[keep]
        pairs = np.empty(starts.size * 2, np.int64)
        pairs[0::2], pairs[1::2] = starts + 1, lengths
        tokens = pairs.astype(str).tolist()
        cuts = (np.searchsorted(owner, np.arange(len(masked) + 1)) * 2).tolist()
        for n, i in enumerate(masked):
            encoded[i] = " ".join(tokens[cuts[n] : cuts[n + 1]])
    if boxes == "paint":
        for i in np.flatnonzero(objects["rle"].isna().to_numpy()).tolist():
            encoded[i] = _box_pixels(objects.iloc[i], int(heights[i]))
    return encoded


def _box_pixels(obj: pd.Series, height: int) -> str:
    """``EncodedPixels`` of a box, as :meth:`Dataset.object_mask` paints it: one run per column."""
    width = int(obj["width"])
    x0, y0 = max(int(np.floor(obj["bbox_x"])), 0), max(int(np.floor(obj["bbox_y"])), 0)
    x1 = min(int(np.ceil(obj["bbox_x"] + obj["bbox_w"])), width)
    y1 = min(int(np.ceil(obj["bbox_y"] + obj["bbox_h"])), height)
    if x1 <= x0 or y1 <= y0:
        return ""
    return " ".join(f"{x * height + y0 + 1} {y1 - y0}" for x in range(x0, x1))
