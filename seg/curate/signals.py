"""The signals curation scores with, and the contract every signal module follows.

A **signal** measures one way an annotation can be bad, as a *badness* in ``[0, 1]`` (0: nothing wrong, 1: surely
wrong). Signal modules (``geometry``, ``consistency``, ``reference``, ``quality``, ``appearance``, ``agreement``) each
declare their signals in a module-level ``SIGNALS`` list and compute them with one function that returns
``(objects, images)`` (:data:`SignalFrames`), either of which may be None:

- ``objects``: object-level signals, a DataFrame with one row per object of ``dataset.objects``, indexed by the
  object's position (``0..n-1``, whatever the objects table's own index is), one float column per signal;
- ``images``: image-level signals, a DataFrame with one row per image of ``dataset.images``, indexed by ``image_id``
  (str), one float column per signal.

Every value is in ``[0, 1]``; NaN means "not measured here" (e.g. no reference given) and counts as 0. Object
badness reaches its image as the maximum over the image's objects. :mod:`seg.curate.score` combines the signals of
each group (the group's badness is its worst signal) into the score with the group weights, and writes the reasons
from each signal's ``reason``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

#: The signal groups, in report order, with their default weights in the score.
GROUPS: dict[str, float] = {
    "geometry": 1.0,
    "consistency": 1.0,
    "reference": 0.5,
    "quality": 0.75,
    "agreement": 1.0,
}


#: What a signal module's function returns: (object-level frame, image-level frame), either None.
SignalFrames = tuple[pd.DataFrame | None, pd.DataFrame | None]


@dataclass(frozen=True)
class Signal:
    """One signal.

    Attributes:
        name: the column name (snake_case, unique across modules).
        group: one of :data:`GROUPS`.
        level: ``"object"`` or ``"image"``.
        reason: what the report says when the signal costs points, a short phrase ("self-intersecting outline").
        explanation: one or two sentences for the report's legend: what is measured and how it maps to ``[0, 1]``.
    """

    name: str
    group: str
    level: Literal["object", "image"]
    reason: str
    explanation: str

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"unknown signal group {self.group!r}")
        if self.level not in ("object", "image"):
            raise ValueError(f"unknown signal level {self.level!r}")
