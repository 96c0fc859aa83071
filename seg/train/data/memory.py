"""Images and masks decoded once and held in memory, so that the input pipeline's steps only crop, flip, resize and
normalise.

Whether a dataset is held in memory (``make_dataset(cache=...)``): ``"auto"`` when its decoded pixels, counted from the
files' headers (size, bands, dtype), take less than :func:`memory_budget` (the smaller of 2 GiB and a quarter of the
machine's or the container's memory); ``True`` always; ``False`` never (every image is decoded each time it is used).

The decoded samples live in two CPU ``tf.Variable``\\ s of rows of :data:`ROW` values: images in the dtype the
pipeline stores them in (uint8 for PNG/JPEG, the rasters' dtype for GeoTIFFs), masks in the narrowest integer dtype
that holds their classes. Each sample takes whole rows (its last row padded), so images of different sizes sit side by
side; a sample is read back by gathering its rows and reshaping them to its shape. They are filled by the streaming
pipeline's own decoders (a parallel ``tf.data`` map: TensorFlow's threads, without the GIL for PNG/JPEG, rasterio
releasing it for GeoTIFFs), so a sample read from memory is, bit for bit, the one decoded from its file.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg.dataset.images import image_size
from seg.errors import ImageError, OptionError, ValidationError
from seg.train.data.scan import Sample
from seg.train.rasters import RASTER_SUFFIXES

logger = logging.getLogger(__name__)

#: The ``cache`` choices of :func:`~seg.train.data.make_dataset`.
CACHE_CHOICES = ("auto", True, False)
#: The most decoded bytes ``cache="auto"`` holds in memory.
MAX_MEMORY = 2 * 1024**3
#: Values per row of the in-memory store.
ROW = 1024

_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


@dataclass(frozen=True)
class StoredImage:
    """An image's size, bands and dtype as the pipeline decodes it, from its header."""

    height: int
    width: int
    bands: int
    dtype: str


def stored_images(samples: Sequence[Sample], *, workers: int | None = None) -> list[StoredImage]:
    """Every sample's :class:`StoredImage`, from the headers (read by a thread pool).

    Raises:
        ImageError: a file that is not an image or is too large to decode safely.
    """
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(_stored_image, [s.image for s in samples]))


def _stored_image(path: Path) -> StoredImage:
    if path.suffix.lower() in RASTER_SUFFIXES:
        from seg.train.data.probe import image_header

        header = image_header(path)
        return StoredImage(header.height, header.width, header.bands, header.dtype)
    width, height = image_size(path)  # PNG, JPEG...: decoded to 8-bit RGB
    return StoredImage(height, width, 3, "uint8")


def mask_dtype(classes: int | None, readers: Sequence[str]) -> str:
    """The narrowest integer dtype that holds every class index: from the class count when known, else from the mask
    readers (8-bit PNG masks hold at most 255)."""
    if classes is not None:
        return "uint8" if classes <= 256 else "uint16" if classes <= 65536 else "int32"
    if set(readers) <= {"png8"}:
        return "uint8"
    return "uint16" if set(readers) <= {"png8", "png16"} else "int32"


def decoded_bytes(images: Sequence[StoredImage], image_dtype: str, mask_dtype: str) -> int:
    """Bytes the decoded images (in ``image_dtype``) and masks (in ``mask_dtype``) take in memory."""
    image_size, mask_size = np.dtype(image_dtype).itemsize, np.dtype(mask_dtype).itemsize
    return sum(i.height * i.width * (i.bands * image_size + mask_size) for i in images)


