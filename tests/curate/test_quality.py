"""Image-quality signals: each fires on the defect it names and stays at 0 on clean textured images."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter

from seg.curate.quality import SIGNALS, STATISTICS, duplicate_pairs, image_statistics, quality_signals
from seg.curate.signals import GROUPS
from seg.dataset.core import Category, Dataset

NAMES = [s.name for s in SIGNALS]


def texture(seed: int, size: tuple[int, int] = (128, 128)) -> np.ndarray:
    """A sharp random colour texture (blocks of a few pixels plus fine noise): distinct seeds are unrelated."""
    rng = np.random.default_rng(seed)
    width, height = size
    coarse = rng.uniform(40, 215, (height // 16 + 1, width // 16 + 1, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), np.float64)
    blocks = np.kron(rng.uniform(-30, 30, (height // 4 + 1, width // 4 + 1, 1)), np.ones((4, 4, 1)))
    pixels = base + blocks[:height, :width] + rng.normal(0, 6, (height, width, 3))
    return np.clip(pixels, 1, 254).astype(np.uint8)


def save(folder: Path, name: str, pixels: np.ndarray | Image.Image, **params) -> str:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **params)
    return name


def dataset(folder: Path | None, names: list[str], extra: dict[str, list] | None = None) -> Dataset:
    """A Dataset of the named image files (128 x 128 declared), without objects."""
    rows = [{"image_id": f"i{k}", "file_name": name, "width": 128, "height": 128} for k, name in enumerate(names)]
    for column, values in (extra or {}).items():
        for row, value in zip(rows, values, strict=True):
            row[column] = value
    return Dataset.from_records(rows, [], [Category("thing", 1)], image_root=folder)


def clean_set(folder: Path, count: int = 8, first_seed: int = 0) -> list[str]:
    return [save(folder, f"clean{k}.jpg", texture(first_seed + k), quality=92) for k in range(count)]


def signals(ds: Dataset, **kwargs) -> pd.DataFrame:
    objects, images = quality_signals(ds, **kwargs)
    assert objects is None
    assert list(images.columns) == NAMES
    assert list(images.index) == list(ds.images["image_id"])
    values = images.to_numpy(float)
    assert ((values[np.isfinite(values)] >= 0) & (values[np.isfinite(values)] <= 1)).all()
    return images


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb's signature)."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = b"IDAT" + zlib.compress(b"\0" * 16)
    chunks = b"".join(struct.pack(">I", len(c) - 4) + c + struct.pack(">I", zlib.crc32(c)) for c in (ihdr, idat))
    return b"\x89PNG\r\n\x1a\n" + chunks + b"\0\0\0\0IEND\xaeB`\x82"


# -- the contract ----------------------------------------------------------------------------------------------------


def test_signals_are_declared_in_the_quality_group():
    assert len(set(NAMES)) == len(NAMES)
    assert all(s.group == "quality" and s.level == "image" and s.group in GROUPS for s in SIGNALS)
    assert {"unreadable", "blank", "nodata", "blur", "exposure", "duplicate_image", "leakage"} == set(NAMES)


def test_clean_images_score_zero(tmp_path):
    images = signals(dataset(tmp_path, clean_set(tmp_path)))
    assert (images.drop(columns="leakage").to_numpy() <= 0.02).all()
    assert images["leakage"].isna().all()  # no reference, no splits: not measured


def test_statistics_describe_each_image(tmp_path):
    names = clean_set(tmp_path, 2)
    stats = image_statistics(dataset(tmp_path, names), workers=1)
    assert list(stats.index) == ["i0", "i1"]
    assert set(STATISTICS) <= set(stats.columns)
    row = stats.loc["i0"]
    assert row["readable"] and row["error"] == "" and len(row["sha256"]) == 64
    assert (row["pixel_width"], row["pixel_height"]) == (128, 128)
    assert 60 < row["brightness"] < 200 and row["grey_std"] > 15 and row["nodata"] < 0.01


def test_given_statistics_are_used_instead_of_reading(tmp_path):
    names = clean_set(tmp_path, 4)
    ds = dataset(tmp_path, names)
    stats = image_statistics(ds)
    for name in names:
        (tmp_path / name).unlink()  # reading again would now fail
    assert signals(ds, statistics=stats)["unreadable"].eq(0).all()


# -- each defect -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_blank_image(tmp_path, noise):
    flat = np.full((128, 128, 3), 120.0) + np.random.default_rng(1).normal(0, noise, (128, 128, 3))
    names = [*clean_set(tmp_path), save(tmp_path, "blank.png", flat.astype(np.uint8))]
    images = signals(dataset(tmp_path, names))
    assert images.loc["i8", "blank"] == 1.0
    assert images.drop(index="i8")["blank"].max() == 0.0


@pytest.mark.parametrize("fill", [0, 255, (40, 80, 120)])
def test_nodata_half_filled_tile(tmp_path, fill):
    pixels = texture(50)
    pixels[:, 64:] = fill  # a tile half outside the imagery
    names = [*clean_set(tmp_path), save(tmp_path, "half.jpg", pixels, quality=92)]
    images = signals(dataset(tmp_path, names))
    assert images.loc["i8", "nodata"] >= 0.9
    assert images.drop(index="i8")["nodata"].max() == 0.0
    assert images.loc["i8", "blank"] == 0.0  # the imagery that is there is fine


def test_nodata_transparent_pixels(tmp_path):
    pixels = np.dstack([texture(51), np.full((128, 128), 255, np.uint8)])
    pixels[:48, :, 3] = 0
    names = [*clean_set(tmp_path), save(tmp_path, "alpha.png", pixels)]
    images = signals(dataset(tmp_path, names))
    stats = image_statistics(dataset(tmp_path, names))
    assert stats.loc["i8", "nodata"] == pytest.approx(48 / 128)
    assert 0.8 < images.loc["i8", "nodata"] <= 1.0


def test_nodata_is_relative_to_the_dataset(tmp_path):
    """Product photos on a white background all have one: none of them is singled out."""
    names = []
    for k in range(6):
        pixels = np.full((128, 128, 3), 255, np.uint8)
        pixels[32:96, 32 + k : 96 + k] = texture(k, (64, 64))
        names.append(save(tmp_path, f"product{k}.png", pixels))
    stats = image_statistics(dataset(tmp_path, names))
    assert (stats["nodata"] > 0.6).all()
    assert signals(dataset(tmp_path, names))["nodata"].max() == 0.0


@pytest.mark.parametrize("radius", [1.5, 3.0])
def test_blurred_image(tmp_path, radius):
    blurred = Image.fromarray(texture(60)).filter(ImageFilter.GaussianBlur(radius))
    names = [*clean_set(tmp_path), save(tmp_path, "blurred.jpg", blurred, quality=92)]
    images = signals(dataset(tmp_path, names))
    assert images.loc["i8", "blur"] >= 0.8
    assert images.drop(index="i8")["blur"].max() == 0.0


def test_blur_ignores_contrast(tmp_path):
    """A sharp but dim, low-contrast image is not blurred."""
    faint = (texture(61).astype(np.float64) * 0.3 + 90).astype(np.uint8)
    names = [*clean_set(tmp_path), save(tmp_path, "faint.png", faint)]
    assert signals(dataset(tmp_path, names)).loc["i8", "blur"] == 0.0


def test_over_and_under_exposure(tmp_path):
    bright = np.clip(texture(70).astype(np.float64) * 2.5, 0, 255).astype(np.uint8)  # blown-out highlights
    dark = (texture(71).astype(np.float64) * 0.12).astype(np.uint8)  # mean grey about 15
    names = [*clean_set(tmp_path), save(tmp_path, "bright.png", bright), save(tmp_path, "dark.png", dark)]
    images = signals(dataset(tmp_path, names))
    assert images.loc["i8", "exposure"] == 1.0
    assert images.loc["i9", "exposure"] >= 0.6
    assert images.drop(index=["i8", "i9"])["exposure"].max() == 0.0


def test_exact_duplicate_marks_the_later_image(tmp_path):
    names = clean_set(tmp_path, 5)
    shutil.copy(tmp_path / names[1], tmp_path / "copy.jpg")
    ds = dataset(tmp_path, [*names, "copy.jpg"])
    images = signals(ds)
    assert images.loc["i5", "duplicate_image"] == 1.0
    assert images.drop(index="i5")["duplicate_image"].max() == 0.0
    pairs = duplicate_pairs(image_statistics(ds))
    assert pairs.to_dict("records") == [{"image_id": "i5", "of": "i1", "distance": 0, "exact": True}]


def test_near_duplicate_marks_the_later_image(tmp_path):
    names = clean_set(tmp_path, 5)
    original = Image.open(tmp_path / names[2])
    # re-encoded smaller and at another quality: other bytes, the same picture; it comes first in dataset order
    near = save(tmp_path, "near.jpg", original.resize((120, 120), Image.Resampling.BILINEAR), quality=70)
    ds = dataset(tmp_path, [near, *names])
    images = signals(ds)
    assert images.loc["i3", "duplicate_image"] >= 0.8  # names[2], after its near copy
    assert images.drop(index="i3")["duplicate_image"].max() == 0.0
    pairs = duplicate_pairs(image_statistics(ds))
    assert pairs[["image_id", "of"]].to_dict("records") == [{"image_id": "i3", "of": "i0"}]
    assert not pairs["exact"].iloc[0]


def test_blank_images_are_not_near_duplicates_of_each_other(tmp_path):
    """Flat images all hash alike: their likeness is left to blank/nodata (identical bytes still count)."""
    names = [save(tmp_path, f"grey{k}.png", np.full((128, 128, 3), 100 + k, np.uint8)) for k in range(3)]
    images = signals(dataset(tmp_path, [*clean_set(tmp_path, 3), *names]))
    assert images["duplicate_image"].max() == 0.0


def test_leakage_from_the_reference(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "open"
    names = clean_set(ours, 4)
    reference_names = clean_set(theirs, 4, first_seed=100)
    shutil.copy(ours / names[3], theirs / "same.jpg")
    reference = dataset(theirs, [*reference_names, "same.jpg"])
    images = signals(dataset(ours, names), reference=reference)
    assert images["leakage"].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert images["duplicate_image"].max() == 0.0


@pytest.mark.parametrize("layout", ["folders", "column"])
def test_leakage_between_splits(tmp_path, layout):
    train = [f"train/{n}" for n in clean_set(tmp_path / "train", 4)]
    test = [f"test/{n}" for n in clean_set(tmp_path / "test", 3, first_seed=10)]
    shutil.copy(tmp_path / train[1], tmp_path / "test" / "again.jpg")
    names = [*train, *test, "test/again.jpg"]
    if layout == "folders":
        ds = dataset(tmp_path, names)
    else:  # the split column wins over folder names
        flat = [n.replace("/", "_") for n in names]
        for old, new in zip(names, flat, strict=True):
            shutil.copy(tmp_path / old, tmp_path / new)
        ds = dataset(tmp_path, flat, {"split": [n.split("/")[0] for n in names]})
    images = signals(ds)
    assert images.loc["i7", "leakage"] == 1.0
    assert images.drop(index="i7")["leakage"].max() == 0.0


def test_duplicates_within_one_split_are_not_leakage(tmp_path):
    names = [f"train/{n}" for n in clean_set(tmp_path / "train", 3)]
    test = [f"test/{n}" for n in clean_set(tmp_path / "test", 2, first_seed=10)]
    shutil.copy(tmp_path / names[0], tmp_path / "train" / "copy.jpg")
    images = signals(dataset(tmp_path, [*names, *test, "train/copy.jpg"]))
    assert images.loc["i5", "duplicate_image"] == 1.0
    assert images["leakage"].max() == 0.0


def test_folders_that_are_not_split_names_are_not_splits(tmp_path):
    names = [f"dakar/{n}" for n in clean_set(tmp_path / "dakar", 2)]
    names += [f"thies/{n}" for n in clean_set(tmp_path / "thies", 2, first_seed=5)]
    assert signals(dataset(tmp_path, names))["leakage"].isna().all()


# -- bad input -------------------------------------------------------------------------------------------------------


def test_unreadable_images(tmp_path):
    names = clean_set(tmp_path, 3)
    (tmp_path / "truncated.jpg").write_bytes((tmp_path / names[0]).read_bytes()[:300])
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    bad = ["truncated.jpg", "text.jpg", "empty.png", "bomb.png", "missing.jpg"]
    ds = dataset(tmp_path, [*names, *bad])
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    images = signals(ds)
    assert images["unreadable"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert images.iloc[3:].drop(columns="unreadable").isna().all().all()
    assert (images.iloc[:3].drop(columns=["unreadable", "leakage"]).to_numpy() == 0).all()
    stats = image_statistics(ds)
    assert "too large" in stats.loc["i6", "error"]
    assert stats.loc["i7", "error"] == "image file not found"
    assert stats.loc["i3", "error"].startswith("not a readable image")
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before  # inputs untouched


def test_dataset_without_an_image_folder(tmp_path):
    images = signals(dataset(None, ["a.jpg", "b.jpg"]))
    assert images.isna().all().all()


def test_dataset_without_images():
    images = signals(dataset(None, []))
    assert images.empty


@pytest.mark.parametrize(
    ("mode", "make"),
    [
        ("L", lambda px: Image.fromarray(px[:, :, 0])),
        ("I;16", lambda px: Image.fromarray(px[:, :, 0].astype(np.uint16) * 257)),
        ("P", lambda px: Image.fromarray(px).quantize(64)),
        ("RGBA", lambda px: Image.fromarray(np.dstack([px, np.full(px.shape[:2], 255, np.uint8)]))),
        ("CMYK", lambda px: Image.fromarray(px).convert("CMYK")),
    ],
)
def test_image_modes(tmp_path, mode, make):
    image = make(texture(80))
    assert image.mode == mode
    fmt = {"CMYK": "TIFF"}.get(mode, "PNG")
    name = save(tmp_path, f"odd.{fmt.lower()}", image, format=fmt)
    stats = image_statistics(dataset(tmp_path, [name]))
    assert stats.loc["i0", "readable"]
    assert 60 < stats.loc["i0", "brightness"] < 200 and stats.loc["i0", "grey_std"] > 10
    assert stats.loc["i0", "nodata"] < 0.05  # a 64-colour palette has a few flat patches


def test_large_images_are_read_at_a_working_size(tmp_path):
    big = Image.fromarray(texture(90, (1200, 900)))
    names = [save(tmp_path, "big.jpg", big, quality=90), save(tmp_path, "big.png", big)]
    stats = image_statistics(dataset(tmp_path, names))
    assert stats["pixel_width"].tolist() == [1200, 1200]
    assert stats["readable"].all() and (stats["grey_std"] > 10).all()
    # the same picture read both ways: the same hash within a few bits, close statistics
    assert (int(stats["phash"].iloc[0]) ^ int(stats["phash"].iloc[1])).bit_count() <= 4
    assert stats["brightness"].iloc[0] == pytest.approx(stats["brightness"].iloc[1], abs=2)


# -- the sample ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from seg.formats import read
    from seg.sample.build import build_sample

    info = build_sample(tmp_path_factory.mktemp("sample") / "s")
    return info, read(info.coco, "coco", images=info.images.resolve())


def test_sample_tiles_are_clean(sample):
    """The sample's planted errors are annotation errors: none of its tiles has an image-quality problem."""
    _, ds = sample
    images = signals(ds)
    assert images.drop(columns="leakage").max().max() <= 0.05


def test_sample_tile_made_blurry_ranks_worst(sample, tmp_path):
    info, ds = sample
    folder = tmp_path / "images"
    shutil.copytree(info.images, folder)
    victim = ds.images["file_name"].iloc[7]
    Image.open(folder / victim).filter(ImageFilter.GaussianBlur(1.2)).save(folder / victim, quality=90)
    images = signals(ds.replace(images=ds.images.assign(path=[str(folder / n) for n in ds.images["file_name"]])))
    worst = images.max(axis=1)
    assert worst.idxmax() == ds.images["image_id"].iloc[7]
    assert worst.max() >= 0.7 and worst.drop(worst.idxmax()).max() <= 0.05
