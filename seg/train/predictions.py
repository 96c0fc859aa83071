"""A model's class probabilities as a seg Dataset of predicted objects.

Each connected component (8-connectivity) of each non-background class of the argmax map is one object: its ``rle``
is a compressed COCO RLE at full image size, its ``score`` the mean probability of its class over its pixels, its
``origin`` ``"prediction"``; components smaller than ``min_area`` pixels are dropped. ``seg curate --predictions``
and ``seg annotate push --predictions`` read the saved Dataset folder (scores make confident predictions).

Components are found without scipy or OpenCV: maximal runs of one class down each image column (the COCO RLE's own
order, so a component's RLE comes straight from its runs), runs of neighbouring columns joined when they touch,
including diagonally, and the run graph's components found by vectorised union-find (min-hooking and pointer jumping).
The RLEs of all components are compressed together (:func:`seg.dataset.rle.from_uncompressed_many`): a prediction
of 100 000 specks costs seconds, not minutes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset

#: ``origin`` of every predicted object.
ORIGIN = "prediction"


@dataclass(frozen=True)
class Components:
    """Connected components of a label image, as vertical runs.

    Attributes:
        height, width: the image size.
        column, start, stop: every run: its column and its rows ``start`` to ``stop`` (exclusive), sorted by column
            then row (the column-major order of COCO RLEs).
        value: the label of each run.
        component: the component of each run, numbered 0.. in order of their first pixel (column-major).
    """

    height: int
    width: int
    column: npt.NDArray[np.int64]
    start: npt.NDArray[np.int64]
    stop: npt.NDArray[np.int64]
    value: npt.NDArray[np.int64]
    component: npt.NDArray[np.int64]

    @property
    def count(self) -> int:
        return int(self.component.max()) + 1 if self.component.size else 0

    def areas(self) -> npt.NDArray[np.int64]:
        """Pixels of each component."""
        return np.bincount(self.component, weights=self.stop - self.start, minlength=self.count).astype(np.int64)

    def values(self) -> npt.NDArray[np.int64]:
        """The label of each component."""
        out = np.zeros(self.count, np.int64)
        out[self.component] = self.value
        return out

    def pixel_sums(self, weights: npt.NDArray) -> npt.NDArray[np.float64]:
        """Per component, the sum of ``weights[row, column, value]`` ((H, W, labels) array) over its pixels."""
        lengths = self.stop - self.start
        total = int(lengths.sum())
        first = np.cumsum(lengths) - lengths
        rows = np.repeat(self.start, lengths) + (np.arange(total) - np.repeat(first, lengths))
        values = weights[rows, np.repeat(self.column, lengths), np.repeat(self.value, lengths)]
        return np.bincount(np.repeat(self.component, lengths), weights=values, minlength=self.count)

    def rle(self, index: int) -> str:
        """Compressed COCO RLE of component ``index``."""
        return self.rles([index])[0]

    def rles(self, indices: Sequence[int] | npt.NDArray[np.integer] | None = None) -> list[str]:
        """Compressed COCO RLEs of the components ``indices`` (default: all), in that order.

        Vectorised over all runs; one pycocotools call compresses them all (a component costs microseconds).
        """
        chosen = np.arange(self.count) if indices is None else np.asarray(indices, np.int64)
        if chosen.size == 0:
            return []
        pixels = self.height * self.width
        order = np.lexsort((self.start, self.column, self.component))  # by component, then flat order
        component = self.component[order]
        begin = self.column[order] * self.height + self.start[order]
        end = self.column[order] * self.height + self.stop[order]
        # a run continuing across a column boundary (bottom of one, top of the next) is one run in flat order
        first = np.ones(begin.size, bool)
        first[1:] = component[1:] != component[:-1]
        new = first.copy()
        new[1:] |= begin[1:] != end[:-1]
        last = np.append(new[1:], True)
        begin, end, component, first = begin[new], end[last], component[new], first[new]
        gaps = begin - np.where(first, 0, np.roll(end, 1))
        counts = np.stack([gaps, end - begin], axis=1).ravel().tolist()
        stop = np.cumsum(np.bincount(component, minlength=self.count))
        start = stop - np.bincount(component, minlength=self.count)
        tails = (pixels - end[stop - 1]).tolist()
        runs = []
        for k in chosen.tolist():
            own = counts[2 * int(start[k]) : 2 * int(stop[k])]
            if tails[k]:
                own.append(tails[k])
            runs.append(own)
        return coco_rle.from_uncompressed_many(runs, self.height, self.width)


def connected_components(labels: npt.ArrayLike, background: int = 0) -> Components:
    """8-connected components of each label value of an (H, W) integer image, ``background`` left out."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected an (H, W) label image, got shape {labels.shape} {labels.dtype}")
    height, width = labels.shape
    flat = np.ascontiguousarray(labels.T).ravel()  # column-major: one image column after another
    change = np.ones(flat.size, bool)
    change[1:] = flat[1:] != flat[:-1]
    change[::height] = True  # every column starts new runs
    begin = np.flatnonzero(change)
    end = np.append(begin[1:], flat.size)
    value = flat[begin].astype(np.int64)
    keep = value != background
    begin, end, value = begin[keep], end[keep], value[keep]
    column, start = np.divmod(begin, height)
    stop = start + (end - begin)
    parent = _union(_touching(column, start, stop, value, height), begin.size)
    _, component = np.unique(parent, return_inverse=True)  # roots are the smallest run index: first-pixel order
    return Components(height, width, column, start, stop, value, component.astype(np.int64))


