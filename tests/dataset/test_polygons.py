import numpy as np
import pytest
from hypothesis import given
from pycocotools import mask as cocomask

from seg.dataset import polygons, rle
from tests.strategies import masks


def _coco_mask(rings, h, w):
    return cocomask.decode(cocomask.merge(cocomask.frPyObjects(rings, h, w)))


def test_polygon_rasterization_is_pycocotools():
    rings = [[1.2, 1.7, 8.9, 2.1, 7.5, 9.3, 2.2, 6.6], [10, 10, 14, 10, 14, 13]]
    counts = polygons.polygons_to_rle(rings, 16, 18)
    assert np.array_equal(rle.decode(counts, 16, 18), _coco_mask(rings, 16, 18))


def test_polygons_outside_the_image_are_clipped():
    rings = [[-5, -5, 30, -5, 30, 3, -5, 3]]
    mask = rle.decode(polygons.polygons_to_rle(rings, 6, 8), 6, 8)
    assert mask[:3].all() and not mask[3:].any()
    assert polygons.rings_bbox(rings, 6, 8) == (0.0, 0.0, 8.0, 3.0)


@pytest.mark.parametrize(("ring", "message"), [([0, 0, 1, 1], "2 points, expected at least 3"), ([0, 0, 1], "odd")])
def test_bad_rings(ring, message):
    with pytest.raises(ValueError, match=message):
        polygons.polygons_to_rle([ring], 5, 5)


@given(masks())
def test_outer_rings_of_hole_free_masks_rasterize_back_exactly(mask):
    h, w = mask.shape
    parts = polygons.mask_to_polygons(mask)
    rebuilt = rle.encode(mask) if not parts else polygons.polygons_to_rle(polygons.outer_rings(parts), h, w)
    has_holes = any(holes for _, holes in parts)
    if not has_holes:
        assert np.array_equal(rle.decode(rebuilt, h, w), mask)
    assert polygons.polygon_loss(rle.encode(mask), polygons.outer_rings(parts), h, w) <= 1.0


def test_hierarchy_keeps_holes_and_every_part():
    mask = np.zeros((12, 20), np.uint8)
    mask[1:9, 1:9] = 1
    mask[3:6, 3:6] = 0  # a hole
    mask[2:4, 12:18] = 1  # a second part
    parts = polygons.mask_to_polygons(mask)
    assert len(parts) == 2
    holes = sorted(len(h) for _, h in parts)
    assert holes == [0, 1]
    counts = rle.encode(mask)
    loss = polygons.polygon_loss(counts, polygons.outer_rings(parts), 12, 20)
    assert loss == pytest.approx(mask.sum() / (mask.sum() + 9))


@given(masks(max_side=40))
def test_bridged_rings_hold_any_mask_exactly_holes_included(mask):
    h, w = mask.shape
    rings = polygons.mask_to_rings(mask)
    rebuilt = polygons.polygons_to_rle(rings, h, w) if rings else rle.encode(np.zeros_like(mask))
    assert np.array_equal(rle.decode(rebuilt, h, w), mask)
    assert all(len(ring) >= 6 for ring in rings)


def test_nested_island_in_a_hole():
    mask = np.zeros((9, 9), np.uint8)
    mask[1:8, 1:8] = 1
    mask[2:7, 2:7] = 0
    mask[4, 4] = 1
    rings = polygons.mask_to_rings(mask)
    assert len(rings) == 2
    assert np.array_equal(rle.decode(polygons.polygons_to_rle(rings, 9, 9), 9, 9), mask)
