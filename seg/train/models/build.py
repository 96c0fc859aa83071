"""Build a Keras segmentation model from a :class:`ModelSpec`: input -> encoder feature maps -> decoder -> logits.

Every model takes normalised float32 ``(B, H, W, bands)`` images and returns logits ``(B, H, W, classes)`` in float32
(the last layer is ``Activation("linear", dtype="float32")``, so mixed precision still gives float32 logits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from seg.errors import OptionError
from seg.train.keras_env import import_keras
from seg.train.models import deeplab, fcn, pspnet, segnet, unet
from seg.train.models.encoder_weights import ImagenetFetcher, download_imagenet_weights, load_backbone
from seg.train.models.encoders import application, feature_extractor
from seg.train.models.names import ARCHITECTURES, check_spec, model_name
from seg.train.spec import ModelSpec

if TYPE_CHECKING:
    from keras import KerasTensor

keras = import_keras()
layers = keras.layers

#: ``(input, features by stride or None for the own encoder, classes) -> full-size logits``.
Head = Callable[["KerasTensor", "dict[int, KerasTensor] | None", int], "KerasTensor"]


@dataclass(frozen=True)
class Architecture:
    """A decoder: the encoder strides it uses, and the function that builds it."""

    strides: tuple[int, ...]
    head: Head


#: The registry behind :data:`seg.train.models.ARCHITECTURES` (same names, same order).
REGISTRY: dict[str, Architecture] = {
    "unet": Architecture(unet.STRIDES, unet.head),
    "unet_small": Architecture(unet.STRIDES, unet.head_small),
    "fcn8": Architecture(fcn.STRIDES_8, fcn.head_8),
    "fcn32": Architecture(fcn.STRIDES_32, fcn.head_32),
    "segnet": Architecture(segnet.STRIDES, segnet.head),
    "pspnet": Architecture(pspnet.STRIDES, pspnet.head),
    "deeplabv3plus": Architecture(deeplab.STRIDES, deeplab.head),
}
if tuple(REGISTRY) != ARCHITECTURES:  # pragma: no cover - a programming error caught by any test run
    raise RuntimeError("seg.train.models.build.REGISTRY and names.ARCHITECTURES disagree")


def build_model(
    spec: ModelSpec,
    *,
    load_encoder_weights: bool = True,
    fetch_imagenet: ImagenetFetcher = download_imagenet_weights,
) -> keras.Model:
    """Build the model ``spec`` describes (see :func:`build_model_with_note`).

    Args:
        spec: architecture, encoder, input size and bands, classes, encoder weights.
        load_encoder_weights: False builds the same model with random weights and never reads, downloads or checks
            ``spec.encoder_weights`` (for loading trained weights next).
        fetch_imagenet: where ImageNet weights come from (the default downloads them into ``KERAS_HOME/models``).
    """
    return build_model_with_note(spec, load_encoder_weights=load_encoder_weights, fetch_imagenet=fetch_imagenet)[0]


def build_model_with_note(
    spec: ModelSpec,
    *,
    load_encoder_weights: bool = True,
    fetch_imagenet: ImagenetFetcher = download_imagenet_weights,
) -> tuple[keras.Model, str]:
    """Build the model ``spec`` describes, and say which encoder weights it starts from.

    Args:
        spec: architecture, encoder, input size and bands, classes, encoder weights (None, ``"imagenet"`` or a path).
        load_encoder_weights: False builds the same model with random weights and never touches
            ``spec.encoder_weights``.
        fetch_imagenet: where ImageNet weights come from; when it fails the encoder starts from random weights.

    Returns:
        the model, named like ``unet_vgg16`` (or ``unet`` with its own encoder), and a note such as ``"encoder vgg16:
        ImageNet weights"`` or ``"encoder resnet50: ImageNet weights could not be downloaded (...); random
        initialisation"``.

    Raises:
        OptionError: unknown or unsupported architecture/encoder, size not a multiple of 32, a weights file given to
            an own-encoder model.
        ValidationError: the encoder weights file is missing or does not fit the encoder.
    """
    check_spec(spec)
    architecture = REGISTRY[spec.architecture]
    inputs = keras.Input((spec.height, spec.width, spec.bands), name="image")
    backbone, note = _backbone(spec, load_encoder_weights, fetch_imagenet)
    features: dict[int, KerasTensor] | None = None
    if backbone is not None:
        outputs = feature_extractor(spec.encoder, backbone, architecture.strides)(inputs)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        features = dict(zip(architecture.strides, outputs, strict=True))
    logits = architecture.head(inputs, features, spec.classes)
    outputs = layers.Activation("linear", dtype="float32", name="logits")(logits)
    model = keras.Model(inputs, outputs, name=model_name(spec.architecture, spec.encoder))
    fcn.init_bilinear(model)
    return model, note


def _backbone(
    spec: ModelSpec, load_encoder_weights: bool, fetch_imagenet: ImagenetFetcher
) -> tuple[keras.Model | None, str]:
    """The whole encoder backbone (None for the own encoder) and the note on its weights."""
    input_shape = (spec.height, spec.width, spec.bands)
    if not load_encoder_weights:
        backbone = None if spec.encoder is None else application(spec.encoder, input_shape, None)
        return backbone, "encoder weights not loaded"
    if spec.encoder is None:
        return None, _own_encoder_note(spec)
    loaded = load_backbone(spec.encoder, input_shape, spec.encoder_weights, fetch_imagenet=fetch_imagenet)
    return loaded.model, loaded.note


def _own_encoder_note(spec: ModelSpec) -> str:
    if spec.encoder_weights is None:
        return "own encoder: random initialisation"
    if spec.encoder_weights == "imagenet":
        return "own encoder: random initialisation (it has no ImageNet weights; choose an encoder for them)"
    raise OptionError(
        f"architecture {spec.architecture} with its own encoder takes no encoder weights file",
        path=spec.encoder_weights,
        expected="an encoder (--encoder) for pretrained weights",
    )