def _touching(
    column: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    stop: npt.NDArray[np.int64],
    value: npt.NDArray[np.int64],
    height: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs (a, b) of runs of one value where b lies in the next column and touches a, diagonals included."""
    span = height + 2
    key_start, key_stop = column * span + start, column * span + stop
    # b touches a when b.start <= a.stop and b.stop >= a.start (rows), b in column a + 1
    low = np.searchsorted(key_stop, (column + 1) * span + start, side="left")
    high = np.searchsorted(key_start, (column + 1) * span + stop, side="right")
    counts = np.maximum(high - low, 0)
    a = np.repeat(np.arange(column.size), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    b = np.repeat(low, counts) + offsets
    same = value[a] == value[b]
    return a[same], b[same]


def _union(edges: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]], count: int) -> npt.NDArray[np.int64]:
    """Each node's root (the smallest node of its component) by min-hooking of roots and pointer jumping."""
    parent = np.arange(count)
    a, b = edges
    while True:
        root_a, root_b = parent[a], parent[b]
        differ = root_a != root_b
        if not differ.any():
            return parent
        high = np.maximum(root_a[differ], root_b[differ])
        low = np.minimum(root_a[differ], root_b[differ])
        np.minimum.at(parent, high, low)  # roots only: parent[x] <= x always, so no cycles
        while True:  # flatten to stars again
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def predicted_objects(
    probabilities: npt.NDArray[np.floating],
    classes: Sequence[str],
    *,
    min_area: int = 4,
    labels: npt.NDArray[np.integer] | None = None,
) -> list[dict]:
    """One object per connected component of each non-background class of the argmax.

    Args:
        probabilities: (H, W, classes) softmax probabilities.
        classes: class names, background (index 0) first.
        min_area: smaller components (pixels) are dropped.
        labels: the argmax of ``probabilities`` when already computed.

    Returns:
        Object rows (``category``, ``rle``, ``score``, ``source_id``, ``origin``), in order of their first pixel
        (column-major), without the image columns.
    """
    if probabilities.ndim != 3 or probabilities.shape[-1] != len(classes):
        raise ValueError(f"expected (H, W, {len(classes)}) probabilities, got shape {probabilities.shape}")
    if labels is None:
        labels = probabilities.argmax(axis=-1)
    found = connected_components(labels)
    areas = found.areas()
    kept = np.flatnonzero(areas >= max(min_area, 1))
    scores = np.clip(found.pixel_sums(probabilities)[kept] / areas[kept], 0.0, 1.0).tolist()
    names = [classes[v] for v in found.values()[kept].tolist()]
    return [
        {"category": name, "rle": rle, "score": score, "source_id": str(number), "origin": ORIGIN}
        for number, (name, rle, score) in enumerate(zip(names, found.rles(kept), scores, strict=True), start=1)
    ]


def prediction_categories(classes: Sequence[str]) -> list[Category]:
    """The Dataset categories of a run's classes: class index ``i`` (background 0 left out) is category id ``i``."""
    return [Category(str(name), index) for index, name in enumerate(classes) if index > 0]


def predictions_dataset(
    images: Sequence[Mapping],
    objects: Mapping[str, Sequence[Mapping]],
    classes: Sequence[str],
    image_root: str | os.PathLike[str] | None = None,
) -> Dataset:
    """The Dataset of predictions.

    Args:
        images: image rows (``image_id``, ``file_name`` relative to ``image_root``, ``width``, ``height``, extras).
        objects: per image id, its objects from :func:`predicted_objects`.
        classes: class names, background first.
        image_root: the image folder (None when rows carry their own ``root``).
    """
    rows = []
    for image in images:
        fields = {k: image[k] for k in ("image_id", "file_name", "width", "height")}
        rows.extend({**fields, **o} for o in objects.get(str(image["image_id"]), []))
    return Dataset.from_records(images, rows, prediction_categories(classes), image_root=image_root)
