"""Geometry signals: what is wrong with one object's outline or mask on its own, without looking at other objects.

Two sources are measured, both without decoding a mask to pixels:

* the **mask** (``rle``): its runs give each column's extent, hence the convex hull of the mask's pixel squares, its
  minimum-area enclosing rectangle and how much of its outline lies on the image border
  (:func:`seg.curate.shapes.shape_features`);
* the **outline as drawn** (``geometry``, the polygon rings read from a polygon format, in pixels): crossings, spikes,
  repeated vertices, vertices outside the image and degenerate rings. Objects that came from a mask have no drawn
  outline: a traced mask outline is valid by construction, so those signals are 0 for them.

Tiles and chips cut objects at the image border all the time, so the signals a cut can cause (``sliver``, ``speck``)
are damped for objects on the border: multiplied by ``1 - 0.85 * min(1, border_share / 0.4)`` where ``border_share``
is the part of the object's convex outline lying on the border (a piece cut off along one side has about 0.4-0.5).
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from seg.curate.shapes import shape_features
from seg.curate.signals import Signal, SignalFrames
from seg.dataset.core import Dataset
from seg.progress import Progress

logger = logging.getLogger(__name__)

SIGNALS: list[Signal] = [
    Signal(
        "self_intersection",
        "geometry",
        "object",
        "self-intersecting outline",
        "The drawn outline crosses itself (a bow-tie): 0.5 for any crossing, rising to 1 as the twisted part reaches a "
        "quarter of the area. Masks without a drawn outline are 0.",
    ),
    Signal(
        "sliver",
        "geometry",
        "object",
        "sliver (very thin object)",
        "Mean thickness (area over the length of the smallest enclosing rectangle): 1 at 1 px or less, 0 from 3 px, "
        "for objects at least 3 times longer than thick; damped for objects cut by the image border.",
    ),
    Signal(
        "speck",
        "geometry",
        "object",
        "speck (tiny object)",
        "Tiny masks: (1 at 4 px or less, 0 from 36 px) times (1 at 1% of the class's median area or less, 0 from 5%), "
        "on log scales; an empty mask is 1; damped for objects cut by the image border.",
    ),
    Signal(
        "spike",
        "geometry",
        "object",
        "spike in the outline",
        "A drawn vertex with a very acute angle whose edges stick out: 1 at 8 degrees or less, 0 from 25, scaled by "
        "its shorter edge (0 at 0.5 px, full from 2 px). Vertices on the image border (clipping) are not counted.",
    ),
    Signal(
        "near_duplicate_vertices",
        "geometry",
        "object",
        "repeated vertices",
        "Consecutive drawn vertices closer than about half a pixel (each counts 1 under 0.25 px, fading to 0 at "
        "0.75 px): 1 - exp(-count / 3).",
    ),
    Signal(
        "outside_image",
        "geometry",
        "object",
        "vertices outside the image",
        "How far the farthest drawn vertex lies outside the image: 0 up to 1 px, 1 from 10 px.",
    ),
    Signal(
        "too_few_points",
        "geometry",
        "object",
        "degenerate polygon",
        "1 when a drawn ring has fewer than 3 distinct points or no area, or the object has no ring at all.",
    ),
    Signal(
        "box_without_mask",
        "geometry",
        "object",
        "box without a mask",
        "1 for a box-only object (no mask to train a segmentation model on).",
    ),
]

#: Remaining share of the cut-prone signals for an object whose outline lies mostly on the image border.
CUT_FLOOR = 0.15
#: Border share (part of the convex outline on the image border) from which the damping is full.
CUT_SHARE = 0.4
#: Fewest objects of a class for its median area to be trusted (else the image's area stands in for it).
MIN_CLASS_OBJECTS = 5
#: Ring area (px²) below which a drawn ring is degenerate.
AREA_EPS = 1e-3


# -- signals --------------------------------------------------------------------------------------------------------


def geometry_signals(
    dataset: Dataset, progress: Progress = None, *, shapes: pd.DataFrame | None = None
) -> SignalFrames:
    """The object-level geometry signals of every object (see :data:`SIGNALS` and the module docstring).

    Args:
        dataset: the annotations.
        progress: wraps the loop over chunks of objects (e.g. tqdm).
        shapes: :func:`seg.curate.shapes.shape_features` of ``dataset.objects`` when already computed
            (consistency needs them too).

    Returns:
        ``(objects, None)``: one row per object position, one column per signal, values in ``[0, 1]``; NaN where a
        value cannot be measured (an unreadable ``rle`` or ``geometry``).
    """
    objects = dataset.objects
    if shapes is None:
        shapes = shape_features(objects, progress=progress)
    rings = outline_signals(objects)
    cut = cut_damping(shapes["border_share"].to_numpy())
    frame = pd.DataFrame(index=pd.RangeIndex(len(objects), name="object"))
    frame["self_intersection"] = rings["self_intersection"].to_numpy()
    frame["sliver"] = sliver_badness(shapes["thickness"].to_numpy(), shapes["elongation"].to_numpy()) * cut
    median = class_median_area(objects["category"], shapes)
    image_area = (objects["width"] * objects["height"]).to_numpy(np.float64)
    frame["speck"] = speck_badness(shapes["area"].to_numpy(), median, image_area) * cut
    for name in ("spike", "near_duplicate_vertices", "outside_image", "too_few_points"):
        frame[name] = rings[name].to_numpy()
    frame["box_without_mask"] = np.where(shapes["has_mask"].to_numpy(), 0.0, 1.0)
    return frame, None


def cut_damping(border_share: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The factor on cut-prone signals: 1 off the border, down to :data:`CUT_FLOOR` from a border share of 0.4."""
    share = np.nan_to_num(border_share, nan=0.0)
    return 1.0 - (1.0 - CUT_FLOOR) * np.minimum(1.0, share / CUT_SHARE)


