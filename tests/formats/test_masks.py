import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seg.dataset import rle
from seg.dataset.core import Category, Dataset
from seg.dataset.problems import Problems
from seg.errors import FormatError, ImageError, OutputExistsError, UnsafePathError, ValidationError
from seg.formats import masks

H, W = 6, 8


def block(y0: int, y1: int, x0: int, x1: int, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def write_images(root: Path, names: list[str], size: tuple[int, int] = (W, H)) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (10, 20, 30)).save(root / name)


def make_dataset(
    root: Path | None, specs: dict[str, list[tuple[str, np.ndarray | None]]], categories=("road", "car"), write=True
) -> Dataset:
    """``specs``: file name -> [(category, mask or None for a box-only object)]."""
    images, objects = [], []
    for name, objs in specs.items():
        image_id = name.rsplit(".", 1)[0]
        images.append({"image_id": image_id, "file_name": name, "width": W, "height": H})
        for n, (category, mask) in enumerate(objs):
            row = {
                "image_id": image_id,
                "file_name": name,
                "width": W,
                "height": H,
                "category": category,
                "source_id": f"{image_id}#{n}",
            }
            if mask is None:
                row.update(rle=None, bbox_x=1.0, bbox_y=1.0, bbox_w=2.0, bbox_h=3.0, area=6)
            else:
                row["rle"] = rle.encode(mask)
            objects.append(row)
    if root is not None and write:
        write_images(root, list(specs))
    cats = [Category(name, i + 1) for i, name in enumerate(categories)]
    return Dataset.from_records(images, objects, cats, image_root=root)


def read_png(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as image:
        return image.mode, np.asarray(image)


@pytest.fixture
def scene(tmp_path):
    big, small = block(1, 5, 1, 7), block(2, 4, 3, 5)
    specs = {
        "sub/a.jpg": [("car", small), ("road", big)],  # small first: painting in object order would hide it
        "b.png": [("road", big), ("car", small)],
        "empty.jpg": [],
    }
    return make_dataset(tmp_path / "src", specs), big, small


# -- writing ------------------------------------------------------------------------------------------------------


def test_semantic_masks_are_single_channel_class_indices_named_like_images(tmp_path, scene):
    ds, big, small = scene
    report = masks.save(ds, tmp_path / "out", workers=1)
    out = tmp_path / "out"
    expected = big * 1
    expected[small.astype(bool)] = 2
    for name in ("sub/a.png", "b.png"):
        mode, label = read_png(out / "masks" / name)
        assert mode == "L" and label.dtype == np.uint8
        assert np.array_equal(label, expected)  # the small car stays visible on the big road
    assert read_png(out / "masks" / "empty.png")[1].max() == 0
    assert sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.*")) == [
        "images/b.png",
        "images/empty.jpg",
        "images/sub/a.jpg",
    ]
    assert json.loads((out / "classes.json").read_text()) == {"0": "background", "1": "road", "2": "car"}
    assert (out / "classes.txt").read_text().splitlines() == ["background", "road", "car"]
    assert json.loads((out / "dataset_meta.json").read_text())["label_map"]["2"] == "car"
    assert report["masks"] == 3 and report["objects_painted"] == 4 and report["bit_depth"] == 8
    assert report["images_written"] == 3 and report["skipped"] == []


def test_workers_give_identical_files(tmp_path, scene):
    ds, _, _ = scene
    masks.save(ds, tmp_path / "one", workers=1)
    masks.save(ds, tmp_path / "two", workers=2)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*") if p.is_file())
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_crowd_objects_are_painted_and_box_only_skipped_or_painted(tmp_path):
    ds = make_dataset(tmp_path / "src", {"a.png": [("road", block(0, 2, 0, 2)), ("car", None)]})
    objects = ds.objects.copy()
    objects.loc[0, "iscrowd"] = True
    ds = ds.replace(objects=objects)
    skipped = masks.save(ds, tmp_path / "skip", images="none")
    assert skipped["box_only"] == 1 and skipped["objects_painted"] == 1
    assert read_png(tmp_path / "skip/masks/a.png")[1].tolist() == block(0, 2, 0, 2).tolist()
    painted = masks.save(ds, tmp_path / "paint", images="none", boxes="paint")
    assert painted["objects_painted"] == 2
    expected = block(1, 4, 1, 3) * 2  # the box, painted first (larger), under the road
    expected[0:2, 0:2] = 1
    assert read_png(tmp_path / "paint/masks/a.png")[1].tolist() == expected.tolist()


