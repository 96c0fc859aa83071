import json

import numpy as np
import pytest
from click.testing import CliRunner

from seg import __version__
from seg.cli import cli
from seg.dataset.store import load_dataset, save_dataset
from tests.dataset.test_core import make_dataset


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "src"
    save_dataset(make_dataset(), path)
    return path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_help_and_version():
    assert run("--help").exit_code == 0
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_convert_parquet_with_rename_and_classes(source, tmp_path):
    out = tmp_path / "out"
    result = run("convert", source, "--to", "parquet", "-o", out, "--rename", "road=street", "--classes", "street")
    assert result.exit_code == 0, result.output
    ds = load_dataset(out)
    assert ds.category_names == ["street"] and ds.objects["category"].tolist() == ["street"]
    assert json.loads(result.stdout)["objects"] == 1


def test_existing_output_is_kept_without_overwrite(source, tmp_path):
    out = tmp_path / "out"
    assert run("convert", source, "--to", "parquet", "-o", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = run("convert", source, "--to", "parquet", "-o", out, "--classes", "road")
    assert result.exit_code == 1
    assert f"seg: error: {out}: output exists; pass --overwrite" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert run("convert", source, "--to", "parquet", "-o", out, "--classes", "road", "--overwrite").exit_code == 0
    assert load_dataset(out).category_names == ["road"]


@pytest.mark.parametrize(
    "args",
    [
        ["--to", "nope"],
        ["--to", "parquet", "--rename", "noequals"],
        ["--to", "parquet", "--image-size", "12"],
        ["--to", "parquet", "--split", "1.5"],
    ],
)
def test_usage_errors_exit_2(source, tmp_path, args):
    assert run("convert", source, "-o", tmp_path / "o", *args).exit_code == 2


def test_library_errors_are_one_line_exit_1(source, tmp_path):
    result = run("convert", source, "--to", "parquet", "-o", tmp_path / "o", "--classes", "sky")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "unknown categories ['sky']" in result.stderr
    result = run("convert", source, "--to", "parquet", "-o", tmp_path / "o", "--segmentation", "rle")
    assert result.exit_code == 2 and "does not take option(s) segmentation" in result.stderr
    (tmp_path / "junk.txt").write_text("hello")
    result = run("info", tmp_path / "junk.txt")
    assert result.exit_code == 1 and "cannot tell the annotation format" in result.stderr


def test_info(source):
    result = run("info", source)
    assert result.exit_code == 0 and "images: 3 (1 without objects)" in result.stdout
    summary = json.loads(run("info", source, "--json").stdout)
    assert summary["classes"]["road"]["objects"] == 1


def test_merge(source, tmp_path):
    result = run("merge", source, source, "--name", "a", "--name", "b", "-o", tmp_path / "m")
    assert result.exit_code == 0, result.output
    merged = load_dataset(tmp_path / "m")
    assert len(merged.images) == 6 and set(merged.objects["origin"]) == {"a", "b"}
    assert run("merge", source, "-o", tmp_path / "m2").exit_code == 2
    assert run("merge", source, source, "--name", "a", "-o", tmp_path / "m3").exit_code == 2


def _coco_file(tmp_path, bad_annotation=False):
    doc = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 6, "height": 4},
            {"id": 2, "file_name": "b.png", "width": 6, "height": 4},
        ],
        "annotations": [
            {
                "id": 7,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[0, 0, 4, 0, 4, 3]],
                "bbox": [0, 0, 4, 3],
                "area": 6,
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "building"}],
    }
    if bad_annotation:
        doc["annotations"].append(
            {
                "id": 8,
                "image_id": 99,
                "category_id": 1,
                "segmentation": [[0, 0, 1, 0, 1, 1]],
                "bbox": [0, 0, 1, 1],
                "area": 1,
                "iscrowd": 0,
            }
        )
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(doc))
    return path


def test_export_coco_writes_dataset_beside(tmp_path):
    src = _coco_file(tmp_path)
    out = tmp_path / "out" / "export.json"
    result = run("export-coco", src, "-o", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["annotations"][0]["id"] == 7
    assert load_dataset(tmp_path / "out" / "export.dataset").objects["source_id"].tolist() == ["7"]
    again = run("export-coco", src, "-o", out)
    assert again.exit_code == 1 and "output exists" in again.stderr


def test_on_error_skip_writes_a_report_and_keeps_the_rest(tmp_path):
    src = _coco_file(tmp_path, bad_annotation=True)
    failed = run("convert", src, "--to", "parquet", "-o", tmp_path / "strict")
    assert failed.exit_code == 1 and "annotation 8" in failed.stderr and not (tmp_path / "strict").exists()
    result = run("convert", src, "--to", "parquet", "-o", tmp_path / "lenient", "--on-error", "skip")
    assert result.exit_code == 0, result.output
    assert len(load_dataset(tmp_path / "lenient").objects) == 1
    report = json.loads((tmp_path / "lenient" / "skipped.json").read_text())
    assert [r["item"] for r in report] == ["annotation 8"] and "skipped 1 bad item" in result.stderr


def test_convert_coco_to_masks_without_images(tmp_path):
    src = _coco_file(tmp_path)
    out = tmp_path / "masks"
    result = run("convert", src, "--to", "masks", "-o", out, "--copy-images", "none")
    assert result.exit_code == 0, result.output
    from PIL import Image

    mask = Image.open(out / "masks" / "a.png")
    assert mask.mode == "L" and np.unique(np.asarray(mask)).tolist() == [0, 1]


def test_kaggle_airbus_csv_through_coco_and_back(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("ImageId,EncodedPixels\na.jpg,1 3 10 2\na.jpg,20 4\nb.jpg,\n")
    coco_out = tmp_path / "c.json"
    result = run("convert", csv, "--to", "coco", "-o", coco_out, "--image-size", "5x6", "--class-name", "ship")
    assert result.exit_code == 0, result.output
    doc = json.loads(coco_out.read_text())
    assert [c["name"] for c in doc["categories"]] == ["ship"] and len(doc["images"]) == 2
    back = tmp_path / "back.csv"
    assert run("convert", coco_out, "--to", "kaggle", "--style", "airbus", "-o", back).exit_code == 0
    assert back.read_text().splitlines()[1:] == ["a.jpg,1 3 10 2", "a.jpg,20 4", "b.jpg,"]
    missing = run("convert", csv, "--to", "coco", "-o", tmp_path / "x.json")
    assert missing.exit_code == 1 and "--image-size" in missing.stderr
