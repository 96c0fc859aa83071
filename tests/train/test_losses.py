"""Segmentation losses: values against Keras and numpy, gradients, training a tiny model, save and reload."""

from __future__ import annotations

import numpy as np
import pytest

from seg.errors import OptionError
from seg.train.keras_env import import_keras
from seg.train.losses import (
    LOSSES,
    CrossEntropyDiceLoss,
    DiceLoss,
    FocalLoss,
    class_weights_from_frequencies,
    make_loss,
)

keras = import_keras()
tf = pytest.importorskip("tensorflow")

CLASSES = 3


def batch(seed=0, shape=(2, 8, 8), classes=CLASSES, scale=2.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, shape).astype(np.int32)
    logits = (rng.normal(size=(*shape, classes)) * scale).astype(np.float32)
    return labels, logits


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def numpy_weighted_ce(labels, logits, weights, gamma=0.0):
    """Per image: sum(w[y] * (1 - p_y)^gamma * -log p_y) / sum(w[y]); then the batch mean."""
    log_p = np.take_along_axis(log_softmax(logits.astype(np.float64)), labels[..., None], axis=-1)[..., 0]
    per_pixel = -((1 - np.exp(log_p)) ** gamma) * log_p
    w = np.asarray(weights, np.float64)[labels]
    per_image = (w * per_pixel).reshape(len(labels), -1).sum(1) / w.reshape(len(labels), -1).sum(1)
    return per_image.mean()


def numpy_dice(labels, logits, weights=None, smooth=1.0):
    probs = np.exp(log_softmax(logits.astype(np.float64)))
    onehot = np.eye(logits.shape[-1])[labels]
    axes = tuple(range(1, labels.ndim))
    dice = (2 * (probs * onehot).sum(axes) + smooth) / (probs.sum(axes) + onehot.sum(axes) + smooth)
    w = np.ones(logits.shape[-1]) if weights is None else np.asarray(weights, np.float64)
    return (1 - (dice * w).sum(-1) / w.sum()).mean()


def value(loss, labels, logits):
    return float(keras.ops.convert_to_numpy(loss(labels, logits)))


# --- values -------------------------------------------------------------------------------------------------------


def test_losses_constant_names_every_loss():
    assert LOSSES == ("ce", "dice", "focal", "ce+dice")
    for name in LOSSES:
        assert isinstance(make_loss(name, CLASSES), keras.losses.Loss)


@pytest.mark.parametrize("label_shape", ["BHW", "BHW1"])
def test_unweighted_ce_equals_keras_sparse_categorical_crossentropy(label_shape):
    labels, logits = batch(seed=1)
    reference = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    given = labels[..., None] if label_shape == "BHW1" else labels
    assert value(make_loss("ce", CLASSES), given, logits) == pytest.approx(float(reference), rel=1e-5)


def test_class_weights_change_ce_as_computed_by_hand():
    labels, logits = batch(seed=2)
    weights = [0.2, 1.0, 5.0]
    weighted = value(make_loss("ce", CLASSES, weights), labels, logits)
    assert weighted == pytest.approx(numpy_weighted_ce(labels, logits, weights), rel=1e-5)
    assert weighted != pytest.approx(value(make_loss("ce", CLASSES), labels, logits), rel=1e-3)
    # uniform weights are no weights: the weighted mean is normalised by the weights
    assert value(make_loss("ce", CLASSES, [3.0] * CLASSES), labels, logits) == pytest.approx(
        value(make_loss("ce", CLASSES), labels, logits), rel=1e-5
    )


@pytest.mark.parametrize("weights", [None, [0.5, 2.0, 1.0]])
def test_focal_with_gamma_zero_is_cross_entropy(weights):
    labels, logits = batch(seed=3)
    focal = value(FocalLoss(CLASSES, weights, gamma=0.0), labels, logits)
    assert focal == pytest.approx(value(make_loss("ce", CLASSES, weights), labels, logits), rel=1e-5)


def test_focal_down_weights_easy_pixels_as_computed_by_hand():
    labels, logits = batch(seed=4)
    weights = [1.0, 0.25, 2.0]
    focal = value(make_loss("focal", CLASSES, weights), labels, logits)
    assert focal == pytest.approx(numpy_weighted_ce(labels, logits, weights, gamma=2.0), rel=1e-5)
    assert focal < value(make_loss("ce", CLASSES, weights), labels, logits)


@pytest.mark.parametrize("weights", [None, [0.1, 1.0, 3.0]])
def test_dice_matches_numpy(weights):
    labels, logits = batch(seed=5)
    assert value(make_loss("dice", CLASSES, weights), labels, logits) == pytest.approx(
        numpy_dice(labels, logits, weights), rel=1e-5
    )


def test_dice_of_perfect_logits_is_about_zero_and_of_wrong_ones_about_one():
    labels = np.tile(np.arange(CLASSES, dtype=np.int32).repeat(4), (2, 12, 1))  # (2, 12, 12), every class present
    perfect = np.eye(CLASSES, dtype=np.float32)[labels] * 30.0
    wrong = np.eye(CLASSES, dtype=np.float32)[(labels + 1) % CLASSES] * 30.0
    dice = make_loss("dice", CLASSES)
    assert value(dice, labels, perfect) == pytest.approx(0.0, abs=1e-4)
    assert value(dice, labels, wrong) == pytest.approx(1.0, abs=0.03)  # 1 - smoothing / (48 + 48 + 1)


