"""Label Studio projects: find one by id or title, create one, and read or extend its labeling config.

seg labels images with one control tag (``PolygonLabels`` or ``BrushLabels``) pointing at one ``Image`` tag. A
project made elsewhere may name them differently (``name="tag"``, ``value="$img"``): :class:`LabelSetup` records the
names so that tasks and predictions use the project's own.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from seg.annotate.client import Client
from seg.annotate.errors import NotFoundError, ProjectError

logger = logging.getLogger(__name__)

#: Control tags seg writes, by tool name.
TOOL_TAGS = {"polygon": "PolygonLabels", "brush": "BrushLabels"}
#: Control tags seg reads (pull also takes rectangles and generic labels).
READ_TAGS = {**TOOL_TAGS, "rectangle": "RectangleLabels", "labels": "Labels"}


@dataclass(frozen=True)
class LabelSetup:
    """The labeling tool of a project: its control tag and the image it labels.

    Attributes:
        tool: "polygon" or "brush" (other tags: the tag name in lower case).
        from_name: the control tag's ``name``.
        to_name: the ``Image`` tag's ``name``.
        data_key: the task data field holding the image URL (``value="$image"`` -> "image").
        classes: the control's label values, in order.
    """

    tool: str
    from_name: str
    to_name: str
    data_key: str
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Project:
    """A project on the server: id, title, its label config text and the setup read from it."""

    id: int
    title: str
    label_config: str
    setup: LabelSetup | None


def read_setups(config: str) -> list[LabelSetup]:
    """Every labeling control of a config that points at an ``Image`` tag, in document order.

    Raises:
        ProjectError: when the config is not XML.
    """
    try:
        root = ET.fromstring(config)
    except ET.ParseError as e:
        raise ProjectError(f"the project's labeling config is not valid XML ({e})") from e
    images = {
        el.get("name"): el.get("value", "").lstrip("$")
        for el in root.iter()
        if el.tag == "Image" and el.get("name") and el.get("value", "").startswith("$")
    }
    tools = {tag: tool for tool, tag in READ_TAGS.items()}
    setups = []
    for el in root.iter():
        if el.tag not in tools or el.get("toName") not in images:
            continue
        classes = tuple(label.get("value", "") for label in el if label.tag == "Label" and label.get("value"))
        to_name = el.get("toName")
        setups.append(LabelSetup(tools[el.tag], el.get("name", ""), to_name, images[to_name], classes))
    return setups


def pick_setup(config: str, tool: str | None) -> LabelSetup | None:
    """The control seg works with: the first one of ``tool``, or the first polygon/brush one when ``tool`` is None."""
    setups = read_setups(config)
    wanted = [tool] if tool else list(TOOL_TAGS)
    for setup in setups:
        if setup.tool in wanted:
            return setup
    return None


def add_labels(config: str, setup: LabelSetup, names: Sequence[str]) -> str:
    """``config`` with ``<Label value=...>`` children added to ``setup``'s control; everything else is kept."""
    root = ET.fromstring(config)
    tag = TOOL_TAGS.get(setup.tool, READ_TAGS.get(setup.tool))
    control = next(el for el in root.iter(tag) if el.get("name") == setup.from_name)
    for name in names:
        label = ET.SubElement(control, "Label", {"value": name})
        label.tail = control[0].tail if len(control) > 1 else None
    return ET.tostring(root, encoding="unicode")


def _project(raw) -> Project:
    config = raw.label_config or ""
    setup = pick_setup(config, None) if config.strip() else None
    return Project(int(raw.id), str(raw.title or ""), config, setup)


def get_project(client: Client, project: int | str) -> Project:
    """The project with id ``project`` (an int or a string of digits), else the one titled ``project``.

    Raises:
        NotFoundError: no such project.
        ProjectError: several projects carry that title.
    """
    if isinstance(project, int) or str(project).strip().isdigit():
        pid = int(project)
        raw = client.call(f"reading project {pid}", client.sdk.projects.get, pid, safe=True)
        return _project(raw)
    found = find_projects(client, str(project))
    if not found:
        raise NotFoundError(f"{client.where} has no project titled {project!r}")
    if len(found) > 1:
        raise ProjectError(
            f"{client.where} has {len(found)} projects titled {project!r}; name one by id",
            actual=", ".join(str(p.id) for p in found),
        )
    return get_project(client, found[0].id)