def sliver_badness(thickness: npt.NDArray[np.float64], elongation: npt.NDArray[np.float64]) -> npt.NDArray:
    """1 at a mean thickness of 1 px or less, 0 from 3 px; times a ramp from elongation 1.5 (0) to 3 (1)."""
    thin = np.clip((3.0 - thickness) / 2.0, 0.0, 1.0)
    long = np.clip((elongation - 1.5) / 1.5, 0.0, 1.0)
    return thin * long


def speck_badness(
    area: npt.NDArray[np.float64], class_median: npt.NDArray[np.float64], image_area: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Tiny masks: an absolute ramp (1 at <= 4 px, 0 at >= 36 px) times a ramp relative to the class's median area
    (1 at <= 1 %, 0 at >= 5 %; a hundredth of the image stands in for an unknown median), both on log scales; 1 for an
    empty mask, NaN where the area is unknown."""
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.maximum(area, 1e-9)
        absolute = np.clip(np.log(36.0 / safe) / math.log(9.0), 0.0, 1.0)
        median = np.where(np.isfinite(class_median) & (class_median > 0), class_median, 0.01 * image_area)
        relative = np.clip(np.log(0.05 * median / safe) / math.log(5.0), 0.0, 1.0)
    badness = absolute * relative
    return np.where(area <= 0, 1.0, badness)


def class_median_area(categories: pd.Series, shapes: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Each object's class median mask area (NaN when the class has fewer than :data:`MIN_CLASS_OBJECTS` masks)."""
    usable = shapes["has_mask"].to_numpy() & (shapes["area"].to_numpy() > 0)
    frame = pd.DataFrame({"category": categories.to_numpy()[usable], "area": shapes["area"].to_numpy()[usable]})
    stats = frame.groupby("category")["area"].agg(["median", "size"])
    stats = stats.loc[stats["size"] >= MIN_CLASS_OBJECTS, "median"]
    return categories.map(stats).to_numpy(np.float64)


# -- drawn outlines -------------------------------------------------------------------------------------------------

_OUTLINE_SIGNALS = ("self_intersection", "spike", "near_duplicate_vertices", "outside_image", "too_few_points")


def outline_signals(objects: pd.DataFrame) -> pd.DataFrame:
    """The signals of the drawn outlines (``geometry`` column): 0 for objects without one, NaN for unreadable ones.

    A ring's last vertex equal to its first is taken as the ring's explicit closing and dropped before measuring.
    """
    count = len(objects)
    frame = pd.DataFrame(0.0, index=pd.RangeIndex(count, name="object"), columns=list(_OUTLINE_SIGNALS))
    if "geometry" not in objects.columns:
        return frame
    rings = _read_rings(objects)
    if rings.unreadable.size:
        logger.warning("%d object outlines (geometry) are unreadable: not measured", rings.unreadable.size)
        frame.iloc[rings.unreadable] = np.nan
    if rings.empty.size:
        frame.iloc[rings.empty, frame.columns.get_loc("too_few_points")] = 1.0
    if rings.ring_obj.size:
        measured = _measure_rings(rings, objects["width"].to_numpy(np.float64), objects["height"].to_numpy(np.float64))
        for name, (where, values) in measured.items():
            column = frame[name].to_numpy(copy=True)
            column[where] = values
            frame[name] = column
    return frame


class _Rings:
    """Every readable drawn ring of a table, flattened: vertex coordinates, ring lengths, each ring's object; and the
    objects whose outline is unreadable or holds no ring."""

    def __init__(
        self, values: list[float], ring_len: list[int], ring_obj: list[int], bad: list[int], empty: list[int]
    ) -> None:
        self.coords = np.asarray(values, np.float64).reshape(-1, 2)
        self.lengths = np.asarray(ring_len, np.int64)
        self.ring_obj = np.asarray(ring_obj, np.int64)
        self.unreadable = np.asarray(sorted(bad), np.int64)
        self.empty = np.asarray(empty, np.int64)


def _read_rings(objects: pd.DataFrame) -> _Rings:
    """Parse every ``geometry``: a JSON list of flat rings of finite numbers with an even count, else unreadable."""
    parsed: list[tuple[int, list]] = []
    bad: list[int] = []
    empty: list[int] = []
    for position, text in enumerate(objects["geometry"].to_numpy(object)):
        if not isinstance(text, str):
            continue
        try:
            value = json.loads(text)
        except ValueError:
            bad.append(position)
            continue
        if not isinstance(value, list) or not all(isinstance(r, list) and len(r) % 2 == 0 for r in value):
            bad.append(position)
        elif not value:
            empty.append(position)
        else:
            parsed.append((position, value))
    flat = [v for _, rings in parsed for ring in rings for v in ring]
    if not _all_numbers(flat):
        parsed = _numeric_only(parsed, bad)  # rare: find the objects at fault, one by one
        flat = [v for _, rings in parsed for ring in rings for v in ring]
    ring_len = [len(ring) // 2 for _, rings in parsed for ring in rings]
    ring_obj = [position for position, rings in parsed for _ in rings]
    return _Rings(flat, ring_len, ring_obj, bad, empty)


def _numeric_only(parsed: list[tuple[int, list]], bad: list[int]) -> list[tuple[int, list]]:
    """The parsed outlines whose values are all finite numbers; the others' positions go to ``bad``."""
    kept = []
    for position, rings in parsed:
        if _all_numbers([v for ring in rings for v in ring]):
            kept.append((position, rings))
        else:
            bad.append(position)
    return kept


def _all_numbers(values: list) -> bool:
    """True when every value is a finite int or float (JSON numbers; no strings, nulls, booleans alone or lists)."""
    if not values:
        return True
    if any(v is True or v is False for v in values):
        return False
    try:
        array = np.array(values)
    except (ValueError, TypeError):
        return False
    return array.dtype.kind in "iuf" and array.ndim == 1 and bool(np.isfinite(array).all())


def _neighbours(lengths: npt.NDArray[np.int64]) -> tuple[npt.NDArray, npt.NDArray, npt.NDArray]:
    """For flattened rings: each vertex's ring, and the indices of its next and previous vertex (cyclic)."""
    starts = np.cumsum(lengths) - lengths
    ring = np.repeat(np.arange(lengths.size), lengths)
    index = np.arange(int(lengths.sum()))
    local = index - starts[ring]
    nxt = np.where(local == lengths[ring] - 1, starts[ring], index + 1)
    prv = np.where(local == 0, starts[ring] + lengths[ring] - 1, index - 1)
    return ring, nxt, prv


def _per_ring_max(values: npt.NDArray, ring: npt.NDArray, count: int) -> npt.NDArray[np.float64]:
    out = np.zeros(count)
    np.maximum.at(out, ring, values)
    return out


def _measure_rings(rings: _Rings, widths: npt.NDArray, heights: npt.NDArray) -> dict:
    coords, lengths = rings.coords, rings.lengths.copy()
    # drop an explicit closing vertex (last == first)
    starts = np.cumsum(lengths) - lengths
    ends = starts + lengths - 1
    closing = lengths >= 2
    closing[closing] = np.all(coords[starts[closing]] == coords[ends[closing]], axis=1)
    keep = np.ones(len(coords), bool)
    keep[ends[closing]] = False
    coords = coords[keep]
    lengths[closing] -= 1
    count = lengths.size
    ring, nxt, _ = _neighbours(lengths)
    x, y = coords[:, 0], coords[:, 1]
    obj_w, obj_h = widths[rings.ring_obj][ring], heights[rings.ring_obj][ring]
    edge = np.hypot(x[nxt] - x, y[nxt] - y)
    area = np.bincount(ring, weights=x * y[nxt] - x[nxt] * y, minlength=count) / 2.0
    # distinct points per ring
    order = np.lexsort((y, x, ring))
    sx, sy, sr = x[order], y[order], ring[order]
    distinct_flag = np.ones(order.size, bool)
    distinct_flag[1:] = (sr[1:] != sr[:-1]) | (sx[1:] != sx[:-1]) | (sy[1:] != sy[:-1])
    distinct = np.bincount(sr[distinct_flag], minlength=count)
    crossing, repaired = _crossings(coords, lengths, ring, area, distinct >= 3)
    degenerate = (distinct < 3) | (repaired < AREA_EPS)
    outside = np.maximum.reduce([-x, x - obj_w, -y, y - obj_h, np.zeros_like(x)])
    ring_values = {
        "too_few_points": degenerate.astype(np.float64),
        "near_duplicate_vertices": np.bincount(
            ring, weights=np.where(lengths[ring] >= 3, np.clip((0.75 - edge) / 0.5, 0.0, 1.0), 0.0), minlength=count
        ),
        "outside_image": _per_ring_max(outside, ring, count),
        "spike": _spikes(x, y, edge, ring, obj_w, obj_h, count),
        "self_intersection": np.where(degenerate, 0.0, crossing),
    }
    # per object: the worst ring (near-duplicate vertices are summed over the object's rings)
    objects, first = np.unique(rings.ring_obj, return_index=True)
    out = {}
    for name, values in ring_values.items():
        reduce = np.add if name == "near_duplicate_vertices" else np.maximum
        per_object = reduce.reduceat(values, first)
        if name == "near_duplicate_vertices":
            per_object = 1.0 - np.exp(-per_object / 3.0)
        elif name == "outside_image":
            per_object = np.clip((per_object - 1.0) / 9.0, 0.0, 1.0)
        out[name] = (objects, per_object)
    return out


def _spikes(
    x: npt.NDArray,
    y: npt.NDArray,
    edge: npt.NDArray,
    ring: npt.NDArray,
    width: npt.NDArray,
    height: npt.NDArray,
    count: int,
) -> npt.NDArray[np.float64]:
    """Worst spike per ring, after merging runs of vertices closer than 0.5 px (the last of each run is kept)."""
    keep = edge >= 0.5
    kx, ky, kring = x[keep], y[keep], ring[keep]
    kw, kh = width[keep], height[keep]
    lengths = np.bincount(kring, minlength=count)
    _, knxt, kprv = _neighbours(lengths)
    ax, ay = kx[kprv] - kx, ky[kprv] - ky
    bx, by = kx[knxt] - kx, ky[knxt] - ky
    angle = np.degrees(np.arctan2(np.abs(ax * by - ay * bx), ax * bx + ay * by))
    shorter = np.minimum(np.hypot(ax, ay), np.hypot(bx, by))
    sharp = np.clip((25.0 - angle) / 17.0, 0.0, 1.0) * np.clip((shorter - 0.5) / 1.5, 0.0, 1.0)
    inside = (kx > 1.0) & (kx < kw - 1.0) & (ky > 1.0) & (ky < kh - 1.0)
    sharp = np.where(inside & (lengths[kring] >= 3), sharp, 0.0)
    return _per_ring_max(sharp, kring, count)


def _crossings(
    coords: npt.NDArray, lengths: npt.NDArray, ring: npt.NDArray, area: npt.NDArray, usable: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Self-intersection badness per ring, and the ring's area once repaired (its shoelace area when simple).

    A crossing makes the drawn (shoelace) area differ from the area of the repaired polygon (a symmetric bow-tie's
    drawn area is 0); zero-width bridges and touching vertices do not.
    """
    out = np.zeros(lengths.size)
    repaired_area = np.abs(area)
    chosen = np.flatnonzero(usable)
    if chosen.size == 0:
        return out, repaired_area
    vertex_in = usable[ring]
    compact = np.searchsorted(chosen, ring[vertex_in])
    linear = shapely.linearrings(coords[vertex_in], indices=compact)
    crossing = np.flatnonzero(~shapely.is_simple(linear))
    if crossing.size == 0:
        return out, repaired_area
    repaired = shapely.area(shapely.make_valid(shapely.polygons(linear[crossing])))
    repaired_area[chosen[crossing]] = repaired
    drawn = np.abs(area[chosen[crossing]])
    with np.errstate(divide="ignore", invalid="ignore"):
        twisted = np.abs(repaired - drawn) / np.maximum(np.maximum(repaired, drawn), 1e-12)
    badness = np.where(twisted > 1e-6, 0.5 + 0.5 * np.minimum(1.0, twisted / 0.25), 0.0)
    out[chosen[crossing]] = badness
    return out, repaired_area
