"""Consistency signals: how an object sits with the other objects of its image, its class and the known classes.

* ``duplicate`` and ``class_conflict`` compare the objects of one image pair by pair. Candidate pairs come from their
  boxes (an R-tree over every box, images kept apart), and a pair whose best possible overlap (from the box overlap and
  the two areas) cannot fire is dropped before any mask is compared; the rest are compared as RLE (no mask is
  decoded). Crowd regions are never paired, and pairs drawn by two different known annotators are left to the
  agreement signals (two people outlining one object agree, they do not duplicate).
* ``class_shape`` compares an object's shape with its class: robust z-scores (median and MAD) of log area, log
  elongation, solidity, extent and compactness against the same class in the reference when one is given, else in
  this dataset. An object cut by the image border has lost part of its shape, so only its being *larger* than its
  class counts.
* ``border_cut`` is small on purpose: tiles and chips cut objects all the time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from seg.curate.shapes import shape_features
from seg.curate.signals import Signal, SignalFrames
from seg.dataset import rle as coco_rle
from seg.dataset.core import Dataset

logger = logging.getLogger(__name__)

SIGNALS: list[Signal] = [
    Signal(
        "duplicate",
        "consistency",
        "object",
        "duplicate of another object",
        "IoU with an earlier object of the same class in the same image (by the same annotator): 0 at IoU 0.7, 1 from "
        "0.95. The later object of the pair carries it.",
    ),
    Signal(
        "class_conflict",
        "consistency",
        "object",
        "overlaps an object of another class",
        "Overlap with an object of another class, as intersection over the smaller one's area: 0 at 0.3, 1 from 0.8; "
        "both objects carry it.",
    ),
    Signal(
        "unknown_class",
        "consistency",
        "object",
        "unknown class",
        "1 when the class is not among the expected classes (the reference's, or those given); 0 when none are known.",
    ),
    Signal(
        "border_cut",
        "consistency",
        "object",
        "cut at the image border",
        "Share of the object's convex outline lying on the image border, times 0.3, at most 0.15: tiles cut objects "
        "all the time, so this only breaks ties.",
    ),
    Signal(
        "class_shape",
        "consistency",
        "object",
        "shape unlike its class",
        "Largest robust z-score (median and MAD or 10-90 % range) of log area, log elongation, solidity, extent and "
        "compactness against "
        "its class (in the reference when given): 0 up to 3, 1 from 6. For objects cut by the border only a larger "
        "area counts. NaN for classes with fewer than 8 masks.",
    ),
]

#: IoU at which ``duplicate`` starts, and where it reaches 1.
DUPLICATE_IOU = (0.7, 0.95)
#: Intersection over the smaller area at which ``class_conflict`` starts, and where it reaches 1.
CONFLICT_OVERLAP = (0.3, 0.8)
#: ``border_cut``'s badness at its largest, and the border share from which it is reached.
BORDER_CUT_MAX, BORDER_CUT_SHARE = 0.15, 0.5
#: Robust z-score at which ``class_shape`` starts, and where it reaches 1.
SHAPE_Z = (3.0, 6.0)
#: Fewest masks of a class for its shape statistics.
MIN_CLASS_OBJECTS = 8
#: The shape features compared, each with the smallest spread (scaled MAD) used for it: without a floor a class of
#: identical rectangles would make any other shape infinitely far.
SHAPE_SPREAD_FLOOR: dict[str, float] = {
    "log_area": 0.25,
    "log_elongation": 0.1,
    "solidity": 0.06,
    "extent": 0.1,
    "compactness": 0.06,
}
#: Scales from the median absolute deviation, and from the 10-90 % range, to a standard deviation (normal data).
MAD_SCALE, QUANTILE_SCALE = 1.4826, 2.5631


def consistency_signals(
    dataset: Dataset,
    *,
    reference: Dataset | None = None,
    classes: Iterable[str] | None = None,
    shapes: pd.DataFrame | None = None,
) -> SignalFrames:
    """The object-level consistency signals of every object (see :data:`SIGNALS` and the module docstring).

    Args:
        dataset: the annotations.
        reference: the dataset the annotations must blend with: its classes are the known ones and its shapes the
            norm for ``class_shape``.
        classes: the known class names (wins over the reference's for ``unknown_class``).
        shapes: :func:`seg.curate.shapes.shape_features` of ``dataset.objects`` when already computed.

    Returns:
        ``(objects, None)``: one row per object position, one column per signal, values in ``[0, 1]``; NaN where not
        measurable (an unreadable mask; ``class_shape`` of a class too rare to judge).
    """
    objects = dataset.objects
    if shapes is None:
        shapes = shape_features(objects)
    frame = pd.DataFrame(index=pd.RangeIndex(len(objects), name="object"))
    duplicate, conflict = overlap_signals(objects, shapes)
    frame["duplicate"] = duplicate
    frame["class_conflict"] = conflict
    known = list(classes) if classes is not None else reference.category_names if reference is not None else None
    frame["unknown_class"] = unknown_class(objects["category"], known)
    frame["border_cut"] = BORDER_CUT_MAX * np.minimum(1.0, shapes["border_share"].to_numpy() / BORDER_CUT_SHARE)
    norm = None if reference is None else (reference.objects["category"], shape_features(reference.objects))
    frame["class_shape"] = class_shape(objects["category"], shapes, norm)
    return frame, None


def unknown_class(categories: pd.Series, known: Iterable[str] | None) -> npt.NDArray[np.float64]:
    """1 for a category outside ``known``, else 0 (all 0 when ``known`` is None)."""
    if known is None:
        return np.zeros(len(categories))
    return (~categories.isin(set(known))).to_numpy(np.float64)


# -- overlaps -------------------------------------------------------------------------------------------------------


def overlap_signals(
    objects: pd.DataFrame, shapes: pd.DataFrame
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``duplicate`` and ``class_conflict`` of every object (NaN for unreadable masks).

    Args:
        objects: a Dataset's objects table.
        shapes: :func:`seg.curate.shapes.shape_features` of it (boxes and areas).
    """
    count = len(objects)
    measurable = np.isfinite(shapes["area"].to_numpy())
    duplicate = np.where(measurable, 0.0, np.nan)
    conflict = duplicate.copy()
    first, second, box_overlap = _candidate_pairs(objects, shapes)
    if first.size == 0:
        return duplicate, conflict
    area = shapes["area"].to_numpy()
    a, b = area[first], area[second]
    same = objects["category"].to_numpy(object)
    same = same[first] == same[second]
    reachable = np.minimum(box_overlap, np.minimum(a, b))
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = np.where(
            same, reachable / np.maximum(a, b) >= DUPLICATE_IOU[0], reachable / np.minimum(a, b) >= CONFLICT_OVERLAP[0]
        )
    first, second, same, box_overlap = first[keep], second[keep], same[keep], box_overlap[keep]
    if first.size:
        logger.debug("comparing %d overlapping object pairs of %d objects", first.size, count)
    rles = objects["rle"].to_numpy(object)
    heights, widths = objects["height"].to_numpy(np.int64), objects["width"].to_numpy(np.int64)
    for i, j, same_class, boxes in zip(
        first.tolist(), second.tolist(), same.tolist(), box_overlap.tolist(), strict=True
    ):
        if isinstance(rles[i], str) and isinstance(rles[j], str):
            iou = coco_rle.iou(rles[i], rles[j], heights[i], widths[i])
            inter = iou * (area[i] + area[j]) / (1.0 + iou)
        else:  # a box-only object: compare boxes
            inter = min(boxes, area[i], area[j])
            iou = inter / (area[i] + area[j] - inter)
        if same_class:
            duplicate[j] = max(duplicate[j], _ramp(iou, *DUPLICATE_IOU))
        else:
            value = _ramp(inter / min(area[i], area[j]), *CONFLICT_OVERLAP)
            conflict[i] = max(conflict[i], value)
            conflict[j] = max(conflict[j], value)
    return duplicate, conflict


def _ramp(value: float, low: float, high: float) -> float:
    return float(min(1.0, max(0.0, (value - low) / (high - low))))


def _candidate_pairs(
    objects: pd.DataFrame, shapes: pd.DataFrame
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Pairs ``(i, j)``, ``i < j``, of objects of one image whose boxes overlap with a positive area, and that area.

    Crowd regions, empty or unreadable masks and pairs by two different known annotators are left out.
    """
    left, top = shapes["left"].to_numpy(), shapes["top"].to_numpy()
    right, bottom = shapes["right"].to_numpy(), shapes["bottom"].to_numpy()
    usable = np.isfinite(left) & (shapes["area"].to_numpy() > 0) & ~objects["iscrowd"].to_numpy(bool)
    positions = np.flatnonzero(usable)
    empty = np.zeros(0, np.int64)
    if positions.size < 2:
        return empty, empty, np.zeros(0)
    image = pd.factorize(objects["image_id"])[0]
    offset = image * (float(objects["width"].max()) + 2.0)  # images side by side, apart
    boxes = shapely.box(
        left[positions] + offset[positions], top[positions], right[positions] + offset[positions], bottom[positions]
    )
    query, found = shapely.STRtree(boxes).query(boxes, predicate="intersects")
    i, j = positions[query], positions[found]
    ordered = i < j
    i, j = i[ordered], j[ordered]
    overlap = np.clip(np.minimum(right[i], right[j]) - np.maximum(left[i], left[j]), 0, None) * np.clip(
        np.minimum(bottom[i], bottom[j]) - np.maximum(top[i], top[j]), 0, None
    )
    keep = (overlap > 0) & (image[i] == image[j])
    if "annotator" in objects.columns:
        annotator = objects["annotator"].to_numpy(object)
        known = np.array([isinstance(v, str) for v in annotator], bool)
        keep &= ~(known[i] & known[j] & (annotator[i] != annotator[j]))
    order = np.lexsort((j[keep], i[keep]))
    return i[keep][order], j[keep][order], overlap[keep][order]


# -- class shape ----------------------------------------------------------------------------------------------------


def shape_table(shapes: pd.DataFrame) -> pd.DataFrame:
    """The compared features (:data:`SHAPE_SPREAD_FLOOR`) of objects with a non-empty mask (NaN elsewhere)."""
    usable = shapes["has_mask"].to_numpy() & (shapes["area"].to_numpy() > 0)
    table = pd.DataFrame(
        {
            "log_area": np.log(shapes["area"].where(usable)),
            "log_elongation": np.log(shapes["elongation"].where(usable)),
            "solidity": shapes["solidity"].where(usable),
            "extent": shapes["extent"].where(usable),
            "compactness": shapes["compactness"].where(usable),
        },
        index=shapes.index,
    )
    return table


def _class_stats(categories: pd.Series, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per class (with enough masks): the median of each feature and its spread.

    The spread is the largest of the scaled MAD, the 10-90 % range over 2.56 (both estimate a standard deviation on
    normal data; the range stays sane when half a class shares one value, like axis-aligned rectangles whose
    solidity is exactly 1) and the feature's floor (:data:`SHAPE_SPREAD_FLOOR`).
    """
    frame = table.assign(category=categories.to_numpy()).dropna()
    sizes = frame.groupby("category").size()
    frame = frame[frame["category"].isin(sizes.index[sizes >= MIN_CLASS_OBJECTS])]
    grouped = frame.groupby("category")
    median = grouped.median()
    deviation = (frame.drop(columns="category") - median.loc[frame["category"]].to_numpy()).abs()
    mad = deviation.assign(category=frame["category"].to_numpy()).groupby("category").median() * MAD_SCALE
    span = (grouped.quantile(0.9) - grouped.quantile(0.1)) / QUANTILE_SCALE
    floors = pd.DataFrame([SHAPE_SPREAD_FLOOR] * len(median), index=median.index)
    return median, np.maximum(np.maximum(mad, span), floors)


def class_shape(
    categories: pd.Series, shapes: pd.DataFrame, norm: tuple[pd.Series, pd.DataFrame] | None = None
) -> npt.NDArray[np.float64]:
    """``class_shape`` of every object.

    Args:
        categories: each object's class.
        shapes: :func:`seg.curate.shapes.shape_features` of the objects.
        norm: ``(categories, shapes)`` of the reference objects whose classes set the norm; classes it lacks (or
            holds too few of) are judged against this dataset.
    """
    table = shape_table(shapes)
    median, spread = _class_stats(categories, table)
    if norm is not None:
        ref_median, ref_spread = _class_stats(norm[0], shape_table(norm[1]))
        median = pd.concat([ref_median, median[~median.index.isin(ref_median.index)]])
        spread = pd.concat([ref_spread, spread[~spread.index.isin(ref_spread.index)]])
    names = categories.to_numpy()
    known = np.isin(names, median.index.to_numpy())
    z = np.full(table.shape, np.nan)
    if known.any():
        rows = names[known]
        z[known] = (table.to_numpy()[known] - median.loc[rows].to_numpy()) / spread.loc[rows].to_numpy()
    cut = np.nan_to_num(shapes["border_share"].to_numpy(), nan=0.0) > 0
    z[cut, 0] = np.maximum(z[cut, 0], 0.0)  # a cut object may be smaller than its class, not larger
    z[cut, 1:] = 0.0
    with np.errstate(invalid="ignore"):
        largest = np.abs(z).max(axis=1)
    badness = np.clip((largest - SHAPE_Z[0]) / (SHAPE_Z[1] - SHAPE_Z[0]), 0.0, 1.0)
    return np.where(np.isnan(z).any(axis=1), np.nan, badness)
