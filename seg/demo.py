"""``seg demo``: the flow on the embedded sample, from annotation files to training-ready outputs.

Steps: build the sample (:func:`seg.sample.build_sample`), collect its images over HTTP from 127.0.0.1 the way
``seg collect urls`` collects from the web (a URL list with a duplicate image and a file that is not an image, which
the downloader drops), cut its SAS.Planet cache into georeferenced chips and put
its true footprints (GeoJSON) on them, read its COCO file into a Dataset, read its VIA project and
Label Studio export and check that they hold the same objects, save the Dataset folder, curate it (keep the best
images, which drops the images with planted errors, with an HTML report), export the curated images as class-index
mask PNGs with a train/test split, train a small U-Net on them for a few epochs on the CPU, predict the test images
and the 512-pixel chips (sliding window) with overlays, evaluate on the test split, and write COCO and Kaggle CSV files
of the objects. With a Label Studio server configured, push the sample's images with the COCO objects as
pre-annotations and pull them back.

Layout of ``out``::

    sample/        the embedded sample (SAS.Planet cache, images, COCO / VIA / Label Studio files, planted errors)
    downloads/     the sample's images collected over HTTP: images/, manifest.csv, dataset/
    chips/         512 x 512 GeoTIFF chips (EPSG:3857) cut from the sample's cache, with their Dataset
    footprints/    the sample's true footprints rasterized onto those chips (a Dataset folder)
    dataset/       seg's Dataset folder (images.parquet, objects.parquet, categories.json)
    curated/       the best images by ``seg curate`` (the planted errors dropped): Dataset, scores, report.html
    masks/         the curated images + single-channel class-index PNG masks, in train/ and test/ (80/20)
    run/           the trained U-Net: run.json, log.csv, checkpoints/ (``seg train``)
    predictions/   masks, overlays, index.html and a predictions Dataset for the test images (``seg predict``)
    chip-predictions/  the same for the 512 x 512 GeoTIFF chips, predicted with a sliding window
    evaluation/    metrics.json and confusion.png on the test split (``seg evaluate``)
    coco.json      COCO instances written back from the Dataset
    kaggle.csv     Kaggle EncodedPixels CSV
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from seg.dataset.core import Dataset
from seg.errors import OutputExistsError
from seg.progress import Progress

if TYPE_CHECKING:
    from seg.sample.build import SampleInfo

logger = logging.getLogger(__name__)

#: The demo's outputs, relative to its folder.
OUTPUTS = {
    "sample": "sample",
    "downloads": "downloads",
    "chips": "chips",
    "footprints": "footprints",
    "dataset": "dataset",
    "curated": "curated",
    "masks": "masks",
    "run": "run",
    "predictions": "predictions",
    "chip_predictions": "chip-predictions",
    "evaluation": "evaluation",
    "coco": "coco.json",
    "kaggle": "kaggle.csv",
}
#: Chip size of the demo's chips from the sample's cache (the sample's tiles are 256 x 256).
CHIP = 512
#: The Label Studio project the demo pushes the sample to.
DEMO_PROJECT = "seg demo sample"
#: Share of images in the validation split of the mask export, and its seed.
VAL_SPLIT, SPLIT_SEED = 0.2, 0
#: The demo's model: a small U-Net trained on 128-pixel crops of the 256-pixel images, on the CPU in two minutes.
TRAIN = {"architecture": "unet_small", "encoder": None, "size": (128, 128), "epochs": 24, "batch_size": 4}


def run_demo(
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Callable[[Iterable], Iterable] | None = None,
    label_studio: tuple[str, str] | None = None,
    train: bool = True,
) -> dict:
    """Run the whole flow on the embedded sample and say where everything went.

    Args:
        out: the demo's folder (created; other files in it are left alone).
        overwrite: rebuild and replace earlier demo outputs in ``out``.
        progress: wraps long loops (e.g. tqdm); None shows nothing.
        label_studio: ``(url, api_key)`` of a Label Studio server to push the sample to and pull it back from.
        train: train, predict and evaluate (the slow part); without it the demo stops at the masks.

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
    from seg.dataset.store import load_dataset, save_dataset
    from seg.sample import build_sample

    logger.info("building the sample in %s", paths["sample"])
    info = build_sample(paths["sample"], overwrite=overwrite)
    downloads = collect_over_http(info, paths["downloads"], overwrite=overwrite, progress=progress)
    chips = from_cache(info, paths["chips"], paths["footprints"], overwrite=overwrite, progress=progress)
    dataset = seg.read(info.coco, "coco", images=info.images.resolve(), progress=progress)
    logger.info("read %s", dataset)
    tools = {
        "via": agreement(dataset, seg.read(info.via, "via", images=info.images.resolve())),
        "labelstudio": agreement(dataset, seg.read(info.labelstudio, "labelstudio", images=info.root.resolve())),
    }
    if label_studio is not None:
        tools["label_studio_server"] = round_trip_label_studio(dataset, info.images.resolve(), *label_studio)
    save_dataset(dataset, paths["dataset"], overwrite=overwrite)
    curated = curate_sample(dataset, info, paths["curated"], overwrite=overwrite, progress=progress)
    reports = {
        "masks": seg.write(
            load_dataset(curated["dataset"]),
            paths["masks"],
            "masks",
            split=VAL_SPLIT,
            seed=SPLIT_SEED,
            overwrite=overwrite,
            progress=progress,
        ),
        "coco": seg.write(dataset, paths["coco"], "coco", overwrite=overwrite, progress=progress),
        "kaggle": seg.write(dataset, paths["kaggle"], "kaggle", overwrite=overwrite, progress=progress),
    }
    model = train_sample(paths, Path(chips["chips"]), overwrite=overwrite, progress=progress) if train else None
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
        "downloads": downloads,
        "curated": curated,
        "chips": chips,
        "model": model,
        "annotation_tools": tools,
        "reports": reports,
    }


