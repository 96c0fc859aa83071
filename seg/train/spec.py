"""What a run needs to rebuild its model and feed it: the model spec and the input normalisation.

Both are plain frozen dataclasses that round-trip through ``run.json`` (:meth:`to_dict` / :meth:`from_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

#: ImageNet channel statistics, on pixel values scaled to [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a model again.

    Args:
        architecture: one of :data:`seg.train.models.ARCHITECTURES` (``unet``, ``unet_small``, ``fcn8``...).
        encoder: one of :data:`seg.train.models.ENCODERS`, or None for the architecture's own encoder.
        height, width: input size in pixels (multiples of 32).
        bands: input channels (3 for RGB, any number for multi-band rasters).
        classes: output classes, background (index 0) included.
        encoder_weights: ``"imagenet"``, a path to a weights file, or None (random initialisation).
    """

    architecture: str
    encoder: str | None
    height: int
    width: int
    bands: int
    classes: int
    encoder_weights: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> ModelSpec:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in names})


@dataclass(frozen=True)
class Normalization:
    """``(raw / scale - mean) / std`` per band; the network sees float32 values near zero mean and unit variance.

    RGB images use scale 255 and ImageNet's mean and std; multi-band rasters use scale 1 and statistics measured on the
    training set.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float = 255.0

    @classmethod
    def imagenet(cls) -> Normalization:
        return cls(IMAGENET_MEAN, IMAGENET_STD, 255.0)

    def apply(self, pixels: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Normalise an (..., bands) array."""
        values = np.asarray(pixels, dtype=np.float32) / np.float32(self.scale)
        return (values - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "scale": self.scale}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Normalization:
        return cls(tuple(float(v) for v in value["mean"]), tuple(float(v) for v in value["std"]), float(value["scale"]))
