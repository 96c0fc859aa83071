"""The curation report: a self-contained HTML page with thumbnails, overlays, reasons and plots, written atomically."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from seg.curate import report, report_assets, report_thumbnails
from seg.curate.report import write_report
from seg.curate.signals import GROUPS, Signal
from seg.dataset import rle
from seg.dataset.core import Category, Dataset
from seg.errors import OptionError, OutputExistsError

HOSTILE = "<script>alert(1)</script>"
QUOTED = "quo\"te's.png"
SIGNALS = [
    Signal("spike", "geometry", "object", "spiky <outline>", "Sharpest vertex angle & friends, mapped to [0, 1]."),
    Signal("blank", "quality", "image", "blank tile", "Share of the image without texture."),
]
WEIGHTS = dict(GROUPS)


# -- fixtures --------------------------------------------------------------------------------------------------------


def _square(height: int, width: int, y0: int, y1: int, x0: int, x1: int) -> str:
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return rle.encode(mask)


def _object(image_id: str, file_name: str, size: tuple[int, int], category: str, source_id: str, **extra) -> dict:
    width, height = size
    return {
        "image_id": image_id,
        "file_name": file_name,
        "width": width,
        "height": height,
        "category": category,
        "source_id": source_id,
        **extra,
    }


@pytest.fixture
def small(tmp_path: Path) -> Dataset:
    """Five images: a black one with a flagged square and a hostile-class box, a portrait with a quoted file name,
    one missing on disk, one without objects, and a corrupt file whose object has a broken RLE string."""
    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (64, 48)).save(root / "a.png")
    Image.new("RGB", (40, 80), (200, 200, 200)).save(root / QUOTED)
    Image.new("L", (50, 50), 90).save(root / "empty.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    images = [
        {"image_id": "a", "file_name": "a.png", "width": 64, "height": 48},
        {"image_id": "q", "file_name": QUOTED, "width": 40, "height": 80},
        {"image_id": "m", "file_name": "missing.png", "width": 32, "height": 32},
        {"image_id": "e", "file_name": "empty.png", "width": 50, "height": 50},
        {"image_id": "b", "file_name": "broken.png", "width": 30, "height": 30},
    ]
    objects = [
        _object("a", "a.png", (64, 48), "building", "s1", rle=_square(48, 64, 10, 30, 10, 30)),
        _object("a", "a.png", (64, 48), HOSTILE, "", bbox_x=40.0, bbox_y=20.0, bbox_w=20.0, bbox_h=20.0),
        _object("q", QUOTED, (40, 80), "building", "q1", rle=_square(80, 40, 5, 60, 5, 30)),
        _object("m", "missing.png", (32, 32), "building", "m1", rle=_square(32, 32, 4, 20, 4, 20)),
        _object("b", "broken.png", (30, 30), "building", "b1", rle="!!not rle", area=4, **_box(1, 1, 2, 2)),
    ]
    categories = [Category("building", 1), Category(HOSTILE, 2)]
    return Dataset.from_records(images, objects, categories, image_root=root)


def _box(x: float, y: float, w: float, h: float) -> dict:
    return {"bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h}


def _frames(
    dataset: Dataset,
    scores: dict[str, float],
    kept: set[str],
    *,
    spike: dict[int, float] | None = None,
    kept_objects: set[int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hand-built tables shaped like seg.curate.score.combine's, plus ``kept``."""
    spike = spike or {}
    ids = list(dataset.images["image_id"])
    order = sorted(ids, key=lambda i: (-scores[i], i))
    images = pd.DataFrame(
        {
            "image_id": ids,
            "file_name": list(dataset.images["file_name"]),
            "score": [scores[i] for i in ids],
            "rank": [order.index(i) + 1 for i in ids],
            "kept": [i in kept for i in ids],
        }
    )
    for group in GROUPS:
        images[group] = 0.0
    owner = dataset.objects["image_id"].to_numpy()
    per_image = {i: max([v for p, v in spike.items() if owner[p] == i], default=0.0) for i in ids}
    images["geometry"] = images["spike"] = [per_image[i] for i in ids]
    images["blank"] = [0.9 if i == "e" else 0.0 for i in ids]
    images["quality"] = images["blank"]
    images["reasons"] = [
        "; ".join(
            [f"spiky <outline> (object {p}): {v:.2f}" for p, v in spike.items() if owner[p] == i]
            + (["blank tile: 0.90"] if i == "e" else [])
        )
        for i in ids
    ]
    n = len(dataset.objects)
    objects = pd.DataFrame(
        {
            "object": np.arange(n),
            "image_id": dataset.objects["image_id"].to_numpy(),
            "category": dataset.objects["category"].to_numpy(),
            "score": [1.0 - spike.get(p, 0.0) / 4.25 for p in range(n)],
            "kept": [
                (p in kept_objects) if kept_objects is not None else dataset.objects["image_id"].iloc[p] in kept
                for p in range(n)
            ],
            "spike": [spike.get(p, np.nan) for p in range(n)],
            "reasons": [f"spiky <outline>: {spike[p]:.2f}" if spike.get(p, 0) >= 0.2 else "" for p in range(n)],
        }
    )
    return images, objects


