"""Training a model on a mask folder into a run folder, and resuming a run that was stopped.

:func:`train` seeds every random generator, scans and checks the data, measures the input normalisation, builds and
compiles the model (Adam, the chosen loss, pixel accuracy and IoU metrics), and runs ``model.fit`` with the test split
as validation. ``run.json`` is written before the first epoch, and :class:`~seg.train.checkpoints.RunCheckpoint` saves
everything after each one.

Resuming is exact on the CPU: the weights and optimizer state of the last completed epoch, the random generators'
state and a data stream that starts at that epoch (its shuffle and augmentation are functions of the seed and the epoch
only) make a resumed run end with the weights an uninterrupted run would have, bit for bit. On a GPU the kernels are not
made deterministic (it costs speed, and some have no deterministic version), so a resumed run is close, not identical.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seg import __version__
from seg.errors import OptionError, OutputExistsError, ValidationError
from seg.outputs import check_writable
from seg.train.keras_env import backend_name, import_keras
from seg.train.run import (
    BEST_WEIGHTS,
    CHECKPOINTS,
    LOG_FILE,
    RUN_FILE,
    RunInfo,
    epoch_weights_name,
    read_run_info,
    write_run_info,
)
from seg.train.spec import ModelSpec

logger = logging.getLogger(__name__)

#: ``mixed_precision`` values: float16 compute on a GPU (auto), always, or never.
MIXED_PRECISION = ("auto", "on", "off")

#: The encoder each architecture gets when ``TrainConfig.encoder`` is left at this value.
DEFAULT = "default"

#: The command-line option of each :class:`TrainConfig` field, for messages.
OPTION_NAMES = {
    "data": "DATA",
    "architecture": "--model",
    "encoder": "--encoder",
    "encoder_weights": "--encoder-weights",
    "size": "--size",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "learning_rate": "--lr",
    "loss": "--loss",
    "class_weights": "--class-weights",
    "seed": "--seed",
    "augment": "--no-augment",
    "mixed_precision": "--mixed-precision",
    "validation_split": "--validation-split",
}

#: Fields that may change when a run is resumed (more epochs: train longer).
RESUMABLE_CHANGES = ("out", "epochs")

Notes = Callable[[str], None] | None
EpochProgress = Callable[[int, int, Mapping[str, float]], None] | None


@dataclass(frozen=True)
class TrainConfig:
    """What to train, on what, and how.

    Args:
        data: a mask folder (``seg convert --to masks``): ``train/`` and ``test/`` splits, or one ``images/`` +
            ``masks/`` pair split by ``validation_split``.
        out: the run folder to write.
        architecture: one of :data:`seg.train.models.ARCHITECTURES`.
        encoder: one of :data:`seg.train.models.ENCODERS`, None for the architecture's own encoder, or ``"default"``
            for :data:`seg.train.models.DEFAULT_ENCODER` of the architecture.
        encoder_weights: ``"imagenet"``, the path of a weights file, or None (random initialisation).
        size: (height, width) the model takes, multiples of 32; None: the images' common size.
        epochs: epochs in all (a resumed run trains up to this).
        batch_size: images per step.
        learning_rate: Adam's learning rate.
        loss: one of :data:`seg.train.losses.LOSSES`.
        class_weights: None, ``"auto"`` (median frequency balancing on the training masks) or one weight per class,
            background first.
        seed: seeds the weights, the shuffle, the augmentation and the validation hold-out.
        augment: random flips, rotations, zoom, brightness and contrast on the training images.
        mixed_precision: ``auto`` (float16 compute when a GPU is visible), ``on`` or ``off``.
        validation_split: fraction of the training images held out for validation when ``data`` has no test split.
    """

    data: Path
    out: Path
    architecture: str
    encoder: str | None = DEFAULT
    encoder_weights: str | None = "imagenet"
    size: tuple[int, int] | None = None
    epochs: int = 10
    batch_size: int = 8
    learning_rate: float = 1e-3
    loss: str = "ce"
    class_weights: str | tuple[float, ...] | None = None
    seed: int = 0
    augment: bool = True
    mixed_precision: str = "auto"
    validation_split: float = 0.0

    def __post_init__(self) -> None:
        from seg.train.models import DEFAULT_ENCODER

        set_field = object.__setattr__.__get__(self)
        set_field("data", Path(self.data))
        set_field("out", Path(self.out))
        if self.encoder == DEFAULT:
            if self.architecture not in DEFAULT_ENCODER:
                raise OptionError(f"unknown architecture {self.architecture!r}", expected=", ".join(DEFAULT_ENCODER))
            set_field("encoder", DEFAULT_ENCODER[self.architecture])
        if self.size is not None:
            set_field("size", (int(self.size[0]), int(self.size[1])))
        if isinstance(self.class_weights, Sequence) and not isinstance(self.class_weights, str):
            set_field("class_weights", tuple(float(w) for w in self.class_weights))
        elif self.class_weights not in (None, "auto"):
            raise OptionError("class weights must be auto, none or a list", actual=self.class_weights)
        for name, value, low in (("epochs", self.epochs, 1), ("batch_size", self.batch_size, 1)):
            if int(value) < low:
                raise OptionError(f"{OPTION_NAMES[name]} must be at least {low}", actual=value)
        if not self.learning_rate > 0:
            raise OptionError("--lr must be positive", actual=self.learning_rate)
        if self.mixed_precision not in MIXED_PRECISION:
            raise OptionError("--mixed-precision must be auto, on or off", actual=self.mixed_precision)
        if not 0.0 <= self.validation_split < 1.0:
            raise OptionError("--validation-split must be in [0, 1)", actual=self.validation_split)

    def training_dict(self) -> dict[str, Any]:
        """The training options as ``run.json`` keeps them (besides the model spec and the data)."""
        weights = self.class_weights
        return {
            "loss": self.loss,
            "class_weights": list(weights) if isinstance(weights, tuple) else weights,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "augment": self.augment,
            "mixed_precision": self.mixed_precision,
            "validation_split": self.validation_split,
        }

    @classmethod
    def from_run(cls, info: RunInfo, out: str | os.PathLike[str], **changes: Any) -> TrainConfig:
        """The configuration a run was started with (from its ``run.json``), with ``changes`` applied."""
        try:
            values = cls._run_values(info, out)
        except (KeyError, TypeError, ValueError) as e:
            raise ValidationError(
                "malformed run file", path=Path(out) / RUN_FILE, expected="run.json of seg train"
            ) from e
        return cls(**{**values, **changes})

    @staticmethod
    def _run_values(info: RunInfo, out: str | os.PathLike[str]) -> dict[str, Any]:
        training = info.training
        weights = training.get("class_weights")
        return {
            "data": Path(info.data["root"]),
            "out": Path(out),
            "architecture": info.model.architecture,
            "encoder": info.model.encoder,
            "encoder_weights": info.model.encoder_weights,
            "size": (info.model.height, info.model.width),
            "epochs": int(training["epochs"]),
            "batch_size": int(training["batch_size"]),
            "learning_rate": float(training["learning_rate"]),
            "loss": str(training["loss"]),
            "class_weights": tuple(weights) if isinstance(weights, list) else weights,
            "seed": int(training["seed"]),
            "augment": bool(training["augment"]),
            "mixed_precision": str(training["mixed_precision"]),
            "validation_split": float(training.get("validation_split", 0.0)),
        }


def differences(config: TrainConfig, started: TrainConfig) -> list[str]:
    """One line per option of ``config`` that differs from the run's (``out`` and ``epochs`` may differ)."""
    lines = []
    for field in dataclasses.fields(TrainConfig):
        if field.name in RESUMABLE_CHANGES:
            continue
        given, before = getattr(config, field.name), getattr(started, field.name)
        if field.name == "data":
            given, before = Path(given).resolve(), Path(before).resolve()
        if given != before:
            name = OPTION_NAMES.get(field.name, field.name)
            lines.append(f"{name} (run: {_shown(field.name, before)}, given: {_shown(field.name, given)})")
    return lines


