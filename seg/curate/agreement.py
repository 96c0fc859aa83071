"""Agreement with other opinions of the same images: other annotators, and a model's predictions.

Objects are compared by mask IoU (box-only objects by their box); two objects of the same class are *matched* greedily,
highest IoU first, one to one, when their IoU is at least :data:`MATCH_IOU`. Where an IoU is judged against noise
(the model's own error, two people's styles), it is read against the dataset's typical value, so that a noisy model
or loose annotators do not flag every image.

Inter-annotator (objects with an ``annotator`` column; images annotated by two or more people):

- ``annotator_disagreement`` (image): every pair of annotators is matched; the image's mean IoU over all matched pairs,
  every unmatched object counting as IoU 0, compared with the median over the multi-annotator images: badness 0 up to
  :data:`SPREAD_FLOOR` robust spreads (1.4826 MAD, at least :data:`MIN_SPREAD`) below it, 1 from
  :data:`SPREAD_FULL` spreads below.
- ``annotator_unmatched`` (object): the share of the other annotators of its image that drew no match for it (1 with
  two annotators when the other drew nothing there). Objects without an annotator are not measured.

Predictions (a Dataset of a model's output for the same images, paired by ``image_id``, else by ``file_name``; images
without a prediction entry, or of another size, are not measured; predictions of classes the dataset does not have
are ignored; a prediction without a score counts as a sure one; confident means score >= :data:`CONFIDENT_SCORE`):

- ``prediction_iou`` (object): its matched confident prediction's IoU turned into a boundary offset in pixels,
  ``sqrt(area) * (1 - IoU) / (1 + IoU)`` (a square moved by ``d`` pixels), over the dataset's median offset (at least
  1 px): 0 up to :data:`OFFSET_FLOOR` times, 1 from :data:`OFFSET_FULL` times (a shifted or sloppy outline). An
  object the model does not predict at all costs nothing here: models miss objects (the image-level disagreement
  counts it).
- ``prediction_confidence`` (object): each pixel's probability of a class is the highest score of that class's
  predictions covering it; cleanlab's test on the object's mean probabilities: the margin by which another class
  beats the annotated one, over that class's typical probability on its own objects (median): 0 up to
  :data:`MARGIN_FLOOR`, 1 at :data:`MARGIN_FULL` (the model calls it something else). Background is no rival, as
  above. Only when predictions carry scores and the dataset has two classes or more.
- ``missed_by_annotator`` (image): confident predictions of at least a small object's size (the class's 10th
  percentile of area) with at most 10 % of their area under annotations of their class (the sum of their overlaps
  with each); ``1 - prod(1 - score)`` over them.
- ``prediction_disagreement`` (image): the mean IoU over the image's matched pairs, unmatched annotations and
  unmatched confident predictions counting 0 (1 when both are empty), read against the dataset's median like
  ``annotator_disagreement``.

Everything is computed on compressed RLE with pycocotools, one image at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from pycocotools import mask as cocomask

from seg.curate.signals import Signal, SignalFrames
from seg.dataset.core import Dataset
from seg.progress import Counted, Progress

logger = logging.getLogger(__name__)

SIGNALS: list[Signal] = [
    Signal(
        "annotator_disagreement",
        "agreement",
        "image",
        "annotators disagree",
        "When several people annotated the image: their mean IoU (objects matched by class and overlap, objects only "
        "one drew counting 0), against the dataset's usual agreement: 0 within 3 spreads of the median, 1 from 6.",
    ),
    Signal(
        "annotator_unmatched",
        "agreement",
        "object",
        "drawn by one annotator only",
        "The share of the image's other annotators who drew nothing matching this object.",
    ),
    Signal(
        "prediction_iou",
        "agreement",
        "object",
        "off the model's outline",
        "IoU with the model's matching prediction, as a boundary offset in pixels over the dataset's median offset: "
        "0 up to 5 times it, 1 from 10 times.",
    ),
    Signal(
        "missed_by_annotator",
        "agreement",
        "image",
        "model finds an unannotated object",
        "Confident predictions that no annotation of their class overlaps: 1 - product of (1 - score) over them.",
    ),
    Signal(
        "prediction_disagreement",
        "agreement",
        "image",
        "disagrees with the model",
        "Mean IoU between annotations and confident predictions matched one to one (unmatched ones counting 0), "
        "against the dataset's usual agreement: 0 within 3 spreads of the median, 1 from 6.",
    ),
    Signal(
        "prediction_confidence",
        "agreement",
        "object",
        "model calls it another class",
        "The model's pixel probabilities (highest covering score per class): how far another class beats the "
        "annotated one over the object, relative to that class's typical probability: 0 up to 0.75, 1 at 1.",
    ),
]

#: Least IoU at which two objects of a class can be the same object.
MATCH_IOU = 0.3
#: Score from which a prediction is confident.
CONFIDENT_SCORE = 0.5
#: ``prediction_iou``: 0 up to this many times the dataset's median boundary offset, 1 from :data:`OFFSET_FULL`.
OFFSET_FLOOR, OFFSET_FULL = 5.0, 10.0
#: The median boundary offset is taken as at least this many pixels.
MIN_OFFSET = 1.0
#: ``prediction_confidence``: 0 up to this margin over the rival's typical probability, 1 from :data:`MARGIN_FULL`.
MARGIN_FLOOR, MARGIN_FULL = 0.75, 1.0
#: Image-level IoUs: 0 up to this many robust spreads below the dataset's median, 1 from :data:`SPREAD_FULL`.
SPREAD_FLOOR, SPREAD_FULL = 3.0, 6.0
#: The robust spread of image-level IoUs is taken as at least this.
MIN_SPREAD = 0.05
#: A confident prediction with at most this share of its area under annotations of its class is missed.
MISSED_OVERLAP = 0.1

OBJECT_COLUMNS = ["annotator_unmatched", "prediction_iou", "prediction_confidence"]
IMAGE_COLUMNS = ["annotator_disagreement", "missed_by_annotator", "prediction_disagreement"]


@dataclass
class _Objects:
    """One side's objects, ready for pycocotools: RLEs (None where unreadable), areas, class names, scores, and the
    rows of each image (objects are grouped by image, in order)."""

    rles: list[dict | None]
    areas: npt.NDArray[np.float64]
    names: npt.NDArray[np.str_]
    scores: npt.NDArray[np.float64]
    spans: npt.NDArray[np.int64]

    @classmethod
    def of(cls, dataset: Dataset) -> _Objects:
        rles = _rles(dataset.objects)
        return cls(
            rles,
            _areas(rles),
            dataset.objects["category"].to_numpy(str),
            dataset.objects["score"].to_numpy(np.float64),
            _spans(dataset),
        )

    def rows(self, k: int) -> npt.NDArray[np.int64]:
        return np.arange(*self.spans[k])


def agreement_signals(
    dataset: Dataset, *, predictions: Dataset | None = None, progress: Progress = None
) -> SignalFrames:
    """Inter-annotator and model-agreement signals (see the module docstring); NaN where there is no second opinion.

    Args:
        dataset: the annotations.
        predictions: a model's predictions for the same images (objects with ``score``), or None.
        progress: wraps the loop over images (e.g. tqdm).

    Returns:
        ``(objects, images)`` frames as in :mod:`seg.curate.signals`.
    """
    count, image_count = len(dataset.objects), len(dataset.images)
    ours = _Objects.of(dataset)
    annotators = _annotators(dataset.objects)
    unmatched = np.full(count, np.nan)
    annotator_iou = np.full(image_count, np.nan)
    offset, own, rival = (np.full(count, np.nan) for _ in range(3))
    measured = np.zeros(count, bool)
    rival_name = np.full(count, "", dtype=object)
    missed, model_iou = np.full(image_count, np.nan), np.full(image_count, np.nan)
    if predictions is not None:
        pairing = _pair_images(dataset, predictions)
        theirs = _Objects.of(predictions)
        known = np.isin(theirs.names, dataset.category_names)  # classes the annotators never use are no evidence
        scored = bool(np.isfinite(theirs.scores[known]).any())
        theirs.scores = np.where(np.isfinite(theirs.scores), theirs.scores, 1.0)
        small = _small_areas(dataset)
    loop = Counted(range(image_count), image_count)
    for k in progress(loop) if progress else loop:
        at = ours.rows(k)
        if annotators is not None and at.size:
            found = _annotator_agreement([ours.rles[o] for o in at], ours.names[at], annotators[at])
            if found is not None:
                annotator_iou[k], unmatched[at] = found
        if predictions is None or pairing[k] < 0:
            continue
        other = theirs.rows(pairing[k])
        other = other[known[other]]
        found = _prediction_agreement(ours, at, theirs, other, small)
        offset[at], own[at], rival[at], rival_name[at], missed[k], model_iou[k] = found
        measured[at] = ours.areas[at] > 0
    objects = pd.DataFrame(index=pd.RangeIndex(count))
    objects["annotator_unmatched"] = unmatched
    median_offset = max(float(np.nanmedian(offset)) if np.isfinite(offset).any() else 0.0, MIN_OFFSET)
    badness = np.nan_to_num(_ramp(offset / median_offset, OFFSET_FLOOR, OFFSET_FULL))  # unmatched: nothing to judge
    objects["prediction_iou"] = np.where(measured, badness, np.nan)
    if predictions is not None and scored and len(dataset.categories) > 1:
        typical = _typical(own, ours.names)
        margin = (rival - own) / np.array([typical.get(n, np.nan) for n in rival_name])
        badness = np.nan_to_num(_ramp(margin, MARGIN_FLOOR, MARGIN_FULL))  # no rival: nothing against it
        objects["prediction_confidence"] = np.where(np.isnan(own), np.nan, badness)
    else:
        objects["prediction_confidence"] = np.nan
    images = pd.DataFrame(index=pd.Index(dataset.images["image_id"], dtype=str))
    images["annotator_disagreement"] = _below_usual(annotator_iou)
    images["missed_by_annotator"] = missed
    images["prediction_disagreement"] = _below_usual(model_iou)
    return objects, images


def _ramp(values: npt.NDArray[np.float64], floor: float, full: float) -> npt.NDArray[np.float64]:
    """0 up to ``floor``, 1 from ``full``, linear between (NaN stays NaN)."""
    return np.clip((values - floor) / (full - floor), 0.0, 1.0)


def _below_usual(iou: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Badness of image-level mean IoUs: how many robust spreads each lies below the median of the measured ones."""
    measured = iou[np.isfinite(iou)]
    if measured.size == 0:
        return iou.copy()
    median = float(np.median(measured))
    spread = max(1.4826 * float(np.median(np.abs(measured - median))), MIN_SPREAD)
    return _ramp((median - iou) / spread, SPREAD_FLOOR, SPREAD_FULL)


