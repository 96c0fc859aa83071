"""``seg annotate push / pull / doctor`` through click's CliRunner, against a real Label Studio server."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from seg.annotate.client import connect
from seg.annotate.projects import get_project, project_tasks
from seg.cli_annotate import annotate
from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from seg.dataset.store import load_dataset, save_dataset
from tests.annotate.conftest import free_port


@pytest.fixture(scope="module")
def env(label_studio):
    return {"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.api_key}


def run(args, env, **kwargs):
    return CliRunner().invoke(annotate, args, env=env, catch_exceptions=False, **kwargs)


def make_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((16, 16, 3), 30 + i * 50, np.uint8)).save(folder / name)


def test_push_pull_round_trip(label_studio, env, tmp_path):
    folder = label_studio.document_root / "cli"
    make_images(folder, ["a.png", "b.png"])
    mask = np.zeros((16, 16), np.uint8)
    mask[2:10, 3:12] = 1
    predictions = Dataset.from_records(
        [{"image_id": "a", "file_name": "a.png", "width": 16, "height": 16}],
        [
            {
                "image_id": "a",
                "file_name": "a.png",
                "width": 16,
                "height": 16,
                "category": "road",
                "rle": coco_rle.encode(mask),
                "score": 0.7,
            }
        ],
        [Category("road", 1)],
    )
    save_dataset(predictions, tmp_path / "predictions")

    pushed = run(
        [
            "push",
            str(folder),
            "--project",
            "cli project",
            "--classes",
            "building",
            "--predictions",
            str(tmp_path / "predictions"),
        ],
        env,
    )

    assert pushed.exit_code == 0, pushed.output
    report = json.loads(pushed.stdout)
    assert (report["tasks_added"], report["predictions_added"]) == (2, 1)
    assert report["classes_added"] == [] and report["serving"] == "local-files"
    with connect(label_studio.url, label_studio.api_key) as client:
        assert get_project(client, "cli project").setup.classes == ("building", "road")
        task = next(t for t in project_tasks(client, report["project"]) if t.data["seg_file_name"] == "a.png")
        region = {
            "from_name": "label",
            "to_name": "image",
            "type": "polygonlabels",
            "original_width": 16,
            "original_height": 16,
            "value": {"points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["building"]},
        }
        client.sdk.annotations.create(id=task.id, result=[region])

    out = tmp_path / "pulled"
    pulled = run(["pull", "--project", "cli project", "-o", str(out), "--images", str(folder)], env)
    assert pulled.exit_code == 0, pulled.output
    assert json.loads(pulled.stdout)["objects"] == 1
    dataset = load_dataset(out)
    assert list(dataset.objects["category"]) == ["building"] and list(dataset.images["file_name"]) == ["a.png"]

    before = sorted(p.name for p in out.iterdir())
    refused = CliRunner().invoke(annotate, ["pull", "--project", "cli project", "-o", str(out)], env=env)
    assert refused.exit_code == 1 and "--overwrite" in refused.output
    assert sorted(p.name for p in out.iterdir()) == before

    predicted = run(
        ["pull", "--project", str(report["project"]), "-o", str(out), "--which", "predictions", "--overwrite"], env
    )
    assert predicted.exit_code == 0, predicted.output
    assert list(load_dataset(out).objects["category"]) == ["road"]

    coco = tmp_path / "coco.json"
    converted = run(["pull", "--project", "cli project", "--to", "coco", "-o", str(coco)], env)
    assert converted.exit_code == 0, converted.output
    assert len(json.loads(coco.read_text())["annotations"]) == 1


def test_doctor_prints_a_table_and_exits_1_on_failure(label_studio, env):
    healthy = run(["doctor"], env)
    assert healthy.exit_code == 0, healthy.output
    assert "✓ server" in healthy.output and "✓ API key" in healthy.output

    down = run(["doctor", "--url", f"http://127.0.0.1:{free_port()}"], env)
    assert down.exit_code == 1
    assert "✗ server" in down.output and "→ start it" in down.output


def test_a_wrong_key_exits_1_without_showing_it(label_studio, tmp_path):
    wrong = "2" * 40
    make_images(tmp_path / "imgs", ["a.png"])
    result = CliRunner().invoke(
        annotate,
        ["push", str(tmp_path / "imgs"), "--project", "never", "--classes", "x", "--url", label_studio.url],
        env={"LABEL_STUDIO_API_KEY": wrong},
    )
    assert result.exit_code == 1
    assert "seg: error: the API key was refused" in result.output
    assert wrong not in result.output


def test_no_key_and_bad_url_are_errors(tmp_path):
    make_images(tmp_path / "imgs", ["a.png"])
    push = ["push", str(tmp_path / "imgs"), "--project", "p", "--classes", "x"]
    no_key = CliRunner().invoke(annotate, push, env={"LABEL_STUDIO_API_KEY": None})
    assert no_key.exit_code == 1 and "no API key" in no_key.output
    bad_url = CliRunner().invoke(annotate, [*push, "--url", "localhost:8080", "--api-key", "k"])
    assert bad_url.exit_code == 2 and "not a Label Studio URL" in bad_url.output


def test_help_does_not_import_the_sdk():
    code = "import sys; from seg.cli_annotate import annotate; print('label_studio_sdk' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
