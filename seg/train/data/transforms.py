"""TensorFlow ops that turn one decoded image and mask into model inputs: augmentation for training, deterministic
crops or resizing for evaluation.

Images are float32 (H, W, bands) in raw pixel values, masks int32 (H, W, 1) class indices. Every geometric change is
applied to both with the same parameters (bilinear for the image, nearest neighbour for the mask), so they stay
aligned. Random draws are stateless: each element carries its own seed, and the same seed gives the same result.
"""

from __future__ import annotations

import tensorflow as tf

from seg.train.data.augment import Augment
from seg.train.spec import Normalization

#: Evaluation modes: ``tiles`` covers each image with a grid of training-size windows at its own scale (windows
#: overlap a little at the far edges when the size does not divide the image's); ``center`` takes the central window;
#: ``resize`` resizes the whole image to the training size. Images smaller than the size are first resized up
#: (keeping their aspect ratio) for ``tiles`` and ``center``.
EVAL_MODES = ("tiles", "center", "resize")


def normalise(image: tf.Tensor, normalization: Normalization) -> tf.Tensor:
    """``(image / scale - mean) / std``, as one multiply-add."""
    std = tf.constant(normalization.std, tf.float32)
    factor = 1.0 / (normalization.scale * std)
    offset = -tf.constant(normalization.mean, tf.float32) / std
    return image * factor + offset


def train_transform(
    image: tf.Tensor,
    mask: tf.Tensor,
    seed: tf.Tensor,
    *,
    size: tuple[int, int],
    augment: Augment | None,
    normalization: Normalization,
) -> tuple[tf.Tensor, tf.Tensor]:
    """A random window of ``size`` (scaled by ``augment.scale``), flipped, rotated, normalised, brightness and contrast
    changed; the mask follows every geometric change. ``seed`` is an int64 pair: the same seed, the same output."""
    height, width = size
    seeds = tf.random.experimental.stateless_split(seed, num=5)
    scale = augment.scale if augment is not None else None
    image, mask = _random_window(image, mask, seeds, size, scale)
    if augment is not None:
        image, mask = _dihedral(image, mask, seeds[3], flips=augment.flips, turns=augment.rot90 and height == width)
    image = normalise(image, normalization)
    if augment is not None and (augment.brightness > 0 or augment.contrast > 0):
        image = _light(image, seeds[4], augment.brightness, augment.contrast)
    image.set_shape([height, width, None])
    mask.set_shape([height, width, 1])
    return image, mask


def _random_window(
    image: tf.Tensor, mask: tf.Tensor, seeds: tf.Tensor, size: tuple[int, int], scale: tuple[float, float] | None
) -> tuple[tf.Tensor, tf.Tensor]:
    """Crop a random region of ``size * s`` (shrunk to fit the image, keeping its aspect ratio: a small image is
    resized up as a whole) and resize it to ``size``."""
    height, width = size
    shape = tf.shape(image)
    image_h, image_w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    factor = tf.random.stateless_uniform([], seeds[0], scale[0], scale[1]) if scale is not None else tf.constant(1.0)
    want_h, want_w = height * factor, width * factor
    fit = tf.minimum(1.0, tf.minimum(image_h / want_h, image_w / want_w))
    crop_h = tf.clip_by_value(tf.cast(tf.round(want_h * fit), tf.int32), 1, shape[0])
    crop_w = tf.clip_by_value(tf.cast(tf.round(want_w * fit), tf.int32), 1, shape[1])
    top = tf.random.stateless_uniform([], seeds[1], minval=0, maxval=shape[0] - crop_h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[2], minval=0, maxval=shape[1] - crop_w + 1, dtype=tf.int32)
    image = image[top : top + crop_h, left : left + crop_w]
    mask = mask[top : top + crop_h, left : left + crop_w]
    return _resize_pair(image, mask, size)