def _typical(own: npt.NDArray[np.float64], names: npt.NDArray[np.str_]) -> dict[str, float]:
    """Per class, the median probability the model gives its own objects (cleanlab's per-class threshold), >= 0.25."""
    frame = pd.DataFrame({"name": names, "own": own}).dropna()
    return {str(n): max(float(v), 0.25) for n, v in frame.groupby("name")["own"].median().items()}


# -- inputs -------------------------------------------------------------------------------------------------------


def _spans(dataset: Dataset) -> npt.NDArray[np.int64]:
    """``(images, 2)``: the objects of image ``k`` are rows ``spans[k, 0]:spans[k, 1]`` (grouped by image, in order)."""
    per_image = (
        dataset.objects["image_id"].value_counts().reindex(dataset.images["image_id"], fill_value=0).to_numpy(np.int64)
    )
    ends = np.cumsum(per_image)
    return np.stack([ends - per_image, ends], axis=1)


def _rles(objects: pd.DataFrame) -> list[dict | None]:
    """pycocotools RLE of every object: its mask, else its box; None when neither can be read."""
    out: list[dict | None] = []
    rows = zip(
        objects["rle"],
        objects["height"].to_numpy(np.int64),
        objects["width"].to_numpy(np.int64),
        objects[["bbox_x", "bbox_y", "bbox_w", "bbox_h"]].to_numpy(np.float64),
        strict=True,
    )
    for counts, height, width, box in rows:
        if isinstance(counts, str):
            out.append({"size": [int(height), int(width)], "counts": counts.encode("ascii")})
        elif np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0:
            box = np.ascontiguousarray(box[None, :])  # pycocotools reads the raw buffer: a row of an F-ordered array
            out.append(cocomask.frPyObjects(box, int(height), int(width))[0])
        else:
            out.append(None)
    return out


