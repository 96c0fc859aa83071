"""The model zoo: every supported (architecture, encoder) pair builds, gives full-size float32 logits and trains a step;
bad names and sizes are refused; encoder weights come from files, ImageNet (through a fetcher seam, never the network
here) or nowhere, and the note says which."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from seg.errors import OptionError, ValidationError
from seg.train.keras_env import import_keras
from seg.train.models import (
    ARCHITECTURES,
    DEFAULT_ENCODER,
    ENCODERS,
    OWN_ENCODER,
    build_model,
    build_model_with_note,
    valid_pairs,
)
from seg.train.models.encoder_weights import IMAGENET_FILES, download_imagenet_weights
from seg.train.spec import ModelSpec

keras = import_keras()

SIZE = 64
CLASSES = 3


def spec(architecture: str, encoder: str | None, *, bands: int = 3, size: int = SIZE, weights: str | None = None):
    return ModelSpec(architecture, encoder, size, size, bands, CLASSES, weights)


def batch(bands: int = 3, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, size, size, bands)).astype(np.float32)
    labels = rng.integers(0, CLASSES, size=(2, size, size)).astype(np.int32)
    return images, labels


def train_one_step(model: keras.Model, bands: int = 3) -> float:
    """One Adam step on a random batch. Eager: a single step does not repay tracing (XLA on CPU takes minutes)."""
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    return float(model.train_on_batch(*batch(bands)))


def offline(encoder: str) -> str:
    """A fetcher that fails like keras.utils.get_file does without network."""
    raise Exception(  # the exact type keras.utils.get_file raises
        f"URL fetch failure on {IMAGENET_FILES[encoder][1]}: None -- [Errno -3] Temporary failure in name resolution"
    )


def must_not_fetch(encoder: str) -> str:
    raise AssertionError(f"ImageNet weights for {encoder} were fetched")


def saved_backbone(tmp_path: Path, name: str, bands: int = 3, suffix: str = ".weights.h5") -> tuple[keras.Model, Path]:
    """A randomly initialised keras.applications backbone and the weights file it was saved to."""
    constructor = {"vgg16": keras.applications.VGG16, "resnet50": keras.applications.ResNet50}.get(
        name, keras.applications.MobileNetV2
    )
    model = constructor(include_top=False, weights=None, input_shape=(SIZE, SIZE, bands))
    path = tmp_path / f"{name}{suffix}"
    if suffix == ".weights.h5":
        model.save_weights(path)
    else:
        write_legacy_h5(model, path)
    return model, path


def write_legacy_h5(model: keras.Model, path: Path) -> None:
    """Weights in the legacy HDF5 layout of keras.applications' ImageNet files (one group per layer, in order)."""
    with h5py.File(path, "w") as f:
        names = [layer.name for layer in model.layers if layer.weights]
        f.attrs["layer_names"] = [n.encode() for n in names]
        for layer in model.layers:
            if not layer.weights:
                continue
            group = f.create_group(layer.name)
            values = [np.asarray(w) for w in (*layer.trainable_weights, *layer.non_trainable_weights)]
            group.attrs["weight_names"] = [f"w{i}".encode() for i in range(len(values))]
            for i, value in enumerate(values):
                group.create_dataset(f"w{i}", data=value)


def encoder_layers(model: keras.Model, encoder: str) -> keras.Model:
    return model.get_layer(f"{encoder}_encoder")


