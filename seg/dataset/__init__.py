"""The core: Dataset, RLE codecs, polygon <-> mask, the parquet store.

``Dataset`` and ``Category`` are imported lazily so that the codecs can be used without importing pandas.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Category", "Dataset"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from seg.dataset import core

        return getattr(core, name)
    raise AttributeError(f"module 'seg.dataset' has no attribute {name!r}")
