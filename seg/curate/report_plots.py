"""The report's plots: inline SVG histograms over [0, 1], kept and dropped stacked in two colours."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from seg.curate.report_assets import esc

#: Bars of kept and of dropped images (or objects).
KEPT_COLOUR, DROPPED_COLOUR = "#4a90d9", "#d9534f"
#: Bins of a histogram over [0, 1].
_BINS = 20


def histogram(
    values: npt.NDArray[np.float64],
    dropped: npt.NDArray[np.bool_],
    title: str,
    cut: tuple[float, str] | None = None,
    width: int = 300,
) -> str:
    """An SVG histogram over [0, 1] in :data:`_BINS` bins, kept and dropped stacked, counts above the bars."""
    height, left, right, top, bottom = 150, 8, 8, 30, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    finite = np.isfinite(values)
    parts = [
        f"<svg class='plot' width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='{esc(title)}'><title>{esc(title)}</title>",
        f"<text x='{left}' y='14' font-size='12' font-weight='600'>{esc(title)}</text>",
    ]
    if not finite.any():
        parts.append(f"<text x='{left}' y='{top + plot_h / 2}' font-size='12' fill='#777'>not measured</text></svg>")
        return "".join(parts)
    clipped = np.clip(values[finite], 0.0, 1.0)
    bins = np.minimum((clipped * _BINS).astype(int), _BINS - 1)
    drop = dropped[finite]
    kept_counts = np.bincount(bins[~drop], minlength=_BINS)
    drop_counts = np.bincount(bins[drop], minlength=_BINS)
    tallest = max(int((kept_counts + drop_counts).max()), 1)
    bar = plot_w / _BINS
    base = top + plot_h
    for i in range(_BINS):
        k, d = int(kept_counts[i]), int(drop_counts[i])
        if k + d == 0:
            continue
        x = left + i * bar
        hk, hd = plot_h * k / tallest, plot_h * d / tallest
        lo, hi = i / _BINS, (i + 1) / _BINS
        tip = f"{lo:.2f}–{hi:.2f}: {k} kept, {d} dropped"
        parts.append(f"<g><title>{tip}</title>")
        if k:
            parts.append(
                f"<rect x='{x + 1:.1f}' y='{base - hk:.1f}' width='{bar - 2:.1f}' height='{hk:.1f}' "
                f"fill='{KEPT_COLOUR}'/>"
            )
        if d:
            parts.append(
                f"<rect x='{x + 1:.1f}' y='{base - hk - hd:.1f}' width='{bar - 2:.1f}' height='{hd:.1f}' "
                f"fill='{DROPPED_COLOUR}'/>"
            )
        parts.append(
            f"<text x='{x + bar / 2:.1f}' y='{base - hk - hd - 2:.1f}' font-size='9' text-anchor='middle' "
            f"fill='#333'>{k + d}</text></g>"
        )
    parts.append(f"<line x1='{left}' y1='{base}' x2='{left + plot_w}' y2='{base}' stroke='#555'/>")
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + tick * plot_w
        anchor = "start" if tick == 0 else "end" if tick == 1 else "middle"
        parts.append(
            f"<text x='{x:.1f}' y='{base + 14}' font-size='10' text-anchor='{anchor}' fill='#555'>{tick:g}</text>"
        )
    missing = int((~finite).sum())
    if missing:
        parts.append(
            f"<text x='{left + plot_w}' y='14' font-size='10' text-anchor='end' fill='#777'>"
            f"{missing} not measured</text>"
        )
    if cut is not None:
        x = left + min(max(cut[0], 0.0), 1.0) * plot_w
        parts.append(
            f"<line x1='{x:.1f}' y1='{top - 8}' x2='{x:.1f}' y2='{base}' stroke='#222' stroke-width='1.5' "
            f"stroke-dasharray='4 3'/><text x='{x - 3:.1f}' y='{top - 10}' font-size='10' text-anchor='end' "
            f"fill='#222'>{esc(cut[1])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
