"""Mask shapes measured from RLE runs: tight box, area, convex hull of the pixel squares, enclosing rectangle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from seg.curate import shapes
from seg.curate.shapes import shape_features
from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from tests.strategies import masks

SIZE = 64


def _objects(mask_list: list[np.ndarray], size: tuple[int, int] = (SIZE, SIZE)) -> pd.DataFrame:
    """The objects table of one blank image holding one object per mask."""
    height, width = size
    images = [{"image_id": "0", "file_name": "0.png", "width": width, "height": height}]
    rows = [
        {
            "image_id": "0",
            "file_name": "0.png",
            "width": width,
            "height": height,
            "category": "thing",
            "source_id": str(k),
            "rle": coco_rle.encode(mask),
        }
        for k, mask in enumerate(mask_list)
    ]
    return Dataset.from_records(images, rows, [Category("thing", 1)]).objects


def _rect(y0: int, x0: int, y1: int, x1: int, size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def _corner_hull(mask: np.ndarray):
    rows, cols = np.nonzero(mask)
    corners = np.concatenate([np.column_stack([cols + dx, rows + dy]) for dx in (0, 1) for dy in (0, 1)])
    return shapely.convex_hull(shapely.MultiPoint(corners.astype(float)))


@given(masks(max_side=20), st.integers(0, 3))
def test_shape_features_match_shapely_on_the_pixel_squares(mask, pad):
    mask = np.pad(mask, pad)
    objects = _objects([mask], size=mask.shape)
    row = shape_features(objects).iloc[0]
    assert row["has_mask"]
    assert row["area"] == mask.sum()
    if not mask.any():
        assert np.isnan(row["hull_area"]) and np.isnan(row["length"])
        return
    rows, cols = np.nonzero(mask)
    assert (row["left"], row["top"], row["right"], row["bottom"]) == (
        cols.min(),
        rows.min(),
        cols.max() + 1,
        rows.max() + 1,
    )
    hull = _corner_hull(mask)
    assert row["hull_area"] == pytest.approx(hull.area)
    assert row["hull_perimeter"] == pytest.approx(hull.length)
    envelope = shapely.oriented_envelope(hull)
    assert row["length"] * row["width"] == pytest.approx(envelope.area, rel=1e-6)
    assert row["length"] >= row["width"] > 0
    assert 0 < row["solidity"] <= 1 and 0 < row["extent"] <= 1 and 0 < row["compactness"] <= 1


def test_border_share_is_the_part_of_the_outline_on_the_border():
    measured = shape_features(_objects([_rect(0, 0, 10, 20), _rect(20, 20, 30, 30), _rect(0, 0, SIZE, SIZE)]))
    assert measured["border_share"].tolist() == pytest.approx([30 / 60, 0.0, 1.0])


def test_features_do_not_depend_on_chunking(monkeypatch):
    rng = np.random.default_rng(3)
    specs = []
    for _ in range(25):
        y, x = rng.integers(0, SIZE - 8, 2)
        h, w = rng.integers(1, 30, 2)
        specs.append(_rect(y, x, y + h, x + w))
    objects = _objects(specs)
    whole = shape_features(objects)
    monkeypatch.setattr(shapes, "CHUNK", 4)
    monkeypatch.setattr(shapes, "CHUNK_COLUMNS", 16)
    pd.testing.assert_frame_equal(shape_features(objects), whole)
