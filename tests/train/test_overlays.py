"""Overlays: stable class colours, fills and outlines where the labels are, stretched display of multi-band images,
and a contact sheet that escapes what it shows."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from seg.curate.report_thumbnails import class_colour
from seg.train.overlays import (
    CSP,
    FILL_ALPHA,
    display_rgb,
    hex_colour,
    outlines,
    overlay,
    palette,
    write_contact_sheet,
)

CLASSES = ["background", "road", "car"]


def test_palette_is_transparent_for_background_distinct_and_stable():
    colours = palette(12)
    assert colours.shape == (12, 4) and colours.dtype == np.uint8
    assert colours[0].tolist() == [0, 0, 0, 0]
    assert (colours[1:, 3] == 255).all()
    assert len({tuple(c) for c in colours[1:, :3].tolist()}) == 11
    assert np.array_equal(palette(12)[:5], palette(5))  # a class keeps its colour whatever the class count
    assert hex_colour(colours[1]) == class_colour(0)  # the colour curate's report gives the first category
    assert np.array_equal(palette(CLASSES), palette(3))


def test_overlay_fills_and_outlines_exactly_where_the_labels_are():
    image = np.full((20, 30, 3), 100, np.uint8)
    labels = np.zeros((20, 30), np.int64)
    labels[5:15, 10:20] = 1
    labels[0:4, 0:4] = 2  # touches the image corner: no outline along the image border
    out = overlay(image, labels, CLASSES)
    colours = palette(CLASSES)[:, :3].astype(float)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert (out[labels == 0] == 100).all()  # background untouched
    inside = np.rint(100 * (1 - FILL_ALPHA) + colours[1] * FILL_ALPHA)
    assert np.array_equal(out[10, 15], inside)
    assert np.array_equal(out[5, 15], colours[1])  # outline in full colour
    assert np.array_equal(out[14, 19], colours[1])
    assert np.array_equal(out[0, 0], np.rint(100 * (1 - FILL_ALPHA) + colours[2] * FILL_ALPHA))
    assert np.array_equal(out[3, 1], colours[2])
    edge = outlines(labels)
    assert edge[5, 10:20].all() and edge[14, 10:20].all() and not edge[6:14, 11:19].any()
    assert not edge[0, 0] and edge[3, 0]


def test_overlay_refuses_misfits():
    with pytest.raises(ValueError, match="differ in size"):
        overlay(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 11), np.int64), CLASSES)
    with pytest.raises(ValueError, match="labels must lie"):
        overlay(np.zeros((10, 10, 3), np.uint8), np.full((10, 10), 3), CLASSES)


def test_multi_band_images_show_their_first_three_bands_stretched():
    rng = np.random.default_rng(0)
    bands = rng.integers(1000, 3000, (40, 50, 6)).astype(np.uint16)
    bands[..., 1] = 7  # flat band: black, not a division by zero
    shown = display_rgb(bands)
    assert shown.shape == (40, 50, 3) and shown.dtype == np.uint8
    low, high = np.percentile(bands[..., 0], (2, 98))
    expected = np.clip((bands[..., 0].astype(np.float32) - low) * (255 / (high - low)), 0, 255).astype(np.uint8)
    assert np.abs(shown[..., 0].astype(int) - expected).max() <= 1
    assert (shown[..., 1] == 0).all()
    assert (shown[..., 0] == 255).mean() == pytest.approx(0.02, abs=0.01)
    rgb = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    assert display_rgb(rgb) is rgb  # 8-bit RGB as it is
    grey = display_rgb(rng.normal(0, 1, (8, 8, 1)))
    assert (grey[..., 0] == grey[..., 2]).all()
    labels = np.zeros((40, 50), np.int64)
    assert overlay(bands, labels, CLASSES).shape == (40, 50, 3)


def test_contact_sheet_is_self_contained_escaped_and_least_confident_first(tmp_path):
    (tmp_path / "overlays" / "sub").mkdir(parents=True)
    Image.fromarray(np.full((64, 80, 3), 128, np.uint8)).save(tmp_path / "overlays" / "sub" / "a.jpg")
    entries = [
        {"key": "sub/a", "file_name": "sub/a.png", "width": 80, "height": 64, "confidence": 0.9,
         "coverage": [0.5, 0.5, 0.0], "objects": 1},
        {"key": "b<script>", "file_name": "b<script>alert(1)</script>.png", "width": 10, "height": 10,
         "confidence": 0.4, "coverage": [1.0, 0.0, 0.0], "objects": 0},
    ]  # fmt: skip
    page = write_contact_sheet(
        tmp_path / "index.html", entries, ["background", "road", "<car>"], title="t", facts={"run": "r&d"}
    ).read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)" in page
    assert "&lt;car&gt;" in page and "r&amp;d" in page
    assert "Content-Security-Policy" in page and CSP.replace("'", "&#x27;") in page
    assert "script-src" not in CSP and "default-src 'none'" in CSP
    assert page.count("data:image/jpeg;base64,") == 1  # the overlay that exists, inline
    assert page.index("b&lt;script&gt;alert") < page.index("sub/a.png")  # least confident first
    assert re.search(r"href='overlays/b%3Cscript%3E\.jpg'", page)
    assert "style=" not in page  # inline style attributes would break the policy