def _shown(name: str, value: Any) -> str:
    if name == "size" and value is not None:
        return f"{value[1]}x{value[0]}"  # as --size takes it: WIDTHxHEIGHT
    if name == "augment":
        return "on" if value else "off"
    if name in ("encoder", "encoder_weights", "class_weights") and value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value)
    return str(value)


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    verbose: int = 0,
    progress: EpochProgress = None,
    notes: Notes = None,
) -> RunInfo:
    """Train ``config``'s model into ``config.out``, or resume the run there.

    Args:
        config: the data, model and training options.
        resume: continue the run in ``config.out`` after its last completed epoch; every option but ``epochs`` must
            match the run's (more epochs train it longer). A finished run is left as it is.
        overwrite: replace the files of an earlier run in ``config.out`` (without it, a non-empty folder is refused).
        verbose: Keras' progress display (0 silent, 1 progress bar, 2 one line per epoch), on stdout.
        progress: called after every epoch with ``(epoch, epochs, logs)`` (epochs counted from 1).
        notes: called with every note for the user (random initialisation, fixed 0/255 masks, held-out images...).

    Returns:
        The run's ``run.json`` contents after the last epoch (``best`` says which epoch scored best).

    Raises:
        OutputExistsError: ``config.out`` holds files and neither ``resume`` nor ``overwrite`` was given.
        OptionError: an option the data or the model cannot take, or that differs from the resumed run's.
        ValidationError: bad data (see :func:`seg.train.data.scan_folder`), or not a run to resume.
    """
    say = _notes(notes)
    out = Path(config.out)
    started = read_run_info(out) if resume else None
    if started is None:
        _check_out(out, overwrite)

    from seg.train.data import input_pipeline, normalization_for, scan_folder, steps_per_epoch

    input_pipeline()  # a bad SEG_INPUT fails before anything is written
    scan = scan_folder(config.data, validation_split=config.validation_split, seed=config.seed)
    for note in scan.notes:
        say(note)
    height, width = _size(config.size, scan.size)
    spec = ModelSpec(
        architecture=config.architecture,
        encoder=config.encoder,
        height=height,
        width=width,
        bands=scan.bands,
        classes=len(scan.classes),
        encoder_weights=config.encoder_weights,
    )
    from seg.train.models import check_spec

    check_spec(spec)
    steps_per_epoch(len(scan.train), config.batch_size)  # raises when the batch is larger than the training set
    from seg.train.losses import LOSSES  # imports Keras: after the data are known to be good

    if config.loss not in LOSSES:
        raise OptionError(f"unknown loss {config.loss!r}", expected=f"one of {', '.join(LOSSES)}")
    data = {
        "root": str(Path(config.data).resolve()),
        "train": len(scan.train),
        "test": len(scan.test),
        "mask_scale": scan.mask_scale,
        "bands": scan.bands,
        "dtype": scan.dtype,
    }
    if started is not None:
        info = _resumed_info(started, config, spec, data, scan.classes)
        if info.epochs_done >= config.epochs:
            say(f"run already trained {info.epochs_done} of {config.epochs} epochs: nothing to do")
            return info
    else:
        class_weights = _class_weights(config.class_weights, scan)
        if config.class_weights == "auto":
            shown = ", ".join(f"{n} {w:.3g}" for n, w in zip(scan.classes, class_weights or [], strict=True))
            say(f"class weights (auto): {shown}")
        info = RunInfo(
            model=spec,
            classes=list(scan.classes),
            normalization=normalization_for(scan),
            data=data,
            training={**config.training_dict(), "class_weight_values": class_weights},
            seg_version=__version__,
            backend=backend_name(),
            notes=list(scan.notes),
        )
        _clear_run(out)
    if not scan.test:
        say("no validation images: the best epoch is chosen on the training mean IoU (see --validation-split)")
    return _fit(import_keras(), config, info, scan, out, verbose=verbose, progress=progress, say=say)


