"""Writing a Dataset as a folder of PNG label masks beside their images (see :mod:`seg.formats.masks`).

The writer streams image by image: the main process groups the objects of each image with numpy and sends only their
compressed RLE strings, labels and paint order to a pool of worker processes, which paint the label image from the
RLE runs (:mod:`seg.dataset.mask_paint`), encode it (:mod:`seg.formats.masks_png`), write it, and copy or link the
image. No process ever holds more than one image's masks, so memory stays flat however large the dataset.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import re
import shutil
from collections.abc import Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import pandas as pd

from seg.dataset.core import Dataset
from seg.dataset.mask_paint import label_runs_many, paint_order
from seg.dataset.paths import normalize_file_name
from seg.dataset.problems import Problems
from seg.errors import FormatError, ImageError, SegError, ValidationError
from seg.formats.masks_png import encode_label_runs
from seg.outputs import atomic_dir, check_writable
from seg.progress import Counted, Progress

logger = logging.getLogger(__name__)

Kind = Literal["semantic", "instance"]
ImageMode = Literal["copy", "link", "none"]
BoxMode = Literal["skip", "paint"]

#: Folder names a ``split`` column may use.
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
#: Images per task sent to a worker (fewer when the dataset is small).
_CHUNK = 32
#: Tasks in flight per worker.
_WINDOW = 4
#: Fewest images for which the default ``workers`` starts a pool.
_POOL_FROM = 64


#: A worker's answer per image: its index, and None when written, else ``("mask" or "image", message, path)``.
Outcome = tuple[int, tuple[str, str, str | None] | None]


@dataclass(frozen=True)
class _Task:
    """One image for a worker: where its mask goes, what to paint, and the image to copy or link."""

    index: int
    mask: str
    height: int
    width: int
    rles: tuple[str | None, ...]
    values: tuple[int, ...]
    boxes: tuple[tuple[float, float, float, float], ...] | None
    dtype: str
    source: str | None
    target: str | None


def save_masks(
    dataset: Dataset,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Progress = None,
    kind: Kind = "semantic",
    split: float | str | None = None,
    seed: int = 0,
    images: ImageMode = "copy",
    workers: int | None = None,
    boxes: BoxMode = "skip",
    problems: Problems | None = None,
) -> dict:
    """Write ``dataset`` as a mask folder, atomically (the folder appears complete or not at all).

    Args:
        dataset: what to write.
        path: the output folder.
        overwrite: replace an existing folder (only once the new one is complete).
        progress: wraps the loop over images.
        kind: ``"semantic"`` (class-index masks) or ``"instance"`` (16-bit instance ids + ``instances.json``).
        split: None (one ``images/`` + ``masks/``), a test fraction such as 0.2 (``train/`` and ``test/``: the image
            ids are sorted, shuffled with ``seed``, and the first ``round(split * n)`` go to ``test``), or
            ``"column"`` to use the images table's ``split`` column as folder names.
        seed: seed of the split shuffle: same seed, same split.
        images: ``"copy"`` the images beside the masks, ``"link"`` them (hard link, else symbolic link), or
            ``"none"`` to write masks only. Unless ``"none"``, a missing image is a problem.
        workers: processes painting masks (default: one per CPU from 64 images on; 1 paints in this process).
        boxes: box-only objects are ``"skip"``-ped (counted in the report) or ``"paint"``-ed as their boxes.
        problems: error policy for images that cannot be written (missing image file, unsafe file name, two images
            with one mask name, a malformed RLE); skipped images get neither mask nor image.

    Returns:
        ``{"path", "kind", "masks", "images", "images_written", "objects_painted", "boxes", "box_only",
        "bit_depth", "classes", "splits", "skipped"}``.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (nothing is written).
        ImageError, FormatError, UnsafePathError, ValidationError: (policy ``raise``) the first image that cannot be
            written; nothing is left behind.

    Example:
        >>> seg.write(ds, "masks_out", "masks", split=0.2, seed=0)  # doctest: +SKIP
    """
    _check_options(kind, split, images, boxes, workers)
    out = check_writable(path, overwrite)
    problems = problems or Problems()
    plan = _Plan(dataset, kind, split, seed, images, boxes, problems)
    if workers is None:  # one per CPU, but a pool is not worth starting for a few images
        workers = (os.cpu_count() or 1) if len(plan.rows) >= _POOL_FROM else 1
    with atomic_dir(out, overwrite) as tmp:
        plan.make_folders(tmp)
        done = _run(plan.tasks(problems), tmp, images, workers, len(plan.rows), progress)
        written = set()
        try:
            for index, failure in done:
                if failure is None:
                    written.add(index)
                    continue
                image_id, (what, message, where) = plan.image_ids[index], failure
                error = ImageError if what == "image" else FormatError
                problems.handle(error(message, path=where or out, item_id=image_id))
        finally:
            done.close()  # stop the workers before the temporary folder is removed
        plan.write_metadata(tmp, written)
    report = plan.report(out, written, problems)
    logger.info("%s: %d masks (%s), %d objects painted", out, len(written), kind, report["objects_painted"])
    return report


def _check_options(kind: str, split: object, images: str, boxes: str, workers: int | None) -> None:
    if kind not in ("semantic", "instance"):
        raise ValueError(f"kind must be 'semantic' or 'instance', got {kind!r}")
    if images not in ("copy", "link", "none"):
        raise ValueError(f"images must be 'copy', 'link' or 'none', got {images!r}")
    if boxes not in ("skip", "paint"):
        raise ValueError(f"boxes must be 'skip' or 'paint', got {boxes!r}")
    if split is not None and split != "column" and not (isinstance(split, float | int) and 0 < split < 1):
        raise ValueError(f"split must be a test fraction between 0 and 1, or 'column', got {split!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")


def _source(path: Path | None, image_id: str) -> Path:
    if path is None:
        raise ValidationError(
            "dataset has no image folder to copy images from",
            item_id=image_id,
            expected="an image folder when reading, or images='none' to write masks only",
        )
    if not path.is_file():
        raise ImageError(
            "image file not found",
            path=path,
            item_id=image_id,
            expected="the image, or images='none' to write masks only",
        )
    return path


class _Plan:
    """Everything decided before painting: split, file names, image sources, labels and paint order per image."""

    def __init__(
        self,
        dataset: Dataset,
        kind: Kind,
        split: float | str | None,
        seed: int,
        images: ImageMode,
        boxes: BoxMode,
        problems: Problems,
    ) -> None:
        self.dataset, self.kind, self.images_mode, self.boxes = dataset, kind, images, boxes
        frame = dataset.images
        self.image_ids = frame["image_id"].tolist()
        self.splits = _assign_splits(frame, split, seed)
        named = set(self.splits or []) | ({"train", "test"} if isinstance(split, float | int) else set())
        self.layouts = sorted(named) if split is not None else [""]
        self.depth = "uint16" if kind == "instance" or len(dataset.categories) > 255 else "uint8"
        if len(dataset.categories) > 65535:
            raise SegError(
                "too many classes for a 16-bit mask", expected="at most 65535", actual=len(dataset.categories)
            )
        self.rows = self._place(frame, problems)
        self.instances: dict[str, list[dict]] = {}
        self.painted: dict[int, int] = {}
        self.box_only: dict[int, int] = {}

    def _place(self, frame: pd.DataFrame, problems: Problems) -> dict[int, tuple[str, str | None, str | None]]:
        """``{image index: (mask path, image source, image target)}`` for the images that can be written."""
        rows: dict[int, tuple[str, str | None, str | None]] = {}
        taken: dict[str, str] = {}
        paths = self.dataset.image_paths() if self.images_mode != "none" else []
        for index, (image_id, name) in enumerate(zip(self.image_ids, frame["file_name"].tolist(), strict=True)):
            try:
                name = normalize_file_name(name, item_id=image_id)
                prefix = "" if self.splits is None else f"{self.splits[index]}/"
                mask = f"{prefix}masks/{PurePosixPath(name).with_suffix('.png')}"
                if mask in taken:
                    raise FormatError(
                        "two images would share one mask file",
                        item_id=image_id,
                        expected="distinct image base names",
                        actual=f"{taken[mask]!r} and {image_id!r} -> {mask}",
                    )
                source = target = None
                if self.images_mode != "none":
                    source = str(_source(paths[index], image_id))
                    target = f"{prefix}images/{name}"
            except SegError as error:
                problems.handle(error)
                continue
            taken[mask] = image_id
            rows[index] = (mask, source, target)
        return rows

    def tasks(self, problems: Problems) -> Iterator[_Task]:
        """One task per writable image, in image order (objects grouped with numpy, not per-image pandas)."""
        objects = self.dataset.objects
        position = pd.Series(np.arange(len(self.image_ids)), index=self.image_ids)
        owner = objects["image_id"].map(position).to_numpy(np.int64)
        bounds = np.searchsorted(owner, np.arange(len(self.image_ids) + 1)).tolist()
        rles = [r if isinstance(r, str) else None for r in objects["rle"].tolist()]
        areas = objects["area"].to_numpy(np.int64)
        box_frame = objects[["bbox_x", "bbox_y", "bbox_w", "bbox_h"]].to_numpy(np.float64)
        classes = objects["category"].map(self.dataset.class_index()).to_numpy(np.int64)
        about = (objects["category"].tolist(), objects["source_id"].tolist(), objects["iscrowd"].tolist())
        widths, heights = self.dataset.images["width"].tolist(), self.dataset.images["height"].tolist()
        for index, (mask, source, target) in self.rows.items():
            lo, hi = bounds[index], bounds[index + 1]
            keep = [i for i in range(lo, hi) if rles[i] is not None or self.boxes == "paint"]
            if self.kind == "instance" and len(keep) > 65535:
                problems.handle(
                    FormatError(
                        "too many objects for a 16-bit instance mask",
                        item_id=self.image_ids[index],
                        expected="at most 65535",
                        actual=len(keep),
                    )
                )
                continue
            self.box_only[index] = sum(1 for i in range(lo, hi) if rles[i] is None)
            self.painted[index] = len(keep)
            labels = list(range(1, len(keep) + 1)) if self.kind == "instance" else classes[keep].tolist()
            if self.kind == "instance":
                self.instances[mask] = [
                    {"id": n + 1, "category": about[0][i], "source_id": about[1][i], "iscrowd": bool(about[2][i])}
                    for n, i in enumerate(keep)
                ]
            order = paint_order(areas[keep]).tolist() if keep else []
            ordered = [keep[k] for k in order]
            has_box = any(rles[i] is None for i in ordered)
            yield _Task(
                index=index,
                mask=mask,
                height=int(heights[index]),
                width=int(widths[index]),
                rles=tuple(rles[i] for i in ordered),
                values=tuple(labels[k] for k in order),
                boxes=tuple(tuple(box_frame[i].tolist()) for i in ordered) if has_box else None,
                dtype=self.depth,
                source=source,
                target=target,
            )

    def make_folders(self, root: Path) -> None:
        """Create every folder the masks and images go to, once, before the workers start (``masks/`` and
        ``images/`` even when empty, so that the folder reads back)."""
        kinds = ["masks"] if self.images_mode == "none" else ["masks", "images"]
        folders = {str(PurePosixPath(layout) / kind) for layout in self.layouts for kind in kinds}
        folders |= {str(PurePosixPath(mask).parent) for mask, _, _ in self.rows.values()}
        folders |= {str(PurePosixPath(target).parent) for _, _, target in self.rows.values() if target is not None}
        for folder in sorted(folders):
            (root / folder).mkdir(parents=True, exist_ok=True)

    def write_metadata(self, root: Path, written: set[int]) -> None:
        """The class map (``classes.json``, ``classes.txt``, ``dataset_meta.json``) and, for instance masks,
        ``instances.json``."""
        names = ["background", *self.dataset.category_names]
        label_map = {str(i): name for i, name in enumerate(names)}
        _write_json(root / "classes.json", label_map)
        (root / "classes.txt").write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
        _write_json(root / "dataset_meta.json", {"label_map": label_map, "background_label": "0"})
        if self.kind == "instance":
            kept = {self.rows[i][0] for i in written}
            _write_json(root / "instances.json", {k: v for k, v in self.instances.items() if k in kept})

    def report(self, out: Path, written: set[int], problems: Problems) -> dict:
        splits: dict[str, int] = {}
        if self.splits is not None:
            for index in sorted(written):
                splits[self.splits[index]] = splits.get(self.splits[index], 0) + 1
        return {
            "path": str(out),
            "kind": self.kind,
            "masks": len(written),
            "images": self.images_mode,
            "images_written": 0 if self.images_mode == "none" else len(written),
            "objects_painted": sum(self.painted[i] for i in written),
            "boxes": self.boxes,
            "box_only": sum(self.box_only[i] for i in written),
            "bit_depth": 16 if self.depth == "uint16" else 8,
            "classes": len(self.dataset.categories),
            "splits": splits,
            "skipped": problems.to_records(),
        }


def _assign_splits(frame: pd.DataFrame, split: float | str | None, seed: int) -> list[str] | None:
    """``"train"``/``"test"`` per image (a seeded shuffle of the sorted image ids), the ``split`` column, or None."""
    if split is None:
        return None
    if split == "column":
        if "split" not in frame.columns:
            raise ValidationError(
                "split='column' needs a 'split' column in the images table", expected="a split column"
            )
        names = frame["split"].astype(str).tolist()
        bad = [n for n in names if not _SPLIT_NAME.match(n)]
        if bad:
            raise ValidationError(
                "split names must be plain folder names", expected="letters, digits, _ or -", actual=bad[0]
            )
        return names
    ids = frame["image_id"].to_numpy(str)
    ranked = np.argsort(ids, kind="stable")
    shuffled = ranked[np.random.default_rng(seed).permutation(len(ids))]
    test = set(shuffled[: round(float(split) * len(ids))].tolist())
    return ["test" if i in test else "train" for i in range(len(ids))]


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# -- running the tasks --------------------------------------------------------------------------------------------


def _run(
    tasks: Iterator[_Task], root: Path, images: ImageMode, workers: int, count: int, progress: Progress
) -> Generator[Outcome]:
    """Run the tasks in process (one worker or few images) or in a pool; yield ``(image index, error)`` per image."""
    size = max(1, min(_CHUNK, math.ceil(count / (workers * _WINDOW))))
    chunks = _chunks(tasks, size)
    if workers <= 1 or count <= size:
        results: Generator[Outcome] = (r for chunk in chunks for r in write_chunk(str(root), images, chunk))
    else:
        results = _pooled(chunks, str(root), images, workers)
    wrapped = Counted(results, count)
    try:
        yield from (progress(wrapped) if progress is not None else wrapped)
    finally:
        results.close()  # a pool waits for its running chunks here


def _chunks(tasks: Iterator[_Task], size: int) -> Iterator[list[_Task]]:
    chunk: list[_Task] = []
    for task in tasks:
        chunk.append(task)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _pooled(chunks: Iterator[list[_Task]], root: str, images: ImageMode, workers: int) -> Generator[Outcome]:
    """Keep at most ``workers * _WINDOW`` chunks in flight; yield results as chunks finish (order does not matter)."""
    # fork where there is one: workers start at once, and scripts without an ``if __name__ == "__main__"`` guard
    # work; they only paint and copy files, so no lock held by a thread of this process is ever needed there.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)) as pool:
        pending: set[Future] = set()
        try:
            for chunk in chunks:
                pending.add(pool.submit(write_chunk, root, images, chunk))
                if len(pending) >= workers * _WINDOW:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        yield from future.result()
            for future in pending:
                yield from future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def write_chunk(root: str, images: ImageMode, chunk: list[_Task]) -> list[Outcome]:
    """Worker: paint, encode and write the mask of each task, then copy or link its image (folders exist already).

    Returns an :data:`Outcome` per image: written, or why not (a malformed RLE, an image that cannot be copied).
    Failing to write a mask (disk full) raises.
    """
    results: list[Outcome] = []
    base = Path(root)
    dtype = chunk[0].dtype if chunk else "uint8"
    painted = label_runs_many([(t.height, t.width, t.rles, t.values, t.boxes) for t in chunk], dtype=dtype)
    for task, label in zip(chunk, painted, strict=True):
        if isinstance(label, ValueError):
            results.append((task.index, ("mask", f"cannot paint mask: {label}", None)))
            continue
        mask = base / task.mask
        mask.write_bytes(encode_label_runs(label))
        try:
            _place_image(images, task.source, base / task.target if task.target else None)
        except OSError as error:
            mask.unlink()
            results.append((task.index, ("image", f"cannot {images} image: {error.strerror or error}", task.source)))
            continue
        results.append((task.index, None))
    return results


def _place_image(images: ImageMode, source: str | None, target: Path | None) -> None:
    if images == "none" or source is None or target is None:
        return
    if images == "copy":
        shutil.copyfile(source, target)
        return
    try:
        os.link(source, target)
    except OSError:
        os.symlink(source, target)
