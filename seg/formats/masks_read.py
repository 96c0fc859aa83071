"""Reading a folder of label masks beside their images into a Dataset (see :mod:`seg.formats.masks`)."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from seg.dataset.images import IMAGE_SUFFIXES, image_size, read_image
from seg.dataset.problems import Problems
from seg.errors import FormatError, ImageError, SegError
from seg.progress import Progress

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Class-map files, in the order they are looked for.
CLASS_FILES = ("classes.json", "dataset_meta.json", "labelmap.csv", "classes.txt")


@dataclass
class ClassMap:
    """Class names by pixel value, the colours of RGB masks, and the background value."""

    names: dict[int, str] | None = None
    colors: dict[tuple[int, int, int], int] = field(default_factory=dict)
    background: int = 0
    source: str | None = None


def find_layouts(path: Path) -> list[tuple[str | None, Path]]:
    """``[(split or None, folder holding images/ and masks/)]``: the folder itself, else its subfolders."""
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return [(None, path)]
    if not path.is_dir():
        return []
    return [
        (child.name, child)
        for child in sorted(path.iterdir())
        if child.is_dir() and (child / "images").is_dir() and (child / "masks").is_dir()
    ]


def read_class_map(path: Path, classes: str | Iterable[str] | dict[int, str] | None) -> ClassMap:
    """The class map: the ``classes`` option, else the first of :data:`CLASS_FILES` found in ``path``.

    Raises:
        FormatError: when the class-map file is malformed.
    """
    colors = _read_colors(path)
    if classes is not None:
        if isinstance(classes, str):
            classes = [name.strip() for name in classes.split(",")]
        names = dict(classes) if isinstance(classes, dict) else {i + 1: str(n) for i, n in enumerate(classes)}
        return ClassMap({int(k): str(v) for k, v in names.items()}, colors, 0, "classes option")
    for name in CLASS_FILES:
        file = path / name
        if file.is_file():
            try:
                names, background = _READERS[name](file)
            except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, csv.Error) as e:
                raise FormatError(f"unreadable class map: {e}", path=file, expected="class index -> class name") from e
            if name == "dataset_meta.json" and not names:
                continue
            return ClassMap(names, colors, background, str(file))
    return ClassMap(None, colors, 0, None)


def _classes_json(file: Path) -> tuple[dict[int, str], int]:
    data = json.loads(file.read_text(encoding="utf-8-sig"))
    if not isinstance(data, dict):
        raise ValueError('expected an object {"index": "name"}')
    return {int(k): _name(v) for k, v in data.items()}, 0


def _dataset_meta(file: Path) -> tuple[dict[int, str], int]:
    data = json.loads(file.read_text(encoding="utf-8-sig"))
    labels = data.get("label_map", {}) if isinstance(data, dict) else None
    if not isinstance(labels, dict):
        raise ValueError('label_map must be an object {"index": "name"}')
    return {int(k): _name(v) for k, v in labels.items()}, int(data.get("background_label", 0))


def _labelmap_csv(file: Path) -> tuple[dict[int, str], int]:
    with file.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    return {i: _name(row["name"]) for i, row in enumerate(rows)}, 0


def _classes_txt(file: Path) -> tuple[dict[int, str], int]:
    lines = file.read_text(encoding="utf-8-sig").splitlines()
    return {i: line.strip() for i, line in enumerate(lines) if line.strip()}, 0


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"class names must be non-empty text, got {value!r}")
    return value


_READERS = {
    "classes.json": _classes_json,
    "dataset_meta.json": _dataset_meta,
    "labelmap.csv": _labelmap_csv,
    "classes.txt": _classes_txt,
}


def _read_colors(path: Path) -> dict[tuple[int, int, int], int]:
    """Colour -> class index for RGB masks, from ``dataset_meta.json`` (``segmentation_colors``) or ``labelmap.csv``
    (``r,g,b`` columns); empty when neither gives colours."""
    try:
        meta = path / "dataset_meta.json"
        if meta.is_file():
            data = json.loads(meta.read_text(encoding="utf-8-sig"))
            colors = data.get("segmentation_colors") if isinstance(data, dict) else None
            if colors:
                indices = [int(k) for k in data.get("label_map", {})] or list(range(len(colors)))
                return {tuple(int(c) for c in color): index for color, index in zip(colors, indices, strict=False)}
        table = path / "labelmap.csv"
        if table.is_file():
            with table.open(newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle))
            if rows and {"r", "g", "b"} <= set(rows[0]):
                return {(int(r["r"]), int(r["g"]), int(r["b"])): i for i, r in enumerate(rows)}
    except (OSError, ValueError, TypeError, AttributeError, RecursionError, csv.Error) as e:
        raise FormatError(f"unreadable mask colours: {e}", path=path, expected="[r, g, b] per class") from e
    return {}


def list_files(folder: Path) -> tuple[dict[str, str], list[str]]:
    """Image files under ``folder``: ``{relative path without suffix: relative path}`` (sorted), and the files whose
    name without suffix repeats an earlier one (``a.jpg`` beside ``a.png``)."""
    found: dict[str, str] = {}
    repeated: list[str] = []
    for file in sorted(folder.rglob("*")):
        if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
            relative = file.relative_to(folder).as_posix()
            key = relative[: -len(file.suffix)]
            if key in found:
                repeated.append(relative)
            else:
                found[key] = relative
    return found, repeated


def label_image(path: Path, class_map: ClassMap) -> npt.NDArray:
    """Read a mask as an (H, W) array of class values (colours mapped through the class map for RGB masks).

    Raises:
        ImageError: unreadable, too large, or a colour mask with no colour map (or a colour outside it).
    """
    pixels = read_image(path)
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[2] == 2:  # grey + alpha: the grey channel holds the classes
        return pixels[..., 0]
    rgb = pixels[..., :3].astype(np.int64)
    if class_map.colors:
        codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        found, inverse = np.unique(codes, return_inverse=True)
        lookup = {(r << 16) | (g << 8) | b: index for (r, g, b), index in class_map.colors.items()}
        missing = [int(c) for c in found if int(c) not in lookup]
        if missing:
            c = missing[0]
            raise ImageError(
                "mask colour not in the colour map",
                path=path,
                expected=f"one of {sorted(class_map.colors)}",
                actual=((c >> 16) & 255, (c >> 8) & 255, c & 255),
            )
        return np.asarray([lookup[int(c)] for c in found], np.int64)[inverse.reshape(codes.shape)]
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return pixels[..., 0]
    raise ImageError(
        "colour mask without a colour map",
        path=path,
        expected="a single-channel class-index PNG",
        actual=f"{pixels.shape[2]}-channel image",
    )


def load_masks(
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
        path: the folder (see :mod:`seg.formats.masks` for the layouts).
        problems: error policy for bad items: images without a mask, masks without an image, sizes that differ,
            colour masks without a colour map, values outside the class map, unreadable or oversized files.
        progress: wraps the loop over masks.
        classes: class names for values 1, 2, ... (a list, or text ``"road,car"``) or ``{value: name}``; overrides
            the folder's class map.

    Raises:
        FormatError: not a mask folder, a malformed class map or ``instances.json``, or (policy ``raise``) a bad item.
        ImageError: (policy ``raise``) an unreadable, oversized or colour mask.

    Example:
        >>> ds = seg.read("masks_out", "masks")  # doctest: +SKIP
    """
    root = Path(path)
    problems = problems or Problems()
    layouts = find_layouts(root)
    if not layouts:
        raise FormatError(
            "not a mask folder", path=root, expected="images/ and masks/ (or train/images and train/masks)"
        )
    class_map = read_class_map(root, classes)
    instances = _read_instances(root)
    pairs = []
    for split, folder in layouts:
        pairs.extend(_pair(split, folder, problems))
    reader = _Reader(root, class_map, instances, problems)
    for pair in progress(pairs) if progress is not None else pairs:
        try:
            reader.read(*pair)
        except SegError as error:
            problems.handle(error)
    split_layout = layouts[0][0] is not None
    logger.info("%s: %d images, %d objects", root, len(reader.images), len(reader.objects))
    return Dataset.from_records(
        reader.images,
        reader.objects,
        reader.categories(),
        image_root=None if split_layout else root / "images",
        source=root,
    )


