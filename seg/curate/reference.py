"""Fit to the reference: how each image sits among the reference's images (the open dataset to blend with).

Per image, :func:`image_features` measures: the object count and per-class counts, the typical object size (geometric
mean), the coverage (pixels under any object), the shape complexity of the masks (perimeter over the square root of
the area) and, for polygon annotations, the vertex density, and the image's colour (mean and spread per channel, from
:func:`seg.curate.quality.image_statistics`). Object sizes and shapes are taken from the objects that do not touch
the image border when there are any (tiles cut buildings and roads at their edges; those cuts say nothing about the
annotation). Everything is computed from the RLE run lengths of all objects at once, without decoding a mask.

:func:`reference_signals` compares each feature with the same feature of the reference's images (or of the dataset's
own images when no reference is given) as a robust z-score, ``(x - median) / max(1.4826 * MAD, floor)``, and maps
``|z|`` to badness: 0 up to 1.5, 0.5 at 3, 1 from 6 on. Each signal is the worst of its family's features. Counts,
sizes and coverage are compared in log scale among images that have objects; an image without objects is judged by how
common such images are in the reference (1 when none is empty, 0 when at least 10 % are).
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
import numpy.typing as npt
import pandas as pd

from seg.curate.signals import Signal, SignalFrames
from seg.dataset.core import Dataset
from seg.dataset.rle import ParsedStrings, parse_strings, segmented_cumsum

logger = logging.getLogger(__name__)

SIGNALS: list[Signal] = [
    Signal(
        "count_fit",
        "reference",
        "image",
        "object count unlike the reference",
        "Robust z-scores of the log object count and of each common class's log(1 + count) against the reference's "
        "images (|z| 3 -> 0.5, 6 -> 1); an image without objects scores by how rare such images are there (1 when "
        "none is empty, 0 when 10 % are).",
    ),
    Signal(
        "size_fit",
        "reference",
        "image",
        "object sizes unlike the reference",
        "Robust z-score of the mean log object area (as a fraction of the image; objects clear of the border) "
        "against the reference's images (|z| 3 -> 0.5, 6 -> 1).",
    ),
    Signal(
        "coverage_fit",
        "reference",
        "image",
        "annotated area unlike the reference",
        "Robust z-score of the log fraction of pixels under any object against the reference's images "
        "(|z| 3 -> 0.5, 6 -> 1).",
    ),
    Signal(
        "complexity_fit",
        "reference",
        "image",
        "outlines unlike the reference",
        "Robust z-scores of the median mask compactness (perimeter / (4 sqrt(area)): 1 for a square, more for jagged "
        "or thin shapes) and, for polygons, of the vertices per pixel of perimeter, against the reference's images "
        "(|z| 3 -> 0.5, 6 -> 1).",
    ),
    Signal(
        "colour_fit",
        "reference",
        "image",
        "colours unlike the reference",
        "Robust z-scores of the mean and the log standard deviation of each colour channel against the reference's "
        "images (|z| 3 -> 0.5, 6 -> 1); NaN for unreadable images.",
    ),
]

#: Feature families: signal name -> feature column prefixes in :func:`image_features`.
FAMILIES: dict[str, tuple[str, ...]] = {
    "count_fit": ("count",),
    "size_fit": ("size",),
    "coverage_fit": ("coverage",),
    "complexity_fit": ("compactness", "vertices"),
    "colour_fit": ("mean_", "log_std_"),
}
#: Smallest robust scale per feature prefix (in the feature's units): keeps a homogeneous reference from calling
#: ordinary variation an outlier.
FLOORS: dict[str, float] = {
    "count": 0.25,
    "size": 0.25,
    "coverage": 0.2,
    "compactness": 0.04,
    "vertices": 0.2,
    "mean_": 5.0,
    "log_std_": 0.1,
}
#: Objects smaller than this (pixels) have no meaningful shape.
MIN_SHAPE_AREA = 16
#: Objects measured at once (whole images per chunk): bounds the memory of the run-length measures.
CHUNK = 8_000
#: Images without objects are normal when at least this fraction of the reference's images has none.
NORMAL_EMPTY = 0.1
_COLOURS = ("r", "g", "b")


def reference_signals(
    dataset: Dataset,
    *,
    reference: Dataset | None = None,
    statistics: pd.DataFrame | None = None,
    reference_statistics: pd.DataFrame | None = None,
) -> SignalFrames:
    """Image-level fit to the reference (see :data:`SIGNALS`).

    Args:
        dataset: the images to score.
        reference: the open dataset to compare with; None compares the dataset with itself.
        statistics: :func:`seg.curate.quality.image_statistics` of ``dataset`` (colour features); read here when
            None.
        reference_statistics: the same for ``reference``.

    Returns:
        ``(None, images)``: one row per image indexed by ``image_id``, one column per signal in [0, 1] or NaN.
    """
    from seg.curate.quality import image_statistics

    if statistics is None:
        statistics = image_statistics(dataset)
    features = image_features(dataset, statistics)
    if reference is None:
        base = features
        empty_share = _empty_share(features["empty"].to_numpy(bool))
    else:
        if reference_statistics is None:
            reference_statistics = image_statistics(reference)
        base = image_features(reference, reference_statistics)
        share = float(base["empty"].mean()) if len(base) else math.nan
        empty_share = np.full(len(features), share)
    out = pd.DataFrame(index=features.index, columns=[s.name for s in SIGNALS], dtype=float)
    for name, prefixes in FAMILIES.items():
        columns = [c for c in features.columns if c.startswith(prefixes) and c in base.columns]
        if name == "count_fit":
            columns = [c for c in columns if c == "count" or _common_class(base[c])]
        badness = [_badness(features[c], base[c], _floor(c)) for c in columns]
        out[name] = np.nan if not badness else _nanmax(badness)
    empty = features["empty"].to_numpy(bool)
    out.loc[empty, "count_fit"] = 1.0 - np.clip(empty_share[empty] / NORMAL_EMPTY, 0.0, 1.0)
    return None, out


def image_features(dataset: Dataset, statistics: pd.DataFrame | None = None) -> pd.DataFrame:
    """The features the reference signals compare, one row per image indexed by ``image_id``.

    Columns: ``empty`` (no objects), ``count`` (log objects), ``count:<class>`` (log(1 + objects of the class)),
    ``size`` (mean log area fraction), ``coverage`` (log fraction under any object), ``compactness`` (log median
    perimeter / (4 sqrt(area))), ``vertices`` (log median polygon vertices per pixel of perimeter), and, when
    ``statistics`` is given, ``mean_r/g/b`` and ``log_std_r/g/b``. Counts, sizes, coverage and shapes are NaN for
    images without objects; shapes are NaN where no object has a mask of at least :data:`MIN_SHAPE_AREA` pixels.
    """
    images, objects = dataset.images, dataset.objects
    ids = pd.Index(images["image_id"].astype(str).to_numpy(), name="image_id")
    position = pd.Series(np.arange(len(ids)), index=ids)
    image_of = position.reindex(objects["image_id"].astype(str)).to_numpy(np.int64)
    counts = np.bincount(image_of, minlength=len(ids))
    empty = counts == 0
    frame = pd.DataFrame({"empty": empty}, index=ids)
    with np.errstate(divide="ignore"):
        frame["count"] = np.where(empty, np.nan, np.log(counts))
        for name in dataset.category_names:
            per_class = np.bincount(image_of[(objects["category"] == name).to_numpy()], minlength=len(ids))
            frame[f"count:{name}"] = np.where(empty, np.nan, np.log1p(per_class))

    width = objects["width"].to_numpy(np.int64)
    height = objects["height"].to_numpy(np.int64)
    area = objects["area"].to_numpy(float)
    pixels = (width * height).astype(float)
    interior = _interior(objects)
    perimeter, covered = _run_measures(objects, image_of, len(ids))
    log_area = np.log(np.maximum(area, 1.0) / pixels)
    frame["size"] = _per_image(log_area, image_of, interior, len(ids), how="mean")
    image_pixels = (images["width"].to_numpy(np.int64) * images["height"].to_numpy(np.int64)).astype(float)
    coverage = np.clip(covered / image_pixels, 1e-4, 1.0)
    frame["coverage"] = np.where(empty, np.nan, np.log(coverage))
    shaped = np.isfinite(perimeter) & (area >= MIN_SHAPE_AREA)
    with np.errstate(invalid="ignore", divide="ignore"):
        compactness = np.log(perimeter / (4.0 * np.sqrt(area)))
    frame["compactness"] = _per_image(compactness, image_of, interior & shaped, len(ids), fallback=shaped)
    if "geometry" in objects.columns:
        geometry = objects["geometry"]
        polygon = geometry.notna().to_numpy() & shaped
        vertices = np.full(len(objects), np.nan)
        if polygon.any():
            vertices[polygon] = (geometry[polygon].str.count(",").to_numpy(float) + 1.0) / 2.0
        with np.errstate(invalid="ignore", divide="ignore"):
            density = np.log(vertices / perimeter)
        frame["vertices"] = _per_image(density, image_of, interior & polygon, len(ids), fallback=polygon)
    if statistics is not None:
        stats = statistics.reindex(ids)
        for colour in _COLOURS:
            frame[f"mean_{colour}"] = stats[f"mean_{colour}"].to_numpy(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                frame[f"log_std_{colour}"] = np.log(np.maximum(stats[f"std_{colour}"].to_numpy(float), 0.5))
    return frame


# -- run-length measures ---------------------------------------------------------------------------------------------


def _run_measures(
    objects: pd.DataFrame, image_of: npt.NDArray[np.int64], image_count: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Perimeter of every object's mask (NaN for box-only objects and broken RLEs), and the number of pixels under any
    object of each image (box-only objects add their box area).

    The perimeter is Crofton's estimate from the boundary crossings along rows, columns and both diagonals,
    ``pi / 8 * (rows + columns + (diagonals + antidiagonals) / sqrt(2))``: within a few percent of the true length
    and nearly the same for a shape at any rotation (counting pixel edges would make a 45-degree square 41 % longer).
    """
    count = len(objects)
    perimeter = np.full(count, np.nan)
    covered = np.zeros(image_count)
    # chunks of whole images (objects are grouped by image), so that memory does not grow with the dataset
    cuts = [0]
    while cuts[-1] < count:
        cut = min(cuts[-1] + CHUNK, count)
        while 0 < cut < count and image_of[cut] == image_of[cut - 1]:
            cut += 1
        cuts.append(cut)
    for lo, hi in itertools.pairwise(cuts):
        part = objects.iloc[lo:hi]
        perimeter[lo:hi] = _chunk_measures(part, image_of[lo:hi], image_count, covered)
    return perimeter, covered


