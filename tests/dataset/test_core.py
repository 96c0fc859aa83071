import json

import numpy as np
import pandas as pd
import pytest

from seg.dataset import rle
from seg.dataset.core import Category, Dataset
from seg.errors import UnsafePathError, ValidationError


def _mask(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    return rle.encode(m)


def make_dataset(**extra_object):
    images = [
        {"image_id": "2", "file_name": "b.png", "width": 8, "height": 6},
        {"image_id": "1", "file_name": "sub/a.png", "width": 8, "height": 6},
        {"image_id": "3", "file_name": "empty.png", "width": 4, "height": 4},
    ]
    objects = [
        {
            "image_id": "1",
            "file_name": "sub/a.png",
            "width": 8,
            "height": 6,
            "category": "road",
            "rle": _mask(6, 8, 0, 2, 0, 8),
            "source_id": "11",
        },
        {
            "image_id": "2",
            "file_name": "b.png",
            "width": 8,
            "height": 6,
            "category": "building",
            "rle": _mask(6, 8, 1, 3, 2, 5),
            "source_id": "10",
            **extra_object,
        },
        {
            "image_id": "1",
            "file_name": "sub/a.png",
            "width": 8,
            "height": 6,
            "category": "building",
            "rle": None,
            "bbox_x": 1.0,
            "bbox_y": 1.0,
            "bbox_w": 2.0,
            "bbox_h": 3.0,
            "source_id": "12",
        },
    ]
    return Dataset.from_records(images, objects, [Category("building", 1), Category("road", 3, "way")])


def test_from_records_fills_defaults_and_derives_geometry():
    ds = make_dataset()
    building = ds.objects[ds.objects["source_id"] == "10"].iloc[0]
    assert (building.bbox_x, building.bbox_y, building.bbox_w, building.bbox_h) == (2, 1, 3, 2)
    assert building.area == 6 and not building.iscrowd and np.isnan(building.score)
    box_only = ds.objects[ds.objects["source_id"] == "12"].iloc[0]
    assert pd.isna(box_only.rle) and box_only.area == 6
    assert ds.object_mask(int(box_only.name)).sum() == 6


def test_order_is_stable_images_as_read_objects_grouped():
    ds = make_dataset()
    assert ds.images["image_id"].tolist() == ["2", "1", "3"]
    assert ds.objects["source_id"].tolist() == ["10", "11", "12"]
    assert list(ds.objects.columns[:14]) == [
        "image_id",
        "file_name",
        "width",
        "height",
        "category",
        "rle",
        "bbox_x",
        "bbox_y",
        "bbox_w",
        "bbox_h",
        "area",
        "iscrowd",
        "score",
        "source_id",
    ]


def test_to_frame_merges_image_columns():
    ds = make_dataset()
    ds = ds.replace(images=ds.images.assign(source_url=["u2", "u1", "u3"]))
    frame = ds.to_frame()
    assert len(frame) == 3
    assert frame.set_index("source_id").loc["11", "source_url"] == "u1"


def test_class_index_keeps_zero_for_background():
    assert make_dataset().class_index() == {"building": 1, "road": 2}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda i, o: (i, o.drop(columns="rle")), "lacks required columns"),
        (lambda i, o: (i, o.assign(image_id=["1", "2", "9"])), "unknown image"),
        (lambda i, o: (i, o.assign(category=["building", "tree", "road"])), "unknown category"),
        (lambda i, o: (pd.concat([i, i.iloc[:1]]), o), "duplicate image id"),
        (lambda i, o: (i.assign(width=[8, 0, 4]), o.assign(width=[8, 0, 0])), "image has no size"),
        (lambda i, o: (i, o.assign(width=[8, 8, 9])), "size differs"),
        (lambda i, o: (i, o.assign(area=["x", "1", "2"])), "wrong type"),
        (lambda i, o: (i, o.assign(category=[None, "road", "road"])), "missing value"),
    ],
)
def test_contract_violations(change, message):
    ds = make_dataset()
    images, objects = change(ds.images, ds.objects)
    with pytest.raises(ValidationError, match=message):
        Dataset(images, objects, ds.categories, source="x.json")


def test_duplicate_category_names_rejected():
    ds = make_dataset()
    with pytest.raises(ValidationError, match="duplicate category names"):
        ds.replace(categories=[Category("building", 1), Category("building", 2), Category("road", 3)])


def test_image_paths(tmp_path):
    ds = make_dataset()
    assert ds.image_paths() == [None, None, None]
    rooted = Dataset(ds.images, ds.objects, ds.categories, image_root=tmp_path)
    assert rooted.image_path("1") == tmp_path / "sub" / "a.png"


def test_geometry_column():
    ds = make_dataset(geometry=json.dumps([[2, 1, 5, 1, 5, 3]]))
    assert ds.geometry(0) == [[2, 1, 5, 1, 5, 3]]
    assert ds.geometry(1) is None


@pytest.mark.parametrize("name", ["../escape.png", "/abs/a.png", "sub\\a.png"])
def test_image_file_names_must_be_safe_and_normalised(name):
    ds = make_dataset()
    images = ds.images.assign(file_name=[name, "sub/a.png", "empty.png"])
    objects = ds.objects.assign(
        file_name=ds.objects["image_id"].map(dict(zip(images.image_id, images.file_name, strict=True)))
    )
    with pytest.raises((ValidationError, UnsafePathError)):
        Dataset(images, objects, ds.categories, source="x.json")
