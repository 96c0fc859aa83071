"""Labelme: one JSON file per image (``shapes``, ``imagePath``, ``imageHeight``, ``imageWidth``, ``imageData``).

Reading (:func:`load`) takes one ``.json`` file or a folder of them (searched recursively, hidden files and folders
left out, in sorted order; JSON files that are not Labelme's are skipped with a logged note). ``image_id`` is the JSON
file's path relative to that folder without ``.json`` (``sub/img1``). ``imagePath`` is relative to its JSON file
(Windows backslashes allowed); the image's ``file_name`` is that path relative to the image folder (``images``,
default: the folder read), and an absolute ``imagePath`` or one outside the image folder is refused (pass ``images``,
a folder holding both). Sizes are ``imageHeight``/``imageWidth``, or the image file's header when a file lacks them.
``imageData`` (the embedded image) is never decoded.

Shapes (pixels, pycocotools' rasterization as for COCO polygons, so masks agree with the other formats):
``polygon``; ``rectangle`` (two corners); ``circle`` (centre and a point on the circle, a polygon of 16 to 1024
vertices straying at most a quarter pixel inside the curve); ``oriented_rectangle`` (four corners); ``mask`` (a
base64 PNG of the box at ``points[0]``, rounded, decoded with a size guard). ``point``, ``points``, ``line`` and
``linestrip`` have no area: counted and left out, with a logged note. Shapes of one image with the same ``label`` and
the same non-null ``group_id`` form ONE object (the union of their masks), as Labelme's own instance export does.
The category is the ``label``; categories are in order of appearance. ``source_id`` is ``"<image_id>:<n>"``, n the
object's position in its image. The shapes as read (all keys but ``label``) are kept in ``attributes`` as
``{"labelme_shapes": [...]}`` and image ``flags`` in the images' ``attributes`` as ``{"labelme_flags": {...}}``.

Writing (:func:`save`) fills folder ``path`` with ``<image_id>.json`` files (all at once, atomically): ``imagePath``
relative to the JSON file, pointing at the image when its file is reachable (:meth:`Dataset.image_paths`), else at
``file_name`` inside ``path``; ``imageData`` null. Shapes kept from Labelme that still rasterize to the object's mask
are written back unchanged (with the category as label); else polygon rings read from a polygon format
(``geometry``) that still match; else the mask traced into polygons, one per part with holes joined by zero-width
bridges (exact under pycocotools' rasterization; Labelme's own drawing may show the bridge as a seam). Parts of one
object share a ``group_id``. Box-only objects are rectangles (read back, a rectangle is a mask); objects with an
empty mask and no shape are not written (reported). Shapes without an area (points, lines) were left out when reading
and are not written back.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import os
import posixpath
from collections import Counter
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import numpy.typing as npt

from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from seg.dataset.images import MAX_PIXELS
from seg.dataset.images import image_size as read_image_size
from seg.dataset.paths import inside, normalize_file_name
from seg.dataset.polygons import Ring, mask_to_rings, polygon_loss, polygons_to_rle, rings_bbox
from seg.dataset.problems import Problems
from seg.errors import FormatError, ImageError, SegError, UnsafePathError, ValidationError
from seg.formats.coco_read import Context
from seg.formats.coco_segmentation import check_extent, is_number, same_mask
from seg.formats.json_text import dumps, read_json
from seg.formats.via_read import ellipse_ring, rect_ring
from seg.outputs import atomic_dir, check_writable
from seg.progress import Progress

logger = logging.getLogger(__name__)

#: Shape types without an area (left out when reading).
NO_AREA = ("point", "points", "line", "linestrip")
#: The Labelme version written in the files seg saves (the JSON layout of Labelme 5).
VERSION = "5.5.0"
#: How much of a file :func:`detect` reads.
_DETECT_HEAD = 2**20


# -- detection ----------------------------------------------------------------------------------------------------


def _looks_like_labelme(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            head = handle.read(_DETECT_HEAD)
    except OSError:
        return False
    return head.lstrip().startswith("{") and '"shapes"' in head and '"imagePath"' in head


def detect(path: Path) -> bool:
    """True for a Labelme ``.json`` file, or a folder whose first ``.json`` files are Labelme's."""
    path = Path(path)
    try:
        if path.is_file():
            return path.suffix.lower() == ".json" and _looks_like_labelme(path)
        if path.is_dir():
            files = sorted(p for p in path.glob("*.json") if not p.name.startswith("."))[:5]
            return bool(files) and any(_looks_like_labelme(p) for p in files)
    except OSError:
        return False
    return False