def assert_same_weights(encoder: keras.Model, source: keras.Model) -> None:
    compared = 0
    for layer in encoder.layers:
        if not layer.weights:
            continue
        for got, want in zip(layer.get_weights(), source.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_array_equal(got, want, err_msg=layer.name)
            compared += 1
    assert compared > 10


# --- names -------------------------------------------------------------------------------------------------------


def test_valid_pairs_are_every_encoder_plus_own_encoders():
    pairs = valid_pairs()
    assert len(pairs) == len(set(pairs)) == 6 * len(ENCODERS) + len(OWN_ENCODER)
    for architecture in ARCHITECTURES:
        with_encoder = {e for a, e in pairs if a == architecture}
        expected = set() if architecture == "unet_small" else set(ENCODERS)
        if architecture in OWN_ENCODER:
            expected.add(None)
        assert with_encoder == expected, architecture
    assert {a: DEFAULT_ENCODER[a] for a in ARCHITECTURES} == {
        "unet": None,
        "unet_small": None,
        "fcn8": "vgg16",
        "fcn32": "vgg16",
        "segnet": None,
        "pspnet": "resnet50",
        "deeplabv3plus": "mobilenetv2",
    }
    assert all((a, e) in pairs for a, e in DEFAULT_ENCODER.items())


def test_models_package_imports_no_keras():
    code = "import sys, seg.train.models as m; m.valid_pairs(); print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(
    ("architecture", "encoder", "size", "message"),
    [
        ("unet", None, 48, "multiples of 32"),
        ("unet", None, 0, "multiples of 32"),
        ("linknet", None, 64, "unet, unet_small, fcn8"),
        ("unet", "efficientnet", 64, "vgg16, resnet50, mobilenetv2"),
        ("unet_small", "vgg16", 64, "none (own encoder)"),
        ("fcn8", None, 64, "vgg16, resnet50, mobilenetv2"),
    ],
)
def test_bad_names_and_sizes_raise_option_error(architecture, encoder, size, message):
    with pytest.raises(OptionError, match=re.escape(message)):
        build_model(spec(architecture, encoder, size=size))


def test_size_error_names_the_size():
    with pytest.raises(OptionError) as info:
        build_model(ModelSpec("unet_small", None, 64, 80, 3, CLASSES))
    assert info.value.actual == "64x80"


# --- every pair --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("architecture", "encoder"), valid_pairs(), ids=lambda v: str(v).lower())
def test_every_pair_gives_full_size_float32_logits_and_trains(architecture, encoder):
    model = build_model(spec(architecture, encoder))
    assert model.name == (architecture if encoder is None else f"{architecture}_{encoder}")
    logits = keras.ops.convert_to_numpy(model(batch()[0], training=False))
    assert logits.shape == (2, SIZE, SIZE, CLASSES)
    assert logits.dtype == np.float32
    assert np.isfinite(logits).all()
    assert np.isfinite(train_one_step(model))


@pytest.mark.parametrize(("architecture", "encoder"), [("unet_small", None), ("deeplabv3plus", "mobilenetv2")])
def test_five_band_input(architecture, encoder):
    model = build_model(spec(architecture, encoder, bands=5))
    assert model.input_shape == (None, SIZE, SIZE, 5)
    assert model.output_shape == (None, SIZE, SIZE, CLASSES)
    assert np.isfinite(train_one_step(model, bands=5))


def test_unet_small_is_small():
    assert 100_000 <= build_model(spec("unet_small", None)).count_params() <= 200_000


def test_non_square_input():
    model = build_model(ModelSpec("pspnet", "mobilenetv2", 64, 96, 3, CLASSES))
    assert model.output_shape == (None, 64, 96, CLASSES)


def test_mixed_precision_still_gives_float32_logits():
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_model(spec("unet_small", None))
        assert model.get_layer("classifier").compute_dtype == "float16"
        logits = model(batch()[0], training=False)
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"


# --- encoder weights ---------------------------------------------------------------------------------------------


def test_notes_say_random_initialisation():
    assert build_model_with_note(spec("unet_small", None))[1] == "own encoder: random initialisation"
    assert build_model_with_note(spec("fcn32", "vgg16"))[1] == "encoder vgg16: random initialisation"
    note = build_model_with_note(spec("segnet", None, weights="imagenet"), fetch_imagenet=must_not_fetch)[1]
    assert note.startswith("own encoder: random initialisation (it has no ImageNet weights")


