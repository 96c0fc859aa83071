"""The score combines group badness with the weights; ranking is deterministic; reasons name the costly signals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seg.curate.score import combine, parse_weights, select
from seg.curate.signals import GROUPS, Signal
from seg.errors import OptionError

SIGNALS = [
    Signal("bowtie", "geometry", "object", "self-intersecting outline", "x"),
    Signal("speck", "geometry", "object", "tiny object", "x"),
    Signal("twin", "consistency", "object", "duplicate object", "x"),
    Signal("blurry", "quality", "image", "blurred image", "x"),
]
IMAGES = pd.DataFrame({"image_id": ["a", "b", "c", "d"], "file_name": ["a.png", "b.png", "c.png", "d.png"]})
OBJECTS = pd.DataFrame(
    {"image_id": ["a", "a", "b", "c"], "category": ["house"] * 4, "source_id": ["a1", "a2", "b1", "c1"]}
)


def run(objects: dict[str, list[float]], images: dict[str, list[float]], weights: dict | None = None):
    object_frame = pd.DataFrame(objects, index=pd.RangeIndex(len(OBJECTS)))
    image_frame = pd.DataFrame(images, index=pd.Index(["a", "b", "c", "d"]))
    return combine(IMAGES, OBJECTS, [object_frame], [image_frame], SIGNALS, parse_weights(weights))


def test_score_is_one_minus_weighted_group_badness() -> None:
    images, objects = run(
        {"bowtie": [0, 1.0, 0, 0], "speck": [0.5, 0, 0, 0], "twin": [0, 0, 0.4, math.nan]},
        {"blurry": [0, 0, 0.8, math.nan]},
    )
    total = sum(GROUPS.values())
    expected = {
        "a": 1 - GROUPS["geometry"] * 1.0 / total,  # the group's worst signal (1.0), not the sum
        "b": 1 - GROUPS["consistency"] * 0.4 / total,
        "c": 1 - GROUPS["quality"] * 0.8 / total,
        "d": 1.0,  # NaN counts as 0, an image without objects has no object badness
    }
    assert dict(zip(images.image_id, images.score, strict=True)) == pytest.approx(expected)
    assert images.set_index("image_id").loc["a", "geometry"] == 1.0
    assert list(images.sort_values("rank").image_id) == ["d", "b", "c", "a"]
    # objects inherit their image's image-level signals
    assert objects.loc[3, "score"] == pytest.approx(1 - GROUPS["quality"] * 0.8 / total)
    assert objects.loc[1, "score"] == pytest.approx(expected["a"])


def test_reasons_name_the_object_and_skip_small_badness() -> None:
    images, objects = run({"bowtie": [0, 1.0, 0, 0], "speck": [0.1, 0, 0, 0], "twin": [0] * 4}, {"blurry": [0] * 4})
    reasons = dict(zip(images.image_id, images.reasons, strict=True))
    assert reasons["a"] == "self-intersecting outline (object a2): 1.00"
    assert reasons["b"] == reasons["d"] == ""
    assert objects.loc[1, "reasons"] == "self-intersecting outline: 1.00"


def test_weights_change_the_order_and_zero_removes_a_group() -> None:
    signals = {"bowtie": [1.0, 0, 0, 0], "speck": [0] * 4, "twin": [0] * 4}
    images, _ = run(signals, {"blurry": [0, 1.0, 0, 0]}, {"geometry": 1, "quality": 3})
    assert list(images.sort_values("rank").image_id[-2:]) == ["a", "b"]
    images, _ = run(signals, {"blurry": [0, 1.0, 0, 0]}, {"geometry": 0})
    assert images.set_index("image_id").loc["a", "score"] == 1.0


def test_ties_break_by_image_id() -> None:
    images, objects = run({"bowtie": [0] * 4, "speck": [0] * 4, "twin": [0] * 4}, {"blurry": [0] * 4})
    assert list(images.sort_values("rank").image_id) == ["a", "b", "c", "d"]
    assert list(objects.sort_values("rank").object) == [0, 1, 2, 3]


@given(st.lists(st.floats(0, 1), min_size=4, max_size=4), st.integers(1, 4))
def test_top_keeps_exactly_n_best(badness: list[float], top: int) -> None:
    images, _ = run({"bowtie": [0] * 4, "speck": [0] * 4, "twin": [0] * 4}, {"blurry": badness})
    kept = select(images, top=top, min_score=None)
    assert kept.sum() == top
    assert images.score[kept].min() >= images.score[~kept].max() if top < 4 else True
    assert np.all((images.score >= images.score[kept].min()) | ~kept)


def test_min_score_and_option_errors() -> None:
    images, _ = run({"bowtie": [0, 1.0, 0, 0], "speck": [0] * 4, "twin": [0] * 4}, {"blurry": [0] * 4})
    assert list(select(images, top=None, min_score=0.9)) == [False, True, True, True]
    with pytest.raises(OptionError, match="exactly one"):
        select(images, top=None, min_score=None)
    with pytest.raises(OptionError, match="exactly one"):
        select(images, top=2, min_score=0.5)
    with pytest.raises(OptionError, match="at least 1"):
        select(images, top=0, min_score=None)


@pytest.mark.parametrize(
    "text, message",
    [
        ("geometry=2,colour=1", "unknown signal group 'colour'"),
        ("geometry=-1", "must be a number >= 0"),
        ("geometry", "expected GROUP=WEIGHT"),
        ("geometry=nan", "expected GROUP=WEIGHT"),
        (",".join(f"{g}=0" for g in GROUPS), "at least one group weight"),
    ],
)
def test_bad_weights(text: str, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        parse_weights(text)


def test_weights_override_defaults() -> None:
    assert parse_weights("geometry=2, reference=0.25") == {**GROUPS, "geometry": 2.0, "reference": 0.25}
