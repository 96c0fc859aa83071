"""``seg predict``: a trained run's class masks, overlays and predicted objects for a folder of images.

Output folder ``DIR``::

    DIR/predict.json             the settings (run, weights and their SHA-256, images, overlap, min_area, classes)
    DIR/classes.json             {"0": "background", "1": ...}, as in mask folders
    DIR/masks/<key>.png          class indices (mode L; I;16 beyond 256 classes), the image's size
    DIR/overlays/<key>.jpg       the image with its classes blended over it and outlined
    DIR/objects/<key>.json       the image's row, predicted objects, class coverage and mean confidence
    DIR/dataset/                 every image's objects as a seg Dataset folder (``seg curate --predictions``,
                                 ``seg annotate push --predictions``); ``file_name`` is relative to the image folder
    DIR/index.html               contact sheet of the overlays, least confident first
    DIR/summary.json             counts, class coverage, mean confidence, skipped images

``<key>`` is the image's path below IMAGES without its suffix (in a split mask folder, ``<split>/<path below
images/>``). Every file is written atomically; an image is done when its mask exists, so it is written last.

Resuming: running again into the same ``DIR`` with the same settings predicts only the images without a mask (and
objects file); the others' objects are read back from ``DIR/objects/<key>.json``, and the dataset, contact sheet and
summary are rebuilt over all of them. A ``DIR`` that is neither empty nor such an output (or one made with other
settings) is refused unless ``overwrite``, which deletes it first.

Inputs: files with an image suffix (:data:`seg.dataset.images.IMAGE_SUFFIXES`) below IMAGES, hidden files and folders
and the output folder left out; other files are ignored (counted in the summary). An image that cannot be read
(truncated, not an image, too large) or whose name without suffix repeats another's is skipped with a note in
``summary.json`` and the contact sheet (``on_error="skip"``, the default) or stops the run (``"raise"``). An image
whose band count is not the run's always stops the run: the run does not fit those images.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seg.dataset.images import IMAGE_SUFFIXES
from seg.dataset.problems import Policy, Problems
from seg.errors import OptionError, OutputExistsError, SegError, ValidationError
from seg.outputs import atomic_file
from seg.progress import Counted, Progress
from seg.train.run import LoadedRun

logger = logging.getLogger(__name__)

SETTINGS_FILE = "predict.json"
SUMMARY_FILE = "summary.json"
INDEX_FILE = "index.html"
CLASSES_FILE = "classes.json"
MASKS, OVERLAYS, OBJECTS, DATASET = "masks", "overlays", "objects", "dataset"
#: Settings that must match for a folder to be resumed.
RESUME_KEYS = ("weights_sha256", "images", "overlap", "min_area", "classes")


@dataclass(frozen=True)
class InputImage:
    """One image to predict.

    Attributes:
        path: the file.
        root: the folder ``file_name`` is relative to.
        file_name: posix path below ``root``.
        key: output name without suffix (``file_name`` without suffix, split-prefixed in a split mask folder).
        split: the split folder of a split mask folder, else None.
    """

    path: Path
    root: Path
    file_name: str
    key: str
    split: str | None = None

    @property
    def image_id(self) -> str:
        return self.file_name[: -len(Path(self.file_name).suffix)] if Path(self.file_name).suffix else self.file_name


def find_images(
    images: str | os.PathLike[str], exclude: str | os.PathLike[str] | None = None
) -> tuple[list[InputImage], Path | None, int]:
    """The images to predict under ``images``.

    ``images`` may be one file, a folder (searched recursively), or a mask folder (its ``images/``, or each
    ``<split>/images/``).

    Returns:
        The images in sorted order, the folder their ``file_name`` is relative to (None for a split mask folder,
        whose images each carry their ``root``), and how many other files were ignored.
    """
    from seg.formats.masks_read import find_layouts

    source = Path(images)
    if source.is_file():
        return [InputImage(source, source.parent, source.name, source.stem)], source.parent, 0
    if not source.is_dir():
        raise ValidationError("no such image file or folder", path=source)
    skip = None if exclude is None else Path(exclude).resolve()
    layouts = find_layouts(source)
    if not layouts:
        found, ignored = _walk(source, skip)
        return [InputImage(source / f, source, f, _stem(f)) for f in found], source, ignored
    listed: list[InputImage] = []
    ignored = 0
    for split, folder in layouts:
        root = folder / "images"
        found, extra = _walk(root, skip)
        ignored += extra
        prefix = "" if split is None else f"{split}/"
        listed.extend(InputImage(root / f, root, f, prefix + _stem(f), split) for f in found)
    return listed, (layouts[0][1] / "images" if layouts[0][0] is None else None), ignored


def _stem(file_name: str) -> str:
    return file_name[: -len(Path(file_name).suffix)]


def _walk(folder: Path, skip: Path | None) -> tuple[list[str], int]:
    names, ignored = [], 0
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and (skip is None or (here / d).resolve() != skip)
        )
        for name in filenames:
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                names.append((here / name).relative_to(folder).as_posix())
            else:
                ignored += 1
    return sorted(names), ignored


def predict_images(
    run: str | os.PathLike[str] | LoadedRun,
    images: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    weights: str = "best",
    overlap: float = 0.25,
    batch_size: int = 4,
    min_area: int = 4,
    overwrite: bool = False,
    on_error: Policy = "skip",
    progress: Progress = None,
) -> dict:
    """Predict every image of ``images`` with a trained run and write masks, overlays and a Dataset to ``out``.

    Args:
        run: a ``seg train`` run folder, or a :class:`seg.train.run.LoadedRun`.
        images: an image file, a folder of images (recursively), or a mask folder.
        out: the output folder (see the module's description); resumed when it holds this same prediction.
        weights: ``best`` or ``last`` (ignored when ``run`` is already loaded).
        overlap: sliding-window overlap for images larger than the run's input size.
        batch_size: windows per forward pass.
        min_area: predicted objects of fewer pixels are dropped.
        overwrite: delete an existing ``out`` and start again.
        on_error: ``skip`` unreadable images (listed in the summary) or ``raise`` at the first.
        progress: wraps the loop over images.

    Returns:
        The summary written to ``summary.json``.

    Raises:
        OutputExistsError: ``out`` exists, is not this prediction's output, and ``overwrite`` is false.
        OptionError: a bad overlap, batch size or min area, or ``out`` that would hold the inputs.
        ValidationError: not a run, no images, or an image with another band count than the run's.
        ImageError: an unreadable image under ``on_error="raise"``.
    """
    from seg.train.run import load_run

    _check_options(overlap, batch_size, min_area, weights)
    started = time.monotonic()
    out = Path(out)
    source = Path(images)
    run_path = run.path if isinstance(run, LoadedRun) else Path(run)
    _refuse_inputs_inside(out, source, run_path)
    _refuse_foreign(out, overwrite)
    items, image_root, ignored = find_images(source, exclude=out)
    if not items:
        raise ValidationError(
            "no images to predict", path=source, expected=f"files ending in {', '.join(IMAGE_SUFFIXES)}"
        )
    loaded = run if isinstance(run, LoadedRun) else load_run(run, weights)
    info = loaded.info
    classes = list(info.classes)
    settings = {
        "run": str(Path(loaded.path).resolve()),
        "weights": weights if not isinstance(run, LoadedRun) else Path(loaded.weights).name,
        "weights_file": str(loaded.weights),
        "weights_sha256": _sha256(Path(loaded.weights)),
        "images": str(source.resolve()),
        "overlap": float(overlap),
        "min_area": int(min_area),
        "tile": [info.model.height, info.model.width],
        "classes": classes,
    }
    resumed_folder = _prepare(out, settings, overwrite)
    problems = Problems(on_error)
    items = _unique(items, problems)
    predictor = _Predictor(loaded, out, classes, overlap, batch_size, min_area)
    records: list[dict] = []
    predicted = resumed = 0
    for item in (progress or iter)(Counted(items, len(items))):
        record = _finished(out, item) if resumed_folder else None
        if record is not None:
            resumed += 1
        else:
            try:
                record = predictor.predict(item)
            except SegError as error:
                if isinstance(error, ValidationError):  # another band count: the run does not fit these images
                    raise
                problems.handle(error)
                continue
            predicted += 1
        records.append(record)
    summary = _finish(out, records, classes, image_root, settings, problems, ignored, predicted, resumed)
    summary["seconds"] = round(time.monotonic() - started, 2)
    _write_json(out / SUMMARY_FILE, summary)
    logger.info(
        "%s: %d images (%d predicted, %d resumed, %d skipped)",
        out,
        len(records),
        predicted,
        resumed,
        len(problems.skipped),
    )
    return summary


def _check_options(overlap: float, batch_size: int, min_area: int, weights: str) -> None:
    if not 0 <= overlap < 1:
        raise OptionError("overlap must lie in [0, 1)", actual=overlap)
    if batch_size < 1:
        raise OptionError("batch size must be at least 1", actual=batch_size)
    if min_area < 0:
        raise OptionError("min area must be at least 0", actual=min_area)
    if weights not in ("best", "last"):
        raise OptionError("unknown weights", expected="best or last", actual=weights)


def _refuse_inputs_inside(out: Path, *inputs: Path) -> None:
    """``out`` must not be an input or hold one: --overwrite deletes it, and its files would become inputs."""
    target = out.resolve()
    for path in inputs:
        resolved = path.resolve()
        if resolved == target or target in resolved.parents:
            raise OptionError(
                "the output folder would hold the inputs",
                path=out,
                expected="a folder of its own",
                actual=f"contains {path}",
            )


def _refuse_foreign(out: Path, overwrite: bool) -> None:
    """Refuse early (before loading a model) an output that is a file or a non-empty folder of something else."""
    if overwrite or not out.exists():
        return
    if out.is_dir() and ((out / SETTINGS_FILE).is_file() or not any(out.iterdir())):
        return
    raise OutputExistsError("output exists and is not a seg predict folder; pass --overwrite to replace it", path=out)


def _prepare(out: Path, settings: dict, overwrite: bool) -> bool:
    """Make ``out`` ready; True when it holds earlier output of these same settings (to resume)."""
    if out.exists() and overwrite:
        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)
        else:
            out.unlink()
    if out.is_dir() and (out / SETTINGS_FILE).is_file():
        try:
            before = json.loads((out / SETTINGS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise OutputExistsError(
                "unreadable predict settings; pass --overwrite to start again", path=out / SETTINGS_FILE
            ) from e
        differ = [k for k in RESUME_KEYS if not isinstance(before, dict) or before.get(k) != settings[k]]
        if differ:
            raise OutputExistsError(
                "output holds predictions made with other settings; pass --overwrite to replace them",
                path=out,
                expected=", ".join(f"{k}={before.get(k) if isinstance(before, dict) else None}" for k in differ),
                actual=", ".join(f"{k}={settings[k]}" for k in differ),
            )
        logger.info("%s: resuming", out)
        return True
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / SETTINGS_FILE, settings)
    _write_json(out / CLASSES_FILE, {str(i): name for i, name in enumerate(settings["classes"])})
    return False


def _unique(items: list[InputImage], problems: Problems) -> list[InputImage]:
    """Drop (through ``problems``) images whose output name or image id repeats an earlier image's."""
    keys: dict[str, InputImage] = {}
    ids: dict[str, InputImage] = {}
    kept = []
    for item in items:
        twin = keys.get(item.key.lower()) or ids.get(item.image_id)
        if twin is not None:
            problems.handle(
                ValidationError(
                    "another image has the same name without suffix",
                    path=item.path,
                    expected="one image per name",
                    actual=f"also {twin.path}",
                )
            )
            continue
        keys[item.key.lower()] = ids[item.image_id] = item
        kept.append(item)
    return kept


def _finished(out: Path, item: InputImage) -> dict | None:
    """The record of an image predicted by an earlier run into ``out``, or None."""
    mask, objects = out / MASKS / f"{item.key}.png", out / OBJECTS / f"{item.key}.json"
    if not (mask.is_file() and objects.is_file()):
        return None
    try:
        record = json.loads(objects.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("image", {}).get("file_name") != item.file_name:
        return None
    return record


def image_probabilities(
    loaded: LoadedRun, path: Path, *, overlap: float = 0.25, batch_size: int = 4
) -> tuple[npt.NDArray, npt.NDArray[np.float32]]:
    """Read one image, check it against the run, and return its pixels and the model's (H, W, classes) softmax
    probabilities (a sliding window over images larger than the run's input size)."""
    from seg.train.rasters import read_input
    from seg.train.sliding import predict_probabilities

    info = loaded.info
    pixels = read_input(path)
    if pixels.shape[-1] != info.model.bands:
        raise ValidationError(
            "image has another band count than the run was trained on",
            path=path,
            expected=info.model.bands,
            actual=pixels.shape[-1],
        )
    probabilities = predict_probabilities(
        loaded.model,
        info.normalization.apply(pixels),
        tile=(info.model.height, info.model.width),
        overlap=overlap,
        batch_size=batch_size,
    )
    if probabilities.shape[-1] != len(info.classes):
        raise ValidationError(
            "model output does not match the run's classes",
            path=loaded.path,
            expected=len(info.classes),
            actual=probabilities.shape[-1],
        )
    return pixels, probabilities


class _Predictor:
    """Predicts one image and writes its overlay, objects and mask."""

    def __init__(
        self, loaded: LoadedRun, out: Path, classes: list[str], overlap: float, batch_size: int, min_area: int
    ):
        self.loaded, self.out, self.classes = loaded, out, classes
        self.overlap, self.batch_size, self.min_area = overlap, batch_size, min_area

    def predict(self, item: InputImage) -> dict:
        from seg.train.overlays import overlay
        from seg.train.predictions import predicted_objects

        pixels, probabilities = image_probabilities(
            self.loaded, item.path, overlap=self.overlap, batch_size=self.batch_size
        )
        labels = probabilities.argmax(axis=-1)
        height, width = labels.shape
        row: dict[str, Any] = {"image_id": item.image_id, "file_name": item.file_name, "width": width, "height": height}
        if item.split is not None:
            row.update(split=item.split, root=str(item.root))
        record = {
            "key": item.key,
            "image": row,
            "coverage": (np.bincount(labels.ravel(), minlength=len(self.classes)) / labels.size).tolist(),
            "confidence": float(probabilities.max(axis=-1).mean(dtype=np.float64)),
            "objects": predicted_objects(probabilities, self.classes, min_area=self.min_area, labels=labels),
        }
        _write_jpeg(self.out / OVERLAYS / f"{item.key}.jpg", overlay(pixels, labels, self.classes))
        _write_json(self.out / OBJECTS / f"{item.key}.json", record)
        _write_mask(self.out / MASKS / f"{item.key}.png", labels, len(self.classes))  # last: marks the image done
        return record


def _finish(
    out: Path,
    records: list[dict],
    classes: list[str],
    image_root: Path | None,
    settings: dict,
    problems: Problems,
    ignored: int,
    predicted: int,
    resumed: int,
) -> dict:
    """Write the dataset, the contact sheet and return the summary."""
    from seg.dataset.store import save_dataset
    from seg.train.overlays import write_contact_sheet
    from seg.train.predictions import predictions_dataset

    dataset = predictions_dataset(
        [r["image"] for r in records],
        {r["image"]["image_id"]: r["objects"] for r in records},
        classes,
        image_root=None if image_root is None else image_root.resolve(),
    )
    save_dataset(dataset, out / DATASET, overwrite=True)
    pixels = np.array([r["image"]["width"] * r["image"]["height"] for r in records], np.float64)
    total = float(pixels.sum()) or 1.0
    coverage = np.array([r["coverage"] for r in records], np.float64).reshape(-1, len(classes))
    confidence = np.array([r["confidence"] for r in records], np.float64)
    summary = {
        "out": str(out),
        "run": settings["run"],
        "weights": settings["weights_file"],
        "images": len(records),
        "predicted": predicted,
        "resumed": resumed,
        "skipped": problems.to_records(),
        "ignored_files": ignored,
        "objects": len(dataset.objects),
        "classes": classes,
        "coverage": dict(zip(classes, (pixels @ coverage / total).tolist(), strict=True)),
        "mean_confidence": float(pixels @ confidence / total) if records else None,
        "tile": settings["tile"],
        "overlap": settings["overlap"],
        "min_area": settings["min_area"],
    }
    entries = [
        {
            "key": r["key"],
            "file_name": r["image"]["file_name"]
            if "split" not in r["image"]
            else f"{r['image']['split']}/{r['image']['file_name']}",
            "width": r["image"]["width"],
            "height": r["image"]["height"],
            "confidence": r["confidence"],
            "coverage": r["coverage"],
            "objects": len(r["objects"]),
        }
        for r in records
    ]
    write_contact_sheet(
        out / INDEX_FILE,
        entries,
        classes,
        title=f"Predictions of {Path(settings['run']).name}",
        facts={
            "run": settings["run"],
            "weights": settings["weights_file"],
            "images": settings["images"],
            "predicted": f"{len(records)} images ({predicted} now, {resumed} earlier), {len(dataset.objects)} objects",
            "window": f"{settings['tile'][1]}x{settings['tile'][0]} px, overlap {settings['overlap']}",
        },
        skipped=[{"path": s["path"], "message": s["message"]} for s in summary["skipped"]],
    )
    return summary


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, value: Any) -> None:
    with atomic_file(path, overwrite=True, mode="w") as handle:
        handle.write(json.dumps(value, indent=1) + "\n")


def _write_mask(path: Path, labels: npt.NDArray[np.integer], classes: int) -> None:
    from seg.formats.masks_png import encode_png

    with atomic_file(path, overwrite=True) as handle:  # mode L, or I;16 beyond 256 classes, like seg's mask folders
        handle.write(encode_png(labels.astype(np.uint8 if classes <= 256 else np.uint16)))


def _write_jpeg(path: Path, pixels: npt.NDArray[np.uint8]) -> None:
    from PIL import Image

    _save(path, Image.fromarray(pixels), "JPEG", quality=90)


def _save(path: Path, image: Any, fmt: str, **options: Any) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    with atomic_file(path, overwrite=True) as handle:
        handle.write(buffer.getvalue())