def test_more_than_255_classes_gives_16_bit_masks(tmp_path):
    names = [f"c{i}" for i in range(300)]
    ds = make_dataset(tmp_path / "src", {"a.png": [("c299", block(0, 1, 0, 1))]}, categories=names)
    report = masks.save(ds, tmp_path / "out", images="none")
    mode, label = read_png(tmp_path / "out/masks/a.png")
    assert report["bit_depth"] == 16 and mode == "I;16" and label[0, 0] == 300


def test_instance_masks_and_round_trip(tmp_path, scene):
    ds, big, small = scene
    report = masks.save(ds, tmp_path / "out", kind="instance", images="none")
    mode, label = read_png(tmp_path / "out/masks/sub/a.png")
    assert mode == "I;16" and report["bit_depth"] == 16
    # ids in object order (car 1, road 2); painted largest first so the small car stays on top
    expected = big * 2
    expected[small.astype(bool)] = 1
    assert np.array_equal(label, expected)
    listing = json.loads((tmp_path / "out/instances.json").read_text())
    assert listing["masks/sub/a.png"] == [
        {"id": 1, "category": "car", "source_id": "sub/a#0", "iscrowd": False},
        {"id": 2, "category": "road", "source_id": "sub/a#1", "iscrowd": False},
    ]
    write_images(tmp_path / "out/images", ["sub/a.jpg", "b.png", "empty.jpg"])
    back = masks.load(tmp_path / "out")
    assert back.category_names == ["road", "car"]
    got = back.objects.set_index("source_id")
    assert got.loc["sub/a#0", "category"] == "car"
    assert np.array_equal(rle.decode(got.loc["sub/a#0", "rle"], H, W), small)
    road = rle.decode(got.loc["sub/a#1", "rle"], H, W)
    assert np.array_equal(road, big & ~small.astype(bool))  # the hidden part of the road is lost, as in the PNG


def test_split_is_deterministic_for_a_seed(tmp_path):
    specs = {f"img{i:02d}.png": [("road", block(0, 1, 0, i % W + 1))] for i in range(20)}
    ds = make_dataset(tmp_path / "src", specs)

    def test_set(name, seed):
        report = masks.save(ds, tmp_path / name, split=0.25, seed=seed, images="none")
        assert report["splits"] == {"train": 15, "test": 5}
        assert sorted(p.name for p in (tmp_path / name / "train" / "masks").iterdir()).__len__() == 15
        return sorted(p.name for p in (tmp_path / name / "test" / "masks").iterdir())

    first, again, other = test_set("a", 0), test_set("b", 0), test_set("c", 1)
    assert first == again and first != other
    # the split depends on the image ids, not on the row order
    shuffled = ds.replace(images=ds.images.iloc[::-1])
    masks.save(shuffled, tmp_path / "d", split=0.25, seed=0, images="none")
    assert sorted(p.name for p in (tmp_path / "d" / "test" / "masks").iterdir()) == first


def test_split_layout_round_trip_with_column(tmp_path):
    specs = {f"img{i}.png": [("car", block(0, 2, i, i + 2))] for i in range(6)}
    ds = make_dataset(tmp_path / "src", specs)
    masks.save(ds, tmp_path / "first", split=0.5, seed=3)
    back = masks.load(tmp_path / "first")
    assert sorted(back.images["split"].unique()) == ["test", "train"]
    masks.save(back, tmp_path / "second", split="column")
    for path in (tmp_path / "first").rglob("*.png"):
        twin = tmp_path / "second" / path.relative_to(tmp_path / "first")
        assert np.array_equal(read_png(path)[1], read_png(twin)[1]), path


