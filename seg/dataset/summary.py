"""What ``seg info`` reports: sizes, objects per class, coverage, and problems found."""

from __future__ import annotations

import pandas as pd

from seg.dataset.core import Dataset

#: Objects smaller than this many pixels are reported as specks.
SPECK_PIXELS = 4


def summarize(dataset: Dataset, check_files: bool = True) -> dict:
    """Summarise a Dataset.

    Coverage per class is the summed object area over the summed image area (overlaps counted twice).

    Returns:
        ``{"images", "images_without_objects", "objects", "classes": {name: {...}}, "problems": [str, ...]}``.
    """
    images, objects = dataset.images, dataset.objects
    total_pixels = int((images["width"] * images["height"]).sum())
    classes = {}
    for name in dataset.category_names:
        rows = objects[objects["category"] == name]
        classes[name] = {
            "objects": len(rows),
            "images": int(rows["image_id"].nunique()),
            "coverage": float(rows["area"].sum() / total_pixels) if total_pixels else 0.0,
            "crowd": int(rows["iscrowd"].sum()),
            "box_only": int(rows["rle"].isna().sum()),
            "predictions": int(rows["score"].notna().sum()),
        }
    return {
        "images": len(images),
        "images_without_objects": int((~images["image_id"].isin(objects["image_id"])).sum()),
        "objects": len(objects),
        "classes": classes,
        "problems": _problems(dataset, check_files),
    }


def _problems(dataset: Dataset, check_files: bool) -> list[str]:
    objects = dataset.objects
    problems = []
    masked = objects[objects["rle"].notna()]
    empty = masked[masked["area"] == 0]
    problems += [
        f"image {r.image_id}: object {r.source_id} ({r.category}) has an empty mask" for r in empty.itertuples()
    ]
    specks = masked[(masked["area"] > 0) & (masked["area"] < SPECK_PIXELS)]
    problems += [
        f"image {r.image_id}: object {r.source_id} ({r.category}) covers only {r.area} pixel(s)"
        for r in specks.itertuples()
    ]
    duplicated = masked[masked.duplicated(subset=["image_id", "category", "rle"], keep="first")]
    problems += [
        f"image {r.image_id}: object {r.source_id} ({r.category}) duplicates another object's mask"
        for r in duplicated.itertuples()
    ]
    unused = [c for c in dataset.category_names if c not in set(objects["category"])]
    problems += [f"category {name!r} has no objects" for name in unused]
    if check_files:
        for image_id, path in zip(dataset.images["image_id"], dataset.image_paths(), strict=True):
            if path is not None and not path.exists():
                problems.append(f"image {image_id}: file {path} not found")
    return problems


def format_summary(summary: dict) -> str:
    """The summary as the text table ``seg info`` prints."""
    lines = [
        f"images: {summary['images']} ({summary['images_without_objects']} without objects)",
        f"objects: {summary['objects']}",
    ]
    if summary["classes"]:
        table = pd.DataFrame(summary["classes"]).T
        table["coverage"] = table["coverage"].map(lambda v: f"{v:.2%}")
        lines.append(table.to_string())
    problems = summary["problems"]
    lines.append(f"problems: {len(problems)}")
    lines += [f"  {p}" for p in problems[:50]]
    if len(problems) > 50:
        lines.append(f"  ... and {len(problems) - 50} more")
    return "\n".join(lines)