def _chunk_measures(
    objects: pd.DataFrame, image_of: npt.NDArray[np.int64], image_count: int, covered: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """:func:`_run_measures` for some objects: returns their perimeters and adds their coverage to ``covered``."""
    count = len(objects)
    perimeter = np.full(count, np.nan)
    rle = objects["rle"]
    has = np.flatnonzero(rle.notna().to_numpy())
    boxes = np.setdiff1d(np.arange(count), has)
    if boxes.size:
        box_area = objects["bbox_w"].to_numpy(float)[boxes] * objects["bbox_h"].to_numpy(float)[boxes]
        covered += np.bincount(image_of[boxes], weights=box_area, minlength=image_count)
    has, parsed = _parse(rle.to_numpy(object), has)
    if has.size == 0:
        return perimeter
    heights = objects["height"].to_numpy(np.int64)[has]
    sizes = heights * objects["width"].to_numpy(np.int64)[has]
    ends, _ = segmented_cumsum(parsed.runs, parsed.owner, parsed.first)
    totals = np.bincount(parsed.owner, weights=parsed.runs, minlength=has.size)
    good = totals == sizes  # a string whose runs do not fill its image is left out
    ones = ((parsed.position & 1) == 1) & (parsed.runs > 0) & good[parsed.owner]
    owner, end = parsed.owner[ones], ends[ones]
    start = end - parsed.runs[ones]
    covered += _measure(image_of[has][owner], start, end, 1, image_count)
    crossings = _crossings(owner, start, end, heights, has.size)
    perimeter[has[good]] = (math.pi / 8.0 * crossings)[good]
    return perimeter


def _crossings(
    owner: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    heights: npt.NDArray[np.int64],
    owner_count: int,
) -> npt.NDArray[np.float64]:
    """Per mask, boundary crossings along columns + rows + (both diagonals) / sqrt(2), from its runs of ones
    (column-major ``[start, end)``, in order).

    Every pixel of the mask whose neighbour in a direction is not set is one crossing of each line in that direction
    (and of the opposite one): crossings = 2 * (area - pixels whose neighbour is set). Masks that have at most one
    run per column (convex shapes, most objects) pair each column with the next directly; the others go through a
    sort of the runs and their shifted copies.
    """
    # cut the runs into pieces that stay in one column: rows [top, bottom) of column col
    height = heights[owner]
    first_col, last_col = start // height, (end - 1) // height
    spans = last_col - first_col + 1
    if (spans > 1).any():
        run = np.repeat(np.arange(start.size), spans)
        col = first_col[run] + np.arange(run.size) - np.repeat(np.cumsum(spans) - spans, spans)
        owner, height = owner[run], height[run]
        start, end = np.maximum(start[run], col * height), np.minimum(end[run], (col + 1) * height)
    else:
        col = first_col
    top, bottom = start - col * height, end - col * height
    area = _sum_by(owner, bottom - top, owner_count)
    total = 2.0 * np.bincount(owner, minlength=owner_count)  # along columns: each piece is entered and left once
    # neighbours set to the left, upper-left and lower-left, found by pairing consecutive pieces
    same = owner[1:] == owner[:-1]
    crowded = np.zeros(owner_count, bool)
    crowded[owner[1:][same & (col[1:] == col[:-1])]] = True
    pair = np.flatnonzero(same & (col[1:] == col[:-1] + 1) & ~crowded[owner[1:]])
    a0, a1, b0, b1 = top[pair], bottom[pair], top[pair + 1], bottom[pair + 1]
    h, who = height[pair], owner[pair]
    shared = []
    for lo, hi in ((a0, a1), (a0 + 1, np.minimum(a1 + 1, h)), (np.maximum(a0 - 1, 0), a1 - 1)):
        both = np.clip(np.minimum(hi, b1) - np.maximum(lo, b0), 0, None)
        shared.append(_sum_by(who, both, owner_count))
    slow = crowded[owner]
    if slow.any():
        o, s, e, c, hh = owner[slow], start[slow], end[slow], col[slow], height[slow]
        moves = ((s + hh, e + hh), (s + hh + 1, np.minimum(e + hh + 1, (c + 2) * hh)))
        moves += ((np.maximum(s + hh - 1, (c + 1) * hh), e + hh - 1),)
        for k, (moved_start, moved_end) in enumerate(moves):
            keep = moved_end > moved_start
            groups = np.concatenate((o, o[keep]))
            starts, ends = np.concatenate((s, moved_start[keep])), np.concatenate((e, moved_end[keep]))
            shared[k] += _measure(groups, starts, ends, 2, owner_count)
    rows, diagonal, antidiagonal = (2.0 * area - 2.0 * x for x in shared)
    return total + rows + (diagonal + antidiagonal) / math.sqrt(2.0)


def _parse(
    strings: npt.NDArray[np.object_], rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], ParsedStrings]:
    """Parse the RLE strings of ``rows``; when one is broken, each is tried alone and the broken ones are left out."""
    try:
        return rows, parse_strings(strings[rows].tolist())
    except ValueError:
        pass
    keep = []
    for row in rows:
        try:
            parse_strings([strings[row]])
            keep.append(row)
        except ValueError:
            logger.warning("object %d: unreadable RLE string, left out of the reference features", row)
    rows = np.asarray(keep, np.int64)
    return rows, parse_strings(strings[rows].tolist())


