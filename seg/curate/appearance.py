"""Agreement with a pixel appearance model trained out-of-fold on the dataset itself (cleanlab's idea, for masks).

The model. Every image is seen on a 128 x 128 grid (:data:`GRID`; a 256 x 256 tile gives one point per 2 x 2 block):
a point's feature is the mean colour of its block quantized to 16 levels per channel (4,096 bins), its label the
class of the objects covering the block's centre pixel, or background when none does. Per label, the training images
give a histogram of bins; the probability of label ``l`` at a point of bin ``b`` is the smoothed posterior
``(n[l, b] + a * prior[l]) / (sum_l n[l, b] + a)`` (naive Bayes on one feature, Dirichlet smoothing towards the label
frequencies). Images are split into ``folds`` folds by a seeded permutation; each image is judged by the model fitted
on the other folds, so no image grades itself. Fitting is a sum of histograms, prediction a table lookup; images are
handled in batches of :data:`BATCH` with vectorised run arithmetic on the RLE masks (no mask is decoded).

Signals (group ``agreement``):

- ``self_confidence`` (object): the mean probability of each class over the object. The rival is the other class
  that wins most of the object's points (background and the annotated class aside); the badness is the margin by
  which the rival beats the annotated class, over the rival's typical confidence on its own objects (the median,
  cleanlab's per-class threshold): 0 up to 0.75 of it (:data:`SELF_FLOOR`), 1 from 1. Background is no rival: a
  colour model cannot tell a beige roof from sand, so objects that merely look like ground are not punished here.
- ``misaligned`` (object): the mean probability of the object's class over its mask and over the mask moved by up to
  a third of its box side (only moves that keep it inside the image, so objects cut at the border are judged fairly;
  searched on a step-2 grid, then refined). When a move raises it, part of the mask lies off what it outlines; the
  badness is that gain over the class's typical confidence: 0 below 10 % (:data:`ALIGN_FLOOR`), 1 from 25 %, and 0
  unless the moved mask fits at least half as well as the class's typical object (else the move only found a
  neighbour).
- Both judge objects of at least 64 px and 16 grid points (:data:`MIN_AREA`); smaller ones are NaN.
- ``missing_objects`` (image): connected regions of 2 x 2-point blocks whose mean probability of a class is at least
  0.5, not within one block of an annotation of that class (box-only objects count by their box), each counted when
  at least as large as the class's small objects (10th percentile of area). Badness ``1 - exp(-A / m)``, ``A`` the
  regions' pixel area and ``m`` the class's median object area: one missed median-sized object gives 0.63.

Not measured (NaN): the objects and the image when the image cannot be read (missing, corrupt, a decompression bomb)
or differs in size from its annotation; box-only objects, broken or empty masks; objects of a class the other folds
never show; ``self_confidence`` when there is no other class. Memory: one batch, and the batches kept between the
two passes up to :data:`FEATURE_CACHE_BYTES` (the images of the others are read again), whatever the dataset's size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from seg.curate.signals import Signal, SignalFrames
from seg.dataset import rle as coco_rle
from seg.dataset.core import Dataset
from seg.dataset.images import image_size
from seg.errors import ImageError, OptionError, SegError
from seg.progress import Counted, Progress

logger = logging.getLogger(__name__)

SIGNALS: list[Signal] = [
    Signal(
        "self_confidence",
        "agreement",
        "object",
        "looks like another class",
        "An appearance model trained on the other images gives each pixel class probabilities; the badness is how far "
        "another class outscores the annotated one over the object, relative to that class's typical confidence "
        "(0 up to 0.75 of it, 1 from 1).",
    ),
    Signal(
        "misaligned",
        "agreement",
        "object",
        "mask off its object",
        "The mask moved by a few pixels fits its class's appearance better than where it lies; the badness is the "
        "share of the object the move recovers (0 below 10 %, 1 from 25 %).",
    ),
    Signal(
        "missing_objects",
        "agreement",
        "image",
        "unannotated object",
        "Regions that the appearance model confidently assigns to a class but no annotation of that class covers, at "
        "least as large as the class's small objects; 1 - exp(-area / median object area).",
    ),
]

#: Every image is judged on a GRID x GRID grid of points (a 256 x 256 tile: one point per 2 x 2 block); a point
#: takes the mean colour of its block and the mask value of the pixel at the block's centre.
GRID = 128
POINTS = GRID * GRID
#: Bits kept per colour channel: 16 levels, so the model has 4,096 colour bins.
LEVEL_BITS = 4
BINS = 1 << (3 * LEVEL_BITS)
#: Dirichlet smoothing mass towards the label frequencies, in grid points.
SMOOTHING = 1.0
#: Probability from which a point counts as confidently of a class.
CONFIDENT = 0.5
#: An unannotated region counts from this share of the class's small objects' area (its 10th percentile) on, and from
#: :data:`MIN_REGION` pixels.
SMALL_SHARE, MIN_REGION = 1.0, 16
#: Smallest object judged by ``self_confidence`` and ``misaligned``: pixels, and grid points.
MIN_AREA, MIN_POINTS = 64, 16
#: ``self_confidence`` is 0 while the rival's margin over the annotated class is under this share of the rival's
#: typical confidence, 1 from :data:`SELF_FULL` on.
SELF_FLOOR, SELF_FULL = 0.75, 1.0
#: Rows of prefix sums (one per image and class of the objects judged) built at once by ``misaligned``.
PREFIX_ROWS = 256
#: Images processed together (vectorised).
BATCH = 64
#: Batches (colour grids, 2 bytes per grid point, and masks) kept in memory between the two passes; the images of
#: the batches beyond are read again.
FEATURE_CACHE_BYTES = 256 * 2**20
#: Moves tried for ``misaligned``, per axis, in grid points (limited per object by :data:`ALIGN_REACH`).
MOVES = tuple(range(-6, 7))
#: Largest move tried, as a share of the object's box side.
ALIGN_REACH = 1 / 3
#: ``misaligned`` is 0 while a move recovers less than this share of the class's typical confidence, 1 from
#: :data:`ALIGN_FULL` on; and 0 unless the moved mask fits at least :data:`ALIGN_FIT` of that typical confidence.
ALIGN_FLOOR, ALIGN_FULL, ALIGN_FIT = 0.1, 0.25, 0.5


@dataclass
class _Work:
    """The dataset flattened for the loops: per image its path, size and fold; per object its image, label, RLE and
    box; objects of image ``k`` are ``first[k]:first[k + 1]``."""

    paths: list
    heights: npt.NDArray[np.int64]
    widths: npt.NDArray[np.int64]
    folds: npt.NDArray[np.int64]
    first: npt.NDArray[np.int64]
    labels: npt.NDArray[np.int64]
    rles: list
    masked: npt.NDArray[np.bool_]  # per object: it has an RLE (else it is box-only)
    boxes: npt.NDArray[np.float64]


@dataclass
class _Batch:
    """Images handled together: their grids of colour bins (``slot * POINTS + column * GRID + row``) and their
    objects' masks as runs ``[start, end)`` of that index, each inside one grid column, grouped by object."""

    images: npt.NDArray[np.int64]
    bins: npt.NDArray[np.uint16]  # (slots, POINTS)
    readable: npt.NDArray[np.bool_]
    objects: npt.NDArray[np.int64]  # positions in the dataset
    slot: npt.NDArray[np.int64]  # per object
    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    owner: npt.NDArray[np.int64]  # per run: index into ``objects``
    valid: npt.NDArray[np.bool_]  # per object: a mask that fits its image
    histogram: npt.NDArray[np.float32]  # grid points of the readable images per colour bin

    def points(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Every grid point under an object, and the object (index into ``objects``) it is under."""
        length = self.end - self.start
        owner = np.repeat(self.owner, length)
        offsets = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
        return np.repeat(self.start, length) + offsets, owner


@dataclass(frozen=True)
class _Stats:
    """Per label: the least pixel area of an unannotated region that counts (:data:`SMALL_SHARE` of the class's 10th
    percentile of object area, at least :data:`MIN_REGION`) and the median object area (0: the class has none)."""

    small: npt.NDArray[np.float64]
    median: npt.NDArray[np.float64]


def appearance_signals(dataset: Dataset, *, folds: int = 4, seed: int = 0, progress: Progress = None) -> SignalFrames:
    """Out-of-fold appearance-model signals: ``self_confidence``, ``misaligned`` (objects), ``missing_objects``.

    Args:
        dataset: the annotations; its images are read from disk (twice beyond :data:`FEATURE_CACHE_BYTES`).
        folds: number of cross-validation folds (images are split, never objects), at least 2.
        seed: seeds the split into folds, so the same input always gives the same values.
        progress: wraps the loops over images (e.g. tqdm).

    Returns:
        ``(objects, images)`` frames as in :mod:`seg.curate.signals`.

    Raises:
        OptionError: ``folds`` below 2.
    """
    if folds < 2:
        raise OptionError("appearance folds must be at least 2", actual=folds)
    count = len(dataset.objects)
    objects = pd.DataFrame(np.nan, index=pd.RangeIndex(count), columns=["self_confidence", "misaligned"])
    images = pd.DataFrame(np.nan, index=pd.Index(dataset.images["image_id"], dtype=str), columns=["missing_objects"])
    work = _work(dataset, folds, seed)
    n_labels = len(dataset.categories) + 1
    counts, seen, kept = _fit(work, n_labels, folds, progress)
    if not seen[:, 1:].any():
        logger.info("appearance: no readable image with annotations, nothing measured")
        return objects, images
    total = counts.sum(axis=0)
    trained = (seen.sum(axis=0) - seen) > 0  # (fold, label): the fold's model saw objects of the label
    trained[:, 0] = (total[0] - counts[:, 0]).sum(axis=1) > 0
    stats = _class_stats(dataset)
    own, rival, rival_label, gain = (np.full(count, np.nan) for _ in range(4))
    missing = np.full(len(work.paths), np.nan)
    for _, batch in _batches(work, kept, progress):
        fold = int(work.folds[batch.images[0]])
        table = _posterior(total - counts[fold])
        at = batch.objects
        own[at], rival[at], rival_label[at], gain[at] = _judge_objects(batch, work, table, trained[fold])
        missing[batch.images[batch.readable]] = _missing(batch, work, table, stats)[batch.readable]
    images["missing_objects"] = missing
    labels = work.labels
    typical = _typical(own, labels, n_labels)
    rival_typical = typical[np.nan_to_num(rival_label).astype(np.int64)]
    margin = (rival - own) / rival_typical
    objects["self_confidence"] = np.clip((margin - SELF_FLOOR) / (SELF_FULL - SELF_FLOOR), 0, 1)
    misaligned = np.clip((gain / typical[labels] - ALIGN_FLOOR) / (ALIGN_FULL - ALIGN_FLOOR), 0, 1)
    objects["misaligned"] = np.where(own + gain < ALIGN_FIT * typical[labels], 0.0, misaligned)
    return objects, images


# -- the work list and its batches --------------------------------------------------------------------------------


def _work(dataset: Dataset, folds: int, seed: int) -> _Work:
    table, frame = dataset.objects, dataset.images
    order = np.random.default_rng(seed).permutation(len(frame))
    fold_of = np.empty(len(frame), np.int64)
    fold_of[order] = np.arange(len(frame)) % folds
    per_image = table["image_id"].value_counts().reindex(frame["image_id"], fill_value=0).to_numpy(np.int64)
    return _Work(
        paths=dataset.image_paths(),
        heights=frame["height"].to_numpy(np.int64),
        widths=frame["width"].to_numpy(np.int64),
        folds=fold_of,
        first=np.r_[0, np.cumsum(per_image)],
        labels=table["category"].map(dataset.class_index()).to_numpy(np.int64),
        rles=table["rle"].tolist(),
        masked=table["rle"].notna().to_numpy(bool),
        boxes=table[["bbox_x", "bbox_y", "bbox_w", "bbox_h"]].to_numpy(np.float64),
    )


def _batches(work: _Work, kept: dict[int, _Batch], progress: Progress) -> Iterator[tuple[int, _Batch]]:
    """The images in batches of one fold each (numbered), read or taken from ``kept``, with their masks on the grid."""
    order = np.argsort(work.folds, kind="stable")
    groups = [order[work.folds[order] == fold] for fold in np.unique(work.folds)]
    chunks = [group[i : i + BATCH] for group in groups for i in range(0, len(group), BATCH)]

    def images() -> Iterator[int]:
        for chunk in chunks:
            yield from chunk

    bar = iter(progress(Counted(images(), len(order)))) if progress else None
    for number, chunk in enumerate(chunks):
        batch = kept.pop(number, None)
        yield number, batch if batch is not None else _batch(work, chunk, [_read_bins(work, int(k)) for k in chunk])
        if bar is not None:
            for _ in chunk:
                next(bar, None)


def _batch(work: _Work, chunk: npt.NDArray[np.int64], grids: Sequence[npt.NDArray[np.uint16] | None]) -> _Batch:
    readable = np.array([g is not None for g in grids], bool)
    bins = np.zeros((len(chunk), POINTS), np.uint16)
    for slot, grid in enumerate(grids):
        if grid is not None:
            bins[slot] = grid
    spans = [np.arange(work.first[k], work.first[k + 1]) for k, ok in zip(chunk, readable, strict=True) if ok]
    objects = np.concatenate([np.zeros(0, np.int64), *spans])
    slot = np.repeat(np.flatnonzero(readable), [s.size for s in spans]).astype(np.int64)
    image = chunk[slot]
    start, end, owner, valid = _grid_runs([work.rles[o] for o in objects], work.heights[image], work.widths[image])
    base = slot[owner] * POINTS
    histogram = np.bincount(bins[readable].reshape(-1), minlength=BINS).astype(np.float32)
    return _Batch(chunk, bins, readable, objects, slot, start + base, end + base, owner, valid, histogram)


# -- pixels and masks on the grid ---------------------------------------------------------------------------------


def _read_bins(work: _Work, k: int) -> npt.NDArray[np.uint16] | None:
    """The colour bin of every grid point of image ``k``, column-major flat, or None when it cannot be used."""
    path, height, width = work.paths[k], int(work.heights[k]), int(work.widths[k])
    if path is None:
        return None
    try:
        pixels = _thumbnail(path, width, height)
    except SegError as e:
        logger.warning("appearance: %s; not measured", e)
        return None
    quantized = (pixels >> (8 - LEVEL_BITS)).astype(np.uint16)
    bins = (quantized[..., 0] << (2 * LEVEL_BITS)) | (quantized[..., 1] << LEVEL_BITS) | quantized[..., 2]
    return bins.ravel(order="F")


def _thumbnail(path, width: int, height: int) -> npt.NDArray[np.uint8]:
    """The image as (GRID, GRID, 3) RGB, each point the mean of its block (JPEGs are decoded at a reduced scale).

    Raises:
        ImageError: unreadable, truncated, too large (decompression bomb), or not of the annotated size.
    """
    from PIL import Image

    size = image_size(path)  # refuses missing files, non-images and decompression bombs
    if size != (width, height):
        raise ImageError(
            "image size differs from the annotation's",
            path=path,
            expected=f"{width}x{height}",
            actual="x".join(map(str, size)),
        )
    try:
        with Image.open(path) as image:
            if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                values = np.asarray(image, dtype=np.float64)
                top = max(float(values.max()), 1.0)
                image = Image.fromarray((np.clip(values, 0, None) * (255.0 / top)).astype(np.uint8))
            else:
                image.draft("RGB", (GRID, GRID))
            rgb = image.convert("RGB").resize((GRID, GRID), Image.Resampling.BOX)
            return np.asarray(rgb)
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError("image is truncated or corrupt", path=path) from e


def _ceil_div(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return -((-a) // b)


def _grid_runs(
    rles: Sequence[str | None], heights: npt.NDArray[np.int64], widths: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Masks (compressed RLE, each at its image's size) as runs on the grid: ``(start, end, owner, valid)``.

    Grid column ``X`` samples pixel column ``floor((X + 0.5) * width / GRID)``, row ``Y`` pixel row
    ``floor((Y + 0.5) * height / GRID)``. Objects without a mask or with a broken one are not valid and have no runs.
    """
    valid = np.array([isinstance(r, str) for r in rles], bool)
    empty = np.zeros(0, np.int64)
    at = np.flatnonzero(valid)
    if at.size == 0:
        return empty, empty, empty, valid
    strings = [rles[k] for k in at]
    try:
        parsed = coco_rle.parse_strings(strings)
    except ValueError:  # find the broken strings, parse the others
        broken = {int(k) for k, text in zip(at, strings, strict=True) if not _parses(text)}
        return _grid_runs([None if k in broken else r for k, r in enumerate(rles)], heights, widths)
    ends, _ = coco_rle.segmented_cumsum(parsed.runs, parsed.owner, parsed.first)
    last = np.r_[parsed.first[1:], parsed.runs.size] - 1
    totals = np.where(last >= parsed.first, ends[np.maximum(last, 0)], 0)
    good = totals == heights[at] * widths[at]
    valid[at[~good]] = False
    ones = ((parsed.position & 1) == 1) & (parsed.runs > 0) & good[parsed.owner]
    owner = at[parsed.owner[ones]]
    start, end = ends[ones] - parsed.runs[ones], ends[ones]
    # split the pixel runs at pixel-column boundaries
    height, width = heights[owner], widths[owner]
    first, final = start // height, (end - 1) // height
    pieces = final - first + 1
    source = np.repeat(np.arange(start.size), pieces)
    step = np.arange(source.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    column = first[source] + step
    height, width = height[source], width[source]
    low = np.where(step == 0, start[source] - column * height, 0)
    high = np.where(column == final[source], end[source] - column * height, height)
    # pixel column -> the grid columns sampling it (none when shrinking, several when enlarging)
    x_low = np.clip(_ceil_div(2 * column * GRID - width, 2 * width), 0, GRID)
    x_high = np.clip(_ceil_div(2 * (column + 1) * GRID - width, 2 * width), 0, GRID)
    y_low = np.clip(_ceil_div(2 * low * GRID - height, 2 * height), 0, GRID)
    y_high = np.clip(_ceil_div(2 * high * GRID - height, 2 * height), 0, GRID)
    copies = np.where(y_high > y_low, np.maximum(x_high - x_low, 0), 0)
    again = np.repeat(np.arange(copies.size), copies)
    x = x_low[again] + np.arange(again.size) - np.repeat(np.cumsum(copies) - copies, copies)
    base = x * GRID  # every step above kept the runs grouped by object, in order
    return base + y_low[again], base + y_high[again], owner[source][again], valid


def _parses(string: str) -> bool:
    try:
        coco_rle.parse_strings([string])
    except ValueError:
        return False
    return True


def _box_points(batch: _Batch, work: _Work, label: int | None = None) -> npt.NDArray[np.int64]:
    """Batch index of every grid point inside the box of a box-only object (of one label, or of any)."""
    found = [np.zeros(0, np.int64)]
    boxed = ~work.masked[batch.objects]
    if label is not None:
        boxed &= work.labels[batch.objects] == label
    for o, slot in zip(batch.objects[boxed], batch.slot[boxed], strict=True):
        k = batch.images[slot]
        x, y, w, h = work.boxes[o]
        if not (w > 0 and h > 0):
            continue
        width, height = int(work.widths[k]), int(work.heights[k])
        x0, x1 = (min(max(int(np.ceil((2 * v * GRID - width) / (2 * width))), 0), GRID) for v in (x, x + w))
        y0, y1 = (min(max(int(np.ceil((2 * v * GRID - height) / (2 * height))), 0), GRID) for v in (y, y + h))
        columns, rows = np.meshgrid(np.arange(x0, x1), np.arange(y0, y1), indexing="ij")
        found.append((slot * POINTS + columns * GRID + rows).ravel())
    return np.concatenate(found)


# -- fitting ------------------------------------------------------------------------------------------------------


def _fit(
    work: _Work, n_labels: int, folds: int, progress: Progress
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], dict[int, _Batch]]:
    """Per-fold label histograms ``(folds, labels, BINS)``, per-fold object counts per label, and the batches kept for
    the second pass (by number)."""
    counts = np.zeros((folds, n_labels, BINS))
    seen = np.zeros((folds, n_labels), np.int64)
    kept: dict[int, _Batch] = {}
    kept_bytes = 0
    for number, batch in _batches(work, {}, progress):
        fold = int(work.folds[batch.images[0]])
        weight = sum(v.nbytes for v in vars(batch).values() if isinstance(v, np.ndarray))
        if kept_bytes + weight <= FEATURE_CACHE_BYTES:
            kept[number] = batch
            kept_bytes += weight
        points, owner = batch.points()
        labels = work.labels[batch.objects]
        flat = batch.bins.reshape(-1)
        pairs = np.unique(labels[owner] * flat.size + points)  # a point under two objects of a class counts once
        point, label = pairs % flat.size, pairs // flat.size
        counts[fold] += np.bincount(label * BINS + flat[point], minlength=n_labels * BINS).reshape(n_labels, BINS)
        # background: every readable point but those under objects or boxes
        covered = np.unique(np.r_[point, _box_points(batch, work)])
        counts[fold, 0] += batch.histogram
        counts[fold, 0] -= np.bincount(flat[covered], minlength=BINS)
        measured = np.bincount(owner, minlength=len(batch.objects)) > 0
        seen[fold] += np.bincount(labels[measured], minlength=n_labels)
    return counts, seen, kept


def _posterior(counts: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """(labels, BINS) probability of each label given the bin, smoothed towards the label frequencies."""
    prior = counts.sum(axis=1)
    prior = prior / max(prior.sum(), 1.0)
    return ((counts + SMOOTHING * prior[:, None]) / (counts.sum(axis=0) + SMOOTHING)).astype(np.float32)


def _class_stats(dataset: Dataset) -> _Stats:
    table = dataset.objects
    masked = table[table["rle"].notna() & ~table["iscrowd"] & (table["area"] > 0)]
    small = np.zeros(len(dataset.categories) + 1)
    median = np.zeros(len(dataset.categories) + 1)
    index = dataset.class_index()
    for name, areas in masked.groupby("category")["area"]:
        values = areas.to_numpy(np.float64)
        small[index[name]] = max(SMALL_SHARE * float(np.quantile(values, 0.1)), MIN_REGION)
        median[index[name]] = max(float(np.median(values)), MIN_REGION)
    return _Stats(small, median)


def _typical(own: npt.NDArray[np.float64], labels: npt.NDArray[np.int64], n_labels: int) -> npt.NDArray[np.float64]:
    """Per label, the median self-confidence of its objects (cleanlab's per-class threshold), at least 0.25."""
    typical = np.full(n_labels, 0.5)
    frame = pd.DataFrame({"label": labels, "own": own}).dropna()
    for label, value in frame.groupby("label")["own"].median().items():
        typical[int(label)] = value
    return np.clip(typical, 0.25, 1.0)


# -- judging ------------------------------------------------------------------------------------------------------


def _judge_objects(
    batch: _Batch, work: _Work, table: npt.NDArray[np.float32], trained: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], ...]:
    """Per object of the batch: mean own-class probability, its rival's and the rival's label, best-move gain.

    The rival is the other class that beats the rest (background and the annotated class aside) at the object's
    points, summed over them with its probabilities; with one class, there is none.
    """
    count = len(batch.objects)
    labels = work.labels[batch.objects]
    points, owner = batch.points()
    point_bins = batch.bins.reshape(-1)[points]
    area = np.bincount(owner, minlength=count).astype(np.float64)
    judged = batch.valid & (area > 0) & trained[labels]
    own = np.bincount(owner, weights=table[labels[owner], point_bins], minlength=count) / np.maximum(area, 1)
    own[~judged] = np.nan
    pixels = area * (work.heights * work.widths)[batch.images[batch.slot]] / POINTS
    large = judged & (area >= MIN_POINTS) & (pixels >= MIN_AREA)
    rival = np.full(count, np.nan)
    rival_label = np.full(count, np.nan)
    if len(table) > 2:
        classes = np.where(trained[1:, None], table[1:], -1.0)  # untrained classes never win
        ranked = np.argsort(-classes, axis=0, kind="stable")[:2] + 1  # the two best classes of every colour bin
        first, second = ranked[0][point_bins], ranked[1][point_bins]
        other = np.where(first == labels[owner], second, first)
        votes = np.bincount(owner * len(table) + other, weights=table[other, point_bins], minlength=count * len(table))
        best = np.argmax(votes.reshape(count, len(table)), axis=1)
        value = np.bincount(owner, weights=table[best[owner], point_bins], minlength=count) / np.maximum(area, 1)
        rival = np.where(large & (best > 0) & trained[best], value, np.nan)
        rival_label = np.where(np.isnan(rival), np.nan, best)
    gain = _best_moves(batch, table, labels, own, area, large)
    return own, rival, rival_label, gain


def _best_moves(
    batch: _Batch,
    table: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    own: npt.NDArray[np.float64],
    area: npt.NDArray[np.float64],
    large: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float64]:
    """Per object, how much its mean own-class probability rises at the best move of its mask (NaN: not judged).

    A move by ``(dx, dy)`` grid points adds ``dx * GRID + dy`` to every run: exact while the moved mask stays inside
    its image, the only moves tried. Sums under a moved mask come from prefix sums of the class's probability over the
    image, one row per (image, class) of the objects judged. Moves are searched on a grid of step 2, then refined.
    """
    gain = np.where(large, 0.0, np.nan)
    chosen = large & (own < 1 - ALIGN_FLOOR / 2)  # no move can gain enough for the others
    keep = chosen[batch.owner]
    if not keep.any():
        return gain
    owner, start, end = batch.owner[keep], batch.start[keep], batch.end[keep]
    slot = start // POINTS
    pair = slot * len(table) + labels[owner]
    order = np.argsort(pair, kind="stable")  # runs of an object share a pair, so they stay together and in order
    owner, start, end, slot, pair = owner[order], start[order], end[order], slot[order], pair[order]
    rows, row = np.unique(pair, return_inverse=True)
    steps = np.asarray(MOVES)[::2]
    coarse = np.stack([v.ravel() for v in np.meshgrid(steps, steps, indexing="ij")], axis=1)
    fine = np.stack([v.ravel() for v in np.meshgrid([-1, 0, 1], [-1, 0, 1], indexing="ij")], axis=1)
    for first in range(0, rows.size, PREFIX_ROWS):
        these = rows[first : first + PREFIX_ROWS]
        low, high = np.searchsorted(row, [first, first + these.size])
        sums = np.zeros((these.size, POINTS + 1), np.float32)
        values = np.take_along_axis(table[these % len(table)], batch.bins[these // len(table)], axis=1)
        np.cumsum(values, axis=1, out=sums[:, 1:])
        sums = sums.reshape(-1)
        run_owner, run_start, run_end = owner[low:high], start[low:high], end[low:high]
        shift = (row[low:high] - first) * (POINTS + 1) - slot[low:high] * POINTS
        heads = np.flatnonzero(np.r_[True, run_owner[1:] != run_owner[:-1]])
        which = run_owner[heads]
        inner = run_start % POINTS
        x, y0, y1 = inner // GRID, inner % GRID, (run_end - 1 - run_start) + inner % GRID
        box = np.stack(
            [
                np.minimum.reduceat(x, heads),
                np.maximum.reduceat(x, heads),
                np.minimum.reduceat(y0, heads),
                np.maximum.reduceat(y1, heads),
            ],
            axis=1,
        )
        run_start, run_end = run_start + shift, run_end + shift  # index into the prefix sums
        moves = np.broadcast_to(coarse, (which.size, *coarse.shape))
        best, at = _try_moves(sums, run_start, run_end, heads, box, moves)
        moves = at[:, None, :] + fine[None, :, :]
        refined, _ = _try_moves(sums, run_start, run_end, heads, box, moves)
        gain[which] = np.maximum(np.maximum(best, refined) / area[which] - own[which], 0.0)
    return gain


def _try_moves(
    sums: npt.NDArray[np.float32],
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    heads: npt.NDArray[np.int64],
    box: npt.NDArray[np.int64],
    moves: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Best sum (over the allowed ``moves`` of each object, ``(objects, k, 2)``) of a map whose prefix sums are
    ``sums`` under each moved object, and the move that gives it (-inf and (0, 0) when none is allowed)."""
    dx, dy = moves[..., 0], moves[..., 1]
    x0, x1, y0, y1 = (box[:, j : j + 1] for j in range(4))
    reach_x = np.maximum(np.ceil((x1 - x0 + 1) * ALIGN_REACH), 1)
    reach_y = np.maximum(np.ceil((y1 - y0 + 1) * ALIGN_REACH), 1)
    allowed = (x0 + dx >= 0) & (x1 + dx < GRID) & (y0 + dy >= 0) & (y1 + dy < GRID)
    allowed &= (np.abs(dx) <= reach_x) & (np.abs(dy) <= reach_y)
    lengths = np.diff(np.r_[heads, start.size])
    offset = np.repeat(dx * GRID + dy, lengths, axis=0)  # (runs, k)
    inside = sums.take(end[:, None] + offset, mode="clip") - sums.take(start[:, None] + offset, mode="clip")
    totals = np.where(allowed, np.add.reduceat(inside, heads, axis=0), -np.inf)
    pick = np.argmax(totals, axis=1)
    rows = np.arange(len(heads))
    return totals[rows, pick], np.where(allowed.any(axis=1)[:, None], moves[rows, pick], 0)


def _missing(batch: _Batch, work: _Work, table: npt.NDArray[np.float32], stats: _Stats) -> npt.NDArray[np.float64]:
    """Per image slot, the badness of its confidently predicted regions that no annotation of their class covers.

    Works on blocks of 2 x 2 grid points: a block is sure when its mean probability is at least :data:`CONFIDENT`,
    covered when one of its points (or of its 8 neighbour blocks') is under an annotation of the class. A sure block
    needs a point of probability at least :data:`CONFIDENT` (the class is its point's best), so with many classes each
    is looked for only in the images that have such points.
    """
    slots, half, labels_count = len(batch.images), GRID // 2, len(table)
    winner = np.where(table.max(axis=0) >= CONFIDENT, np.argmax(table, axis=0), 0)  # per colour bin
    if np.unique(winner[batch.histogram > 0]).size <= 3:  # few classes: look everywhere
        found = np.zeros((slots, labels_count), bool)
        found[:, np.unique(winner[batch.histogram > 0])] = True
    else:
        keys = (np.arange(slots)[:, None] * labels_count + winner[batch.bins]).reshape(-1)
        found = np.bincount(keys, minlength=slots * labels_count).reshape(slots, labels_count) > 0
    found &= batch.readable[:, None]
    found[:, stats.median == 0] = False  # background, and classes without a sized object
    scale = 4 * (work.heights * work.widths)[batch.images] / POINTS  # pixels per block
    points, owner = batch.points()
    labels = work.labels[batch.objects][owner]
    total = np.zeros(slots)
    for label in np.flatnonzero(found.any(axis=0)):
        where = np.flatnonzero(found[:, label])
        local = np.full(slots, -1)
        local[where] = np.arange(where.size)
        probability = table[label][batch.bins[where]].reshape(where.size, half, 2, half, 2)
        mean = probability[:, :, 0, :, 0] + probability[:, :, 1, :, 0]
        mean += probability[:, :, 0, :, 1]
        mean += probability[:, :, 1, :, 1]
        cover = np.zeros(where.size * half * half, bool)
        for covered in (points[labels == label], _box_points(batch, work, int(label))):
            slot, inner = covered // POINTS, covered % POINTS
            keep = local[slot] >= 0
            cover[local[slot[keep]] * half * half + inner[keep] // GRID // 2 * half + inner[keep] % GRID // 2] = True
        near = _dilate(cover.reshape(where.size, half, half))
        areas, slot = _region_areas((mean >= 4 * CONFIDENT) & ~near)
        pixels = areas * scale[where[slot]]
        big = pixels >= stats.small[label]
        total += np.bincount(where[slot[big]], weights=pixels[big], minlength=slots) / stats.median[label]
    return 1.0 - np.exp(-total)


def _dilate(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Each 2-D mask of a stack grown by one point in the 8 directions."""
    out = mask.copy()
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    grown = out.copy()
    grown[:, :, 1:] |= out[:, :, :-1]
    grown[:, :, :-1] |= out[:, :, 1:]
    return grown


def _region_areas(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Size (points) and image index of every 4-connected region of a stack of 2-D masks ``(images, lines, n)``.

    Runs along the last axis are the nodes; overlapping runs of neighbouring lines of one image are joined by repeated
    minimum-label propagation with pointer jumping (a vectorised union-find).
    """
    images, lines, columns = mask.shape
    padded = np.zeros((images * lines, columns + 2), np.int8)
    padded[:, 1:-1] = mask.reshape(images * lines, columns)
    steps = np.diff(padded, axis=1)
    line, begin = np.nonzero(steps == 1)
    _, finish = np.nonzero(steps == -1)
    if line.size == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    stride = columns + 1
    key_begin, key_finish = line * stride + begin, line * stride + finish
    # runs a of the previous line that overlap run b: finish_a > begin_b and begin_a < finish_b
    low = np.searchsorted(key_finish, (line - 1) * stride + begin, side="right")
    high = np.searchsorted(key_begin, (line - 1) * stride + finish, side="left")
    links = np.where(line % lines > 0, np.maximum(high - low, 0), 0)
    b = np.repeat(np.arange(line.size), links)
    a = np.repeat(low, links) + np.arange(links.sum()) - np.repeat(np.cumsum(links) - links, links)
    label = np.arange(line.size)
    while True:
        joined = np.minimum(label[a], label[b])
        updated = label.copy()
        np.minimum.at(updated, a, joined)
        np.minimum.at(updated, b, joined)
        updated = updated[updated]
        if np.array_equal(updated, label):
            break
        label = updated
    roots = np.unique(label)
    return np.bincount(label, weights=finish - begin)[roots], line[roots] // lines
