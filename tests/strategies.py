"""Hypothesis strategies shared by the codec and geometry tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@st.composite
def masks(draw, max_side: int = 24) -> np.ndarray:
    """Random 0/1 uint8 masks, from 1x1 up to max_side x max_side, biased towards runs and edge pixels."""
    height = draw(st.integers(1, max_side))
    width = draw(st.integers(1, max_side))
    kind = draw(st.sampled_from(["random", "empty", "full", "one", "first", "last", "blocks"]))
    mask = np.zeros((height, width), np.uint8)
    if kind == "random":
        mask = draw(hnp.arrays(np.uint8, (height, width), elements=st.integers(0, 1)))
    elif kind == "full":
        mask[:] = 1
    elif kind == "one":
        mask[draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))] = 1
    elif kind == "first":
        mask[0, 0] = 1
    elif kind == "last":
        mask[-1, -1] = 1
    elif kind == "blocks":
        for _ in range(draw(st.integers(1, 4))):
            y0, x0 = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
            mask[y0 : y0 + draw(st.integers(1, height)), x0 : x0 + draw(st.integers(1, width))] = 1
    return mask
