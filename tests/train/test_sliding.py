"""Sliding-window prediction: tiled equals whole for a per-pixel model, at any image size, in bounded memory."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest

from seg.train.keras_env import import_keras
from seg.train.sliding import MIN_WEIGHT, blend_weights, predict_probabilities, window_starts

TILE = (32, 32)


def per_pixel_model(tile: tuple[int, int], bands: int, classes: int, seed: int = 0):
    """A 1x1 convolution with known weights: its logits at a pixel depend on that pixel only."""
    keras = import_keras()
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 1, (1, 1, bands, classes)).astype(np.float32)
    bias = rng.normal(0, 0.5, classes).astype(np.float32)
    inputs = keras.Input(shape=(*tile, bands))
    layer = keras.layers.Conv2D(classes, 1)
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([kernel, bias])
    return model, kernel[0, 0], bias


def expected(pixels: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    logits = pixels.astype(np.float64) @ kernel + bias
    logits -= logits.max(axis=-1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def model3():
    return per_pixel_model(TILE, bands=3, classes=4)


@pytest.mark.parametrize(
    "size",
    [(32, 32), (20, 24), (1, 1), (1, 40), (100, 70), (33, 65), (64, 33), (20, 90), (97, 31)],
    ids=lambda s: f"{s[0]}x{s[1]}",
)
def test_tiled_equals_whole_for_a_per_pixel_model(model3, size):
    model, kernel, bias = model3
    pixels = np.random.default_rng(1).normal(0, 1, (*size, 3)).astype(np.float32)
    got = predict_probabilities(model, pixels, tile=TILE, overlap=0.25, batch_size=3)
    assert got.shape == (*size, 4)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected(pixels, kernel, bias), atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("overlap", [0.0, 0.5, 0.9])
def test_any_overlap_gives_the_same_probabilities(model3, overlap):
    model, kernel, bias = model3
    pixels = np.random.default_rng(2).normal(0, 1, (75, 50, 3)).astype(np.float32)
    got = predict_probabilities(model, pixels, tile=TILE, overlap=overlap, batch_size=8)
    np.testing.assert_allclose(got, expected(pixels, kernel, bias), atol=1e-5)


def test_non_square_tile_and_many_bands():
    model, kernel, bias = per_pixel_model((32, 64), bands=7, classes=2, seed=3)
    pixels = np.random.default_rng(3).normal(0, 1, (45, 150, 7))
    got = predict_probabilities(model, pixels, tile=(32, 64), batch_size=2)
    np.testing.assert_allclose(got, expected(pixels.astype(np.float32), kernel, bias), atol=1e-5)


def test_seams_are_blended_for_a_model_with_spatial_context():
    """A 5x5 box filter sees zero padding at window borders: plain averaging would leave steps at the seams, tapered
    weights keep the result close to the whole-image answer away from the image edge."""
    keras = import_keras()
    inputs = keras.Input(shape=(*TILE, 1))
    layer = keras.layers.Conv2D(2, 5, padding="same", use_bias=False)
    model = keras.Model(inputs, layer(inputs))
    kernel = np.zeros((5, 5, 1, 2), np.float32)
    kernel[..., 0, 0] = 1.0 / 25
    layer.set_weights([kernel])
    pixels = np.ones((96, 96, 1), np.float32) * 4
    got = predict_probabilities(model, pixels, tile=TILE, overlap=0.5)
    inner = got[4:-4, 4:-4, 0]
    whole = 1 / (1 + np.exp(-4.0))  # softmax of (4, 0) where the filter sees only image
    # windows' own borders (zero padded) get almost no weight where another window covers the pixel
    assert np.abs(inner - whole).max() < 0.01


def test_windows_cover_the_image_and_end_flush():
    for length in (32, 33, 50, 64, 65, 100, 1000, 2017):
        starts = window_starts(length, 32, 0.25)
        assert starts[0] == 0 and starts[-1] == length - 32
        assert all(b - a <= 24 for a, b in itertools.pairwise(starts))  # overlap at least a quarter
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s : s + 32] = True
        assert covered.all()
    assert window_starts(20, 32, 0.25) == [0]


def test_blend_weights_taper_and_stay_positive():
    weights = blend_weights((32, 64), 0.25)
    assert weights.shape == (32, 64)
    assert weights.min() >= MIN_WEIGHT
    assert weights[16, 32] == 1.0
    assert weights[0, 0] < 0.05 and weights[0, 32] < 0.2 and weights[16, 0] < 0.2
    assert (np.diff(weights[16, :32]) >= 0).all() and (np.diff(weights[16, 32:]) <= 0).all()


def test_bad_arguments_are_refused(model3):
    model = model3[0]
    pixels = np.zeros((40, 40, 3), np.float32)
    with pytest.raises(ValueError, match="H, W, bands"):
        predict_probabilities(model, np.zeros((40, 40), np.float32), TILE)
    with pytest.raises(ValueError, match="overlap"):
        predict_probabilities(model, pixels, TILE, overlap=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        predict_probabilities(model, pixels, TILE, batch_size=0)
    with pytest.raises(ValueError, match="tile"):
        predict_probabilities(model, pixels, (0, 32))


def test_a_model_of_another_size_is_refused():
    keras = import_keras()
    inputs = keras.Input(shape=(32, 32, 3))
    model = keras.Model(inputs, keras.layers.MaxPooling2D(2)(inputs))
    with pytest.raises(ValueError, match="model output"):
        predict_probabilities(model, np.zeros((32, 32, 3), np.float32), TILE)


def test_memory_stays_flat_for_a_large_image():
    """2000 x 2000: the sums and the result are held, never all windows (they would take about 3x the image)."""
    model, kernel, bias = per_pixel_model((128, 128), bands=3, classes=2, seed=4)
    pixels = np.random.default_rng(4).normal(0, 1, (2000, 2000, 3)).astype(np.float32)
    image_bytes = pixels.nbytes  # 48 MB; the probability sums take 2/3 of it, the weight sum 1/3
    tracemalloc.start()
    try:
        got = predict_probabilities(model, pixels, tile=(128, 128), batch_size=32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * image_bytes  # measured 1.45x; all windows at once would add another 2x
    sample = (slice(None, None, 97), slice(None, None, 89))
    np.testing.assert_allclose(got[sample], expected(pixels[sample], kernel, bias), atol=1e-5)
