"""Saving a run after every epoch, so that a killed training loses at most the epoch in progress.

After each epoch :class:`RunCheckpoint` writes, each file atomically (a temporary name in the same folder, then
``os.replace``), in this order:

1. ``checkpoints/epoch-NNNN.weights.h5``: the model's weights and the optimizer's state after epoch NNNN (1-based);
2. ``checkpoints/last.keras``: the whole model, compiled, with its optimizer (``keras.saving.load_model`` reloads it);
3. ``checkpoints/best.weights.h5``: a copy of the epoch's weights when the monitored value improved;
4. ``log.csv``: every epoch's loss and metrics, one row per epoch;
5. ``run.json``: ``epochs_done``, ``best`` and the model's random-generator state.

``run.json`` goes last, so ``epochs_done`` never names an epoch whose files are not all there; a run killed between
two writes resumes from the previous epoch's complete files (:func:`seg.train.fit.train` with ``resume``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seg.outputs import atomic_file
from seg.train.keras_env import import_keras
from seg.train.run import BEST_WEIGHTS, CHECKPOINTS, LAST, LOG_FILE, RunInfo, epoch_weights_name, write_run_info

keras = import_keras()


def replace_atomically(path: Path, write: Any) -> Path:
    """Call ``write(tmp)`` with a temporary path beside ``path`` that keeps its suffix, then rename it to ``path``.

    Keras picks the file format from the name (``.keras``, ``.weights.h5``), so the temporary name ends like ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        os.unlink(tmp)  # Keras refuses some existing files; it creates its own
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_log(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a ``log.csv`` (empty when the file does not exist)."""
    if not path.is_file():
        return [], []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_log(path: Path, header: list[str], rows: list[Mapping[str, Any]]) -> None:
    """Write ``log.csv`` atomically: the header once, then one row per epoch."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_file(path, overwrite=True, mode="w") as out:
        out.write(text.getvalue())


def truncate_log(path: Path, epochs_done: int) -> None:
    """Drop the rows of epochs after ``epochs_done`` (logged by a run killed before its ``run.json`` was written)."""
    header, rows = read_log(path)
    if header:
        write_log(path, header, [row for row in rows if int(row["epoch"]) <= epochs_done])


def seed_states(model: Any) -> list[list[int]]:
    """The state of every random generator of ``model`` (dropout...), in layer order.

    Keras does not save them with the weights; :func:`restore_seed_states` puts them back on resume, so that the
    random draws after resuming are those of an uninterrupted run.
    """
    return [
        [int(v) for v in keras.ops.convert_to_numpy(generator.state).ravel()]
        for layer in model._flatten_layers()
        for generator in getattr(layer, "_seed_generators", [])
    ]


def restore_seed_states(model: Any, states: list[list[int]]) -> None:
    """Put back the generator states saved by :func:`seed_states` (same model, same layer order)."""
    generators = [g for layer in model._flatten_layers() for g in getattr(layer, "_seed_generators", [])]
    if len(generators) != len(states):
        raise ValueError(f"the model has {len(generators)} random generators, the run saved {len(states)}")
    for generator, state in zip(generators, states, strict=True):
        generator.state.assign(keras.ops.convert_to_tensor(state, dtype=generator.state.dtype))


def improved(value: float | None, best: float | None) -> bool:
    """True when ``value`` beats ``best`` (higher is better; NaN never improves)."""
    if value is None or math.isnan(value):
        return False
    return best is None or value > best


class RunCheckpoint(keras.callbacks.Callback):
    """Writes a run's checkpoints, log and ``run.json`` after every epoch (see the module docstring).

    Args:
        run: the run folder.
        info: the run's description; its ``epochs_done``, ``best`` and ``resume_state`` are updated and written.
        monitor: the log key of the value to maximise (``val_mean_iou``, or ``mean_iou`` without validation).
    """

    def __init__(self, run: str | os.PathLike[str], info: RunInfo, monitor: str) -> None:
        super().__init__()
        self.run = Path(run)
        self.info = info
        self.monitor = monitor
        self.folder = self.run / CHECKPOINTS

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        number = epoch + 1
        logs = {key: float(value) for key, value in (logs or {}).items()}
        weights = replace_atomically(self.folder / epoch_weights_name(number), self.model.save_weights)
        replace_atomically(self.folder / LAST, self.model.save)
        best = self.info.best or {}
        value = logs.get(self.monitor)
        if improved(value, best.get("value")):
            replace_atomically(self.folder / BEST_WEIGHTS, lambda tmp: shutil.copyfile(weights, tmp))
            self.info.best = {"epoch": number, "monitor": self.monitor, "value": value}
        self._append_log(number, logs)
        self.info.epochs_done = number
        self.info.resume_state = {"seed_states": seed_states(self.model)}
        write_run_info(self.run, self.info)

    def _append_log(self, number: int, logs: Mapping[str, float]) -> None:
        path = self.run / LOG_FILE
        header, rows = read_log(path)
        if not header:
            header = ["epoch", *logs]
        rows = [row for row in rows if int(row["epoch"]) < number]
        write_log(path, header, [*rows, {"epoch": number, **{k: repr(v) for k, v in logs.items()}}])
