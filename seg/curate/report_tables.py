"""The report's image and object tables: the curation's tables completed with every column the page needs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from seg.dataset.core import Dataset
from seg.errors import OptionError


def image_table(images: pd.DataFrame, top: int | None, min_score: float | None) -> pd.DataFrame:
    """The images table with every column the page needs, sorted by rank (missing ranks last)."""
    table = images.copy().reset_index(drop=True)
    if "image_id" not in table.columns:
        raise OptionError("the images table has no image_id column", expected="image_id, score, rank, kept")
    table["image_id"] = table["image_id"].astype(str)
    if "file_name" not in table.columns:
        table["file_name"] = table["image_id"]
    table["file_name"] = table["file_name"].fillna("").astype(str)
    table["score"] = pd.to_numeric(table["score"], errors="coerce") if "score" in table.columns else math.nan
    if "rank" not in table.columns:
        order = np.lexsort([table["image_id"].to_numpy(dtype=str), -table["score"].fillna(-1).to_numpy()])
        table["rank"] = 0
        table.loc[order, "rank"] = np.arange(1, len(table) + 1)
    table["rank"] = pd.to_numeric(table["rank"], errors="coerce")
    if "kept" not in table.columns:
        if top is not None:
            table["kept"] = table["rank"] <= top
        elif min_score is not None:
            table["kept"] = table["score"] >= min_score
        else:
            table["kept"] = True
    table["kept"] = table["kept"].fillna(False).astype(bool)
    table["reasons"] = table["reasons"].fillna("").astype(str) if "reasons" in table.columns else ""
    order = np.lexsort([table["image_id"].to_numpy(dtype=str), table["rank"].fillna(np.inf).to_numpy()])
    return table.iloc[order].reset_index(drop=True)


def object_table(objects: pd.DataFrame | None, dataset: Dataset, signal_names: Sequence[str]) -> pd.DataFrame:
    """Per object position: image_id, category, score, kept, reasons, worst own badness, flagged, label."""
    source = dataset.objects
    frame = pd.DataFrame(index=pd.RangeIndex(len(source)))
    frame["image_id"] = source["image_id"].astype(str).to_numpy()
    frame["category"] = source["category"].astype(str).to_numpy()
    frame["score"] = math.nan
    frame["kept"] = True
    frame["reasons"] = ""
    frame["worst"] = 0.0
    if objects is not None and len(objects):
        given = objects.set_index("object") if "object" in objects.columns else objects
        given = given[~given.index.duplicated()]
        given = given.loc[given.index.intersection(frame.index)]
        if "score" in given.columns:
            frame.loc[given.index, "score"] = pd.to_numeric(given["score"], errors="coerce")
        if "kept" in given.columns:
            frame.loc[given.index, "kept"] = given["kept"].fillna(True).astype(bool)
        if "reasons" in given.columns:
            frame.loc[given.index, "reasons"] = given["reasons"].fillna("").astype(str)
        columns = [c for c in signal_names if c in given.columns]
        if columns:
            values = given[columns].apply(pd.to_numeric, errors="coerce")
            worst = values.clip(0, 1).max(axis=1, skipna=True).fillna(0.0)
            frame.loc[given.index, "worst"] = worst
    frame["flagged"] = frame["reasons"] != ""
    ids = source["source_id"].to_numpy(dtype=object, na_value="") if "source_id" in source.columns else None
    positions = np.arange(len(source)).astype(str).astype(object)
    frame["label"] = positions if ids is None else np.where(ids != "", ids, positions)
    return frame
