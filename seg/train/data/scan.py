"""Scanning a mask folder (``seg convert --to masks [--split]``) into training and test samples, checked up front.

Every problem that would otherwise stop training an hour in is found here and raised as a
:class:`~seg.errors.ValidationError` naming the file: an image without its mask or a mask without its image, a file
that is not an image, truncated or too large, a mask whose size differs from its image's, a mask value that is not a
class, images with different band counts or dtypes. Image headers are read, not their pixels (PNG and JPEG endings are
checked too); masks are decoded, since their values must be checked.

Masks whose only values are 0 and 255 in a two-class folder (binary masks as many tools save them) are accepted with
``mask_scale=255``: the pipeline divides them by it, and a note says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from seg.errors import SegError, ValidationError
from seg.formats.masks_read import ClassMap, find_layouts, list_files, read_class_map
from seg.progress import Counted, Progress
from seg.train.data.probe import ImageHeader, MaskContent, image_header, read_mask

#: Split folders whose images train the model, and those that validate it (the first one found).
TRAIN_SPLITS = ("train",)
TEST_SPLITS = ("val", "valid", "validation", "test")


@dataclass(frozen=True)
class Sample:
    """One image and its mask.

    Args:
        image, mask: the files.
        split: the split folder (``train``, ``test``...); ``train`` / ``test`` for a folder split by the scan.
        image_reader: how the pipeline decodes the image (:data:`~seg.train.data.probe.IMAGE_READERS`); ``auto``
            looks at the file's header when the dataset is made.
        mask_reader: how it decodes the mask (:data:`~seg.train.data.probe.MASK_READERS`, or ``auto``).
    """

    image: Path
    mask: Path
    split: str
    image_reader: str = "auto"
    mask_reader: str = "auto"


@dataclass
class FolderScan:
    """A checked mask folder.

    Args:
        root: the folder.
        classes: class names, background (index 0) first.
        train, test: the samples; ``test`` is empty when the folder has no test split and none was asked for.
        bands, dtype: of every image as :func:`seg.train.rasters.read_input` returns it (``uint8`` RGB for PNG/JPEG).
        size: (H, W) when all images share it, else None.
        mask_scale: 1, or 255 for 0/255 binary masks (divide the masks by it).
        notes: what the scan decided or fixed, for the user.
    """

    root: Path
    classes: list[str]
    train: list[Sample]
    test: list[Sample]
    bands: int
    dtype: str
    size: tuple[int, int] | None
    mask_scale: int = 1
    notes: list[str] = field(default_factory=list)


def scan_folder(
    root: str | os.PathLike[str],
    *,
    classes: Sequence[str] | None = None,
    validation_split: float = 0.0,
    seed: int = 0,
    workers: int | None = None,
    progress: Progress = None,
) -> FolderScan:
    """Pair, check and split the images and masks of a mask folder.

    Args:
        root: a folder with ``train/`` and ``test/`` (``val/``...) splits, each holding ``images/`` and ``masks/``,
            or with ``images/`` and ``masks/`` directly.
        classes: every class name, background first; default: the folder's class map (``classes.json``...), else
            ``background`` and the mask values ``"1"``, ``"2"``... up to the largest found.
        validation_split: fraction of the training images held out for validation when the folder has no test split
            (seeded by ``seed``); ignored, with a note, when it has one.
        seed: seeds that split.
        workers: threads reading headers and masks (default: up to 8).
        progress: wraps the loop over image/mask pairs.

    Raises:
        ValidationError: not a mask folder, no training images, or a bad file (see the module docstring).
        FormatError: a malformed class-map file.
    """
    root = Path(root)
    if not 0.0 <= validation_split < 1.0:
        raise ValidationError("validation_split out of range", expected="0 <= fraction < 1", actual=validation_split)
    layouts = find_layouts(root)
    if not layouts:
        raise ValidationError(
            "not a mask folder", path=root, expected="images/ and masks/, or train/images and train/masks"
        )
    notes: list[str] = []
    pairs = _choose_splits(root, layouts, notes)
    train = [p for p in pairs if p.split in (*TRAIN_SPLITS, "")]
    if not train:
        raise ValidationError("no training images", path=root, expected="image/mask pairs under train/ or images/")

    contents = _read_all(pairs, workers, progress)
    bands, dtype = _check_bands(contents)
    class_map = read_class_map(root, dict(enumerate(classes)) if classes is not None else None)
    values = sorted(set().union(*(mask.values for _, _, mask in contents)))
    names, mask_scale = _class_names(class_map, values, notes)
    _check_values(contents, len(names), mask_scale, class_map)

    samples = {p.key: Sample(p.image, p.mask, p.split or "train", h.reader, m.reader) for p, h, m in contents}
    train_samples = [samples[p.key] for p in train]
    test_samples = [samples[p.key] for p in pairs if p.split and p.split not in TRAIN_SPLITS]
    if validation_split > 0 and test_samples:
        notes.append(f"validation_split {validation_split} ignored: the folder has a {test_samples[0].split}/ split")
    elif validation_split > 0:
        train_samples, test_samples = _hold_out(train_samples, validation_split, seed)
        notes.append(f"held out {len(test_samples)} of the training images for validation (seed {seed})")
    sizes = {(h.height, h.width) for _, h, _ in contents}
    return FolderScan(
        root=root,
        classes=names,
        train=train_samples,
        test=test_samples,
        bands=bands,
        dtype=dtype,
        size=sizes.pop() if len(sizes) == 1 else None,
        mask_scale=mask_scale,
        notes=notes,
    )


@dataclass(frozen=True)
class _Pair:
    key: str  # split/relative path without suffix: the item id of errors
    image: Path
    mask: Path
    split: str  # "" for a folder without splits


def _choose_splits(root: Path, layouts: list[tuple[str | None, Path]], notes: list[str]) -> list[_Pair]:
    if layouts[0][0] is None:
        return _pairs("", root)
    by_name = dict(layouts)
    if not any(name in by_name for name in TRAIN_SPLITS):
        raise ValidationError(
            "no train/ split", path=root, expected="train/images and train/masks", actual=sorted(by_name)
        )
    test = next((name for name in TEST_SPLITS if name in by_name), None)
    ignored = sorted(set(by_name) - {*TRAIN_SPLITS, test})
    if ignored:
        notes.append(f"split folders not used: {', '.join(ignored)}")
    return [pair for name in (*TRAIN_SPLITS, test) if name in by_name for pair in _pairs(name, by_name[name])]


def _pairs(split: str, folder: Path) -> list[_Pair]:
    """Image/mask pairs of one layout, refusing unmatched and ambiguous files."""
    (images, twin_images), (masks, twin_masks) = list_files(folder / "images"), list_files(folder / "masks")
    for kind, twins in (("images", twin_images), ("masks", twin_masks)):
        if twins:
            raise ValidationError(
                "two files share one name without suffix", path=folder / kind / twins[0], expected="one file per name"
            )
    prefix = f"{split}/" if split else ""
    for key in sorted(masks.keys() - images.keys()):
        broken = [p for p in (folder / "images").glob(f"{key}.*") if p.is_symlink() and not p.exists()]
        raise ValidationError(
            "image link is broken" if broken else "mask without an image",
            path=broken[0] if broken else folder / "masks" / masks[key],
            item_id=prefix + key,
            expected=f"an image named {key}.* under {folder / 'images'}",
        )
    for key in sorted(images.keys() - masks.keys()):
        raise ValidationError(
            "image without a mask",
            path=folder / "images" / images[key],
            item_id=prefix + key,
            expected=f"a mask named {key}.png under {folder / 'masks'}",
        )
    return [_Pair(prefix + k, folder / "images" / images[k], folder / "masks" / masks[k], split) for k in images]


def _read_all(
    pairs: list[_Pair], workers: int | None, progress: Progress
) -> list[tuple[_Pair, ImageHeader, MaskContent]]:
    """Headers and mask contents, read by a thread pool (Pillow and GDAL decode without the GIL), in pair order."""
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results: Iterable = pool.map(_read_pair, pairs)
        if progress is not None:
            results = progress(Counted(results, len(pairs)))
        return list(_checked(results))


def _checked(results: Iterable) -> Iterator[tuple[_Pair, ImageHeader, MaskContent]]:
    for pair, header, mask in results:
        if (mask.height, mask.width) != (header.height, header.width):
            raise ValidationError(
                "mask size differs from its image's",
                path=pair.mask,
                item_id=pair.key,
                expected=f"{header.width}x{header.height} like {pair.image.name}",
                actual=f"{mask.width}x{mask.height}",
            )
        yield pair, header, mask


def _read_pair(pair: _Pair) -> tuple[_Pair, ImageHeader, MaskContent]:
    try:
        header = image_header(pair.image)
    except SegError as e:
        raise ValidationError(e.message, path=pair.image, item_id=pair.key, expected=e.expected, actual=e.actual) from e
    try:
        mask = read_mask(pair.mask)
    except SegError as e:
        raise ValidationError(e.message, path=pair.mask, item_id=pair.key, expected=e.expected, actual=e.actual) from e
    return pair, header, mask


def _check_bands(contents: list[tuple[_Pair, ImageHeader, MaskContent]]) -> tuple[int, str]:
    first_pair, first, _ = contents[0]
    for pair, header, _ in contents:
        if (header.bands, header.dtype) != (first.bands, first.dtype):
            raise ValidationError(
                "image has another band count or dtype than the others",
                path=pair.image,
                item_id=pair.key,
                expected=f"{first.bands} bands of {first.dtype} like {first_pair.image.name}",
                actual=f"{header.bands} bands of {header.dtype}",
            )
    return first.bands, first.dtype


def _class_names(class_map: ClassMap, values: list[int], notes: list[str]) -> tuple[list[str], int]:
    """Class names (background first) and the mask scale, from the class map or the values found."""
    binary = bool(values) and set(values) <= {0, 255} and 255 in values
    if class_map.names:
        count = max(class_map.names) + 1
        names = [class_map.names.get(i, "background" if i == 0 else str(i)) for i in range(count)]
        if binary and count == 2:
            notes.append("masks hold 0/255: read as 0/1 (mask_scale 255)")
            return names, 255
        return names, 1
    if binary:
        notes.append("no class map; masks hold 0/255: two classes, read as 0/1 (mask_scale 255)")
        return ["background", "1"], 255
    top = max(1, max(values, default=0))
    notes.append(f"no class map: classes named by their mask values 1..{top}")
    return ["background", *(str(v) for v in range(1, top + 1))], 1


def _check_values(
    contents: list[tuple[_Pair, ImageHeader, MaskContent]], count: int, mask_scale: int, class_map: ClassMap
) -> None:
    where = class_map.source or "the values found"
    for pair, _, mask in contents:
        bad = [v for v in mask.values if v < 0 or v // mask_scale >= count or v % mask_scale]
        if bad:
            raise ValidationError(
                "mask value is not a class",
                path=pair.mask,
                item_id=pair.key,
                expected=f"values 0..{(count - 1) * mask_scale} ({count} classes from {where})",
                actual=bad[0],
            )


def _hold_out(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """A seeded random ``fraction`` of the samples (at least one, never all) as ``test``; both in folder order."""
    count = len(samples)
    held = min(count - 1, max(1, round(count * fraction)))
    if held < 1:
        raise ValidationError("too few images to hold some out", expected="at least 2 images", actual=count)
    chosen = set(np.random.default_rng(seed).permutation(count)[:held].tolist())
    train = [s for i, s in enumerate(samples) if i not in chosen]
    test = [replace(s, split="test") for i, s in enumerate(samples) if i in chosen]
    return train, test
