"""Pulling a Label Studio project's annotations (and predictions) into a Dataset.

The tasks come from an export snapshot made with full predictions and annotators (the quick JSON export lists
prediction ids only), downloaded in chunks and deleted from the server afterwards, then read by
:func:`seg.formats.labelstudio.tasks_to_dataset` (only tasks holding what was asked for become images: an image nobody
annotated yet is not a negative; cancelled annotations are dropped).

Images are named by the ``seg_file_name`` that :func:`seg.annotate.push.push` stored in each task, else by the image
URL (:func:`seg.formats.labelstudio.image_file_name`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from seg.annotate.client import Client, display_url
from seg.annotate.errors import ServerError, ServerTimeoutError
from seg.annotate.projects import get_project
from seg.dataset.paths import normalize_file_name
from seg.errors import UnsafePathError
from seg.progress import Progress

if TYPE_CHECKING:
    from seg.dataset.core import Dataset
    from seg.dataset.problems import Problems

logger = logging.getLogger(__name__)

Which = Literal["annotations", "predictions", "both"]
WHICH = ("annotations", "predictions", "both")

#: The export's serialization: predictions in full, annotators with their e-mail.
SERIALIZATION = {"predictions": {"only_id": False}, "annotations__completed_by": {"only_id": False}}


def export_tasks(client: Client, project_id: int, *, timeout: float = 600.0, poll: float = 1.0) -> list[dict]:
    """Every task of a project as Label Studio exports it, predictions and annotators included.

    Args:
        client: the server.
        project_id: the project.
        timeout: seconds to wait for the export to be ready.
        poll: seconds between two looks at an export that is still running.
    """
    sdk = client.sdk.projects.exports
    snapshot = client.call(
        f"exporting project {project_id}",
        sdk.create,
        project_id,
        title="seg pull",
        serialization_options=SERIALIZATION,
        request_options={"timeout_in_seconds": timeout},
        safe=False,
    )
    try:
        deadline = time.monotonic() + timeout
        while snapshot.status != "completed":
            if snapshot.status == "failed":
                raise ServerError(f"{client.where} failed to export project {project_id}")
            if time.monotonic() > deadline:
                raise ServerTimeoutError(
                    f"{client.where} did not finish exporting project {project_id} in {timeout:g} s"
                )
            time.sleep(poll)
            snapshot = client.call(f"checking export {snapshot.id}", sdk.get, project_id, snapshot.id, safe=True)
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as buffer:

            def download() -> None:
                buffer.seek(0)
                buffer.truncate()
                options = {"chunk_size": 1 << 20, "timeout_in_seconds": timeout}
                for chunk in sdk.download(project_id, snapshot.id, export_type="JSON", request_options=options):
                    buffer.write(chunk)

            client.call(f"downloading the export of project {project_id}", download, safe=True)
            buffer.seek(0)
            try:
                tasks = json.load(buffer)
            except ValueError as e:
                raise ServerError(f"{client.where} sent an export of project {project_id} that is not JSON") from e
    finally:
        try:
            client.call(f"deleting export {snapshot.id}", sdk.delete, project_id, snapshot.id, safe=True)
        except ServerError as e:
            logger.warning("export %s of project %s stays on the server: %s", snapshot.id, project_id, e)
    if not isinstance(tasks, list):
        raise ServerError(f"{client.where} sent an export of project {project_id} that is not a task list")
    return tasks


def _seg_names(tasks: list[dict]) -> dict[str, str]:
    """``{task id: seg_file_name}`` of the tasks that carry one."""
    names = {}
    for task in tasks:
        name = (task.get("data") or {}).get("seg_file_name")
        if not isinstance(name, str) or not name:
            continue
        try:
            names[str(task.get("id"))] = normalize_file_name(name, item_id=task.get("id"))
        except UnsafePathError as e:
            logger.warning("task %s: ignoring seg_file_name: %s", task.get("id"), e)
    return names


def pull(
    client: Client,
    project: int | str,
    *,
    which: Which = "annotations",
    image_root: str | os.PathLike[str] | None = None,
    problems: Problems | None = None,
    progress: Progress = None,
) -> Dataset:
    """Read a project's annotations (or predictions, or both) into a Dataset.

    Args:
        client: from :func:`seg.annotate.client.connect`.
        project: the project's id, or its title.
        which: "annotations", "predictions" or "both".
        image_root: the local image folder that file names are relative to (the folder that was pushed).
        problems: the error policy for bad regions (default: raise).
        progress: wraps the loop over tasks.

    Returns:
        One object per region per annotation (with ``annotator``) or prediction (with ``score``); image ids are task
        ids.

    Raises:
        NotFoundError: no such project.
        ServerError: the server refused or failed a call.
    """
    from seg.formats.labelstudio import tasks_to_dataset

    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    found = get_project(client, project)
    tasks = [t for t in export_tasks(client, found.id) if isinstance(t, dict)]
    names = _seg_names(tasks)
    dataset = tasks_to_dataset(
        [_without_seg_keys(t) for t in tasks],
        source=f"{display_url(client.url)} project {found.id}",
        image_root=None if image_root is None else Path(image_root),
        which=which,
        problems=problems,
        progress=progress,
    )
    logger.info("project %s: %d images, %d objects", found.id, len(dataset.images), len(dataset.objects))
    return _renamed(dataset, names)


def _without_seg_keys(task: dict) -> dict:
    """The task without seg's keys in its data (a file name there would look like a second image)."""
    data = task.get("data")
    if not isinstance(data, dict):
        return task
    return {**task, "data": {k: v for k, v in data.items() if k not in ("seg_key", "seg_file_name")}}


def _renamed(dataset: Dataset, names: dict[str, str]) -> Dataset:
    """``dataset`` with images (and their objects) named by ``seg_file_name`` where the task had one."""
    if not names:
        return dataset
    images = dataset.images.copy()
    objects = dataset.objects.copy()
    images["file_name"] = [names.get(i, n) for i, n in zip(images["image_id"], images["file_name"], strict=True)]
    objects["file_name"] = [names.get(i, n) for i, n in zip(objects["image_id"], objects["file_name"], strict=True)]
    return dataset.replace(images=images, objects=objects)