def _areas(rles: list[dict | None]) -> npt.NDArray[np.float64]:
    """Pixel count of every RLE (0 where there is none)."""
    out = np.zeros(len(rles))
    known = [k for k, r in enumerate(rles) if r is not None]
    for start in range(0, len(known), 255):  # pycocotools counts a list's length in a uint8 here
        chunk = known[start : start + 255]
        out[chunk] = cocomask.area([rles[k] for k in chunk])
    return out


def _annotators(objects: pd.DataFrame) -> npt.NDArray[np.object_] | None:
    if "annotator" not in objects.columns or objects["annotator"].isna().all():
        return None
    return objects["annotator"].to_numpy(object)


def _pair_images(dataset: Dataset, predictions: Dataset) -> npt.NDArray[np.int64]:
    """For every image of ``dataset``, the row of its image in ``predictions`` (by id, else file name), or -1."""
    theirs = predictions.images.reset_index(drop=True)
    by_id = pd.Series(np.arange(len(theirs)), index=theirs["image_id"].to_numpy())
    names = theirs.drop_duplicates("file_name", keep=False)
    by_name = pd.Series(names.index.to_numpy(), index=names["file_name"].to_numpy())
    ours = dataset.images
    row = ours["image_id"].map(by_id)
    row = row.fillna(ours["file_name"].map(by_name)).fillna(-1).to_numpy(np.int64, copy=True)
    paired = row >= 0
    sizes = theirs[["width", "height"]].to_numpy(np.int64)[np.maximum(row, 0)]
    wrong = paired & (sizes != ours[["width", "height"]].to_numpy(np.int64)).any(axis=1)
    if wrong.any():
        logger.warning(
            "agreement: %d images differ in size from their predictions' (first: %s); not compared",
            int(wrong.sum()),
            ours["image_id"].iloc[int(np.flatnonzero(wrong)[0])],
        )
    row[wrong] = -1
    if not (row >= 0).any():
        logger.warning("agreement: no image of the predictions matches an annotated image by id or file name")
    return row


