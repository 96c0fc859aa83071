import numpy as np
import pytest

from seg.dataset import rle
from seg.dataset.categories import keep_categories, rename_categories
from seg.dataset.core import Category, Dataset
from seg.dataset.merge import merge_datasets
from seg.dataset.summary import format_summary, summarize
from seg.errors import SegError
from tests.dataset.test_core import make_dataset


def test_rename_merges_categories_keeping_first_id():
    ds = rename_categories(make_dataset(), {"road": "building"})
    assert ds.categories == [Category("building", 1)]
    assert set(ds.objects["category"]) == {"building"}
    with pytest.raises(SegError, match="unknown categories"):
        rename_categories(make_dataset(), {"tree": "x"})


def test_keep_categories_keeps_images():
    ds = keep_categories(make_dataset(), ["road"])
    assert ds.category_names == ["road"] and len(ds.objects) == 1 and len(ds.images) == 3
    with pytest.raises(SegError, match="unknown categories"):
        keep_categories(make_dataset(), ["sky"])


def _own_dataset(tmp_path):
    m = np.zeros((6, 8), np.uint8)
    m[4:6, 0:3] = 1
    images = [{"image_id": "1", "file_name": "b.png", "width": 8, "height": 6}]
    objects = [
        {
            "image_id": "1",
            "file_name": "b.png",
            "width": 8,
            "height": 6,
            "category": "house",
            "rle": rle.encode(m),
            "source_id": "1",
        }
    ]
    return Dataset.from_records(images, objects, [Category("house", 1)], image_root=tmp_path / "own")


def test_merge_reconciles_names_keeps_ids_unique_and_origin(tmp_path):
    open_ds = Dataset(
        *(lambda d: (d.images, d.objects))(make_dataset()), make_dataset().categories, image_root=tmp_path / "open"
    )
    merged = merge_datasets([open_ds, _own_dataset(tmp_path)], ["open", "own"], {"house": "building"})
    assert merged.category_names == ["building", "road"]
    assert merged.images["image_id"].is_unique and merged.images["file_name"].is_unique
    assert merged.images["image_id"].tolist() == ["open/2", "open/1", "open/3", "own/1"]
    own = merged.objects[merged.objects["origin"] == "own"]
    assert own["category"].tolist() == ["building"] and own["file_name"].tolist() == ["own/b.png"]
    assert merged.image_path("own/1") == tmp_path / "own" / "b.png"
    assert merged.image_path("open/1") == tmp_path / "open" / "sub" / "a.png"


def test_merge_keeps_ids_when_unique():
    other = make_dataset()
    other = other.replace(
        images=other.images.assign(image_id=["a", "b", "c"], file_name=["x.png", "y.png", "z.png"]),
        objects=other.objects.assign(
            image_id=other.objects["image_id"].map({"2": "a", "1": "b"}),
            file_name=other.objects["image_id"].map({"2": "x.png", "1": "y.png"}),
        ),
    )
    merged = merge_datasets([make_dataset(), other], ["one", "two"])
    assert merged.images["image_id"].tolist() == ["2", "1", "3", "a", "b", "c"]
    with pytest.raises(SegError, match="distinct name"):
        merge_datasets([make_dataset(), other], ["same", "same"])


def test_summary_counts_and_problems():
    ds = make_dataset()
    m = np.zeros((6, 8), np.uint8)
    m[0, 0] = 1
    speck = {
        "image_id": "2",
        "file_name": "b.png",
        "width": 8,
        "height": 6,
        "category": "road",
        "rle": rle.encode(m),
        "source_id": "20",
    }
    ds = Dataset.from_records(
        ds.images.to_dict("records"),
        [*ds.objects.to_dict("records"), speck, {**speck, "source_id": "21"}],
        [*ds.categories, Category("tree", 9)],
    )
    summary = summarize(ds)
    assert summary["images"] == 3 and summary["images_without_objects"] == 1 and summary["objects"] == 5
    assert summary["classes"]["building"]["box_only"] == 1
    assert summary["classes"]["road"]["coverage"] == pytest.approx((16 + 2) / (48 + 48 + 16))
    problems = "\n".join(summary["problems"])
    assert "object 20 (road) covers only 1 pixel(s)" in problems
    assert "object 21 (road) duplicates another object's mask" in problems
    assert "category 'tree' has no objects" in problems
    text = format_summary(summary)
    assert "images: 3 (1 without objects)" in text and "problems: 4" in text
