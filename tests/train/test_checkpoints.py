"""The per-epoch checkpoint callback: files, order of truth (run.json last), best tracking, the CSV log."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seg.train.checkpoints import (
    RunCheckpoint,
    read_log,
    replace_atomically,
    restore_seed_states,
    seed_states,
    truncate_log,
)
from seg.train.keras_env import import_keras
from seg.train.run import RunInfo, read_run_info
from seg.train.spec import ModelSpec, Normalization

keras = import_keras()


def tiny_model(dropout: bool = False, compile: bool = True):
    layers = [keras.Input((4,)), keras.layers.Dense(3)]
    if dropout:
        layers.append(keras.layers.Dropout(0.5))
    model = keras.Sequential([*layers, keras.layers.Dense(2)])
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def fit_once(model, epochs: int = 1) -> None:
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(8, 4)), rng.normal(size=(8, 2)), epochs=epochs, batch_size=4, verbose=0)


def info() -> RunInfo:
    return RunInfo(ModelSpec("unet_small", None, 32, 32, 3, 2), ["background", "a"], Normalization.imagenet())


def weights_of(path):
    model = tiny_model(compile=False)
    model.load_weights(path)
    return [np.asarray(w) for w in model.get_weights()]


def test_every_epoch_writes_its_files_and_best_follows_the_monitor(tmp_path):
    model = tiny_model()
    fit_once(model)
    callback = RunCheckpoint(tmp_path, info(), monitor="val_mean_iou")
    callback.set_model(model)
    saved = []
    for epoch, value in enumerate([0.2, 0.5, 0.4]):
        model.set_weights([w + 1.0 for w in model.get_weights()])  # each epoch's weights differ
        saved.append([np.asarray(w) for w in model.get_weights()])
        callback.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_mean_iou": value})

    run = read_run_info(tmp_path)
    assert run.epochs_done == 3
    assert run.best == {"epoch": 2, "monitor": "val_mean_iou", "value": 0.5}
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "best.weights.h5",
        "epoch-0001.weights.h5",
        "epoch-0002.weights.h5",
        "epoch-0003.weights.h5",
        "last.keras",
    ]  # and no temporary file left behind
    for number, expected in enumerate(saved, start=1):
        for got, want in zip(weights_of(folder / f"epoch-{number:04d}.weights.h5"), expected, strict=True):
            np.testing.assert_array_equal(got, want)
    for got, want in zip(weights_of(folder / "best.weights.h5"), saved[1], strict=True):
        np.testing.assert_array_equal(got, want)
    header, rows = read_log(tmp_path / "log.csv")
    assert header == ["epoch", "loss", "val_mean_iou"]
    assert [(int(r["epoch"]), float(r["val_mean_iou"])) for r in rows] == [(1, 0.2), (2, 0.5), (3, 0.4)]


def test_last_keras_reloads_with_its_optimizer_state(tmp_path):
    model = tiny_model()
    fit_once(model, epochs=2)
    callback = RunCheckpoint(tmp_path, info(), monitor="mean_iou")
    callback.set_model(model)
    callback.on_epoch_end(1, {"loss": 0.3})  # no monitored value: no best
    assert read_run_info(tmp_path).best is None
    assert not (tmp_path / "checkpoints" / "best.weights.h5").exists()
    loaded = keras.saving.load_model(tmp_path / "checkpoints" / "last.keras")
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 4
    for got, want in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    for got, want in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_nan_never_improves_and_a_later_epoch_overwrites_a_stale_log_row(tmp_path):
    model = tiny_model()
    callback = RunCheckpoint(tmp_path, info(), monitor="mean_iou")
    callback.set_model(model)
    callback.on_epoch_end(0, {"loss": 1.0, "mean_iou": float("nan")})
    assert read_run_info(tmp_path).best is None
    callback.on_epoch_end(1, {"loss": 0.5, "mean_iou": 0.1})
    callback.on_epoch_end(1, {"loss": 0.4, "mean_iou": 0.05})  # epoch 2 again (a resumed run): replaces its row
    _, rows = read_log(tmp_path / "log.csv")
    assert [(r["epoch"], r["loss"]) for r in rows] == [("1", "1.0"), ("2", "0.4")]
    assert read_run_info(tmp_path).best["epoch"] == 2


def test_truncate_log_drops_epochs_after_epochs_done(tmp_path):
    model = tiny_model()
    callback = RunCheckpoint(tmp_path, info(), monitor="mean_iou")
    callback.set_model(model)
    for epoch in range(3):
        callback.on_epoch_end(epoch, {"loss": float(epoch)})
    truncate_log(tmp_path / "log.csv", 1)
    header, rows = read_log(tmp_path / "log.csv")
    assert header == ["epoch", "loss"] and [r["epoch"] for r in rows] == ["1"]
    assert (tmp_path / "log.csv").read_text().count("epoch,loss") == 1


def test_replace_atomically_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "best.weights.h5"
    target.write_bytes(b"old")

    def fail(tmp):
        assert tmp.name.endswith(".weights.h5") and tmp.parent == tmp_path
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        replace_atomically(target, fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["best.weights.h5"]


def test_seed_states_round_trip_through_run_json(tmp_path):
    model = tiny_model(dropout=True)
    fit_once(model, epochs=2)
    states = seed_states(model)
    assert len(states) == 1 and states[0][1] > 0  # the dropout generator advanced
    callback = RunCheckpoint(tmp_path, info(), monitor="mean_iou")
    callback.set_model(model)
    callback.on_epoch_end(0, {"loss": 1.0})
    saved = json.loads((tmp_path / "run.json").read_text())["resume_state"]["seed_states"]
    assert saved == states
    fresh = tiny_model(dropout=True)
    assert seed_states(fresh) != states
    restore_seed_states(fresh, saved)
    assert seed_states(fresh) == states
    with pytest.raises(ValueError):
        restore_seed_states(tiny_model(), saved)