def _small_areas(dataset: Dataset) -> dict[str, float]:
    """Per class, the 10th percentile of its annotated objects' areas."""
    table = dataset.objects[dataset.objects["area"] > 0]
    return {str(name): float(np.quantile(areas, 0.1)) for name, areas in table.groupby("category")["area"]}


# -- matching -----------------------------------------------------------------------------------------------------


def _ious(a: Sequence[dict | None], b: Sequence[dict | None], crowd: bool = False) -> npt.NDArray[np.float64]:
    """(len(a), len(b)) IoU matrix; with ``crowd``, the share of each ``a`` inside each ``b`` instead."""
    rows = [i for i, r in enumerate(a) if r is not None]
    columns = [j for j, r in enumerate(b) if r is not None]
    if not rows or not columns:
        return np.zeros((len(a), len(b)))
    found = np.asarray(cocomask.iou([a[i] for i in rows], [b[j] for j in columns], [int(crowd)] * len(columns)))
    if len(rows) == len(a) and len(columns) == len(b):
        return found.astype(np.float64, copy=False)
    out = np.zeros((len(a), len(b)))
    out[np.ix_(rows, columns)] = found
    return out


def _greedy(iou: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """One-to-one matches, highest IoU first, of pairs with IoU >= :data:`MATCH_IOU`: ``(rows, columns)``."""
    candidates = np.flatnonzero(iou.ravel() >= MATCH_IOU)
    order = candidates[np.argsort(-iou.ravel()[candidates], kind="stable")]
    used_rows, used_columns = set(), set()
    rows, columns = [], []
    for flat in order.tolist():
        i, j = divmod(flat, iou.shape[1])
        if i in used_rows or j in used_columns:
            continue
        used_rows.add(i)
        used_columns.add(j)
        rows.append(i)
        columns.append(j)
    return np.asarray(rows, np.int64), np.asarray(columns, np.int64)


def _same_class(a: npt.NDArray[np.str_], b: npt.NDArray[np.str_]) -> npt.NDArray[np.bool_]:
    return a[:, None] == b[None, :]


# -- inter-annotator ----------------------------------------------------------------------------------------------


def _annotator_agreement(
    rles: list[dict | None], names: npt.NDArray[np.str_], annotators: npt.NDArray[np.object_]
) -> tuple[float, npt.NDArray[np.float64]] | None:
    """One image's mean IoU between annotators and per-object ``annotator_unmatched``, or None under two annotators."""
    known = np.array([isinstance(a, str) for a in annotators], bool)
    people = sorted({a for a in annotators[known]})
    if len(people) < 2:
        return None
    iou = _ious(rles, rles) * _same_class(names, names)
    matched_by = np.zeros(len(rles))
    total, entries = 0.0, 0
    for i, first in enumerate(people):
        for second in people[i + 1 :]:
            mine = np.flatnonzero(known & (annotators == first))
            theirs = np.flatnonzero(known & (annotators == second))
            rows, columns = _greedy(iou[np.ix_(mine, theirs)])
            total += float(iou[mine[rows], theirs[columns]].sum())
            entries += mine.size + theirs.size - rows.size
            matched_by[mine[rows]] += 1
            matched_by[theirs[columns]] += 1
    unmatched = np.where(known, 1.0 - matched_by / (len(people) - 1), np.nan)
    return (total / entries if entries else 1.0), unmatched


# -- predictions --------------------------------------------------------------------------------------------------


def _prediction_agreement(
    ours: _Objects, at: npt.NDArray[np.int64], theirs: _Objects, other: npt.NDArray[np.int64], small: dict[str, float]
) -> tuple:
    """One image: per object its boundary offset to its matched prediction (NaN without one), its class's and its
    best rival's mean probability and the rival's name; the image's missed badness and mean IoU."""
    rles, names, areas = [ours.rles[o] for o in at], ours.names[at], ours.areas[at]
    predicted, predicted_names = [theirs.rles[j] for j in other], theirs.names[other]
    predicted_areas, scores = theirs.areas[other], theirs.scores[other]
    everything = _ious(rles, predicted)
    same = _same_class(names, predicted_names)
    iou = everything * same
    sure = scores >= CONFIDENT_SCORE
    rows, columns = _greedy(iou[:, sure])
    best = np.zeros(len(rles))
    best[rows] = iou[:, sure][rows, columns]
    offset = np.full(len(rles), np.nan)  # NaN: no match, or nothing to match
    offset[rows] = np.sqrt(areas[rows]) * (1 - best[rows]) / (1 + best[rows])
    entries = len(rles) + int(sure.sum()) - rows.size
    mean_iou = float(best.sum()) / entries if entries else 1.0
    # missed: confident predictions of a fair size hardly under annotations of their class
    overlap = everything * (areas[:, None] + predicted_areas[None, :]) / (1.0 + everything)  # pixels in common
    with np.errstate(invalid="ignore", divide="ignore"):
        covered = (overlap * same).sum(axis=0) / predicted_areas
    least = np.array([small.get(str(n), 0.0) for n in predicted_names])
    missed = sure & (predicted_areas > 0) & (predicted_areas >= least) & ~(covered > MISSED_OVERLAP)
    missed_badness = 1.0 - float(np.prod(1.0 - np.clip(scores[missed], 0.0, 1.0)))
    own, rival, rival_name = _probabilities(rles, names, areas, predicted, predicted_names, scores, overlap)
    return offset, own, rival, rival_name, missed_badness, mean_iou


def _probabilities(
    rles: list[dict | None],
    names: npt.NDArray[np.str_],
    areas: npt.NDArray[np.float64],
    predicted: list[dict | None],
    predicted_names: npt.NDArray[np.str_],
    scores: npt.NDArray[np.float64],
    overlap: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.object_]]:
    """Per object, the mean over its pixels of the model's probability of its own class, of the best other class,
    and that class's name; a class's probability at a pixel is the highest score of its predictions covering it.

    Where a class's predictions do not overlap, its mean over an object is ``sum_k score_k * |object & prediction_k|
    / |object|``. Where they do, they are sorted by score (highest first) and ``U_k`` is the union of the first ``k``:
    the share of the object in ``U_k`` minus that in ``U_(k-1)`` has probability ``score_k``.
    """
    classes = list(np.unique(predicted_names))
    probability = np.zeros((len(rles), len(classes)))
    weights = np.clip(scores, 0.0, 1.0)
    for c, name in enumerate(classes):
        theirs = np.flatnonzero((predicted_names == name) & np.array([r is not None for r in predicted], bool))
        if theirs.size == 0:
            continue
        among = _ious([predicted[j] for j in theirs], [predicted[j] for j in theirs])
        if not (np.triu(among, 1) > 0).any():
            probability[:, c] = overlap[:, theirs] @ weights[theirs] / np.where(areas > 0, areas, 1.0)
            continue
        theirs = theirs[np.argsort(-scores[theirs], kind="stable")]
        unions = [predicted[theirs[0]]]
        for j in theirs[1:]:
            unions.append(cocomask.merge([unions[-1], predicted[j]], intersect=False))
        shares = _ious(rles, unions, crowd=True)  # (objects, k): the share of each object inside U_k
        probability[:, c] = np.diff(shares, axis=1, prepend=0.0) @ weights[theirs]
    probability = np.clip(probability, 0.0, 1.0)
    index = {name: c for c, name in enumerate(classes)}
    own = np.array([probability[o, index[n]] if n in index else 0.0 for o, n in enumerate(names)])
    rival, rival_name = np.zeros(len(rles)), np.full(len(rles), "", dtype=object)
    if classes:
        others = np.where(names[:, None] == np.asarray(classes, str)[None, :], -1.0, probability)
        best = others.argmax(axis=1)
        seen = others[np.arange(len(rles)), best] > 0
        rival[seen] = others[np.arange(len(rles)), best][seen]
        rival_name[seen] = np.asarray(classes, object)[best[seen]]
    unreadable = areas <= 0
    own[unreadable], rival[unreadable] = np.nan, np.nan
    return own, rival, rival_name