def _fit(keras: Any, config: TrainConfig, info: RunInfo, scan: Any, out: Path, *, verbose, progress, say) -> RunInfo:
    from seg.train.checkpoints import RunCheckpoint, restore_seed_states, truncate_log
    from seg.train.data import Augment, make_dataset, steps_per_epoch
    from seg.train.losses import make_loss
    from seg.train.metrics import make_metrics
    from seg.train.models import build_model_with_note

    spec, start = info.model, info.epochs_done
    gpus = visible_gpus(keras)
    keras.utils.set_random_seed(config.seed)
    if keras.backend.backend() == "tensorflow" and gpus == 0:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    policy = "mixed_float16" if config.mixed_precision == "on" or (config.mixed_precision == "auto" and gpus) else None
    if start and info.training.get("precision_policy", "float32") != (policy or "float32"):
        raise OptionError(
            "the run was trained with another precision policy: give --mixed-precision on or off",
            path=out,
            expected=info.training.get("precision_policy"),
            actual=policy or "float32",
        )
    info.training["precision_policy"] = policy or "float32"
    with _global_policy(keras, policy), _strategy(keras, gpus):
        model, note = build_model_with_note(spec, load_encoder_weights=start == 0)
        if start == 0:
            say(note)
            info.notes = [*(n for n in info.notes if n != note), note]
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss=make_loss(config.loss, spec.classes, info.training.get("class_weight_values")),
            metrics=make_metrics(spec.classes, info.classes),
        )
        if start:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(out / CHECKPOINTS / epoch_weights_name(start))
            restore_seed_states(model, info.resume_state.get("seed_states", []))
            say(f"resuming after epoch {start} of {config.epochs}")
    truncate_log(out / LOG_FILE, start)
    _restore_best(out, info)
    write_run_info(out, info)

    size = (spec.height, spec.width)
    common = {"classes": spec.classes, "size": size, "normalization": info.normalization, "seed": config.seed}
    common |= {"mask_scale": scan.mask_scale, "bands": spec.bands, "batch_size": config.batch_size}
    stream = make_dataset(
        scan.train,
        training=True,
        augment=Augment() if config.augment else None,
        epochs=config.epochs,
        start_epoch=start,
        **common,
    )
    steps = steps_per_epoch(len(scan.train), config.batch_size)
    if not isinstance(stream, keras.utils.PyDataset):  # tf.data: a short stream raises, not warns
        stream = stream.apply(_assert_cardinality(steps * (config.epochs - start)))
    validation = make_dataset(scan.test, training=False, augment=None, **common) if scan.test else None
    monitor = "val_mean_iou" if validation is not None else "mean_iou"
    callbacks = [RunCheckpoint(out, info, monitor)]
    if progress is not None:
        callbacks.append(_epoch_progress(keras, progress, config.epochs))
    with _global_policy(keras, policy), warnings.catch_warnings():
        # the validation windows' count is unknown until the first pass, and Keras warns then; the training stream's is
        # asserted above
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(
            stream,
            epochs=config.epochs,
            initial_epoch=start,
            steps_per_epoch=steps,
            validation_data=validation,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )
    return info


