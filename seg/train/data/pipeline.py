"""The training and evaluation input pipelines: ``tf.data`` datasets of (images, labels) batches.

Training data is one stream of ``(epochs - start_epoch) * steps_per_epoch`` batches. Epoch ``e`` visits the images in
the order of ``numpy.random.default_rng([seed, e]).permutation(n)`` (the last incomplete batch left out, so every epoch
has the same number of steps), and each element's augmentation is drawn by stateless random ops from a seed pair drawn
by the same generator for its position. The batches of epoch ``e`` are therefore a pure function of ``(seed, e)``: a
run resumed at epoch ``k`` sees exactly the batches the uninterrupted run would have seen.

Give Keras the stream with ``steps_per_epoch=steps_per_epoch(len(samples), batch_size)`` (it then keeps one iterator
across epochs), and ``initial_epoch=start_epoch``.

Each image and mask is decoded once and held in memory when the decoded set fits (``cache``, see
:mod:`seg.train.data.memory`); otherwise each is decoded from its file every time it is used. Both give the same
batches, bit for bit: the in-memory pixels come from the same decoders, and each step's work (crop, flips and turns on
the stored pixels, resize to float32, normalisation) is the same graph.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from seg.errors import OptionError, SegError, ValidationError
from seg.train.data.augment import Augment
from seg.train.data.memory import (
    StoredImage,
    check_cache,
    decoded_bytes,
    hold_in_memory,
    mask_dtype,
    stored_images,
)
from seg.train.data.probe import image_header, mask_reader
from seg.train.data.scan import Sample
from seg.train.keras_env import has_tensorflow
from seg.train.spec import Normalization

if TYPE_CHECKING:
    import tensorflow as tf
    from keras.utils import PyDataset

#: The input pipelines: ``tf`` (``tf.data``, this module) and ``numpy`` (a Keras ``PyDataset`` built with numpy,
#: :mod:`seg.train.data.numpy_stream`, for Keras backends without TensorFlow installed).
INPUT_PIPELINES = ("tf", "numpy")
#: The environment variable that picks the input pipeline (default: ``tf`` with TensorFlow installed, else ``numpy``).
INPUT_VARIABLE = "SEG_INPUT"


def input_pipeline(choice: str | None = None) -> str:
    """The input pipeline :func:`make_dataset` uses: ``choice``, else the ``SEG_INPUT`` environment variable, else
    ``tf`` when TensorFlow is installed and ``numpy`` when it is not.

    Raises:
        OptionError: not one of :data:`INPUT_PIPELINES`.
    """
    choice = choice or os.environ.get(INPUT_VARIABLE) or ("tf" if has_tensorflow() else "numpy")
    if choice not in INPUT_PIPELINES:
        raise OptionError(
            f"unknown input pipeline (option or {INPUT_VARIABLE})", expected=" or ".join(INPUT_PIPELINES), actual=choice
        )
    return choice


def steps_per_epoch(n_samples: int, batch_size: int) -> int:
    """Full batches in one training epoch (the remainder is left out; a new permutation each epoch).

    Raises:
        OptionError: the batch is larger than the training set.
    """
    if batch_size < 1:
        raise OptionError("batch size must be positive", expected=">= 1", actual=batch_size)
    if n_samples < batch_size:
        raise OptionError("batch size larger than the training set", expected=f"at most {n_samples}", actual=batch_size)
    return n_samples // batch_size


def epoch_order(
    n_samples: int, batch_size: int, seed: int, epoch: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Epoch ``epoch``'s sample indices (``steps * batch_size`` of them) and one augmentation seed pair per position.

    Both come from ``numpy.random.default_rng([seed, epoch])``: the permutation first, then the seeds.
    """
    rng = np.random.default_rng([seed, epoch])
    count = steps_per_epoch(n_samples, batch_size) * batch_size
    order = rng.permutation(n_samples)[:count].astype(np.int64)
    seeds = rng.integers(0, 2**31 - 1, size=(count, 2), dtype=np.int64)
    return order, seeds


