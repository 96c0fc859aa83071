"""Thumbnails of the curation report: masks sampled at thumbnail resolution straight from their RLE runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seg.curate import report_thumbnails
from seg.dataset import rle


def _box(x: float, y: float, w: float, h: float) -> dict:
    return {"bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h}


@given(
    arrays(np.uint8, st.tuples(st.integers(1, 24), st.integers(1, 24)), elements=st.integers(0, 1)),
    st.integers(1, 40),
    st.integers(1, 40),
)
def test_sampled_masks_match_the_decoded_masks(mask, th, tw):
    height, width = mask.shape
    ys = np.minimum(((np.arange(th) + 0.5) * height / th).astype(np.int64), height - 1)
    xs = np.minimum(((np.arange(tw) + 0.5) * width / tw).astype(np.int64), width - 1)
    masks = [mask, 1 - mask, np.zeros_like(mask), np.ones_like(mask)]
    first = np.zeros_like(mask)
    first[0, 0] = 1
    masks.append(first)
    frame = pd.DataFrame(
        {"rle": [rle.encode(m) for m in masks] + ["!!", None], **{k: [0.0] * 7 for k in _box(0, 0, 0, 0)}}
    )
    frame.loc[6, ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]] = [1.0, 1.0, width / 2, height / 2]
    found: dict[int, np.ndarray] = {}
    boxes = frame[["bbox_x", "bbox_y", "bbox_w", "bbox_h"]].to_numpy()
    for chosen, sampled, ok in report_thumbnails._sampled_masks(frame["rle"].to_numpy(), boxes, height, width, ys, xs):
        assert sampled.shape == (len(chosen), th, tw)
        for i, one, good in zip(chosen, sampled, ok, strict=True):
            found[int(i)] = one
            assert good == (i != 5)
    for i, expected in enumerate(masks):
        assert np.array_equal(found[i], expected[ys][:, xs].astype(bool))
    assert not found[5].any()  # a broken string draws nothing
    box = (ys[:, None] + 0.5 >= 1) & (ys[:, None] + 0.5 <= 1 + height / 2)
    box = box & (xs[None] + 0.5 >= 1) & (xs[None] + 0.5 <= 1 + width / 2)
    assert np.array_equal(found[6], box)


def test_sampling_keeps_memory_in_batches(monkeypatch):
    monkeypatch.setattr(report_thumbnails, "_SAMPLE_BUDGET", 100)
    masks = [np.eye(10, dtype=np.uint8), np.ones((10, 10), np.uint8), np.zeros((10, 10), np.uint8)]
    frame = pd.DataFrame({"rle": [rle.encode(m) for m in masks], **{k: [0.0] * 3 for k in _box(0, 0, 0, 0)}})
    grid = np.arange(10)
    batches = list(report_thumbnails._sampled_masks(frame["rle"].to_numpy(), np.zeros((3, 4)), 10, 10, grid, grid))
    assert [len(chosen) for chosen, _, _ in batches] == [1, 1, 1]
    assert all(np.array_equal(b[1][0], m.astype(bool)) for b, m in zip(batches, masks, strict=True))