def _resize_pair(image: tf.Tensor, mask: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Both resized to ``size`` (bilinear and nearest); no-op when they already have it."""
    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], size[0]), tf.equal(shape[1], size[1]))
    return tf.cond(
        same,
        lambda: (image, mask),
        lambda: (
            tf.image.resize(image, size, method="bilinear"),
            tf.image.resize(mask, size, method="nearest"),
        ),
    )


def _dihedral(
    image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, *, flips: bool, turns: bool
) -> tuple[tf.Tensor, tf.Tensor]:
    """A random element of the square's symmetry group, as transpose, left-right and up-down flips (no branches).

    ``transpose x lr x ud`` bits: all eight elements when ``flips`` and ``turns``; the four rotations (an even number
    of reflections) with ``turns`` only; the two flips and their product with ``flips`` only.
    """
    if not (flips or turns):
        return image, mask
    bits = tf.random.stateless_uniform([3], seed, minval=0, maxval=2, dtype=tf.int32) > 0
    transpose = bits[0] if turns else tf.constant(False)
    lr = bits[1]
    ud = bits[2] if flips else tf.not_equal(transpose, lr)
    for flag, change in (
        (transpose, lambda t: tf.transpose(t, [1, 0, 2])),
        (lr, lambda t: tf.reverse(t, [1])),
        (ud, lambda t: tf.reverse(t, [0])),
    ):
        image, mask = tf.where(flag, change(image), image), tf.where(flag, change(mask), mask)
    return image, mask


def _light(image: tf.Tensor, seed: tf.Tensor, brightness: float, contrast: float) -> tf.Tensor:
    """Each band's deviation from its mean scaled by ``U(1 - contrast, 1 + contrast)``, plus ``U(-brightness,
    brightness)``."""
    draws = tf.random.stateless_uniform([2], seed, minval=-1.0, maxval=1.0)
    mean = tf.reduce_mean(image, axis=[0, 1], keepdims=True)
    return (image - mean) * (1.0 + contrast * draws[0]) + mean + brightness * draws[1]


def eval_transform(
    image: tf.Tensor, mask: tf.Tensor, *, size: tuple[int, int], mode: str, normalization: Normalization
) -> tuple[tf.Tensor, tf.Tensor]:
    """Deterministic windows of ``size``: (N, H, W, bands) normalised images and (N, H, W, 1) masks (N = 1 except
    for ``tiles``)."""
    height, width = size
    if mode == "resize":
        image, mask = _resize_pair(image, mask, size)
        image, mask = image[None], mask[None]
    else:
        image, mask = _cover(image, mask, size)
        shape = tf.shape(image)
        if mode == "center":
            top, left = (shape[0] - height) // 2, (shape[1] - width) // 2
            image = image[None, top : top + height, left : left + width]
            mask = mask[None, top : top + height, left : left + width]
        else:
            rows, cols = _starts(shape[0], height), _starts(shape[1], width)
            image, mask = _grid(image, rows, cols, size), _grid(mask, rows, cols, size)
    image = normalise(image, normalization)
    image.set_shape([None, height, width, None])
    mask.set_shape([None, height, width, 1])
    return image, mask


def _cover(image: tf.Tensor, mask: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Resized up, keeping the aspect ratio, when a side is shorter than ``size``."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    factor = tf.reduce_max(tf.stack([1.0, size[0] / shape[0], size[1] / shape[1]]))
    target = tf.cast(tf.math.ceil(shape * factor), tf.int32)
    return tf.cond(
        factor > 1.0,
        lambda: (tf.image.resize(image, target, method="bilinear"), tf.image.resize(mask, target, method="nearest")),
        lambda: (image, mask),
    )


def _starts(length: tf.Tensor, window: int) -> tf.Tensor:
    """Window starts covering ``length``: as few windows as possible, spread evenly, the last one ending at the edge."""
    count = (length + window - 1) // window
    return tf.cast(tf.round(tf.linspace(0.0, tf.cast(length - window, tf.float32), count)), tf.int32)


def _grid(pixels: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """(len(rows) * len(cols), H, W, C) windows starting at ``rows`` x ``cols``."""
    row_index = rows[:, None] + tf.range(size[0])[None, :]  # (ny, H)
    col_index = cols[:, None] + tf.range(size[1])[None, :]  # (nx, W)
    strips = tf.gather(pixels, row_index)  # (ny, H, W0, C)
    windows = tf.gather(strips, col_index, axis=2)  # (ny, H, nx, W, C)
    windows = tf.transpose(windows, [0, 2, 1, 3, 4])
    return tf.reshape(windows, [-1, size[0], size[1], tf.shape(pixels)[-1]])
