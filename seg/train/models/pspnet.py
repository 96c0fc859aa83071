"""PSPNet (Zhao et al.): pyramid pooling of the stride-16 feature map into 1x1, 2x2, 3x3 and 6x6 bins, each reduced
by a 1x1 conv, upsampled back and concatenated with the map; a 3x3 conv and the classifier; bilinear x16 to full size.

The encoder is cut at stride 16 (``keras.applications`` backbones have no dilated variant that keeps stride 8 deep).
Pooling into b x b bins works for any map size: the map is first resized (bilinear) to the nearest multiple of b
above it when b does not divide it, then average-pooled, so 64x64 inputs (4x4 maps) work too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from seg.train.keras_env import import_keras
from seg.train.models.blocks import classifier, conv_bn_relu, resize, spatial_size

if TYPE_CHECKING:
    from keras import KerasTensor

keras = import_keras()
layers = keras.layers

STRIDES = (16,)
BINS = (1, 2, 3, 6)
BRANCH_FILTERS = 256
FILTERS = 512


def head(inputs: KerasTensor, features: dict[int, KerasTensor] | None, classes: int) -> KerasTensor:
    """PSPNet logits on a backbone's stride-16 map."""
    x = features[16]
    height, width = spatial_size(x)
    branches = [x]
    for bins in BINS:
        pooled = _pool(x, bins, name=f"psp{bins}")
        pooled = conv_bn_relu(pooled, BRANCH_FILTERS, kernel_size=1, name=f"psp{bins}")
        branches.append(resize(pooled, height, width, name=f"psp{bins}_up"))
    x = layers.Concatenate(name="psp_concat")(branches)
    x = conv_bn_relu(x, FILTERS, name="psp_fuse")
    x = layers.Dropout(0.1, name="psp_dropout")(x)
    x = classifier(x, classes)
    return resize(x, inputs.shape[1], inputs.shape[2], name="logits_up")


def _pool(x: KerasTensor, bins: int, *, name: str) -> KerasTensor:
    """Average-pool ``x`` into ``bins`` x ``bins`` cells."""
    height, width = spatial_size(x)
    cell_h, cell_w = math.ceil(height / bins), math.ceil(width / bins)
    x = resize(x, cell_h * bins, cell_w * bins, name=f"{name}_fit")
    return layers.AveragePooling2D((cell_h, cell_w), name=f"{name}_pool")(x)
