"""Label Studio brush RLE: round trips, byte-for-byte agreement with the SDK, real regions, hostile streams."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from seg.dataset import ls_brush
from tests.shared import SHARED_FIXTURES
from tests.strategies import masks

brush = pytest.importorskip("label_studio_sdk.converter.brush")

FRONTEND = SHARED_FIXTURES / "labelstudio_frontend_examples" / "examples"
SDK_FIXTURES = SHARED_FIXTURES / "labelstudio_sdk_converter_fixtures"


def rgba(mask: np.ndarray) -> np.ndarray:
    """The flat RGBA bytes the SDK's ``mask2rle(mask * 255)`` encodes."""
    return np.repeat((mask != 0).astype(np.uint8).ravel() * 255, 4)


def stream(*fields: tuple[int, int]) -> list[int]:
    """A stream written by hand: ``(value, bits)`` fields, most significant bit first, zero-padded to bytes."""
    bits = "".join(format(value, f"0{size}b") for value, size in fields)
    bits += "0" * (-len(bits) % 8)
    return [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]


def header(count: int, word_size: int = 8, sizes: tuple[int, ...] = (3, 4, 8, 16)) -> list[tuple[int, int]]:
    return [(count, 32), (word_size - 1, 5), *((s - 1, 4) for s in sizes)]


# -- round trips and the SDK -------------------------------------------------------------------------------------


@given(masks())
@example(np.zeros((3, 3), np.uint8))
@example(np.ones((3, 3), np.uint8))
@example(np.ones((1, 1), np.uint8))
def test_round_trip_and_byte_identity_with_the_sdk(mask):
    h, w = mask.shape
    rle = ls_brush.encode(mask)
    assert np.array_equal(ls_brush.decode(rle, h, w), mask)
    assert rle == brush.mask2rle(mask.astype(np.uint8) * 255)
    assert np.array_equal(brush.decode_rle(rle), rgba(mask))
    assert np.array_equal(ls_brush.decode_values(rle), rgba(mask))


@given(masks())
def test_any_dtype_and_layout_encodes_the_same(mask):
    expected = ls_brush.encode(mask)
    assert ls_brush.encode(mask.astype(bool)) == expected
    assert ls_brush.encode(np.asfortranarray(mask) * 7) == expected
    assert ls_brush.encode(mask.astype(np.float32) * 0.5) == expected


@given(
    hnp.arrays(np.uint8, st.integers(1, 200), elements=st.sampled_from([0, 0, 0, 1, 7, 255])),
)
def test_any_values_match_the_sdk_encoder_and_decoder(values):
    rle = ls_brush.encode_values(values)
    assert rle == brush.encode_rle(values.astype(int))
    assert np.array_equal(ls_brush.decode_values(rle), values)
    assert np.array_equal(brush.decode_rle(rle), values)


@given(st.integers(1, 12), st.integers(1, 12), st.data())
def test_decode_reads_the_alpha_channel_of_any_rgba_image(h, w, data):
    image = data.draw(hnp.arrays(np.uint8, (h, w, 4), elements=st.sampled_from([0, 0, 3, 128, 255])))
    rle = brush.encode_rle(image.ravel().astype(int))
    assert np.array_equal(ls_brush.decode(rle, h, w), (image[:, :, 3] != 0).astype(np.uint8))
    assert np.array_equal(ls_brush.decode_values(rle), image.ravel())


def test_the_sdk_reference_vector():
    values = [1, 1, 1, 1, 2, 3, 5, 6, 7, 8, 4, 4, 4, 4, 4, 4, 4, 4]
    expected = [0, 0, 0, 18, 57, 27, 252, 96, 32, 1, 0, 6, 0, 40, 0, 192, 3, 128, 17, 56, 32]
    assert ls_brush.encode_values(values) == expected
    assert ls_brush.decode_values(expected).tolist() == values


def test_first_and_last_pixels_and_long_runs():
    mask = np.zeros((300, 300), np.uint8)  # 360000 values: runs split into 65536-value pieces
    mask[0, 0] = mask[-1, -1] = 1
    rle = ls_brush.encode(mask)
    assert rle == brush.mask2rle(mask * 255)
    assert np.array_equal(ls_brush.decode(rle, 300, 300), mask)
    full = np.ones((300, 300), np.uint8)
    assert np.array_equal(ls_brush.decode(ls_brush.encode(full), 300, 300), full)


def test_literal_blocks_of_several_words():
    # the SDK writes one-value literals only; the editor (and old exports) write longer blocks: 0, 01, len-1 = 5 in
    # 4 bits, then six words; then a run of 2 x 9
    rle = stream(
        *header(8), (0, 1), (1, 2), (5, 4), *((v, 8) for v in (1, 2, 3, 0, 0, 9)), (1, 1), (0, 2), (1, 3), (9, 8)
    )
    assert ls_brush.decode_values(rle).tolist() == [1, 2, 3, 0, 0, 9, 9, 9]
    assert brush.decode_rle(rle).tolist() == [1, 2, 3, 0, 0, 9, 9, 9]
    assert ls_brush.decode(rle, 1, 2).tolist() == [[0, 1]]


def test_smaller_word_and_field_sizes():
    rle = stream(*header(4, word_size=2, sizes=(1, 2, 3, 4)), (1, 1), (2, 2), (3, 3), (3, 2))
    assert ls_brush.decode_values(rle).tolist() == [3, 3, 3, 3]
    assert brush.decode_rle(rle).tolist() == [3, 3, 3, 3]


def test_trailing_bytes_after_the_last_record_are_ignored():
    rle = ls_brush.encode(np.ones((2, 2), np.uint8))
    assert ls_brush.decode([*rle, 0, 0, 255], 2, 2).tolist() == [[1, 1], [1, 1]]


