"""Streaming Keras segmentation metrics from logits: pixel accuracy, mean IoU and one IoU per class.

All of them accumulate one (C, C) confusion matrix (rows the truth, columns the argmax of the logits) over the
batches of an epoch, with ``keras.ops`` only, and read their score from it at the end, with the conventions of
:mod:`seg.train.confusion`:

- ``pixel_accuracy``: correct pixels / all pixels.
- ``mean_iou``: the mean IoU over the classes present in the truth or the prediction; a class absent from both is
  left out (as ``keras.metrics.MeanIoU`` does), not counted as 0 or 1. 0 before any pixel was seen.
- ``iou_<name>``: one class's IoU, NaN while the class is absent from both truth and prediction (the IoU is then
  undefined; 0 would read as a failure).

Labels outside ``[0, C)`` are not counted. Per-batch counts are float32 (exact below 2**24 pixels per cell and
batch); the running matrix is float64 where the backend allows it. Every class is registered with Keras (package
``seg``) so that models saved with these metrics compiled in reload with ``keras.saving.load_model``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from seg.train.keras_env import import_keras

keras = import_keras()
ops = keras.ops


def class_metric_names(names: Sequence[str]) -> list[str]:
    """The ``iou_<name>`` metric names of the classes: lower-case ``[a-z0-9_]`` identifiers, unique.

    Other characters become ``_``; an empty result becomes ``class<i>``; a repeat gets ``_<i>`` appended.

    Example:
        ``class_metric_names(["background", "Oil tank", "oil-tank"])`` ->
        ``["iou_background", "iou_oil_tank", "iou_oil_tank_2"]``
    """
    result: list[str] = []
    for index, name in enumerate(names):
        stem = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or f"class{index}"
        candidate = f"iou_{stem}"
        if candidate in result:
            candidate = f"iou_{stem}_{index}"
        suffix = 2
        while candidate in result:
            candidate = f"iou_{stem}_{index}_{suffix}"
            suffix += 1
        result.append(candidate)
    return result


@keras.saving.register_keras_serializable(package="seg")
class ConfusionMatrixMetric(keras.metrics.Metric):
    """Accumulates the (C, C) confusion matrix of int labels against the argmax of logits; result: the matrix.

    Subclasses read a score from ``self.confusion`` in ``result``.

    Args:
        classes: the number of classes C, background included.
        name: the metric name in Keras logs.
        dtype: the dtype of the running matrix (float64 by default, for exact counts past 2**24 pixels).
    """

    def __init__(self, classes: int, name: str = "confusion_matrix", dtype: str | None = "float64") -> None:
        super().__init__(name=name, dtype=dtype)
        if int(classes) < 1:
            raise ValueError(f"classes must be at least 1, got {classes}")
        self.classes = int(classes)
        self.confusion = self.add_variable(
            shape=(self.classes, self.classes), initializer="zeros", dtype=self.dtype, name="confusion"
        )

    def get_config(self) -> dict:
        """Keras config: enough to rebuild this metric with ``from_config``."""
        return {**super().get_config(), "classes": self.classes}

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add a batch: ``y_true`` int (B, H, W) or (B, H, W, 1), ``y_pred`` logits (B, H, W, C).

        ``sample_weight``, when given, is per image (B,) or per pixel (B, H, W) / (B, H, W, 1).
        """
        labels = ops.convert_to_tensor(y_true)
        if len(labels.shape) == len(y_pred.shape):
            labels = ops.squeeze(labels, axis=-1)
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        predicted = ops.reshape(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), (-1,))
        weights = ops.cast(ops.logical_and(labels >= 0, labels < self.classes), "float32")
        if sample_weight is not None:
            weights = weights * self._pixel_weights(sample_weight, ops.shape(y_pred)[:-1])
        labels = ops.clip(labels, 0, self.classes - 1)  # out-of-range pixels carry weight 0
        indices = ops.stack([labels, predicted], axis=1)
        counts = ops.scatter(indices, weights, (self.classes, self.classes))
        self.confusion.assign_add(ops.cast(counts, self.dtype))

    @staticmethod
    def _pixel_weights(sample_weight, shape):
        weights = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
        if len(weights.shape) == len(shape) + 1:
            weights = ops.squeeze(weights, axis=-1)
        while len(weights.shape) < len(shape):
            weights = ops.expand_dims(weights, axis=-1)
        return ops.reshape(ops.broadcast_to(weights, shape), (-1,))

    def reset_state(self) -> None:
        """Forget every batch seen."""
        self.confusion.assign(ops.zeros((self.classes, self.classes), dtype=self.dtype))

    def result(self):
        """The confusion matrix so far (rows truth, columns prediction)."""
        return ops.convert_to_tensor(self.confusion)

    def _per_class(self):
        """True positives, truth counts and prediction counts per class, float32."""
        cm = ops.cast(self.confusion, "float32")
        return ops.diagonal(cm), ops.sum(cm, axis=1), ops.sum(cm, axis=0)


