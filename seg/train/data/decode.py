"""Decoding images and masks inside a ``tf.data`` graph.

PNG and JPEG images go through ``tf.io.decode_image`` (3 bands, in parallel, without the GIL), 8- and 16-bit greyscale
PNG masks through ``tf.io.decode_png``; every other file (GeoTIFFs of any band count and dtype, WebP, palette masks...)
through seg's Python readers in a ``tf.numpy_function``. Which reader a file gets was decided by the scan
(:mod:`seg.train.data.probe`); a dataset with mixed readers picks one per element.
"""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from seg.train.data.probe import read_label
from seg.train.rasters import read_input


def decode_image(path: tf.Tensor, reader: tf.Tensor, readers: list[str], bands: int) -> tf.Tensor:
    """float32 (H, W, bands) raw pixel values. ``readers``: the :data:`IMAGE_READERS` in use, ``reader`` the index of
    this file's in that list (a single reader puts no branch in the graph)."""
    branches = {"graph": lambda: _graph_image(path), "python": lambda: _python_image(path)}
    image = _switch(reader, [branches[name] for name in readers])
    image.set_shape([None, None, bands])
    return image


def decode_mask(path: tf.Tensor, reader: tf.Tensor, readers: list[str], mask_scale: int) -> tf.Tensor:
    """int32 (H, W, 1) class indices (divided by ``mask_scale``). ``readers``: the :data:`MASK_READERS` in use,
    ``reader`` the index of this file's in that list."""
    branches = {
        "png8": lambda: _graph_mask(path, tf.uint8),
        "png16": lambda: _graph_mask(path, tf.uint16),
        "python": lambda: _python_mask(path),
    }
    mask = _switch(reader, [branches[name] for name in readers])
    mask.set_shape([None, None, 1])
    return mask // mask_scale if mask_scale != 1 else mask


def _switch(index: tf.Tensor, branches: list):
    if len(branches) == 1:
        return branches[0]()
    return tf.switch_case(index, branches)


def _graph_image(path: tf.Tensor) -> tf.Tensor:
    data = tf.io.read_file(path)
    return tf.cast(tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False), tf.float32)


def _python_image(path: tf.Tensor) -> tf.Tensor:
    return tf.numpy_function(_read_image_array, [path], tf.float32, stateful=False)


def _read_image_array(path: bytes) -> npt.NDArray[np.float32]:
    return read_input(os.fsdecode(path)).astype(np.float32)


def _graph_mask(path: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    return tf.cast(tf.io.decode_png(tf.io.read_file(path), channels=1, dtype=dtype), tf.int32)


def _python_mask(path: tf.Tensor) -> tf.Tensor:
    return tf.numpy_function(_read_mask_array, [path], tf.int32, stateful=False)


def _read_mask_array(path: bytes) -> npt.NDArray[np.int32]:
    return read_label(os.fsdecode(path))[..., None]
