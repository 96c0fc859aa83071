"""Reading VIA files into one plain form: the images of a project, each with its regions as VIA 2 shape dicts.

Every VIA flavour ends up as a :class:`Project`: VIA 1 and 2 JSON (an export keyed ``"<filename><size>"`` or a VIA 2
project with ``_via_img_metadata``), VIA 1 and 2 CSV exports, and VIA 3 projects. VIA 3 shapes (``xy`` lists whose first
number is the shape code) become the VIA 2 shape dicts they stand for, and VIA 3 attribute ids and option ids become
attribute names and option labels, so the rest of the reader handles one form. The geometry of a shape
(:func:`shape_rings`) is shared with the Labelme reader.
"""

from __future__ import annotations

import csv
import io
import math
import posixpath
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from seg.dataset.polygons import Ring
from seg.errors import FormatError
from seg.formats.coco_read import Context
from seg.formats.coco_segmentation import is_number
from seg.formats.json_text import read_json

#: The columns of a VIA CSV export (VIA 1 writes the first as ``#filename``).
CSV_COLUMNS = (
    "filename",
    "file_size",
    "file_attributes",
    "region_count",
    "region_id",
    "region_shape_attributes",
    "region_attributes",
)

#: VIA 3 shape codes (``_VIA_RSHAPE`` in VIA 3's ``_via_metadata.js``).
VIA3_SHAPES = {
    1: "point",
    2: "rect",
    3: "circle",
    4: "ellipse",
    5: "line",
    6: "polyline",
    7: "polygon",
    8: "extreme_rectangle",
    9: "extreme_circle",
}
#: VIA 3 attribute types (``_VIA_ATTRIBUTE_TYPE``): text, checkbox, radio, select (dropdown), image.
VIA3_ATTRIBUTE_KINDS = {1: "text", 2: "checkbox", 3: "radio", 4: "dropdown", 5: "image"}
#: VIA 3 anchors of attributes that describe a spatial region (in an image, in a video frame).
VIA3_REGION_ANCHORS = ("FILE1_Z0_XY1", "FILE1_Z1_XY1")
VIA3_IMAGE = 2

#: Shapes without an area: read, counted, and left out of the Dataset.
NO_AREA = ("point", "polyline", "line")
#: Largest and smallest number of vertices of the polygon standing for a circle or an ellipse.
MIN_VERTICES, MAX_VERTICES = 16, 1024
#: How far (pixels) the polygon of a circle or an ellipse may stray inside the true curve.
CHORD_ERROR = 0.25


@dataclass
class Region:
    """One region as read: its key in the file, its VIA 2 shape dict and its region attributes (both unchecked)."""

    key: str
    shape: Any
    attributes: Any


@dataclass
class Entry:
    """One image as read: its file name (unchecked), regions, file attributes, and how messages name it."""

    filename: Any
    item: str
    regions: list[Region] = field(default_factory=list)
    file_attributes: Any = field(default_factory=dict)


@dataclass(frozen=True)
class Declared:
    """A region attribute declared in the file (VIA 2 ``_via_attributes``, VIA 3 ``attribute``): kind and options."""

    kind: str
    options: tuple[str, ...] = ()


@dataclass
class Project:
    """A VIA file read into plain form."""

    version: str
    entries: list[Entry]
    declared: dict[str, Declared] = field(default_factory=dict)
    notes: Counter = field(default_factory=Counter)


# -- the file -----------------------------------------------------------------------------------------------------


def read_project(path: Path, ctx: Context) -> Project:
    """Read any VIA file (JSON of VIA 1, 2 or 3, or a CSV export).

    Raises:
        FormatError: unreadable or malformed file, or a file that is not VIA.
    """
    if path.suffix.lower() == ".csv":
        return read_csv(path, ctx)
    data = read_json(path, expected="a VIA project or export")
    if not isinstance(data, dict):
        raise FormatError(
            "not a VIA file: the top level is not an object",
            path=path,
            expected="a VIA project or export (an object)",
            actual=type(data).__name__,
        )
    if "_via_img_metadata" in data:
        return _via2_project(data, path, ctx)
    if is_via3(data):
        return read_via3(data, path, ctx)
    if data and all(isinstance(v, dict) and "filename" in v for v in list(data.values())[:1]):
        return Project("1/2", _entries(data, ctx))
    raise FormatError(
        "not a VIA file",
        path=path,
        expected="VIA image entries with 'filename' and 'regions', a VIA 2 project or a VIA 3 project",
        actual=f"keys {sorted(data)[:6]}",
    )


