"""Pushing an image folder (and optionally model predictions) to a Label Studio project.

Each task seg imports carries two keys in its data besides the image URL:

* ``seg_key``: the SHA-256 of the image bytes. Pushing again imports only images whose key the project lacks, and a
  repeated import after a failure first looks which tasks arrived, so nothing is imported twice.
* ``seg_file_name``: the image's path relative to the pushed folder; :func:`seg.annotate.pull.pull` names images by it.

Predictions are matched to images by file name (relative to the folder; a unique base name also matches). Pushing
predictions again replaces the predictions of that ``model_version`` on those tasks (old ones deleted, new ones
created); other model versions and human annotations are left alone.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from seg.annotate.client import Client, display_url
from seg.annotate.errors import NotFoundError
from seg.annotate.projects import Project, ensure_project, task_keys
from seg.annotate.serving import file_key, local_files, upload
from seg.dataset.images import IMAGE_SUFFIXES
from seg.errors import ImageError
from seg.progress import Progress

if TYPE_CHECKING:
    from seg.dataset.core import Dataset

logger = logging.getLogger(__name__)


#: Tasks sent in one import request.
IMPORT_BATCH = 200


def _no_progress(iterable: Iterable) -> Iterable:
    return iterable


def list_images(folder: Path) -> list[str]:
    """Image files under ``folder`` (recursively, hidden folders skipped), as sorted posix paths relative to it."""
    names = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(folder)
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                names.append((rel / name).as_posix())
    return sorted(names)


def read_predictions(source: str | os.PathLike[str], format: str | None = None, images: Path | None = None) -> Dataset:
    """Read predictions from any registered format (passing the image folder to formats that take one)."""
    from seg.formats import detect_format, format_module, read

    fmt = format or detect_format(source)
    takes_images = "images" in inspect.signature(format_module(fmt).load).parameters
    return read(source, fmt, images=images if takes_images else None)


def _import_tasks(client: Client, project_id: int, tasks: list[dict]) -> int:
    """Import ``tasks``; a retry first drops the tasks whose key already arrived. Returns how many were imported."""
    first = True

    def attempt() -> int:
        nonlocal first
        todo = tasks
        if not first:
            present = task_keys(client, project_id)
            todo = [t for t in tasks if t["seg_key"] not in present]
        first = False
        if todo:
            client.sdk.projects.import_tasks(project_id, request=todo)
        return len(todo)

    return client.call(f"importing {len(tasks)} tasks into project {project_id}", attempt, safe=True)


def _match(names: Sequence[str], wanted: str) -> str | None:
    if wanted in names:
        return wanted
    base = wanted.rsplit("/", 1)[-1]
    found = [n for n in names if n.rsplit("/", 1)[-1] == base]
    return found[0] if len(found) == 1 else None


def _push_predictions(
    client: Client,
    project: Project,
    names: Sequence[str],
    keys: dict[str, str],
    predictions: Dataset,
    model_version: str,
    progress: Callable[[Iterable], Iterable],
) -> dict:
    from seg.formats.labelstudio import dataset_to_tasks

    setup = project.setup
    task_of_key = task_keys(client, project.id)
    known = set(names)
    local_of: dict[str, str] = {}
    unmatched = []
    targeted: set[str] = set()
    for name in predictions.images["file_name"]:
        match = name if name in known else _match(names, name)
        if match is None or keys[match] not in task_of_key or keys[match] in targeted:
            unmatched.append(name)  # not pushed, or the same image as another prediction image already
        else:
            local_of[name] = match
            targeted.add(keys[match])
    if unmatched:
        logger.warning("%d prediction image(s) not in the pushed folder, e.g. %s", len(unmatched), unmatched[0])
    images = predictions.images[predictions.images["file_name"].isin(list(local_of))]
    objects = predictions.objects[predictions.objects["image_id"].isin(images["image_id"])]
    subset = predictions.replace(images=images, objects=objects)
    tasks = dataset_to_tasks(
        subset,
        image_url=lambda name: name,
        tool=setup.tool,
        as_predictions=True,
        model_version=model_version,
        from_name=setup.from_name,
        to_name=setup.to_name,
    )
    results: dict[int, list[dict]] = defaultdict(list)
    for task in tasks:
        data = task.get("data", {})
        name = data.get("image", next(iter(data.values()), None))
        results[task_of_key[keys[local_of[name]]]].extend(task.get("predictions", []))
    targets = {task_of_key[keys[local]] for local in local_of.values()}
    old = client.call(
        f"listing predictions of project {project.id}", client.sdk.predictions.list, project=project.id, safe=True
    )
    old_of: dict[int, list[int]] = defaultdict(list)
    for prediction in old:
        if prediction.model_version == model_version and prediction.task in targets:
            old_of[int(prediction.task)].append(int(prediction.id))
    added = replaced = 0
    for task_id in progress(sorted(targets)):
        for prediction_id in old_of.get(task_id, []):
            with contextlib.suppress(NotFoundError):  # gone already: a retried delete, or someone else's
                client.call(
                    f"deleting prediction {prediction_id}", client.sdk.predictions.delete, prediction_id, safe=True
                )
            replaced += 1
        for prediction in results.get(task_id, []):
            score = prediction.get("score")
            extra = {} if score is None or (isinstance(score, float) and math.isnan(score)) else {"score": score}
            client.call(
                f"adding a prediction to task {task_id}",
                client.sdk.predictions.create,
                task=task_id,
                result=prediction.get("result", []),
                model_version=model_version,
                **extra,
                safe=False,
            )
            added += 1
    return {
        "predictions_added": added,
        "predictions_replaced": replaced,
        "prediction_images_unmatched": len(unmatched),
    }


def push(
    client: Client,
    images: str | os.PathLike[str],
    *,
    project: str,
    classes: Sequence[str] = (),
    tool: str | None = None,
    predictions: Dataset | None = None,
    model_version: str = "seg",
    progress: Progress = None,
) -> dict:
    """Push the images of a folder, and optionally predictions on them, to a Label Studio project.

    The project titled ``project`` is reused or created; its config gains missing ``classes`` (and the predictions'
    classes) and never loses one. Images already in the project (same bytes) are skipped. Images are served from the
    server's disk when it can see the folder (see :mod:`seg.annotate.serving`), uploaded otherwise.

    Args:
        client: from :func:`seg.annotate.client.connect`.
        images: the image folder (searched recursively).
        project: the project's title.
        classes: class names the project must offer.
        tool: "polygon" or "brush"; None: the existing project's tool, polygon for a new one.
        predictions: objects to show as pre-annotations; their ``file_name`` is relative to ``images``.
        model_version: the predictions' model version (the one replaced on a new push).
        progress: wraps long loops (e.g. a tqdm factory); None shows nothing.

    Returns:
        A report: project id and title, created or reused, classes added, how images are served, tasks added and
        skipped, predictions added and replaced.

    Raises:
        ImageError: the folder is missing or holds no image.
        ProjectError: the project cannot take these labels.
        ServerError: the server refused or failed a call (subclasses say which).
    """
    progress = progress or _no_progress
    folder = Path(images).resolve()
    if not folder.is_dir():
        raise ImageError("image folder not found", path=images)
    names = list_images(folder)
    if not names:
        raise ImageError("no images in the folder", path=folder, expected=", ".join(IMAGE_SUFFIXES))
    wanted = list(dict.fromkeys([*classes, *(predictions.category_names if predictions is not None else [])]))
    boxes = predictions is not None and bool(predictions.objects["rle"].isna().any())
    found, created, added_classes = ensure_project(client, project, wanted, tool, boxes=boxes)
    keys = {name: file_key(folder / name) for name in progress(names)}
    present = task_keys(client, found.id)
    new, skipped, duplicates, seen = [], 0, 0, set(present)
    for name in names:
        if keys[name] in present:
            skipped += 1
        elif keys[name] in seen:
            duplicates += 1
        else:
            new.append(name)
            seen.add(keys[name])
    serving = None
    added = 0
    if new:
        served = local_files(client, found.id, folder, probe=new[0])
        serving = "local-files" if served else "upload"
        batch: list[dict] = []
        for number, name in enumerate(progress(new), 1):
            url = served.url(client, name) if served else upload(client, found.id, folder / name)
            batch.append({found.setup.data_key: url, "seg_key": keys[name], "seg_file_name": name})
            if len(batch) == IMPORT_BATCH or number == len(new):
                added += _import_tasks(client, found.id, batch)
                batch = []
    logger.info("project %s: %d tasks added, %d already there", found.id, added, skipped)
    report = {
        "url": display_url(client.url),
        "project": found.id,
        "title": found.title,
        "created": created,
        "tool": found.setup.tool,
        "classes_added": added_classes,
        "images": len(names),
        "serving": serving,
        "tasks_added": added,
        "tasks_skipped": skipped,
        "duplicate_images": duplicates,
    }
    if predictions is not None:
        report |= _push_predictions(client, found, names, keys, predictions, model_version, progress)
    return report