def _assert_cardinality(batches: int) -> Callable:
    import tensorflow as tf

    return tf.data.experimental.assert_cardinality(batches)


def visible_gpus(keras: Any) -> int:
    """How many GPUs the Keras backend sees."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return sum(device.platform == "gpu" for device in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    return 0


@contextlib.contextmanager
def _global_policy(keras: Any, policy: str | None) -> Iterator[None]:
    """Keras' global dtype policy set to ``policy`` for the block (None: left as it is)."""
    if policy is None:
        yield
        return
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def _strategy(keras: Any, gpus: int) -> contextlib.AbstractContextManager:
    """A ``MirroredStrategy`` scope over every GPU when TensorFlow sees more than one, else nothing."""
    if gpus < 2 or keras.backend.backend() != "tensorflow":
        return contextlib.nullcontext()
    import tensorflow as tf

    return tf.distribute.MirroredStrategy().scope()


def _epoch_progress(keras: Any, progress: Callable[[int, int, Mapping[str, float]], None], epochs: int) -> Any:
    """A Keras callback calling ``progress(epoch, epochs, logs)`` after each epoch (epochs counted from 1)."""

    class EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            progress(epoch + 1, epochs, {k: float(v) for k, v in (logs or {}).items()})

    return EpochProgress()


def _notes(notes: Notes) -> Callable[[str], None]:
    def say(note: str) -> None:
        logger.info(note)
        if notes is not None:
            notes(note)

    return say