# -- reading ------------------------------------------------------------------------------------------------------


def _json_files(folder: Path) -> list[Path]:
    files = []
    for file in folder.rglob("*.json"):
        parts = file.relative_to(folder).parts
        if file.is_file() and not any(part.startswith(".") for part in parts):
            files.append(file)
    return sorted(files)


def load(
    path: str | os.PathLike[str],
    *,
    problems: Problems | None = None,
    progress: Progress = None,
    images: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Read one Labelme JSON file or a folder of them (see the module docstring).

    Args:
        path: a Labelme ``.json`` file or a folder holding them.
        problems: error policy for bad files and shapes (default: raise at the first one).
        progress: wraps the loop over files.
        images: the image folder that ``file_name`` is relative to (default: the folder read).

    Raises:
        FormatError: a single file that is not Labelme's, or (policy ``raise``) a malformed file or shape.
        UnsafePathError: (policy ``raise``) an ``imagePath`` that is absolute or outside the image folder.
        ImageError: (policy ``raise``) a file without its size whose image cannot be read.

    Example:
        >>> ds = load("labelme_jsons/", images=".")  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        folder, files = path, _json_files(path)
    elif path.is_file():
        folder, files = path.parent, [path]
    else:
        raise FormatError("not found", path=path, expected="a Labelme JSON file or a folder of them")
    root = Path(images) if images is not None else folder
    notes: Counter = Counter()
    image_rows: list[dict] = []
    objects: list[dict] = []
    names: dict[str, None] = {}
    problems = problems or Problems()
    for file in progress(files) if progress else files:
        ctx = Context(file, problems)
        try:
            data = read_json(file, expected="a Labelme JSON file")
        except FormatError as e:
            problems.handle(e)
            continue
        if not (isinstance(data, dict) and "shapes" in data and "imagePath" in data):
            if path.is_file():
                raise FormatError("not a Labelme file", path=file, expected="an object with 'shapes' and 'imagePath'")
            notes["JSON file that is not Labelme's"] += 1
            continue
        image_id = file.relative_to(folder).with_suffix("").as_posix()
        row = _image_row(data, image_id, file, root, ctx)
        if row is None:
            continue
        rows = _objects(data["shapes"], row, ctx, notes)
        if rows is None:
            continue
        image_rows.append(row)
        objects += rows
        names.update(dict.fromkeys(o["category"] for o in rows))
    if notes:
        logger.warning("%s: left out %s", path, ", ".join(f"{n} {what}" for what, n in notes.items()))
    logger.info("%s: %d Labelme files, %d objects", path, len(image_rows), len(objects))
    categories = [Category(name, i + 1) for i, name in enumerate(names)]
    return Dataset.from_records(image_rows, objects, categories, image_root=root, source=path)


def _dimension(value: Any) -> int | None:
    if is_number(value) and float(value).is_integer() and value > 0:
        return int(value)
    return None


def _image_row(data: dict, image_id: str, file: Path, root: Path, ctx: Context) -> dict | None:
    raw = data["imagePath"]
    if not isinstance(raw, str) or not raw.strip():
        ctx.problem("'imagePath' is not a file name", expected="a path relative to the JSON file", actual=raw)
        return None
    relative = PureWindowsPath(raw).as_posix() if "\\" in raw else raw
    if relative.startswith("/") or PureWindowsPath(raw).drive:
        ctx.problems.handle(
            UnsafePathError(f"absolute image path {raw!r}", path=file, expected="a path relative to the JSON file")
        )
        return None
    target = os.path.normpath(os.path.join(os.path.abspath(file.parent), relative))
    try:
        name = normalize_file_name(os.path.relpath(target, os.path.abspath(root)), source=file)
    except UnsafePathError:
        ctx.problems.handle(
            UnsafePathError(
                f"image path {raw!r} leaves the image folder {root}",
                path=file,
                expected="an image inside the image folder (pass --images, a folder holding images and JSON files)",
            )
        )
        return None
    width, height = _dimension(data.get("imageWidth")), _dimension(data.get("imageHeight"))
    if width is None or height is None:
        if data.get("imageWidth") is not None or data.get("imageHeight") is not None:
            ctx.problem(
                "image size is not two positive integers",
                expected="imageWidth and imageHeight > 0",
                actual=f"{data.get('imageWidth')!r} x {data.get('imageHeight')!r}",
            )
            return None
        image = inside(root, name)
        if not image.is_file():
            ctx.problem(
                "image size unknown: no 'imageHeight'/'imageWidth' and the image file is not found",
                expected=f"the sizes, or the image {image} (pass --images, the image folder)",
                error=ImageError,
            )
            return None
        try:
            width, height = read_image_size(image)
        except SegError as e:
            ctx.problems.handle(e)
            return None
    if width * height > MAX_PIXELS:
        ctx.problem("image too large to hold masks safely", expected=f"at most {MAX_PIXELS} pixels")
        return None
    flags = data.get("flags")
    if flags is not None and not isinstance(flags, dict):
        ctx.problem("'flags' is not an object", actual=type(flags).__name__)
        return None
    row = {"image_id": image_id, "file_name": name, "width": width, "height": height}
    if flags:
        row["attributes"] = dumps({"labelme_flags": flags})
    return row


def _points(value: Any) -> list[tuple[float, float]]:
    if not isinstance(value, list) or not all(
        isinstance(p, list) and len(p) == 2 and is_number(p[0]) and is_number(p[1]) for p in value
    ):
        raise ValueError("'points' must be a list of [x, y] numbers")
    return [(float(x), float(y)) for x, y in value]


def decode_mask(text: Any, height: int, width: int) -> npt.NDArray[np.bool_]:
    """The boolean array of a Labelme ``mask`` (a base64 PNG), refusing one larger than its image.

    Raises:
        ValueError: not base64, not a PNG, larger than ``height x width``, or corrupt.
    """
    from PIL import Image, UnidentifiedImageError

    if not isinstance(text, str):
        raise ValueError("mask shape has no base64 'mask'")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError("'mask' is not base64") from e
    try:
        with Image.open(io.BytesIO(data)) as image:
            w, h = image.size
            if w > width or h > height:
                raise ValueError(f"mask of {w}x{h} is larger than its {width}x{height} image")
            image.load()
            return np.asarray(image.convert("L")) != 0
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"'mask' is not a readable PNG: {e}") from e