SCORES = {"a": 0.79, "q": 1.0, "m": 0.95, "e": 0.84, "b": 0.97}


def _write(tmp_path: Path, dataset: Dataset, name: str = "report.html", **options) -> tuple[Path, str]:
    images, objects = _frames(dataset, SCORES, {"q", "b", "m"}, spike={0: 0.9, 1: 0.3})
    path = write_report(tmp_path / name, dataset, images, objects, SIGNALS, weights=WEIGHTS, top=3, **options)
    return path, path.read_text(encoding="utf-8")


class Page(HTMLParser):
    """What the tests look at: tags with attributes, text, script bodies, and the section each card/row sits in."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.items: list[tuple[str, str, dict[str, str | None]]] = []  # (section, tag, attrs) of cards and rows
        self._section = ""
        self._in: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag == "section":
            self._section = found.get("id") or ""
        if "data-q" in found:
            self.items.append((self._section, tag, found))
        if tag in ("script", "style"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = ""
        if tag in ("script", "style"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)
        else:
            self.text.append(data)

    def images(self) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == "img"]

    def thumbnail(self, alt: str) -> Image.Image:
        (found,) = [attrs for attrs in self.images() if attrs.get("alt") == alt]
        src = found["src"] or ""
        assert src.startswith("data:image/jpeg;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.size == (int(found["width"] or 0), int(found["height"] or 0))
        return image.convert("RGB")


# -- structure -------------------------------------------------------------------------------------------------------


def test_every_image_appears_once_kept_best_first_then_dropped_worst_first(tmp_path, small):
    _, text = _write(tmp_path, small)
    page = Page(text)
    cards = [(section, attrs) for section, tag, attrs in page.items if tag == "article"]
    assert [section for section, _ in cards] == ["kept", "kept", "kept", "dropped", "dropped"]
    ranks = [int((attrs["id"] or "").removeprefix("rank-")) for _, attrs in cards]
    assert ranks == [1, 2, 3, 5, 4]
    assert [attrs["data-status"] for _, attrs in cards] == ["kept"] * 3 + ["dropped"] * 2
    body = "".join(page.text)
    for name in small.images["file_name"]:
        assert name in body
    assert "Kept 3 of 5 images, dropped 2: the best 3 images by score." in " ".join(body.split())
    assert "1·geometry + 1·consistency + 0.5·reference + 0.75·quality + 1·agreement" in body
    for signal in SIGNALS:
        assert signal.explanation in body and signal.reason in body


def test_thumbnails_are_data_uris_of_the_right_size(tmp_path, small):
    _, text = _write(tmp_path, small, thumbnail=96)
    page = Page(text)
    assert len(page.images()) == 5
    sizes = {attrs["alt"]: page.thumbnail(attrs["alt"] or "").size for attrs in page.images()}
    assert sizes == {
        "a.png": (96, 72),
        QUOTED: (48, 96),
        "missing.png": (96, 96),
        "empty.png": (96, 96),
        "broken.png": (96, 96),
    }
    assert not re.search(r"(src|href)=['\"](?!data:|#)", text)  # nothing to fetch: no file, no network


def test_overlay_fills_outlines_and_marks_objects_that_cost_points(tmp_path, small):
    _, text = _write(tmp_path, small)
    pixels = np.asarray(Page(text).thumbnail("a.png"), np.int32)  # 192 x 144: three thumbnail pixels per pixel
    building, red = np.array([0x1F, 0x77, 0xB4]), np.array([0xE5, 0x39, 0x35])
    assert np.abs(pixels[60, 60] - 0.35 * building).max() < 12  # the square's inside: 35 % of its class colour
    assert np.abs(pixels[60, 30] - red).max() < 40  # its thick outline: red (badness 0.9)
    assert np.abs(pixels[60, 20]).max() < 12  # outside: the black image, untouched
    box = pixels[90, 150]  # the box-only object of the second class, filled with that class's colour
    assert np.abs(box - 0.35 * np.array([0x2C, 0xA0, 0x2C])).max() < 12
    assert np.abs(pixels[75, 121] - np.array([0xFF, 0x98, 0x00])).max() < 40  # badness 0.3: orange
    labels = re.findall(r"<text [^>]*font-weight='700'[^>]*>([^<]*)</text>", text)
    assert sorted(labels) == ["1", "s1"]  # source_id, else the position, as the reasons name objects


def test_hostile_strings_are_escaped_everywhere(tmp_path, small):
    _, text = _write(tmp_path, small)
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "spiky <outline>" not in text and "spiky &lt;outline&gt;" in text
    page = Page(text)
    assert [tag for tag, _ in page.tags].count("script") == 1
    assert page.scripts == [report_assets.SCRIPT]
    assert HOSTILE in "".join(page.text)  # shown to the reader as text
    assert page.thumbnail(QUOTED).size == (96, 192)  # the quoted name survives as an attribute value
    searchable = [attrs["data-q"] or "" for _, _, attrs in page.items]
    assert sum(QUOTED in q for q in searchable) == 1
    assert sum(HOSTILE.lower() in q for q in searchable) == 1  # its object costs points: findable by its class


def test_content_security_policy_allows_only_the_page_itself(tmp_path, small):
    _, text = _write(tmp_path, small)
    page = Page(text)
    (policy,) = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in policy and "img-src data:" in policy
    for body, kind in ((page.scripts[0], "script-src"), (page.styles[0], "style-src")):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{kind} 'sha256-{digest}'" in policy


def test_reasons_and_notes_are_on_the_cards(tmp_path, small):
    _, text = _write(tmp_path, small)
    flat = " ".join("".join(Page(text).text).split())
    assert "spiky <outline> (object 0): 0.90" in flat
    assert "blank tile: 0.90" in flat
    assert "image not shown: image file not found" in flat  # missing.png
    assert "image not shown: not a readable image" in flat  # broken.png
    assert "1 object masks could not be decoded" in flat
    assert "no reasons: nothing cost points" in flat


def test_plots_mark_the_cut(tmp_path, small):
    _, text = _write(tmp_path, small)
    assert "cut: top 3" in text
    assert text.count("<svg class='plot'") == 1 + len(GROUPS)
    images, objects = _frames(small, SCORES, {"q", "b"})
    path = write_report(tmp_path / "min.html", small, images, objects, SIGNALS, weights=WEIGHTS, min_score=0.96)
    page = path.read_text()
    assert "min score 0.96" in page and "every image scoring at least 0.96" in page
    assert "2 images kept" in page and "3 images dropped" in page


def test_only_the_best_and_worst_get_cards(tmp_path, small):
    _, text = _write(tmp_path, small, cards=1)
    page = Page(text)
    assert [attrs["alt"] for attrs in page.images()] == [QUOTED, "a.png"]  # rank 1 and rank 5
    rows = [(section, attrs["data-status"]) for section, tag, attrs in page.items if tag == "tr"]
    assert rows == [("kept", "kept"), ("kept", "kept"), ("dropped", "dropped")]
    _, none = _write(tmp_path, small, name="none.html", cards=0)
    assert "<img" not in none and none.count("<tr data-q=") == 5


def test_objects_kept_one_by_one_are_shown_by_image(tmp_path, small):
    images, objects = _frames(small, SCORES, {"a", "q", "m", "e", "b"}, spike={0: 0.9}, kept_objects={1, 2, 3, 4})
    path = write_report(tmp_path / "r.html", small, images, objects, SIGNALS, weights=WEIGHTS, top=4)
    text = " ".join("".join(Page(path.read_text()).text).split())
    assert "Kept 4 of 5 objects (1 dropped): the best 4 objects by score." in text
    assert "1 images that lost objects" in text and "4 images with every object kept" in text
    assert "building · dropped: spiky <outline>: 0.90" in text


def test_bad_tables_do_not_crash(tmp_path, small):
    images, _ = _frames(small, SCORES, {"q"})
    images = images.drop(columns=["kept", "rank", "reasons", "agreement"])
    images.loc[0, "score"] = np.nan
    path = write_report(tmp_path / "r.html", small, images, None, SIGNALS, weights=WEIGHTS, top=2)
    cards = [a for s, t, a in Page(path.read_text()).items if t == "article"]
    assert [a["data-status"] for a in cards] == ["kept", "kept", "dropped", "dropped", "dropped"]
    assert cards[2]["id"] == "rank-5"  # the unscored image ranks last: the worst dropped
    empty = Dataset.from_records([], [], [])
    none = pd.DataFrame({"image_id": [], "file_name": [], "score": [], "rank": [], "kept": []})
    page = write_report(tmp_path / "empty.html", empty, none, None, [], weights=WEIGHTS).read_text()
    assert "0 images kept" in page and "not measured" in page


def test_flagged_objects_covering_everything_or_nothing_still_show(tmp_path):
    Image.new("RGB", (20, 20), (255, 255, 255)).save(tmp_path / "w.png")
    full, empty = np.ones((20, 20), np.uint8), np.zeros((20, 20), np.uint8)
    objects = [
        _object("w", "w.png", (20, 20), "building", "full", rle=rle.encode(full)),
        _object("w", "w.png", (20, 20), "building", "empty", rle=rle.encode(empty), **_box(5, 5, 2, 2)),
    ]
    images = [{"image_id": "w", "file_name": "w.png", "width": 20, "height": 20}]
    dataset = Dataset.from_records(images, objects, [Category("building", 1)], image_root=tmp_path)
    table, object_table = _frames(dataset, {"w": 0.5}, {"w"}, spike={0: 0.9, 1: 0.9})
    path = write_report(tmp_path / "r.html", dataset, table, object_table, SIGNALS, weights=WEIGHTS, thumbnail=40)
    text = path.read_text()
    pixels = np.asarray(Page(text).thumbnail("w.png"), np.int32)
    assert np.abs(pixels[20, 0] - np.array([0xE5, 0x39, 0x35])).max() < 40  # the whole image's outline is its border
    assert sorted(re.findall(r"<text [^>]*font-weight='700'[^>]*>([^<]*)</text>", text)) == ["empty", "full"]


def test_bombs_and_truncated_images_are_not_decoded(tmp_path):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)  # a PNG claiming 30000 x 30000 pixels
    bomb = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
    (tmp_path / "bomb.png").write_bytes(bomb)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buffer, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # header intact, data cut
    images = [
        {"image_id": "bomb", "file_name": "bomb.png", "width": 64, "height": 64},
        {"image_id": "cut", "file_name": "cut.jpg", "width": 64, "height": 64},
    ]
    objects = [_object("bomb", "bomb.png", (64, 64), "building", "o", rle=_square(64, 64, 8, 40, 8, 40))]
    dataset = Dataset.from_records(images, objects, [Category("building", 1)], image_root=tmp_path)
    table, object_table = _frames(dataset, {"bomb": 0.5, "cut": 0.6}, {"cut"}, spike={0: 0.9})
    path = write_report(tmp_path / "r.html", dataset, table, object_table, SIGNALS, weights=WEIGHTS, thumbnail=64)
    page = Page(path.read_text())
    flat = " ".join("".join(page.text).split())
    assert "image not shown: image too large to decode safely (possible decompression bomb)" in flat
    assert "image not shown: image is truncated or corrupt" in flat
    pixels = np.asarray(page.thumbnail("bomb.png"), np.int32)
    assert np.abs(pixels[2, 2] - report_thumbnails.MISSING_GREY).max() < 8  # a grey canvas ...
    assert np.abs(pixels[24, 24] - np.array([0xE5, 0x39, 0x35])).max() > 40  # ... with the object drawn on it
    assert np.abs(pixels[8, 24] - np.array([0xE5, 0x39, 0x35])).max() < 40


def test_sixteen_bit_images_are_stretched_to_eight(tmp_path):
    ramp = np.tile(np.linspace(1000, 5000, 32), (16, 1)).astype(np.uint16)  # dark to bright, far above 255
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    images = [{"image_id": "d", "file_name": "deep.png", "width": 32, "height": 16}]
    dataset = Dataset.from_records(images, [], [], image_root=tmp_path)
    table, _ = _frames(dataset, {"d": 1.0}, {"d"})
    path = write_report(tmp_path / "r.html", dataset, table, None, SIGNALS, weights=WEIGHTS, thumbnail=32)
    grey = np.asarray(Page(path.read_text()).thumbnail("deep.png"), np.int32).mean(axis=2)
    assert grey[8, 1] < 30 and grey[8, 30] > 225  # the range spread over 0..255, not clipped to white


def test_bad_options_are_refused(tmp_path, small):
    images, objects = _frames(small, SCORES, {"q"})
    for options in ({"thumbnail": 8}, {"cards": -1}):
        with pytest.raises(OptionError):
            write_report(tmp_path / "r.html", small, images, objects, SIGNALS, weights=WEIGHTS, **options)
    assert not (tmp_path / "r.html").exists()


# -- writing ---------------------------------------------------------------------------------------------------------


def test_existing_report_is_kept_unless_overwrite(tmp_path, small):
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(OutputExistsError):
        _write(tmp_path, small)
    assert target.read_text() == "old"
    _, text = _write(tmp_path, small, overwrite=True)
    assert text.startswith("<!DOCTYPE html>") and target.read_text() == text


def test_a_failure_midway_leaves_the_old_file_and_no_temporary(tmp_path, small, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("old")

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(report, "draw_thumbnail", broken)
    with pytest.raises(RuntimeError):
        _write(tmp_path, small, overwrite=True)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "report.html"]


# -- in a real browser -----------------------------------------------------------------------------------------------

SAMPLE_SIGNALS = [
    Signal("self_intersection", "geometry", "object", "self-intersecting outline", "Outline crosses itself."),
    Signal("duplicate", "consistency", "object", "duplicated object", "IoU with another object of its class."),
    Signal("wrong_class", "consistency", "object", "class looks wrong", "How unlike its class the object is."),
    Signal("prediction_miss", "agreement", "object", "disagrees with predictions", "1 - IoU with a prediction."),
    Signal("missing_objects", "agreement", "image", "objects missing", "Predicted objects left unannotated."),
]
PLANTED_SIGNAL = {
    "shifted": "prediction_miss",
    "self_intersecting": "self_intersection",
    "wrong_class": "wrong_class",
    "duplicate": "duplicate",
}


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory) -> tuple[Path, dict]:
    """The real sample, scored by seg.curate.score.combine from signal frames that flag its planted errors."""
    import seg
    from seg.curate import score as scoring
    from seg.sample.build import build_sample

    root = tmp_path_factory.mktemp("sample")
    info = build_sample(root / "s")
    dataset = seg.read(info.coco, "coco", images=info.images.resolve())
    objects = pd.DataFrame(0.0, index=pd.RangeIndex(len(dataset.objects)), columns=list(PLANTED_SIGNAL.values()))
    images = pd.DataFrame({"missing_objects": 0.0}, index=pd.Index(dataset.images["image_id"].astype(str)))
    source_ids = dataset.objects["source_id"].astype(str).to_numpy()
    flagged = {}
    for planted in info.planted:
        if planted["kind"] == "missing":
            images.loc[str(planted["image_id"]), "missing_objects"] = 0.8
            continue
        position = int(np.flatnonzero(source_ids == str(planted["object_id"]))[0])
        objects.loc[position, PLANTED_SIGNAL[planted["kind"]]] = 0.45 if planted["kind"] == "shifted" else 0.9
        flagged[str(planted["image_id"])] = str(planted["object_id"])
    weights = scoring.parse_weights(None)
    table, object_table = scoring.combine(dataset.images, dataset.objects, [objects], [images], SAMPLE_SIGNALS, weights)
    table["kept"] = scoring.select(table, top=31, min_score=None)
    object_table["kept"] = object_table["image_id"].isin(set(table.loc[table["kept"], "image_id"])).to_numpy()
    path = write_report(
        root / "report.html", dataset, table, object_table, SAMPLE_SIGNALS, weights=weights, top=31, source="sample"
    )
    return path, {"planted": {str(p["image_id"]) for p in info.planted}, "flagged": flagged}


def test_sample_report_drops_the_planted_images_and_labels_their_objects(sample_report):
    path, expected = sample_report
    page = Page(path.read_text(encoding="utf-8"))
    dropped = {attrs["id"] for section, tag, attrs in page.items if section == "dropped"}
    assert len(dropped) == 5 and len(page.images()) == 36
    labels = set(re.findall(r"<text [^>]*font-weight='700'[^>]*>([^<]*)</text>", path.read_text()))
    assert labels == set(expected["flagged"].values())


def test_report_renders_in_headless_chromium(sample_report, tmp_path, monkeypatch):
    from tests.collector.engine_pages import require_chromium

    require_chromium()
    from seg.collector.browser import open_browser

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path, _ = sample_report
    control = tmp_path / "control.html"
    control.write_text("<html><body><script>console.error('control')</script></body></html>")
    with open_browser(window_size=(1400, 1800)) as driver:
        driver.get(control.as_uri())  # the console is really read: an error on a page shows up
        assert any("control" in entry["message"] for entry in driver.get_log("browser"))
        driver.get(path.as_uri())
        rendered = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0)"
        )
        assert len(rendered) == 36 and all(rendered)
        assert driver.execute_script("return document.getElementById('controls').hidden") is False  # CSP let it run
        driver.execute_script(
            "var q = document.getElementById('q'); q.value = '(object 371)'; q.dispatchEvent(new Event('input'))"
        )
        shown = driver.execute_script("return Array.from(document.querySelectorAll('article')).filter(a => !a.hidden)")
        assert len(shown) == 1 and "self-intersecting outline" in shown[0].text
        driver.execute_script(
            "var q = document.getElementById('q'); q.value = ''; q.dispatchEvent(new Event('input'));"
            "document.getElementById('dropped').scrollIntoView()"
        )
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
        assert driver.get_log("browser") == []  # no console errors, no CSP violations, nothing failed to load
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[1] == 1400
    assert pixels.std() > 20  # thumbnails, not a blank page