def train_sample(paths: dict[str, Path], chips: Path, *, overwrite: bool, progress: Progress = None) -> dict:
    """Train the demo's U-Net on the curated masks, predict the test images and the chips, and evaluate it."""
    from seg.train.evaluate import evaluate_run
    from seg.train.fit import TrainConfig, train
    from seg.train.predict import predict_images

    config = TrainConfig(data=paths["masks"], out=paths["run"], encoder_weights=None, seed=SPLIT_SEED, **TRAIN)
    info = train(config, overwrite=overwrite, notes=logger.info)
    test_images = paths["masks"] / "test" / "images"
    predictions = predict_images(
        paths["run"], test_images, paths["predictions"], overwrite=overwrite, progress=progress
    )
    on_chips = predict_images(
        paths["run"], chips / "images", paths["chip_predictions"], overwrite=overwrite, progress=progress
    )
    metrics = evaluate_run(paths["run"], paths["masks"], paths["evaluation"], overwrite=overwrite, progress=progress)
    return {
        "run": str(paths["run"]),
        "epochs": info.epochs_done,
        "best": info.best,
        "predictions": str(paths["predictions"] / "index.html"),
        "predicted_objects": predictions["objects"],
        "chip_predictions": str(paths["chip_predictions"] / "index.html"),
        "chip_objects": on_chips["objects"],
        "evaluation": {k: metrics[k] for k in ("out", "images", "mean_iou", "per_class_iou", "pixel_accuracy")},
    }


