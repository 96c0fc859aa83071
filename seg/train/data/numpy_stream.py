"""The input pipeline without TensorFlow: ``keras.utils.PyDataset`` streams of (images, labels) batches built with
numpy, for the JAX and PyTorch backends where TensorFlow is not installed (or wherever ``SEG_INPUT=numpy`` is set).

They keep the contract of the ``tf.data`` pipeline (:mod:`seg.train.data.pipeline`): float32 (B, H, W, bands)
normalised images and int32 (B, H, W) class indices. Training data is one stream of ``(epochs - start_epoch) *
steps_per_epoch`` batches: batch ``i`` is step ``i % steps`` of epoch ``start_epoch + i // steps``, that epoch's images
taken in the order of :func:`~seg.train.data.pipeline.epoch_order` (the same permutation as the ``tf.data`` path), each
augmented by a numpy generator seeded with the seed pair ``epoch_order`` gives its position. Every batch is therefore a
pure function of ``(seed, epoch, step)``, whoever asks for it and in whatever order: give Keras the stream with
``steps_per_epoch=steps_per_epoch(len(samples), batch_size)`` and ``initial_epoch=start_epoch``, as the ``tf.data``
stream, and a resumed run sees the batches of the uninterrupted one.

The transforms are those of :mod:`seg.train.data.transforms` written in numpy (bilinear with half-pixel centres for
images, nearest neighbour for masks, the same windows, flips, turns, brightness and contrast), so the batches are close
to the ``tf.data`` ones, not bit-identical (other decoders, other random draws).

Batches are built by a pool of threads, a few ahead of the one asked for (:class:`ReadAhead`). Keras' own workers
(``PyDataset(workers=...)``, its ``OrderedEnqueuer``) are not used: stopped at each epoch's end and started again, the
enqueuer serves the batches it had built ahead, then starts over from batch 0, expecting every epoch to be the whole
dataset; with a stream that spans epochs, batches come repeated and out of order (Keras 3.15, torch backend: a 12-batch
stream fed batches 1..11 then 0).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from seg.errors import ImageError, OptionError, ValidationError
from seg.train.data.augment import Augment
from seg.train.data.memory import check_cache, hold_in_memory, stored_images
from seg.train.data.pipeline import epoch_order, steps_per_epoch
from seg.train.data.probe import read_label
from seg.train.data.scan import Sample
from seg.train.keras_env import import_keras
from seg.train.rasters import read_input
from seg.train.spec import Normalization

keras = import_keras()

#: Evaluation modes, as :data:`seg.train.data.transforms.EVAL_MODES` (which cannot be imported without TensorFlow).
EVAL_MODES = ("tiles", "center", "resize")

Batch = tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]
T = TypeVar("T")


def make_numpy_dataset(
    samples: Sequence[Sample],
    *,
    size: tuple[int, int],
    normalization: Normalization,
    batch_size: int,
    training: bool,
    seed: int = 0,
    augment: Augment | None = None,
    epochs: int = 1,
    start_epoch: int = 0,
    mask_scale: int = 1,
    bands: int = 3,
    eval_mode: str = "tiles",
    classes: int | Sequence[str] | None = None,
    cache: bool | str = "auto",
    threads: int | None = None,
) -> keras.utils.PyDataset:
    """A :class:`TrainingStream` (``training``) or an :class:`EvaluationStream`; the arguments are those of
    :func:`~seg.train.data.make_dataset`, plus ``threads``: the threads that build batches (default: the CPU count, at
    most 8; 0 builds each batch when it is asked for, in the caller's thread).

    Raises:
        OptionError: a bad size, batch size, epoch range, eval mode, cache choice or thread count.
        ValidationError: an image with another band count than ``bands``; a mask value that is not a class (raised
            here when the samples are held in memory, else when a batch holding it is built).
        ImageError: a file that is not an image, or an image and its mask of different sizes.
    """
    if not samples:
        raise OptionError("no samples to make a dataset of", expected="at least one image")
    if len(size) != 2 or min(size) < 1:
        raise OptionError("size must be (height, width) in pixels", expected="two positive integers", actual=size)
    if eval_mode not in EVAL_MODES:
        raise OptionError("unknown evaluation mode", expected=f"one of {', '.join(EVAL_MODES)}", actual=eval_mode)
    if batch_size < 1:
        raise OptionError("batch size must be positive", expected=">= 1", actual=batch_size)
    if training:
        steps_per_epoch(len(samples), batch_size)
        if not 0 <= start_epoch < epochs:
            raise OptionError(
                "no epochs to train", expected="0 <= start_epoch < epochs", actual=f"{start_epoch}, {epochs}"
            )
    check_cache(cache)
    threads = min(8, os.cpu_count() or 1) if threads is None else threads
    if threads < 0:
        raise OptionError("thread count must not be negative", expected=">= 0", actual=threads)
    size = (int(size[0]), int(size[1]))
    count = classes if isinstance(classes, int) or classes is None else len(classes)
    decoded = DecodedSamples(samples, bands=bands, mask_scale=mask_scale, classes=count, cache=cache, threads=threads)
    if training:
        return TrainingStream(
            decoded, size=size, normalization=normalization, batch_size=batch_size, seed=seed, augment=augment,
            epochs=epochs, start_epoch=start_epoch, threads=threads,
        )  # fmt: skip
    return EvaluationStream(
        decoded, size=size, normalization=normalization, batch_size=batch_size, mode=eval_mode, threads=threads
    )


class DecodedSamples:
    """Images (H, W, bands) in their stored dtype and masks (H, W) of class indices, by sample index: decoded once
    and held in memory when the ``cache`` choice says so (as :mod:`seg.train.data.memory` decides), else decoded from
    the files every time."""

    def __init__(
        self,
        samples: Sequence[Sample],
        *,
        bands: int,
        mask_scale: int,
        classes: int | None,
        cache: bool | str,
        threads: int,
    ) -> None:
        self.samples = list(samples)
        self.mask_scale = mask_scale
        self.classes = classes
        self.headers = stored_images(self.samples)
        for sample, header in zip(self.samples, self.headers, strict=True):
            if header.bands != bands:
                raise ValidationError(
                    "image has another band count", path=sample.image, expected=f"{bands} bands", actual=header.bands
                )
        mask_bytes = np.dtype(np.uint8 if classes is not None and classes <= 256 else np.int32).itemsize
        nbytes = sum(h.height * h.width * (h.bands * np.dtype(h.dtype).itemsize + mask_bytes) for h in self.headers)
        self._memory: list[tuple[npt.NDArray, npt.NDArray]] | None = None
        if hold_in_memory(cache, nbytes):
            with ThreadPoolExecutor(max(1, threads)) as pool:
                self._memory = list(pool.map(self.decode, range(len(self.samples))))

    def __len__(self) -> int:
        return len(self.samples)

    def shape(self, index: int) -> tuple[int, int]:
        """(H, W) of sample ``index``, from its header."""
        return self.headers[index].height, self.headers[index].width

    def read(self, index: int) -> tuple[npt.NDArray, npt.NDArray]:
        """Sample ``index``'s image and mask (do not modify them: they may be the ones held in memory)."""
        return self._memory[index] if self._memory is not None else self.decode(index)

    def decode(self, index: int) -> tuple[npt.NDArray, npt.NDArray]:
        """Sample ``index``'s image and mask, from the files, checked against the header and the class count.

        Raises:
            ImageError: the decoded image differs from its header, or from its mask, in size.
            ValidationError: a mask value that is not a class.
        """
        sample, header = self.samples[index], self.headers[index]
        image = read_input(sample.image)
        mask = read_label(sample.mask, self.mask_scale)
        if image.shape != (header.height, header.width, header.bands) or mask.shape != image.shape[:2]:
            raise ImageError(
                "decoded size differs from the header's, or from the mask's",
                path=sample.image,
                expected=f"{header.height}x{header.width}x{header.bands} with a mask of that size",
                actual=f"image {'x'.join(map(str, image.shape))}, mask {'x'.join(map(str, mask.shape))}",
            )
        top = self.classes if self.classes is not None else np.iinfo(np.int32).max
        low, high = (int(mask.min()), int(mask.max())) if mask.size else (0, 0)
        if low < 0 or high >= top:
            raise ValidationError(
                "mask value is not a class",
                path=sample.mask,
                expected=f"values 0..{top - 1}" + (f" ({top} classes)" if self.classes is not None else ""),
                actual=high if high >= top else low,
            )
        return image, mask.astype(np.uint8 if high < 256 else np.uint16 if high < 65536 else np.int32)


class ReadAhead(Generic[T]):
    """``get(i)`` returns ``build(i)`` for ``i`` in ``[0, count)``, built in a pool of ``threads`` threads while the
    next ``depth`` ones are built ahead. ``build`` must be a pure function of ``i``: the read-ahead changes when a
    result is built, never what it is. The pool is let go after the last index and made again when needed."""

    def __init__(self, build: Callable[[int], T], count: int, *, threads: int, depth: int | None = None) -> None:
        self.build, self.count, self.threads = build, count, threads
        self.depth = 2 * threads if depth is None else depth
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[int, Future[T]] = {}

    def get(self, index: int) -> T:
        if not 0 <= index < self.count:
            raise IndexError(f"batch {index} out of range (0..{self.count - 1})")
        if self.threads == 0:
            return self.build(index)
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="seg-input")
            for stale in [i for i in self._pending if i < index]:
                self._pending.pop(stale).cancel()
            future = self._pending.pop(index, None) or self._pool.submit(self.build, index)
            for ahead in range(index + 1, min(index + 1 + self.depth, self.count)):
                if ahead not in self._pending:
                    self._pending[ahead] = self._pool.submit(self.build, ahead)
        try:
            return future.result()
        finally:
            if index == self.count - 1:
                self.close()

    def close(self) -> None:
        """Cancel what was built ahead and let the threads go."""
        with self._lock:
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=False)  # a batch someone waits for still gets built
                self._pool = None


