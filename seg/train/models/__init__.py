"""The model zoo: U-Net, FCN-8s/32s, SegNet, PSPNet and DeepLabv3+ decoders on VGG16, ResNet50 or MobileNetV2
encoders from ``keras.applications`` (or, for U-Net and SegNet, their own plain encoder), in Keras 3 layers only.

The names below import no Keras; :func:`build_model` and :func:`build_model_with_note` import it when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seg.train.models.names import (
    ARCHITECTURES,
    DEFAULT_ENCODER,
    ENCODERS,
    OWN_ENCODER,
    SIZE_MULTIPLE,
    check_spec,
    model_name,
    valid_pairs,
)

if TYPE_CHECKING:
    import keras

    from seg.train.models.encoder_weights import ImagenetFetcher
    from seg.train.spec import ModelSpec

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ENCODER",
    "ENCODERS",
    "OWN_ENCODER",
    "SIZE_MULTIPLE",
    "build_model",
    "build_model_with_note",
    "check_spec",
    "model_name",
    "valid_pairs",
]


def build_model(
    spec: ModelSpec, *, load_encoder_weights: bool = True, fetch_imagenet: ImagenetFetcher | None = None
) -> keras.Model:
    """Build the model ``spec`` describes; see :func:`seg.train.models.build.build_model`.

    ``fetch_imagenet`` None means the default: download ImageNet weights into ``KERAS_HOME/models`` (or use the file
    already there).
    """
    return build_model_with_note(spec, load_encoder_weights=load_encoder_weights, fetch_imagenet=fetch_imagenet)[0]


def build_model_with_note(
    spec: ModelSpec, *, load_encoder_weights: bool = True, fetch_imagenet: ImagenetFetcher | None = None
) -> tuple[keras.Model, str]:
    """Build the model ``spec`` describes and say where its encoder weights came from; see
    :func:`seg.train.models.build.build_model_with_note`."""
    from seg.train.models import build

    if fetch_imagenet is None:
        return build.build_model_with_note(spec, load_encoder_weights=load_encoder_weights)
    return build.build_model_with_note(spec, load_encoder_weights=load_encoder_weights, fetch_imagenet=fetch_imagenet)
