"""``doctor`` against a real Label Studio server, healthy and broken setups."""

from __future__ import annotations

import numpy as np
from PIL import Image

from seg.annotate.client import connect
from seg.annotate.doctor import doctor
from seg.annotate.push import push
from tests.annotate.conftest import free_port


def make_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(folder / name)


def project_titles(server) -> list[str]:
    with connect(server.url, server.api_key) as client:
        return sorted(p.title for p in client.sdk.projects.list())


def test_a_healthy_setup_passes_every_check(label_studio):
    folder = label_studio.document_root / "healthy"
    make_images(folder, ["a.png", "b.png"])
    with connect(label_studio.url, label_studio.api_key) as client:
        push(client, folder, project="healthy", classes=["building"])

    checks = doctor(label_studio.url, label_studio.api_key, project="healthy", images=folder)

    assert [c.name for c in checks] == ["server", "version", "API key", "local files", "project", "images"]
    assert all(c.ok for c in checks), checks
    assert checks[1].detail.startswith("Label Studio 1.")
    assert f"document root {label_studio.document_root}" in checks[3].detail
    assert "2 sampled task(s)" in checks[5].detail


def test_checking_a_folder_leaves_no_scratch_project(label_studio):
    folder = label_studio.document_root / "scratch"
    make_images(folder, ["a.png"])
    before = project_titles(label_studio)

    checks = doctor(label_studio.url, label_studio.api_key, images=folder)

    assert checks[-1].name == "local files" and checks[-1].ok
    assert project_titles(label_studio) == before


def test_a_folder_outside_the_document_root_gets_the_settings_to_fix_it(label_studio, tmp_path):
    folder = tmp_path / "elsewhere" / "tiles"
    make_images(folder, ["a.png"])

    checks = doctor(label_studio.url, label_studio.api_key, images=folder)

    local = checks[-1]
    assert local.name == "local files" and not local.ok
    assert "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true" in local.advice
    assert f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={folder.parent}" in local.advice


def test_missing_images_fail_with_advice(label_studio):
    folder = label_studio.document_root / "vanishing"
    make_images(folder, ["a.png", "b.png"])
    with connect(label_studio.url, label_studio.api_key) as client:
        push(client, folder, project="vanishing", classes=["building"])
    (folder / "b.png").unlink()

    checks = doctor(label_studio.url, label_studio.api_key, project="vanishing")

    images = checks[-1]
    assert images.name == "images" and not images.ok
    assert "1 of 2 sampled image(s) fail" in images.detail and "b.png -> HTTP 404" in images.detail
    assert images.advice


def test_an_unknown_project_fails(label_studio):
    checks = doctor(label_studio.url, label_studio.api_key, project=424242)
    assert checks[-1].name == "project" and not checks[-1].ok


def test_a_wrong_key_fails_without_showing_it(label_studio):
    wrong = "1" * 40
    checks = doctor(label_studio.url, wrong)
    assert [c.ok for c in checks] == [True, True, False]
    assert checks[-1].name == "API key" and "LABEL_STUDIO_API_KEY" in checks[-1].advice
    assert all(wrong not in f"{c.detail} {c.advice}" for c in checks)
    assert not doctor(label_studio.url, None)[-1].ok


def test_a_bad_url_fails_the_server_check_with_advice():
    url = f"http://127.0.0.1:{free_port()}"
    checks = doctor(url, "0" * 40, timeout=2)
    assert len(checks) == 1
    assert checks[0].name == "server" and not checks[0].ok
    assert checks[0].detail == f"cannot reach Label Studio at {url}: is it running?"
    assert "label-studio start" in checks[0].advice
