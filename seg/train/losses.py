"""Segmentation losses from logits: cross-entropy, soft Dice, focal, and cross-entropy + Dice.

Contract of every loss here:

- ``y_true`` holds integer class indices, (B, H, W) or (B, H, W, 1); ``y_pred`` holds LOGITS (B, H, W, C). Labels
  outside ``[0, C)`` get no one-hot row and so add nothing (neither loss nor weight) on the TensorFlow and JAX
  backends; the input pipeline never produces them.
- Everything is computed in float32, whatever the model's compute dtype (mixed precision), with ``keras.ops`` only,
  so the same code runs on the TensorFlow, JAX and torch backends.
- ``call`` returns one value per image, (B,); Keras then averages over the batch (and applies any per-image
  ``sample_weight``).
- Optional per-class weights ``w`` (length C, background first):

  - cross-entropy: the weighted mean over the image's pixels, ``sum(w[y] * ce) / sum(w[y])`` (so uniform weights
    change nothing, and unweighted it equals ``SparseCategoricalCrossentropy(from_logits=True)``);
  - focal: ``-(1 - p_y) ** gamma * log(p_y)`` (gamma = 2), with ``w`` as the alpha factor, normalised like
    cross-entropy, so focal with gamma = 0 is exactly (weighted) cross-entropy;
  - Dice: standard multiclass soft Dice on the softmax probabilities, per image and class
    ``(2 * sum(p * t) + s) / (sum(p) + sum(t) + s)`` with smoothing ``s = 1``, loss ``1 - `` its ``w``-weighted
    mean over ALL classes. A class absent from the image and not predicted scores ~1 (it adds ~0 loss), so with many
    classes the Dice loss of a wrong prediction is diluted; predicting an absent class is still penalised.

Every class is registered with Keras (package ``seg``) and has a ``get_config``, so a model compiled with one of them
and saved with ``model.save("x.keras")`` reloads with ``keras.saving.load_model``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from seg.errors import OptionError
from seg.train.keras_env import import_keras

keras = import_keras()
ops = keras.ops

LOSSES = ("ce", "dice", "focal", "ce+dice")


def _check_weights(class_weights: Sequence[float] | None, classes: int) -> list[float] | None:
    if class_weights is None:
        return None
    weights = [float(w) for w in class_weights]
    if len(weights) != classes:
        raise OptionError(
            "one class weight per class, background first", expected=f"{classes} weights", actual=len(weights)
        )
    if not all(math.isfinite(w) and w >= 0 for w in weights) or not any(w > 0 for w in weights):
        raise OptionError(
            "class weights must be finite, non-negative and not all zero", expected="weights >= 0", actual=weights
        )
    return weights


class SegmentationLoss(keras.losses.Loss):
    """Base of the losses here: holds the class count and the optional per-class weights.

    Args:
        classes: the number of classes C, background included (the last axis of the logits).
        class_weights: C non-negative weights, background first, or None for uniform weights.
        name: the loss name in Keras logs.
        reduction: Keras reduction over the per-image values (default: mean over the batch).
        dtype: ignored beyond Keras bookkeeping: computations are float32.
    """

    def __init__(
        self,
        classes: int,
        class_weights: Sequence[float] | None = None,
        *,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        if int(classes) < 1:
            raise OptionError("a loss needs at least one class", expected="classes >= 1", actual=classes)
        self.classes = int(classes)
        self.class_weights = _check_weights(class_weights, self.classes)

    def get_config(self) -> dict:
        """Keras config: enough to rebuild this loss with ``from_config``."""
        return {**super().get_config(), "classes": self.classes, "class_weights": self.class_weights}

    def _prepare(self, y_true, y_pred):
        """Float32 logits (B, H, W, C) and float32 one-hot truth of the same shape."""
        logits = ops.cast(y_pred, "float32")
        labels = y_true
        if len(labels.shape) == len(logits.shape):
            labels = ops.squeeze(labels, axis=-1)
        labels = ops.cast(labels, "int32")
        return logits, ops.one_hot(labels, self.classes, dtype="float32")

    def _weights(self):
        return None if self.class_weights is None else ops.convert_to_tensor(self.class_weights, dtype="float32")

    def _pixel_mean(self, values, onehot):
        """Per-image mean of per-pixel ``values`` (B, H, W), weighted by the class weight of each pixel's truth."""
        weights = self._weights()
        pixel_weights = ops.sum(onehot, axis=-1) if weights is None else ops.sum(onehot * weights, axis=-1)
        axes = tuple(range(1, len(values.shape)))
        return ops.divide_no_nan(ops.sum(values * pixel_weights, axis=axes), ops.sum(pixel_weights, axis=axes))


@keras.saving.register_keras_serializable(package="seg")
class CrossEntropyLoss(SegmentationLoss):
    """Pixel-wise softmax cross-entropy from logits, optionally class-weighted (weighted mean over pixels)."""

    def call(self, y_true, y_pred):
        logits, onehot = self._prepare(y_true, y_pred)
        ce = -ops.sum(onehot * ops.log_softmax(logits, axis=-1), axis=-1)
        return self._pixel_mean(ce, onehot)


