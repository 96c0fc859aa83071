"""The Dataset: the one table every reader produces and every writer consumes.

Two pandas DataFrames and a category list (see DESIGN.md):

* ``images``: one row per image, with or without objects: ``image_id``, ``file_name``, ``width``, ``height`` and any
  provenance columns.
* ``objects``: one row per annotated object with the columns in :data:`OBJECT_COLUMNS`; ``rle`` is a compressed COCO
  RLE string at full image size (null only for box-only objects). Optional: ``geometry`` (JSON list of flat polygon
  rings as read), ``attributes`` (JSON object), ``annotator``, ``origin``.
* ``categories``: ordered :class:`Category` list; class index ``i + 1`` in mask PNGs is ``categories[i]``.

Order is stable: images keep the order they were read in, objects are grouped by image in that order and keep their
reading order inside an image.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from seg.dataset import rle as coco_rle
from seg.dataset.paths import inside, normalize_file_name
from seg.errors import ValidationError


@dataclass(frozen=True)
class Category:
    """A class: its ``name`` (the key used everywhere), the ``id`` it had in its source format, its supercategory."""

    name: str
    id: int
    supercategory: str = ""


#: Required object columns and their dtypes.
OBJECT_COLUMNS: dict[str, str] = {
    "image_id": "str",
    "file_name": "str",
    "width": "int64",
    "height": "int64",
    "category": "str",
    "rle": "str",
    "bbox_x": "float64",
    "bbox_y": "float64",
    "bbox_w": "float64",
    "bbox_h": "float64",
    "area": "int64",
    "iscrowd": "bool",
    "score": "float64",
    "source_id": "str",
}
#: Required image columns and their dtypes.
IMAGE_COLUMNS: dict[str, str] = {"image_id": "str", "file_name": "str", "width": "int64", "height": "int64"}
#: Optional object columns with a fixed meaning.
OPTIONAL_OBJECT_COLUMNS: dict[str, str] = {"geometry": "str", "attributes": "str", "annotator": "str", "origin": "str"}

NULLABLE = {"rle", "score", "geometry", "attributes", "annotator", "origin"}


def _coerce(frame: pd.DataFrame, columns: Mapping[str, str], what: str, source: object) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{what} table lacks required columns", path=source, expected=", ".join(columns), actual=", ".join(missing)
        )
    frame = frame.copy()
    for column, dtype in columns.items():
        if column not in frame.columns:
            continue
        values = frame[column]
        if column not in NULLABLE and values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise ValidationError(f"{what} column {column!r} has a missing value", path=source, item_id=f"row {row}")
        try:
            frame[column] = values.astype(dtype)
        except (ValueError, TypeError) as e:
            raise ValidationError(
                f"{what} column {column!r} has values of the wrong type",
                path=source,
                expected=dtype,
                actual=values.dtype,
            ) from e
    return frame


class Dataset:
    """Images, objects and categories of one annotated image set.

    Args:
        images: one row per image (see :data:`IMAGE_COLUMNS`).
        objects: one row per object (see :data:`OBJECT_COLUMNS`).
        categories: the classes, in class-index order.
        image_root: the folder that image ``file_name`` values are relative to, when known.
        source: where the data came from, named in validation errors.

    Raises:
        ValidationError: when the tables break the contract.
    """

    def __init__(
        self,
        images: pd.DataFrame,
        objects: pd.DataFrame,
        categories: Iterable[Category],
        image_root: str | os.PathLike[str] | None = None,
        source: object = None,
    ) -> None:
        self.categories = list(categories)
        self.image_root = None if image_root is None else Path(image_root)
        self.images, self.objects = self._validated(images, objects, source)

    def _validated(
        self, images: pd.DataFrame, objects: pd.DataFrame, source: object
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        names = [c.name for c in self.categories]
        if len(set(names)) != len(names):
            raise ValidationError("duplicate category names", path=source, actual=names)
        images = _coerce(images, IMAGE_COLUMNS, "images", source).reset_index(drop=True)
        objects = _coerce(objects, {**OBJECT_COLUMNS}, "objects", source)
        optional = {c: t for c, t in OPTIONAL_OBJECT_COLUMNS.items() if c in objects.columns}
        objects = _coerce(objects, optional, "objects", source)
        for image_id, name in zip(images["image_id"], images["file_name"], strict=True):
            if normalize_file_name(name, source=source, item_id=image_id) != name:
                raise ValidationError(
                    "image file name is not normalised", path=source, item_id=image_id, expected="forward slashes"
                )
        duplicated = images["image_id"].duplicated()
        if duplicated.any():
            dup = images.loc[duplicated, "image_id"].iloc[0]
            raise ValidationError("duplicate image id", path=source, item_id=dup, expected="unique image ids")
        if ((images["width"] <= 0) | (images["height"] <= 0)).any():
            bad = images.loc[(images["width"] <= 0) | (images["height"] <= 0), "image_id"].iloc[0]
            raise ValidationError("image has no size", path=source, item_id=bad, expected="width and height > 0")
        position = pd.Series(np.arange(len(images)), index=images["image_id"].to_numpy())
        order = objects["image_id"].map(position)
        if order.isna().any():
            bad = objects.loc[order.isna(), "image_id"].iloc[0]
            raise ValidationError("object refers to an unknown image", path=source, item_id=bad, expected="an image id")
        unknown = ~objects["category"].isin(names)
        if unknown.any():
            raise ValidationError(
                "object has an unknown category",
                path=source,
                item_id=objects.loc[unknown, "source_id"].iloc[0],
                expected=f"one of {names}",
                actual=objects.loc[unknown, "category"].iloc[0],
            )
        sizes = images.set_index("image_id").loc[objects["image_id"], ["width", "height"]].to_numpy()
        mismatch = (sizes != objects[["width", "height"]].to_numpy()).any(axis=1)
        if mismatch.any():
            bad = objects.loc[mismatch, "image_id"].iloc[0]
            raise ValidationError("object size differs from its image's", path=source, item_id=bad)
        objects = objects.assign(_order=order.to_numpy()).sort_values("_order", kind="stable").drop(columns="_order")
        columns = [*OBJECT_COLUMNS, *(c for c in objects.columns if c not in OBJECT_COLUMNS)]
        image_columns = [*IMAGE_COLUMNS, *(c for c in images.columns if c not in IMAGE_COLUMNS)]
        return images[image_columns], objects[columns].reset_index(drop=True)

    # -- construction -------------------------------------------------------------------------------------------

    @classmethod
    def from_records(
        cls,
        images: Iterable[Mapping],
        objects: Iterable[Mapping],
        categories: Iterable[Category],
        image_root: str | os.PathLike[str] | None = None,
        source: object = None,
    ) -> Dataset:
        """Build a Dataset from dict rows, filling defaults (``iscrowd`` False, ``score`` null, ``source_id`` "")
        and deriving ``area`` and the box from ``rle`` when they are not given."""
        image_frame = pd.DataFrame(list(images))
        if image_frame.empty:
            image_frame = pd.DataFrame(columns=list(IMAGE_COLUMNS))
        rows = [_complete_object(dict(o)) for o in objects]
        object_frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(OBJECT_COLUMNS))
        return cls(image_frame, object_frame, categories, image_root=image_root, source=source)

    def replace(
        self,
        images: pd.DataFrame | None = None,
        objects: pd.DataFrame | None = None,
        categories: Iterable[Category] | None = None,
    ) -> Dataset:
        """A new Dataset with some parts replaced (validated again)."""
        return Dataset(
            self.images if images is None else images,
            self.objects if objects is None else objects,
            self.categories if categories is None else categories,
            image_root=self.image_root,
        )

    # -- views --------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"Dataset({len(self.images)} images, {len(self.objects)} objects, {len(self.categories)} categories)"

    @property
    def category_names(self) -> list[str]:
        return [c.name for c in self.categories]

    def class_index(self) -> dict[str, int]:
        """``{category name: class index}`` with 0 kept for background."""
        return {c.name: i + 1 for i, c in enumerate(self.categories)}

    def to_frame(self) -> pd.DataFrame:
        """One row per object with its image's extra columns (provenance) merged in."""
        extra = [c for c in self.images.columns if c not in ("file_name", "width", "height")]
        return self.objects.merge(self.images[extra], on="image_id", how="left", suffixes=("", "_image"))

    def object_mask(self, index: int) -> npt.NDArray[np.uint8]:
        """The (H, W) 0/1 mask of object row ``index`` (its box for box-only objects)."""
        row = self.objects.iloc[index]
        if isinstance(row["rle"], str):
            return coco_rle.decode(row["rle"], row["height"], row["width"])
        mask = np.zeros((row["height"], row["width"]), np.uint8)
        x0, y0 = int(np.floor(row["bbox_x"])), int(np.floor(row["bbox_y"]))
        x1, y1 = int(np.ceil(row["bbox_x"] + row["bbox_w"])), int(np.ceil(row["bbox_y"] + row["bbox_h"]))
        mask[max(y0, 0) : y1, max(x0, 0) : x1] = 1
        return mask

    def image_path(self, image_id: str) -> Path:
        """Where the image file of ``image_id`` lies.

        A ``path`` column (set by merges) wins; else ``file_name`` under the row's ``root`` column or the Dataset's
        image root, never outside that root.
        """
        rows = self.images.index[self.images["image_id"] == image_id]
        if len(rows) == 0:
            raise ValidationError("unknown image", item_id=image_id)
        return self._path_of(self.images.loc[rows[0]].to_dict())

    def image_paths(self) -> list[Path | None]:
        """The image file of every image row, in order (None where the Dataset knows no image folder)."""
        paths: list[Path | None] = []
        for row in self.images.to_dict("records"):
            try:
                paths.append(self._path_of(row))
            except ValidationError:
                paths.append(None)
        return paths

    def _path_of(self, row: dict) -> Path:
        if isinstance(row.get("path"), str):
            return Path(row["path"])
        root = row.get("root") if isinstance(row.get("root"), str) else self.image_root
        if root is None:
            raise ValidationError("dataset has no image folder", item_id=row["image_id"], expected="an image root")
        return inside(root, row["file_name"])

    def geometry(self, index: int) -> list[list[float]] | None:
        """Polygon rings of object row ``index`` as read from a polygon format, or None."""
        if "geometry" not in self.objects.columns:
            return None
        value = self.objects["geometry"].iloc[index]
        return json.loads(value) if isinstance(value, str) else None

    def equals(self, other: Dataset) -> bool:
        """True when both hold the same images, objects (same columns and values) and categories."""
        return (
            self.categories == other.categories
            and self.images.sort_index(axis=1).equals(other.images.sort_index(axis=1))
            and self.objects.sort_index(axis=1).equals(other.objects.sort_index(axis=1))
        )


def _complete_object(row: dict) -> dict:
    row.setdefault("rle", None)
    row.setdefault("iscrowd", False)
    row.setdefault("score", np.nan)
    row.setdefault("source_id", "")
    counts, height, width = row["rle"], row["height"], row["width"]
    if "area" not in row:
        row["area"] = (
            coco_rle.area(counts, height, width)
            if counts is not None
            else round(row.get("bbox_w", 0) * row.get("bbox_h", 0))
        )
    if "bbox_x" not in row:
        box = coco_rle.bbox(counts, height, width) if counts is not None else (0.0, 0.0, 0.0, 0.0)
        row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"] = box
    return row