def collect_over_http(info: SampleInfo, out: Path, *, overwrite: bool, progress: Progress = None) -> dict:
    """Download the sample's images from a server on 127.0.0.1, as ``seg collect urls`` downloads from the web.

    The URL list holds every image, one of them again under another URL (its tile in the cache, the same bytes), and
    the sample's README (text, not an image): the downloader keeps each image once and refuses the README.
    """
    from seg.collector.candidates import Candidate
    from seg.collector.download import DownloadOptions, download
    from seg.sample.serve import serve_folder

    images = sorted(f"images/{p.name}" for p in info.images.iterdir())
    in_cache = next(p for p in sorted(info.map_dir.rglob("*.jpg")))  # the same bytes as one of images/
    paths = [*images, in_cache.relative_to(info.root).as_posix(), "README.txt"]
    with serve_folder(info.root) as base:
        candidates = [
            Candidate(image_url=f"{base}/{path}", query="demo", engine="urls", rank=rank, title=Path(path).name)
            for rank, path in enumerate(paths)
        ]
        options = DownloadOptions(allow_private=True, host_rate=0)
        return download(candidates, out, options=options, overwrite=overwrite, progress=progress)


def curate_sample(dataset: Dataset, info: SampleInfo, out: Path, *, overwrite: bool, progress: Progress = None) -> dict:
    """Keep the sample's best images, as many as it has without a planted error, and say which planted errors went."""
    from seg.curate.curate import curate, write_curation

    planted = {str(error["image_id"]) for error in info.planted}
    result = curate(dataset, top=len(dataset.images) - len(planted), progress=progress)
    written = write_curation(result, dataset, out, overwrite=overwrite, source_name=str(info.coco), progress=progress)
    dropped = set(result.images.loc[~result.images["kept"], "image_id"])
    written["planted_dropped"] = f"{len(planted & dropped)} of {len(planted)}"
    return written


def from_cache(
    info: SampleInfo, chips_dir: Path, labelled_dir: Path, *, overwrite: bool, progress: Progress = None
) -> dict:
    """Cut the sample's SAS.Planet cache into georeferenced chips and put its true footprints on them."""
    from seg.collector.cache import open_cache
    from seg.collector.chips import make_chips
    from seg.collector.vectors import footprints_to_dataset
    from seg.dataset.store import save_dataset

    report: dict = {}
    chips = make_chips(
        open_cache(info.map_dir.parent),
        info.map_dir.name,
        info.zoom,
        chips_dir,
        chip=CHIP,
        overwrite=overwrite,
        progress=progress,
        report=report,
    )
    labelled = footprints_to_dataset(info.footprints, chips, class_property="class")
    save_dataset(labelled, labelled_dir, overwrite=overwrite)
    return {
        "chips": str(chips_dir),
        "written": report["written"],
        "footprints": str(labelled_dir),
        "objects_on_chips": len(labelled.objects),
    }


def agreement(reference: Dataset, other: Dataset) -> dict:
    """How many of ``other``'s objects have an object of the same class and the same mask on the same image file in
    ``reference`` (matched by image path and mask, so any format's ids and folder layout will do)."""

    def keyed(dataset: Dataset) -> list[tuple]:
        files = dict(zip(dataset.images["image_id"], dataset.image_paths(), strict=True))
        return [(files[r.image_id], r.category, r.rle) for r in dataset.objects.itertuples()]

    masks = set(keyed(reference))
    same = sum(key in masks for key in keyed(other))
    return {"objects": len(other.objects), "same_as_coco": same, "differ": len(other.objects) - same}


def round_trip_label_studio(dataset: Dataset, images: Path, url: str, api_key: str) -> dict:
    """Push the sample's images with ``dataset`` as pre-annotations, pull the predictions back, and compare."""
    from seg.annotate.client import connect
    from seg.annotate.pull import pull
    from seg.annotate.push import push

    with connect(url, api_key) as client:
        pushed = push(client, images, project=DEMO_PROJECT, classes=dataset.category_names, predictions=dataset)
        pulled = pull(client, DEMO_PROJECT, which="predictions", image_root=images)
    return {"project": DEMO_PROJECT, "url": url, "pushed": pushed, "pulled_objects": len(pulled.objects)}
