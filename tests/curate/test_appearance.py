"""The out-of-fold appearance model: each signal fires on the defect it names, stays 0 on clean data, and bad input
gives NaN rather than a crash."""

from __future__ import annotations

import zlib
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from seg.curate import appearance
from seg.curate.appearance import GRID, SIGNALS, _grid_runs, _region_areas, appearance_signals
from seg.curate.signals import GROUPS
from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from seg.errors import OptionError
from tests.curate.contract import check_contract
from tests.strategies import masks

SIZE = 128
SAND, ROOF, WATER = (200, 180, 140), (180, 60, 50), (50, 80, 170)
CATEGORIES = [Category("roof", 1), Category("water", 2)]


def scene(
    tmp_path: Path, count: int = 12, *, seed: int = 3, palette: tuple = (("roof", ROOF),) * 3 + (("water", WATER),)
) -> tuple[Dataset, list[dict]]:
    """``count`` sandy 128 x 128 images, each with one rectangle per ``palette`` entry (three red roofs and a blue pond
    by default) on a 3 x 3 grid of cells, written to ``tmp_path/images`` and annotated exactly. Returns the Dataset
    and, per object, its image and rectangle."""
    rng = np.random.default_rng(seed)
    folder = tmp_path / "images"
    folder.mkdir(parents=True, exist_ok=True)
    images, objects, shapes = [], [], []
    for k in range(count):
        pixels = np.clip(np.array(SAND) + rng.normal(0, 6, (SIZE, SIZE, 3)), 0, 255)
        cells = rng.permutation(9)[: len(palette)]
        for cell, (category, colour) in zip(cells, palette, strict=True):
            w, h = int(rng.integers(16, 26)), int(rng.integers(16, 26))
            x = 40 * (cell % 3) + 4 + int(rng.integers(0, 36 - w + 1))
            y = 40 * (cell // 3) + 4 + int(rng.integers(0, 36 - h + 1))
            pixels[y : y + h, x : x + w] = np.array(colour) + rng.normal(0, 6, (h, w, 3))
            shapes.append({"image": k, "category": category, "box": (x, y, w, h)})
        name = f"tile{k:02d}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(folder / name)
        images.append({"image_id": str(k), "file_name": name, "width": SIZE, "height": SIZE})
    for n, shape in enumerate(shapes):
        objects.append(_object(shape, n))
    categories = [Category(name, i + 1) for i, name in enumerate(dict.fromkeys(name for name, _ in palette))]
    return Dataset.from_records(images, objects, categories, image_root=folder), shapes


def _object(shape: dict, n: int, shift: tuple[int, int] = (0, 0), category: str | None = None) -> dict:
    x, y, w, h = shape["box"]
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[y + shift[1] : y + h + shift[1], x + shift[0] : x + w + shift[0]] = 1
    k = shape["image"]
    return {
        "image_id": str(k),
        "file_name": f"tile{k:02d}.png",
        "width": SIZE,
        "height": SIZE,
        "category": category or shape["category"],
        "rle": coco_rle.encode(mask),
        "source_id": str(n),
    }


def with_objects(dataset: Dataset, objects: list[dict]) -> Dataset:
    table = Dataset.from_records(dataset.images.to_dict("records"), objects, dataset.categories).objects
    return dataset.replace(objects=table)


def test_signals_declared_in_the_agreement_group() -> None:
    assert {s.group for s in SIGNALS} == {"agreement"}
    assert all(s.group in GROUPS for s in SIGNALS)
    assert {s.name for s in SIGNALS} == {"self_confidence", "misaligned", "missing_objects"}


def test_clean_scene_scores_zero(tmp_path: Path) -> None:
    dataset, _ = scene(tmp_path)
    frames = appearance_signals(dataset)
    check_contract(dataset, frames, SIGNALS)
    objects, images = frames
    assert objects["self_confidence"].notna().all()
    assert objects["misaligned"].notna().all()
    assert objects.to_numpy().max() < 0.05
    assert images["missing_objects"].max() < 0.05


def test_wrong_class_is_caught_by_self_confidence(tmp_path: Path) -> None:
    dataset, shapes = scene(tmp_path)
    wrong = next(n for n, s in enumerate(shapes) if s["image"] == 5 and s["category"] == "roof")
    records = [_object(s, n, category="water" if n == wrong else None) for n, s in enumerate(shapes)]
    dataset = with_objects(dataset, records)
    objects, _ = appearance_signals(dataset)
    assert objects.loc[wrong, "self_confidence"] == 1.0
    assert objects["self_confidence"].drop(index=wrong).max() < 0.05


def test_shifted_mask_is_caught_by_misaligned(tmp_path: Path) -> None:
    dataset, shapes = scene(tmp_path)
    moved = next(n for n, s in enumerate(shapes) if s["image"] == 2 and s["category"] == "roof")
    records = [_object(s, n, shift=(6, 5) if n == moved else (0, 0)) for n, s in enumerate(shapes)]
    dataset = with_objects(dataset, records)
    objects, _ = appearance_signals(dataset)
    assert objects.loc[moved, "misaligned"] == 1.0
    assert objects["misaligned"].drop(index=moved).max() < 0.05
    assert objects.loc[moved, "self_confidence"] == 0.0  # half on sand is not "another class"


def test_unannotated_object_is_caught_by_missing_objects(tmp_path: Path) -> None:
    dataset, shapes = scene(tmp_path)
    roofs = [n for n, s in enumerate(shapes) if s["image"] == 7 and s["category"] == "roof"]
    left_out = max(roofs, key=lambda n: shapes[n]["box"][2] * shapes[n]["box"][3])  # small ones may be noise
    records = [_object(s, n) for n, s in enumerate(shapes) if n != left_out]
    dataset = with_objects(dataset, records)
    _, images = appearance_signals(dataset)
    assert images.loc["7", "missing_objects"] > 0.5
    assert images["missing_objects"].drop(index="7").max() < 0.05


def test_many_classes(tmp_path: Path) -> None:
    palette = (("roof", ROOF), ("water", WATER), ("field", (70, 150, 60)), ("truck", (245, 245, 245)), ("roof", ROOF))
    dataset, shapes = scene(tmp_path, palette=palette)
    left_out = next(n for n, s in enumerate(shapes) if s["image"] == 3 and s["category"] == "field")
    wrong = next(n for n, s in enumerate(shapes) if s["image"] == 6 and s["category"] == "truck")
    records = [_object(s, n, category="water" if n == wrong else None) for n, s in enumerate(shapes) if n != left_out]
    table = with_objects(dataset, records).objects
    objects, images = appearance_signals(dataset.replace(objects=table))
    assert images.loc["3", "missing_objects"] > 0.5
    assert images.drop(index=["3", "6"])["missing_objects"].max() < 0.05
    position = int(np.flatnonzero(table["source_id"] == str(wrong))[0])
    assert objects.loc[position, "self_confidence"] == 1.0
    assert objects["self_confidence"].drop(index=position).max() < 0.05


def test_small_objects_are_not_judged(tmp_path: Path) -> None:
    dataset, shapes = scene(tmp_path)
    x, y, _, _ = shapes[0]["box"]
    tiny = {"image": 0, "category": "roof", "box": (x, y, 7, 7)}  # 49 px: under MIN_AREA
    records = [_object(s, n) for n, s in enumerate(shapes)] + [_object(tiny, len(shapes))]
    table = with_objects(dataset, records).objects
    objects, _ = appearance_signals(dataset.replace(objects=table))
    position = int(np.flatnonzero(table["source_id"] == str(len(shapes)))[0])
    assert objects.loc[position].isna().all()
    assert objects.drop(index=position).notna().all().all()


def test_seed_makes_it_deterministic(tmp_path: Path) -> None:
    dataset, _ = scene(tmp_path, count=8)
    first = appearance_signals(dataset, folds=3, seed=7)
    again = appearance_signals(dataset, folds=3, seed=7)
    pd.testing.assert_frame_equal(first[0], again[0])
    pd.testing.assert_frame_equal(first[1], again[1])


def test_folds_must_be_at_least_two(tmp_path: Path) -> None:
    dataset, _ = scene(tmp_path, count=2)
    with pytest.raises(OptionError, match="folds"):
        appearance_signals(dataset, folds=1)


def test_progress_wraps_both_passes(tmp_path: Path) -> None:
    dataset, _ = scene(tmp_path, count=4)
    seen: list[int] = []

    def progress(items):
        seen.append(len(items))
        return items

    appearance_signals(dataset, progress=progress)
    assert seen == [4, 4]


def test_batches_and_a_small_feature_cache_give_the_same_values(tmp_path: Path, monkeypatch) -> None:
    dataset, _ = scene(tmp_path, count=10)
    expected = appearance_signals(dataset)
    monkeypatch.setattr(appearance, "BATCH", 3)
    monkeypatch.setattr(appearance, "FEATURE_CACHE_BYTES", 7 * appearance.POINTS * 2)  # about 2 batches kept
    found = appearance_signals(dataset)
    pd.testing.assert_frame_equal(found[0], expected[0])
    pd.testing.assert_frame_equal(found[1], expected[1])


# -- bad input ----------------------------------------------------------------------------------------------------


def test_missing_corrupt_resized_and_bomb_images_are_not_measured(tmp_path: Path, caplog) -> None:
    dataset, _ = scene(tmp_path)
    folder = tmp_path / "images"
    (folder / "tile01.png").unlink()
    (folder / "tile02.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.new("RGB", (64, 64)).save(folder / "tile03.png")
    Image.new("1", (1, 1)).save(folder / "tile04.png")
    data = bytearray((folder / "tile04.png").read_bytes())
    data[16:24] = (70000).to_bytes(4, "big") * 2  # the header now claims 70000 x 70000 pixels
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    (folder / "tile04.png").write_bytes(bytes(data))
    whole = (folder / "tile05.png").read_bytes()
    (folder / "tile05.png").write_bytes(whole[: len(whole) // 2])  # truncated
    objects, images = appearance_signals(dataset)
    broken = ["1", "2", "3", "4", "5"]
    assert images.loc[broken, "missing_objects"].isna().all()
    rows = dataset.objects["image_id"].isin(broken).to_numpy()
    assert objects.loc[rows].isna().all().all()
    assert objects.loc[~rows, "self_confidence"].notna().all()
    assert images.drop(index=broken)["missing_objects"].notna().all()
    assert "possible decompression bomb" in caplog.text and "truncated or corrupt" in caplog.text


def test_box_only_broken_and_empty_masks_are_not_measured(tmp_path: Path) -> None:
    dataset, _ = scene(tmp_path)
    table = dataset.objects.copy()
    table.loc[0, "rle"] = None  # box-only: its box is kept out of the background
    table.loc[1, "rle"] = "!!broken"
    table.loc[2, "rle"] = coco_rle.encode(np.zeros((8, 8), np.uint8))  # the wrong size for its image
    table.loc[3, "rle"] = coco_rle.encode(np.zeros((SIZE, SIZE), np.uint8))  # empty
    dataset = dataset.replace(objects=table)
    objects, images = appearance_signals(dataset)
    assert objects.loc[[0, 1, 2, 3]].isna().all().all()
    assert objects.loc[4:, "self_confidence"].notna().all()
    assert objects.loc[4:].max().max() < 0.05
    # the box-only roof is not reported as missing; objects 1-3 are unannotated objects now
    assert images.loc["0", "missing_objects"] > 0.3
    assert images.drop(index="0")["missing_objects"].max() < 0.05


def test_box_only_object_counts_as_annotated(tmp_path: Path) -> None:
    dataset, _ = scene(tmp_path)
    table = dataset.objects.copy()
    table.loc[0, "rle"] = None
    objects, images = appearance_signals(dataset.replace(objects=table))
    assert np.isnan(objects.loc[0, "self_confidence"])
    assert images.loc["0", "missing_objects"] < 0.05


def test_no_images_no_objects_no_root(tmp_path: Path) -> None:
    empty = Dataset.from_records([], [], CATEGORIES)
    objects, images = appearance_signals(empty)
    assert objects.empty and images.empty and list(objects.columns) == ["self_confidence", "misaligned"]
    dataset, _ = scene(tmp_path, count=4)
    bare = Dataset(dataset.images, dataset.objects.iloc[:0], CATEGORIES, image_root=dataset.image_root)
    objects, images = appearance_signals(bare)
    assert objects.empty and images["missing_objects"].isna().all()
    rootless = Dataset(dataset.images, dataset.objects, CATEGORIES)
    objects, images = appearance_signals(rootless)
    assert objects.isna().all().all() and images.isna().all().all()


def test_images_without_objects_are_judged_for_missing_objects(tmp_path: Path) -> None:
    dataset, _ = scene(tmp_path)
    kept = dataset.objects[dataset.objects["image_id"] != "4"]
    objects, images = appearance_signals(dataset.replace(objects=kept))
    assert images.loc["4", "missing_objects"] > 0.9  # three roofs and a pond, none annotated
    assert len(objects) == len(kept)


def test_a_single_class_has_no_rival(tmp_path: Path) -> None:
    dataset, _ = scene(tmp_path)
    roofs = dataset.objects[dataset.objects["category"] == "roof"]
    single = Dataset(dataset.images, roofs, [Category("roof", 1)], image_root=dataset.image_root)
    objects, _ = appearance_signals(single)
    assert objects["self_confidence"].isna().all()
    assert objects["misaligned"].notna().all()


def test_grey_palette_and_sixteen_bit_images_are_read(tmp_path: Path) -> None:
    dataset, _ = scene(tmp_path, count=8)
    folder = tmp_path / "images"
    rgb = np.asarray(Image.open(folder / "tile00.png"))
    Image.fromarray(rgb).convert("L").save(folder / "tile00.png")
    Image.fromarray(rgb).convert("P").save(folder / "tile01.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 200).save(folder / "tile02.png")
    objects, images = appearance_signals(dataset)
    assert images["missing_objects"].notna().all()
    assert objects["self_confidence"].notna().all()


# -- helpers ------------------------------------------------------------------------------------------------------


def _grid_reference(mask: np.ndarray) -> np.ndarray:
    """The grid sampling of :func:`_grid_runs`, done by indexing: (GRID columns, GRID rows)."""
    height, width = mask.shape
    columns = ((np.arange(GRID) + 0.5) * width / GRID).astype(int)
    rows = ((np.arange(GRID) + 0.5) * height / GRID).astype(int)
    return mask[np.ix_(rows, columns)].T


@st.composite
def large_masks(draw) -> np.ndarray:
    """Masks smaller and larger than the grid: rectangles and random noise, sides 1 to 400."""
    height, width = draw(st.integers(1, 400)), draw(st.integers(1, 400))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mask = (rng.random((height, width)) < draw(st.sampled_from([0.0, 0.02, 0.5, 1.0]))).astype(np.uint8)
    for _ in range(draw(st.integers(0, 3))):
        y, x = int(rng.integers(height)), int(rng.integers(width))
        mask[y : y + int(rng.integers(1, height + 1)), x : x + int(rng.integers(1, width + 1))] = 1
    return mask


@given(st.one_of(masks(max_side=24), large_masks()))
def test_grid_runs_sample_the_mask_at_block_centres(mask: np.ndarray) -> None:
    height, width = mask.shape
    start, end, owner, valid = _grid_runs([coco_rle.encode(mask)], np.array([height]), np.array([width]))
    grid = np.zeros(GRID * GRID, bool)
    for s, e in zip(start, end, strict=True):
        assert (s // GRID) == ((e - 1) // GRID)  # every run lies inside one grid column
        grid[s:e] = True
    assert valid.all() and (owner == 0).all()
    assert np.array_equal(grid.reshape(GRID, GRID), _grid_reference(mask).astype(bool))


def test_grid_runs_reject_broken_and_missing_masks() -> None:
    good = coco_rle.encode(np.ones((4, 4), np.uint8))
    start, _, owner, valid = _grid_runs([None, "??bad", good, good], np.array([4, 4, 5, 4]), np.array([4] * 4))
    assert valid.tolist() == [False, False, False, True]
    assert set(owner.tolist()) == {3} and start.size == GRID  # a full mask: one run per grid column


def _regions_reference(mask: np.ndarray) -> list[int]:
    seen = np.zeros(mask.shape, bool)
    sizes = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        queue, size = deque([start]), 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        sizes.append(size)
    return sorted(sizes)


@given(st.lists(masks(max_side=16), min_size=1, max_size=3))
def test_region_areas_match_a_flood_fill(stack: list[np.ndarray]) -> None:
    height = max(m.shape[0] for m in stack)
    width = max(m.shape[1] for m in stack)
    padded = np.stack([np.pad(m, ((0, height - m.shape[0]), (0, width - m.shape[1]))) for m in stack]).astype(bool)
    areas, image = _region_areas(padded)
    for k, mask in enumerate(padded):
        assert sorted(areas[image == k].astype(int).tolist()) == _regions_reference(mask)


# -- the sample ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    import seg
    from seg.sample.build import build_sample

    info = build_sample(tmp_path_factory.mktemp("sample") / "s")
    dataset = seg.read(info.coco, "coco", images=info.images.resolve())
    return info, dataset, appearance_signals(dataset)


def _planted(info, kind: str) -> dict:
    return next(e for e in info.planted if e["kind"] == kind)


def _position(dataset: Dataset, entry: dict) -> int:
    return int(dataset.objects.index[dataset.objects["source_id"] == str(entry["object_id"])][0])


def test_sample_shifted_building_is_the_most_misaligned(sample) -> None:
    info, dataset, (objects, _) = sample
    shifted = _position(dataset, _planted(info, "shifted"))
    assert objects.loc[shifted, "misaligned"] == 1.0
    assert objects["misaligned"].idxmax() == shifted


def test_sample_wrong_class_has_the_lowest_self_confidence(sample) -> None:
    info, dataset, (objects, _) = sample
    wrong = _position(dataset, _planted(info, "wrong_class"))
    assert objects.loc[wrong, "self_confidence"] == 1.0
    assert objects["self_confidence"].drop(index=wrong).max() < 0.2


def test_sample_missing_building_is_the_worst_missing_objects(sample) -> None:
    info, _, (_, images) = sample
    missing = str(_planted(info, "missing")["image_id"])
    wrong = str(_planted(info, "wrong_class")["image_id"])  # its building, labelled road, is a missing building too
    assert images.loc[missing, "missing_objects"] > 0.6
    assert images["missing_objects"].drop(index=[missing, wrong]).max() < 0.2


def test_sample_clean_images_stay_below_the_planted_ones(sample) -> None:
    info, dataset, (objects, images) = sample
    worst = objects.groupby(dataset.objects["image_id"].to_numpy()).max().max(axis=1)
    worst = pd.concat([worst, images["missing_objects"]], axis=1).max(axis=1)
    caught = {str(_planted(info, kind)["image_id"]) for kind in ("shifted", "missing", "wrong_class")}
    planted = {str(e["image_id"]) for e in info.planted}
    assert worst.loc[sorted(caught)].min() > 0.6
    assert worst.drop(index=sorted(planted)).max() < 0.2
