"""Fit to the reference: run-length measures checked against pixels, and each signal on crafted datasets."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from seg.curate import reference as fit
from seg.curate.reference import SIGNALS, image_features, reference_signals
from seg.curate.signals import GROUPS
from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from tests.strategies import masks

NAMES = [s.name for s in SIGNALS]
SIZE = 128


def crofton(mask: np.ndarray) -> float:
    """Crofton perimeter counted on the pixels: crossings along rows, columns and both diagonals."""
    p = np.pad(mask, 1).astype(int)
    columns, rows = np.abs(np.diff(p, axis=0)).sum(), np.abs(np.diff(p, axis=1)).sum()
    diagonal, antidiagonal = np.abs(p[1:, 1:] - p[:-1, :-1]).sum(), np.abs(p[1:, :-1] - p[:-1, 1:]).sum()
    return math.pi / 8 * (columns + rows + (diagonal + antidiagonal) / math.sqrt(2))


def measure(masks_by_image: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    rows, image_of = [], []
    for image, image_masks in enumerate(masks_by_image):
        for mask in image_masks:
            height, width = mask.shape
            rows.append({"rle": coco_rle.encode(mask), "width": width, "height": height, "bbox_w": 0.0, "bbox_h": 0.0})
            image_of.append(image)
    return fit._run_measures(pd.DataFrame(rows), np.asarray(image_of, np.int64), len(masks_by_image))


def polygon(cx: float, cy: float, radius: float, sides: int = 4, turn: float = 0.0, jag: float = 0.0) -> list[float]:
    """A regular polygon's ring (flat x, y list); ``jag`` pulls every other vertex in (a star)."""
    ring = []
    for k in range(sides):
        angle = turn + 2 * math.pi * k / sides
        r = radius * (1 - jag if k % 2 else 1)
        ring += [cx + r * math.cos(angle), cy + r * math.sin(angle)]
    return ring


def rasterize(ring: list[float], size: int = SIZE) -> np.ndarray:
    image = Image.new("L", (size, size))
    ImageDraw.Draw(image).polygon(list(zip(ring[::2], ring[1::2], strict=True)), fill=1)
    return np.asarray(image)


def scene(seed: int, count: int = 10, radius: float = 8.0, jag: float = 0.0, sides: int = 4, side: int = SIZE):
    """``count`` rotated shapes of about ``radius`` spread over an image, clear of the border."""
    rng = np.random.default_rng(seed)
    rings = []
    for _ in range(count):
        r = radius * rng.uniform(0.8, 1.25)
        cx, cy = rng.uniform(r + 2, side - r - 2, 2)
        rings.append(polygon(cx, cy, r, sides, rng.uniform(0, math.pi), jag))
    return rings


def build(images: list[list[list[float]]], categories: list[list[str]] | None = None) -> Dataset:
    """A Dataset with one image per entry, its objects given as polygon rings (rasterized, geometry kept)."""
    image_rows, objects = [], []
    for k, rings in enumerate(images):
        image_rows.append({"image_id": str(k), "file_name": f"{k}.png", "width": SIZE, "height": SIZE})
        for j, ring in enumerate(rings):
            category = categories[k][j] if categories else "building"
            objects.append(
                {
                    "image_id": str(k),
                    "file_name": f"{k}.png",
                    "width": SIZE,
                    "height": SIZE,
                    "category": category,
                    "rle": coco_rle.encode(rasterize(ring)),
                    "geometry": json.dumps([[round(v, 2) for v in ring]]),
                }
            )
    return Dataset.from_records(image_rows, objects, [Category("building", 1), Category("road", 2)])


def colours(ids: list[str], means: list[float] | None = None) -> pd.DataFrame:
    """Image statistics as quality.image_statistics gives them (only the colour columns matter here)."""
    rng = np.random.default_rng(0)
    means = means or list(rng.normal(128, 3, len(ids)))
    frame = {f"mean_{c}": means for c in "rgb"}
    frame |= {f"std_{c}": list(rng.normal(30, 1, len(ids))) for c in "rgb"}
    return pd.DataFrame(frame, index=pd.Index(ids, name="image_id"))


def signals(ds: Dataset, **kwargs) -> pd.DataFrame:
    kwargs.setdefault("statistics", colours(list(ds.images["image_id"])))
    objects, images = reference_signals(ds, **kwargs)
    assert objects is None
    assert list(images.columns) == NAMES
    assert list(images.index) == list(ds.images["image_id"])
    values = images.to_numpy(float)
    assert ((values[np.isfinite(values)] >= 0) & (values[np.isfinite(values)] <= 1)).all()
    return images


def clean(count: int = 30, **kwargs) -> list[list[list[float]]]:
    return [scene(seed, **kwargs) for seed in range(count)]


