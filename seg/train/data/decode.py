"""Decoding images and masks inside a ``tf.data`` graph, keeping the images' stored dtype.

PNG and JPEG images go through ``tf.io.decode_image`` (3 bands of uint8, in parallel, without the GIL), 8- and 16-bit
greyscale PNG masks through ``tf.io.decode_png``; every other file (GeoTIFFs of any band count and dtype, WebP, palette
masks...) through seg's Python readers in a ``tf.numpy_function``. Which reader a file gets was decided by the scan
(:mod:`seg.train.data.probe`); a dataset with mixed readers picks one per element.

Images come out in the dtype the dataset stores them in (:func:`image_dtype`: uint8 for PNG/JPEG, the rasters' own
dtype for GeoTIFFs), not float32: the training transforms crop and flip them before converting the window to float.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from seg.train.data.probe import read_label
from seg.train.rasters import read_input

#: Stored image dtypes the pipeline keeps as they are (TensorFlow's crop, flip, transpose and resize kernels take
#: them); any other dtype, or a mix that does not promote to one of these, is converted to float32 when decoded.
KEPT_DTYPES = ("uint8", "int8", "uint16", "int16", "int32", "float16", "float32")


def image_dtype(dtypes: Iterable[str]) -> str:
    """The dtype a dataset holds images of the given stored dtypes in: their common promotion when it is one of
    :data:`KEPT_DTYPES`, else float32."""
    common = np.result_type(*(np.dtype(d) for d in set(dtypes))).name
    return common if common in KEPT_DTYPES else "float32"


def decode_image(path: tf.Tensor, reader: tf.Tensor, readers: list[str], bands: int, dtype: str) -> tf.Tensor:
    """(H, W, bands) raw pixel values in ``dtype`` (see :func:`image_dtype`). ``readers``: the :data:`IMAGE_READERS`
    in use, ``reader`` the index of this file's in that list (a single reader puts no branch in the graph)."""
    branches = {"graph": lambda: _graph_image(path, dtype), "python": lambda: _python_image(path, dtype)}
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


def _graph_image(path: tf.Tensor, dtype: str) -> tf.Tensor:
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    return image if dtype == "uint8" else tf.cast(image, dtype)


def _python_image(path: tf.Tensor, dtype: str) -> tf.Tensor:
    def read(name: bytes) -> npt.NDArray:
        return read_input(os.fsdecode(name)).astype(dtype, copy=False)

    return tf.numpy_function(read, [path], tf.as_dtype(dtype), stateful=False)


def _graph_mask(path: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    return tf.cast(tf.io.decode_png(tf.io.read_file(path), channels=1, dtype=dtype), tf.int32)


def _python_mask(path: tf.Tensor) -> tf.Tensor:
    return tf.numpy_function(_read_mask_array, [path], tf.int32, stateful=False)


def _read_mask_array(path: bytes) -> npt.NDArray[np.int32]:
    return read_label(os.fsdecode(path))[..., None]
