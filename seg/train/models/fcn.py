"""FCN-32s and FCN-8s (Long et al.): 1x1 score layers on the encoder's feature maps, fused by addition, upsampled by
transposed convolutions initialised to bilinear interpolation.

``conv6``/``conv7`` (the paper's fully connected layers turned convolutions) sit on the stride-32 map; they are lighter
here (1024 filters, 3x3) than the paper's 4096 7x7, which alone would hold 100M weights on VGG16 and 400M on ResNet50.
FCN-8s adds score layers on the stride-16 and stride-8 maps (VGG16's ``block4_pool`` and ``block3_pool``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from seg.train.keras_env import import_keras

if TYPE_CHECKING:
    from keras import KerasTensor

keras = import_keras()
layers = keras.layers

STRIDES_8 = (8, 16, 32)
STRIDES_32 = (32,)
FC_FILTERS = 1024


def head_8(inputs: KerasTensor, features: dict[int, KerasTensor] | None, classes: int) -> KerasTensor:
    """FCN-8s: score32 x2 + score16, x2 + score8, x8 to full size."""
    x = _score(_fully_convolutional(features[32]), classes, "score32")
    x = _upsample(x, classes, 2, "score32_up")
    x = layers.Add(name="fuse16")([x, _score(features[16], classes, "score16")])
    x = _upsample(x, classes, 2, "fuse16_up")
    x = layers.Add(name="fuse8")([x, _score(features[8], classes, "score8")])
    return _upsample(x, classes, 8, "fuse8_up")


def head_32(inputs: KerasTensor, features: dict[int, KerasTensor] | None, classes: int) -> KerasTensor:
    """FCN-32s: score32 x32 to full size."""
    x = _score(_fully_convolutional(features[32]), classes, "score32")
    return _upsample(x, classes, 32, "score32_up")


def _fully_convolutional(x: KerasTensor) -> KerasTensor:
    x = layers.Conv2D(FC_FILTERS, 3, padding="same", activation="relu", name="conv6")(x)
    x = layers.Dropout(0.5, name="conv6_dropout")(x)
    x = layers.Conv2D(FC_FILTERS, 1, activation="relu", name="conv7")(x)
    return layers.Dropout(0.5, name="conv7_dropout")(x)


def _score(x: KerasTensor, classes: int, name: str) -> KerasTensor:
    return layers.Conv2D(classes, 1, name=name)(x)


def _upsample(x: KerasTensor, classes: int, factor: int, name: str) -> KerasTensor:
    return layers.Conv2DTranspose(
        classes, 2 * factor, strides=factor, padding="same", use_bias=False, name=f"{name}_bilinear"
    )(x)


def init_bilinear(model: keras.Model) -> None:
    """Set every FCN transposed convolution of ``model`` to per-class bilinear interpolation (the paper's start)."""
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose) and layer.name.endswith("_bilinear"):
            (kernel,) = layer.get_weights()
            layer.set_weights([bilinear_kernel(kernel.shape[0], kernel.shape[2]).astype(kernel.dtype)])


def bilinear_kernel(size: int, channels: int) -> np.ndarray:
    """A (size, size, channels, channels) transposed-convolution kernel that upsamples each channel bilinearly."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - np.abs(np.arange(size) - center) / factor
    kernel = np.zeros((size, size, channels, channels), np.float32)
    for c in range(channels):
        kernel[:, :, c, c] = np.outer(ramp, ramp)
    return kernel
