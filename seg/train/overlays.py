"""Showing predictions: class colours, an image with its predicted classes blended over it, and the contact sheet.

Colours are stable: class ``i`` (background 0 excepted) has the colour that ``seg curate``'s report gives the ``i``-th
category (:func:`seg.curate.report_thumbnails.class_colour`); background is transparent. Multi-band and non-8-bit
images are shown through their first three bands, each stretched from its 2nd to its 98th percentile.

The contact sheet (:func:`write_contact_sheet`) is one self-contained HTML page: overlay thumbnails as JPEG ``data:``
URIs, an inline style sheet allowed by hash in a Content-Security-Policy that forbids everything else (no script, no
network), and every string from the data HTML-escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from seg.outputs import atomic_file

#: Opacity of the class colour over the image.
FILL_ALPHA = 0.45
#: Percentiles that the display stretch maps to 0 and 255.
STRETCH = (2.0, 98.0)


def palette(classes: int | Sequence[str]) -> npt.NDArray[np.uint8]:
    """(classes, 4) RGBA colours: background (row 0) transparent, every other class opaque and distinct."""
    from seg.curate.report_thumbnails import class_colour

    count = classes if isinstance(classes, int) else len(classes)
    colours = np.zeros((count, 4), np.uint8)
    for index in range(1, count):
        hex_colour = class_colour(index - 1)
        colours[index] = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)] + [255]
    return colours


def hex_colour(rgba: npt.NDArray[np.uint8]) -> str:
    """``#rrggbb`` of one palette row."""
    return "#" + "".join(f"{int(v):02x}" for v in rgba[:3])


def display_rgb(pixels: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """An (H, W, 3) uint8 picture of an (H, W) or (H, W, bands) image.

    8-bit RGB is shown as it is; other images use their first three bands (one or two bands: the first, in grey),
    each stretched linearly from its 2nd to its 98th percentile.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, bands) image, got shape {pixels.shape}")
    if pixels.dtype == np.uint8 and pixels.shape[-1] == 3:
        return pixels
    bands = pixels[..., :3] if pixels.shape[-1] >= 3 else np.repeat(pixels[..., :1], 3, axis=-1)
    out = np.empty(bands.shape, np.uint8)
    for b in range(3):
        band = bands[..., b].astype(np.float32)
        finite = band[np.isfinite(band)]
        low, high = np.percentile(finite, STRETCH) if finite.size else (0.0, 0.0)
        scale = 255.0 / (high - low) if high > low else 0.0
        out[..., b] = np.clip(np.nan_to_num((band - low) * scale), 0, 255).astype(np.uint8)
    return out


def outlines(labels: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
    """Pixels of non-background classes with a 4-neighbour of another class (the image border is not an edge)."""
    edge = np.zeros(labels.shape, bool)
    vertical = labels[1:] != labels[:-1]
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge & (labels != 0)


def overlay(
    image_rgb: npt.ArrayLike,
    labels: npt.ArrayLike,
    classes: int | Sequence[str],
    alpha: float = FILL_ALPHA,
) -> npt.NDArray[np.uint8]:
    """The image with each class's pixels blended in its colour and each class region outlined in full colour.

    Args:
        image_rgb: the image; anything :func:`display_rgb` takes (multi-band images are stretched for display).
        labels: (H, W) class indices, 0 = background (left as it is).
        classes: the class count, or the class names (background first).
        alpha: opacity of the fill.

    Returns:
        (H, W, 3) uint8.

    Raises:
        ValueError: sizes that differ, or a label outside the classes.
    """
    picture = display_rgb(image_rgb)
    labels = np.asarray(labels)
    colours = palette(classes)
    if labels.shape != picture.shape[:2]:
        raise ValueError(f"labels {labels.shape} and image {picture.shape[:2]} differ in size")
    if labels.size and (labels.min() < 0 or labels.max() >= len(colours)):
        raise ValueError(f"labels must lie in 0..{len(colours) - 1}, got {labels.min()}..{labels.max()}")
    rgb = colours[labels][..., :3].astype(np.float32)
    opacity = (colours[labels][..., 3:] / 255.0).astype(np.float32) * alpha
    blended = picture.astype(np.float32) * (1 - opacity) + rgb * opacity
    edges = outlines(labels)
    blended[edges] = rgb[edges]
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


# -- contact sheet ---------------------------------------------------------------------------------------------------

_STYLE = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;background:#f6f6f6;margin:0}
main{max-width:1500px;margin:0 auto;padding:16px 20px 40px}
h1{margin:0 0 4px;font-size:24px}h2{margin:28px 0 8px;font-size:19px;border-bottom:2px solid #ddd}
.sub{color:#555}.sub b{color:#222}
table{border-collapse:collapse;background:#fff}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
.swatch{vertical-align:-1px;margin-right:4px;border:1px solid #0004}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:10px;margin:8px 0}
.card{background:#fff;border:1px solid #ddd;border-left:5px solid #4a90d9;padding:8px;overflow-wrap:anywhere}
.card img{display:block;max-width:100%;height:auto;margin-bottom:6px}
.file{font-family:ui-monospace,monospace;font-size:12px;color:#444}
.conf{font-weight:600;font-variant-numeric:tabular-nums}
ul.cover{margin:4px 0;padding:0;list-style:none;font-size:12px}
.note{color:#8a5300}.none{color:#777}
"""

#: No network, no script: only the inline style sheet above and ``data:`` images.
CSP = (
    "default-src 'none'; img-src data:; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")
    + "'; base-uri 'none'; form-action 'none'"
)


