"""Image-quality signals: unreadable, blank, no-data, blurred and badly exposed images, duplicates and leakage.

Every image is read once, by :func:`image_statistics`: the file's SHA-256, then its pixels at a working size (JPEGs
decoded at 1/2 to 1/8 scale by libjpeg, anything else shrunk by an integer box filter, so that the longest side is at
most about :data:`WORK_SIDE` pixels), with the same decompression-bomb limit as :mod:`seg.dataset.images`. From the
pixels come the 64-bit perceptual hash (:mod:`seg.collector.image_hash`) and a few numbers per image; no pixels are
kept. :func:`quality_signals` turns those numbers into badness; :mod:`seg.curate.reference` uses the colour numbers
too, so the curation reads images once when it computes the statistics first and hands them to both::

    stats = image_statistics(dataset)
    ref_stats = image_statistics(reference) if reference is not None else None
    quality_signals(dataset, reference=reference, statistics=stats, reference_statistics=ref_stats)
    reference_signals(dataset, reference=reference, statistics=stats, reference_statistics=ref_stats)

No-data pixels are fully transparent ones and those of the image's most frequent grey level that sit in flat patches
(equal to their right and lower neighbours): a black or white collar, a tile half outside the imagery.
Colour, exposure and sharpness are measured on the other pixels.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from seg.collector.image_hash import phash
from seg.curate.signals import Signal, SignalFrames
from seg.dataset.core import Dataset
from seg.dataset.images import MAX_PIXELS
from seg.progress import Counted, Progress

logger = logging.getLogger(__name__)

#: Longest side (pixels) of the working copy that statistics are computed on.
WORK_SIDE = 512
#: Smallest fraction of the image that flat pixels of one grey level must cover to count as no-data.
MIN_FLAT = 0.005
#: Hamming distances between perceptual hashes: at most NEAR_SAME -> badness 1, from NEAR_NONE on -> 0.
NEAR_SAME, NEAR_NONE = 4, 10
#: Folder names that mark a split when the images table has no ``split`` column (compared in lower case).
SPLIT_NAMES = frozenset({"train", "training", "val", "valid", "validation", "dev", "test", "testing", "eval"})

SIGNALS: list[Signal] = [
    Signal(
        "unreadable",
        "quality",
        "image",
        "image file missing or unreadable",
        "1 when the image file is missing, truncated, not an image or too large to decode safely; NaN when the "
        "dataset knows no image folder. The other quality signals are NaN for such images.",
    ),
    Signal(
        "blank",
        "quality",
        "image",
        "blank image",
        "Standard deviation of the grey levels outside no-data: 1 at 2 or less (one flat colour), 0 from 8 on.",
    ),
    Signal(
        "nodata",
        "quality",
        "image",
        "no-data area (flat fill or transparent)",
        "Fraction of no-data pixels (transparent, or the most frequent grey level in flat patches) above the dataset's "
        "median fraction: 0 up to 5 points above it, 1 from 40 points above.",
    ),
    Signal(
        "blur",
        "quality",
        "image",
        "blurred image",
        "Sharpness (mean squared Laplacian over mean squared gradient, which ignores contrast) relative to the "
        "dataset's median: 0 from 0.6 of the median up, 1 at 0.25 or less (log scale between).",
    ),
    Signal(
        "exposure",
        "quality",
        "image",
        "over- or under-exposed",
        "The worse of the clipped fraction (pixels at 0 or 255 in the worst channel: 0 at 2 %, 1 at 25 %) and the "
        "mean grey level's distance from mid-grey (0 within 80 levels of 128, 1 at 120 away).",
    ),
    Signal(
        "duplicate_image",
        "quality",
        "image",
        "duplicate of an earlier image",
        "1 for an image whose file bytes equal an earlier image's (in dataset order), or whose perceptual hash is "
        f"within {NEAR_SAME} bits of one; falls to 0 at {NEAR_NONE} bits. The first of a group stays 0.",
    ),
    Signal(
        "leakage",
        "quality",
        "image",
        "also in the reference or another split",
        "Like duplicate_image, against the reference's images and against earlier images of another split (the "
        "images' split column, else a first folder named train/val/test...). NaN when there is neither a reference "
        "nor more than one split.",
    ),
]

#: Columns of :func:`image_statistics`'s frame (indexed by image_id), besides ``path`` and ``error``.
STATISTICS = (
    "readable",
    "sha256",
    "phash",
    "pixel_width",
    "pixel_height",
    "nodata",
    "grey_std",
    "brightness",
    "clipped",
    "sharpness",
    "mean_r",
    "mean_g",
    "mean_b",
    "std_r",
    "std_g",
    "std_b",
)


def image_statistics(dataset: Dataset, *, progress: Progress = None, workers: int | None = None) -> pd.DataFrame:
    """Read every image of ``dataset`` once and describe it.

    Args:
        dataset: the images to read (``dataset.image_paths()``).
        progress: wraps the loop over images.
        workers: reading threads (default: the CPU count, at most 8).

    Returns:
        One row per image, indexed by ``image_id`` in the images table's order: ``path``, ``error`` (why the image
        could not be read, "" when it could; None when the dataset knows no image folder for it), ``readable``,
        ``sha256`` (hex), ``phash`` (uint64), ``pixel_width``/``pixel_height`` (the file's size), ``nodata`` (no-data
        fraction), ``grey_std``, ``brightness`` (mean grey), ``clipped`` (worst channel's fraction at 0 or 255),
        ``sharpness``, ``mean_r/g/b`` and ``std_r/g/b`` (grey images repeat the grey values). Pixel statistics are
        NaN for unreadable images and for images that are all no-data.
    """
    paths = dataset.image_paths()
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_describe_file, paths)
        rows = list(progress(Counted(results, len(paths))) if progress is not None else results)
    frame = pd.DataFrame(rows, columns=["path", "error", *STATISTICS])
    frame["readable"] = frame["readable"].astype(bool)
    frame["phash"] = frame["phash"].astype(np.uint64)
    frame.index = pd.Index(dataset.images["image_id"].astype(str).to_numpy(), name="image_id")
    failed = frame["error"].fillna("").ne("")
    if failed.any():
        logger.warning("%d of %d images could not be read", int(failed.sum()), len(frame))
    return frame


def quality_signals(
    dataset: Dataset,
    *,
    reference: Dataset | None = None,
    progress: Progress = None,
    statistics: pd.DataFrame | None = None,
    reference_statistics: pd.DataFrame | None = None,
) -> SignalFrames:
    """Image-level quality signals (see :data:`SIGNALS`).

    Args:
        dataset: the images to score.
        reference: the open dataset; its images count for ``leakage``.
        progress: wraps the loop over images when they have to be read here.
        statistics: :func:`image_statistics` of ``dataset``, when already computed (else read here).
        reference_statistics: :func:`image_statistics` of ``reference``, likewise.

    Returns:
        ``(None, images)``: one row per image indexed by ``image_id``, one column per signal, values in [0, 1] or NaN.
    """
    ids = pd.Index(dataset.images["image_id"].astype(str).to_numpy(), name="image_id")
    stats = statistics if statistics is not None else image_statistics(dataset, progress=progress)
    stats = stats.reindex(ids)
    if reference is not None and reference_statistics is None:
        reference_statistics = image_statistics(reference, progress=progress)
    readable = stats["readable"].fillna(False).to_numpy(bool)
    known = stats["error"].notna().to_numpy()
    out = pd.DataFrame(index=ids, columns=[s.name for s in SIGNALS], dtype=float)
    out["unreadable"] = np.where(known, np.where(readable, 0.0, 1.0), np.nan)
    if not known.any():
        logger.warning("no image folder known: quality signals not measured")

    grey_std = stats["grey_std"].to_numpy(float)
    nodata = stats["nodata"].to_numpy(float)
    out["blank"] = np.where(np.isnan(grey_std), np.where(readable, 1.0, np.nan), _ramp(grey_std, 8.0, 2.0))
    typical = float(np.nanmedian(nodata)) if readable.any() else 0.0
    out["nodata"] = np.where(readable, _ramp(nodata - typical, 0.05, 0.40), np.nan)
    sharpness = stats["sharpness"].to_numpy(float)
    sharp_ok = readable & (grey_std >= 8.0) & (nodata < 0.5)
    median = float(np.nanmedian(sharpness[sharp_ok])) if np.isfinite(sharpness[sharp_ok]).any() else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(sharpness / median)
    out["blur"] = np.where(readable, _ramp(ratio, math.log(0.6), math.log(0.25)), np.nan)
    clipped = _ramp(stats["clipped"].to_numpy(float), 0.02, 0.25)
    off_grey = _ramp(np.abs(stats["brightness"].to_numpy(float) - 127.5), 80.0, 120.0)
    out["exposure"] = np.where(readable, np.fmax(clipped, off_grey), np.nan)

    near = _near_candidates(stats)
    out["duplicate_image"] = np.where(readable, _duplicates(stats, near), np.nan)
    out["leakage"] = _leakage(stats, near, reference_statistics, _splits(dataset), readable)
    return None, out


def duplicate_pairs(statistics: pd.DataFrame, other: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every image and the image it duplicates, for a report.

    Args:
        statistics: :func:`image_statistics` of a dataset.
        other: :func:`image_statistics` of another dataset (the reference); None compares the dataset with its own
            earlier images.

    Returns:
        Columns ``image_id``, ``of`` (the earlier or other image), ``distance`` (Hamming bits, 0 for equal bytes),
        ``exact`` (equal bytes), for every image with a match within ``NEAR_NONE - 1`` bits.
    """
    near = _near_candidates(statistics)
    target = statistics if other is None else other
    target_near = near if other is None else _near_candidates(other)
    index, distance, exact = _closest(statistics, near, target, target_near, earlier_only=other is None)
    found = index >= 0
    return pd.DataFrame(
        {
            "image_id": statistics.index.to_numpy()[found],
            "of": target.index.to_numpy()[index[found]],
            "distance": distance[found],
            "exact": exact[found],
        }
    )


# -- reading --------------------------------------------------------------------------------------------------------


def _describe_file(path: Path | None) -> dict:
    """Statistics of one image file (a dict of :data:`STATISTICS`), never raising."""
    from PIL import Image, UnidentifiedImageError

    row: dict = {"path": None if path is None else str(path), "error": None, "readable": False}
    row.update(sha256="", phash=0)
    if path is None:
        return row
    try:
        with open(path, "rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
            file.seek(0)
            with Image.open(file) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise _TooLarge(f"{width}x{height}")
                if image.format in ("JPEG", "MPO"):
                    image.draft(None, (WORK_SIDE, WORK_SIDE))
                image.load()
                colour, transparent = _working_copy(image)
    except FileNotFoundError:
        return {**row, "error": "image file not found"}
    except (_TooLarge, Image.DecompressionBombError):
        return {**row, "error": f"image too large to decode safely (more than {MAX_PIXELS} pixels)"}
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        return {**row, "error": f"not a readable image ({type(e).__name__})"}
    row.update(error="", readable=True, sha256=digest, pixel_width=width, pixel_height=height)
    row.update(_pixel_statistics(colour, transparent))
    return row


class _TooLarge(Exception):
    pass


def _working_copy(image):
    """The image at working size in mode ``L`` or ``RGB``, and its fully transparent pixels (or None)."""
    from PIL import Image

    factor = max(image.size) // WORK_SIDE
    if factor >= 2:
        image = image.reduce(factor)
    transparent = None
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        transparent = np.asarray(image.getchannel("A")) == 0
        image = image.convert("L" if image.mode in ("LA", "La") else "RGB")
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 1.0 if image.mode == "F" else 257.0  # 16-bit greys to 8 bits
        image = Image.fromarray(np.clip(np.rint(values / scale), 0, 255).astype(np.uint8))
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return image, transparent


def _pixel_statistics(colour, transparent: npt.NDArray[np.bool_] | None) -> dict:
    """Hash, no-data fraction and pixel statistics of a working copy (``L`` or ``RGB``); histograms do the sums."""
    from PIL import Image

    grey = colour if colour.mode == "L" else colour.convert("L")
    stats: dict = {"phash": phash(grey)}
    grey_pixels = np.asarray(grey)
    nodata = _nodata_mask(grey_pixels, transparent)
    stats["nodata"] = float(nodata.mean()) if nodata is not None else 0.0
    mask = None if nodata is None else Image.fromarray((~nodata).view(np.uint8))
    bands = np.asarray(colour.histogram(mask), np.float64).reshape(-1, 256)
    count = float(bands[0].sum())
    if count == 0:
        return stats
    levels = np.arange(256, dtype=np.float64)
    means = bands @ levels / count
    stds = np.sqrt(np.maximum(bands @ levels**2 / count - means**2, 0.0))
    if len(means) == 1:
        means, stds = np.repeat(means, 3), np.repeat(stds, 3)
    grey_bins = np.asarray(grey.histogram(mask), np.float64)
    grey_mean = float(grey_bins @ levels / count)
    stats.update(
        grey_std=math.sqrt(max(float(grey_bins @ levels**2 / count) - grey_mean**2, 0.0)),
        brightness=grey_mean,
        clipped=float(((bands[:, 0] + bands[:, 255]) / count).max()),
        sharpness=_sharpness(grey_pixels.astype(np.float32), nodata),
        mean_r=float(means[0]),
        mean_g=float(means[1]),
        mean_b=float(means[2]),
        std_r=float(stds[0]),
        std_g=float(stds[1]),
        std_b=float(stds[2]),
    )
    return stats


def _nodata_mask(
    grey: npt.NDArray[np.uint8], transparent: npt.NDArray[np.bool_] | None
) -> npt.NDArray[np.bool_] | None:
    """Transparent pixels, and the pixels of the most frequent grey level among flat ones (equal to their right and
    lower neighbours) when they cover at least :data:`MIN_FLAT` of the image; None when there are none."""
    height, width = grey.shape
    nodata = transparent.copy() if transparent is not None else None
    if height >= 2 and width >= 2:
        corner = grey[:-1, :-1]
        flat = (corner == grey[:-1, 1:]) & (corner == grey[1:, :-1])
        if transparent is not None:
            flat &= ~transparent[:-1, :-1]
        if flat.sum() >= MIN_FLAT * flat.size:
            fill = int(np.argmax(np.bincount(corner[flat], minlength=256)))
            flat &= corner == fill
            if flat.sum() >= MIN_FLAT * flat.size:
                if nodata is None:
                    nodata = np.zeros((height, width), bool)
                nodata[:-1, :-1] |= flat
    return nodata if nodata is not None and nodata.any() else None


def _sharpness(grey: npt.NDArray[np.float32], nodata: npt.NDArray[np.bool_] | None) -> float:
    """Mean squared 5-point Laplacian over mean squared first differences, on pixels whose stencil has no no-data."""
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return math.nan
    centre = grey[1:-1, 1:-1]
    down, right = grey[2:, 1:-1], grey[1:-1, 2:]
    laplacian = centre * 4
    for neighbour in (grey[:-2, 1:-1], down, grey[1:-1, :-2], right):
        laplacian -= neighbour
    dx, dy = right - centre, down - centre
    if nodata is not None:
        inside = ~(nodata[1:-1, 1:-1] | nodata[:-2, 1:-1] | nodata[2:, 1:-1] | nodata[1:-1, :-2] | nodata[1:-1, 2:])
        if inside.sum() < 64:
            return math.nan
        laplacian, dx, dy = laplacian * inside, dx * inside, dy * inside
    laplacian, dx, dy = laplacian.ravel(), dx.ravel(), dy.ravel()
    gradient = float(np.dot(dx, dx) + np.dot(dy, dy))
    return float(np.dot(laplacian, laplacian)) / gradient if gradient > 0 else math.nan


# -- duplicates and leakage ------------------------------------------------------------------------------------------


def _near_candidates(stats: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Images whose perceptual hash means something: readable, not blank, mostly not no-data."""
    readable = stats["readable"].fillna(False).to_numpy(bool)
    grey_std = stats["grey_std"].to_numpy(float)
    nodata = stats["nodata"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        return readable & (grey_std >= 4.0) & (nodata <= 0.25)


def _closest(
    stats: pd.DataFrame,
    near: npt.NDArray[np.bool_],
    target: pd.DataFrame,
    target_near: npt.NDArray[np.bool_],
    *,
    earlier_only: bool,
    allowed: Callable[[npt.NDArray[np.int64], npt.NDArray[np.int64]], npt.NDArray[np.bool_]] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """For each image of ``stats``, the closest image of ``target`` (index, Hamming distance, equal bytes), -1 when
    none is within ``NEAR_NONE - 1`` bits. ``earlier_only``: ``target`` is ``stats`` and only earlier rows count;
    ``allowed(rows, columns)`` masks out pairs (for splits)."""
    count = len(stats)
    best = np.full(count, -1, np.int64)
    distance = np.full(count, 64, np.int64)
    exact = np.zeros(count, bool)
    # exact copies first: equal SHA-256 of the file bytes
    readable = stats["readable"].fillna(False).to_numpy(bool)
    target_readable = target["readable"].fillna(False).to_numpy(bool)
    first: dict[str, list[int]] = {}
    for j, digest in enumerate(target["sha256"].fillna("").to_numpy()):
        if target_readable[j] and digest:
            first.setdefault(digest, []).append(j)
    for i, digest in enumerate(stats["sha256"].fillna("").to_numpy()):
        if not (readable[i] and digest in first):
            continue
        candidates = np.asarray(first[digest], np.int64)
        if earlier_only:
            candidates = candidates[candidates < i]
        if allowed is not None and candidates.size:
            candidates = candidates[allowed(np.full(candidates.size, i), candidates)]
        if candidates.size:
            best[i], distance[i], exact[i] = candidates[0], 0, True
    # near copies: perceptual hashes, in blocks of rows to keep memory small
    hashes = stats["phash"].to_numpy(np.uint64)
    target_hashes = target["phash"].to_numpy(np.uint64)
    rows_all = np.flatnonzero(near & ~exact)
    columns = np.flatnonzero(target_near)
    if rows_all.size == 0 or columns.size == 0:
        return best, distance, exact
    for start in range(0, rows_all.size, 256):
        rows = rows_all[start : start + 256]
        bits = np.bitwise_count(hashes[rows, None] ^ target_hashes[None, columns])
        mask = np.ones(bits.shape, bool)
        if earlier_only:
            mask &= columns[None, :] < rows[:, None]
        if allowed is not None:
            mask &= allowed(np.broadcast_to(rows[:, None], bits.shape), np.broadcast_to(columns[None, :], bits.shape))
        bits = np.where(mask, bits, np.uint8(64))
        pick = np.argmin(bits, axis=1)
        found = bits[np.arange(rows.size), pick]
        close = found < NEAR_NONE
        best[rows[close]] = columns[pick[close]]
        distance[rows[close]] = found[close]
    return best, distance, exact


def _match_badness(distance: npt.NDArray[np.int64], index: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    return np.where(index >= 0, _ramp(distance.astype(float), NEAR_NONE, NEAR_SAME), 0.0)


def _duplicates(stats: pd.DataFrame, near: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    index, distance, _ = _closest(stats, near, stats, near, earlier_only=True)
    return _match_badness(distance, index)


def _splits(dataset: Dataset) -> npt.NDArray[np.object_] | None:
    """The split of every image (None where unknown), or None when the dataset has fewer than two splits."""
    images = dataset.images
    if "split" in images.columns:
        splits = np.array([str(s) if pd.notna(s) and str(s) else None for s in images["split"]], dtype=object)
    else:
        firsts = images["file_name"].astype(str).str.split("/", n=1)
        splits = np.array([p[0] if len(p) == 2 and p[0].lower() in SPLIT_NAMES else None for p in firsts], dtype=object)
    named = {s for s in splits if s is not None}
    return splits if len(named) >= 2 else None


def _leakage(
    stats: pd.DataFrame,
    near: npt.NDArray[np.bool_],
    reference: pd.DataFrame | None,
    splits: npt.NDArray[np.object_] | None,
    readable: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float64]:
    if reference is None and splits is None:
        return np.full(len(stats), np.nan)
    badness = np.zeros(len(stats))
    if reference is not None:
        index, distance, _ = _closest(stats, near, reference, _near_candidates(reference), earlier_only=False)
        badness = np.fmax(badness, _match_badness(distance, index))
    if splits is not None:
        codes = pd.factorize(pd.Series(splits), use_na_sentinel=True)[0]

        def other_split(rows: npt.NDArray[np.int64], columns: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
            a, b = codes[rows], codes[columns]
            return (a >= 0) & (b >= 0) & (a != b)

        index, distance, _ = _closest(stats, near, stats, near, earlier_only=True, allowed=other_split)
        badness = np.fmax(badness, _match_badness(distance, index))
    return np.where(readable, badness, np.nan)


def _ramp(values: npt.ArrayLike, zero: float, one: float) -> npt.NDArray[np.float64]:
    """Linear badness: 0 at ``zero``, 1 at ``one`` (either order), clipped; NaN stays NaN."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.clip((values - zero) / (one - zero), 0.0, 1.0)
