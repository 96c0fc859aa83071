"""Consistency signals: duplicates, class conflicts, unknown classes, border cuts, shapes unlike their class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seg.curate.consistency import BORDER_CUT_MAX, SIGNALS, consistency_signals
from seg.curate.shapes import shape_features
from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset

SIZE = 64
NAMES = [s.name for s in SIGNALS]


def _rect(y0: int, x0: int, y1: int, x1: int, size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def _dataset(objects: list[dict], images: int = 1, size: int = SIZE, categories: list[str] | None = None) -> Dataset:
    """Objects as dicts: ``mask`` (array) or a box (``bbox_*``), plus any object column."""
    image_rows = [{"image_id": str(i), "file_name": f"{i}.png", "width": size, "height": size} for i in range(images)]
    rows = []
    for k, spec in enumerate(objects):
        spec = dict(spec)
        image_id = spec.pop("image_id", "0")
        row = {
            "image_id": image_id,
            "file_name": f"{image_id}.png",
            "width": size,
            "height": size,
            "category": spec.pop("category", "thing"),
            "source_id": str(k),
        }
        if "mask" in spec:
            row["rle"] = coco_rle.encode(spec.pop("mask"))
        row.update(spec)
        rows.append(row)
    names = categories or sorted({r["category"] for r in rows} | {"thing"})
    return Dataset.from_records(image_rows, rows, [Category(c, i + 1) for i, c in enumerate(names)])


def _signals(objects: list[dict], **kwargs) -> pd.DataFrame:
    reference = kwargs.pop("reference", None)
    classes = kwargs.pop("classes", None)
    frame, images = consistency_signals(_dataset(objects, **kwargs), reference=reference, classes=classes)
    assert images is None
    return frame


def test_frame_follows_the_contract():
    frame = _signals([{"mask": _rect(10, 10, 30, 30)}, {"mask": _rect(10, 10, 30, 30)}])
    assert list(frame.columns) == NAMES
    assert frame.index.equals(pd.RangeIndex(2))
    values = frame.to_numpy()
    assert ((values >= 0) & (values <= 1) | np.isnan(values)).all()
    assert {s.group for s in SIGNALS} == {"consistency"} and {s.level for s in SIGNALS} == {"object"}


def test_empty_dataset():
    frame, _ = consistency_signals(_dataset([], images=3))
    assert list(frame.columns) == NAMES and len(frame) == 0


# -- duplicate ------------------------------------------------------------------------------------------------------


def test_duplicate_goes_to_the_later_object():
    frame = _signals(
        [
            {"mask": _rect(10, 10, 30, 30)},
            {"mask": _rect(40, 40, 50, 50)},
            {"mask": _rect(10, 10, 30, 30)},  # exact copy of the first
            {"mask": _rect(40, 40, 50, 51)},  # IoU 100/110 = 0.91 with the second
            {"mask": _rect(10, 40, 20, 55)},  # alone
        ]
    )
    duplicate = frame["duplicate"].to_numpy()
    assert duplicate[0] == 0 and duplicate[1] == 0 and duplicate[4] == 0
    assert duplicate[2] == 1.0
    assert duplicate[3] == pytest.approx((100 / 110 - 0.7) / 0.25)


def test_duplicate_needs_the_same_class_image_and_annotator():
    mask = _rect(10, 10, 30, 30)
    frame = _signals(
        [
            {"mask": mask, "annotator": "ann"},
            {"mask": mask, "annotator": "bob"},  # another person's opinion: agreement, not duplication
            {"mask": mask, "image_id": "1", "annotator": "ann"},  # another image
            {"mask": mask, "image_id": "1", "annotator": "ann", "category": "other"},  # another class
        ],
        images=2,
    )
    assert frame["duplicate"].tolist() == [0.0, 0.0, 0.0, 0.0]
    same_person = _signals([{"mask": mask, "annotator": "ann"}, {"mask": mask, "annotator": "ann"}])
    assert same_person["duplicate"].tolist() == [0.0, 1.0]


def test_crowd_regions_are_not_paired():
    frame = _signals([{"mask": _rect(10, 10, 30, 30), "iscrowd": True}, {"mask": _rect(10, 10, 30, 30)}])
    assert frame["duplicate"].tolist() == [0.0, 0.0]


def test_box_only_duplicates_are_compared_as_boxes():
    box = {"bbox_x": 5.0, "bbox_y": 5.0, "bbox_w": 20.0, "bbox_h": 10.0}
    frame = _signals([box, box, {"mask": _rect(5, 5, 15, 25)}])
    assert frame["duplicate"].tolist() == [0.0, 1.0, 1.0]


# -- class conflict -------------------------------------------------------------------------------------------------


def test_class_conflict_uses_the_smaller_objects_area():
    frame = _signals(
        [
            {"mask": _rect(0, 0, 40, 40), "category": "field"},
            {"mask": _rect(10, 10, 20, 20), "category": "house"},  # inside the field
            {"mask": _rect(50, 50, 60, 60), "category": "house"},  # alone
            {"mask": _rect(50, 59, 60, 64), "category": "road"},  # overlaps the second house by 10 of its 50 px
        ]
    )
    conflict = frame["class_conflict"].to_numpy()
    assert conflict[0] == 1.0 and conflict[1] == 1.0
    assert conflict[2] == 0.0 and conflict[3] == 0.0  # 10 / 50 = 0.2, under 0.3
    frame = _signals([{"mask": _rect(0, 0, 10, 10), "category": "a"}, {"mask": _rect(0, 4, 10, 14), "category": "b"}])
    assert frame["class_conflict"].tolist() == pytest.approx([0.6, 0.6])  # 60 / 100 -> (0.6 - 0.3) / 0.5


# -- unknown class --------------------------------------------------------------------------------------------------


def test_unknown_class():
    objects = [{"mask": _rect(5, 5, 10, 10), "category": "cat"}, {"mask": _rect(20, 20, 30, 30), "category": "dog"}]
    assert _signals(objects)["unknown_class"].tolist() == [0.0, 0.0]
    assert _signals(objects, classes=["cat"])["unknown_class"].tolist() == [0.0, 1.0]
    reference = _dataset([{"mask": _rect(5, 5, 10, 10), "category": "dog"}], categories=["dog"])
    assert _signals(objects, reference=reference)["unknown_class"].tolist() == [1.0, 0.0]
    assert _signals(objects, reference=reference, classes=["cat", "dog"])["unknown_class"].tolist() == [0.0, 0.0]


# -- border cut -----------------------------------------------------------------------------------------------------


def test_border_cut_is_small_and_grows_with_the_cut():
    frame = _signals(
        [
            {"mask": _rect(20, 20, 30, 30)},
            {"mask": _rect(0, 20, 10, 30)},  # one side of four on the border
            {"mask": _rect(0, 0, 1, SIZE)},  # a strip along the top edge
        ]
    )
    cut = frame["border_cut"].to_numpy()
    assert cut[0] == 0
    assert cut[1] == pytest.approx(BORDER_CUT_MAX * 0.25 / 0.5)
    assert cut[2] == BORDER_CUT_MAX


# -- class shape ----------------------------------------------------------------------------------------------------


def _houses(count: int = 12) -> list[dict]:
    rng = np.random.default_rng(7)
    out = []
    for k in range(count):
        y, x = 8 + 40 * (k // 6), 8 + 40 * (k % 6)
        h, w = rng.integers(12, 18, 2)
        out.append({"mask": _rect(y, x, y + h, x + w, size=256), "category": "house"})
    return out


def test_class_shape_fires_on_an_outlier_and_not_on_its_class():
    objects = [*_houses(), {"mask": _rect(150, 20, 153, 200, size=256), "category": "house"}]  # a long thin strip
    shape = _signals(objects, size=256)["class_shape"].to_numpy()
    assert shape[-1] == 1.0
    assert (shape[:-1] < 0.2).all()


def test_class_shape_forgives_cut_objects_for_being_small():
    cut = {"mask": _rect(0, 100, 3, 104, size=256), "category": "house"}  # a sliver of a house cut by the tile
    huge = {"mask": _rect(0, 100, 200, 256, size=256), "category": "house"}  # cut, yet far larger than any house
    shape = _signals([*_houses(), cut, huge], size=256)["class_shape"].to_numpy()
    assert shape[-2] == 0.0
    assert shape[-1] == 1.0


def test_class_shape_needs_enough_objects_and_uses_the_reference():
    few = _signals([*_houses(5), {"mask": _rect(150, 20, 153, 200, size=256), "category": "house"}], size=256)
    assert few["class_shape"].isna().all()
    reference = _dataset(_houses(12), size=256)
    judged = _signals(
        [*_houses(5), {"mask": _rect(150, 20, 153, 200, size=256), "category": "house"}], size=256, reference=reference
    )
    assert judged["class_shape"].iloc[-1] == 1.0
    assert (judged["class_shape"].iloc[:-1] < 0.2).all()


def test_identical_objects_do_not_make_infinite_z_scores():
    squares = [
        {"mask": _rect(8 + 40 * (k // 6), 8 + 40 * (k % 6), 24 + 40 * (k // 6), 24 + 40 * (k % 6), 256)}
        for k in range(12)
    ]
    nearly = {"mask": _rect(200, 200, 216, 217, size=256)}  # one pixel column wider
    shape = _signals([*squares, nearly], size=256)["class_shape"].to_numpy()
    assert (shape == 0).all()


# -- bad input ------------------------------------------------------------------------------------------------------


def test_unreadable_masks_are_nan_and_do_not_break_the_rest():
    ds = _dataset([{"mask": _rect(10, 10, 30, 30)}, {"mask": _rect(10, 10, 30, 30)}, {"mask": _rect(10, 10, 30, 30)}])
    objects = ds.objects.copy()
    objects.loc[0, "rle"] = "not an rle ~~"
    frame, _ = consistency_signals(ds.replace(objects=objects))
    assert frame.loc[0, ["duplicate", "class_conflict", "border_cut", "class_shape"]].isna().all()
    assert frame.loc[0, "unknown_class"] == 0.0
    assert frame["duplicate"].tolist()[1:] == [0.0, 1.0]


def test_empty_masks_and_shared_shapes():
    ds = _dataset([{"mask": np.zeros((SIZE, SIZE), np.uint8)}, {"mask": np.zeros((SIZE, SIZE), np.uint8)}])
    frame, _ = consistency_signals(ds, shapes=shape_features(ds.objects))
    assert frame["duplicate"].tolist() == [0.0, 0.0]
    assert frame["class_shape"].isna().all()


# -- the sample -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    import seg
    from seg.sample.build import build_sample

    info = build_sample(tmp_path_factory.mktemp("sample") / "s")
    return info, seg.read(info.coco, "coco", images=info.images.resolve())


def _planted(info, kind: str) -> dict:
    return next(e for e in info.planted if e["kind"] == kind)


def test_sample_wrong_class_is_the_worst_class_shape(sample):
    info, ds = sample
    frame, _ = consistency_signals(ds)
    wrong = _planted(info, "wrong_class")
    worst = frame["class_shape"].sort_values(ascending=False)
    position = int(ds.objects.index[ds.objects["source_id"] == str(wrong["object_id"])][0])
    assert frame.loc[position, "class_shape"] == 1.0
    bowtie = _planted(info, "self_intersecting")
    bowtie_position = int(ds.objects.index[ds.objects["source_id"] == str(bowtie["object_id"])][0])
    clean = worst.drop(index=[position, bowtie_position])  # the bow-tie's mask is two triangles: odd for a building
    assert clean.max() < 0.2
    roads = frame.loc[(ds.objects["category"] == "road").to_numpy()].drop(index=position)
    assert roads["class_shape"].max() == 0.0


def test_sample_duplicate_is_the_only_duplicate(sample):
    info, ds = sample
    frame, _ = consistency_signals(ds)
    planted = _planted(info, "duplicate")
    positions = ds.objects.index[ds.objects["source_id"].isin([str(planted["object_id"])])]
    assert frame.loc[positions[0], "duplicate"] == 1.0
    assert frame["duplicate"].drop(index=positions).max() == 0.0
    assert frame["class_conflict"].max() == 0.0
    assert frame["border_cut"].max() <= BORDER_CUT_MAX