def test_images_copied_linked_or_left_out(tmp_path, scene):
    ds, _, _ = scene
    source = tmp_path / "src" / "b.png"
    masks.save(ds, tmp_path / "copy", images="copy")
    copied = tmp_path / "copy/images/b.png"
    assert copied.read_bytes() == source.read_bytes() and not os.path.samefile(copied, source)
    masks.save(ds, tmp_path / "link", images="link")
    assert os.path.samefile(tmp_path / "link/images/b.png", source)
    report = masks.save(ds, tmp_path / "none", images="none")
    assert not (tmp_path / "none/images").exists() and report["images_written"] == 0


def test_masks_folder_to_dataset_to_masks_is_identical(tmp_path, scene):
    ds, _, _ = scene
    masks.save(ds, tmp_path / "first")
    back = masks.load(tmp_path / "first")
    masks.save(back, tmp_path / "second")
    first = sorted(p.relative_to(tmp_path / "first") for p in (tmp_path / "first").rglob("*") if p.is_file())
    assert first == sorted(p.relative_to(tmp_path / "second") for p in (tmp_path / "second").rglob("*") if p.is_file())
    for name in first:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name


def test_dataset_to_masks_to_dataset_keeps_non_overlapping_objects(tmp_path):
    specs = {"a.png": [("road", block(0, 2, 0, 8)), ("car", block(3, 6, 2, 4))], "b.png": [("car", block(5, 6, 7, 8))]}
    ds = make_dataset(tmp_path / "src", specs)
    back = masks.load(masks.save(ds, tmp_path / "out")["path"])
    assert back.category_names == ds.category_names
    columns = ["image_id", "file_name", "category", "rle", "area", "bbox_x", "bbox_y", "bbox_w", "bbox_h"]
    assert back.objects[columns].equals(ds.objects[columns])
    assert back.images[["image_id", "file_name", "width", "height"]].equals(ds.images)


def test_existing_output_is_untouched(tmp_path, scene):
    ds, _, _ = scene
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        masks.save(ds, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    masks.save(ds, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "masks/b.png").is_file()


def test_failure_leaves_no_output_and_keeps_the_old_one(tmp_path, scene):
    ds, _, _ = scene
    objects = ds.objects.copy()
    objects.loc[1, "rle"] = "this is not RLE"
    broken = ds.replace(objects=objects)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FormatError, match="out: item sub/a: cannot paint mask: invalid character 't'"):
        masks.save(broken, out, overwrite=True, workers=2)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    problems = Problems("skip")
    report = masks.save(broken, tmp_path / "skipping", problems=problems)
    assert report["masks"] == 2 and [s["item"] for s in report["skipped"]] == ["sub/a"]
    assert not (tmp_path / "skipping/masks/sub/a.png").exists()
    assert not (tmp_path / "skipping/images/sub/a.jpg").exists()


