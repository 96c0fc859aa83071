"""PNG mask folders: images beside single-channel label masks, the layout segmentation trainers read.

Layout written by :func:`save` (and read by :func:`load`)::

    out/images/<file_name>            the image, copied, linked, or left out (``images=``)
    out/masks/<file_name stem>.png    its mask: same relative path and base name (``a/b/x.jpg`` -> ``a/b/x.png``)
    out/classes.json                  {"0": "background", "1": "building", ...}
    out/classes.txt                   the same names one per line, line i = class index i (keras-segmentation users)
    out/dataset_meta.json             {"label_map": {...}, "background_label": "0"} (Datumaro's common format)
    out/instances.json                instance masks only: {"masks/x.png": [{"id", "category", "source_id", "iscrowd"}]}

With ``split`` the images and masks go to ``out/train/{images,masks}`` and ``out/test/{images,masks}`` (the
keras-segmentation layout); the class map stays at ``out/``.

Semantic masks (``kind="semantic"``) hold the class index of :meth:`Dataset.class_index` in each pixel, 0 =
background: 8-bit greyscale (mode ``L``), or 16-bit (``I;16``) when there are more than 255 classes. Never RGB, never
a palette, never 0/255. Objects are painted largest first (ties in object order), so a small object lying on a large
one stays visible; crowd objects are painted like the others. Instance masks (``kind="instance"``) are 16-bit with
0 = background and ids 1..K in the image's object order (same paint order), described in ``instances.json``.
Box-only objects are skipped by default and counted in the report (``boxes="paint"`` paints their boxes instead).
Images without objects get an all-background mask.

Reading accepts that layout and its near relatives: masks that are 8- or 16-bit greyscale or palette-indexed PNGs
(the palette index is the class), class maps from ``classes.json``, Datumaro's ``dataset_meta.json`` (``label_map``),
Datumaro's Kaggle ``labelmap.csv`` (``name[,r,g,b]``, row i = class i) or ``classes.txt``; colour (RGB) masks only
with a colour map (``segmentation_colors`` in ``dataset_meta.json`` or ``r,g,b`` in ``labelmap.csv``), or when all
three channels are equal (a greyscale mask saved as RGB). Without a class map, class names are the pixel values
(``"1"``, ``"2"``, ...). A semantic mask becomes one object per class present in the image; an instance mask (a folder
with ``instances.json``) one object per instance.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from seg.dataset.core import Dataset
from seg.dataset.problems import Problems
from seg.formats.masks_read import Progress, find_layouts, load_masks
from seg.formats.masks_write import BoxMode, ImageMode, Kind, save_masks


def detect(path: Path) -> bool:
    """True for a folder holding ``images/`` and ``masks/``, or split folders (``train/``, ``test/``...) that do."""
    return Path(path).is_dir() and bool(find_layouts(Path(path)))


def load(
    path: str | os.PathLike[str],
    *,
    problems: Problems | None = None,
    progress: Progress = None,
    classes: str | Iterable[str] | dict[int, str] | None = None,
) -> Dataset:
    """Read a mask folder into a Dataset.

    ``image_id`` is the image's path below ``images/`` without its suffix, ``file_name`` that path. In a split
    layout each image row also has ``split`` (the folder name) and ``root`` (its ``images/`` folder).

    Args:
        path: the folder (see the module docstring for the layouts).
        problems: error policy for bad items: images without a mask, masks without an image, sizes that differ,
            colour masks without a colour map, values outside the class map, unreadable or oversized files.
        progress: wraps the loop over masks.
        classes: class names for values 1, 2, ... (a list, or text ``"road,car"``) or ``{value: name}``; overrides
            the folder's class map.

    Raises:
        FormatError: not a mask folder, a malformed class map or ``instances.json``, or (policy ``raise``) a bad item.
        ImageError: (policy ``raise``) an unreadable, oversized or colour mask.

    Example:
        >>> ds = load("masks_out")  # doctest: +SKIP
    """
    return load_masks(path, problems=problems, progress=progress, classes=classes)


def save(
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
        >>> save(ds, "masks_out", split=0.2, seed=0)  # doctest: +SKIP
    """
    return save_masks(
        dataset,
        path,
        overwrite=overwrite,
        progress=progress,
        kind=kind,
        split=split,
        seed=seed,
        images=images,
        workers=workers,
        boxes=boxes,
        problems=problems,
    )
