"""Encoder weights: random, from a weights file, or ImageNet's (downloaded once into ``KERAS_HOME/models``).

ImageNet weights come through a fetcher, ``(encoder) -> path of the no-top weights file``; the default one is
:func:`download_imagenet_weights`, which uses the file already in Keras' cache when it is there and downloads it
otherwise. When fetching fails (no network), the encoder starts from random weights and the note says why: training
still runs, only slower to converge.

Any band count can use 3-band (RGB) weights: every weight is copied except the first convolution's kernel, which
becomes the mean of its RGB kernels, repeated over the bands and scaled by ``3 / bands`` (so that a pixel with the same
value in every band gives the same response as the grey RGB pixel would).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg.errors import ValidationError
from seg.train.keras_env import import_keras
from seg.train.models.encoders import application

keras = import_keras()
logger = logging.getLogger(__name__)

#: ``(encoder name) -> path of its ImageNet no-top weights file``; raises when the file cannot be had.
ImagenetFetcher = Callable[[str], "str | os.PathLike[str]"]

_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"

#: File name, URL and MD5 of the no-top ImageNet weights, as ``keras.applications`` names them (so both share the
#: cache). MobileNetV2's 224-pixel file serves every input size: convolution weights do not depend on it.
IMAGENET_FILES: dict[str, tuple[str, str, str | None]] = {
    "vgg16": (
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _APPLICATIONS_URL + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
    ),
    "resnet50": (
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _APPLICATIONS_URL + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626",
    ),
    "mobilenetv2": (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        _APPLICATIONS_URL + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        None,
    ),
}


def download_imagenet_weights(encoder: str, *, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """The path of ``encoder``'s ImageNet weights in ``KERAS_HOME/models``, downloading the file when it is not there.

    Args:
        encoder: one of :data:`seg.train.models.ENCODERS`.
        cache_dir: the folder holding ``models/`` (default: ``KERAS_HOME``, ``~/.keras``).

    Raises:
        Exception: whatever ``keras.utils.get_file`` raises when the download fails (it raises a bare ``Exception``).
    """
    file_name, url, md5 = IMAGENET_FILES[encoder]
    return keras.utils.get_file(
        file_name, url, cache_subdir="models", file_hash=md5, cache_dir=None if cache_dir is None else str(cache_dir)
    )


@dataclass(frozen=True)
class EncoderBackbone:
    """A backbone with its weights in place, and the sentence that says where they came from."""

    model: keras.Model
    note: str


def load_backbone(
    encoder: str,
    input_shape: tuple[int, int, int],
    weights: str | None,
    *,
    fetch_imagenet: ImagenetFetcher = download_imagenet_weights,
) -> EncoderBackbone:
    """Build ``encoder`` for ``input_shape`` (H, W, bands) with the weights asked for.

    Args:
        encoder: one of :data:`seg.train.models.ENCODERS`.
        input_shape: (height, width, bands).
        weights: None (random), ``"imagenet"``, or the path of a weights file (``.weights.h5`` or legacy ``.h5``) for
            this backbone, with this band count or with 3 bands.
        fetch_imagenet: where ImageNet weights come from; a failure falls back to random weights, with a note.

    Raises:
        ValidationError: the weights file is missing or does not hold weights for this backbone (names the file).
    """
    if weights is None:
        return EncoderBackbone(application(encoder, input_shape, None), f"encoder {encoder}: random initialisation")
    if weights == "imagenet":
        try:
            path = Path(fetch_imagenet(encoder))
        except Exception as e:  # keras.utils.get_file raises a bare Exception when offline
            reason = str(e).strip() or type(e).__name__
            logger.warning("encoder %s: ImageNet weights could not be downloaded (%s)", encoder, reason)
            return EncoderBackbone(
                application(encoder, input_shape, None),
                f"encoder {encoder}: ImageNet weights could not be downloaded ({reason}); random initialisation",
            )
        model, adapted = _from_file(encoder, input_shape, path, three_bands=True)
        return EncoderBackbone(model, f"encoder {encoder}: ImageNet weights{_adapted_note(adapted, input_shape)}")
    path = Path(weights)
    if not path.is_file():
        raise ValidationError("encoder weights file not found", path=path)
    model, adapted = _from_file(encoder, input_shape, path, three_bands=False)
    return EncoderBackbone(model, f"encoder {encoder}: weights from {path}{_adapted_note(adapted, input_shape)}")


def _adapted_note(adapted: bool, input_shape: tuple[int, int, int]) -> str:
    if not adapted:
        return ""
    return f" (first convolution adapted from 3 to {input_shape[2]} bands: mean RGB kernel repeated)"


def _from_file(
    encoder: str, input_shape: tuple[int, int, int], path: Path, *, three_bands: bool
) -> tuple[keras.Model, bool]:
    """The backbone with the file's weights, and whether its first convolution was adapted from 3 bands."""
    bands = input_shape[2]
    if bands == 3 or not three_bands:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a failed load warns once per layer before it raises
                return application(encoder, input_shape, str(path)), False
        except Exception as e:
            if bands == 3:
                raise _wrong_file(encoder, path, e) from e
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rgb = application(encoder, (input_shape[0], input_shape[1], 3), str(path))
    except Exception as e:
        raise _wrong_file(encoder, path, e) from e
    model = application(encoder, input_shape, None)
    copy_adapting_bands(rgb, model)
    return model, True


def _wrong_file(encoder: str, path: Path, cause: Exception) -> ValidationError:
    detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return ValidationError(
        f"cannot load encoder weights: {detail}", path=path, expected=f"a {encoder} weights file (no top)"
    )


def copy_adapting_bands(source: keras.Model, target: keras.Model) -> None:
    """Copy every weight of ``source`` (3 bands) into ``target`` (same backbone, other band count).

    The one kernel whose input channels differ (the first convolution) becomes the mean RGB kernel, repeated over the
    bands and scaled by ``3 / bands``.

    Raises:
        ValueError: the two models are not the same backbone.
    """
    if len(source.layers) != len(target.layers):
        raise ValueError(f"different backbones: {source.name} and {target.name}")
    adapted = 0
    for src, dst in zip(source.layers, target.layers, strict=True):
        values = src.get_weights()
        if not values:
            continue
        shapes = [w.shape for w in dst.get_weights()]
        new_values = []
        for value, shape in zip(values, shapes, strict=True):
            if value.shape != shape:
                if value.ndim != 4 or value.shape[2] != 3 or value.shape[:2] + value.shape[3:] != shape[:2] + shape[3:]:
                    raise ValueError(f"layer {src.name}: weights of shape {value.shape} do not fit {shape}")
                bands = shape[2]
                mean = value.mean(axis=2, keepdims=True) * np.float32(3.0 / bands)
                value = np.repeat(mean, bands, axis=2).astype(value.dtype)
                adapted += 1
            new_values.append(value)
        dst.set_weights(new_values)
    if adapted != 1:
        raise ValueError(f"expected one first convolution to adapt, found {adapted}")