def esc(value: object) -> str:
    """HTML-escape any value for text and attribute positions (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def thumbnail_uri(path: str | os.PathLike[str], size: int = 256) -> str | None:
    """A JPEG ``data:`` URI of the image at ``path``, ``size`` pixels on its longer side (None if unreadable)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))
            picture = image.convert("RGB")
            picture.thumbnail((size, size))
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=80)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def write_contact_sheet(
    path: str | os.PathLike[str],
    entries: Sequence[Mapping],
    classes: Sequence[str],
    *,
    title: str,
    facts: Mapping[str, object],
    skipped: Sequence[Mapping] = (),
    cards: int = 500,
    thumbnail: int = 256,
) -> Path:
    """Write the contact sheet of predicted images (atomically), least confident first.

    Args:
        path: the ``.html`` file (replaced if it exists).
        entries: per image: ``key`` (output name without suffix), ``file_name``, ``width``, ``height``,
            ``confidence`` (mean top probability), ``coverage`` (share of pixels per class, background first),
            ``objects`` (count); overlays lie at ``overlays/<key>.jpg`` and masks at ``masks/<key>.png`` beside
            ``path``.
        classes: class names, background first.
        title: the page heading.
        facts: name -> value lines of the header.
        skipped: images not predicted: ``path`` and ``message``.
        cards: how many images get a thumbnail card (the least confident); the rest are table rows with links.
        thumbnail: longer side of the thumbnails, in pixels.
    """
    path = Path(path)
    colours = [hex_colour(c) for c in palette(classes)]
    ordered = sorted(entries, key=lambda e: (float(e["confidence"]), str(e["key"])))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{esc(CSP)}\">",
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body><main>",
        f"<h1>{esc(title)}</h1>",
        *(f"<div class='sub'>{esc(name)}: <b>{esc(value)}</b></div>" for name, value in facts.items()),
        "<h2>Classes</h2><table><tr><th>class</th><th>pixels</th></tr>",
    ]
    total = sum(int(e["width"]) * int(e["height"]) for e in entries) or 1
    for index, name in enumerate(classes):
        share = sum(float(e["coverage"][index]) * int(e["width"]) * int(e["height"]) for e in entries) / total
        swatch = _swatch(colours[index]) if index else ""
        parts.append(f"<tr><td>{swatch}{esc(name)}</td><td class='n'>{share:.1%}</td></tr>")
    parts.append("</table>")
    if skipped:
        parts.append(f"<h2>Not predicted ({len(skipped)})</h2><ul class='note'>")
        parts.extend(
            f"<li><span class='file'>{esc(s.get('path'))}</span>: {esc(s.get('message'))}</li>" for s in skipped
        )
        parts.append("</ul>")
    parts.append(f"<h2>Images ({len(ordered)}), least confident first</h2><div class='cards'>")
    for entry in ordered[:cards]:
        uri = thumbnail_uri(path.parent / "overlays" / f"{entry['key']}.jpg", thumbnail)
        picture = f"<img src='{esc(uri)}' alt=''>" if uri else "<div class='none'>(no overlay)</div>"
        parts.append(
            f"<div class='card'><a href='{_href('overlays', entry['key'], '.jpg')}'>{picture}</a>"
            f"<div class='file'>{esc(entry['file_name'])}</div>"
            f"<div>{int(entry['width'])}x{int(entry['height'])} px, {int(entry['objects'])} objects, "
            f"confidence <span class='conf'>{float(entry['confidence']):.3f}</span> "
            f"<a href='{_href('masks', entry['key'], '.png')}'>mask</a></div>"
            f"{_coverage(entry['coverage'], classes, colours)}</div>"
        )
    parts.append("</div>")
    if len(ordered) > cards:
        parts.append("<table><tr><th>image</th><th>confidence</th><th>objects</th><th>classes</th></tr>")
        for entry in ordered[cards:]:
            parts.append(
                f"<tr><td class='file'><a href='{_href('overlays', entry['key'], '.jpg')}'>"
                f"{esc(entry['file_name'])}</a></td><td class='n'>{float(entry['confidence']):.3f}</td>"
                f"<td class='n'>{int(entry['objects'])}</td>"
                f"<td>{_coverage(entry['coverage'], classes, colours)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</main></body></html>\n")
    with atomic_file(path, overwrite=True, mode="w") as handle:
        handle.write("".join(parts))
    return path


def _swatch(colour: str) -> str:
    # an SVG fill, not a style attribute: the policy allows no inline style attributes
    return f"<svg class='swatch' width='12' height='12'><rect width='12' height='12' fill='{esc(colour)}'/></svg>"


def _href(folder: str, key: str, suffix: str) -> str:
    return esc(quote(f"{folder}/{key}{suffix}"))


def _coverage(coverage: Sequence[float], classes: Sequence[str], colours: Sequence[str]) -> str:
    items = [
        f"<li>{_swatch(colours[i])}{esc(classes[i])} {float(share):.1%}</li>"
        for i, share in enumerate(coverage)
        if i > 0 and share > 0
    ]
    return f"<ul class='cover'>{''.join(items)}</ul>" if items else "<div class='none'>no class found</div>"