def find_projects(client: Client, title: str) -> list[Project]:
    """Projects whose title is exactly ``title`` (the server's filter matches substrings)."""
    listed = client.call(
        f"looking for project {title!r}", lambda: list(client.sdk.projects.list(title=title, page_size=100)), safe=True
    )
    return [Project(int(p.id), str(p.title), "", None) for p in listed if p.title == title]


def ensure_project(
    client: Client, title: str, classes: Sequence[str], tool: str | None = None, *, boxes: bool = False
) -> tuple[Project, bool, list[str]]:
    """Reuse the project titled ``title`` or create it, making sure its config labels ``classes`` with ``tool``.

    An existing project keeps every label it has (so no annotation loses its class); missing ``classes`` are added
    to its control. A new project gets :func:`seg.formats.labelstudio.label_config` of ``classes``.

    Args:
        client: the server.
        title: the project's title (Label Studio wants at least 3 characters).
        classes: class names the project must offer.
        tool: "polygon" or "brush"; None takes the existing project's tool (polygon for a new project).
        boxes: a new project also gets the ``RectangleLabels`` control that box-only predictions are written to.

    Returns:
        The project, whether it was created, and the class names added to an existing config.

    Raises:
        ProjectError: the existing project has no image control of ``tool``, or several projects have the title.
    """
    if tool is not None and tool not in TOOL_TAGS:
        raise ProjectError(f"unknown labeling tool {tool!r}", expected=" or ".join(TOOL_TAGS))
    found = find_projects(client, title)
    if len(found) > 1:
        raise ProjectError(
            f"{client.where} has {len(found)} projects titled {title!r}",
            expected="one",
            actual=", ".join(str(p.id) for p in found),
        )
    if not found:
        from seg.formats.labelstudio import label_config

        if not classes:
            raise ProjectError(f"project {title!r} does not exist yet and needs class names (--classes)")

        config = label_config(list(classes), tool=tool or "polygon", boxes=boxes)
        raw = client.call(
            f"creating project {title!r}", client.sdk.projects.create, title=title, label_config=config, safe=False
        )
        logger.info("created project %s (%r) on %s", raw.id, title, client.where)
        return get_project(client, int(raw.id)), True, []
    project = get_project(client, found[0].id)
    setup = pick_setup(project.label_config, tool)
    if setup is None:
        have = ", ".join(sorted({s.tool for s in read_setups(project.label_config)})) or "none"
        raise ProjectError(
            f"project {project.id} ({title!r}) has no {tool or 'polygon or brush'} labels on an image; "
            "pick another --tool or another project",
            expected=TOOL_TAGS.get(tool or "", "PolygonLabels or BrushLabels"),
            actual=have,
        )
    if boxes and not any(
        s.tool == "rectangle" and s.from_name == f"{setup.from_name}_box" for s in read_setups(project.label_config)
    ):
        logger.warning(
            "project %s has no RectangleLabels control %r: box-only predictions will not show",
            project.id,
            f"{setup.from_name}_box",
        )
    missing = [c for c in classes if c not in setup.classes]
    if not missing:
        return Project(project.id, project.title, project.label_config, setup), False, []
    config = add_labels(project.label_config, setup, missing)
    client.call(
        f"adding classes {', '.join(missing)} to project {project.id}",
        client.sdk.projects.update,
        project.id,
        label_config=config,
        safe=True,
    )
    logger.info("added classes %s to project %s", ", ".join(missing), project.id)
    project = get_project(client, project.id)
    setup = pick_setup(project.label_config, setup.tool)
    return Project(project.id, project.title, project.label_config, setup), False, missing


def project_tasks(client: Client, project_id: int, page_size: int = 500) -> list:
    """Every task of a project (id and data only), page by page."""
    return client.call(
        f"listing tasks of project {project_id}",
        lambda: list(client.sdk.tasks.list(project=project_id, fields="task_only", page_size=page_size)),
        safe=True,
    )


def task_keys(client: Client, project_id: int) -> dict[str, int]:
    """``{seg_key: task id}`` of the project's tasks that seg imported."""
    keys: dict[str, int] = {}
    for task in project_tasks(client, project_id):
        key = (task.data or {}).get("seg_key")
        if isinstance(key, str):
            keys.setdefault(key, int(task.id))
    return keys
