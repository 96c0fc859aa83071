"""The download manifest (seg.collector.manifest): round trips, partial last rows, hostile files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seg.collector.manifest import COLUMNS, MAX_TEXT, clip_text, is_final, open_manifest, read_manifest
from seg.errors import FormatError

TEXT_COLUMNS = ("query", "page_url", "image_url", "title", "licence", "error")


def write_rows(path, rows):
    writer, earlier = open_manifest(path)
    for row in rows:
        writer.write(row)
    writer.close()
    return earlier


special = st.sampled_from(',"\r\n\t\0\u2028\x85 ;#')
tricky = st.text(alphabet=st.one_of(special, st.characters(exclude_categories=("Cs",))), max_size=40)


@given(st.lists(st.fixed_dictionaries({c: tricky for c in TEXT_COLUMNS}), max_size=5))
def test_text_columns_round_trip_any_strings(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("manifest") / "manifest.csv"
    write_rows(path, rows)
    header, back, end = read_manifest(path)
    assert header == list(COLUMNS) and end == path.stat().st_size
    assert [{c: r[c] for c in TEXT_COLUMNS} for r in back] == rows
    assert all(r["status"] == "" for r in back)


def rows(count):
    return [{"image_url": f"http://h/{i}.jpg", "status": "ok", "title": f'a, "b"\nline {i}'} for i in range(count)]


def test_appending_keeps_earlier_rows(tmp_path):
    path = tmp_path / "manifest.csv"
    assert write_rows(path, rows(2)) == []
    earlier = write_rows(path, rows(3)[2:])
    assert [r["image_url"] for r in earlier] == ["http://h/0.jpg", "http://h/1.jpg"]
    assert [r["title"] for r in read_manifest(path)[1]] == [r["title"] for r in rows(3)]


def test_every_cut_of_the_last_row_is_dropped_and_cut_off(tmp_path):
    path = tmp_path / "manifest.csv"
    write_rows(path, rows(3))
    data = path.read_bytes()
    whole = len(data)
    last_start = data.rindex(b"\r\n,,,,http://h/2.jpg") + 2
    for cut in range(last_start, whole):
        path.write_bytes(data[:cut])
        _, back, end = read_manifest(path)
        assert len(back) == 2 and end == last_start, cut
        assert len(write_rows(path, rows(3)[2:])) == 2
        assert path.read_bytes() == data, cut


def test_a_cut_header_starts_afresh(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_bytes(b"query,engine,ra")
    assert write_rows(path, rows(1)) == []
    assert read_manifest(path)[1][0]["image_url"] == "http://h/0.jpg"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"name,size\r\na,1\r\n", "not a download manifest"),
        (b"image_url,status\r\n\xff\xfe,ok\r\nhttp://x,ok\r\n", "not UTF-8"),
        (b"image_url,status\r\nhttp://x,ok,extra\r\nhttp://y,ok\r\n", "wrong number of fields"),
        (b'image_url,status\r\n"http://x"junk,ok\r\nhttp://y,ok\r\n', "malformed manifest row"),
    ],
)
def test_hostile_manifests_are_refused_with_the_line(tmp_path, content, words):
    path = tmp_path / "manifest.csv"
    path.write_bytes(content)
    with pytest.raises(FormatError) as caught:
        read_manifest(path)
    assert words in str(caught.value) and str(path) in str(caught.value)
    if words != "not a download manifest":
        assert "line 2" in str(caught.value)
    assert path.read_bytes() == content


def test_final_and_transient_statuses():
    final = [
        "ok",
        "duplicate",
        "not_image",
        "corrupt",
        "too_large",
        "blocked",
        "bad_url",
        "http_404",
        "http_302",
        "unknown_host",
    ]
    transient = ["error", "http_500", "http_503", "http_429", "http_408", "", "http_x"]
    assert all(is_final(s) for s in final)
    assert not any(is_final(s) for s in transient)


def test_long_text_is_clipped_stably_and_uniquely():
    a, b = "data:image/png;base64," + "A" * 10_000, "data:image/png;base64," + "A" * 9_999 + "B"
    assert clip_text("short") == "short"
    assert len(clip_text(a)) < MAX_TEXT and clip_text(a) == clip_text(a) != clip_text(b)
