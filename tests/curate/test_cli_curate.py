"""``seg curate`` on the embedded sample: the planted errors are dropped, outputs are complete, bad usage is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from seg.cli import cli
from seg.dataset.store import load_dataset
from seg.sample.build import SampleInfo, build_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleInfo:
    return build_sample(tmp_path_factory.mktemp("sample") / "sample")


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def planted_images(info: SampleInfo) -> set[str]:
    return {str(error["image_id"]) for error in info.planted}


def test_top_n_keeps_none_of_the_planted_errors(sample: SampleInfo, tmp_path: Path) -> None:
    out = tmp_path / "curated"
    planted = planted_images(sample)
    top = 36 - len(planted)
    result = run("curate", str(sample.coco), "--images", str(sample.images), "--top", str(top), "-o", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kept_images"] == top and report["images"] == 36
    kept = load_dataset(out / "dataset")
    assert len(kept.images) == top and not planted & set(kept.images.image_id)
    scores = pd.read_csv(out / "scores.csv", dtype={"image_id": str})
    assert list(scores["rank"]) == list(range(1, 37))  # best first
    assert set(scores.image_id[-len(planted) :]) == planted
    assert all(isinstance(r, str) and r for r in scores.reasons[-len(planted) :])
    assert len(pd.read_csv(out / "objects.csv")) == len(json.loads(sample.coco.read_text())["annotations"])
    assert (out / "report.html").stat().st_size > 0


def test_min_score_export_and_by_object(sample: SampleInfo, tmp_path: Path) -> None:
    out = tmp_path / "curated"
    args = ["curate", str(sample.coco), "--images", str(sample.images), "-o", str(out)]
    result = run(*args, "--min-score", "0.85", "--to", "coco", "--no-report", "--weights", "reference=0")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    doc = json.loads((out / "coco.json").read_text())
    assert len(doc["images"]) == report["kept_images"] < 36 and not (out / "report.html").exists()
    result = run(*args, "--top", "600", "--by", "object", "--overwrite", "--no-report")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kept_objects"] == 600 and report["kept_images"] == 36


@pytest.mark.parametrize(
    "extra, code, message",
    [
        ([], 2, "exactly one of --top and --min-score"),
        (["--top", "3", "--min-score", "0.5"], 2, "exactly one of --top and --min-score"),
        (["--top", "0"], 2, "--top"),
        (["--top", "3", "--weights", "looks=2"], 2, "unknown signal group 'looks'"),
        (["--top", "3", "--by", "pixel"], 2, "--by"),
    ],
)
def test_usage_errors(sample: SampleInfo, tmp_path: Path, extra: list[str], code: int, message: str) -> None:
    result = CliRunner().invoke(cli, ["curate", str(sample.coco), "-o", str(tmp_path / "out"), *extra])
    assert result.exit_code == code and message in result.output
    assert not (tmp_path / "out").exists()


def test_existing_output_and_bad_source(sample: SampleInfo, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["curate", str(sample.coco), "--top", "3", "-o", str(out)])
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert (out / "keep.txt").read_text() == "mine"
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [}')
    result = CliRunner().invoke(cli, ["curate", str(bad), "--top", "3", "-o", str(tmp_path / "o2")])
    assert result.exit_code == 1 and str(bad) in result.output and len(result.output.strip().splitlines()) == 1