def _shape_geometry(shape: dict, height: int, width: int) -> Ring | npt.NDArray[np.bool_] | str:
    """A shape's polygon ring, its full-image mask (``mask`` shapes), or the type of a shape without an area."""
    kind = shape.get("shape_type") or "polygon"
    if kind in NO_AREA:
        return kind
    points = _points(shape.get("points"))
    if kind == "polygon" or kind == "oriented_rectangle":
        if len(points) < 3 or (kind == "oriented_rectangle" and len(points) != 4):
            raise ValueError(f"{kind} has {len(points)} points")
        ring = [v for point in points for v in point]
    elif kind == "rectangle":
        if len(points) != 2:
            raise ValueError(f"rectangle has {len(points)} points, expected its two corners")
        (x0, y0), (x1, y1) = points
        ring = rect_ring(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))
    elif kind == "circle":
        if len(points) != 2:
            raise ValueError(f"circle has {len(points)} points, expected its centre and a point on it")
        (cx, cy), (px, py) = points
        r = math.hypot(px - cx, py - cy)
        ring = ellipse_ring(cx, cy, r, r)
    elif kind == "mask":
        if len(points) != 2:
            raise ValueError(f"mask has {len(points)} points, expected its box corners")
        patch = decode_mask(shape.get("mask"), height, width)
        full = np.zeros((height, width), bool)
        x, y = round(points[0][0]), round(points[0][1])
        y0, y1, x0, x1 = max(y, 0), min(y + patch.shape[0], height), max(x, 0), min(x + patch.shape[1], width)
        if y0 < y1 and x0 < x1:
            full[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
        return full
    else:
        raise ValueError(f"unknown shape_type {kind!r}")
    check_extent([ring], height, width)
    return ring


def _objects(shapes: Any, image: dict, ctx: Context, notes: Counter) -> list[dict] | None:
    if not isinstance(shapes, list):
        ctx.problem("'shapes' is not a list", actual=type(shapes).__name__)
        return None
    height, width = image["height"], image["width"]
    groups: dict[tuple, list[tuple[dict, Any]]] = {}
    for index, shape in enumerate(shapes):
        item = f"shape {index}"
        if not isinstance(shape, dict):
            ctx.problem("shape is not an object", item, actual=type(shape).__name__)
            continue
        label, group = shape.get("label"), shape.get("group_id")
        if not isinstance(label, str) or not label:
            ctx.problem("shape has no 'label'", item, expected="a non-empty label", actual=label)
            continue
        if group is not None and not (isinstance(group, int) and not isinstance(group, bool)):
            ctx.problem("'group_id' is not an integer", item, actual=group)
            continue
        try:
            drawn = _shape_geometry(shape, height, width)
        except ValueError as e:
            ctx.problem(str(e), item, cause=e)
            continue
        if isinstance(drawn, str):
            notes[f"{drawn} shape"] += 1
            continue
        key = ("group", label, group) if group is not None else ("shape", index)
        groups.setdefault(key, []).append((shape, drawn))
    return [_object_row(image, members, number) for number, members in enumerate(groups.values())]


def _object_row(image: dict, members: list[tuple[dict, Any]], number: int) -> dict:
    height, width = image["height"], image["width"]
    rings = [drawn for _, drawn in members if isinstance(drawn, list)]
    masks = [drawn for _, drawn in members if not isinstance(drawn, list)]
    counts = polygons_to_rle(rings, height, width)
    row: dict[str, Any] = {}
    if masks:
        counts = coco_rle.merge([counts, *(coco_rle.encode(m) for m in masks)], height, width)
    else:
        row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"] = rings_bbox(rings, height, width)
        row["geometry"] = dumps(rings)
    kept = [{k: v for k, v in shape.items() if k != "label"} for shape, _ in members]
    return {
        "image_id": image["image_id"],
        "file_name": image["file_name"],
        "width": width,
        "height": height,
        "category": members[0][0]["label"],
        "rle": counts,
        **row,
        "source_id": f"{image['image_id']}:{number}",
        "attributes": dumps({"labelme_shapes": kept}),
    }


# -- writing ------------------------------------------------------------------------------------------------------


def _plain(value: float) -> int | float:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _polygon(ring: Ring) -> dict:
    points = [[_plain(float(x)), _plain(float(y))] for x, y in zip(ring[0::2], ring[1::2], strict=True)]
    return {"points": points, "group_id": None, "description": "", "shape_type": "polygon", "flags": {}}


def _kept_shapes(row: dict) -> list[dict] | None:
    kept = json.loads(row["attributes"]) if isinstance(row.get("attributes"), str) else None
    shapes = kept.get("labelme_shapes") if isinstance(kept, dict) else None
    if isinstance(shapes, list) and shapes and all(isinstance(s, dict) for s in shapes):
        return shapes
    return None


def _still_matches(shapes: list[dict], counts: str, height: int, width: int) -> bool:
    try:
        drawn = [_shape_geometry(s, height, width) for s in shapes]
    except ValueError:
        return False
    if any(isinstance(d, str) for d in drawn):
        return False
    rings = [d for d in drawn if isinstance(d, list)]
    masks = [d for d in drawn if not isinstance(d, list)]
    if not masks:
        return same_mask(rings, counts, height, width)
    union = coco_rle.merge([polygons_to_rle(rings, height, width), *(coco_rle.encode(m) for m in masks)], height, width)
    return union == counts


def _shapes_of(row: dict) -> tuple[list[dict], float | None]:
    """The Labelme shapes of an object with a mask (none for an empty mask without shapes), and its IoU when polygons
    lost pixels."""
    counts, height, width = row["rle"], int(row["height"]), int(row["width"])
    kept = _kept_shapes(row)
    if kept is not None and _still_matches(kept, counts, height, width):
        return kept, None
    geometry = json.loads(row["geometry"]) if isinstance(row.get("geometry"), str) else None
    if isinstance(geometry, list) and geometry and same_mask(geometry, counts, height, width):
        return [_polygon(ring) for ring in geometry], None
    if row["area"] == 0:
        return [], None
    traced = mask_to_rings(coco_rle.decode(counts, height, width))
    iou = polygon_loss(counts, traced, height, width)
    return [_polygon(ring) for ring in traced], (iou if iou < 1.0 else None)


def _image_shapes(rows: list[dict], losses: list[dict], skipped: list[dict]) -> list[dict]:
    shapes: list[dict] = []
    used: set[tuple[str, int]] = set()
    for row in rows:
        if not isinstance(row["rle"], str):
            x, y, w, h = (float(row[k]) for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"))
            corners = [[_plain(x), _plain(y)], [_plain(x + w), _plain(y + h)]]
            parts = [{"points": corners, "group_id": None, "description": "", "shape_type": "rectangle", "flags": {}}]
        else:
            parts, iou = _shapes_of(row)
            if not parts:
                skipped.append({"image_id": row["image_id"], "source_id": row["source_id"], "reason": "empty mask"})
                continue
            if iou is not None:
                losses.append({"image_id": row["image_id"], "source_id": row["source_id"], "iou": iou})
        label = row["category"]
        wanted = parts[0].get("group_id")
        group = wanted if isinstance(wanted, int) and (label, wanted) not in used else None
        if group is None and len(parts) > 1:
            group = next(g for g in range(1, len(used) + 2) if (label, g) not in used)
        if group is not None:
            used.add((label, group))
        for part in parts:
            shape = {"label": label, **{k: v for k, v in part.items() if k != "label"}}
            if group is not None or "group_id" in shape:
                shape["group_id"] = group
            shapes.append(shape)
    return shapes


def _image_path(image: dict, file: Path | None, out: Path, name: str) -> str:
    """``imagePath`` of the JSON file ``name`` in folder ``out``: the image file when it is reachable, else the image's
    ``file_name`` taken as relative to ``out`` (so that reading ``out`` gives the same ``file_name``)."""
    folder = posixpath.dirname(name)
    if file is not None and file.is_file():
        return Path(os.path.relpath(os.path.abspath(file), os.path.abspath(out / folder))).as_posix()
    return posixpath.relpath(image["file_name"], folder or ".")


def save(
    dataset: Dataset,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Progress = None,
) -> dict:
    """Write ``dataset`` as Labelme JSON files, one per image, into folder ``path`` (see the module docstring).

    Args:
        dataset: what to write.
        path: the output folder (replaced as a whole, atomically).
        overwrite: replace an existing folder.
        progress: wraps the loop over images.

    Returns:
        ``{"images", "objects", "shapes", "polygon_loss": [{"image_id", "source_id", "iou"}...], "skipped":
        [{"image_id", "source_id", "reason"}...], "path"}``.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (nothing is written).
        ValidationError: an image id that cannot be a file name inside the folder.
    """
    path = check_writable(path, overwrite)
    by_image: dict[str, list[dict]] = {}
    for row in dataset.objects.to_dict("records"):
        by_image.setdefault(row["image_id"], []).append(row)
    pairs = list(zip(dataset.images.to_dict("records"), dataset.image_paths(), strict=True))
    losses: list[dict] = []
    skipped: list[dict] = []
    written = 0
    with atomic_dir(path, overwrite) as tmp:
        for image, file in progress(pairs) if progress else pairs:
            try:
                name = normalize_file_name(f"{image['image_id']}.json", item_id=image["image_id"])
            except UnsafePathError as e:
                raise ValidationError(
                    "image id cannot name a file inside the output folder", item_id=image["image_id"]
                ) from e
            shapes = _image_shapes(by_image.get(image["image_id"], []), losses, skipped)
            written += len(shapes)
            kept = json.loads(image["attributes"]) if isinstance(image.get("attributes"), str) else {}
            flags = kept.get("labelme_flags") if isinstance(kept, dict) else None
            doc = {
                "version": VERSION,
                "flags": flags if isinstance(flags, dict) else {},
                "shapes": shapes,
                "imagePath": _image_path(image, file, path, name),
                "imageData": None,
                "imageHeight": int(image["height"]),
                "imageWidth": int(image["width"]),
            }
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    if losses:
        logger.warning("%s: %d objects lost pixels as polygons", path, len(losses))
    return {
        "images": len(pairs),
        "objects": len(dataset.objects) - len(skipped),
        "shapes": written,
        "polygon_loss": losses,
        "skipped": skipped,
        "path": str(path),
    }
