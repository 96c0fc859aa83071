"""Geometry signals: each signal on its defect, unreadable masks and outlines, and the sample's bow-tie."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from seg.curate import geometry
from seg.curate.geometry import SIGNALS, geometry_signals, outline_signals
from seg.curate.shapes import shape_features
from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from seg.dataset.polygons import mask_to_rings, polygons_to_rle

SIZE = 64
NAMES = [s.name for s in SIGNALS]


def _dataset(objects: list[dict], size: tuple[int, int] = (SIZE, SIZE), images: int = 1) -> Dataset:
    """A Dataset of ``images`` blank images; each object dict gives ``mask`` (array), ``rings`` or neither (box)."""
    height, width = size
    image_rows = [
        {"image_id": str(i), "file_name": f"{i}.png", "width": width, "height": height} for i in range(images)
    ]
    rows = []
    for k, spec in enumerate(objects):
        spec = dict(spec)
        row = {
            "image_id": spec.pop("image_id", "0"),
            "width": width,
            "height": height,
            "category": spec.pop("category", "thing"),
            "source_id": str(k),
        }
        row["file_name"] = f"{row['image_id']}.png"
        if "rings" in spec:
            rings = spec.pop("rings")
            row["geometry"] = json.dumps(rings)
            row["rle"] = polygons_to_rle([r for r in rings if len(r) >= 6], height, width)
        if "mask" in spec:
            row["rle"] = coco_rle.encode(spec.pop("mask"))
        row.update(spec)
        rows.append(row)
    categories = sorted({r["category"] for r in rows} | {"thing"})
    return Dataset.from_records(image_rows, rows, [Category(c, i + 1) for i, c in enumerate(categories)])


def _rect(y0: int, x0: int, y1: int, x1: int, size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def _square(x: float, y: float, side: float) -> list[float]:
    return [x, y, x + side, y, x + side, y + side, x, y + side]


def _signals(objects: list[dict], **kwargs) -> pd.DataFrame:
    frame, images = geometry_signals(_dataset(objects, **kwargs))
    assert images is None
    return frame


# -- the contract ---------------------------------------------------------------------------------------------------


def test_frame_follows_the_contract():
    frame = _signals(
        [
            {"mask": _rect(10, 10, 30, 30)},
            {"rings": [_square(5, 5, 10)]},
            {"bbox_x": 1.0, "bbox_y": 1.0, "bbox_w": 4.0, "bbox_h": 4.0},
        ]
    )
    assert list(frame.columns) == NAMES
    assert frame.index.equals(pd.RangeIndex(3))
    values = frame.to_numpy()
    assert ((values >= 0) & (values <= 1)).all()
    assert {s.group for s in SIGNALS} == {"geometry"} and {s.level for s in SIGNALS} == {"object"}


def test_empty_dataset_gives_an_empty_frame():
    frame, _ = geometry_signals(_dataset([], images=2))
    assert list(frame.columns) == NAMES and len(frame) == 0


def test_clean_objects_are_zero_everywhere():
    frame = _signals(
        [
            {"mask": _rect(10, 10, 30, 40)},
            {"rings": [_square(40.0, 40.0, 15.0)]},
            {"rings": [[20, 45, 35, 50, 30, 60, 15, 58]]},
        ]
    )
    assert (frame.to_numpy() == 0).all(), frame


# -- unreadable masks -----------------------------------------------------------------------------------------------


def test_unreadable_masks_are_not_measured():
    objects = _dataset([{"mask": _rect(5, 5, 10, 10)}] * 3).objects
    objects.loc[0, "rle"] = "!!not rle"
    objects.loc[1, "rle"] = coco_rle.encode(np.ones((8, 8), np.uint8))  # 64 pixels, the image has 4096
    shapes = shape_features(objects)
    assert shapes["has_mask"].tolist() == [False, False, True]
    assert shapes.loc[:1, "area"].isna().all()
    frame, _ = geometry_signals(
        Dataset(
            pd.DataFrame({"image_id": ["0"], "file_name": ["0.png"], "width": [SIZE], "height": [SIZE]}),
            objects,
            [Category("thing", 1)],
        )
    )
    assert frame.loc[:1, ["sliver", "speck"]].isna().all().all()
    assert frame.loc[2].notna().all()


# -- each signal on its defect --------------------------------------------------------------------------------------


def test_box_without_mask():
    frame = _signals([{"bbox_x": 10.0, "bbox_y": 10.0, "bbox_w": 20.0, "bbox_h": 20.0}, {"mask": _rect(5, 5, 25, 25)}])
    assert frame["box_without_mask"].tolist() == [1.0, 0.0]


def test_sliver_fires_on_thin_objects_and_is_damped_on_the_border():
    frame = _signals(
        [
            {"mask": _rect(10, 10, 11, 40)},  # 1 px thick, 30 long
            {"mask": _rect(20, 10, 22, 40)},  # 2 px thick
            {"mask": _rect(30, 10, 34, 40)},  # 4 px thick
            {"mask": _rect(40, 10, 42, 12)},  # 2x2: tiny but not long
            {"mask": _rect(0, 10, 1, 40)},  # 1 px thick along the top border
        ]
    )
    sliver = frame["sliver"].to_numpy()
    assert sliver[0] == pytest.approx(1.0)
    assert 0.3 < sliver[1] < 0.7
    assert sliver[2] == 0 and sliver[3] == 0
    assert 0 < sliver[4] <= geometry.CUT_FLOOR + 1e-9


def test_diagonal_one_pixel_line_is_a_sliver():
    line = np.pad(np.eye(40, dtype=np.uint8), 5)
    assert _signals([{"mask": line}], size=line.shape)["sliver"].iloc[0] == pytest.approx(1.0)


def test_speck_is_relative_to_the_class():
    specs = [{"mask": _rect(y, x, y + 12, x + 12)} for y in (4, 24, 44) for x in (4, 24, 44)]
    specs.append({"mask": _rect(20, 20, 21, 21)})  # one pixel among 144-pixel objects
    specs.append({"mask": np.zeros((SIZE, SIZE), np.uint8)})  # empty mask
    speck = _signals(specs)["speck"].to_numpy()
    assert (speck[:9] == 0).all()
    assert speck[9] == pytest.approx(1.0)
    assert speck[10] == 1.0


def test_speck_of_a_rare_class_is_relative_to_the_image():
    # too few objects for a class median: a hundredth of the image stands in for it
    small = {"mask": _rect(60, 1, 62, 3, size=(256, 256))}
    assert _signals([small], size=(256, 256))["speck"].iloc[0] == pytest.approx(1.0)
    assert _signals([{"mask": _rect(60, 1, 62, 3)}])["speck"].iloc[0] == 0.0  # 4 px of a 64 x 64 image


def test_speck_of_tiny_objects_in_a_tiny_class_is_low():
    specs = [{"mask": _rect(y, x, y + 2, x + 2)} for y in range(2, 60, 8) for x in range(2, 60, 8)]
    assert _signals(specs)["speck"].max() < 0.2


def test_self_intersection_bowtie_and_loops():
    bowtie = [10, 10, 40, 40, 40, 10, 10, 40]
    loop = [10, 10, 50, 10, 50, 50, 12, 50, 8, 46, 10, 52]  # a small twist at the last corner
    frame = _signals([{"rings": [bowtie]}, {"rings": [loop]}, {"rings": [_square(10, 10, 30)]}])
    si = frame["self_intersection"].to_numpy()
    assert si[0] == 1.0
    assert 0.5 <= si[1] < 1.0
    assert si[2] == 0.0
    assert frame.loc[0, "too_few_points"] == 0.0  # a symmetric bow-tie has zero signed area, yet it is not degenerate


def test_zero_width_bridges_are_not_crossings():
    mask = _rect(5, 5, 40, 40)
    mask[15:25, 15:25] = 0  # a hole, joined to the outline by a zero-width bridge
    rings = mask_to_rings(mask)
    frame = _signals([{"rings": rings}])
    assert frame.loc[0, ["self_intersection", "spike", "too_few_points", "near_duplicate_vertices"]].eq(0).all()


def test_masks_without_outline_have_zero_outline_signals():
    bowtie_mask = coco_rle.decode(polygons_to_rle([[10, 10, 40, 40, 40, 10, 10, 40]], SIZE, SIZE), SIZE, SIZE)
    frame = _signals([{"mask": bowtie_mask}])
    assert (
        frame.loc[0, ["self_intersection", "spike", "near_duplicate_vertices", "outside_image", "too_few_points"]]
        .eq(0)
        .all()
    )


def test_spike_fires_on_a_needle_not_on_clipped_corners():
    needle = [10, 30, 30, 30, 60, 31.5, 30, 33, 10, 33]  # a 30 px needle of about 6 degrees
    corner = [0, 60, 40, 64, 0, 64]  # acute corner at the image border (clipping)
    roof = [10, 10, 30, 10, 20, 22]  # a triangle with 62-degree corners
    spike = _signals([{"rings": [needle]}, {"rings": [corner]}, {"rings": [roof]}])["spike"].to_numpy()
    assert spike[0] == pytest.approx(1.0)
    assert spike[1] == 0.0 and spike[2] == 0.0


def test_near_duplicate_vertices():
    square = _square(10, 10, 30)
    repeated = square[:2] + square[:2] + square[2:]  # the first vertex twice
    jitter = [*square[:2], 10.3, 10.1, *square[2:]]
    closed = square + square[:2]  # an explicit closing vertex is a convention, not a defect
    frame = _signals([{"rings": [repeated]}, {"rings": [jitter]}, {"rings": [closed]}, {"rings": [square]}])
    values = frame["near_duplicate_vertices"].to_numpy()
    assert values[0] == pytest.approx(1 - math.exp(-1 / 3))
    assert 0 < values[1] <= values[0]
    assert values[2] == 0 and values[3] == 0
    assert frame.loc[0, "spike"] == 0


def test_outside_image():
    inside = [0, 0, 64, 0, 64, 64, 0, 64]  # on the border is inside
    slightly = [-0.5, 10, 30, 10, 30, 30]
    far = [-20, 10, 30, 10, 30, 30]
    values = _signals([{"rings": [inside]}, {"rings": [slightly]}, {"rings": [far]}])["outside_image"].tolist()
    assert values == [0.0, 0.0, 1.0]


def test_too_few_points():
    frame = _signals(
        [
            {"rings": [[10, 10, 20, 20]], "rle": coco_rle.encode(_rect(10, 10, 20, 20))},  # two points
            {"rings": [[10, 10, 20, 20, 30, 30]]},  # collinear
            {"rings": [[10, 10, 20, 10, 20, 10, 10, 10]]},  # repeated points: two distinct
            {"rings": [], "rle": coco_rle.encode(_rect(10, 10, 20, 20))},  # no ring at all
            {"rings": [_square(10, 10, 10), [40, 40, 41, 41]]},  # one good part, one degenerate
            {"rings": [_square(10, 10, 10)]},
        ]
    )
    assert frame["too_few_points"].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


# -- hostile outlines -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"a": 1}',
        "[[1, 2, 3]]",
        '[["a", "b", 1, 2, 3, 4]]',
        "[[1, 2, null, 4, 5, 6]]",
        "[[[1, 2], [3, 4], [5, 6]]]",
        "[1, 2, 3, 4]",
        "[[1e999, 2, 3, 4, 5, 6]]",
        "[[true, false, true, false, true, true]]",
    ],
)
def test_unreadable_outlines_are_not_measured(text):
    objects = _dataset([{"rings": [_square(10, 10, 10)]}, {"rings": [[10, 10, 40, 40, 40, 10, 10, 40]]}]).objects
    objects.loc[0, "geometry"] = text
    frame = outline_signals(objects)
    assert frame.loc[0].isna().all()
    assert frame.loc[1, "self_intersection"] == 1.0  # the others are still measured


def test_a_table_without_geometry_column():
    objects = _dataset([{"mask": _rect(10, 10, 30, 30)}]).objects
    assert "geometry" not in objects.columns
    assert (outline_signals(objects).to_numpy() == 0).all()


# -- the sample -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    import seg
    from seg.sample.build import build_sample

    info = build_sample(tmp_path_factory.mktemp("sample") / "s")
    return info, seg.read(info.coco, "coco", images=info.images.resolve())


def test_sample_bowtie_is_the_worst_self_intersection(sample):
    info, ds = sample
    planted = next(e for e in info.planted if e["kind"] == "self_intersecting")
    frame, _ = geometry_signals(ds)
    worst = int(frame["self_intersection"].idxmax())
    assert ds.objects.loc[worst, "source_id"] == str(planted["object_id"])
    assert frame.loc[worst, "self_intersection"] == 1.0
    others = frame.drop(index=worst)
    assert others["self_intersection"].max() == 0.0
    # tile cuts and small sheds are normal: no clean object comes near a reason-worthy badness
    assert others.drop(columns="too_few_points").max().max() < 0.2