def test_missing_images_and_unsafe_names(tmp_path, scene):
    ds, _, _ = scene
    (tmp_path / "src/b.png").unlink()
    with pytest.raises(ImageError, match=r"b\.png: item b: image file not found"):
        masks.save(ds, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    report = masks.save(ds, tmp_path / "skip", problems=Problems("skip"))
    assert report["masks"] == 2 and report["skipped"][0]["item"] == "b"
    assert masks.save(ds, tmp_path / "masks-only", images="none")["masks"] == 3
    rootless = Dataset(ds.images, ds.objects, ds.categories)
    with pytest.raises(ValidationError, match="dataset has no image folder"):
        masks.save(rootless, tmp_path / "rootless")
    images = ds.images.copy()
    images.loc[0, "file_name"] = "../escape.jpg"
    objects = ds.objects.copy()
    objects.loc[objects["image_id"] == "sub/a", "file_name"] = "../escape.jpg"
    with pytest.raises(UnsafePathError, match="leaves the image root"):
        masks.save(ds.replace(images=images, objects=objects), tmp_path / "unsafe", images="none")


def test_empty_dataset_and_empty_split_still_read_back(tmp_path):
    empty = Dataset.from_records([], [], [Category("road", 1)])
    masks.save(empty, tmp_path / "empty")
    back = masks.load(tmp_path / "empty")
    assert len(back) == 0 and back.category_names == ["road"]
    two = make_dataset(tmp_path / "src", {"a.png": [], "b.png": []})
    report = masks.save(two, tmp_path / "split", split=0.2)  # round(0.4) = 0 test images
    assert report["splits"] == {"train": 2} and (tmp_path / "split/test/masks").is_dir()
    assert len(masks.load(tmp_path / "split")) == 2


def test_image_that_cannot_be_copied_is_skipped_with_its_mask(tmp_path, scene, monkeypatch):
    ds, _, _ = scene
    from seg.formats import masks_write

    real = masks_write.shutil.copyfile

    def failing(source, target):
        if str(source).endswith("b.png"):
            raise PermissionError(13, "Permission denied")
        return real(source, target)

    monkeypatch.setattr(masks_write.shutil, "copyfile", failing)
    with pytest.raises(ImageError, match=r"b\.png: item b: cannot copy image: Permission denied"):
        masks.save(ds, tmp_path / "out", workers=1)
    report = masks.save(ds, tmp_path / "skip", workers=1, problems=Problems("skip"))
    assert report["masks"] == 2 and not (tmp_path / "skip/masks/b.png").exists()


def test_two_images_with_one_mask_name(tmp_path):
    ds = make_dataset(tmp_path / "src", {"a.jpg": [], "x.png": []})
    images = ds.images.copy()
    images.loc[1, "file_name"] = "a.png"
    write_images(tmp_path / "src", ["a.png"])
    with pytest.raises(FormatError, match="two images would share one mask file"):
        masks.save(ds.replace(images=images), tmp_path / "out")


def test_bad_options():
    ds = make_dataset(None, {"a.png": []})
    for options, message in [
        ({"kind": "panoptic"}, "kind"),
        ({"images": "move"}, "images"),
        ({"split": 1.5}, "split"),
        ({"boxes": "fill"}, "boxes"),
        ({"workers": 0}, "workers"),
    ]:
        with pytest.raises(ValueError, match=message):
            masks.save(ds, "/nonexistent/never", **options)


# -- reading ------------------------------------------------------------------------------------------------------


def mask_folder(root: Path, masks_by_name: dict[str, np.ndarray], *, classes: dict | None = None) -> Path:
    for name, label in masks_by_name.items():
        write_images(root / "images", [name], (label.shape[1], label.shape[0]))
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(label).save(root / "masks" / (name.rsplit(".", 1)[0] + ".png"))
    if classes is not None:
        (root / "classes.json").write_text(json.dumps(classes))
    return root


def test_detect(tmp_path):
    assert not masks.detect(tmp_path)
    (tmp_path / "train/images").mkdir(parents=True)
    assert not masks.detect(tmp_path)
    (tmp_path / "train/masks").mkdir()
    assert masks.detect(tmp_path)
    (tmp_path / "file.csv").write_text("x")
    assert not masks.detect(tmp_path / "file.csv")


def test_load_without_class_map_names_classes_by_value(tmp_path):
    label = np.zeros((H, W), np.uint8)
    label[0, :3], label[5, 5] = 3, 1
    ds = masks.load(mask_folder(tmp_path / "m", {"x.jpg": label, "y.jpg": np.zeros((H, W), np.uint8)}))
    assert ds.category_names == ["1", "3"] and [c.id for c in ds.categories] == [1, 3]
    assert ds.images["image_id"].tolist() == ["x", "y"]  # the empty image is kept
    assert ds.objects["category"].tolist() == ["1", "3"] and ds.objects["area"].tolist() == [1, 3]
    assert ds.image_path("x") == (tmp_path / "m/images/x.jpg").resolve()


def test_load_palette_masks_and_class_option(tmp_path):
    label = np.array([[0, 1], [2, 2]], np.uint8)
    root = mask_folder(tmp_path / "m", {"x.png": label})
    palette = Image.fromarray(label, mode="L").convert("P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    palette.save(root / "masks/x.png")
    ds = masks.load(root, classes=["cat", "dog"])
    assert ds.category_names == ["cat", "dog"] and ds.objects["area"].tolist() == [1, 2]
    assert masks.load(root, classes="cat, dog").category_names == ["cat", "dog"]


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        ("no_mask", FormatError, "image without a mask"),
        ("no_image", FormatError, "mask without an image"),
        ("size", ImageError, r"mask size differs from its image's \(expected 8x6, got 4x6\)"),
        ("rgb", ImageError, r"colour mask without a colour map \(expected a single-channel class-index PNG"),
        ("value", FormatError, r"mask value not in the class map .*got 7\)"),
        ("truncated", ImageError, "truncated or corrupt"),
        ("not_png", ImageError, "not a readable image"),
        ("bomb", ImageError, "decompression bomb"),
        ("twins", FormatError, "two files share one name without suffix"),
    ],
)
def test_load_bad_items(tmp_path, setup, error, message):
    label = np.zeros((H, W), np.uint8)
    label[0, 0] = 1
    root = mask_folder(tmp_path / "m", {"good.png": label, "bad.png": label}, classes={"0": "bg", "1": "one"})
    bad = root / "masks/bad.png"
    if setup == "no_mask":
        bad.unlink()
    elif setup == "no_image":
        (root / "images/bad.png").unlink()
    elif setup == "size":
        Image.fromarray(label[:, :4]).save(bad)
    elif setup == "rgb":
        Image.new("RGB", (W, H), (1, 2, 3)).save(bad)
    elif setup == "value":
        Image.fromarray(label * 7).save(bad)
    elif setup == "truncated":
        Image.fromarray(np.random.default_rng(0).integers(0, 2, (H, W)).astype(np.uint8)).save(bad)
        bad.write_bytes(bad.read_bytes()[:-25])
    elif setup == "not_png":
        bad.write_text("hello")
    elif setup == "bomb":
        bad.write_bytes(_png_header(30000, 30000))
    elif setup == "twins":
        write_images(root / "images", ["bad.jpg"])
    with pytest.raises(error, match=message):
        masks.load(root)
    problems = Problems("skip")
    ds = masks.load(root, problems=problems)
    assert "good" in ds.images["image_id"].tolist() and len(problems.skipped) == 1


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_rgb_masks_with_equal_channels_are_read_as_grey(tmp_path):
    label = np.zeros((H, W), np.uint8)
    label[1, 1] = 2
    root = mask_folder(tmp_path / "m", {"x.png": label})
    Image.fromarray(np.stack([label] * 3, axis=-1)).save(root / "masks/x.png")
    assert masks.load(root).category_names == ["2"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("classes.json", "{not json", "unreadable class map"),
        ("classes.json", "[1, 2]", "unreadable class map"),
        ("classes.json", '{"one": "x"}', "unreadable class map"),
        ("classes.json", '{"1": 5}', "unreadable class map"),
        ("dataset_meta.json", '{"label_map": []}', "unreadable class map"),
        ("dataset_meta.json", '{"label_map": {"1": "a"}, "segmentation_colors": [[1, "x"]]}', "unreadable mask colour"),
        ("labelmap.csv", "title\nx\n", "unreadable class map"),
        ("instances.json", '{"masks/x.png": [{"id": 1}]}', "unreadable instance list"),
        ("instances.json", '{"masks/x.png": 3}', "unreadable instance list"),
        ("instances.json", "[" * 100000 + "]" * 100000, "unreadable instance list"),
        ("classes.json", "[" * 100000 + "]" * 100000, "unreadable class map"),
    ],
)
def test_malformed_metadata_files(tmp_path, name, text, message):
    root = mask_folder(tmp_path / "m", {"x.png": np.zeros((H, W), np.uint8)})
    (root / name).write_text(text)
    with pytest.raises(FormatError, match=message):
        masks.load(root)


