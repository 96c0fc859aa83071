"""Image paths inside annotation files: normalised to forward slashes and kept inside their root."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from seg.errors import UnsafePathError


def normalize_file_name(name: str, *, source: str | os.PathLike[str] | None = None, item_id: object = None) -> str:
    """Return ``name`` relative to the image root with forward slashes.

    Windows backslashes become slashes and a leading ``./`` is dropped. Absolute paths (``/x``, ``C:\\x``, ``\\\\host``)
    and paths that climb out with ``..`` raise UnsafePathError: seg never reads or writes outside a root because a file
    told it to.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnsafePathError("empty image file name", path=source, item_id=item_id, expected="a relative path")
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise UnsafePathError(
            f"absolute image path {name!r}", path=source, item_id=item_id, expected="a path relative to the image root"
        )
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../") or norm == ".":
        raise UnsafePathError(
            f"image path {name!r} leaves the image root", path=source, item_id=item_id, expected="no '..' components"
        )
    return norm


def inside(root: str | os.PathLike[str], relative: str) -> Path:
    """Join a relative path to ``root``, refusing anything that lands outside it.

    The check is lexical (``..`` and absolute parts), so symbolic links the user placed inside the root are followed
    as the user meant them.
    """
    root_path = Path(os.path.abspath(root))
    target = Path(os.path.abspath(root_path / relative))
    if target != root_path and root_path not in target.parents:
        raise UnsafePathError(f"path {relative!r} leaves {root_path}", path=root, expected="a path inside the root")
    return target
