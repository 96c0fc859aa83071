import numpy as np
import pytest
from hypothesis import example, given

from seg.dataset import kaggle_rle, rle
from tests.strategies import masks


def _decode_by_hand(text: str, h: int, w: int) -> np.ndarray:
    flat = np.zeros(h * w, np.uint8)
    values = [int(v) for v in text.split()]
    for start, length in zip(values[0::2], values[1::2], strict=True):
        flat[start - 1 : start - 1 + length] = 1
    return flat.reshape((h, w), order="F")


@given(masks())
@example(np.zeros((3, 3), np.uint8))
@example(np.ones((3, 3), np.uint8))
def test_round_trip_and_matches_hand_decoding(mask):
    h, w = mask.shape
    text = kaggle_rle.encode(mask)
    assert np.array_equal(kaggle_rle.decode(text, h, w), mask)
    assert np.array_equal(_decode_by_hand(text, h, w), mask)


@given(masks())
def test_coco_counts_conversion_without_masks(mask):
    h, w = mask.shape
    text = kaggle_rle.encode(mask)
    counts = kaggle_rle.to_coco_counts(text, h, w)
    assert counts == rle.to_uncompressed(rle.encode(mask), h, w)
    assert kaggle_rle.from_coco_counts(counts) == text


def test_one_indexed_column_major():
    mask = np.zeros((3, 2), np.uint8)
    mask[0, 0] = 1  # pixel 1
    mask[2, 1] = 1  # column-major index 5 -> pixel 6
    assert kaggle_rle.encode(mask) == "1 1 6 1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2 3", "odd number"),
        ("1 x", "must be integers"),
        ("0 2", "starts must be >= 1"),
        ("1 0", "lengths > 0"),
        ("5 10", "beyond height x width = 9"),
        ("4 2 1 2", "overlap or are not sorted"),
        ("1 3 2 2", "overlap or are not sorted"),
    ],
)
def test_bad_strings(text, message):
    with pytest.raises(ValueError, match=message):
        kaggle_rle.decode(text, 3, 3)


def test_empty_string_is_empty_mask():
    assert kaggle_rle.decode("", 2, 3).sum() == 0
    assert kaggle_rle.encode(np.zeros((2, 3))) == ""
    assert kaggle_rle.to_coco_counts("  ", 2, 3) == [6]
