"""Keeping and renaming categories (``--classes`` and ``--rename``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from seg.dataset.core import Category, Dataset
from seg.errors import SegError


def rename_categories(dataset: Dataset, rename: Mapping[str, str]) -> Dataset:
    """Rename categories; two old names mapped to one new name become one category (the first one's id is kept).

    Raises:
        SegError: when an old name is not a category of the dataset.
    """
    if not rename:
        return dataset
    unknown = sorted(set(rename) - set(dataset.category_names))
    if unknown:
        raise SegError(f"cannot rename unknown categories {unknown}", expected=f"one of {dataset.category_names}")
    categories: list[Category] = []
    for category in dataset.categories:
        name = rename.get(category.name, category.name)
        if name not in [c.name for c in categories]:
            categories.append(Category(name, category.id, category.supercategory))
    categories = _unique_ids(categories)
    objects = dataset.objects.assign(category=dataset.objects["category"].map(lambda n: rename.get(n, n)))
    return dataset.replace(objects=objects, categories=categories)


def keep_categories(dataset: Dataset, names: Iterable[str]) -> Dataset:
    """Keep only the objects of ``names`` (in that class-index order); images stay, even when left empty.

    Raises:
        SegError: when a name is not a category of the dataset.
    """
    names = list(names)
    by_name = {c.name: c for c in dataset.categories}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SegError(f"unknown categories {unknown}", expected=f"one of {dataset.category_names}")
    objects = dataset.objects[dataset.objects["category"].isin(names)]
    return dataset.replace(objects=objects, categories=[by_name[n] for n in names])


def _unique_ids(categories: list[Category]) -> list[Category]:
    ids = [c.id for c in categories]
    if len(set(ids)) == len(ids):
        return categories
    return [Category(c.name, i + 1, c.supercategory) for i, c in enumerate(categories)]
