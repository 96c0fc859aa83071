import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seg.dataset import rle
from seg.dataset.mask_paint import paint, paint_order, parse_runs
from tests.strategies import masks


@given(st.lists(masks(max_side=16), min_size=1, max_size=5))
def test_parse_runs_matches_pycocotools_runs(mask_list):
    shape = mask_list[0].shape
    mask_list = [m for m in mask_list if m.shape == shape]
    strings = [rle.encode(m) for m in mask_list]
    runs = parse_runs(strings)
    assert runs.totals.tolist() == [shape[0] * shape[1]] * len(strings)
    bounds = runs.bounds(len(strings))
    for i, (mask, counts) in enumerate(zip(mask_list, strings, strict=True)):
        flat = np.zeros(mask.size, np.uint8)
        for start, end in zip(
            runs.starts[bounds[i] : bounds[i + 1]], runs.ends[bounds[i] : bounds[i + 1]], strict=True
        ):
            flat[start:end] = 1
        assert np.array_equal(flat, mask.ravel(order="F"))
        assert int((runs.ends - runs.starts)[bounds[i] : bounds[i + 1]].sum()) == rle.area(counts, *shape)


def test_parse_runs_large_numbers_and_no_strings():
    mask = np.zeros((1000, 2000), np.uint8)
    mask[:, 1000:] = 1
    runs = parse_runs([rle.encode(mask)])
    assert runs.starts.tolist() == [1_000_000] and runs.ends.tolist() == [2_000_000]
    empty = parse_runs([])
    assert empty.starts.size == 0 and empty.totals.size == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a!", "invalid character '!'"),
        ("é", "invalid character 'é'"),
        ("P", "ends inside a number"),
        ("oooooooooooooo0", "too long"),
    ],
)
def test_parse_runs_rejects_malformed_strings(text, message):
    with pytest.raises(ValueError, match=message):
        parse_runs([text])


def test_parse_runs_rejects_negative_runs():
    # counts [5, 3, 2] then a delta that makes run 3 negative: "5", "3", "2", then -10 relative to run 1 -> -7
    with pytest.raises(ValueError, match="negative"):
        parse_runs(["532" + chr(48 + ((-10) & 0x1F))])


@given(st.lists(masks(max_side=12), min_size=0, max_size=6), st.data())
def test_paint_equals_boolean_assignment_in_order(mask_list, data):
    shape = mask_list[0].shape if mask_list else (3, 4)
    mask_list = [m for m in mask_list if m.shape == shape]
    values = data.draw(st.lists(st.integers(1, 65535), min_size=len(mask_list), max_size=len(mask_list)))
    expected = np.zeros(shape, np.uint16)
    for mask, value in zip(mask_list, values, strict=True):
        expected[mask.astype(bool)] = value
    label = paint(*shape, [rle.encode(m) for m in mask_list], values, dtype=np.uint16)
    assert label.dtype == np.uint16 and np.array_equal(label, expected)


def test_paint_boxes_like_object_mask_and_clipped():
    strings = [rle.encode(np.ones((4, 5), np.uint8)), None]
    label = paint(4, 5, strings, [1, 2], boxes=[(0, 0, 0, 0), (3.5, 2.2, 9, 9)])
    assert label.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 2, 2], [1, 1, 1, 2, 2]]


def test_paint_rejects_wrong_size_rle():
    with pytest.raises(ValueError, match="object 1 covers 12 pixels, expected height x width = 20"):
        paint(4, 5, [rle.encode(np.ones((4, 5), np.uint8)), rle.encode(np.ones((3, 4), np.uint8))], [1, 2])


def test_paint_order_largest_first_ties_in_order():
    assert paint_order([5, 10, 5, 1, 10]).tolist() == [1, 4, 0, 2, 3]