def make_dataset(
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
    pipeline: str | None = None,
) -> tf.data.Dataset | PyDataset:
    """A ``tf.data.Dataset`` of ``(images, labels)``: float32 (B, H, W, bands) normalised images and int32 (B, H, W)
    class indices; a Keras ``PyDataset`` of the same batches when TensorFlow is not installed (``pipeline``).

    Args:
        samples: the images and masks (:attr:`FolderScan.train` / :attr:`FolderScan.test`).
        size: (H, W) of the model input.
        normalization: ``(x / scale - mean) / std`` per band (:func:`normalization_for`).
        batch_size: images per batch.
        training: True: the shuffled, augmented stream of epochs ``[start_epoch, epochs)``, full batches only (see the
            module docstring). False: every image once, in order, cut into windows by ``eval_mode``; the last batch
            may be smaller.
        seed: the run's seed (training order and augmentation).
        augment: augmentation settings for training (None: random crops only).
        epochs, start_epoch: the epochs the training stream covers.
        mask_scale: the scan's ``mask_scale`` (255 for 0/255 masks).
        bands: image bands (the scan's ``bands``).
        eval_mode: one of :data:`~seg.train.data.transforms.EVAL_MODES` (``tiles``: every pixel once at its own
            scale, ``center``, ``resize``).
        classes: the class count or names: when given, a label at or above the count is an error (the scan already
            checks every mask; this guards hand-made sample lists): raised here when the masks are decoded into
            memory, else when the iteration reaches it.
        cache: ``"auto"``: decode every image and mask once, here, and hold them in memory when they take less than
            :func:`~seg.train.data.memory.memory_budget` (the smaller of 2 GiB and a quarter of the memory), else
            decode each from its file every time it is used; ``True``: in memory whatever the size; ``False``: from
            the files. The batches are the same either way.
        pipeline: ``tf`` or ``numpy`` (:func:`input_pipeline`; default: the ``SEG_INPUT`` environment variable, else
            ``tf`` when TensorFlow is installed). ``numpy``: :func:`seg.train.data.numpy_stream.make_numpy_dataset`,
            the same epochs, order and windows, augmented and resized by numpy (close to, not bit-identical with,
            the ``tf.data`` batches).

    Raises:
        OptionError: a bad size, batch size, epoch range, eval mode or cache choice.
        ValidationError: an image with another band count than ``bands``; with the samples in memory, a mask value
            that is not a class.
        ImageError: a file that is not an image.
        SegError: ``pipeline`` is ``tf`` and TensorFlow is not installed.
    """
    if input_pipeline(pipeline) == "numpy":
        from seg.train.data.numpy_stream import make_numpy_dataset

        return make_numpy_dataset(
            samples, size=size, normalization=normalization, batch_size=batch_size, training=training, seed=seed,
            augment=augment, epochs=epochs, start_epoch=start_epoch, mask_scale=mask_scale, bands=bands,
            eval_mode=eval_mode, classes=classes, cache=cache,
        )  # fmt: skip
    if not has_tensorflow():
        raise SegError(
            "the input pipeline needs TensorFlow", expected="tensorflow installed (pip install tensorflow-cpu)"
        )
    import tensorflow as tf

    from seg.train.data import transforms

    _check_options(samples, size, batch_size, epochs, start_epoch, eval_mode, training)
    check_cache(cache)
    size = (int(size[0]), int(size[1]))
    count = classes if isinstance(classes, int) or classes is None else len(classes)
    load = _loader(samples, bands=bands, mask_scale=mask_scale, classes=count, cache=cache)

    autotune = tf.data.AUTOTUNE
    if training:

        def train_element(index: tf.Tensor, element_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            image, mask = load(index)
            image, mask = transforms.train_transform(
                image, mask, element_seed, size=size, augment=augment, normalization=normalization
            )
            return image, mask[..., 0]

        dataset = _training_order(len(samples), batch_size, seed, start_epoch, epochs)
        dataset = dataset.map(train_element, num_parallel_calls=autotune, deterministic=True)
        dataset = dataset.batch(batch_size, drop_remainder=True, num_parallel_calls=autotune, deterministic=True)
    else:

        def eval_element(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            image, mask = load(index)
            images, masks = transforms.eval_transform(
                image, mask, size=size, mode=eval_mode, normalization=normalization
            )
            return images, masks[..., 0]

        dataset = tf.data.Dataset.range(len(samples))
        dataset = dataset.map(eval_element, num_parallel_calls=autotune, deterministic=True).unbatch()
        dataset = dataset.batch(batch_size, num_parallel_calls=autotune, deterministic=True)
    return dataset.prefetch(autotune)


def _loader(
    samples: Sequence[Sample], *, bands: int, mask_scale: int, classes: int | None, cache: bool | str
) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """``load(index) -> (image, mask)``, graph code: the sample's image in its stored dtype (the samples' common one)
    and its mask (H, W, 1), read from memory when the decoded samples are held there, else decoded from the files."""
    import tensorflow as tf

    from seg.train.data.decode import decode_image, decode_mask, image_dtype
    from seg.train.data.memory import DecodedSamples

    images = stored_images(samples)
    _check_bands(samples, images, bands)
    dtype = image_dtype(i.dtype for i in images)
    image_readers, image_codes = _readers([_image_reader(s) for s in samples])
    mask_readers, mask_codes = _readers([_mask_reader(s) for s in samples])
    table = (
        tf.constant([str(s.image) for s in samples]),
        tf.constant(image_codes, tf.int32),
        tf.constant([str(s.mask) for s in samples]),
        tf.constant(mask_codes, tf.int32),
    )

    def decode(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image_path, image_code, mask_path, mask_code = (tf.gather(column, index) for column in table)
        image = decode_image(image_path, image_code, image_readers, bands, dtype)
        return image, decode_mask(mask_path, mask_code, mask_readers, mask_scale)

    masks = mask_dtype(classes, mask_readers)
    if hold_in_memory(cache, decoded_bytes(images, dtype, masks)):
        memory = DecodedSamples(samples, images, dtype, masks)
        memory.fill(decode, classes=classes)
        return memory.read

    def decode_checked(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, mask = decode(index)
        if classes is not None:
            check = tf.debugging.assert_less(mask, classes, message=f"mask value is not a class (expected < {classes})")
            with tf.control_dependencies([check]):
                mask = tf.identity(mask)
        return image, mask

    return decode_checked


def _training_order(n_samples: int, batch_size: int, seed: int, start_epoch: int, epochs: int) -> tf.data.Dataset:
    """(sample index, seed pair) elements of epochs ``[start_epoch, epochs)``, one epoch's arrays made at a time."""
    import tensorflow as tf

    count = steps_per_epoch(n_samples, batch_size) * batch_size

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        order, seeds = tf.numpy_function(
            lambda e: epoch_order(n_samples, batch_size, seed, int(e)), [epoch], [tf.int64, tf.int64], stateful=False
        )
        order.set_shape([count])
        seeds.set_shape([count, 2])
        return tf.data.Dataset.from_tensor_slices((order, seeds))

    return tf.data.Dataset.range(start_epoch, epochs).flat_map(one_epoch)


def _check_options(
    samples: Sequence[Sample],
    size: tuple[int, int],
    batch_size: int,
    epochs: int,
    start_epoch: int,
    eval_mode: str,
    training: bool,
) -> None:
    from seg.train.data.transforms import EVAL_MODES

    if not samples:
        raise OptionError("no samples to make a dataset of", expected="at least one image")
    if len(size) != 2 or min(size) < 1:
        raise OptionError("size must be (height, width) in pixels", expected="two positive integers", actual=size)
    if eval_mode not in EVAL_MODES:
        raise OptionError("unknown evaluation mode", expected=f"one of {', '.join(EVAL_MODES)}", actual=eval_mode)
    if training:
        steps_per_epoch(len(samples), batch_size)
        if not 0 <= start_epoch < epochs:
            raise OptionError(
                "no epochs to train", expected="0 <= start_epoch < epochs", actual=f"{start_epoch}, {epochs}"
            )
    elif batch_size < 1:
        raise OptionError("batch size must be positive", expected=">= 1", actual=batch_size)


def _check_bands(samples: Sequence[Sample], images: list[StoredImage], bands: int) -> None:
    for sample, image in zip(samples, images, strict=True):
        if image.bands != bands:
            raise ValidationError(
                "image has another band count", path=sample.image, expected=f"{bands} bands", actual=image.bands
            )


def _image_reader(sample: Sample) -> str:
    return sample.image_reader if sample.image_reader != "auto" else image_header(sample.image).reader


def _mask_reader(sample: Sample) -> str:
    return sample.mask_reader if sample.mask_reader != "auto" else mask_reader(sample.mask)


def _readers(names: list[str]) -> tuple[list[str], list[int]]:
    """The distinct readers (sorted) and each file's index among them."""
    used = sorted(set(names))
    position = {name: i for i, name in enumerate(used)}
    return used, [position[name] for name in names]
