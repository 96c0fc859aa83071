"""COCO: instances JSON (ground truth) and results lists (predictions).

Reading (:func:`load`): ``image_id`` is the COCO image id as text; ``file_name`` is normalised (subfolders kept,
backslashes become ``/``, absolute or ``..`` paths are refused); categories keep their file order, ids and
supercategories; an object's ``category`` is the category *name* and its ``source_id`` the annotation id. Polygons
(several parts, or the flat single-ring form), compressed and uncompressed RLE are rasterized exactly as pycocotools'
``COCO.annToMask`` does, polygons clipped to the image; polygon rings are kept as read in ``geometry`` so that
:func:`save` writes them back unchanged. Annotations without a segmentation are box-only objects. ``iscrowd``,
``score`` and ``attributes`` are kept. Images without objects are kept.

The image folder is the ``images`` option, else the JSON's own folder, unless the first image is found in a standard
layout beside it instead (``annotations/instances_val.json`` with ``images/val/``, ``val/`` or ``images/``).

Other COCO task files are refused with a message naming them: image_info (no ``annotations``), captions, image labels,
keypoints only, panoptic. ``person_keypoints`` files load as instances (their masks and boxes; keypoints are dropped).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from seg.dataset.core import Dataset
from seg.dataset.problems import Problems
from seg.errors import FormatError, SegError
from seg.formats.coco_read import (
    Context,
    Progress,
    check_instances,
    default_root,
    read_annotations,
    read_categories,
    read_images,
)
from seg.formats.coco_results import load_results
from seg.formats.coco_write import Mode, document
from seg.formats.json_text import read_json
from seg.outputs import atomic_file, check_writable

logger = logging.getLogger(__name__)

#: Files up to this size are parsed whole by :func:`detect`; larger ones are scanned as text.
_DETECT_PARSE_LIMIT = 8 * 2**20


def detect(path: Path) -> bool:
    """True for a ``.json`` file holding a dict with ``images`` and ``annotations``, or a list of results."""
    path = Path(path)
    if not (path.is_file() and path.suffix.lower() == ".json"):
        return False
    try:
        if path.stat().st_size <= _DETECT_PARSE_LIMIT:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
            if isinstance(data, dict):
                return "images" in data and "annotations" in data
            return isinstance(data, list) and bool(data) and _is_result(data[0])
        return _scan(path)
    except (OSError, ValueError, RecursionError):
        return False


def _is_result(row: Any) -> bool:
    return isinstance(row, dict) and "image_id" in row and "category_id" in row


def _scan(path: Path) -> bool:
    """Detect a large file from its text without parsing it all."""
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        head = handle.read(65536)
        text = head.lstrip()
        if text.startswith("["):
            return '"image_id"' in head and '"category_id"' in head
        if not text.startswith("{"):
            return False
        found = {key for key in ('"images"', '"annotations"') if key in head}
        tail = head[-16:]
        while len(found) < 2:
            chunk = handle.read(2**22)
            if not chunk:
                return False
            window = tail + chunk
            found |= {key for key in ('"images"', '"annotations"') if key in window}
            tail = chunk[-16:]
        return True


def load(
    path: str | os.PathLike[str],
    *,
    problems: Problems | None = None,
    progress: Progress = None,
    images: str | os.PathLike[str] | None = None,
    annotations: str | os.PathLike[str] | None = None,
    image_size: tuple[int, int] | None = None,
    workers: int | None = None,
) -> Dataset:
    """Read a COCO instances file or a COCO results list.

    Args:
        path: the JSON file.
        problems: error policy for bad items (default: raise at the first one).
        progress: wraps the loop over annotations (e.g. ``tqdm``).
        images: the image folder (default: see the module docstring).
        annotations: results lists only: the ground-truth COCO file giving image sizes, file names and categories.
        image_size: results lists only: ``(width, height)`` of every image when neither RLE sizes, ground truth nor
            the image folder give it.
        workers: instances files: processes that rasterize the annotations (default: one per CPU for large files).

    Raises:
        FormatError: malformed JSON, a file that is not COCO instances or results, or (policy ``raise``) a bad item.
        UnsafePathError: an image path that is absolute or leaves the image folder.

    Example:
        >>> ds = load("annotations/instances_val2017.json", images="val2017")  # doctest: +SKIP
    """
    path = Path(path)
    ctx = Context(path, problems or Problems())
    data = read_json(path)
    if isinstance(data, list):
        image_rows, objects, categories, root = load_results(
            data,
            ctx,
            progress=progress,
            images=None if images is None else Path(images),
            annotations=annotations,
            image_size=image_size,
        )
    elif isinstance(data, dict):
        if annotations is not None or image_size is not None:
            raise SegError(
                "annotations= and image_size= apply to COCO results lists only",
                path=path,
                expected="a results list (a JSON array of detections)",
                actual="a COCO instances file",
            )
        check_instances(data, path)
        root = Path(images) if images is not None else default_root(path, data["images"])
        categories, names = read_categories(data.get("categories", []), ctx)
        image_rows, by_key, dropped = read_images(data["images"], ctx, root)
        objects = read_annotations(data["annotations"], ctx, by_key, names, dropped, progress, workers)
    else:
        raise FormatError(
            "top level is neither an object nor a list",
            path=path,
            expected="a COCO instances object or a results list",
            actual=type(data).__name__,
        )
    logger.info("%s: %d images, %d objects, %d categories", path, len(image_rows), len(objects), len(categories))
    return Dataset.from_records(image_rows, objects, categories, image_root=root, source=path)


def save(
    dataset: Dataset,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Progress = None,
    segmentation: Mode = "auto",
) -> dict:
    """Write ``dataset`` as a COCO instances JSON file, atomically.

    Args:
        dataset: what to write.
        path: the JSON file to write.
        overwrite: replace an existing file.
        progress: wraps the loop over objects.
        segmentation: ``"auto"`` (polygons as read, other masks as RLE), ``"rle"`` or ``"polygon"``; see
            :mod:`seg.formats.coco_write`.

    Returns:
        ``{"images", "objects", "polygon_loss": [{"image_id", "source_id", "iou"}...], "path"}``; ``polygon_loss``
        lists the objects whose polygons hold less than their mask (IoU < 1).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (nothing is written).
    """
    path = check_writable(path, overwrite)
    doc, losses = document(dataset, segmentation, progress)
    with atomic_file(path, overwrite, mode="w") as handle:
        json.dump(doc, handle, separators=(",", ":"))
    if losses:
        logger.warning(
            "%s: %d objects lost pixels as polygons (lowest IoU %.3f)",
            path,
            len(losses),
            min(loss["iou"] for loss in losses),
        )
    return {"images": len(dataset.images), "objects": len(dataset.objects), "polygon_loss": losses, "path": str(path)}
