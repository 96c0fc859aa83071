"""Reading the parts of a COCO file into Dataset rows: the JSON itself, categories, images and annotations.

Shared by the instances loader and the results loader in :mod:`seg.formats.coco`. Whole-file problems (unreadable
JSON, wrong top-level type, a task file that holds no masks or boxes) raise at once; per-item problems (one image, one
annotation, one category) go through the :class:`~seg.dataset.problems.Problems` policy, so that under ``skip`` the
item is dropped and recorded and the rest loads.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from seg.dataset import rle as coco_rle
from seg.dataset.core import Category
from seg.dataset.images import MAX_PIXELS, image_size
from seg.dataset.paths import inside, normalize_file_name
from seg.dataset.problems import Problems
from seg.errors import FormatError, SegError, UnsafePathError
from seg.formats.coco_segmentation import is_number, read_box, read_segmentation
from seg.formats.json_text import dumps
from seg.progress import Counted, Progress

logger = logging.getLogger(__name__)


#: Annotation keys seg reads back into the optional object columns of the same name.
TEXT_COLUMNS = ("annotator", "origin")


@dataclass
class Context:
    """The file being read and the error policy that per-item problems go through."""

    path: Path
    problems: Problems

    def problem(
        self,
        message: str,
        item: object = None,
        *,
        expected: object = None,
        actual: object = None,
        cause: BaseException | None = None,
        error: type[SegError] = FormatError,
    ) -> None:
        """Raise or record one per-item problem, according to the policy."""
        failure = error(message, path=self.path, item_id=item, expected=expected, actual=actual)
        failure.__cause__ = cause
        self.problems.handle(failure)


def is_id(value: Any) -> bool:
    """True for a usable COCO id: an integer or a non-empty string (never a boolean or a float)."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value != "")


def check_instances(data: dict, path: Path) -> None:
    """Refuse COCO task files that are not instances, each with a message saying what the file is.

    Raises:
        FormatError: no ``annotations`` (image_info), no ``images``, panoptic segments, or annotations with neither
            masks nor boxes (captions, image labels, keypoints only).
    """
    expected = "a COCO instances file with 'images' and 'annotations' lists"
    if "annotations" not in data:
        if "images" in data:
            raise FormatError(
                "no 'annotations' list: this file lists images only (a COCO image_info file)",
                path=path,
                expected=expected,
            )
        raise FormatError(
            "not a COCO file: no 'images' and 'annotations' lists",
            path=path,
            expected=expected,
            actual=f"keys {sorted(data)[:8]}",
        )
    if "images" not in data:
        raise FormatError("no 'images' list", path=path, expected=expected)
    for key in ("images", "annotations"):
        if not isinstance(data[key], list):
            raise FormatError(f"'{key}' is not a list", path=path, expected="a list", actual=type(data[key]).__name__)
    if "categories" in data and not isinstance(data["categories"], list):
        raise FormatError(
            "'categories' is not a list", path=path, expected="a list", actual=type(data["categories"]).__name__
        )
    annotations = [a for a in data["annotations"] if isinstance(a, dict)]
    if any("segments_info" in a for a in annotations):
        raise FormatError(
            "COCO panoptic file: its segments live in PNG images and are not read by seg",
            path=path,
            expected="COCO instances (convert with panopticapi's panoptic2detection_coco_format.py)",
        )
    if annotations and not any("segmentation" in a or "bbox" in a for a in annotations):
        if any("caption" in a for a in annotations):
            what = "COCO captions file: annotations are captions, with no masks or boxes"
        elif any("keypoints" in a for a in annotations):
            what = "keypoints-only annotations: no masks or boxes"
        else:
            what = "annotations have neither 'segmentation' nor 'bbox' (a COCO image-labels file?)"
        raise FormatError(what, path=path, expected=expected)