@keras.saving.register_keras_serializable(package="seg")
class PixelAccuracy(ConfusionMatrixMetric):
    """The share of pixels whose argmax is the true class (0 before any pixel)."""

    def __init__(self, classes: int, name: str = "pixel_accuracy", dtype: str | None = "float64") -> None:
        super().__init__(classes, name=name, dtype=dtype)

    def result(self):
        """Correct pixels / counted pixels."""
        cm = ops.cast(self.confusion, "float32")
        return ops.divide_no_nan(ops.trace(cm), ops.sum(cm))


@keras.saving.register_keras_serializable(package="seg")
class MeanIoU(ConfusionMatrixMetric):
    """Mean intersection over union over the classes present in the truth or the prediction."""

    def __init__(self, classes: int, name: str = "mean_iou", dtype: str | None = "float64") -> None:
        super().__init__(classes, name=name, dtype=dtype)

    def result(self):
        """Mean IoU of the classes seen so far (0 before any pixel)."""
        tp, truth, predicted = self._per_class()
        union = truth + predicted - tp
        present = ops.cast(union > 0, "float32")
        iou = ops.divide_no_nan(tp, union)
        return ops.divide_no_nan(ops.sum(iou * present), ops.sum(present))


@keras.saving.register_keras_serializable(package="seg")
class ClassIoU(ConfusionMatrixMetric):
    """The IoU of one class; NaN while that class is absent from both truth and prediction.

    Args:
        class_id: the class index, 0 for the background.
        See :class:`ConfusionMatrixMetric` for the others.
    """

    def __init__(self, classes: int, class_id: int, name: str | None = None, dtype: str | None = "float64") -> None:
        if not 0 <= int(class_id) < int(classes):
            raise ValueError(f"class_id must be in [0, {classes}), got {class_id}")
        super().__init__(classes, name=name or f"iou_class{class_id}", dtype=dtype)
        self.class_id = int(class_id)

    def get_config(self) -> dict:
        """Keras config, with the class index."""
        return {**super().get_config(), "class_id": self.class_id}

    def result(self):
        """tp / (tp + fp + fn) of the class, NaN when that union is empty."""
        tp, truth, predicted = self._per_class()
        k = self.class_id
        union = truth[k] + predicted[k] - tp[k]
        return ops.where(union > 0, tp[k] / ops.maximum(union, 1.0), float("nan"))


def make_metrics(classes: int, names: Sequence[str]) -> list[keras.metrics.Metric]:
    """The metrics to compile a segmentation model with (logits out, int labels in).

    Args:
        classes: the number of classes, background included.
        names: the class names, background first (one per class); they name the ``iou_<name>`` metrics, see
            :func:`class_metric_names`.

    Returns:
        ``[pixel_accuracy, mean_iou, iou_<name> for each class]``; Keras logs them under those names (``val_``
        prefixed on validation data).
    """
    if len(names) != classes:
        raise ValueError(f"expected {classes} class names, got {len(names)}: {list(names)}")
    metrics: list[keras.metrics.Metric] = [PixelAccuracy(classes), MeanIoU(classes)]
    for class_id, name in enumerate(class_metric_names(names)):
        metrics.append(ClassIoU(classes, class_id, name=name))
    return metrics
