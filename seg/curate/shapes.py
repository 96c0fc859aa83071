"""Shape measures of object masks, read from their RLE runs without decoding a mask to pixels.

A mask's runs give each column's extent (topmost and bottommost pixel), hence its tight box, its area, the convex
hull of its pixel squares (upper and lower chains reduced to convex ones, all objects at once), the hull's
minimum-area enclosing rectangle (one side on a hull edge) and how much of its outline lies on the image border.
Box-only objects are measured as their box. The geometry and consistency signals are built on these measures.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd

from seg.dataset import rle as coco_rle
from seg.progress import Counted, Progress

logger = logging.getLogger(__name__)

#: Most objects, and most mask columns (box widths), handled together: bounds the memory of the vectorised steps.
CHUNK = 4096
CHUNK_COLUMNS = 1 << 20

_SHAPE_COLUMNS = (
    "left",
    "top",
    "right",
    "bottom",
    "area",
    "border_share",
    "hull_area",
    "hull_perimeter",
    "length",
    "width",
    "thickness",
    "elongation",
    "solidity",
    "extent",
    "compactness",
)


def shape_features(objects: pd.DataFrame, progress: Progress = None) -> pd.DataFrame:
    """Shape measures of every object's mask, from its RLE runs (no mask is decoded).

    The convex hull is that of the mask's pixel squares (pixel corners, so a 1-pixel mask has area 1); its
    minimum-area enclosing rectangle gives ``length`` >= ``width``. Box-only objects are measured as their box.

    Args:
        objects: a Dataset's objects table (``rle``, ``width``, ``height``, the ``bbox_*`` columns).
        progress: wraps the loop over chunks of objects.

    Returns:
        One row per object position: ``has_mask`` (a readable ``rle``), ``left``, ``top``, ``right``, ``bottom`` (the
        tight box, pixel-corner coordinates), ``area`` (pixels), ``border_share`` (part of the convex outline on the
        image border, in [0, 1]), ``hull_area``, ``hull_perimeter``, ``length``, ``width``, ``thickness`` (area /
        length), ``elongation`` (length / width), ``solidity`` (area / hull area), ``extent`` (area / rectangle
        area), ``compactness`` (4 pi area / hull perimeter²). NaN where not measurable: an unreadable ``rle``
        (``has_mask`` False, not box-only) and, for empty masks, everything but ``area``.
    """
    count = len(objects)
    out = {name: np.full(count, np.nan) for name in _SHAPE_COLUMNS}
    has_mask = np.zeros(count, bool)
    rles = objects["rle"].to_numpy(object)
    heights = objects["height"].to_numpy(np.int64)
    widths = objects["width"].to_numpy(np.int64)
    bounds = _chunk_bounds(objects)
    chunks: Iterable[tuple[int, int]] = bounds
    if progress is not None:
        chunks = progress(Counted(bounds, len(bounds)))
    for begin, end in chunks:
        part = _mask_chunk(rles[begin:end], heights[begin:end], widths[begin:end])
        has_mask[begin:end] = part.pop("has_mask")
        for name, values in part.items():
            out[name][begin:end] = values
    box_only = np.array([not isinstance(v, str) for v in rles], bool)
    if box_only.any():
        _box_features(objects, box_only, out)
    frame = pd.DataFrame(out, index=pd.RangeIndex(count, name="object"))
    frame.insert(0, "has_mask", has_mask)
    return frame


def _chunk_bounds(objects: pd.DataFrame) -> list[tuple[int, int]]:
    """Consecutive ``(begin, end)`` object ranges of at most :data:`CHUNK` objects and about :data:`CHUNK_COLUMNS`
    mask columns (an object's column pieces are bounded by its box width plus its number of runs)."""
    widths = objects["bbox_w"].to_numpy(np.float64)
    widths = np.where(np.isfinite(widths), np.clip(widths, 0, objects["width"].to_numpy(np.float64)), 0)
    chars = objects["rle"].map(lambda v: len(v) if isinstance(v, str) else 0).to_numpy(np.float64)
    cost = np.cumsum(widths + chars / 2 + 1)
    bounds, begin = [], 0
    while begin < len(objects):
        base = cost[begin - 1] if begin else 0.0
        end = int(np.searchsorted(cost, base + CHUNK_COLUMNS, side="right"))
        end = min(max(end, begin + 1), begin + CHUNK)
        bounds.append((begin, end))
        begin = end
    return bounds


def _parse(strings: list[str]) -> coco_rle.ParsedStrings:
    """Parse RLE strings; an unparsable string counts as empty (its object is then unreadable)."""
    try:
        return coco_rle.parse_strings(strings)
    except ValueError:
        cleaned = []
        for text in strings:
            try:
                coco_rle.parse_strings([text])
                cleaned.append(text)
            except ValueError:
                cleaned.append("")
        return coco_rle.parse_strings(cleaned)


def _mask_chunk(rles: npt.NDArray, heights: npt.NDArray[np.int64], widths: npt.NDArray[np.int64]) -> dict:
    count = len(rles)
    is_str = np.array([isinstance(v, str) for v in rles], bool)
    parsed = _parse([v if isinstance(v, str) else "" for v in rles])
    runs, owner = parsed.runs, parsed.owner
    cumulative, _ = coco_rle.segmented_cumsum(runs, owner, parsed.first)
    start = cumulative - runs
    total = np.bincount(owner, weights=runs, minlength=count)
    readable = is_str & (total == heights * widths)
    bad = int((is_str & ~readable).sum())
    if bad:
        logger.warning("%d object masks are unreadable (bad RLE or wrong size): their shape is not measured", bad)
    ones = ((parsed.position & 1) == 1) & (runs > 0) & readable[owner]
    begin, length, obj = start[ones], runs[ones], owner[ones]
    height = heights[obj]
    area = np.bincount(obj, weights=length, minlength=count)
    # split runs into column pieces: (object, column, first row, last row)
    first_col, last_col = begin // height, (begin + length - 1) // height
    pieces = last_col - first_col + 1
    run_of = np.repeat(np.arange(begin.size), pieces)
    step = np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    column = first_col[run_of] + step
    h = height[run_of]
    row0 = np.where(step == 0, begin[run_of] - column * h, 0)
    row1 = np.where(column == last_col[run_of], begin[run_of] + length[run_of] - 1 - column * h, h - 1)
    piece_obj = obj[run_of]
    # one group per (object, column): its topmost and bottommost pixel
    new = np.ones(piece_obj.size, bool)
    new[1:] = (piece_obj[1:] != piece_obj[:-1]) | (column[1:] != column[:-1])
    first = np.flatnonzero(new)
    last = np.append(first[1:], piece_obj.size)[: first.size] - 1
    g_obj, g_col, top, bottom = piece_obj[first], column[first], row0[first], row1[last]
    col_pixels = np.add.reduceat(row1 - row0 + 1, first) if first.size else np.zeros(0, np.int64)
    on_border = (
        (top == 0).astype(np.int64)
        + (bottom == heights[g_obj] - 1)
        + np.where(g_col == 0, col_pixels, 0)
        + np.where(g_col == widths[g_obj] - 1, col_pixels, 0)
    )
    border = np.bincount(g_obj, weights=on_border, minlength=count)
    result = {"has_mask": readable, "area": np.where(readable, area, np.nan)}
    result.update(_extremes(g_obj, g_col, top, bottom, count))
    hull = _hull_measures(g_obj, g_col, top, bottom, count)
    filled = readable & (area > 0)
    for name, values in hull.items():
        result[name] = np.where(filled, values, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        result["border_share"] = np.where(filled, np.minimum(1.0, border / hull["hull_perimeter"]), np.nan)
        _ratios(result)
    return result


def _extremes(g_obj: npt.NDArray, g_col: npt.NDArray, top: npt.NDArray, bottom: npt.NDArray, count: int) -> dict:
    """The tight box of each object from its (object, column) extents (NaN for objects without pixels)."""
    out = {name: np.full(count, np.inf) for name in ("left", "top")}
    out.update({name: np.full(count, -np.inf) for name in ("right", "bottom")})
    np.minimum.at(out["left"], g_obj, g_col.astype(np.float64))
    np.minimum.at(out["top"], g_obj, top.astype(np.float64))
    np.maximum.at(out["right"], g_obj, g_col + 1.0)
    np.maximum.at(out["bottom"], g_obj, bottom + 1.0)
    return {name: np.where(np.isfinite(values), values, np.nan) for name, values in out.items()}


def _hull_measures(
    g_obj: npt.NDArray, g_col: npt.NDArray, top: npt.NDArray, bottom: npt.NDArray, count: int
) -> dict[str, npt.NDArray[np.float64]]:
    """Hull area and perimeter and the minimum-area rectangle's sides, from each (object, column) extent.

    The hull's upper chain comes from the columns' tops, its lower chain from their bottoms (pixel corners), each
    reduced to a convex chain by removing reflex vertices, all objects at once.
    """
    out = {name: np.full(count, np.nan) for name in ("hull_area", "hull_perimeter", "length", "width")}
    if g_obj.size == 0:
        return out
    # only a column whose top (bottom) beats every column on one side can hold a hull vertex
    upper = (top < _running(top, g_obj, np.minimum, False)) | (top < _running(top, g_obj, np.minimum, True))
    lower = (bottom > _running(bottom, g_obj, np.maximum, False)) | (bottom > _running(bottom, g_obj, np.maximum, True))
    ux, uy, uo = _chain_points(g_obj[upper], g_col[upper], top[upper], 1)
    lx, ly, lo = _chain_points(g_obj[lower], g_col[lower], bottom[lower] + 1, -1)
    # the hull polygon: upper chain left to right, then lower chain right to left
    owner = np.concatenate([uo, lo[::-1]])
    order = np.argsort(owner, kind="stable")
    x = np.concatenate([ux, lx[::-1]])[order].astype(np.float64)
    y = np.concatenate([uy, ly[::-1]])[order].astype(np.float64)
    owner = owner[order]
    present, first, sizes = np.unique(owner, return_index=True, return_counts=True)
    nxt = np.arange(x.size) + 1
    nxt[first + sizes - 1] = first
    dx, dy = x[nxt] - x, y[nxt] - y
    out["hull_area"][present] = np.abs(np.add.reduceat(x * y[nxt] - x[nxt] * y, first)) / 2.0
    out["hull_perimeter"][present] = np.add.reduceat(np.hypot(dx, dy), first)
    length, width = _min_area_rectangles(x, y, dx, dy, first, sizes)
    out["length"][present] = length
    out["width"][present] = width
    return out


def _chain_points(
    obj: npt.NDArray[np.int64], col: npt.NDArray[np.int64], row: npt.NDArray[np.int64], sign: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The convex chain (upper for ``sign`` 1, lower for -1) over the corners ``(col, row)`` and ``(col + 1, row)``
    of each column, sorted by object then x.

    Reflex (or straight) vertices lie on or under the segment joining their neighbours, so they are not hull
    vertices; removing all of them at once, again until none is left, leaves the hull's chain (exact integers).
    """
    # columns come sorted by object then column, so their corners are sorted by x; a shared x (the right corner of
    # one column, the left corner of the next) keeps the higher (upper chain) or lower (lower chain) point
    x = np.stack([col, col + 1], axis=1).ravel()
    y = np.stack([row, row], axis=1).ravel()
    o = np.stack([obj, obj], axis=1).ravel()
    shared = np.flatnonzero((o[1:] == o[:-1]) & (x[1:] == x[:-1]))
    y[shared] = sign * np.minimum(sign * y[shared], sign * y[shared + 1])
    keep = np.ones(x.size, bool)
    keep[shared + 1] = False
    x, y, o = x[keep], y[keep], o[keep]
    done: list[tuple[npt.NDArray, npt.NDArray, npt.NDArray]] = []
    while x.size:
        inner = np.zeros(x.size, bool)
        inner[1:-1] = (o[1:-1] == o[:-2]) & (o[1:-1] == o[2:])
        cross = np.zeros(x.size, x.dtype)
        cross[1:-1] = (x[1:-1] - x[:-2]) * (y[2:] - y[1:-1]) - (y[1:-1] - y[:-2]) * (x[2:] - x[1:-1])
        reflex = inner & (sign * cross <= 0)
        changed = np.zeros(int(o.max()) + 1, bool)
        changed[o[reflex]] = True
        active = changed[o]
        done.append((x[~active], y[~active], o[~active]))  # objects without a reflex vertex are finished
        keep = active & ~reflex
        x, y, o = x[keep], y[keep], o[keep]
    if not done:
        return x, y, o
    x, y, o = (np.concatenate(parts) for parts in zip(*done, strict=True))
    order = np.argsort(o, kind="stable")
    return x[order], y[order], o[order]


#: Most (edge, vertex) pairs measured at once when fitting rectangles.
_PAIR_BATCH = 1 << 21


def _min_area_rectangles(
    x: npt.NDArray, y: npt.NDArray, dx: npt.NDArray, dy: npt.NDArray, first: npt.NDArray, sizes: npt.NDArray
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Long and short side of each hull's minimum-area enclosing rectangle (one of its sides lies on a hull edge).

    Hull ``k`` has vertices ``first[k] : first[k] + sizes[k]`` and edges ``(dx, dy)`` from each vertex to the next.
    """
    norm = np.hypot(dx, dy)
    ux, uy = dx / np.maximum(norm, 1e-12), dy / np.maximum(norm, 1e-12)
    long_side, short_side = np.zeros(first.size), np.zeros(first.size)
    pairs = sizes.astype(np.int64) ** 2
    batch = (np.cumsum(pairs) - 1) // _PAIR_BATCH
    for lo, hi in _runs_of(batch):
        hulls = np.arange(lo, hi)
        edges = np.arange(first[lo], first[hi - 1] + sizes[hi - 1])
        edge_hull = np.repeat(hulls, sizes[hulls])
        reps = sizes[edge_hull]
        edge = np.repeat(edges, reps)
        vertex = first[np.repeat(edge_hull, reps)] + np.arange(edge.size) - np.repeat(np.cumsum(reps) - reps, reps)
        along = x[vertex] * ux[edge] + y[vertex] * uy[edge]
        across = y[vertex] * ux[edge] - x[vertex] * uy[edge]
        starts = np.cumsum(reps) - reps
        extent_a = np.maximum.reduceat(along, starts) - np.minimum.reduceat(along, starts)
        extent_b = np.maximum.reduceat(across, starts) - np.minimum.reduceat(across, starts)
        area = np.where(norm[edges] > 0, extent_a * extent_b, np.inf)
        best = np.lexsort((area, edge_hull))
        pick = best[np.r_[True, edge_hull[best][1:] != edge_hull[best][:-1]]]
        long_side[edge_hull[pick]] = np.maximum(extent_a[pick], extent_b[pick])
        short_side[edge_hull[pick]] = np.minimum(extent_a[pick], extent_b[pick])
    return long_side, short_side


def _runs_of(values: npt.NDArray) -> list[tuple[int, int]]:
    """``(begin, end)`` of each run of equal consecutive values."""
    if values.size == 0:
        return []
    cuts = np.flatnonzero(values[1:] != values[:-1]) + 1
    bounds = np.concatenate([[0], cuts, [values.size]])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def _running(
    values: npt.NDArray[np.int64], segment: npt.NDArray[np.int64], op: np.ufunc, reverse: bool
) -> npt.NDArray[np.float64]:
    """The ``op`` (minimum or maximum) of the values strictly before each one (after, with ``reverse``) in its
    segment (``segment`` sorted), infinite where there is none."""
    if reverse:
        return _running(values[::-1], segment[-1] - segment[::-1], op, False)[::-1]
    big = int(values.max() - values.min()) + 1 if values.size else 1
    sign = -1 if op is np.minimum else 1
    running = op.accumulate(values + sign * segment * big) - sign * segment * big
    before = np.empty(values.size, np.float64)
    before[1:] = running[:-1]
    start = np.ones(values.size, bool)
    start[1:] = segment[1:] != segment[:-1]
    before[start] = np.inf if op is np.minimum else -np.inf
    return before


def _ratios(result: dict) -> None:
    """Derived ratios from area, hull and rectangle (in place; NaN propagates)."""
    area, length, width = result["area"], result["length"], result["width"]
    result["thickness"] = area / length
    result["elongation"] = length / np.maximum(width, 1.0)
    result["solidity"] = np.minimum(1.0, area / result["hull_area"])
    result["extent"] = np.minimum(1.0, area / (length * width))
    result["compactness"] = np.minimum(1.0, 4.0 * math.pi * area / result["hull_perimeter"] ** 2)


def _box_features(objects: pd.DataFrame, box_only: npt.NDArray[np.bool_], out: dict) -> None:
    """Box-only objects measured as their box (clipped to the image)."""
    rows = objects.loc[box_only]
    width, height = rows["width"].to_numpy(np.float64), rows["height"].to_numpy(np.float64)
    x0 = np.clip(rows["bbox_x"].to_numpy(np.float64), 0, width)
    y0 = np.clip(rows["bbox_y"].to_numpy(np.float64), 0, height)
    x1 = np.clip(rows["bbox_x"].to_numpy(np.float64) + rows["bbox_w"].to_numpy(np.float64), 0, width)
    y1 = np.clip(rows["bbox_y"].to_numpy(np.float64) + rows["bbox_h"].to_numpy(np.float64), 0, height)
    w, h = x1 - x0, y1 - y0
    area = w * h
    perimeter = 2 * (w + h)
    border = (x0 <= 0) * h + (x1 >= width) * h + (y0 <= 0) * w + (y1 >= height) * w
    with np.errstate(divide="ignore", invalid="ignore"):
        part = {
            "left": x0,
            "top": y0,
            "right": x1,
            "bottom": y1,
            "area": area,
            "hull_area": np.where(area > 0, area, np.nan),
            "hull_perimeter": np.where(area > 0, perimeter, np.nan),
            "length": np.where(area > 0, np.maximum(w, h), np.nan),
            "width": np.where(area > 0, np.minimum(w, h), np.nan),
        }
        part["border_share"] = np.minimum(1.0, border / part["hull_perimeter"])
        _ratios(part)
    for name, values in part.items():
        out[name][box_only] = values
