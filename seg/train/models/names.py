"""The model zoo's names: architectures, encoders, the pairs that go together, and the checks of a :class:`ModelSpec`.

Nothing here imports Keras, so the CLI can offer these names as choices and check a spec without the start-up cost.
"""

from __future__ import annotations

from seg.errors import OptionError
from seg.train.spec import ModelSpec

#: Decoders (segmentation heads), in the order the CLI lists them.
ARCHITECTURES: tuple[str, ...] = ("unet", "unet_small", "fcn8", "fcn32", "segnet", "pspnet", "deeplabv3plus")

#: Pretrained backbones from ``keras.applications``.
ENCODERS: tuple[str, ...] = ("vgg16", "resnet50", "mobilenetv2")

#: Architectures that also work with ``encoder=None``: their own plain convolutional encoder, randomly initialised.
OWN_ENCODER: tuple[str, ...] = ("unet", "unet_small", "segnet")

#: The encoder each architecture uses when none is named (None: its own encoder).
DEFAULT_ENCODER: dict[str, str | None] = {
    "unet": None,
    "unet_small": None,
    "fcn8": "vgg16",
    "fcn32": "vgg16",
    "segnet": None,
    "pspnet": "resnet50",
    "deeplabv3plus": "mobilenetv2",
}

#: Architectures that only exist with their own encoder (unet_small is the small CPU model of the demo).
_OWN_ENCODER_ONLY = ("unet_small",)

#: Input height and width must be multiples of this (the deepest feature map has stride 32).
SIZE_MULTIPLE = 32


def valid_pairs() -> list[tuple[str, str | None]]:
    """Every supported ``(architecture, encoder)`` pair; encoder None means the architecture's own encoder."""
    pairs: list[tuple[str, str | None]] = []
    for architecture in ARCHITECTURES:
        if architecture in OWN_ENCODER:
            pairs.append((architecture, None))
        if architecture not in _OWN_ENCODER_ONLY:
            pairs.extend((architecture, encoder) for encoder in ENCODERS)
    return pairs


def model_name(architecture: str, encoder: str | None) -> str:
    """The Keras model name: ``unet_vgg16``, or ``unet`` for the own encoder."""
    return architecture if encoder is None else f"{architecture}_{encoder}"


def check_spec(spec: ModelSpec) -> None:
    """Raise :class:`OptionError` when ``spec`` names an unknown or unsupported model, or a size the models cannot take.

    Args:
        spec: the model to build.

    Raises:
        OptionError: unknown architecture or encoder, a pair that does not go together, height or width not a multiple
            of 32, fewer than 1 band or 2 classes. The message lists the valid choices.
    """
    if spec.architecture not in ARCHITECTURES:
        raise OptionError(f"unknown architecture {spec.architecture!r}", expected=f"one of {', '.join(ARCHITECTURES)}")
    if spec.encoder is not None and spec.encoder not in ENCODERS:
        raise OptionError(
            f"unknown encoder {spec.encoder!r}", expected=f"one of {', '.join(ENCODERS)}, or none (own encoder)"
        )
    if (spec.architecture, spec.encoder) not in valid_pairs():
        choices = ", ".join(
            "none (own encoder)" if e is None else e for a, e in valid_pairs() if a == spec.architecture
        )
        raise OptionError(
            f"architecture {spec.architecture} does not take encoder {spec.encoder or 'none (own encoder)'}",
            expected=f"encoder {choices}",
            actual=spec.encoder or "none",
        )
    if spec.height % SIZE_MULTIPLE or spec.width % SIZE_MULTIPLE or spec.height <= 0 or spec.width <= 0:
        raise OptionError(
            "model input height and width must be positive multiples of 32",
            expected="e.g. 256x256",
            actual=f"{spec.height}x{spec.width}",
        )
    if spec.bands < 1:
        raise OptionError("a model needs at least one input band", expected=">= 1", actual=spec.bands)
    if spec.classes < 2:
        raise OptionError(
            "a model needs at least 2 classes (background included)", expected=">= 2", actual=spec.classes
        )
