"""Input normalisation: ImageNet's for 8-bit RGB, per-band statistics of the training images for everything else."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from seg.errors import ValidationError
from seg.progress import Counted, Progress
from seg.train.data.scan import FolderScan, Sample
from seg.train.rasters import read_input
from seg.train.spec import Normalization

#: A band whose standard deviation is below this fraction of max(1, |mean|) is constant: its std is set to 1.
CONSTANT_BAND = 1e-6


def normalization_for(scan: FolderScan, *, progress: Progress = None) -> Normalization:
    """ImageNet statistics for 3-band uint8 images (what pretrained encoders expect), else :func:`band_statistics`
    of the training images."""
    if scan.bands == 3 and scan.dtype == "uint8":
        return Normalization.imagenet()
    return band_statistics(scan.train, scan.bands, progress=progress)


def band_statistics(
    samples: Sequence[Sample], bands: int, *, workers: int | None = None, progress: Progress = None
) -> Normalization:
    """Per-band mean and standard deviation over every pixel of the samples' images (scale 1).

    Images are combined one at a time in float64 (Chan's parallel update of mean and sum of squared deviations), so
    memory stays at one image and large uint16 values lose no precision. A constant band gets std 1.

    Raises:
        ValidationError: no samples, or an image with another band count.
    """
    if not samples:
        raise ValidationError("no images to measure band statistics on", expected="at least one training image")
    count = 0
    mean = np.zeros(bands, np.float64)
    squares = np.zeros(bands, np.float64)
    with ThreadPoolExecutor(workers or min(4, os.cpu_count() or 1)) as pool:
        images: Iterable = pool.map(lambda s: (s, read_input(s.image)), samples)
        if progress is not None:
            images = progress(Counted(images, len(samples)))
        for sample, pixels in images:
            if pixels.ndim != 3 or pixels.shape[-1] != bands:
                raise ValidationError(
                    "image has another band count", path=sample.image, expected=bands, actual=pixels.shape
                )
            values = pixels.reshape(-1, bands).astype(np.float64)
            n = values.shape[0]
            if n == 0:
                continue
            image_mean = values.mean(axis=0)
            image_squares = ((values - image_mean) ** 2).sum(axis=0)
            delta = image_mean - mean
            total = count + n
            mean += delta * (n / total)
            squares += image_squares + delta**2 * (count * n / total)
            count = total
    std = np.sqrt(squares / max(count, 1))
    std = np.where(std < CONSTANT_BAND * np.maximum(1.0, np.abs(mean)), 1.0, std)
    return Normalization(tuple(float(v) for v in mean), tuple(float(v) for v in std), 1.0)