def test_duplicate_class_names_and_stray_instance_ids(tmp_path):
    root = mask_folder(tmp_path / "m", {"x.png": np.ones((H, W), np.uint8)}, classes={"1": "a", "2": "a"})
    with pytest.raises(FormatError, match="class map names a class twice"):
        masks.load(root)
    (root / "classes.json").unlink()
    (root / "instances.json").write_text(json.dumps({"masks/x.png": [{"id": 2, "category": "a"}]}))
    with pytest.raises(FormatError, match=r"instance id missing from instances.json \(expected \[2\], got 1\)"):
        masks.load(root)


def test_not_a_mask_folder(tmp_path):
    with pytest.raises(FormatError, match="not a mask folder"):
        masks.load(tmp_path)


# -- real files written by other tools ----------------------------------------------------------------------------


def test_datumaro_common_semantic_segmentation_colour_masks(shared_fixtures):
    root = shared_fixtures / "datumaro_test_assets/common_semantic_segmentation_dataset/dataset"
    assert masks.detect(root)
    ds = masks.load(root)
    # Datumaro's own expectation (tests/test_common_semantic_segmentation_format.py): Void is the background.
    assert ds.category_names == ["Animal", "Archway", "Bicyclist", "Child", "Road"]
    found = {(o.image_id, o.category): rle.decode(o.rle, 1, 5).ravel().tolist() for o in ds.objects.itertuples()}
    assert found == {
        ("0001", "Bicyclist"): [1, 1, 0, 1, 1],
        ("0001", "Road"): [0, 0, 1, 0, 0],
        ("0002", "Animal"): [1, 1, 1, 0, 0],
        ("0002", "Child"): [0, 0, 0, 1, 1],
    }


