"""seg's own Dataset folder as a registry format."""

from __future__ import annotations

import os
from pathlib import Path

from seg.dataset.core import Dataset
from seg.dataset.store import is_dataset_dir, load_dataset, save_dataset


def detect(path: Path) -> bool:
    return is_dataset_dir(path)


def load(path: str | os.PathLike[str], problems: object = None, progress: object = None) -> Dataset:
    """Read a Dataset folder (``problems`` and ``progress`` are accepted for symmetry; the folder is read whole)."""
    return load_dataset(path)


def save(dataset: Dataset, path: str | os.PathLike[str], overwrite: bool = False, progress: object = None) -> dict:
    """Write ``dataset`` as a Dataset folder."""
    save_dataset(dataset, path, overwrite=overwrite)
    return {"images": len(dataset.images), "objects": len(dataset.objects), "path": str(Path(path))}
