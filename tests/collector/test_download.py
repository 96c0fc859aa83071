"""download(): candidates to kept images, manifest and Dataset, against real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

from seg.collector import fetch as fetch_module
from seg.collector.candidates import Candidate
from seg.collector.download import DownloadOptions, download
from seg.collector.manifest import read_manifest
from seg.dataset.store import load_dataset
from seg.errors import OptionError, OutputExistsError
from tests.collector.loopback import Reply, serve

LOCAL = DownloadOptions(allow_private=True, host_rate=0, workers=4)


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(fetch_module, "BACKOFF", 0.01)


def picture(seed: int, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A smooth random colour field: distinct seeds give unrelated pictures."""
    coarse = np.random.default_rng(seed).uniform(0, 255, (5, 6, 3)).astype(np.uint8)
    return Image.fromarray(coarse, "RGB").resize(size, Image.Resampling.BICUBIC)


def encode(image: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def jpeg(seed: int) -> bytes:
    return encode(picture(seed))


def image_routes(count: int) -> dict[str, Reply]:
    return {f"/{i}.jpg": Reply(jpeg(i), content_type="image/jpeg") for i in range(count)}


def manifest_rows(out) -> list[dict[str, str]]:
    return read_manifest(out / "manifest.csv")[1]


def by_url(out) -> dict[str, dict[str, str]]:
    return {row["image_url"].rsplit("/", 1)[-1]: row for row in manifest_rows(out)}


def test_kept_images_are_the_served_bytes_named_by_content_with_provenance(tmp_path):
    png = encode(picture(1), "PNG")
    routes = {"/a.jpg": Reply(jpeg(0), content_type="image/jpeg"), "/b.jpg": Reply(png, content_type="image/jpeg")}
    with serve(routes) as server:
        candidates = [
            Candidate(
                f"{server.url}/a.jpg",
                query="red cats",
                engine="test",
                rank=0,
                page_url="https://example.com/cats",
                title='A "red", cat\nsecond line',
                licence="CC BY 4.0",
            ),
            f"{server.url}/b.jpg",
        ]
        report = download(candidates, tmp_path / "out", options=LOCAL)
    out = tmp_path / "out"
    assert report["kept"] == report["total"] == 2 and report["failed"] == {} and report["pulled"] == 2
    rows = by_url(out)
    a, b = rows["a.jpg"], rows["b.jpg"]
    assert (out / a["file"]).read_bytes() == jpeg(0) and a["file"].endswith(".jpg")
    assert (out / b["file"]).read_bytes() == png and b["file"].endswith(".png")  # the bytes decide, not the URL
    assert a["file"] == f"images/{a['sha256'][:16]}.jpg" and len(a["phash"]) == 16
    assert (a["status"], a["source"], a["width"], a["height"], a["format"]) == ("ok", "full", "160", "120", "jpg")
    assert a["title"] == 'A "red", cat\nsecond line' and a["fetched_at"].endswith("+00:00")
    assert int(a["bytes"]) == len(jpeg(0))
    dataset = load_dataset(out / "dataset")
    assert len(dataset.images) == 2 and len(dataset.objects) == 0 and dataset.categories == []
    first = dataset.images.set_index("file_name").loc[a["file"]]
    assert (first["width"], first["height"]) == (160, 120)
    provenance = json.loads(first["attributes"])
    assert provenance["query"] == "red cats" and provenance["licence"] == "CC BY 4.0"
    assert provenance["image_url"].endswith("/a.jpg") and provenance["sha256"] == a["sha256"]
    assert dataset.image_path(first["image_id"]).read_bytes() == jpeg(0)


def test_bad_bodies_are_refused_with_their_status(tmp_path):
    whole = encode(picture(2, (320, 240)), "PNG")
    big = jpeg(3) + b"\0" * 100_000
    routes = {
        "/html.jpg": Reply(b"<!DOCTYPE html><html>Forbidden</html>", content_type="image/jpeg"),
        "/cut.jpg": Reply(encode(picture(2, (320, 240)))[:3000], content_type="image/jpeg"),
        "/cut.png": Reply(whole[: len(whole) // 2], content_type="image/png"),
        "/big.jpg": Reply(big, content_type="image/jpeg"),
        "/big-no-length.jpg": Reply(big, headers={"Content-Length": ""}, content_type="image/jpeg"),
        "/gone.jpg": Reply(b"gone", status=410),
    }
    options = DownloadOptions(allow_private=True, host_rate=0, max_bytes=50_000)
    with serve(routes) as server:
        urls = [f"{server.url}{path}" for path in routes] + ["ftp://example.com/a.jpg", "javascript:alert(1)"]
        report = download(urls, tmp_path / "out", options=options)
    status = {name: row["status"] for name, row in by_url(tmp_path / "out").items()}
    assert status == {
        "html.jpg": "not_image",
        "cut.jpg": "corrupt",
        "cut.png": "corrupt",
        "big.jpg": "too_large",
        "big-no-length.jpg": "too_large",
        "gone.jpg": "http_410",
        "a.jpg": "bad_url",
        "javascript:alert(1)": "bad_url",
    }
    assert report["kept"] == 0 and sum(report["failed"].values()) == 8
    assert list((tmp_path / "out" / "images").iterdir()) == []
    assert all(row["error"] for row in manifest_rows(tmp_path / "out"))


def test_a_decompression_bomb_is_refused(tmp_path):
    from tests.collector.test_image_check import png_declaring

    with serve({"/bomb.png": Reply(png_declaring(60_000, 60_000), content_type="image/png")}) as server:
        report = download([f"{server.url}/bomb.png"], tmp_path / "out", options=LOCAL)
    assert report["failed"] == {"too_large": 1}
    assert "decompression bomb" in manifest_rows(tmp_path / "out")[0]["error"]


def test_exact_and_near_duplicates_are_removed_and_different_pictures_kept(tmp_path):
    original = picture(4, (320, 240))
    routes = {
        "/original.png": Reply(encode(original, "PNG")),
        "/copy.png": Reply(encode(original, "PNG")),
        "/resized.jpg": Reply(encode(original.resize((300, 225)), "JPEG", quality=80)),
        "/other.jpg": Reply(encode(picture(5, (320, 240)))),
    }
    options = DownloadOptions(allow_private=True, host_rate=0, workers=1)
    with serve(routes) as server:
        report = download([f"{server.url}{p}" for p in routes], tmp_path / "out", options=options)
        off = DownloadOptions(allow_private=True, host_rate=0, workers=1, near_duplicates=-1)
        kept_all = download([f"{server.url}{p}" for p in routes], tmp_path / "off", options=off)
    rows = by_url(tmp_path / "out")
    assert report["kept"] == 2 and report["duplicates"] == 2
    assert rows["copy.png"]["status"] == rows["resized.jpg"]["status"] == "duplicate"
    assert rows["copy.png"]["duplicate_of"] == rows["resized.jpg"]["duplicate_of"] == rows["original.png"]["file"]
    assert "near-duplicate" in rows["resized.jpg"]["error"] and rows["other.jpg"]["status"] == "ok"
    assert kept_all["kept"] == 3 and kept_all["duplicates"] == 1


def test_the_thumbnail_is_kept_when_the_full_image_fails(tmp_path):
    thumbnail = jpeg(6)
    data_url = "data:image/jpeg;base64," + base64.b64encode(jpeg(7)).decode()
    with serve({"/thumb.jpg": Reply(thumbnail)}) as server:
        candidates = [
            Candidate(f"{server.url}/missing.jpg", thumbnail_url=f"{server.url}/thumb.jpg"),
            Candidate(f"{server.url}/also-missing.jpg", thumbnail_url=data_url),
            Candidate(f"{server.url}/no-thumbnail.jpg", thumbnail_url=f"{server.url}/missing-thumb.jpg"),
        ]
        report = download(candidates, tmp_path / "out", options=LOCAL)
    rows = by_url(tmp_path / "out")
    assert report["kept"] == report["thumbnails"] == 2
    kept = rows["missing.jpg"]
    assert (kept["status"], kept["source"]) == ("ok", "thumbnail") and "http_404" in kept["error"]
    assert (tmp_path / "out" / kept["file"]).read_bytes() == thumbnail
    assert rows["also-missing.jpg"]["source"] == "thumbnail"
    failed = rows["no-thumbnail.jpg"]
    assert failed["status"] == "http_404" and "thumbnail: http_404" in failed["error"]


def test_limit_pulls_lazily_in_the_calling_thread_and_never_keeps_more(tmp_path):
    pulled, threads = [], set()

    def lazy(server, count):
        for i in range(count):
            pulled.append(i)
            threads.add(threading.get_ident())
            yield Candidate(f"{server.url}/{i}.jpg", rank=i)

    with serve(image_routes(10)) as server:
        report = download(lazy(server, 10), tmp_path / "out", options=LOCAL, limit=3)
        assert report["kept"] == 3 and report["pulled"] == 3 and len(pulled) == 3
        assert threads == {threading.get_ident()}
        more = download(lazy(server, 10), tmp_path / "out", options=LOCAL, limit=5)
        assert more["kept"] == 2 and more["total"] == 5 and more["skipped"] == 3
        done = download(lazy(server, 10), tmp_path / "out", options=LOCAL, limit=5)
        assert done["kept"] == 0 and done["pulled"] == 0
    assert len(list((tmp_path / "out" / "images").iterdir())) == 5


def test_with_duplicates_in_flight_more_are_pulled_but_the_limit_holds(tmp_path):
    with serve(image_routes(6)) as server:
        urls = [f"{server.url}/0.jpg?copy={i}" for i in range(5)] + [f"{server.url}/{i}.jpg" for i in range(1, 6)]
        report = download(urls, tmp_path / "out", options=LOCAL, limit=3)
    assert report["kept"] == 3 and report["duplicates"] >= 4


def test_a_rerun_fetches_nothing_done_and_tries_transient_failures_again(tmp_path):
    calls = []

    def flaky(handler):
        calls.append(1)
        return Reply(jpeg(9)) if len(calls) > 1 else Reply(status=503)

    routes = {**image_routes(4), "/flaky.jpg": flaky, "/gone.jpg": Reply(status=404)}
    options = DownloadOptions(allow_private=True, host_rate=0, retries=0)
    with serve(routes) as server:
        urls = [f"{server.url}{p}" for p in routes]
        first = download(urls, tmp_path / "out", options=options)
        assert first["kept"] == 4 and first["failed"] == {"http_503": 1, "http_404": 1}
        seen = len(server.requests)
        second = download(urls, tmp_path / "out", options=options)
        assert second["kept"] == 1 and second["skipped"] == 5 and second["total"] == 5
        assert [path for path, _ in server.requests[seen:]] == ["/flaky.jpg"]
        third = download(urls, tmp_path / "out", options=options)
        assert third["skipped"] == 6 and len(server.requests) == seen + 1
    assert len(load_dataset(tmp_path / "out" / "dataset").images) == 5


def test_a_manifest_with_a_cut_last_row_resumes(tmp_path):
    with serve(image_routes(5)) as server:
        urls = [f"{server.url}/{i}.jpg" for i in range(5)]
        download(urls, tmp_path / "out", options=DownloadOptions(allow_private=True, host_rate=0, workers=1))
        manifest = tmp_path / "out" / "manifest.csv"
        manifest.write_bytes(manifest.read_bytes()[:-25])
        seen = len(server.requests)
        report = download(urls, tmp_path / "out", options=LOCAL)
        assert [path for path, _ in server.requests[seen:]] == ["/4.jpg"]
    # the cut row's image file was written before its row: fetched again, it is kept (same name), not a duplicate
    assert report["skipped"] == 4 and report["kept"] == 1 and report["total"] == 5 and report["duplicates"] == 0
    assert len(list((tmp_path / "out" / "images").iterdir())) == 5
    rows = manifest_rows(tmp_path / "out")
    assert len(rows) == 5 and rows[-1]["status"] == "ok"


def test_an_interrupted_run_leaves_a_readable_manifest_and_the_rerun_completes(tmp_path):
    def interrupted(server):
        for i in range(8):
            if i == 5:
                raise KeyboardInterrupt
            yield f"{server.url}/{i}.jpg"

    with serve(image_routes(8)) as server:
        with pytest.raises(KeyboardInterrupt):
            download(interrupted(server), tmp_path / "out", options=DownloadOptions(allow_private=True, host_rate=0))
        rows = manifest_rows(tmp_path / "out")
        assert len(rows) <= 5 and all(row["status"] == "ok" for row in rows)
        assert all((tmp_path / "out" / row["file"]).is_file() for row in rows)
        report = download([f"{server.url}/{i}.jpg" for i in range(8)], tmp_path / "out", options=LOCAL)
    assert report["total"] == 8 and report["skipped"] == len(rows)
    assert len(load_dataset(tmp_path / "out" / "dataset").images) == 8


def test_outputs_are_refused_or_replaced_as_asked(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with serve(image_routes(2)) as server:
        urls = [f"{server.url}/{i}.jpg" for i in range(2)]
        with pytest.raises(OutputExistsError, match="--overwrite"):
            download(urls, mine, options=LOCAL)
        assert [p.name for p in mine.iterdir()] == ["notes.txt"]
        a_file = tmp_path / "file"
        a_file.write_text("x")
        with pytest.raises(OutputExistsError, match="is a file"):
            download(urls, a_file, options=LOCAL, overwrite=True)
        assert a_file.read_text() == "x"
        empty = tmp_path / "empty"
        empty.mkdir()
        assert download(urls, empty, options=LOCAL)["kept"] == 2
        fresh = download(urls, empty, options=LOCAL, overwrite=True)
        assert fresh["kept"] == 2 and fresh["skipped"] == 0 and len(manifest_rows(empty)) == 2
        assert download(urls, mine, options=LOCAL, overwrite=True)["kept"] == 2
        assert (mine / "notes.txt").read_text() == "keep me"


def test_bad_arguments_stop_before_anything_is_written(tmp_path):
    with pytest.raises(OptionError):
        download(["http://example.com/a.jpg"], tmp_path / "out", limit=0)
    for bad in ({"workers": 0}, {"timeout": 0}, {"retries": -1}, {"host_rate": -1}, {"near_duplicates": 65}):
        with pytest.raises(OptionError):
            DownloadOptions(**bad)
    with pytest.raises(OptionError, match="Candidate"):
        download([42], tmp_path / "out", options=LOCAL)
    assert not (tmp_path / "out" / "images").exists() or not any((tmp_path / "out" / "images").iterdir())


def test_a_failing_candidate_never_stops_the_run(tmp_path, monkeypatch):
    from seg.collector import download_run

    real = download_run.inspect_image

    def sometimes_broken(data, *args, **kwargs):
        if data == jpeg(1):
            raise RuntimeError("pillow had a bad day")
        return real(data, *args, **kwargs)

    monkeypatch.setattr(download_run, "inspect_image", sometimes_broken)
    with serve(image_routes(3)) as server:
        report = download([f"{server.url}/{i}.jpg" for i in range(3)], tmp_path / "out", options=LOCAL)
    assert report["kept"] == 2 and report["failed"] == {"error": 1}
    assert "RuntimeError: pillow had a bad day" in by_url(tmp_path / "out")["1.jpg"]["error"]


def test_requests_to_one_host_keep_to_the_rate(tmp_path):
    options = DownloadOptions(allow_private=True, host_rate=20.0, workers=6)
    with serve(image_routes(6)) as server:
        start = time.monotonic()
        report = download([f"{server.url}/{i}.jpg" for i in range(6)], tmp_path / "out", options=options)
        elapsed = time.monotonic() - start
    assert report["kept"] == 6 and elapsed >= 5 / 20.0
