"""The core: Dataset, RLE codecs, polygon <-> mask, the parquet store."""

from seg.dataset.core import Category, Dataset

__all__ = ["Category", "Dataset"]