def _size(size: tuple[int, int] | None, common: tuple[int, int] | None) -> tuple[int, int]:
    """The model's input size: ``size``, else the images' common size, which must then be a multiple of 32."""
    if size is not None:
        return size
    if common is None:
        raise OptionError("the images differ in size: give the model's input size", expected="--size WxH, e.g. 256x256")
    height, width = common
    if height % 32 or width % 32:
        fit = f"{max(32, width // 32 * 32)}x{max(32, height // 32 * 32)}"
        raise OptionError(
            f"the images are {width}x{height} (width x height), not multiples of 32: give the model's input size",
            expected=f"--size WxH, e.g. {fit}",
        )
    return common


def _class_weights(option: str | tuple[float, ...] | None, scan: Any) -> list[float] | None:
    """None, the given weights, or median-frequency weights from the training masks' pixel counts."""
    if option is None:
        return None
    if option != "auto":
        if len(option) != len(scan.classes):
            raise OptionError(
                "one class weight per class, background first",
                expected=f"{len(scan.classes)} weights ({', '.join(scan.classes)})",
                actual=len(option),
            )
        return list(option)
    from seg.train.data import read_label
    from seg.train.losses import class_weights_from_frequencies

    counts = np.zeros(len(scan.classes), np.int64)
    for sample in scan.train:
        label = read_label(sample.mask, scan.mask_scale)
        counts += np.bincount(label.ravel(), minlength=len(scan.classes))[: len(scan.classes)]
    return class_weights_from_frequencies(counts)


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an existing file, or a folder with files in it, unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError("the run folder is a file", path=out, expected="a folder")
    if out.is_dir() and any(out.iterdir()):
        check_writable(out, overwrite)


def _clear_run(out: Path) -> None:
    """Remove the files an earlier run wrote in ``out`` (only those), and make the folder."""
    for name in (RUN_FILE, LOG_FILE):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    (out / CHECKPOINTS).mkdir(parents=True, exist_ok=True)


def _resumed_info(started: RunInfo, config: TrainConfig, spec: ModelSpec, data: dict, classes: list[str]) -> RunInfo:
    """The run's info, after checking that ``config`` and the data are those it was started with."""
    before = TrainConfig.from_run(started, config.out, epochs=config.epochs)
    given = dataclasses.replace(config, size=(spec.height, spec.width))
    changed = differences(given, before)
    if changed:
        raise OptionError(
            "options differ from the run's; resume with the same options (or start a new run): " + "; ".join(changed),
            path=config.out,
        )
    if started.model != spec or list(started.classes) != list(classes):
        raise ValidationError(
            "the data changed since the run started",
            path=config.data,
            expected=f"{started.model.bands} bands, classes {', '.join(started.classes)}",
            actual=f"{spec.bands} bands, classes {', '.join(classes)}",
        )
    for key in ("train", "test", "mask_scale"):
        if started.data.get(key) != data[key]:
            raise ValidationError(
                f"the data changed since the run started ({key})",
                path=config.data,
                expected=started.data.get(key),
                actual=data[key],
            )
    checkpoint = Path(config.out) / CHECKPOINTS / epoch_weights_name(started.epochs_done)
    if started.epochs_done and not checkpoint.is_file():
        raise ValidationError("the run's last checkpoint is missing", path=checkpoint)
    started.training["epochs"] = config.epochs
    return started


def _restore_best(out: Path, info: RunInfo) -> None:
    """Make ``best.weights.h5`` the weights of the best epoch ``run.json`` names (a kill may have left a later one)."""
    if not info.best:
        (out / CHECKPOINTS / BEST_WEIGHTS).unlink(missing_ok=True)
        return
    from seg.train.checkpoints import replace_atomically

    source = out / CHECKPOINTS / epoch_weights_name(int(info.best["epoch"]))
    if source.is_file():
        replace_atomically(out / CHECKPOINTS / BEST_WEIGHTS, lambda tmp: shutil.copyfile(source, tmp))


def summary(info: RunInfo, out: str | os.PathLike[str]) -> str:
    """One line: the best epoch, its monitored value, and where the run is."""
    best = info.best
    if not best:
        return f"trained {info.epochs_done} epoch(s); run: {out}"
    value = best.get("value")
    shown = "nan" if value is None or math.isnan(value) else f"{value:.4f}"
    return f"best epoch {best['epoch']} of {info.epochs_done}: {best['monitor']} {shown}; run: {out}"
