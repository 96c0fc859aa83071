"""Confusion matrices and scores against brute force, with hypothesis; and the PNG heat map."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from seg.errors import OutputExistsError
from seg.train.confusion import accumulate, confusion_matrix, scores
from seg.train.confusion_plot import cell_colour, plot_confusion, render_confusion


@st.composite
def label_pairs(draw, out_of_range: bool = True):
    """(classes, truth, prediction): two same-shape int label maps, sometimes with values outside [0, classes)."""
    classes = draw(st.integers(1, 6))
    shape = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    low, high = (-1, classes + 1) if out_of_range else (0, classes - 1)
    truth = draw(hnp.arrays(np.int32, shape, elements=st.integers(low, high)))
    pred = draw(hnp.arrays(np.int32, shape, elements=st.integers(low, high)))
    return classes, truth, pred


def brute_confusion(truth, pred, classes):
    cm = np.zeros((classes, classes), np.int64)
    for t, p in zip(truth.ravel().tolist(), pred.ravel().tolist(), strict=True):
        if 0 <= t < classes and 0 <= p < classes:
            cm[t, p] += 1
    return cm


def brute_scores(truth, pred, classes):
    """Per-class IoU and recall from pixel sets, None where undefined."""
    valid = (truth >= 0) & (truth < classes) & (pred >= 0) & (pred < classes)
    t, p = truth[valid], pred[valid]
    iou, recall = [], []
    for c in range(classes):
        union = np.sum((t == c) | (p == c))
        iou.append(np.sum((t == c) & (p == c)) / union if union else None)
        recall.append(np.sum((t == c) & (p == c)) / np.sum(t == c) if np.sum(t == c) else None)
    accuracy = float(np.mean(t == p)) if t.size else None
    return iou, recall, accuracy


@given(label_pairs())
def test_confusion_matrix_matches_brute_force(case):
    classes, truth, pred = case
    cm = confusion_matrix(truth, pred, classes)
    assert cm.dtype == np.int64
    assert cm.shape == (classes, classes)
    np.testing.assert_array_equal(cm, brute_confusion(truth, pred, classes))


@given(label_pairs())
def test_scores_match_brute_force(case):
    classes, truth, pred = case
    names = [f"c{i}" for i in range(classes)]
    result = scores(confusion_matrix(truth, pred, classes), names)
    iou, recall, accuracy = brute_scores(truth, pred, classes)
    assert result["classes"] == names
    assert list(result["per_class_iou"]) == names
    for c, name in enumerate(names):
        assert result["per_class_iou"][name] == pytest.approx(iou[c])
        assert result["per_class_accuracy"][name] == pytest.approx(recall[c])
    present = [value for value in iou if value is not None]
    assert result["mean_iou"] == (pytest.approx(np.mean(present)) if present else None)
    assert result["pixel_accuracy"] == (pytest.approx(accuracy) if accuracy is not None else None)
    if present:
        in_truth = [iou[c] for c in range(classes) if recall[c] is not None]
        if in_truth:
            assert min(in_truth) - 1e-12 <= result["frequency_weighted_iou"] <= max(in_truth) + 1e-12


@given(label_pairs(out_of_range=False))
def test_perfect_prediction_scores_one(case):
    classes, truth, _ = case
    result = scores(confusion_matrix(truth, truth, classes))
    assert result["mean_iou"] == 1.0
    assert result["pixel_accuracy"] == 1.0
    assert result["frequency_weighted_iou"] == pytest.approx(1.0)
    for c in range(classes):
        expected = 1.0 if (truth == c).any() else None
        assert result["per_class_iou"][f"class{c}"] == expected
        assert result["per_class_accuracy"][f"class{c}"] == expected


@given(label_pairs(), st.randoms(use_true_random=False))
def test_scores_invariant_under_class_permutation(case, random):
    classes, truth, pred = case
    order = list(range(classes))
    random.shuffle(order)
    mapping = np.array(order)
    names = [f"c{i}" for i in range(classes)]

    def relabel(labels):
        inside = (labels >= 0) & (labels < classes)
        return np.where(inside, mapping[np.clip(labels, 0, classes - 1)], labels)

    before = scores(confusion_matrix(truth, pred, classes), names)
    after = scores(confusion_matrix(relabel(truth), relabel(pred), classes), [names[i] for i in np.argsort(order)])
    for key in ("mean_iou", "pixel_accuracy", "frequency_weighted_iou"):
        assert after[key] == (pytest.approx(before[key]) if before[key] is not None else None)
    for name in names:
        assert after["per_class_iou"][name] == (
            pytest.approx(before["per_class_iou"][name]) if before["per_class_iou"][name] is not None else None
        )


@given(st.lists(label_pairs(), min_size=1, max_size=4), st.integers(1, 6))
def test_accumulate_equals_one_matrix_over_all_pixels(cases, classes):
    running = None
    for _, truth, pred in cases:
        running = accumulate(running, truth, pred, classes)
    truth_all = np.concatenate([truth.ravel() for _, truth, _ in cases])
    pred_all = np.concatenate([pred.ravel() for _, _, pred in cases])
    np.testing.assert_array_equal(running, brute_confusion(truth_all, pred_all, classes))


def test_accumulate_updates_in_place_and_takes_classes_from_the_matrix():
    cm = np.zeros((3, 3), np.int64)
    result = accumulate(cm, np.array([[0, 1], [2, 2]]), np.array([[0, 2], [2, 9]]))
    assert result is cm
    assert cm.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    with pytest.raises(ValueError, match="shape"):
        accumulate(cm, np.zeros((2, 2), int), np.zeros((2, 2), int), classes=4)
    with pytest.raises(ValueError, match="classes"):
        accumulate(None, np.zeros((2, 2), int), np.zeros((2, 2), int))


def test_known_example_and_json_ready_values():
    truth = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    result = scores(confusion_matrix(truth, pred, 4), ["bg", "a", "b", "never"])
    assert result["confusion_matrix"] == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert result["per_class_iou"] == {"bg": 2 / 3, "a": 1 / 3, "b": 1 / 2, "never": None}
    assert result["mean_iou"] == pytest.approx((2 / 3 + 1 / 3 + 1 / 2) / 3)
    assert result["per_class_accuracy"] == {"bg": 2 / 3, "a": 1 / 2, "b": 1.0, "never": None}
    assert result["frequency_weighted_iou"] == pytest.approx(3 / 6 * 2 / 3 + 2 / 6 * 1 / 3 + 1 / 6 * 1 / 2)
    assert result["pixel_accuracy"] == pytest.approx(4 / 6)
    assert all(type(v) is int for row in result["confusion_matrix"] for v in row)
    assert type(result["mean_iou"]) is float


def test_empty_matrix_has_no_scores():
    result = scores(np.zeros((2, 2), np.int64), ["bg", "a"])
    assert result["mean_iou"] is None
    assert result["pixel_accuracy"] is None
    assert result["frequency_weighted_iou"] is None
    assert result["per_class_iou"] == {"bg": None, "a": None}


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), 2)
    with pytest.raises(ValueError, match="integer"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 2)), 2)
    with pytest.raises(ValueError, match="names"):
        scores(np.zeros((2, 2), int), ["only one"])
    with pytest.raises(ValueError, match="unique"):
        scores(np.zeros((2, 2), int), ["a", "a"])
    with pytest.raises(ValueError, match="square"):
        scores(np.zeros((2, 3), int))


# --- the PNG heat map ---------------------------------------------------------------------------------------------


def test_cell_colours_get_darker_with_the_value():
    values = np.linspace(0, 1, 41)
    luminance = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in (cell_colour(v) for v in values)]
    assert all(a > b for a, b in itertools.pairwise(luminance))
    assert cell_colour(-1) == cell_colour(0) and cell_colour(2) == cell_colour(1)


@pytest.mark.parametrize("classes", [2, 5, 30])
def test_plot_writes_a_readable_png(tmp_path, classes):
    rng = np.random.default_rng(classes)
    cm = rng.integers(0, 50, (classes, classes)) + np.diag(rng.integers(100, 10_000, classes))
    names = ["background", *(f"a rather long class name number {i}" for i in range(1, classes))]
    path = plot_confusion(cm, names, tmp_path / "confusion.png", mean_iou=0.5, pixel_accuracy=0.9)
    assert path == tmp_path / "confusion.png"
    assert [p.name for p in tmp_path.iterdir()] == ["confusion.png"]  # no temporary file left behind
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode == "RGB"
        width, height = image.size
    assert 200 <= width <= 2000 and 200 <= height <= 2000
    assert width >= classes * 30 and height >= classes * 30


def test_plot_cells_are_coloured_by_row_share():
    # row 0: shares 0.9 / 0.1 / 0; row 1: 0 / 0.6 / 0.4; row 2 absent from the truth (hatched)
    cm = np.array([[90, 10, 0], [0, 60, 40], [0, 0, 0]])
    pixels = np.asarray(render_confusion(cm.astype(float), ["bg", "a", "b"])).astype(int)
    centres = {}
    for share in (0.9, 0.6, 0.4, 0.1):
        match = np.all(pixels == cell_colour(share), axis=-1)
        match[match.sum(axis=1) < 20] = False  # keep the cells, drop the 15-pixel lines of the colour bar
        assert match.sum() > 1000, share  # most of a 72-pixel cell is painted in its colour
        ys, xs = np.nonzero(match)
        centres[share] = (ys.mean(), xs.mean())
    # each colour sits in its own cell: (row 0, col 0), (row 0, col 1), (row 1, col 1), (row 1, col 2)
    assert abs(centres[0.9][0] - centres[0.1][0]) < 5 and abs(centres[0.6][0] - centres[0.4][0]) < 5
    assert centres[0.9][0] + 60 < centres[0.6][0]
    assert centres[0.9][1] + 60 < centres[0.1][1] and abs(centres[0.1][1] - centres[0.6][1]) < 5
    assert centres[0.6][1] + 60 < centres[0.4][1]
    # and a larger share is a darker cell
    darkness = {share: -sum(cell_colour(share)) for share in centres}
    assert sorted(centres, key=darkness.get) == [0.1, 0.4, 0.6, 0.9]


def test_plot_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "cm.png"
    plot_confusion(np.eye(2, dtype=int), ["a", "b"], path)
    with pytest.raises(OutputExistsError):
        plot_confusion(np.eye(2, dtype=int), ["a", "b"], path)
    plot_confusion(np.eye(2, dtype=int) * 5, ["a", "b"], path, overwrite=True)
    with Image.open(path) as image:
        assert image.format == "PNG"


def test_plot_checks_its_inputs(tmp_path):
    with pytest.raises(ValueError, match="names"):
        plot_confusion(np.eye(3, dtype=int), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="square"):
        plot_confusion(np.zeros((2, 3), int), ["a", "b"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