# -- hostile streams ---------------------------------------------------------------------------------------------


GOOD = ls_brush.encode(np.eye(4, dtype=np.uint8))

BAD_STREAMS = {
    "empty": ([], "too short"),
    "header only": (GOOD[:6], "too short"),
    "string": ("1,2,3", "list of byte values"),
    "dict": ({"rle": GOOD}, "list of byte values"),
    "floats": ([float(v) for v in GOOD], "flat list of integers"),
    "strings": ([str(v) for v in GOOD], "flat list of integers"),
    "none inside": ([*GOOD[:-1], None], "flat list of integers"),
    "nested": ([GOOD, GOOD], "flat list of integers"),
    "ragged": ([1, [2, 3], *GOOD], "byte values"),
    "booleans": ([True] * 12, "flat list of integers"),
    "above a byte": ([*GOOD[:-1], 256], "bytes"),
    "negative": ([*GOOD[:-1], -1], "bytes"),
    "huge int": ([*GOOD[:-1], 2**80], "flat list of integers"),
    "truncated": (GOOD[: len(GOOD) // 2], "truncated"),
    "records past the count": (stream(*header(64), (1, 1), (3, 2), (127, 16), (0, 8)), "more than the 64"),
    "wide words": (stream(*header(64, word_size=16), (1, 1), (3, 2), (63, 16), (0, 16)), "word size is 16"),
    "zeros forever": (stream(*header(64)) + [0] * 8, "truncated"),
}


@pytest.mark.parametrize("case", list(BAD_STREAMS))
def test_hostile_streams_raise_value_error(case):
    rle, words = BAD_STREAMS[case]
    with pytest.raises(ValueError, match=words):
        ls_brush.decode(rle, 4, 4)


def test_the_size_must_match_the_header_and_stay_sane():
    with pytest.raises(ValueError, match=r"holds 64 values, expected height x width x 4 = 48"):
        ls_brush.decode(GOOD, 3, 4)
    with pytest.raises(ValueError, match="must be positive"):
        ls_brush.decode(GOOD, 0, 16)
    with pytest.raises(ValueError, match="larger than"):
        ls_brush.decode(GOOD, 2**15, 2**15)


def test_a_header_claiming_a_huge_image_allocates_nothing():
    claim = stream(*header(2**32 - 4), (1, 1), (3, 2), (2**16 - 1, 16), (255, 8))
    with pytest.raises(ValueError, match="more than"):
        ls_brush.decode_values(claim)
    # the largest allowed claim with too few records fails on the stream's end, before any allocation
    short = stream(*header(2**30), (1, 1), (3, 2), (2**16 - 1, 16), (255, 8))
    with pytest.raises(ValueError, match="truncated"):
        ls_brush.decode(short, 2**14, 2**14)


def test_encode_refuses_what_a_stream_cannot_hold():
    with pytest.raises(ValueError, match=r"expected an \(H, W\) mask"):
        ls_brush.encode(np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match="empty"):
        ls_brush.encode(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="bytes"):
        ls_brush.encode_values([0, 256])


# -- real regions ------------------------------------------------------------------------------------------------


def _brush_regions() -> list[tuple[str, dict]]:
    """Every distinct brush stream of the editor's examples (a tool result and its labels result share one)."""
    if not FRONTEND.is_dir():
        return []
    found, seen = [], set()
    for path in sorted(FRONTEND.glob("*/annotations/*.json")):
        task = json.loads(path.read_text())
        for entry in task.get("annotations", []) + task.get("predictions", []):
            for result in entry["result"]:
                if isinstance(result.get("value"), dict) and "rle" in result["value"] and result["id"] not in seen:
                    seen.add(result["id"])
                    found.append((f"{path.parent.parent.name}/{result['type']}/{result['id']}", result))
    return found


REGIONS = _brush_regions()


@pytest.mark.skipif(not REGIONS, reason=f"real-world fixtures not present at {SHARED_FIXTURES}")
@pytest.mark.parametrize("result", [r for _, r in REGIONS], ids=[name for name, _ in REGIONS])
def test_real_regions_decode_as_the_sdk_decodes_them(result):
    rle = result["value"]["rle"]
    reference = brush.decode_rle(rle)
    values = ls_brush.decode_values(rle)
    assert np.array_equal(values, reference)
    if "original_width" in result:
        h, w = result["original_height"], result["original_width"]
    else:  # the legacy region has no size: its image is the 2242 x 2802 one of image_tools
        h, w = 2802, 2242
    mask = ls_brush.decode(rle, h, w)
    assert np.array_equal(mask, reference.reshape(h, w, 4)[:, :, 3] != 0)
    assert 0 < mask.sum() < mask.size
    # and back: seg's stream of the mask decodes (by the SDK too) to the same mask
    again = ls_brush.encode(mask)
    assert np.array_equal(ls_brush.decode(again, h, w), mask)


def test_the_fixture_lists_are_not_empty(shared_fixtures):
    assert len(REGIONS) == 4  # image_tools: one brush; magic wand: two; the legacy brushlabels


@pytest.mark.parametrize("name", ["data/test_brush/test.png", "test.png"])
def test_brush_png_fixtures_encode_as_the_sdk_encodes_them(shared_fixtures, name):
    path = SDK_FIXTURES / name
    expected, width, height = brush.image2rle(str(path))  # grey > 128 is object, as the SDK's importer says
    with Image.open(path) as image:
        mask = (np.asarray(image.convert("L")) > 128).astype(np.uint8)
    assert mask.shape == (height, width) and 0 < mask.sum() < mask.size
    assert ls_brush.encode(mask) == expected
    assert np.array_equal(ls_brush.decode(expected, height, width), mask)
