"""``run_demo``: the flow on the embedded sample writes what it reports, masks are class-index PNGs, and earlier
outputs are never replaced without ``overwrite``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import seg
from seg.dataset.store import load_dataset
from seg.demo import CHIP, TRAIN, run_demo
from seg.errors import OutputExistsError

KINDS = {"shifted", "missing", "self_intersecting", "wrong_class", "duplicate"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo") / "demo"
    return out, run_demo(out)


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    return {
        p.relative_to(root).as_posix(): (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _sample_counts(sample: Path) -> dict[str, int]:
    doc = json.loads((sample / "annotations" / "coco.json").read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    counts = {name: 0 for name in names.values()}
    for a in doc["annotations"]:
        counts[names[a["category_id"]]] += 1
    return counts


def test_report_names_files_that_exist(demo: tuple[Path, dict]) -> None:
    out, report = demo
    for key in ("sample", "cache", "dataset", "masks"):
        assert Path(report[key]).is_dir(), key
    for key in ("coco", "kaggle", "planted_errors_file"):
        assert Path(report[key]).is_file(), key
    for path in report["annotations"].values():
        assert Path(path).is_file()
    assert Path(report["sample"]) == out / "sample"
    assert report["images"] == 36
    assert report["objects"] == _sample_counts(out / "sample")
    assert report["planted_errors"] == dict.fromkeys(KINDS, 1)
    json.dumps(report, default=str)  # the CLI prints it


def test_downloads_keep_each_sample_image_once(demo: tuple[Path, dict]) -> None:
    out, report = demo
    downloads = report["downloads"]
    assert (downloads["kept"], downloads["duplicates"], downloads["failed"]) == (36, 1, {"not_image": 1})
    sample = {hashlib.sha256(p.read_bytes()).digest() for p in (out / "sample" / "images").iterdir()}
    kept = {hashlib.sha256(p.read_bytes()).digest() for p in (out / "downloads" / "images").iterdir()}
    assert kept == sample


def test_curation_drops_every_planted_error(demo: tuple[Path, dict]) -> None:
    out, report = demo
    curated = report["curated"]
    planted = json.loads((out / "sample" / "annotations" / "planted_errors.json").read_text())["errors"]
    assert curated["planted_dropped"] == f"{len(planted)} of {len(planted)}"
    assert curated["kept_images"] == report["images"] - len(planted)
    kept = load_dataset(curated["dataset"])
    assert not {str(e["image_id"]) for e in planted} & set(kept.images.image_id)
    assert Path(curated["report"]).read_text().startswith("<!DOCTYPE html>")


def test_dataset_folder_holds_the_sample(demo: tuple[Path, dict]) -> None:
    _, report = demo
    ds = load_dataset(report["dataset"])
    assert len(ds.images) == report["images"]
    assert ds.category_names == ["building", "road"]
    assert len(ds.objects) == sum(report["objects"].values())
    first = ds.images["image_id"].iloc[0]
    assert ds.image_path(first).is_file()


def test_masks_are_single_channel_class_index_pngs(demo: tuple[Path, dict]) -> None:
    _, report = demo
    root = Path(report["masks"])
    assert json.loads((root / "classes.json").read_text()) == {"0": "background", "1": "building", "2": "road"}
    masks = sorted(root.glob("*/masks/*.png"))
    kept = report["curated"]["kept_images"]  # the masks are the curated images'
    assert len(masks) == kept
    assert {p.parent.parent.name for p in masks} == {"train", "test"}
    assert len(list(root.glob("test/masks/*.png"))) == round(0.2 * kept)

    ds = load_dataset(report["curated"]["dataset"])
    index = ds.class_index()
    by_name = {
        Path(name).stem: image_id for image_id, name in zip(ds.images["image_id"], ds.images["file_name"], strict=True)
    }
    seen: set[int] = set()
    for path in masks:
        with Image.open(path) as image:
            assert image.mode == "L" and image.size == (256, 256)
            label = np.asarray(image)
        seen |= set(np.unique(label).tolist())
        # In the sample no two objects of different classes overlap: the mask is each object's class index.
        expected = np.zeros((256, 256), np.uint8)
        rows = np.flatnonzero(ds.objects["image_id"].to_numpy() == by_name[path.stem])
        for i in rows:
            expected[ds.object_mask(int(i)).astype(bool)] = index[ds.objects["category"].iloc[i]]
        assert np.array_equal(label, expected), path
        assert (path.parent.parent / "images" / f"{path.stem}.jpg").is_file()
    assert seen == {0, 1, 2}


def test_coco_and_kaggle_outputs_read_back(demo: tuple[Path, dict]) -> None:
    _, report = demo
    coco = seg.read(report["coco"], "coco", images=Path(report["sample"]) / "images")
    assert len(coco.images) == report["images"]
    assert len(coco.objects) == sum(report["objects"].values())
    kaggle = seg.read(report["kaggle"], "kaggle", images=Path(report["sample"]) / "images")
    assert len(kaggle.images) == report["images"]
    assert len(kaggle.objects) == sum(report["objects"].values())
    assert sorted(kaggle.objects["rle"]) == sorted(coco.objects["rle"])


def test_second_run_without_overwrite_refuses_and_touches_nothing(demo: tuple[Path, dict]) -> None:
    out, _ = demo
    before = _snapshot(out)
    with pytest.raises(OutputExistsError) as info:
        run_demo(out)
    assert str(out) in str(info.value)
    assert _snapshot(out) == before


def test_one_existing_output_is_enough_to_refuse_before_writing(tmp_path: Path) -> None:
    (tmp_path / "kaggle.csv").write_text("mine")
    with pytest.raises(OutputExistsError, match=r"kaggle\.csv"):
        run_demo(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kaggle.csv"]
    assert (tmp_path / "kaggle.csv").read_text() == "mine"


def test_demo_reads_the_via_and_label_studio_files_of_the_same_objects(demo: tuple[Path, dict]) -> None:
    tools = demo[1]["annotation_tools"]
    for name in ("via", "labelstudio"):
        # all but the courtyard building, whose hole a VIA or Label Studio polygon in the sample does not hold
        assert tools[name]["objects"] == 666 and tools[name]["differ"] == 1, tools[name]


def test_demo_starts_from_the_sample_cache(demo: tuple[Path, dict]) -> None:
    chips = demo[1]["chips"]
    assert chips["written"] == 9  # the 6 x 6 block of 256-pixel tiles in 512-pixel chips
    labelled = load_dataset(chips["footprints"])
    assert len(labelled.images) == 9 and len(labelled.objects) == chips["objects_on_chips"] > 500
    assert set(labelled.category_names) == {"building", "road"}
    for path in labelled.image_paths():
        assert path.suffix == ".tif" and path.is_file()


def test_demo_trains_predicts_and_evaluates_a_model(demo: tuple[Path, dict]) -> None:
    out, report = demo
    model = report["model"]
    run = json.loads((out / "run" / "run.json").read_text())
    assert run["epochs_done"] == model["epochs"] == TRAIN["epochs"]
    assert run["classes"] == ["background", "building", "road"]
    assert (out / "run" / "checkpoints" / "best.weights.h5").is_file()
    # seeded and deterministic on the CPU; the floor leaves room for other CPUs' arithmetic
    evaluation = json.loads((out / "evaluation" / "metrics.json").read_text())
    assert evaluation["mean_iou"] == model["evaluation"]["mean_iou"] > 0.6
    assert evaluation["images"] == len(list((out / "masks" / "test" / "images").iterdir()))
    assert (out / "evaluation" / "confusion.png").is_file()
    predicted = sorted((out / "predictions" / "masks").glob("*.png"))
    assert [p.stem for p in predicted] == sorted(p.stem for p in (out / "masks" / "test" / "images").iterdir())
    predictions = load_dataset(out / "predictions" / "dataset")
    assert len(predictions.objects) == model["predicted_objects"] > 0
    assert predictions.objects["score"].between(0, 1).all()
    chips = sorted((out / "chip-predictions" / "masks").glob("*.png"))
    assert len(chips) == report["chips"]["written"]
    with Image.open(chips[0]) as chip:
        assert chip.size == (CHIP, CHIP)  # larger than the 128-pixel training crops: the sliding window
    for page in (model["predictions"], model["chip_predictions"]):
        assert Path(page).read_text().startswith("<!DOCTYPE html>")
