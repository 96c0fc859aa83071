"""Combine the signals into one score per image (and per object), rank, keep the best, and say why.

The score of an image is ``1 - sum_g w_g * b_g / sum_g w_g`` over the signal groups ``g`` (:data:`GROUPS`), where
``b_g`` is the group's badness: its worst signal on the image (object-level signals reach the image as their maximum
over its objects; NaN counts as 0). So a score is in ``[0, 1]``, 1 when no signal fires; one sure defect (badness 1) in
a group of weight 1 costs ``1 / sum(w)`` of the score. An object's score is the same formula over its own
object-level signals and its image's image-level signals.

Ranking: by score, best first; ties broken by ``image_id`` (then object position), so the same input always gives
the same ranking. Reasons: the signals that cost at least :data:`REASON_MIN` of badness, worst first, each as its
phrase, naming the object (its ``source_id``, else its position) for object-level signals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from seg.curate.signals import GROUPS, Signal
from seg.errors import OptionError

#: Badness below which a signal is not listed among an image's reasons.
REASON_MIN = 0.2
#: Most reasons listed per image or object.
REASON_COUNT = 4


def parse_weights(text: str | Mapping[str, float] | None) -> dict[str, float]:
    """The group weights: the defaults updated by ``"group=w,group=w"`` (or a mapping).

    Raises:
        OptionError: an unknown group, a weight that is not a finite number >= 0, or all weights 0.
    """
    weights = dict(GROUPS)
    if text is None:
        return weights
    items = text.items() if isinstance(text, Mapping) else (_pair(part) for part in text.split(",") if part.strip())
    for name, value in items:
        if name not in GROUPS:
            raise OptionError(f"unknown signal group {name!r} in --weights", expected=", ".join(GROUPS), actual=name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise OptionError(f"weight of {name} must be a number >= 0", actual=value)
        weights[name] = float(value)
    if not any(weights.values()):
        raise OptionError("at least one group weight must be above 0", actual=weights)
    return weights


def _pair(part: str) -> tuple[str, float]:
    name, sep, value = part.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not math.isfinite(number):
        raise OptionError("expected GROUP=WEIGHT pairs like geometry=2,reference=0.5", actual=part.strip())
    return name.strip(), number


def _joined(frames: Sequence[pd.DataFrame | None], index: pd.Index) -> pd.DataFrame:
    present = [f.reindex(index) for f in frames if f is not None and len(f.columns)]
    return pd.concat(present, axis=1) if present else pd.DataFrame(index=index)


def combine(
    images: pd.DataFrame,
    objects: pd.DataFrame,
    object_frames: Sequence[pd.DataFrame | None],
    image_frames: Sequence[pd.DataFrame | None],
    signals: Sequence[Signal],
    weights: Mapping[str, float],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score, rank and explain every image and object.

    Args:
        images: the Dataset's images table (``image_id``, ``file_name``).
        objects: the Dataset's objects table (``image_id``, ``category``, ``source_id``).
        object_frames: object-level signal frames, indexed by object position.
        image_frames: image-level signal frames, indexed by ``image_id``.
        signals: every signal the frames may hold.
        weights: group -> weight (:func:`parse_weights`).

    Returns:
        ``(images, objects)`` tables: images with ``image_id``, ``file_name``, ``score``, ``rank``, one column per
        group (its badness), one per signal, ``reasons``; objects with ``object``, ``image_id``, ``category``,
        ``score``, ``rank``, one column per group, one per object-level signal, ``reasons``.
    """
    by_name = {s.name: s for s in signals}
    image_ids = pd.Index(images["image_id"].astype(str), name="image_id")
    positions = pd.RangeIndex(len(objects), name="object")
    object_signals = _joined(object_frames, positions).clip(0, 1)
    image_signals = _joined(image_frames, image_ids).clip(0, 1)
    object_image = objects["image_id"].astype(str).to_numpy()
    labels = _object_labels(objects)

    # object-level signals reach their image as the worst object
    worst = object_signals.fillna(0).groupby(object_image).max().reindex(image_ids).fillna(0)
    which = object_signals.fillna(0).groupby(object_image).idxmax().reindex(image_ids) if len(objects) else None
    per_image = pd.concat([image_signals, worst.add_prefix("\0")], axis=1)  # prefix avoids clashes before renaming
    per_image.columns = [c.lstrip("\0") for c in per_image.columns]

    image_table = images[["image_id", "file_name"]].astype({"image_id": str}).reset_index(drop=True)
    image_groups = _group_badness(per_image.fillna(0), by_name)
    image_table["score"] = _score(image_groups, weights)
    for group in GROUPS:
        image_table[group] = image_groups[group].to_numpy()
    for column in per_image.columns:
        image_table[column] = per_image[column].to_numpy()
    image_table["reasons"] = _reasons(per_image, by_name, weights, which, labels)
    image_table["rank"] = _rank(image_table["score"], image_table["image_id"])

    object_table = pd.DataFrame(
        {"object": positions, "image_id": object_image, "category": objects["category"].to_numpy()}
    )
    inherited = image_signals.fillna(0).reindex(object_image).reset_index(drop=True)
    own = object_signals.fillna(0).reset_index(drop=True)
    object_groups = _group_badness(pd.concat([own, inherited], axis=1), by_name)
    object_table["score"] = _score(object_groups, weights)
    for group in GROUPS:
        object_table[group] = object_groups[group].to_numpy()
    for column in object_signals.columns:
        object_table[column] = object_signals[column].to_numpy()
    object_table["reasons"] = _reasons(own, by_name, weights, None, labels)
    object_table["rank"] = _rank(object_table["score"], pd.Series(object_image), object_table["object"])
    return image_table, object_table


