"""``seg curate``: score every annotation with explained signals, keep the best N, and show why.

:func:`curate` computes every signal module's signals (:mod:`seg.curate.signals` has the contract), combines them
(:mod:`seg.curate.score`) and selects what is kept; :func:`write_curation` writes the curated Dataset, the score
tables and the HTML report, and optionally the curated set in any registered format.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from seg.curate import score as scoring
from seg.curate.signals import Signal, SignalFrames
from seg.dataset.core import Dataset
from seg.errors import OptionError
from seg.outputs import atomic_dir
from seg.progress import Progress

logger = logging.getLogger(__name__)

#: Where ``write_curation(..., to=FORMAT)`` writes the curated set inside the output folder.
EXPORT_NAMES = {
    "coco": "coco.json",
    "via": "via.json",
    "labelstudio": "labelstudio.json",
    "kaggle": "kaggle.csv",
    "labelme": "labelme",
    "masks": "masks",
    "parquet": "curated-parquet",
}


@dataclass
class Curation:
    """What :func:`curate` found.

    Attributes:
        images: one row per image: ``image_id``, ``file_name``, ``score`` (higher is better), ``rank`` (1 = best),
            ``kept``, one column per signal group (its badness), one per signal, ``reasons``.
        objects: one row per object: ``object`` (position in the source's objects), ``image_id``, ``category``,
            ``score``, ``rank``, ``kept``, one column per group and per object-level signal, ``reasons``.
        kept: the curated Dataset.
        signals: the signals measured.
        weights: the group weights used.
        rule: how rows were kept (``{"by": ..., "top": ...}`` or ``{"by": ..., "min_score": ...}``).
    """

    images: pd.DataFrame
    objects: pd.DataFrame
    kept: Dataset
    signals: list[Signal]
    weights: dict[str, float]
    rule: dict = field(default_factory=dict)


def measure(
    dataset: Dataset,
    *,
    reference: Dataset | None = None,
    predictions: Dataset | None = None,
    progress: Progress = None,
) -> tuple[list[SignalFrames], list[Signal]]:
    """Every signal module's frames on ``dataset``, and the signals they declare."""
    from seg.curate import agreement, appearance, consistency, geometry, quality
    from seg.curate import reference as fit
    from seg.curate.shapes import shape_features

    frames: list[SignalFrames] = []
    # masks and images are measured once each, and shared by the modules that need them
    shapes = shape_features(dataset.objects, progress=progress)
    stats = quality.image_statistics(dataset, progress=progress)
    ref_stats = None if reference is None else quality.image_statistics(reference, progress=progress)
    read = {"statistics": stats, "reference_statistics": ref_stats}
    steps = [
        ("geometry", lambda: geometry.geometry_signals(dataset, shapes=shapes)),
        ("consistency", lambda: consistency.consistency_signals(dataset, reference=reference, shapes=shapes)),
        ("image quality", lambda: quality.quality_signals(dataset, reference=reference, **read)),
        ("reference fit", lambda: fit.reference_signals(dataset, reference=reference, **read)),
        ("appearance", lambda: appearance.appearance_signals(dataset, progress=progress)),
        ("agreement", lambda: agreement.agreement_signals(dataset, predictions=predictions, progress=progress)),
    ]
    for name, step in steps:
        logger.info("measuring %s", name)
        frames.append(step())
    modules = (geometry, consistency, quality, fit, appearance, agreement)
    signals = [s for module in modules for s in module.SIGNALS]
    return frames, signals


def curate(
    dataset: Dataset,
    *,
    top: int | None = None,
    min_score: float | None = None,
    reference: Dataset | None = None,
    predictions: Dataset | None = None,
    by: Literal["image", "object"] = "image",
    weights: str | dict[str, float] | None = None,
    progress: Progress = None,
) -> Curation:
    """Score every image and object of ``dataset`` and keep the best.

    Args:
        dataset: the annotations to curate (images on disk are read for the image signals).
        top: keep this many (images, or objects with ``by="object"``), best first.
        min_score: keep every image (or object) scoring at least this, instead of ``top``.
        reference: the open dataset the annotations must blend with (distribution fit, known classes, leakage).
        predictions: a model's predictions for the same images (objects with ``score``).
        by: rank and keep whole images, or single objects (every image stays; dropped objects are removed).
        weights: group weights, ``"geometry=2,reference=0.5"`` or a mapping; defaults in :data:`GROUPS`.
        progress: wraps long loops (e.g. tqdm).

    Raises:
        OptionError: neither or both of ``top`` and ``min_score``, bad values, unknown groups in ``weights``.
    """
    if by not in ("image", "object"):
        raise OptionError(f"unknown --by {by!r}", expected="image or object", actual=by)
    group_weights = scoring.parse_weights(weights)
    scoring.select(pd.DataFrame({"rank": [], "score": []}), top=top, min_score=min_score)  # checks the options
    frames, signals = measure(dataset, reference=reference, predictions=predictions, progress=progress)
    images, objects = scoring.combine(
        dataset.images,
        dataset.objects,
        [f[0] for f in frames],
        [f[1] for f in frames],
        signals,
        group_weights,
    )
    if by == "image":
        images["kept"] = scoring.select(images, top=top, min_score=min_score)
        kept_ids = set(images.loc[images["kept"], "image_id"])
        objects["kept"] = objects["image_id"].isin(kept_ids).to_numpy()
        kept = _subset(dataset, images["kept"].to_numpy(), objects["kept"].to_numpy())
    else:
        objects["kept"] = scoring.select(objects, top=top, min_score=min_score)
        images["kept"] = True
        kept = _subset(dataset, images["kept"].to_numpy(), objects["kept"].to_numpy())
    rule = {"by": by, "top": top} if top is not None else {"by": by, "min_score": min_score}
    logger.info("kept %d/%d images, %d/%d objects", len(kept.images), len(images), len(kept.objects), len(objects))
    return Curation(images, objects, kept, signals, group_weights, rule)


def _subset(dataset: Dataset, image_mask, object_mask) -> Dataset:
    return dataset.replace(
        images=dataset.images[image_mask].reset_index(drop=True),
        objects=dataset.objects[object_mask].reset_index(drop=True),
    )


def write_curation(
    curation: Curation,
    source: Dataset,
    out: str | os.PathLike[str],
    *,
    to: str | None = None,
    overwrite: bool = False,
    report: bool = True,
    source_name: str | None = None,
    progress: Progress = None,
) -> dict:
    """Write a curation into the folder ``out`` (atomically).

    ``out/dataset/`` is the curated Dataset, ``out/scores.csv`` one row per image (best first), ``out/objects.csv``
    one row per object, ``out/report.html`` the report; with ``to``, the curated set is also written in that format
    (:data:`EXPORT_NAMES` says where). ``source_name`` is what the report's header calls the source.

    Returns:
        What was written and the counts kept.
    """
    from seg.dataset.store import save_dataset
    from seg.formats import FORMATS, write

    if to is not None and to not in FORMATS:
        raise OptionError(f"unknown format {to!r}", expected=", ".join(FORMATS), actual=to)
    out = Path(out)
    written: dict = {"out": str(out)}
    with atomic_dir(out, overwrite) as tmp:
        save_dataset(curation.kept, tmp / "dataset", overwrite=True)
        curation.images.sort_values("rank").to_csv(tmp / "scores.csv", index=False)
        curation.objects.sort_values(["image_id", "object"]).to_csv(tmp / "objects.csv", index=False)
        if report:
            from seg.curate.report import write_report

            write_report(
                tmp / "report.html",
                source,
                curation.images,
                curation.objects,
                curation.signals,
                weights=curation.weights,
                top=curation.rule.get("top"),
                min_score=curation.rule.get("min_score"),
                by=curation.rule.get("by"),
                source=source_name,
                overwrite=True,
                progress=progress,
            )
            written["report"] = str(out / "report.html")
        if to is not None:
            name = EXPORT_NAMES[to]
            written["export"] = str(out / name)
            written["export_report"] = write(curation.kept, tmp / name, to, overwrite=True)
    written.update(
        dataset=str(out / "dataset"),
        scores=str(out / "scores.csv"),
        objects=str(out / "objects.csv"),
        images=len(curation.images),
        kept_images=int(curation.images["kept"].sum()),
        objects_total=len(curation.objects),
        kept_objects=int(curation.objects["kept"].sum()),
    )
    return written