# -- run-length measures ---------------------------------------------------------------------------------------------


@given(st.lists(masks(), min_size=1, max_size=6))
def test_perimeter_and_area_from_runs_match_the_pixels(mask_list):
    perimeter, covered = measure([[m] for m in mask_list])
    for mask, value, area in zip(mask_list, perimeter, covered, strict=True):
        assert value == pytest.approx(crofton(mask))
        assert area == mask.sum()


@given(st.integers(1, 20), st.integers(1, 20), st.integers(1, 4), st.floats(0.05, 0.95), st.integers(0, 2**32 - 1))
def test_coverage_is_the_union_of_an_image_objects(height, width, count, density, seed):
    rng = np.random.default_rng(seed)
    layers = [(rng.random((height, width)) < density).astype(np.uint8) for _ in range(count)]
    _, covered = measure([layers, [layers[0]]])
    assert covered[0] == np.maximum.reduce(layers).sum()
    assert covered[1] == layers[0].sum()


def test_measures_in_small_chunks_match(monkeypatch):
    images = [[rasterize(ring) for ring in rings] for rings in clean(6)]
    whole = measure(images)
    monkeypatch.setattr(fit, "CHUNK", 7)
    chunked = measure(images)
    np.testing.assert_allclose(chunked[0], whole[0])
    np.testing.assert_allclose(chunked[1], whole[1])


@pytest.mark.parametrize("turn", [0, 10, 20, 30, 45])
def test_compactness_barely_depends_on_rotation(turn):
    square = rasterize(polygon(64, 64, 40, turn=math.radians(turn + 45)))
    perimeter, _ = measure([[square]])
    assert perimeter[0] / (4 * math.sqrt(square.sum())) == pytest.approx(1.0, abs=0.06)


def test_masks_spanning_many_columns_and_rows():
    """Runs that wrap from one column into the next (a band from top to bottom), holes, several parts."""
    mask = np.zeros((40, 50), np.uint8)
    mask[:, 10:20] = 1  # a road crossing the tile: one run over ten columns
    mask[5:35, 30:45] = 1
    mask[15:25, 35:40] = 0  # a hole
    mask[0, 48] = mask[39, 49] = 1  # corner pixels
    perimeter, covered = measure([[mask]])
    assert perimeter[0] == pytest.approx(crofton(mask))
    assert covered[0] == mask.sum()


def test_box_only_and_broken_objects():
    ds = build([scene(1, 3)])
    objects = ds.objects.copy()
    objects.loc[0, "rle"] = None  # box-only
    objects.loc[1, "rle"] = "not RLE \u00e9"  # unreadable
    objects.loc[2, "rle"] = coco_rle.encode(np.ones((4, 4), np.uint8))  # runs that do not fill the image
    perimeter, covered = fit._run_measures(objects, np.zeros(3, np.int64), 1)
    assert np.isnan(perimeter).all()
    assert covered[0] == pytest.approx(objects.loc[0, "bbox_w"] * objects.loc[0, "bbox_h"])


# -- the signals -----------------------------------------------------------------------------------------------------


def test_signals_are_declared_in_the_reference_group():
    assert all(s.group == "reference" and s.level == "image" and s.group in GROUPS for s in SIGNALS)
    assert NAMES == ["count_fit", "size_fit", "coverage_fit", "complexity_fit", "colour_fit"]


def test_similar_images_fit():
    images = signals(build(clean()))
    assert images.max().max() <= 0.25


def test_half_annotated_image():
    images = clean()
    images[4] = images[4][:5]  # half of its objects missing
    result = signals(build(images))
    assert result.loc["4", "count_fit"] >= 0.4
    assert result.loc["4", "coverage_fit"] >= 0.3
    assert result.max(axis=1).idxmax() == "4"


def test_thirty_percent_fewer_objects_barely_register():
    images = clean()
    images[4] = images[4][:7]
    assert signals(build(images)).loc["4", "count_fit"] <= 0.2


def test_class_counts():
    """Same total, but the annotator called everything a road: the building count is far off."""
    images = clean()
    categories = [["road" if j < 2 else "building" for j in range(10)] for _ in images]
    categories[6] = ["road"] * 10
    result = signals(build(images, categories))
    assert result.loc["6", "count_fit"] == 1.0
    assert result.drop(index="6")["count_fit"].max() <= 0.2


def test_empty_image_among_annotated_ones():
    images = clean()
    images[3] = []
    result = signals(build(images))
    assert result.loc["3", "count_fit"] >= 0.6
    assert result.loc["3", ["size_fit", "coverage_fit", "complexity_fit"]].isna().all()


