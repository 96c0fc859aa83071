"""Encoders: ``keras.applications`` backbones cut into feature extractors, and the plain encoder of the own-encoder
architectures.

Feature maps are keyed by their stride (2, 4, 8, 16, 32: the map is the input size divided by the stride). The layers
picked for each backbone are the last ones at each resolution, listed in :data:`FEATURE_LAYERS` (VGG16's pooling
outputs; ResNet50's stage outputs after ``conv1``; MobileNetV2's expansion activations, as in Keras' U-Net example).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from seg.train.keras_env import import_keras
from seg.train.models.blocks import conv_bn_relu

if TYPE_CHECKING:
    from keras import KerasTensor

keras = import_keras()
layers = keras.layers

#: The ``keras.applications`` constructor of each encoder.
APPLICATIONS: dict[str, str] = {"vgg16": "VGG16", "resnet50": "ResNet50", "mobilenetv2": "MobileNetV2"}

#: The layer whose output is the feature map at each stride.
FEATURE_LAYERS: dict[str, dict[int, str]] = {
    "vgg16": {2: "block1_pool", 4: "block2_pool", 8: "block3_pool", 16: "block4_pool", 32: "block5_pool"},
    "resnet50": {
        2: "conv1_relu",
        4: "conv2_block3_out",
        8: "conv3_block4_out",
        16: "conv4_block6_out",
        32: "conv5_block3_out",
    },
    "mobilenetv2": {
        2: "block_1_expand_relu",
        4: "block_3_expand_relu",
        8: "block_6_expand_relu",
        16: "block_13_expand_relu",
        32: "out_relu",
    },
}


def application(encoder: str, input_shape: tuple[int, int, int], weights: str | None) -> keras.Model:
    """The whole ``keras.applications`` backbone without its classifier; ``weights`` is None or a weights file."""
    constructor = getattr(keras.applications, APPLICATIONS[encoder])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This model usually expects 1 or 3 input channels")
        return constructor(include_top=False, weights=weights, input_shape=input_shape)


def feature_extractor(encoder: str, backbone: keras.Model, strides: Sequence[int]) -> keras.Model:
    """A model from the backbone's input to its feature maps at ``strides`` (in that order).

    Only the layers up to the deepest stride asked for are part of it, so no weight goes without a gradient.
    """
    outputs = [backbone.get_layer(FEATURE_LAYERS[encoder][stride]).output for stride in strides]
    return keras.Model(backbone.inputs, outputs, name=f"{encoder}_encoder")


def plain_encoder(x: KerasTensor, filters: Sequence[int], *, name: str) -> dict[int, KerasTensor]:
    """The own encoder: a block of two conv + BN + ReLU per entry of ``filters``, max-pooling between blocks.

    Returns:
        the output of each block keyed by its stride: 1, 2, 4... (the last block is not pooled).
    """
    features: dict[int, KerasTensor] = {}
    for level, width in enumerate(filters):
        if level:
            x = layers.MaxPooling2D(2, name=f"{name}{level}_pool")(x)
        x = conv_bn_relu(x, width, name=f"{name}{level}a")
        x = conv_bn_relu(x, width, name=f"{name}{level}b")
        features[2**level] = x
    return features
