"""The embedded sample: synthetic aerial tiles of Dakar with building and road annotations, built on demand.

``build_sample(out)`` writes it (see :mod:`seg.sample.build` for the layout); ``seg demo`` runs the flow on it.
"""

from __future__ import annotations

from seg.sample.build import SampleInfo, build_sample

__all__ = ["SampleInfo", "build_sample"]