def _object_labels(objects: pd.DataFrame) -> list[str]:
    """How reasons name each object: its ``source_id``, else its position."""
    if "source_id" not in objects.columns:
        return [str(i) for i in range(len(objects))]
    ids = objects["source_id"].astype(object).where(objects["source_id"].notna(), "").astype(str).tolist()
    return [s or str(i) for i, s in enumerate(ids)]


def _group_badness(frame: pd.DataFrame, by_name: Mapping[str, Signal]) -> pd.DataFrame:
    out = pd.DataFrame(0.0, index=frame.index, columns=list(GROUPS))
    for group in GROUPS:
        columns = [c for c in frame.columns if c in by_name and by_name[c].group == group]
        if columns:
            out[group] = frame[columns].max(axis=1)
    return out


def _score(groups: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    w = np.array([weights.get(g, 0.0) for g in GROUPS])
    return 1.0 - groups[list(GROUPS)].to_numpy() @ w / w.sum()


def _rank(score: pd.Series, *keys: pd.Series) -> np.ndarray:
    columns = [k.to_numpy() if pd.api.types.is_numeric_dtype(k) else k.to_numpy(dtype=str) for k in reversed(keys)]
    order = np.lexsort([*columns, -score.to_numpy()])
    ranks = np.empty(len(score), dtype=np.int64)
    ranks[order] = np.arange(1, len(score) + 1)
    return ranks


def _reasons(
    table: pd.DataFrame,
    by_name: Mapping[str, Signal],
    weights: Mapping[str, float],
    worst_objects: pd.DataFrame | None,
    labels: Sequence[str],
) -> list[str]:
    """For each row: its signals with badness >= REASON_MIN, costliest first (weight x badness, then name)."""
    names = [str(c) for c in table.columns if str(c) in by_name]
    reasons = [""] * len(table)
    if not names or not len(table):
        return reasons
    values = table[names].to_numpy(np.float64)
    rows, cols = np.nonzero(values >= REASON_MIN)
    cost = -np.array([weights.get(by_name[n].group, 0.0) for n in names])[cols] * values[rows, cols]
    alphabetical = np.argsort(np.argsort(names))
    order = np.lexsort((alphabetical[cols], cost, rows))
    texts = [by_name[n].reason for n in names]
    named = [by_name[n].level == "object" and worst_objects is not None for n in names]
    worst = None if worst_objects is None else worst_objects.reindex(columns=names).to_numpy(np.float64)
    found: dict[int, list[str]] = {}
    for row, col in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        listed = found.setdefault(row, [])
        if len(listed) == REASON_COUNT:
            continue
        text = texts[col]
        if named[col] and not math.isnan(which := worst[row, col]):  # type: ignore[index]
            text = f"{text} (object {labels[int(which)]})"
        listed.append(f"{text}: {values[row, col]:.2f}")
    for row, listed in found.items():
        reasons[row] = "; ".join(listed)
    return reasons


def select(table: pd.DataFrame, *, top: int | None, min_score: float | None) -> np.ndarray:
    """Which rows are kept: the ``top`` best ranks, or every row scoring at least ``min_score``."""
    if (top is None) == (min_score is None):
        raise OptionError("give exactly one of --top and --min-score")
    if top is not None:
        if top < 1:
            raise OptionError("--top must be at least 1", actual=top)
        return (table["rank"] <= top).to_numpy()
    if not 0 <= min_score <= 1:  # type: ignore[operator]
        raise OptionError("--min-score must lie in [0, 1]", actual=min_score)
    return (table["score"] >= min_score).to_numpy()
