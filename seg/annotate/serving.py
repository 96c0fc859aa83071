"""How a Label Studio server gets a folder's images: served from its own disk, or uploaded.

**Local files.** When the server runs with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and a
``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` that is a parent of the folder, and sees the folder at the same path, tasks
point at ``/data/local-files/?d=<path relative to the document root>``. The server serves such a file only when a
local-files import storage of the project covers its folder, so one is created (or reused). Its regex filter matches
nothing: clicking "Sync" in the UI cannot import the folder a second time without seg's keys.

seg cannot read the server's settings. It asks the server to validate a storage at the folder (it accepts only paths
strictly inside the document root, when serving is on), then at each parent in turn: the first parent refused is the
document root. Finally one served file is compared with the local one, byte for byte hash.

**Upload.** Otherwise each image is uploaded alone (several files under one form field keep only the last one)
without creating a task, and the task is then imported with the upload's URL and seg's keys.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

from seg.annotate.client import Client
from seg.annotate.errors import RequestError, ServerError

logger = logging.getLogger(__name__)

#: A regex that matches no file name: the storage serves files but never imports any on "Sync".
MATCH_NOTHING = "(?!)"
STORAGE_TITLE = "seg push"


def file_key(path: Path) -> str:
    """The key of an image in a project: the SHA-256 of its bytes (a renamed file is still the same image)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _prefix(client: Client) -> str:
    """The URL path the server lives under ("" at the root of its host)."""
    return urlsplit(client.url).path.rstrip("/")


def local_files_url(client: Client, relative: str) -> str:
    """The task URL of a file at ``relative`` (posix) under the server's document root."""
    return f"{_prefix(client)}/data/local-files/?d={quote(relative, safe='/')}"


def _validates(client: Client, project_id: int, path: Path) -> bool:
    try:
        client.call(
            f"checking local-files storage at {path}",
            client.sdk.import_storage.local.validate,
            project=project_id,
            path=str(path),
            use_blob_urls=True,
            safe=True,
        )
    except RequestError as e:
        logger.debug("storage at %s refused: %s", path, e)
        return False
    return True


def document_root(client: Client, project_id: int, folder: Path) -> Path | None:
    """The server's local-files document root when it can serve ``folder`` (absolute), else None."""
    if not _validates(client, project_id, folder):
        return None
    for parent in folder.parents:
        if not _validates(client, project_id, parent):
            return parent
    return None


@dataclass(frozen=True)
class LocalFiles:
    """Images served by the server from ``root`` (its document root) through storage ``storage_id``."""

    root: Path
    folder: Path
    storage_id: int

    def url(self, client: Client, name: str) -> str:
        return local_files_url(client, (PurePosixPath(self.folder.relative_to(self.root).as_posix()) / name).as_posix())


def local_files(client: Client, project_id: int, folder: Path, probe: str | None = None) -> LocalFiles | None:
    """Set up serving of ``folder`` (absolute) from the server's disk, or None when the server cannot.

    Args:
        client: the server.
        project_id: the project the storage belongs to.
        folder: the image folder.
        probe: a file name under ``folder`` fetched back to check that the server sees the same file.
    """
    root = document_root(client, project_id, folder)
    if root is None:
        logger.info("%s cannot serve %s from its disk; uploading the images", client.where, folder)
        return None
    storages = client.call(
        f"listing local-files storages of project {project_id}",
        client.sdk.import_storage.local.list,
        project=project_id,
        safe=True,
    )
    storage_id = next(
        (s.id for s in storages if s.path and (Path(s.path) == folder or Path(s.path) in folder.parents)), None
    )
    if storage_id is None:
        storage = client.call(
            f"creating a local-files storage for {folder}",
            client.sdk.import_storage.local.create,
            project=project_id,
            path=str(folder),
            regex_filter=MATCH_NOTHING,
            use_blob_urls=True,
            title=STORAGE_TITLE,
            description="Serves the images pushed by seg; its filter imports nothing on Sync.",
            safe=False,
        )
        storage_id = storage.id
        logger.info("created local-files storage %s for %s", storage_id, folder)
    serving = LocalFiles(root, folder, int(storage_id))
    if probe is not None:
        try:
            response = client.request("GET", serving.url(client, probe), what=f"fetching {probe} back")
        except ServerError as e:
            logger.warning("%s does not serve %s (%s); uploading the images", client.where, probe, e)
            return None
        if hashlib.sha256(response.content).hexdigest() != file_key(folder / probe):
            logger.warning("%s serves another file at %s; uploading the images", client.where, folder / probe)
            return None
    return serving


def upload(client: Client, project_id: int, path: Path) -> str:
    """Upload one image file to the project without making a task; return the URL a task can point at."""
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = client.request(
        "POST",
        f"api/projects/{project_id}/import",
        what=f"uploading {path.name}",
        safe=False,
        params={"commit_to_project": "false"},
        files={path.name: (path.name, path.read_bytes(), kind)},
        timeout=max(client.timeout, 120.0),
    )
    try:
        (upload_id,) = response.json()["file_upload_ids"]
    except (ValueError, KeyError, TypeError) as e:
        raise ServerError(f"{client.where} answered an upload of {path.name} without one file id") from e
    record = client.call(f"reading upload {upload_id}", client.sdk.files.get, upload_id, safe=True)
    return f"{_prefix(client)}/data/{str(record.file).lstrip('/')}"