def test_empty_images_are_normal_when_common():
    images = clean()
    for k in range(0, 30, 5):
        images[k] = []
    result = signals(build(images))
    assert result["count_fit"].max() <= 0.25


def test_objects_far_larger():
    images = clean()
    images[8] = scene(8, radius=20)
    result = signals(build(images))
    assert result.loc["8", "size_fit"] >= 0.8
    assert result.drop(index="8")["size_fit"].max() <= 0.25


def test_border_cuts_do_not_change_sizes():
    """Tiles cut objects at their edges: slivers along the border leave the typical size alone."""
    images = clean()
    images[5] = images[5] + [polygon(-6, y, 8, turn=math.pi / 4) for y in (20, 60, 100)]
    assert signals(build(images)).loc["5", "size_fit"] <= 0.05


def test_jagged_outlines():
    images = clean(sides=8)
    images[2] = scene(2, sides=16, jag=0.6)  # stars instead of octagons
    result = signals(build(images))
    assert result.loc["2", "complexity_fit"] >= 0.8
    assert result.drop(index="2")["complexity_fit"].max() <= 0.25


def test_vertex_density():
    """The same shapes traced with ten times the vertices: the masks agree, the polygons do not."""
    images = clean(sides=32)
    images[9] = scene(9, sides=320)
    ds = build(images)
    result = signals(ds)
    assert result.loc["9", "complexity_fit"] >= 0.8
    compactness = image_features(ds)["compactness"]
    assert compactness["9"] == pytest.approx(compactness.drop(index="9").median(), abs=0.03)


def test_colour_far_from_the_others():
    ds = build(clean())
    means = [128.0 + (k % 5) for k in range(30)]
    means[11] = 60.0
    result = signals(ds, statistics=colours(list(ds.images["image_id"]), means))
    assert result.loc["11", "colour_fit"] == 1.0
    assert result.drop(index="11")["colour_fit"].max() <= 0.25


def test_against_a_reference():
    reference = build(clean(20))
    ours = build([scene(seed, radius=20) for seed in range(100, 110)])  # all objects bigger than the reference's
    result = signals(ours, reference=reference, reference_statistics=colours(list(reference.images["image_id"])))
    assert (result["size_fit"] >= 0.8).all()
    assert (signals(ours)["size_fit"] <= 0.25).all()  # among themselves they are alike


def test_too_few_images_to_compare():
    result = signals(build(clean(2)))
    assert result.isna().all().all()


def test_no_statistics_and_no_image_folder():
    """Colour needs the images: without a folder it is not measured, the rest still is."""
    ds = build(clean())
    _, result = reference_signals(ds)
    assert result["colour_fit"].isna().all()
    assert result["size_fit"].notna().all()


def test_dataset_without_objects_or_images():
    empty = Dataset.from_records([], [], [Category("building", 1)])
    assert signals(empty, statistics=colours([])).empty
    blank = build([[] for _ in range(5)])
    result = signals(blank)
    assert result["count_fit"].eq(0).all()  # every image is empty: nothing unusual


def test_box_only_objects():
    ds = build(clean())
    objects = ds.objects.assign(rle=None, geometry=None)
    result = signals(ds.replace(objects=objects))
    assert result[["complexity_fit"]].isna().all().all()
    assert result["count_fit"].notna().all() and result["size_fit"].notna().all()


# -- the sample ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from seg.curate.quality import image_statistics
    from seg.formats import read
    from seg.sample.build import build_sample

    info = build_sample(tmp_path_factory.mktemp("sample") / "s")
    ds = read(info.coco, "coco", images=info.images.resolve())
    return info, ds, image_statistics(ds)


def test_sample_clean_tiles_fit(sample):
    info, ds, stats = sample
    result = signals(ds, statistics=stats)
    planted = {str(p["image_id"]) for p in info.planted}
    assert result.drop(index=list(planted)).max().max() <= 0.4


def test_sample_missing_building_image_ranks_worst_on_count(sample):
    info, ds, stats = sample
    result = signals(ds, statistics=stats)
    missing = next(str(p["image_id"]) for p in info.planted if p["kind"] == "missing")
    assert result.loc[missing, "count_fit"] == result["count_fit"].max()


def test_sample_half_annotated_tile_registers(sample):
    _, ds, stats = sample
    objects = ds.objects
    counts = objects.groupby("image_id").size()
    victim = str(counts.index[counts == counts.median()][0])  # a tile with the usual number of objects
    mine = objects.index[objects["image_id"] == victim]
    half = ds.replace(objects=objects.drop(mine[::2]))
    result = signals(half, statistics=stats)
    assert result.loc[victim, "count_fit"] >= 0.4
    assert result.max(axis=1).idxmax() == victim
