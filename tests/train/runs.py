"""Run folders as ``seg train`` leaves them, made without training: for the predict and evaluate tests."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from seg.train.keras_env import import_keras
from seg.train.run import BEST_WEIGHTS, CHECKPOINTS, RunInfo, epoch_weights_name, write_run_info
from seg.train.spec import ModelSpec, Normalization


def write_untrained_run(run: Path, spec: ModelSpec, classes: list[str], seed: int = 0) -> Path:
    """``run`` with run.json and the same seeded, untrained weights as its best and its first epoch's."""
    from seg.train.models import build_model

    import_keras().utils.set_random_seed(seed)
    model = build_model(spec, load_encoder_weights=False)
    (run / CHECKPOINTS).mkdir(parents=True)
    model.save_weights(run / CHECKPOINTS / BEST_WEIGHTS)
    model.save_weights(run / CHECKPOINTS / epoch_weights_name(1))
    write_run_info(run, RunInfo(spec, classes, Normalization.imagenet(), epochs_done=1))
    return run


def stored(path: Path) -> dict[str, np.ndarray]:
    """Every array of a weights file (model and optimizer state), by its path in the file."""
    arrays: dict[str, np.ndarray] = {}

    def keep(name: str, item: object) -> None:  # returning anything but None would stop the walk
        if isinstance(item, h5py.Dataset):
            arrays[name] = item[()]

    with h5py.File(path, "r") as handle:
        handle.visititems(keep)
    return arrays