def _measure(
    group: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    depth: int,
    group_count: int,
) -> npt.NDArray[np.float64]:
    """Per group, the length covered by at least ``depth`` of the half-open intervals ``[start, end)``."""
    positions = np.concatenate((start, end))
    steps = np.concatenate((np.ones(start.size, np.int64), -np.ones(end.size, np.int64)))
    groups = np.concatenate((group, group))
    span = 2 * int(positions.max(initial=0)) + 2
    if group_count * span < 2**62:
        # one integer key (group, position, ends before starts); the stable sort merges presorted stretches fast
        order = np.argsort(groups * span + 2 * positions + (steps > 0), kind="stable")
    else:
        order = np.lexsort((steps, positions, groups))
    positions, steps, groups = positions[order], steps[order], groups[order]
    level = np.cumsum(steps)
    lengths = np.diff(positions)
    inside = level[:-1] >= depth  # the level after an event holds until the next one (0 between groups)
    return _sum_by(groups[:-1][inside], lengths[inside], group_count)


def _sum_by(groups: npt.NDArray[np.int64], values: npt.NDArray, count: int) -> npt.NDArray[np.float64]:
    """Sum of ``values`` per group ``0..count-1`` (float, also when there are no values)."""
    return np.bincount(groups, weights=values, minlength=count).astype(np.float64, copy=False)


