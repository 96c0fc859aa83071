"""The Dataset's own folder: ``images.parquet``, ``objects.parquet``, ``categories.json`` (written atomically)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from seg.dataset.core import Category, Dataset
from seg.errors import FormatError
from seg.outputs import atomic_dir

FILES = ("images.parquet", "objects.parquet", "categories.json")


def is_dataset_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder holding a saved Dataset."""
    path = Path(path)
    return path.is_dir() and all((path / name).is_file() for name in FILES)


def save_dataset(dataset: Dataset, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write ``dataset`` as a folder; the folder appears complete or not at all."""
    with atomic_dir(path, overwrite) as tmp:
        dataset.images.to_parquet(tmp / "images.parquet", index=False)
        dataset.objects.to_parquet(tmp / "objects.parquet", index=False)
        meta = {
            "categories": [{"id": c.id, "name": c.name, "supercategory": c.supercategory} for c in dataset.categories],
            "image_root": None if dataset.image_root is None else str(dataset.image_root),
        }
        (tmp / "categories.json").write_text(json.dumps(meta, indent=2))
    return Path(path)


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read a Dataset folder written by :func:`save_dataset`, validating the contract."""
    path = Path(path)
    try:
        meta = json.loads((path / "categories.json").read_text())
        categories = [
            Category(str(c["name"]), int(c["id"]), str(c.get("supercategory", ""))) for c in meta["categories"]
        ]
        images = pd.read_parquet(path / "images.parquet")
        objects = pd.read_parquet(path / "objects.parquet")
    except FileNotFoundError as e:
        raise FormatError("not a seg dataset folder", path=path, expected=", ".join(FILES)) from e
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, OSError) as e:
        raise FormatError(f"unreadable dataset folder: {e}", path=path) from e
    root = meta.get("image_root")
    return Dataset(images, objects, categories, image_root=root, source=path)
