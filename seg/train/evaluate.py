"""``seg evaluate``: a trained run's scores on a mask folder, at each image's full resolution.

Every image is predicted with the same sliding window as ``seg predict`` (so images larger than the training size are
scored as they would be used), its argmax compared with the mask, and one confusion matrix accumulated over the split.
Writes ``metrics.json`` (mean IoU, per-class IoU, frequency-weighted IoU, pixel accuracy, per-class accuracy, the
confusion matrix) and ``confusion.png``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from seg.errors import ValidationError
from seg.outputs import atomic_file, check_writable
from seg.progress import Counted, Progress

METRICS_FILE = "metrics.json"
PLOT_FILE = "confusion.png"


def evaluate_run(
    run: str | os.PathLike[str],
    data: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    split: str | None = None,
    weights: str = "best",
    overlap: float = 0.25,
    batch_size: int = 4,
    overwrite: bool = False,
    progress: Progress = None,
) -> dict:
    """Score ``run`` on the mask folder ``data`` and write ``metrics.json`` and ``confusion.png`` to ``out``.

    Args:
        run: a ``seg train`` run folder.
        data: a mask folder (``seg convert --to masks``), split or not.
        out: where to write (default ``RUN/evaluation``); refused if it exists unless ``overwrite``.
        split: the split folder to score (default: ``test`` when there is one, else every image).
        weights: ``best`` or ``last``.
        overlap: sliding-window overlap for images larger than the training size.
        batch_size: windows per forward pass.
        overwrite: replace an earlier evaluation.
        progress: wraps the loop over images.

    Returns:
        The metrics written to ``metrics.json``, plus ``out``.
    """
    from seg.train.confusion import accumulate, scores
    from seg.train.confusion_plot import plot_confusion
    from seg.train.data import read_label, scan_folder
    from seg.train.predict import image_probabilities
    from seg.train.run import load_run

    out = check_writable(Path(run) / "evaluation" if out is None else out, overwrite)
    loaded = load_run(run, weights)
    info = loaded.info
    scan = scan_folder(data, classes=info.classes)
    samples = _pick(scan, split, data)
    classes = len(info.classes)
    matrix = np.zeros((classes, classes), np.int64)
    for sample in (progress or iter)(Counted(samples, len(samples))):
        _, probabilities = image_probabilities(loaded, sample.image, overlap=overlap, batch_size=batch_size)
        truth = read_label(sample.mask, scan.mask_scale)
        matrix = accumulate(matrix, truth, np.argmax(probabilities, axis=-1))
    metrics = scores(matrix, info.classes)
    split = split or ",".join(sorted({str(s.split) for s in samples}))
    metrics.update(run=str(run), data=str(data), split=split, images=len(samples), weights=weights)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / METRICS_FILE, overwrite=True, mode="w") as handle:
        handle.write(json.dumps(metrics, indent=2) + "\n")
    plot_confusion(
        matrix,
        info.classes,
        out / PLOT_FILE,
        mean_iou=metrics["mean_iou"],
        pixel_accuracy=metrics["pixel_accuracy"],
        title=f"Confusion matrix: {Path(data).name or data}",
        overwrite=True,
    )
    return {**metrics, "out": str(out)}


def _pick(scan, split: str | None, data: str | os.PathLike[str]) -> list:
    everything = [*scan.train, *scan.test]
    chosen = (scan.test or everything) if split is None else [s for s in everything if s.split == split]
    if not chosen:
        raise ValidationError("no images to evaluate", path=data, item_id=split, expected="a split with images")
    return chosen
