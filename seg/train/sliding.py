"""Sliding-window prediction: class probabilities for an image of any size from a model with a fixed input size.

Contract of :func:`predict_probabilities`:

* An image no larger than the tile is padded up to it (``reflect`` padding at the bottom and right, so the model sees
  plausible context, not a black border) and predicted in one pass; the probabilities are cropped back.
* A larger image (satellite chips, stitched exports) is covered by tile-sized windows, ``overlap`` of a tile apart
  from each other, the last window of each row and column flush with the image edge. Windows are predicted in
  batches of ``batch_size``; each window's softmax is added into a running sum with a weight window that tapers to
  almost zero towards the tile borders that face another window (borders on the image edge keep full weight), so
  seams vanish; the sum is divided by the summed weights. Only one batch of windows is held at a time: memory is the
  image, its probabilities and one batch.
* A dimension smaller than the tile and the other larger: padded in that dimension, slid along the other.

Models output logits (see :mod:`seg.train.models`); the softmax is taken here, in float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

#: Smallest weight of a pixel in a window: keeps the weight sum positive at every pixel whatever the layout.
MIN_WEIGHT = 1e-3


def predict_probabilities(
    model: Any,
    pixels_normalised: npt.ArrayLike,
    tile: tuple[int, int],
    overlap: float = 0.25,
    batch_size: int = 4,
) -> npt.NDArray[np.float32]:
    """Softmax class probabilities of every pixel of an image.

    Args:
        model: a Keras model taking (B, tile height, tile width, bands) float32 and returning (B, tile height,
            tile width, classes) logits (anything with ``predict_on_batch`` that does so).
        pixels_normalised: the (H, W, bands) image, already normalised (see :class:`seg.train.spec.Normalization`).
        tile: the model's input (height, width); for a ``seg train`` run, its input size (multiples of 32).
        overlap: share of a tile that neighbouring windows overlap, in [0, 1).
        batch_size: windows per forward pass.

    Returns:
        (H, W, classes) float32 probabilities summing to 1 at every pixel.

    Raises:
        ValueError: an image that is not (H, W, bands), a bad tile, overlap or batch size, or a model whose output
            does not have the tile's size.
    """
    pixels = np.asarray(pixels_normalised, dtype=np.float32)
    if pixels.ndim != 3 or min(pixels.shape) == 0:
        raise ValueError(f"expected an (H, W, bands) image, got shape {pixels.shape} {pixels.dtype}")
    tile_h, tile_w = (int(v) for v in tile)
    if tile_h <= 0 or tile_w <= 0:
        raise ValueError(f"tile must be positive (height, width), got {tile}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must lie in [0, 1), got {overlap}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    height, width = pixels.shape[:2]
    padded = _pad_to(pixels, tile_h, tile_w)
    rows = window_starts(padded.shape[0], tile_h, overlap)
    cols = window_starts(padded.shape[1], tile_w, overlap)
    if len(rows) == 1 and len(cols) == 1:
        return _softmax(_predict(model, padded[None], tile_h, tile_w))[0, :height, :width]
    weight_rows = [_profile(tile_h, overlap, r > 0, r + tile_h < padded.shape[0]) for r in rows]
    weight_cols = [_profile(tile_w, overlap, c > 0, c + tile_w < padded.shape[1]) for c in cols]
    total: npt.NDArray[np.float32] | None = None
    weights = np.zeros(padded.shape[:2], np.float32)
    for batch in _batches([(i, j) for i in range(len(rows)) for j in range(len(cols))], batch_size):
        windows = np.stack([padded[rows[i] : rows[i] + tile_h, cols[j] : cols[j] + tile_w] for i, j in batch])
        probabilities = _softmax(_predict(model, windows, tile_h, tile_w))
        if total is None:
            total = np.zeros((*padded.shape[:2], probabilities.shape[-1]), np.float32)
        for (i, j), window in zip(batch, probabilities, strict=True):
            weight = np.outer(weight_rows[i], weight_cols[j])
            r, c = rows[i], cols[j]
            total[r : r + tile_h, c : c + tile_w] += window * weight[..., None]
            weights[r : r + tile_h, c : c + tile_w] += weight
    if total is None:  # unreachable: there are two windows at least
        raise RuntimeError("no window was predicted")
    total = total[:height, :width]
    total /= weights[:height, :width, None]
    return total


def window_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of windows of ``tile`` pixels covering ``length`` (>= tile) pixels, the last flush with the end."""
    if length <= tile:
        return [0]
    stride = max(1, round(tile * (1 - overlap)))
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def blend_weights(tile: tuple[int, int], overlap: float) -> npt.NDArray[np.float32]:
    """The (tile height, tile width) weight of an inner window: 1 in the middle, tapering linearly over the overlap
    towards every border down to :data:`MIN_WEIGHT`."""
    return np.outer(_profile(tile[0], overlap, True, True), _profile(tile[1], overlap, True, True))


def _profile(size: int, overlap: float, taper_start: bool, taper_end: bool) -> npt.NDArray[np.float32]:
    """1-D weights along a window: a linear ramp over the overlapped pixels on each side that has a neighbour."""
    ramp = max(1, round(size * overlap))
    rising = np.clip((np.arange(size, dtype=np.float32) + 0.5) / ramp, MIN_WEIGHT, 1.0)
    profile = np.ones(size, np.float32)
    if taper_start:
        profile = np.minimum(profile, rising)
    if taper_end:
        profile = np.minimum(profile, rising[::-1])
    return profile


def _pad_to(pixels: npt.NDArray[np.float32], height: int, width: int) -> npt.NDArray[np.float32]:
    """Reflect-pad at the bottom and right up to at least (height, width); the image itself when already large."""
    extra_h, extra_w = max(0, height - pixels.shape[0]), max(0, width - pixels.shape[1])
    if not extra_h and not extra_w:
        return pixels
    # numpy reflects as often as needed (pads longer than the image) and repeats a 1-pixel axis
    return np.pad(pixels, ((0, extra_h), (0, extra_w), (0, 0)), mode="reflect")


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _predict(model: Any, batch: npt.NDArray[np.float32], tile_h: int, tile_w: int) -> npt.NDArray[np.float32]:
    logits = np.asarray(model.predict_on_batch(batch), dtype=np.float32)
    if logits.ndim != 4 or logits.shape[:3] != (len(batch), tile_h, tile_w):
        raise ValueError(
            f"model output should be (batch, {tile_h}, {tile_w}, classes) logits, got shape {logits.shape}"
        )
    return logits


def _softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=-1, keepdims=True)
    return shifted
