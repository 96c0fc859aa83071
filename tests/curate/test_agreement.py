"""Agreement with other annotators and with a model's predictions, on crafted objects whose IoUs are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seg.curate.agreement import (
    MIN_SPREAD,
    OFFSET_FLOOR,
    OFFSET_FULL,
    SIGNALS,
    _annotator_agreement,
    _below_usual,
    _greedy,
    _probabilities,
    _rles,
    agreement_signals,
)
from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from tests.curate.contract import check_contract

SIZE = 64
CATEGORIES = [Category("house", 1), Category("road", 2)]


def box(x: int, y: int, w: int, h: int, size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[y : y + h, x : x + w] = 1
    return mask


def obj(image: str, mask: np.ndarray | None, category: str = "house", **extra) -> dict:
    row = {"image_id": image, "file_name": f"{image}.png", "width": SIZE, "height": SIZE, "category": category}
    row["rle"] = None if mask is None else coco_rle.encode(mask)
    return {**row, **extra}


def make(objects: list[dict], images: tuple[str, ...] = ("a",)) -> Dataset:
    records = [{"image_id": i, "file_name": f"{i}.png", "width": SIZE, "height": SIZE} for i in images]
    return Dataset.from_records(records, objects, CATEGORIES)


def test_signals_declared_in_the_agreement_group() -> None:
    assert {s.group for s in SIGNALS} == {"agreement"}
    assert len({s.name for s in SIGNALS}) == 6


# -- predictions ---------------------------------------------------------------------------------------------------


def test_perfect_predictions_agree() -> None:
    masks = [box(2, 2, 20, 20), box(30, 30, 25, 10)]
    annotations = make([obj("a", m) for m in masks])
    predictions = make([obj("a", m, score=0.9) for m in masks])
    frames = agreement_signals(annotations, predictions=predictions)
    check_contract(annotations, frames, SIGNALS)
    objects, images = frames
    assert objects["prediction_iou"].tolist() == [0.0, 0.0]
    assert objects["prediction_confidence"].tolist() == [0.0, 0.0]
    assert images.loc["a", "missed_by_annotator"] == 0.0
    assert images.loc["a", "prediction_disagreement"] == 0.0
    assert objects["annotator_unmatched"].isna().all()
    assert np.isnan(images.loc["a", "annotator_disagreement"])


def test_shifted_annotation_costs_by_its_boundary_offset() -> None:
    well = [box(x, y, 10, 10) for x in (2, 20, 38) for y in (2, 20)]
    annotations = make([obj("a", box(14, 44, 20, 20)), *[obj("a", m) for m in well]])
    predictions = make([obj("a", box(8, 40, 20, 20), score=0.8), *[obj("a", m, score=0.8) for m in well]])
    objects, images = agreement_signals(annotations, predictions=predictions)
    iou = 14 * 16 / (2 * 400 - 14 * 16)
    offset = 20 * (1 - iou) / (1 + iou)  # over a median offset of 0, taken as 1 px
    assert objects.loc[0, "prediction_iou"] == pytest.approx((offset - OFFSET_FLOOR) / (OFFSET_FULL - OFFSET_FLOOR))
    assert objects.loc[1:, "prediction_iou"].tolist() == [0.0] * 6
    assert objects["prediction_confidence"].max() == 0.0  # no other class: nothing against it
    assert images.loc["a", "prediction_disagreement"] == 0.0  # the only image is the usual one


def test_objects_the_model_does_not_see_cost_nothing_alone() -> None:
    annotations = make([obj("a", box(2, 2, 12, 12)), obj("a", box(30, 30, 12, 12))])
    predictions = make([obj("a", box(2, 2, 12, 12), score=0.9)])
    objects, _ = agreement_signals(annotations, predictions=predictions)
    assert objects["prediction_iou"].tolist() == [0.0, 0.0]


def test_half_done_image_disagrees_more_than_usual() -> None:
    names = tuple("abcdefghij")
    masks = [box(2, 2, 12, 12), box(30, 2, 12, 12), box(2, 30, 12, 12), box(30, 30, 12, 12)]
    annotated = [obj(i, m) for i in names for n, m in enumerate(masks) if not (i == "j" and n >= 2)]
    predicted = [obj(i, m, score=0.9) for i in names for m in masks]
    annotations, predictions = make(annotated, images=names), make(predicted, images=names)
    _, images = agreement_signals(annotations, predictions=predictions)
    # j: two of four matched, mean IoU 0.5 against a median of 1 and the least spread
    assert images.loc["j", "prediction_disagreement"] == 1.0
    assert images.drop(index="j")["prediction_disagreement"].max() == 0.0
    assert images.loc["j", "missed_by_annotator"] == pytest.approx(1 - 0.1**2)


def test_missing_annotations_are_found_by_confident_predictions() -> None:
    annotations = make([obj("a", box(2, 2, 12, 12)), obj("b", box(2, 2, 12, 12))], images=("a", "b"))
    predictions = make(
        [
            obj("a", box(2, 2, 12, 12), score=0.9),
            obj("a", box(30, 30, 14, 14), score=0.8),  # missed
            obj("a", box(30, 2, 12, 12), score=0.5),  # missed
            obj("a", box(2, 40, 12, 12), score=0.3),  # not confident: ignored
            obj("a", box(50, 50, 3, 3), score=0.9),  # smaller than any annotated house: ignored
            obj("b", box(2, 2, 12, 12), score=0.9),
            obj("b", box(4, 4, 12, 12), score=0.9),  # overlaps the annotation: not missed
        ],
        images=("a", "b"),
    )
    objects, images = agreement_signals(annotations, predictions=predictions)
    assert images.loc["a", "missed_by_annotator"] == pytest.approx(1 - 0.2 * 0.5)
    assert images.loc["b", "missed_by_annotator"] == 0.0
    assert objects["prediction_iou"].tolist() == [0.0, 0.0]


def test_the_model_calling_an_object_another_class() -> None:
    houses = [box(x, 2, 10, 10) for x in (2, 20, 38)]
    annotations = make([*[obj("a", m) for m in houses], obj("a", box(2, 40, 20, 8), "road")])
    predictions = make(
        [*[obj("a", m, score=0.9) for m in houses], obj("a", box(2, 40, 20, 8), "house", score=0.9)],
    )
    objects, images = agreement_signals(annotations, predictions=predictions)
    # the road's mean "house" probability 0.9 reaches the houses' typical 0.9, its own "road" probability is 0
    assert objects["prediction_confidence"].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert objects["prediction_iou"].tolist() == [0.0] * 4  # no road prediction to compare its outline with
    assert images.loc["a", "missed_by_annotator"] == pytest.approx(0.9)  # and the house it hides is missing


def test_low_scores_lower_the_probability_but_are_no_rival() -> None:
    annotations = make([obj("a", box(2, 2, 12, 12)), obj("a", box(30, 30, 12, 12), "road")])
    predictions = make([obj("a", box(2, 2, 12, 12), score=0.3), obj("a", box(30, 30, 12, 12), "house", score=0.3)])
    objects, images = agreement_signals(annotations, predictions=predictions)
    assert objects["prediction_iou"].tolist() == [0.0, 0.0]  # unconfident predictions are not matched
    # the road's rival "house" scores 0.3, as the house it really is: a margin of its typical 0.3 (floor 0.25)
    assert objects.loc[0, "prediction_confidence"] == 0.0
    assert objects.loc[1, "prediction_confidence"] == 1.0
    assert images.loc["a", "missed_by_annotator"] == 0.0


def test_predictions_of_classes_the_dataset_lacks_are_ignored() -> None:
    annotations = make([obj("a", box(2, 2, 12, 12))])
    records = [{"image_id": "a", "file_name": "a.png", "width": SIZE, "height": SIZE}]
    predicted = [obj("a", box(2, 2, 12, 12), score=0.9), obj("a", box(30, 30, 20, 20), "car", score=0.9)]
    predictions = Dataset.from_records(records, predicted, [*CATEGORIES, Category("car", 3)])
    objects, images = agreement_signals(annotations, predictions=predictions)
    assert images.loc["a", "missed_by_annotator"] == 0.0
    assert objects.loc[0, "prediction_iou"] == 0.0


def test_box_only_objects_compare_by_their_box() -> None:
    annotations = make(
        [obj("a", None, bbox_x=4.0, bbox_y=4.0, bbox_w=10.0, bbox_h=8.0), obj("a", box(30, 30, 9, 9), "road")]
    )
    predictions = make([obj("a", box(4, 4, 10, 8), score=0.9), obj("a", box(30, 30, 9, 9), "road", score=0.9)])
    objects, images = agreement_signals(annotations, predictions=predictions)
    assert objects["prediction_iou"].tolist() == [0.0, 0.0]
    assert objects["prediction_confidence"].tolist() == [0.0, 0.0]
    assert images.loc["a", "missed_by_annotator"] == 0.0


def test_images_pair_by_id_then_file_name_and_sizes_must_agree(caplog) -> None:
    annotations = make([obj(i, box(2, 2, 12, 12)) for i in ("a", "b", "c")], images=("a", "b", "c"))
    records = [
        {"image_id": "a", "file_name": "elsewhere/a.png", "width": SIZE, "height": SIZE},
        {"image_id": "99", "file_name": "b.png", "width": SIZE, "height": SIZE},  # b, by its file name
        {"image_id": "c", "file_name": "c.png", "width": SIZE * 2, "height": SIZE},  # c, but another size
    ]
    predicted = [obj("a", box(2, 2, 12, 12), score=0.9), obj("99", box(20, 20, 12, 12), score=0.9)]
    predictions = Dataset.from_records(records, predicted, CATEGORIES)
    objects, images = agreement_signals(annotations, predictions=predictions)
    assert objects["prediction_iou"].tolist()[:2] == [0.0, 0.0]
    assert math.isnan(objects.loc[2, "prediction_iou"])
    assert images.loc["b", "missed_by_annotator"] == pytest.approx(0.9)
    assert images.loc[["c"]].isna().all().all()
    assert "differ in size" in caplog.text


def test_predictions_without_images_or_scores() -> None:
    annotations = make([obj("a", box(2, 2, 12, 12)), obj("b", box(2, 2, 12, 12))], images=("a", "b"))
    predictions = make([obj("a", box(2, 2, 12, 12))], images=("a",))  # no score: a sure prediction
    objects, images = agreement_signals(annotations, predictions=predictions)
    assert objects["prediction_iou"].tolist()[0] == 0.0
    assert objects["prediction_confidence"].isna().all()  # no probabilities to read
    assert images.loc["b"].isna().all() and images.loc["a", "prediction_disagreement"] == 0.0
    objects, images = agreement_signals(annotations)
    assert objects.isna().all().all() and images.isna().all().all()


def test_empty_images_and_broken_objects_do_not_crash() -> None:
    annotations = make(
        [obj("a", np.zeros((SIZE, SIZE), np.uint8)), obj("a", None, bbox_x=0.0, bbox_y=0.0, bbox_w=0.0, bbox_h=0.0)],
        images=("a", "b"),
    )
    predictions = make([obj("b", box(2, 2, 12, 12), score=0.7)], images=("a", "b"))
    objects, images = agreement_signals(annotations, predictions=predictions)
    assert objects[["prediction_iou", "prediction_confidence"]].isna().all().all()
    assert images.loc["b", "missed_by_annotator"] == pytest.approx(0.7)  # a class with no sized object: all count
    assert images[["prediction_disagreement"]].notna().all().all()
    empty = make([], images=())
    objects, images = agreement_signals(empty, predictions=empty)
    assert objects.empty and images.empty


@st.composite
def scenes(draw):
    """A few annotated and predicted rectangles (overlapping freely, of two classes) on a 24 x 24 image, with
    scores."""

    def rectangles(count: int) -> list[tuple[np.ndarray, str]]:
        out = []
        for _ in range(count):
            x, y = draw(st.integers(0, 22)), draw(st.integers(0, 22))
            mask = box(x, y, draw(st.integers(1, 24 - x)), draw(st.integers(1, 24 - y)), size=24)
            out.append((mask, draw(st.sampled_from(["house", "road"]))))
        return out

    ours = rectangles(draw(st.integers(1, 3)))
    theirs = rectangles(draw(st.integers(0, 4)))
    scores = [draw(st.floats(0.0, 1.0)) for _ in theirs]
    return ours, theirs, scores


@given(scenes())
def test_probabilities_are_the_mean_of_the_highest_covering_score(scene) -> None:
    ours, theirs, scores = scene
    maps = {name: np.zeros((24, 24)) for name in ("house", "road")}
    for (mask, name), score in zip(theirs, scores, strict=True):
        maps[name] = np.maximum(maps[name], mask * score)
    frame = pd.DataFrame(
        {
            "rle": [coco_rle.encode(m) for m, _ in [*ours, *theirs]],
            "height": 24,
            "width": 24,
            "bbox_x": 0.0,
            "bbox_y": 0.0,
            "bbox_w": 0.0,
            "bbox_h": 0.0,
        }
    )
    rles = _rles(frame)
    names = np.array([n for _, n in ours])
    predicted_names = np.array([n for _, n in theirs], dtype=str)
    areas = np.array([m.sum() for m, _ in ours], np.float64)
    inter = np.array([[(a & b).sum() for b, _ in theirs] for a, _ in ours], np.float64).reshape(len(ours), -1)
    own, rival, _ = _probabilities(
        rles[: len(ours)], names, areas, rles[len(ours) :], predicted_names, np.array(scores), inter
    )
    for k, (mask, name) in enumerate(ours):
        other = "road" if name == "house" else "house"
        assert own[k] == pytest.approx(maps[name][mask.astype(bool)].mean(), abs=1e-9)
        expected = maps[other][mask.astype(bool)].mean() if other in predicted_names else 0.0
        assert rival[k] == pytest.approx(expected, abs=1e-9)


def test_image_iou_is_read_against_the_usual_spread() -> None:
    iou = np.array([0.8, 0.8, 0.8, 0.82, 0.78, np.nan, 0.8 - 4.5 * MIN_SPREAD, 0.2])
    found = _below_usual(iou)  # median 0.8, spread 1.4826 * 0.02, so MIN_SPREAD
    assert found[:5].tolist() == [0.0] * 5
    assert np.isnan(found[5])
    assert found[6] == pytest.approx(0.5)
    assert found[7] == 1.0
    assert np.isnan(_below_usual(np.array([np.nan]))).all()


def test_greedy_matching_takes_the_best_pairs_first() -> None:
    iou = np.array([[0.9, 0.8], [0.85, 0.35], [0.0, 0.25]])
    rows, columns = _greedy(iou)
    assert list(zip(rows.tolist(), columns.tolist(), strict=True)) == [(0, 0), (1, 1)]
    rows, columns = _greedy(np.zeros((0, 3)))
    assert rows.size == columns.size == 0


# -- annotators ----------------------------------------------------------------------------------------------------


def test_two_annotators_who_agree() -> None:
    objects = [obj("a", box(2, 2, 12, 12), annotator=who) for who in ("ann", "bob")]
    dataset = make(objects)
    found, images = agreement_signals(dataset)
    check_contract(dataset, (found, images), SIGNALS)
    assert found["annotator_unmatched"].tolist() == [0.0, 0.0]
    assert images.loc["a", "annotator_disagreement"] == 0.0
    assert found[["prediction_iou", "prediction_confidence"]].isna().all().all()


def test_annotators_who_disagree() -> None:
    rles = _rles(
        pd.DataFrame(
            {
                "rle": [coco_rle.encode(m) for m in [box(2, 2, 10, 10), box(4, 2, 10, 10), box(40, 40, 10, 10)]]
                + [coco_rle.encode(box(40, 2, 10, 10))] * 2,
                "height": SIZE,
                "width": SIZE,
                "bbox_x": 0.0,
                "bbox_y": 0.0,
                "bbox_w": 0.0,
                "bbox_h": 0.0,
            }
        )
    )
    names = np.array(["house", "house", "house", "road", "house"])
    who = np.array(["ann", "bob", "bob", "ann", "bob"], object)  # bob drew one house alone; ann's road is his house
    mean_iou, unmatched = _annotator_agreement(rles, names, who)
    assert mean_iou == pytest.approx((80 / 120) / (2 + 3 - 1))
    assert unmatched.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert _annotator_agreement(rles[:1], names[:1], who[:1]) is None


def test_annotator_disagreement_is_read_against_the_usual() -> None:
    names = tuple("abcdefgh")
    objects = [obj(i, box(2, 2, 12, 12), annotator=who) for i in names for who in ("ann", "bob")]
    objects += [obj("h", box(30, 30, 12, 12), annotator="bob"), obj("h", box(30, 2, 9, 9), annotator="bob")]
    objects += [obj("g", box(2, 2, 12, 12), annotator=None)]  # not measured
    dataset = make(objects, images=names)
    found, images = agreement_signals(dataset)
    assert images.loc["h", "annotator_disagreement"] == 1.0  # mean IoU 1/3 against a median of 1
    assert images.drop(index="h")["annotator_disagreement"].max() == 0.0
    anonymous = dataset.objects["annotator"].isna().to_numpy()
    assert found.loc[anonymous, "annotator_unmatched"].isna().all()
    assert found["annotator_unmatched"].iloc[-2:].tolist() == [1.0, 1.0]


def test_three_annotators_count_shares() -> None:
    objects = [
        obj("a", box(2, 2, 10, 10), annotator="ann"),
        obj("a", box(2, 2, 10, 10), annotator="bob"),
        obj("a", box(30, 30, 10, 10), annotator="cat"),
    ]
    found, images = agreement_signals(make(objects))
    assert found["annotator_unmatched"].tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert images.loc["a", "annotator_disagreement"] == 0.0  # the only multi-annotator image is the usual one


def test_progress_wraps_the_image_loop() -> None:
    dataset = make([obj("a", box(2, 2, 5, 5))], images=("a", "b", "c"))
    seen = []

    def progress(items):
        seen.append(len(items))
        return items

    agreement_signals(dataset, progress=progress)
    assert seen == [3]


# -- the sample ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample, and a model's predictions for it that are right where the annotations are wrong."""
    import seg
    from seg.sample.build import build_sample

    info = build_sample(tmp_path_factory.mktemp("sample") / "s")
    dataset = seg.read(info.coco, "coco", images=info.images.resolve())
    planted = {e["kind"]: e for e in info.planted}
    table = dataset.objects.assign(score=0.9)
    source = table["source_id"]
    shifted = source == str(planted["shifted"]["object_id"])
    dx, dy = planted["shifted"]["shift"]
    mask = dataset.object_mask(int(np.flatnonzero(shifted)[0]))
    table.loc[shifted, "rle"] = coco_rle.encode(np.roll(mask, (-dy, -dx), axis=(0, 1)))
    table.loc[source == str(planted["wrong_class"]["object_id"]), "category"] = "building"
    table.loc[source == str(planted["self_intersecting"]["object_id"]), "rle"] = coco_rle.encode(
        _box_mask(planted["self_intersecting"]["bbox"])
    )
    table = table[source != str(planted["duplicate"]["object_id"])]
    missing = planted["missing"]
    extra = {
        "image_id": str(missing["image_id"]),
        "file_name": missing["file_name"],
        "width": 256,
        "height": 256,
        "category": "building",
        "rle": coco_rle.encode(_box_mask(missing["bbox"])),
        "score": 0.9,
    }
    image = dataset.images[dataset.images["image_id"] == extra["image_id"]].to_dict("records")
    objects = Dataset.from_records(image, [extra], dataset.categories).objects
    predictions = dataset.replace(objects=pd.concat([table, objects], ignore_index=True))
    return info, dataset, agreement_signals(dataset, predictions=predictions)


