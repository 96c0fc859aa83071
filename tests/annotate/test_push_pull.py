"""Push to and pull from a real Label Studio server (started by conftest.py on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from seg.annotate.client import connect
from seg.annotate.errors import AuthError, NotFoundError, ProjectError, UnreachableError
from seg.annotate.projects import get_project, project_tasks
from seg.annotate.pull import pull
from seg.annotate.push import push
from seg.cli import cli
from seg.dataset import ls_brush
from seg.dataset import rle as coco_rle
from seg.dataset.core import Category, Dataset
from seg.dataset.polygons import polygons_to_rle
from seg.formats import coco
from tests.annotate.conftest import USER, free_port

# 32 x 16 images: pixel <-> percent conversions are exact in floating point, so polygon masks compare exactly.
W, H = 32, 16


def make_images(folder: Path, names: list[str], seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    written = {}
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path)
        written[name] = path.read_bytes()
    return written


def ring_mask(ring: list[float]) -> np.ndarray:
    return coco_rle.decode(polygons_to_rle([ring], H, W), H, W)


def building_with_courtyard() -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[2:12, 4:20] = 1
    mask[5:8, 8:13] = 0  # the hole
    return mask


def predictions_for(names: dict[str, str]) -> Dataset:
    """Predictions: a building with a hole on ``names['building']``, a road on ``names['road']``."""
    road = ring_mask([20, 0, 28, 0, 28, 16, 20, 16])
    images = [{"image_id": k, "file_name": v, "width": W, "height": H} for k, v in names.items()]
    objects = [
        {
            "image_id": "building",
            "file_name": names["building"],
            "width": W,
            "height": H,
            "category": "building",
            "rle": coco_rle.encode(building_with_courtyard()),
            "score": 0.9,
        },
        {
            "image_id": "road",
            "file_name": names["road"],
            "width": W,
            "height": H,
            "category": "road",
            "rle": coco_rle.encode(road),
            "score": 0.6,
        },
    ]
    return Dataset.from_records(images, objects, [Category("building", 1), Category("road", 2)])


@pytest.fixture(scope="module")
def client(label_studio):
    with connect(label_studio.url, label_studio.api_key) as client:
        yield client


def server_predictions(client, project_id: int) -> list:
    return client.sdk.predictions.list(project=project_id)


def test_push_serves_local_images_and_adds_predictions(label_studio, client):
    folder = label_studio.document_root / "local"
    written = make_images(folder, ["a.png", "b.png", "sub/c.png"])
    predictions = predictions_for({"building": "a.png", "road": "sub/c.png"})

    report = push(client, folder, project="local push", classes=["building", "road"], predictions=predictions)

    assert report["created"] is True and report["serving"] == "local-files"
    assert (report["images"], report["tasks_added"], report["tasks_skipped"]) == (3, 3, 0)
    tasks = project_tasks(client, report["project"])
    assert sorted(t.data["seg_file_name"] for t in tasks) == ["a.png", "b.png", "sub/c.png"]
    for task in tasks:
        name = task.data["seg_file_name"]
        assert task.data["image"] == f"/data/local-files/?d=local/{name}"
        assert task.data["seg_key"] == hashlib.sha256(written[name]).hexdigest()
        assert client.request("GET", task.data["image"], what="fetching").content == written[name]
    found = server_predictions(client, report["project"])
    assert len(found) == report["predictions_added"] >= 2
    assert {p.model_version for p in found} == {"seg"}
    labelled = {p.task: p for p in found if p.result}
    by_name = {t.data["seg_file_name"]: t.id for t in tasks}
    assert set(labelled) == {by_name["a.png"], by_name["sub/c.png"]}
    assert labelled[by_name["a.png"]].score == pytest.approx(0.9)


def test_push_again_adds_only_new_images_and_replaces_predictions(label_studio, client):
    folder = label_studio.document_root / "again"
    make_images(folder, ["a.png", "b.png"], seed=1)
    predictions = predictions_for({"building": "a.png", "road": "b.png"})
    first = push(client, folder, project="push twice", classes=["building", "road"], predictions=predictions)
    before = {p.id for p in server_predictions(client, first["project"])}

    second = push(client, folder, project="push twice", classes=["building", "road"], predictions=predictions)

    assert (second["created"], second["tasks_added"], second["tasks_skipped"]) == (False, 0, 2)
    assert second["predictions_replaced"] == first["predictions_added"] == second["predictions_added"]
    after = server_predictions(client, first["project"])
    assert len(after) == len(before) and before.isdisjoint(p.id for p in after)
    assert len(project_tasks(client, first["project"])) == 2

    make_images(folder, ["c.png"], seed=2)
    (folder / "copy-of-c.png").write_bytes((folder / "c.png").read_bytes())  # the same image twice: one task
    third = push(client, folder, project="push twice", model_version="other", predictions=predictions)
    assert (third["tasks_added"], third["tasks_skipped"], third["duplicate_images"]) == (1, 2, 1)
    versions = [p.model_version for p in server_predictions(client, first["project"])]
    assert versions.count("seg") == len(after) and versions.count("other") == third["predictions_added"]


def test_push_uploads_images_the_server_cannot_see(client, tmp_path):
    written = make_images(tmp_path / "outside", ["x.png", "deep/y.png"], seed=3)

    report = push(client, tmp_path / "outside", project="uploaded", classes=["building"], tool="brush")

    assert report["serving"] == "upload" and report["tasks_added"] == 2 and report["tool"] == "brush"
    for task in project_tasks(client, report["project"]):
        assert task.data["image"].startswith(f"/data/upload/{report['project']}/")
        assert client.request("GET", task.data["image"], what="fetching").content == written[task.data["seg_file_name"]]
    again = push(client, tmp_path / "outside", project="uploaded")
    assert (again["tasks_added"], again["tasks_skipped"], again["tool"]) == (0, 2, "brush")


def test_classes_are_added_and_never_dropped(label_studio, client):
    folder = label_studio.document_root / "classes"
    make_images(folder, ["a.png"], seed=4)
    push(client, folder, project="classes grow", classes=["building"])

    report = push(client, folder, project="classes grow", classes=["road", "building"])

    assert report["classes_added"] == ["road"]
    assert get_project(client, report["project"]).setup.classes == ("building", "road")


def test_a_project_without_the_tool_is_refused(label_studio, client):
    folder = label_studio.document_root / "tools"
    make_images(folder, ["a.png"], seed=5)
    push(client, folder, project="brush only", classes=["building"], tool="brush")
    with pytest.raises(ProjectError, match="no polygon labels"):
        push(client, folder, project="brush only", tool="polygon")
    with pytest.raises(ProjectError, match="needs class names"):
        push(client, folder, project="no classes yet")


BOTH_TOOLS = """<View>
  <Image name="img" value="$picture"/>
  <BrushLabels name="brush" toName="img"><Label value="building"/><Label value="road"/></BrushLabels>
  <PolygonLabels name="poly" toName="img"><Label value="building"/><Label value="road"/></PolygonLabels>