def is_via3(data: dict) -> bool:
    """True for a VIA 3 project (its store: ``project``, ``metadata`` and ``file`` or ``view``)."""
    return isinstance(data.get("project"), dict) and "metadata" in data and ("file" in data or "view" in data)


def _via2_project(data: dict, path: Path, ctx: Context) -> Project:
    metadata = data["_via_img_metadata"]
    if not isinstance(metadata, dict):
        raise FormatError(
            "'_via_img_metadata' is not an object", path=path, expected="an object", actual=type(metadata).__name__
        )
    order = data.get("_via_image_id_list")
    if isinstance(order, list) and len(order) == len(metadata) and set(map(str, order)) == set(metadata):
        metadata = {key: metadata[key] for key in map(str, order)}
    attributes = data.get("_via_attributes")
    region = attributes.get("region") if isinstance(attributes, dict) else None
    declared = {}
    for name, spec in (region or {}).items() if isinstance(region, dict) else ():
        if isinstance(spec, dict) and isinstance(spec.get("type"), str):
            options = spec.get("options")
            declared[str(name)] = Declared(spec["type"], tuple(map(str, options)) if isinstance(options, dict) else ())
    return Project("2", _entries(metadata, ctx), declared)


def _entries(metadata: dict, ctx: Context) -> list[Entry]:
    """Entries of VIA 1/2 image metadata (``regions`` a dict keyed "0", "1"... in VIA 1, a list in VIA 2)."""
    entries = []
    for key, value in metadata.items():
        item = f"image {key!r}"
        if not isinstance(value, dict):
            ctx.problem("image entry is not an object", item, actual=type(value).__name__)
            continue
        regions = value.get("regions", [])
        if isinstance(regions, list):
            pairs = [(str(i), r) for i, r in enumerate(regions)]
        elif isinstance(regions, dict):
            pairs = [(str(k), r) for k, r in regions.items()]
        else:
            ctx.problem("'regions' is neither a list nor an object", item, actual=type(regions).__name__)
            continue
        entry = Entry(value.get("filename"), item, file_attributes=value.get("file_attributes", {}))
        for region_key, region in pairs:
            if not isinstance(region, dict):
                ctx.problem("region is not an object", f"{item} region {region_key}", actual=type(region).__name__)
                continue
            entry.regions.append(
                Region(region_key, region.get("shape_attributes"), region.get("region_attributes", {}))
            )
        entries.append(entry)
    return entries


