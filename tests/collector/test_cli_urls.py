"""``seg collect urls``, its URL-list reader and the shared download options, through click's CliRunner."""

from __future__ import annotations

import io
import json

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from seg.cli_collect_urls import OPTION_KEYS, download_options, download_options_from, urls
from seg.cli_options import SegGroup
from seg.collector.download import DownloadOptions
from seg.collector.manifest import read_manifest
from seg.collector.url_list import read_url_file
from seg.errors import FormatError
from tests.collector.loopback import Reply, serve

#: The command on a group of its own, as the lead registers it on `seg collect` (SegError -> exit 1).
group = SegGroup("collect", commands={"urls": urls})


def run(*args):
    return CliRunner().invoke(group, ["urls", *[str(a) for a in args]])


def jpeg(seed: int) -> bytes:
    coarse = np.random.default_rng(seed).uniform(0, 255, (5, 6, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(coarse, "RGB").resize((96, 64), Image.Resampling.BICUBIC).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def server():
    with serve({f"/{i}.jpg": Reply(jpeg(i), content_type="image/jpeg") for i in range(4)}) as running:
        yield running


def test_urls_from_a_text_file(tmp_path, server):
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# my pictures\n\n{server.url}/0.jpg\n  {server.url}/1.jpg  \r\n{server.url}/missing.jpg\n")
    out = tmp_path / "out"
    result = run(listing, "--out", out, "--allow-private", "--rate", 0, "--workers", 2)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kept"] == 2 and report["failed"] == {"http_404": 1} and report["out"] == str(out)
    rows = read_manifest(out / "manifest.csv")[1]
    assert sorted(row["rank"] for row in rows) == ["0", "1", "2"]  # rows come in completion order
    assert sorted(p.read_bytes() for p in (out / "images").iterdir()) == sorted([jpeg(0), jpeg(1)])
    again = run(listing, "--out", out, "--allow-private", "--rate", 0)
    assert again.exit_code == 0 and json.loads(again.stdout)["skipped"] == 3  # the 404 is final too


def test_urls_from_csv_files_with_provenance(tmp_path, server):
    table = tmp_path / "found.csv"
    table.write_text(
        "image_url,title,page_url,licence,query,thumbnail_url\n"
        f'{server.url}/0.jpg,"Cat, sleeping",https://example.com/p,CC0,cats,\n'
        "\n"
        f"{server.url}/missing.jpg,Dog,,,dogs,{server.url}/3.jpg\n"
    )
    result = run(table, "-o", tmp_path / "out", "--allow-private", "--rate", 0, "--limit", 5)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["thumbnails"] == 1
    rows = {row["rank"]: row for row in read_manifest(tmp_path / "out" / "manifest.csv")[1]}
    assert (rows["0"]["title"], rows["0"]["licence"], rows["0"]["query"]) == ("Cat, sleeping", "CC0", "cats")
    assert rows["1"]["source"] == "thumbnail"
    other = tmp_path / "list.txt"  # no .csv name: a header naming a url column makes it CSV
    other.write_text(f"URL,license\n{server.url}/2.jpg,MIT\n")
    assert [(c.image_url, c.licence) for c in read_url_file(other)] == [(f"{server.url}/2.jpg", "MIT")]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("bin.txt", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "not a text file"),
        ("latin.txt", b"http://a.example/1.jpg\nhttp://a.example/\xe9.jpg\n", "line 2: not a text file"),
        ("words.txt", b"http://a.example/1.jpg\n# fine\nhello world\n", "line 3: not a URL"),
        ("noscheme.txt", b"www.example.com/a.jpg\n", "line 1: not a URL"),
        ("nohost.txt", b"http:///a.jpg\n", "line 1: not a URL"),
        ("empty.txt", b"\n# nothing\n", "no URL in file"),
        ("nourl.csv", b"title,licence\ncat,CC0\n", "line 1: CSV has no URL column"),
        ("emptyurl.csv", b"image_url,title\nhttp://a.example/1.jpg,a\n,b\n", "line 3: not a URL"),
        ("extra.csv", b"url\nhttp://a.example/1.jpg,surprise\n", "line 2: CSV row has more fields"),
        ("quote.csv", b'url,title\nhttp://a.example/1.jpg,"open\n', "malformed CSV"),
        ("blank.csv", b"", "CSV is empty"),
    ],
)
def test_malformed_files_give_one_line_errors(tmp_path, name, content, words):
    listing = tmp_path / name
    listing.write_bytes(content)
    with pytest.raises(FormatError):
        read_url_file(listing)
    result = run(listing, "--out", tmp_path / "out")
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert message.count("\n") == 0 and str(listing) in message and words in message, message
    assert not (tmp_path / "out").exists()


def test_output_folder_and_usage_errors(tmp_path, server):
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{server.url}/0.jpg\n")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x.txt").write_text("mine")
    result = run(listing, "--out", taken, "--allow-private")
    assert result.exit_code == 1 and "--overwrite" in result.stderr
    assert [p.name for p in taken.iterdir()] == ["x.txt"]
    assert run(listing, "--out", taken, "--allow-private", "--overwrite", "--rate", 0).exit_code == 0
    for bad in (["--limit", 0], ["--workers", 0], ["--near-duplicates", 65], ["--max-size", 0], ["--rate", -1]):
        assert run(listing, "--out", tmp_path / "o", *bad).exit_code == 2, bad
    assert run(tmp_path / "absent.txt", "--out", tmp_path / "o").exit_code == 2
    blocked = run(listing, "--out", tmp_path / "blocked")
    assert blocked.exit_code == 0 and json.loads(blocked.stdout)["failed"] == {"blocked": 1}


def test_download_options_pop_their_keys():
    seen = {}

    @click.command()
    @download_options
    @click.option("--other", default="x")
    def command(**params):
        seen["options"] = download_options_from(params)
        seen["rest"] = params

    args = ["--workers", "3", "--timeout", "2.5", "--retries", "0", "--max-size", "1.5", "--allow-private"]
    result = CliRunner().invoke(command, [*args, "--rate", "0", "--near-duplicates", "-1"])
    assert result.exit_code == 0, result.output
    assert seen["rest"] == {"other": "x"} and set(OPTION_KEYS).isdisjoint(seen["rest"])
    assert seen["options"] == DownloadOptions(
        workers=3,
        timeout=2.5,
        retries=0,
        max_bytes=int(1.5 * 2**20),
        allow_private=True,
        host_rate=0.0,
        near_duplicates=-1,
    )
    assert CliRunner().invoke(command, []).exit_code == 0
    assert seen["options"] == DownloadOptions()


def test_help_shows_an_example():
    result = CliRunner().invoke(group, ["urls", "--help"])
    assert result.exit_code == 0 and "seg collect urls photos.txt" in result.output