class TrainingStream(keras.utils.PyDataset):
    """The augmented training batches of epochs ``[start_epoch, epochs)``, one stream (see the module docstring).

    Attributes:
        steps: batches per epoch (:func:`~seg.train.data.pipeline.steps_per_epoch`).
    """

    def __init__(
        self,
        samples: DecodedSamples,
        *,
        size: tuple[int, int],
        normalization: Normalization,
        batch_size: int,
        seed: int,
        augment: Augment | None,
        epochs: int,
        start_epoch: int,
        threads: int,
    ) -> None:
        super().__init__(workers=1, use_multiprocessing=False)  # no Keras workers: see the module docstring
        self.samples, self.size, self.normalization = samples, size, normalization
        self.batch_size, self.seed, self.augment = batch_size, seed, augment
        self.epochs, self.start_epoch = epochs, start_epoch
        self.steps = steps_per_epoch(len(samples), batch_size)
        self._orders: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = {}
        self._lock = threading.Lock()
        self._read_ahead = ReadAhead(self.build, len(self), threads=threads)

    def __len__(self) -> int:
        return self.steps * (self.epochs - self.start_epoch)

    def __getitem__(self, index: int) -> Batch:
        return self._read_ahead.get(index)

    def build(self, index: int) -> Batch:
        """Batch ``index`` of the stream (step ``index % steps`` of epoch ``start_epoch + index // steps``)."""
        epoch, step = divmod(index, self.steps)
        order, seeds = self._order(self.start_epoch + epoch)
        images, labels = [], []
        for position in range(step * self.batch_size, (step + 1) * self.batch_size):
            image, mask = self.samples.read(int(order[position]))
            image, mask = train_example(
                image, mask, seeds[position], size=self.size, augment=self.augment, normalization=self.normalization
            )
            images.append(image)
            labels.append(mask)
        return np.stack(images), np.stack(labels)

    def _order(self, epoch: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        with self._lock:
            if epoch not in self._orders:
                if len(self._orders) >= 2:
                    self._orders.pop(min(self._orders))
                self._orders[epoch] = epoch_order(len(self.samples), self.batch_size, self.seed, epoch)
            return self._orders[epoch]


class EvaluationStream(keras.utils.PyDataset):
    """Every image once, in order, cut into windows by ``mode`` (as the ``tf.data`` evaluation dataset), in batches
    of ``batch_size`` windows (the last may be smaller; a batch may hold windows of several images).

    Attributes:
        windows: (sample index, window index) of every window, in order.
    """

    def __init__(
        self,
        samples: DecodedSamples,
        *,
        size: tuple[int, int],
        normalization: Normalization,
        batch_size: int,
        mode: str,
        threads: int,
    ) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.samples, self.size, self.normalization = samples, size, normalization
        self.batch_size, self.mode = batch_size, mode
        self.windows = [
            (index, window)
            for index in range(len(samples))
            for window in range(len(window_starts(samples.shape(index), size, mode)))
        ]
        self._read_ahead = ReadAhead(self.build, len(self), threads=threads)

    def __len__(self) -> int:
        return math.ceil(len(self.windows) / self.batch_size)

    def __getitem__(self, index: int) -> Batch:
        return self._read_ahead.get(index)

    def build(self, index: int) -> Batch:
        """Batch ``index``: windows ``[index * batch_size, (index + 1) * batch_size)``."""
        chunk = self.windows[index * self.batch_size : (index + 1) * self.batch_size]
        images, labels = [], []
        for sample in sorted({s for s, _ in chunk}):
            image, mask = self.samples.read(sample)
            which = [w for s, w in chunk if s == sample]
            windows, masks = eval_windows(image, mask, which, size=self.size, mode=self.mode)
            images.append(normalise(windows, self.normalization))
            labels.append(masks)
        return np.concatenate(images), np.concatenate(labels)


def normalise(image: npt.NDArray, normalization: Normalization) -> npt.NDArray[np.float32]:
    """``(image / scale - mean) / std`` per band (the last axis), in float32."""
    factor, offset = _affine(normalization)
    return (image.astype(np.float32, copy=False) * factor + offset).astype(np.float32, copy=False)


def train_example(
    image: npt.NDArray,
    mask: npt.NDArray,
    seed: npt.ArrayLike,
    *,
    size: tuple[int, int],
    augment: Augment | None,
    normalization: Normalization,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """A random window of ``size`` (scaled by ``augment.scale``), turned, flipped, resized, normalised, brightness and
    contrast changed, as :func:`seg.train.data.transforms.train_transform` does: float32 (H, W, bands) and int32 (H,
    W). ``seed``: the element's seed pair; the same seed, the same output."""
    rng = np.random.default_rng([int(s) for s in np.asarray(seed).ravel()])
    height, width = size
    image_h, image_w = mask.shape
    factor = rng.uniform(*augment.scale) if augment is not None and augment.scale is not None else 1.0
    want_h, want_w = height * factor, width * factor
    fit = min(1.0, image_h / want_h, image_w / want_w)
    crop_h = int(np.clip(round(want_h * fit), 1, image_h))
    crop_w = int(np.clip(round(want_w * fit), 1, image_w))
    top = int(rng.integers(0, image_h - crop_h + 1))
    left = int(rng.integers(0, image_w - crop_w + 1))
    turns = augment is not None and augment.rot90 and height == width
    flips = augment is not None and augment.flips
    pixels, labels = image[top : top + crop_h, left : left + crop_w], mask[top : top + crop_h, left : left + crop_w]
    if flips or turns:
        bits = rng.integers(0, 2, 3) > 0
        transpose, lr = bool(bits[0]) and turns, bool(bits[1])
        ud = bool(bits[2]) if flips else transpose != lr  # turns only: an even number of reflections
        if transpose:
            pixels, labels = pixels.transpose(1, 0, 2), labels.T
        if lr:
            pixels, labels = pixels[:, ::-1], labels[:, ::-1]
        if ud:
            pixels, labels = pixels[::-1], labels[::-1]
    pixels = resize_bilinear(pixels, size)
    labels = resize_nearest(labels, size).astype(np.int32)
    if augment is not None and (augment.brightness > 0 or augment.contrast > 0):
        change, shift = 1.0 + augment.contrast * rng.uniform(-1, 1), augment.brightness * rng.uniform(-1, 1)
        normalised = normalise(pixels, normalization)
        mean = normalised.mean(axis=(0, 1), dtype=np.float32)
        return ((normalised - mean) * np.float32(change) + mean + np.float32(shift)).astype(np.float32), labels
    return normalise(pixels, normalization), labels


def window_starts(shape: tuple[int, int], size: tuple[int, int], mode: str) -> list[tuple[int, int] | None]:
    """The evaluation windows of an image of ``shape`` (H, W): their (top, left) in the image resized up to cover
    ``size`` (:func:`cover_shape`), or one None for ``resize`` (the whole image resized)."""
    if mode == "resize":
        return [None]
    cover_h, cover_w = cover_shape(shape, size)
    if mode == "center":
        return [((cover_h - size[0]) // 2, (cover_w - size[1]) // 2)]
    return [(int(top), int(left)) for top in _starts(cover_h, size[0]) for left in _starts(cover_w, size[1])]


def cover_shape(shape: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of an image of ``shape`` resized up, keeping its aspect ratio, until it covers ``size`` (unchanged when
    it already does)."""
    height, width = np.float32(shape[0]), np.float32(shape[1])
    factor = max(np.float32(1.0), np.float32(size[0]) / height, np.float32(size[1]) / width)
    if factor <= 1.0:
        return int(shape[0]), int(shape[1])
    return int(np.ceil(height * factor)), int(np.ceil(width * factor))


def _starts(length: int, window: int) -> npt.NDArray[np.int64]:
    """Window starts covering ``length``: as few windows as possible, spread evenly, the last one ending at the edge."""
    count = (length + window - 1) // window
    return np.round(np.linspace(0.0, length - window, count)).astype(np.int64)


def eval_windows(
    image: npt.NDArray, mask: npt.NDArray, which: Sequence[int], *, size: tuple[int, int], mode: str
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Windows ``which`` (indices into :func:`window_starts`) of an image and its mask: float32 (N, H, W, bands) raw
    values and int32 (N, H, W) class indices."""
    starts = window_starts(mask.shape, size, mode)
    if mode == "resize":
        return resize_bilinear(image, size)[None], resize_nearest(mask, size).astype(np.int32)[None]
    cover = cover_shape(mask.shape, size)
    if cover != mask.shape:
        image, mask = resize_bilinear(image, cover), resize_nearest(mask, cover)
    height, width = size
    picked = [starts[w] for w in which]
    windows = np.stack([image[top : top + height, left : left + width] for top, left in picked])
    labels = np.stack([mask[top : top + height, left : left + width] for top, left in picked])
    return windows.astype(np.float32, copy=False), labels.astype(np.int32)


def resize_bilinear(pixels: npt.NDArray, size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """(H, W, bands) pixels of any dtype resized to ``size`` by bilinear interpolation with half-pixel centres and no
    antialiasing (as ``tf.image.resize(..., "bilinear")``), in float32."""
    if pixels.shape[:2] == tuple(size):
        return pixels.astype(np.float32)
    rows_low, rows_high, rows_t = _linear(pixels.shape[0], size[0])
    cols_low, cols_high, cols_t = _linear(pixels.shape[1], size[1])
    top, bottom = pixels[rows_low].astype(np.float32), pixels[rows_high].astype(np.float32)
    rows = top + (bottom - top) * rows_t[:, None, None]
    left, right = rows[:, cols_low], rows[:, cols_high]
    return left + (right - left) * cols_t[None, :, None]


def resize_nearest(labels: npt.NDArray, size: tuple[int, int]) -> npt.NDArray:
    """(H, W) labels resized to ``size`` by nearest neighbour with half-pixel centres (as ``tf.image.resize(...,
    "nearest")``), in their dtype."""
    return labels[_nearest(labels.shape[0], size[0])][:, _nearest(labels.shape[1], size[1])]


def _nearest(length: int, target: int) -> npt.NDArray[np.intp]:
    scale = np.float32(length) / np.float32(target)
    index = np.floor((np.arange(target, dtype=np.float32) + np.float32(0.5)) * scale).astype(np.intp)
    return np.minimum(index, length - 1)


def _linear(length: int, target: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """Lower and upper source indices and interpolation weights of ``target`` positions resampled from ``length``."""
    scale = np.float32(length) / np.float32(target)
    source = (np.arange(target, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(source)
    low = np.maximum(floor, 0).astype(np.intp)
    high = np.minimum(np.ceil(source), length - 1).astype(np.intp)
    return low, high, (source - floor).astype(np.float32)


def _affine(normalization: Normalization) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Per-band ``factor`` and ``offset`` with ``raw * factor + offset == (raw / scale - mean) / std``."""
    std = np.asarray(normalization.std, np.float32)
    mean = np.asarray(normalization.mean, np.float32)
    return (1.0 / (np.float32(normalization.scale) * std)).astype(np.float32), (-mean / std).astype(np.float32)
