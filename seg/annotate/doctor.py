"""``seg annotate doctor``: check, one step at a time, that a Label Studio server is ready for push and pull.

Checks run in order and stop at the first one the rest depend on (no server, no accepted key). Each says what it
found and, when it fails, what to do.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

from seg.annotate.client import Client, display_url
from seg.annotate.errors import AuthError, ServerError
from seg.annotate.projects import get_project
from seg.annotate.serving import document_root
from seg.errors import SegError

logger = logging.getLogger(__name__)

#: How many of a project's tasks have their image fetched.
SAMPLE = 5

START_ADVICE = (
    "start it, e.g. `label-studio start --internal-host 127.0.0.1 --port 8080`, or point --url / LABEL_STUDIO_URL at it"
)
KEY_ADVICE = (
    "copy the token from Label Studio's Account & Settings page into --api-key or LABEL_STUDIO_API_KEY; "
    "a legacy token also needs LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true on the server"
)


@dataclass(frozen=True)
class Check:
    """One check: its name, whether it passed, what was found, and what to do when it failed."""

    name: str
    ok: bool
    detail: str
    advice: str = ""


def _serving_advice(folder: Path | None) -> str:
    parent = "<a parent of the image folder>" if folder is None else str(folder.parent)
    return (
        "restart Label Studio, on the machine holding the images, with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true "
        f"and LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={parent}; until then seg push uploads the images"
    )


def _serving_on(client: Client) -> bool:
    """Whether the server serves local files at all: an unknown file is 404 when it does, 403 when it does not."""
    try:
        client.request("GET", "data/local-files/", params={"d": "seg-doctor-probe/none.png"}, what="probing")
    except ServerError as e:
        return e.status == 404
    return True


def _local_files(client: Client, project: int | str | None, images: Path | None) -> Check:
    on = _serving_on(client)
    if images is None:
        if on:
            return Check("local files", True, "serving is on (check a folder with --images)")
        return Check("local files", True, "serving is off: seg push uploads images", _serving_advice(None))
    folder = images.resolve()
    temporary = None
    try:
        if project is not None:
            project_id = get_project(client, project).id
        else:  # validating a storage needs a project: a scratch one, deleted below
            temporary = client.call(
                "creating a scratch project",
                client.sdk.projects.create,
                title="seg doctor (temporary)",
                label_config='<View><Image name="image" value="$image"/></View>',
            ).id
            project_id = temporary
        root = document_root(client, project_id, folder)
    finally:
        if temporary is not None:
            client.call("deleting the scratch project", client.sdk.projects.delete, temporary, safe=True)
    if root is not None:
        return Check("local files", True, f"the server serves {folder} (document root {root})")
    why = "serving is off" if not on else f"{folder} is not inside the document root, or not on the server's disk"
    return Check("local files", False, why, _serving_advice(folder))


def _image_url(data: dict, key: str) -> str | None:
    value = data.get(key)
    if isinstance(value, str):
        return value
    return next((v for v in data.values() if isinstance(v, str) and ("/" in v)), None)


def _images_served(client: Client, project_id: int, data_key: str) -> Check:
    pager = client.call(
        f"listing tasks of project {project_id}",
        lambda: list(itertools.islice(client.sdk.tasks.list(project=project_id, page_size=SAMPLE), SAMPLE)),
        safe=True,
    )
    if not pager:
        return Check("images", True, f"project {project_id} has no tasks yet")
    failures: list[tuple[int, str, str]] = []  # task id, URL, what went wrong
    for task in pager:
        url = _image_url(task.data or {}, data_key)
        if url is None:
            failures.append((task.id, "", "no image URL"))
            continue
        try:
            response = client.request("GET", url, what=f"fetching the image of task {task.id}")
        except ServerError as e:
            failures.append((task.id, url, f"HTTP {e.status}" if e.status else str(e)))
            continue
        kind = response.headers.get("content-type", "")
        if not kind.startswith("image/"):
            failures.append((task.id, url, f"{kind or 'no content type'}, not an image"))
    if not failures:
        return Check("images", True, f"the images of {len(pager)} sampled task(s) load")
    sample = "; ".join(f"task {t}: {u} -> {why}" if u else f"task {t}: {why}" for t, u, why in failures[:3])
    urls = [u for _, u, _ in failures]
    if any("/data/local-files/" in u for u in urls):
        advice = _serving_advice(None) + ", and keep the project's local storage path pointing at the images"
    elif any(u and not client.same_origin(urljoin(client.url + "/", u)) for u in urls):
        advice = "images on other hosts must be reachable from here without Label Studio's token"
    else:
        advice = "re-push the images (`seg annotate push`) or fix the task URLs"
    return Check("images", False, f"{len(failures)} of {len(pager)} sampled image(s) fail: {sample}", advice)


def doctor(
    url: str,
    api_key: str | None,
    project: int | str | None = None,
    images: str | os.PathLike[str] | None = None,
    *,
    timeout: float = 10.0,
) -> list[Check]:
    """Check a Label Studio server: reachable, version, API key, local-files serving, and a project's images.

    Args:
        url: the server.
        api_key: the token seg will use.
        project: a project id or title whose tasks' images are fetched (a sample).
        images: a local image folder that should be served from the server's disk.
        timeout: seconds to wait for each answer.

    Returns:
        The checks made, in order; a failed check that the others depend on ends the list.
    """
    checks: list[Check] = []
    client = Client(url, api_key or "", timeout=timeout, retries=1, backoff=0.2)
    where = display_url(client.url)
    try:
        try:
            health = client.get_json("health", what="checking health")
        except SegError as e:
            return [Check("server", False, str(e), START_ADVICE)]
        up = isinstance(health, dict) and health.get("status") == "UP"
        checks.append(
            Check("server", up, f"Label Studio answers at {where}" if up else f"{where}/health says {health!r}")
        )
        try:
            version = client.get_json("api/version", what="reading the version")
            release = version.get("release") if isinstance(version, dict) else None
            checks.append(Check("version", bool(release), f"Label Studio {release}" if release else "no version"))
        except SegError as e:
            checks.append(Check("version", False, str(e), "is this URL a Label Studio server?"))
        if not api_key:
            checks.append(Check("API key", False, "no API key given", KEY_ADVICE))
            return checks
        try:
            user = client.whoami()
        except SegError as e:
            refused = isinstance(e, AuthError) and e.status == 401
            checks.append(
                Check("API key", False, "refused by the server (HTTP 401)" if refused else str(e), KEY_ADVICE)
            )
            return checks
        checks.append(Check("API key", True, f"accepted (user {user['email'] or user['id']})"))
        try:
            checks.append(_local_files(client, project, None if images is None else Path(images)))
        except SegError as e:
            checks.append(Check("local files", False, str(e)))
        if project is not None:
            checks.extend(_project_checks(client, project))
    finally:
        client.close()
    return checks


def _project_checks(client: Client, project: int | str) -> Sequence[Check]:
    try:
        found = get_project(client, project)
    except SegError as e:
        return [Check("project", False, str(e), "name an existing project by id or title")]
    if found.setup is None:
        detail = f"project {found.id} ({found.title!r}) has no polygon or brush labels on an image"
        return [Check("project", False, detail, "push creates a suitable config; or add PolygonLabels/BrushLabels")]
    setup = found.setup
    detail = f"project {found.id} ({found.title!r}): {setup.tool} labels {', '.join(setup.classes) or '(none)'}"
    checks = [Check("project", True, detail)]
    try:
        checks.append(_images_served(client, found.id, setup.data_key))
    except SegError as e:
        checks.append(Check("images", False, str(e)))
    return checks