def read_categories(raw: list, ctx: Context) -> tuple[list[Category], dict[str, str]]:
    """Categories in file order, and ``{str(category id): name}``."""
    categories: list[Category] = []
    names: dict[str, str] = {}
    seen_names: set[str] = set()
    for index, cat in enumerate(raw):
        item = f"category {cat.get('id')}" if isinstance(cat, dict) and "id" in cat else f"category at index {index}"
        if not isinstance(cat, dict):
            ctx.problem("category is not an object", item, actual=type(cat).__name__)
            continue
        cat_id, name = cat.get("id"), cat.get("name")
        if not (isinstance(cat_id, int) and not isinstance(cat_id, bool)):
            ctx.problem("category has no integer 'id'", item, expected="an integer id", actual=cat_id)
            continue
        if not isinstance(name, str) or not name:
            ctx.problem("category has no 'name'", item, expected="a non-empty name", actual=name)
            continue
        if str(cat_id) in names:
            ctx.problem("duplicate category id", item, expected="unique category ids")
            continue
        if name in seen_names:
            ctx.problem(f"duplicate category name {name!r}", item, expected="unique category names")
            continue
        supercategory = cat.get("supercategory")
        categories.append(Category(name, cat_id, supercategory if isinstance(supercategory, str) else ""))
        names[str(cat_id)] = name
        seen_names.add(name)
    return categories, names


def _dimension(value: Any) -> int | None:
    if is_number(value) and float(value).is_integer() and value > 0:
        return int(value)
    return None


#: Image keys that become Dataset columns; the others are kept in ``attributes``.
IMAGE_KEYS = ("id", "file_name", "width", "height", "seg_image_id")


def read_images(raw: list, ctx: Context, root: Path | None) -> tuple[list[dict], dict[str, dict], set[str]]:
    """Image rows in file order, ``{str(COCO image id): row}``, and the ids of images dropped under ``skip``.

    A ``seg_image_id`` key (written by :func:`seg.formats.coco.save` when the Dataset's ids were not integers) is the
    image's Dataset id. Other keys (license, URLs, capture date, georeference) are kept as JSON text in an
    ``attributes`` column. A missing ``width``/``height`` is read from the image file's header under ``root`` when the
    file is there.
    """
    rows: list[dict] = []
    by_key: dict[str, dict] = {}
    dataset_ids: set[str] = set()
    dropped: set[str] = set()
    for index, image in enumerate(raw):
        item = f"image {image.get('id')}" if isinstance(image, dict) and "id" in image else f"image at index {index}"
        if not isinstance(image, dict):
            ctx.problem("image is not an object", item, actual=type(image).__name__)
            continue
        if not is_id(image.get("id")):
            ctx.problem("image has no 'id'", item, expected="an integer or string id", actual=image.get("id"))
            continue
        key = str(image["id"])
        if key in by_key:
            ctx.problem("duplicate image id", item, expected="unique image ids")
            continue
        dropped.add(key)
        if not isinstance(image.get("file_name"), str):
            ctx.problem("image has no 'file_name'", item, expected="a relative path", actual=image.get("file_name"))
            continue
        try:
            file_name = normalize_file_name(image["file_name"], source=ctx.path, item_id=item)
        except UnsafePathError as e:
            ctx.problems.handle(e)
            continue
        size = _image_size(image, file_name, item, ctx, root)
        if size is None:
            continue
        image_id = image.get("seg_image_id") if isinstance(image.get("seg_image_id"), str) else key
        if image_id in dataset_ids:
            ctx.problem(f"duplicate image id {image_id!r}", item, expected="unique image ids")
            continue
        dropped.discard(key)
        row = {"image_id": image_id, "file_name": file_name, "width": size[0], "height": size[1]}
        extra = {k: v for k, v in image.items() if k not in IMAGE_KEYS}
        if extra:
            row["attributes"] = dumps(extra)
        rows.append(row)
        by_key[key] = row
        dataset_ids.add(image_id)
    return rows, by_key, dropped


def _image_size(image: dict, file_name: str, item: str, ctx: Context, root: Path | None) -> tuple[int, int] | None:
    width, height = _dimension(image.get("width")), _dimension(image.get("height"))
    if width is None or height is None:
        if "width" in image and "height" in image:
            ctx.problem(
                "image size is not two positive integers",
                item,
                expected="width and height > 0",
                actual=f"{image.get('width')!r} x {image.get('height')!r}",
            )
            return None
        path = None
        if root is not None:
            try:
                path = inside(root, file_name)
            except UnsafePathError as e:
                ctx.problems.handle(e)
                return None
        if path is None or not path.is_file():
            ctx.problem(
                "image has no 'width'/'height' and its file is not under the image folder",
                item,
                expected=f"width and height, or the image file {file_name} under {root}",
            )
            return None
        try:
            width, height = image_size(path)
        except SegError as e:
            ctx.problems.handle(e)
            return None
    if width * height > MAX_PIXELS:
        ctx.problem(
            "image too large to hold masks safely",
            item,
            expected=f"at most {MAX_PIXELS} pixels",
            actual=f"{width}x{height}",
        )
        return None
    return width, height


