"""DeepLabv3+ (Chen et al.): ASPP on the stride-16 map (1x1 conv, 3x3 convs dilated 6, 12 and 18, image pooling),
upsampled x4 and fused with the stride-4 map reduced to 48 channels, two 3x3 convs, classifier, bilinear x4.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seg.train.keras_env import import_keras
from seg.train.models.blocks import classifier, conv_bn_relu, resize, spatial_size

if TYPE_CHECKING:
    from keras import KerasTensor

keras = import_keras()
layers = keras.layers

STRIDES = (4, 16)
RATES = (6, 12, 18)
FILTERS = 256
LOW_LEVEL_FILTERS = 48


def head(inputs: KerasTensor, features: dict[int, KerasTensor] | None, classes: int) -> KerasTensor:
    """DeepLabv3+ logits on a backbone's stride-4 and stride-16 maps."""
    x = _aspp(features[16])
    low = conv_bn_relu(features[4], LOW_LEVEL_FILTERS, kernel_size=1, name="low_level")
    x = resize(x, *spatial_size(low), name="aspp_up")
    x = layers.Concatenate(name="decoder_concat")([x, low])
    x = conv_bn_relu(x, FILTERS, name="decoder1")
    x = conv_bn_relu(x, FILTERS, name="decoder2")
    x = classifier(x, classes)
    return resize(x, inputs.shape[1], inputs.shape[2], name="logits_up")


def _aspp(x: KerasTensor) -> KerasTensor:
    height, width = spatial_size(x)
    branches = [conv_bn_relu(x, FILTERS, kernel_size=1, name="aspp_1x1")]
    branches += [conv_bn_relu(x, FILTERS, dilation_rate=rate, name=f"aspp_rate{rate}") for rate in RATES]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_image_pool")(x)
    pooled = conv_bn_relu(pooled, FILTERS, kernel_size=1, name="aspp_image")
    branches.append(layers.UpSampling2D((height, width), name="aspp_image_up")(pooled))
    x = layers.Concatenate(name="aspp_concat")(branches)
    x = conv_bn_relu(x, FILTERS, kernel_size=1, name="aspp_project")
    return layers.Dropout(0.1, name="aspp_dropout")(x)
