"""The training augmentation settings (the TensorFlow ops that apply them are in :mod:`seg.train.data.transforms`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seg.errors import OptionError


@dataclass(frozen=True)
class Augment:
    """Random changes applied to each training image and, for the geometric ones, its mask.

    Args:
        flips: flip left-right and up-down, each with probability 1/2.
        rot90: rotate by a random multiple of 90 degrees (only when the training size is square).
        scale: crop a region ``s`` times the training size, ``s`` uniform in this range, and resize it to the training
            size (zoom in below 1, out above); None crops at the images' own scale.
        brightness: add a uniform offset in ``[-brightness, brightness]`` to the normalised image.
        contrast: scale each band's deviation from its mean by a uniform factor in ``[1 - contrast, 1 + contrast]``.
    """

    flips: bool = True
    rot90: bool = True
    scale: tuple[float, float] | None = (0.75, 1.25)
    brightness: float = 0.1
    contrast: float = 0.1

    def __post_init__(self) -> None:
        if self.scale is not None:
            low, high = self.scale
            if not 0 < low <= high:
                raise OptionError("augmentation scale range not valid", expected="0 < low <= high", actual=self.scale)
            object.__setattr__(self, "scale", (float(low), float(high)))
        if self.brightness < 0:
            raise OptionError("brightness must not be negative", expected=">= 0", actual=self.brightness)
        if not 0 <= self.contrast < 1:
            raise OptionError("contrast must be in [0, 1)", expected="0 <= contrast < 1", actual=self.contrast)

    def to_dict(self) -> dict[str, Any]:
        return {
            "flips": self.flips,
            "rot90": self.rot90,
            "scale": list(self.scale) if self.scale is not None else None,
            "brightness": self.brightness,
            "contrast": self.contrast,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Augment:
        scale = value.get("scale", (0.75, 1.25))
        return cls(
            flips=bool(value.get("flips", True)),
            rot90=bool(value.get("rot90", True)),
            scale=tuple(scale) if scale is not None else None,  # type: ignore[arg-type]
            brightness=float(value.get("brightness", 0.1)),
            contrast=float(value.get("contrast", 0.1)),
        )