def test_own_encoder_refuses_a_weights_file(tmp_path):
    with pytest.raises(OptionError) as info:
        build_model(spec("unet", None, weights=str(tmp_path / "vgg16.weights.h5")))
    assert info.value.path == str(tmp_path / "vgg16.weights.h5")
    rebuilt = build_model(spec("unet", None, weights=str(tmp_path / "vgg16.weights.h5")), load_encoder_weights=False)
    assert rebuilt.name == "unet"


def test_encoder_weights_from_a_local_file(tmp_path):
    source, path = saved_backbone(tmp_path, "vgg16")
    model, note = build_model_with_note(spec("fcn32", "vgg16", weights=str(path)))
    assert note == f"encoder vgg16: weights from {path}"
    assert_same_weights(encoder_layers(model, "vgg16"), source)
    fresh = encoder_layers(build_model(spec("fcn32", "vgg16")), "vgg16")  # the comparison can fail
    assert not np.array_equal(fresh.get_layer("block1_conv1").get_weights()[0], source.get_weights()[0])


@pytest.mark.filterwarnings("ignore:This model usually expects 1 or 3 input channels")
def test_encoder_weights_from_a_file_of_the_same_band_count(tmp_path):
    source, path = saved_backbone(tmp_path, "vgg16", bands=4)
    model, note = build_model_with_note(spec("fcn32", "vgg16", bands=4, weights=str(path)))
    assert note == f"encoder vgg16: weights from {path}"
    assert_same_weights(encoder_layers(model, "vgg16"), source)


def test_wrong_weights_file_raises_validation_error_naming_it(tmp_path):
    _, path = saved_backbone(tmp_path, "mobilenetv2")
    with pytest.raises(ValidationError) as info:
        build_model(spec("fcn32", "vgg16", weights=str(path)))
    assert info.value.path == str(path)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an HDF5 file")
    with pytest.raises(ValidationError) as info:
        build_model(spec("fcn32", "vgg16", bands=2, weights=str(junk)))
    assert info.value.path == str(junk)
    with pytest.raises(ValidationError, match="not found") as info:
        build_model(spec("fcn32", "vgg16", weights=str(tmp_path / "missing.h5")))
    assert info.value.path == str(tmp_path / "missing.h5")


def test_imagenet_download_failure_falls_back_to_random(caplog):
    asked: list[str] = []

    def fetch(encoder: str) -> str:
        asked.append(encoder)
        return offline(encoder)

    model, note = build_model_with_note(spec("deeplabv3plus", "mobilenetv2", weights="imagenet"), fetch_imagenet=fetch)
    assert asked == ["mobilenetv2"]
    assert note.startswith("encoder mobilenetv2: ImageNet weights could not be downloaded (URL fetch failure on ")
    assert note.endswith("Temporary failure in name resolution); random initialisation")
    assert model.output_shape == (None, SIZE, SIZE, CLASSES)
    assert "could not be downloaded" in caplog.text