def object_row(ann: dict, item: str, image: dict, category: str, source_id: str, ctx: Context) -> dict | None:
    """One Dataset object row from a COCO annotation or result; problems are reported and give None."""
    height, width = image["height"], image["width"]
    try:
        counts, rings, box = read_segmentation(ann.get("segmentation"), height, width)
        if counts is None:
            if ann.get("bbox") is None:
                raise ValueError("annotation has no segmentation and no bbox")
            box = read_box(ann["bbox"])
    except ValueError as e:
        ctx.problem(str(e), item, cause=e)
        return None
    iscrowd = ann.get("iscrowd", 0)
    if not (isinstance(iscrowd, bool) or (is_number(iscrowd) and iscrowd in (0, 1))):
        ctx.problem("iscrowd must be 0 or 1", item, expected="0 or 1", actual=iscrowd)
        return None
    score = ann.get("score")
    if score is not None and not is_number(score):
        ctx.problem("score is not a number", item, expected="a number", actual=score)
        return None
    x, y, w, h = box
    row = {
        "image_id": image["image_id"],
        "file_name": image["file_name"],
        "width": width,
        "height": height,
        "category": category,
        "rle": counts,
        "bbox_x": x,
        "bbox_y": y,
        "bbox_w": w,
        "bbox_h": h,
        "area": coco_rle.area(counts, height, width) if counts is not None else round(w * h),
        "iscrowd": bool(iscrowd),
        "score": math.nan if score is None else float(score),
        "source_id": source_id,
    }
    if rings is not None:
        row["geometry"] = dumps(rings)
    if ann.get("attributes") is not None:
        row["attributes"] = dumps(ann["attributes"])
    for key in TEXT_COLUMNS:
        if isinstance(ann.get(key), str):
            row[key] = ann[key]
    return row


#: Annotation counts from which :func:`read_annotations` rasterizes in worker processes by default.
POOL_FROM = 20_000


def read_annotations(
    raw: list,
    ctx: Context,
    images: dict[str, dict],
    categories: dict[str, str],
    dropped: set[str] = frozenset(),
    progress: Progress = None,
    workers: int | None = None,
) -> list[dict]:
    """Object rows of a COCO instances ``annotations`` list, in file order.

    Annotations of images in ``dropped`` (already reported) are left out without a second report. The checks of ids
    and references run first, in this process; the rows (rasterizing every polygon) are then made by ``workers``
    processes (default: one per CPU from :data:`POOL_FROM` annotations on); problems of both kinds are then handed to
    the error policy in file order, so the outcome is the same with any number of workers.
    """
    plan: list[Callable[[], None] | int] = []  # per annotation: a problem to report, or the index of its job
    jobs: list[tuple[dict, str, dict, str, str]] = []
    seen: set[str] = set()
    orphans = 0
    for index, ann in enumerate(raw):
        item = (
            f"annotation {ann.get('id')}" if isinstance(ann, dict) and "id" in ann else f"annotation at index {index}"
        )
        report = _check_annotation(ann, item, ctx, seen, images, categories)
        if report is not None:
            plan.append(report)
            continue
        seen.add(str(ann["id"]))
        if str(ann["image_id"]) in dropped:
            orphans += 1
            continue
        image = images.get(str(ann["image_id"]))
        category = categories.get(str(ann["category_id"]))
        if image is None:
            plan.append(
                partial(
                    ctx.problem,
                    f"annotation refers to unknown image {ann['image_id']!r}",
                    item,
                    expected="an id from 'images'",
                )
            )
            continue
        if category is None:
            plan.append(
                partial(
                    ctx.problem,
                    f"annotation refers to unknown category {ann['category_id']!r}",
                    item,
                    expected="an id from 'categories'",
                )
            )
            continue
        source_id = ann["seg_source_id"] if isinstance(ann.get("seg_source_id"), str) else str(ann["id"])
        plan.append(len(jobs))
        jobs.append((ann, item, image, category, source_id))
    if workers is None:
        workers = (os.cpu_count() or 1) if len(jobs) >= POOL_FROM else 1
    made = _object_rows(jobs, ctx.path, workers)
    outcomes = list(progress(Counted(made, len(jobs))) if progress else made)
    rows: list[dict] = []
    keypoints = 0
    for step in plan:
        if not isinstance(step, int):
            step()
            continue
        outcome = outcomes[step]
        if isinstance(outcome, SegError):
            ctx.problems.handle(outcome)
            continue
        rows.append(outcome)
        keypoints += "keypoints" in jobs[step][0]
    if orphans:
        logger.warning("%s: left out %d annotations of skipped images", ctx.path, orphans)
    if keypoints:
        logger.info("%s: %d annotations carry keypoints; seg keeps their masks and boxes only", ctx.path, keypoints)
    return rows


