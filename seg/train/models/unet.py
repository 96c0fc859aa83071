"""U-Net: upsample x2, concatenate the encoder's feature map at that stride, two conv + BN + ReLU; repeat to full size.

With a ``keras.applications`` encoder the skips are its stride-16, 8, 4 and 2 maps, and a last stage (no skip) brings
stride 2 to full size. The own encoder is the classic contracting path (five blocks of two convolutions, four
poolings); ``unet_small`` is the same with few filters and three poolings (about 180k weights: the demo's CPU model).
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

#: Encoder feature maps used (by stride).
STRIDES = (2, 4, 8, 16, 32)
#: Decoder widths after the stride-32 map: at strides 16, 8, 4, 2 and 1.
DECODER_FILTERS = (256, 128, 64, 32, 16)
#: Own encoder widths at strides 1, 2, 4, 8, 16.
OWN_FILTERS = (32, 64, 128, 256, 512)
#: unet_small's widths at strides 1, 2, 4, 8.
SMALL_FILTERS = (16, 32, 40, 56)


def decoder(x: KerasTensor, skips: Sequence[KerasTensor | None], filters: Sequence[int]) -> KerasTensor:
    """One stage per skip (None: no skip at that stage): upsample x2, concatenate, two conv + BN + ReLU."""
    for stage, (skip, width) in enumerate(zip(skips, filters, strict=True), start=1):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"decoder{stage}_up")(x)
        if skip is not None:
            x = layers.Concatenate(name=f"decoder{stage}_concat")([x, skip])
        x = conv_bn_relu(x, width, name=f"decoder{stage}a")
        x = conv_bn_relu(x, width, name=f"decoder{stage}b")
    return x


def head(inputs: KerasTensor, features: dict[int, KerasTensor] | None, classes: int) -> KerasTensor:
    """U-Net logits on a backbone's features, or on its own encoder when ``features`` is None."""
    if features is None:
        return classifier(_own(inputs, OWN_FILTERS), classes)
    skips = [features[16], features[8], features[4], features[2], None]
    return classifier(decoder(features[32], skips, DECODER_FILTERS), classes)


def head_small(inputs: KerasTensor, features: dict[int, KerasTensor] | None, classes: int) -> KerasTensor:
    """unet_small logits (own encoder only)."""
    return classifier(_own(inputs, SMALL_FILTERS), classes)


def _own(inputs: KerasTensor, filters: Sequence[int]) -> KerasTensor:
    own = plain_encoder(inputs, filters, name="encoder")
    strides = sorted(own)
    skips = [own[s] for s in reversed(strides[:-1])]
    return decoder(own[strides[-1]], skips, list(reversed(filters[:-1])))
