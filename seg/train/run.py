"""A run directory: ``run.json`` (everything needed to rebuild and feed the model), the CSV log and checkpoints.

Layout::

    RUN/run.json                            see :class:`RunInfo`
    RUN/log.csv                             one row per epoch
    RUN/checkpoints/last.keras              model + optimizer state after the last completed epoch (for --resume)
    RUN/checkpoints/epoch-0001.weights.h5   weights after each epoch
    RUN/checkpoints/best.weights.h5         weights of the best epoch so far

Weights files (``.weights.h5``) load on every Keras backend; ``predict`` and ``evaluate`` use them with the model
rebuilt from the spec.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg.errors import ValidationError
from seg.outputs import atomic_file
from seg.train.spec import ModelSpec, Normalization

RUN_FILE = "run.json"
LOG_FILE = "log.csv"
CHECKPOINTS = "checkpoints"
LAST = "last.keras"
BEST_WEIGHTS = "best.weights.h5"


def epoch_weights_name(epoch: int) -> str:
    """File name of the weights after ``epoch`` (1-based)."""
    return f"epoch-{epoch:04d}.weights.h5"


@dataclass
class RunInfo:
    """The contents of ``run.json``."""

    model: ModelSpec
    classes: list[str]
    normalization: Normalization
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    epochs_done: int = 0
    best: dict[str, Any] | None = None
    seg_version: str = ""
    backend: str = ""
    notes: list[str] = field(default_factory=list)
    #: what resuming needs beyond the weights: ``{"seed_states": [...]}`` (see :mod:`seg.train.checkpoints`)
    resume_state: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seg_version": self.seg_version,
            "backend": self.backend,
            "model": self.model.to_dict(),
            "classes": list(self.classes),
            "normalization": self.normalization.to_dict(),
            "data": self.data,
            "training": self.training,
            "epochs_done": self.epochs_done,
            "best": self.best,
            "notes": list(self.notes),
            "resume_state": self.resume_state,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> RunInfo:
        return cls(
            model=ModelSpec.from_dict(value["model"]),
            classes=[str(name) for name in value["classes"]],
            normalization=Normalization.from_dict(value["normalization"]),
            data=dict(value.get("data") or {}),
            training=dict(value.get("training") or {}),
            epochs_done=int(value.get("epochs_done", 0)),
            best=value.get("best"),
            seg_version=str(value.get("seg_version", "")),
            backend=str(value.get("backend", "")),
            notes=[str(n) for n in value.get("notes") or []],
            resume_state=dict(value.get("resume_state") or {}),
        )


def write_run_info(run: str | os.PathLike[str], info: RunInfo) -> Path:
    """Write ``RUN/run.json`` atomically (a crash leaves the previous file)."""
    path = Path(run) / RUN_FILE
    with atomic_file(path, overwrite=True, mode="w") as out:
        out.write(json.dumps(info.to_dict(), indent=2) + "\n")
    return path


def read_run_info(run: str | os.PathLike[str]) -> RunInfo:
    """Read ``RUN/run.json``, with a one-line error naming the file when it is missing or malformed."""
    path = Path(run) / RUN_FILE
    if not path.is_file():
        raise ValidationError("not a training run", path=run, expected=f"a folder with {RUN_FILE} (seg train -o RUN)")
    try:
        return RunInfo.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValidationError("malformed run file", path=path, expected="run.json written by seg train") from e


@dataclass
class LoadedRun:
    """A run's description and its model with trained weights loaded."""

    path: Path
    info: RunInfo
    model: Any  # keras.Model
    weights: Path


def load_run(run: str | os.PathLike[str], which: str = "best") -> LoadedRun:
    """Rebuild the run's model from its spec and load ``best`` (default) or ``last`` weights (any Keras backend)."""
    from seg.train.models import build_model

    run = Path(run)
    info = read_run_info(run)
    folder = run / CHECKPOINTS
    if which == "best":
        weights = folder / BEST_WEIGHTS
    elif which == "last":
        weights = folder / epoch_weights_name(info.epochs_done)
    else:
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    if not weights.is_file():
        raise ValidationError("run has no trained weights", path=weights, expected="at least one completed epoch")
    model = build_model(info.model, load_encoder_weights=False)
    try:
        model.load_weights(weights)
    except (ValueError, OSError) as e:
        raise ValidationError("weights do not fit the run's model", path=weights, expected=str(info.model)) from e
    return LoadedRun(run, info, model, weights)
