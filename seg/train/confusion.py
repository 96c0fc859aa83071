"""Confusion matrices and the segmentation scores read from them, in numpy alone (no Keras).

Conventions, shared with the streaming Keras metrics of :mod:`seg.train.metrics`:

- ``cm[i, j]`` counts the pixels whose truth is class ``i`` and whose prediction is class ``j`` (rows are the truth,
  columns the prediction); class 0 is the background. Pixels whose truth or prediction lies outside
  ``[0, classes)`` (an "ignore" value such as 255) are not counted.
- The IoU of class ``c`` is ``tp / (tp + fp + fn)``. A class absent from both truth and prediction has no IoU
  (``None``): it is left out of the mean IoU instead of counting as 0 or 1, as ``keras.metrics.MeanIoU`` does.
- The frequency-weighted IoU weighs each class's IoU by its share of the truth pixels (Long et al., FCN, 2015).
- Per-class accuracy is the recall ``tp / (tp + fn)``, ``None`` for a class absent from the truth.
- Scores of an empty matrix (no pixel counted) are ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def confusion_matrix(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, classes: int) -> npt.NDArray[np.int64]:
    """Count the (truth, prediction) class pairs of two label arrays of the same shape.

    Args:
        y_true: integer class indices, any shape (an (H, W) mask, a batch, a flat array).
        y_pred: predicted class indices, the same shape as ``y_true``.
        classes: the number of classes, background included.

    Returns:
        A (classes, classes) int64 matrix, rows the truth and columns the prediction. Pixels with a value outside
        ``[0, classes)`` in either array are ignored.
    """
    if classes < 1:
        raise ValueError(f"classes must be at least 1, got {classes}")
    truth = np.asarray(y_true)
    pred = np.asarray(y_pred)
    if truth.shape != pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {truth.shape} and {pred.shape}")
    for name, array in (("y_true", truth), ("y_pred", pred)):
        if array.size and not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
            raise ValueError(f"{name} must hold integer class indices, got {array.dtype}")
    truth = truth.reshape(-1).astype(np.int64, copy=False)
    pred = pred.reshape(-1).astype(np.int64, copy=False)
    valid = (truth >= 0) & (truth < classes) & (pred >= 0) & (pred < classes)
    if not valid.all():
        truth, pred = truth[valid], pred[valid]
    counts = np.bincount(truth * classes + pred, minlength=classes * classes)
    return counts.reshape(classes, classes).astype(np.int64, copy=False)


def accumulate(
    cm: npt.NDArray[np.int64] | None, y_true: npt.ArrayLike, y_pred: npt.ArrayLike, classes: int | None = None
) -> npt.NDArray[np.int64]:
    """Add one image (or batch) to a running confusion matrix, for streaming over a dataset.

    Args:
        cm: the (C, C) int64 matrix so far, updated in place; or None to start one (``classes`` then required).
        y_true: truth class indices of the new image.
        y_pred: predicted class indices, same shape.
        classes: the number of classes; defaults to the size of ``cm``, and must match it when both are given.

    Returns:
        The updated matrix (``cm`` itself when one was given).
    """
    if cm is None:
        if classes is None:
            raise ValueError("accumulate needs classes when no running matrix is given")
        return confusion_matrix(y_true, y_pred, classes)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or (classes is not None and cm.shape[0] != classes):
        raise ValueError(f"running confusion matrix has shape {cm.shape}, expected ({classes}, {classes})")
    cm += confusion_matrix(y_true, y_pred, cm.shape[0])
    return cm


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


def scores(cm: npt.ArrayLike, names: Sequence[str] | None = None) -> dict:
    """Segmentation scores of a confusion matrix, ready for JSON.

    Args:
        cm: a (C, C) matrix of counts, rows the truth and columns the prediction.
        names: the C class names (background first), unique; ``class0``, ``class1``... when None.

    Returns:
        A dict with ``classes`` (the names), ``mean_iou`` (over the classes present in truth or prediction),
        ``per_class_iou`` ({name: IoU, or None when the class is absent from both}), ``frequency_weighted_iou``,
        ``pixel_accuracy``, ``per_class_accuracy`` ({name: recall, or None when absent from the truth}) and
        ``confusion_matrix`` (lists of ints). The three overall scores are None when the matrix is empty.
    """
    matrix = np.asarray(cm)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"expected a square (C, C) confusion matrix, got shape {matrix.shape}")
    if (matrix < 0).any():
        raise ValueError("a confusion matrix holds counts; found negative values")
    classes = matrix.shape[0]
    names = [f"class{i}" for i in range(classes)] if names is None else [str(name) for name in names]
    if len(names) != classes:
        raise ValueError(f"expected {classes} class names for a {classes}x{classes} matrix, got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be unique, got {names}")

    counts = matrix.astype(np.float64)
    tp = np.diag(counts)
    truth = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    union = truth + predicted - tp
    total = counts.sum()

    iou = [_ratio(tp[c], union[c]) for c in range(classes)]
    present = [value for value in iou if value is not None]
    weighted = [truth[c] / total * iou[c] for c in range(classes) if truth[c] > 0] if total > 0 else []
    return {
        "classes": names,
        "mean_iou": float(np.mean(present)) if present else None,
        "per_class_iou": dict(zip(names, iou, strict=True)),
        "frequency_weighted_iou": float(np.sum(weighted)) if total > 0 else None,
        "pixel_accuracy": _ratio(tp.sum(), total),
        "per_class_accuracy": {name: _ratio(tp[c], truth[c]) for c, name in enumerate(names)},
        "confusion_matrix": matrix.astype(np.int64).tolist(),
    }