def read_csv(path: Path, ctx: Context) -> Project:
    """A VIA 1 or 2 CSV export: one row per region (or per image without regions), JSON in the cells."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise FormatError(f"cannot read file: {e.strerror or e}", path=path) from e
    except UnicodeDecodeError as e:
        raise FormatError("not UTF-8 text", path=path, expected="a VIA CSV export") from e
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, [])
        if header[:1] and header[0].startswith("#"):
            header[0] = header[0][1:]
        if tuple(h.strip() for h in header) != CSV_COLUMNS:
            raise FormatError(
                "not a VIA CSV export", path=path, expected=",".join(CSV_COLUMNS), actual=",".join(header)[:200]
            )
        entries: dict[tuple[str, str], Entry] = {}
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(CSV_COLUMNS):
                ctx.problem(f"row has {len(row)} fields", f"line {line}", expected=f"{len(CSV_COLUMNS)} fields")
                continue
            filename, size, file_attributes, count, region_id, shape, attributes = row
            cells = []
            for name, cell in (("file", file_attributes), ("shape", shape), ("region", attributes)):
                try:
                    cells.append(orjson.loads(cell) if cell.strip() else {})
                except orjson.JSONDecodeError as e:
                    ctx.problem(f"malformed JSON in the {name} column: {e}", f"line {line}", cause=e)
                    break
            else:
                key = (filename, size)
                if key not in entries:
                    entries[key] = Entry(filename, f"image {filename!r}", file_attributes=cells[0])
                if cells[1] == {} and count.strip() in ("0", ""):
                    continue  # an image without regions
                entries[key].regions.append(Region(region_id, cells[1], cells[2]))
    except csv.Error as e:
        raise FormatError(f"malformed CSV at line {reader.line_num}: {e}", path=path) from e
    return Project("1/2 csv", list(entries.values()))


# -- VIA 3 --------------------------------------------------------------------------------------------------------


def read_via3(data: dict, path: Path, ctx: Context) -> Project:
    """A VIA 3 project: one entry per single-image view, in ``project.vid_list`` order.

    Metadata with an empty ``xy`` and an empty ``z`` are file attributes; temporal segments (``z`` without ``xy``),
    regions in video frames, video and audio files and views of several files are left out and counted in ``notes``.
    """
    tables = {}
    for key in ("attribute", "file", "metadata", "view"):
        table = data.get(key, {})
        if not isinstance(table, dict):
            raise FormatError(f"VIA 3 '{key}' is not an object", path=path, actual=type(table).__name__)
        tables[key] = {str(k): v for k, v in table.items()}
    attributes = {k: v for k, v in tables["attribute"].items() if isinstance(v, dict)}
    project = Project("3", [])
    order = data["project"].get("vid_list")
    order = [str(v) for v in order] if isinstance(order, list) else list(tables["view"])
    by_view: dict[str, Entry] = {}
    for vid in order:
        entry = _via3_entry(vid, tables, ctx, project.notes)
        if entry is not None:
            by_view[vid] = entry
            project.entries.append(entry)
    for mid, meta in tables["metadata"].items():
        item = f"metadata {mid!r}"
        if not isinstance(meta, dict):
            ctx.problem("metadata is not an object", item, actual=type(meta).__name__)
            continue
        entry = by_view.get(str(meta.get("vid")))
        if entry is None:
            continue  # a view left out above (already counted) or an unknown one
        z, xy = meta.get("z") or [], meta.get("xy") or []
        if not isinstance(z, list) or not isinstance(xy, list):
            ctx.problem("metadata 'z' and 'xy' must be lists", item)
            continue
        av = _via3_values(meta.get("av") or {}, attributes)
        if z and not xy:
            project.notes["temporal segment"] += 1
        elif z:
            project.notes["region in a video frame"] += 1
        elif not xy:
            if isinstance(entry.file_attributes, dict):
                entry.file_attributes.update(av)
        else:
            try:
                shape = via3_shape(xy)
            except ValueError as e:
                ctx.problem(str(e), f"{entry.item} {item}", cause=e)
                continue
            entry.regions.append(Region(mid, shape, av))
    for spec in attributes.values():
        kind = VIA3_ATTRIBUTE_KINDS.get(spec.get("type"))
        if kind and spec.get("anchor_id") in VIA3_REGION_ANCHORS and isinstance(spec.get("aname"), str):
            options = spec.get("options")
            project.declared[spec["aname"]] = Declared(
                kind, tuple(map(str, options.values())) if isinstance(options, dict) else ()
            )
    return project


def _via3_entry(vid: str, tables: dict, ctx: Context, notes: Counter) -> Entry | None:
    view = tables["view"].get(vid)
    item = f"view {vid!r}"
    if not isinstance(view, dict) or not isinstance(view.get("fid_list"), list):
        ctx.problem("view has no 'fid_list'", item)
        return None
    if len(view["fid_list"]) != 1:
        notes["view of several files"] += 1
        return None
    file = tables["file"].get(str(view["fid_list"][0]))
    if not isinstance(file, dict):
        ctx.problem(f"view refers to unknown file {view['fid_list'][0]!r}", item)
        return None
    if file.get("type", VIA3_IMAGE) != VIA3_IMAGE:
        notes["video or audio file"] += 1
        return None
    return Entry(file.get("fname"), f"file {file.get('fname')!r}", file_attributes={})


def _via3_values(av: Any, attributes: dict[str, dict]) -> dict:
    """``{attribute name: value}`` with option ids turned into option labels (checkboxes into ``{label: true}``)."""
    if not isinstance(av, dict):
        return {}
    values = {}
    for aid, value in av.items():
        spec = attributes.get(str(aid), {})
        name = spec.get("aname") if isinstance(spec.get("aname"), str) else str(aid)
        options = spec.get("options") if isinstance(spec.get("options"), dict) else {}
        kind = VIA3_ATTRIBUTE_KINDS.get(spec.get("type"))
        if kind == "checkbox" and isinstance(value, str):
            values[name] = {str(options.get(i, i)): True for i in value.split(",") if i != ""}
        elif kind in ("radio", "dropdown", "image") and isinstance(value, str | int):
            values[name] = options.get(str(value), value)
        else:
            values[name] = value
    return values


def via3_shape(xy: list) -> dict:
    """The VIA 2 shape dict of a VIA 3 ``xy`` list (extreme rectangles and circles become their rect and circle).

    Raises:
        ValueError: an unknown shape code or the wrong number of coordinates.
    """
    code, values = xy[0], xy[1:]
    name = VIA3_SHAPES.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
    if name is None:
        raise ValueError(f"unknown VIA 3 shape code {code!r}")
    if not all(is_number(v) for v in values):
        raise ValueError(f"VIA 3 {name} has a non-numeric coordinate")
    sizes = {"point": 2, "rect": 4, "circle": 3, "line": 4, "extreme_rectangle": 8, "extreme_circle": 6}
    if (name in sizes and len(values) != sizes[name]) or (name == "ellipse" and len(values) not in (4, 5)):
        raise ValueError(f"VIA 3 {name} has {len(values)} coordinates")
    if name in ("polygon", "polyline", "line"):
        if len(values) % 2:
            raise ValueError(f"VIA 3 {name} has an odd number of coordinates ({len(values)})")
        return {
            "name": "polyline" if name == "line" else name,
            "all_points_x": values[0::2],
            "all_points_y": values[1::2],
        }
    if name == "point":
        return {"name": "point", "cx": values[0], "cy": values[1]}
    if name == "rect":
        return dict(zip(("name", "x", "y", "width", "height"), ["rect", *values], strict=True))
    if name == "circle":
        return dict(zip(("name", "cx", "cy", "r"), ["circle", *values], strict=True))
    if name == "ellipse":
        return dict(zip(("name", "cx", "cy", "rx", "ry", "theta"), ["ellipse", *values], strict=False))
    xs, ys = values[0::2], values[1::2]
    if name == "extreme_rectangle":
        return {"name": "rect", "x": min(xs), "y": min(ys), "width": max(xs) - min(xs), "height": max(ys) - min(ys)}
    cx, cy, r = circle_through(list(zip(xs, ys, strict=True)))
    return {"name": "circle", "cx": cx, "cy": cy, "r": r}


def circle_through(points: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """Centre and radius of the circle through three points.

    Raises:
        ValueError: the points lie on one line.
    """
    (ax, ay), (bx, by), (cx, cy) = points
    d = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    if abs(d) < 1e-9:
        raise ValueError("the three points of an extreme circle lie on one line")
    a2, b2, c2 = ax * ax + ay * ay, bx * bx + by * by, cx * cx + cy * cy
    ux = (a2 * (by - cy) + b2 * (cy - ay) + c2 * (ay - by)) / d
    uy = (a2 * (cx - bx) + b2 * (ax - cx) + c2 * (bx - ax)) / d
    return ux, uy, math.hypot(ax - ux, ay - uy)


# -- shapes -------------------------------------------------------------------------------------------------------


def vertex_count(radius: float) -> int:
    """Vertices of the polygon standing for a circle of ``radius``: its chords stray at most :data:`CHORD_ERROR` pixel
    inside the curve, with at least :data:`MIN_VERTICES` and at most :data:`MAX_VERTICES`."""
    if radius <= CHORD_ERROR:
        return MIN_VERTICES
    return max(MIN_VERTICES, min(MAX_VERTICES, math.ceil(math.pi / math.acos(1 - CHORD_ERROR / radius))))


def ellipse_ring(cx: float, cy: float, rx: float, ry: float, theta: float = 0.0) -> Ring:
    """A polygon ring on an ellipse (``theta``: rotation in radians, clockwise on screen as VIA draws it)."""
    n = vertex_count(max(rx, ry))
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    ring: Ring = []
    for k in range(n):
        angle = 2 * math.pi * k / n
        ex, ey = rx * math.cos(angle), ry * math.sin(angle)
        ring += [round(cx + ex * cos_t - ey * sin_t, 3), round(cy + ex * sin_t + ey * cos_t, 3)]
    return ring


def rect_ring(x: float, y: float, width: float, height: float) -> Ring:
    """The four corners of a box, clockwise on screen from its top-left corner."""
    x, y, width, height = float(x), float(y), float(width), float(height)
    return [x, y, x + width, y, x + width, y + height, x, y + height]


def _numbers(shape: dict, *keys: str) -> list[float]:
    values = []
    for key in keys:
        value = shape.get(key)
        if not is_number(value):
            raise ValueError(f"{shape.get('name')} needs a number '{key}', got {value!r}")
        values.append(float(value))
    return values


def shape_rings(shape: Any) -> list[Ring] | str:
    """The polygon ring of a VIA 2 shape dict (pixels), or the name of a shape without an area.

    Returns:
        ``[ring]`` for polygon, rect, circle and ellipse; ``"point"``, ``"polyline"`` or ``"line"`` for shapes that
        have no area, and ``"empty"`` for a rect, circle or ellipse of size zero.

    Raises:
        ValueError: a malformed or unknown shape.
    """
    if not isinstance(shape, dict):
        raise ValueError(f"shape_attributes is not an object (got {type(shape).__name__})")
    name = shape.get("name")
    if name in NO_AREA:
        return name
    if name == "polygon":
        xs, ys = shape.get("all_points_x"), shape.get("all_points_y")
        if not (isinstance(xs, list) and isinstance(ys, list)):
            raise ValueError("polygon needs lists 'all_points_x' and 'all_points_y'")
        if len(xs) != len(ys):
            raise ValueError(f"polygon has {len(xs)} x and {len(ys)} y coordinates")
        if not all(is_number(v) for v in xs + ys):
            raise ValueError("polygon has a non-numeric coordinate")
        if len(xs) < 3:
            raise ValueError(f"polygon has {len(xs)} points, expected at least 3")
        return [[float(v) for point in zip(xs, ys, strict=True) for v in point]]
    if name == "rect":
        x, y, width, height = _numbers(shape, "x", "y", "width", "height")
        if width < 0 or height < 0:
            raise ValueError(f"rect has a negative size {width} x {height}")
        return [rect_ring(x, y, width, height)] if width and height else "empty"
    if name == "circle":
        cx, cy, r = _numbers(shape, "cx", "cy", "r")
        if r < 0:
            raise ValueError(f"circle has a negative radius {r}")
        return [ellipse_ring(cx, cy, r, r)] if r else "empty"
    if name == "ellipse":
        cx, cy, rx, ry = _numbers(shape, "cx", "cy", "rx", "ry")
        theta = shape.get("theta", 0.0)
        if not is_number(theta):
            raise ValueError(f"ellipse has a non-numeric 'theta' {theta!r}")
        if rx < 0 or ry < 0:
            raise ValueError(f"ellipse has a negative radius {rx}, {ry}")
        return [ellipse_ring(cx, cy, rx, ry, float(theta))] if rx and ry else "empty"
    raise ValueError(f"unknown shape {name!r}")


def url_file_name(name: str) -> str:
    """The file name VIA's ``filename`` stands for: a URL's last path segment (unquoted), else the name itself."""
    if "://" in name[:16]:
        return unquote(posixpath.basename(urlsplit(name).path))
    return name
