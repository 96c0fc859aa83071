"""Predicted objects: 8-connected components per class, their RLEs and scores, and the Dataset they make."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seg.dataset import rle as coco_rle
from seg.dataset.store import load_dataset, save_dataset
from seg.formats import read
from seg.train.predictions import (
    ORIGIN,
    connected_components,
    predicted_objects,
    prediction_categories,
    predictions_dataset,
)

CLASSES = ["background", "road", "car", "tree"]


def reference_components(labels: np.ndarray) -> set[tuple[int, frozenset]]:
    """Breadth-first 8-connected components: {(value, pixels)}."""
    height, width = labels.shape
    seen = np.zeros(labels.shape, bool)
    found = set()
    for y in range(height):
        for x in range(width):
            if seen[y, x] or labels[y, x] == 0:
                continue
            value, pixels, queue = int(labels[y, x]), [], deque([(y, x)])
            seen[y, x] = True
            while queue:
                cy, cx = queue.popleft()
                pixels.append((cy, cx))
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ny, nx = cy + dy, cx + dx
                        if 0 <= ny < height and 0 <= nx < width and not seen[ny, nx] and labels[ny, nx] == value:
                            seen[ny, nx] = True
                            queue.append((ny, nx))
            found.add((value, frozenset(pixels)))
    return found


def ours(labels: np.ndarray) -> set[tuple[int, frozenset]]:
    found = connected_components(labels)
    values = found.values()
    result = set()
    for k in range(found.count):
        mask = coco_rle.decode(found.rle(k), *labels.shape)
        assert mask.sum() == found.areas()[k]
        result.add((int(values[k]), frozenset(zip(*np.nonzero(mask), strict=True))))
    return result


@settings(max_examples=150, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 3)))
def test_components_match_a_breadth_first_search(labels):
    assert ours(labels) == reference_components(labels)


@pytest.mark.parametrize("density", [0.1, 0.5, 0.9])
def test_components_of_larger_random_maps(density):
    rng = np.random.default_rng(int(density * 10))
    labels = np.where(rng.random((40, 37)) < density, rng.integers(1, 4, (40, 37)), 0)
    assert ours(labels) == reference_components(labels)


def test_diagonal_pixels_are_one_object_and_classes_are_apart():
    labels = np.zeros((5, 5), np.int64)
    labels[0, 0] = labels[1, 1] = labels[2, 2] = 1  # a diagonal: one component
    labels[2, 3] = 2  # touches it, but another class
    labels[4, 0] = 1  # alone
    found = connected_components(labels)
    assert found.count == 3
    assert sorted(found.areas().tolist()) == [1, 1, 3]
    assert sorted(found.values().tolist()) == [1, 1, 2]


def test_runs_crossing_a_column_boundary_are_not_joined():
    """The bottom of one column and the top of the next follow each other in flat order but do not touch."""
    labels = np.zeros((4, 3), np.int64)
    labels[3, 0] = 1
    labels[0, 1] = 1
    assert connected_components(labels).count == 2
    labels[:, 0] = labels[:, 1] = 1  # two full columns: one object whose RLE is one run
    found = connected_components(labels)
    assert found.count == 1
    assert coco_rle.to_uncompressed(found.rle(0), 4, 3) == [0, 8, 4]


def test_empty_and_full_maps():
    assert connected_components(np.zeros((6, 7), np.int64)).count == 0
    full = connected_components(np.full((6, 7), 2))
    assert full.count == 1 and full.areas().tolist() == [42]
    assert coco_rle.decode(full.rle(0), 6, 7).all()


def probabilities_for(labels: np.ndarray, sure: float, classes: int = len(CLASSES)) -> np.ndarray:
    """Probabilities whose argmax is ``labels``, with ``sure`` on the chosen class."""
    rest = (1 - sure) / (classes - 1)
    probabilities = np.full((*labels.shape, classes), rest, np.float32)
    np.put_along_axis(probabilities, labels[..., None], sure, axis=-1)
    return probabilities


def test_objects_have_rles_scores_and_the_prediction_origin():
    labels = np.zeros((20, 30), np.int64)
    labels[2:8, 3:10] = 1
    labels[12:18, 20:28] = 2
    labels[0, 29] = 3  # one pixel: below min_area
    probabilities = probabilities_for(labels, 0.7)
    probabilities[2:8, 3:6] = probabilities_for(labels[2:8, 3:6], 0.9)  # part of the road is surer
    objects = predicted_objects(probabilities, CLASSES, min_area=4)
    assert [o["category"] for o in objects] == ["road", "car"]
    road, car = objects
    assert np.array_equal(coco_rle.decode(road["rle"], 20, 30), (labels == 1).astype(np.uint8))
    assert road["score"] == pytest.approx((18 * 0.9 + 24 * 0.7) / 42, abs=1e-5)
    assert car["score"] == pytest.approx(0.7, abs=1e-6)
    assert {o["origin"] for o in objects} == {ORIGIN}
    assert [o["source_id"] for o in objects] == ["1", "2"]
    assert [o["category"] for o in predicted_objects(probabilities, CLASSES, min_area=1)] == ["road", "car", "tree"]


def test_probabilities_must_fit_the_classes():
    with pytest.raises(ValueError, match="probabilities"):
        predicted_objects(np.zeros((4, 4, 2), np.float32), CLASSES)


def test_the_dataset_round_trips_through_its_folder(tmp_path):
    labels = np.zeros((16, 24), np.int64)
    labels[1:5, 1:5] = 1
    labels[8:12, 10:20] = 3
    objects = predicted_objects(probabilities_for(labels, 0.8), CLASSES)
    images = [
        {"image_id": "a/one", "file_name": "a/one.png", "width": 24, "height": 16},
        {"image_id": "two", "file_name": "two.jpg", "width": 24, "height": 16},
    ]
    dataset = predictions_dataset(images, {"a/one": objects}, CLASSES, image_root=tmp_path / "images")
    assert dataset.category_names == ["road", "car", "tree"]
    assert [c.id for c in prediction_categories(CLASSES)] == [1, 2, 3]
    save_dataset(dataset, tmp_path / "dataset")
    back = load_dataset(tmp_path / "dataset")
    assert back.equals(dataset)
    assert read(tmp_path / "dataset").equals(dataset)  # detected as seg's own format, as curate reads it
    table = back.objects
    assert table["category"].tolist() == ["road", "tree"]
    assert table["area"].tolist() == [16, 40]
    assert table[["bbox_x", "bbox_y", "bbox_w", "bbox_h"]].iloc[1].tolist() == [10, 8, 10, 4]
    assert table["score"].between(0, 1).all() and set(table["origin"]) == {ORIGIN}
    assert back.image_path("two") == tmp_path / "images" / "two.jpg"


def test_large_noisy_map_is_fast_enough():
    """A 2000 x 2000 map of noise (about 400 000 components) is labelled in seconds, not minutes."""
    import time

    rng = np.random.default_rng(0)
    labels = (rng.random((2000, 2000)) < 0.3).astype(np.int64) * rng.integers(1, 4, (2000, 2000))
    started = time.monotonic()
    found = connected_components(labels)
    elapsed = time.monotonic() - started
    assert found.areas().sum() == np.count_nonzero(labels)
    assert elapsed < 30


def test_objects_of_a_noisy_map_come_quickly():
    """Every one of some 70 000 components becomes an object (measured: 20 us each): no search per component."""
    import time

    rng = np.random.default_rng(1)
    labels = (rng.random((600, 600)) < 0.3).astype(np.int64) * rng.integers(1, 4, (600, 600))
    started = time.monotonic()
    objects = predicted_objects(probabilities_for(labels, 0.6), CLASSES, min_area=1, labels=labels)
    elapsed = time.monotonic() - started
    assert [coco_rle.area(o["rle"], 600, 600) for o in objects[:500]] == connected_components(labels).areas()[
        :500
    ].tolist()
    assert len(objects) > 50_000
    assert elapsed < 30