def test_datumaro_kaggle_image_mask_16_bit_index_masks(shared_fixtures, tmp_path):
    root = shared_fixtures / "datumaro_test_assets/kaggle_dataset/image_mask"
    ds = masks.load(root)
    assert ds.category_names == ["1"]
    found = {o.image_id: rle.decode(o.rle, 1, 5).ravel().tolist() for o in ds.objects.itertuples()}
    assert found == {"001": [1, 1, 0, 0, 1], "002": [0, 0, 1, 0, 1]}
    labelled = masks.load(shared_fixtures / "datumaro_test_assets/kaggle_dataset/image_mask_with_labelmap")
    assert labelled.category_names == ["cat", "dog"]
    assert len(labelled.objects) == 6
    # written back as seg's own layout: 8-bit class-index PNGs
    masks.save(labelled, tmp_path / "out")
    mode, label = read_png(tmp_path / "out/masks/001.png")
    assert mode == "L" and label.ravel().tolist() == [1, 2, 0, 2, 1]


def test_merged_datasets_copy_images_from_their_own_folders(tmp_path):
    from seg.dataset.merge import merge_datasets

    parts = []
    for name, value in (("one", 10), ("two", 200)):
        root = tmp_path / name
        root.mkdir()
        Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(root / "x.png")
        images = [{"image_id": "1", "file_name": "x.png", "width": 4, "height": 4}]
        parts.append(Dataset.from_records(images, [], [Category("c", 1)], image_root=root))
    merged = merge_datasets(parts, ["one", "two"])
    masks.save(merged, tmp_path / "out", images="copy")
    for name, value in (("one", 10), ("two", 200)):
        copied = np.asarray(Image.open(tmp_path / "out" / "images" / name / "x.png"))
        assert (copied == value).all()
        assert (tmp_path / "out" / "masks" / name / "x.png").is_file()
