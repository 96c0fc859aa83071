"""The signal contract (seg/curate/signals.py), checked on what a signal module returned."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seg.curate.signals import Signal, SignalFrames
from seg.dataset.core import Dataset


def check_contract(dataset: Dataset, frames: SignalFrames, signals: Sequence[Signal]) -> None:
    """Object frames indexed by position, image frames by image_id, one column per declared signal, values in [0, 1]."""
    objects, images = frames
    assert list(objects.index) == list(range(len(dataset.objects)))
    assert list(images.index) == list(dataset.images["image_id"])
    assert set(objects.columns) == {s.name for s in signals if s.level == "object"}
    assert set(images.columns) == {s.name for s in signals if s.level == "image"}
    for frame in (objects, images):
        values = frame.to_numpy(np.float64)
        assert ((values >= 0) & (values <= 1) | np.isnan(values)).all()
