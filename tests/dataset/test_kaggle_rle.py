import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

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


def _reference_encode(mask: np.ndarray) -> str:
    """The textbook encoder: column-major pixels padded with zeros, edges where neighbours differ."""
    pixels = np.concatenate([[0], (mask.T.ravel() != 0).astype(np.int8), [0]])
    runs = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


@given(masks())
def test_encode_matches_the_textbook_encoder_for_any_dtype_and_layout(mask):
    expected = _reference_encode(mask)
    assert kaggle_rle.encode(mask) == expected
    assert kaggle_rle.encode(mask.astype(bool)) == expected
    assert kaggle_rle.encode(np.asfortranarray(mask) * 7) == expected


@given(st.integers(1, 20), st.integers(1, 20), st.integers(0, 1000), st.floats(0, 1))
def test_widths_that_are_multiples_of_eight(h, w8, seed, density):
    # encode compares eight pixels at a time when the width allows it
    mask = (np.random.default_rng(seed).random((h, w8 * 8)) < density).astype(np.uint8)
    text = kaggle_rle.encode(mask)
    assert text == _reference_encode(mask)
    assert np.array_equal(kaggle_rle.decode(text, h, w8 * 8), mask)


@pytest.mark.parametrize(
    "text",
    [
        "9223372036854775807 9223372036854775807",
        "1 99999999999999999999999",
        "1 2 x",
        "1,2",
        "1 2.5",
        "-1 2",
        "3 1 1 1",
        "1 1 -5 2",
    ],
)
def test_hostile_strings(text):
    with pytest.raises(ValueError):
        kaggle_rle.decode(text, 3, 3)


@pytest.mark.parametrize("shape", [(0, 0), (0, 8), (8, 0), (1, 8), (1, 1)])
def test_degenerate_shapes(shape):
    assert kaggle_rle.encode(np.zeros(shape, np.uint8)) == ""