@keras.saving.register_keras_serializable(package="seg")
class FocalLoss(SegmentationLoss):
    """Focal loss ``-(1 - p_y) ** gamma * log(p_y)`` (Lin et al., 2017), class weights as alpha.

    Args:
        gamma: the focusing exponent; 0 gives cross-entropy.
        See :class:`SegmentationLoss` for the others.
    """

    def __init__(self, classes: int, class_weights: Sequence[float] | None = None, *, gamma: float = 2.0, **kwargs):
        super().__init__(classes, class_weights, **kwargs)
        self.gamma = float(gamma)

    def get_config(self) -> dict:
        """Keras config, with gamma."""
        return {**super().get_config(), "gamma": self.gamma}

    def call(self, y_true, y_pred):
        logits, onehot = self._prepare(y_true, y_pred)
        log_p = ops.sum(onehot * ops.log_softmax(logits, axis=-1), axis=-1)
        focal = -ops.power(1.0 - ops.exp(log_p), self.gamma) * log_p if self.gamma else -log_p
        return self._pixel_mean(focal, onehot)


@keras.saving.register_keras_serializable(package="seg")
class DiceLoss(SegmentationLoss):
    """Multiclass soft Dice loss on softmax probabilities, per image, class-weighted mean over all classes.

    Args:
        smooth: added to numerator and denominator (1 by default), so that an absent, unpredicted class scores 1.
        See :class:`SegmentationLoss` for the others.
    """

    def __init__(self, classes: int, class_weights: Sequence[float] | None = None, *, smooth: float = 1.0, **kwargs):
        super().__init__(classes, class_weights, **kwargs)
        self.smooth = float(smooth)

    def get_config(self) -> dict:
        """Keras config, with the smoothing."""
        return {**super().get_config(), "smooth": self.smooth}

    def call(self, y_true, y_pred):
        logits, onehot = self._prepare(y_true, y_pred)
        probs = ops.softmax(logits, axis=-1)
        axes = tuple(range(1, len(probs.shape) - 1))
        intersection = ops.sum(probs * onehot, axis=axes)
        denominator = ops.sum(probs, axis=axes) + ops.sum(onehot, axis=axes)
        dice = (2.0 * intersection + self.smooth) / (denominator + self.smooth)  # (B, C)
        weights = self._weights()
        if weights is None:
            return 1.0 - ops.mean(dice, axis=-1)
        return 1.0 - ops.sum(dice * weights, axis=-1) / ops.sum(weights)


@keras.saving.register_keras_serializable(package="seg")
class CrossEntropyDiceLoss(SegmentationLoss):
    """The sum of :class:`CrossEntropyLoss` and :class:`DiceLoss`, with the same class weights."""

    def __init__(self, classes: int, class_weights: Sequence[float] | None = None, **kwargs):
        super().__init__(classes, class_weights, **kwargs)
        self._ce = CrossEntropyLoss(self.classes, self.class_weights)
        self._dice = DiceLoss(self.classes, self.class_weights)

    def call(self, y_true, y_pred):
        return self._ce.call(y_true, y_pred) + self._dice.call(y_true, y_pred)


_LOSS_CLASSES: dict[str, type[SegmentationLoss]] = {
    "ce": CrossEntropyLoss,
    "dice": DiceLoss,
    "focal": FocalLoss,
    "ce+dice": CrossEntropyDiceLoss,
}


def make_loss(name: str, classes: int, class_weights: Sequence[float] | None = None) -> keras.losses.Loss:
    """Build a segmentation loss by name.

    Args:
        name: one of :data:`LOSSES`: ``ce``, ``dice``, ``focal`` or ``ce+dice``.
        classes: the number of classes, background included.
        class_weights: one non-negative weight per class (background first), or None.

    Returns:
        A Keras loss taking int labels (B, H, W) and logits (B, H, W, C); its Keras name is ``name``-based.

    Raises:
        OptionError: an unknown name, or class weights of the wrong length or with negative values.
    """
    if name not in _LOSS_CLASSES:
        raise OptionError(f"unknown loss {name!r}", expected=f"one of {', '.join(LOSSES)}", actual=name)
    return _LOSS_CLASSES[name](classes, class_weights, name=name.replace("+", "_"))


def class_weights_from_frequencies(pixel_counts: npt.ArrayLike, *, max_weight: float = 10.0) -> list[float]:
    """Class weights by median frequency balancing (Eigen & Fergus, 2015), for ``--class-weights auto``.

    Each present class gets ``median(f) / f_c``, ``f`` being the classes' pixel frequencies and the median taken
    over the classes that have pixels, so the median class weighs 1, rarer classes more and frequent ones less.
    Weights are clipped to ``[1 / max_weight, max_weight]`` so that a handful of pixels cannot dominate the loss.
    Classes with no pixel at all get the neutral weight 1.

    Args:
        pixel_counts: the number of training pixels of each class, background first.
        max_weight: the clipping bound (> 1).

    Returns:
        One weight per class.
    """
    counts = np.asarray(pixel_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"expected a 1-D array of per-class pixel counts, got shape {counts.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"pixel counts must be finite and non-negative, got {counts.tolist()}")
    if not counts.any():
        raise ValueError("no pixel counted in any class: cannot derive class weights")
    if max_weight <= 1:
        raise ValueError(f"max_weight must be greater than 1, got {max_weight}")
    present = counts > 0
    frequencies = counts / counts.sum()
    weights = np.ones_like(frequencies)
    weights[present] = np.median(frequencies[present]) / frequencies[present]
    return np.clip(weights, 1.0 / max_weight, max_weight).tolist()
