"""A confusion matrix drawn as a PNG heat map with Pillow (no matplotlib).

Rows are the truth, columns the prediction, each row normalised to 100 % of its truth pixels: the diagonal reads as
per-class recall. Each cell shows its percentage, and its pixel count when the cell is large enough; the pixel total
of each truth class is written at the end of its row. Rows of classes absent from the truth are hatched grey. Sized
for 2 to about 30 classes (cells shrink from 72 to 30 pixels); long class names are shortened with an ellipsis.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from seg.outputs import atomic_file

# A white-to-dark-blue ramp, darker for larger values (luminance strictly decreasing along the stops).
_RAMP = np.array(
    [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)],
    dtype=np.float64,
)
_EMPTY_ROW = (225, 225, 225)
_GRID = (255, 255, 255)
_TEXT = (30, 30, 30)
_MUTED = (110, 110, 110)
_NAME_CHARS = 18


def cell_colour(value: float) -> tuple[int, int, int]:
    """The heat-map colour of a row share in [0, 1] (clipped): white for 0, dark blue for 1."""
    position = float(np.clip(value, 0.0, 1.0)) * (len(_RAMP) - 1)
    low = min(int(position), len(_RAMP) - 2)
    mix = position - low
    rgb = _RAMP[low] * (1 - mix) + _RAMP[low + 1] * mix
    red, green, blue = (int(v) for v in np.rint(rgb))
    return red, green, blue


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _shorten(name: str, limit: int = _NAME_CHARS) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _count_text(count: float) -> str:
    for divisor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= divisor:
            return f"{count / divisor:.1f}{unit}" if count < divisor * 100 else f"{count / divisor:.0f}{unit}"
    return f"{int(count)}"


def _percent_text(share: float) -> str:
    percent = share * 100
    if percent == 0:
        return "0"
    if percent >= 99.95 and share < 1:
        return ">99.9%"
    if percent < 0.1:
        return "<0.1%"
    return f"{percent:.0f}%" if percent >= 10 else f"{percent:.1f}%"


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _centered(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], text: str, font, fill) -> None:
    x0, y0, x1, y1 = box
    draw.text(((x0 + x1) / 2, (y0 + y1) / 2), text, font=font, fill=fill, anchor="mm")


def _vertical_label(text: str, font, fill) -> Image.Image:
    """Text rotated 90 degrees counter-clockwise (reads bottom to top), on a transparent background."""
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    width, height = _text_size(probe, text, font)
    label = Image.new("RGBA", (width + 4, height + 8), (0, 0, 0, 0))
    ImageDraw.Draw(label).text((2, 2), text, font=font, fill=fill)
    return label.rotate(90, expand=True)


def plot_confusion(
    cm: npt.ArrayLike,
    names: Sequence[str],
    path: str | os.PathLike[str],
    *,
    mean_iou: float | None = None,
    pixel_accuracy: float | None = None,
    title: str = "Confusion matrix",
    overwrite: bool = False,
) -> Path:
    """Draw a row-normalised confusion matrix and write it as a PNG, atomically.

    Args:
        cm: (C, C) pixel counts, rows the truth and columns the prediction.
        names: the C class names, background first.
        path: the PNG to write.
        mean_iou: shown under the title when given.
        pixel_accuracy: shown under the title when given.
        title: the first line of the heading.
        overwrite: replace an existing file at ``path``.

    Returns:
        The path written.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
    """
    counts = np.asarray(cm, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(f"expected a square (C, C) confusion matrix, got shape {counts.shape}")
    classes = counts.shape[0]
    if len(names) != classes:
        raise ValueError(f"expected {classes} class names for a {classes}x{classes} matrix, got {len(names)}")
    image = render_confusion(counts, [str(n) for n in names], mean_iou, pixel_accuracy, title)
    path = Path(path)
    with atomic_file(path, overwrite=overwrite) as handle:
        image.save(handle, format="PNG", optimize=True)
    return path


def render_confusion(
    counts: npt.NDArray[np.float64],
    names: Sequence[str],
    mean_iou: float | None = None,
    pixel_accuracy: float | None = None,
    title: str = "Confusion matrix",
) -> Image.Image:
    """The heat map as an RGB Pillow image (see :func:`plot_confusion`)."""
    classes = counts.shape[0]
    cell = int(np.clip(960 // classes, 30, 72))
    pad = 16
    cell_font = _font(max(9, min(15, cell // 4)))
    small_font = _font(max(9, min(11, cell // 5)))
    label_font = _font(max(10, min(14, cell // 3)))
    title_font = _font(18)
    sub_font = _font(14)

    totals = counts.sum(axis=1)
    shares = np.divide(counts, totals[:, None], out=np.zeros_like(counts), where=totals[:, None] > 0)
    labels = [_shorten(name) for name in names]
    subtitle_parts = ["rows: truth, columns: prediction, each row = 100% of its truth pixels"]
    scores = []
    if mean_iou is not None:
        scores.append(f"mean IoU {mean_iou:.3f}")
    if pixel_accuracy is not None:
        scores.append(f"pixel accuracy {pixel_accuracy:.3f}")
    if scores:
        subtitle_parts.insert(0, "   ".join(scores))

    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    row_label_width = max(_text_size(probe, label, label_font)[0] for label in labels) + 10
    column_label_height = max(_text_size(probe, label, label_font)[0] for label in labels) + 10
    total_texts = [_count_text(total) for total in totals]
    total_width = max(_text_size(probe, text, small_font)[0] for text in [*total_texts, "pixels"]) + 12
    axis_font_height = _text_size(probe, "Truth", sub_font)[1]
    title_height = _text_size(probe, title, title_font)[1] + 10
    sub_height = (axis_font_height + 8) * len(subtitle_parts)
    bar_width = 14
    bar_label_width = _text_size(probe, "100%", small_font)[0] + 8

    grid_x = pad + axis_font_height + 10 + row_label_width
    grid_y = pad + title_height + sub_height + 10 + axis_font_height + 8
    grid_size = cell * classes
    bar_x = grid_x + grid_size + total_width + 16
    width = max(
        bar_x + bar_width + bar_label_width + pad,
        pad + max(_text_size(probe, text, sub_font)[0] for text in subtitle_parts) + pad,
        pad + _text_size(probe, title, title_font)[0] + pad,
    )
    height = grid_y + grid_size + column_label_height + pad

    image = Image.new("RGB", (int(width), int(height)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((pad, pad), title, font=title_font, fill=_TEXT)
    y = pad + title_height
    for index, text in enumerate(subtitle_parts):
        draw.text((pad, y), text, font=sub_font, fill=_TEXT if index == 0 and scores else _MUTED)
        y += axis_font_height + 8

    # axis titles: "Predicted" above the grid, "Truth" rotated along the rows
    _centered(
        draw, (grid_x, grid_y - axis_font_height - 8, grid_x + grid_size, grid_y - 4), "Predicted", sub_font, _TEXT
    )
    truth_label = _vertical_label("Truth", sub_font, _TEXT)
    image.paste(truth_label, (pad, grid_y + (grid_size - truth_label.height) // 2), truth_label)

    show_counts = cell >= 48
    for row in range(classes):
        y0 = grid_y + row * cell
        empty = totals[row] == 0
        for column in range(classes):
            x0 = grid_x + column * cell
            box = (x0, y0, x0 + cell - 1, y0 + cell - 1)
            if empty:
                draw.rectangle(box, fill=_EMPTY_ROW)
                draw.line((x0, y0 + cell - 1, x0 + cell - 1, y0), fill=(200, 200, 200))
                continue
            share = shares[row, column]
            fill = cell_colour(share)
            draw.rectangle(box, fill=fill)
            ink = (255, 255, 255) if share > 0.5 else _TEXT
            text = _percent_text(share)
            if show_counts and counts[row, column] > 0:
                _centered(draw, (x0, y0, x0 + cell, y0 + cell * 0.62), text, cell_font, ink)
                _centered(
                    draw,
                    (x0, y0 + cell * 0.52, x0 + cell, y0 + cell * 0.92),
                    _count_text(counts[row, column]),
                    small_font,
                    ink,
                )
            else:
                _centered(draw, (x0, y0, x0 + cell, y0 + cell), text, cell_font, ink)
        # diagonal outline, class name on the left, truth pixel total on the right
        draw.rectangle((grid_x + row * cell, y0, grid_x + row * cell + cell - 1, y0 + cell - 1), outline=_TEXT)
        draw.text((grid_x - 8, y0 + cell / 2), labels[row], font=label_font, fill=_TEXT, anchor="rm")
        draw.text(
            (grid_x + grid_size + 8, y0 + cell / 2),
            "no pixels" if empty else total_texts[row],
            font=small_font,
            fill=_MUTED,
            anchor="lm",
        )
    draw.text((grid_x + grid_size + 8, grid_y - 4), "pixels", font=small_font, fill=_MUTED, anchor="ld")
    for line in range(classes + 1):  # the white grid
        offset = line * cell
        draw.line((grid_x, grid_y + offset - 1, grid_x + grid_size - 1, grid_y + offset - 1), fill=_GRID)
        draw.line((grid_x + offset - 1, grid_y, grid_x + offset - 1, grid_y + grid_size - 1), fill=_GRID)
    for row in range(classes):  # redraw the diagonal outlines over the grid
        x0, y0 = grid_x + row * cell, grid_y + row * cell
        draw.rectangle((x0, y0, x0 + cell - 2, y0 + cell - 2), outline=_TEXT)

    for column, label in enumerate(labels):  # column names, reading bottom to top, under the grid
        rotated = _vertical_label(label, label_font, _TEXT)
        x = grid_x + column * cell + (cell - rotated.width) // 2
        image.paste(rotated, (x, grid_y + grid_size + 6), rotated)

    # colour bar 0% (bottom) .. 100% (top)
    for offset in range(grid_size):
        draw.line(
            (bar_x, grid_y + offset, bar_x + bar_width, grid_y + offset), fill=cell_colour(1 - offset / grid_size)
        )
    draw.rectangle((bar_x, grid_y, bar_x + bar_width, grid_y + grid_size - 1), outline=_MUTED)
    for share in (0.0, 0.5, 1.0):
        y = grid_y + (1 - share) * (grid_size - 1)
        draw.text((bar_x + bar_width + 4, y), f"{share:.0%}", font=small_font, fill=_MUTED, anchor="lm")
    return image
