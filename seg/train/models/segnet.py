"""SegNet, as keras-segmentation builds it: an encoder down to stride 32, then a mirror decoder of upsampling x2 +
conv + BN + ReLU stages back to full size (plain upsampling stands in for the paper's max-unpooling indices).

The own encoder is five blocks of two conv + BN + ReLU, each followed by max-pooling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from seg.train.keras_env import import_keras
from seg.train.models.blocks import classifier, conv_bn_relu
from seg.train.models.encoders import plain_encoder

if TYPE_CHECKING:
    from keras import KerasTensor

keras = import_keras()
layers = keras.layers

STRIDES = (32,)
#: Decoder widths at strides 16, 8, 4, 2 and 1, after a first conv at stride 32 as wide as the first entry.
DECODER_FILTERS = (512, 256, 128, 64, 32)
#: Own encoder widths at strides 1, 2, 4, 8, 16 (each block pooled: its output has twice the stride).
OWN_FILTERS = (32, 64, 128, 256, 256)
OWN_DECODER_FILTERS = (256, 256, 128, 64, 32)


def head(inputs: KerasTensor, features: dict[int, KerasTensor] | None, classes: int) -> KerasTensor:
    """SegNet logits on a backbone's stride-32 map, or on its own encoder when ``features`` is None."""
    if features is None:
        own = plain_encoder(inputs, OWN_FILTERS, name="encoder")
        x = layers.MaxPooling2D(2, name=f"encoder{len(OWN_FILTERS)}_pool")(own[max(own)])
        return classifier(_decoder(x, OWN_DECODER_FILTERS), classes)
    return classifier(_decoder(features[32], DECODER_FILTERS), classes)


def _decoder(x: KerasTensor, filters: Sequence[int]) -> KerasTensor:
    x = conv_bn_relu(x, filters[0], name="decoder0")
    for stage, width in enumerate(filters, start=1):
        x = layers.UpSampling2D(2, name=f"decoder{stage}_up")(x)
        x = conv_bn_relu(x, width, name=f"decoder{stage}")
    return x
