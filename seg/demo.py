"""``seg demo``: the flow on the embedded sample, from annotation files to training-ready outputs.

Steps: build the sample (:func:`seg.sample.build_sample`), read its COCO file into a Dataset, save the Dataset folder,
export class-index mask PNGs with a train/val split, and write COCO and Kaggle CSV files of the same objects.

Layout of ``out``::

    sample/        the embedded sample (SAS.Planet cache, images, COCO / VIA / Label Studio files, planted errors)
    dataset/       seg's Dataset folder (images.parquet, objects.parquet, categories.json)
    masks/         images + single-channel class-index PNG masks, in train/ and test/ (80/20)
    coco.json      COCO instances written back from the Dataset
    kaggle.csv     Kaggle EncodedPixels CSV
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from seg.errors import OutputExistsError

logger = logging.getLogger(__name__)

#: The demo's outputs, relative to its folder.
OUTPUTS = {"sample": "sample", "dataset": "dataset", "masks": "masks", "coco": "coco.json", "kaggle": "kaggle.csv"}
#: Share of images in the validation split of the mask export, and its seed.
VAL_SPLIT, SPLIT_SEED = 0.2, 0


def run_demo(
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> dict:
    """Run the whole flow on the embedded sample and say where everything went.

    Args:
        out: the demo's folder (created; other files in it are left alone).
        overwrite: rebuild and replace earlier demo outputs in ``out``.
        progress: wraps long loops (e.g. tqdm); None shows nothing.

    Returns:
        Paths of everything written (``sample``, ``cache``, ``annotations`` (coco, via, labelstudio),
        ``planted_errors_file``, ``dataset``, ``masks``, ``coco``, ``kaggle``), counts (``images``, ``objects`` per
        class, ``planted_errors`` per kind) and each writer's report under ``reports``.

    Raises:
        OutputExistsError: a demo output already exists in ``out`` and ``overwrite`` is false; nothing is written.

    Example:
        >>> report = run_demo("demo-output")  # doctest: +SKIP
        >>> report["masks"]  # doctest: +SKIP
        'demo-output/masks'
    """
    out = Path(out)
    paths = {key: out / name for key, name in OUTPUTS.items()}
    if not overwrite:
        existing = [p for p in paths.values() if p.exists() or p.is_symlink()]
        if existing:
            raise OutputExistsError("demo output exists; pass --overwrite to replace it", path=existing[0])

    import seg
    from seg.dataset.store import save_dataset
    from seg.sample import build_sample

    logger.info("building the sample in %s", paths["sample"])
    info = build_sample(paths["sample"], overwrite=overwrite)
    dataset = seg.read(info.coco, "coco", images=info.images.resolve(), progress=progress)
    logger.info("read %s", dataset)
    save_dataset(dataset, paths["dataset"], overwrite=overwrite)
    reports = {
        "masks": seg.write(
            dataset, paths["masks"], "masks", split=VAL_SPLIT, seed=SPLIT_SEED, overwrite=overwrite, progress=progress
        ),
        "coco": seg.write(dataset, paths["coco"], "coco", overwrite=overwrite, progress=progress),
        "kaggle": seg.write(dataset, paths["kaggle"], "kaggle", overwrite=overwrite, progress=progress),
    }
    planted: dict[str, int] = {}
    for error in info.planted:
        planted[error["kind"]] = planted.get(error["kind"], 0) + 1
    return {
        "sample": str(info.root),
        "cache": str(info.map_dir),
        "annotations": {"coco": str(info.coco), "via": str(info.via), "labelstudio": str(info.labelstudio)},
        "planted_errors_file": str(info.planted_errors),
        "dataset": str(paths["dataset"]),
        "masks": str(paths["masks"]),
        "coco": str(paths["coco"]),
        "kaggle": str(paths["kaggle"]),
        "images": len(dataset.images),
        "objects": {name: int((dataset.objects["category"] == name).sum()) for name in dataset.category_names},
        "planted_errors": planted,
        "reports": reports,
    }
