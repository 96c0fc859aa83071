"""COCO results lists (predictions) to a Dataset.

A results file is a bare JSON list of ``{"image_id", "category_id", "score", "segmentation" | "bbox"}``: it names no
image files, sizes or category names. Those come from, in order:

* the RLE ``size`` of a row's segmentation (sizes only);
* a ground-truth COCO file (``annotations=GT.json``): sizes, file names, categories; every ground-truth image is kept,
  so images without predictions stay as negatives;
* an image folder (``images=DIR``) without ground truth: the file whose stem is the image id (or, for COCO's own names
  like ``COCO_val2014_000000000042.jpg``, whose trailing number is the id) gives the file name and, from its header,
  the size;
* ``image_size=(width, height)`` for every image.

Without ground truth, categories are named ``str(category_id)`` and, with no folder either, an image's file name is
its id. Objects have no ids: ``source_id`` is the row index (or the row's ``id`` when it has one).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from seg.dataset.core import Category
from seg.dataset.images import IMAGE_SUFFIXES, MAX_PIXELS
from seg.dataset.images import image_size as header_size
from seg.errors import FormatError, SegError
from seg.formats.coco_read import (
    Context,
    Progress,
    default_root,
    is_id,
    object_row,
    read_categories,
    read_images,
)
from seg.formats.coco_segmentation import rle_size
from seg.formats.json_text import read_json

SIZE_HINT = (
    "image sizes: pass annotations=GT.json (the ground-truth COCO file), images=DIR (the image folder) "
    "or image_size=(width, height)"
)


def _check_size(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if (
        isinstance(image_size, list | tuple)
        and len(image_size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in image_size)
        and image_size[0] * image_size[1] <= MAX_PIXELS
    ):
        return int(image_size[0]), int(image_size[1])
    raise SegError("image_size must be (width, height), two positive integers", actual=image_size)


def _folder_index(folder: Path) -> tuple[dict[str, list[str]], dict[int, list[str]]]:
    by_stem: dict[str, list[str]] = defaultdict(list)
    by_number: dict[int, list[str]] = defaultdict(list)
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            relative = path.relative_to(folder).as_posix()
            by_stem[path.stem].append(relative)
            number = re.search(r"(\d+)$", path.stem)
            if number:
                by_number[int(number.group(1))].append(relative)
    return by_stem, by_number


def _match(key: str, index: tuple[dict[str, list[str]], dict[int, list[str]]]) -> list[str]:
    by_stem, by_number = index
    if by_stem.get(key):
        return by_stem[key]
    return by_number.get(int(key), []) if key.isdigit() else []


def _valid_rows(rows: list, ctx: Context) -> list[tuple[int, dict]]:
    valid = []
    for index, row in enumerate(rows):
        item = f"result {index}"
        if not isinstance(row, dict):
            ctx.problem("result is not an object", item, actual=type(row).__name__)
            continue
        missing = [k for k in ("image_id", "category_id") if k not in row]
        if missing:
            ctx.problem(
                f"result lacks {', '.join(repr(k) for k in missing)}", item, expected="image_id and category_id"
            )
            continue
        if not is_id(row["image_id"]):
            ctx.problem("result image_id is not an integer or string", item, actual=row["image_id"])
            continue
        valid.append((index, row))
    if valid and not any("segmentation" in r or "bbox" in r for _, r in valid):
        what = "keypoint results" if any("keypoints" in r for _, r in valid) else "results"
        raise FormatError(
            f"{what} with neither 'segmentation' nor 'bbox'",
            path=ctx.path,
            expected="COCO detection or segmentation results",
        )
    return valid


def _images_without_gt(
    valid: list[tuple[int, dict]], ctx: Context, folder: Path | None, image_size: tuple[int, int] | None
) -> tuple[list[dict], dict[str, dict], set[str]]:
    sizes: dict[str, tuple[int, int]] = {}
    order: dict[str, None] = {}
    for _, row in valid:
        key = str(row["image_id"])
        order.setdefault(key)
        size = rle_size(row.get("segmentation"))
        if size is not None:
            sizes.setdefault(key, size)
    if folder is not None and not folder.is_dir():
        raise FormatError("image folder not found", path=folder, expected="the folder of the images the results score")
    index = _folder_index(folder) if folder is not None else None
    images, by_key, dropped = [], {}, set()
    for key in order:
        item = f"image {key}"
        size, file_name = sizes.get(key), key
        if index is not None:
            found = _match(key, index)
            if len(found) != 1:
                what = "no image file" if not found else f"{len(found)} image files ({', '.join(found[:3])})"
                ctx.problem(
                    f"{what} for image id {key} in {folder}", item, expected="one image file named by the image id"
                )
                dropped.add(key)
                continue
            file_name = found[0]
            if size is None:
                try:
                    size = header_size(folder / file_name)
                except SegError as e:
                    ctx.problems.handle(e)
                    dropped.add(key)
                    continue
        size = size or image_size
        if size is None:
            raise FormatError("results file gives no image size", path=ctx.path, item_id=item, expected=SIZE_HINT)
        if size[0] * size[1] > MAX_PIXELS:
            ctx.problem(
                "image too large to hold masks safely",
                item,
                expected=f"at most {MAX_PIXELS} pixels",
                actual=f"{size[0]}x{size[1]}",
            )
            dropped.add(key)
            continue
        row = {"image_id": key, "file_name": file_name, "width": size[0], "height": size[1]}
        images.append(row)
        by_key[key] = row
    return images, by_key, dropped


def _categories_without_gt(valid: list[tuple[int, dict]]) -> tuple[list[Category], dict[str, str]]:
    ids = sorted(
        {
            r["category_id"]
            for _, r in valid
            if isinstance(r["category_id"], int) and not isinstance(r["category_id"], bool)
        }
    )
    return [Category(str(i), i) for i in ids], {str(i): str(i) for i in ids}


def load_results(
    rows: list,
    ctx: Context,
    *,
    progress: Progress = None,
    images: Path | None = None,
    annotations: Path | None = None,
    image_size: Any = None,
) -> tuple[list[dict], list[dict], list[Category], Path]:
    """Image rows, object rows, categories and image root of a COCO results list (see the module docstring).

    Raises:
        FormatError: a size cannot be found for an image (the message says what to pass), or the ground truth is not a
            COCO file with images.
    """
    size = _check_size(image_size)
    valid = _valid_rows(rows, ctx)
    if annotations is not None:
        gt_path = Path(annotations)
        gt = read_json(gt_path)
        if not isinstance(gt, dict) or not isinstance(gt.get("images"), list):
            raise FormatError(
                "ground truth is not a COCO file with an 'images' list", path=gt_path, expected="a COCO instances file"
            )
        gt_ctx = Context(gt_path, ctx.problems)
        raw_categories = gt.get("categories", [])
        if not isinstance(raw_categories, list):
            raise FormatError("'categories' is not a list", path=gt_path, expected="a list")
        categories, names = read_categories(raw_categories, gt_ctx)
        root = Path(images) if images is not None else default_root(gt_path, gt["images"])
        image_rows, by_key, dropped = read_images(gt["images"], gt_ctx, root)
    else:
        root = Path(images) if images is not None else ctx.path.parent
        folder = Path(images) if images is not None else None
        image_rows, by_key, dropped = _images_without_gt(valid, ctx, folder, size)
        categories, names = _categories_without_gt(valid)
    objects = []
    for index, row in progress(valid) if progress else valid:
        item = f"result {index}"
        key = str(row["image_id"])
        if key in dropped:
            continue
        image = by_key.get(key)
        if image is None:
            ctx.problem(
                f"result refers to image {row['image_id']!r}, not in the ground truth",
                item,
                expected="an image id of the ground-truth file",
            )
            continue
        name = names.get(str(row["category_id"]))
        if name is None:
            ctx.problem(
                f"result refers to unknown category {row['category_id']!r}",
                item,
                expected="an integer category id" if annotations is None else "a ground-truth category id",
            )
            continue
        source_id = str(row["id"]) if is_id(row.get("id")) else str(index)
        obj = object_row(row, item, image, name, source_id, ctx)
        if obj is not None:
            objects.append(obj)
    return image_rows, objects, categories, root