def _read_instances(root: Path) -> dict[str, list[dict]] | None:
    file = root / "instances.json"
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise ValueError("expected {mask path: [instances]}")
        for entries in data.values():
            for entry in entries:
                int(entry["id"]), _name(entry["category"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise FormatError(
            f"unreadable instance list: {e}", path=file, expected='{"masks/x.png": [{"id": 1, "category": "..."}]}'
        ) from e
    return data


def _pair(split: str | None, folder: Path, problems: Problems) -> list[tuple[str | None, Path, str, str]]:
    """``(split, folder, image, mask)`` relative paths, after reporting unmatched and ambiguous files."""
    (images, twin_images), (masks, twin_masks) = list_files(folder / "images"), list_files(folder / "masks")
    for kind, twins in (("images", twin_images), ("masks", twin_masks)):
        for relative in twins:
            problems.handle(
                FormatError(
                    "two files share one name without suffix",
                    path=folder / kind / relative,
                    expected="one file per name",
                )
            )
    for key in sorted(masks.keys() - images.keys()):
        problems.handle(
            FormatError(
                "mask without an image",
                path=folder / "masks" / masks[key],
                expected=f"an image named {key}.* under {folder / 'images'}",
            )
        )
    pairs = []
    for key, image in images.items():
        if key not in masks:
            problems.handle(
                FormatError(
                    "image without a mask",
                    path=folder / "images" / image,
                    expected=f"a mask named {key}.png under {folder / 'masks'}",
                )
            )
            continue
        pairs.append((split, folder, image, masks[key]))
    return pairs


class _Reader:
    """Accumulates image and object rows, one mask at a time."""

    def __init__(
        self, root: Path, class_map: ClassMap, instances: dict[str, list[dict]] | None, problems: Problems
    ) -> None:
        self.root, self.class_map, self.instances, self.problems = root, class_map, instances, problems
        self.images: list[dict] = []
        self.objects: list[dict] = []
        self.seen_values: set[int] = set()
        self.seen_ids: dict[str, str] = {}
        self.instance_names: dict[str, None] = {}

    def read(self, split: str | None, folder: Path, image: str, mask: str) -> None:
        image_id = image[: -len(Path(image).suffix)]
        where = f"{split}/{image}" if split else image
        if image_id in self.seen_ids:
            raise FormatError(
                "image name used in two splits",
                path=folder / "images" / image,
                item_id=image_id,
                expected="unique image names",
                actual=f"also in {self.seen_ids[image_id]}",
            )
        width, height = image_size(folder / "images" / image)
        mask_path = folder / "masks" / mask
        label = label_image(mask_path, self.class_map)
        if label.shape != (height, width):
            raise ImageError(
                "mask size differs from its image's",
                path=mask_path,
                item_id=image_id,
                expected=f"{width}x{height}",
                actual=f"{label.shape[1]}x{label.shape[0]}",
            )
        key = f"{split}/masks/{mask}" if split else f"masks/{mask}"
        objects = (
            self._instances(label, key, mask_path) if self.instances is not None else self._classes(label, mask_path)
        )
        row = {"image_id": image_id, "file_name": image, "width": width, "height": height}
        if split is not None:
            row.update(split=split, root=str(folder / "images"))
        self.seen_ids[image_id] = where
        self.images.append(row)
        self.objects.extend({**o, **{k: row[k] for k in ("image_id", "file_name", "width", "height")}} for o in objects)

    def _classes(self, label: npt.NDArray, mask_path: Path) -> list[dict]:
        names = self.class_map.names
        values = [int(v) for v in np.unique(label) if int(v) != self.class_map.background]
        if names is not None:
            unknown = [v for v in values if v not in names]
            if unknown:
                raise FormatError(
                    "mask value not in the class map", path=mask_path, expected=self.class_map.source, actual=unknown[0]
                )
        self.seen_values.update(values)
        return [
            {
                "category": names[v] if names is not None else str(v),
                "rle": coco_rle.encode(label == v),
                "source_id": str(v),
            }
            for v in values
        ]

    def _instances(self, label: npt.NDArray, key: str, mask_path: Path) -> list[dict]:
        entries = self.instances.get(key, []) if self.instances is not None else []
        known = {int(e["id"]) for e in entries}
        stray = [int(v) for v in np.unique(label) if v != 0 and int(v) not in known]
        if stray:
            raise FormatError(
                "instance id missing from instances.json", path=mask_path, expected=sorted(known), actual=stray[0]
            )
        objects = []
        for entry in entries:
            self.instance_names.setdefault(str(entry["category"]))
            objects.append(
                {
                    "category": str(entry["category"]),
                    "rle": coco_rle.encode(label == int(entry["id"])),
                    "source_id": str(entry.get("source_id", entry["id"])),
                    "iscrowd": bool(entry.get("iscrowd", False)),
                }
            )
        return objects

    def categories(self) -> list[Category]:
        """The class map's classes in index order, else the values found (numeric order) or instance names."""
        names = self.class_map.names
        if names is not None:
            chosen = [(i, n) for i, n in sorted(names.items()) if i != self.class_map.background]
            listed = [n for _, n in chosen]
            if len(set(listed)) != len(listed):
                raise FormatError("class map names a class twice", path=self.class_map.source, actual=listed)
            extra = [n for n in self.instance_names if n not in listed]
            return [Category(n, i) for i, n in chosen] + [Category(n, len(names) + k) for k, n in enumerate(extra)]
        if self.instances is not None:
            return [Category(n, k + 1) for k, n in enumerate(self.instance_names)]
        return [Category(str(v), v) for v in sorted(self.seen_values)]