# -- per-image aggregation and scoring -------------------------------------------------------------------------------


def _interior(objects: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Objects whose box stays at least one pixel clear of every image border."""
    x, y = objects["bbox_x"].to_numpy(float), objects["bbox_y"].to_numpy(float)
    right = x + objects["bbox_w"].to_numpy(float)
    bottom = y + objects["bbox_h"].to_numpy(float)
    return (
        (x >= 1) & (y >= 1) & (right <= objects["width"].to_numpy() - 1) & (bottom <= objects["height"].to_numpy() - 1)
    )


def _per_image(
    values: npt.NDArray[np.float64],
    image_of: npt.NDArray[np.int64],
    preferred: npt.NDArray[np.bool_],
    image_count: int,
    fallback: npt.NDArray[np.bool_] | None = None,
    how: str = "median",
) -> npt.NDArray[np.float64]:
    """Median (or mean) of ``values`` per image over the preferred objects, else over the fallback ones (default:
    all)."""
    finite = np.isfinite(values)
    fallback = finite if fallback is None else fallback & finite
    out = np.full(image_count, np.nan)
    for chosen in (fallback, preferred & finite):  # the preferred median overwrites the fallback where it exists
        if chosen.any():
            summary = pd.Series(values[chosen]).groupby(image_of[chosen]).agg(how)
            out[summary.index.to_numpy()] = summary.to_numpy()
    return out


def _floor(column: str) -> float:
    for prefix, floor in FLOORS.items():
        if column.startswith(prefix):
            return floor
    raise KeyError(column)


def _common_class(values: pd.Series) -> bool:
    """A class present (median count at least 1) in the reference's images that have objects."""
    finite = values.dropna()
    return len(finite) > 0 and float(finite.median()) >= math.log(2.0)


def _badness(values: pd.Series, base: pd.Series, floor: float) -> npt.NDArray[np.float64]:
    """Robust z-score of ``values`` against ``base``, mapped to [0, 1] (NaN when fewer than 3 base values)."""
    reference = base.to_numpy(float)
    reference = reference[np.isfinite(reference)]
    if reference.size < 3:
        return np.full(len(values), np.nan)
    median = float(np.median(reference))
    scale = max(1.4826 * float(np.median(np.abs(reference - median))), floor)
    z = np.abs(values.to_numpy(float) - median) / scale
    return np.interp(z, [1.5, 3.0, 6.0], [0.0, 0.5, 1.0])


def _nanmax(arrays: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    stacked = np.vstack(arrays)
    out = np.full(stacked.shape[1], np.nan)
    measured = np.isfinite(stacked).any(axis=0)
    out[measured] = np.nanmax(stacked[:, measured], axis=0)
    return out


def _empty_share(empty: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Per image, the fraction of the other images that have no objects."""
    count = empty.size
    if count <= 1:
        return np.full(count, math.nan)
    return (float(empty.sum()) - empty.astype(float)) / (count - 1)