def test_imagenet_weights_adapted_to_five_bands(tmp_path):
    source, path = saved_backbone(tmp_path, "vgg16")
    model, note = build_model_with_note(
        spec("fcn32", "vgg16", bands=5, weights="imagenet"), fetch_imagenet=lambda encoder: path
    )
    assert (
        note
        == "encoder vgg16: ImageNet weights (first convolution adapted from 3 to 5 bands: mean RGB kernel repeated)"
    )
    encoder = encoder_layers(model, "vgg16")
    kernel, bias = encoder.get_layer("block1_conv1").get_weights()
    rgb_kernel, rgb_bias = source.get_layer("block1_conv1").get_weights()
    assert kernel.shape == (3, 3, 5, 64)
    expected = np.repeat(rgb_kernel.mean(axis=2, keepdims=True) * 3 / 5, 5, axis=2)
    np.testing.assert_allclose(kernel, expected, rtol=1e-6)
    np.testing.assert_array_equal(bias, rgb_bias)
    for layer in encoder.layers[2:]:
        if not layer.weights:
            continue
        for got, want in zip(layer.get_weights(), source.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_array_equal(got, want, err_msg=layer.name)


def test_cached_imagenet_file_is_used_offline(tmp_path):
    """download_imagenet_weights finds the keras.applications file in the cache (MobileNetV2's has no checksum, so a
    stand-in made here passes); the legacy-HDF5 file loads into the encoder."""
    file_name = IMAGENET_FILES["mobilenetv2"][0]
    (tmp_path / "models").mkdir()
    source, _ = saved_backbone(tmp_path, "mobilenetv2", suffix=".h5")
    (tmp_path / "mobilenetv2.h5").rename(tmp_path / "models" / file_name)
    cached = download_imagenet_weights("mobilenetv2", cache_dir=tmp_path)
    assert Path(cached) == tmp_path / "models" / file_name

    model, note = build_model_with_note(
        spec("pspnet", "mobilenetv2", weights="imagenet"), fetch_imagenet=lambda encoder: cached
    )
    assert note == "encoder mobilenetv2: ImageNet weights"
    assert_same_weights(encoder_layers(model, "mobilenetv2"), source)


# --- rebuilding for trained weights ------------------------------------------------------------------------------


def test_rebuild_without_encoder_weights_then_load_round_trips(tmp_path):
    _, path = saved_backbone(tmp_path, "mobilenetv2")
    trained = build_model(spec("deeplabv3plus", "mobilenetv2", weights=str(path)))
    train_one_step(trained)
    trained.save_weights(tmp_path / "best.weights.h5")

    # never touches encoder weights: a missing file and a failing fetcher go unnoticed
    gone = spec("deeplabv3plus", "mobilenetv2", weights=str(tmp_path / "gone.h5"))
    again = build_model(gone, load_encoder_weights=False, fetch_imagenet=must_not_fetch)
    as_imagenet = spec("deeplabv3plus", "mobilenetv2", weights="imagenet")
    build_model(as_imagenet, load_encoder_weights=False, fetch_imagenet=must_not_fetch)
    images = batch()[0]
    assert not np.allclose(again.predict(images, verbose=0), trained.predict(images, verbose=0))

    again.load_weights(tmp_path / "best.weights.h5")
    assert len(again.weights) == len(trained.weights)
    for got, want in zip(again.weights, trained.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want))
    # same weights, separately traced graphs: equal up to float round-off
    np.testing.assert_allclose(again.predict(images, verbose=0), trained.predict(images, verbose=0), atol=1e-6)


@pytest.mark.parametrize(("architecture", "encoder"), [("pspnet", "mobilenetv2"), ("fcn8", "mobilenetv2")])
def test_whole_model_saves_and_loads_without_custom_objects(tmp_path, architecture, encoder):
    model = build_model(spec(architecture, encoder))
    model.save(tmp_path / "last.keras")
    loaded = keras.saving.load_model(tmp_path / "last.keras")
    images = batch()[0]
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def test_fcn_upsampling_starts_bilinear():
    model = build_model(spec("fcn32", "vgg16"))
    (kernel,) = model.get_layer("score32_up_bilinear").get_weights()
    assert kernel.shape == (64, 64, CLASSES, CLASSES)
    assert kernel[:, :, 0, 1].max() == 0  # classes stay apart
    np.testing.assert_allclose(kernel[:, :, 1, 1], kernel[:, :, 1, 1].T)
    assert kernel[31, 31, 1, 1] == kernel.max()


# --- other backends ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backend_builds_and_trains(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    code = textwrap.dedent(
        """
        import numpy as np
        from seg.train.keras_env import import_keras, backend_name
        from seg.train.models import build_model
        from seg.train.spec import ModelSpec
        keras = import_keras()
        assert backend_name() == "{backend}", backend_name()
        model = build_model(ModelSpec("unet_small", None, 64, 64, 3, 3))
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
        y = np.random.default_rng(0).integers(0, 3, size=(2, 64, 64))
        loss = float(model.train_on_batch(x, y))
        assert np.isfinite(loss), loss
        print("ok")
        """
    ).format(backend=backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "KERAS_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