</View>"""


def _percent(ring: list[float]) -> list[list[float]]:
    return [[ring[i] / W * 100, ring[i + 1] / H * 100] for i in range(0, len(ring), 2)]


def test_pull_gives_back_exactly_what_was_annotated(label_studio, client):
    folder = label_studio.document_root / "annotated"
    make_images(folder, ["a.png", "b.png", "sub/c.png"], seed=6)
    created = client.sdk.projects.create(title="annotated", label_config=BOTH_TOOLS)
    report = push(client, folder, project="annotated")
    assert report["tool"] == "brush" and report["created"] is False
    tasks = {t.data["seg_file_name"]: t for t in project_tasks(client, created.id)}
    assert set(tasks["a.png"].data) == {"picture", "seg_key", "seg_file_name"}

    courtyard = building_with_courtyard()
    road = [20.0, 0.0, 28.0, 0.0, 28.0, 16.0, 20.0, 16.0]
    lane = [2.0, 12.0, 30.0, 12.0, 30.0, 15.0, 2.0, 15.0]
    size = {"to_name": "img", "original_width": W, "original_height": H, "image_rotation": 0}
    brush = {"id": "b1", "from_name": "brush", "type": "brushlabels", **size}
    poly = {"id": "p1", "from_name": "poly", "type": "polygonlabels", **size}
    brush["value"] = {"format": "rle", "rle": ls_brush.encode(courtyard), "brushlabels": ["building"]}
    poly["value"] = {"points": _percent(road), "polygonlabels": ["road"], "closed": True}
    lane_poly = {**poly, "id": "p2", "value": {"points": _percent(lane), "polygonlabels": ["road"], "closed": True}}
    client.sdk.annotations.create(id=tasks["a.png"].id, result=[brush, poly])
    client.sdk.annotations.create(id=tasks["sub/c.png"].id, result=[lane_poly])

    dataset = pull(client, "annotated", image_root=folder)

    assert sorted(dataset.images["file_name"]) == ["a.png", "sub/c.png"]  # b.png has no annotation: not a negative
    assert dataset.image_root == folder
    objects = dataset.objects
    assert len(objects) == 3
    assert set(objects["annotator"]) == {USER}
    assert all(json.loads(a)["created_at"].startswith("20") for a in objects["attributes"])  # timestamps kept
    expected = {
        ("a.png", "building"): courtyard,
        ("a.png", "road"): ring_mask(road),
        ("sub/c.png", "road"): ring_mask(lane),
    }
    for i, row in objects.iterrows():
        np.testing.assert_array_equal(dataset.object_mask(i), expected[(row["file_name"], row["category"])])
        assert np.isnan(row["score"])
    image_ids = dict(zip(dataset.images["file_name"], dataset.images["image_id"], strict=True))
    assert image_ids["a.png"] == str(tasks["a.png"].id)

    # seg export-coco takes the project as its source: the courtyard's hole survives LS -> Dataset -> COCO -> Dataset
    out = folder.parent / "annotated-export" / "coco.json"
    env = {"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.api_key}
    result = CliRunner().invoke(
        cli, ["export-coco", "--project", "annotated", "--images", str(folder), "-o", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    exported = coco.load(out)
    building = exported.objects.index[exported.objects["category"] == "building"][0]
    np.testing.assert_array_equal(exported.object_mask(building), courtyard)
    assert exported.object_mask(building)[6, 10] == 0 and exported.object_mask(building)[3, 10] == 1  # the hole


def test_pull_predictions_and_both(label_studio, client):
    folder = label_studio.document_root / "predicted"
    make_images(folder, ["a.png", "b.png", "c.png"], seed=7)
    predictions = predictions_for({"building": "a.png", "road": "b.png"})
    report = push(client, folder, project="predicted", classes=["building", "road"], predictions=predictions)
    tasks = {t.data["seg_file_name"]: t.id for t in project_tasks(client, report["project"])}
    poly = {
        "id": "h1",
        "from_name": "label",
        "to_name": "image",
        "type": "polygonlabels",
        "original_width": W,
        "original_height": H,
        "value": {"points": _percent([0, 0, 8, 0, 8, 8, 0, 8]), "polygonlabels": ["building"]},
    }
    client.sdk.annotations.create(id=tasks["c.png"], result=[poly])

    predicted = pull(client, report["project"], which="predictions")
    assert set(predicted.objects["file_name"]) == {"a.png", "b.png"}
    assert sorted(predicted.objects["score"]) == pytest.approx([0.6, 0.9])
    assert set(predicted.objects["annotator"]) == {"model:seg"}
    by_category = {row["category"]: i for i, row in predicted.objects.iterrows()}
    np.testing.assert_array_equal(predicted.object_mask(by_category["building"]), building_with_courtyard())

    both = pull(client, report["project"], which="both")
    assert len(both.objects) == 3
    assert set(both.objects["file_name"]) == {"a.png", "b.png", "c.png"}
    annotations = pull(client, str(report["project"]))
    assert list(annotations.objects["file_name"]) == ["c.png"]


def test_pull_names_foreign_tasks_by_their_url_and_ignores_unsafe_names(label_studio, client):
    folder = label_studio.document_root / "foreign"
    make_images(folder, ["z.png"], seed=8)
    push(client, folder, project="foreign", classes=["building"])  # sets up the local-files storage
    project = get_project(client, "foreign")
    hostile = {"image": "/data/local-files/?d=foreign/w.png", "seg_file_name": "../../escape.png"}
    client.sdk.projects.import_tasks(project.id, request=[{"image": "/data/local-files/?d=foreign/z.png"}, hostile])
    foreign = [t for t in project_tasks(client, project.id) if "seg_key" not in t.data]
    region = {
        "from_name": "label",
        "to_name": "image",
        "type": "polygonlabels",
        "original_width": W,
        "original_height": H,
        "value": {"points": _percent([0, 0, 8, 0, 8, 8]), "polygonlabels": ["building"]},
    }
    for task in foreign:
        client.sdk.annotations.create(id=task.id, result=[region])

    dataset = pull(client, "foreign")

    assert sorted(dataset.images["file_name"]) == ["foreign/w.png", "foreign/z.png"]  # the hostile name is ignored


def test_unknown_projects(client):
    with pytest.raises(NotFoundError):
        pull(client, 987654)
    with pytest.raises(NotFoundError, match="no project titled 'never made'"):
        pull(client, "never made")


def test_a_wrong_key_is_refused_without_showing_it(label_studio, caplog):
    wrong = "0" * 40
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as info:
        connect(label_studio.url, wrong)
    assert str(info.value).startswith(f"the API key was refused by Label Studio at {label_studio.url}")
    assert wrong not in str(info.value) and wrong not in caplog.text
    assert label_studio.api_key not in caplog.text


def test_no_server_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UnreachableError) as info:
        connect(url, "0" * 40, retries=1, backoff=0.01)
    assert str(info.value) == f"cannot reach Label Studio at {url}: is it running?"


def test_a_server_stopped_mid_session_is_a_clear_error(label_studio_template, tmp_path):
    import shutil

    from tests.annotate.conftest import start_server

    data = tmp_path / "data"
    shutil.copytree(label_studio_template, data, ignore=shutil.ignore_patterns(".ready"))
    server = start_server(data, tmp_path / "docroot", fresh=False)
    folder = server.document_root / "stopped"
    make_images(folder, ["a.png"], seed=9)
    try:
        client = connect(server.url, server.api_key, retries=1, backoff=0.01)
        push(client, folder, project="stopped", classes=["building"])
    finally:
        server.stop()
    with pytest.raises(UnreachableError) as info:
        pull(client, "stopped")
    assert str(info.value) == f"cannot reach Label Studio at {server.url}: is it running?"
    assert server.api_key not in str(info.value)
    out = tmp_path / "pulled"
    result = CliRunner().invoke(
        cli,
        ["annotate", "pull", "--project", "stopped", "-o", str(out)],
        env={"LABEL_STUDIO_URL": server.url, "LABEL_STUDIO_API_KEY": server.api_key},
    )
    assert result.exit_code == 1 and "is it running?" in result.stderr and not out.exists()
