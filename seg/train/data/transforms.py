"""TensorFlow ops that turn one decoded image and mask into model inputs: augmentation for training, deterministic
crops or resizing for evaluation.

Images come in their stored dtype (uint8 for PNG/JPEG, the rasters' dtype for GeoTIFFs), (H, W, bands); masks are
(H, W, 1) class indices of any integer dtype. Every geometric change is applied to both with the same parameters
(bilinear for the image, nearest neighbour for the mask), so they stay aligned. The training transform crops, flips
and turns the stored pixels first, so that only the window is converted to float32 (by the resize) and normalised, in
one per-band multiply-add that also applies the brightness and contrast changes. Random draws are stateless: each
element carries its own seed, and the same seed gives the same result.
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
    """``(image / scale - mean) / std`` per band, as one multiply-add, in float32."""
    factor, offset = _normalisation_affine(normalization)
    return _affine(tf.cast(image, tf.float32), factor, offset)


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
    changed: float32 (H, W, bands) and int32 (H, W, 1); the mask follows every geometric change. ``seed`` is an int64
    pair: the same seed, the same output.

    The image's window is cut from the stored pixels, turned and flipped, then resized (bilinear, to float32); the
    mask's pixels are picked straight from the whole mask by two gathers that reproduce the same window, turn, flips
    and a nearest-neighbour resize (half-pixel centres, as ``tf.image.resize``).
    """
    height, width = size
    seeds = tf.random.experimental.stateless_split(seed, num=5)
    window = _random_window(tf.shape(image), seeds, size, augment.scale if augment is not None else None)
    turns = augment is not None and augment.rot90 and height == width
    flips = augment is not None and augment.flips
    transpose, lr, ud = _dihedral(seeds[3], flips=flips, turns=turns)
    top, left, crop_h, crop_w = window
    pixels = image[top : top + crop_h, left : left + crop_w]
    if flips or turns:
        pixels = tf.reverse(tf.transpose(pixels, _order(transpose)), _axes(lr, ud))
    image = _resize_image(pixels, size)
    if augment is not None and (augment.brightness > 0 or augment.contrast > 0):
        image = _normalise_and_light(image, seeds[4], normalization, augment.brightness, augment.contrast)
    else:
        image = normalise(image, normalization)
    image.set_shape([height, width, None])
    mask = _window_labels(mask, window, (transpose, lr, ud), size, turns=turns)
    mask = tf.cast(mask, tf.int32)
    mask.set_shape([height, width, 1])
    return image, mask


def _random_window(
    shape: tf.Tensor, seeds: tf.Tensor, size: tuple[int, int], scale: tuple[float, float] | None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(top, left, height, width) of a random region of ``size * s`` (shrunk to fit the image, keeping its aspect
    ratio: a small image is taken whole)."""
    height, width = size
    image_h, image_w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    factor = tf.random.stateless_uniform([], seeds[0], scale[0], scale[1]) if scale is not None else tf.constant(1.0)
    want_h, want_w = height * factor, width * factor
    fit = tf.minimum(1.0, tf.minimum(image_h / want_h, image_w / want_w))
    crop_h = tf.clip_by_value(tf.cast(tf.round(want_h * fit), tf.int32), 1, shape[0])
    crop_w = tf.clip_by_value(tf.cast(tf.round(want_w * fit), tf.int32), 1, shape[1])
    top = tf.random.stateless_uniform([], seeds[1], minval=0, maxval=shape[0] - crop_h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[2], minval=0, maxval=shape[1] - crop_w + 1, dtype=tf.int32)
    return top, left, crop_h, crop_w


def _dihedral(seed: tf.Tensor, *, flips: bool, turns: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """A random element of the square's symmetry group, as (transpose, left-right flip, up-down flip) flags, applied
    in that order.

    ``transpose x lr x ud`` bits: all eight elements when ``flips`` and ``turns``; the four rotations (an even number
    of reflections) with ``turns`` only; the two flips and their product with ``flips`` only; none without either.
    """
    if not (flips or turns):
        return tf.constant(False), tf.constant(False), tf.constant(False)
    bits = tf.random.stateless_uniform([3], seed, minval=0, maxval=2, dtype=tf.int32) > 0
    transpose = bits[0] if turns else tf.constant(False)
    lr = bits[1]
    ud = bits[2] if flips else tf.not_equal(transpose, lr)
    return transpose, lr, ud


def _order(transpose: tf.Tensor) -> tf.Tensor:
    return tf.where(transpose, tf.constant([1, 0, 2]), tf.constant([0, 1, 2]))


def _axes(lr: tf.Tensor, ud: tf.Tensor) -> tf.Tensor:
    return tf.boolean_mask(tf.constant([1, 0]), tf.stack([lr, ud]))


def _resize_image(pixels: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """float32 ``pixels`` resized to ``size`` (bilinear, half-pixel centres); only converted when they have it."""
    shape = tf.shape(pixels)
    same = tf.logical_and(tf.equal(shape[0], size[0]), tf.equal(shape[1], size[1]))
    return tf.cond(same, lambda: tf.cast(pixels, tf.float32), lambda: tf.image.resize(pixels, size, method="bilinear"))


def _nearest(length: tf.Tensor, target: int | tf.Tensor) -> tf.Tensor:
    """Source index of each of ``target`` positions resampled from ``length`` by nearest neighbour with half-pixel
    centres, computed as TensorFlow's ``ResizeNearestNeighbor`` does: ``min(floor((i + 0.5) * length / target),
    length - 1)`` in float32."""
    scale = tf.cast(length, tf.float32) / tf.cast(target, tf.float32)
    index = tf.cast(tf.floor((tf.range(target, dtype=tf.float32) + 0.5) * scale), tf.int32)
    return tf.minimum(index, length - 1)


def _resize_labels(mask: tf.Tensor, size: tuple[int, int] | tf.Tensor) -> tf.Tensor:
    """``tf.image.resize(mask, size, method="nearest")`` as two gathers (any dtype, several times faster)."""
    shape = tf.shape(mask)
    rows = _nearest(shape[0], size[0])
    cols = _nearest(shape[1], size[1])
    return tf.gather(tf.gather(mask, rows), cols, axis=1)


def _window_labels(
    mask: tf.Tensor,
    window: tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor],
    dihedral: tuple[tf.Tensor, tf.Tensor, tf.Tensor],
    size: tuple[int, int],
    *,
    turns: bool,
) -> tf.Tensor:
    """The mask's window, turned and flipped by the ``dihedral`` flags and resized to ``size`` by nearest neighbour,
    without cutting, turning or resizing the mask itself: output pixel (i, j) takes the window's pixel that the
    nearest-neighbour resize of the turned and flipped window would."""
    top, left, crop_h, crop_w = window
    transpose, lr, ud = dihedral
    turned_h, turned_w = tf.where(transpose, crop_w, crop_h), tf.where(transpose, crop_h, crop_w)
    rows, cols = _nearest(turned_h, size[0]), _nearest(turned_w, size[1])
    rows = tf.where(ud, turned_h - 1 - rows, rows)
    cols = tf.where(lr, turned_w - 1 - cols, cols)
    if not turns:  # no transpose: rows and cols index the window's rows and columns
        return tf.gather(tf.gather(mask, top + rows), left + cols, axis=1)
    # size is square: when transposed, the output's rows come from the window's columns (then transpose back)
    labels = tf.gather(
        tf.gather(mask, top + tf.where(transpose, cols, rows)), left + tf.where(transpose, rows, cols), axis=1
    )
    return tf.transpose(labels, _order(transpose))


def _normalisation_affine(normalization: Normalization) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-band ``factor`` and ``offset`` with ``raw * factor + offset == (raw / scale - mean) / std``."""
    std = tf.constant(normalization.std, tf.float32)
    return 1.0 / (normalization.scale * std), -tf.constant(normalization.mean, tf.float32) / std


