import numpy as np
import pytest
from hypothesis import example, given
from pycocotools import mask as cocomask

from seg.dataset import rle
from tests.strategies import masks


@given(masks())
@example(np.zeros((1, 1), np.uint8))
@example(np.ones((1, 1), np.uint8))
@example(np.eye(5, dtype=np.uint8))
def test_encode_decode_round_trip(mask):
    counts = rle.encode(mask)
    h, w = mask.shape
    assert np.array_equal(rle.decode(counts, h, w), mask)
    assert rle.area(counts, h, w) == int(mask.sum())


@given(masks())
def test_uncompressed_round_trip_matches_pycocotools(mask):
    h, w = mask.shape
    counts = rle.encode(mask)
    runs = rle.to_uncompressed(counts, h, w)
    assert sum(runs) == h * w
    assert rle.to_uncompressed_raw(counts) == runs
    assert rle.from_uncompressed(runs, h, w) == counts
    # pycocotools agrees on the uncompressed form
    ref = cocomask.frPyObjects({"size": [h, w], "counts": runs}, h, w)
    assert np.array_equal(cocomask.decode(ref), mask)


@given(masks(), masks())
def test_many_masks_compress_as_each_alone(a, b):
    h, w = a.shape
    b = np.resize(b, (h, w))
    masks_ = [a, b, np.zeros((h, w), np.uint8), np.ones((h, w), np.uint8)]
    runs = [rle.to_uncompressed(rle.encode(m), h, w) for m in masks_]
    assert rle.from_uncompressed_many(runs, h, w) == [rle.encode(m) for m in masks_]
    assert rle.from_uncompressed_many([], h, w) == []


def test_counts_start_with_zeros_run_column_major():
    mask = np.array([[1, 0], [1, 1]], np.uint8)
    # column-major: 1,1 | 0,1 -> zeros first: 0, ones 2, zeros 1, ones 1
    assert rle.to_uncompressed(rle.encode(mask), 2, 2) == [0, 2, 1, 1]


@pytest.mark.parametrize("runs", [[3, 2], [0, 10, 1], [-1, 11]])
def test_from_uncompressed_rejects_wrong_sums(runs):
    with pytest.raises(ValueError, match="expected height x width = 10"):
        rle.from_uncompressed(runs, 2, 5)


def test_check_compressed_and_bad_strings():
    counts = rle.encode(np.ones((2, 5), np.uint8))
    rle.check_compressed(counts, 2, 5)
    with pytest.raises(ValueError, match="expected height x width = 12"):
        rle.check_compressed(counts, 3, 4)
    with pytest.raises(ValueError, match="invalid character"):
        rle.to_uncompressed_raw("ab~")


def test_bbox_iou_merge():
    a = np.zeros((6, 6), np.uint8)
    a[1:3, 2:5] = 1
    b = np.zeros((6, 6), np.uint8)
    b[2:4, 2:5] = 1
    ca, cb = rle.encode(a), rle.encode(b)
    assert rle.bbox(ca, 6, 6) == (2.0, 1.0, 3.0, 2.0)
    assert rle.iou(ca, cb, 6, 6) == pytest.approx(3 / 9)
    assert rle.area(rle.merge([ca, cb], 6, 6), 6, 6) == 9
    empty = rle.encode(np.zeros((6, 6), np.uint8))
    assert rle.iou(empty, empty, 6, 6) == 1.0


def test_encode_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"expected an \(H, W\) mask, got shape \(2, 2, 3\)"):
        rle.encode(np.zeros((2, 2, 3), np.uint8))
