"""The format registry: one module per annotation format, dispatched by name.

Each format module defines ``detect(path) -> bool``, ``load(path, **options) -> Dataset`` and
``save(dataset, path, **options) -> dict`` (a report). Every ``load`` accepts ``problems`` (a
:class:`~seg.dataset.problems.Problems` error policy) and ``progress`` (a wrapper around an iterable, e.g. tqdm); every
``save`` accepts ``overwrite`` and ``progress``. Other keyword options are the format's own. Modules are imported only
when used, so the registry can feed the CLI's choices without importing pandas.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from seg.errors import OptionError, UnknownFormatError

if TYPE_CHECKING:
    from seg.dataset.core import Dataset


@dataclass(frozen=True)
class FormatInfo:
    """A registered format: its name, the module implementing it, and a one-line description."""

    name: str
    module: str
    description: str


#: Formats in detection order (most specific first).
FORMATS: dict[str, FormatInfo] = {
    "parquet": FormatInfo("parquet", "seg.formats.parquet", "seg's Dataset folder (images/objects parquet)"),
    "coco": FormatInfo("coco", "seg.formats.coco", "COCO instances JSON or COCO results list"),
    "via": FormatInfo("via", "seg.formats.via", "VGG Image Annotator project or export (1.x, 2.x, 3.x JSON; CSV)"),
    "labelstudio": FormatInfo("labelstudio", "seg.formats.labelstudio", "Label Studio JSON export (tasks)"),
    "labelme": FormatInfo("labelme", "seg.formats.labelme", "Labelme JSON, one file per image (or a folder)"),
    "kaggle": FormatInfo("kaggle", "seg.formats.kaggle", "Kaggle CSV with EncodedPixels"),
    "masks": FormatInfo("masks", "seg.formats.masks", "folders of PNG class-index masks beside images"),
}


def format_module(name: str) -> ModuleType:
    """Import and return the module implementing format ``name``."""
    try:
        info = FORMATS[name]
    except KeyError:
        raise UnknownFormatError(f"unknown format {name!r}", expected=", ".join(FORMATS)) from None
    return importlib.import_module(info.module)


def detect_format(path: str | os.PathLike[str]) -> str:
    """Name the format of ``path`` by asking each registered format in turn."""
    path = Path(path)
    if not path.exists():
        raise UnknownFormatError("source not found", path=path)
    for name in FORMATS:
        if format_module(name).detect(path):
            return name
    raise UnknownFormatError("cannot tell the annotation format", path=path, expected="; ".join(FORMATS))


def _call(function: Any, fmt: str, *args: Any, **options: Any) -> Any:
    accepted = inspect.signature(function).parameters
    given = {k: v for k, v in options.items() if v is not None}
    unknown = [k for k in given if k not in accepted]
    if unknown:
        raise OptionError(f"format {fmt!r} does not take option(s) {', '.join(unknown)}", expected=", ".join(accepted))
    return function(*args, **given)


def read(source: str | os.PathLike[str], format: str | None = None, **options: Any) -> Dataset:
    """Read any known annotation source into a Dataset.

    Args:
        source: a file or folder.
        format: a name from :data:`FORMATS`; detected when None.
        **options: the format's own load options (None values are ignored).

    Example:
        >>> ds = seg.read("annotations/instances_val.json", images="images/val")  # doctest: +SKIP
    """
    fmt = format or detect_format(source)
    return _call(format_module(fmt).load, fmt, Path(source), **options)


def write(dataset: Dataset, out: str | os.PathLike[str], format: str, **options: Any) -> dict:
    """Write ``dataset`` to ``out`` in ``format``; returns the format's report (counts, losses, skipped items)."""
    return _call(format_module(format).save, format, dataset, Path(out), **options)