def _check_annotation(
    ann: Any, item: str, ctx: Context, seen: set[str], images: dict, categories: dict
) -> Callable[[], None] | None:
    """The problem report of an annotation whose keys or id are unusable, else None."""
    if not isinstance(ann, dict):
        return partial(ctx.problem, "annotation is not an object", item, actual=type(ann).__name__)
    missing = [k for k in ("id", "image_id", "category_id") if k not in ann]
    if missing:
        return partial(
            ctx.problem,
            f"annotation lacks {', '.join(repr(k) for k in missing)}",
            item,
            expected="id, image_id and category_id",
        )
    if not is_id(ann["id"]):
        return partial(ctx.problem, "annotation id is not an integer or string", item, actual=ann["id"])
    if str(ann["id"]) in seen:
        return partial(ctx.problem, "duplicate annotation id", item, expected="unique annotation ids")
    return None


def _rows_of(path: Path, jobs: list[tuple[dict, str, dict, str, str]]) -> list[dict | SegError]:
    """Rows of a batch of annotations; a problem comes back as its error, in place of the row."""
    ctx = Context(path, Problems("skip"))
    out: list[dict | SegError] = []
    for ann, item, image, category, source_id in jobs:
        row = object_row(ann, item, image, category, source_id, ctx)
        out.append(row if row is not None else ctx.problems.skipped.pop())
    return out


#: The jobs of the pool being run: forked workers read their slice from here instead of receiving a pickled copy.
_shared_jobs: list = []


def _rows_of_slice(path: Path, start: int, stop: int) -> list[dict | SegError]:
    return _rows_of(path, _shared_jobs[start:stop])


def _object_rows(jobs: list, path: Path, workers: int) -> Iterator[dict | SegError]:
    """Rows (or errors) of every job, in order, made in ``workers`` forked processes."""
    size = 2_000
    starts = list(range(0, len(jobs), size))
    if workers <= 1 or len(starts) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for start in starts:
            yield from _rows_of(path, jobs[start : start + size])
        return
    _shared_jobs[:] = jobs
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            stops = [start + size for start in starts]
            for result in pool.map(_rows_of_slice, [path] * len(starts), starts, stops):
                yield from result
    finally:
        _shared_jobs.clear()


def default_root(path: Path, raw_images: list) -> Path:
    """The image folder of a COCO file when none is given: the file's own folder, unless the first image is found in a
    standard layout beside it instead (``annotations/instances_<split>.json`` with ``images/<split>/``, ``<split>/`` or
    ``images/``; or ``images/`` next to the file)."""
    folder = path.parent
    first = next(
        (i["file_name"] for i in raw_images if isinstance(i, dict) and isinstance(i.get("file_name"), str)), None
    )
    try:
        name = normalize_file_name(first) if first is not None else None
    except UnsafePathError:
        name = None
    if name is None or (folder / name).is_file():
        return folder
    candidates = []
    split = path.stem.rsplit("_", 1)[-1] if "_" in path.stem else ""
    if folder.name == "annotations":
        if split:
            candidates += [folder.parent / "images" / split, folder.parent / split]
        candidates.append(folder.parent / "images")
    candidates.append(folder / "images")
    return next((c for c in candidates if (c / name).is_file()), folder)