def _normalise_and_light(
    image: tf.Tensor, seed: tf.Tensor, normalization: Normalization, brightness: float, contrast: float
) -> tf.Tensor:
    """The normalised image with each band's deviation from its mean scaled by ``c = U(1 - contrast, 1 + contrast)``
    plus ``b = U(-brightness, brightness)``, as one multiply-add: with ``n = x * f + o``, ``(n - mean(n)) * c +
    mean(n) + b == x * (f * c) + (o + b + mean(x) * f * (1 - c))``."""
    draws = tf.random.stateless_uniform([2], seed, minval=-1.0, maxval=1.0)
    change, shift = 1.0 + contrast * draws[0], brightness * draws[1]
    factor, offset = _normalisation_affine(normalization)
    mean = tf.reduce_mean(image, axis=[0, 1])
    return _affine(image, factor * change, offset + shift + mean * factor * (1.0 - change))


def _affine(image: tf.Tensor, factor: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """``image * factor + offset`` along the last (band) axis of a float32 tensor of any rank, as a product with the
    diagonal matrix of ``factor`` and a bias add: both have fast kernels, unlike the broadcasting multiply and add
    (about twice as fast here). Exact for finite values (the other bands add zeros); a NaN or infinite band value
    makes the pixel's every band NaN."""
    shape = tf.shape(image)
    flat = tf.reshape(image, [-1, shape[-1]])
    return tf.reshape(tf.nn.bias_add(tf.matmul(flat, tf.linalg.diag(factor)), offset), shape)


def eval_transform(
    image: tf.Tensor, mask: tf.Tensor, *, size: tuple[int, int], mode: str, normalization: Normalization
) -> tuple[tf.Tensor, tf.Tensor]:
    """Deterministic windows of ``size``: (N, H, W, bands) normalised float32 images and (N, H, W, 1) int32 masks
    (N = 1 except for ``tiles``)."""
    height, width = size
    if mode == "resize":
        image, mask = _resize_image(image, size)[None], _resize_labels(mask, size)[None]
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
    mask = tf.cast(mask, tf.int32)
    mask.set_shape([None, height, width, 1])
    return image, mask


def _cover(image: tf.Tensor, mask: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Resized up, keeping the aspect ratio, when a side is shorter than ``size``; the image as float32."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    factor = tf.reduce_max(tf.stack([1.0, size[0] / shape[0], size[1] / shape[1]]))
    target = tf.cast(tf.math.ceil(shape * factor), tf.int32)
    return tf.cond(
        factor > 1.0,
        lambda: (tf.image.resize(image, target, method="bilinear"), _resize_labels(mask, target)),
        lambda: (tf.cast(image, tf.float32), mask),
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
