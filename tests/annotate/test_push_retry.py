"""A failed import is retried without duplicating tasks (mock transport, no server needed)."""

from __future__ import annotations

import json

import httpx
import pytest

from seg.annotate.client import Client
from seg.annotate.errors import ServerError
from seg.annotate.push import _import_tasks, list_images


class FlakyServer:
    """Keeps imported tasks; a failing import stores only its first ``keep`` tasks, then answers 502."""

    def __init__(self, failures: int = 1, keep: int = 1) -> None:
        self.tasks: list[dict] = []
        self.imports: list[list[str]] = []
        self.failures = failures
        self.keep = keep

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/projects/1/import":
            sent = json.loads(request.content)
            self.imports.append([t["seg_key"] for t in sent])
            if self.failures:
                self.failures -= 1
                self.tasks.extend(sent[: self.keep])
                return httpx.Response(502, text="<html>bad gateway</html>")
            self.tasks.extend(sent)
            return httpx.Response(201, json={"task_count": len(sent)})
        if request.method == "GET" and request.url.path == "/api/tasks/":
            page = int(request.url.params.get("page", "1"))
            items = [{"id": i + 1, "data": t} for i, t in enumerate(self.tasks)] if page == 1 else []
            return httpx.Response(200, json={"tasks": items, "total": len(self.tasks)})
        return httpx.Response(404, json={"detail": "Not found."})


def client_for(server: FlakyServer) -> tuple[Client, list[float]]:
    delays: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(server))
    return Client("http://ls.test", "k" * 40, sleep=delays.append, http=http), delays


def test_a_retried_import_sends_only_the_tasks_that_did_not_arrive():
    server = FlakyServer()
    client, delays = client_for(server)
    tasks = [{"image": f"/data/upload/1/{k}.png", "seg_key": k, "seg_file_name": f"{k}.png"} for k in "abc"]

    assert _import_tasks(client, 1, tasks) == 2

    assert server.imports == [["a", "b", "c"], ["b", "c"]]
    assert sorted(t["seg_key"] for t in server.tasks) == ["a", "b", "c"]
    assert delays == [0.5]


def test_an_import_that_keeps_failing_is_reported():
    server = FlakyServer(failures=10, keep=0)
    client, delays = client_for(server)
    tasks = [{"image": "x", "seg_key": k, "seg_file_name": f"{k}.png"} for k in "ab"]
    with pytest.raises(ServerError, match=r"failed while importing 2 tasks into project 1 \(HTTP 502\)"):
        _import_tasks(client, 1, tasks)
    assert len(delays) == client.retries


def test_list_images_skips_hidden_files_and_other_files(tmp_path):
    for name in ["b.png", "a.JPG", "sub/c.tif", ".hidden.png", ".cache/d.png", "notes.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert list_images(tmp_path) == ["a.JPG", "b.png", "sub/c.tif"]
