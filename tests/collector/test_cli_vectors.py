"""``seg collect footprints`` and ``seg collect geojson`` through the command line, on the embedded sample."""

from __future__ import annotations

import json

from click.testing import CliRunner

from seg.cli import cli
from seg.dataset.store import load_dataset
from seg.sample import build_sample


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_sample_cache_to_chips_to_footprints_to_geojson(tmp_path):
    info = build_sample(tmp_path / "sample")
    chips = tmp_path / "chips"
    made = run(
        "collect",
        "sasplanet",
        info.root / "cache",
        "--map",
        info.map_dir.name,
        "--zoom",
        18,
        "--chip",
        256,
        "-o",
        chips,
    )
    assert made.exit_code == 0, made.output
    labelled = tmp_path / "labelled"
    result = run(
        "collect", "footprints", info.root / "footprints.geojson", chips, "-o", labelled, "--class-property", "class"
    )
    assert result.exit_code == 0, result.output
    dataset = load_dataset(labelled)
    assert len(dataset.images) == 36 and set(dataset.category_names) == {"building", "road"}
    assert json.loads(result.stdout)["objects"] == len(dataset.objects) > 600
    out = tmp_path / "back.geojson"
    back = run("collect", "geojson", labelled, "-o", out)
    assert back.exit_code == 0, back.output
    features = json.loads(out.read_text())["features"]
    assert len(features) == len(dataset.objects)
    assert {f["properties"]["class"] for f in features} == {"building", "road"}
    again = run("collect", "geojson", labelled, "-o", out)
    assert again.exit_code == 1 and "output exists" in again.stderr
