"""Small building blocks shared by the decoders: conv + batch norm + ReLU, resizing to a fixed size, the logits head.

Only ``keras.layers`` are used (no Lambda, no custom layers), so the models run on any Keras backend and a saved
``.keras`` file loads without custom objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seg.train.keras_env import import_keras

if TYPE_CHECKING:
    from keras import KerasTensor

keras = import_keras()
layers = keras.layers


def conv_bn_relu(
    x: KerasTensor, filters: int, *, name: str, kernel_size: int = 3, dilation_rate: int = 1
) -> KerasTensor:
    """``Conv2D`` (same padding, no bias) -> ``BatchNormalization`` -> ReLU."""
    x = layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        dilation_rate=dilation_rate,
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def spatial_size(x: KerasTensor) -> tuple[int, int]:
    """The static (height, width) of a feature map (the model input size is fixed, so it is always known)."""
    return int(x.shape[1]), int(x.shape[2])


def resize(x: KerasTensor, height: int, width: int, *, name: str, interpolation: str = "bilinear") -> KerasTensor:
    """Resize a feature map to ``(height, width)``: ``UpSampling2D`` for integer factors, ``Resizing`` otherwise."""
    h, w = spatial_size(x)
    if (h, w) == (height, width):
        return x
    if height % h == 0 and width % w == 0 and height >= h and width >= w:
        return layers.UpSampling2D((height // h, width // w), interpolation=interpolation, name=name)(x)
    return layers.Resizing(height, width, interpolation=interpolation, name=name)(x)


def classifier(x: KerasTensor, classes: int, *, kernel_size: int = 1, name: str = "classifier") -> KerasTensor:
    """The last convolution: one output channel per class (logits, with bias)."""
    return layers.Conv2D(classes, kernel_size, padding="same", name=name)(x)