def memory_budget() -> int:
    """The most decoded bytes ``cache="auto"`` holds in memory: :data:`MAX_MEMORY` or a quarter of the physical
    memory (or of the container's limit), the smaller."""
    total = _physical_memory()
    return min(MAX_MEMORY, total // 4) if total else MAX_MEMORY // 4


def _physical_memory() -> int | None:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX
        return None
    for limit in _CGROUP_LIMITS:
        try:
            total = min(total, int(limit.read_text().strip()))
        except (OSError, ValueError):  # no such cgroup, or "max"
            continue
    return total


def check_cache(cache: object) -> None:
    """Refuse a ``cache`` choice that is not one of :data:`CACHE_CHOICES`.

    Raises:
        OptionError: an unknown choice.
    """
    if not (cache is True or cache is False or cache == "auto"):
        raise OptionError("unknown cache choice", expected='"auto", True or False', actual=cache)


def hold_in_memory(cache: bool | str, nbytes: int, budget: int | None = None) -> bool:
    """Whether a dataset of ``nbytes`` decoded bytes is held in memory under the ``cache`` choice (``budget``: default
    :func:`memory_budget`).

    Raises:
        OptionError: ``cache`` is not one of :data:`CACHE_CHOICES`.
    """
    check_cache(cache)
    if cache == "auto":
        return nbytes < (memory_budget() if budget is None else budget)
    return bool(cache)


class DecodedSamples:
    """Decoded images and masks held in memory (see the module docstring); :meth:`read` takes one out in a graph."""

    def __init__(
        self, samples: Sequence[Sample], images: Sequence[StoredImage], image_dtype: str, mask_dtype: str
    ) -> None:
        import tensorflow as tf

        self.image_dtype, self.mask_dtype = image_dtype, mask_dtype
        self.bands = images[0].bands if images else 0
        self._samples = list(samples)
        self._images = list(images)
        self.image_shapes = np.array([(i.height, i.width, i.bands) for i in images], np.int64).reshape(-1, 3)
        self.mask_shapes = np.concatenate([self.image_shapes[:, :2], np.ones((len(images), 1), np.int64)], axis=1)
        self.image_rows, image_total = _rows(self.image_shapes.prod(axis=1))
        self.mask_rows, mask_total = _rows(self.mask_shapes.prod(axis=1))
        with tf.device("/CPU:0"):
            self._image_store = tf.Variable(tf.zeros([image_total, ROW], image_dtype), trainable=False)
            self._mask_store = tf.Variable(tf.zeros([mask_total, ROW], mask_dtype), trainable=False)
        self.nbytes = (
            image_total * ROW * np.dtype(image_dtype).itemsize + mask_total * ROW * np.dtype(mask_dtype).itemsize
        )

    def fill(self, load: Callable, *, classes: int | None = None) -> None:
        """Decode every sample once with ``load(index) -> (image, int32 mask (H, W, 1))`` (the streaming pipeline's
        decoders) in a parallel ``tf.data`` map that also writes it to the stores.

        Raises:
            ValidationError: a mask value that is not a class, or a decoded size that differs from the header's.
        """
        import tensorflow as tf

        began = time.perf_counter()
        image_starts = tf.constant(self.image_rows[:, 0])
        mask_starts = tf.constant(self.mask_rows[:, 0])
        expected = tf.constant(np.concatenate([self.image_shapes, self.mask_shapes], axis=1))

        def store(index: tf.Tensor, image: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
            image_rows, image_values = _to_rows(tf.cast(image, self.image_dtype), image_starts[index])
            mask_rows, mask_values = _to_rows(tf.cast(mask, self.mask_dtype), mask_starts[index])
            writes = [
                tf.raw_ops.ResourceScatterUpdate(
                    resource=self._image_store.handle, indices=image_rows, updates=image_values
                ),
                tf.raw_ops.ResourceScatterUpdate(
                    resource=self._mask_store.handle, indices=mask_rows, updates=mask_values
                ),
            ]
            with tf.control_dependencies(writes):
                return tf.constant(True)

        def decode(index: tf.Tensor):
            image, mask = load(index)
            shapes = tf.concat([tf.shape(image, tf.int64), tf.shape(mask, tf.int64)], 0)
            fits = tf.reduce_all(tf.equal(shapes, expected[index]))  # else its rows would overrun its place
            stored = tf.cond(fits, lambda: store(index, image, mask), lambda: tf.constant(False))
            return index, shapes, tf.reduce_min(mask), tf.reduce_max(mask), stored

        # each element writes its own rows of the stores, in the map (several at once, in TensorFlow's threads); the
        # loop only checks what was decoded
        autotune = tf.data.AUTOTUNE
        decoded = tf.data.Dataset.range(len(self._samples)).map(
            decode, num_parallel_calls=autotune, deterministic=False
        )
        top = classes if classes is not None else np.iinfo(self.mask_dtype).max + 1
        for index, shapes, low, high, _ in decoded.prefetch(autotune):  # _: stored (False only when the check fails)
            self._check(int(index), shapes.numpy(), int(low), int(high), top, classes)
        logger.info(
            "decoded %d images and masks into memory (%.0f MiB) in %.1f s",
            len(self._samples),
            self.nbytes / 2**20,
            time.perf_counter() - began,
        )

    def _check(self, index: int, shapes: np.ndarray, low: int, high: int, top: int, classes: int | None) -> None:
        sample, expected = self._samples[index], self._images[index]
        image_shape, mask_shape = tuple(int(v) for v in shapes[:3]), tuple(int(v) for v in shapes[3:])
        if image_shape != (expected.height, expected.width, expected.bands) or mask_shape != (*image_shape[:2], 1):
            raise ImageError(
                "decoded size differs from the header's, or from the mask's",
                path=sample.image,
                expected=f"{expected.height}x{expected.width}x{expected.bands} with a mask of that size",
                actual=f"image {'x'.join(map(str, image_shape))}, mask {'x'.join(map(str, mask_shape))}",
            )
        if low < 0 or high >= top:
            raise ValidationError(
                "mask value is not a class",
                path=sample.mask,
                expected=f"values 0..{top - 1}" + (f" ({classes} classes)" if classes is not None else ""),
                actual=high if high >= top else low,
            )

    def read(self, index):
        """Sample ``index``'s image (in :attr:`image_dtype`) and mask (in :attr:`mask_dtype`), (H, W, 1), inside a
        graph."""
        image = _from_rows(self._image_store, self.image_rows, self.image_shapes, index)
        mask = _from_rows(self._mask_store, self.mask_rows, self.mask_shapes, index)
        image.set_shape([None, None, self.bands])
        mask.set_shape([None, None, 1])
        return image, mask


def _rows(sizes: np.ndarray) -> tuple[np.ndarray, int]:
    """(first row, row count) of each of a run of samples of ``sizes`` values, and the rows of all of them."""
    counts = -(-sizes.astype(np.int64) // ROW)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return np.stack([starts, counts], axis=1).reshape(-1, 2), int(counts.sum())


def _to_rows(pixels, start):
    """(row indices, (rows, ROW) values) of ``pixels`` stored from row ``start``, the last row padded with zeros."""
    import tensorflow as tf

    flat = tf.reshape(pixels, [-1])
    count = (tf.size(flat, tf.int64) + ROW - 1) // ROW
    padded = tf.pad(flat, [[0, count * ROW - tf.size(flat, tf.int64)]])
    return tf.range(start, start + count), tf.reshape(padded, [-1, ROW])


def _from_rows(store, rows: np.ndarray, shapes: np.ndarray, index):
    import tensorflow as tf

    start, count = tf.unstack(tf.gather(tf.constant(rows), index))
    shape = tf.gather(tf.constant(shapes), index)
    values = tf.reshape(tf.gather(store, tf.range(start, start + count)), [-1])
    return tf.reshape(values[: tf.reduce_prod(shape)], shape)
