"""Label Studio JSON: exports (a list of tasks with annotations and predictions) and pre-annotation files.

Reading (:func:`load`, :func:`tasks_to_dataset`):

* One image per task that holds an annotation (or prediction, with ``which``) to read, even with an empty result (a
  negative); tasks with nothing to read are left out (an image nobody labelled is not a negative). ``image_id`` is the
  task ``id`` as text (else the ``seg_image_id`` that :func:`save` puts in the data, else the task's index).
* The image is the ``image`` field of the task data, else the field named like the results' ``to_name``, else the only
  value that looks like an image URL. ``file_name`` is what its URL stands for (:func:`image_file_name`:
  ``/data/local-files/?d=sub/a.png`` -> ``sub/a.png``, ``/data/upload/3/5f2a1b3c-a.png`` -> ``5f2a1b3c-a.png``,
  ``http://host/x/a.jpg`` -> ``a.jpg``, ``s3://bucket/k/a.png`` -> ``k/a.png``), never outside the image folder.
* The image size is the results' ``original_width``/``original_height``, else ``seg_width``/``seg_height`` in the task
  data (written by :func:`save`), else the image file's header under the image folder; a task with none is a problem.
  Coordinates are percent of that size (see :mod:`seg.formats.labelstudio_shapes`): polygons (rings kept in
  ``geometry``, in pixels), rectangles (box-only, or polygons when rotated), ellipses, and brush / magic-wand masks
  (:mod:`seg.dataset.ls_brush`). The editor's split form (a ``brush``/``polygon``/... tool result plus a ``labels``
  result with the same id) is read as one region.
* Every annotation is kept: one object per labelled region per annotation (per label when a region has several), so
  several annotators' regions on one image all stay. ``annotator`` is the annotator's e-mail (else user id) or
  ``model:<model_version>`` for predictions; ``score`` is the result's or the prediction's score (null for human
  annotations); ``source_id`` is ``"ann <annotation id>/reg <result id>"`` (``pred`` for predictions); ``attributes``
  holds ``annotation_id`` (``prediction_id``), ``created_at``, ``updated_at``, ``lead_time``, ``ground_truth``,
  ``was_cancelled``, ``model_version`` and the region's ``origin`` where present. Categories are the labels in order
  of first appearance.
* Left out with a logged count (not errors): cancelled annotations, keypoints, classifications (``choices``,
  ``textarea``, ``rating``...), relations, regions without a label.

The image folder is the ``images`` option, else the JSON's folder, its parent, or an ``images`` folder beside either,
whichever holds the first image.

Writing (:func:`save`, :func:`dataset_to_tasks`): one task per image, ready to import into a project made with
:func:`label_config`, as predictions (``model_version``) or annotations. Masks become polygons in percent (the rings
read from a polygon format when they still match the mask, else traced with holes bridged so that they rasterize back
exactly; an object of several parts becomes several regions) or brush RLE with ``tool="brush"``; box-only objects
become ``rectanglelabels`` of a ``<from_name>_box`` control (``label_config(..., boxes=True)``). Each task's data holds
the image URL (``image_url_prefix`` + the URL-quoted file name), ``seg_image_id``, ``seg_width`` and ``seg_height``,
so that reading the file back gives the same image ids and sizes, negatives included.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from seg.dataset.core import Dataset
from seg.dataset.paths import normalize_file_name
from seg.dataset.problems import Problems
from seg.errors import FormatError, OptionError, SegError
from seg.formats.json_text import read_json
from seg.formats.labelstudio_read import Which, image_file_name, image_key, tasks_to_dataset
from seg.formats.labelstudio_write import TOOLS, Tool, build_tasks, dataset_to_tasks, label_config
from seg.outputs import atomic_file, check_writable
from seg.progress import Progress

__all__ = ["dataset_to_tasks", "detect", "image_file_name", "label_config", "load", "save", "tasks_to_dataset"]

logger = logging.getLogger(__name__)

#: Files up to this size are parsed whole by :func:`detect`; larger ones are recognised from their first bytes.
_DETECT_PARSE_LIMIT = 8 * 2**20
_TASK_KEYS = ("annotations", "predictions", "id")


def _is_task(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("data"), dict) and any(k in value for k in _TASK_KEYS)


def _is_single_task(value: object) -> bool:
    """A task dict on its own (as the editor stores one), with data or with annotations that hold results."""
    if not isinstance(value, dict) or "images" in value:
        return False
    if _is_task(value):
        return True
    entries = [value.get(key) for key in ("annotations", "predictions")]
    return any(isinstance(e, list) and any(isinstance(i, dict) and "result" in i for i in e) for e in entries)


def detect(path: Path) -> bool:
    """True for a ``.json`` file holding a list of tasks (dicts with ``data`` and ``annotations``, ``predictions`` or
    ``id``), or a single task."""
    path = Path(path)
    try:
        if not (path.is_file() and path.suffix.lower() == ".json"):
            return False
        if path.stat().st_size > _DETECT_PARSE_LIMIT:
            with path.open(encoding="utf-8-sig", errors="replace") as handle:
                head = handle.read(65536)
            text = head.lstrip()
            if text.startswith("["):
                return '"data"' in head and any(f'"{k}"' in head for k in _TASK_KEYS)
            return text.startswith("{") and '"annotations"' in head and '"result"' in head and '"images"' not in head
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, RecursionError):
        return False
    if isinstance(data, list):
        return bool(data) and _is_task(data[0])
    return _is_single_task(data)


def default_root(path: Path, tasks: list) -> Path:
    """The image folder of an export when none is given: the first of the JSON's folder, its parent, or ``images``
    beside either that holds the first task's image; the JSON's folder when none does."""
    folder = path.parent
    name = None
    for task in tasks:
        data = task.get("data") if isinstance(task, dict) else None
        key = image_key(data, set()) if isinstance(data, dict) else None
        if key is not None and isinstance(data[key], str):
            try:
                name = image_file_name(data[key])
                break
            except SegError:
                continue
    if name is None:
        return folder
    for candidate in (folder, folder.parent, folder / "images", folder.parent / "images"):
        if (candidate / name).is_file():
            return candidate
    return folder


def load(
    path: str | os.PathLike[str],
    *,
    problems: Problems | None = None,
    progress: Progress = None,
    images: str | os.PathLike[str] | None = None,
    which: Which = "annotations",
    from_name: str | None = None,
) -> Dataset:
    """Read a Label Studio JSON export (or one task) into a Dataset.

    Args:
        path: the JSON file.
        problems: error policy for bad tasks and regions (default: raise at the first one).
        progress: wraps the loop over tasks.
        images: the image folder (default: see the module docstring); sizes missing from the results are read there.
        which: ``"annotations"``, ``"predictions"`` or ``"both"``.
        from_name: read only regions of this control tag (``<PolygonLabels name=...>``).

    Raises:
        FormatError: malformed JSON, a file that is not Label Studio tasks, or (policy ``raise``) a bad task or region.
        UnsafePathError: an image URL that leaves the image folder (policy ``raise``).

    Example:
        >>> ds = load("export.json", images="images", which="both")  # doctest: +SKIP
    """
    path = Path(path)
    data = read_json(path, expected="a Label Studio JSON export")
    if isinstance(data, dict) and _is_single_task(data):
        data = [data]
    if not isinstance(data, list):
        raise FormatError(
            "not a Label Studio export",
            path=path,
            expected="a list of tasks or one task",
            actual=f"keys {sorted(data)[:8]}" if isinstance(data, dict) else type(data).__name__,
        )
    root = Path(images) if images is not None else default_root(path, data)
    return tasks_to_dataset(
        data, source=path, image_root=root, which=which, problems=problems, progress=progress, from_name=from_name
    )


def _url(prefix: str) -> Callable[[str], str]:
    def image_url(file_name: str) -> str:
        return prefix + quote(normalize_file_name(file_name), safe="/") if prefix else file_name

    return image_url


def save(
    dataset: Dataset,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Progress = None,
    tool: Tool = "polygon",
    as_predictions: bool = True,
    image_url_prefix: str = "/data/local-files/?d=",
    model_version: str = "seg",
) -> dict:
    """Write ``dataset`` as Label Studio tasks with pre-annotations (see :func:`dataset_to_tasks`), atomically.

    Args:
        dataset: what to write.
        path: the JSON file.
        overwrite: replace an existing file.
        progress: wraps the loop over images.
        tool: ``"polygon"`` or ``"brush"``.
        as_predictions: write predictions (pre-annotations) rather than annotations.
        image_url_prefix: put before each URL-quoted file name (the default serves files from a local storage whose
            document root is the image folder); ``""`` writes the file names as they are.
        model_version: the predictions' model version.

    Returns:
        ``{"images", "objects", "regions", "polygon_loss": [{"image_id", "source_id", "iou"}...], "split", "empty",
        "boxes", "path"}``: ``polygon_loss`` lists objects whose polygons hold less than their mask (IoU < 1),
        ``split`` counts objects written as several polygons, ``empty`` empty masks left out, ``boxes`` box-only
        objects (written as ``rectanglelabels`` of ``<label>_box``: make the project with
        ``label_config(..., boxes=True)``).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (nothing is written).
    """
    if tool not in TOOLS:
        raise OptionError(f"unknown Label Studio tool {tool!r}", expected=" or ".join(TOOLS), actual=tool)
    path = check_writable(path, overwrite)
    tasks, report = build_tasks(
        dataset,
        image_url=_url(image_url_prefix),
        tool=tool,
        as_predictions=as_predictions,
        model_version=model_version,
        progress=progress,
    )
    with atomic_file(path, overwrite, mode="w") as handle:
        json.dump(tasks, handle, separators=(",", ":"))
    if report["polygon_loss"]:
        logger.warning("%s: %d objects lost pixels as polygons", path, len(report["polygon_loss"]))
    if report["boxes"]:
        logger.info("%s: %d box-only objects written as rectanglelabels of 'label_box'", path, report["boxes"])
    return {"images": len(dataset.images), "objects": len(dataset.objects), **report, "path": str(path)}