def test_ce_plus_dice_is_the_sum():
    labels, logits = batch(seed=6)
    weights = [1.0, 2.0, 0.5]
    total = value(make_loss("ce+dice", CLASSES, weights), labels, logits)
    parts = value(make_loss("ce", CLASSES, weights), labels, logits) + value(
        make_loss("dice", CLASSES, weights), labels, logits
    )
    assert total == pytest.approx(parts, rel=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_half_precision_logits_are_computed_in_float32(name):
    labels, logits = batch(seed=7)
    loss = make_loss(name, CLASSES)
    half = loss(labels, tf.constant(logits, tf.float16))
    assert half.dtype == tf.float32
    assert float(half) == pytest.approx(value(loss, labels, logits.astype(np.float16).astype(np.float32)), rel=1e-5)


@pytest.mark.parametrize("scale", [1.0, 1e4])  # 1e4: a saturated softmax, where log(0) would give inf / nan
@pytest.mark.parametrize("name", LOSSES)
def test_gradients_are_finite(name, scale):
    labels, logits = batch(seed=8, scale=scale)
    logits = tf.Variable(logits)
    loss = make_loss(name, CLASSES, [1.0, 2.0, 0.5])
    with tf.GradientTape() as tape:
        result = loss(labels, logits)
    gradient = tape.gradient(result, logits).numpy()
    assert np.isfinite(float(result))
    assert np.isfinite(gradient).all()
    if scale == 1.0:
        assert np.abs(gradient).sum() > 0


# --- training, saving ---------------------------------------------------------------------------------------------


def tiny_data(seed=0, size=16):
    """Inputs whose largest channel is the label: a 1x1 convolution can learn it."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(4, size, size, CLASSES)).astype(np.float32)
    return images, np.argmax(images, axis=-1).astype(np.int32)


def tiny_model(loss):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, CLASSES))
    logits = keras.layers.Conv2D(CLASSES, 1, name="logits")(inputs)
    model = keras.Model(inputs, keras.layers.Activation("linear", dtype="float32")(logits))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    return model


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_trains_a_tiny_model(name):
    images, labels = tiny_data()
    model = tiny_model(make_loss(name, CLASSES, [1.0, 1.5, 0.5]))
    before = model.evaluate(images, labels, verbose=0)
    model.fit(images, labels, batch_size=2, epochs=8, verbose=0)
    after = model.evaluate(images, labels, verbose=0)
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("name", LOSSES)
def test_a_compiled_model_saves_and_reloads_with_its_loss(tmp_path, name):
    images, labels = tiny_data(seed=1)
    model = tiny_model(make_loss(name, CLASSES, [1.0, 2.0, 0.5]))
    model.fit(images, labels, batch_size=2, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(reloaded.loss) is type(model.loss)
    assert reloaded.loss.get_config() == model.loss.get_config()
    assert reloaded.loss.class_weights == [1.0, 2.0, 0.5]
    assert reloaded.evaluate(images, labels, verbose=0) == pytest.approx(model.evaluate(images, labels, verbose=0))
    reloaded.fit(images, labels, batch_size=2, epochs=1, verbose=0)  # the optimizer state came back too


def test_extra_parameters_survive_the_config():
    focal = FocalLoss.from_config(FocalLoss(4, gamma=1.5, name="f").get_config())
    assert (focal.gamma, focal.classes, focal.name) == (1.5, 4, "f")
    dice = DiceLoss.from_config(DiceLoss(2, [1.0, 3.0], smooth=0.5).get_config())
    assert (dice.smooth, dice.class_weights) == (0.5, [1.0, 3.0])
    both = CrossEntropyDiceLoss.from_config(make_loss("ce+dice", 2, [1.0, 2.0]).get_config())
    assert both.class_weights == [1.0, 2.0] and both.name == "ce_dice"


# --- options ------------------------------------------------------------------------------------------------------


def test_unknown_loss_lists_the_choices():
    with pytest.raises(OptionError) as caught:
        make_loss("hinge", CLASSES)
    assert caught.value.actual == "hinge"
    assert all(name in str(caught.value.expected) for name in LOSSES)


@pytest.mark.parametrize("weights", [[1.0, 2.0], [1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1.0, float("nan"), 1.0]])
def test_bad_class_weights_are_refused(weights):
    with pytest.raises(OptionError):
        make_loss("ce", CLASSES, weights)


def test_median_frequency_balancing():
    # frequencies 0.5, 0.3, 0.2 -> median 0.3 -> weights 0.6, 1, 1.5
    assert class_weights_from_frequencies([500, 300, 200]) == pytest.approx([0.6, 1.0, 1.5])
    # a class with a handful of pixels is clipped; a class with none gets the neutral weight
    weights = class_weights_from_frequencies([1_000_000, 10_000, 1, 0], max_weight=10)
    assert weights == pytest.approx([0.1, 1.0, 10.0, 1.0])
    assert class_weights_from_frequencies(np.array([7, 7])) == [1.0, 1.0]


@pytest.mark.parametrize("counts", [[], [0, 0], [1, -1], [[1, 2]]])
def test_frequency_weights_need_counts(counts):
    with pytest.raises(ValueError):
        class_weights_from_frequencies(counts)
