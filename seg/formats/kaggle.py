"""Kaggle segmentation CSVs: one row per object mask as ``EncodedPixels`` (see :mod:`seg.dataset.kaggle_rle`).

Two layouts are common, and both are read and written:

* Airbus Ship Detection: ``ImageId,EncodedPixels``; ``ImageId`` is a file name (``00003e153.jpg``). Image sizes are
  not in the file: they come from the image files (``images=``) or from ``image_size=(width, height)``.
* iMaterialist (Fashion): ``ImageId,EncodedPixels,Height,Width,ClassId[,AttributesIds]``; ``ImageId`` may lack a
  file extension, ``ClassId`` may carry attributes (``"6_1_3"``: class ``6``).

Reading (:func:`load`): a row with an empty ``EncodedPixels`` is an image without objects (kept); several rows with one
``ImageId`` are several objects. ``image_id`` is the ``ImageId`` without its image suffix (``a/b.jpg`` -> ``a/b``),
``file_name`` the ``ImageId`` itself; when it has no image suffix and ``images=`` is given, the first file found as
``ImageId`` + one of :data:`~seg.dataset.images.IMAGE_SUFFIXES` gives ``file_name`` and the original ``ImageId`` is kept
in the images column ``kaggle_image_id`` (written back by :func:`save`); when none is found, ``file_name`` stays the
``ImageId`` as given (no extension is guessed). Sizes come from ``Height``/``Width`` when the file has them, else from
the image file's header, else from ``image_size``. The category is the ``ClassId`` (the part before ``_`` when that
part is a number; the full value is kept in ``attributes`` as ``{"ClassId": ...}``, other extra columns likewise),
or ``class_name`` (default ``"object"``) without a ``ClassId`` column. Categories are in numeric order when every
name is a number, else in order of appearance. An object's ``source_id`` is ``"row N"``, N its 1-based data row.

Writing (:func:`save`): rows follow the Dataset's order (images in order, objects in order within an image), so a
CSV grouped by image is written back row for row with the same ``EncodedPixels`` strings. ``style="auto"`` writes the
iMaterialist layout when the dataset has more than one category, when its category names are all numbers (class
ids), or when its images differ in size (the Airbus layout cannot carry sizes); the Airbus layout otherwise.
Objects with an empty mask are not written (counted); box-only objects are skipped and counted, or written as
their box mask with ``boxes="paint"``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path, PurePosixPath

import pandas as pd

from seg.dataset import kaggle_rle
from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from seg.dataset.images import IMAGE_SUFFIXES
from seg.dataset.images import image_size as read_image_size
from seg.dataset.paths import inside, normalize_file_name
from seg.dataset.problems import Problems
from seg.errors import FormatError, ImageError, SegError
from seg.formats.kaggle_write import save
from seg.progress import Progress

logger = logging.getLogger(__name__)


#: Columns with a meaning, by lower-case name.
KNOWN_COLUMNS = ("imageid", "encodedpixels", "height", "width", "classid")


def detect(path: Path) -> bool:
    """True for a ``.csv`` file whose header has ``ImageId`` and ``EncodedPixels`` (any case)."""
    path = Path(path)
    if not (path.is_file() and path.suffix.lower() == ".csv"):
        return False
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            header = next(csv.reader([handle.readline()]), [])
    except OSError:
        return False
    names = {name.strip().lower() for name in header}
    return {"imageid", "encodedpixels"} <= names


def load(
    path: str | os.PathLike[str],
    *,
    problems: Problems | None = None,
    progress: Progress = None,
    images: str | os.PathLike[str] | None = None,
    image_size: tuple[int, int] | None = None,
    class_name: str | None = None,
) -> Dataset:
    """Read a Kaggle ``EncodedPixels`` CSV (see the module docstring for the layouts and choices).

    Args:
        path: the CSV file.
        problems: error policy for bad rows and images (default: raise at the first one).
        progress: wraps the loop over images.
        images: the image folder: image sizes when the CSV has none, file extensions when ``ImageId`` has none, and
            the Dataset's image root.
        image_size: ``(width, height)`` of every image, when neither the CSV nor the image files give sizes.
        class_name: the category of every object when the CSV has no ``ClassId`` column (default ``"object"``).

    Raises:
        FormatError: unreadable CSV, missing ``ImageId``/``EncodedPixels`` columns, no way to know the image sizes,
            or (policy ``raise``) a bad row: malformed ``EncodedPixels`` (odd count, non-integers, runs outside the
            image, overlapping or unsorted runs), sizes that are not positive integers or differ between rows of one
            image, a missing ``ClassId``.
        UnsafePathError: (policy ``raise``) an ``ImageId`` that is absolute or leaves the image folder.
        ImageError: (policy ``raise``) an image file that is missing (when sizes must come from it) or unreadable.

    Example:
        >>> ds = load("train_ship_segmentations_v2.csv", images="train_v2")  # doctest: +SKIP
    """
    path = Path(path)
    if image_size is not None:
        image_size = _check_size(image_size)
    frame = _read_csv(path)
    columns = {str(c).strip().lower(): c for c in frame.columns}
    missing = [c for c in ("imageid", "encodedpixels") if c not in columns]
    if missing:
        raise FormatError(
            "not a Kaggle EncodedPixels CSV",
            path=path,
            expected="columns ImageId and EncodedPixels",
            actual=", ".join(map(str, frame.columns)) or "no header",
        )
    has_size = "height" in columns and "width" in columns
    if not has_size and images is None and image_size is None and len(frame):
        raise FormatError(
            "image sizes unknown: the CSV has no Height and Width columns",
            path=path,
            expected="the image folder (--images) or one size for all images (--image-size WxH)",
        )
    reader = _Reader(path, frame, columns, problems or Problems(), images, image_size, class_name)
    groups = reader.groups()
    for image_key in progress(groups) if progress is not None else groups:
        try:
            reader.read_image(image_key, groups[image_key])
        except SegError as error:
            reader.problems.handle(error)
    logger.info("%s: %d images, %d objects", path, len(reader.images), len(reader.objects))
    return Dataset.from_records(reader.images, reader.objects, reader.categories(), image_root=images, source=path)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (width, height), got {size!r}") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"image_size must be positive, got {size!r}")
    return width, height


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise FormatError("file not found", path=path) from e
    except pd.errors.EmptyDataError as e:
        raise FormatError("empty file", path=path, expected="a header ImageId,EncodedPixels") from e
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as e:
        raise FormatError(f"unreadable CSV: {e}", path=path, expected="comma-separated UTF-8 text") from e
    if not isinstance(frame.index, pd.RangeIndex):  # pandas makes extra leading fields the index
        raise FormatError(
            "unreadable CSV: rows have more fields than the header",
            path=path,
            expected=f"{len(frame.columns)} fields per row",
        )
    return frame


class _Reader:
    """Turns the rows of one image at a time into image and object rows."""

    def __init__(
        self,
        path: Path,
        frame: pd.DataFrame,
        columns: dict[str, str],
        problems: Problems,
        images: str | os.PathLike[str] | None,
        image_size: tuple[int, int] | None,
        class_name: str | None,
    ) -> None:
        self.path, self.problems, self.image_size = path, problems, image_size
        self.root = None if images is None else Path(images)
        self.ids = frame[columns["imageid"]].tolist()
        self.pixels = frame[columns["encodedpixels"]].tolist()
        self.heights = frame[columns["height"]].tolist() if "height" in columns else None
        self.widths = frame[columns["width"]].tolist() if "width" in columns else None
        self.class_ids = frame[columns["classid"]].tolist() if "classid" in columns else None
        extra = [c for key, c in columns.items() if key not in KNOWN_COLUMNS]
        self.extra = {str(c).strip(): frame[c].tolist() for c in extra}
        self.class_name = class_name or "object"
        self.images: list[dict] = []
        self.objects: list[dict] = []
        self.names: dict[str, None] = {}
        self.image_ids: dict[str, str] = {}

    def groups(self) -> dict[str, list[int]]:
        """Row indices per ``ImageId``, in order of first appearance."""
        groups: dict[str, list[int]] = {}
        for index, image_key in enumerate(self.ids):
            groups.setdefault(image_key.strip(), []).append(index)
        return groups

    def read_image(self, image_key: str, rows: list[int]) -> None:
        where = f"row {rows[0] + 1}"
        file_name = normalize_file_name(image_key, source=self.path, item_id=where)
        image_id = _strip_suffix(file_name)
        if image_id in self.image_ids:
            raise FormatError(
                "two ImageIds name one image",
                path=self.path,
                item_id=where,
                expected="one ImageId per image",
                actual=f"{self.image_ids[image_id]!r} and {image_key!r}",
            )
        name, found = self._find(file_name)
        size, rows = self._size(image_key, rows, found)
        if size is None:  # every row had a bad size, each already reported
            return
        width, height = size
        objects = [o for o in (self._object(i, image_key, width, height) for i in rows) if o is not None]
        row = {"image_id": image_id, "file_name": name, "width": width, "height": height}
        if name != image_key:
            row["kaggle_image_id"] = image_key
        self.image_ids[image_id] = image_key
        self.images.append(row)
        for obj in objects:
            self.names.setdefault(obj["category"])
            obj.update(image_id=image_id, file_name=row["file_name"], width=width, height=height)
            self.objects.append(obj)

    def _find(self, file_name: str) -> tuple[str, Path | None]:
        """The image's file name and file under the image folder (trying image suffixes when ``file_name`` has
        none); ``(file_name, None)`` when there is no folder or no such file."""
        if self.root is None:
            return file_name, None
        candidates = [file_name]
        if PurePosixPath(file_name).suffix.lower() not in IMAGE_SUFFIXES:
            candidates += [file_name + s for s in IMAGE_SUFFIXES] + [file_name + s.upper() for s in IMAGE_SUFFIXES]
        for name in candidates:
            path = inside(self.root, name)
            if path.is_file():
                return name, path
        return file_name, None

    def _size(self, image_key: str, rows: list[int], found: Path | None) -> tuple[tuple[int, int] | None, list[int]]:
        """The image's ``(width, height)`` and its rows left after dropping rows with bad or inconsistent sizes
        (None when no row is left)."""
        if self.heights is not None and self.widths is not None:
            size, kept = None, []
            for i in rows:
                where = f"row {i + 1}"
                text = (self.widths[i].strip(), self.heights[i].strip())
                try:
                    this = _check_size(text)
                except ValueError:
                    self._problem("Width and Height must be positive integers", where, image_key, actual=text)
                    continue
                if size is not None and this != size:
                    self._problem(
                        "size differs from an earlier row of the same image",
                        where,
                        image_key,
                        expected=f"{size[0]}x{size[1]}",
                        actual=f"{this[0]}x{this[1]}",
                    )
                    continue
                size = this
                kept.append(i)
            return size, kept
        if found is not None:
            return read_image_size(found), rows
        if self.image_size is not None:
            return self.image_size, rows
        raise ImageError(
            "image file not found, and no size given",
            path=self.root,
            item_id=image_key,
            expected="the image under the image folder, or --image-size WxH",
        )

    def _object(self, i: int, image_key: str, width: int, height: int) -> dict | None:
        text = self.pixels[i].strip()
        if not text or text.lower() == "nan":
            return None
        where = f"row {i + 1}"
        try:
            counts = kaggle_rle.to_coco_counts(text, height, width)
        except ValueError as e:
            self._problem(f"bad EncodedPixels: {e}", where, image_key, actual=_shorten(text))
            return None
        attributes = {name: values[i].strip() for name, values in self.extra.items() if values[i].strip()}
        if self.class_ids is None:
            category = self.class_name
        else:
            class_id = self.class_ids[i].strip()
            if not class_id:
                self._problem("ClassId is empty", where, image_key, expected="a class id")
                return None
            category = class_id.split("_", 1)[0] if class_id.split("_", 1)[0].isdigit() else class_id
            if category != class_id:
                attributes = {"ClassId": class_id, **attributes}
        row = {"category": category, "rle": coco_rle.from_uncompressed(counts, height, width), "source_id": where}
        if attributes:
            row["attributes"] = json.dumps(attributes, ensure_ascii=False, separators=(",", ":"))
        return row

    def _problem(
        self, message: str, where: str, image_key: str, *, expected: object = None, actual: object = None
    ) -> None:
        self.problems.handle(
            FormatError(
                message, path=self.path, item_id=f"{where} (image {image_key})", expected=expected, actual=actual
            )
        )

    def categories(self) -> list[Category]:
        """Numeric class ids in numeric order, other names in order of appearance; ``class_name`` without ClassId."""
        if self.class_ids is None:
            return [Category(self.class_name, 1)]
        names = list(self.names)
        if names and all(n.isdigit() for n in names):
            return [Category(n, int(n)) for n in sorted(names, key=int)]
        return [Category(n, i + 1) for i, n in enumerate(names)]


def _strip_suffix(file_name: str) -> str:
    suffix = PurePosixPath(file_name).suffix
    return file_name[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else file_name


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


__all__ = ["detect", "load", "save"]
