"""Combining datasets (an open dataset plus one's own annotations) into one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from seg.dataset.categories import _unique_ids, rename_categories
from seg.dataset.core import Category, Dataset
from seg.errors import SegError


def merge_datasets(
    datasets: Sequence[Dataset], names: Sequence[str], rename: Mapping[str, str] | None = None
) -> Dataset:
    """Merge datasets into one.

    Categories are united by name (after ``rename``, applied to every input that has the old name). Image ids are kept
    when they are unique across inputs; otherwise every image id becomes ``"<name>/<id>"``. File names that collide
    get the same prefix. Every image and object records its input's name in an ``origin`` column, and images keep
    the ``path`` of their file so that images from different folders stay reachable.

    Args:
        datasets: the inputs, in order.
        names: one short name per input (used for ``origin`` and prefixes).
        rename: ``{old: new}`` category names.
    """
    if len(datasets) != len(names) or len(set(names)) != len(names):
        raise SegError("merge needs one distinct name per dataset", actual=list(names))
    rename = dict(rename or {})
    renamed = []
    for dataset in datasets:
        own = {old: new for old, new in rename.items() if old in dataset.category_names}
        renamed.append(rename_categories(dataset, own))
    all_ids = pd.concat([d.images["image_id"] for d in renamed])
    all_files = pd.concat([d.images["file_name"] for d in renamed])
    prefix_ids = all_ids.duplicated().any()
    prefix_files = all_files.duplicated().any()

    categories: list[Category] = []
    images, objects = [], []
    for name, dataset in zip(names, renamed, strict=True):
        for category in dataset.categories:
            if category.name not in [c.name for c in categories]:
                categories.append(category)
        paths = [None if p is None else str(p) for p in dataset.image_paths()]
        image_frame = dataset.images.assign(origin=name, path=paths)
        object_frame = dataset.objects.assign(origin=name)
        if prefix_ids:
            image_frame["image_id"] = name + "/" + image_frame["image_id"]
            object_frame["image_id"] = name + "/" + object_frame["image_id"]
        if prefix_files:
            image_frame["file_name"] = name + "/" + image_frame["file_name"]
            object_frame["file_name"] = name + "/" + object_frame["file_name"]
        images.append(image_frame.drop(columns=[c for c in ("root",) if c in image_frame.columns]))
        objects.append(object_frame)
    return Dataset(pd.concat(images, ignore_index=True), pd.concat(objects, ignore_index=True), _unique_ids(categories))
