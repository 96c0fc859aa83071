"""Thumbnails of the report: the image at thumbnail size with its objects drawn over it.

A thumbnail shows the image with every object filled in its class colour and outlined; objects with reasons (the
objects that cost points) are outlined thick, red for badness of 0.5 and above, orange below, and carry a label: the
object's ``source_id`` (else its position), the same name the reasons use ("(object 12)"). Masks are sampled at
thumbnail resolution straight from their RLE runs (no full-size decode), so large images cost no more than small ones.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from seg.curate.report_assets import esc
from seg.dataset import rle as coco_rle
from seg.dataset.images import image_size
from seg.errors import ImageError

#: Class colours (no reds or oranges: those mark objects that cost points).
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#e377c2", "#bcbd22", "#8c564b", "#7f7f7f")
#: Outline of an object whose worst own signal is at least :data:`SEVERE`, and of a milder one.
RED, ORANGE = "#e53935", "#ff9800"
SEVERE = 0.5
#: Opacity of the class-colour fill over the image.
FILL_ALPHA = 0.35
#: Grey canvas of an image that cannot be read (its objects are still drawn).
MISSING_GREY = 150
JPEG_QUALITY = 85
#: Most sampled mask pixels held at once (objects x thumbnail pixels), to keep memory flat on crowded images.
_SAMPLE_BUDGET = 4_000_000


# -- drawing -------------------------------------------------------------------------------------------------------


@dataclass
class Drawn:
    """Objects to draw, as arrays: masks (RLE or box), class, and whether and how badly they cost points."""

    rle: npt.NDArray[np.object_]
    category: npt.NDArray[np.object_]
    box: npt.NDArray[np.float64]  # (n, 4): x, y, w, h
    flagged: npt.NDArray[np.bool_]
    worst: npt.NDArray[np.float64]
    label: npt.NDArray[np.object_]
    reasons: npt.NDArray[np.object_]
    kept: npt.NDArray[np.bool_]

    @classmethod
    def of(cls, objects: pd.DataFrame, table: pd.DataFrame) -> Drawn:
        """From the Dataset's objects and the page's object table (same positions)."""
        return cls(
            rle=objects["rle"].to_numpy(dtype=object, na_value=None),
            category=objects["category"].astype(str).to_numpy(dtype=object),
            box=objects[["bbox_x", "bbox_y", "bbox_w", "bbox_h"]].to_numpy(dtype=float).reshape(-1, 4),
            flagged=table["flagged"].to_numpy(dtype=bool),
            worst=table["worst"].to_numpy(dtype=float),
            label=table["label"].astype(str).to_numpy(dtype=object),
            reasons=table["reasons"].astype(str).to_numpy(dtype=object),
            kept=table["kept"].to_numpy(dtype=bool),
        )

    def take(self, positions: npt.NDArray[np.int64]) -> Drawn:
        """The objects at ``positions``."""
        return Drawn(*(getattr(self, f)[positions] for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.rle)


@dataclass
class Thumbnail:
    jpeg: bytes
    width: int
    height: int
    labels: list[tuple[float, float, str, str]]  # x, y, text, colour
    note: str = ""

    def html(self, alt: str) -> str:
        data = base64.b64encode(self.jpeg).decode("ascii")
        parts = [
            f"<figure><img src='data:image/jpeg;base64,{data}' width='{self.width}' height='{self.height}' "
            f"alt='{esc(alt)}'>"
        ]
        if self.labels:
            parts.append(
                f"<svg width='{self.width}' height='{self.height}' viewBox='0 0 {self.width} {self.height}' "
                "aria-hidden='true'>"
            )
            for x, y, text, colour in self.labels:
                shown, w = _short(text), _label_width(text)
                parts.append(
                    f"<g><rect x='{x - w / 2:.1f}' y='{y - 7:.1f}' width='{w}' height='14' rx='3' fill='{colour}' "
                    f"stroke='#fff' stroke-width='1'/><text x='{x:.1f}' y='{y + 4:.1f}' font-size='11' "
                    f"font-weight='700' font-family='sans-serif' text-anchor='middle' fill='#fff'>{esc(shown)}</text>"
                    "</g>"
                )
            parts.append("</svg>")
        parts.append("</figure>")
        return "".join(parts)


def draw_thumbnail(
    path: Path | None,
    width: int,
    height: int,
    drawn: Drawn,
    colours: Mapping[str, str],
    size: int,
) -> Thumbnail:
    """The image at thumbnail size with its objects drawn over it (a grey canvas when it cannot be read)."""
    note = ""
    if width <= 0 or height <= 0:
        width = height = size
        note = "image size unknown"
    scale = size / max(width, height)
    tw, th = max(1, round(width * scale)), max(1, round(height * scale))
    try:
        if path is None:
            raise ImageError("the dataset knows no image folder")
        canvas = _pixels(path, tw, th)
    except ImageError as e:
        canvas = np.full((th, tw, 3), MISSING_GREY, np.uint8)
        note = f"image not shown: {e.message}"
    labels: list[tuple[float, float, str, str]] = []
    if len(drawn):
        canvas, labels, bad = _overlay(canvas, width, height, drawn, colours)
        if bad:
            note = (note + "; " if note else "") + f"{bad} object masks could not be decoded"
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return Thumbnail(buffer.getvalue(), tw, th, labels, note)


def _pixels(path: Path, tw: int, th: int) -> npt.NDArray[np.uint8]:
    """The image at (th, tw) RGB, refusing bombs; 16-bit and float images are stretched to 8 bits."""
    from PIL import Image

    image_size(path)  # header only: missing files, non-images and bombs raise ImageError here
    try:
        with Image.open(path) as image:
            image.draft("RGB", (tw, th))
            if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                values = np.asarray(image, np.float32)
                finite = values[np.isfinite(values)]
                lo, hi = np.percentile(finite, (1, 99)) if finite.size else (0.0, 1.0)
                values = np.clip((values - lo) / max(hi - lo, 1e-6) * 255, 0, 255)
                image = Image.fromarray(np.nan_to_num(values).astype(np.uint8))
            resized = image.convert("RGB").resize((tw, th), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.asarray(resized, np.uint8).copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError("image is truncated or corrupt", path=path) from e


def _overlay(
    canvas: npt.NDArray[np.uint8],
    width: int,
    height: int,
    drawn: Drawn,
    colours: Mapping[str, str],
) -> tuple[npt.NDArray[np.uint8], list[tuple[float, float, str, str]], int]:
    """Fill and outline every object; outline thick and label those with reasons. Returns (pixels, labels, bad).

    Fills are composited per pixel from how many objects of each class cover it (one pass, any number of objects);
    outlines take their class colour, thick outlines red or orange on top.
    """
    th, tw = canvas.shape[:2]
    ys = np.minimum(((np.arange(th) + 0.5) * height / th).astype(np.int64), height - 1)
    xs = np.minimum(((np.arange(tw) + 0.5) * width / tw).astype(np.int64), width - 1)
    classes, class_of = np.unique(drawn.category.astype(str), return_inverse=True)
    palette = np.stack([_rgb(colours.get(name, PALETTE[-1])) for name in classes])
    flagged, worst, names = drawn.flagged, drawn.worst, drawn.label
    counts = np.zeros((len(classes), th, tw), np.uint16)
    outline = np.full((th, tw), -1, np.int16)
    marks = np.zeros((th, tw), np.uint8)  # thick outlines: 0 none, 1 orange, 2 red (the worst wins)
    labels: list[tuple[float, float, str, str]] = []
    bad = 0
    for chosen, masks, ok in _sampled_masks(drawn.rle, drawn.box, height, width, ys, xs):
        bad += int((~ok).sum())
        edges = _edges(masks)
        for c in np.unique(class_of[chosen]):
            mine = class_of[chosen] == c
            counts[c] += masks[mine].sum(axis=0, dtype=np.uint16)
            outline[edges[mine].any(axis=0)] = c
        for k in np.flatnonzero(flagged[chosen]):
            i = int(chosen[k])
            colour = RED if worst[i] >= SEVERE else ORANGE
            rows, cols = np.flatnonzero(masks[k].any(axis=1)), np.flatnonzero(masks[k].any(axis=0))
            if rows.size:
                whole = _edges(masks[k : k + 1], border=True)[0]  # a flagged object shows its full outline
                _thicken_into(marks, whole, 2 if worst[i] >= SEVERE else 1)
                x, y = (cols[0] + cols[-1] + 1) / 2, _label_row(int(rows[0]), int(rows[-1]), th)
            else:  # too small to show at this size, or undecodable: label the box centre
                bx, by, bw, bh = drawn.box[i]
                x, y = (bx + bw / 2) * tw / width, (by + bh / 2) * th / height
            labels.append((float(x), float(y), names[i], colour))
    # composite only where something is drawn (flat pixel indices), not over the whole thumbnail
    image = canvas.reshape(-1, 3).astype(np.float32)
    covered = counts.reshape(len(classes), -1).sum(axis=0)
    filled = np.flatnonzero(covered)
    if filled.size:
        layers = covered[filled]
        mean = counts.reshape(len(classes), -1)[:, filled].T.astype(np.float32) @ palette / layers[:, None]
        keep = ((1 - FILL_ALPHA) ** np.arange(int(layers.max()) + 1, dtype=np.float32))[layers][:, None]
        image[filled] = image[filled] * keep + mean * (1 - keep)
    lines = np.flatnonzero(outline.ravel() >= 0)
    image[lines] = image[lines] * 0.15 + palette[outline.ravel()[lines]] * 0.85
    marked = np.flatnonzero(marks.ravel())
    image[marked] = np.stack([_rgb(ORANGE), _rgb(RED)])[marks.ravel()[marked] - 1]
    image = image.reshape(th, tw, 3)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), _spread(labels, tw, th), bad


def _edges(masks: npt.NDArray[np.bool_], border: bool = False) -> npt.NDArray[np.bool_]:
    """Pixels of each (N, H, W) mask with a 4-neighbour outside it; beyond the image border counts as outside only
    with ``border`` (objects cut by a tile edge are not outlined along it)."""
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)), mode="constant" if border else "edge")
    inner = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    return masks & ~inner


def _thicken_into(marks: npt.NDArray[np.uint8], edge: npt.NDArray[np.bool_], value: int) -> None:
    """Raise ``marks`` to ``value`` on ``edge`` grown by one pixel in the 8 directions (a 3-pixel line).

    Works on the edge's bounding box only: an object is usually a small part of its image.
    """
    rows, cols = np.flatnonzero(edge.any(axis=1)), np.flatnonzero(edge.any(axis=0))
    y0, y1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, edge.shape[0])
    x0, x1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, edge.shape[1])
    padded = np.pad(edge[y0:y1, x0:x1], 1)
    grown = np.zeros((y1 - y0, x1 - x0), bool)
    for dy in range(3):
        for dx in range(3):
            grown |= padded[dy : dy + y1 - y0, dx : dx + x1 - x0]
    window = marks[y0:y1, x0:x1]
    np.maximum(window, np.where(grown, np.uint8(value), np.uint8(0)), out=window)


def _label_row(top: int, bottom: int, th: int) -> float:
    """Where a label goes: just above the object, else just below it, else on it (the outline stays visible)."""
    if top - 10 >= 7:
        return top - 10.0
    if bottom + 11 <= th - 7:
        return bottom + 11.0
    return (top + bottom) / 2 + 0.5


def _spread(labels: list[tuple[float, float, str, str]], tw: int, th: int) -> list[tuple[float, float, str, str]]:
    """Keep labels inside the thumbnail and move overlapping ones aside (duplicates sit on one spot)."""
    placed: list[tuple[float, float, str, str, float]] = []
    for x, y, text, colour in labels:
        half = _label_width(text) / 2
        x, y = _clamp(x, y, half, tw, th)
        for _ in range(len(placed) + 1):
            clash = next((p for p in placed if abs(p[0] - x) < half + p[4] + 2 and abs(p[1] - y) < 15), None)
            if clash is None:
                break
            right = clash[0] + clash[4] + half + 2
            moved = (right, y) if right + half < tw else (x, clash[1] + 16 if clash[1] + 24 <= th else 8)
            x, y = _clamp(*moved, half, tw, th)
        placed.append((x, y, text, colour, half))
    return [p[:4] for p in placed]


def _clamp(x: float, y: float, half: float, tw: int, th: int) -> tuple[float, float]:
    """A label centre that keeps a label of half-width ``half`` inside the thumbnail."""
    x = min(max(x, half + 1), tw - half - 1) if tw > 2 * half + 2 else tw / 2
    return x, min(max(y, 8), th - 8)


def _label_width(text: str) -> int:
    return 7 * len(_short(text)) + 6


def _short(text: str) -> str:
    return text if len(text) <= 8 else text[:7] + "…"


# -- masks at thumbnail resolution ---------------------------------------------------------------------------------


def _sampled_masks(
    rles: npt.NDArray[np.object_],
    boxes: npt.NDArray[np.float64],
    height: int,
    width: int,
    ys: npt.NDArray[np.int64],
    xs: npt.NDArray[np.int64],
) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]]:
    """Each object's mask at the sampled pixels ``(ys, xs)``, in batches small enough to keep memory flat.

    ``rles`` holds compressed RLE strings (None for box-only objects, drawn as their ``(x, y, w, h)`` row of
    ``boxes``). Masks are read from the RLE runs without decoding at full size. Yields
    ``(object indices, masks (n, len(ys), len(xs)), ok)`` where ``ok`` is False (and the mask empty) for RLE strings
    that are broken.
    """
    th, tw = len(ys), len(xs)
    coded = np.array([isinstance(value, str) for value in rles], bool)
    box_only = np.flatnonzero(~coded)
    if box_only.size:
        x, y, w, h = boxes[box_only].T
        cy, cx = ys[None, :] + 0.5, xs[None, :] + 0.5
        inside_y = (cy >= y[:, None]) & (cy <= (y + h)[:, None])
        inside_x = (cx >= x[:, None]) & (cx <= (x + w)[:, None])
        yield box_only, inside_y[:, :, None] & inside_x[:, None, :], np.ones(box_only.size, bool)
    # sample each distinct row and column once (upscaling repeats them), in column-major order: sorted indices
    rows, row_of = np.unique(ys, return_inverse=True)
    cols, col_of = np.unique(xs, return_inverse=True)
    flat = (cols[:, None] * height + rows[None, :]).ravel()
    batch = max(1, _SAMPLE_BUDGET // max(th * tw, 1))
    coded_at = np.flatnonzero(coded)
    for start in range(0, coded_at.size, batch):
        chosen = coded_at[start : start + batch]
        inside, ok = _sample_runs([rles[i] for i in chosen], height * width, flat)
        grid = inside.reshape(len(chosen), cols.size, rows.size).transpose(0, 2, 1)
        if rows.size != th or cols.size != tw:  # repeated rows or columns: upscaled
            grid = grid[:, row_of][:, :, col_of]
        yield chosen, np.ascontiguousarray(grid), ok


def _sample_runs(
    strings: list[str], total: int, flat: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Whether each sorted flat pixel index lies in a ones-run of each compressed RLE string of ``total`` pixels.

    Returns ``(inside (len(strings), len(flat)), ok)``; a broken string (unparsable, or runs not summing to
    ``total``) gets an empty row and ``ok`` False.
    """
    count = len(strings)
    try:
        parsed = coco_rle.parse_strings(strings)
    except ValueError:
        if count == 1:
            return np.zeros((1, flat.size), bool), np.zeros(1, bool)
        rows = [_sample_runs([one], total, flat) for one in strings]
        return np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows])
    ends, _ = coco_rle.segmented_cumsum(parsed.runs, parsed.owner, parsed.first)
    sums = np.zeros(count, np.int64)
    np.add.at(sums, parsed.owner, parsed.runs)
    ok = sums == total
    if not ok.all():
        inside = np.zeros((count, flat.size), bool)
        good = np.flatnonzero(ok)
        if good.size:
            inside[good] = _sample_runs([strings[k] for k in good], total, flat)[0]
        return inside, ok
    # a pixel lies in run k of its string when k of the string's run ends are at or before it: count the ends
    # falling before each sampled pixel (one search of the ends among the sorted pixels, then a running count);
    # only the parity matters (odd runs are ones), so the running count may wrap in uint8
    per_string = flat.size + 1
    at = parsed.owner * per_string + np.searchsorted(flat, ends, side="left")
    marks = np.bincount(at, minlength=count * per_string).reshape(count, per_string)[:, : flat.size]
    runs = np.cumsum(marks.astype(np.uint8), axis=1, dtype=np.uint8)
    return (runs & 1).astype(bool), ok


# -- colours -------------------------------------------------------------------------------------------------------


def class_colour(index: int) -> str:
    """The colour of the ``index``-th class: :data:`PALETTE`, then hues away from red and orange."""
    if index < len(PALETTE):
        return PALETTE[index]
    hue = (0.55 + index * 0.618034) % 1.0 * 0.75 + 0.15  # golden-angle steps, away from red/orange hues
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.85)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _rgb(colour: str) -> npt.NDArray[np.float32]:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], np.float32)
