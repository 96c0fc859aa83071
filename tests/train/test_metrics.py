"""Streaming segmentation metrics: against numpy over several batches, reset, inside fit/evaluate, save and reload."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg.train.confusion import confusion_matrix, scores
from seg.train.keras_env import import_keras
from seg.train.losses import make_loss
from seg.train.metrics import (
    ClassIoU,
    ConfusionMatrixMetric,
    MeanIoU,
    PixelAccuracy,
    class_metric_names,
    make_metrics,
)

keras = import_keras()

CLASSES = 4
NAMES = ["background", "Oil tank", "oil-tank", "ship"]
METRIC_NAMES = ["pixel_accuracy", "mean_iou", "iou_background", "iou_oil_tank", "iou_oil_tank_2", "iou_ship"]


def random_batch(rng, shape=(2, 6, 6), classes=CLASSES, absent=None):
    labels = rng.integers(0, classes, shape).astype(np.int32)
    logits = rng.normal(size=(*shape, classes)).astype(np.float32)
    if absent is not None:  # a class in neither truth nor prediction
        labels[labels == absent] = 0
        logits[..., absent] = -100.0
    return labels, logits


def results(metrics):
    return {m.name: float(keras.ops.convert_to_numpy(m.result())) for m in metrics}


def expected(labels_list, logits_list, names=NAMES):
    truth = np.concatenate([labels.ravel() for labels in labels_list])
    pred = np.concatenate([np.argmax(logits, axis=-1).ravel() for logits in logits_list])
    reference = scores(confusion_matrix(truth, pred, len(names)), names)
    values = {"pixel_accuracy": reference["pixel_accuracy"], "mean_iou": reference["mean_iou"]}
    for metric_name, name in zip(class_metric_names(names), names, strict=True):
        iou = reference["per_class_iou"][name]
        values[metric_name] = math.nan if iou is None else iou
    return values


def assert_close(actual, wanted):
    assert actual.keys() == wanted.keys()
    for key, value in wanted.items():
        if math.isnan(value):
            assert math.isnan(actual[key]), key
        else:
            assert actual[key] == pytest.approx(value, abs=1e-6), key


def test_make_metrics_names_and_types():
    metrics = make_metrics(CLASSES, NAMES)
    assert [m.name for m in metrics] == METRIC_NAMES
    assert isinstance(metrics[0], PixelAccuracy) and isinstance(metrics[1], MeanIoU)
    assert all(isinstance(m, ClassIoU) for m in metrics[2:])
    assert [m.class_id for m in metrics[2:]] == [0, 1, 2, 3]
    assert all(isinstance(m, ConfusionMatrixMetric) for m in metrics)
    with pytest.raises(ValueError, match="class names"):
        make_metrics(3, NAMES)


def test_class_metric_names_are_safe_and_unique():
    names = class_metric_names(["Background", "Oil tank", "oil-tank", "oil tank", "", "★", "a_2", "a", "a"])
    assert names == [
        "iou_background",
        "iou_oil_tank",
        "iou_oil_tank_2",
        "iou_oil_tank_3",
        "iou_class4",
        "iou_class5",
        "iou_a_2",
        "iou_a",
        "iou_a_8",
    ]
    assert all(name.isidentifier() for name in names)
    assert class_metric_names(["x", "x_1", "x"]) == ["iou_x", "iou_x_1", "iou_x_2"]
    assert len(set(class_metric_names(["a", "a_1", "a", "a_2"]))) == 4


@pytest.mark.parametrize("label_shape", ["BHW", "BHW1"])
def test_metrics_accumulate_over_batches_like_numpy(label_shape):
    rng = np.random.default_rng(0)
    metrics = make_metrics(CLASSES, NAMES)
    batches = [random_batch(rng, absent=2) for _ in range(4)]  # class 2 never appears: NaN IoU, left out of the mean
    for labels, logits in batches:
        for metric in metrics:
            metric.update_state(labels[..., None] if label_shape == "BHW1" else labels, logits)
    values = results(metrics)
    wanted = expected([b[0] for b in batches], [b[1] for b in batches])
    assert math.isnan(wanted["iou_oil_tank_2"])
    assert_close(values, wanted)


def test_labels_outside_the_classes_are_not_counted():
    rng = np.random.default_rng(1)
    labels, logits = random_batch(rng)
    ignored = labels.copy()
    ignored[:, :2] = 255
    ignored[:, 2, 0] = -1
    metric = ConfusionMatrixMetric(CLASSES)
    metric.update_state(ignored, logits)
    kept = (ignored >= 0) & (ignored < CLASSES)
    cm = confusion_matrix(labels[kept], np.argmax(logits, -1)[kept], CLASSES)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(metric.result()), cm)


def test_reset_state_forgets_everything():
    rng = np.random.default_rng(2)
    metrics = make_metrics(CLASSES, NAMES)
    first, second = random_batch(rng), random_batch(rng)
    for metric in metrics:
        metric.update_state(*first)
    for metric in metrics:
        metric.reset_state()
    empty = results(metrics)
    assert empty["pixel_accuracy"] == 0.0 and empty["mean_iou"] == 0.0
    assert all(math.isnan(empty[name]) for name in METRIC_NAMES[2:])
    for metric in metrics:
        metric.update_state(*second)
    assert_close(results(metrics), expected([second[0]], [second[1]]))


def test_sample_weights_weigh_the_counts():
    rng = np.random.default_rng(3)
    labels, logits = random_batch(rng, shape=(3, 4, 5))
    pred = np.argmax(logits, -1)
    per_image = np.array([0.0, 1.0, 2.0], np.float32)
    metric = ConfusionMatrixMetric(CLASSES)
    metric.update_state(labels, logits, sample_weight=per_image)
    wanted = sum(w * confusion_matrix(labels[i], pred[i], CLASSES) for i, w in enumerate(per_image))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(metric.result()), wanted)

    per_pixel = rng.integers(0, 3, labels.shape).astype(np.float32)
    metric.reset_state()
    metric.update_state(labels, logits, sample_weight=per_pixel[..., None])
    wanted = np.zeros((CLASSES, CLASSES))
    np.add.at(wanted, (labels.ravel(), pred.ravel()), per_pixel.ravel())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(metric.result()), wanted)


def test_class_iou_checks_its_class():
    with pytest.raises(ValueError, match="class_id"):
        ClassIoU(3, 3)
    assert ClassIoU(3, 1).name == "iou_class1"


# --- inside Keras ---------------------------------------------------------------------------------------------------


def tiny_model(jit_compile=False):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    logits = keras.layers.Conv2D(CLASSES, 1)(inputs)
    model = keras.Model(inputs, keras.layers.Activation("linear", dtype="float32")(logits))
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=make_loss("ce", CLASSES),
        metrics=make_metrics(CLASSES, NAMES),
        jit_compile=jit_compile,
    )
    return model


def tiny_data(seed):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(6, 16, 16, 3)).astype(np.float32)
    labels = (np.argmax(images, axis=-1) + (images[..., 0] > 1.0)).astype(np.int32)  # classes 0..3
    return images, labels


def test_metrics_inside_fit_and_evaluate():
    images, labels = tiny_data(0)
    val_images, val_labels = tiny_data(1)
    model = tiny_model()
    history = model.fit(images, labels, batch_size=4, epochs=2, validation_data=(val_images, val_labels), verbose=0)
    assert set(history.history) == {"loss", *METRIC_NAMES, "val_loss", *(f"val_{n}" for n in METRIC_NAMES)}
    assert len(history.history["val_mean_iou"]) == 2

    logs = model.evaluate(val_images, val_labels, batch_size=4, return_dict=True, verbose=0)
    predicted = model.predict(val_images, batch_size=4, verbose=0)
    wanted = expected([val_labels], [predicted])
    assert_close({key: logs[key] for key in METRIC_NAMES}, wanted)
    # the epoch's validation numbers are the same streaming result over the two validation batches
    assert history.history["val_mean_iou"][-1] == pytest.approx(wanted["mean_iou"], abs=1e-6)


@pytest.mark.slow
def test_loss_and_metrics_compile_with_xla():
    # TensorFlow compiles with XLA by default on a GPU (jit_compile="auto"): the scatter-based counts must compile
    images, labels = tiny_data(3)
    model = tiny_model(jit_compile=True)
    history = model.fit(images, labels, batch_size=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    logs = model.evaluate(images, labels, batch_size=3, return_dict=True, verbose=0)
    assert_close({key: logs[key] for key in METRIC_NAMES}, expected([labels], [model(images).numpy()]))


def test_a_model_compiled_with_the_metrics_saves_and_reloads(tmp_path):
    images, labels = tiny_data(2)
    model = tiny_model()
    model.fit(images, labels, batch_size=3, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    logs = reloaded.evaluate(images, labels, batch_size=3, return_dict=True, verbose=0)
    assert set(logs) == {"loss", *METRIC_NAMES}
    assert_close(
        {key: logs[key] for key in METRIC_NAMES},
        expected([labels], [reloaded.predict(images, batch_size=3, verbose=0)]),
    )


def test_metric_configs_round_trip():
    for metric in make_metrics(CLASSES, NAMES):
        rebuilt = type(metric).from_config(metric.get_config())
        assert rebuilt.get_config() == metric.get_config()
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(ClassIoU(5, 2, name="iou_x")))
    assert (type(rebuilt), rebuilt.classes, rebuilt.class_id, rebuilt.name) == (ClassIoU, 5, 2, "iou_x")
