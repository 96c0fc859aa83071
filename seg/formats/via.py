"""VGG Image Annotator (VIA): JSON and CSV exports of VIA 1 and 2, VIA 2 projects, VIA 3 projects.

Reading (:func:`load`), every version detected from the file itself:

* VIA 1/2 JSON: an object keyed ``"<filename><size>"`` whose entries hold ``filename``, ``regions`` (a dict keyed
  ``"0"``, ``"1"``... in VIA 1, a list in VIA 2) and ``file_attributes``; a VIA 2 project wraps the same entries in
  ``_via_img_metadata`` beside ``_via_settings``, ``_via_attributes`` and ``_via_image_id_list`` (image order).
* VIA 1/2 CSV: ``filename,file_size,file_attributes,region_count,region_id,region_shape_attributes,region_attributes``
  (VIA 1 writes ``#filename``), JSON inside the cells, one row per region.
* VIA 3 projects (``project``, ``file``, ``view``, ``metadata``, ``attribute``): spatial regions of image views;
  shape codes 1 point, 2 rect, 3 circle, 4 ellipse, 5 line, 6 polyline, 7 polygon, 8 extreme rectangle (its bounding
  box), 9 extreme circle (the circle through its three points). Temporal segments, regions in video frames, video and
  audio files and views of several files are left out with a logged note.

Shapes become polygon rings in pixels (``geometry``) and masks rasterized exactly as pycocotools rasterizes COCO
polygons: polygons as drawn, a rect's four corners, circles and ellipses (``theta`` in radians, 0 when absent as in
VIA 1) as polygons whose chords stray at most a quarter pixel inside the curve (16 to 1024 vertices). Points,
polylines and lines have no area: they are counted and left out, with a logged note; so are rects, circles and
ellipses of size zero. The shape as read is kept in ``attributes`` as ``{"via_shape": {...}}`` (with the other region
attributes under ``"region_attributes"``), so that :func:`save` writes a rect as the same rect.

Class: the value of one region attribute. ``class_attribute`` names it; otherwise it is found: a region attribute
declared as a dropdown or radio with options (VIA 2 ``_via_attributes``, VIA 3 ``attribute``) and used by the regions
when there is one (the first of :data:`PREFERRED` when there are several); else, among the region attributes holding
short text on at least half of the regions, identifier-like ones (all values different) are dropped when others remain,
and a single survivor or the first of :data:`PREFERRED` wins; else a declared dropdown that no region uses yet; when
still ambiguous a SegError lists the candidates. Checkbox values (``{option: true}``) give their one checked option;
VIA 3 option ids give their labels. Regions without a class value get the category ``"unlabeled"`` (counted in the log)
rather than being dropped: unfinished labels keep their outlines. Categories follow the declared options, then the
values in order of appearance, ``"unlabeled"`` last.

Other region attributes: ``id`` (text or integer) is the object's ``source_id`` (else ``"<image_id>:<n>"``, n the
object's position in its image), and regions of one image sharing an ``id`` and a class form ONE object (the union:
how :func:`save` writes a mask of several parts); a numeric ``score`` is the object's score (a prediction). The rest
stay in ``attributes``. File attributes are kept in the images' ``attributes`` as ``{"via_file_attributes": {...}}``.

Images: ``image_id`` is the file name's stem (two images with one stem are a problem); ``file_name`` is VIA's
``filename`` normalised (``./images/a.jpg`` -> ``images/a.jpg``); a URL becomes its last path segment
(``http://host/x/swan.jpg`` -> ``swan.jpg``); absolute paths and ``..`` are refused. VIA stores no image sizes: they
are read from the image files' headers under ``images`` (default: the file's folder, or the ``images/`` folder beside an
``annotations/`` folder), else ``image_size`` gives one size for all; else the image is a problem naming the file and
``--images``.

Writing (:func:`save`): see :mod:`seg.formats.via_write`.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from seg.dataset.core import Category, Dataset
from seg.dataset.images import MAX_PIXELS
from seg.dataset.images import image_size as read_image_size
from seg.dataset.paths import inside, normalize_file_name
from seg.dataset.polygons import Ring, polygons_to_rle, rings_bbox
from seg.dataset.problems import Problems
from seg.errors import ImageError, SegError, UnsafePathError
from seg.formats.coco_read import Context, default_root
from seg.formats.coco_segmentation import check_extent, is_number
from seg.formats.json_text import dumps, read_json
from seg.formats.via_read import (
    CSV_COLUMNS,
    Declared,
    Entry,
    is_via3,
    read_project,
    shape_rings,
    url_file_name,
)
from seg.formats.via_write import save
from seg.progress import Progress

logger = logging.getLogger(__name__)

__all__ = ["PREFERRED", "UNLABELED", "detect", "load", "save"]

#: Attribute names that say "class", in order of preference, when several region attributes could be the class.
PREFERRED = ("class", "class_name", "classname", "label", "category", "type", "name", "object")
#: The category of regions without a class value.
UNLABELED = "unlabeled"
#: Region attributes with a meaning of their own, never taken for the class.
RESERVED = ("id", "score")
#: Longest text taken for a class name when the class attribute is found automatically.
MAX_CLASS_TEXT = 100
#: Files up to this size are parsed whole by :func:`detect`.
_DETECT_PARSE_LIMIT = 8 * 2**20


# -- detection ----------------------------------------------------------------------------------------------------


def detect(path: Path) -> bool:
    """True for a VIA JSON file (image entries with ``filename`` and ``regions``, a VIA 2 project, a VIA 3 project) or
    a VIA CSV export (its header). Files above 8 MiB are told by their first mebibyte of text."""
    path = Path(path)
    try:
        if not path.is_file():
            return False
        suffix = path.suffix.lower()
        if suffix == ".csv":
            with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
                header = handle.readline().strip().lstrip("#")
            return header.startswith(",".join(CSV_COLUMNS[:6]))
        if suffix != ".json":
            return False
        if path.stat().st_size > _DETECT_PARSE_LIMIT:
            return _scan(path)
        data = read_json(path)
    except (OSError, SegError, ValueError, RecursionError):
        return False
    if not isinstance(data, dict) or not data:
        return False
    if "_via_img_metadata" in data or is_via3(data):
        return True
    first = next(iter(data.values()))
    return isinstance(first, dict) and "filename" in first and "regions" in first


def _scan(path: Path) -> bool:
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        head = handle.read(2**20)
    if not head.lstrip().startswith("{"):
        return False
    via2 = '"_via_img_metadata"' in head or ('"filename"' in head and '"regions"' in head)
    return via2 or ('"project"' in head and '"vid_list"' in head)


# -- reading ------------------------------------------------------------------------------------------------------


@dataclass
class _Shape:
    """A region with an area, checked: its key, shape dict, ring and attributes dict."""

    key: str
    shape: dict
    ring: Ring
    attributes: dict


@dataclass
class _Image:
    row: dict
    entry: Entry
    shapes: list[_Shape]


def load(
    path: str | os.PathLike[str],
    *,
    problems: Problems | None = None,
    progress: Progress = None,
    images: str | os.PathLike[str] | None = None,
    image_size: tuple[int, int] | None = None,
    class_attribute: str | None = None,
) -> Dataset:
    """Read a VIA file of any version (see the module docstring for the conventions).

    Args:
        path: the VIA JSON (export or project) or CSV file.
        problems: error policy for bad images and regions (default: raise at the first one).
        progress: wraps the loop over images.
        images: the image folder (image sizes come from the files' headers).
        image_size: ``(width, height)`` of every image whose file is not found.
        class_attribute: the region attribute holding the class (default: found, see the module docstring).

    Raises:
        FormatError: unreadable or malformed file, a file that is not VIA, or (policy ``raise``) a bad region.
        SegError: the class attribute is ambiguous (the message lists the candidates) or not in the file.
        ImageError: (policy ``raise``) an image whose size is unknown: its file is missing and no ``image_size``.
        UnsafePathError: (policy ``raise``) an absolute file name or one that leaves the image folder.

    Example:
        >>> ds = load("via_project.json", images="images", class_attribute="type")  # doctest: +SKIP
    """
    path = Path(path)
    ctx = Context(path, problems or Problems())
    size = None if image_size is None else _check_size(image_size)
    project = read_project(path, ctx)
    names = [_file_name(entry, ctx) for entry in project.entries]
    first = next((n for n in names if n is not None), None)
    root = Path(images) if images is not None else default_root(path, [{"file_name": first}] if first else [])
    read: list[_Image] = []
    seen: set[str] = set()
    pairs = list(zip(project.entries, names, strict=True))
    for entry, name in progress(pairs) if progress else pairs:
        if name is None:
            continue
        row = _image_row(entry, name, ctx, root, size, seen)
        if row is not None:
            read.append(_Image(row, entry, _shapes(entry, row, ctx, project.notes)))
    rule = _class_rule(read, project.declared, class_attribute, path)
    categories, objects = _objects(read, rule, ctx, project.notes)
    _log_notes(path, project.notes)
    logger.info("%s: VIA %s, %d images, %d objects", path, project.version, len(read), len(objects))
    return Dataset.from_records([i.row for i in read], objects, categories, image_root=root, source=path)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (width, height), got {size!r}") from None
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise ValueError(f"image_size must be positive and at most {MAX_PIXELS} pixels, got {size!r}")
    return width, height


def _file_name(entry: Entry, ctx: Context) -> str | None:
    name = entry.filename
    if not isinstance(name, str) or not name.strip():
        ctx.problem("image has no 'filename'", entry.item, expected="a file name or URL", actual=name)
        return None
    if name.startswith("data:"):
        ctx.problem("image given inline (a data: URI) has no file name", entry.item, expected="a file name or URL")
        return None
    try:
        return normalize_file_name(url_file_name(name), source=ctx.path, item_id=entry.item)
    except UnsafePathError as e:
        ctx.problems.handle(e)
        return None


def _image_row(
    entry: Entry, name: str, ctx: Context, root: Path, size: tuple[int, int] | None, seen: set[str]
) -> dict | None:
    image_id = PurePosixPath(name).stem
    if image_id in seen:
        ctx.problem(f"two images have the file name stem {image_id!r}", entry.item, expected="unique image file stems")
        return None
    try:
        file = inside(root, name)
    except UnsafePathError as e:
        ctx.problems.handle(e)
        return None
    if file.is_file():
        try:
            width, height = read_image_size(file)
        except ImageError as e:
            ctx.problems.handle(e)
            return None
    elif size is not None:
        width, height = size
    else:
        ctx.problem(
            "image size unknown: VIA files hold no sizes and the image file is not found",
            entry.item,
            expected=f"the image {file} (pass --images, the image folder) or one size for all (--image-size WxH)",
            error=ImageError,
        )
        return None
    if not isinstance(entry.file_attributes, dict):
        ctx.problem("'file_attributes' is not an object", entry.item, actual=type(entry.file_attributes).__name__)
        return None
    seen.add(image_id)
    row = {"image_id": image_id, "file_name": name, "width": width, "height": height}
    if entry.file_attributes:
        row["attributes"] = dumps({"via_file_attributes": entry.file_attributes})
    return row


def _shapes(entry: Entry, row: dict, ctx: Context, notes: Counter) -> list[_Shape]:
    shapes = []
    for region in entry.regions:
        item = f"{entry.item} region {region.key}"
        if not isinstance(region.attributes, dict):
            ctx.problem("'region_attributes' is not an object", item, actual=type(region.attributes).__name__)
            continue
        try:
            rings = shape_rings(region.shape)
            if not isinstance(rings, str):
                check_extent(rings, row["height"], row["width"])
        except ValueError as e:
            ctx.problem(str(e), item, cause=e)
            continue
        if isinstance(rings, str):
            notes["zero-size shape" if rings == "empty" else rings] += 1
            continue
        shapes.append(_Shape(region.key, region.shape, rings[0], region.attributes))
    return shapes


# -- classes ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ClassRule:
    """Where the class of a region is: the attribute (None: every region unlabeled) and its declared options."""

    attribute: str | None
    options: tuple[str, ...] = ()


def _label_text(value: Any) -> str | None:
    """A value that can be a class name when the class attribute is found automatically, else None."""
    if isinstance(value, str) and 0 < len(value.strip()) <= MAX_CLASS_TEXT and "\n" not in value:
        return value
    if isinstance(value, dict) and sum(v is True for v in value.values()) <= 1:
        return next((str(k) for k, v in value.items() if v is True), "")
    return None


def _class_rule(read: list[_Image], declared: dict[str, Declared], given: str | None, path: Path) -> _ClassRule:
    attributes = [s.attributes for image in read for s in image.shapes]
    if given is not None:
        if attributes and given not in declared and not any(given in a for a in attributes):
            found = sorted({k for a in attributes for k in a} | set(declared))
            raise SegError(
                f"class attribute {given!r} is not a region attribute of this file",
                path=path,
                expected=f"one of {found}" if found else "regions with attributes",
            )
        return _ClassRule(given, declared[given].options if given in declared else ())
    choices = [n for n, d in declared.items() if d.kind in ("dropdown", "radio") and d.options and n not in RESERVED]
    used = [n for n in choices if any(a.get(n) not in (None, "") for a in attributes)]
    if used:
        name = used[0] if len(used) == 1 else _preferred(used, path)
        return _ClassRule(name, declared[name].options)
    name = _found_in_values(attributes, path, fallback=choices)
    if name is None and choices:  # declared, but no region has a value yet
        name = choices[0] if len(choices) == 1 else _preferred(choices, path)
    return _ClassRule(name, declared[name].options if name in declared else ())


def _found_in_values(attributes: list[dict], path: Path, fallback: list[str]) -> str | None:
    """The region attribute that holds the class, told from the values; None when none does (or, with declared
    ``fallback`` choices, when the values cannot tell)."""
    labels = _label_values(attributes)
    candidates = {k: v for k, v in labels.items() if 2 * len(v) >= len(attributes)}
    if len(candidates) > 1:
        distinct = {n: v for n, v in candidates.items() if not (len(v) >= 4 and len(set(v)) == len(v))}
        candidates = distinct or candidates
    if len(candidates) > 1 and not any(n.strip().lower() in PREFERRED for n in candidates) and fallback:
        return None
    if not candidates:
        if any(attributes) and not fallback:
            sparse = f" ({', '.join(sorted(labels))} hold text on fewer than half of the regions)" if labels else ""
            logger.warning(
                "%s: no region attribute looks like a class%s; every region is %r (pass class_attribute)",
                path,
                sparse,
                UNLABELED,
            )
        return None
    name = next(iter(candidates)) if len(candidates) == 1 else _preferred(list(candidates), path)
    logger.info("%s: class attribute %r (found; pass class_attribute to choose another)", path, name)
    return name


def _label_values(attributes: list[dict]) -> dict[str, list[str]]:
    """``{attribute: its non-empty values}`` for the region attributes whose every value is short text (or one checked
    option): the ones that could hold a class."""
    values: dict[str, list[str]] = {}
    unfit: set[str] = set()
    for attrs in attributes:
        for key, value in attrs.items():
            if key in RESERVED or value in ("", None, {}):
                continue
            text = _label_text(value)
            if text is None:
                unfit.add(key)
            elif text:
                values.setdefault(key, []).append(text)
    return {k: v for k, v in values.items() if k not in unfit}


def _preferred(names: list[str], path: Path) -> str:
    for wanted in PREFERRED:
        for name in names:
            if name.strip().lower() == wanted:
                return name
    raise SegError(
        "cannot tell which region attribute holds the class",
        path=path,
        expected=f"class_attribute (--class-attribute), one of {sorted(names)}",
    )


def _category(value: Any) -> str:
    """The category of a class attribute value (raises ValueError for a value that cannot be one)."""
    if value is None or value == "" or (isinstance(value, str) and not value.strip()):
        return UNLABELED
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        checked = [str(k) for k, v in value.items() if v is True]
        if len(checked) > 1:
            raise ValueError(f"several classes checked: {checked}")
        return checked[0] if checked else UNLABELED
    if is_number(value):
        return str(value)
    raise ValueError(f"class value must be text, got {type(value).__name__} {value!r}")


# -- objects ------------------------------------------------------------------------------------------------------


def _ident(attributes: dict) -> str | None:
    value = attributes.get("id")
    if isinstance(value, str) and value != "":
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _objects(read: list[_Image], rule: _ClassRule, ctx: Context, notes: Counter) -> tuple[list[Category], list[dict]]:
    names: dict[str, None] = dict.fromkeys(rule.options)
    objects: list[dict] = []
    for image in read:
        groups: dict[tuple, list[tuple[_Shape, str]]] = {}
        for index, shape in enumerate(image.shapes):
            try:
                category = _category(shape.attributes.get(rule.attribute) if rule.attribute else None)
            except ValueError as e:
                ctx.problem(str(e), f"{image.entry.item} region {shape.key}", cause=e)
                continue
            ident = _ident(shape.attributes)
            key = ("id", ident, category) if ident is not None else ("region", index)
            groups.setdefault(key, []).append((shape, category))
        for number, members in enumerate(groups.values()):
            category = members[0][1]
            notes["unlabeled"] += int(category == UNLABELED)
            if category != UNLABELED:
                names.setdefault(category)
            objects.append(_object_row(image.row, members, category, number, rule))
    if any(o["category"] == UNLABELED for o in objects):
        names.pop(UNLABELED, None)
        names[UNLABELED] = None
    categories = [Category(name, i + 1) for i, name in enumerate(names)]
    return categories, objects


def _object_row(image: dict, members: list[tuple[_Shape, str]], category: str, number: int, rule: _ClassRule) -> dict:
    first = members[0][0]
    rings = [shape.ring for shape, _ in members]
    height, width = image["height"], image["width"]
    x, y, w, h = rings_bbox(rings, height, width)
    ident = _ident(first.attributes)
    score = first.attributes.get("score")
    rest = {k: v for k, v in first.attributes.items() if k != rule.attribute and k not in RESERVED}
    if "id" in first.attributes and ident is None:
        rest["id"] = first.attributes["id"]
    if "score" in first.attributes and not is_number(score):
        rest["score"] = score
    kept: dict[str, Any] = {"via_shape": first.shape if len(members) == 1 else [s.shape for s, _ in members]}
    if rest:
        kept["region_attributes"] = rest
    return {
        "image_id": image["image_id"],
        "file_name": image["file_name"],
        "width": width,
        "height": height,
        "category": category,
        "rle": polygons_to_rle(rings, height, width),
        "bbox_x": x,
        "bbox_y": y,
        "bbox_w": w,
        "bbox_h": h,
        "score": float(score) if is_number(score) else math.nan,
        "source_id": ident if ident is not None else f"{image['image_id']}:{number}",
        "geometry": dumps(rings),
        "attributes": dumps(kept),
    }


def _log_notes(path: Path, notes: Counter) -> None:
    skipped = {k: v for k, v in notes.items() if v and k != "unlabeled"}
    if skipped:
        logger.warning(
            "%s: left out (no area, or not an image region): %s",
            path,
            ", ".join(f"{count} {what}" for what, count in skipped.items()),
        )
    if notes["unlabeled"]:
        logger.warning("%s: %d objects have no class value: category %r", path, notes["unlabeled"], UNLABELED)
