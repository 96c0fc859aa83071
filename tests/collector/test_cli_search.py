"""``seg collect google|bing`` end to end: real headless Chromium, loopback result pages, real downloads.

The commands run inside a throwaway collect group with seg's error handling (SegError: exit 1, OptionError: exit 2),
as they will once registered. Each invocation starts its own browser, so these tests are few.
"""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from seg.cli_collect_search import bing, google
from seg.cli_options import SegGroup
from seg.collector.engine_profile import shipped_profile_path
from tests.collector.engine_pages import EngineSite, make_results, profile_for, require_chromium
from tests.collector.loopback import serve

LOOPBACK = ["--allow-private", "--rate", "0", "--workers", "3", "--timeout", "5"]


def collect_group() -> SegGroup:
    group = SegGroup("collect")
    group.add_command(google)
    group.add_command(bing)
    return group


def invoke(*args: str):
    return CliRunner().invoke(collect_group(), list(args))


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def google_site(tmp_path_factory):
    site = EngineSite("google", make_results(12), page_size=3, consent=True)
    with serve(site.routes()) as server:
        yield site, server, profile_for("google", server.url, tmp_path_factory.mktemp("google"))


@pytest.fixture(scope="module")
def bing_site(tmp_path_factory):
    site = EngineSite("bing", make_results(10, missing_full=(1,)), page_size=4)
    site.by_query["kestrel"] = make_results(10, start=100)
    with serve(site.routes()) as server:
        yield site, server, profile_for("bing", server.url, tmp_path_factory.mktemp("bing"))


@pytest.fixture
def google_pages(google_site):
    site, server, profile = google_site
    site.mode = "results"
    server.requests.clear()
    return site, server, profile


def read_manifest(out) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_google_keeps_exactly_limit_full_size_images_with_a_complete_manifest(google_pages, tmp_path):
    require_chromium()
    site, server, profile = google_pages
    out = tmp_path / "kites"
    result = invoke(
        "google", "red kite", "--limit", "7", "--out", str(out), "--profile", str(profile),
        "--size", "large", "--rights", "creative-commons", "--safe", "on", *LOOPBACK,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kept"] == 7 and report["thumbnails"] == 0 and report["total"] == 7 and report["problems"] == []
    rows = [row for row in read_manifest(out) if row["status"] == "ok"]
    assert len(rows) == 7
    by_url = {server.url + r.full_path: r for r in site.results}
    for row in rows:
        expected = by_url[row["image_url"]]
        assert row["source"] == "full"
        assert row["query"] == "red kite" and row["engine"] == "google"
        assert row["rank"] == str(expected.index)
        assert row["page_url"] == server.url + expected.page_path
        assert row["title"] == expected.title
        assert row["licence"] == "creative-commons"
        assert row["thumbnail_url"]
        assert (out / row["file"]).read_bytes() == expected.full
    assert len(list((out / "images").iterdir())) == 7
    assert (out / "dataset").is_dir()
    pages = [path for path, _ in server.requests if path.startswith(("/search", "/async"))]
    assert "tbs=isz:l,il:cl" in pages[0] and "safe=active" in pages[0]
    assert any("page=2" in p for p in pages)  # 7 of 3-per-page results needed the scroll and the more button


def test_bing_two_queries_limit_each_thumbnail_fallback_and_resume(bing_site, tmp_path):
    require_chromium()
    site, server, profile = bing_site
    out = tmp_path / "birds"
    args = ["bing", "red kite", "kestrel", "--limit", "4", "--out", str(out), "--profile", str(profile), *LOOPBACK]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kept"] == 8 and report["total"] == 8 and report["thumbnails"] == 1
    rows = [row for row in read_manifest(out) if row["status"] == "ok"]
    assert sorted(row["query"] for row in rows) == ["kestrel"] * 4 + ["red kite"] * 4
    fallback = [row for row in rows if row["source"] == "thumbnail"]
    assert len(fallback) == 1 and fallback[0]["rank"] == "1"  # its full-size URL answers 404
    assert fallback[0]["image_url"] == server.url + site.results[1].full_path
    assert all(row["engine"] == "bing" and row["title"] and row["page_url"] for row in rows)

    server.requests.clear()
    again = invoke(*args)  # resumed: both queries have their images, no search runs
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["queries"]["kestrel"] == {"skipped": "4 images from an earlier run"}
    assert server.requests == []


def test_a_changed_layout_fails_naming_the_profile_and_keeps_earlier_outputs(google_pages, tmp_path):
    require_chromium()
    site, _, profile = google_pages
    out = tmp_path / "kites"
    common = ["--out", str(out), "--profile", str(profile), *LOOPBACK]
    assert invoke("google", "red kite", "--limit", "2", *common).exit_code == 0
    manifest = (out / "manifest.csv").read_bytes()
    images = sorted(p.name for p in (out / "images").iterdir())
    site.mode = "renamed"
    result = invoke("google", "red kite", "--limit", "4", "--page-timeout", "1", *common)
    assert result.exit_code == 1
    assert f"seg: error: {profile}: no results matched selector 'div.eA0Zlc' for query 'red kite'" in result.output
    assert "page layout has likely changed: check the profile" in result.output
    assert (out / "manifest.csv").read_bytes() == manifest
    assert sorted(p.name for p in (out / "images").iterdir()) == images


def test_a_genuine_no_results_page_fails_clearly(google_pages, tmp_path):
    require_chromium()
    site, _, profile = google_pages
    site.mode = "empty"
    result = invoke("google", "qwxzv", "--out", str(tmp_path / "o"), "--profile", str(profile), *LOOPBACK)
    assert result.exit_code == 1
    assert "engine 'google' found no images for query 'qwxzv'" in result.output
    assert "layout" not in result.output


def test_unknown_filter_value_is_a_usage_error_naming_the_profile(google_pages, tmp_path):
    _, server, profile = google_pages
    result = invoke("google", "kite", "--size", "huge", "--out", str(tmp_path / "o"), "--profile", str(profile))
    assert result.exit_code == 2
    assert f"{profile}: engine profile 'google' has no size filter 'huge'" in result.output
    assert server.requests == [] and not (tmp_path / "o").exists()


def test_malformed_profile_is_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "google.json"
    bad.write_text('{"name": "google", "search_url": ')
    result = invoke("google", "kite", "--out", str(tmp_path / "o"), "--profile", str(bad))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith(f"seg: error: {bad}: malformed JSON at line 1")


def test_print_profile_and_usage_errors(tmp_path):
    shipped = shipped_profile_path("bing").read_text(encoding="utf-8")
    result = invoke("bing", "--print-profile")
    assert result.exit_code == 0 and result.output == shipped
    mine = tmp_path / "mine.json"
    mine.write_text('{"name": "mine"}')
    assert invoke("bing", "--print-profile", "--profile", str(mine)).output == '{"name": "mine"}'
    assert invoke("bing", "--out", str(tmp_path / "o")).exit_code == 2  # no QUERY
    assert invoke("bing", "kite").exit_code == 2  # no --out
    assert "up to --limit images EACH" in " ".join(invoke("google", "--help").output.split())