def _box_mask(bbox: list[int]) -> np.ndarray:
    x, y, w, h = bbox
    mask = np.zeros((256, 256), np.uint8)
    mask[y : y + h, x : x + w] = 1
    return mask


def test_sample_planted_errors_disagree_with_the_model(sample) -> None:
    info, dataset, (objects, images) = sample
    planted = {e["kind"]: e for e in info.planted}
    ids = dataset.objects["source_id"]

    def position(kind: str) -> int:
        return int(np.flatnonzero(ids == str(planted[kind]["object_id"]))[0])

    assert objects.loc[position("shifted"), "prediction_iou"] == 1.0
    assert objects.loc[position("self_intersecting"), "prediction_iou"] > 0.2  # a bow-tie is half its rectangle
    assert objects["prediction_iou"].drop(index=[position("shifted"), position("self_intersecting")]).max() == 0.0
    assert objects.loc[position("wrong_class"), "prediction_confidence"] == 1.0
    assert objects["prediction_confidence"].drop(index=position("wrong_class")).max() == 0.0
    missed = images["missed_by_annotator"].sort_values(ascending=False)
    assert set(missed.index[:2]) == {str(planted["missing"]["image_id"]), str(planted["wrong_class"]["image_id"])}
    assert missed.iloc[:2].min() == pytest.approx(0.9)
    assert missed.iloc[2] == 0.0
