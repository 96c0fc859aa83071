"""Label Studio tasks (a JSON export, or tasks from a server) to a Dataset.

One image per task that holds something to read; one object per labelled region of every annotation (and/or
prediction), so that several annotators' regions on one image all stay. See :mod:`seg.formats.labelstudio` for the
conventions; the region geometry is in :mod:`seg.formats.labelstudio_shapes`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from seg.dataset.core import Category, Dataset
from seg.dataset.images import IMAGE_SUFFIXES, MAX_PIXELS, image_size
from seg.dataset.paths import inside, normalize_file_name
from seg.dataset.polygons import polygons_to_rle, rings_bbox
from seg.dataset.problems import Problems
from seg.errors import FormatError, OptionError, SegError, UnsafePathError
from seg.formats import labelstudio_shapes as shapes
from seg.formats.coco_read import Context, is_id
from seg.formats.coco_segmentation import is_number
from seg.formats.json_text import dumps
from seg.progress import Progress

logger = logging.getLogger(__name__)

Which = Literal["annotations", "predictions", "both"]
WHICH = ("annotations", "predictions", "both")

#: Result types that are labelled regions, and their shape.
LABELLED_TYPES = {
    "polygonlabels": "polygon",
    "rectanglelabels": "rectangle",
    "ellipselabels": "ellipse",
    "brushlabels": "brush",
    "keypointlabels": "keypoint",
}
#: Tool results (unlabelled geometry) that a ``labels`` result with the same id labels, and their shape.
TOOL_TYPES = {
    "polygon": "polygon",
    "rectangle": "rectangle",
    "ellipse": "ellipse",
    "brush": "brush",
    "magicwand": "brush",
    "keypoint": "keypoint",
}
#: Annotation keys kept in ``attributes`` (as ``annotation_id`` for ``id``).
ANNOTATION_KEYS = ("created_at", "updated_at", "lead_time", "ground_truth", "was_cancelled")
#: Prediction keys kept in ``attributes`` (as ``prediction_id`` for ``id``).
PREDICTION_KEYS = ("model_version", "created_at", "updated_at")
#: URL schemes of cloud storages: the file name is the object key.
STORAGE_SCHEMES = ("s3", "gs", "gcs", "azure-blob", "azure")
#: File names of uploads start with this hash (``/data/upload/3/5f2a1b3c-a.png``).
UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(.+)$")


# -- image URLs -----------------------------------------------------------------------------------------------------


def image_file_name(url: str) -> str:
    """The file name that an image URL in task data stands for, normalised and safe.

    * ``/data/local-files/?d=sub/a.png`` (also as an absolute ``http://host/data/local-files/?d=...``): the ``d``
      path, URL-decoded: ``sub/a.png``.
    * ``/data/upload/3/5f2a1b3c-a.png`` (or ``/storage-data/uploaded/?filepath=upload/3/5f2a1b3c-a.png``): the stored
      basename ``5f2a1b3c-a.png``. The 8-hex prefix that Label Studio adds to uploads is kept (two uploads of one name
      stay apart); the readers fall back to ``a.png`` when only that file is in the image folder.
    * ``http(s)://host/x/a.jpg?sig=...``: the URL-decoded basename ``a.jpg``.
    * ``s3://bucket/k/a.png`` (``gs://``, ``azure-blob://``): the object key ``k/a.png``.
    * another absolute path (``/image1``, ``C:\\x\\a.png``): its basename; a relative path: itself, normalised.

    Raises:
        UnsafePathError: a path that climbs out with ``..`` after decoding, or an absolute ``d`` path.
        FormatError: an empty value or an image embedded as a ``data:`` URI.
    """
    if not isinstance(url, str) or not url.strip():
        raise FormatError("empty image URL", expected="an image URL or path", actual=repr(url))
    text = url.strip()
    if text.lower().startswith("data:"):
        raise FormatError("image embedded as a data: URI has no file name", expected="an image URL or path")
    if re.match(r"^[A-Za-z]:[\\/]", text):  # a Windows path
        return normalize_file_name(PurePosixPath(text.replace("\\", "/")).name)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query)
    path = unquote(parts.path)
    if scheme in STORAGE_SCHEMES:
        name = path.lstrip("/")
    elif scheme in ("", "http", "https") and path.rstrip("/").endswith("/data/local-files") and query.get("d"):
        name = query["d"][0]
    elif scheme in ("", "http", "https") and path.rstrip("/").endswith("/storage-data/uploaded"):
        name = _basename(query.get("filepath", [""])[0])  # uploads kept in a cloud storage
    elif scheme in ("http", "https") or (scheme == "" and text.startswith("/")):
        name = _basename(path)
    elif scheme == "":
        return normalize_file_name(text)  # a relative path, used as written (no URL decoding)
    else:
        name = _basename(path)
    return normalize_file_name(name.replace("\\", "/"))


def _basename(path: str) -> str:
    base = path.rstrip("/").rsplit("/", 1)[-1]
    if base in ("", ".", ".."):
        raise UnsafePathError(f"image URL path {path!r} names no file", expected="a URL ending in a file name")
    return base


def _looks_like_image(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    text = value.strip().lower()
    scheme = urlsplit(text).scheme
    if scheme in ("http", "https", *STORAGE_SCHEMES) or text.startswith("/data/"):
        return PurePosixPath(urlsplit(text).path).suffix in IMAGE_SUFFIXES or text.startswith("/data/")
    return PurePosixPath(text.split("?", 1)[0]).suffix in IMAGE_SUFFIXES


def image_key(data: dict, to_names: set[str]) -> str | None:
    """The task data key holding the image: ``image``; else a key named like a result's ``to_name``; else the only
    value that looks like an image URL or path; else the only string value."""
    if isinstance(data.get("image"), str | list):
        return "image"
    named = [k for k in data if k in to_names and isinstance(data[k], str | list)]
    if len(named) == 1:
        return named[0]
    images = [k for k, v in data.items() if _looks_like_image(v)]
    if len(images) == 1:
        return images[0]
    strings = [k for k, v in data.items() if isinstance(v, str)]
    return strings[0] if len(strings) == 1 else None


# -- the reader -----------------------------------------------------------------------------------------------------


def _dimension(value: Any) -> int | None:
    if is_number(value) and float(value).is_integer() and value > 0:
        return int(value)
    return None


def _result_size(result: dict) -> tuple[int, int] | None:
    """``(width, height)`` from a result's ``original_width``/``original_height`` when valid."""
    width, height = _dimension(result.get("original_width")), _dimension(result.get("original_height"))
    return (width, height) if width and height else None


def _annotator(entry: dict, kind: str) -> str | None:
    if kind == "pred":
        version = entry.get("model_version")
        return f"model:{'' if version is None else version}"
    who = entry.get("completed_by")
    if isinstance(who, dict):
        email = who.get("email")
        if isinstance(email, str) and email:
            return email
        who = who.get("id")
    if who is None or isinstance(who, bool | dict | list):
        return None
    return str(who)


class _Reader:
    """Reads tasks into image and object rows, reporting problems through ``ctx`` and counting notes."""

    def __init__(self, ctx: Context, image_root: Path | None, which: Which, from_name: str | None) -> None:
        self.ctx = ctx
        self.root = image_root
        self.kinds = {"annotations": ("ann",), "predictions": ("pred",), "both": ("ann", "pred")}[which]
        self.from_name = from_name
        self.images: list[dict] = []
        self.objects: list[dict] = []
        self.categories: dict[str, None] = {}
        self.image_ids: set[str] = set()
        self.notes: Counter[str] = Counter()

    # -- tasks ------------------------------------------------------------------------------------------------------

    def task(self, index: int, task: Any) -> None:
        if not isinstance(task, dict):
            self.ctx.problem("task is not an object", f"task at index {index}", actual=type(task).__name__)
            return
        has_id = is_id(task.get("id"))
        item = f"task {task['id']}" if has_id else f"task at index {index}"
        entries = self._entries(task, item)
        if entries is None:
            return
        if not entries:
            self.notes["tasks with nothing to read"] += 1
            return
        data = task.get("data")
        if not isinstance(data, dict):
            self.ctx.problem("task has no 'data'", item, expected="a 'data' object with the image URL")
            return
        if has_id:
            image_id = str(task["id"])
        elif isinstance(data.get("seg_image_id"), str) and data["seg_image_id"]:
            image_id = data["seg_image_id"]
        else:
            image_id = str(index)
        if image_id in self.image_ids:
            self.ctx.problem(f"duplicate task id {image_id!r}", item, expected="unique task ids")
            return
        results = [r for _, _, entry in entries for r in entry["result"] if isinstance(r, dict)]
        file_name = self._file_name(data, {str(r.get("to_name")) for r in results}, item)
        if file_name is None:
            return
        size = self._size(results, data, file_name, item)
        if size is None:
            return
        width, height = size
        image = {"image_id": image_id, "file_name": file_name, "width": width, "height": height}
        self.image_ids.add(image_id)
        self.images.append(image)
        for kind, key, entry in entries:
            self._entry(image, f"{item}/{kind} {key}", kind, key, entry)

    def _entries(self, task: dict, item: str) -> list[tuple[str, str, dict]] | None:
        """``(kind, key, entry)`` of the annotations/predictions to read; cancelled annotations left out."""
        entries = []
        for kind in self.kinds:
            field = "annotations" if kind == "ann" else "predictions"
            raw = task.get(field)
            if raw is None:
                continue
            if not isinstance(raw, list):
                self.ctx.problem(f"'{field}' is not a list", item, expected="a list", actual=type(raw).__name__)
                return None
            for number, entry in enumerate(raw):
                key = str(entry["id"]) if isinstance(entry, dict) and is_id(entry.get("id")) else f"#{number}"
                if not isinstance(entry, dict):
                    self.ctx.problem(f"{kind} {key} is not an object", item, actual=type(entry).__name__)
                    return None
                if not isinstance(entry.get("result"), list):
                    self.ctx.problem(
                        f"{kind} {key} has no 'result' list",
                        item,
                        expected="a 'result' list",
                        actual=type(entry.get("result")).__name__,
                    )
                    return None
                if kind == "ann" and entry.get("was_cancelled") is True:
                    self.notes["cancelled annotations"] += 1
                    continue
                entries.append((kind, key, entry))
        return entries

    def _file_name(self, data: dict, to_names: set[str], item: str) -> str | None:
        key = image_key(data, to_names)
        if key is None:
            self.ctx.problem(
                "cannot tell which task data field holds the image",
                item,
                expected="an 'image' field, or one image URL",
                actual=f"fields {sorted(data)[:8]}",
            )
            return None
        url = data[key]
        if isinstance(url, list):
            self.ctx.problem(
                f"data field {key!r} holds a list of images", item, expected="one image URL per task (not a list)"
            )
            return None
        try:
            name = image_file_name(url)
        except SegError as e:
            self.ctx.problem(e.message, item, expected=e.expected, actual=e.actual, cause=e, error=type(e))
            return None
        if self.root is not None:
            stripped = UPLOAD_PREFIX.match(PurePosixPath(name).name)
            if stripped and not (self.root / name).is_file():
                plain = str(PurePosixPath(name).with_name(stripped.group(1)))
                if (self.root / plain).is_file():
                    return plain
        return name

    def _size(self, results: list[dict], data: dict, file_name: str, item: str) -> tuple[int, int] | None:
        size = next((s for s in map(_result_size, results) if s is not None), None)
        if size is None:
            width, height = _dimension(data.get("seg_width")), _dimension(data.get("seg_height"))
            size = (width, height) if width and height else None
        if size is None and self.root is not None:
            try:
                path = inside(self.root, file_name)
                if path.is_file():
                    size = image_size(path)
            except SegError as e:
                self.ctx.problem(e.message, item, expected=e.expected, actual=e.actual, cause=e, error=type(e))
                return None
        if size is None:
            where = (
                f"the image file {file_name} under {self.root}" if self.root else f"an image folder with {file_name}"
            )
            self.ctx.problem(
                "image size unknown: no original_width/original_height in its results and no image file",
                item,
                expected=f"original_width/original_height, or {where}",
            )
            return None
        if size[0] * size[1] > MAX_PIXELS:
            self.ctx.problem(
                "image too large to hold masks safely",
                item,
                expected=f"at most {MAX_PIXELS} pixels",
                actual=f"{size[0]}x{size[1]}",
            )
            return None
        return size

    # -- annotations and predictions --------------------------------------------------------------------------------

    def _entry(self, image: dict, item: str, kind: str, key: str, entry: dict) -> None:
        results = entry["result"]
        tools = {r.get("id"): TOOL_TYPES[_type(r)] for r in results if isinstance(r, dict) and _type(r) in TOOL_TYPES}
        labelled = {r.get("id") for r in results if isinstance(r, dict) and _type(r) == "labels"}
        base = {"annotator": _annotator(entry, kind), "attributes": _attributes(entry, kind)}
        score = entry.get("score") if kind == "pred" else None
        for number, result in enumerate(results):
            rid = result.get("id") if isinstance(result, dict) else None
            region = f"{item}/reg {rid if is_id(rid) else f'#{number}'}"
            if not isinstance(result, dict):
                self.ctx.problem("result is not an object", region, actual=type(result).__name__)
                continue
            kind_of = _type(result)
            value = result.get("value")
            if kind_of in TOOL_TYPES:
                if rid not in labelled:
                    self.notes["regions without a label"] += 1
                continue
            if kind_of in LABELLED_TYPES:
                shape, labels = LABELLED_TYPES[kind_of], value.get(kind_of) if isinstance(value, dict) else None
            elif kind_of == "labels":
                shape = tools.get(rid) or (shapes.infer_shape(value) if isinstance(value, dict) else None)
                labels = value.get("labels") if isinstance(value, dict) else None
            else:
                self.notes[f"{kind_of or 'untyped'} results"] += 1
                continue
            if self.from_name is not None and result.get("from_name") != self.from_name:
                self.notes[f"results of other controls than {self.from_name!r}"] += 1
                continue
            if shape == "keypoint" or shape is None:
                self.notes["keypoints" if shape else "labels without a region"] += 1
                continue
            if not isinstance(value, dict):
                self.ctx.problem("result has no 'value' object", region, actual=type(value).__name__)
                continue
            if not (isinstance(labels, list) and all(isinstance(label, str) and label for label in labels)):
                self.ctx.problem("region labels are not a list of names", region, expected="a list of strings")
                continue
            if not labels:
                self.notes["regions without a label"] += 1
                continue
            geometry = self._geometry(image, result, value, shape, region)
            if geometry is None:
                continue
            region_score = result.get("score", score) if kind == "pred" else None
            if region_score is not None and not is_number(region_score):
                self.ctx.problem("score is not a number", region, expected="a number", actual=region_score)
                continue
            source = f"{kind} {key}/reg {rid if is_id(rid) else f'#{number}'}"
            for label in dict.fromkeys(labels):
                self.categories.setdefault(label)
                row = {
                    **geometry,
                    "image_id": image["image_id"],
                    "file_name": image["file_name"],
                    "width": image["width"],
                    "height": image["height"],
                    "category": label,
                    "score": math.nan if region_score is None else float(region_score),
                    "source_id": source if len(labels) == 1 else f"{source}/{label}",
                }
                if base["annotator"] is not None:
                    row["annotator"] = base["annotator"]
                attributes = {**base["attributes"], **({"origin": result["origin"]} if "origin" in result else {})}
                if attributes:
                    row["attributes"] = dumps(attributes)
                self.objects.append(row)

    def _geometry(self, image: dict, result: dict, value: dict, shape: str, region: str) -> dict | None:
        """The mask/box columns of one region, or None after reporting a problem."""
        width, height = image["width"], image["height"]
        try:
            if shape == "polygon":
                ring = shapes.polygon_ring(value, width, height)
                x, y, w, h = rings_bbox([ring], height, width)
                counts = polygons_to_rle([ring], height, width)
                return {"rle": counts, "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h, "geometry": dumps([ring])}
            if shape == "rectangle":
                box, ring = shapes.rectangle(value, width, height)
                if box is not None:
                    x, y, w, h = box
                    return {"rle": None, "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h}
                x, y, w, h = rings_bbox([ring], height, width)
                counts = polygons_to_rle([ring], height, width)
                return {"rle": counts, "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h, "geometry": dumps([ring])}
            if shape == "ellipse":
                return {"rle": shapes.ellipse_rle(value, width, height)}
            own = _result_size(result)
            if own is not None and own != (width, height):
                raise ValueError(
                    f"brush region is {own[0]}x{own[1]} but its image is {width}x{height} (from its other regions)"
                )
            return {"rle": shapes.brush_rle(value, height, width)}
        except ValueError as e:
            self.ctx.problem(str(e), region, cause=e)
            return None

    def log_notes(self) -> None:
        for note, count in sorted(self.notes.items()):
            logger.info("%s: left out %d %s", self.ctx.path, count, note)


def _type(result: dict) -> str:
    kind = result.get("type")
    return kind.lower() if isinstance(kind, str) else ""


def _attributes(entry: dict, kind: str) -> dict:
    keys = ANNOTATION_KEYS if kind == "ann" else PREDICTION_KEYS
    attributes = {f"{'annotation' if kind == 'ann' else 'prediction'}_id": entry["id"]} if "id" in entry else {}
    attributes.update({k: entry[k] for k in keys if k in entry and entry[k] is not None})
    return attributes


def tasks_to_dataset(
    tasks: list[dict],
    *,
    source: str | os.PathLike[str] | None = None,
    image_root: Path | None = None,
    which: Which = "annotations",
    problems: Problems | None = None,
    progress: Progress = None,
    from_name: str | None = None,
) -> Dataset:
    """Read Label Studio tasks (a JSON export's list, or tasks from a server) into a Dataset.

    Args:
        tasks: the task dicts, each with ``data`` and ``annotations`` and/or ``predictions``.
        source: where the tasks came from, named in errors.
        image_root: the image folder: file names are relative to it, and image sizes that no result gives are read
            from its files.
        which: read ``"annotations"``, ``"predictions"`` or ``"both"``.
        problems: error policy for bad tasks and regions (default: raise at the first one).
        progress: wraps the loop over tasks.
        from_name: read only the regions labelled by this control (``<PolygonLabels name=...>``).

    Raises:
        FormatError: ``tasks`` is not a list, or (policy ``raise``) a bad task or region.
        UnsafePathError: an image URL that climbs out of the image folder (policy ``raise``).
        OptionError: an unknown ``which``.
    """
    if which not in WHICH:
        raise OptionError(f"which must be one of {', '.join(WHICH)}", expected=", ".join(WHICH), actual=which)
    ctx = Context(source, problems or Problems())  # type: ignore[arg-type]  # any printable source
    if not isinstance(tasks, list):
        raise FormatError(
            "not a Label Studio task list", path=source, expected="a list of tasks", actual=type(tasks).__name__
        )
    reader = _Reader(ctx, image_root, which, from_name)
    for index, task in enumerate(progress(tasks) if progress else tasks):
        reader.task(index, task)
    reader.log_notes()
    categories = [Category(name, number) for number, name in enumerate(reader.categories, start=1)]
    logger.info(
        "%s: %d images, %d objects, %d categories", source, len(reader.images), len(reader.objects), len(categories)
    )
    return Dataset.from_records(reader.images, reader.objects, categories, image_root=image_root, source=source)
