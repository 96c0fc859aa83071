import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from seg.dataset import rle
from seg.dataset.mask_paint import label_runs
from seg.formats.masks_png import _array_planes, _dense_zlib, _sparse_zlib, encode_label_runs, encode_png
from tests.strategies import masks


@st.composite
def labels(draw):
    dtype = draw(st.sampled_from([np.uint8, np.uint16]))
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    top = int(np.iinfo(dtype).max)
    if draw(st.booleans()):
        return draw(hnp.arrays(dtype, (height, width), elements=st.integers(0, top)))
    label = np.full((height, width), draw(st.integers(0, top)), dtype)
    for _ in range(draw(st.integers(0, 5))):
        y, x = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
        label[y : y + draw(st.integers(1, 30)), x : x + draw(st.integers(1, 30))] = draw(st.integers(0, top))
    return label


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@given(labels(), st.booleans())
def test_png_decodes_to_the_label_image(label, column_major):
    source = np.ascontiguousarray(label.T).T if column_major else label
    image = Image.open(io.BytesIO(encode_png(source)))
    assert image.mode == ("L" if label.dtype == np.uint8 else "I;16")
    assert np.array_equal(np.asarray(image).astype(label.dtype), label)


@given(labels())
def test_sparse_stream_is_valid_zlib_of_up_filtered_rows(label):
    height, width = label.shape
    stream = _sparse_zlib(height, width, label.dtype.itemsize, _array_planes(np.ascontiguousarray(label.T).T))
    if stream is None:  # too many changes: the dense path is used
        stream = _dense_zlib(label)
    raw = zlib.decompress(stream)  # checks the Adler-32 too
    assert len(raw) == label.shape[0] * (1 + label.shape[1] * label.dtype.itemsize)


@given(st.lists(masks(max_side=20), min_size=0, max_size=6), st.sampled_from([np.uint8, np.uint16]), st.data())
def test_png_from_label_runs_equals_the_painted_image(mask_list, dtype, data):
    shape = mask_list[0].shape if mask_list else (5, 7)
    mask_list = [m for m in mask_list if m.shape == shape]
    top = int(np.iinfo(dtype).max)
    values = data.draw(st.lists(st.integers(1, top), min_size=len(mask_list), max_size=len(mask_list)))
    runs = label_runs(*shape, [rle.encode(m) for m in mask_list], values, dtype=dtype)
    image = Image.open(io.BytesIO(encode_label_runs(runs)))
    assert image.mode == ("L" if dtype == np.uint8 else "I;16")
    assert np.array_equal(np.asarray(image).astype(dtype), runs.to_array())


def test_large_uniform_and_sparse_images_are_small():
    label = np.zeros((480, 640), np.uint8)
    label[100:300, 50:400] = 7
    png = encode_png(np.ascontiguousarray(label.T).T)
    assert len(png) < 5000 and np.array_equal(decode(png), label)
    full = np.full((3000, 2000), 300, np.uint16)
    assert np.array_equal(decode(encode_png(full)), full)


def test_noise_falls_back_to_zlib():
    label = np.random.default_rng(0).integers(0, 256, (50, 60)).astype(np.uint8)
    assert _sparse_zlib(50, 60, 1, _array_planes(label)) is None
    assert np.array_equal(decode(encode_png(label)), label)


def test_png_structure():
    png = encode_png(np.zeros((3, 2), np.uint8))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">IIBBBBB", png[16:29]) == (2, 3, 8, 0, 0, 0, 0)
    assert png.endswith(b"IEND\xaeB`\x82")


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.int32), np.zeros((0, 3), np.uint8)])
def test_rejects_other_arrays(bad):
    with pytest.raises(ValueError, match="expected a non-empty"):
        encode_png(bad)
